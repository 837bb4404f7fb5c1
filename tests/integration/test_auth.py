"""Login, refresh (rotation), logout (revocation), /auth/me, bearer checks, token expiry."""
import threading
import time

import pytest
import requests

from swtest import PASSWORD, assert_problem


def post(server, path, body, token=None):
    h = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(server.url(path), json=body, headers=h, timeout=30)


@pytest.fixture(scope="module")
def user(tenant):
    return tenant.admin_user


def test_login_shape(server, user):
    r = post(server, "/api/v1/auth/login", {"username": user["username"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] == 3600  # SW_ACCESS_TOKEN_TTL_S


@pytest.mark.parametrize("creds", [
    {"username": "admin", "password": "wrong-password"},
    {"username": "no-such-user-xyz", "password": "whatever-123"},
])
def test_login_bad_credentials_401(server, creds):
    assert_problem(post(server, "/api/v1/auth/login", creds), 401)


@pytest.mark.parametrize("body", [{}, {"username": "admin"}, {"password": "x-long-enough"}])
def test_login_missing_fields_400(server, body):
    assert_problem(post(server, "/api/v1/auth/login", body), 400)


def test_login_invalid_json_400(server):
    r = requests.post(server.url("/api/v1/auth/login"), data=b"{nope", headers={"Content-Type": "application/json"},
                      timeout=30)
    assert_problem(r, 400)


def test_me(server, tenant, sysadmin):
    me = tenant.admin.get("/api/v1/auth/me")
    assert me.status_code == 200
    body = me.json()
    assert body["id"] == tenant.admin_user["id"]
    assert body["username"] == tenant.admin_user["username"]
    assert body["role"] == "tenant_admin"
    assert body["tenant_id"] == tenant.id
    assert not any("password" in k or "hash" in k for k in body), body
    me = sysadmin.get("/api/v1/auth/me").json()
    assert me["username"] == "admin" and me["role"] == "sysadmin" and me["tenant_id"] is None


def test_refresh_rotates(server, user):
    t1 = server.login(user["username"], PASSWORD)
    r = post(server, "/api/v1/auth/refresh", {"refresh_token": t1["refresh_token"]})
    assert r.status_code == 200, r.text
    t2 = r.json()
    assert t2["token_type"] == "Bearer"
    assert t2["access_token"] and t2["refresh_token"]
    assert t2["refresh_token"] != t1["refresh_token"]
    assert isinstance(t2["expires_in"], int)
    # the new access token works
    me = requests.get(server.url("/api/v1/auth/me"), headers={"Authorization": f"Bearer {t2['access_token']}"},
                      timeout=30)
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    # the old refresh token is rejected after use
    assert_problem(post(server, "/api/v1/auth/refresh", {"refresh_token": t1["refresh_token"]}), 401)
    # the new one works (once)
    r = post(server, "/api/v1/auth/refresh", {"refresh_token": t2["refresh_token"]})
    assert r.status_code == 200, r.text
    assert_problem(post(server, "/api/v1/auth/refresh", {"refresh_token": t2["refresh_token"]}), 401)


@pytest.mark.parametrize("token", ["garbage", "", "a.b.c"])
def test_refresh_invalid_401(server, token):
    r = post(server, "/api/v1/auth/refresh", {"refresh_token": token})
    assert r.status_code in (400, 401), r.text
    assert_problem(r, r.status_code)
    if token:
        assert r.status_code == 401


def test_refresh_with_access_token_401(server, user):
    t = server.login(user["username"], PASSWORD)
    assert_problem(post(server, "/api/v1/auth/refresh", {"refresh_token": t["access_token"]}), 401)


def test_logout_revokes_refresh_token(server, user):
    t = server.login(user["username"], PASSWORD)
    other = server.login(user["username"], PASSWORD)
    # logout needs a bearer
    assert_problem(post(server, "/api/v1/auth/logout", {"refresh_token": t["refresh_token"]}), 401)
    r = post(server, "/api/v1/auth/logout", {"refresh_token": t["refresh_token"]}, token=t["access_token"])
    assert r.status_code == 204, r.text
    assert_problem(post(server, "/api/v1/auth/refresh", {"refresh_token": t["refresh_token"]}), 401)
    # another session of the same user is unaffected
    r = post(server, "/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]})
    assert r.status_code == 200, r.text


def test_no_bearer_401(server):
    for path in ("/api/v1/auth/me", "/api/v1/devices", "/api/v1/users", "/api/v1/tenants"):
        assert_problem(requests.get(server.url(path), timeout=30), 401)


@pytest.mark.parametrize("header", [
    "Bearer not-a-token",
    "Bearer ",
    "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    "Basic YWRtaW46YWRtaW4=",
    "bearer",
])
def test_bad_bearer_401(server, header):
    r = requests.get(server.url("/api/v1/devices"), headers={"Authorization": header}, timeout=30)
    assert_problem(r, 401)


def test_tampered_access_token_401(server, user):
    t = server.login(user["username"], PASSWORD)["access_token"]
    head, payload, sig = t.split(".")
    bad = f"{head}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    r = requests.get(server.url("/api/v1/auth/me"), headers={"Authorization": f"Bearer {bad}"}, timeout=30)
    assert_problem(r, 401)


def test_refresh_token_not_usable_as_bearer(server, user):
    t = server.login(user["username"], PASSWORD)
    r = requests.get(server.url("/api/v1/auth/me"), headers={"Authorization": f"Bearer {t['refresh_token']}"},
                     timeout=30)
    assert_problem(r, 401)


def test_access_token_expires(make_server):
    s = make_server(env={"SW_ACCESS_TOKEN_TTL_S": "1"}, name="ttl")
    t = s.login("admin", s.admin_password)
    assert t["expires_in"] == 1
    c = s.client(t["access_token"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = c.get("/api/v1/auth/me")
        if r.status_code == 401:
            break
        assert r.status_code == 200
        time.sleep(0.5)
    assert_problem(c.get("/api/v1/auth/me"), 401)
    # the refresh token still yields a fresh access token
    r = requests.post(s.url("/api/v1/auth/refresh"), json={"refresh_token": t["refresh_token"]}, timeout=30)
    assert r.status_code == 200, r.text
    assert s.client(r.json()["access_token"]).get("/api/v1/auth/me").status_code == 200



def test_concurrent_refresh_only_one_wins(server, user):
    """Rotation under a race: the same refresh token used 8 times at once succeeds exactly once."""
    t = server.login(user["username"], PASSWORD)
    barrier = threading.Barrier(8)
    results = []

    def go():
        barrier.wait()
        r = requests.post(server.url("/api/v1/auth/refresh"), json={"refresh_token": t["refresh_token"]},
                          timeout=30)
        results.append(r)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [401] * 7, statuses
    for r in results:
        if r.status_code == 401:
            assert_problem(r, 401)
