"""Tenant isolation on the broker: topic trees, retained messages, share groups and client ids are
per tenant."""
import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import unique

TEL = "v1/devices/me/telemetry"


@pytest.fixture
def fresh_two(new_tenant):
    """Two new tenants (for tests that must see nothing but their own traffic)."""
    return new_tenant(), new_tenant()


@pytest.fixture(scope="module")
def two(new_tenant):
    """Two tenants shared by the module's tests (each test uses its own topics and client ids)."""
    return new_tenant(), new_tenant()


def test_hash_subscribers_never_see_other_tenant(server, fresh_two):
    a, b = fresh_two
    spy = app_client(server, a, "viewer")
    assert spy.subscribe("#", 2) == [2]
    spy_share = app_client(server, a, "viewer")
    assert spy_share.subscribe("$share/g/#", 2) == [2]
    spy_v3 = app_client(server, a, "admin", version=V311)
    assert spy_v3.subscribe("#", 1) == [1]

    # everything tenant B can produce
    db = create_device(b)
    gb = create_device(b, gateway=True)
    listener_b = app_client(server, b, "viewer")
    listener_b.subscribe("#", 1)
    dev_b = device_client(server, db)
    dev_b.subscribe("v1/devices/me/rpc/request/+", 1)
    app_b = app_client(server, b)
    app_b.publish("common/topic", "b-secret", qos=1)
    app_b.publish("common/retained", "b-retained", qos=1, retain=True)
    dev_b.publish(TEL, {"b": 1}, qos=1)
    dev_b.publish("v1/devices/me/attributes", {"b": 1}, qos=1)
    server.ingest_ok(db.token, {"b": 2})
    set_shared(b, db.id, {"b_shared": 1})
    assert b.admin.post(f"/api/v1/devices/{db.id}/rpc", {"method": "m", "oneway": True}).status_code == 202
    gw = raw_device(server, gb, V5)
    gw.publish("v1/gateway/telemetry", {unique("SubB"): {"g": 1}}, qos=1)
    will_b = RawClient(server.mqtt_port, V5)
    will_b.connect(*app_creds(b), will={"topic": "common/will", "payload": b"b-will"})
    will_b.close()
    # B saw its own traffic: the whole list went through the broker
    listener_b.messages.wait_for(1, topic="common/will")
    listener_b.messages.wait_for(1, topic=f"sw/v1/devices/{db.id}/telemetry")

    # barrier: a message of tenant A reaches the spies, after all of B's traffic
    app_a = app_client(server, a)
    app_a.publish("common/topic", "a-barrier", qos=1)
    for s in (spy, spy_share, spy_v3):
        s.messages.wait_one(topic="common/topic")
    for s in (spy, spy_share, spy_v3):
        s.messages.quiet(0.3)
        assert [(m.topic, m.payload) for m in s.messages.msgs] == [("common/topic", b"a-barrier")], s.messages.msgs
    # B's listener never saw A's barrier
    assert listener_b.messages.matching(pred=lambda m: m.payload == b"a-barrier") == []


def test_retained_messages_per_tenant(server, fresh_two):
    a, b = fresh_two
    topic = f"iso/{unique('r')}"
    app_client(server, b).publish(topic, "b-value", qos=1, retain=True)
    sa = app_client(server, a, "viewer")
    sa.subscribe(topic, 1)
    sa.subscribe("#", 1)
    sa.messages.quiet()
    assert len(sa.messages) == 0
    app_client(server, a).publish(topic, "a-value", qos=1, retain=True)
    sb = app_client(server, b, "viewer")
    sb.subscribe(topic, 1)
    m = sb.messages.wait_one(topic=topic)
    assert m.payload == b"b-value"
    sb.messages.quiet(0.3)
    assert [x.payload for x in sb.messages.msgs] == [b"b-value"]


def test_share_groups_per_tenant(server, two):
    a, b = two
    topic = f"iso/{unique('s')}"
    ma = app_client(server, a, "viewer")
    mb = app_client(server, b, "viewer")
    ma.subscribe(f"$share/g/{topic}", 1)
    mb.subscribe(f"$share/g/{topic}", 1)
    pa, pb = app_client(server, a), app_client(server, b)
    for i in range(4):
        pa.publish(topic, f"a{i}", qos=1)
        pb.publish(topic, f"b{i}", qos=1)
    assert sorted(m.payload for m in ma.messages.wait_for(4)) == [b"a0", b"a1", b"a2", b"a3"]
    assert sorted(m.payload for m in mb.messages.wait_for(4)) == [b"b0", b"b1", b"b2", b"b3"]
    ma.messages.quiet(0.3)
    assert len(ma.messages) == 4 and len(mb.messages) == 4


@pytest.mark.parametrize("version", [V311, V5])
def test_same_client_id_in_two_tenants_no_takeover(server, two, version):
    a, b = two
    cid = unique("same")
    ca = RawClient(server.mqtt_port, version)
    ca.connect(*app_creds(a), client_id=cid)
    cb = RawClient(server.mqtt_port, version)
    cb.connect(*app_creds(b), client_id=cid)
    assert ca.is_open(0.7), f"tenant A's connection closed: {ca.buf!r}"
    assert ca.drain(0.1) == []  # no DISCONNECT
    ca.ping()
    cb.ping()
    # both receive their own tenant's messages
    topic = unique("t")
    ca.subscribe(topic, 1)
    cb.subscribe(topic, 1)
    app_client(server, a).publish(topic, "for-a", qos=1)
    app_client(server, b).publish(topic, "for-b", qos=1)
    assert [p.payload for p in ca.publishes(1)] == [b"for-a"]
    assert [p.payload for p in cb.publishes(1)] == [b"for-b"]
    ca.no_publish(0.3)
    cb.no_publish(0.1)
    ca.disconnect()
    cb.disconnect()


def test_persistent_session_not_shared_across_tenants(server, two):
    a, b = two
    cid, topic = unique("same"), unique("t")
    sa = connect_client(server.mqtt_port, *app_creds(a, "viewer"), client_id=cid, version=V5, session_expiry=60)
    sa.subscribe(topic, 1)
    sa.disconnect()
    sb = connect_client(server.mqtt_port, *app_creds(b, "viewer"), client_id=cid, version=V5, clean=False,
                        session_expiry=60)
    assert sb.session_present is False
    app_client(server, b).publish(topic, "b", qos=1)
    sb.messages.quiet()
    assert len(sb.messages) == 0  # no subscription inherited from tenant A
    sb.disconnect()
    sa2 = connect_client(server.mqtt_port, *app_creds(a, "viewer"), client_id=cid, version=V5, clean=False,
                         session_expiry=60)
    assert sa2.session_present is True


def test_app_cannot_reach_other_tenant_device(server, two):
    a, b = two
    db = create_device(b)
    dev = device_client(server, db)
    dev.subscribe("v1/devices/me/#", 1)
    app_a = raw_app(server, a)
    app_a.publish(f"sw/v1/devices/{db.id}/rpc/request/1", {"method": "evil"}, qos=1)
    app_a.publish(f"sw/v1/devices/{db.id}/rpc/response/1", {"evil": True}, qos=1)
    dev.messages.quiet()
    assert len(dev.messages) == 0
    # and the REST side: RPC to another tenant's device is 404
    assert a.admin.post(f"/api/v1/devices/{db.id}/rpc", {"method": "m", "oneway": True}).status_code == 404


def test_app_of_other_tenant_cannot_see_device_stream(server, two):
    a, b = two
    db = create_device(b)
    spy = app_client(server, a, "viewer")
    spy.subscribe(f"sw/v1/devices/{db.id}/#", 1)
    raw_device(server, db, V311).publish(TEL, {"x": 1}, qos=1)
    spy.messages.quiet()
    assert len(spy.messages) == 0


def test_gateway_subdevice_names_per_tenant(server, two):
    a, b = two
    name = unique("SameName")
    ga, gb = create_device(a, gateway=True), create_device(b, gateway=True)
    raw_device(server, ga, V5).publish("v1/gateway/telemetry", {name: {"v": 1}}, qos=1)
    raw_device(server, gb, V5).publish("v1/gateway/telemetry", {name: {"v": 2}}, qos=1)

    def find(t):
        items = [d for d in t.viewer.list_all("/api/v1/devices", q=name) if d["name"] == name]
        return items[0] if items else None
    da = poll(lambda: find(a), what="sub-device in A")
    db = poll(lambda: find(b), what="sub-device in B")
    assert da["id"] != db["id"]
    assert da["gateway_id"] == ga.id and db["gateway_id"] == gb.id
    assert latest(a, da["id"])["v"]["value"] == 1
    assert latest(b, db["id"])["v"]["value"] == 2
