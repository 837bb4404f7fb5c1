"""MQTT 5 features: topic aliases, maximum packet size of the client, receive maximum (server to
client), message expiry, shared subscriptions, property pass-through, subscription identifiers,
no-local, retain-as-published, retain handling, will delay."""
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import unique


def base() -> str:
    return f"v5/{unique('t')}"


# ---------------------------------------------------------------------------------------------
# topic aliases (client to server)
# ---------------------------------------------------------------------------------------------
def test_topic_alias_client_to_server(server, tenant):
    b = base()
    sub = raw_app(server, tenant, "viewer")
    sub.subscribe(f"{b}/#", 1)
    pub = raw_app(server, tenant)
    assert pub.publish(f"{b}/one", b"1", qos=1, props={P_TOPIC_ALIAS: 1}).rc in PUB_OK
    assert pub.publish("", b"2", qos=1, props={P_TOPIC_ALIAS: 1}).rc in PUB_OK
    assert pub.publish("", b"3", qos=0, props={P_TOPIC_ALIAS: 1}) is None
    # re-map alias 1; alias 2 alongside
    assert pub.publish(f"{b}/two", b"4", qos=1, props={P_TOPIC_ALIAS: 1}).rc in PUB_OK
    assert pub.publish("", b"5", qos=1, props={P_TOPIC_ALIAS: 1}).rc in PUB_OK
    assert pub.publish(f"{b}/three", b"6", qos=1, props={P_TOPIC_ALIAS: 2}).rc in PUB_OK
    assert pub.publish("", b"7", qos=1, props={P_TOPIC_ALIAS: 2}).rc in PUB_OK
    got = sub.publishes(7)
    assert [(p.topic, p.payload) for p in got] == [
        (f"{b}/one", b"1"), (f"{b}/one", b"2"), (f"{b}/one", b"3"), (f"{b}/two", b"4"), (f"{b}/two", b"5"),
        (f"{b}/three", b"6"), (f"{b}/three", b"7")]
    # the subscriber did not ask for aliases: none are sent to it
    assert all(P_TOPIC_ALIAS not in p.props for p in got)
    pub.disconnect()
    sub.disconnect()


def test_topic_alias_paho(server, tenant):
    topic = base()
    sub = app_client(server, tenant, "viewer")
    sub.subscribe(topic, 1)
    pub = app_client(server, tenant)
    pub.publish(topic, "a", qos=1, TopicAlias=5)
    pub.publish("", "b", qos=1, TopicAlias=5)
    assert [(m.topic, m.payload) for m in sub.messages.wait_for(2)] == [(topic, b"a"), (topic, b"b")]


# ---------------------------------------------------------------------------------------------
# maximum packet size requested by the client
# ---------------------------------------------------------------------------------------------
def test_client_maximum_packet_size_respected(server, tenant):
    topic = base()
    u, p = app_creds(tenant, "viewer")
    small = RawClient(server.mqtt_port, V5)
    small.connect(u, p, props={P_MAXIMUM_PACKET_SIZE: 300})
    small.subscribe(topic, 1)
    big = raw_app(server, tenant, "viewer")
    big.subscribe(topic, 1)
    pub = raw_app(server, tenant)
    pub.publish(topic, b"x" * 1000, qos=1)
    pub.publish(topic, b"small", qos=1)
    assert [p.payload for p in big.publishes(2)] == [b"x" * 1000, b"small"]
    got = small.publishes(1)
    assert got[0].payload == b"small"
    small.no_publish(0.5)
    assert all(len(p.raw) <= 300 for p in got)
    small.ping()  # still connected
    small.disconnect()


# ---------------------------------------------------------------------------------------------
# receive maximum advertised by the client
# ---------------------------------------------------------------------------------------------
def test_receive_maximum_limits_unacked_qos1(server, tenant):
    topic = base()
    u, p = app_creds(tenant, "viewer")
    c = RawClient(server.mqtt_port, V5, auto_ack=False)
    c.connect(u, p, props={P_RECEIVE_MAXIMUM: 2})
    c.subscribe(topic, 1)
    pub = raw_app(server, tenant)
    for i in range(5):
        pub.publish(topic, f"m{i}", qos=1)
    first = c.publishes(2)
    c.no_publish(0.7)  # a third would exceed the client's receive maximum
    c.send(ack_packet(PUBACK, first[0].pid))
    third = c.publishes(1)
    c.no_publish(0.5)
    for p_ in first[1:] + third:
        c.send(ack_packet(PUBACK, p_.pid))
    rest = c.publishes(2)
    for p_ in rest:
        c.send(ack_packet(PUBACK, p_.pid))
    assert [x.payload for x in first + third + rest] == [f"m{i}".encode() for i in range(5)]
    c.no_publish(0.3)
    c.disconnect()


def test_receive_maximum_counts_qos2_until_pubcomp(server, tenant):
    topic = base()
    u, p = app_creds(tenant, "viewer")
    c = RawClient(server.mqtt_port, V5, auto_ack=False)
    c.connect(u, p, props={P_RECEIVE_MAXIMUM: 1})
    c.subscribe(topic, 2)
    pub = raw_app(server, tenant)
    pub.publish(topic, b"a", qos=2)
    pub.publish(topic, b"b", qos=2)
    a = c.publishes(1)[0]
    c.send(ack_packet(PUBREC, a.pid))
    c.expect(PUBREL, pid=a.pid)
    c.no_publish(0.5)  # still in flight until PUBCOMP
    c.send(ack_packet(PUBCOMP, a.pid))
    b_ = c.publishes(1)[0]
    assert (a.payload, b_.payload) == (b"a", b"b")
    c.disconnect()


# ---------------------------------------------------------------------------------------------
# message expiry
# ---------------------------------------------------------------------------------------------
def test_message_expiry_while_offline(server, tenant):
    topic, cid = base(), unique("exp")
    u, p = app_creds(tenant, "viewer")
    c = RawClient(server.mqtt_port, V5)
    c.connect(u, p, client_id=cid, props={P_SESSION_EXPIRY: 60})
    c.subscribe(topic, 1)
    c.disconnect()
    pub = raw_app(server, tenant)
    pub.publish(topic, b"short", qos=1, props={P_MESSAGE_EXPIRY: 1})
    pub.publish(topic, b"forever", qos=1)
    pub.publish(topic, b"long", qos=1, props={P_MESSAGE_EXPIRY: 100})
    time.sleep(2.2)
    c = RawClient(server.mqtt_port, V5)
    ack = c.connect(u, p, client_id=cid, clean=False, props={P_SESSION_EXPIRY: 60})
    assert ack.session_present
    got = c.publishes(2)
    c.no_publish(0.5)
    assert [x.payload for x in got] == [b"forever", b"long"]
    assert P_MESSAGE_EXPIRY not in got[0].props
    assert 90 <= got[1].props.get(P_MESSAGE_EXPIRY, -1) <= 100 - 2, got[1]  # the remaining lifetime
    c.disconnect()


def test_message_expiry_forwarded_live(server, tenant):
    topic = base()
    sub = raw_app(server, tenant, "viewer")
    sub.subscribe(topic, 1)
    pub = raw_app(server, tenant)
    pub.publish(topic, b"e", qos=1, props={P_MESSAGE_EXPIRY: 30})
    got = sub.publishes(1)[0]
    assert 0 < got.props.get(P_MESSAGE_EXPIRY, -1) <= 30


def test_retained_message_expires(server, tenant):
    topic = base()
    pub = raw_app(server, tenant)
    pub.publish(topic, b"stale", qos=1, retain=True, props={P_MESSAGE_EXPIRY: 1})
    time.sleep(2.2)
    sub = raw_app(server, tenant, "viewer")
    sub.subscribe(topic, 1)
    sub.no_publish(0.5)
    sub.disconnect()


# ---------------------------------------------------------------------------------------------
# shared subscriptions
# ---------------------------------------------------------------------------------------------
def test_shared_subscription_distributes_without_duplicates(server, tenant):
    topic = base()
    m1 = app_client(server, tenant, "viewer")
    m2 = app_client(server, tenant, "viewer")
    plain = app_client(server, tenant, "viewer")
    for m in (m1, m2):
        assert m.subscribe(f"$share/g1/{topic}", 1) == [1]
    plain.subscribe(topic, 1)
    pub = app_client(server, tenant)
    n = 20
    for i in range(n):
        pub.publish(topic, str(i), qos=1)
    plain.messages.wait_for(n)

    def total():
        return len(m1.messages.matching(topic)) + len(m2.messages.matching(topic))
    poll(lambda: total() >= n, what=f"{n} messages over the share group")
    time.sleep(0.3)
    a = [m.payload for m in m1.messages.matching(topic)]
    b = [m.payload for m in m2.messages.matching(topic)]
    assert a and b, f"one member got nothing: {len(a)} / {len(b)}"
    assert sorted(a + b, key=int) == [str(i).encode() for i in range(n)], "lost or duplicated"
    assert not (m1.messages.matching(lambda t: t.startswith("$share")) or
                m2.messages.matching(lambda t: t.startswith("$share")))


def test_shared_subscription_groups_are_independent(server, tenant):
    b = base()
    g1 = app_client(server, tenant, "viewer")
    g2 = app_client(server, tenant, "viewer")
    g1.subscribe(f"$share/ga/{b}/+", 1)
    g2.subscribe(f"$share/gb/{b}/+", 1)
    pub = app_client(server, tenant)
    for i in range(4):
        pub.publish(f"{b}/{i}", str(i), qos=1)
    assert len(g1.messages.wait_for(4)) == 4
    assert len(g2.messages.wait_for(4)) == 4


def test_shared_subscription_member_leaves(server, tenant):
    topic = base()
    m1 = app_client(server, tenant, "viewer")
    m2 = app_client(server, tenant, "viewer")
    m1.subscribe(f"$share/g/{topic}", 1)
    m2.subscribe(f"$share/g/{topic}", 1)
    m2.disconnect()
    pub = app_client(server, tenant)
    for i in range(5):
        pub.publish(topic, str(i), qos=1)
    assert len(m1.messages.wait_for(5)) == 5


# ---------------------------------------------------------------------------------------------
# properties passed through
# ---------------------------------------------------------------------------------------------
def test_publish_properties_passed_through(server, tenant):
    topic = base()
    sub = raw_app(server, tenant, "viewer")
    sub.subscribe(topic, 1)
    pub = raw_app(server, tenant)
    users = [("a", "1"), ("b", "2"), ("a", "3"), ("ünï", "cödé")]
    pub.publish(topic, b"\x00\x01binary", qos=1, props=[
        (P_USER_PROPERTY, users),
        (P_RESPONSE_TOPIC, f"{topic}/reply"),
        (P_CORRELATION_DATA, b"\x00\xffcorr"),
        (P_CONTENT_TYPE, "application/x-test; v=1"),
        (P_PAYLOAD_FORMAT, 0),
    ])
    got = sub.publishes(1)[0]
    assert got.payload == b"\x00\x01binary"
    assert got.props[P_USER_PROPERTY] == users  # order and duplicates preserved
    assert got.props[P_RESPONSE_TOPIC] == f"{topic}/reply"
    assert got.props[P_CORRELATION_DATA] == b"\x00\xffcorr"
    assert got.props[P_CONTENT_TYPE] == "application/x-test; v=1"
    assert got.props.get(P_PAYLOAD_FORMAT, 0) == 0


def test_payload_format_indicator_and_paho_props(server, tenant):
    topic = base()
    sub = app_client(server, tenant, "viewer")
    sub.subscribe(topic, 1)
    pub = app_client(server, tenant)
    pub.publish(topic, "text", qos=1, PayloadFormatIndicator=1, ContentType="text/plain",
                ResponseTopic="r/t", CorrelationData=b"cd", UserProperty=[("k", "v")])
    m = sub.messages.wait_one(topic=topic)
    assert m.prop("PayloadFormatIndicator") == 1
    assert m.prop("ContentType") == "text/plain"
    assert m.prop("ResponseTopic") == "r/t"
    assert m.prop("CorrelationData") == b"cd"
    assert m.prop("UserProperty") == [("k", "v")]


def test_request_response_between_apps(server, tenant):
    """Response topic + correlation data: a responder app answers a requester app."""
    b = base()
    responder = app_client(server, tenant)
    responder.subscribe(f"{b}/req", 1)

    def answer(client, m):
        client.c.publish(m.prop("ResponseTopic"), b"pong:" + m.payload, 1,
                         properties=props(PacketTypes.PUBLISH, CorrelationData=m.prop("CorrelationData")))
    responder.handler = answer
    requester = raw_app(server, tenant)
    requester.subscribe(f"{b}/resp", 1)
    requester.publish(f"{b}/req", b"ping", qos=1,
                      props={P_RESPONSE_TOPIC: f"{b}/resp", P_CORRELATION_DATA: b"id-42"})
    r = requester.publishes(1, topic=f"{b}/resp")[0]
    assert r.payload == b"pong:ping" and r.props[P_CORRELATION_DATA] == b"id-42"


def test_v5_properties_not_leaked_to_v311(server, tenant):
    topic = base()
    sub = raw_app(server, tenant, "viewer", V311)
    sub.subscribe(topic, 1)
    pub = raw_app(server, tenant)
    pub.publish(topic, b"plain", qos=1, props={P_USER_PROPERTY: [("a", "b")], P_CONTENT_TYPE: "x/y"})
    assert sub.publishes(1)[0].payload == b"plain"  # decoded as 3.1.1: the payload is intact


# ---------------------------------------------------------------------------------------------
# subscription options and identifiers
# ---------------------------------------------------------------------------------------------
def test_subscription_identifiers(server, tenant):
    b = base()
    c = raw_app(server, tenant, "viewer")
    assert c.subscribe(f"{b}/x", 1, props={P_SUBSCRIPTION_ID: 42}) == [1]
    assert c.subscribe(f"{b}/y", 1) == [1]
    assert c.subscribe(f"{b}/z/#", 1, props={P_SUBSCRIPTION_ID: 268435455}) == [1]
    pub = raw_app(server, tenant)
    pub.publish(f"{b}/x", b"x", qos=1)
    pub.publish(f"{b}/y", b"y", qos=1)
    pub.publish(f"{b}/z/1", b"z", qos=1)
    got = {p.topic: p for p in c.publishes(3)}
    assert got[f"{b}/x"].props.get(P_SUBSCRIPTION_ID) == [42]
    assert P_SUBSCRIPTION_ID not in got[f"{b}/y"].props
    assert got[f"{b}/z/1"].props.get(P_SUBSCRIPTION_ID) == [268435455]


def test_subscription_identifiers_overlapping(server, tenant):
    b = base()
    c = raw_app(server, tenant, "viewer")
    c.subscribe(f"{b}/#", 1, props={P_SUBSCRIPTION_ID: 7})
    c.subscribe(f"{b}/x", 1, props={P_SUBSCRIPTION_ID: 8})
    raw_app(server, tenant).publish(f"{b}/x", b"o", qos=1)
    got = [p for p in c.drain(1.0) if p.type == PUBLISH]
    assert got
    ids = sorted(i for p in got for i in p.props.get(P_SUBSCRIPTION_ID, []))
    assert ids == [7, 8], got


def test_subscription_identifier_replaced_on_resubscribe(server, tenant):
    topic = base()
    c = raw_app(server, tenant, "viewer")
    c.subscribe(topic, 1, props={P_SUBSCRIPTION_ID: 1})
    c.subscribe(topic, 1, props={P_SUBSCRIPTION_ID: 2})
    raw_app(server, tenant).publish(topic, b"o", qos=1)
    got = c.publishes(1)
    c.no_publish(0.3)
    assert got[0].props.get(P_SUBSCRIPTION_ID) == [2]


def test_no_local(server, tenant):
    topic = base()
    u, p = app_creds(tenant)
    me = RawClient(server.mqtt_port, V5)
    me.connect(u, p)
    assert me.subscribe([(topic, sub_options(qos=1, no_local=True))]) == [1]
    other = raw_app(server, tenant, "viewer")
    other.subscribe(topic, 1)
    me.publish(topic, b"mine", qos=1)
    assert other.publishes(1)[0].payload == b"mine"
    me.no_publish(0.5)
    # a message from someone else does reach it
    raw_app(server, tenant).publish(topic, b"theirs", qos=1)
    assert me.publishes(1)[0].payload == b"theirs"
    # control: without no-local a client receives its own messages
    me.unsubscribe(topic)
    me.subscribe([(topic, sub_options(qos=1))])
    me.publish(topic, b"mine-again", qos=1)
    assert me.publishes(1, topic=topic)[0].payload == b"mine-again"
    me.disconnect()


def test_retain_as_published(server, tenant):
    topic = base()
    rap = raw_app(server, tenant, "viewer")
    rap.subscribe([(topic, sub_options(qos=1, rap=True))])
    norap = raw_app(server, tenant, "viewer")
    norap.subscribe([(topic, sub_options(qos=1, rap=False))])
    pub = raw_app(server, tenant)
    pub.publish(topic, b"r", qos=1, retain=True)
    pub.publish(topic, b"n", qos=1, retain=False)
    a = rap.publishes(2)
    b = norap.publishes(2)
    assert [(x.payload, x.retain) for x in a] == [(b"r", True), (b"n", False)]
    assert [(x.payload, x.retain) for x in b] == [(b"r", False), (b"n", False)]
    pub.publish(topic, b"", qos=1, retain=True)


def test_retain_handling(server, tenant):
    topic = base()
    pub = raw_app(server, tenant)
    pub.publish(topic, b"kept", qos=1, retain=True)
    c = raw_app(server, tenant, "viewer")
    # 2: never send retained messages on subscribe
    c.subscribe([(topic, sub_options(qos=1, rh=2))])
    c.no_publish(0.5)
    c.unsubscribe(topic)
    # 1: only when the subscription is new
    c.subscribe([(topic, sub_options(qos=1, rh=1))])
    p = c.publishes(1)[0]
    assert p.payload == b"kept" and p.retain
    c.subscribe([(topic, sub_options(qos=1, rh=1))])
    c.no_publish(0.5)
    # 0: on every subscribe
    c.subscribe([(topic, sub_options(qos=1, rh=0))])
    assert c.publishes(1)[0].payload == b"kept"
    c.subscribe([(topic, sub_options(qos=1, rh=0))])
    assert c.publishes(1)[0].payload == b"kept"
    # live publications still arrive for a retain-handling-2 subscription
    c.subscribe([(topic, sub_options(qos=1, rh=2))])
    c.no_publish(0.3)
    pub.publish(topic, b"live", qos=1)
    assert c.publishes(1)[0].payload == b"live"
    pub.publish(topic, b"", qos=1, retain=True)
    c.disconnect()


def test_suback_grants_requested_qos(server, tenant):
    c = raw_app(server, tenant, "viewer")
    b = base()
    assert c.subscribe([(f"{b}/0", 0), (f"{b}/1", 1), (f"{b}/2", 2)]) == [0, 1, 2]
    c.disconnect()


# ---------------------------------------------------------------------------------------------
# will delay
# ---------------------------------------------------------------------------------------------
def will_client(server, tenant, wt, cid, delay, expiry=60, payload=b"will"):
    u, p = app_creds(tenant)
    c = RawClient(server.mqtt_port, V5)
    c.connect(u, p, client_id=cid, props={P_SESSION_EXPIRY: expiry},
              will={"topic": wt, "payload": payload, "qos": 1, "props": {P_WILL_DELAY: delay}})
    return c


def test_will_delay_cancelled_by_reconnect(server, tenant):
    wt, cid = base() + "/will", unique("wd")
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    c = will_client(server, tenant, wt, cid, delay=2)
    c.close()
    time.sleep(0.2)
    u, p = app_creds(tenant)
    again = RawClient(server.mqtt_port, V5)
    ack = again.connect(u, p, client_id=cid, clean=False, props={P_SESSION_EXPIRY: 60})
    assert ack.session_present
    watcher.messages.quiet(3.0)
    assert watcher.messages.matching(wt) == []
    again.disconnect()


def test_will_delay_sent_after_delay(server, tenant):
    wt, cid = base() + "/will", unique("wd")
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    c = will_client(server, tenant, wt, cid, delay=1)
    t0 = time.monotonic()
    c.close()
    m = watcher.messages.wait_one(topic=wt, timeout=6)
    elapsed = time.monotonic() - t0
    assert m.payload == b"will"
    assert elapsed >= 0.8, f"will sent after {elapsed:.2f}s, before its 1 s delay"


def test_will_delay_longer_than_session_expiry(server, tenant):
    """The will goes out when the session ends, if that comes first (MQTT 5 3.1.3.2.2)."""
    wt, cid = base() + "/will", unique("wd")
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    c = will_client(server, tenant, wt, cid, delay=60, expiry=1)
    c.close()
    assert watcher.messages.wait_one(topic=wt, timeout=6).payload == b"will"


def test_will_properties_passed_through(server, tenant):
    wt = base() + "/will"
    watcher = raw_app(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    u, p = app_creds(tenant)
    c = RawClient(server.mqtt_port, V5)
    c.connect(u, p, will={"topic": wt, "payload": b"{}", "qos": 1,
                          "props": {P_CONTENT_TYPE: "application/json", P_USER_PROPERTY: [("why", "test")]}})
    c.close()
    m = watcher.publishes(1)[0]
    assert m.props.get(P_CONTENT_TYPE) == "application/json"
    assert m.props.get(P_USER_PROPERTY) == [("why", "test")]


def test_disconnect_with_will_message_sends_will(server, tenant):
    """DISCONNECT reason 0x04 (disconnect with will message) publishes the will."""
    wt = base() + "/will"
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    u, p = app_creds(tenant)
    c = RawClient(server.mqtt_port, V5)
    c.connect(u, p, will={"topic": wt, "payload": b"bye", "qos": 1})
    c.disconnect(rc=0x04)
    assert watcher.messages.wait_one(topic=wt).payload == b"bye"
