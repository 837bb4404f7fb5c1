"""Malformed and forbidden packets on raw sockets: each closes only its own connection, v5 clients
first get `E0 01 <reason>` (docs/mqtt.md "Errors"), 3.1.1 clients are closed without a reply;
CONNACK bytes for unsupported protocol levels and refusals; packet size, receive maximum and
connection limits; server shutdown."""
import re
import socket
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import TenantCtx, unique


def disconnect_bytes(rc: int) -> bytes:
    return bytes([0xE0, 0x01, rc])


def pub(topic, version, **kw):
    return publish_packet(topic, b"payload", version=version, **kw)


# (id, builder(version) -> bytes, v5 reason, also for 3.1.1)
MALFORMED = [
    ("remaining_length_5_bytes", lambda v: b"\x30\xff\xff\xff\xff\x01", RC_MALFORMED, True),
    ("truncated_publish_topic", lambda v: b"\x30\x02\x00\x05", RC_MALFORMED, True),
    ("truncated_publish_packet_id", lambda v: b"\x32\x04\x00\x02ab", RC_MALFORMED, True),
    ("truncated_subscribe",
     lambda v: b"\x82\x05\x00\x01\x00\x00\x05" if v == V5 else b"\x82\x04\x00\x01\x00\x05", RC_MALFORMED, True),
    ("invalid_utf8_topic", lambda v: pub(b"a/\xff\xfe", v), RC_MALFORMED, True),
    ("overlong_utf8_topic", lambda v: pub(b"a/\xc0\xaf", v), RC_MALFORMED, True),
    ("surrogate_utf8_topic", lambda v: pub(b"a/\xed\xa0\x80", v), RC_MALFORMED, True),
    ("nul_in_topic", lambda v: pub(b"a\x00b", v), RC_MALFORMED, True),
    ("plus_in_publish_topic", lambda v: pub("a/+/b", v), RC_TOPIC_NAME_INVALID, True),
    ("hash_in_publish_topic", lambda v: pub("a/#", v), RC_TOPIC_NAME_INVALID, True),
    ("empty_topic_without_alias", lambda v: pub("", v), RC_TOPIC_NAME_INVALID, True),
    ("second_connect", lambda v: connect_packet(v, unique("again"), "x", "y"), RC_PROTOCOL_ERROR, True),
    ("publish_qos3", lambda v: pub("a/b", v, flags=0b0110, pid=1), RC_MALFORMED, True),
    ("subscribe_flags_0", lambda v: subscribe_packet(1, [("a/b", 0)], version=v, flags=0), RC_MALFORMED, True),
    ("unsubscribe_flags_0", lambda v: b"\xa0" + unsubscribe_packet(1, ["a/b"], version=v)[1:], RC_MALFORMED, True),
    ("pingreq_flags_1", lambda v: b"\xc1\x00", RC_MALFORMED, True),
    ("pubrel_flags_0", lambda v: b"\x60\x02\x00\x01", RC_MALFORMED, True),
    ("disconnect_flags_1", lambda v: b"\xe1\x00", RC_MALFORMED, True),
    ("publish_qos1_packet_id_0", lambda v: pub("a/b", v, qos=1, pid=0), RC_MALFORMED, True),
    ("publish_qos2_packet_id_0", lambda v: pub("a/b", v, qos=2, pid=0), RC_MALFORMED, True),
    ("auth_packet", lambda v: b"\xf0\x00", RC_PROTOCOL_ERROR, True),
    ("server_only_connack", lambda v: b"\x20\x02\x00\x00" if v == V311 else b"\x20\x03\x00\x00\x00",
     RC_PROTOCOL_ERROR, True),
    ("server_only_suback", lambda v: b"\x90\x03\x00\x01\x00" if v == V311 else b"\x90\x04\x00\x01\x00\x00",
     RC_PROTOCOL_ERROR, True),
    ("server_only_unsuback", lambda v: b"\xb0\x02\x00\x01" if v == V311 else b"\xb0\x04\x00\x01\x00\x00",
     RC_PROTOCOL_ERROR, True),
    ("server_only_pingresp", lambda v: b"\xd0\x00", RC_PROTOCOL_ERROR, True),
    ("subscribe_packet_id_0", lambda v: subscribe_packet(0, [("a/b", 0)], version=v), RC_MALFORMED, True),
    ("bad_property_unknown_id", lambda v: publish_packet("a/b", b"x", props=[(0x7F, b"\x00")]), RC_MALFORMED, False),
    ("bad_property_truncated", lambda v: b"\x30\x07\x00\x03a/b\x05\x03", RC_MALFORMED, False),
    ("bad_property_length_overflow", lambda v: b"\x30\x08\x00\x03a/b\x10\x01\x01", RC_MALFORMED, False),
    ("topic_alias_0", lambda v: publish_packet("a/b", b"x", props={P_TOPIC_ALIAS: 0}), RC_TOPIC_ALIAS_INVALID,
     False),
    ("topic_alias_above_maximum", lambda v: publish_packet("a/b", b"x", props={P_TOPIC_ALIAS: 65}),
     RC_TOPIC_ALIAS_INVALID, False),
    ("topic_alias_unknown", lambda v: publish_packet("", b"x", props={P_TOPIC_ALIAS: 9}), RC_TOPIC_ALIAS_INVALID,
     False),
]


@pytest.mark.parametrize("case,build,reason", [(c, b, r) for c, b, r, _ in MALFORMED], ids=[c for c, *_ in MALFORMED])
def test_malformed_v5_disconnect_reason(server, tenant, case, build, reason):
    bystander = raw_app(server, tenant, "viewer")
    c = raw_app(server, tenant, "admin", V5)
    c.send(build(V5), ignore_errors=True)
    assert c.wait_closed() == disconnect_bytes(reason)
    bystander.ping()  # only the offending connection closed
    bystander.disconnect()
    assert_alive(server, tenant)


V3_CASES = [(c, b) for c, b, _, v3 in MALFORMED if v3]


@pytest.mark.parametrize("case,build", V3_CASES, ids=[c for c, _ in V3_CASES])
def test_malformed_v311_closed_without_reply(server, tenant, case, build):
    bystander = raw_app(server, tenant, "viewer", V311)
    c = raw_app(server, tenant, "admin", V311)
    c.send(build(V311), ignore_errors=True)
    assert c.wait_closed() == b""
    bystander.ping()
    bystander.disconnect()
    assert_alive(server, tenant)


def test_malformed_device_connection_v5(server, tenant):
    d = create_device(tenant)
    c = raw_device(server, d, V5)
    c.send(publish_packet("v1/devices/me/+", b"{}", qos=1, pid=1))
    assert c.wait_closed() == disconnect_bytes(RC_TOPIC_NAME_INVALID)
    c2 = raw_device(server, d, V5)  # the device can come back
    assert c2.publish("v1/devices/me/telemetry", {"back": 1}, qos=1).rc == 0
    c2.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
@pytest.mark.parametrize("first", ["publish", "subscribe", "pingreq", "disconnect", "garbage_http"])
def test_first_packet_not_connect_closes(server, tenant, version, first):
    data = {
        "publish": publish_packet("a/b", b"x", version=version),
        "subscribe": subscribe_packet(1, [("a/b", 0)], version=version),
        "pingreq": PINGREQ_BYTES,
        "disconnect": b"\xe0\x00",
        "garbage_http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    }[first]
    c = RawClient(server.mqtt_port, version)
    c.send(data)
    assert c.wait_closed() == b""
    assert_alive(server, tenant)


@pytest.mark.parametrize("name", ["MQIsdp", "MQTT"])
def test_unsupported_protocol_level_3(server, tenant, name):
    u, p = app_creds(tenant)
    c = RawClient(server.mqtt_port, V311)
    c.send(connect_packet(V311, unique("old"), u, p, level=3, proto_name=name))
    assert c.wait_closed() == b"\x20\x02\x00\x01"
    assert_alive(server, tenant)


@pytest.mark.parametrize("version,expected", [(V311, b"\x20\x02\x00\x05"), (V5, b"\x20\x03\x00\x87\x00")])
def test_refused_connack_bytes(server, tenant, version, expected):
    c = RawClient(server.mqtt_port, version)
    c.send(connect_packet(version, unique("c"), "not-a-device-token", None))
    assert c.wait_closed() == expected
    c = RawClient(server.mqtt_port, version)
    c.send(connect_packet(version, unique("c"), "app", "not-a-jwt"))
    assert c.wait_closed() == expected
    assert_alive(server, tenant)


@pytest.mark.parametrize("version", [V311, V5])
def test_connect_invalid_utf8_client_id(server, tenant, version):
    u, p = app_creds(tenant)
    c = RawClient(server.mqtt_port, version)
    c.send(connect_packet(version, b"id\xff", u, p))
    data = c.wait_closed()
    # v5: refused CONNACK 0x81 or closed; 3.1.1: closed (no CONNACK is a valid answer to a malformed CONNECT)
    assert data in (b"", b"\x20\x03\x00\x81\x00"), data
    assert_alive(server, tenant)


@pytest.mark.parametrize("version", [V311, V5])
def test_connect_invalid_utf8_username(server, tenant, version):
    c = RawClient(server.mqtt_port, version)
    c.send(connect_packet(version, unique("c"), b"us\xc3er", None))
    data = c.wait_closed()
    allowed = (b"", b"\x20\x03\x00\x81\x00", b"\x20\x03\x00\x87\x00") if version == V5 else (b"", b"\x20\x02\x00\x05")
    assert data in allowed, data
    assert_alive(server, tenant)


def test_many_malformed_connections_in_parallel(server, tenant):
    conns = []
    for i in range(20):
        c = raw_app(server, tenant, "admin", V5)
        conns.append(c)
    for c in conns:
        c.send(b"\x30\xff\xff\xff\xff\x01")
    for c in conns:
        assert c.wait_closed() == disconnect_bytes(RC_MALFORMED)
    assert_alive(server, tenant)


# ---------------------------------------------------------------------------------------------
# limits
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limits(make_server):
    s = make_server(env={"SW_MQTT_MAX_PACKET_BYTES": "1024", "SW_MQTT_RECEIVE_MAXIMUM": "2",
                         "SW_MQTT_MAX_INFLIGHT": "2", "SW_MQTT_MAX_RETAINED": "3"}, name="mqtt-limits")
    return s, TenantCtx(s, s.admin())


def test_server_maximum_packet_size_in_connack(limits):
    s, t = limits
    c = raw_app(s, t)
    assert c.connack.props.get(P_MAXIMUM_PACKET_SIZE) == 1024
    assert c.connack.props.get(P_RECEIVE_MAXIMUM) == 2
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_packet_at_limit_accepted_over_limit_0x95(limits, version):
    s, t = limits
    topic = unique("big")
    sub = raw_app(s, t, "viewer")
    sub.subscribe(topic, 1)
    c = raw_app(s, t, "admin", version)
    base_len = len(publish_packet(topic, b"", qos=1, pid=1, version=version))
    # remaining length >= 128 takes 2 bytes: the total is exactly 1024 bytes
    payload = b"p" * (1024 - base_len - 1)
    pkt = publish_packet(topic, payload, qos=1, pid=1, version=version)
    assert len(pkt) == 1024
    c.send(pkt)
    assert c.expect(PUBACK, pid=1).rc in PUB_OK
    assert sub.publishes(1)[0].payload == payload
    pkt = publish_packet(topic, payload + b"p", qos=1, pid=2, version=version)
    assert len(pkt) == 1025
    c.send(pkt, ignore_errors=True)
    assert c.wait_closed() == (disconnect_bytes(RC_PACKET_TOO_LARGE) if version == V5 else b"")
    sub.no_publish(0.3)
    sub.disconnect()
    assert_alive(s, t)


def test_oversize_announced_length_closes_before_body(limits):
    """A huge remaining length is refused from the header alone (no need to send the body)."""
    s, t = limits
    c = raw_app(s, t, "admin", V5)
    c.send(b"\x30" + varint(100_000_000) + b"\x00\x03a/b")
    assert c.wait_closed() == disconnect_bytes(RC_PACKET_TOO_LARGE)
    assert_alive(s, t)


def test_receive_maximum_exceeded_0x93(limits):
    s, t = limits
    c = raw_app(s, t, "admin", V5)
    topic = unique("rm")
    for pid in (1, 2):
        c.send(publish_packet(topic, b"x", qos=2, pid=pid))
        assert c.expect(PUBREC, pid=pid).rc in PUB_OK
    c.send(publish_packet(topic, b"x", qos=2, pid=3))  # third unreleased QoS 2 message
    assert c.wait_closed() == disconnect_bytes(RC_RECEIVE_MAX_EXCEEDED)
    assert_alive(s, t)


def test_receive_maximum_released_by_pubrel(limits):
    s, t = limits
    c = raw_app(s, t, "admin", V5)
    topic = unique("rm")
    for i in range(6):  # never more than 2 in flight
        pid = i + 1
        c.send(publish_packet(topic, b"x", qos=2, pid=pid))
        c.expect(PUBREC, pid=pid)
        c.send(ack_packet(PUBREL, pid))
        c.expect(PUBCOMP, pid=pid)
    c.ping()
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_max_inflight_outbound(limits, version):
    """SW_MQTT_MAX_INFLIGHT=2: at most two unacknowledged QoS 1 messages towards a client that
    advertised no (or a larger) receive maximum."""
    s, t = limits
    topic = unique("inflight")
    u, p = app_creds(t, "viewer")
    c = RawClient(s.mqtt_port, version, auto_ack=False)
    c.connect(u, p, props={P_RECEIVE_MAXIMUM: 100} if version == V5 else None)
    c.subscribe(topic, 1)
    pub = raw_app(s, t)
    for i in range(4):
        pub.publish(topic, f"m{i}", qos=1)
    first = c.publishes(2)
    c.no_publish(0.7)
    c.send(ack_packet(PUBACK, first[0].pid, version=version))
    third = c.publishes(1)
    c.no_publish(0.3)
    for x in first[1:] + third:
        c.send(ack_packet(PUBACK, x.pid, version=version))
    last = c.publishes(1)
    assert [x.payload for x in first + third + last] == [b"m0", b"m1", b"m2", b"m3"]
    c.send(ack_packet(PUBACK, last[0].pid, version=version))
    c.disconnect()
    pub.disconnect()


def test_max_retained_per_tenant(limits):
    s, t = limits
    b = unique("ret")
    pub = raw_app(s, t)
    for i in range(5):
        pub.publish(f"{b}/{i}", f"r{i}", qos=1, retain=True)
    sub = raw_app(s, t, "viewer")
    sub.subscribe(f"{b}/#", 1)
    got = [p for p in sub.drain(1.0) if p.type == PUBLISH and p.retain]
    assert 1 <= len(got) <= 3, got
    for i in range(5):  # clean up
        pub.publish(f"{b}/{i}", b"", qos=1, retain=True)
    pub.disconnect()
    sub.disconnect()


def test_mqtt_port_zero_picks_a_free_port_and_logs_it(make_server):
    s = make_server(env={"SW_MQTT_PORT": "0"}, name="mqtt-port0")
    logs = s.stdout() + s.stderr()
    m = re.search(r"mqtt_port=(\d+)", logs)
    assert m, logs[-2000:]
    port = int(m.group(1))
    assert port != 0
    t = TenantCtx(s, s.admin())
    c = RawClient(port, V5)
    c.connect(*app_creds(t))
    c.ping()
    c.disconnect()


def test_max_connections(make_server):
    s = make_server(env={"SW_MQTT_MAX_CONNECTIONS": "3"}, name="mqtt-maxconn")
    t = TenantCtx(s, s.admin())
    conns = [raw_app(s, t) for _ in range(3)]
    extra = RawClient(s.mqtt_port, V5)
    u, p = app_creds(t)
    extra.send(connect_packet(V5, unique("x"), u, p), ignore_errors=True)
    data = extra.wait_closed()
    assert data == b"", data  # closed at once, no CONNACK
    for c in conns:
        c.ping()
    conns[0].disconnect()
    time.sleep(0.2)
    again = raw_app(s, t)
    again.ping()
    again.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_server_shutdown_disconnects_0x8b(make_server, version):
    s = make_server(name="mqtt-shutdown")
    t = TenantCtx(s, s.admin())
    c = raw_app(s, t, "admin", version)
    c.ping()
    rc = s.stop()
    assert rc == 0, s.logs()
    assert c.wait_closed() == (disconnect_bytes(RC_SERVER_SHUTTING_DOWN) if version == V5 else b"")
