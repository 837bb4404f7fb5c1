"""Device telemetry API: every payload format, and every kind of bad input."""
import json

import pytest
import requests

from swtest import T0, assert_problem, now_ms

SENML = "application/senml+json"
CLOCK_SLACK_MS = 5000  # server and tests share the machine clock; the slack only covers request latency


@pytest.fixture
def dev(tenant):
    """A fresh device per test: (device, token)."""
    d = tenant.device()
    return d, d["credentials"]["access_token"]


def latest(tenant, device_id, keys=None):
    params = {"keys": ",".join(keys)} if keys else None
    r = tenant.viewer.get(f"/api/v1/devices/{device_id}/telemetry/latest", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def keys_of(tenant, device_id):
    r = tenant.viewer.get(f"/api/v1/devices/{device_id}/telemetry/keys")
    assert r.status_code == 200, r.text
    return r.json()


def raw(tenant, device_id, keys, frm=0, to=T0 * 10, **kw):
    return tenant.viewer.raw(device_id, keys, frm, to, **kw)


# ---------------------------------------------------------------------------------------------
# JSON formats
# ---------------------------------------------------------------------------------------------
def test_flat_object_uses_server_time(server, tenant, dev):
    d, token = dev
    before = now_ms()
    r = server.ingest(token, {"temp": 21.5, "hum": 40})
    after = now_ms()
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"points": 2}
    lt = latest(tenant, d["id"])
    assert set(lt) == {"temp", "hum"}
    assert lt["temp"]["value"] == 21.5 and lt["hum"]["value"] == 40
    for k in ("temp", "hum"):
        assert before - CLOCK_SLACK_MS <= lt[k]["ts"] <= after + CLOCK_SLACK_MS
    assert lt["temp"]["ts"] == lt["hum"]["ts"]
    assert keys_of(tenant, d["id"]) == ["hum", "temp"]


def test_ts_values_object(server, tenant, dev):
    d, token = dev
    assert server.ingest_ok(token, {"ts": T0 + 1234, "values": {"a": 1, "b": -2.5}}) == 2
    lt = latest(tenant, d["id"])
    assert lt == {"a": {"ts": T0 + 1234, "value": 1}, "b": {"ts": T0 + 1234, "value": -2.5}}


def test_array_of_both_forms(server, tenant, dev):
    d, token = dev
    before = now_ms()
    body = [
        {"ts": T0, "values": {"a": 1}},
        {"ts": T0 + 1000, "values": {"a": 2, "b": 3}},
        {"c": 7},
    ]
    assert server.ingest_ok(token, body) == 4
    after = now_ms()
    got = raw(tenant, d["id"], "a,b,c")
    assert got["a"] == [{"ts": T0, "value": 1}, {"ts": T0 + 1000, "value": 2}]
    assert got["b"] == [{"ts": T0 + 1000, "value": 3}]
    assert len(got["c"]) == 1 and got["c"][0]["value"] == 7
    assert before - CLOCK_SLACK_MS <= got["c"][0]["ts"] <= after + CLOCK_SLACK_MS


def test_value_types_round_trip(server, tenant, dev):
    d, token = dev
    values = {
        "int": 42,
        "neg": -3.25,
        "big": 1.5e300,
        "str": "hello \"world\" \u00e9\u4e2d",
        "empty_str": "",
        "t": True,
        "f": False,
        "obj": {"a": 1, "nested": {"b": [1, 2, {"c": None}]}, "s": "x"},
        "arr": [1, "two", False, None, {"k": "v"}],
        "empty_obj": {},
        "empty_arr": [],
    }
    assert server.ingest_ok(token, {"ts": T0 + 5, "values": values}) == len(values)
    lt = latest(tenant, d["id"])
    assert set(lt) == set(values)
    for k, v in values.items():
        assert lt[k]["ts"] == T0 + 5
        assert lt[k]["value"] == v, k
        assert type(lt[k]["value"]) is type(v) or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    and isinstance(lt[k]["value"], (int, float))
                                                    and not isinstance(lt[k]["value"], bool)), k
    # raw query returns the same values
    got = raw(tenant, d["id"], list(values))
    for k, v in values.items():
        assert got[k] == [{"ts": T0 + 5, "value": v}], k
    # flat form accepts the same types
    d2 = tenant.device()
    assert server.ingest_ok(d2["credentials"]["access_token"], values) == len(values)
    lt2 = latest(tenant, d2["id"])
    assert {k: x["value"] for k, x in lt2.items()} == values


def test_json_content_type_variants(server, tenant, dev):
    d, token = dev
    for i, ct in enumerate(["application/json", "application/json; charset=utf-8", "text/plain", ""]):
        r = server.ingest(token, {"ts": T0 + i, "values": {"ct": i}}, content_type=ct)
        assert r.status_code == 200, (ct, r.text)
    assert [p["value"] for p in raw(tenant, d["id"], "ct")["ct"]] == [0, 1, 2, 3]


def test_unicode_and_odd_keys(server, tenant, dev):
    d, token = dev
    vals = {"temp.c": 1, "a b": 2, "\u00fcml\u00e4ut": 3, "x/y": 4, "k:1": 5}
    assert server.ingest_ok(token, {"ts": T0, "values": vals}) == 5
    assert keys_of(tenant, d["id"]) == sorted(vals)
    lt = latest(tenant, d["id"], ["temp.c", "\u00fcml\u00e4ut"])
    assert lt == {"temp.c": {"ts": T0, "value": 1}, "\u00fcml\u00e4ut": {"ts": T0, "value": 3}}


def test_thousands_of_points_in_one_request(server, tenant, dev):
    d, token = dev
    n = 5000
    body = [{"ts": T0 + i, "values": {"seq": i, "half": i / 2}} for i in range(n)]
    assert server.ingest_ok(token, body) == 2 * n
    got = raw(tenant, d["id"], "seq,half", T0, T0 + n, limit=100000)
    assert [p["value"] for p in got["seq"]] == list(range(n))
    assert [p["ts"] for p in got["seq"]] == [T0 + i for i in range(n)]
    assert [p["value"] for p in got["half"]] == [i / 2 for i in range(n)]
    # one flat object with thousands of keys
    d2 = tenant.device()
    flat = {f"k{i:05d}": i for i in range(3000)}
    assert server.ingest_ok(d2["credentials"]["access_token"], flat) == 3000
    assert keys_of(tenant, d2["id"]) == sorted(flat)


# ---------------------------------------------------------------------------------------------
# SenML
# ---------------------------------------------------------------------------------------------
def test_senml_base_fields_and_value_kinds(server, tenant, dev):
    d, token = dev
    bt = (T0 + 3_600_000) / 1000  # absolute seconds
    pack = [
        {"bn": "urn:dev:x:", "bt": bt, "bu": "Cel", "bver": 10, "n": "temp", "u": "Cel", "v": 21.5},
        {"n": "temp", "t": 60, "v": 22.5},
        {"n": "temp", "t": 120.5, "v": 23},
        {"n": "on", "vb": True},
        {"n": "label", "vs": "hello"},
        {"n": "blob", "vd": "aGVsbG8"},
        {"n": "energy", "s": 5},
    ]
    r = server.ingest(token, pack, content_type=SENML)
    assert r.status_code == 200, r.text
    assert r.json() == {"points": 7}
    base = T0 + 3_600_000
    got = raw(tenant, d["id"], ["urn:dev:x:temp", "urn:dev:x:on", "urn:dev:x:label", "urn:dev:x:blob",
                                "urn:dev:x:energy"])
    assert got["urn:dev:x:temp"] == [{"ts": base, "value": 21.5}, {"ts": base + 60_000, "value": 22.5},
                                     {"ts": base + 120_500, "value": 23}]
    assert got["urn:dev:x:on"] == [{"ts": base, "value": True}]
    assert got["urn:dev:x:label"] == [{"ts": base, "value": "hello"}]
    assert got["urn:dev:x:blob"] == [{"ts": base, "value": "aGVsbG8"}]
    assert got["urn:dev:x:energy"] == [{"ts": base, "value": 5}]


def test_senml_base_value_and_sum(server, tenant, dev):
    d, token = dev
    bt = T0 / 1000
    pack = [
        {"bn": "b_", "bt": bt, "bv": 100, "n": "a", "v": 1},
        {"n": "a", "t": 1, "v": -1},
        {"bn": "c", "bs": 10, "s": 5, "t": 2},
        {"bn": "", "bv": 0, "n": "plain", "t": 3, "v": 7},
    ]
    assert server.ingest_ok(token, pack, content_type=SENML) == 4
    got = raw(tenant, d["id"], "b_a,c,plain")
    assert got["b_a"] == [{"ts": T0, "value": 101}, {"ts": T0 + 1000, "value": 99}]
    assert got["c"] == [{"ts": T0 + 2000, "value": 15}]
    assert got["plain"] == [{"ts": T0 + 3000, "value": 7}]


def test_senml_relative_time(server, tenant, dev):
    d, token = dev
    before = now_ms()
    pack = [
        {"n": "rel", "t": -60, "v": 1},
        {"n": "now", "v": 2},
        {"bn": "r.", "bt": -120, "n": "x", "v": 3},
        {"n": "x", "t": 60, "v": 4},
    ]
    assert server.ingest_ok(token, pack, content_type=SENML) == 4
    after = now_ms()
    lt = latest(tenant, d["id"])

    def near(ts, offset_ms):
        return before + offset_ms - CLOCK_SLACK_MS <= ts <= after + offset_ms + CLOCK_SLACK_MS

    assert lt["rel"]["value"] == 1 and near(lt["rel"]["ts"], -60_000)
    assert lt["now"]["value"] == 2 and near(lt["now"]["ts"], 0)
    pts = raw(tenant, d["id"], "r.x")["r.x"]
    assert [p["value"] for p in pts] == [3, 4]
    assert near(pts[0]["ts"], -120_000) and near(pts[1]["ts"], -60_000)
    assert pts[1]["ts"] - pts[0]["ts"] == 60_000


def test_senml_content_type_with_params(server, tenant, dev):
    d, token = dev
    r = server.ingest(token, [{"n": "p", "t": T0 / 1000, "v": 1}], content_type="Application/SenML+JSON; charset=utf-8")
    assert r.status_code == 200, r.text
    assert raw(tenant, d["id"], "p")["p"] == [{"ts": T0, "value": 1}]


def test_senml_many_records(server, tenant, dev):
    d, token = dev
    n = 2000
    pack = [{"bn": "m", "bt": T0 / 1000, "n": "", "t": 0.001, "v": 0}] + \
        [{"t": i / 1000, "v": i} for i in range(1, n)]
    # first record: name "m" at T0+1; then "m" at T0+1..T0+1999 -> T0+1 overwritten by the second record
    assert server.ingest_ok(token, pack, content_type=SENML) == n
    pts = raw(tenant, d["id"], "m", limit=100000)["m"]
    assert [p["ts"] for p in pts] == [T0 + i for i in range(1, n)]
    assert [p["value"] for p in pts] == list(range(1, n))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_unknown_token_401(server):
    assert_problem(server.ingest("no-such-device-token", {"a": 1}), 401)
    assert_problem(server.ingest("no-such-device-token", [{"n": "a", "v": 1}], content_type=SENML), 401)
    assert_problem(server.post_client_attributes("no-such-device-token", {"a": 1}), 401)


@pytest.mark.parametrize("body,field", [
    (b"{not json", "body"),
    (b"", "body"),
    (b'{"a": 1', "body"),
    (b"\xff\xfe", "body"),
    (b"42", "body"),
    (b'"str"', "body"),
    (b"null", "body"),
    (b'{"temp": null}', "temp"),
    (b'{"ts": 1700006400000, "values": {"temp": null}}', "values.temp"),
    (b'{"ts": 1700006400000, "values": {"ok": 1, "temp": null}}', "values.temp"),
    (b'{"ts": "1700006400000", "values": {"a": 1}}', "ts"),
    (b'{"ts": true, "values": {"a": 1}}', "ts"),
    (b'{"ts": 1.5, "values": {"a": 1}}', "ts"),
    (b'{"ts": -1, "values": {"a": 1}}', "ts"),
    (b'{"ts": null, "values": {"a": 1}}', "ts"),
    (b'{"ts": 1700006400000, "values": 5}', "values"),
    (b'{"ts": 1700006400000, "values": [1]}', "values"),
    (b'[{"ts": 1700006400000, "values": {"a": 1}}, {"ts": "x", "values": {"a": 1}}]', "[1].ts"),
    (b'[{"a": 1}, {"b": null}]', "[1].b"),
    (b'[{"ts": 1700006400000, "values": {"a": 1}}, {"ts": 1700006400000, "values": {"b": null}}]',
     "[1].values.b"),
    (b'[{"a": 1}, 5]', "[1]"),
    (b'[{"a": 1}, [{"b": 2}]]', "[1]"),
    (b'{"": 1}', ""),
])
def test_malformed_json_400_with_field(server, dev, body, field):
    _, token = dev
    r = server.ingest(token, body)
    if field == "":
        # an empty key: the field names the (empty) key; only the code is contractual here
        assert_problem(r, 400)
    else:
        assert_problem(r, 400, "invalid_argument", field=field)


@pytest.mark.parametrize("pack,field", [
    (b"{nope", "body"),
    (b'{"n": "a", "v": 1}', "body"),
    (b'[{"n": "a", "v": 1}, 5]', "[1]"),
    (b'[{"n": "a"}]', "[0]"),
    (b'[{"n": "a", "v": "12"}]', "[0].v"),
    (b'[{"n": "a", "v": 1, "vs": "x"}]', "[0]"),
    (b'[{"n": 5, "v": 1}]', "[0].n"),
    (b'[{"v": 1}]', "[0].n"),
    (b'[{"n": "a", "vb": "yes"}]', "[0].vb"),
    (b'[{"n": "a", "vs": 5}]', "[0].vs"),
    (b'[{"n": "a", "t": "now", "v": 1}]', "[0].t"),
    (b'[{"bt": "x", "n": "a", "v": 1}]', "[0].bt"),
    (b'[{"bn": 1, "n": "a", "v": 1}]', "[0].bn"),
    (b'[{"n": "a", "v": 1}, {"n": "b", "v": 1, "foo_": 1}]', "[1].foo_"),
    (b'[{"n": "a", "v": null}]', "[0].v"),
])
def test_malformed_senml_400_with_field(server, dev, pack, field):
    _, token = dev
    r = server.ingest(token, pack, content_type=SENML)
    assert_problem(r, 400, "invalid_argument", field=field)


def test_rejected_message_stores_nothing(server, tenant, dev):
    d, token = dev
    r = server.ingest(token, [{"ts": T0, "values": {"good": 1}}, {"ts": "x", "values": {"good": 2}}])
    assert_problem(r, 400, field="[1].ts")
    assert keys_of(tenant, d["id"]) == []
    assert latest(tenant, d["id"]) == {}


def test_bad_token_takes_precedence_over_bad_body(server):
    assert_problem(server.ingest("no-such-device-token", b"{garbage"), 401)


def test_device_attributes_api_bad_input(server, dev):
    _, token = dev
    assert_problem(server.post_client_attributes(token, b"{nope"), 400)
    assert_problem(server.post_client_attributes(token, b"[1,2]"), 400)
    assert_problem(server.post_client_attributes(token, b"7"), 400)


def test_ingest_get_not_allowed(server, dev):
    _, token = dev
    r = requests.get(server.url(f"/api/v1/{token}/telemetry"), timeout=30)
    assert_problem(r, 405, "method_not_allowed")


def test_points_response_counts(server, dev):
    _, token = dev
    r = server.ingest(token, {})  # empty object: no points; accepted or rejected, never a server error
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json() == {"points": 0}
    r = server.ingest(token, json.dumps([{"ts": T0 + i, "values": {"a": i, "b": i}} for i in range(10)]))
    assert r.status_code == 200 and r.json() == {"points": 20}
