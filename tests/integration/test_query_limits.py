"""Bounds that keep one request from exhausting the server: response budgets, validated
numbers that must not wrap, non-finite SenML sums, query keys that are not UTF-8."""
import pytest

from swtest import T0, assert_problem


@pytest.fixture(scope="module")
def device(tenant):
    return tenant.device()


def test_raw_query_over_point_budget_is_refused(tenant, device):
    keys = ",".join(f"k{i}" for i in range(100))
    r = tenant.viewer.get(f"/api/v1/devices/{device['id']}/telemetry",
                          params={"keys": keys, "from": 0, "to": T0, "limit": 100000})
    assert_problem(r, 400, field="limit")


def test_aggregate_over_bucket_budget_is_refused(tenant, device):
    keys = ",".join(f"k{i}" for i in range(100))
    r = tenant.viewer.get(f"/api/v1/devices/{device['id']}/telemetry",
                          params={"keys": keys, "from": 0, "to": 100000 * 60000, "agg": "avg", "interval": "1m"})
    assert_problem(r, 400, field="interval")


def test_batch_query_over_budget_is_refused(tenant, device):
    body = {"device_ids": [device["id"]] * 50, "keys": [f"k{i}" for i in range(100)], "from": 0, "to": T0,
            "limit": 1000}
    assert_problem(tenant.viewer.post("/api/v1/telemetry/query", json=body), 400, field="limit")


def test_retention_days_that_would_wrap_are_rejected(sysadmin):
    r = sysadmin.post("/api/v1/tenants", json={"name": "wrap-test", "retention_days": -4294967291})
    assert_problem(r, 400, field="retention_days")


def test_senml_base_value_overflow_is_rejected(server, device):
    body = '[{"bn":"x","bv":1e308,"n":"a","v":1e308}]'
    r = server.ingest(device["credentials"]["access_token"], body, content_type="application/senml+json")
    assert_problem(r, 400, field="[0].v")


def test_non_utf8_key_in_query_gives_valid_json(tenant, device):
    r = tenant.viewer.get(f"/api/v1/devices/{device['id']}/telemetry?keys=%FF%FEa&from=0&to=1")
    assert r.status_code == 200, r.text
    assert len(r.json()) == 1  # parses as JSON


def test_connections_beyond_the_cap_are_closed(make_server):
    import socket
    import time

    srv = make_server(env={"SW_HTTP_MAX_CONNECTIONS": "2"}, name="conncap")
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(2)]
    try:
        time.sleep(0.3)  # let the server register both sessions
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = extra.recv(4096)
        except ConnectionResetError:
            data = b""
        assert data == b"", f"a connection over the cap was served: {data[:100]!r}"
        extra.close()
    finally:
        for c in idle:
            c.close()
    # Once the idle ones are gone, new connections are served again.
    deadline = time.time() + 10
    while True:
        try:
            r = srv.client().get("/healthz")
            if r.status_code == 200:
                break
        except Exception:
            pass
        assert time.time() < deadline, "server did not accept connections after the idle ones closed"
        time.sleep(0.2)
