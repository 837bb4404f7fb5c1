#!/usr/bin/python3
"""Side-by-side benchmark of Sensoworks and InfluxDB 1.x on this machine (called by bench/run.sh).

Both servers get the same data (sw_loadgen), one after the other in the same run, each alone on
the machine while it is measured. Measured per server:
  ingest points/s, aggregated query latency (1 series @1m, 100 series @1h), raw range read
  points/s, bytes on disk per point after a clean stop, peak RSS (VmHWM).
Prints a table and writes JSON (BENCH_OUT). Everything listens on 127.0.0.1 only.
Environment: see bench/run.sh.
"""
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


DEVICES = env_int("BENCH_DEVICES", 100)
HOURS = env_float("BENCH_HOURS", 6)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 16)
QUERY_REPEATS = env_int("BENCH_QUERY_REPEATS", 20)
RAW_REPEATS = env_int("BENCH_RAW_REPEATS", 5)
INGEST_MAX_S = env_float("BENCH_INGEST_MAX_S", 900)
SETTLE_MAX_S = env_float("BENCH_SETTLE_MAX_S", 120)
ANALYTICS_ROUNDS = env_int("BENCH_ANALYTICS_ROUNDS", 5)  # interleaved rounds of none/typical/all
ONLY = os.environ.get("BENCH_ONLY", "both")  # both | sensoworks | influx (for debugging the script)
BUILD = os.environ.get("BENCH_BUILD_DIR", os.path.join(ROOT, "build"))
SW_BIN = os.environ.get("BENCH_SW_BIN", os.path.join(BUILD, "sensoworks"))
LOADGEN = os.environ.get("BENCH_LOADGEN", os.path.join(BUILD, "sw_loadgen"))
INFLUXD = os.environ.get("BENCH_INFLUXD", "/usr/bin/influxd")
TMP = os.environ["BENCH_TMP"]  # created (and removed) by run.sh
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "bench", "results", "latest.json"))

START_MS = 1_700_000_000_000  # must match sw_loadgen's default --start-ms
KEYS = 10
TOTAL_S = int(HOURS * 3600)
DATA_FROM = START_MS
DATA_TO = START_MS + TOTAL_S * 1000
# Aggregated queries cover 24 h, or the whole data set when it is shorter.
Q_FROM = DATA_FROM
Q_TO = min(DATA_TO, START_MS + 24 * 3600 * 1000)
HOST = "127.0.0.1"
ADMIN_PASSWORD = "bench-admin-pw-1"
TENANT_ADMIN = ("bench_admin", "bench-tenant-pw-1")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def dir_bytes(*paths):
    """Like `du -sb`: apparent size of all files and directories below paths."""
    total = 0
    for p in paths:
        if not os.path.exists(p):
            continue
        out = subprocess.run(["du", "-sb", p], check=True, capture_output=True, text=True).stdout
        total += int(out.split()[0])
    return total


def du_allocated(*paths):
    """Like `du -s -B1`: blocks really allocated (preallocated sparse files count less)."""
    total = 0
    for p in paths:
        if os.path.exists(p):
            total += int(subprocess.run(["du", "-s", "-B1", p], check=True, capture_output=True,
                                        text=True).stdout.split()[0])
    return total


def file_breakdown(*paths):
    """{extension: [files, bytes]} below paths, to see what the bytes on disk are made of."""
    out = {}
    for p in paths:
        for dp, _, files in os.walk(p):
            for f in files:
                ext = os.path.splitext(f)[1] or f
                e = out.setdefault(ext, [0, 0])
                e[0] += 1
                e[1] += os.path.getsize(os.path.join(dp, f))
    return out


def vm_hwm_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def cpu_seconds(pid):
    """User + system CPU time of a process so far (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid, prefix):
    """User + system CPU time so far of the process's threads whose name starts with prefix."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith(prefix):
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def median_ms(fn, repeats):
    fn()  # warm-up, not counted
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(samples), samples


class Server:
    """A child process with a pid file in TMP so run.sh's trap can end it if we die."""

    def __init__(self, name, argv, env, log_path):
        self.name = name
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid_file = os.path.join(TMP, f"{name}.pid")
        with open(self.pid_file, "w") as f:
            f.write(str(self.proc.pid))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=90):
        """SIGTERM, wait; SIGKILL if it does not exit. Returns (exit code, seconds, killed)."""
        killed = False
        t0 = time.monotonic()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not exit {timeout}s after SIGTERM: SIGKILL")
                self.proc.kill()
                self.proc.wait()
                killed = True
        self.log_file.close()
        if os.path.exists(self.pid_file):
            os.remove(self.pid_file)
        return self.proc.returncode, time.monotonic() - t0, killed

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


def wait_http(server, url, ok_status, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited during start-up:\n{server.tail()}")
        try:
            if requests.get(url, timeout=2).status_code in ok_status:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout}s:\n{server.tail()}")


def run_loadgen(mode, port, extra):
    argv = [LOADGEN, "--mode", mode, "--host", HOST, "--port", str(port), "--devices", str(DEVICES),
            "--hours", str(HOURS), "--connections", str(CONNECTIONS), "--start-ms", str(START_MS),
            "--max-seconds", str(INGEST_MAX_S)] + extra
    log(f"ingest: {' '.join(argv)}")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=INGEST_MAX_S + 120)
    if p.stderr:
        log(p.stderr.strip())
    try:
        result = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"sw_loadgen printed no result (exit {p.returncode}): {p.stdout} {p.stderr}")
    log(f"ingest result: {json.dumps(result)}")
    return result


def wait_settled(name, size_fn, extra_ok=lambda: True):
    """Waits until size_fn() is unchanged for 3 polls 2 s apart and extra_ok(), at most SETTLE_MAX_S."""
    t0 = time.monotonic()
    last, stable = None, 0
    while time.monotonic() - t0 < SETTLE_MAX_S:
        size = size_fn()
        stable = stable + 1 if size == last else 0
        last = size
        if stable >= 3 and extra_ok():
            break
        time.sleep(2)
    waited = time.monotonic() - t0
    log(f"{name}: settled after {waited:.0f}s (size {last})")
    return waited


# ---------------------------------------------------------------- Sensoworks

def sw_metrics(session, base):
    """The server's unlabelled Prometheus samples, by name."""
    out = {}
    for line in session.get(base + "/metrics", timeout=10).text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def bench_sensoworks(analytics=None, round_no=0):
    """Ingest, queries, disk and memory of Sensoworks. With `analytics` only the ingest is measured
    (with the server's CPU seconds during it), with definitions on every device: "none" = no
    definitions (the comparison point), "typical" = a z-score detector on k0 and a rule over k1
    (2 of the 10 keys analysed); "all" = a z-score detector on all 10 keys and the rule (every point)."""
    res = {}
    data_dir = os.path.join(TMP, f"sw-analytics-{analytics}-{round_no}-data" if analytics else "sw-data")
    os.makedirs(data_dir)
    port, mqtt_port = free_port(), free_port()
    env = dict(os.environ)
    env.update({
        "SW_HTTP_PORT": str(port), "SW_HTTP_BIND": HOST, "SW_MQTT_PORT": str(mqtt_port),
        "SW_DATA_DIR": data_dir, "SW_ADMIN_PASSWORD": ADMIN_PASSWORD, "SW_LOG_LEVEL": "warn",
        "SW_DEVICE_MAX_MSGS_PER_S": "0", "SW_ACCESS_TOKEN_TTL_S": "86400",
    })
    base = f"http://{HOST}:{port}"
    try:
        res["version"] = subprocess.run([SW_BIN, "--version"], capture_output=True, text=True,
                                        timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        res["version"] = None
    name = f"sensoworks-analytics-{analytics}-{round_no}" if analytics else "sensoworks"
    srv = Server(name, [SW_BIN, "serve"], env, os.path.join(TMP, name + ".log"))
    try:
        wait_http(srv, base + "/readyz", {200})
        log(f"sensoworks ready on port {port}")
        s = requests.Session()

        def login(user, pw):
            r = s.post(base + "/api/v1/auth/login", json={"username": user, "password": pw}, timeout=30)
            r.raise_for_status()
            return {"Authorization": "Bearer " + r.json()["access_token"]}

        admin = login("admin", ADMIN_PASSWORD)
        r = s.post(base + "/api/v1/tenants", json={"name": "bench"}, headers=admin, timeout=30)
        r.raise_for_status()
        tenant_id = r.json()["id"]
        r = s.post(base + "/api/v1/users", json={"username": TENANT_ADMIN[0], "password": TENANT_ADMIN[1],
                                                 "role": "tenant_admin", "tenant_id": tenant_id},
                   headers=admin, timeout=30)
        r.raise_for_status()
        auth = login(*TENANT_ADMIN)
        ids, tokens = [], []
        for d in range(DEVICES):
            r = s.post(base + "/api/v1/devices", json={"name": f"d{d}", "type": "bench"}, headers=auth, timeout=30)
            r.raise_for_status()
            dev = r.json()
            ids.append(dev["id"])
            tokens.append(dev["credentials"]["access_token"])
        tokens_file = os.path.join(TMP, "sw-tokens.txt")
        with open(tokens_file, "w") as f:
            f.write("\n".join(tokens) + "\n")
        log(f"created tenant, tenant admin and {DEVICES} devices")
        if analytics and analytics != "none":
            r = s.post(base + "/api/v1/detectors", headers=auth, timeout=30,
                       json={"name": "bench z-score", "kind": "zscore",
                             "keys": [f"k{i}" for i in range(KEYS)] if analytics == "all" else ["k0"],
                             "device_filter": {"type": "bench"}})
            r.raise_for_status()
            r = s.post(base + "/api/v1/rules", headers=auth, timeout=30,
                       json={"name": "bench rule", "condition": "k1 > 1000000", "device_filter": {"type": "bench"}})
            r.raise_for_status()

        cpu0 = cpu_seconds(srv.proc.pid)
        engine0 = thread_cpu_seconds(srv.proc.pid, "sw-analytics")
        res["ingest"] = run_loadgen("sensoworks", port, ["--tokens", tokens_file])
        if analytics:
            # The engine may still be working through its queue when the load generator is done
            # (the queue holds up to analytics.queue_batches messages): wait until it has evaluated
            # every point, and count that time and CPU too. A lag here would, in a longer run, fill
            # the queue and slow ingest down to the engine's pace.
            t0 = time.monotonic()
            while True:
                m = sw_metrics(s, base)
                if m.get("sw_analytics_points_done_total", 0) >= m.get("sw_analytics_points_total", 0):
                    break
                if time.monotonic() - t0 > 600:
                    raise RuntimeError("the analytics engine did not catch up within 600 s")
                time.sleep(0.02)
            res["analytics_lag_s"] = time.monotonic() - t0
        res["ingest_cpu_s"] = cpu_seconds(srv.proc.pid) - cpu0
        # The analytics engine's own threads: a steadier figure than the whole server's CPU.
        res["engine_cpu_s"] = thread_cpu_seconds(srv.proc.pid, "sw-analytics") - engine0
        if analytics:
            time.sleep(0.3)  # the last alarm batch (stored every 100 ms)
            m = sw_metrics(s, base)
            # Every point reached the engine (the queues apply backpressure; nothing is dropped).
            res["analytics_points"] = m.get("sw_analytics_points_total")
            for metric in ("queue_waits", "scores_written", "alarms_raised"):
                res["analytics_" + metric] = m.get(f"sw_analytics_{metric}_total")
            res["peak_rss_bytes"] = vm_hwm_bytes(srv.proc.pid)
            return res

        def telemetry(dev_id, params):
            p = {"keys": "k0", "from": Q_FROM, "to": Q_TO}
            p.update(params)
            r = s.get(f"{base}/api/v1/devices/{dev_id}/telemetry", params=p, headers=auth, timeout=120)
            r.raise_for_status()
            return r

        # Checks: same count and mean as InfluxDB for d0/k0 over the whole data set.
        cnt = telemetry(ids[0], {"from": DATA_FROM, "to": DATA_TO, "agg": "count", "interval": "1d"}).json()
        sm = telemetry(ids[0], {"from": DATA_FROM, "to": DATA_TO, "agg": "sum", "interval": "1d"}).json()
        count = sum(p["value"] for p in cnt.get("k0", []))
        total = sum(p["value"] for p in sm.get("k0", []))
        res["check"] = {"d0_k0_count": count, "d0_k0_mean": round(total / count, 6) if count else None,
                        "expected_count": TOTAL_S}

        def q1():
            telemetry(ids[0], {"agg": "avg", "interval": "1m"}).content

        def q100():
            # One request for all series, like InfluxDB's single GROUP BY device query.
            r = s.post(base + "/api/v1/telemetry/query", headers=auth, timeout=120,
                       json={"device_ids": ids, "keys": ["k0"], "from": Q_FROM, "to": Q_TO, "agg": "avg",
                             "interval": "1h"})
            r.raise_for_status()
            return r.content

        # Queries are measured on settled data (flushes, compactions and rollups done), for both servers.
        ts_dir = os.path.join(data_dir, "timeseries")

        def no_pending_rollups():
            try:
                return sw_metrics(s, base).get("sw_store_pending_rollups", 0) == 0
            except requests.RequestException:
                return True

        res["settle_s"] = wait_settled("sensoworks", lambda: dir_bytes(ts_dir), no_pending_rollups)
        res["query_1series_1m_ms"], res["query_1series_1m_samples"] = median_ms(q1, QUERY_REPEATS)
        res["query_100series_1h_ms"], res["query_100series_1h_samples"] = median_ms(q100, QUERY_REPEATS)
        res["query_100series_series"] = len(ids)
        log(f"sensoworks queries: 1 series {res['query_1series_1m_ms']:.2f} ms, "
            f"{len(ids)} series {res['query_100series_1h_ms']:.2f} ms")

        def raw_read():
            bodies, cursor = [], None
            while True:
                p = {"from": DATA_FROM, "to": DATA_TO, "limit": 100000}
                if cursor:
                    p["cursor"] = cursor
                r = telemetry(ids[0], p)
                bodies.append(r.content)
                cursor = r.headers.get("X-Next-Cursor")
                if not cursor:
                    return bodies

        bodies = raw_read()
        raw_points = sum(len(json.loads(b).get("k0", [])) for b in bodies)
        raw_ms, _ = median_ms(raw_read, RAW_REPEATS)
        res["raw_read"] = {"points": raw_points, "pages": len(bodies), "median_ms": raw_ms,
                           "points_per_s": raw_points / (raw_ms / 1000.0) if raw_ms > 0 else None}
        log(f"sensoworks raw read: {raw_points} points in {raw_ms:.1f} ms")

        res["peak_rss_bytes"] = vm_hwm_bytes(srv.proc.pid)
    except BaseException:
        log("sensoworks log tail:\n" + srv.tail())
        raise
    finally:
        code, secs, killed = srv.stop()
        res["stop"] = {"exit_code": code, "seconds": round(secs, 2), "killed": killed}
    res["disk_bytes"] = dir_bytes(os.path.join(data_dir, "timeseries"))
    res["disk_bytes_allocated"] = du_allocated(os.path.join(data_dir, "timeseries"))
    res["disk_files"] = file_breakdown(os.path.join(data_dir, "timeseries"))
    pts = res["ingest"]["points"]
    res["bytes_per_point"] = res["disk_bytes"] / pts if pts else None
    return res


# ---------------------------------------------------------------- InfluxDB

INFLUX_CONF = """\
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  # Defaults are 10m / 4h; shortened so the data reaches its compacted TSM form within the run
  # (bytes on disk are measured after that, not from the WAL).
  cache-snapshot-write-cold-duration = "10s"
  compact-full-write-cold-duration = "30s"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "{host}:{http_port}"
  auth-enabled = false
  log-enabled = false
  max-row-limit = 0
  flux-enabled = false

[continuous_queries]
  enabled = false
"""


def bench_influx():
    res = {}
    root = os.path.join(TMP, "influx")
    os.makedirs(root)
    rpc_port, http_port = free_port(), free_port()
    conf = os.path.join(root, "influxdb.conf")
    with open(conf, "w") as f:
        f.write(INFLUX_CONF.format(host=HOST, rpc_port=rpc_port, http_port=http_port, root=root))
    base = f"http://{HOST}:{http_port}"
    try:
        res["version"] = subprocess.run([INFLUXD, "version"], capture_output=True, text=True,
                                        timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        res["version"] = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
    srv = Server("influxd", [INFLUXD, "-config", conf], env, os.path.join(TMP, "influxd.log"))
    try:
        wait_http(srv, base + "/ping", {204})
        log(f"influxd ready on port {http_port}")
        s = requests.Session()
        s.post(base + "/query", data={"q": "CREATE DATABASE bench"}, timeout=30).raise_for_status()

        res["ingest"] = run_loadgen("influx", http_port, ["--db", "bench"])

        def query(q, chunked=False):
            p = {"db": "bench", "epoch": "ms", "q": q}
            if chunked:
                p["chunked"] = "true"
                p["chunk_size"] = "10000"
            r = s.get(base + "/query", params=p, timeout=120)
            r.raise_for_status()
            return r

        def series_values(body):
            """Values of all series in a (possibly chunked, newline separated) /query response."""
            dec, text, pos, out = json.JSONDecoder(), body.decode(), 0, []
            while True:
                while pos < len(text) and text[pos].isspace():
                    pos += 1
                if pos >= len(text):
                    return out
                obj, pos = dec.raw_decode(text, pos)
                for result in obj.get("results", []):
                    if "error" in result:
                        raise RuntimeError(f"InfluxDB query error: {result['error']}")
                    for series in result.get("series", []):
                        out.extend(series.get("values", []))

        rng = f"time >= {DATA_FROM}ms AND time < {DATA_TO}ms"
        vals = series_values(query(f"SELECT count(k0), mean(k0) FROM m WHERE device='d0' AND {rng}").content)
        count = vals[0][1] if vals else 0
        res["check"] = {"d0_k0_count": count, "d0_k0_mean": round(vals[0][2], 6) if vals else None,
                        "expected_count": TOTAL_S}

        data, wal = os.path.join(root, "data"), os.path.join(root, "wal")
        def compacted():
            # WAL snapshotted into TSM and each shard fully compacted into a single TSM file.
            shards = [os.path.join(dp, d) for dp, dirs, _ in os.walk(os.path.join(data, "bench")) for d in dirs
                      if d.isdigit()]
            tsm = [len([f for f in os.listdir(sh) if f.endswith(".tsm")]) for sh in shards]
            return dir_bytes(wal) < (1 << 20) and all(n <= 1 for n in tsm)

        res["settle_s"] = wait_settled("influxd", lambda: dir_bytes(data, wal), compacted)
        res["compacted"] = compacted()
        qrng = f"time >= {Q_FROM}ms AND time < {Q_TO}ms"
        q1_text = f"SELECT mean(k0) FROM m WHERE device='d0' AND {qrng} GROUP BY time(1m)"
        q100_text = f"SELECT mean(k0) FROM m WHERE {qrng} GROUP BY time(1h),device"
        n_series = len(query(q100_text).json()["results"][0].get("series", []))
        res["query_1series_1m_ms"], res["query_1series_1m_samples"] = median_ms(lambda: query(q1_text).content,
                                                                                QUERY_REPEATS)
        res["query_100series_1h_ms"], res["query_100series_1h_samples"] = median_ms(
            lambda: query(q100_text).content, QUERY_REPEATS)
        res["query_100series_series"] = n_series
        log(f"influx queries: 1 series {res['query_1series_1m_ms']:.2f} ms, "
            f"{n_series} series {res['query_100series_1h_ms']:.2f} ms")

        raw_q = f"SELECT k0 FROM m WHERE device='d0' AND {rng}"
        raw_points = len(series_values(query(raw_q, chunked=True).content))
        raw_ms, _ = median_ms(lambda: query(raw_q, chunked=True).content, RAW_REPEATS)
        res["raw_read"] = {"points": raw_points, "pages": 1, "median_ms": raw_ms,
                           "points_per_s": raw_points / (raw_ms / 1000.0) if raw_ms > 0 else None}
        log(f"influx raw read: {raw_points} points in {raw_ms:.1f} ms")

        res["peak_rss_bytes"] = vm_hwm_bytes(srv.proc.pid)
    except BaseException:
        log("influxd log tail:\n" + srv.tail())
        raise
    finally:
        code, secs, killed = srv.stop()
        res["stop"] = {"exit_code": code, "seconds": round(secs, 2), "killed": killed}
    res["disk_bytes_data"] = dir_bytes(os.path.join(root, "data"))
    res["disk_bytes_wal"] = dir_bytes(os.path.join(root, "wal"))
    res["disk_bytes"] = res["disk_bytes_data"] + res["disk_bytes_wal"]
    res["disk_bytes_allocated"] = du_allocated(os.path.join(root, "data"), os.path.join(root, "wal"))
    res["disk_files"] = file_breakdown(os.path.join(root, "data"), os.path.join(root, "wal"))
    pts = res["ingest"]["points"]
    res["bytes_per_point"] = res["disk_bytes"] / pts if pts else None
    return res


# ---------------------------------------------------------------- report

ROWS = [
    # key, label, unit, higher_is_better
    ("ingest_points_per_s", "ingest", "points/s", True),
    ("query_1series_1m_ms", f"agg query, 1 series, {(Q_TO - Q_FROM) // 3600000} h @ 1m (median)", "ms", False),
    ("query_100series_1h_ms", f"agg query, {DEVICES} series, {(Q_TO - Q_FROM) // 3600000} h @ 1h (median)", "ms",
     False),
    ("raw_read_points_per_s", "raw range read, 1 series", "points/s", True),
    ("bytes_per_point", "bytes on disk per point (du -sb)", "B", False),
    ("bytes_per_point_allocated", "bytes on disk per point (allocated blocks)", "B", False),
    ("peak_rss_mib", "peak RSS (VmHWM)", "MiB", False),
]


def flat(r):
    if not r:
        return {}
    return {
        "ingest_points_per_s": r.get("ingest", {}).get("points_per_s"),
        "query_1series_1m_ms": r.get("query_1series_1m_ms"),
        "query_100series_1h_ms": r.get("query_100series_1h_ms"),
        "raw_read_points_per_s": (r.get("raw_read") or {}).get("points_per_s"),
        "bytes_per_point": r.get("bytes_per_point"),
        "bytes_per_point_allocated": (r["disk_bytes_allocated"] / r["ingest"]["points"]
                                      if r.get("disk_bytes_allocated") and r.get("ingest", {}).get("points") else None),
        "peak_rss_mib": r["peak_rss_bytes"] / 2**20 if r.get("peak_rss_bytes") else None,
    }


def fmt_num(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fs = subprocess.run(["df", "-T", TMP], capture_output=True, text=True).stdout.splitlines()
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "mem_total_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
            "tmp_fs": fs[-1].split()[1] if len(fs) > 1 else None}


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {"devices": DEVICES, "keys": KEYS, "hours": HOURS, "rate_hz": 1, "connections": CONNECTIONS,
                   "points_per_request": 1000, "start_ms": START_MS, "query_from": Q_FROM, "query_to": Q_TO,
                   "query_repeats": QUERY_REPEATS, "raw_repeats": RAW_REPEATS,
                   "expected_points": DEVICES * KEYS * TOTAL_S},
        "machine": machine_info(),
    }
    failures = []
    sw = ix = None
    if ONLY in ("both", "sensoworks"):
        try:
            sw = bench_sensoworks()
        except Exception as e:  # report what we have, and fail at the end
            failures.append(f"sensoworks: {e}")
            log(f"sensoworks FAILED: {e}")
    # Analytics cost: interleaved rounds of (none, typical, all) on fresh servers, so that drifts of
    # this shared machine hit every mode alike; medians are compared. Single runs vary by +-20 %.
    swa = {}
    if ONLY in ("both", "sensoworks") and os.environ.get("BENCH_ANALYTICS", "1") != "0":
        for round_no in range(max(1, ANALYTICS_ROUNDS)):
            for mode in ("none", "typical", "all"):
                try:
                    swa.setdefault(mode, []).append(bench_sensoworks(analytics=mode, round_no=round_no))
                except Exception as e:
                    failures.append(f"sensoworks with analytics ({mode}, round {round_no}): {e}")
                    log(f"sensoworks with analytics ({mode}, round {round_no}) FAILED: {e}")
    if ONLY in ("both", "influx"):
        try:
            ix = bench_influx()
        except Exception as e:
            failures.append(f"influxdb: {e}")
            log(f"influxdb FAILED: {e}")
    results["sensoworks"], results["influxdb"] = sw, ix
    results["sensoworks_analytics"] = swa
    results["analytics_ingest"] = {}

    def med(runs, fn):
        vals = [v for v in (fn(r) for r in runs) if v]
        return statistics.median(vals) if vals else None

    def rate(r):
        """Points per second until the engine had evaluated them all (loadgen time + catch-up)."""
        ing = r.get("ingest", {})
        if not ing.get("points") or not ing.get("seconds"):
            return None
        return ing["points"] / (ing["seconds"] + r.get("analytics_lag_s", 0))
    cpu_ns = lambda r: (r["ingest_cpu_s"] * 1e9 / r["ingest"]["points"]  # noqa: E731
                        if r.get("ingest_cpu_s") and r.get("ingest", {}).get("points") else None)
    engine_share = lambda r: (r["engine_cpu_s"] / r["ingest_cpu_s"]  # noqa: E731
                              if r.get("engine_cpu_s") and r.get("ingest_cpu_s") else None)
    base_rate, base_cpu = med(swa.get("none", []), rate), med(swa.get("none", []), cpu_ns)
    for mode in ("typical", "all"):
        runs = swa.get(mode, [])
        with_rate, with_cpu = med(runs, rate), med(runs, cpu_ns)
        if not (base_rate and with_rate):
            continue
        # Each round ran none, typical and all back to back, so the per-round ratio cancels the
        # machine's slower and faster phases (which last minutes here); its median is the figure.
        paired = sorted(rate(r) / rate(b) for r, b in zip(runs, swa.get("none", [])) if rate(r) and rate(b))
        drop = 1 - statistics.median(paired) if paired else 1 - with_rate / base_rate
        expected = DEVICES * TOTAL_S * (KEYS if mode == "all" else 2)
        results["analytics_ingest"][mode] = {
            "rounds": len(runs), "without_points_per_s": base_rate, "with_points_per_s": with_rate,
            "drop": drop, "paired_ratios": paired, "drop_of_medians": 1 - with_rate / base_rate,
            "rates_without": [rate(r) for r in swa.get("none", [])],
            "rates_with": [rate(r) for r in runs],
            "cpu_ns_per_point_without": base_cpu, "cpu_ns_per_point_with": with_cpu,
            "cpu_increase": (with_cpu / base_cpu - 1) if (base_cpu and with_cpu) else None,
            "engine_cpu_share": med(runs, engine_share),
            "engine_cpu_ns_per_analysed_point": med(runs, lambda r: (r["engine_cpu_s"] * 1e9 / expected
                                                                     if r.get("engine_cpu_s") else None)),
            "analytics_points": [r.get("analytics_points") for r in runs], "expected_analytics_points": expected,
            "queue_waits": [r.get("analytics_queue_waits") for r in runs],
            "lag_s": [r.get("analytics_lag_s") for r in runs],
            "scores_written": [r.get("analytics_scores_written") for r in runs],
            "alarms_raised": [r.get("analytics_alarms_raised") for r in runs]}
        cpu_text = (f", server CPU {with_cpu:.0f} vs {base_cpu:.0f} ns/point ({with_cpu / base_cpu - 1:+.1%})"
                    if base_cpu and with_cpu else "")
        share = results["analytics_ingest"][mode]["engine_cpu_share"]
        if share:
            cpu_text += (f", engine threads {share:.1%} of the server's CPU "
                         f"({results['analytics_ingest'][mode]['engine_cpu_ns_per_analysed_point']:.0f} ns per analysed point)")
        log(f"ingest with analytics ({mode}, {len(runs)} rounds): median of the per-round ratios to 'none' "
            f"{[round(p, 3) for p in paired]} {1 - drop:.3f}, a {drop:+.1%} drop; medians {with_rate:,.0f} vs "
            f"{base_rate:,.0f} points/s{cpu_text}; rates {[round(rate(r)) for r in runs]} vs "
            f"{[round(rate(r)) for r in swa.get('none', [])]}; engine catch-up after the load generator "
            f"{[round(r.get('analytics_lag_s') or 0, 2) for r in runs]} s; alarms {[r.get('analytics_alarms_raised') for r in runs]}, "
            f"scores written {[r.get('analytics_scores_written') for r in runs]}")
        # The target (< 10 % drop) applies to the typical set-up; "all" is reported.
        if mode == "typical" and drop >= 0.10:
            failures.append(f"analytics ({mode}) costs {drop:.1%} of ingest throughput (target < 10 %)")
        for r in runs:
            if r.get("analytics_points") != expected:
                failures.append(f"analytics ({mode}) saw {r.get('analytics_points')} points, expected {expected}")
    for name, r in (("sensoworks", sw), ("influxdb", ix)):
        if not r:
            continue
        ing = r.get("ingest", {})
        if ing.get("errors") or ing.get("timed_out"):
            failures.append(f"{name}: ingest errors={ing.get('errors')} timed_out={ing.get('timed_out')} "
                            f"first_error={ing.get('first_error')}")
        chk = r.get("check", {})
        if chk.get("d0_k0_count") != chk.get("expected_count"):
            failures.append(f"{name}: d0/k0 has {chk.get('d0_k0_count')} points, expected {chk.get('expected_count')}")
    if sw and ix and sw.get("check", {}).get("d0_k0_mean") is not None:
        a, b = sw["check"]["d0_k0_mean"], ix["check"].get("d0_k0_mean")
        if b is None or abs(a - b) > 1e-3:
            failures.append(f"d0/k0 mean differs: sensoworks {a} influxdb {b}")

    fs, fi = flat(sw), flat(ix)
    summary = []
    for key, label, unit, higher in ROWS:
        a, b = fs.get(key), fi.get(key)
        ratio = None
        if a and b:
            ratio = a / b if higher else b / a
        summary.append({"metric": key, "label": label, "unit": unit, "sensoworks": a, "influxdb": b,
                        "ratio_sensoworks_better_if_gt_1": ratio,
                        "ratio_formula": "sensoworks/influxdb" if higher else "influxdb/sensoworks"})
    results["summary"] = summary
    results["failures"] = failures

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")

    p = results["params"]
    print()
    iv = (ix or {}).get("version") or "InfluxDB 1.x"
    print(f"Sensoworks vs {iv} — "
          f"{p['devices']} devices x {KEYS} keys @ 1 Hz x {HOURS:g} h = {p['expected_points']:,} points, "
          f"{CONNECTIONS} connections, {results['machine']['cpus']} CPUs")
    hdr = ("metric", "unit", "Sensoworks", "InfluxDB", "ratio (>1 = Sensoworks better)")
    rows = [(r["label"], r["unit"], fmt_num(r["sensoworks"]), fmt_num(r["influxdb"]),
             (f"{r['ratio_sensoworks_better_if_gt_1']:.2f}x" if r["ratio_sensoworks_better_if_gt_1"] else "-")
             + f"  ({r['ratio_formula']})") for r in summary]
    widths = [max(len(str(x[i])) for x in [hdr] + rows) for i in range(len(hdr))]
    for i, row in enumerate([hdr] + rows):
        print("  ".join(str(c).ljust(widths[j]) if j in (0, 1) else str(c).rjust(widths[j]) if j < 4 else str(c)
                        for j, c in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nJSON: {OUT}")
    if failures:
        print("\nFAILURES:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
