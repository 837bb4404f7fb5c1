"""Helpers for the Sensoworks black-box integration tests.

Everything here talks to the server binary over HTTP only; nothing depends on the sources.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SW_BINARY", REPO / "build" / "sensoworks"))

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
REQ_TIMEOUT_S = 30.0

DEFAULT_ADMIN_PASSWORD = "admin-Passw0rd-for-tests"
PASSWORD = "s3cret-Passw0rd"  # password of every user the helpers create

# Day-aligned timestamp (2023-11-15T00:00:00Z): also aligned to 1h, 1m, 30s and 500 ms buckets.
T0 = 1_700_006_400_000
assert T0 % 86_400_000 == 0

STATUS_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "already_exists",
    413: "payload_too_large",
    429: "resource_exhausted",
    500: "internal",
    503: "unavailable",
}


def now_ms() -> int:
    return int(time.time() * 1000)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_binary() -> Path:
    if not BINARY.exists():
        pytest.fail(f"server binary {BINARY} does not exist (build it with `make build`)", pytrace=False)
    return BINARY


# --------------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------------
class Server:
    """One sensoworks process (possibly started several times) on one data directory.

    Every start picks fresh free ports, so a restart after kill -9 never races TIME_WAIT sockets;
    clients built with Client(server, ...) follow the server's current port.
    """

    instances: list["Server"] = []  # every server of the session, for failure reports

    def __init__(self, workdir: Path, env: dict | None = None, admin_password: str | None = DEFAULT_ADMIN_PASSWORD,
                 name: str = "server"):
        Server.instances.append(self)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.name = name
        self.extra_env = dict(env or {})
        self.admin_password = admin_password
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.mqtt_port: int | None = None
        self.starts = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self._out = None
        self._err = None

    # -- lifecycle ---------------------------------------------------------------------------
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SW_")}
        env.update({
            "SW_HTTP_PORT": str(self.port),
            "SW_MQTT_PORT": str(self.mqtt_port),
            "SW_HTTP_BIND": "127.0.0.1",
            "SW_DATA_DIR": str(self.data_dir),
            "SW_LOG_LEVEL": "info",
        })
        if self.admin_password is not None:
            env["SW_ADMIN_PASSWORD"] = self.admin_password
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def start(self, wait: bool = True) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        require_binary()
        self.starts += 1
        self.port = free_port()
        self.mqtt_port = free_port()
        while self.mqtt_port == self.port:
            self.mqtt_port = free_port()
        self.stdout_path = self.workdir / f"stdout.{self.starts}.log"
        self.stderr_path = self.workdir / f"stderr.{self.starts}.log"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(BINARY), "serve"], env=self.env(), stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=str(self.workdir))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_logs()
                pytest.fail(f"{self.name} exited with code {self.proc.returncode} before becoming ready\n"
                            + self.logs(), pytrace=False)
            try:
                r = requests.get(self.url("/readyz"), timeout=2)
                last = f"{r.status_code} {r.text[:200]}"
                if r.status_code == 200:
                    return
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"{self.name} not ready after {timeout}s (last /readyz: {last})\n" + self.logs(), pytrace=False)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; returns the exit code (kills -9 and fails after timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            self._close_logs()
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._close_logs()
            pytest.fail(f"{self.name} did not exit within {timeout}s of SIGTERM\n" + self.logs(), pytrace=False)
        self._close_logs()
        return rc

    def kill(self) -> None:
        """kill -9, no drain."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_logs()

    def restart(self) -> "Server":
        rc = self.stop()
        assert rc == 0, f"exit code after SIGTERM was {rc}\n" + self.logs()
        return self.start()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _close_logs(self):
        for f in (self._out, self._err):
            if f is not None and not f.closed:
                f.close()

    # -- output ------------------------------------------------------------------------------
    def stdout(self, start: int | None = None) -> str:
        p = self.workdir / f"stdout.{start or self.starts}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stderr(self, start: int | None = None) -> str:
        p = self.workdir / f"stderr.{start or self.starts}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def logs(self, tail: int = 8000) -> str:
        return (f"----- {self.name} stdout -----\n{self.stdout()[-tail:]}\n"
                f"----- {self.name} stderr -----\n{self.stderr()[-tail:]}")

    # -- addressing --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- convenience -------------------------------------------------------------------------
    def client(self, token: str | None = None) -> "Client":
        return Client(self, token)

    def login(self, username: str, password: str) -> dict:
        r = requests.post(self.url("/api/v1/auth/login"), json={"username": username, "password": password},
                          timeout=REQ_TIMEOUT_S)
        assert r.status_code == 200, f"login {username}: {r.status_code} {r.text}"
        return r.json()

    def admin(self) -> "Client":
        assert self.admin_password, "admin password unknown"
        return Client(self, self.login("admin", self.admin_password)["access_token"])

    def ingest(self, token: str, body, content_type: str = "application/json", session=None,
               timeout: float = REQ_TIMEOUT_S) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        s = session or requests
        return s.post(self.url(f"/api/v1/{token}/telemetry"), data=data, headers={"Content-Type": content_type},
                      timeout=timeout)

    def ingest_ok(self, token: str, body, content_type: str = "application/json") -> int:
        r = self.ingest(token, body, content_type)
        assert r.status_code == 200, f"ingest: {r.status_code} {r.text}"
        return r.json()["points"]

    def post_client_attributes(self, token: str, body) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.url(f"/api/v1/{token}/attributes"), data=data,
                             headers={"Content-Type": "application/json"}, timeout=REQ_TIMEOUT_S)

    def metrics(self) -> str:
        r = requests.get(self.url("/metrics"), timeout=REQ_TIMEOUT_S)
        assert r.status_code == 200, r.text
        return r.text


_NOBODY = object()


class Client:
    """A user's view of the REST API (Bearer token)."""

    def __init__(self, server: Server, token: str | None = None, username: str | None = None,
                 password: str | None = None, user: dict | None = None):
        self.server = server
        self.token = token
        self.username = username
        self.password = password
        self.user = user
        self.session = requests.Session()

    def request(self, method: str, path: str, json=_NOBODY, data=None, params=None, headers=None,
                token=_NOBODY) -> requests.Response:
        h = dict(headers or {})
        tok = self.token if token is _NOBODY else token
        if tok is not None:
            h["Authorization"] = f"Bearer {tok}"
        kw = {}
        if json is not _NOBODY:
            kw["json"] = json
        if data is not None:
            kw["data"] = data
        return self.session.request(method, self.server.url(path), params=params, headers=h,
                                    timeout=REQ_TIMEOUT_S, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=_NOBODY, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path, json=_NOBODY, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- typed helpers (assert success) -------------------------------------------------------
    def create_tenant(self, name: str | None = None, **fields) -> dict:
        body = {"name": name or unique("tenant"), **fields}
        r = self.post("/api/v1/tenants", body)
        assert r.status_code == 201, f"create tenant: {r.status_code} {r.text}"
        return r.json()

    def create_user(self, role: str, tenant_id: str | None, username: str | None = None,
                    password: str = PASSWORD) -> dict:
        body = {"username": username or unique(role), "password": password, "role": role}
        if tenant_id is not None:
            body["tenant_id"] = tenant_id
        r = self.post("/api/v1/users", body)
        assert r.status_code == 201, f"create user: {r.status_code} {r.text}"
        return r.json()

    def create_device(self, name: str | None = None, type: str | None = None, labels: dict | None = None) -> dict:
        body = {"name": name or unique("dev")}
        if type is not None:
            body["type"] = type
        if labels is not None:
            body["labels"] = labels
        r = self.post("/api/v1/devices", body)
        assert r.status_code == 201, f"create device: {r.status_code} {r.text}"
        d = r.json()
        assert d["credentials"]["access_token"]
        return d

    def telemetry(self, device_id: str, **params) -> requests.Response:
        return self.get(f"/api/v1/devices/{device_id}/telemetry", params=params)

    def raw(self, device_id: str, keys, frm: int, to: int, **params) -> dict:
        if not isinstance(keys, str):
            keys = ",".join(keys)
        r = self.telemetry(device_id, keys=keys, **{"from": frm, "to": to}, **params)
        assert r.status_code == 200, f"raw query: {r.status_code} {r.text}"
        return r.json()

    def raw_all(self, device_id: str, keys, frm: int, to: int, limit: int | None = None, max_pages: int = 1000) -> dict:
        """Walks X-Next-Cursor; returns {key: [points]} concatenated over pages."""
        if not isinstance(keys, str):
            keys = ",".join(keys)
        out: dict = {}
        cursor = None
        for _ in range(max_pages):
            params = {"keys": keys, "from": frm, "to": to}
            if limit is not None:
                params["limit"] = limit
            if cursor is not None:
                params["cursor"] = cursor
            r = self.telemetry(device_id, **params)
            assert r.status_code == 200, f"raw query: {r.status_code} {r.text}"
            for k, pts in r.json().items():
                out.setdefault(k, []).extend(pts)
            cursor = r.headers.get("X-Next-Cursor")
            if not cursor:
                return out
        raise AssertionError("raw pagination did not terminate")

    def agg(self, device_id: str, key: str, frm: int, to: int, agg: str, interval) -> list:
        r = self.telemetry(device_id, keys=key, **{"from": frm, "to": to}, agg=agg, interval=interval)
        assert r.status_code == 200, f"agg query: {r.status_code} {r.text}"
        return r.json().get(key, [])

    def list_all(self, path: str, page_size: int | None = None, **params) -> list:
        items, cursor, seen_cursors = [], None, set()
        for _ in range(10000):
            p = dict(params)
            if page_size is not None:
                p["page_size"] = page_size
            if cursor is not None:
                p["cursor"] = cursor
            r = self.get(path, params=p)
            assert r.status_code == 200, f"list {path}: {r.status_code} {r.text}"
            body = r.json()
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items
            assert cursor not in seen_cursors, "cursor repeated"
            seen_cursors.add(cursor)
        raise AssertionError("pagination did not terminate")


class TenantCtx:
    """A tenant with one tenant_admin and one viewer, both logged in."""

    def __init__(self, server: Server, sysadmin: Client, name: str | None = None, **tenant_fields):
        self.server = server
        self.tenant = sysadmin.create_tenant(name, **tenant_fields)
        self.id = self.tenant["id"]
        self.admin_user = sysadmin.create_user("tenant_admin", self.id)
        self.viewer_user = sysadmin.create_user("viewer", self.id)
        self.admin = login_client(server, self.admin_user["username"], PASSWORD, self.admin_user)
        self.viewer = login_client(server, self.viewer_user["username"], PASSWORD, self.viewer_user)

    def device(self, **kw) -> dict:
        return self.admin.create_device(**kw)


def login_client(server: Server, username: str, password: str, user: dict | None = None) -> Client:
    tokens = server.login(username, password)
    return Client(server, tokens["access_token"], username, password, user)


# --------------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------------
def assert_problem(r: requests.Response, status: int, code: str | None = None, field=_NOBODY) -> dict:
    """Asserts an RFC 7807 error: status, content type, body.status and body.code (and field)."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/problem+json", \
        f"error content type is {ctype!r}: {r.text[:300]}"
    body = r.json()
    expected_code = code or STATUS_CODES[status]
    assert body.get("code") == expected_code, f"code {body.get('code')!r} != {expected_code!r}: {body}"
    assert body.get("status") == status, body
    if field is not _NOBODY:
        assert body.get("field") == field, f"field {body.get('field')!r} != {field!r}: {body}"
    return body


def metric_value(text: str, name: str, labels: dict | None = None) -> float | None:
    """Sum of the samples of `name` whose labels include `labels`; None when absent."""
    total, found = 0.0, False
    pat = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = pat.match(line)
        if not m or m.group(1) != name:
            continue
        lbls = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if labels and any(lbls.get(k) != v for k, v in labels.items()):
            continue
        found = True
        total += float(m.group(4))
    return total if found else None


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
