"""ThingsBoard-style device topics: telemetry (JSON, SenML, bad payloads), client attributes,
shared attributes pushed to the device, attribute request/response, topic rights of devices,
application streams (sw/v1/devices/{id}/...), per-device message rate."""
import json
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import T0, TenantCtx, unique

TEL = "v1/devices/me/telemetry"
ATTR = "v1/devices/me/attributes"
SENML = "application/senml+json"


@pytest.fixture
def dev(tenant):
    return create_device(tenant)


# ---------------------------------------------------------------------------------------------
# telemetry
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_telemetry_qos1_puback_then_stored(server, tenant, dev, version):
    c = raw_device(server, dev, version)
    before = now_ms()
    c.send(publish_packet(TEL, {"temp": 21.5, "on": True}, qos=1, pid=0x0A0B, version=version))
    ack = c.expect(PUBACK)
    assert ack.pid == 0x0A0B and ack.rc == 0
    if version == V311:
        assert ack.raw == b"\x40\x02\x0a\x0b"
    # acknowledged only once durable: visible at once
    lt = latest(tenant, dev.id)
    assert lt["temp"]["value"] == 21.5 and lt["on"]["value"] is True
    assert before - 5000 <= lt["temp"]["ts"] <= now_ms() + 5000
    c.disconnect()


def test_telemetry_all_json_forms(server, tenant, dev):
    c = raw_device(server, dev, V5)
    assert c.publish(TEL, {"ts": T0 + 1, "values": {"a": 1, "s": "x"}}, qos=1).rc == 0
    assert c.publish(TEL, [{"ts": T0 + 2, "values": {"a": 2}}, {"ts": T0 + 3, "values": {"a": 3}}], qos=1).rc == 0
    assert c.publish(TEL, {"obj": {"n": [1, 2]}}, qos=1).rc == 0
    got = tenant.viewer.raw(dev.id, "a,s", T0, T0 + 10)
    assert got["a"] == [{"ts": T0 + 1, "value": 1}, {"ts": T0 + 2, "value": 2}, {"ts": T0 + 3, "value": 3}]
    assert got["s"] == [{"ts": T0 + 1, "value": "x"}]
    assert latest(tenant, dev.id)["obj"]["value"] == {"n": [1, 2]}
    c.disconnect()


def test_telemetry_qos0_stored(server, tenant, dev):
    c = raw_device(server, dev, V311)
    c.publish(TEL, {"ts": T0, "values": {"q0": 5}}, qos=0)
    poll(lambda: "q0" in latest(tenant, dev.id), what="QoS 0 telemetry stored")
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_telemetry_qos2(server, tenant, dev, version):
    c = raw_device(server, dev, version)
    rec = c.publish(TEL, {"ts": T0, "values": {"q2": 2}}, qos=2)
    assert rec.rc == 0
    assert latest(tenant, dev.id)["q2"] == {"ts": T0, "value": 2}
    c.disconnect()


def test_telemetry_paho_v311(server, tenant, dev):
    c = device_client(server, dev, version=V311)
    for i in range(10):
        c.publish(TEL, {"ts": T0 + i, "values": {"n": i}}, qos=1)
    assert [p["value"] for p in tenant.viewer.raw(dev.id, "n", T0, T0 + 100)["n"]] == list(range(10))
    c.disconnect()


def test_telemetry_senml_v5_content_type(server, tenant, dev):
    c = raw_device(server, dev, V5)
    senml = [{"bn": "dev:", "bt": (T0 + 5000) / 1000, "n": "temp", "u": "Cel", "v": 23.5},
             {"n": "label", "vs": "ok"}, {"n": "flag", "vb": True}]
    ack = c.publish(TEL, senml, qos=1, props={P_CONTENT_TYPE: SENML})
    assert ack.rc == 0, ack
    lt = latest(tenant, dev.id)
    assert {k: v["value"] for k, v in lt.items()} == {"dev:temp": 23.5, "dev:label": "ok", "dev:flag": True}
    assert all(v["ts"] == T0 + 5000 for v in lt.values())
    c.disconnect()


def test_senml_payload_without_content_type_is_not_senml(server, tenant, dev):
    """Without the SenML content type the payload is read as telemetry JSON: a SenML array is not
    valid JSON telemetry (array items need ts/values or key/value pairs of values) or is stored as
    plain keys, never as SenML records."""
    c = raw_device(server, dev, V5)
    ack = c.publish(TEL, [{"n": "temp", "v": 1}], qos=1)
    lt = latest(tenant, dev.id)
    assert "temp" not in lt or ack.rc == RC_PAYLOAD_FORMAT_INVALID
    c.disconnect()


@pytest.mark.parametrize("payload,ctype", [
    (b"{not json", None),
    (b"", None),
    (b"[1,2,3]", None),
    (b'{"ts":"yesterday","values":{"a":1}}', None),
    (b'{"ts":1,"values":5}', None),
    (b'[{"n":"x"}]', SENML),  # SenML record without a value
    (b'{"n":"x","v":1}', SENML),  # SenML must be an array
    (b"\xff\xfe", None),
])
def test_invalid_telemetry_v5_puback_0x99(server, tenant, dev, payload, ctype):
    c = raw_device(server, dev, V5)
    ack = c.publish(TEL, payload, qos=1, props={P_CONTENT_TYPE: ctype} if ctype else None)
    assert ack.rc == RC_PAYLOAD_FORMAT_INVALID, ack
    assert latest(tenant, dev.id) == {}
    # the connection stays usable
    assert c.publish(TEL, {"ok": 1}, qos=1).rc == 0
    c.disconnect()


def test_invalid_telemetry_v311_keeps_connection(server, tenant, dev):
    c = raw_device(server, dev, V311)
    c.send(publish_packet(TEL, b"{broken", qos=1, pid=3, version=V311))
    c.ping()
    c.publish(TEL, {"fine": 1}, qos=1)
    assert "fine" in latest(tenant, dev.id)
    c.disconnect()


def test_mqtt_and_http_telemetry_same_series(server, tenant, dev):
    c = raw_device(server, dev, V311)
    c.publish(TEL, {"ts": T0, "values": {"mix": 1}}, qos=1)
    server.ingest_ok(dev.token, {"ts": T0 + 1, "values": {"mix": 2}})
    assert [p["value"] for p in tenant.viewer.raw(dev.id, "mix", T0, T0 + 10)["mix"]] == [1, 2]
    c.disconnect()


# ---------------------------------------------------------------------------------------------
# attributes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_client_attributes_stored(server, tenant, dev, version):
    c = raw_device(server, dev, version)
    ack = c.publish(ATTR, {"fw": "1.0.3", "serial": 1234, "cfg": {"a": [1]}}, qos=1)
    assert ack.rc == 0
    client = attributes(tenant, dev.id, "client")
    assert {k: v["value"] for k, v in client.items()} == {"fw": "1.0.3", "serial": 1234, "cfg": {"a": [1]}}
    assert all(isinstance(v["updated_at"], int) for v in client.values())
    # an update touches only the published keys
    c.publish(ATTR, {"fw": "1.0.4"}, qos=1)
    client = attributes(tenant, dev.id, "client")
    assert client["fw"]["value"] == "1.0.4" and client["serial"]["value"] == 1234
    assert attributes(tenant, dev.id, "shared") == {}
    c.disconnect()


def test_invalid_attributes_v5_0x99(server, tenant, dev):
    c = raw_device(server, dev, V5)
    for bad in (b"[1]", b"nope", b"42"):
        ack = c.publish(ATTR, bad, qos=1)
        assert ack.rc == RC_PAYLOAD_FORMAT_INVALID, (bad, ack)
    assert attributes(tenant, dev.id, "client") == {}
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_shared_attributes_pushed_to_device(server, tenant, dev, version):
    c = device_client(server, dev, version=version)
    assert c.subscribe(ATTR, 1) == [1]
    set_shared(tenant, dev.id, {"target": 22.5, "mode": "eco"})
    m = c.messages.wait_one(topic=ATTR)
    assert m.json() == {"target": 22.5, "mode": "eco"}
    set_shared(tenant, dev.id, {"mode": "boost"})
    m = c.messages.wait_for(2, topic=ATTR)[1]
    assert m.json() == {"mode": "boost"}  # only the changed keys
    # server-scope attributes are not pushed
    r = tenant.admin.post(f"/api/v1/devices/{dev.id}/attributes", {"secret": 1}, params={"scope": "server"})
    assert r.status_code == 200
    c.messages.quiet()
    assert len(c.messages.matching(ATTR)) == 2
    c.disconnect()


def test_shared_attributes_only_to_their_device(server, tenant, dev):
    other = create_device(tenant)
    a = device_client(server, dev)
    b = device_client(server, other)
    a.subscribe(ATTR, 1)
    b.subscribe(ATTR, 1)
    set_shared(tenant, dev.id, {"only": "a"})
    assert a.messages.wait_one(topic=ATTR).json() == {"only": "a"}
    b.messages.quiet()
    assert b.messages.matching(ATTR) == []


def test_shared_attribute_delete(server, sysadmin, tenant, dev):
    """DELETE /attributes removes keys and tells the device ThingsBoard style: {"deleted":[...]}."""
    c = device_client(server, dev)
    c.subscribe(ATTR, 1)
    set_shared(tenant, dev.id, {"keep": 1, "drop": 2})
    c.messages.wait_one(topic=ATTR)
    url = f"/api/v1/devices/{dev.id}/attributes"
    r = tenant.admin.delete(url, params={"scope": "shared", "keys": "drop,never-set"})
    assert r.status_code == 200, r.text
    assert set(r.json()["shared"]) == {"keep"}
    assert c.messages.wait_for(2, topic=ATTR)[1].json() == {"deleted": ["drop"]}
    # bad requests and roles
    assert tenant.admin.delete(url, params={"scope": "client", "keys": "keep"}).status_code == 400
    r = tenant.admin.delete(url, params={"scope": "shared"})
    assert r.status_code == 400 and r.json()["field"] == "keys"
    assert tenant.viewer.delete(url, params={"scope": "shared", "keys": "keep"}).status_code == 403
    other = TenantCtx(server, sysadmin)
    assert other.admin.delete(url, params={"scope": "shared", "keys": "keep"}).status_code == 404
    # nothing removed: the device hears nothing more
    assert tenant.admin.delete(url, params={"keys": "never-set"}).status_code == 200
    c.messages.quiet()
    assert len(c.messages.matching(ATTR)) == 2
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_attribute_request_response(server, tenant, dev, version):
    server.post_client_attributes(dev.token, {"c1": 1, "c2": "two"})
    set_shared(tenant, dev.id, {"s1": True, "s2": 2.5})
    c = device_client(server, dev, version=version)
    assert c.subscribe("v1/devices/me/attributes/response/+", 1) == [1]

    c.publish("v1/devices/me/attributes/request/1", {"clientKeys": "c1", "sharedKeys": "s2"}, qos=1)
    m = c.messages.wait_one(topic="v1/devices/me/attributes/response/1")
    assert m.json() == {"client": {"c1": 1}, "shared": {"s2": 2.5}}

    c.publish("v1/devices/me/attributes/request/2", {}, qos=1)
    m = c.messages.wait_one(topic="v1/devices/me/attributes/response/2")
    assert m.json() == {"client": {"c1": 1, "c2": "two"}, "shared": {"s1": True, "s2": 2.5}}

    c.publish("v1/devices/me/attributes/request/3", {"sharedKeys": "s1,missing"}, qos=1)
    m = c.messages.wait_one(topic="v1/devices/me/attributes/response/3")
    body = m.json()
    assert body["shared"] == {"s1": True}
    assert body.get("client", {}) in ({}, {"c1": 1, "c2": "two"})  # clientKeys absent: all keys
    c.disconnect()


def test_attribute_request_response_only_to_requester(server, tenant, dev):
    other = create_device(tenant)
    o = device_client(server, other)
    o.subscribe("v1/devices/me/attributes/response/+", 1)
    c = device_client(server, dev)
    c.subscribe("v1/devices/me/attributes/response/+", 1)
    c.publish("v1/devices/me/attributes/request/9", {}, qos=1)
    c.messages.wait_one()
    o.messages.quiet(0.3)
    assert len(o.messages) == 0


# ---------------------------------------------------------------------------------------------
# topic rights of devices
# ---------------------------------------------------------------------------------------------
FORBIDDEN_PUBLISH = ["foo/bar", "v1/devices/other/telemetry", "sw/v1/devices/{id}/telemetry",
                     "sw/v1/devices/{other}/telemetry", "v1/gateway/telemetry", "v1/devices/me/attributes/response/1",
                     "v1/devices/me/rpc/request", "v1/devices/me/custom/thing"]


@pytest.mark.parametrize("topic", FORBIDDEN_PUBLISH)
def test_device_publish_outside_its_topics_v5_0x87(server, tenant, dev, topic):
    other = create_device(tenant)
    topic = topic.format(id=dev.id, other=other.id)
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe("#", 1)
    c = raw_device(server, dev, V5)
    ack = c.publish(topic, {"x": 1}, qos=1)
    assert ack.rc == RC_NOT_AUTHORIZED, ack
    rec = c.publish(topic, {"x": 2}, qos=2)
    assert rec.rc == RC_NOT_AUTHORIZED, rec
    c.publish(topic, {"x": 3}, qos=0)
    c.ping()  # still connected
    watcher.messages.quiet(0.5)
    assert [m for m in watcher.messages.msgs if m.topic == topic] == []
    assert latest(tenant, dev.id) == {} and latest(tenant, other.id) == {}
    c.disconnect()


def test_device_forbidden_publish_v311_dropped_and_counted(server, tenant, dev):
    watcher = app_client(server, tenant, "viewer")
    t = f"forbidden/{unique('x')}"
    watcher.subscribe(t, 1)
    before = mqtt_metric(server, "sw_mqtt_messages_dropped_total")
    c = raw_device(server, dev, V311)
    c.send(publish_packet(t, b"1", qos=0, version=V311))
    c.send(publish_packet(t, b"2", qos=1, pid=5, version=V311))
    c.ping()
    watcher.messages.quiet(0.5)
    assert watcher.messages.matching(t) == []
    poll(lambda: mqtt_metric(server, "sw_mqtt_messages_dropped_total") >= before + 2, what="drops counted")
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_device_subscribe_rights(server, tenant, dev, version):
    c = raw_device(server, dev, version)
    bad = 0x80 if version == V311 else RC_NOT_AUTHORIZED
    allowed = ["v1/devices/me/attributes", "v1/devices/me/attributes/response/+", "v1/devices/me/rpc/request/+",
               "v1/devices/me/rpc/response/+", "v1/devices/me/#"]
    for f in allowed:
        assert c.subscribe(f, 1) == [1], f
    for f in ["#", "+/devices/me/attributes", "v1/devices/+/attributes", "sw/v1/devices/#", "v1/gateway/rpc",
              f"sw/v1/devices/{dev.id}/telemetry", "other/topic", "$share/g/v1/devices/me/attributes"]:
        assert c.subscribe(f, 1) == [bad], f
    # mixed in one SUBSCRIBE
    assert c.subscribe([("v1/devices/me/rpc/request/+", 1), ("#", 0)]) == [1, bad]
    c.ping()
    c.disconnect()


def test_device_never_receives_its_own_publication(server, tenant, dev):
    c = device_client(server, dev)
    c.subscribe("v1/devices/me/#", 1)
    c.publish(ATTR, {"mine": 1}, qos=1)
    c.publish(TEL, {"t": 1}, qos=1)
    c.publish("v1/devices/me/rpc/response/123", {"late": True}, qos=1)
    set_shared(tenant, dev.id, {"barrier": 1})  # something that must arrive, after the publications
    first = c.messages.wait_one()
    assert first.topic == ATTR and first.json() == {"barrier": 1}, c.messages.msgs
    c.messages.quiet(0.3)
    assert len(c.messages) == 1, c.messages.msgs


def test_devices_are_isolated_from_each_other(server, tenant, dev):
    other = create_device(tenant)
    o = device_client(server, other)
    o.subscribe("v1/devices/me/#", 1)
    c = device_client(server, dev)
    c.publish(ATTR, {"x": 1}, qos=1)
    c.publish(TEL, {"x": 1}, qos=1)
    o.messages.quiet()
    assert len(o.messages) == 0


# ---------------------------------------------------------------------------------------------
# application streams
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["mqtt", "http"])
def test_app_sees_telemetry_stream(server, tenant, dev, via):
    app = app_client(server, tenant, "viewer")
    assert app.subscribe(f"sw/v1/devices/{dev.id}/telemetry", 1) == [1]
    body = [{"ts": T0 + 1, "values": {"a": 1}}, {"ts": T0 + 2, "values": {"a": 2, "b": "x"}}]
    if via == "mqtt":
        c = raw_device(server, dev, V311)
        c.publish(TEL, body, qos=1)
    else:
        server.ingest_ok(dev.token, body)
    m = app.messages.wait_one(topic=f"sw/v1/devices/{dev.id}/telemetry")
    got = m.json()
    assert isinstance(got, list)
    # what was stored: the same points (possibly grouped differently by timestamp)
    flat = sorted((e["ts"], k, v) for e in got for k, v in e["values"].items())
    assert flat == [(T0 + 1, "a", 1), (T0 + 2, "a", 2), (T0 + 2, "b", "x")]


def test_app_telemetry_stream_has_server_timestamps(server, tenant, dev):
    app = app_client(server, tenant, "viewer")
    app.subscribe("sw/v1/devices/+/telemetry", 1)
    before = now_ms()
    c = raw_device(server, dev, V5)
    c.publish(TEL, {"plain": 1}, qos=1)
    m = app.messages.wait_one(topic=f"sw/v1/devices/{dev.id}/telemetry")
    (entry,) = m.json()
    assert entry["values"] == {"plain": 1}
    assert before - 5000 <= entry["ts"] <= now_ms() + 5000
    assert entry["ts"] == latest(tenant, dev.id)["plain"]["ts"]


def test_app_does_not_see_rejected_telemetry(server, tenant, dev):
    app = app_client(server, tenant, "viewer")
    app.subscribe(f"sw/v1/devices/{dev.id}/telemetry", 1)
    c = raw_device(server, dev, V5)
    assert c.publish(TEL, b"{bad", qos=1).rc == RC_PAYLOAD_FORMAT_INVALID
    app.messages.quiet()
    assert len(app.messages) == 0


@pytest.mark.parametrize("via", ["mqtt", "http", "shared"])
def test_app_sees_attributes_stream(server, tenant, dev, via):
    app = app_client(server, tenant, "viewer")
    app.subscribe(f"sw/v1/devices/{dev.id}/attributes", 1)
    if via == "mqtt":
        raw_device(server, dev, V311).publish(ATTR, {"k": "m"}, qos=1)
        expected = {"k": "m"}
    elif via == "http":
        assert server.post_client_attributes(dev.token, {"k": "h"}).status_code == 200
        expected = {"k": "h"}
    else:
        set_shared(tenant, dev.id, {"sk": 1})
        expected = {"sk": 1}
    m = app.messages.wait_one(topic=f"sw/v1/devices/{dev.id}/attributes")
    assert m.json() == expected


def test_app_wildcard_over_devices(server, new_tenant):
    t = new_tenant()
    d1, d2 = create_device(t), create_device(t)
    app = app_client(server, t, "viewer")
    app.subscribe("sw/v1/devices/#", 1)
    raw_device(server, d1, V311).publish(TEL, {"n": 1}, qos=1)
    server.ingest_ok(d2.token, {"n": 2})
    got = app.messages.wait_for(2)
    assert sorted(m.topic for m in got) == sorted([f"sw/v1/devices/{d1.id}/telemetry",
                                                   f"sw/v1/devices/{d2.id}/telemetry"])


def test_app_publishes_rpc_request_to_device(server, tenant, dev):
    c = device_client(server, dev)
    c.subscribe("v1/devices/me/rpc/request/+", 1)
    app = raw_app(server, tenant)
    ack = app.publish(f"sw/v1/devices/{dev.id}/rpc/request/5", {"method": "blink", "params": {"n": 2}}, qos=1)
    assert ack.rc in PUB_OK
    m = c.messages.wait_one()
    assert m.topic == "v1/devices/me/rpc/request/5"
    assert m.json() == {"method": "blink", "params": {"n": 2}}


# ---------------------------------------------------------------------------------------------
# per-device message rate
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slow_server(make_server):
    s = make_server(env={"SW_DEVICE_MAX_MSGS_PER_S": "1", "SW_DEVICE_BURST": "2"}, name="mqtt-rate")
    return s, TenantCtx(s, s.admin())


def test_device_over_rate_v5_0x97(slow_server):
    s, t = slow_server
    d = create_device(t)
    c = raw_device(s, d, V5)
    codes = [c.publish(TEL, {"ts": T0 + i, "values": {"r": i}}, qos=1).rc for i in range(6)]
    assert codes[:2] == [0, 0], codes
    assert RC_QUOTA_EXCEEDED in codes, codes
    assert set(codes) <= {0, RC_QUOTA_EXCEEDED}, codes
    stored = t.viewer.raw(d.id, "r", T0, T0 + 10).get("r", [])
    assert len(stored) == codes.count(0)
    c.ping()
    c.disconnect()


def test_device_over_rate_v311_acked_and_dropped(slow_server):
    s, t = slow_server
    d = create_device(t)
    def counted():
        # "counted in /metrics": as an MQTT drop or as an ingest rejection for the rate
        return (mqtt_metric(s, "sw_mqtt_messages_dropped_total") +
                mqtt_metric(s, "sw_ingest_rejected_total", {"reason": "rate_limited"}))
    before = counted()
    c = raw_device(s, d, V311)
    for i in range(6):
        ack = c.publish(TEL, {"ts": T0 + i, "values": {"r": i}}, qos=1)
        assert ack.type == PUBACK
    stored = t.viewer.raw(d.id, "r", T0, T0 + 10).get("r", [])
    assert 2 <= len(stored) < 6
    after = counted()
    assert after - before >= 6 - len(stored), (before, after)
    c.disconnect()


def test_rate_shared_between_http_and_mqtt(slow_server):
    s, t = slow_server
    d = create_device(t)
    for i in range(2):
        s.ingest(d.token, {"h": i})
    c = raw_device(s, d, V5)
    ack = c.publish(TEL, {"m": 1}, qos=1)
    assert ack.rc == RC_QUOTA_EXCEEDED, ack
    c.disconnect()
