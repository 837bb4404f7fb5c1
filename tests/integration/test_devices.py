"""Device CRUD, listing (pagination + filters), credentials, deletion."""
import threading
import uuid

import pytest

from swtest import T0, Client, assert_problem, unique

UNKNOWN_ID = str(uuid.uuid4())


def test_device_create_shape(tenant):
    name = unique("dev")
    r = tenant.admin.post("/api/v1/devices", {"name": name})
    assert r.status_code == 201, r.text
    d = r.json()
    assert set(d) >= {"id", "tenant_id", "name", "type", "labels", "created_at", "credentials"}
    uuid.UUID(d["id"])
    assert d["tenant_id"] == tenant.id
    assert d["name"] == name
    assert d["type"] == "default"
    assert d["labels"] == {}
    assert isinstance(d["created_at"], int)
    assert isinstance(d["credentials"]["access_token"], str) and d["credentials"]["access_token"]
    got = tenant.admin.get(f"/api/v1/devices/{d['id']}")
    assert got.status_code == 200
    g = got.json()
    assert "credentials" not in g
    assert "access_token" not in str(g) and d["credentials"]["access_token"] not in got.text
    assert {k: g[k] for k in ("id", "tenant_id", "name", "type", "labels", "created_at")} == \
        {k: d[k] for k in ("id", "tenant_id", "name", "type", "labels", "created_at")}
    # viewer reads too
    assert tenant.viewer.get(f"/api/v1/devices/{d['id']}").json()["name"] == name


def test_device_create_with_type_and_labels(tenant):
    d = tenant.device(name=unique("dev"), type="thermostat", labels={"room": "kitchen", "floor": "1"})
    assert d["type"] == "thermostat"
    assert d["labels"] == {"room": "kitchen", "floor": "1"}
    token = d["credentials"]["access_token"]
    d2 = tenant.device()
    assert d2["credentials"]["access_token"] != token


@pytest.mark.parametrize("body", [
    {},
    {"name": ""},
    {"name": 12},
    {"name": "x", "type": 5},
    {"name": "x", "labels": ["a"]},
    {"name": "x", "labels": {"k": 1}},
    {"name": "x", "labels": "k=v"},
])
def test_device_create_invalid_400(tenant, body):
    body = dict(body)
    if body.get("name") == "x":
        body["name"] = unique("bad")
    assert_problem(tenant.admin.post("/api/v1/devices", body), 400)


def test_device_invalid_json_400(tenant):
    r = tenant.admin.post("/api/v1/devices", data=b"[1,", headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_device_duplicate_name_409_per_tenant(tenant, new_tenant):
    name = unique("dup")
    tenant.device(name=name)
    assert_problem(tenant.admin.post("/api/v1/devices", {"name": name}), 409)
    other = new_tenant()
    d = other.device(name=name)  # unique per tenant only
    assert d["name"] == name and d["tenant_id"] == other.id


def test_device_patch(tenant):
    d = tenant.device(type="a", labels={"old": "1", "keep": "x"})
    path = f"/api/v1/devices/{d['id']}"
    new_name = unique("renamed")
    r = tenant.admin.patch(path, {"name": new_name, "type": "b", "labels": {"keep": "y", "new": "2"}})
    assert r.status_code == 200, r.text
    g = tenant.admin.get(path).json()
    assert g["name"] == new_name and g["type"] == "b"
    assert g["labels"] == {"keep": "y", "new": "2"}  # replaced, not merged
    assert g["id"] == d["id"] and g["created_at"] == d["created_at"] and g["tenant_id"] == tenant.id
    # partial patch keeps the rest
    assert tenant.admin.patch(path, {"type": "c"}).status_code == 200
    g = tenant.admin.get(path).json()
    assert g["name"] == new_name and g["type"] == "c" and g["labels"] == {"keep": "y", "new": "2"}
    # the token still works after a patch
    assert tenant.server.ingest(d["credentials"]["access_token"], {"v": 1}).status_code == 200
    # rename onto an existing name
    other = tenant.device()
    assert_problem(tenant.admin.patch(path, {"name": other["name"]}), 409)
    assert_problem(tenant.admin.patch(path, {"name": ""}), 400)
    assert_problem(tenant.admin.patch(path, {"labels": "nope"}), 400)


def test_device_unknown_404(tenant):
    c = tenant.admin
    assert_problem(c.get(f"/api/v1/devices/{UNKNOWN_ID}"), 404)
    assert_problem(c.patch(f"/api/v1/devices/{UNKNOWN_ID}", {"type": "x"}), 404)
    assert_problem(c.delete(f"/api/v1/devices/{UNKNOWN_ID}"), 404)
    assert_problem(c.post(f"/api/v1/devices/{UNKNOWN_ID}/credentials"), 404)
    assert_problem(c.get(f"/api/v1/devices/{UNKNOWN_ID}/telemetry/keys"), 404)
    assert_problem(c.get(f"/api/v1/devices/{UNKNOWN_ID}/attributes"), 404)


def test_device_delete(server, tenant):
    d = tenant.device()
    token = d["credentials"]["access_token"]
    assert server.ingest_ok(token, {"ts": T0, "values": {"t": 1}}) == 1
    assert server.post_client_attributes(token, {"a": 1}).status_code == 200
    r = tenant.admin.delete(f"/api/v1/devices/{d['id']}")
    assert r.status_code == 204, r.text
    assert_problem(tenant.admin.get(f"/api/v1/devices/{d['id']}"), 404)
    assert_problem(tenant.admin.get(f"/api/v1/devices/{d['id']}/telemetry/keys"), 404)
    assert_problem(tenant.admin.delete(f"/api/v1/devices/{d['id']}"), 404)
    assert_problem(server.ingest(token, {"t": 2}), 401)
    assert_problem(server.post_client_attributes(token, {"a": 2}), 401)
    assert d["id"] not in {x["id"] for x in tenant.admin.list_all("/api/v1/devices", page_size=1000)}
    # the name can be reused; the new device starts without telemetry
    d2 = tenant.device(name=d["name"])
    assert d2["id"] != d["id"]
    assert tenant.admin.get(f"/api/v1/devices/{d2['id']}/telemetry/keys").json() == []


def test_credentials_regeneration(server, tenant):
    d = tenant.device()
    old = d["credentials"]["access_token"]
    assert server.ingest(old, {"x": 1}).status_code == 200
    r = tenant.admin.post(f"/api/v1/devices/{d['id']}/credentials")
    assert r.status_code == 200, r.text
    new = r.json()["access_token"]
    assert new and new != old
    assert_problem(server.ingest(old, {"x": 2}), 401)
    assert_problem(server.post_client_attributes(old, {"a": 1}), 401)
    assert server.ingest(new, {"x": 3}).status_code == 200
    assert server.post_client_attributes(new, {"a": 1}).status_code == 200
    latest = tenant.admin.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json()
    assert latest["x"]["value"] == 3
    # viewers cannot regenerate
    assert_problem(tenant.viewer.post(f"/api/v1/devices/{d['id']}/credentials"), 403)
    assert server.ingest(new, {"x": 4}).status_code == 200


# ---------------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fleet(new_tenant):
    """A fresh tenant with 25 devices with known names, types and labels."""
    ctx = new_tenant()
    devices = []
    for i in range(25):
        name = f"sensor-{i:02d}" if i % 2 == 0 else f"pump-{i:02d}"
        typ = "thermo" if i % 3 == 0 else "pump"
        labels = {"zone": "north" if i % 4 == 0 else "south"}
        if i % 5 == 0:
            labels["critical"] = "yes"
        devices.append(ctx.device(name=name, type=typ, labels=labels))
    ctx.devices = devices
    return ctx


def test_device_list_pagination(fleet):
    c = fleet.admin
    seen, cursor, pages = [], None, 0
    while True:
        params = {"page_size": 10}
        if cursor:
            params["cursor"] = cursor
        r = c.get("/api/v1/devices", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["items"]) <= 10
        for item in body["items"]:
            assert "credentials" not in item
            assert item["tenant_id"] == fleet.id
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
        assert pages < 10
    assert pages == 3
    ids = [d["id"] for d in seen]
    assert len(ids) == len(set(ids)), "duplicates across pages"
    assert set(ids) == {d["id"] for d in fleet.devices}, "missing devices"
    names = [d["name"] for d in seen]
    assert names == sorted(names), "not ordered by name"


def test_device_list_default_page_size(fleet):
    body = fleet.viewer.get("/api/v1/devices").json()
    assert len(body["items"]) == 25 and body["next_cursor"] is None


def test_device_list_page_size_1(fleet):
    items = fleet.admin.list_all("/api/v1/devices", page_size=1)
    assert len(items) == 25 and len({d["id"] for d in items}) == 25


@pytest.mark.parametrize("size", [0, 1001, -1, "abc"])
def test_device_list_bad_page_size_400(fleet, size):
    assert_problem(fleet.admin.get("/api/v1/devices", params={"page_size": size}), 400)


def test_device_list_bad_cursor_400(fleet):
    assert_problem(fleet.admin.get("/api/v1/devices", params={"cursor": "!!not-a-cursor!!"}), 400)


def expected(fleet, pred):
    return sorted(d["name"] for d in fleet.devices if pred(d))


def names(items):
    return [d["name"] for d in items]


def test_device_filter_q(fleet):
    got = fleet.admin.list_all("/api/v1/devices", q="SeNsOR")
    assert names(got) == expected(fleet, lambda d: "sensor" in d["name"].lower())
    assert len(got) == 13
    got = fleet.admin.list_all("/api/v1/devices", q="MP-1")
    assert names(got) == expected(fleet, lambda d: "mp-1" in d["name"].lower())
    got = fleet.admin.list_all("/api/v1/devices", page_size=3, q="sensor")
    assert len(got) == 13 and len({d["id"] for d in got}) == 13
    assert fleet.admin.list_all("/api/v1/devices", q="zzz-nothing") == []


def test_device_filter_type(fleet):
    got = fleet.admin.list_all("/api/v1/devices", type="thermo")
    assert names(got) == expected(fleet, lambda d: d["type"] == "thermo")
    assert all(d["type"] == "thermo" for d in got)
    got = fleet.admin.list_all("/api/v1/devices", page_size=4, type="pump")
    assert names(got) == expected(fleet, lambda d: d["type"] == "pump")


def test_device_filter_label(fleet):
    got = fleet.admin.list_all("/api/v1/devices", label="critical")
    assert names(got) == expected(fleet, lambda d: "critical" in d["labels"])
    got = fleet.admin.list_all("/api/v1/devices", label="zone:north")
    assert names(got) == expected(fleet, lambda d: d["labels"].get("zone") == "north")
    got = fleet.admin.list_all("/api/v1/devices", page_size=5, label="zone:south")
    assert names(got) == expected(fleet, lambda d: d["labels"].get("zone") == "south")
    assert fleet.admin.list_all("/api/v1/devices", label="zone:east") == []
    assert fleet.admin.list_all("/api/v1/devices", label="nolabel") == []


def test_device_filters_combined(fleet):
    got = fleet.admin.list_all("/api/v1/devices", q="sensor", type="thermo", label="zone:north")
    assert names(got) == expected(fleet, lambda d: "sensor" in d["name"].lower() and d["type"] == "thermo"
                                  and d["labels"].get("zone") == "north")


def test_concurrent_create_same_name_only_one_wins(tenant):
    name = unique("race")
    barrier = threading.Barrier(8)
    results = []

    def go():
        c = Client(tenant.server, tenant.admin.token)
        barrier.wait()
        results.append(c.post("/api/v1/devices", {"name": name}))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 7, statuses
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409)
    assert len(tenant.admin.list_all("/api/v1/devices", q=name)) == 1


def test_malformed_device_id(tenant):
    for path in ("/api/v1/devices/not-a-uuid", "/api/v1/devices/not-a-uuid/telemetry/keys"):
        r = tenant.admin.get(path)
        assert r.status_code in (400, 404), r.text
        assert_problem(r, r.status_code)


@pytest.mark.parametrize("q", ["%", "_", "sensor%", "s_nsor", "' OR '1'='1", "\\", "*", ".*"])
def test_device_filter_q_is_literal(fleet, q):
    """q is a plain substring: no SQL LIKE / glob / regex wildcards, no injection."""
    got = fleet.admin.list_all("/api/v1/devices", q=q)
    assert names(got) == expected(fleet, lambda d: q.lower() in d["name"].lower())


@pytest.mark.parametrize("label", ["zone:%", "zone:_orth", "%", "zone:north' OR '1'='1"])
def test_device_filter_label_is_literal(fleet, label):
    got = fleet.admin.list_all("/api/v1/devices", label=label)
    assert got == []


def test_wrong_method_on_device_routes_405(tenant):
    d = tenant.device()
    assert_problem(tenant.admin.request("PUT", f"/api/v1/devices/{d['id']}", json={"name": "x"}), 405,
                   "method_not_allowed")
    assert_problem(tenant.admin.request("DELETE", "/api/v1/devices"), 405, "method_not_allowed")
    assert_problem(tenant.admin.request("PATCH", f"/api/v1/devices/{d['id']}/telemetry/keys", json={}), 405,
                   "method_not_allowed")
