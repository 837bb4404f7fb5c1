"""413 over SW_HTTP_MAX_BODY_BYTES and 429 over the device message rate (own server)."""
import json
import re
import socket
import time

import pytest
import requests

from swtest import PASSWORD, T0, TenantCtx, assert_problem, metric_value

MAX_BODY = 1024
RATE = 1
BURST = 5


@pytest.fixture(scope="module")
def limited(make_server):
    s = make_server(env={"SW_HTTP_MAX_BODY_BYTES": str(MAX_BODY), "SW_DEVICE_MAX_MSGS_PER_S": str(RATE),
                         "SW_DEVICE_BURST": str(BURST), "SW_ACCESS_TOKEN_TTL_S": "3600"}, name="limits")
    s.sysadmin = s.admin()
    s.ctx = TenantCtx(s, s.sysadmin)
    return s


def body_of_size(n: int) -> bytes:
    """A valid telemetry JSON body of exactly n bytes."""
    head = b'{"ts": 1700006400000, "values": {"pad": "'
    tail = b'"}}'
    b = head + b"x" * (n - len(head) - len(tail)) + tail
    assert len(b) == n
    json.loads(b)
    return b


# ---------------------------------------------------------------------------------------------
# 413
# ---------------------------------------------------------------------------------------------
def test_body_at_limit_accepted(limited):
    token = limited.ctx.device()["credentials"]["access_token"]
    r = limited.ingest(token, body_of_size(MAX_BODY))
    assert r.status_code == 200, r.text
    assert r.json() == {"points": 1}


def test_body_over_limit_413(limited):
    d = limited.ctx.device()
    token = d["credentials"]["access_token"]
    for size in (MAX_BODY + 1, 4 * MAX_BODY):
        r = limited.ingest(token, body_of_size(size))
        assert_problem(r, 413, "payload_too_large")
    # nothing stored
    assert limited.ctx.admin.get(f"/api/v1/devices/{d['id']}/telemetry/keys").json() == []


def raw_http(server, request: bytes) -> tuple[int, dict, bytes]:
    """Sends a raw HTTP/1.1 request in one write and reads the response (the server may close early)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as c:
        try:
            c.sendall(request)
        except OSError:
            pass  # the server may answer and close before reading everything
        data = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
                head, sep, rest = data.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    if m and len(rest) >= int(m.group(1)):
                        break
        except OSError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1 "), data[:300]
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    return status, headers, body


def test_chunked_body_over_limit_413(limited):
    d = limited.ctx.device()
    token = d["credentials"]["access_token"]
    payload = body_of_size(3 * MAX_BODY)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 500]), payload[i:i + 500])
                      for i in range(0, len(payload), 500)) + b"0\r\n\r\n"
    req = (f"POST /api/v1/{token}/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Transfer-Encoding: chunked\r\n\r\n").encode() + chunks
    status, headers, body = raw_http(limited, req)
    assert status == 413, body
    assert headers.get("content-type", "").startswith("application/problem+json")
    assert json.loads(body)["code"] == "payload_too_large"
    assert limited.ctx.admin.get(f"/api/v1/devices/{d['id']}/telemetry/keys").json() == []


def test_body_limit_applies_to_rest_api(limited):
    r = requests.post(limited.url("/api/v1/auth/login"),
                      json={"username": "admin", "password": "x" * (2 * MAX_BODY)}, timeout=30)
    assert_problem(r, 413, "payload_too_large")
    r = limited.ctx.admin.post("/api/v1/devices", {"name": "big", "labels": {"k": "v" * (2 * MAX_BODY)}})
    assert_problem(r, 413, "payload_too_large")
    # the server keeps serving normally afterwards
    assert limited.ctx.admin.get("/api/v1/auth/me").status_code == 200


# ---------------------------------------------------------------------------------------------
# 429
# ---------------------------------------------------------------------------------------------
def send_burst(server, token, n, session=None):
    """Sends n single-point messages as fast as possible; returns [(ts, status)], elapsed seconds."""
    s = session or requests.Session()
    out = []
    start = time.monotonic()
    for i in range(n):
        ts = T0 + i
        r = server.ingest(token, {"ts": ts, "values": {"m": i}}, session=s)
        if r.status_code == 429:
            assert_problem(r, 429, "resource_exhausted")
        else:
            assert r.status_code == 200, r.text
        out.append((ts, r.status_code))
    return out, time.monotonic() - start


def test_rate_limit_429(limited):
    d = limited.ctx.device()
    token = d["credentials"]["access_token"]
    rejected_before = metric_value(limited.metrics(), "sw_ingest_rejected_total") or 0
    results, elapsed = send_burst(limited, token, 25)
    statuses = [s for _, s in results]
    assert statuses[0] == 200
    assert 429 in statuses
    accepted = statuses.count(200)
    # at most the burst plus what refilled while sending (rate/s), plus one for rounding
    assert accepted <= BURST + RATE * elapsed + 1, (accepted, elapsed)
    # rejected messages are not stored; accepted ones are
    stored = limited.ctx.admin.raw(d["id"], "m", T0, T0 + 1000)["m"]
    assert [p["ts"] for p in stored] == [ts for ts, s in results if s == 200]
    assert metric_value(limited.metrics(), "sw_ingest_rejected_total") >= rejected_before + statuses.count(429)
    # tokens refill: eventually accepted again
    deadline = time.monotonic() + 10
    while True:
        r = limited.ingest(token, {"ts": T0 + 999, "values": {"m": -1}})
        if r.status_code == 200:
            break
        assert_problem(r, 429, "resource_exhausted")
        assert time.monotonic() < deadline, "rate limit never refilled"
        time.sleep(0.3)


def test_rate_limit_is_per_device(limited):
    d1, d2 = limited.ctx.device(), limited.ctx.device()
    results, _ = send_burst(limited, d1["credentials"]["access_token"], 15)
    assert 429 in [s for _, s in results]
    r = limited.ingest(d2["credentials"]["access_token"], {"x": 1})
    assert r.status_code == 200, r.text


def test_tenant_max_msgs_per_s_overrides(limited):
    ctx = TenantCtx(limited, limited.sysadmin, max_msgs_per_s=100000)
    d = ctx.device()
    results, _ = send_burst(limited, d["credentials"]["access_token"], 30)
    assert [s for _, s in results] == [200] * 30


def test_tenant_max_msgs_per_s_patch_takes_effect(limited):
    ctx = TenantCtx(limited, limited.sysadmin)
    d = ctx.device()
    token = d["credentials"]["access_token"]
    results, _ = send_burst(limited, token, 15)
    assert 429 in [s for _, s in results]
    r = limited.sysadmin.patch(f"/api/v1/tenants/{ctx.id}", {"max_msgs_per_s": 100000})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while True:
        results, _ = send_burst(limited, token, 30)
        if all(s == 200 for _, s in results):
            break
        assert time.monotonic() < deadline, "tenant max_msgs_per_s not applied"
        time.sleep(0.5)


def test_login_with_limited_server_still_fine(limited):
    # rate limits apply to device messages, not to the REST API
    for _ in range(BURST * 3):
        assert limited.ctx.admin.get("/api/v1/devices").status_code == 200
    limited.login(limited.ctx.viewer_user["username"], PASSWORD)
