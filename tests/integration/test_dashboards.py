"""Dashboards: CRUD, listing (paging, search), optimistic concurrency (409 conflict), export and
import, layout validation (400/413), roles (viewer read-only, sysadmin 403), tenant isolation
(404) and deletion with the tenant. Also the device list's `online` filter (live MQTT state)."""
import json
import uuid

import pytest

from mqtt_helpers import *  # noqa: F401,F403
from mqtt_helpers import _mqtt_cleanup  # noqa: F401  (autouse)
from swtest import assert_problem, unique

UNKNOWN_ID = str(uuid.uuid4())
DASH = "/api/v1/dashboards"


def layout(n_widgets: int = 2, **extra) -> dict:
    return {
        "schema": 1,
        "grid": {"columns": 12, "row_height": 40},
        "widgets": [{"id": f"w{i}", "type": "chart", "x": (i % 2) * 6, "y": i // 2 * 4, "w": 6, "h": 4,
                     "config": {"device_id": UNKNOWN_ID, "keys": ["temp"], "title": f"Widget {i} °C"}}
                    for i in range(n_widgets)],
        **extra,
    }


def create(client, name=None, description=None, lay=None, status=201) -> dict:
    body = {"name": name or unique("dash"), "layout": layout() if lay is None else lay}
    if description is not None:
        body["description"] = description
    r = client.post(DASH, body)
    assert r.status_code == status, r.text
    return r.json()


# ---------------------------------------------------------------------------------------------
# CRUD
# ---------------------------------------------------------------------------------------------
def test_create_get_shape(tenant):
    name = unique("Plant overview")
    lay = layout(3)
    r = tenant.admin.post(DASH, {"name": name, "description": "line 1", "layout": lay})
    assert r.status_code == 201, r.text
    d = r.json()
    assert set(d) == {"id", "tenant_id", "name", "description", "version", "widgets", "layout", "created_at",
                      "updated_at"}
    uuid.UUID(d["id"])
    assert d["tenant_id"] == tenant.id
    assert d["name"] == name and d["description"] == "line 1"
    assert d["version"] == 1 and d["widgets"] == 3
    assert d["layout"] == lay
    assert isinstance(d["created_at"], int) and d["updated_at"] == d["created_at"]
    assert r.headers["Location"] == f"{DASH}/{d['id']}"
    for client in (tenant.admin, tenant.viewer):
        g = client.get(f"{DASH}/{d['id']}")
        assert g.status_code == 200, g.text
        assert g.json() == d
        assert "Content-Disposition" not in g.headers


def test_description_defaults_empty_and_widgets_count(tenant):
    d = create(tenant.admin, lay={"schema": 7})
    assert d["description"] == "" and d["widgets"] == 0 and d["layout"] == {"schema": 7}
    d = create(tenant.admin, lay={"schema": 1, "widgets": {"not": "an array"}})
    assert d["widgets"] == 0


def test_update_increments_version(tenant):
    d = create(tenant.admin, description="old")
    new_layout = layout(5, theme="dark")
    r = tenant.admin.request("PUT", f"{DASH}/{d['id']}",
                             json={"name": "renamed", "description": "new", "layout": new_layout, "version": 1})
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["version"] == 2 and u["name"] == "renamed" and u["description"] == "new"
    assert u["layout"] == new_layout and u["widgets"] == 5
    assert u["created_at"] == d["created_at"] and u["updated_at"] >= d["updated_at"]
    assert tenant.viewer.get(f"{DASH}/{d['id']}").json() == u
    # description absent on PUT: replaced by empty
    r = tenant.admin.request("PUT", f"{DASH}/{d['id']}", json={"name": "renamed", "layout": {}, "version": 2})
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "" and r.json()["version"] == 3 and r.json()["widgets"] == 0


def test_version_conflict_409(tenant):
    d = create(tenant.admin)
    path = f"{DASH}/{d['id']}"
    # two editors load version 1; the first save wins, the second gets 409 and changes nothing
    first = tenant.admin.request("PUT", path, json={"name": "editor A", "layout": layout(1), "version": 1})
    assert first.status_code == 200, first.text
    second = tenant.admin.request("PUT", path, json={"name": "editor B", "layout": layout(4), "version": 1})
    assert_problem(second, 409, "conflict")
    cur = tenant.admin.get(path).json()
    assert cur["name"] == "editor A" and cur["version"] == 2 and cur["widgets"] == 1
    # a version from the future conflicts too; the current one succeeds
    assert_problem(tenant.admin.request("PUT", path, json={"name": "x", "layout": {}, "version": 9}), 409, "conflict")
    r = tenant.admin.request("PUT", path, json={"name": "editor B", "layout": layout(4), "version": 2})
    assert r.status_code == 200 and r.json()["version"] == 3


@pytest.mark.parametrize("version", [None, "1", 0, -1, 1.5, True, [1]])
def test_update_bad_or_missing_version_400(tenant, version):
    d = create(tenant.admin)
    body = {"name": "n", "layout": {}}
    if version is not None:
        body["version"] = version
    assert_problem(tenant.admin.request("PUT", f"{DASH}/{d['id']}", json=body), 400, field="version")
    assert tenant.admin.get(f"{DASH}/{d['id']}").json()["version"] == 1


def test_delete(tenant):
    d = create(tenant.admin)
    r = tenant.admin.delete(f"{DASH}/{d['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_problem(tenant.admin.get(f"{DASH}/{d['id']}"), 404)
    assert_problem(tenant.admin.delete(f"{DASH}/{d['id']}"), 404)
    assert_problem(tenant.admin.request("PUT", f"{DASH}/{d['id']}", json={"name": "n", "layout": {}, "version": 1}),
                   404)


def test_unknown_and_malformed_ids_404(tenant):
    for ident in (UNKNOWN_ID, "not-a-uuid", "%20"):
        assert_problem(tenant.admin.get(f"{DASH}/{ident}"), 404)
        assert_problem(tenant.admin.delete(f"{DASH}/{ident}"), 404)


def test_names_need_not_be_unique(tenant):
    name = unique("same")
    a, b = create(tenant.admin, name), create(tenant.admin, name)
    assert a["id"] != b["id"]
    names = [x["name"] for x in tenant.admin.list_all(DASH, q=name)]
    assert names == [name, name]


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,field", [
    ({"layout": {}}, "name"),
    ({"name": "", "layout": {}}, "name"),
    ({"name": 5, "layout": {}}, "name"),
    ({"name": "x" * 201, "layout": {}}, "name"),
    ({"name": "n", "description": 3, "layout": {}}, "description"),
    ({"name": "n", "description": "d" * 4097, "layout": {}}, "description"),
    ({"name": "n"}, "layout"),
    ({"name": "n", "layout": None}, "layout"),
    ({"name": "n", "layout": []}, "layout"),
    ({"name": "n", "layout": "{}"}, "layout"),
    ({"name": "n", "layout": 1}, "layout"),
])
def test_create_invalid_400(tenant, body, field):
    d = create(tenant.admin)
    before = tenant.admin.list_all(DASH)
    assert_problem(tenant.admin.post(DASH, body), 400, field=field)
    assert_problem(tenant.admin.request("PUT", f"{DASH}/{d['id']}", json={**body, "version": 1}), 400, field=field)
    assert tenant.admin.list_all(DASH) == before  # nothing created or changed
    assert tenant.admin.get(f"{DASH}/{d['id']}").json() == d


def test_body_not_json_object_400(tenant):
    for data in (b"{", b"[]", b'"x"', b"", b"null"):
        r = tenant.admin.request("POST", DASH, data=data, headers={"Content-Type": "application/json"})
        assert_problem(r, 400)


def test_layout_too_big_413(tenant):
    # compact layout just over 1 MiB -> 413 (field layout); just under -> accepted
    big = {"schema": 1, "blob": "x" * (1024 * 1024)}
    assert_problem(tenant.admin.post(DASH, {"name": "big", "layout": big}), 413, "payload_too_large", field="layout")
    ok_layout = {"schema": 1, "blob": "x" * (1024 * 1024 - 100)}
    d = create(tenant.admin, "almost 1 MiB", lay=ok_layout)
    assert tenant.admin.get(f"{DASH}/{d['id']}").json()["layout"] == ok_layout
    r = tenant.admin.request("PUT", f"{DASH}/{d['id']}", json={"name": "n", "layout": big, "version": 1})
    assert_problem(r, 413, "payload_too_large", field="layout")
    # a body far larger than any valid dashboard is refused before it is parsed
    huge = json.dumps({"name": "n", "layout": {"a": " " * (5 * 1024 * 1024)}})
    r = tenant.admin.request("POST", DASH, data=huge, headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")


def test_deeply_nested_layout_400(tenant):
    deep = '{"a":' * 200 + "1" + "}" * 200
    r = tenant.admin.request("POST", DASH, data=f'{{"name":"deep","layout":{deep}}}',
                             headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


# ---------------------------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def board_tenant(new_tenant):
    t = new_tenant()
    t.boards = [create(t.admin, f"board-{i:02d}", lay=layout(i % 4)) for i in range(23)]
    t.extra = [create(t.admin, n) for n in ("Alpha Plant", "alpha site", "Zeta 100%", "under_score")]
    return t


def test_list_shape_without_layout(board_tenant):
    r = board_tenant.viewer.get(DASH, params={"page_size": 1000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    assert len(body["items"]) == 27
    for item in body["items"]:
        assert set(item) == {"id", "tenant_id", "name", "description", "version", "widgets", "created_at",
                             "updated_at"}
    by_name = {i["name"]: i for i in body["items"]}
    assert by_name["board-05"]["widgets"] == 1 and by_name["board-07"]["widgets"] == 3
    names = [i["name"] for i in body["items"]]
    assert names == sorted(names)


def test_list_paging(board_tenant):
    pages, cursor = [], None
    while True:
        params = {"page_size": 5}
        if cursor:
            params["cursor"] = cursor
        body = board_tenant.admin.get(DASH, params=params).json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [5, 5, 5, 5, 5, 2]
    ids = [i["id"] for p in pages for i in p]
    assert len(set(ids)) == 27
    assert sorted(ids) == sorted(d["id"] for d in board_tenant.boards + board_tenant.extra)
    assert [i["name"] for p in pages for i in p] == sorted(i["name"] for p in pages for i in p)
    assert len(board_tenant.admin.get(DASH).json()["items"]) == 27  # default page size 50


@pytest.mark.parametrize("params", [{"page_size": 0}, {"page_size": 1001}, {"page_size": "x"}, {"cursor": "zz"},
                                    {"cursor": "00"}])
def test_list_bad_paging_400(board_tenant, params):
    assert_problem(board_tenant.admin.get(DASH, params=params), 400)


def test_list_search(board_tenant):
    def names(q):
        return [i["name"] for i in board_tenant.admin.list_all(DASH, q=q)]
    assert names("ALPHA") == ["Alpha Plant", "alpha site"]
    assert names("board-1") == [f"board-{i}" for i in range(10, 20)]
    assert names("%") == ["Zeta 100%"]
    assert names("_") == ["under_score"]
    assert names("nothing-like-this") == []
    assert len(names("")) == 27
    # search and paging together
    assert [i["name"] for i in board_tenant.admin.list_all(DASH, page_size=3, q="board-")] == \
        [f"board-{i:02d}" for i in range(23)]


# ---------------------------------------------------------------------------------------------
# export / import
# ---------------------------------------------------------------------------------------------
def test_export_import_round_trip(tenant, new_tenant):
    name = unique('Line 3: "hot" / cold')
    src = create(tenant.admin, name, "exported", layout(3, schema=2))
    r = tenant.viewer.get(f"{DASH}/{src['id']}", params={"download": "1"})
    assert r.status_code == 200, r.text
    cd = r.headers["Content-Disposition"]
    assert cd.startswith('attachment; filename="') and cd.endswith('.json"'), cd
    fname = cd[len('attachment; filename="'):-1]
    assert fname.startswith("Line 3_ _hot_ _ cold-") and all(c.isalnum() or c in " -_." for c in fname), fname
    exported = r.json()
    assert exported == src

    # import into the same tenant: a new dashboard; server-owned fields of the file are ignored
    imp = tenant.admin.post(DASH, exported)
    assert imp.status_code == 201, imp.text
    d = imp.json()
    assert d["id"] != src["id"] and d["version"] == 1
    assert (d["name"], d["description"], d["layout"], d["widgets"]) == (name, "exported", src["layout"], 3)
    # into another tenant (the file names the first tenant and a bigger version)
    other = new_tenant()
    exported["version"] = 42
    exported["created_at"] = 1
    imp = other.admin.post(DASH, exported)
    assert imp.status_code == 201, imp.text
    d = imp.json()
    assert d["tenant_id"] == other.id and d["version"] == 1 and d["created_at"] > 1
    assert d["layout"] == src["layout"]
    assert_problem(other.admin.get(f"{DASH}/{src['id']}"), 404)


@pytest.mark.parametrize("name,expected", [
    ("simple", "simple.json"),
    ("../../etc/passwd", "etc_passwd.json"),
    ("a\\b", "a_b.json"),
    ("日本", "dashboard.json"),
    ("...", "dashboard.json"),
    ("\"quoted\"", "quoted_.json"),
])
def test_export_file_name_is_sanitised(tenant, name, expected):
    d = create(tenant.admin, name)
    r = tenant.admin.get(f"{DASH}/{d['id']}", params={"download": "1"})
    assert r.headers["Content-Disposition"] == f'attachment; filename="{expected}"'


# ---------------------------------------------------------------------------------------------
# roles and isolation
# ---------------------------------------------------------------------------------------------
def test_viewer_reads_only_403(tenant):
    d = create(tenant.admin)
    v = tenant.viewer
    assert v.get(f"{DASH}/{d['id']}").status_code == 200
    assert v.get(DASH).status_code == 200
    assert_problem(v.post(DASH, {"name": "v", "layout": {}}), 403)
    assert_problem(v.request("PUT", f"{DASH}/{d['id']}", json={"name": "v", "layout": {}, "version": 1}), 403)
    assert_problem(v.delete(f"{DASH}/{d['id']}"), 403)
    assert tenant.admin.get(f"{DASH}/{d['id']}").json() == d


def test_sysadmin_403(sysadmin, tenant):
    d = create(tenant.admin)
    assert_problem(sysadmin.get(DASH), 403)
    assert_problem(sysadmin.get(f"{DASH}/{d['id']}"), 403)
    assert_problem(sysadmin.post(DASH, {"name": "s", "layout": {}}), 403)
    assert_problem(sysadmin.request("PUT", f"{DASH}/{d['id']}", json={"name": "s", "layout": {}, "version": 1}), 403)
    assert_problem(sysadmin.delete(f"{DASH}/{d['id']}"), 403)


def test_other_tenant_404(tenant, new_tenant):
    d = create(tenant.admin)
    other = new_tenant()
    path = f"{DASH}/{d['id']}"
    for client in (other.admin, other.viewer):
        assert_problem(client.get(path), 404)
        assert_problem(client.get(path, params={"download": "1"}), 404)
        assert_problem(client.request("PUT", path, json={"name": "x", "layout": {}, "version": 1}), 404)
        assert_problem(client.delete(path), 404)
    assert d["id"] not in [x["id"] for x in other.admin.list_all(DASH)]
    cur = tenant.admin.get(path).json()
    assert cur == d


def test_no_token_401(server, tenant):
    d = create(tenant.admin)
    anon = server.client()
    assert_problem(anon.get(DASH), 401)
    assert_problem(anon.get(f"{DASH}/{d['id']}"), 401)
    assert_problem(anon.post(DASH, {"name": "x", "layout": {}}), 401)


def test_wrong_method_405(tenant):
    d = create(tenant.admin)
    assert_problem(tenant.admin.patch(f"{DASH}/{d['id']}", {"name": "x"}), 405, "method_not_allowed")
    assert_problem(tenant.admin.delete(DASH), 405, "method_not_allowed")


def test_dashboards_survive_restart(make_server):
    from swtest import TenantCtx
    srv = make_server(env={"SW_ACCESS_TOKEN_TTL_S": "3600"})
    t = TenantCtx(srv, srv.admin())
    d = create(t.admin, "persistent", lay=layout(2))
    srv.restart()
    assert t.admin.get(f"{DASH}/{d['id']}").json() == d
    assert [x["id"] for x in t.viewer.list_all(DASH)] == [d["id"]]


# ---------------------------------------------------------------------------------------------
# GET /api/v1/devices?online=
# ---------------------------------------------------------------------------------------------
def online_ids(client, value, **params):
    return [d["id"] for d in client.list_all("/api/v1/devices", online=value, **params)]


def test_device_list_online_filter(server, new_tenant):
    t = new_tenant()
    other = new_tenant()
    devs = [create_device(t, f"dev-{i:02d}") for i in range(7)]
    foreign = create_device(other, "foreign")
    all_ids = [d.id for d in devs]
    assert online_ids(t.viewer, "true") == []
    assert online_ids(t.viewer, "false") == all_ids

    clients = [device_client(server, devs[i], version=V311 if i % 2 else V5) for i in (1, 3, 4)]
    foreign_client = device_client(server, foreign)
    poll(lambda: online_ids(t.viewer, "true") == [devs[i].id for i in (1, 3, 4)], what="3 devices online")
    # each listed device says online; offline ones say offline
    for d in t.viewer.list_all("/api/v1/devices", online="true"):
        assert d["online"] is True and d["last_connect"] is not None
    for d in t.viewer.list_all("/api/v1/devices", online="false"):
        assert d["online"] is False
    assert online_ids(t.viewer, "false") == [devs[i].id for i in (0, 2, 5, 6)]
    # paging stays correct: full pages over the filtered set, no gaps or repeats
    assert online_ids(t.viewer, "false", page_size=1) == [devs[i].id for i in (0, 2, 5, 6)]
    first = t.viewer.get("/api/v1/devices", params={"online": "false", "page_size": 2}).json()
    assert [d["id"] for d in first["items"]] == [devs[0].id, devs[2].id] and first["next_cursor"]
    assert online_ids(t.viewer, "true", page_size=2) == [devs[i].id for i in (1, 3, 4)]
    # combined with other filters
    assert online_ids(t.viewer, "true", q="dev-03") == [devs[3].id]
    assert online_ids(t.viewer, "false", q="dev-03") == []
    # another tenant's connected device never shows up
    assert foreign.id not in online_ids(t.viewer, "true")
    assert online_ids(other.viewer, "true") == [foreign.id]

    clients[1].disconnect()
    poll(lambda: online_ids(t.viewer, "true") == [devs[1].id, devs[4].id], what="device 3 offline")
    assert online_ids(t.viewer, "false") == [devs[i].id for i in (0, 2, 3, 5, 6)]
    for c in (clients[0], clients[2], foreign_client):
        c.disconnect()
    poll(lambda: online_ids(t.viewer, "true") == [], what="all offline")


@pytest.mark.parametrize("value", ["yes", "1", "TRUE", "", "true,false"])
def test_device_list_online_bad_value_400(tenant, value):
    assert_problem(tenant.viewer.get("/api/v1/devices", params={"online": value}), 400, field="online")
