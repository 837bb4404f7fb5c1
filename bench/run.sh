#!/usr/bin/env bash
# Sensoworks vs InfluxDB 1.x side by side on this machine (`make bench`).
# Builds nothing: needs build/sensoworks and build/sw_loadgen, and /usr/bin/influxd (Debian `influxdb`).
# Starts both servers on free 127.0.0.1 ports with data in a temp dir, measures them one after
# the other (bench/bench.py), prints a table and writes bench/results/latest.json.
#
# Environment:
#   BENCH_DEVICES (100)  BENCH_HOURS (6)  BENCH_CONNECTIONS (16)   data set and ingest parallelism
#   BENCH_QUERY_REPEATS (20)  BENCH_RAW_REPEATS (5)                 repetitions (median reported)
#   BENCH_INGEST_MAX_S (900)  BENCH_SETTLE_MAX_S (120)              per-phase bounds
#   BENCH_TIMEOUT_S (3000)                                          bound for the whole run
#   BENCH_BUILD_DIR (build)  BENCH_OUT (bench/results/latest.json)  BENCH_ONLY (both|sensoworks|influx)
#   BENCH_SW_BIN, BENCH_LOADGEN, BENCH_INFLUXD                      binaries (default: build dir, /usr/bin)
#   BENCH_KEEP_TMP=1 keeps the temp dir (logs, data) for inspection.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BENCH_BUILD_DIR="${BENCH_BUILD_DIR:-$ROOT/build}"
export BENCH_OUT="${BENCH_OUT:-$ROOT/bench/results/latest.json}"
PY=/usr/bin/python3

export BENCH_SW_BIN="${BENCH_SW_BIN:-$BENCH_BUILD_DIR/sensoworks}"
export BENCH_LOADGEN="${BENCH_LOADGEN:-$BENCH_BUILD_DIR/sw_loadgen}"

missing=0
need=("$BENCH_LOADGEN")
[[ "${BENCH_ONLY:-both}" == "influx" ]] || need+=("$BENCH_SW_BIN")
for f in "${need[@]}"; do
  if [[ ! -x "$f" ]]; then echo "bench: $f not found; build first (cmake --build build)" >&2; missing=1; fi
done
if [[ ! -x "${BENCH_INFLUXD:-/usr/bin/influxd}" ]]; then
  echo "bench: influxd not found; apt-get install influxdb" >&2; missing=1
fi
if ! "$PY" -c 'import requests' 2>/dev/null; then
  echo "bench: python3-requests missing; apt-get install python3-requests" >&2; missing=1
fi
[[ $missing -eq 0 ]] || exit 2

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

# Run in the background and wait, so a signal to this script reaches the trap at once.
timeout --signal=TERM --kill-after=30 "${BENCH_TIMEOUT_S:-3000}" "$PY" "$ROOT/bench/bench.py" &
child=$!
set +e
wait "$child"
rc=$?
set -e
if [[ $rc -eq 124 ]]; then echo "bench: timed out after ${BENCH_TIMEOUT_S:-3000}s" >&2; fi
exit "$rc"
