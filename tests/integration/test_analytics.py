"""Analytics (issue 5) black box: detector and rule definitions (CRUD, validation, roles,
isolation), alarms raised and cleared by rules (threshold, duration, hysteresis, expressions)
and by detectors on the live stream, ack/clear lifecycle, the derived {key}.anomaly_score
series, backtests without side effects, alarms over the WebSocket, checkpointed state across a
restart, inactivity detection, insights (forecast, trend, data quality) and webhooks."""
from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import math
import random
import threading
import time
import uuid

import pytest
import websocket

from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from mqtt_helpers import create_device, device_client
from swtest import TenantCtx, assert_problem, metric_value, now_ms, unique

UNKNOWN = str(uuid.uuid4())
WAIT = 10.0


def wait_for(fn, timeout=WAIT, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")


def alarms(client, **params):
    r = client.get("/api/v1/alarms", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def ingest(server, token, body):
    r = server.ingest(token, body)
    assert r.status_code in (200, 202), r.text


def make_rule(client, condition, device_ids, **extra):
    body = {"name": unique("rule"), "condition": condition, "device_filter": {"device_ids": device_ids}, **extra}
    r = client.post("/api/v1/rules", body)
    assert r.status_code == 201, r.text
    return r.json()


def make_detector(client, kind, keys, device_ids=None, **extra):
    body = {"name": unique("det"), "kind": kind, "keys": keys, **extra}
    if device_ids is not None:
        body["device_filter"] = {"device_ids": device_ids}
    r = client.post("/api/v1/detectors", body)
    assert r.status_code == 201, r.text
    return r.json()


def series(base_ts, values, key="temperature", step=60000):
    return [{"ts": base_ts + i * step, "values": {key: v}} for i, v in enumerate(values)]


# ---------------------------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------------------------
def test_kinds_list_every_detector_with_defaults(tenant):
    r = tenant.viewer.get("/api/v1/detectors/kinds")
    assert r.status_code == 200, r.text
    kinds = {k["kind"]: k for k in r.json()["items"]}
    assert set(kinds) == {"zscore", "ewma", "holt_winters", "cusum", "spike", "flatline", "missing", "multivariate"}
    for k in kinds.values():
        assert k["title"] and k["description"]
        assert 0 < k["default_threshold"] <= 1
        for p in k["params"]:
            assert p["min"] <= p["default"] <= p["max"], p
        clear_after = [p for p in k["params"] if p["name"] == "clear_after"]
        assert clear_after and clear_after[0]["default"] == 5 and clear_after[0]["integer"] is True, k
    assert kinds["multivariate"]["multivariate"] is True


def test_detector_crud_defaults_and_validation(tenant):
    c = tenant.admin
    d = make_detector(c, "zscore", ["temperature"])
    assert d["enabled"] is True and d["severity"] == "major" and d["version"] == 1
    assert d["params"], "defaults are filled in"
    assert d["device_filter"] == {}
    got = c.get(f"/api/v1/detectors/{d['id']}").json()
    assert got == d
    body = {"name": "renamed", "kind": "ewma", "keys": ["temperature", "humidity"], "threshold": 0.9,
            "severity": "critical", "enabled": False, "device_filter": {"type": "pump", "label": "site=north"}}
    r = c.request("PUT", f"/api/v1/detectors/{d['id']}", json=body)
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["version"] == 2 and u["kind"] == "ewma" and u["threshold"] == 0.9 and u["enabled"] is False
    assert u["device_filter"] == {"type": "pump", "label": "site=north"}
    assert any(x["id"] == d["id"] for x in c.get("/api/v1/detectors").json()["items"])
    assert [x["id"] for x in c.get("/api/v1/detectors", params={"kind": "zscore"}).json()["items"]].count(d["id"]) == 0
    assert_problem(c.post("/api/v1/detectors", {"name": "x", "kind": "nope", "keys": ["a"]}), 400, "invalid_argument",
                   "kind")
    assert_problem(c.post("/api/v1/detectors", {"name": "x", "kind": "zscore", "keys": []}), 400, "invalid_argument",
                   "keys")
    assert_problem(c.post("/api/v1/detectors", {"name": "x", "kind": "multivariate", "keys": ["a"]}), 400,
                   "invalid_argument", "keys")
    assert_problem(c.post("/api/v1/detectors", {"name": "x", "kind": "zscore", "keys": ["a"],
                                                "params": {"no_such": 1}}), 400, "invalid_argument", "params.no_such")
    assert_problem(c.post("/api/v1/detectors", {"name": "x", "kind": "zscore", "keys": ["a"], "threshold": 1.5}),
                   400, "invalid_argument", "threshold")
    assert_problem(c.post("/api/v1/detectors", {"name": "x", "kind": "zscore", "keys": ["a"], "severity": "bad"}),
                   400, "invalid_argument", "severity")
    assert_problem(c.post("/api/v1/detectors", {"name": "x", "kind": "zscore", "keys": ["a"],
                                                "device_filter": {"device_ids": ["nope"]}}),
                   400, "invalid_argument", "device_filter.device_ids")
    assert_problem(c.post("/api/v1/detectors", "not json"), 400)
    assert c.delete(f"/api/v1/detectors/{d['id']}").status_code == 204
    assert_problem(c.get(f"/api/v1/detectors/{d['id']}"), 404, "not_found")


def test_rule_crud_and_condition_errors(tenant):
    c = tenant.admin
    r = make_rule(c, "a - b > 3", [UNKNOWN], duration_ms=60000, hysteresis=0.5, severity="minor")
    assert r["keys"] == ["a", "b"] and r["duration_ms"] == 60000 and r["severity"] == "minor"
    e = assert_problem(c.post("/api/v1/rules", {"name": "x", "condition": "temperature > "}), 400,
                       "invalid_argument", "condition")
    assert "position" in e["detail"]
    assert_problem(c.post("/api/v1/rules", {"name": "x", "condition": "temperature + 1"}), 400, "invalid_argument",
                   "condition")
    assert_problem(c.post("/api/v1/rules", {"name": "x", "condition": "t > 1", "duration_ms": -1}), 400,
                   "invalid_argument", "duration_ms")
    assert_problem(c.post("/api/v1/rules", {"name": "x", "condition": "t > 1", "hysteresis": -1}), 400,
                   "invalid_argument", "hysteresis")
    body = dict(name="r2", condition="temperature not between 10 and 80")
    u = c.request("PUT", f"/api/v1/rules/{r['id']}", json=body)
    assert u.status_code == 200 and u.json()["version"] == 2 and u.json()["keys"] == ["temperature"]
    assert c.delete(f"/api/v1/rules/{r['id']}").status_code == 204
    assert_problem(c.delete(f"/api/v1/rules/{r['id']}"), 404, "not_found")


def test_roles_and_isolation_of_definitions(server, tenant, new_tenant, sysadmin):
    d = make_detector(tenant.admin, "spike", ["x"])
    r = make_rule(tenant.admin, "x > 1", [UNKNOWN])
    assert tenant.viewer.get(f"/api/v1/detectors/{d['id']}").status_code == 200
    assert_problem(tenant.viewer.post("/api/v1/detectors", {"name": "v", "kind": "spike", "keys": ["x"]}), 403)
    assert_problem(tenant.viewer.delete(f"/api/v1/rules/{r['id']}"), 403)
    other = new_tenant()
    assert_problem(other.admin.get(f"/api/v1/detectors/{d['id']}"), 404, "not_found")
    assert_problem(other.admin.delete(f"/api/v1/rules/{r['id']}"), 404, "not_found")
    assert all(x["id"] != d["id"] for x in other.admin.get("/api/v1/detectors").json()["items"])
    assert_problem(sysadmin.get("/api/v1/detectors"), 403)
    assert_problem(sysadmin.get("/api/v1/alarms"), 403)


# ---------------------------------------------------------------------------------------------
# Rules -> alarms
# ---------------------------------------------------------------------------------------------
def test_threshold_rule_raises_clears_and_lifecycle(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    rule = make_rule(t.admin, "temperature > 80", [dev["id"]], severity="critical")
    ingest(server, token, {"temperature": 70})
    ingest(server, token, {"temperature": 91.5})
    a = wait_for(lambda: alarms(t.viewer, device_id=dev["id"]), what="alarm raised")[0]
    assert a["status"] == "active" and a["acknowledged"] is False and a["severity"] == "critical"
    assert a["source"] == {"type": "rule", "id": rule["id"], "name": rule["name"]}
    assert a["device_id"] == dev["id"] and a["device_name"] == dev["name"] and a["key"] == "temperature"
    assert "91.5" in a["message"] and a["end_ms"] is None and a["count"] == 1
    ingest(server, token, {"temperature": 95})  # still the same episode: no new alarm
    ingest(server, token, {"temperature": 60})  # condition ends: cleared automatically
    cleared = wait_for(lambda: [x for x in alarms(t.viewer, device_id=dev["id"]) if x["status"] == "cleared"],
                       what="auto clear")[0]
    assert cleared["id"] == a["id"] and cleared["cleared_by"] == "auto" and cleared["end_ms"] >= a["start_ms"]
    assert len(alarms(t.viewer, device_id=dev["id"])) == 1
    # A new episode opens a new alarm; ack then clear by hand.
    ingest(server, token, {"temperature": 99})
    b = wait_for(lambda: alarms(t.viewer, device_id=dev["id"], status="open"), what="second alarm")[0]
    assert b["id"] != a["id"]
    assert_problem(t.viewer.post(f"/api/v1/alarms/{b['id']}/ack"), 403)
    r = t.admin.post(f"/api/v1/alarms/{b['id']}/ack")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["acked_by"] == t.admin_user["id"]
    assert_problem(t.admin.post(f"/api/v1/alarms/{b['id']}/ack"), 409, "conflict")
    assert [x["id"] for x in alarms(t.viewer, status="acknowledged")] == [b["id"]]
    r = t.admin.post(f"/api/v1/alarms/{b['id']}/clear")
    assert r.status_code == 200 and r.json()["status"] == "cleared" and r.json()["acknowledged"] is True
    assert r.json()["cleared_by"] == t.admin_user["id"]
    assert_problem(t.admin.post(f"/api/v1/alarms/{b['id']}/clear"), 409, "conflict")
    assert alarms(t.viewer, status="open") == []
    assert len(alarms(t.viewer, severity="critical")) == 2
    assert alarms(t.viewer, severity="info") == []
    assert_problem(t.viewer.get("/api/v1/alarms", params={"status": "bogus"}), 400, "invalid_argument", "status")
    assert t.viewer.get(f"/api/v1/alarms/{a['id']}").json()["id"] == a["id"]


def test_mqtt_telemetry_reaches_the_rules(server, new_tenant):
    """Every transport feeds the engine: the same rule fires on points published over MQTT."""
    t = new_tenant()
    dev = create_device(t)
    make_rule(t.admin, "temperature > 80", [dev.id])
    c = device_client(server, dev)
    c.publish("v1/devices/me/telemetry", json.dumps({"temperature": 85.5}), qos=1)
    a = wait_for(lambda: alarms(t.viewer, device_id=dev.id), what="alarm from MQTT telemetry")[0]
    assert a["status"] == "active" and a["details"]["observed"] == 85.5


def test_rule_duration_and_hysteresis(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    make_rule(t.admin, "temperature > 80", [dev["id"]], duration_ms=60000, hysteresis=5)
    t0 = now_ms() - 3600_000
    # True for 30 s only, then false: no alarm.
    ingest(server, token, [{"ts": t0, "values": {"temperature": 85}}, {"ts": t0 + 30000, "values": {"temperature": 85}},
                           {"ts": t0 + 40000, "values": {"temperature": 70}}])
    # True from t0+100 s on: raised at the first point once it has held for 60 s.
    ingest(server, token, [{"ts": t0 + 100000 + i * 20000, "values": {"temperature": 85}} for i in range(5)])
    a = wait_for(lambda: alarms(t.viewer, device_id=dev["id"]), what="alarm after the duration")[0]
    assert t0 + 160000 <= a["start_ms"] <= t0 + 180000
    # 77 is below 80 but within the hysteresis: still active; 74 clears.
    ingest(server, token, {"ts": t0 + 300000, "values": {"temperature": 77}})
    time.sleep(0.5)
    assert alarms(t.viewer, device_id=dev["id"])[0]["status"] == "active"
    ingest(server, token, {"ts": t0 + 310000, "values": {"temperature": 74}})
    c = wait_for(lambda: [x for x in alarms(t.viewer, device_id=dev["id"]) if x["status"] == "cleared"],
                 what="clear below the hysteresis band")[0]
    assert c["end_ms"] == t0 + 310000


def test_expression_over_two_keys(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    make_rule(t.admin, "supply - return > 3", [dev["id"]], message="Heat exchanger delta too high")
    ingest(server, token, {"supply": 20, "return": 18})
    # Both keys move in one message: the rule sees the pair (30, 29), never (30, 18).
    ingest(server, token, {"supply": 30, "return": 29})
    time.sleep(0.3)
    assert alarms(t.viewer, device_id=dev["id"]) == []
    ingest(server, token, {"supply": 25, "return": 18})
    a = wait_for(lambda: alarms(t.viewer, device_id=dev["id"]), what="expression alarm")[0]
    assert a["message"] == "Heat exchanger delta too high" and a["key"] == "supply,return"
    assert a["details"]["observed"] == 7  # the left side of the comparison (25 - 18)


def test_rule_by_type_filter_covers_new_devices(server, new_tenant):
    t = new_tenant()
    r = t.admin.post("/api/v1/rules", {"name": "boilers", "condition": "pressure >= 10",
                                       "device_filter": {"type": "boiler"}})
    assert r.status_code == 201, r.text
    boiler = t.admin.create_device(type="boiler")
    other = t.admin.create_device(type="pump")
    ingest(server, other["credentials"]["access_token"], {"pressure": 50})
    ingest(server, boiler["credentials"]["access_token"], {"pressure": 12})
    wait_for(lambda: alarms(t.viewer), what="boiler alarm")
    time.sleep(0.3)
    got = alarms(t.viewer)
    assert [a["device_id"] for a in got] == [boiler["id"]]


# ---------------------------------------------------------------------------------------------
# Detectors on the live stream, derived series, backtest
# ---------------------------------------------------------------------------------------------
def noisy(n, seed=1, mean=20.0, sd=0.5):
    rnd = random.Random(seed)
    return [round(rnd.gauss(mean, sd), 3) for _ in range(n)]


def test_zscore_detector_alarm_and_anomaly_score_series(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    det = make_detector(t.admin, "zscore", ["temperature"], [dev["id"]], severity="warning")
    t0 = now_ms() - 10 * 3600_000
    ingest(server, token, series(t0, noisy(300)))
    time.sleep(0.5)
    assert alarms(t.viewer, device_id=dev["id"]) == [], "quiet on clean data"
    ingest(server, token, {"ts": t0 + 300 * 60000, "values": {"temperature": 45.0}})
    a = wait_for(lambda: alarms(t.viewer, device_id=dev["id"]), what="z-score alarm")[0]
    assert a["source"]["type"] == "detector" and a["source"]["id"] == det["id"] and a["severity"] == "warning"
    d = a["details"]
    assert d["observed"] == 45.0 and d["expected_lo"] < 20 < d["expected_hi"] < 45 and d["score"] >= det["threshold"]
    assert "expected" in a["message"]
    # The derived series is queryable like any key; its last value is the spike's score.
    def scores():
        got = t.viewer.raw(dev["id"], "temperature.anomaly_score", t0, t0 + 400 * 60000)
        pts = got.get("temperature.anomaly_score") or []
        return pts if pts and pts[-1]["ts"] == t0 + 300 * 60000 else None
    pts = wait_for(scores, what="the spike's anomaly_score point")
    assert all(0 <= p["value"] <= 1 for p in pts)
    assert pts[-1]["ts"] == t0 + 300 * 60000 and pts[-1]["value"] >= det["threshold"]
    assert max(p["value"] for p in pts[:-1]) < det["threshold"]
    # The engine's counters: points handed to it, and points it has evaluated (equal once idle).
    def drained():
        text = server.metrics()
        total = metric_value(text, "sw_analytics_points_total")
        done = metric_value(text, "sw_analytics_points_done_total")
        return total is not None and total >= 301 and done == total
    wait_for(drained, what="sw_analytics_points_done_total to reach sw_analytics_points_total")


def test_backtest_has_no_side_effects(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    t0 = now_ms() - 20 * 3600_000
    values = noisy(400, seed=7)
    values[250] = 40.0
    ingest(server, token, series(t0, values))
    det = make_detector(t.admin, "zscore", ["temperature"], [dev["id"]], enabled=False)
    r = t.viewer.post(f"/api/v1/detectors/{det['id']}/backtest", {"from": t0, "to": t0 + 400 * 60000})
    assert r.status_code == 200, r.text
    bt = r.json()
    assert bt["points_scanned"] == 400 and bt["truncated"] is False
    (s,) = bt["series"]
    assert s["device_id"] == dev["id"] and s["key"] == "temperature"
    assert len(s["alarms"]) == 1 and s["alarms"][0]["start_ms"] == t0 + 250 * 60000
    assert s["alarms"][0]["peak_score"] >= det["threshold"] and s["alarms"][0]["observed"] == 40.0
    assert all(len(p) == 3 for p in s["points"]) and len(s["points"]) <= 2000
    # Preview of an unsaved definition, with a stricter threshold: still one alarm.
    r = t.viewer.post("/api/v1/detectors/backtest", {
        "detector": {"name": "preview", "kind": "zscore", "keys": ["temperature"], "threshold": 0.95},
        "from": t0, "to": t0 + 400 * 60000, "device_id": dev["id"]})
    assert r.status_code == 200, r.text
    assert len(r.json()["series"][0]["alarms"]) == 1
    # clear_after: the alarm ends after that many points below the threshold (default 5).
    assert s["alarms"][0]["end_ms"] == t0 + 255 * 60000, s["alarms"][0]
    r = t.viewer.post("/api/v1/detectors/backtest", {
        "detector": {"name": "preview", "kind": "zscore", "keys": ["temperature"], "params": {"clear_after": 20}},
        "from": t0, "to": t0 + 400 * 60000, "device_id": dev["id"]})
    assert r.status_code == 200, r.text
    (late,) = r.json()["series"][0]["alarms"]
    assert late["start_ms"] == t0 + 250 * 60000 and late["end_ms"] == t0 + 270 * 60000, late
    assert_problem(t.viewer.post("/api/v1/detectors/backtest", {
        "detector": {"name": "p", "kind": "zscore", "keys": ["a"], "params": {"clear_after": 0}},
        "from": t0, "to": t0 + 60000, "device_id": dev["id"]}), 400, "invalid_argument", "detector.params.clear_after")
    assert_problem(t.viewer.post("/api/v1/detectors/backtest", {"detector": {"name": "p", "kind": "x", "keys": ["a"]}}),
                   400, "invalid_argument", "detector.kind")
    assert_problem(t.viewer.post(f"/api/v1/detectors/{det['id']}/backtest", {"from": 10, "to": 5}), 400)
    # Nothing was stored: no alarm, no derived series.
    assert alarms(t.viewer, device_id=dev["id"]) == []
    got = t.viewer.raw(dev["id"], "temperature.anomaly_score", t0, t0 + 400 * 60000)
    assert not got.get("temperature.anomaly_score")


def test_multivariate_backtest_finds_broken_relation(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    rnd = random.Random(3)
    t0 = now_ms() - 30 * 3600_000
    pts = []
    for i in range(600):
        a = 50 + 10 * math.sin(i / 15) + rnd.gauss(0, 0.3)
        b = 2 * a + rnd.gauss(0, 0.3)
        if 450 <= i < 470:
            b = 2 * (50 - 10 * math.sin(i / 15)) + rnd.gauss(0, 0.3)  # each in range, relation broken
        pts.append({"ts": t0 + i * 60000, "values": {"flow": round(a, 3), "power": round(b, 3)}})
    ingest(server, token, pts)
    det = make_detector(t.admin, "multivariate", ["flow", "power"], [dev["id"]], enabled=False)
    bt = t.viewer.post(f"/api/v1/detectors/{det['id']}/backtest", {"from": t0, "to": t0 + 600 * 60000}).json()
    (s,) = bt["series"]
    assert s["key"] == "flow,power"
    starts = [a["start_ms"] for a in s["alarms"]]
    assert starts, "the broken relation is found"
    assert all(t0 + 440 * 60000 <= x <= t0 + 475 * 60000 for x in starts), starts


# ---------------------------------------------------------------------------------------------
# WebSocket, isolation, deletion
# ---------------------------------------------------------------------------------------------
def ws_connect(server, token):
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/api/v1/ws?token={token}", timeout=WAIT)
    ws.send(json.dumps({"type": "subscribe", "sub": "al", "stream": "alarms"}))
    return ws


def ws_next(ws, type_, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            m = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            continue
        if m.get("type") == type_:
            return m
    return None


def test_alarms_stream_over_websocket_and_stay_in_tenant(server, new_tenant):
    t, other = new_tenant(), new_tenant()
    dev = t.device()
    make_rule(t.admin, "level > 5", [dev["id"]])
    mine, theirs = ws_connect(server, t.viewer.token), ws_connect(server, other.viewer.token)
    try:
        assert ws_next(mine, "subscribed") and ws_next(theirs, "subscribed")
        ingest(server, dev["credentials"]["access_token"], {"level": 9})
        m = ws_next(mine, "alarm")
        assert m and m["sub"] == "al" and m["alarm"]["device_id"] == dev["id"] and m["alarm"]["status"] == "active"
        t.admin.post(f"/api/v1/alarms/{m['alarm']['id']}/ack")
        m2 = ws_next(mine, "alarm")
        assert m2 and m2["alarm"]["status"] == "acknowledged"
        assert ws_next(theirs, "alarm", timeout=1.0) is None
        assert alarms(other.viewer) == []
        assert_problem(other.viewer.get(f"/api/v1/alarms/{m['alarm']['id']}"), 404, "not_found")
        assert_problem(other.admin.post(f"/api/v1/alarms/{m['alarm']['id']}/clear"), 404, "not_found")
        assert_problem(other.viewer.post(f"/api/v1/alarms/{m['alarm']['id']}/ack"), 404, "not_found")
    finally:
        mine.close()
        theirs.close()


def test_deleting_a_rule_clears_its_alarms_and_deleting_a_device_drops_them(server, new_tenant):
    t = new_tenant()
    dev, dev2 = t.device(), t.device()
    rule = make_rule(t.admin, "v > 1", [dev["id"], dev2["id"]])
    ingest(server, dev["credentials"]["access_token"], {"v": 2})
    ingest(server, dev2["credentials"]["access_token"], {"v": 2})
    wait_for(lambda: len(alarms(t.viewer, status="open")) == 2, what="two alarms")
    assert t.admin.delete(f"/api/v1/devices/{dev2['id']}").status_code == 204
    assert alarms(t.viewer, device_id=dev2["id"]) == []
    assert t.admin.delete(f"/api/v1/rules/{rule['id']}").status_code == 204
    (a,) = alarms(t.viewer)
    assert a["status"] == "cleared" and a["cleared_by"] == "deleted"


# ---------------------------------------------------------------------------------------------
# Restart, inactivity
# ---------------------------------------------------------------------------------------------
def test_state_survives_restart_without_false_alarms(make_server):
    srv = make_server(env={"SW_ACCESS_TOKEN_TTL_S": "3600", "SW_DEVICE_MAX_MSGS_PER_S": "100000",
                           "SW_DEVICE_BURST": "100000"}, name="analytics-restart")
    t = TenantCtx(srv, srv.admin())
    dev = t.device()
    token = dev["credentials"]["access_token"]
    make_detector(t.admin, "zscore", ["temperature"], [dev["id"]])
    t0 = now_ms() - 10 * 3600_000
    ingest(srv, token, series(t0, noisy(200, seed=5)))
    time.sleep(0.5)
    srv.restart()  # SIGTERM: the engine checkpoints its state
    assert list((srv.data_dir / "analytics").glob("worker-*.ckpt"))
    # Normal points after the restart: still quiet (no warm-up burst) ...
    ingest(srv, token, series(t0 + 200 * 60000, noisy(5, seed=6)))
    time.sleep(0.5)
    assert alarms(t.viewer, device_id=dev["id"]) == []
    # ... and a spike right after is caught at once: the detector did not start learning again
    # (a fresh z-score detector needs dozens of points before it scores anything).
    ingest(srv, token, {"ts": t0 + 205 * 60000, "values": {"temperature": 40.0}})
    got = wait_for(lambda: alarms(t.viewer, device_id=dev["id"]), what="alarm after restart")
    assert len(got) == 1 and got[0]["start_ms"] == t0 + 205 * 60000


def test_inactivity_detector_raises_when_a_device_goes_quiet(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    det = make_detector(t.admin, "missing", ["heartbeat"], [dev["id"]])
    now = now_ms()
    # A point every second for the last 60 s, then silence.
    ingest(server, token, [{"ts": now - 60000 + i * 1000, "values": {"heartbeat": 1}} for i in range(61)])
    a = wait_for(lambda: alarms(t.viewer, device_id=dev["id"]), timeout=20, what="inactivity alarm")[0]
    assert a["source"]["id"] == det["id"] and a["key"] == "heartbeat" and "no data" in a["message"]


# ---------------------------------------------------------------------------------------------
# Insights
# ---------------------------------------------------------------------------------------------
def test_forecast_and_insights(server, new_tenant):
    t = new_tenant()
    dev = t.device()
    token = dev["credentials"]["access_token"]
    step = 600_000  # 10 min
    now = now_ms() // step * step
    t0 = now - 4 * 86400_000
    pts = []
    for i in range(4 * 144):
        ts = t0 + i * step
        if t0 + 86400_000 <= ts < t0 + 86400_000 + 6 * 3600_000:
            continue  # a 6-hour gap
        v = 20 + 5 * math.sin(2 * math.pi * (ts % 86400_000) / 86400_000) + 0.01 * i
        pts.append({"ts": ts, "values": {"temperature": round(v, 3)}})
    ingest(server, token, pts)
    r = t.viewer.get(f"/api/v1/devices/{dev['id']}/forecast", params={"key": "temperature", "horizon": "12h"})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["key"] == "temperature" and fc["points"]
    assert fc["points"][-1][0] - fc["points"][0][0] <= 12 * 3600_000
    for ts, yhat, lo, hi in fc["points"]:
        assert lo <= yhat <= hi and 10 < yhat < 32
    r = t.viewer.get(f"/api/v1/devices/{dev['id']}/insights",
                     params={"key": "temperature", "from": t0, "to": now, "min": 0, "max": 24})
    assert r.status_code == 200, r.text
    ins = r.json()
    assert ins["points"] == len(pts)
    assert ins["trend"]["slope_per_day"] == pytest.approx(0.01 * 144, rel=0.5)
    q = ins["quality"]
    assert q["expected_interval_ms"] == step and q["gap_count"] >= 1
    assert any(g["from"] <= t0 + 86400_000 and g["to"] >= t0 + 86400_000 + 6 * 3600_000 - step for g in q["gaps"])
    assert 0 < q["out_of_range_share"] < 0.7 and q["range"] == {"lo": 0, "hi": 24, "source": "given"}
    assert_problem(t.viewer.get(f"/api/v1/devices/{dev['id']}/forecast", params={"key": "temperature",
                                                                                 "horizon": "90d"}), 400)
    assert_problem(t.viewer.get(f"/api/v1/devices/{dev['id']}/insights", params={}), 400, "invalid_argument", "key")
    assert_problem(t.viewer.get(f"/api/v1/devices/{UNKNOWN}/forecast", params={"key": "x"}), 404)


# ---------------------------------------------------------------------------------------------
# Webhooks: a real alarm reaches a receiver, signed
# ---------------------------------------------------------------------------------------------
class Receiver(http.server.BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_alarm_reaches_webhook_with_signature(server, new_tenant):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Receiver.got = []
    try:
        t = new_tenant()
        dev = t.device()
        r = t.admin.post("/api/v1/webhooks", {"name": "ops", "url": f"http://127.0.0.1:{httpd.server_port}/hook",
                                              "min_severity": "major"})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        make_rule(t.admin, "x > 1", [dev["id"]], severity="critical")
        make_rule(t.admin, "y > 1", [dev["id"]], severity="info")  # below min_severity: not sent
        ingest(server, dev["credentials"]["access_token"], {"x": 2, "y": 2})
        events = wait_for(lambda: [json.loads(b) for h, b in Receiver.got
                                   if json.loads(b).get("event") == "alarm.raised"], what="webhook delivery")
        headers, body = next((h, b) for h, b in Receiver.got if json.loads(b).get("event") == "alarm.raised")
        ts = headers["X-Sensoworks-Timestamp"]
        expected = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["X-Sensoworks-Signature"] == "sha256=" + expected
        (ev,) = events
        assert ev["alarm"]["key"] == "x" and ev["alarm"]["severity"] == "critical" and ev["tenant_id"] == t.id
    finally:
        httpd.shutdown()


def test_damaged_checkpoint_does_not_stop_the_server(make_server):
    srv = make_server(name="analytics-damaged", start=False)
    ckpt = srv.data_dir / "analytics"
    ckpt.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(11)
    # Right magic, then records whose fields hold separators, huge lengths and random bytes.
    body = bytearray(b"SWAC1")
    for _ in range(50):
        rec = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80))).replace(b"\x00", b"|")
        body += len(rec).to_bytes(4, "little") + rec
    # And one well-formed record of an unknown tenant whose definition id holds '|': kept as it is
    # and written back at the next checkpoint (at stop).
    def field(x: bytes) -> bytes:
        return len(x).to_bytes(4, "little") + x
    rec = (field(str(uuid.uuid4()).encode()) + field(str(uuid.uuid4()).encode()) + field(b"dev")
           + (1).to_bytes(4, "little") + field(b"a|b|c") + (1).to_bytes(8, "little") + field(b"k")
           + (0).to_bytes(4, "little") + field(b"state"))
    body += field(rec)
    (ckpt / "worker-0.ckpt").write_bytes(bytes(body))
    (ckpt / "worker-1.ckpt").write_bytes(b"not a checkpoint")
    srv.start()
    t = TenantCtx(srv, srv.admin())
    dev = t.device()
    make_rule(t.admin, "x > 1", [dev["id"]])
    ingest(srv, dev["credentials"]["access_token"], {"x": 5})
    wait_for(lambda: alarms(t.viewer, device_id=dev["id"]), what="alarm after a damaged checkpoint")
    assert srv.stop() == 0
