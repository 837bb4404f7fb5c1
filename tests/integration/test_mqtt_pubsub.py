"""MQTT publish/subscribe among application clients: QoS 0/1/2 (and the QoS 2 handshake), QoS
downgrade, wildcards, retained messages, unsubscribe, will messages, keep-alive."""
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import unique


def base() -> str:
    return f"ps/{unique('t')}"


# ---------------------------------------------------------------------------------------------
# QoS
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_delivery(server, tenant, version, qos):
    topic = base()
    sub = app_client(server, tenant, "viewer", version=version)
    assert sub.subscribe(topic, 2) == [2]
    pub = app_client(server, tenant, "admin", version=version)
    payloads = [f"m{i}-q{qos}".encode() for i in range(5)]
    for p in payloads:
        pub.publish(topic, p, qos=qos)
    got = sub.messages.wait_for(5, topic=topic)
    assert [m.payload for m in got] == payloads  # in order
    assert all(m.qos == qos and not m.retain for m in got)
    sub.messages.quiet(0.3)
    assert len(sub.messages.matching(topic)) == 5
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("sub_qos,pub_qos,expected", [(0, 1, 0), (0, 2, 0), (1, 2, 1), (2, 1, 1), (1, 0, 0)])
def test_qos_downgraded_to_subscription(server, tenant, sub_qos, pub_qos, expected):
    topic = base()
    sub = app_client(server, tenant, "viewer", version=V311)
    assert sub.subscribe(topic, sub_qos) == [sub_qos]
    pub = app_client(server, tenant, "admin")
    pub.publish(topic, b"x", qos=pub_qos)
    m = sub.messages.wait_one(topic=topic)
    assert m.qos == expected


def test_per_subscription_qos_raw(server, tenant):
    """Two subscriptions of one client with different QoS on different topics."""
    t = base()
    sub = raw_app(server, tenant, "viewer")
    assert sub.subscribe([(t + "/zero", 0), (t + "/two", 2)]) == [0, 2]
    pub = raw_app(server, tenant)
    pub.publish(t + "/zero", b"a", qos=2)
    pub.publish(t + "/two", b"b", qos=2)
    got = {p.topic: p for p in sub.publishes(2)}
    assert got[t + "/zero"].qos == 0 and got[t + "/zero"].pid is None
    assert got[t + "/two"].qos == 2 and got[t + "/two"].pid
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_qos2_exactly_once_inbound(server, tenant, version):
    """PUBLISH QoS 2 -> PUBREC; a DUP retransmission before PUBREL is not delivered twice;
    PUBREL -> PUBCOMP."""
    topic = base()
    sub = app_client(server, tenant, "viewer")
    sub.subscribe(topic, 2)
    c = raw_app(server, tenant, "admin", version)
    c.send(publish_packet(topic, b"once", qos=2, pid=77, version=version))
    rec = c.expect(PUBREC, pid=77)
    assert rec.rc in PUB_OK
    if version == V311:
        assert rec.raw == b"\x50\x02\x00\x4d"
    c.send(publish_packet(topic, b"once", qos=2, pid=77, dup=True, version=version))
    rec2 = c.expect(PUBREC, pid=77)
    assert rec2.rc in PUB_OK
    c.send(ack_packet(PUBREL, 77, version=version))
    comp = c.expect(PUBCOMP, pid=77)
    assert comp.rc == 0
    if version == V311:
        assert comp.raw == b"\x70\x02\x00\x4d"
    sub.messages.wait_one(topic=topic)
    sub.messages.quiet()
    assert [m.payload for m in sub.messages.matching(topic)] == [b"once"]
    # a new message may reuse packet id 77 after PUBCOMP
    c.send(publish_packet(topic, b"again", qos=2, pid=77, version=version))
    c.expect(PUBREC, pid=77)
    c.send(ack_packet(PUBREL, 77, version=version))
    c.expect(PUBCOMP, pid=77)
    sub.messages.wait_for(2, topic=topic)
    c.disconnect()


def test_qos1_puback_bytes_v311(server, tenant):
    c = raw_app(server, tenant, "admin", V311)
    c.send(publish_packet(base(), b"x", qos=1, pid=0x1234, version=V311))
    ack = c.expect(PUBACK)
    assert ack.raw == b"\x40\x02\x12\x34"
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_qos2_outbound_handshake(server, tenant, version):
    topic = base()
    sub = raw_app(server, tenant, "viewer", version)
    sub.auto_ack = False
    assert sub.subscribe(topic, 2) == [2]
    pub = app_client(server, tenant, "admin")
    pub.publish(topic, b"q2", qos=2)
    p = sub.expect(PUBLISH)
    assert p.qos == 2 and p.payload == b"q2" and p.pid
    sub.send(ack_packet(PUBREC, p.pid, version=version))
    rel = sub.expect(PUBREL, pid=p.pid)
    assert rel.flags == 0x02
    sub.send(ack_packet(PUBCOMP, p.pid, version=version))
    sub.no_publish(0.5)
    sub.ping()
    sub.disconnect()


def test_qos1_outbound_packet_ids_and_acks(server, tenant):
    topic = base()
    sub = raw_app(server, tenant, "viewer", V311)
    sub.subscribe(topic, 1)
    pub = app_client(server, tenant, "admin")
    for i in range(10):
        pub.publish(topic, str(i), qos=1)
    got = sub.publishes(10, topic=topic)
    assert [p.payload for p in got] == [str(i).encode() for i in range(10)]
    assert all(p.qos == 1 and p.pid and not p.dup for p in got)
    # packet ids of in-flight messages are distinct
    assert len({p.pid for p in got}) == 10
    sub.disconnect()


# ---------------------------------------------------------------------------------------------
# wildcards
# ---------------------------------------------------------------------------------------------
def test_wildcards(server, tenant):
    b = base()
    filters = {
        "plus": f"{b}/+/c",
        "hash": f"{b}/a/#",
        "plus_hash": f"{b}/+/#",
        "exact": f"{b}/a/b/c",
        "plus_end": f"{b}/a/+",
    }
    subs = {}
    for k, f in filters.items():
        subs[k] = app_client(server, tenant, "viewer", version=V311)
        assert subs[k].subscribe(f, 1) == [1]
    topics = [f"{b}/a/c", f"{b}/x/c", f"{b}/a/b/c", f"{b}/a", f"{b}/a/b", f"{b}/b/c/d", f"{b}/a/", f"{b}/c"]
    pub = app_client(server, tenant, "admin")
    for t in topics:
        pub.publish(t, t, qos=1)
    expected = {
        "plus": {f"{b}/a/c", f"{b}/x/c"},
        "hash": {f"{b}/a", f"{b}/a/c", f"{b}/a/b/c", f"{b}/a/b", f"{b}/a/"},
        "plus_hash": set(topics),
        "exact": {f"{b}/a/b/c"},
        "plus_end": {f"{b}/a/c", f"{b}/a/b", f"{b}/a/"},
    }
    # '+/#' matches every topic with at least one level below b
    for k, exp in expected.items():
        subs[k].messages.wait_for(len(exp))
    time.sleep(0.3)
    for k, exp in expected.items():
        got = [m.topic for m in subs[k].messages.msgs]
        assert sorted(got) == sorted(exp), (k, filters[k], got)
        assert all(m.payload.decode() == m.topic for m in subs[k].messages.msgs)


def test_hash_alone_matches_everything(server, new_tenant):
    t = new_tenant()
    sub = app_client(server, t, "viewer", version=V311)
    assert sub.subscribe("#", 1) == [1]
    pub = raw_app(server, t)
    pub.publish("plain/topic", b"1", qos=1)
    sub.messages.wait_one(topic="plain/topic")
    pub.disconnect()


def test_one_message_per_client_for_overlapping_subscriptions(server, tenant):
    """Overlapping subscriptions of one client: at least one copy, at the highest QoS
    (MQTT 3.1.1 [MQTT-3.3.5-1])."""
    b = base()
    sub = raw_app(server, tenant, "viewer", V311)
    assert sub.subscribe([(f"{b}/#", 0), (f"{b}/+", 1)]) == [0, 1]
    pub = raw_app(server, tenant)
    pub.publish(f"{b}/x", b"o", qos=1)
    got = [p for p in sub.drain(1.0) if p.type == PUBLISH]
    assert got, "not delivered"
    assert max(p.qos for p in got) == 1


# ---------------------------------------------------------------------------------------------
# retained messages
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_retained_set_receive_clear(server, tenant, version):
    topic = base()
    live = app_client(server, tenant, "viewer", version=version)
    live.subscribe(topic, 1)
    pub = app_client(server, tenant, "admin", version=version)
    pub.publish(topic, b"r1", qos=1, retain=True)
    m = live.messages.wait_one(topic=topic)
    assert m.payload == b"r1" and m.retain is False  # live delivery: retain flag cleared (3.1.1 / RAP=0)

    s1 = app_client(server, tenant, "viewer", version=version)
    s1.subscribe(topic, 1)
    m = s1.messages.wait_one(topic=topic)
    assert m.payload == b"r1" and m.retain is True and m.qos == 1

    # replaced
    pub.publish(topic, b"r2", qos=0, retain=True)
    live.messages.wait_for(2, topic=topic)
    s2 = app_client(server, tenant, "viewer", version=version)
    s2.subscribe(f"{topic.rsplit('/', 1)[0]}/+", 1)  # also through a wildcard
    m = s2.messages.wait_one(topic=topic)
    assert m.payload == b"r2" and m.retain is True and m.qos == 0  # min(message QoS 0, sub QoS 1)
    s2.messages.quiet(0.3)
    assert len(s2.messages.matching(topic)) == 1

    # cleared with an empty retained payload
    pub.publish(topic, b"", qos=1, retain=True)
    live.messages.wait_for(3, topic=topic)
    s3 = app_client(server, tenant, "viewer", version=version)
    s3.subscribe(topic, 1)
    s3.messages.quiet()
    assert s3.messages.matching(topic) == []


def test_retained_non_retained_publish_does_not_replace(server, tenant):
    topic = base()
    pub = app_client(server, tenant, "admin")
    pub.publish(topic, b"kept", qos=1, retain=True)
    pub.publish(topic, b"transient", qos=1, retain=False)
    s = app_client(server, tenant, "viewer")
    s.subscribe(topic, 1)
    m = s.messages.wait_one(topic=topic)
    assert m.payload == b"kept" and m.retain
    s.messages.quiet(0.3)
    assert len(s.messages.matching(topic)) == 1
    pub.publish(topic, b"", qos=1, retain=True)


def test_retained_many_topics_matched_by_wildcard(server, tenant):
    b = base()
    pub = app_client(server, tenant, "admin")
    for i in range(5):
        pub.publish(f"{b}/r/{i}", str(i), qos=1, retain=True)
    s = app_client(server, tenant, "viewer")
    s.subscribe(f"{b}/r/#", 1)
    got = s.messages.wait_for(5)
    assert sorted(m.topic for m in got) == [f"{b}/r/{i}" for i in range(5)]
    assert all(m.retain for m in got)


# ---------------------------------------------------------------------------------------------
# unsubscribe
# ---------------------------------------------------------------------------------------------
def test_unsubscribe_stops_delivery(server, tenant):
    topic = base()
    sub = raw_app(server, tenant, "viewer")
    sub.subscribe(topic, 1)
    pub = raw_app(server, tenant)
    pub.publish(topic, b"1", qos=1)
    sub.publishes(1)
    codes = sub.unsubscribe(topic)
    assert codes == [0]
    assert sub.unsubscribe(topic)[0] in (0x00, 0x11)  # v5: 0x11 "no subscription existed" preferred
    pub.publish(topic, b"2", qos=1)
    sub.no_publish()
    sub.disconnect()
    pub.disconnect()


def test_unsubscribe_v311_unsuback(server, tenant):
    c = raw_app(server, tenant, "viewer", V311)
    c.subscribe(base(), 0)
    c.send(unsubscribe_packet(0x0102, ["whatever/topic"], version=V311))
    u = c.expect(UNSUBACK)
    assert u.raw == b"\xb0\x02\x01\x02"
    c.disconnect()


# ---------------------------------------------------------------------------------------------
# will messages
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_will_sent_on_abrupt_close(server, tenant, version):
    wt = base() + "/will"
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    c = RawClient(server.mqtt_port, version)
    u, p = app_creds(tenant)
    c.connect(u, p, will={"topic": wt, "payload": b"gone", "qos": 1})
    c.ping()
    c.close()
    m = watcher.messages.wait_one(topic=wt)
    assert m.payload == b"gone" and m.qos == 1


@pytest.mark.parametrize("version", [V311, V5])
def test_will_not_sent_on_clean_disconnect(server, tenant, version):
    wt = base() + "/will"
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    c = RawClient(server.mqtt_port, version)
    u, p = app_creds(tenant)
    c.connect(u, p, will={"topic": wt, "payload": b"gone", "qos": 1})
    c.disconnect()
    watcher.messages.quiet(1.0)
    assert watcher.messages.matching(wt) == []


def test_will_retained(server, tenant):
    wt = base() + "/will"
    c = RawClient(server.mqtt_port, V311)
    u, p = app_creds(tenant)
    c.connect(u, p, will={"topic": wt, "payload": b"offline", "qos": 1, "retain": True})
    c.close()
    def retained():
        s = app_client(server, tenant, "viewer", version=V311)
        s.subscribe(wt, 1)
        try:
            return s.messages.wait_one(topic=wt, timeout=0.5)
        except AssertionError:
            return None
        finally:
            s.disconnect()
    m = poll(retained, timeout=WAIT, what="retained will")
    assert m.payload == b"offline" and m.retain


def test_will_paho_abrupt(server, tenant):
    wt = base() + "/will"
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 0)
    u, p = app_creds(tenant)
    c = connect_client(server.mqtt_port, u, p, version=V5, will={"topic": wt, "payload": "bye"})
    c.drop()
    assert watcher.messages.wait_one(topic=wt).payload == b"bye"


# ---------------------------------------------------------------------------------------------
# keep-alive
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_keepalive_timeout_closes(server, tenant, version):
    c = RawClient(server.mqtt_port, version)
    u, p = app_creds(tenant)
    c.connect(u, p, keepalive=1)
    t0 = time.monotonic()
    data = c.wait_closed(timeout=6)
    elapsed = time.monotonic() - t0
    assert data == (b"\xe0\x01\x8d" if version == V5 else b"")
    assert elapsed >= 1.0, f"closed after {elapsed:.2f}s, before the keep-alive"


def test_keepalive_will_sent_on_timeout(server, tenant):
    wt = base() + "/will"
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    c = RawClient(server.mqtt_port, V311)
    u, p = app_creds(tenant)
    c.connect(u, p, keepalive=1, will={"topic": wt, "payload": b"timeout", "qos": 1})
    assert watcher.messages.wait_one(topic=wt, timeout=6).payload == b"timeout"
    c.close()


def test_pings_keep_connection_alive(server, tenant):
    c = RawClient(server.mqtt_port, V5)
    u, p = app_creds(tenant)
    c.connect(u, p, keepalive=1)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        c.ping()
        time.sleep(0.4)
    assert c.is_open(0.1)
    c.disconnect()


def test_keepalive_zero_disables(server, tenant):
    c = RawClient(server.mqtt_port, V311)
    u, p = app_creds(tenant)
    c.connect(u, p, keepalive=0)
    assert c.is_open(2.0)
    c.ping()
    c.disconnect()
