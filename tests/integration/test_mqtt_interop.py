"""Interoperability with the Debian mosquitto clients (mosquitto_pub / mosquitto_sub, 3.1.1 and 5)
and the sw_mqtt_* families in /metrics."""
import json
import re
import shutil
import subprocess
import threading
import time

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import T0, metric_value, unique

VERSIONS = {"mqttv311": V311, "mqttv5": V5}


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian package mosquitto-clients)")


def mosquitto_pub(server, version, username, password, topic, message, *extra, timeout=15):
    need("mosquitto_pub")
    args = ["mosquitto_pub", "-h", HOST, "-p", str(server.mqtt_port), "-V", version, "-u", username,
            "-t", topic, "-m", message, "-i", unique("mpub")]
    if password is not None:
        args += ["-P", password]
    return subprocess.run(args + list(extra), capture_output=True, timeout=timeout)


class MosquittoSub:
    """mosquitto_sub in the background; waits for its SUBACK (debug output) before returning."""

    def __init__(self, server, version, username, password, topic, count, *extra):
        need("mosquitto_sub")
        # stdbuf: line-buffered output through the pipe (the SUBACK line is our readiness signal)
        args = ["stdbuf", "-oL", "mosquitto_sub", "-h", HOST, "-p", str(server.mqtt_port), "-V", version, "-u", username,
                "-t", topic, "-C", str(count), "-W", "15", "-v", "-d", "-i", unique("msub")]
        if password is not None:
            args += ["-P", password]
        self.p = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self.subacked = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not self.subacked.wait(WAIT):
            self.p.kill()
            raise AssertionError(f"mosquitto_sub got no SUBACK: {self.lines} {self.p.stderr.read()!r}")

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if "received suback" in line.lower():
                self.subacked.set()

    def result(self, timeout=15):
        rc = self.p.wait(timeout)
        self.t.join(2)
        msgs = [line for line in self.lines
                if line.strip() and not line.startswith(("Client ", "Subscribed ("))]  # -d debug lines
        return rc, msgs


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mosquitto_pub_device_telemetry(server, tenant, version):
    d = create_device(tenant)
    r = mosquitto_pub(server, version, d.token, None, "v1/devices/me/telemetry",
                      f'{{"ts": {T0}, "values": {{"mq": 5, "ver": "{version}"}}}}', "-q", "1")
    assert r.returncode == 0, r.stderr
    assert latest(tenant, d.id) == {"mq": {"ts": T0, "value": 5}, "ver": {"ts": T0, "value": version}}


def test_mosquitto_pub_senml_content_type_v5(server, tenant):
    d = create_device(tenant)
    r = mosquitto_pub(server, "mqttv5", d.token, None, "v1/devices/me/telemetry",
                      f'[{{"bt": {T0 / 1000}, "n": "senml_temp", "v": 20.5}}]', "-q", "1",
                      "-D", "publish", "content-type", "application/senml+json")
    assert r.returncode == 0, r.stderr
    assert latest(tenant, d.id)["senml_temp"] == {"ts": T0, "value": 20.5}


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mosquitto_pub_bad_token_fails(server, version):
    r = mosquitto_pub(server, version, "no-such-token", None, "v1/devices/me/telemetry", "{}", "-q", "1")
    assert r.returncode != 0


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mosquitto_pub_sub_between_apps(server, tenant, version):
    topic = f"interop/{unique('t')}"
    u, viewer_jwt = app_creds(tenant, "viewer")
    _, admin_jwt = app_creds(tenant, "admin")
    sub = MosquittoSub(server, version, u, viewer_jwt, f"{topic}/#", 2, "-q", "1")
    for i in range(2):
        r = mosquitto_pub(server, version, u, admin_jwt, f"{topic}/{i}", f"hello-{i}", "-q", "1")
        assert r.returncode == 0, r.stderr
    rc, msgs = sub.result()
    assert rc == 0, (msgs, sub.p.stderr.read())
    assert msgs == [f"{topic}/0 hello-0", f"{topic}/1 hello-1"]


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mosquitto_sub_app_sees_device_telemetry(server, tenant, version):
    d = create_device(tenant)
    u, jwt = app_creds(tenant, "viewer")
    sub = MosquittoSub(server, version, u, jwt, f"sw/v1/devices/{d.id}/telemetry", 1, "-q", "1")
    c = device_client(server, d, version=V311)
    c.publish("v1/devices/me/telemetry", {"ts": T0, "values": {"x": 1}}, qos=1)
    rc, msgs = sub.result()
    assert rc == 0, msgs
    topic, payload = msgs[0].split(" ", 1)
    assert topic == f"sw/v1/devices/{d.id}/telemetry"
    assert json.loads(payload) == [{"ts": T0, "values": {"x": 1}}]


def test_mosquitto_retained(server, tenant):
    topic = f"interop/{unique('r')}"
    u, admin_jwt = app_creds(tenant, "admin")
    r = mosquitto_pub(server, "mqttv5", u, admin_jwt, topic, "kept", "-q", "1", "-r")
    assert r.returncode == 0, r.stderr
    sub = MosquittoSub(server, "mqttv311", u, admin_jwt, topic, 1)
    rc, msgs = sub.result()
    assert rc == 0 and msgs == [f"{topic} kept"]
    mosquitto_pub(server, "mqttv5", u, admin_jwt, topic, "", "-q", "1", "-r")


def test_mosquitto_sub_device_rpc(server, tenant):
    d = create_device(tenant)
    sub = MosquittoSub(server, "mqttv311", d.token, None, "v1/devices/me/rpc/request/+", 1, "-q", "1")
    r = tenant.admin.post(f"/api/v1/devices/{d.id}/rpc", {"method": "ping", "params": {"a": 1}, "oneway": True})
    assert r.status_code == 202, r.text
    rc, msgs = sub.result()
    assert rc == 0, msgs
    topic, payload = msgs[0].split(" ", 1)
    assert topic == f"v1/devices/me/rpc/request/{r.json()['id']}"
    assert json.loads(payload) == {"method": "ping", "params": {"a": 1}}


# ---------------------------------------------------------------------------------------------
# /metrics
# ---------------------------------------------------------------------------------------------
def test_metrics_families(server, tenant):
    before = server.metrics()
    d = create_device(tenant)
    # one refused and one accepted connect, a message in and out, a drop
    RawClient(server.mqtt_port, V311).send(connect_packet(V311, unique("x"), "bad-token", None))
    sub = app_client(server, tenant, "viewer")
    topic = unique("m")
    sub.subscribe(topic, 1)
    dev = raw_device(server, d, V311)
    dev.send(publish_packet("not/allowed", b"x", qos=0, version=V311))  # dropped and counted
    dev.ping()
    app_client(server, tenant).publish(topic, "m", qos=1)
    sub.messages.wait_one()

    def check():
        text = server.metrics()
        for fam in ("sw_mqtt_connections", "sw_mqtt_sessions", "sw_mqtt_connects_total",
                    "sw_mqtt_messages_received_total", "sw_mqtt_messages_sent_total",
                    "sw_mqtt_messages_dropped_total"):
            assert metric_value(text, fam) is not None, f"{fam} missing"
        return text
    text = poll(check, what="sw_mqtt_* families")
    assert metric_value(text, "sw_mqtt_connections") >= 3  # sub, dev, and this test's others still open
    assert metric_value(text, "sw_mqtt_sessions") >= 2
    assert metric_value(text, "sw_mqtt_messages_received_total") > (metric_value(before, "sw_mqtt_messages_received_total") or 0)
    assert metric_value(text, "sw_mqtt_messages_sent_total") > (metric_value(before, "sw_mqtt_messages_sent_total") or 0)
    assert metric_value(text, "sw_mqtt_messages_dropped_total") > (metric_value(before, "sw_mqtt_messages_dropped_total") or 0)
    # connects_total is labelled by result: at least one success and one refusal
    results = set(re.findall(r'^sw_mqtt_connects_total\{[^}]*result="([^"]+)"', text, re.M))
    assert len(results) >= 2, results
    dropped_labels = re.findall(r'^sw_mqtt_messages_dropped_total\{[^}]*reason="([^"]+)"', text, re.M)
    assert dropped_labels, "sw_mqtt_messages_dropped_total has no reason label"
    # TYPE lines
    assert re.search(r"^# TYPE sw_mqtt_connections gauge", text, re.M)
    assert re.search(r"^# TYPE sw_mqtt_connects_total counter", text, re.M)
    dev.disconnect()


def test_metrics_connections_gauge_follows(server, tenant):
    def conns():
        return metric_value(server.metrics(), "sw_mqtt_connections") or 0
    cs = [raw_app(server, tenant) for _ in range(3)]
    poll(lambda: conns() >= 3, what="gauge up")
    high = conns()
    for c in cs:
        c.disconnect()
    poll(lambda: conns() <= high - 3, what="gauge down")
