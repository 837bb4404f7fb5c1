"""Fixtures for the Sensoworks black-box integration tests (see README.md)."""
from __future__ import annotations

import pytest

from swtest import Server, TenantCtx, require_binary

# The general-purpose server: effectively no ingest rate limit, long-lived access tokens.
GENERAL_ENV = {
    "SW_DEVICE_MAX_MSGS_PER_S": "100000",
    "SW_DEVICE_BURST": "100000",
    "SW_ACCESS_TOKEN_TTL_S": "3600",
    "SW_WEBHOOKS_ALLOW_PRIVATE": "true",  # the tests' webhook receivers listen on 127.0.0.1
}


@pytest.fixture(scope="session")
def binary():
    return require_binary()


@pytest.fixture(scope="session")
def make_server(tmp_path_factory, binary):
    """Factory: make_server(env=..., admin_password=..., start=True) -> Server; stopped at session end
    (unless the test stopped it itself), asserting exit code 0 after SIGTERM."""
    servers: list[Server] = []

    def factory(env: dict | None = None, admin_password="__default__", start: bool = True, name: str = "server"):
        kwargs = {}
        if admin_password != "__default__":
            kwargs["admin_password"] = admin_password
        s = Server(tmp_path_factory.mktemp(name), env=env, name=name, **kwargs)
        servers.append(s)
        if start:
            s.start()
        return s

    yield factory
    errors = []
    for s in servers:
        if s.running():
            rc = s.stop()
            if rc != 0:
                errors.append(f"{s.name}: exit code {rc} after SIGTERM\n{s.logs()}")
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="session")
def server(tmp_path_factory, binary):
    """The shared server for tests that do not interfere with each other (each uses its own tenant)."""
    s = Server(tmp_path_factory.mktemp("general"), env=GENERAL_ENV, name="general")
    s.start()
    yield s
    rc = s.stop()
    assert rc == 0, f"general server exit code {rc} after SIGTERM\n{s.logs()}"


@pytest.fixture(scope="session")
def sysadmin(server):
    """The built-in admin (sysadmin) logged in on the shared server."""
    c = server.admin()
    c.username, c.password = "admin", server.admin_password
    return c


@pytest.fixture(scope="session")
def new_tenant(server, sysadmin):
    """Factory: new_tenant(**tenant_fields) -> TenantCtx (tenant + tenant_admin + viewer)."""
    def factory(**fields) -> TenantCtx:
        return TenantCtx(server, sysadmin, **fields)
    return factory


@pytest.fixture(scope="module")
def tenant(new_tenant):
    """A tenant shared by the tests of one module."""
    return new_tenant()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the stderr tail of every server that is still running or that died
    (the server's stderr usually explains a 500 or a crash)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for s in Server.instances:
            if s.proc is None or (not s.running() and s.proc.returncode == 0):
                continue
            state = "running" if s.running() else f"exited rc={s.proc.returncode}"
            report.sections.append((f"{s.name} server ({state}) stderr tail", s.stderr()[-3000:]))
