#!/usr/bin/python3
"""MQTT side by side: Sensoworks vs Mosquitto 2.0 on this machine (called by bench/run.sh).

Both brokers get the same traffic from sw_mqtt_loadgen (bench/mqtt_loadgen.cc), scenario by
scenario, each broker freshly started for each scenario and alone on the machine while measured:
  fan-in QoS 0 and QoS 1   N publishers as fast as the broker takes it (QoS 1: a window of
                           unacknowledged PUBLISHes per connection); Sensoworks stores every message
                           (PUBACK after durable storage), Mosquitto routes to one subscriber on bench/#
  latency                  publish-to-subscriber latency at a fixed total rate, QoS 1
  idle connections         N connected clients without traffic, server RSS before and after
Prints a table with ratios (> 1 = Sensoworks better) and writes JSON (BENCH_MQTT_OUT).
Everything listens on 127.0.0.1 only. Environment: see bench/run.sh.
"""
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as hb  # noqa: E402  (Server, wait_http, free_port, machine_info: shared with the HTTP bench)

ROOT = hb.ROOT
BUILD = hb.BUILD
HOST = hb.HOST
env_int = hb.env_int
env_float = hb.env_float


SW_BIN = os.environ.get("BENCH_SW_BIN", os.path.join(BUILD, "sensoworks"))
LOADGEN = os.environ.get("BENCH_MQTT_LOADGEN", os.path.join(BUILD, "sw_mqtt_loadgen"))
MOSQUITTO = os.environ.get("BENCH_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_SUB = os.environ.get("BENCH_MOSQUITTO_SUB", "/usr/bin/mosquitto_sub")
OUT = os.environ.get("BENCH_MQTT_OUT", os.path.join(ROOT, "bench", "results", "mqtt-latest.json"))
TMP = os.environ["BENCH_TMP"]  # created (and removed) by run.sh

PUBLISHERS = env_int("BENCH_MQTT_PUBLISHERS", 100)
WINDOW = env_int("BENCH_MQTT_WINDOW", 32)
PAYLOAD = env_int("BENCH_MQTT_PAYLOAD_BYTES", 100)
DURATION = env_float("BENCH_MQTT_DURATION_S", 10)
WARMUP = env_float("BENCH_MQTT_WARMUP_S", 2)
LAT_RATE = env_float("BENCH_MQTT_LATENCY_RATE", 10000)
LAT_PUBLISHERS = env_int("BENCH_MQTT_LATENCY_PUBLISHERS", 10)
IDLE = env_int("BENCH_MQTT_IDLE", 10000)
IDLE_DEVICES = env_int("BENCH_MQTT_IDLE_DEVICES", 100)
THREADS = env_int("BENCH_MQTT_THREADS", 1)
# SO_SNDBUF of publisher sockets. 0 = the kernel default, with which QoS 0 clients park hundreds of
# MB in loopback buffers and "published" says nothing about the broker.
SNDBUF = env_int("BENCH_MQTT_SNDBUF", 65536)
MAX_QUEUED = env_int("BENCH_MQTT_MAX_QUEUED", 1000)      # SW_MQTT_MAX_QUEUED default / mosquitto max_queued_messages
MAX_INFLIGHT = env_int("BENCH_MQTT_MAX_INFLIGHT", 64)    # SW_MQTT_MAX_INFLIGHT default / mosquitto max_inflight_messages
SCENARIOS = os.environ.get("BENCH_MQTT_SCENARIOS", "fanin0,fanin1,latency,idle").split(",")
# Which brokers to run. A debugging aid only: `make bench` runs both, and a Sensoworks without a
# working MQTT listener fails the run.
TARGETS = os.environ.get("BENCH_MQTT_TARGETS", "sensoworks,mosquitto").split(",")
# Wait up to this long before each measurement for an idle machine (no compiler, other processes
# below 0.3 CPUs); 0 = do not wait. Other load distorts the numbers; the JSON records it either way.
QUIET_WAIT_S = env_float("BENCH_MQTT_QUIET_WAIT_S", 0)
PAYLOAD_KEYS = 5  # temperature, humidity, seq, t_us, pad: points stored per message

ADMIN_PASSWORD = "bench-admin-pw-1"
TENANT_ADMIN = ("bench_admin", "bench-tenant-pw-1")

log = hb.log


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, 4 * IDLE + 1024)) if hard != resource.RLIM_INFINITY else 4 * IDLE + 1024
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE + 1024:
        raise RuntimeError(f"open-file limit {soft} is too low for {IDLE} connections; raise `ulimit -n` "
                           f"(bench/run.sh does)")
    return soft


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def cpu_seconds(pid, user_only=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + (0 if user_only else int(fields[12]))
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def wait_port(server, port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited (code {server.proc.returncode}) before its MQTT port "
                               f"{port} accepted a connection:\n{server.tail()}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.name}: nothing listens on MQTT port {port} after {timeout}s:\n{server.tail()}")


def mqtt_connack(port, username=None, password=None, timeout=5):
    """Sends a 3.1.1 CONNECT and returns the CONNACK return code (a plain MQTT sanity check)."""
    def s(b):
        return len(b).to_bytes(2, "big") + b
    flags, payload = 0x02, s(b"bench-probe")
    if username is not None:
        flags |= 0x80
        payload += s(username.encode())
    if password is not None:
        flags |= 0x40
        payload += s(password.encode())
    var = s(b"MQTT") + bytes([4, flags]) + (30).to_bytes(2, "big")
    body = var + payload
    assert len(body) < 128
    with socket.create_connection((HOST, port), timeout=timeout) as c:
        c.sendall(bytes([0x10, len(body)]) + body)
        data = b""
        while len(data) < 4:
            chunk = c.recv(4 - len(data))
            if not chunk:
                raise RuntimeError(f"connection closed after CONNECT (got {data!r}): not an MQTT listener?")
            data += chunk
        if data[0] != 0x20:
            raise RuntimeError(f"expected CONNACK, got {data!r}")
        c.sendall(b"\xe0\x00")
        return data[3]


def compilers_running():
    out = subprocess.run(["pgrep", "-c", "cc1plus"], capture_output=True, text=True).stdout.strip()
    return int(out or 0)


def machine_user_s():
    """User CPU seconds of the whole machine (all CPUs, user + nice, from /proc/stat). User time
    only: loopback networking is system time of whichever thread runs it (ksoftirqd included), so
    it cannot be told apart from ours; other jobs (compilers, tests) are mostly user time."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1]) / os.sysconf("SC_CLK_TCK")


def own_user_s():
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


class BusyWatch:
    """Counts compiler processes once a second while a measurement runs (they distort it), and
    the machine's busy CPU time, so the CPU used by others can be told apart afterwards."""

    def __init__(self):
        self.max, self._stop = 0, threading.Event()
        self.t0, self.busy0, self.own0 = time.monotonic(), machine_user_s(), own_user_s()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def totals(self):
        """(wall seconds, user CPU seconds of the machine minus this harness's own)."""
        return time.monotonic() - self.t0, machine_user_s() - self.busy0 - (own_user_s() - self.own0)

    def _run(self):
        while not self._stop.is_set():
            self.max = max(self.max, compilers_running())
            self._stop.wait(1.0)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        return self.max


def wait_quiet():
    """Waits (at most QUIET_WAIT_S) until no compiler runs and the machine, with none of our
    processes running, has been nearly idle (< 0.3 CPUs of user time) for 5 s. Returns the seconds
    waited."""
    if QUIET_WAIT_S <= 0:
        return 0.0
    t0, quiet_since = time.monotonic(), None
    while time.monotonic() - t0 < QUIET_WAIT_S:
        b0 = machine_user_s()
        time.sleep(1)
        if compilers_running() == 0 and machine_user_s() - b0 < 0.3:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 5:
                break
        else:
            quiet_since = None
    return time.monotonic() - t0


class CounterSampler:
    """Samples server-side counters in the background: [(monotonic time, {name: value})]."""

    def __init__(self, fetch, interval):
        self.fetch, self.interval = fetch, interval
        self.samples, self._stop = [], threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                v = self.fetch()
                if v:
                    self.samples.append(((t0 + time.monotonic()) / 2, v))
            except Exception:  # noqa: BLE001  the server may be busy; a missing sample is fine
                pass
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)

    def at(self, t, key):
        """Counter value at monotonic time t, interpolated between the neighbouring samples."""
        pts = [(ts, v[key]) for ts, v in self.samples if key in v]
        before = [p for p in pts if p[0] <= t]
        after = [p for p in pts if p[0] >= t]
        if not before or not after:
            return None
        (t0, v0), (t1, v1) = before[-1], after[0]
        return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def rate(self, key, t_start, t_end):
        a, b = self.at(t_start, key), self.at(t_end, key)
        if a is None or b is None or t_end <= t_start:
            return None
        return (b - a) / (t_end - t_start)

    def last(self, key):
        for _, v in reversed(self.samples):
            if key in v:
                return v[key]
        return None


# ---------------------------------------------------------------- brokers

class SensoworksBroker:
    name = "sensoworks"

    def __init__(self, tag, devices):
        self.data_dir = os.path.join(TMP, f"sw-mqtt-{tag}")
        os.makedirs(self.data_dir)
        self.http_port, self.mqtt_port = hb.free_port(), hb.free_port()
        env = dict(os.environ)
        env.update({
            "SW_HTTP_PORT": str(self.http_port), "SW_HTTP_BIND": HOST, "SW_MQTT_PORT": str(self.mqtt_port),
            "SW_MQTT_BIND": HOST, "SW_DATA_DIR": self.data_dir, "SW_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SW_LOG_LEVEL": "warn", "SW_DEVICE_MAX_MSGS_PER_S": "0", "SW_ACCESS_TOKEN_TTL_S": "86400",
            "SW_MQTT_MAX_QUEUED": str(MAX_QUEUED), "SW_MQTT_MAX_INFLIGHT": str(MAX_INFLIGHT),
            "SW_MQTT_MAX_CONNECTIONS": str(max(100000, 2 * IDLE)),
        })
        self.base = f"http://{HOST}:{self.http_port}"
        # Other work may rebuild the binary between scenarios: each scenario records which it ran.
        self.bin_mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(SW_BIN)))
        self.srv = hb.Server(f"sensoworks-{tag}", [SW_BIN, "serve"], env, os.path.join(TMP, f"sensoworks-{tag}.log"))
        self.pid = self.srv.proc.pid
        try:
            hb.wait_http(self.srv, self.base + "/readyz", {200})
            wait_port(self.srv, self.mqtt_port)
            self.s = requests.Session()
            admin = self._login("admin", ADMIN_PASSWORD)
            r = self.s.post(self.base + "/api/v1/tenants", json={"name": "bench"}, headers=admin, timeout=30)
            r.raise_for_status()
            tenant_id = r.json()["id"]
            r = self.s.post(self.base + "/api/v1/users",
                            json={"username": TENANT_ADMIN[0], "password": TENANT_ADMIN[1], "role": "tenant_admin",
                                  "tenant_id": tenant_id}, headers=admin, timeout=30)
            r.raise_for_status()
            self.auth = self._login(*TENANT_ADMIN)
            self.jwt = self.auth["Authorization"].split(" ", 1)[1]
            self.tokens = []
            for d in range(devices):
                r = self.s.post(self.base + "/api/v1/devices", json={"name": f"d{d}", "type": "bench"},
                                headers=self.auth, timeout=30)
                r.raise_for_status()
                self.tokens.append(r.json()["credentials"]["access_token"])
            self.tokens_file = os.path.join(TMP, f"sw-mqtt-{tag}-tokens.txt")
            with open(self.tokens_file, "w") as f:
                f.write("\n".join(self.tokens) + "\n")
            self.jwt_file = os.path.join(TMP, f"sw-mqtt-{tag}-jwt.txt")
            with open(self.jwt_file, "w") as f:
                f.write(self.jwt + "\n")
            # A missing or broken MQTT listener fails here, not half-way through a measurement.
            code = mqtt_connack(self.mqtt_port, username=self.tokens[0])
            if code != 0:
                raise RuntimeError(f"Sensoworks refused a device CONNECT with its access token (code {code})")
        except BaseException:
            log(f"{self.srv.name} log tail:\n{self.srv.tail()}")
            self.stop()
            raise
        log(f"sensoworks ready: http {self.http_port}, mqtt {self.mqtt_port}, {devices} devices")

    def _login(self, user, pw):
        r = self.s.post(self.base + "/api/v1/auth/login", json={"username": user, "password": pw}, timeout=30)
        r.raise_for_status()
        return {"Authorization": "Bearer " + r.json()["access_token"]}

    def metrics(self):
        text = requests.get(self.base + "/metrics", timeout=5).text
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if not m:
                continue
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            if name in ("sw_ingest_messages_total", "sw_ingest_points_total", "sw_mqtt_messages_received_total",
                        "sw_mqtt_messages_sent_total", "sw_mqtt_connections", "sw_mqtt_messages_dropped_total",
                        "sw_ingest_rejected_total"):
                key = name if name in ("sw_ingest_messages_total", "sw_ingest_points_total",
                                       "sw_mqtt_messages_received_total", "sw_mqtt_messages_sent_total",
                                       "sw_mqtt_connections") else name + labels
                out[key] = out.get(key, 0.0) + float(value)
        return out

    def loadgen_args(self):
        return ["--target", "sensoworks", "--port", str(self.mqtt_port), "--tokens", self.tokens_file,
                "--app-password-file", self.jwt_file]

    def sampler(self):
        return CounterSampler(self.metrics, 0.25)

    def version(self):
        try:
            return subprocess.run([SW_BIN, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    def stop(self):
        code, secs, killed = self.srv.stop()
        return {"exit_code": code, "seconds": round(secs, 2), "killed": killed}


MOSQUITTO_CONF = """\
# Generated by bench/mqtt_bench.py. Same limits as Sensoworks' defaults, nothing on disk.
listener {port} {host}
allow_anonymous true
persistence false
max_queued_messages {max_queued}
max_inflight_messages {max_inflight}
max_connections -1
set_tcp_nodelay true
sys_interval 1
log_dest stderr
log_type error
log_type warning
connection_messages false
"""


class MosquittoBroker:
    name = "mosquitto"

    def __init__(self, tag, devices=0):
        self.port = hb.free_port()
        root = os.path.join(TMP, f"mosquitto-{tag}")
        os.makedirs(root)
        conf = os.path.join(root, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(MOSQUITTO_CONF.format(port=self.port, host=HOST, max_queued=MAX_QUEUED, max_inflight=MAX_INFLIGHT))
        self.srv = hb.Server(f"mosquitto-{tag}", [MOSQUITTO, "-c", conf], dict(os.environ),
                             os.path.join(TMP, f"mosquitto-{tag}.log"))
        self.pid = self.srv.proc.pid
        try:
            wait_port(self.srv, self.port)
            code = mqtt_connack(self.port)
            if code != 0:
                raise RuntimeError(f"mosquitto refused an anonymous CONNECT (code {code})")
        except BaseException:
            log(f"{self.srv.name} log tail:\n{self.srv.tail()}")
            self.stop()
            raise
        log(f"mosquitto ready on port {self.port}")

    def loadgen_args(self):
        return ["--target", "mosquitto", "--port", str(self.port)]

    def sampler(self):
        return SysSampler(self.port)

    def version(self):
        try:
            p = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError, IndexError):
            return None

    def stop(self):
        code, secs, killed = self.srv.stop()
        return {"exit_code": code, "seconds": round(secs, 2), "killed": killed}


class SysSampler(CounterSampler):
    """Mosquitto's own counters from $SYS (published every sys_interval = 1 s) via mosquitto_sub."""

    TOPICS = {"$SYS/broker/publish/messages/received": "received",
              "$SYS/broker/publish/messages/sent": "sent",
              "$SYS/broker/publish/messages/dropped": "dropped",
              "$SYS/broker/clients/connected": "connected"}

    def __init__(self, port):
        self.samples, self._stop = [], threading.Event()
        argv = [MOSQUITTO_SUB, "-h", HOST, "-p", str(port), "-v", "-i", "bench-sys"]
        for t in self.TOPICS:
            argv += ["-t", t]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            topic, _, value = line.strip().partition(" ")
            if topic in self.TOPICS:
                try:
                    self.samples.append((time.monotonic(), {self.TOPICS[topic]: float(value)}))
                except ValueError:
                    pass

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._t.join(timeout=5)


BROKERS = {"sensoworks": SensoworksBroker, "mosquitto": MosquittoBroker}


# ---------------------------------------------------------------- loadgen

def run_loadgen(args, timeout):
    argv = [LOADGEN] + args
    log("loadgen: " + " ".join(argv))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if p.stderr.strip():
        log(p.stderr.strip())
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"sw_mqtt_loadgen printed no result (exit {p.returncode}): {p.stdout} {p.stderr}")
    res["exit_code"] = p.returncode
    res["argv"] = argv
    return res


def wait_stable(fn, settle_s=2.0, timeout=60.0, until=None):
    """Polls fn() until it reaches `until` or stays unchanged for settle_s; returns the last value."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        v = fn()
        if until is not None and v is not None and v >= until:
            return v
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            return v
        time.sleep(0.2)
    return last


def fanin(broker_name, qos):
    tag = f"fanin{qos}"
    b = BROKERS[broker_name](tag, PUBLISHERS)
    res = {"version": b.version(), "bin_mtime": getattr(b, "bin_mtime", None)}
    sampler = b.sampler()
    cpu0 = cpu_seconds(b.pid)
    try:
        time.sleep(1.5)  # a first counter sample before the load starts
        args = b.loadgen_args() + ["--mode", "fanin", "--clients", str(PUBLISHERS), "--qos", str(qos),
                                   "--window", str(WINDOW), "--duration", str(DURATION), "--warmup", str(WARMUP),
                                   "--payload-bytes", str(PAYLOAD), "--threads", str(THREADS),
                                   "--sndbuf", str(SNDBUF)]
        if broker_name == "mosquitto":
            args.append("--subscriber")
        lg = run_loadgen(args, timeout=WARMUP + DURATION + 120)
        res["loadgen"] = lg
        res["server_cpu_s"] = (cpu_seconds(b.pid) or 0) - (cpu0 or 0)
        ws, we = lg.get("window_start_mono"), lg.get("window_end_mono")
        if broker_name == "sensoworks":
            # Everything the broker took in is stored before its counters stop moving.
            stored = wait_stable(lambda: b.metrics().get("sw_ingest_messages_total"), settle_s=2.0, timeout=120,
                                 until=lg["sent_total"])
            time.sleep(0.5)
            sampler.stop()
            m = b.metrics()
            res["metrics_after"] = m
            res["stored_total"] = m.get("sw_ingest_messages_total")
            res["stored_points_total"] = m.get("sw_ingest_points_total")
            res["broker_received_total"] = m.get("sw_mqtt_messages_received_total")
            res["stored_per_s"] = sampler.rate("sw_ingest_messages_total", ws, we)
            res["broker_received_per_s"] = sampler.rate("sw_mqtt_messages_received_total", ws, we)
            res["delivered_per_s"] = res["stored_per_s"]
            log(f"sensoworks fan-in QoS {qos}: published {lg['published_per_s']:,.0f}/s, "
                f"stored {fmt(res['stored_per_s'])}/s (window), stored total {stored}")
        else:
            time.sleep(1.5)  # one more $SYS sample after the window
            sampler.stop()
            res["broker_received_per_s"] = sampler.rate("received", ws, we)
            res["broker_dropped_total"] = sampler.last("dropped")
            res["broker_received_total"] = sampler.last("received")
            res["delivered_per_s"] = lg["received_per_s"]
            log(f"mosquitto fan-in QoS {qos}: published {lg['published_per_s']:,.0f}/s, "
                f"received by the subscriber {lg['received_per_s']:,.0f}/s, broker read "
                f"{fmt(res['broker_received_per_s'])}/s, dropped {res['broker_dropped_total']}")
        res["rss_bytes"] = proc_status(b.pid).get("VmHWM")
    except BaseException:
        sampler.stop()
        log(f"{b.srv.name} log tail:\n{b.srv.tail()}")
        raise
    finally:
        res["server_cpu_total_s"] = cpu_seconds(b.pid)
        res["server_user_total_s"] = cpu_seconds(b.pid, user_only=True)
        res["stop"] = b.stop()
    return res


def latency(broker_name):
    b = BROKERS[broker_name]("latency", LAT_PUBLISHERS)
    res = {"version": b.version(), "bin_mtime": getattr(b, "bin_mtime", None)}
    cpu0 = cpu_seconds(b.pid)
    try:
        args = b.loadgen_args() + ["--mode", "latency", "--clients", str(LAT_PUBLISHERS), "--qos", "1",
                                   "--window", str(WINDOW), "--rate", str(LAT_RATE), "--duration", str(DURATION),
                                   "--warmup", str(WARMUP), "--payload-bytes", str(PAYLOAD), "--threads",
                                   str(THREADS)]
        lg = run_loadgen(args, timeout=WARMUP + DURATION + 120)
        res["loadgen"] = lg
        res["server_cpu_s"] = (cpu_seconds(b.pid) or 0) - (cpu0 or 0)
        res["rss_bytes"] = proc_status(b.pid).get("VmHWM")
        l = lg.get("latency_ms") or {}
        log(f"{broker_name} latency @ {LAT_RATE:g} msg/s: published {lg['published_per_s']:,.0f}/s, "
            f"received {lg['received_per_s']:,.0f}/s, p50 {l.get('p50')} p99 {l.get('p99')} max {l.get('max')} ms")
    except BaseException:
        log(f"{b.srv.name} log tail:\n{b.srv.tail()}")
        raise
    finally:
        res["server_cpu_total_s"] = cpu_seconds(b.pid)
        res["server_user_total_s"] = cpu_seconds(b.pid, user_only=True)
        res["stop"] = b.stop()
    return res


def idle(broker_name):
    b = BROKERS[broker_name]("idle", IDLE_DEVICES)
    res = {"version": b.version(), "bin_mtime": getattr(b, "bin_mtime", None)}
    cpu0 = cpu_seconds(b.pid)
    lg_proc = None
    try:
        time.sleep(1.0)
        before = proc_status(b.pid)
        args = [LOADGEN] + b.loadgen_args() + ["--mode", "idle", "--clients", str(IDLE), "--keepalive", "60",
                                                "--hold-seconds", "300", "--connect-concurrency", "256"]
        log("loadgen: " + " ".join(args))
        lg_proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        ready_line = [None]

        def read_ready():
            ready_line[0] = lg_proc.stdout.readline()

        t = threading.Thread(target=read_ready, daemon=True)
        t.start()
        t.join(timeout=240)
        if not ready_line[0]:
            raise RuntimeError("sw_mqtt_loadgen (idle) did not report ready within 240 s")
        ready = json.loads(ready_line[0])
        res["ready"] = ready
        time.sleep(3.0)  # let the broker finish per-connection set-up
        after = proc_status(b.pid)
        if broker_name == "sensoworks":
            res["server_connections"] = b.metrics().get("sw_mqtt_connections")
        lg_proc.stdin.write("\n")
        lg_proc.stdin.flush()
        out, err = lg_proc.communicate(timeout=120)
        if err.strip():
            log(err.strip())
        lg = json.loads(out.strip().splitlines()[-1])
        lg["exit_code"] = lg_proc.returncode
        lg["argv"] = args
        res["loadgen"] = lg
        res["server_cpu_s"] = (cpu_seconds(b.pid) or 0) - (cpu0 or 0)
        res["rss_before_bytes"], res["rss_after_bytes"] = before.get("VmRSS"), after.get("VmRSS")
        n = ready.get("connected", 0)
        res["connections"] = n
        res["bytes_per_connection"] = (after["VmRSS"] - before["VmRSS"]) / n if n else None
        log(f"{broker_name} idle: {n} connections, RSS {before['VmRSS'] / 2**20:.1f} -> "
            f"{after['VmRSS'] / 2**20:.1f} MiB, {fmt(res['bytes_per_connection'])} B/connection")
    except BaseException:
        log(f"{b.srv.name} log tail:\n{b.srv.tail()}")
        raise
    finally:
        if lg_proc and lg_proc.poll() is None:
            lg_proc.kill()
            lg_proc.wait()
        res["server_cpu_total_s"] = cpu_seconds(b.pid)
        res["server_user_total_s"] = cpu_seconds(b.pid, user_only=True)
        res["stop"] = b.stop()
    return res


# ---------------------------------------------------------------- report

def fmt(v):
    return hb.fmt_num(v) if v is not None else "-"


def get(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(p) if isinstance(d, dict) else None
    return d


def check(results, failures):
    """Turns loadgen errors and storage mismatches into failures."""
    for scen, per in results["scenarios"].items():
        for name, r in per.items():
            if r is None:
                continue
            if "error" in r:
                failures.append(f"{scen}/{name}: {r['error']}")
                continue
            lg = r.get("loadgen") or {}
            if not lg.get("ok", False) or lg.get("exit_code"):
                failures.append(f"{scen}/{name}: loadgen not ok (exit {lg.get('exit_code')}): "
                                f"connect_failed={lg.get('connect_failed')} lost={lg.get('lost_connections')} "
                                f"protocol_errors={lg.get('protocol_errors')} bad_acks={lg.get('bad_acks')} "
                                f"drained={lg.get('drained')} first_error={lg.get('first_error')}")
            if scen.startswith("fanin") and name == "sensoworks":
                stored, pts = r.get("stored_total"), r.get("stored_points_total")
                if lg.get("qos") == 1 and stored != lg.get("published_total"):
                    failures.append(f"{scen}/sensoworks: {stored} messages stored, {lg.get('published_total')} "
                                    f"acknowledged with PUBACK")
                if stored is not None and pts != stored * PAYLOAD_KEYS:
                    failures.append(f"{scen}/sensoworks: {pts} points stored for {stored} messages "
                                    f"(expected {PAYLOAD_KEYS} per message)")
            if scen == "idle" and r.get("connections") != IDLE:
                failures.append(f"{scen}/{name}: {r.get('connections')} of {IDLE} idle clients connected")


def summary_rows(results):
    sc = results["scenarios"]

    def pair(scen, fn):
        per = sc.get(scen) or {}
        return fn(per.get("sensoworks")), fn(per.get("mosquitto"))

    rows = []

    def add(label, unit, higher, sw_mq, target=None):
        a, b = sw_mq
        ratio = None
        if a and b:
            ratio = a / b if higher else b / a
        rows.append({"label": label, "unit": unit, "sensoworks": a, "mosquitto": b, "higher_is_better": higher,
                     "ratio_sensoworks_better_if_gt_1": ratio, "target": target})

    n = PUBLISHERS
    add(f"fan-in QoS 0, {n} pubs: published (written)", "msg/s", True,
        pair("fanin0", lambda r: get(r, "loadgen", "published_per_s")))
    add("fan-in QoS 0: read by the broker", "msg/s", True, pair("fanin0", lambda r: get(r, "broker_received_per_s")))
    add("fan-in QoS 0: stored (SW) / routed to subscriber (Mq)", "msg/s", True,
        pair("fanin0", lambda r: get(r, "delivered_per_s")))
    add(f"fan-in QoS 1, window {WINDOW}: PUBACKed", "msg/s", True,
        pair("fanin1", lambda r: get(r, "loadgen", "published_per_s")))
    add("fan-in QoS 1: stored (SW) / routed to subscriber (Mq)", "msg/s", True,
        pair("fanin1", lambda r: get(r, "delivered_per_s")))
    sw_q1 = get(sc.get("fanin1"), "sensoworks", "delivered_per_s")
    mq_routed = get(sc.get("fanin1"), "mosquitto", "delivered_per_s")
    add("QoS 1 stored (SW) vs Mosquitto QoS 1 routed", "msg/s", True, (sw_q1, mq_routed),
        target=">= 1x (Sensoworks QoS 1 with persistence >= Mosquitto routed)")
    lat = f"latency @ {LAT_RATE:g} msg/s QoS 1"
    add(f"{lat}: achieved rate", "msg/s", True, pair("latency", lambda r: get(r, "loadgen", "received_per_s")))
    add(f"{lat}: delivered to the subscriber", "%", True,
        pair("latency", lambda r: 100.0 * get(r, "loadgen", "received_total") / get(r, "loadgen", "published_total")
             if get(r, "loadgen", "published_total") else None))
    add(f"{lat}: p50", "ms", False, pair("latency", lambda r: get(r, "loadgen", "latency_ms", "p50")))
    add(f"{lat}: p99", "ms", False, pair("latency", lambda r: get(r, "loadgen", "latency_ms", "p99")),
        target="p99 <= 5 ms")
    add(f"{lat}: max", "ms", False, pair("latency", lambda r: get(r, "loadgen", "latency_ms", "max")))
    add(f"{lat}: PUBACK p99 (publisher side)", "ms", False,
        pair("latency", lambda r: get(r, "loadgen", "puback_ms", "p99")))
    add(f"idle: {IDLE} connections, RSS growth per connection", "B", False,
        pair("idle", lambda r: get(r, "bytes_per_connection")), target="<= 8 KB (8192 B)")
    add("idle: RSS with the connections", "MiB", False,
        pair("idle", lambda r: (get(r, "rss_after_bytes") or 0) / 2**20 or None))
    return rows


def target_status(results):
    sc = results["scenarios"]
    out = {}
    sw_q1 = get(sc.get("fanin1"), "sensoworks", "delivered_per_s")
    mq_routed = get(sc.get("fanin1"), "mosquitto", "delivered_per_s")
    if sw_q1 is not None and mq_routed is not None:
        out["qos1_stored_ge_mosquitto_routed"] = sw_q1 >= mq_routed
    p99 = get(sc.get("latency"), "sensoworks", "loadgen", "latency_ms", "p99")
    if p99 is not None:
        out["p99_le_5ms"] = p99 <= 5.0
    bpc = get(sc.get("idle"), "sensoworks", "bytes_per_connection")
    if bpc is not None:
        out["idle_le_8kb"] = bpc <= 8192
    return out


def build_info():
    """Which Sensoworks was measured: the source commit, whether the tree had edits, the binary's age."""
    def git(*args):
        try:
            return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(SW_BIN)))
    except OSError:
        mtime = None
    return {"git_head": git("rev-parse", "--short", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "-uno")),
            "sensoworks_bin": SW_BIN, "sensoworks_bin_mtime": mtime, "loadgen": LOADGEN}


def main():
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    nofile = raise_nofile()
    for t in TARGETS:
        if t not in BROKERS:
            print(f"unknown broker {t!r} in BENCH_MQTT_TARGETS", file=sys.stderr)
            return 2
    results = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {"publishers": PUBLISHERS, "window": WINDOW, "payload_bytes": PAYLOAD, "duration_s": DURATION,
                   "warmup_s": WARMUP, "latency_rate": LAT_RATE, "latency_publishers": LAT_PUBLISHERS,
                   "idle_connections": IDLE, "idle_devices": IDLE_DEVICES, "loadgen_threads": THREADS,
                   "max_queued": MAX_QUEUED, "max_inflight": MAX_INFLIGHT, "mqtt_version": "3.1.1",
                   "scenarios": SCENARIOS, "targets": TARGETS, "nofile": nofile},
        "machine": hb.machine_info(),
        "build": build_info(),
        "scenarios": {},
    }
    failures = []
    if set(TARGETS) != set(BROKERS):
        failures.append(f"only {','.join(TARGETS)} measured (BENCH_MQTT_TARGETS): no comparison")
    runners = {"fanin0": lambda n: fanin(n, 0), "fanin1": lambda n: fanin(n, 1), "latency": latency, "idle": idle}
    for scen in SCENARIOS:
        if scen not in runners:
            failures.append(f"unknown scenario {scen!r}")
            continue
        per = results["scenarios"].setdefault(scen, {})
        # The brokers alternate per scenario so both see the machine in the same state.
        for name in ("sensoworks", "mosquitto"):
            if name not in TARGETS:
                continue
            waited = wait_quiet()
            log(f"--- {scen} on {name}" + (f" (waited {waited:.0f}s for an idle machine)" if waited >= 7 else ""))
            watch = BusyWatch()
            try:
                per[name] = runners[scen](name)
            except Exception as e:  # report what we have, and fail at the end
                log(f"{scen} on {name} FAILED: {e}")
                per[name] = {"error": str(e)}
            wall, machine = watch.totals()
            busy = watch.stop()
            r = per[name]
            r["compilers_running_max"] = busy
            # User CPU of neither the broker nor the load generator: other jobs on the machine.
            ours = (r.get("server_user_total_s") or 0) + (get(r, "loadgen", "cpu_user_s") or 0)
            r["wall_s"], r["machine_user_cpu_s"] = round(wall, 2), round(machine, 2)
            r["other_cpu_share"] = round(max(0.0, machine - ours) / wall, 3) if wall > 0 else None
            if busy:
                log(f"warning: up to {busy} compiler processes ran during {scen} on {name}; numbers are distorted")
            elif (r["other_cpu_share"] or 0) > 0.25:
                log(f"warning: other processes used {r['other_cpu_share']:.2f} CPUs (user time) during {scen} on {name}")
    check(results, failures)
    rows = summary_rows(results)
    results["summary"] = rows
    results["targets_met"] = target_status(results)
    results["failures"] = failures
    results["distorted_by_compilers"] = sorted(f"{scen}/{n}" for scen, per in results["scenarios"].items()
                                               for n, r in per.items() if r and r.get("compilers_running_max"))
    results["busy_machine"] = sorted(f"{scen}/{n} ({r['other_cpu_share']:.2f} CPUs)"
                                     for scen, per in results["scenarios"].items() for n, r in per.items()
                                     if r and (r.get("other_cpu_share") or 0) > 0.25)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")

    sw_v = next((r.get("version") for per in results["scenarios"].values() for n, r in per.items()
                 if n == "sensoworks" and r and r.get("version")), None) or "Sensoworks"
    mq_v = next((r.get("version") for per in results["scenarios"].values() for n, r in per.items()
                 if n == "mosquitto" and r and r.get("version")), None) or "Mosquitto"
    print()
    print(f"MQTT: {sw_v} vs {mq_v} — {PUBLISHERS} publishers, {PAYLOAD} B payloads, {WARMUP:g} s warm-up + "
          f"{DURATION:g} s, MQTT 3.1.1, {results['machine']['cpus']} CPUs")
    hdr = ("metric", "unit", "Sensoworks", "Mosquitto", "ratio (>1 = Sensoworks better)", "target")
    table = [(r["label"], r["unit"], fmt(r["sensoworks"]), fmt(r["mosquitto"]),
              f"{r['ratio_sensoworks_better_if_gt_1']:.2f}x" if r["ratio_sensoworks_better_if_gt_1"] else "-",
              r["target"] or "") for r in rows]
    widths = [max(len(str(x[i])) for x in [hdr] + table) for i in range(len(hdr))]
    for i, row in enumerate([hdr] + table):
        print("  ".join(str(c).ljust(widths[j]) if j in (0, 1, 5) else str(c).rjust(widths[j])
                        for j, c in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if results["targets_met"]:
        print("\ntargets: " + ", ".join(f"{k}={'met' if v else 'NOT met'}" for k, v in results["targets_met"].items()))
    if results["distorted_by_compilers"]:
        print("\nwarning: compilers ran during " + ", ".join(results["distorted_by_compilers"]))
    if results["busy_machine"]:
        print("warning: other processes used CPU during " + ", ".join(results["busy_machine"]))
    print(f"\nJSON: {OUT}")
    if failures:
        print("\nFAILURES:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
