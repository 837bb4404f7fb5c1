"""System endpoints, CLI, process lifecycle, generic error shape."""
import json
import re
import subprocess

import requests

from swtest import BINARY, T0, assert_problem, metric_value, unique

METRIC_FAMILIES = [
    "sw_ingest_points_total",
    "sw_ingest_messages_total",
    "sw_ingest_rejected_total",
    "sw_http_requests_total",
    "sw_store_write_seconds",
    "sw_api_queue_depth",
    "sw_store_pending_rollups",
    "sw_http_inflight",
]


def test_healthz(server):
    r = requests.get(server.url("/healthz"), timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz(server):
    r = requests.get(server.url("/readyz"), timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_metrics_families(server, tenant):
    dev = tenant.device()
    token = dev["credentials"]["access_token"]
    before = server.metrics()
    before_points = metric_value(before, "sw_ingest_points_total") or 0.0
    before_msgs = metric_value(before, "sw_ingest_messages_total") or 0.0
    assert server.ingest_ok(token, {"ts": T0, "values": {"a": 1, "b": 2, "c": 3}}) == 3
    # one rejected message so that the labelled family has a sample
    assert server.ingest(token, b"{not json").status_code == 400

    r = requests.get(server.url("/metrics"), timeout=10)
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain")
    text = r.text
    sample_names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    for fam in METRIC_FAMILIES:
        assert any(n == fam or n.startswith(fam + "_") for n in sample_names), f"metric family {fam} missing"
    # histogram
    assert re.search(r"^# TYPE sw_store_write_seconds histogram", text, re.M), "sw_store_write_seconds not a histogram"
    assert "sw_store_write_seconds_bucket" in sample_names
    assert "sw_store_write_seconds_count" in sample_names
    # gauges
    for g in ("sw_api_queue_depth", "sw_store_pending_rollups", "sw_http_inflight"):
        assert re.search(rf"^# TYPE {g} gauge", text, re.M), f"{g} is not declared a gauge"
    assert re.search(r'^sw_ingest_rejected_total\{[^}]*reason="[^"]+"', text, re.M)
    assert re.search(r'^sw_http_requests_total\{[^}]*status="200"', text, re.M)
    assert metric_value(text, "sw_ingest_points_total") >= before_points + 3
    assert metric_value(text, "sw_ingest_messages_total") >= before_msgs + 1


def test_openapi_document(server):
    r = requests.get(server.url("/api/v1/openapi.json"), timeout=10)
    assert r.status_code == 200
    doc = json.loads(r.text)
    assert isinstance(doc, dict)
    assert str(doc.get("openapi", "")).startswith("3."), doc.get("openapi")
    assert isinstance(doc.get("info"), dict)
    paths = doc.get("paths")
    assert isinstance(paths, dict) and paths
    for p in ("/api/v1/auth/login", "/api/v1/devices", "/api/v1/tenants", "/api/v1/users"):
        assert p in paths, f"{p} missing from OpenAPI paths"


def test_unknown_route_404(server):
    # unknown API routes are 404 problems; other paths are the web UI (test_static_ui.py)
    r = requests.get(server.url("/api/v1/definitely/not/a/route"), timeout=10)
    assert_problem(r, 404, "not_found")


def test_wrong_method_405(server):
    r = requests.post(server.url("/healthz"), timeout=10)
    assert_problem(r, 405, "method_not_allowed")
    r = requests.delete(server.url("/api/v1/auth/login"), timeout=10)
    assert_problem(r, 405, "method_not_allowed")


def test_help_exits_0():
    p = subprocess.run([str(BINARY), "--help"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert (p.stdout + p.stderr).strip(), "--help printed nothing"
    assert b"serve" in p.stdout + p.stderr


def test_version_exits_0():
    p = subprocess.run([str(BINARY), "--version"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert re.search(rb"\d+\.\d+\.\d+", p.stdout + p.stderr), p.stdout


def test_listening_log_line_and_sigterm_exit_0(make_server):
    s = make_server(name="sigterm")
    out = s.stdout() + s.stderr()
    assert re.search(rf'msg="?listening"?.*http_port={s.port}\b', out), out[-2000:]
    # a little traffic, then SIGTERM
    c = s.admin()
    assert c.get("/api/v1/auth/me").status_code == 200
    assert s.stop() == 0


def test_generated_admin_password_printed_once(make_server):
    s = make_server(admin_password=None, name="genpw")
    out = s.stdout()
    matches = re.findall(r"^admin password: (\S+)\s*$", out, re.M)
    assert len(matches) == 1, f"expected one 'admin password:' line on stdout, got:\n{out[-2000:]}"
    pw = matches[0]
    tokens = s.login("admin", pw)
    assert tokens["token_type"] == "Bearer"
    me = s.client(tokens["access_token"]).get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["role"] == "sysadmin"
    # a second start on the same data dir prints nothing
    assert s.stop() == 0
    s.start()
    assert "admin password:" not in s.stdout(), s.stdout()[-2000:]
    assert "admin password:" not in s.stderr()
    s.login("admin", pw)  # still the same password
    r = requests.post(s.url("/api/v1/auth/login"), json={"username": "admin", "password": pw + "x"}, timeout=10)
    assert_problem(r, 401)
    assert s.stop() == 0


def test_errors_are_problem_json(server, sysadmin):
    # a sample of error paths across the API
    assert_problem(requests.get(server.url("/api/v1/devices"), timeout=10), 401)
    assert_problem(sysadmin.get(f"/api/v1/tenants/{'0' * 8}-0000-4000-8000-{'0' * 12}"), 404)
    assert_problem(sysadmin.post("/api/v1/tenants", {"retention_days": 1}), 400)
    name = unique("dup")
    sysadmin.create_tenant(name)
    assert_problem(sysadmin.post("/api/v1/tenants", {"name": name}), 409)


CONTRACT_ROUTES = {
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/metrics": {"get"},
    "/api/v1/auth/login": {"post"},
    "/api/v1/auth/refresh": {"post"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/auth/me": {"get"},
    "/api/v1/tenants": {"get", "post"},
    "/api/v1/tenants/{}": {"get", "patch", "delete"},
    "/api/v1/users": {"get", "post"},
    "/api/v1/users/{}": {"get", "patch", "delete"},
    "/api/v1/devices": {"get", "post"},
    "/api/v1/devices/{}": {"get", "patch", "delete"},
    "/api/v1/devices/{}/credentials": {"post"},
    "/api/v1/devices/{}/attributes": {"get", "post"},
    "/api/v1/devices/{}/telemetry": {"get"},
    "/api/v1/devices/{}/telemetry/keys": {"get"},
    "/api/v1/devices/{}/telemetry/latest": {"get"},
    "/api/v1/{}/telemetry": {"post"},
    "/api/v1/{}/attributes": {"post"},
}


def test_openapi_documents_every_contract_route(server):
    doc = requests.get(server.url("/api/v1/openapi.json"), timeout=10).json()
    paths = {re.sub(r"\{[^}]*\}", "{}", p): {m.lower() for m in ops} for p, ops in doc["paths"].items()}
    missing = []
    for route, methods in CONTRACT_ROUTES.items():
        if route not in paths:
            missing.append(route)
            continue
        for m in methods - paths[route]:
            missing.append(f"{m.upper()} {route}")
    assert not missing, f"routes of CONTRACT.md missing from the OpenAPI document: {missing}"


def test_server_info_for_signed_in_users(server, tenant):
    """GET /api/v1/info tells the UI the MQTT port devices connect to; it needs a session."""
    assert_problem(requests.get(server.url("/api/v1/info"), timeout=10), 401, "unauthenticated")
    for c in (tenant.admin, tenant.viewer):
        r = c.get("/api/v1/info")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["mqtt_port"] == server.mqtt_port
        assert isinstance(body["version"], str) and body["version"]
