"""Server-to-device RPC over REST (two-way, one-way, offline, queued, timeout), device-to-server
RPC (getCurrentTime), device-to-application RPC forwarding, and the gateway API (sub-devices,
telemetry, attributes, RPC through v1/gateway/rpc)."""
import json
import threading
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import T0, assert_problem, unique

REQ = "v1/devices/me/rpc/request/+"


@pytest.fixture
def dev(tenant):
    return create_device(tenant)


def rpc(tenant, device_id, body, client=None):
    return (client or tenant.admin).post(f"/api/v1/devices/{device_id}/rpc", body)


def echo_handler(client, m):
    """Device side: answer every RPC request with {"method","echo"}."""
    if not m.topic.startswith("v1/devices/me/rpc/request/"):
        return
    n = m.topic.rsplit("/", 1)[1]
    req = json.loads(m.payload)
    client.c.publish(f"v1/devices/me/rpc/response/{n}",
                     json.dumps({"method": req.get("method"), "echo": req.get("params")}), 1)


def responder(server, dev, version=V5, handler=echo_handler, **kw):
    c = device_client(server, dev, version=version, **kw)
    c.handler = handler  # before subscribing: a queued request arrives right after the SUBACK
    assert c.subscribe(REQ, 1) == [1]
    return c


# ---------------------------------------------------------------------------------------------
# server-to-device RPC
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_rpc_two_way(server, tenant, dev, version):
    c = responder(server, dev, version)
    r = rpc(tenant, dev.id, {"method": "setTemp", "params": {"t": 21.5, "unit": "C"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["id"], int)
    assert body["response"] == {"method": "setTemp", "echo": {"t": 21.5, "unit": "C"}}
    m = c.messages.wait_one()
    assert m.topic == f"v1/devices/me/rpc/request/{body['id']}"
    assert m.json() == {"method": "setTemp", "params": {"t": 21.5, "unit": "C"}}


def test_rpc_two_way_ids_distinct(server, tenant, dev):
    responder(server, dev)
    ids = []
    for i in range(3):
        r = rpc(tenant, dev.id, {"method": "m", "params": i})
        assert r.status_code == 200, r.text
        assert r.json()["response"]["echo"] == i
        ids.append(r.json()["id"])
    assert len(set(ids)) == 3


def test_rpc_two_way_concurrent(server, tenant, dev):
    responder(server, dev)
    results = {}

    def call(i):
        results[i] = rpc(tenant, dev.id, {"method": f"m{i}", "params": {"i": i}}, client=tenant.admin.server.client(
            tenant.admin.token))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i in range(5):
        assert results[i].status_code == 200, results[i].text
        assert results[i].json()["response"] == {"method": f"m{i}", "echo": {"i": i}}


def test_rpc_reply_not_json_is_a_string(server, tenant, dev):
    def plain(client, m):
        n = m.topic.rsplit("/", 1)[1]
        client.c.publish(f"v1/devices/me/rpc/response/{n}", "done, not json", 1)
    responder(server, dev, handler=plain)
    r = rpc(tenant, dev.id, {"method": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["response"] == "done, not json"


def test_rpc_without_params(server, tenant, dev):
    c = responder(server, dev)
    r = rpc(tenant, dev.id, {"method": "reboot"})
    assert r.status_code == 200, r.text
    req = c.messages.wait_one().json()
    assert req == {"method": "reboot", "params": {}}  # params default {} (docs/api/CONTRACT.md)


def test_rpc_oneway_202_sent(server, tenant, dev):
    c = device_client(server, dev)
    c.subscribe(REQ, 1)
    r = rpc(tenant, dev.id, {"method": "blink", "params": [1, 2], "oneway": True})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "sent" and isinstance(body["id"], int)
    m = c.messages.wait_one()
    assert m.topic == f"v1/devices/me/rpc/request/{body['id']}"
    assert m.json() == {"method": "blink", "params": [1, 2]}


@pytest.mark.parametrize("oneway", [False, True])
def test_rpc_offline_409(server, tenant, dev, oneway):
    assert_problem(rpc(tenant, dev.id, {"method": "x", "oneway": oneway}), 409, "device_offline")
    # also after a connection came and went
    c = device_client(server, dev)
    c.disconnect()
    poll_device(tenant, dev.id, lambda d: d["online"] is False, "offline")
    assert_problem(rpc(tenant, dev.id, {"method": "x", "oneway": oneway}), 409, "device_offline")


def _persistent_rpc_device(server, dev, handler=None):
    """Connects once with a persistent session subscribed to RPC requests, then disconnects."""
    cid = unique("rpcdev")
    c = device_client(server, dev, version=V5, client_id=cid, session_expiry=300)
    c.subscribe(REQ, 1)
    c.disconnect()
    return cid


def test_rpc_queued_oneway_delivered_on_connect(server, tenant, dev):
    """A device with a persistent session (its subscription to RPC requests kept by the server)
    gets the queued request when it connects, without subscribing again."""
    cid = _persistent_rpc_device(server, dev)
    r = rpc(tenant, dev.id, {"method": "later", "params": {"a": 1}, "oneway": True, "queue": True,
                             "timeout_ms": 30000})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued"
    c = device_client(server, dev, version=V5, client_id=cid, clean=False, session_expiry=300)
    assert c.session_present
    m = c.messages.wait_one(pred=lambda m: m.topic.startswith("v1/devices/me/rpc/request/"))
    assert m.topic == f"v1/devices/me/rpc/request/{body['id']}"
    assert m.json() == {"method": "later", "params": {"a": 1}}
    c.messages.quiet(0.3)
    assert len(c.messages) == 1


@pytest.mark.parametrize("version", [V311, V5])
def test_rpc_queued_oneway_clean_device_subscribing(server, tenant, dev, version):
    """A typical device: clean session, subscribes to RPC requests right after CONNACK."""
    r = rpc(tenant, dev.id, {"method": "later", "params": [7], "oneway": True, "queue": True, "timeout_ms": 30000})
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    c = device_client(server, dev, version=version)
    c.subscribe(REQ, 1)
    m = c.messages.wait_one()
    assert m.topic == f"v1/devices/me/rpc/request/{r.json()['id']}"
    assert m.json() == {"method": "later", "params": [7]}
    c.messages.quiet(0.3)
    assert len(c.messages) == 1


def test_rpc_queued_two_way(server, tenant, dev):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", rpc(tenant, dev.id, {"method": "q2", "params": 5, "queue": True, "timeout_ms": 15000},
                 client=server.client(tenant.admin.token))))
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), f"returned before the device connected: {result['r'].status_code} {result['r'].text}"
    responder(server, dev, V311)  # connects, subscribes, answers
    t.join(20)
    r = result["r"]
    assert r.status_code == 200, r.text
    assert r.json()["response"] == {"method": "q2", "echo": 5}


def test_rpc_queued_expires_after_timeout(server, tenant, dev):
    cid = _persistent_rpc_device(server, dev)
    r = rpc(tenant, dev.id, {"method": "stale", "oneway": True, "queue": True, "timeout_ms": 300})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    time.sleep(0.8)
    c = device_client(server, dev, version=V5, client_id=cid, clean=False, session_expiry=300)
    c.messages.quiet(0.7)
    assert len(c.messages) == 0


def test_rpc_queue_full_429(server, tenant, dev):
    """At most 100 queued requests per device; then 429 resource_exhausted (docs/api/CONTRACT.md)."""
    session = server.client(tenant.admin.token)
    for i in range(100):
        r = rpc(tenant, dev.id, {"method": "q", "params": i, "oneway": True, "queue": True, "timeout_ms": 60000},
                client=session)
        assert r.status_code == 202 and r.json()["status"] == "queued", (i, r.text)
    assert_problem(rpc(tenant, dev.id, {"method": "q", "oneway": True, "queue": True}, client=session), 429,
                   "resource_exhausted")
    # not queued: still the plain offline answer
    assert_problem(rpc(tenant, dev.id, {"method": "q"}, client=session), 409, "device_offline")


def test_rpc_timeout_504(server, tenant, dev):
    c = device_client(server, dev)
    c.subscribe(REQ, 1)  # receives, never answers
    t0 = time.monotonic()
    r = rpc(tenant, dev.id, {"method": "silent", "timeout_ms": 300})
    elapsed = time.monotonic() - t0
    assert_problem(r, 504, "timeout")
    assert 0.25 <= elapsed < 5, elapsed
    c.messages.wait_one()
    # a late answer is ignored and does not break the device
    n = c.messages.msgs[0].topic.rsplit("/", 1)[1]
    c.publish(f"v1/devices/me/rpc/response/{n}", {"late": True}, qos=1)
    c.publish("v1/devices/me/telemetry", {"after": 1}, qos=1)
    assert "after" in latest(tenant, dev.id)


@pytest.mark.parametrize("body", [
    {},
    {"method": 5},
    {"method": "m", "timeout_ms": 0},
    {"method": "m", "timeout_ms": 600001},
    {"method": "m", "timeout_ms": "100"},
    {"method": "m", "oneway": "yes"},
    {"method": "m", "queue": 1},
])
def test_rpc_bad_request_400(server, tenant, dev, body):
    responder(server, dev)
    assert_problem(rpc(tenant, dev.id, body), 400)


def test_rpc_permissions(server, tenant, dev, sysadmin, new_tenant):
    responder(server, dev)
    assert_problem(rpc(tenant, dev.id, {"method": "m"}, client=tenant.viewer), 403)
    assert_problem(rpc(tenant, dev.id, {"method": "m"}, client=sysadmin), 403)
    other = new_tenant()
    assert_problem(rpc(other, dev.id, {"method": "m"}), 404)
    assert_problem(rpc(tenant, "00000000-0000-0000-0000-000000000000", {"method": "m"}), 404)


def test_app_sees_server_to_device_rpc(server, tenant, dev):
    app = app_client(server, tenant, "viewer")
    app.subscribe(f"sw/v1/devices/{dev.id}/rpc/#", 1)
    responder(server, dev)
    r = rpc(tenant, dev.id, {"method": "watched", "params": {"p": 1}})
    assert r.status_code == 200
    n = r.json()["id"]
    req = app.messages.wait_one(topic=f"sw/v1/devices/{dev.id}/rpc/request/{n}")
    assert req.json()["method"] == "watched" and req.json().get("params") == {"p": 1}
    resp = app.messages.wait_one(topic=f"sw/v1/devices/{dev.id}/rpc/response/{n}")
    assert resp.json() == {"method": "watched", "echo": {"p": 1}}


# ---------------------------------------------------------------------------------------------
# device-to-server and device-to-application RPC
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_device_rpc_get_current_time(server, tenant, dev, version):
    c = device_client(server, dev, version=version)
    c.subscribe("v1/devices/me/rpc/response/+", 1)
    before = now_ms()
    c.publish("v1/devices/me/rpc/request/1", {"method": "getCurrentTime", "params": {}}, qos=1)
    m = c.messages.wait_one(topic="v1/devices/me/rpc/response/1")
    t = m.json()["time"]
    assert isinstance(t, int) and before - 5000 <= t <= now_ms() + 5000


@pytest.mark.parametrize("version", [V311, V5])
def test_device_rpc_forwarded_to_app_and_back(server, tenant, dev, version):
    app = app_client(server, tenant, "admin")
    app.subscribe(f"sw/v1/devices/{dev.id}/rpc/request/+", 1)

    def app_answers(client, m):
        n = m.topic.rsplit("/", 1)[1]
        req = json.loads(m.payload)
        client.c.publish(f"sw/v1/devices/{dev.id}/rpc/response/{n}",
                         json.dumps({"answer": req["params"]["q"] * 2}), 1)
    app.handler = app_answers
    c = device_client(server, dev, version=version)
    c.subscribe("v1/devices/me/rpc/response/+", 1)
    c.publish("v1/devices/me/rpc/request/17", {"method": "askApp", "params": {"q": 21}}, qos=1)
    req = app.messages.wait_one()
    assert req.topic == f"sw/v1/devices/{dev.id}/rpc/request/17"
    assert req.json()["method"] == "askApp" and req.json()["params"] == {"q": 21}
    m = c.messages.wait_one(topic="v1/devices/me/rpc/response/17")
    assert m.json() == {"answer": 42}


def test_device_rpc_reply_only_to_its_device(server, tenant, dev):
    other = create_device(tenant)
    o = device_client(server, other)
    o.subscribe("v1/devices/me/rpc/response/+", 1)
    app = raw_app(server, tenant)
    app.publish(f"sw/v1/devices/{dev.id}/rpc/response/3", {"for": "dev"}, qos=1)
    o.messages.quiet()
    assert len(o.messages) == 0


# ---------------------------------------------------------------------------------------------
# gateways
# ---------------------------------------------------------------------------------------------
def find_device(tenant, name):
    items = [d for d in tenant.viewer.list_all("/api/v1/devices", q=name) if d["name"] == name]
    return items[0] if items else None


def wait_device(tenant, name, pred=lambda d: True, what="sub-device"):
    return poll(lambda: (lambda d: d if d and pred(d) else None)(find_device(tenant, name)), what=what)


@pytest.fixture
def gw(tenant):
    g = create_device(tenant, gateway=True)
    return g


def test_gateway_flag_in_rest(server, tenant, gw):
    assert gw.data.get("gateway") is True
    assert get_device(tenant, gw.id).get("gateway") is True
    plain = create_device(tenant)
    assert get_device(tenant, plain.id).get("gateway") in (False, None)


@pytest.mark.parametrize("version", [V311, V5])
def test_gateway_connect_and_disconnect_subdevice(server, tenant, gw, version):
    name = unique("Sub")
    c = raw_device(server, gw, version)
    assert c.publish("v1/gateway/connect", {"device": name, "type": "thermostat"}, qos=1).rc == 0
    sub = wait_device(tenant, name, lambda d: d["online"], "sub-device online")
    assert sub["type"] == "thermostat"
    assert sub["gateway_id"] == gw.id
    assert sub["tenant_id"] == gw.data["tenant_id"]
    assert sub["last_connect"] is not None
    assert get_device(tenant, sub["id"])["gateway_id"] == gw.id
    assert c.publish("v1/gateway/disconnect", {"device": name}, qos=1).rc == 0
    d = poll_device(tenant, sub["id"], lambda d: d["online"] is False, "sub-device offline")
    assert d["last_disconnect"] is not None
    c.disconnect()


def test_gateway_telemetry_creates_subdevices(server, tenant, gw):
    a, b = unique("SubA"), unique("SubB")
    c = raw_device(server, gw, V5)
    body = {a: [{"ts": T0, "values": {"t": 1}}, {"ts": T0 + 1, "values": {"t": 2, "s": "x"}}], b: {"h": 55}}
    assert c.publish("v1/gateway/telemetry", body, qos=1).rc == 0
    da = wait_device(tenant, a)
    db = wait_device(tenant, b)
    assert da["type"] == "default" and db["type"] == "default"
    assert da["gateway_id"] == gw.id and db["gateway_id"] == gw.id
    got = tenant.viewer.raw(da["id"], "t,s", T0, T0 + 10)
    assert got["t"] == [{"ts": T0, "value": 1}, {"ts": T0 + 1, "value": 2}]
    assert got["s"] == [{"ts": T0 + 1, "value": "x"}]
    assert latest(tenant, db["id"])["h"]["value"] == 55
    # reusing the name does not create a second device
    assert c.publish("v1/gateway/telemetry", {a: {"t": 3}}, qos=1).rc == 0
    assert len([d for d in tenant.viewer.list_all("/api/v1/devices", q=a) if d["name"] == a]) == 1
    # the gateway itself stored nothing
    assert latest(tenant, gw.id) == {}
    c.disconnect()


def test_gateway_attributes(server, tenant, gw):
    name = unique("SubAttr")
    c = raw_device(server, gw, V311)
    c.publish("v1/gateway/attributes", {name: {"fw": "2.1", "model": "X"}}, qos=1)
    sub = wait_device(tenant, name)
    client = attributes(tenant, sub["id"], "client")
    assert {k: v["value"] for k, v in client.items()} == {"fw": "2.1", "model": "X"}
    c.disconnect()


def test_gateway_shared_attributes_pushed(server, tenant, gw):
    name = unique("SubShared")
    c = device_client(server, gw)
    assert c.subscribe("v1/gateway/attributes", 1) == [1]
    c.publish("v1/gateway/connect", {"device": name}, qos=1)
    sub = wait_device(tenant, name)
    set_shared(tenant, sub["id"], {"setpoint": 19})
    m = c.messages.wait_one(topic="v1/gateway/attributes")
    assert m.json() == {"device": name, "data": {"setpoint": 19}}


def test_gateway_own_device_topics_still_work(server, tenant, gw):
    c = raw_device(server, gw, V5)
    assert c.publish("v1/devices/me/telemetry", {"gw_load": 0.5}, qos=1).rc == 0
    assert latest(tenant, gw.id)["gw_load"]["value"] == 0.5
    c.disconnect()


def test_app_sees_gateway_telemetry(server, tenant, gw):
    name = unique("SubApp")
    app = app_client(server, tenant, "viewer")
    app.subscribe("sw/v1/devices/+/telemetry", 1)
    c = raw_device(server, gw, V5)
    c.publish("v1/gateway/telemetry", {name: [{"ts": T0, "values": {"v": 9}}]}, qos=1)
    sub = wait_device(tenant, name)
    m = app.messages.wait_one(topic=f"sw/v1/devices/{sub['id']}/telemetry")
    assert m.json() == [{"ts": T0, "values": {"v": 9}}]


@pytest.mark.parametrize("version", [V311, V5])
def test_rpc_to_subdevice_through_gateway(server, tenant, gw, version):
    name = unique("SubRpc")
    seen = []

    def gateway_answers(client, m):
        if m.topic != "v1/gateway/rpc":
            return
        req = json.loads(m.payload)
        seen.append(req)
        client.c.publish("v1/gateway/rpc", json.dumps(
            {"device": req["device"], "id": req["data"]["id"], "data": {"ok": True, "m": req["data"]["method"]}}), 1)
    c = device_client(server, gw, version=version)
    assert c.subscribe("v1/gateway/rpc", 1) == [1]
    c.handler = gateway_answers
    c.publish("v1/gateway/connect", {"device": name}, qos=1)
    sub = wait_device(tenant, name, lambda d: d["online"])
    r = rpc(tenant, sub["id"], {"method": "open", "params": {"valve": 2}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["response"] == {"ok": True, "m": "open"}
    assert seen == [{"device": name, "data": {"id": body["id"], "method": "open", "params": {"valve": 2}}}]
    # one-way
    r = rpc(tenant, sub["id"], {"method": "close", "oneway": True})
    assert r.status_code == 202 and r.json()["status"] == "sent", r.text
    poll(lambda: len(seen) == 2, what="one-way RPC at the gateway")
    assert seen[1]["device"] == name and seen[1]["data"]["method"] == "close"


def test_rpc_to_subdevice_gateway_offline_409(server, tenant, gw):
    name = unique("SubOff")
    c = raw_device(server, gw, V5)
    c.publish("v1/gateway/connect", {"device": name}, qos=1)
    sub = wait_device(tenant, name, lambda d: d["online"])
    c.disconnect()
    poll_device(tenant, sub["id"], lambda d: d["online"] is False, "sub-device offline with its gateway")
    assert_problem(rpc(tenant, sub["id"], {"method": "x"}), 409, "device_offline")


def test_rpc_to_subdevice_timeout_504(server, tenant, gw):
    name = unique("SubSilent")
    c = device_client(server, gw)
    c.subscribe("v1/gateway/rpc", 1)
    c.publish("v1/gateway/connect", {"device": name}, qos=1)
    sub = wait_device(tenant, name, lambda d: d["online"])
    assert_problem(rpc(tenant, sub["id"], {"method": "x", "timeout_ms": 300}), 504, "timeout")


@pytest.mark.parametrize("topic", ["v1/gateway/connect", "v1/gateway/disconnect", "v1/gateway/telemetry",
                                   "v1/gateway/attributes", "v1/gateway/rpc"])
def test_non_gateway_device_refused_on_gateway_topics(server, tenant, dev, topic):
    name = unique("Ghost")
    c = raw_device(server, dev, V5)
    payload = {"device": name} if topic.endswith("connect") else {name: {"x": 1}}
    assert c.publish(topic, payload, qos=1).rc == RC_NOT_AUTHORIZED
    assert c.subscribe(topic, 1) == [RC_NOT_AUTHORIZED]
    c.ping()
    c.disconnect()
    assert find_device(tenant, name) is None


def test_non_gateway_device_v311_gateway_subscribe_refused(server, tenant, dev):
    c = raw_device(server, dev, V311)
    assert c.subscribe("v1/gateway/rpc", 1) == [0x80]
    assert c.subscribe("v1/gateway/attributes", 1) == [0x80]
    c.disconnect()


def test_gateway_subdevice_deleted_with_rest_is_recreated(server, tenant, gw):
    name = unique("SubDel")
    c = raw_device(server, gw, V5)
    c.publish("v1/gateway/telemetry", {name: {"a": 1}}, qos=1)
    first = wait_device(tenant, name)
    assert tenant.admin.delete(f"/api/v1/devices/{first['id']}").status_code == 204
    c.publish("v1/gateway/telemetry", {name: {"a": 2}}, qos=1)
    second = wait_device(tenant, name)
    assert second["id"] != first["id"] and second["gateway_id"] == gw.id
    assert latest(tenant, second["id"])["a"]["value"] == 2
    c.disconnect()


def test_gateway_deleted_subdevices_stay(server, tenant, gw):
    """Deleting a gateway keeps its sub-devices, with gateway_id null (docs/api/CONTRACT.md)."""
    name = unique("SubOrphan")
    c = raw_device(server, gw, V5)
    c.publish("v1/gateway/telemetry", {name: {"o": 1}}, qos=1)
    sub = wait_device(tenant, name)
    assert tenant.admin.delete(f"/api/v1/devices/{gw.id}").status_code == 204
    assert c.wait_closed() == b"\xe0\x01\x98"
    d = get_device(tenant, sub["id"])
    assert d["gateway_id"] is None
    assert latest(tenant, sub["id"])["o"]["value"] == 1
    assert d["online"] is False
