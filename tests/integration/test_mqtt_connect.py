"""MQTT CONNECT: device tokens, MQTT basic credentials (REST-managed), application clients (JWT),
refused CONNACK bytes, CONNACK v5 properties, credential revocation."""
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import TenantCtx, assert_problem, unique

REFUSED = {V311: b"\x20\x02\x00\x05", V5: b"\x20\x03\x00\x87\x00"}


@pytest.fixture
def dev(tenant):
    return create_device(tenant)


def refused_reply(server, version, username, password, client_id=None) -> bytes:
    c = RawClient(server.mqtt_port, version)
    c.send(connect_packet(version, client_id or unique("c"), username, password))
    data = c.wait_closed()
    c.close()
    return data


# ---------------------------------------------------------------------------------------------
# device access token
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5])
def test_device_access_token_accepted(server, dev, version):
    c = RawClient(server.mqtt_port, version)
    p = c.connect(dev.token)
    assert p.rc == 0 and p.session_present is False
    if version == V311:
        assert p.raw == b"\x20\x02\x00\x00"
    c.ping()
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_device_access_token_paho(server, dev, version):
    c = device_client(server, dev, version=version)
    assert c.rc == 0
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
@pytest.mark.parametrize("case", ["unknown_token", "no_username", "app_bad_jwt", "app_no_password",
                                  "sysadmin_jwt", "device_token_as_app_password", "app_empty_password"])
def test_refused_connack_exact_bytes(server, sysadmin, tenant, dev, version, case):
    creds = {
        "unknown_token": ("no-such-token-" + unique("x"), None),
        "no_username": (None, None),
        "app_bad_jwt": ("app", "not.a.jwt"),
        "app_no_password": ("app", None),
        "sysadmin_jwt": ("app", sysadmin.token),
        "device_token_as_app_password": ("app", dev.token),
        "app_empty_password": ("app", ""),
    }[case]
    assert refused_reply(server, version, *creds) == REFUSED[version]


@pytest.mark.parametrize("version", [V311, V5])
def test_refused_then_server_still_works(server, tenant, version):
    assert refused_reply(server, version, "bad-token", None) == REFUSED[version]
    assert_alive(server, tenant)


def test_regenerated_token_old_refused_new_accepted(server, tenant, dev):
    r = tenant.admin.post(f"/api/v1/devices/{dev.id}/credentials")
    assert r.status_code == 200, r.text
    new = r.json()["access_token"]
    assert refused_reply(server, V5, dev.token, None) == REFUSED[V5]
    c = RawClient(server.mqtt_port, V5)
    c.connect(new)
    c.disconnect()


# ---------------------------------------------------------------------------------------------
# MQTT basic credentials
# ---------------------------------------------------------------------------------------------
def test_basic_credentials_lifecycle(server, tenant, dev):
    user, pw = unique("mqttuser"), "Basic-Passw0rd!"
    r = set_mqtt_basic(tenant, dev.id, user, pw)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["username"] == user and body.get("client_id") is None
    assert "password" not in body and not any("hash" in k for k in body)

    r = tenant.viewer.get(f"/api/v1/devices/{dev.id}/credentials/mqtt-basic")
    assert r.status_code == 200, r.text
    assert r.json()["username"] == user and r.json().get("client_id") is None
    assert "password" not in r.json()

    for version in (V311, V5):
        c = RawClient(server.mqtt_port, version)
        c.connect(user, pw)
        c.ping()
        c.disconnect()
        assert refused_reply(server, version, user, "wrong-password") == REFUSED[version]
        assert refused_reply(server, version, user, None) == REFUSED[version]
    # the access token keeps working alongside
    c = RawClient(server.mqtt_port, V5)
    c.connect(dev.token)
    c.disconnect()

    r = tenant.admin.delete(f"/api/v1/devices/{dev.id}/credentials/mqtt-basic")
    assert r.status_code == 204, r.text
    assert_problem(tenant.viewer.get(f"/api/v1/devices/{dev.id}/credentials/mqtt-basic"), 404)
    assert refused_reply(server, V5, user, pw) == REFUSED[V5]


def test_basic_credentials_publish_telemetry(server, tenant, dev):
    user, pw = unique("mqttuser"), "Basic-Passw0rd!"
    assert set_mqtt_basic(tenant, dev.id, user, pw).status_code == 200
    c = connect_client(server.mqtt_port, user, pw, version=V311)
    c.publish("v1/devices/me/telemetry", {"basic": 7}, qos=1)
    assert latest(tenant, dev.id)["basic"]["value"] == 7
    c.disconnect()


def test_basic_credentials_replace_password(server, tenant, dev):
    user = unique("mqttuser")
    assert set_mqtt_basic(tenant, dev.id, user, "First-Passw0rd").status_code == 200
    assert set_mqtt_basic(tenant, dev.id, user, "Second-Passw0rd").status_code == 200
    assert refused_reply(server, V311, user, "First-Passw0rd") == REFUSED[V311]
    c = RawClient(server.mqtt_port, V311)
    c.connect(user, "Second-Passw0rd")
    c.disconnect()


def test_basic_credentials_client_id_must_match(server, tenant, dev):
    user, pw, cid = unique("mqttuser"), "Basic-Passw0rd!", unique("cid")
    r = set_mqtt_basic(tenant, dev.id, user, pw, client_id=cid)
    assert r.status_code == 200, r.text
    assert r.json() == {"username": user, "client_id": cid} or (r.json()["username"] == user
                                                                and r.json()["client_id"] == cid)
    r = tenant.viewer.get(f"/api/v1/devices/{dev.id}/credentials/mqtt-basic")
    assert r.status_code == 200 and r.json()["client_id"] == cid
    for version in (V311, V5):
        assert refused_reply(server, version, user, pw, client_id=cid + "-other") == REFUSED[version]
        c = RawClient(server.mqtt_port, version)
        c.connect(user, pw, client_id=cid)
        c.disconnect()


def test_basic_credentials_username_conflict_409(server, tenant, dev):
    other = create_device(tenant)
    user = unique("mqttuser")
    assert set_mqtt_basic(tenant, dev.id, user, "Basic-Passw0rd!").status_code == 200
    r = set_mqtt_basic(tenant, other.id, user, "Other-Passw0rd!")
    assert r.status_code == 409, r.text
    # the first device keeps its credential
    c = RawClient(server.mqtt_port, V311)
    c.connect(user, "Basic-Passw0rd!")
    c.disconnect()


def test_basic_credentials_rest_permissions(server, tenant, dev, new_tenant):
    r = tenant.viewer.request("PUT", f"/api/v1/devices/{dev.id}/credentials/mqtt-basic",
                              json={"username": unique("u"), "password": "Basic-Passw0rd!"})
    assert r.status_code == 403, r.text
    other = new_tenant()
    r = set_mqtt_basic(other, dev.id, unique("u"), "Basic-Passw0rd!")
    assert r.status_code == 404, r.text
    assert_problem(tenant.viewer.get(f"/api/v1/devices/{dev.id}/credentials/mqtt-basic"), 404)


def test_basic_credentials_deleted_disconnects_v5(server, tenant, dev):
    user, pw = unique("mqttuser"), "Basic-Passw0rd!"
    assert set_mqtt_basic(tenant, dev.id, user, pw).status_code == 200
    c = RawClient(server.mqtt_port, V5)
    c.connect(user, pw)
    assert tenant.admin.delete(f"/api/v1/devices/{dev.id}/credentials/mqtt-basic").status_code == 204
    assert c.wait_closed() == b"\xe0\x01\x98"


@pytest.mark.parametrize("version", [V311, V5])
def test_basic_credentials_replaced_disconnects(server, tenant, dev, version):
    """PUT mqtt-basic closes the device's MQTT connections (docs/api/CONTRACT.md)."""
    user = unique("mqttuser")
    assert set_mqtt_basic(tenant, dev.id, user, "First-Passw0rd").status_code == 200
    c = RawClient(server.mqtt_port, version)
    c.connect(user, "First-Passw0rd")
    assert set_mqtt_basic(tenant, dev.id, user, "Second-Passw0rd").status_code == 200
    assert c.wait_closed() == (b"\xe0\x01\x98" if version == V5 else b"")


def test_token_regenerated_disconnects_v5(server, tenant, dev):
    c = RawClient(server.mqtt_port, V5)
    c.connect(dev.token)
    assert tenant.admin.post(f"/api/v1/devices/{dev.id}/credentials").status_code == 200
    assert c.wait_closed() == b"\xe0\x01\x98"


@pytest.mark.parametrize("version", [V311, V5])
def test_device_deleted_disconnects(server, tenant, version):
    d = create_device(tenant)
    c = RawClient(server.mqtt_port, version)
    c.connect(d.token)
    assert tenant.admin.delete(f"/api/v1/devices/{d.id}").status_code == 204
    data = c.wait_closed()
    assert data == (b"\xe0\x01\x98" if version == V5 else b"")
    assert refused_reply(server, version, d.token, None) == REFUSED[version]


# ---------------------------------------------------------------------------------------------
# applications (JWT)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["admin", "viewer"])
@pytest.mark.parametrize("version", [V311, V5])
def test_app_connects(server, tenant, role, version):
    c = raw_app(server, tenant, role, version)
    c.ping()
    c.disconnect()


def test_app_tenant_admin_publishes_viewer_cannot(server, tenant):
    topic = f"apps/{unique('t')}"
    sub = app_client(server, tenant, "viewer")
    assert sub.subscribe(topic, 1) == [1]
    admin = raw_app(server, tenant, "admin")
    viewer = raw_app(server, tenant, "viewer")
    ack = viewer.publish(topic, b"from-viewer", qos=1)
    assert ack.rc == RC_NOT_AUTHORIZED, ack
    rec = viewer.publish(topic, b"from-viewer-2", qos=2)
    assert rec.rc == RC_NOT_AUTHORIZED, rec
    viewer.publish(topic, b"from-viewer-0", qos=0)
    ack = admin.publish(topic, b"from-admin", qos=1)
    assert ack.rc in PUB_OK, ack
    got = sub.messages.wait_one(topic=topic)
    assert got.payload == b"from-admin"
    sub.messages.quiet()
    assert [m.payload for m in sub.messages.matching(topic)] == [b"from-admin"]
    viewer.ping()  # the refused publishes did not close the viewer's connection
    admin.disconnect()
    viewer.disconnect()


def test_app_viewer_v311_publish_dropped(server, tenant):
    topic = f"apps/{unique('t')}"
    sub = app_client(server, tenant, "admin")
    sub.subscribe(topic, 1)
    viewer = raw_app(server, tenant, "viewer", V311)
    viewer.send(publish_packet(topic, b"v3-viewer", qos=1, pid=9, version=V311))
    viewer.send(publish_packet(topic, b"v3-viewer-0", qos=0, version=V311))
    viewer.ping()
    sub.messages.quiet()
    assert sub.messages.matching(topic) == []


@pytest.mark.parametrize("kind", ["telemetry", "attributes"])
def test_app_cannot_publish_device_owned_topics(server, tenant, dev, kind):
    topic = f"sw/v1/devices/{dev.id}/{kind}"
    watcher = app_client(server, tenant, "viewer")
    watcher.subscribe(topic, 1)
    admin = raw_app(server, tenant, "admin")
    ack = admin.publish(topic, [{"ts": 1, "values": {"forged": 1}}] if kind == "telemetry" else {"forged": 1}, qos=1)
    assert ack.rc == RC_NOT_AUTHORIZED, ack
    watcher.messages.quiet()
    assert watcher.messages.matching(topic) == []
    assert "forged" not in latest(tenant, dev.id)
    admin.disconnect()


def test_app_expired_jwt_refused(make_server):
    s = make_server(env={"SW_ACCESS_TOKEN_TTL_S": "3"}, name="mqtt-ttl")
    sysadmin = s.admin()
    t = sysadmin.create_tenant()
    u = sysadmin.create_user("tenant_admin", t["id"])
    from swtest import PASSWORD
    token = s.login(u["username"], PASSWORD)["access_token"]
    c = RawClient(s.mqtt_port, V5)
    c.connect("app", token)
    c.disconnect()
    client = s.client(token)
    poll(lambda: client.get("/api/v1/auth/me").status_code == 401, timeout=10, what="JWT expiry")
    for version in (V311, V5):
        assert refused_reply(s, version, "app", token) == REFUSED[version]


# ---------------------------------------------------------------------------------------------
# CONNACK v5 properties
# ---------------------------------------------------------------------------------------------
def test_connack_v5_properties(server, dev):
    c = RawClient(server.mqtt_port, V5)
    p = c.connect(dev.token)
    props = p.props
    assert props.get(P_RECEIVE_MAXIMUM) == 64, props
    assert props.get(P_MAXIMUM_PACKET_SIZE) == 1048576, props
    assert props.get(P_TOPIC_ALIAS_MAXIMUM) == 64, props
    for pid in (P_RETAIN_AVAILABLE, P_WILDCARD_SUB_AVAILABLE, P_SUB_ID_AVAILABLE, P_SHARED_SUB_AVAILABLE):
        assert props.get(pid, 1) == 1, (hex(pid), props)
    assert P_ASSIGNED_CLIENT_ID not in props  # the client sent an id
    assert P_SESSION_EXPIRY not in props      # not capped (0 requested)
    c.disconnect()


def test_connack_assigns_client_id_when_empty(server, dev):
    c = RawClient(server.mqtt_port, V5)
    p = c.connect(dev.token, client_id="")
    assigned = p.props.get(P_ASSIGNED_CLIENT_ID)
    assert isinstance(assigned, str) and assigned, p
    c.ping()
    c.disconnect()
    # 3.1.1 accepts an empty client id with clean session
    c = RawClient(server.mqtt_port, V311)
    c.connect(dev.token, client_id="")
    c.disconnect()


def test_connack_caps_session_expiry(server, dev):
    c = RawClient(server.mqtt_port, V5)
    p = c.connect(dev.token, props={P_SESSION_EXPIRY: 10 * 86400})
    assert p.props.get(P_SESSION_EXPIRY) == 86400, p
    c.disconnect()
    c = RawClient(server.mqtt_port, V5)
    p = c.connect(dev.token, props={P_SESSION_EXPIRY: 0xFFFFFFFF})
    assert p.props.get(P_SESSION_EXPIRY) == 86400, p
    c.disconnect()
    c = RawClient(server.mqtt_port, V5)
    p = c.connect(dev.token, props={P_SESSION_EXPIRY: 60})
    assert P_SESSION_EXPIRY not in p.props or p.props[P_SESSION_EXPIRY] == 60, p
    c.disconnect()


def test_connack_reflects_configured_limits(make_server):
    s = make_server(env={"SW_MQTT_MAX_PACKET_BYTES": "5000", "SW_MQTT_RECEIVE_MAXIMUM": "7",
                         "SW_MQTT_TOPIC_ALIAS_MAXIMUM": "3", "SW_MQTT_MAX_SESSION_EXPIRY_S": "100"},
                    name="mqtt-limits-connack")
    t = TenantCtx(s, s.admin())
    d = create_device(t)
    c = RawClient(s.mqtt_port, V5)
    p = c.connect(d.token, props={P_SESSION_EXPIRY: 1000})
    assert p.props.get(P_MAXIMUM_PACKET_SIZE) == 5000, p
    assert p.props.get(P_RECEIVE_MAXIMUM) == 7, p
    assert p.props.get(P_TOPIC_ALIAS_MAXIMUM) == 3, p
    assert p.props.get(P_SESSION_EXPIRY) == 100, p
    c.disconnect()


# ---------------------------------------------------------------------------------------------
# connection state over REST
# ---------------------------------------------------------------------------------------------
def test_connection_state_via_rest(server, tenant):
    d = create_device(tenant)
    g = get_device(tenant, d.id)
    assert g["online"] is False
    assert g["last_connect"] is None and g["last_disconnect"] is None and g["last_activity"] is None

    before = now_ms()
    c = device_client(server, d, version=V5)
    g = poll_device(tenant, d.id, lambda x: x["online"], "online")
    assert before - 2000 <= g["last_connect"] <= now_ms() + 2000
    listed = [x for x in tenant.viewer.list_all("/api/v1/devices", q=d.name) if x["id"] == d.id]
    assert listed and listed[0]["online"] is True

    time.sleep(0.05)
    t_pub = now_ms()
    c.publish("v1/devices/me/telemetry", {"s": 1}, qos=1)
    g = poll_device(tenant, d.id, lambda x: (x["last_activity"] or 0) >= t_pub - 1000,
                    "last_activity after MQTT publish")
    assert g["last_activity"] >= g["last_connect"]

    c.disconnect()
    g = poll_device(tenant, d.id, lambda x: x["online"] is False, "offline")
    assert g["last_disconnect"] is not None and g["last_disconnect"] >= g["last_connect"]

    # HTTP telemetry is activity too
    time.sleep(0.05)
    t_http = now_ms()
    server.ingest_ok(d.token, {"h": 1})
    g = poll_device(tenant, d.id, lambda x: (x["last_activity"] or 0) >= t_http - 1000,
                    "last_activity after HTTP ingest")
    assert g["online"] is False


def test_connection_state_abrupt_close(server, tenant):
    d = create_device(tenant)
    c = RawClient(server.mqtt_port, V311)
    c.connect(d.token)
    poll(lambda: get_device(tenant, d.id)["online"], what="online")
    c.close()
    poll(lambda: get_device(tenant, d.id)["online"] is False, what="offline after socket close")
