"""Role limits, sysadmin exclusion from device data, tenant isolation, attributes."""
import pytest
import requests

from swtest import PASSWORD, T0, assert_problem, unique

SECRET_VALUE = "tenant-a-secret-value-6d1f"
SECRET_ATTR = "tenant-a-secret-attr-91c2"


@pytest.fixture(scope="module")
def two_tenants(server, new_tenant):
    a, b = new_tenant(), new_tenant()
    a.dev = a.device(name=unique("a-dev"), type="a-type", labels={"owner": "a"})
    a.token = a.dev["credentials"]["access_token"]
    server.ingest_ok(a.token, {"ts": T0, "values": {"secret": SECRET_VALUE, "n": 1}})
    assert server.post_client_attributes(a.token, {"fw": SECRET_ATTR}).status_code == 200
    r = a.admin.post(f"/api/v1/devices/{a.dev['id']}/attributes", {"cfg": SECRET_ATTR}, params={"scope": "shared"})
    assert r.status_code == 200, r.text
    b.dev = b.device(name=unique("b-dev"))
    return a, b


# ---------------------------------------------------------------------------------------------
# viewer
# ---------------------------------------------------------------------------------------------
def test_viewer_cannot_write_devices(tenant):
    d = tenant.device()
    v = tenant.viewer
    path = f"/api/v1/devices/{d['id']}"
    assert_problem(v.post("/api/v1/devices", {"name": unique("v")}), 403)
    assert_problem(v.patch(path, {"type": "x"}), 403)
    assert_problem(v.delete(path), 403)
    assert_problem(v.post(f"{path}/credentials"), 403)
    assert_problem(v.post(f"{path}/attributes", {"k": 1}, params={"scope": "shared"}), 403)
    assert_problem(v.post(f"{path}/attributes", {"k": 1}, params={"scope": "server"}), 403)
    # nothing changed
    g = tenant.admin.get(path).json()
    assert g["type"] == "default"
    assert tenant.server.ingest(d["credentials"]["access_token"], {"ok": 1}).status_code == 200
    attrs = tenant.admin.get(f"{path}/attributes").json()
    assert "k" not in attrs.get("shared", {}) and "k" not in attrs.get("server", {})


def test_viewer_reads(server, tenant):
    d = tenant.device()
    server.ingest_ok(d["credentials"]["access_token"], {"ts": T0, "values": {"v": 1}})
    v = tenant.viewer
    assert v.get("/api/v1/devices").status_code == 200
    assert v.get(f"/api/v1/devices/{d['id']}").status_code == 200
    assert v.get(f"/api/v1/devices/{d['id']}/telemetry/keys").json() == ["v"]
    assert v.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json() == {"v": {"ts": T0, "value": 1}}
    assert v.raw(d["id"], "v", T0, T0 + 1) == {"v": [{"ts": T0, "value": 1}]}
    assert v.agg(d["id"], "v", T0, T0 + 1, "sum", "1m") == [{"ts": T0, "value": 1}]
    assert v.get(f"/api/v1/devices/{d['id']}/attributes").status_code == 200


# ---------------------------------------------------------------------------------------------
# sysadmin
# ---------------------------------------------------------------------------------------------
def test_sysadmin_forbidden_on_device_data(sysadmin, two_tenants):
    a, _ = two_tenants
    dev = a.dev["id"]
    s = sysadmin
    assert_problem(s.get("/api/v1/devices"), 403)
    assert_problem(s.post("/api/v1/devices", {"name": unique("s")}), 403)
    assert_problem(s.get(f"/api/v1/devices/{dev}"), 403)
    assert_problem(s.patch(f"/api/v1/devices/{dev}", {"type": "x"}), 403)
    assert_problem(s.delete(f"/api/v1/devices/{dev}"), 403)
    assert_problem(s.post(f"/api/v1/devices/{dev}/credentials"), 403)
    assert_problem(s.get(f"/api/v1/devices/{dev}/telemetry/keys"), 403)
    assert_problem(s.get(f"/api/v1/devices/{dev}/telemetry/latest"), 403)
    assert_problem(s.telemetry(dev, keys="n", **{"from": T0, "to": T0 + 1}), 403)
    assert_problem(s.telemetry(dev, keys="n", **{"from": T0, "to": T0 + 1}, agg="avg", interval="1m"), 403)
    assert_problem(s.get(f"/api/v1/devices/{dev}/attributes"), 403)
    assert_problem(s.post(f"/api/v1/devices/{dev}/attributes", {"k": 1}, params={"scope": "shared"}), 403)
    assert a.admin.get(f"/api/v1/devices/{dev}").status_code == 200
    assert a.admin.get(f"/api/v1/devices/{dev}").json()["type"] == "a-type"


# ---------------------------------------------------------------------------------------------
# tenant isolation
# ---------------------------------------------------------------------------------------------
def device_routes(dev_id):
    """Every device-scoped route: (method, path, params, json)."""
    base = f"/api/v1/devices/{dev_id}"
    return [
        ("GET", base, None, None),
        ("PATCH", base, None, {"name": unique("stolen"), "type": "hacked", "labels": {}}),
        ("POST", f"{base}/credentials", None, None),
        ("GET", f"{base}/attributes", None, None),
        ("GET", f"{base}/attributes", {"scope": "client"}, None),
        ("GET", f"{base}/attributes", {"scope": "shared"}, None),
        ("POST", f"{base}/attributes", {"scope": "shared"}, {"cfg": "overwritten"}),
        ("POST", f"{base}/attributes", {"scope": "server"}, {"srv": "overwritten"}),
        ("GET", f"{base}/telemetry/keys", None, None),
        ("GET", f"{base}/telemetry/latest", None, None),
        ("GET", f"{base}/telemetry/latest", {"keys": "secret"}, None),
        ("GET", f"{base}/telemetry", {"keys": "secret,n", "from": 0, "to": T0 + 1000}, None),
        ("GET", f"{base}/telemetry", {"keys": "n", "from": 0, "to": T0 + 1000, "agg": "sum", "interval": "1d"}, None),
        ("DELETE", base, None, None),  # last: if it wrongly succeeded the other checks still ran
    ]


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_isolation_device_routes_404(server, two_tenants, who):
    a, b = two_tenants
    client = getattr(b, who)
    for method, path, params, body in device_routes(a.dev["id"]):
        kw = {"params": params}
        if body is not None:
            kw["json"] = body
        r = client.request(method, path, **kw)
        write = method != "GET"
        if who == "viewer" and write and r.status_code == 403:
            # a viewer is refused any write before the lookup; that leaks nothing either
            assert_problem(r, 403)
        else:
            assert r.status_code == 404, \
                f"{who} of tenant B: {method} {path} {params} -> {r.status_code} {r.text[:300]}"
            assert_problem(r, 404, "not_found")
        for secret in (SECRET_VALUE, SECRET_ATTR, a.dev["name"], a.token):
            assert secret not in r.text, f"{method} {path} leaked {secret}"
    # tenant A's device is untouched
    g = a.admin.get(f"/api/v1/devices/{a.dev['id']}")
    assert g.status_code == 200 and g.json()["name"] == a.dev["name"] and g.json()["type"] == "a-type"
    assert server.ingest(a.token, {"ts": T0 + 1, "values": {"n": 2}}).status_code == 200
    attrs = a.admin.get(f"/api/v1/devices/{a.dev['id']}/attributes").json()
    assert attrs["shared"]["cfg"]["value"] == SECRET_ATTR
    assert "srv" not in attrs.get("server", {})
    assert a.admin.get(f"/api/v1/devices/{a.dev['id']}/telemetry/latest",
                       params={"keys": "secret"}).json()["secret"]["value"] == SECRET_VALUE


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_isolation_user_routes_404(server, two_tenants, who):
    a, b = two_tenants
    client = getattr(b, who)
    target = a.viewer_user
    for method, body in (("GET", None), ("PATCH", {"role": "tenant_admin"}),
                         ("PATCH", {"password": "hijacked-Passw0rd"}), ("DELETE", None)):
        kw = {"json": body} if body is not None else {}
        r = client.request(method, f"/api/v1/users/{target['id']}", **kw)
        if who == "viewer" and method != "GET" and r.status_code == 403:
            # a viewer may be refused for the write before the lookup; it must never succeed or leak
            assert_problem(r, 403)
        else:
            assert_problem(r, 404, "not_found")
        assert target["username"] not in r.text
    # user A unaffected
    server.login(target["username"], PASSWORD)
    assert a.admin.get(f"/api/v1/users/{target['id']}").json()["role"] == "viewer"


def test_isolation_lists(two_tenants):
    a, b = two_tenants
    for c in (b.admin, b.viewer):
        items = c.list_all("/api/v1/devices", page_size=1000)
        assert all(d["tenant_id"] == b.id for d in items)
        assert a.dev["id"] not in {d["id"] for d in items}
        assert b.dev["id"] in {d["id"] for d in items}
        # filters cannot reach the other tenant either
        assert c.list_all("/api/v1/devices", q=a.dev["name"]) == []
        assert c.list_all("/api/v1/devices", type="a-type") == []
        assert c.list_all("/api/v1/devices", label="owner:a") == []
    users = b.admin.list_all("/api/v1/users", page_size=1000)
    assert all(u["tenant_id"] == b.id for u in users)
    assert not {a.admin_user["id"], a.viewer_user["id"]} & {u["id"] for u in users}


def test_isolation_cross_tenant_user_creation(two_tenants):
    a, b = two_tenants
    r = b.admin.post("/api/v1/users", {"username": unique("x"), "password": PASSWORD, "role": "tenant_admin",
                                       "tenant_id": a.id})
    assert_problem(r, 404)


def test_isolation_device_token_scoped_to_its_device(server, two_tenants):
    a, b = two_tenants
    b_token = b.dev["credentials"]["access_token"]
    server.ingest_ok(b_token, {"ts": T0, "values": {"secret": "from-b"}})
    lt = a.admin.get(f"/api/v1/devices/{a.dev['id']}/telemetry/latest", params={"keys": "secret"}).json()
    assert lt["secret"]["value"] == SECRET_VALUE
    lt = b.admin.get(f"/api/v1/devices/{b.dev['id']}/telemetry/latest", params={"keys": "secret"}).json()
    assert lt["secret"]["value"] == "from-b"


# ---------------------------------------------------------------------------------------------
# attributes
# ---------------------------------------------------------------------------------------------
def test_client_attributes_from_device(server, tenant):
    d = tenant.device()
    token = d["credentials"]["access_token"]
    r = server.post_client_attributes(token, {"fw": "1.2.3", "n": 3, "ok": True, "cfg": {"a": [1, 2]}})
    assert r.status_code == 200, r.text
    for c in (tenant.admin, tenant.viewer):
        attrs = c.get(f"/api/v1/devices/{d['id']}/attributes")
        assert attrs.status_code == 200, attrs.text
        client = attrs.json()["client"]
        assert {k: v["value"] for k, v in client.items()} == {"fw": "1.2.3", "n": 3, "ok": True, "cfg": {"a": [1, 2]}}
        assert all(isinstance(v["updated_at"], int) and v["updated_at"] > 0 for v in client.values())
        only = c.get(f"/api/v1/devices/{d['id']}/attributes", params={"scope": "client"}).json()
        assert set(only) == {"client"} and only["client"] == client
    # an update replaces the value of that key only
    assert server.post_client_attributes(token, {"fw": "1.2.4"}).status_code == 200
    client = tenant.viewer.get(f"/api/v1/devices/{d['id']}/attributes", params={"scope": "client"}).json()["client"]
    assert client["fw"]["value"] == "1.2.4" and client["n"]["value"] == 3


def test_shared_and_server_attributes(tenant):
    d = tenant.device()
    path = f"/api/v1/devices/{d['id']}/attributes"
    r = tenant.admin.post(path, {"interval": 30, "mode": "eco"}, params={"scope": "shared"})
    assert r.status_code == 200, r.text
    r = tenant.admin.post(path, {"secret_cfg": {"x": 1}}, params={"scope": "server"})
    assert r.status_code == 200, r.text
    all_ = tenant.viewer.get(path).json()
    assert set(all_) == {"client", "shared", "server"}
    assert all_["client"] == {}
    assert {k: v["value"] for k, v in all_["shared"].items()} == {"interval": 30, "mode": "eco"}
    assert {k: v["value"] for k, v in all_["server"].items()} == {"secret_cfg": {"x": 1}}
    shared = tenant.viewer.get(path, params={"scope": "shared"}).json()
    assert set(shared) == {"shared"} and shared["shared"]["mode"]["value"] == "eco"
    assert isinstance(shared["shared"]["mode"]["updated_at"], int)
    server_ = tenant.viewer.get(path, params={"scope": "server"}).json()
    assert set(server_) == {"server"}


def test_attributes_bad_scope(tenant):
    d = tenant.device()
    path = f"/api/v1/devices/{d['id']}/attributes"
    assert_problem(tenant.admin.post(path, {"k": 1}, params={"scope": "client"}), 400)
    assert_problem(tenant.admin.post(path, {"k": 1}, params={"scope": "bogus"}), 400)
    assert_problem(tenant.admin.get(path, params={"scope": "bogus"}), 400)
    assert_problem(tenant.admin.post(path, data=b"{bad", params={"scope": "shared"},
                                     headers={"Content-Type": "application/json"}), 400)
    assert_problem(tenant.admin.post(path, [1, 2], params={"scope": "shared"}), 400)
    assert tenant.admin.get(path).json()["client"] == {}


def test_attributes_require_bearer(server, tenant):
    d = tenant.device()
    r = requests.get(server.url(f"/api/v1/devices/{d['id']}/attributes"), timeout=30)
    assert_problem(r, 401)
