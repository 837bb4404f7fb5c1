#!/usr/bin/env bash
# Sensoworks side by side with its peers on this machine (`make bench`):
#   1. time-series ingest and queries vs InfluxDB 1.x (bench/bench.py, sw_loadgen)
#   2. MQTT broker vs Mosquitto 2.0 (bench/mqtt_bench.py, sw_mqtt_loadgen)
#   3. analytics detectors: points/s per core and the evaluation on labelled synthetic series
#      (bench/bench_detectors.cc, build/bench_detectors; no server, ~20 s)
# Builds nothing: needs build/sensoworks, build/sw_loadgen, build/sw_mqtt_loadgen,
# build/bench_detectors, /usr/bin/influxd (Debian `influxdb`) and /usr/sbin/mosquitto (Debian
# `mosquitto`, with mosquitto-clients).
# Starts every server on free 127.0.0.1 ports with data in a temp dir, measures them one after
# the other, prints tables and writes bench/results/latest.json, bench/results/mqtt-latest.json
# and bench/results/detectors-latest.json.
#
# Environment:
#   BENCH_DEVICES (100)  BENCH_HOURS (6)  BENCH_CONNECTIONS (16)   data set and ingest parallelism
#   BENCH_ANALYTICS (1; 0 skips)  BENCH_ANALYTICS_ROUNDS (5)          ingest with analytics: interleaved rounds
#   BENCH_QUERY_REPEATS (20)  BENCH_RAW_REPEATS (5)                 repetitions (median reported)
#   BENCH_INGEST_MAX_S (900)  BENCH_SETTLE_MAX_S (120)              per-phase bounds
#   BENCH_TIMEOUT_S (3000)  BENCH_MQTT_TIMEOUT_S (900)              bounds for each part
#   BENCH_BUILD_DIR (build)  BENCH_OUT (bench/results/latest.json)  BENCH_MQTT_OUT (bench/results/mqtt-latest.json)
#   BENCH_ONLY (both|sensoworks|influx|mqtt|detectors): both = everything; sensoworks|influx = one
#     side of part 1 only (debugging); mqtt = part 2 only; detectors = part 3 only
#   BENCH_DETECTORS (build/bench_detectors)  BENCH_DETECTORS_OUT (bench/results/detectors-latest.json)
#   BENCH_DETECTORS_SEEDS (20)  BENCH_DETECTORS_TIMEOUT_S (600)   part 3
#   BENCH_MQTT_PUBLISHERS (100) BENCH_MQTT_WINDOW (32) BENCH_MQTT_PAYLOAD_BYTES (100)
#   BENCH_MQTT_DURATION_S (10) BENCH_MQTT_WARMUP_S (2) BENCH_MQTT_LATENCY_RATE (10000)
#   BENCH_MQTT_LATENCY_PUBLISHERS (10) BENCH_MQTT_IDLE (10000) BENCH_MQTT_IDLE_DEVICES (100)
#   BENCH_MQTT_THREADS (1) BENCH_MQTT_SNDBUF (65536) BENCH_MQTT_SCENARIOS (fanin0,fanin1,latency,idle)
#   BENCH_MQTT_TARGETS (sensoworks,mosquitto; one of them alone is a failed run, for debugging)
#   BENCH_MQTT_QUIET_WAIT_S (0): wait up to this long before each measurement for the machine to be idle
#   BENCH_SW_BIN, BENCH_LOADGEN, BENCH_MQTT_LOADGEN, BENCH_INFLUXD, BENCH_MOSQUITTO   binaries
#   BENCH_KEEP_TMP=1 keeps the temp dir (logs, data) for inspection.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BENCH_BUILD_DIR="${BENCH_BUILD_DIR:-$ROOT/build}"
export BENCH_OUT="${BENCH_OUT:-$ROOT/bench/results/latest.json}"
PY=/usr/bin/python3

export BENCH_SW_BIN="${BENCH_SW_BIN:-$BENCH_BUILD_DIR/sensoworks}"
export BENCH_LOADGEN="${BENCH_LOADGEN:-$BENCH_BUILD_DIR/sw_loadgen}"
export BENCH_MQTT_LOADGEN="${BENCH_MQTT_LOADGEN:-$BENCH_BUILD_DIR/sw_mqtt_loadgen}"
export BENCH_MOSQUITTO="${BENCH_MOSQUITTO:-/usr/sbin/mosquitto}"
BENCH_DETECTORS="${BENCH_DETECTORS:-$BENCH_BUILD_DIR/bench_detectors}"
BENCH_DETECTORS_OUT="${BENCH_DETECTORS_OUT:-$ROOT/bench/results/detectors-latest.json}"

ONLY="${BENCH_ONLY:-both}"
case "$ONLY" in
  both) run_http=1; run_mqtt=1; run_det=1 ;;
  sensoworks|influx) run_http=1; run_mqtt=0; run_det=0 ;;
  mqtt) run_http=0; run_mqtt=1; run_det=0 ;;
  detectors) run_http=0; run_mqtt=0; run_det=1 ;;
  *) echo "bench: BENCH_ONLY must be both, sensoworks, influx, mqtt or detectors" >&2; exit 2 ;;
esac

missing=0
need=()
[[ $run_http -eq 1 ]] && need+=("$BENCH_LOADGEN")
[[ $run_mqtt -eq 1 ]] && need+=("$BENCH_MQTT_LOADGEN")
[[ $run_det -eq 1 ]] && need+=("$BENCH_DETECTORS")
[[ "$ONLY" == "influx" || "$ONLY" == "detectors" ]] || need+=("$BENCH_SW_BIN")
for f in "${need[@]}"; do
  if [[ ! -x "$f" ]]; then echo "bench: $f not found; build first (cmake --build build)" >&2; missing=1; fi
done
if [[ $run_http -eq 1 && ! -x "${BENCH_INFLUXD:-/usr/bin/influxd}" ]]; then
  echo "bench: influxd not found; apt-get install influxdb" >&2; missing=1
fi
if [[ $run_mqtt -eq 1 && ( ! -x "$BENCH_MOSQUITTO" || ! -x /usr/bin/mosquitto_sub ) ]]; then
  echo "bench: mosquitto not found; apt-get install mosquitto mosquitto-clients" >&2; missing=1
fi
if ! "$PY" -c 'import requests' 2>/dev/null; then
  echo "bench: python3-requests missing; apt-get install python3-requests" >&2; missing=1
fi
[[ $missing -eq 0 ]] || exit 2

# The idle-connection scenario holds BENCH_MQTT_IDLE connections open in the server and in the
# load generator at once (children inherit the limit).
if [[ $run_mqtt -eq 1 ]]; then
  want=$(( 4 * ${BENCH_MQTT_IDLE:-10000} + 1024 ))
  if (( $(ulimit -n) < want )); then
    ulimit -Hn "$want" 2>/dev/null || true
    ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  fi
fi

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/sw-bench.XXXXXX")"
export BENCH_TMP

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "${child:-}" ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true  # timeout passes it on to bench.py, which stops its servers
    for _ in $(seq 1 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.2; done
  fi
  # bench.py stops its servers itself; this catches what it left behind if it was killed.
  for pf in "$BENCH_TMP"/*.pid; do
    [[ -e "$pf" ]] || continue
    local pid
    pid="$(cat "$pf")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ "${BENCH_KEEP_TMP:-0}" == "1" ]]; then
    echo "bench: kept $BENCH_TMP" >&2
  else
    rm -rf "$BENCH_TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs one part in the background and waits, so a signal to this script reaches the trap at once.
run_part() {  # timeout_s script
  timeout --signal=TERM --kill-after=30 "$1" "$PY" "$2" &
  child=$!
  set +e
  wait "$child"
  local rc=$?
  set -e
  child=
  if [[ $rc -eq 124 ]]; then echo "bench: $(basename "$2") timed out after $1s" >&2; fi
  return "$rc"
}

rc=0
if [[ $run_http -eq 1 ]]; then
  run_part "${BENCH_TIMEOUT_S:-3000}" "$ROOT/bench/bench.py" || rc=$?
fi
if [[ $run_mqtt -eq 1 ]]; then
  run_part "${BENCH_MQTT_TIMEOUT_S:-900}" "$ROOT/bench/mqtt_bench.py" || { r=$?; [[ $rc -ne 0 ]] || rc=$r; }
fi
if [[ $run_det -eq 1 ]]; then
  # Part 3 runs alone after the servers have stopped (the throughput is one core's).
  echo "## Analytics detectors ($BENCH_DETECTORS)"
  timeout --signal=TERM --kill-after=10 "${BENCH_DETECTORS_TIMEOUT_S:-600}" "$BENCH_DETECTORS" \
    --out "$BENCH_DETECTORS_OUT" --seeds "${BENCH_DETECTORS_SEEDS:-20}" &
  child=$!
  set +e
  wait "$child"
  r=$?
  set -e
  child=
  if [[ $r -eq 124 ]]; then echo "bench: bench_detectors timed out" >&2; fi
  [[ $r -eq 0 || $rc -ne 0 ]] || rc=$r
fi
exit "$rc"
