"""Restart durability (SIGTERM), crash durability (kill -9 under concurrent ingest), retention."""
import threading
import time

import pytest
import requests

from swtest import PASSWORD, T0, TenantCtx, login_client, now_ms

S = 1000
DAY = 86_400_000


def test_restart_keeps_everything(make_server):
    s = make_server(name="restart", env={"SW_DEVICE_MAX_MSGS_PER_S": "100000", "SW_DEVICE_BURST": "100000"})
    sysadmin = s.admin()
    ctx = TenantCtx(s, sysadmin)
    d = ctx.device(labels={"k": "v"}, type="persist")
    token = d["credentials"]["access_token"]
    n = 3000
    s.ingest_ok(token, [{"ts": T0 + i * S, "values": {"a": i, "s": f"v{i}"}} for i in range(n)])
    s.ingest_ok(token, {"ts": T0 + 5 * S, "values": {"a": -5}})  # overwrite
    assert s.post_client_attributes(token, {"fw": "9"}).status_code == 200
    assert ctx.admin.post(f"/api/v1/devices/{d['id']}/attributes", {"cfg": 1}, params={"scope": "shared"}).status_code == 200
    refresh = s.login(ctx.viewer_user["username"], PASSWORD)["refresh_token"]
    before_agg = {iv: ctx.admin.agg(d["id"], "a", T0, T0 + n * S, "sum", iv) for iv in ("1m", "1h", "30s")}
    before_latest = ctx.admin.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json()
    before_dev = ctx.admin.get(f"/api/v1/devices/{d['id']}").json()

    assert s.stop() == 0, s.logs()
    s.start()

    # users and tenants: login works with the same passwords
    sysadmin = s.admin()
    assert sysadmin.get(f"/api/v1/tenants/{ctx.id}").json()["name"] == ctx.tenant["name"]
    admin = login_client(s, ctx.admin_user["username"], PASSWORD)
    r = requests.post(s.url("/api/v1/auth/refresh"), json={"refresh_token": refresh}, timeout=30)
    assert r.status_code == 200, r.text
    # devices
    assert admin.get(f"/api/v1/devices/{d['id']}").json() == before_dev
    # data
    got = admin.raw_all(d["id"], "a,s", T0, T0 + n * S, limit=100000)
    expected_a = [i if i != 5 else -5 for i in range(n)]
    assert [p["value"] for p in got["a"]] == expected_a
    assert [p["ts"] for p in got["a"]] == [T0 + i * S for i in range(n)]
    assert [p["value"] for p in got["s"]] == [f"v{i}" for i in range(n)]
    assert admin.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json() == before_latest
    for iv, pts in before_agg.items():
        assert admin.agg(d["id"], "a", T0, T0 + n * S, "sum", iv) == pts, iv
    attrs = admin.get(f"/api/v1/devices/{d['id']}/attributes").json()
    assert attrs["client"]["fw"]["value"] == "9" and attrs["shared"]["cfg"]["value"] == 1
    # the device token still authenticates
    assert s.ingest(token, {"ts": T0 + n * S, "values": {"a": 1}}).status_code == 200
    assert s.stop() == 0, s.logs()


class Writers:
    """Threads that ingest small batches as fast as they can and record every acknowledged point.

    Once `interrupting` is set (just before the server is killed or stopped), errors and non-200
    answers are expected and end the writer; before that, any of them is a test failure.
    """

    def __init__(self, server, devices, n_writers=4, batch=5):
        self.server = server
        self.writers = [(devices[i % len(devices)], f"w{i}") for i in range(n_writers)]
        self.batch = batch
        self.acked = {i: [] for i in range(n_writers)}
        self.errors = {i: [] for i in range(n_writers)}
        self.interrupting = threading.Event()
        self.stop = threading.Event()
        self.started = threading.Barrier(n_writers + 1)
        self.base_url = server.base_url  # the current process
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(n_writers)]

    def run(self, i):
        dev, key = self.writers[i]
        token = dev["credentials"]["access_token"]
        sess = requests.Session()
        seq = 0
        self.started.wait()
        while not self.stop.is_set():
            batch = [(T0 + (seq + j) * 10, seq + j) for j in range(self.batch)]
            seq += self.batch
            body = [{"ts": ts, "values": {key: v}} for ts, v in batch]
            try:
                r = sess.post(f"{self.base_url}/api/v1/{token}/telemetry", json=body, timeout=30)
            except requests.RequestException as e:
                if self.interrupting.is_set():
                    return
                self.errors[i].append(f"connection error while the server was up: {e!r}")
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                try:
                    points = r.json().get("points")
                except ValueError:
                    points = None
                if points != len(batch):
                    self.errors[i].append(f"unexpected acknowledgement {r.text[:200]}")
                self.acked[i].extend(batch)
            elif self.interrupting.is_set():
                if r.status_code != 503:
                    self.errors[i].append(f"while draining: {r.status_code} {r.text[:200]}")
                return
            else:
                self.errors[i].append(f"{r.status_code} {r.text[:200]}")

    def start(self, seconds=2.0):
        for t in self.threads:
            t.start()
        self.started.wait()
        time.sleep(seconds)
        counts = {i: len(a) for i, a in self.acked.items()}
        assert all(counts.values()), f"some writers got no acknowledgement: {counts}"

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
            assert not t.is_alive()
        assert not any(self.errors.values()), self.errors
        return sum(len(a) for a in self.acked.values())

    def verify(self, client):
        for i, (dev, key) in enumerate(self.writers):
            got = client.raw_all(dev["id"], key, T0, T0 + 10 ** 9, limit=100000)
            stored = {p["ts"]: p["value"] for p in got.get(key, [])}
            missing = [(ts, v) for ts, v in self.acked[i] if stored.get(ts) != v]
            assert not missing, \
                f"writer {i}: {len(missing)} of {len(self.acked[i])} acknowledged points lost, e.g. {missing[:5]}"


def test_kill_9_loses_no_acknowledged_point(make_server):
    s = make_server(name="crash", env={"SW_DEVICE_MAX_MSGS_PER_S": "100000", "SW_DEVICE_BURST": "100000",
                                       "SW_ACCESS_TOKEN_TTL_S": "3600"})
    ctx = TenantCtx(s, s.admin())
    w = Writers(s, [ctx.device(), ctx.device()])  # two writers per device, each with its own key
    w.start(2.0)
    w.interrupting.set()
    s.kill()  # while the writers are still sending
    total = w.join()
    print(f"kill -9: {total} acknowledged points ({ {i: len(a) for i, a in w.acked.items()} })")
    s.start()
    w.verify(login_client(s, ctx.admin_user["username"], PASSWORD))
    assert s.stop() == 0, s.logs()


def test_sigterm_under_load_exits_0_and_keeps_acknowledged_points(make_server):
    s = make_server(name="drain", env={"SW_DEVICE_MAX_MSGS_PER_S": "100000", "SW_DEVICE_BURST": "100000",
                                       "SW_ACCESS_TOKEN_TTL_S": "3600"})
    ctx = TenantCtx(s, s.admin())
    w = Writers(s, [ctx.device(), ctx.device()])
    w.start(1.5)
    w.interrupting.set()
    rc = s.stop()  # SIGTERM while the writers are still sending
    assert rc == 0, f"exit code {rc} after SIGTERM under load\n{s.logs()}"
    total = w.join()
    print(f"SIGTERM: {total} acknowledged points")
    s.start()
    w.verify(login_client(s, ctx.admin_user["username"], PASSWORD))
    assert s.stop() == 0, s.logs()


def test_retention_deletes_old_points(make_server):
    s = make_server(name="retention", env={"SW_RETENTION_INTERVAL_S": "1", "SW_DEVICE_MAX_MSGS_PER_S": "100000",
                                           "SW_DEVICE_BURST": "100000"})
    sysadmin = s.admin()
    short = TenantCtx(s, sysadmin)
    forever = TenantCtx(s, sysadmin)
    r = sysadmin.patch(f"/api/v1/tenants/{short.id}", {"retention_days": 1})
    assert r.status_code == 200, r.text
    assert sysadmin.get(f"/api/v1/tenants/{short.id}").json()["retention_days"] == 1

    now = now_ms()
    old = [now - 10 * DAY + i * S for i in range(50)]
    recent = [now - 60 * S + i * S for i in range(10)]
    devs = {}
    for name, ctx in (("short", short), ("forever", forever)):
        d = ctx.device()
        token = d["credentials"]["access_token"]
        s.ingest_ok(token, [{"ts": ts, "values": {"v": i}} for i, ts in enumerate(old)])
        s.ingest_ok(token, [{"ts": ts, "values": {"v": 1000 + i}} for i, ts in enumerate(recent)])
        devs[name] = d

    def points(ctx, d, frm, to):
        return ctx.admin.raw_all(d["id"], "v", frm, to, limit=100000).get("v", [])

    deadline = time.monotonic() + 20
    while points(short, devs["short"], now - 11 * DAY, now - 9 * DAY):
        assert time.monotonic() < deadline, "old points not removed by retention within 20 s\n" + s.logs()
        time.sleep(0.5)
    # recent points of the same tenant stay
    assert [p["ts"] for p in points(short, devs["short"], now - DAY, now + DAY)] == recent
    # the other tenant (retention 0 = forever) keeps everything
    assert len(points(forever, devs["forever"], now - 11 * DAY, now - 9 * DAY)) == len(old)
    assert len(points(forever, devs["forever"], now - DAY, now + DAY)) == len(recent)
    # aggregates no longer see the deleted points either
    agg = short.admin.agg(devs["short"]["id"], "v", now - 11 * DAY, now + DAY, "count", "1d")
    assert sum(p["value"] for p in agg) == len(recent)
    assert s.stop() == 0, s.logs()
