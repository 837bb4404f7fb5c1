"""REST side of the MQTT work: MQTT basic credentials, the gateway flag, the device connection
state, and server-to-device RPC as far as it can be driven without a live MQTT device (offline
devices, validation, queued requests, waiting without holding a handler thread, drain).
Tests that need a connected MQTT device live with the MQTT tests."""
import threading
import time
import uuid

import pytest

from swtest import Client, TenantCtx, assert_problem, metric_value, unique

UNKNOWN_ID = str(uuid.uuid4())
STATE_FIELDS = ("online", "last_connect", "last_disconnect", "last_activity")


def mqtt_path(device_id: str) -> str:
    return f"/api/v1/devices/{device_id}/credentials/mqtt-basic"


def put_mqtt(client: Client, device_id: str, body):
    return client.request("PUT", mqtt_path(device_id), json=body)


def rpc(client: Client, device_id: str, body):
    return client.post(f"/api/v1/devices/{device_id}/rpc", body)


def wait_inflight(server, n: int, timeout: float = 10.0) -> None:
    """Waits until at least n HTTP requests are in flight (the /metrics request itself included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (metric_value(server.metrics(), "sw_http_inflight") or 0) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} requests in flight after {timeout}s")


# ---------------------------------------------------------------------------------------------
# MQTT basic credentials
# ---------------------------------------------------------------------------------------------
def test_mqtt_basic_crud(tenant):
    d = tenant.device()
    path = mqtt_path(d["id"])
    assert_problem(tenant.admin.get(path), 404)

    username = unique("mqtt-user")
    r = put_mqtt(tenant.admin, d["id"], {"username": username, "password": "password-1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"username": username, "client_id": None}
    r = tenant.admin.get(path)
    assert r.status_code == 200, r.text
    assert r.json() == {"username": username, "client_id": None}

    # PUT replaces: new username, a client id.
    username2 = unique("mqtt-user")
    r = put_mqtt(tenant.admin, d["id"], {"username": username2, "password": "password-2", "client_id": "cid-1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"username": username2, "client_id": "cid-1"}
    got = tenant.viewer.get(path)
    assert got.status_code == 200, got.text
    assert got.json() == {"username": username2, "client_id": "cid-1"}
    # The password (or its hash) never comes back.
    assert "password" not in got.text and "argon2" not in got.text

    # The old username is free again for another device.
    other = tenant.device()
    r = put_mqtt(tenant.admin, other["id"], {"username": username, "password": "password-3"})
    assert r.status_code == 200, r.text

    r = tenant.admin.delete(path)
    assert r.status_code == 204, r.text
    assert_problem(tenant.admin.get(path), 404)
    assert_problem(tenant.admin.delete(path), 404)
    # The access token is a separate credential and keeps working.
    assert tenant.server.ingest(d["credentials"]["access_token"], {"v": 1}).status_code == 200


def test_mqtt_basic_duplicate_username_409(tenant, new_tenant):
    username = unique("taken")
    a = tenant.device()
    b = tenant.device()
    assert put_mqtt(tenant.admin, a["id"], {"username": username, "password": "password-1"}).status_code == 200
    assert_problem(put_mqtt(tenant.admin, b["id"], {"username": username, "password": "password-1"}), 409,
                   "already_exists")
    assert_problem(tenant.admin.get(mqtt_path(b["id"])), 404)
    # Usernames are unique across tenants too (a device connects with the username alone).
    other = new_tenant()
    c = other.device()
    assert_problem(put_mqtt(other.admin, c["id"], {"username": username, "password": "password-1"}), 409,
                   "already_exists")
    # The same device may set its own username again (new password).
    assert put_mqtt(tenant.admin, a["id"], {"username": username, "password": "password-2"}).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"password": "password-1"}, "username"),
    ({"username": "", "password": "password-1"}, "username"),
    ({"username": 12, "password": "password-1"}, "username"),
    ({"username": "app", "password": "password-1"}, "username"),
    ({"username": "u" * 129, "password": "password-1"}, "username"),
    ({"username": "bad\u0000name", "password": "password-1"}, "username"),
    ({"username": "{unique}"}, "password"),
    ({"username": "{unique}", "password": "short"}, "password"),
    ({"username": "{unique}", "password": "1234567"}, "password"),
    ({"username": "{unique}", "password": 12345678}, "password"),
    ({"username": "{unique}", "password": "password-1", "client_id": 5}, "client_id"),
    ({"username": "{unique}", "password": "password-1", "client_id": "c" * 257}, "client_id"),
])
def test_mqtt_basic_validation_400(tenant, body, field):
    d = tenant.device()
    body = dict(body)
    if body.get("username") == "{unique}":
        body["username"] = unique("u")
    assert_problem(put_mqtt(tenant.admin, d["id"], body), 400, field=field)
    assert_problem(tenant.admin.get(mqtt_path(d["id"])), 404)


def test_mqtt_basic_malformed_body_400(tenant):
    d = tenant.device()
    r = tenant.admin.request("PUT", mqtt_path(d["id"]), data=b"{", headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    assert_problem(put_mqtt(tenant.admin, d["id"], ["x"]), 400)


def test_mqtt_basic_limits_accept_edges(tenant):
    d = tenant.device()
    name = "é" * 128  # 128 characters, 256 bytes
    r = put_mqtt(tenant.admin, d["id"], {"username": name, "password": "12345678", "client_id": "c" * 256})
    assert r.status_code == 200, r.text
    assert r.json() == {"username": name, "client_id": "c" * 256}
    # An empty client id means "any client id".
    r = put_mqtt(tenant.admin, d["id"], {"username": name, "password": "12345678", "client_id": ""})
    assert r.status_code == 200, r.text
    assert r.json()["client_id"] is None


def test_mqtt_basic_viewer_403(tenant):
    d = tenant.device()
    username = unique("viewer-try")
    assert_problem(put_mqtt(tenant.viewer, d["id"], {"username": username, "password": "password-1"}), 403)
    assert put_mqtt(tenant.admin, d["id"], {"username": username, "password": "password-1"}).status_code == 200
    assert_problem(tenant.viewer.delete(mqtt_path(d["id"])), 403)
    assert tenant.viewer.get(mqtt_path(d["id"])).json()["username"] == username


def test_mqtt_basic_cross_tenant_404(tenant, new_tenant):
    d = tenant.device()
    username = unique("owned")
    assert put_mqtt(tenant.admin, d["id"], {"username": username, "password": "password-1"}).status_code == 200
    other = new_tenant()
    for client in (other.admin, other.viewer):
        assert_problem(client.get(mqtt_path(d["id"])), 404)
        assert_problem(put_mqtt(client, d["id"], {"username": unique("x"), "password": "password-1"}), 404)
        assert_problem(client.delete(mqtt_path(d["id"])), 404)
    for client in (tenant.admin, tenant.viewer):
        assert_problem(client.get(mqtt_path(UNKNOWN_ID)), 404)
    assert_problem(put_mqtt(tenant.admin, UNKNOWN_ID, {"username": unique("x"), "password": "password-1"}), 404)
    assert_problem(tenant.admin.delete(mqtt_path(UNKNOWN_ID)), 404)
    # Untouched for its owner.
    assert tenant.admin.get(mqtt_path(d["id"])).json()["username"] == username


def test_mqtt_basic_sysadmin_403(tenant, sysadmin):
    d = tenant.device()
    assert_problem(sysadmin.get(mqtt_path(d["id"])), 403)
    assert_problem(put_mqtt(sysadmin, d["id"], {"username": unique("x"), "password": "password-1"}), 403)


def test_mqtt_basic_needs_bearer(server, tenant):
    d = tenant.device()
    anonymous = Client(server)
    assert_problem(anonymous.get(mqtt_path(d["id"])), 401)
    assert_problem(put_mqtt(anonymous, d["id"], {"username": unique("x"), "password": "password-1"}), 401)


def test_device_delete_removes_mqtt_credentials(tenant):
    d = tenant.device()
    username = unique("gone")
    assert put_mqtt(tenant.admin, d["id"], {"username": username, "password": "password-1"}).status_code == 200
    assert tenant.admin.delete(f"/api/v1/devices/{d['id']}").status_code == 204
    assert_problem(tenant.admin.get(mqtt_path(d["id"])), 404)
    # The username was released with the device.
    other = tenant.device()
    assert put_mqtt(tenant.admin, other["id"], {"username": username, "password": "password-1"}).status_code == 200


def test_token_regeneration_keeps_mqtt_credentials(tenant):
    d = tenant.device()
    username = unique("keep")
    assert put_mqtt(tenant.admin, d["id"], {"username": username, "password": "password-1"}).status_code == 200
    assert tenant.admin.post(f"/api/v1/devices/{d['id']}/credentials").status_code == 200
    assert tenant.admin.get(mqtt_path(d["id"])).json()["username"] == username


# ---------------------------------------------------------------------------------------------
# Gateway flag and connection state
# ---------------------------------------------------------------------------------------------
def assert_offline(d: dict):
    assert d["online"] is False, d
    for k in ("last_connect", "last_disconnect", "last_activity"):
        assert k in d and d[k] is None, (k, d)


def test_gateway_flag_round_trip(tenant):
    r = tenant.admin.post("/api/v1/devices", {"name": unique("gw"), "gateway": True})
    assert r.status_code == 201, r.text
    gw = r.json()
    assert gw["gateway"] is True and gw["gateway_id"] is None
    plain = tenant.device()
    assert plain["gateway"] is False and plain["gateway_id"] is None
    r = tenant.admin.post("/api/v1/devices", {"name": unique("not-gw"), "gateway": False})
    assert r.status_code == 201 and r.json()["gateway"] is False

    got = tenant.viewer.get(f"/api/v1/devices/{gw['id']}").json()
    assert got["gateway"] is True and got["gateway_id"] is None
    listed = {d["id"]: d for d in tenant.admin.list_all("/api/v1/devices", page_size=1000)}
    assert listed[gw["id"]]["gateway"] is True
    assert listed[plain["id"]]["gateway"] is False
    # A patch keeps the flag.
    r = tenant.admin.patch(f"/api/v1/devices/{gw['id']}", {"type": "edge"})
    assert r.status_code == 200, r.text
    assert r.json()["gateway"] is True


@pytest.mark.parametrize("value", ["yes", 1, [], {}])
def test_gateway_flag_must_be_boolean(tenant, value):
    assert_problem(tenant.admin.post("/api/v1/devices", {"name": unique("gw"), "gateway": value}), 400,
                   field="gateway")


def test_device_json_has_offline_state(tenant):
    created = tenant.device()
    assert_offline(created)
    got = tenant.admin.get(f"/api/v1/devices/{created['id']}")
    assert got.status_code == 200, got.text
    d = got.json()
    assert set(d) >= {"id", "tenant_id", "name", "type", "labels", "created_at", "gateway", "gateway_id",
                      *STATE_FIELDS}
    assert_offline(d)
    listed = [x for x in tenant.viewer.list_all("/api/v1/devices", page_size=1000) if x["id"] == created["id"]]
    assert len(listed) == 1
    assert_offline(listed[0])
    assert listed[0]["gateway_id"] is None


# ---------------------------------------------------------------------------------------------
# Server-to-device RPC (devices that are not connected)
# ---------------------------------------------------------------------------------------------
def test_rpc_to_offline_device_409(tenant):
    d = tenant.device()
    for body in ({"method": "reboot"}, {"method": "reboot", "oneway": True},
                 {"method": "set", "params": {"v": 1}, "timeout_ms": 500, "queue": False}):
        assert_problem(rpc(tenant.admin, d["id"], body), 409, "device_offline")


@pytest.mark.parametrize("body, field", [
    ({}, "method"),
    ({"method": ""}, "method"),
    ({"method": 5}, "method"),
    ({"method": None}, "method"),
    ({"method": "m" * 257}, "method"),
    ({"method": "m", "timeout_ms": 0}, "timeout_ms"),
    ({"method": "m", "timeout_ms": -1}, "timeout_ms"),
    ({"method": "m", "timeout_ms": 600001}, "timeout_ms"),
    ({"method": "m", "timeout_ms": 1.5}, "timeout_ms"),
    ({"method": "m", "timeout_ms": "100"}, "timeout_ms"),
    ({"method": "m", "oneway": "true"}, "oneway"),
    ({"method": "m", "queue": 1}, "queue"),
])
def test_rpc_validation_400(tenant, body, field):
    d = tenant.device()
    assert_problem(rpc(tenant.admin, d["id"], body), 400, field=field)


def test_rpc_malformed_body_400(tenant):
    d = tenant.device()
    r = tenant.admin.post(f"/api/v1/devices/{d['id']}/rpc", data=b"{\"method\":", headers={"Content-Type": "application/json"})
    assert_problem(r, 400, field="body")
    assert_problem(rpc(tenant.admin, d["id"], ["reboot"]), 400, field="body")


def test_rpc_access(tenant, new_tenant, sysadmin):
    d = tenant.device()
    assert_problem(rpc(tenant.viewer, d["id"], {"method": "reboot"}), 403)
    assert_problem(rpc(sysadmin, d["id"], {"method": "reboot"}), 403)
    other = new_tenant()
    assert_problem(rpc(other.admin, d["id"], {"method": "reboot"}), 404)
    assert_problem(rpc(other.viewer, d["id"], {"method": "reboot"}), 404)
    assert_problem(rpc(tenant.admin, UNKNOWN_ID, {"method": "reboot"}), 404)
    assert_problem(rpc(Client(tenant.server), d["id"], {"method": "reboot"}), 401)


def test_rpc_queued_for_offline_device(tenant):
    d = tenant.device()
    r = rpc(tenant.admin, d["id"], {"method": "reboot", "oneway": True, "queue": True, "timeout_ms": 60000})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and isinstance(body["id"], int)
    # Two-way and queued: waits for a reply that never comes.
    assert_problem(rpc(tenant.admin, d["id"], {"method": "get", "queue": True, "timeout_ms": 300}), 504, "timeout")


def test_rpc_waiting_holds_no_handler_thread(make_server):
    """Two-way calls waiting for their reply do not occupy the (single) handler thread."""
    server = make_server(env={"SW_API_THREADS": "1"}, name="rpc-wait")
    ctx = TenantCtx(server, server.admin())
    d = ctx.device()
    results = []

    def call():
        results.append(rpc(Client(server, ctx.admin.token), d["id"],
                           {"method": "slow", "queue": True, "timeout_ms": 5000}))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    wait_inflight(server, 4)  # the three calls are waiting (and /metrics was served meanwhile)
    # Other requests are served while they wait.
    for _ in range(5):
        r = ctx.viewer.get(f"/api/v1/devices/{d['id']}")
        assert r.status_code == 200, r.text
    assert all(t.is_alive() for t in threads), "the RPC calls returned before their timeout"
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 3
    for r in results:
        assert_problem(r, 504, "timeout")


def test_rpc_waiting_at_shutdown_is_answered_and_drained(make_server):
    """SIGTERM drains: a call waiting for its device still gets its answer, then the server exits 0."""
    server = make_server(name="rpc-drain")
    ctx = TenantCtx(server, server.admin())
    d = ctx.device()
    result = {}

    def call():
        result["r"] = rpc(ctx.admin, d["id"], {"method": "slow", "queue": True, "timeout_ms": 2000})

    t = threading.Thread(target=call)
    t.start()
    wait_inflight(server, 2)
    rc = server.stop()
    t.join(timeout=30)
    assert rc == 0, server.logs()
    r = result.get("r")
    assert r is not None, "the waiting RPC got no response"
    assert r.status_code in (409, 504), r.text
    assert_problem(r, r.status_code, "timeout" if r.status_code == 504 else "device_offline")
