"""Webhooks (alarm notifications): CRUD and its validation, roles (viewer read-only, sysadmin 403),
tenant isolation (404) and deletion with the tenant; deliveries to a real receiver (Python
http.server on a free port in a thread): the ping is signed (checked with Python's hmac), a receiver
answering 500 twice is retried with growing delays and delivered on attempt 3, a receiver that is
down makes the webhook "failing" with last_error and the delivery "failed" after max attempts, and a
delivery left pending by a stopped server is sent after the restart."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import GENERAL_ENV
import requests

from swtest import TenantCtx, assert_problem, free_port, now_ms, unique

HOOKS = "/api/v1/webhooks"
UNKNOWN_ID = str(uuid.uuid4())
MAX_ATTEMPTS = 3  # of the module's server (1 s + 2 s of backoff until "failed")
WEBHOOK_FIELDS = {"id", "name", "url", "min_severity", "enabled", "created_ms", "updated_ms", "last_delivery_ms",
                  "last_error", "failing"}
DELIVERY_FIELDS = {"id", "event", "alarm_id", "status", "attempts", "last_status_code", "last_error",
                   "next_attempt_ms", "created_ms", "delivered_ms"}


class Receiver:
    """An HTTP receiver in a thread: records every request and answers with the scripted statuses
    in order, then `default`."""

    def __init__(self, port: int | None = None, statuses=(), default: int = 200, tls: tuple | None = None):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        self.default = default
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    receiver.requests.append({"t": time.monotonic(), "path": self.path,
                                              "headers": {k.lower(): v for k, v in self.headers.items()},
                                              "body": body, "status": status})
                    receiver.cond.notify_all()
                answer = b'{"ok":true}' if status < 300 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.scheme = "http"
        if tls:  # (cert file, key file)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def wait_for(self, n: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"receiver got {len(self.requests)} of {n} requests within {timeout}s"
                self.cond.wait(left)
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def make_cert(directory, name: str, san: str) -> tuple:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                        "-addext", f"subjectAltName={san}"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return str(cert), str(key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Self-signed receiver certificates: one for localhost/127.0.0.1, one for another name; both
    trusted by the module's server (webhooks.ca_file)."""
    d = tmp_path_factory.mktemp("webhook-tls")
    good = make_cert(d, "receiver", "DNS:localhost,IP:127.0.0.1")
    wrong = make_cert(d, "other", "DNS:other.example")
    ca = d / "trusted.pem"
    ca.write_text(open(good[0]).read() + open(wrong[0]).read())
    return {"good": good, "wrong_name": wrong, "ca_file": str(ca)}


@pytest.fixture(scope="module")
def wh_server(make_server, certs):
    return make_server(env={**GENERAL_ENV, "SW_WEBHOOKS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
                            "SW_WEBHOOKS_TIMEOUT_MS": "2000", "SW_WEBHOOKS_CA_FILE": certs["ca_file"]},
                       name="webhooks")


@pytest.fixture(scope="module")
def wh_admin(wh_server):
    return wh_server.admin()


@pytest.fixture
def tenant(wh_server, wh_admin):
    return TenantCtx(wh_server, wh_admin)


@pytest.fixture(scope="module")
def shared_tenant(wh_server, wh_admin):
    """For tests that do not list (validation): creating users hashes passwords, which is slow."""
    return TenantCtx(wh_server, wh_admin)


def create(client, url="http://127.0.0.1:9/hook", status=201, **fields) -> dict:
    body = {"name": unique("hook"), "url": url, **fields}
    r = client.post(HOOKS, body)
    assert r.status_code == status, r.text
    return r.json()


def wait_until(fn, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.05)


def deliveries(client, hook_id: str) -> list[dict]:
    r = client.get(f"{HOOKS}/{hook_id}/deliveries")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def delivery(client, hook_id: str, delivery_id: str) -> dict:
    for d in deliveries(client, hook_id):
        if d["id"] == delivery_id:
            return d
    raise AssertionError(f"delivery {delivery_id} not listed")


def ping(client, hook_id: str) -> dict:
    r = client.post(f"{HOOKS}/{hook_id}/test")
    assert r.status_code == 202, r.text
    d = r.json()
    assert set(d) == DELIVERY_FIELDS
    assert d["event"] == "ping" and d["status"] == "pending" and d["attempts"] == 0 and d["alarm_id"] is None
    return d


def check_signature(request: dict, secret: str) -> dict:
    h = request["headers"]
    ts = h["x-sensoworks-timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(h["x-sensoworks-signature"], expected), (h, request["body"])
    return json.loads(request["body"])


# ---------------------------------------------------------------------------------------------
# CRUD, validation, roles, isolation
# ---------------------------------------------------------------------------------------------
def test_create_get_list_update_delete(tenant):
    name = unique("Ops pager")
    r = tenant.admin.post(HOOKS, {"name": name, "url": "http://receiver.example:8080/alarms?src=sw",
                                  "min_severity": "major"})
    assert r.status_code == 201, r.text
    w = r.json()
    assert set(w) == WEBHOOK_FIELDS | {"secret"}
    uuid.UUID(w["id"])
    assert r.headers["Location"] == f"{HOOKS}/{w['id']}"
    assert w["name"] == name and w["url"] == "http://receiver.example:8080/alarms?src=sw"
    assert w["min_severity"] == "major" and w["enabled"] is True
    assert w["failing"] is False and w["last_error"] is None and w["last_delivery_ms"] is None
    assert w["created_ms"] == w["updated_ms"] and abs(w["created_ms"] - now_ms()) < 60_000
    assert len(w["secret"]) == 64 and int(w["secret"], 16) >= 0  # 32 random bytes, hex
    secret = w.pop("secret")

    for client in (tenant.admin, tenant.viewer):
        g = client.get(f"{HOOKS}/{w['id']}")
        assert g.status_code == 200, g.text
        assert g.json() == w  # never the secret again
        listed = client.list_all(HOOKS)
        assert [x["id"] for x in listed] == [w["id"]]
        assert "secret" not in listed[0]

    # Full replace without a secret keeps it (and does not show it).
    body = {"name": "renamed", "url": "https://receiver.example/x", "enabled": False}
    u = tenant.admin.request("PUT", f"{HOOKS}/{w['id']}", json=body)
    assert u.status_code == 200, u.text
    u = u.json()
    assert set(u) == WEBHOOK_FIELDS
    assert u["name"] == "renamed" and u["url"] == "https://receiver.example/x"
    assert u["min_severity"] == "info" and u["enabled"] is False  # absent = default
    assert u["created_ms"] == w["created_ms"] and u["updated_ms"] >= w["updated_ms"]
    # Setting a secret shows it once.
    u = tenant.admin.request("PUT", f"{HOOKS}/{w['id']}", json={**body, "secret": "my-own-secret-0123456789"})
    assert u.status_code == 200, u.text
    assert u.json()["secret"] == "my-own-secret-0123456789" != secret
    assert "secret" not in tenant.admin.get(f"{HOOKS}/{w['id']}").json()

    assert tenant.admin.delete(f"{HOOKS}/{w['id']}").status_code == 204
    assert_problem(tenant.admin.get(f"{HOOKS}/{w['id']}"), 404, "not_found")
    assert_problem(tenant.admin.get(f"{HOOKS}/{w['id']}/deliveries"), 404, "not_found")
    assert_problem(tenant.admin.delete(f"{HOOKS}/{w['id']}"), 404, "not_found")


def test_list_pages(tenant):
    ids = {create(tenant.admin)["id"] for _ in range(5)}
    items = tenant.admin.list_all(HOOKS, page_size=2)
    assert {x["id"] for x in items} == ids and len(items) == 5
    names = [x["name"] for x in items]
    assert names == sorted(names)
    assert_problem(tenant.admin.get(HOOKS, params={"page_size": 0}), 400, field="page_size")
    assert_problem(tenant.admin.get(HOOKS, params={"cursor": "not-hex"}), 400, field="cursor")


@pytest.mark.parametrize("body, field", [
    ({"url": "http://h/"}, "name"),
    ({"name": "", "url": "http://h/"}, "name"),
    ({"name": "n" * 201, "url": "http://h/"}, "name"),
    ({"name": 5, "url": "http://h/"}, "name"),
    ({"name": "n"}, "url"),
    ({"name": "n", "url": "ftp://h/"}, "url"),
    ({"name": "n", "url": "h/path"}, "url"),
    ({"name": "n", "url": "http://"}, "url"),
    ({"name": "n", "url": "http://h:0/"}, "url"),
    ({"name": "n", "url": "http://h:99999/"}, "url"),
    ({"name": "n", "url": "http://user:pw@h/"}, "url"),
    ({"name": "n", "url": "http://h/a b"}, "url"),
    ({"name": "n", "url": "http://h/#x"}, "url"),
    ({"name": "n", "url": "http://" + "h" * 3000 + "/"}, "url"),
    ({"name": "n", "url": "http://h/", "secret": "short"}, "secret"),
    ({"name": "n", "url": "http://h/", "secret": "s" * 257}, "secret"),
    ({"name": "n", "url": "http://h/", "secret": 123}, "secret"),
    ({"name": "n", "url": "http://h/", "min_severity": "fatal"}, "min_severity"),
    ({"name": "n", "url": "http://h/", "enabled": "yes"}, "enabled"),
])
def test_validation(shared_tenant, body, field):
    admin = shared_tenant.admin
    assert_problem(admin.post(HOOKS, body), 400, "invalid_argument", field=field)
    w = create(admin)
    assert_problem(admin.request("PUT", f"{HOOKS}/{w['id']}", json=body), 400, "invalid_argument", field=field)
    assert admin.delete(f"{HOOKS}/{w['id']}").status_code == 204  # stay under 100 webhooks per tenant


def test_bad_bodies(shared_tenant):
    tenant = shared_tenant
    assert_problem(tenant.admin.post(HOOKS, data="{not json", headers={"Content-Type": "application/json"}), 400,
                   field="body")
    assert_problem(tenant.admin.post(HOOKS, [1, 2]), 400, field="body")
    assert_problem(tenant.admin.post(HOOKS, {"name": "n", "url": "http://h/", "pad": "x" * 70_000}), 413,
                   "payload_too_large")


def test_roles(tenant, wh_admin):
    w = create(tenant.admin)
    v = tenant.viewer
    assert v.get(f"{HOOKS}/{w['id']}").status_code == 200
    assert v.get(f"{HOOKS}/{w['id']}/deliveries").status_code == 200
    assert_problem(v.post(HOOKS, {"name": "n", "url": "http://h/"}), 403, "permission_denied")
    assert_problem(v.request("PUT", f"{HOOKS}/{w['id']}", json={"name": "n", "url": "http://h/"}), 403)
    assert_problem(v.delete(f"{HOOKS}/{w['id']}"), 403)
    assert_problem(v.post(f"{HOOKS}/{w['id']}/test"), 403)
    # a viewer's write to an id it cannot see learns nothing
    assert_problem(v.delete(f"{HOOKS}/{UNKNOWN_ID}"), 404)
    assert_problem(v.post(f"{HOOKS}/{UNKNOWN_ID}/test"), 404)
    for method, path in [("GET", HOOKS), ("POST", HOOKS), ("GET", f"{HOOKS}/{w['id']}"),
                         ("DELETE", f"{HOOKS}/{w['id']}"), ("POST", f"{HOOKS}/{w['id']}/test"),
                         ("GET", f"{HOOKS}/{w['id']}/deliveries")]:
        kw = {"json": {"name": "n", "url": "http://h/"}} if method == "POST" else {}
        assert_problem(wh_admin.request(method, path, **kw), 403, "permission_denied")
    assert_problem(tenant.admin.request("GET", HOOKS, token=None), 401)
    assert tenant.admin.get(f"{HOOKS}/{w['id']}").status_code == 200  # untouched


def test_tenant_isolation(wh_server, wh_admin, tenant):
    other = TenantCtx(wh_server, wh_admin)
    w = create(tenant.admin)
    for c in (other.admin, other.viewer):
        assert_problem(c.get(f"{HOOKS}/{w['id']}"), 404, "not_found")
        assert_problem(c.get(f"{HOOKS}/{w['id']}/deliveries"), 404, "not_found")
        assert w["id"] not in [x["id"] for x in c.list_all(HOOKS)]
    body = {"name": "stolen", "url": "http://evil.example/"}
    assert_problem(other.admin.request("PUT", f"{HOOKS}/{w['id']}", json=body), 404, "not_found")
    assert_problem(other.admin.delete(f"{HOOKS}/{w['id']}"), 404, "not_found")
    assert_problem(other.admin.post(f"{HOOKS}/{w['id']}/test"), 404, "not_found")
    assert tenant.admin.get(f"{HOOKS}/{w['id']}").json()["name"] == w["name"]
    assert_problem(tenant.admin.get(f"{HOOKS}/not-a-uuid"), 404, "not_found")


def test_deleting_the_tenant_deletes_its_webhooks_and_outbox(wh_server, wh_admin):
    doomed = TenantCtx(wh_server, wh_admin)
    port = free_port()  # nothing listens yet: the ping stays pending, retried after 1 s, 2 s ...
    w = create(doomed.admin, url=f"http://127.0.0.1:{port}/hook")
    d = ping(doomed.admin, w["id"])
    wait_until(lambda: delivery(doomed.admin, w["id"], d["id"])["attempts"] >= 1, what="first attempt")
    assert wh_admin.delete(f"/api/v1/tenants/{doomed.id}").status_code == 204
    late = Receiver(port=port)
    try:
        time.sleep(MAX_ATTEMPTS + 0.5)  # past every retry the delivery would have had
        assert late.requests == [], "a deleted tenant's delivery was still sent"
    finally:
        late.close()


# ---------------------------------------------------------------------------------------------
# Deliveries
# ---------------------------------------------------------------------------------------------
def test_ping_is_signed_and_delivered(tenant, receiver):
    w = create(tenant.admin, url=receiver.url("/in?token=abc"))
    d = ping(tenant.admin, w["id"])
    before = now_ms()
    [req] = receiver.wait_for(1)
    assert req["path"] == "/in?token=abc"
    h = req["headers"]
    assert h["content-type"].startswith("application/json")
    assert h["x-sensoworks-event"] == "ping"
    assert h["x-sensoworks-delivery"] == d["id"]
    ts = int(h["x-sensoworks-timestamp"])
    assert abs(ts - before) < 60_000
    body = check_signature(req, w["secret"])
    assert body == {"event": "ping", "tenant_id": tenant.id, "sent_ms": ts,
                    "webhook": {"id": w["id"], "name": w["name"]}}
    # A wrong secret does not verify.
    with pytest.raises(AssertionError):
        check_signature(req, w["secret"][:-1] + ("0" if w["secret"][-1] != "0" else "1"))

    got = wait_until(lambda: (x := delivery(tenant.admin, w["id"], d["id"]))["status"] == "delivered" and x,
                     what="delivered")
    assert got["attempts"] == 1 and got["last_status_code"] == 200 and got["last_error"] is None
    assert got["next_attempt_ms"] is None and got["delivered_ms"] >= got["created_ms"]
    hook = tenant.admin.get(f"{HOOKS}/{w['id']}").json()
    assert hook["failing"] is False and hook["last_delivery_ms"] >= got["created_ms"]


def test_own_secret_signs_and_new_secret_applies(tenant, receiver):
    w = create(tenant.admin, url=receiver.url(), secret="first-secret-0123456789")
    ping(tenant.admin, w["id"])
    check_signature(receiver.wait_for(1)[0], "first-secret-0123456789")
    r = tenant.admin.request("PUT", f"{HOOKS}/{w['id']}", json={"name": w["name"], "url": receiver.url(),
                                                                   "secret": "second-secret-0123456789"})
    assert r.status_code == 200, r.text
    ping(tenant.admin, w["id"])
    check_signature(receiver.wait_for(2)[1], "second-secret-0123456789")


def test_disabled_webhook_still_answers_ping(tenant, receiver):
    w = create(tenant.admin, url=receiver.url(), enabled=False)
    d = ping(tenant.admin, w["id"])
    assert receiver.wait_for(1)[0]["headers"]["x-sensoworks-delivery"] == d["id"]


def test_retried_with_growing_delays_until_delivered(tenant):
    rcv = Receiver(statuses=[500, 500])
    try:
        w = create(tenant.admin, url=rcv.url())
        d = ping(tenant.admin, w["id"])
        reqs = rcv.wait_for(3, timeout=30)
        assert [x["status"] for x in reqs] == [500, 500, 200]
        assert {x["headers"]["x-sensoworks-delivery"] for x in reqs} == {d["id"]}
        stamps = [int(x["headers"]["x-sensoworks-timestamp"]) for x in reqs]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3
        for x in reqs:
            check_signature(x, w["secret"])  # each attempt signed with its own timestamp
        gap1, gap2 = reqs[1]["t"] - reqs[0]["t"], reqs[2]["t"] - reqs[1]["t"]
        assert gap1 >= 0.9, gap1  # backoff 1 s, then 2 s
        assert gap2 >= 1.9 and gap2 > gap1, (gap1, gap2)
        got = wait_until(lambda: (x := delivery(tenant.admin, w["id"], d["id"]))["status"] == "delivered" and x,
                         what="delivered")
        assert got["attempts"] == 3 and got["last_status_code"] == 200
        hook = tenant.admin.get(f"{HOOKS}/{w['id']}").json()
        assert hook["failing"] is False
        assert hook["last_error"].startswith("HTTP 500")  # the history stays visible
        assert "receiver says no" in hook["last_error"]
    finally:
        rcv.close()


def test_receiver_down_marks_failing_then_failed(tenant):
    port = free_port()  # nothing listens there
    w = create(tenant.admin, url=f"http://127.0.0.1:{port}/hook")
    d = ping(tenant.admin, w["id"])
    hook = wait_until(lambda: (x := tenant.admin.get(f"{HOOKS}/{w['id']}").json())["failing"] and x,
                      what="webhook failing")
    assert "connect" in hook["last_error"], hook
    first = delivery(tenant.admin, w["id"], d["id"])
    assert first["status"] == "pending" and first["attempts"] >= 1
    assert first["last_status_code"] is None and "connect" in first["last_error"]
    assert first["next_attempt_ms"] is not None
    final = wait_until(lambda: (x := delivery(tenant.admin, w["id"], d["id"]))["status"] == "failed" and x,
                       timeout=30, what="failed")
    assert final["attempts"] == MAX_ATTEMPTS
    assert final["next_attempt_ms"] is None and final["delivered_ms"] is None
    assert tenant.admin.get(f"{HOOKS}/{w['id']}").json()["failing"] is True
    # The viewer sees the failure too.
    assert tenant.viewer.get(f"{HOOKS}/{w['id']}").json()["failing"] is True


def test_https_receiver_verified(tenant, certs):
    good = Receiver(tls=certs["good"])
    wrong = Receiver(tls=certs["wrong_name"])
    try:
        for host in ("localhost", "127.0.0.1"):
            w = create(tenant.admin, url=good.url("/tls", host=host))
            d = ping(tenant.admin, w["id"])
            req = good.wait_for(1 if host == "localhost" else 2)[-1]
            assert req["headers"]["x-sensoworks-delivery"] == d["id"]
            check_signature(req, w["secret"])
        # A trusted certificate for another name is refused: nothing reaches the receiver.
        w = create(tenant.admin, url=wrong.url("/tls"))
        d = ping(tenant.admin, w["id"])
        got = wait_until(lambda: (x := delivery(tenant.admin, w["id"], d["id"]))["attempts"] >= 1 and x,
                         what="first https attempt")
        assert got["status"] in ("pending", "failed") and "tls" in got["last_error"], got
        assert wrong.requests == []
    finally:
        good.close()
        wrong.close()


def test_openapi_documents_the_webhook_routes(wh_server):
    doc = requests.get(wh_server.url("/api/v1/openapi.json"), timeout=10).json()
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths[HOOKS])
    assert {"get", "put", "delete"} <= set(paths[HOOKS + "/{id}"])
    assert "get" in paths[HOOKS + "/{id}/deliveries"] and "post" in paths[HOOKS + "/{id}/test"]


def test_deliveries_page_newest_first(tenant, receiver):
    w = create(tenant.admin, url=receiver.url())
    ids = []
    for _ in range(5):
        ids.append(ping(tenant.admin, w["id"])["id"])
        time.sleep(0.005)
    items = tenant.admin.list_all(f"{HOOKS}/{w['id']}/deliveries", page_size=2)
    assert [x["id"] for x in items] == ids[::-1]
    assert all(set(x) == DELIVERY_FIELDS for x in items)
    receiver.wait_for(5)


def test_pending_delivery_is_sent_after_restart(make_server):
    srv = make_server(env=GENERAL_ENV, name="webhooks-restart")
    admin = srv.admin()
    t = TenantCtx(srv, admin)
    port = free_port()  # the receiver is down while the first server runs
    w = create(t.admin, url=f"http://127.0.0.1:{port}/later")
    d = ping(t.admin, w["id"])
    wait_until(lambda: delivery(t.admin, w["id"], d["id"])["attempts"] >= 1, what="first attempt")
    rc = srv.stop()
    assert rc == 0, srv.logs()
    rcv = Receiver(port=port)
    try:
        srv.start()  # the client follows the new port; its token stays valid (same signing key)
        [req] = rcv.wait_for(1, timeout=30)
        assert req["path"] == "/later"
        assert req["headers"]["x-sensoworks-delivery"] == d["id"]
        check_signature(req, w["secret"])
        got = wait_until(lambda: (x := delivery(t.admin, w["id"], d["id"]))["status"] == "delivered" and x,
                         what="delivered after restart")
        assert got["attempts"] >= 2 and got["last_status_code"] == 200
    finally:
        rcv.close()


def test_private_receivers_refused_by_default(make_server):
    """Without webhooks.allow_private (the default), loopback/private/link-local URLs get 400, and a
    name that resolves to such an address is refused when sending, without a connection."""
    env = {k: v for k, v in GENERAL_ENV.items() if k != "SW_WEBHOOKS_ALLOW_PRIVATE"}
    srv = make_server(env=env, name="webhooks-private")
    t = TenantCtx(srv, srv.admin())
    for url in ("http://127.0.0.1:9/hook", "http://localhost/x", "http://[::1]/", "http://10.1.2.3/",
                "http://169.254.169.254/latest/meta-data", "http://[::ffff:192.168.1.1]/"):
        r = t.admin.post(HOOKS, {"name": "n", "url": url})
        assert_problem(r, 400, "invalid_argument", field="url")
        assert "webhooks.allow_private" in r.json()["detail"], r.text
    # This machine's own name resolves to a loopback or private address (Debian's /etc/hosts).
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 9, proto=socket.IPPROTO_TCP)}
    assert addresses and all(ipaddress.ip_address(a).is_private for a in addresses), addresses
    w = create(t.admin, url=f"http://{host}:9/hook")  # a name is only resolved when sending
    d = ping(t.admin, w["id"])
    first = wait_until(lambda: (x := delivery(t.admin, w["id"], d["id"]))["attempts"] >= 1 and x,
                       what="first attempt")
    assert first["last_error"].startswith("refused: "), first
    assert "webhooks.allow_private" in first["last_error"], first
    assert t.admin.get(f"{HOOKS}/{w['id']}").json()["failing"] is True
