"""Tenant and user CRUD, role limits on them, tenant deletion cascade."""
import threading
import uuid

import pytest
import requests

from swtest import PASSWORD, T0, Client, TenantCtx, assert_problem, login_client, unique

UNKNOWN_ID = str(uuid.uuid4())


def no_secrets(obj: dict):
    assert not any("password" in k or "hash" in k for k in obj), obj


# ---------------------------------------------------------------------------------------------
# Tenants
# ---------------------------------------------------------------------------------------------
def test_tenant_create_shape_and_defaults(sysadmin):
    name = unique("t")
    r = sysadmin.post("/api/v1/tenants", {"name": name})
    assert r.status_code == 201, r.text
    t = r.json()
    assert set(t) >= {"id", "name", "retention_days", "max_msgs_per_s", "created_at"}
    uuid.UUID(t["id"])
    assert t["name"] == name
    assert t["retention_days"] == 0
    assert isinstance(t["created_at"], int)
    got = sysadmin.get(f"/api/v1/tenants/{t['id']}")
    assert got.status_code == 200
    assert got.json() == t


def test_tenant_create_with_fields(sysadmin):
    t = sysadmin.create_tenant(unique("t"), retention_days=7, max_msgs_per_s=12.5)
    assert t["retention_days"] == 7
    assert t["max_msgs_per_s"] == 12.5


def test_tenant_duplicate_name_409(sysadmin):
    name = unique("t")
    sysadmin.create_tenant(name)
    assert_problem(sysadmin.post("/api/v1/tenants", {"name": name}), 409)


@pytest.mark.parametrize("body", [
    {},
    {"name": ""},
    {"name": 5},
    {"name": "ok-name-1", "retention_days": -1},
    {"name": "ok-name-2", "retention_days": "x"},
    {"name": "ok-name-3", "retention_days": 1.5},
    {"name": "ok-name-4", "max_msgs_per_s": -1},
    {"name": "ok-name-5", "max_msgs_per_s": "fast"},
])
def test_tenant_create_invalid_400(sysadmin, body):
    body = dict(body)
    if isinstance(body.get("name"), str) and body["name"].startswith("ok-name"):
        body["name"] = unique(body["name"])
    assert_problem(sysadmin.post("/api/v1/tenants", body), 400)


def test_tenant_invalid_json_400(sysadmin):
    r = sysadmin.post("/api/v1/tenants", data=b"{", headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_tenant_list_pagination(sysadmin):
    created = {sysadmin.create_tenant(unique("page"))["id"] for _ in range(5)}
    items = sysadmin.list_all("/api/v1/tenants", page_size=2)
    ids = [t["id"] for t in items]
    assert len(ids) == len(set(ids)), "duplicate tenants across pages"
    assert created <= set(ids)
    r = sysadmin.get("/api/v1/tenants", params={"page_size": 2})
    body = r.json()
    assert len(body["items"]) == 2 and isinstance(body["next_cursor"], str)


def test_tenant_patch(sysadmin):
    t = sysadmin.create_tenant(unique("t"))
    new_name = unique("renamed")
    r = sysadmin.patch(f"/api/v1/tenants/{t['id']}", {"name": new_name, "retention_days": 30, "max_msgs_per_s": 5})
    assert r.status_code == 200, r.text
    got = sysadmin.get(f"/api/v1/tenants/{t['id']}").json()
    assert got["name"] == new_name and got["retention_days"] == 30 and got["max_msgs_per_s"] == 5
    assert got["id"] == t["id"] and got["created_at"] == t["created_at"]
    assert_problem(sysadmin.patch(f"/api/v1/tenants/{t['id']}", {"retention_days": -3}), 400)
    other = sysadmin.create_tenant(unique("t"))
    assert_problem(sysadmin.patch(f"/api/v1/tenants/{t['id']}", {"name": other["name"]}), 409)


def test_tenant_unknown_404(sysadmin):
    assert_problem(sysadmin.get(f"/api/v1/tenants/{UNKNOWN_ID}"), 404)
    assert_problem(sysadmin.patch(f"/api/v1/tenants/{UNKNOWN_ID}", {"name": unique("x")}), 404)
    assert_problem(sysadmin.delete(f"/api/v1/tenants/{UNKNOWN_ID}"), 404)


def test_tenant_routes_forbidden_for_tenant_users(tenant):
    for c in (tenant.admin, tenant.viewer):
        assert_problem(c.get("/api/v1/tenants"), 403)
        assert_problem(c.post("/api/v1/tenants", {"name": unique("t")}), 403)
        assert_problem(c.get(f"/api/v1/tenants/{tenant.id}"), 403)
        assert_problem(c.patch(f"/api/v1/tenants/{tenant.id}", {"retention_days": 1}), 403)
        assert_problem(c.delete(f"/api/v1/tenants/{tenant.id}"), 403)
    assert tenant.admin.get("/api/v1/auth/me").status_code == 200  # tenant still there


def test_tenant_delete_cascades(server, sysadmin):
    ctx = TenantCtx(server, sysadmin)
    dev = ctx.device()
    token = dev["credentials"]["access_token"]
    assert server.ingest_ok(token, {"ts": T0, "values": {"x": 1}}) == 1
    t = server.login(ctx.viewer_user["username"], PASSWORD)
    r = sysadmin.delete(f"/api/v1/tenants/{ctx.id}")
    assert r.status_code == 204, r.text
    assert_problem(sysadmin.get(f"/api/v1/tenants/{ctx.id}"), 404)
    # its users are gone
    for u in (ctx.admin_user, ctx.viewer_user):
        assert_problem(sysadmin.get(f"/api/v1/users/{u['id']}"), 404)
        r = requests.post(server.url("/api/v1/auth/login"), json={"username": u["username"], "password": PASSWORD},
                          timeout=30)
        assert_problem(r, 401)
    assert_problem(requests.post(server.url("/api/v1/auth/refresh"), json={"refresh_token": t["refresh_token"]},
                                 timeout=30), 401)
    listed = {u["id"] for u in sysadmin.list_all("/api/v1/users", page_size=100)}
    assert ctx.admin_user["id"] not in listed and ctx.viewer_user["id"] not in listed
    # its devices are gone: the device token no longer authenticates
    assert_problem(server.ingest(token, {"x": 2}), 401)
    assert_problem(server.post_client_attributes(token, {"a": 1}), 401)
    # the name is free again
    sysadmin.create_tenant(ctx.tenant["name"])


# ---------------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------------
def test_user_create_shape(sysadmin, tenant):
    name = unique("u")
    r = sysadmin.post("/api/v1/users", {"username": name, "password": PASSWORD, "role": "viewer",
                                        "tenant_id": tenant.id})
    assert r.status_code == 201, r.text
    u = r.json()
    assert set(u) >= {"id", "username", "role", "tenant_id", "created_at"}
    uuid.UUID(u["id"])
    assert u["username"] == name and u["role"] == "viewer" and u["tenant_id"] == tenant.id
    assert isinstance(u["created_at"], int)
    no_secrets(u)
    got = sysadmin.get(f"/api/v1/users/{u['id']}")
    assert got.status_code == 200
    no_secrets(got.json())
    assert got.json()["username"] == name
    login_client(server=sysadmin.server, username=name, password=PASSWORD)


def test_sysadmin_creates_sysadmin(server, sysadmin):
    u = sysadmin.create_user("sysadmin", None)
    assert u["tenant_id"] is None and u["role"] == "sysadmin"
    c = login_client(server, u["username"], PASSWORD)
    assert c.get("/api/v1/tenants").status_code == 200


@pytest.mark.parametrize("change", [
    {"password": "short"},
    {"password": None},
    {"username": None},
    {"username": ""},
    {"role": "superuser"},
    {"role": None},
])
def test_user_create_invalid_400(sysadmin, tenant, change):
    body = {"username": unique("u"), "password": PASSWORD, "role": "viewer", "tenant_id": tenant.id}
    for k, v in change.items():
        if v is None:
            body.pop(k)
        else:
            body[k] = v
    assert_problem(sysadmin.post("/api/v1/users", body), 400)


def test_sysadmin_user_needs_tenant(sysadmin):
    r = sysadmin.post("/api/v1/users", {"username": unique("u"), "password": PASSWORD, "role": "tenant_admin"})
    assert_problem(r, 400)
    r = sysadmin.post("/api/v1/users", {"username": unique("u"), "password": PASSWORD, "role": "viewer",
                                        "tenant_id": UNKNOWN_ID})
    assert_problem(r, 404)


def test_user_duplicate_username_409(sysadmin, tenant, new_tenant):
    name = unique("dupuser")
    sysadmin.create_user("viewer", tenant.id, username=name)
    r = sysadmin.post("/api/v1/users", {"username": name, "password": PASSWORD, "role": "viewer",
                                        "tenant_id": tenant.id})
    assert_problem(r, 409)
    r = tenant.admin.post("/api/v1/users", {"username": name, "password": PASSWORD, "role": "viewer"})
    assert_problem(r, 409)
    # usernames are global (login has no tenant)
    r = sysadmin.post("/api/v1/users", {"username": "admin", "password": PASSWORD, "role": "sysadmin"})
    assert_problem(r, 409)


def test_tenant_admin_creates_users_in_own_tenant(server, tenant):
    u = tenant.admin.create_user("viewer", None)
    assert u["tenant_id"] == tenant.id
    u2 = tenant.admin.create_user("tenant_admin", tenant.id)
    assert u2["tenant_id"] == tenant.id and u2["role"] == "tenant_admin"
    c = login_client(server, u["username"], PASSWORD)
    assert c.get("/api/v1/auth/me").json()["tenant_id"] == tenant.id


def test_tenant_admin_cannot_create_sysadmin_or_foreign_user(server, sysadmin, tenant):
    r = tenant.admin.post("/api/v1/users", {"username": unique("u"), "password": PASSWORD, "role": "sysadmin"})
    assert_problem(r, 403)
    other = sysadmin.create_tenant(unique("other"))
    name = unique("u")
    r = tenant.admin.post("/api/v1/users", {"username": name, "password": PASSWORD, "role": "viewer",
                                            "tenant_id": other["id"]})
    assert_problem(r, 404)
    r = requests.post(server.url("/api/v1/auth/login"), json={"username": name, "password": PASSWORD}, timeout=30)
    assert_problem(r, 401)


def test_viewer_user_limits(server, tenant):
    v = tenant.viewer
    assert_problem(v.get("/api/v1/users"), 403)
    assert_problem(v.post("/api/v1/users", {"username": unique("u"), "password": PASSWORD, "role": "viewer"}), 403)
    assert_problem(v.delete(f"/api/v1/users/{tenant.admin_user['id']}"), 403)
    assert_problem(v.patch(f"/api/v1/users/{tenant.admin_user['id']}", {"role": "viewer"}), 403)
    own = v.get(f"/api/v1/users/{tenant.viewer_user['id']}")
    assert own.status_code == 200 and own.json()["id"] == tenant.viewer_user["id"]
    # a viewer cannot promote itself
    assert_problem(v.patch(f"/api/v1/users/{tenant.viewer_user['id']}", {"role": "tenant_admin"}), 403)
    assert v.get("/api/v1/auth/me").json()["role"] == "viewer"


def test_own_password_change(server, sysadmin, tenant):
    u = tenant.admin.create_user("viewer", None)
    c = login_client(server, u["username"], PASSWORD)
    path = f"/api/v1/users/{u['id']}"
    new_pw = "brand-new-Passw0rd"
    # current_password is required for one's own password (the contract names no status for it)
    r = c.patch(path, {"password": new_pw})
    assert r.status_code in (400, 401, 403), r.text
    assert_problem(r, r.status_code)
    r = c.patch(path, {"password": new_pw, "current_password": "not-the-password"})
    assert r.status_code in (400, 401, 403), r.text
    assert_problem(r, r.status_code)
    r = c.patch(path, {"password": "short", "current_password": PASSWORD})
    assert_problem(r, 400)
    r = c.patch(path, {"password": new_pw, "current_password": PASSWORD})
    assert r.status_code == 200, r.text
    no_secrets(r.json())
    server.login(u["username"], new_pw)
    r = requests.post(server.url("/api/v1/auth/login"), json={"username": u["username"], "password": PASSWORD},
                      timeout=30)
    assert_problem(r, 401)


def test_admin_sets_other_users_password_and_role(server, tenant):
    u = tenant.admin.create_user("viewer", None)
    path = f"/api/v1/users/{u['id']}"
    r = tenant.admin.patch(path, {"password": "reset-Passw0rd-1", "role": "tenant_admin"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "tenant_admin"
    assert tenant.admin.get(path).json()["role"] == "tenant_admin"
    c = login_client(server, u["username"], "reset-Passw0rd-1")
    assert c.get("/api/v1/auth/me").json()["role"] == "tenant_admin"
    assert_problem(tenant.admin.patch(path, {"role": "sysadmin"}), 403)
    assert_problem(tenant.admin.patch(path, {"role": "bogus"}), 400)


def test_user_list(sysadmin, tenant, new_tenant):
    other = new_tenant()
    mine = tenant.admin.list_all("/api/v1/users", page_size=2)
    ids = [u["id"] for u in mine]
    assert len(ids) == len(set(ids))
    assert {tenant.admin_user["id"], tenant.viewer_user["id"]} <= set(ids)
    assert all(u["tenant_id"] == tenant.id for u in mine)
    assert other.admin_user["id"] not in ids
    for u in mine:
        no_secrets(u)
    everyone = {u["id"] for u in sysadmin.list_all("/api/v1/users", page_size=50)}
    assert {tenant.admin_user["id"], other.admin_user["id"], other.viewer_user["id"]} <= everyone


def test_user_delete(server, tenant):
    u = tenant.admin.create_user("viewer", None)
    t = server.login(u["username"], PASSWORD)
    r = tenant.admin.delete(f"/api/v1/users/{u['id']}")
    assert r.status_code == 204, r.text
    assert_problem(tenant.admin.get(f"/api/v1/users/{u['id']}"), 404)
    assert_problem(tenant.admin.delete(f"/api/v1/users/{u['id']}"), 404)
    r = requests.post(server.url("/api/v1/auth/login"), json={"username": u["username"], "password": PASSWORD},
                      timeout=30)
    assert_problem(r, 401)
    assert_problem(requests.post(server.url("/api/v1/auth/refresh"), json={"refresh_token": t["refresh_token"]},
                                 timeout=30), 401)


def test_cannot_delete_self(sysadmin, tenant):
    assert_problem(tenant.admin.delete(f"/api/v1/users/{tenant.admin_user['id']}"), 400)
    me = sysadmin.get("/api/v1/auth/me").json()
    assert_problem(sysadmin.delete(f"/api/v1/users/{me['id']}"), 400)
    assert tenant.admin.get("/api/v1/auth/me").status_code == 200


def test_user_unknown_404(sysadmin, tenant):
    for c in (sysadmin, tenant.admin):
        assert_problem(c.get(f"/api/v1/users/{UNKNOWN_ID}"), 404)
        assert_problem(c.patch(f"/api/v1/users/{UNKNOWN_ID}", {"role": "viewer"}), 404)
        assert_problem(c.delete(f"/api/v1/users/{UNKNOWN_ID}"), 404)


def test_concurrent_create_same_username_only_one_wins(sysadmin, tenant):
    name = unique("race")
    barrier = threading.Barrier(4)
    results = []

    def go():
        c = Client(sysadmin.server, sysadmin.token)
        barrier.wait()
        results.append(c.post("/api/v1/users", {"username": name, "password": PASSWORD, "role": "viewer",
                                                "tenant_id": tenant.id}))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 3, statuses
    assert sum(u["username"] == name for u in tenant.admin.list_all("/api/v1/users", page_size=100)) == 1
