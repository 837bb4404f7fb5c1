"""Regression tests for the broker's defences: topic depth, client-id ownership, gateway scope,
delayed wills on takeover, per-session subscription bound, non-reading clients."""
import time

import pytest
import requests

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import unique

WILL_DELAY = 0x18
SESSION_EXPIRY = 0x11


def test_too_deep_topic_is_refused_and_server_survives(server, tenant):
    deep = "/".join(["x"] * 200)
    c = raw_app(server, tenant)
    assert c.subscribe(deep, 1) == [0x8F]  # filter too deep: refused, connection stays
    c.send(publish_packet(deep, b"p", 0))
    assert c.wait_closed() == b"\xe0\x01\x90"  # topic name invalid
    # Everyone else is unharmed.
    other = raw_app(server, tenant)
    other.ping()
    other.disconnect()


def test_client_id_of_an_app_cannot_be_taken_by_a_device(server, tenant):
    cid = unique("owned")
    app = raw_app(server, tenant, client_id=cid)
    dev = create_device(tenant)
    intruder = RawClient(server.mqtt_port, V5)
    intruder.connect(dev.token, None, client_id=cid, expect_rc=0x85)
    intruder.wait_closed()
    app.ping()  # still connected, session intact
    v3 = RawClient(server.mqtt_port, V311)
    v3.connect(dev.token, None, client_id=cid, expect_rc=2)
    app.disconnect()


def test_gateway_cannot_speak_for_unrelated_devices(server, tenant):
    standalone = create_device(tenant)
    gw = create_device(tenant, gateway=True)
    c = raw_device(server, gw)
    ack = c.publish("v1/gateway/telemetry", {standalone.name: {"hijack": 1}}, qos=1)
    assert ack.rc == 0x87
    latest = tenant.admin.get(f"/api/v1/devices/{standalone.id}/telemetry/latest").json()
    assert latest == {}
    # Its own sub-devices work.
    ack = c.publish("v1/gateway/telemetry", {unique("sub"): {"ok": 1}}, qos=1)
    assert ack.rc == 0
    c.disconnect()


def test_delayed_will_is_cancelled_by_takeover(server, tenant):
    wt = unique("will") + "/t"
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(wt, 1)
    cid = unique("w")
    u, p = app_creds(tenant)
    first = RawClient(server.mqtt_port, V5)
    first.connect(u, p, client_id=cid, clean=False, props={SESSION_EXPIRY: 60},
                  will={"topic": wt, "payload": b"gone", "qos": 1, "props": {WILL_DELAY: 1}})
    second = RawClient(server.mqtt_port, V5)
    second.connect(u, p, client_id=cid, clean=False, props={SESSION_EXPIRY: 60})
    assert first.wait_closed() == b"\xe0\x01\x8e"
    watcher.messages.quiet(2.5)  # longer than the will delay
    assert watcher.messages.matching(wt) == []
    second.disconnect()


def test_subscriptions_per_session_are_bounded(server, tenant):
    c = raw_app(server, tenant)
    codes = []
    for start in range(0, 1010, 101):
        codes += c.subscribe([(f"bound/{i}", 0) for i in range(start, min(start + 101, 1010))])
    assert codes[:1000] == [0] * 1000
    assert codes[1000:] == [0x97] * 10
    c.ping()
    c.disconnect()


def test_client_that_does_not_read_is_paused_not_buffered(server, tenant):
    # Thousands of PINGREQs from a client that never reads its PINGRESPs: the server stops
    # reading from it (TCP back-pressure) instead of buffering replies, and stays responsive.
    c = raw_app(server, tenant)
    c.sock.settimeout(0.5)
    sent = 0
    try:
        chunk = b"\xc0\x00" * 8192
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sent += c.sock.send(chunk)
    except OSError:
        pass  # the send buffer filled up: the server stopped reading
    assert sent < 200 * 1024 * 1024
    r = requests.get(server.url("/metrics"), timeout=10)
    assert r.status_code == 200
    other = raw_app(server, tenant)
    other.ping()
    other.disconnect()
    c.close()


@pytest.fixture(scope="module")
def tight(make_server):
    from swtest import TenantCtx
    s = make_server(env={"SW_MQTT_MAX_SESSIONS_PER_TENANT": "3", "SW_MQTT_MAX_RETAINED_BYTES": "1000"},
                    name="mqtt-tight")
    return s, TenantCtx(s, s.admin())


def test_sessions_per_tenant_are_bounded(tight):
    s, t = tight
    clients = [raw_app(s, t) for _ in range(3)]
    v5 = RawClient(s.mqtt_port, V5)
    u, p = app_creds(t)
    v5.connect(u, p, expect_rc=0x97)  # quota exceeded
    v5.wait_closed()
    v3 = RawClient(s.mqtt_port, V311)
    v3.connect(u, p, expect_rc=3)  # server unavailable
    clients.pop().disconnect()  # a session without expiry ends with its connection
    again = poll(lambda: _try_connect(s, u, p), timeout=WAIT, what="a free session slot")
    again.disconnect()
    for c in clients:
        c.disconnect()


def _try_connect(s, u, p):
    c = RawClient(s.mqtt_port, V5)
    if c.connect(u, p, expect_rc=None).rc == 0:
        return c
    c.close()
    return None


def test_retained_bytes_per_tenant_are_bounded(tight):
    s, t = tight
    base_topic = unique("rb")
    pub = raw_app(s, t)
    pub.publish(f"{base_topic}/a", b"x" * 600, qos=1, retain=True)
    pub.publish(f"{base_topic}/b", b"y" * 600, qos=1, retain=True)  # over 1000 bytes: not retained
    sub = raw_app(s, t)
    sub.subscribe(f"{base_topic}/+", 1)
    got = sub.publishes(1)
    assert got[0].topic == f"{base_topic}/a"
    sub.no_publish(0.5)
    pub.disconnect()
    sub.disconnect()
