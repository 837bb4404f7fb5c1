"""MQTT sessions: 3.1.1 clean session 0, v5 session expiry, clean start, redelivery of unacknowledged
messages, the per-session queue bound (SW_MQTT_MAX_QUEUED), session takeover."""
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import TenantCtx, unique


def base() -> str:
    return f"sess/{unique('t')}"


def persistent(server, tenant, cid, version, clean=False, expiry=60, **kw):
    u, p = app_creds(tenant, "viewer")
    if version == V5:
        return connect_client(server.mqtt_port, u, p, client_id=cid, version=V5, clean=clean,
                              session_expiry=expiry, **kw)
    return connect_client(server.mqtt_port, u, p, client_id=cid, version=V311, clean=clean, **kw)


@pytest.mark.parametrize("version", [V311, V5])
def test_persistent_session_delivers_offline_messages(server, tenant, version):
    topic, cid = base(), unique("persist")
    s = persistent(server, tenant, cid, version, clean=True if version == V5 else False)
    assert s.session_present is False
    assert s.subscribe(topic, 1) == [1]
    s.disconnect()

    pub = app_client(server, tenant)
    for i in range(3):
        pub.publish(topic, f"offline-{i}", qos=1)

    s2 = persistent(server, tenant, cid, version)
    assert s2.session_present is True
    got = s2.messages.wait_for(3, topic=topic)
    assert [m.payload for m in got] == [b"offline-0", b"offline-1", b"offline-2"]
    assert all(m.qos == 1 for m in got)
    # the subscription is part of the session: live messages keep flowing without re-subscribing
    pub.publish(topic, "live", qos=1)
    assert s2.messages.wait_for(4, topic=topic)[3].payload == b"live"
    s2.messages.quiet(0.3)
    assert len(s2.messages.matching(topic)) == 4  # nothing delivered twice
    s2.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_clean_start_discards_session(server, tenant, version):
    topic, cid = base(), unique("persist")
    s = persistent(server, tenant, cid, version)
    s.subscribe(topic, 1)
    s.disconnect()
    pub = app_client(server, tenant)
    pub.publish(topic, "queued", qos=1)

    s2 = persistent(server, tenant, cid, version, clean=True)
    assert s2.session_present is False
    s2.messages.quiet()
    assert s2.messages.matching(topic) == []
    # the subscription went with the session
    pub.publish(topic, "after-clean", qos=1)
    s2.messages.quiet()
    assert s2.messages.matching(topic) == []
    s2.disconnect()
    s3 = persistent(server, tenant, cid, version)
    if version == V311:  # (v5: s2 created a new, empty session with an expiry)
        assert s3.session_present is False
    s3.messages.quiet(0.3)
    assert s3.messages.matching(topic) == []
    s3.disconnect()


def test_v5_session_expiry_zero_ends_at_disconnect(server, tenant):
    topic, cid = base(), unique("persist")
    s = persistent(server, tenant, cid, V5, clean=True, expiry=0)
    s.subscribe(topic, 1)
    s.disconnect()
    app_client(server, tenant).publish(topic, "x", qos=1)
    s2 = persistent(server, tenant, cid, V5, clean=False, expiry=0)
    assert s2.session_present is False
    s2.messages.quiet()
    assert s2.messages.matching(topic) == []


def test_v5_session_expires_after_interval(server, tenant):
    topic, cid = base(), unique("persist")
    s = persistent(server, tenant, cid, V5, clean=True, expiry=1)
    s.subscribe(topic, 1)
    s.disconnect()
    time.sleep(2.2)
    app_client(server, tenant).publish(topic, "x", qos=1)
    s2 = persistent(server, tenant, cid, V5, clean=False, expiry=60)
    assert s2.session_present is False
    s2.messages.quiet()
    assert s2.messages.matching(topic) == []


def test_v311_clean_session_1_has_no_session_present(server, tenant):
    cid = unique("c")
    s = persistent(server, tenant, cid, V311, clean=True)
    assert s.session_present is False
    s.disconnect()
    s = persistent(server, tenant, cid, V311, clean=True)
    assert s.session_present is False
    s.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_unacknowledged_qos1_redelivered_with_dup(server, tenant, version):
    topic, cid = base(), unique("redeliver")
    u, p = app_creds(tenant, "viewer")
    props = {P_SESSION_EXPIRY: 60} if version == V5 else None
    c = RawClient(server.mqtt_port, version, auto_ack=False)
    c.connect(u, p, client_id=cid, clean=True if version == V5 else False, props=props)
    c.subscribe(topic, 1)
    app_client(server, tenant).publish(topic, "needs-ack", qos=1)
    first = c.expect(PUBLISH)
    assert first.qos == 1 and not first.dup
    c.close()  # no PUBACK

    c2 = RawClient(server.mqtt_port, version, auto_ack=False)
    ack = c2.connect(u, p, client_id=cid, clean=False, props=props)
    assert ack.session_present is True
    again = c2.expect(PUBLISH)
    assert again.payload == b"needs-ack" and again.dup is True and again.pid == first.pid and again.qos == 1
    c2.send(ack_packet(PUBACK, again.pid, version=version))
    c2.no_publish(0.5)
    c2.disconnect()


def test_takeover_v5_old_connection_gets_8e(server, tenant):
    cid = unique("dup")
    u, p = app_creds(tenant)
    old = RawClient(server.mqtt_port, V5)
    old.connect(u, p, client_id=cid)
    new = RawClient(server.mqtt_port, V5)
    new.connect(u, p, client_id=cid)
    assert old.wait_closed() == b"\xe0\x01\x8e"
    new.ping()
    new.disconnect()


def test_takeover_v311_old_connection_closed(server, tenant):
    cid = unique("dup")
    u, p = app_creds(tenant)
    old = RawClient(server.mqtt_port, V311)
    old.connect(u, p, client_id=cid)
    new = RawClient(server.mqtt_port, V311)
    new.connect(u, p, client_id=cid)
    assert old.wait_closed() == b""
    new.ping()
    new.disconnect()


def test_takeover_keeps_persistent_session(server, tenant):
    topic, cid = base(), unique("dup")
    u, p = app_creds(tenant, "viewer")
    old = RawClient(server.mqtt_port, V5)
    old.connect(u, p, client_id=cid, props={P_SESSION_EXPIRY: 60})
    old.subscribe(topic, 1)
    new = RawClient(server.mqtt_port, V5)
    ack = new.connect(u, p, client_id=cid, clean=False, props={P_SESSION_EXPIRY: 60})
    assert ack.session_present is True
    assert old.wait_closed() == b"\xe0\x01\x8e"
    app_client(server, tenant).publish(topic, "to-new", qos=1)
    assert new.publishes(1, topic=topic)[0].payload == b"to-new"
    new.disconnect()


def test_takeover_of_device_connection(server, tenant):
    d = create_device(tenant)
    cid = unique("devcid")
    old = RawClient(server.mqtt_port, V5)
    old.connect(d.token, client_id=cid)
    new = RawClient(server.mqtt_port, V5)
    new.connect(d.token, client_id=cid)
    assert old.wait_closed() == b"\xe0\x01\x8e"
    ack = new.publish("v1/devices/me/telemetry", {"after_takeover": 1}, qos=1)
    assert ack.rc == 0
    new.disconnect()


# ---------------------------------------------------------------------------------------------
# SW_MQTT_MAX_QUEUED
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_queue(make_server):
    s = make_server(env={"SW_MQTT_MAX_QUEUED": "5"}, name="mqtt-queue")
    return s, TenantCtx(s, s.admin())


@pytest.mark.parametrize("version", [V311, V5])
def test_queue_bound_drops_and_counts(small_queue, version):
    s, t = small_queue
    topic, cid = base(), unique("bounded")
    sub = persistent(s, t, cid, version, clean=True if version == V5 else False)
    sub.subscribe(topic, 1)
    sub.disconnect()
    before = mqtt_metric(s, "sw_mqtt_messages_dropped_total")
    pub = app_client(s, t)
    sent = [f"q{i}".encode() for i in range(12)]
    for m in sent:
        pub.publish(topic, m, qos=1)
    sub2 = persistent(s, t, cid, version)
    assert sub2.session_present is True
    got = sub2.messages.wait_for(5, topic=topic)
    sub2.messages.quiet(0.7)
    payloads = [m.payload for m in sub2.messages.matching(topic)]
    assert len(payloads) == 5, payloads
    assert payloads == [m for m in sent if m in payloads], "queued messages out of order"
    assert got
    after = mqtt_metric(s, "sw_mqtt_messages_dropped_total")
    assert after - before >= 7, (before, after)
    # live traffic flows again
    pub.publish(topic, "live", qos=1)
    sub2.messages.wait_one(topic=topic, pred=lambda m: m.payload == b"live")
    sub2.disconnect()


# ---------------------------------------------------------------------------------------------
# SW_MQTT_MAX_SESSION_EXPIRY_S
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_sessions(make_server):
    s = make_server(env={"SW_MQTT_MAX_SESSION_EXPIRY_S": "1"}, name="mqtt-short-sessions")
    return s, TenantCtx(s, s.admin())


@pytest.mark.parametrize("version", [V311, V5])
def test_session_expiry_cap_applies(short_sessions, version):
    """3.1.1 persistent sessions and v5 sessions last at most SW_MQTT_MAX_SESSION_EXPIRY_S."""
    s, t = short_sessions
    topic, cid = base(), unique("capped")
    sub = persistent(s, t, cid, version, clean=True if version == V5 else False, expiry=3600)
    if version == V5:
        assert sub.connack_props.SessionExpiryInterval == 1
    sub.subscribe(topic, 1)
    sub.disconnect()
    # within the cap the session is there
    again = persistent(s, t, cid, version, expiry=3600)
    assert again.session_present is True
    again.disconnect()
    time.sleep(2.2)
    app_client(s, t).publish(topic, "late", qos=1)
    last = persistent(s, t, cid, version, expiry=3600)
    assert last.session_present is False
    last.messages.quiet(0.3)
    assert len(last.messages) == 0
