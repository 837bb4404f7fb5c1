"""POST /api/v1/telemetry/query: many devices in one request, exact values, isolation, bad input."""
import pytest

from swtest import T0, assert_problem

S = 1000
M = 60 * S
H = 60 * M


@pytest.fixture(scope="module")
def fleet(server, tenant):
    """Three devices; device i has key k = i*100 + j at T0 + j*30 s for j in 0..239 (2 hours)."""
    devices = []
    for i in range(3):
        d = tenant.device()
        body = [{"ts": T0 + j * 30 * S, "values": {"k": i * 100 + j}} for j in range(240)]
        assert server.ingest_ok(d["credentials"]["access_token"], body) == 240
        devices.append(d)
    return devices


def expected_hourly_avg(i, frm, to):
    buckets = {}
    for j in range(240):
        ts = T0 + j * 30 * S
        if frm <= ts < to:
            buckets.setdefault(ts - ts % H, []).append(i * 100 + j)
    return [{"ts": b, "value": sum(v) / len(v)} for b, v in sorted(buckets.items())]


def test_aggregates_for_every_device_in_request_order(tenant, fleet):
    frm, to = T0 - T0 % H, T0 - T0 % H + 4 * H
    ids = [d["id"] for d in reversed(fleet)]
    r = tenant.viewer.post("/api/v1/telemetry/query",
                           json={"device_ids": ids, "keys": ["k"], "from": frm, "to": to, "agg": "avg", "interval": "1h"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["device_id"] for x in results] == ids
    for x in results:
        i = [d["id"] for d in fleet].index(x["device_id"])
        assert x["series"]["k"] == pytest.approx(expected_hourly_avg(i, frm, to))


def test_raw_points_with_limit(tenant, fleet):
    r = tenant.admin.post("/api/v1/telemetry/query",
                          json={"device_ids": [fleet[1]["id"]], "keys": ["k", "missing"], "from": T0, "to": T0 + H,
                                "limit": 5})
    assert r.status_code == 200, r.text
    series = r.json()["results"][0]["series"]
    assert series["k"] == [{"ts": T0 + j * 30 * S, "value": 100 + j} for j in range(5)]
    assert series["missing"] == []


def test_foreign_device_is_not_found_and_leaks_nothing(server, tenant, new_tenant, fleet):
    other = new_tenant()
    r = other.admin.post("/api/v1/telemetry/query",
                         json={"device_ids": [fleet[0]["id"]], "keys": ["k"], "from": T0, "to": T0 + H})
    assert_problem(r, 404)
    mine = other.device()
    r = other.admin.post("/api/v1/telemetry/query",
                         json={"device_ids": [mine["id"], fleet[0]["id"]], "keys": ["k"], "from": T0, "to": T0 + H})
    assert_problem(r, 404)
    assert "results" not in r.text


def test_sysadmin_is_refused(sysadmin, fleet):
    r = sysadmin.post("/api/v1/telemetry/query",
                      json={"device_ids": [fleet[0]["id"]], "keys": ["k"], "from": T0, "to": T0 + H})
    assert_problem(r, 403)


@pytest.mark.parametrize("body,field", [
    ({"keys": ["k"], "from": 0, "to": 1}, "device_ids"),
    ({"device_ids": [], "keys": ["k"], "from": 0, "to": 1}, "device_ids"),
    ({"device_ids": ["x"], "keys": [], "from": 0, "to": 1}, "keys"),
    ({"device_ids": ["x"], "keys": [1], "from": 0, "to": 1}, "keys"),
    ({"device_ids": ["x"], "keys": ["k"], "to": 1}, "from"),
    ({"device_ids": ["x"], "keys": ["k"], "from": 0}, "to"),
    ({"device_ids": ["x"], "keys": ["k"], "from": 0, "to": 1, "agg": "median", "interval": "1m"}, "agg"),
    ({"device_ids": ["x"], "keys": ["k"], "from": 0, "to": 1, "agg": "avg", "interval": "1y"}, "interval"),
    ({"device_ids": ["x"], "keys": ["k"], "from": 0, "to": 10**12, "agg": "avg", "interval": "1"}, "interval"),
    ({"device_ids": ["x"], "keys": ["k"], "from": 0, "to": 1, "limit": 0}, "limit"),
])
def test_bad_input(tenant, body, field):
    assert_problem(tenant.admin.post("/api/v1/telemetry/query", json=body), 400, field=field)


def test_needs_bearer(server):
    r = server.client().post("/api/v1/telemetry/query", json={})
    assert_problem(r, 401)
