"""The web UI served by the sensoworks binary at "/" (docs/api/CONTRACT.md, "Web UI"): files of a
fake Vite build (SW_UI_DIR) with content types, cache headers, gzip, the single-page-app
fallback, path traversal attempts, HEAD, the API namespace keeping its 404 problems, the default
ui/dist lookup and the built-in page when no build exists.

Paths are sent with http.client, byte for byte: requests/urllib3 would normalise "..".
"""
import gzip
import http.client
import json
import socket

import pytest

from swtest import REQ_TIMEOUT_S, assert_problem

CSP = ("default-src 'self'; img-src 'self' data: blob: http: https:; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'")
IMMUTABLE = "public, max-age=31536000, immutable"
SECRET = "TOP-SECRET-outside-the-dist"

INDEX = b'<!doctype html><html><head><script type="module" src="/assets/index-4f3a2b1c.js"></script></head>' \
        b'<body><div id="app"></div></body></html>\n'
APP_JS = ("import{h}from'./vendor-9a8b7c6d.js';\n" +
          "".join(f"export const widget{i}=()=>h('div',{{class:'w{i}'}},'widget {i}');\n" for i in range(300))
          ).encode()
APP_CSS = (".grid{display:grid}\n" + "".join(f".w{i}{{color:#{i:06x};margin:{i}px}}\n" for i in range(200))).encode()
FONT = bytes(range(256)) * 8  # binary, not compressible by type
LOGO = b"<svg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/>"


def write_dist(root):
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "index-4f3a2b1c.js").write_bytes(APP_JS)
    (dist / "assets" / "index-4f3a2b1c.css").write_bytes(APP_CSS)
    (dist / "assets" / "inter-latin-400.woff2").write_bytes(FONT)
    (dist / "favicon.svg").write_bytes(LOGO)
    (dist / "manifest.webmanifest").write_bytes(json.dumps({"name": "Sensoworks"}).encode())
    # files next to the dist that must never be reachable
    (root / "secret.txt").write_text(SECRET)
    (root / "secret").write_text(SECRET)
    return dist


@pytest.fixture(scope="module")
def ui_server(make_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    dist = write_dist(root)
    return make_server(env={"SW_UI_DIR": str(dist)}, name="ui")


def raw_get(server, path: str, method: str = "GET", headers: dict | None = None):
    """(status, headers (lower-case names), body bytes) of one request sent exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQ_TIMEOUT_S)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


def assert_security_headers(h: dict):
    assert h.get("content-security-policy") == CSP, h
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("referrer-policy") == "no-referrer"
    assert h.get("x-frame-options") == "DENY"


# ---------------------------------------------------------------------------------------------
def test_index_and_files_with_types_and_cache(ui_server):
    for path in ("/", "/index.html"):
        st, h, body = raw_get(ui_server, path)
        assert st == 200 and body == INDEX, path
        assert h["content-type"] == "text/html; charset=utf-8"
        assert h["cache-control"] == "no-cache"
        assert_security_headers(h)
    cases = [
        ("/assets/index-4f3a2b1c.js", "text/javascript; charset=utf-8", APP_JS, IMMUTABLE),
        ("/assets/index-4f3a2b1c.css", "text/css; charset=utf-8", APP_CSS, IMMUTABLE),
        ("/assets/inter-latin-400.woff2", "font/woff2", FONT, IMMUTABLE),
        ("/favicon.svg", "image/svg+xml", LOGO, "no-cache"),
        ("/manifest.webmanifest", "application/manifest+json", None, "no-cache"),
    ]
    for path, ctype, content, cache in cases:
        st, h, body = raw_get(ui_server, path)
        assert st == 200, path
        assert h["content-type"] == ctype, path
        assert h["cache-control"] == cache, path
        assert "content-encoding" not in h, path  # the client did not ask for gzip
        if content is not None:
            assert body == content, path
            assert int(h["content-length"]) == len(content)
        assert_security_headers(h)


def test_gzip_when_accepted(ui_server):
    for path, content in (("/assets/index-4f3a2b1c.js", APP_JS), ("/assets/index-4f3a2b1c.css", APP_CSS)):
        st, h, body = raw_get(ui_server, path, headers={"Accept-Encoding": "gzip, deflate, br"})
        assert st == 200
        assert h.get("content-encoding") == "gzip", h
        assert h.get("vary") == "Accept-Encoding"
        assert len(body) < len(content) / 2
        assert gzip.decompress(body) == content
        assert h["content-type"].startswith("text/")
        assert h["cache-control"] == IMMUTABLE
        # refused explicitly, or not offered: identity
        for ae in ("gzip;q=0", "br", "identity"):
            st, h, body = raw_get(ui_server, path, headers={"Accept-Encoding": ae})
            assert st == 200 and body == content and "content-encoding" not in h, ae
    # binary formats and tiny files are not compressed
    for path in ("/assets/inter-latin-400.woff2", "/favicon.svg"):
        st, h, body = raw_get(ui_server, path, headers={"Accept-Encoding": "gzip"})
        assert st == 200 and "content-encoding" not in h, path


def test_requests_client_sees_plain_content(ui_server):
    import requests
    r = requests.get(ui_server.url("/assets/index-4f3a2b1c.js"), timeout=REQ_TIMEOUT_S)  # sends gzip, decodes it
    assert r.status_code == 200 and r.content == APP_JS
    assert r.headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("path", ["/devices", "/devices/3f1c2b9e-0000-4000-8000-000000000001", "/dashboards/x/edit",
                                  "/login", "/assets", "/assets/", "/settings/", "/a/b/c/d/e", "/devices?tab=live"])
def test_spa_routes_get_index(ui_server, path):
    st, h, body = raw_get(ui_server, path)
    assert st == 200, path
    assert body == INDEX
    assert h["content-type"] == "text/html; charset=utf-8"
    assert h["cache-control"] == "no-cache"
    assert_security_headers(h)


@pytest.mark.parametrize("path", ["/assets/index-00000000.js", "/missing.css", "/robots.txt", "/devices/logo.png",
                                  "/index.htm", "/secret.txt"])
def test_missing_file_with_extension_404(ui_server, path):
    st, h, body = raw_get(ui_server, path)
    assert st == 404, path
    assert h["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "not_found"
    assert SECRET.encode() not in body


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/../secret", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret",
    "/.%2e/secret.txt", "/%2e%2e%2fsecret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/..%2f..%2fsecret.txt",
    "/..\\secret.txt", "/assets\\..\\..\\secret.txt", "/%5c..%5csecret.txt", "/..%5csecret.txt",
    "/index.html%00", "/%00/../secret", "/secret.txt%00.js", "/assets/%2e/index-4f3a2b1c.js", "/./index.html",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/....//secret.txt/..", "/%", "/%zz", "/a%0d%0aX-Injected:%201",
])
def test_path_traversal_and_malformed_paths_refused(ui_server, path):
    st, h, body = raw_get(ui_server, path)
    assert st in (400, 404), (path, st, body[:200])
    assert SECRET.encode() not in body and b"root:" not in body
    assert body != INDEX
    assert h["content-type"] == "application/problem+json"
    assert "x-injected" not in h


def test_traversal_over_a_raw_socket(ui_server):
    # no client library in the way: the request line exactly as written
    for target in (b"/../../../../etc/passwd", b"/..%2f..%2f..%2fetc%2fpasswd", b"/assets/../../secret.txt"):
        with socket.create_connection(("127.0.0.1", ui_server.port), timeout=REQ_TIMEOUT_S) as s:
            s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
        assert status in (400, 404), (target, data[:300])
        assert SECRET.encode() not in data and b"root:" not in data


def test_head_like_get_without_body(ui_server):
    _, get_h, get_body = raw_get(ui_server, "/assets/index-4f3a2b1c.js")
    # keep-alive: HEAD then GET on one connection; a body after HEAD would corrupt the second response
    conn = http.client.HTTPConnection("127.0.0.1", ui_server.port, timeout=REQ_TIMEOUT_S)
    try:
        conn.request("HEAD", "/assets/index-4f3a2b1c.js")
        r = conn.getresponse()
        assert r.status == 200
        assert r.read() == b""
        assert r.getheader("Content-Type") == get_h["content-type"]
        assert r.getheader("Cache-Control") == IMMUTABLE
        assert r.getheader("Content-Length") == str(len(get_body))
        conn.request("GET", "/favicon.svg")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == LOGO
        conn.request("HEAD", "/devices/123")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"" and r.getheader("Content-Length") == str(len(INDEX))
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == INDEX
    finally:
        conn.close()


def test_other_methods_405(ui_server):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        st, h, body = raw_get(ui_server, "/devices/1", method=method)
        assert st == 405, method
        assert json.loads(body)["code"] == "method_not_allowed"
        assert h.get("allow") == "GET, HEAD"


def test_api_and_system_paths_keep_problem_404(ui_server):
    for path in ("/api", "/api/", "/api/v1", "/api/v1/nope", "/api/v2/devices", "/api/v1/devices/a/b/c/d",
                 "/healthz/x", "/readyz/x", "/metrics/x", "/%61pi/v1/nope"):
        st, h, body = raw_get(ui_server, path)
        assert st == 404, path
        assert h["content-type"] == "application/problem+json", path
        assert json.loads(body)["code"] == "not_found"
    # the real system routes still answer
    assert raw_get(ui_server, "/healthz")[0] == 200
    assert json.loads(raw_get(ui_server, "/readyz")[2]) == {"status": "ready"}
    assert raw_get(ui_server, "/metrics")[0] == 200
    assert raw_get(ui_server, "/api/v1/openapi.json")[0] == 200
    import requests
    assert_problem(requests.get(ui_server.url("/api/v1/devices"), timeout=REQ_TIMEOUT_S), 401)


def test_default_ui_dist_under_working_directory(make_server):
    # no SW_UI_DIR: ./ui/dist of the working directory (the test server runs in its workdir)
    srv = make_server(start=False, name="ui-default")
    write_dist(srv.workdir / "ui")
    srv.start()
    st, h, body = raw_get(srv, "/")
    assert st == 200 and body == INDEX
    assert raw_get(srv, "/assets/index-4f3a2b1c.js")[2] == APP_JS
    srv.stop()


@pytest.mark.parametrize("ui_dir", ["missing", "empty"])
def test_placeholder_when_ui_not_built(make_server, tmp_path, ui_dir):
    # a configured directory that does not exist, or holds no index.html: the API still starts,
    # and the UI paths show the built-in page
    target = tmp_path / ui_dir
    if ui_dir == "empty":
        target.mkdir()
        (target / "app.js").write_text("x")
    srv = make_server(env={"SW_UI_DIR": str(target)}, name=f"ui-{ui_dir}")
    for path in ("/", "/devices/1"):
        st, h, body = raw_get(srv, path)
        assert st == 200
        assert h["content-type"] == "text/html; charset=utf-8"
        assert b"make build" in body and b"not built" in body
        assert_security_headers(h)
    assert raw_get(srv, "/app.js")[0] == 404
    assert raw_get(srv, "/healthz")[0] == 200
    assert "placeholder" in srv.stderr() + srv.stdout()
    srv.stop()
