"""Telemetry queries: keys, latest, raw ([from,to), pagination), aggregates with exact values."""
import pytest

from swtest import T0, assert_problem

S = 1000
M = 60 * S
H = 60 * M

# key "t": value i at T0 + i*10 s, i = 0..11 (two minutes of data)
T_POINTS = [(T0 + i * 10 * S, i) for i in range(12)]
# key "b": booleans (aggregated as 0/1)
B_POINTS = [(T0 + i * 10 * S, v) for i, v in enumerate([True, False, True, True])]
# key "s": strings only
S_POINTS = [(T0 + i * 10 * S, f"s{i}") for i in range(3)]


@pytest.fixture(scope="module")
def series(server, tenant):
    d = tenant.device()
    token = d["credentials"]["access_token"]
    body = [{"ts": ts, "values": {"t": v}} for ts, v in T_POINTS]
    body += [{"ts": ts, "values": {"b": v}} for ts, v in B_POINTS]
    body += [{"ts": ts, "values": {"s": v}} for ts, v in S_POINTS]
    # ingest in two requests, second half first, to exercise out-of-order arrival
    assert server.ingest_ok(token, body[len(body) // 2:]) + server.ingest_ok(token, body[:len(body) // 2]) == len(body)
    return d


def ref_agg(points, frm, to, interval_ms, fn):
    buckets = {}
    for ts, v in sorted(points):
        if frm <= ts < to:
            buckets.setdefault(ts - ts % interval_ms, []).append(float(v))
    out = []
    for b in sorted(buckets):
        vals = buckets[b]
        out.append({"ts": b, "value": {"avg": sum(vals) / len(vals), "min": min(vals), "max": max(vals),
                                       "sum": sum(vals), "count": len(vals), "first": vals[0],
                                       "last": vals[-1]}[fn]})
    return out


def approx_points(points):
    return [{"ts": p["ts"], "value": pytest.approx(p["value"])} for p in points]


# ---------------------------------------------------------------------------------------------
# keys / latest
# ---------------------------------------------------------------------------------------------
def test_keys_sorted(tenant, series):
    r = tenant.viewer.get(f"/api/v1/devices/{series['id']}/telemetry/keys")
    assert r.status_code == 200
    assert r.json() == ["b", "s", "t"]


def test_empty_device(tenant):
    d = tenant.device()
    assert tenant.viewer.get(f"/api/v1/devices/{d['id']}/telemetry/keys").json() == []
    assert tenant.viewer.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json() == {}
    got = tenant.viewer.raw(d["id"], "a", 0, T0 * 2)
    assert got.get("a", []) == []
    r = tenant.viewer.telemetry(d["id"], keys="a", **{"from": 0, "to": T0 * 2}, agg="avg", interval="1d")
    assert r.status_code == 200 and r.json().get("a", []) == []


def test_latest_all_and_filtered(tenant, series):
    c = tenant.viewer
    lt = c.get(f"/api/v1/devices/{series['id']}/telemetry/latest").json()
    assert lt == {"t": {"ts": T0 + 110 * S, "value": 11}, "b": {"ts": T0 + 30 * S, "value": True},
                  "s": {"ts": T0 + 20 * S, "value": "s2"}}
    lt = c.get(f"/api/v1/devices/{series['id']}/telemetry/latest", params={"keys": "t,nope"}).json()
    assert lt == {"t": {"ts": T0 + 110 * S, "value": 11}}
    lt = c.get(f"/api/v1/devices/{series['id']}/telemetry/latest", params={"keys": "nope"}).json()
    assert lt == {}


# ---------------------------------------------------------------------------------------------
# raw
# ---------------------------------------------------------------------------------------------
def test_raw_full_range(tenant, series):
    got = tenant.viewer.raw(series["id"], "t,b,s", T0, T0 + H)
    assert got["t"] == [{"ts": ts, "value": v} for ts, v in T_POINTS]
    assert got["b"] == [{"ts": ts, "value": v} for ts, v in B_POINTS]
    assert got["s"] == [{"ts": ts, "value": v} for ts, v in S_POINTS]


def test_raw_bounds_from_inclusive_to_exclusive(tenant, series):
    got = tenant.viewer.raw(series["id"], "t", T0 + 10 * S, T0 + 30 * S)
    assert got["t"] == [{"ts": T0 + 10 * S, "value": 1}, {"ts": T0 + 20 * S, "value": 2}]
    got = tenant.viewer.raw(series["id"], "t", T0 + 10 * S, T0 + 10 * S + 1)
    assert got["t"] == [{"ts": T0 + 10 * S, "value": 1}]
    got = tenant.viewer.raw(series["id"], "t", T0 + 10 * S + 1, T0 + 20 * S)
    assert got.get("t", []) == []
    got = tenant.viewer.raw(series["id"], "t", 0, T0)
    assert got.get("t", []) == []


def test_raw_unknown_key_empty(tenant, series):
    got = tenant.viewer.raw(series["id"], "t,unknown", T0, T0 + 20 * S)
    assert got["t"] == [{"ts": T0, "value": 0}, {"ts": T0 + 10 * S, "value": 1}]
    assert got.get("unknown", []) == []


@pytest.mark.parametrize("params,field", [
    ({"from": T0, "to": T0 + H}, "keys"),
    ({"keys": "", "from": T0, "to": T0 + H}, "keys"),
    ({"keys": "t", "to": T0 + H}, None),
    ({"keys": "t", "from": T0}, None),
    ({"keys": "t", "from": "yesterday", "to": T0 + H}, None),
    ({"keys": "t", "from": T0, "to": "x"}, None),
    ({"keys": "t", "from": T0, "to": T0 + H, "agg": "median", "interval": "1m"}, "agg"),
    ({"keys": "t", "from": T0, "to": T0 + H, "agg": "AVG!", "interval": "1m"}, "agg"),
    ({"keys": "t", "from": T0, "to": T0 + H, "agg": "avg", "interval": "abc"}, "interval"),
    ({"keys": "t", "from": T0, "to": T0 + H, "agg": "avg", "interval": "0"}, "interval"),
    ({"keys": "t", "from": T0, "to": T0 + H, "agg": "avg", "interval": "-5"}, "interval"),
    ({"keys": "t", "from": T0, "to": T0 + H, "agg": "avg", "interval": "1x"}, "interval"),
    ({"keys": "t", "from": T0, "to": T0 + H, "agg": "avg", "interval": "m"}, "interval"),
    ({"keys": "t", "from": 0, "to": T0, "agg": "avg", "interval": "1"}, None),  # > 100000 buckets
    ({"keys": "t", "from": T0, "to": T0 + 100001, "agg": "sum", "interval": "1"}, None),  # > 100000 buckets
])
def test_query_validation_400(tenant, series, params, field):
    r = tenant.viewer.telemetry(series["id"], **params)
    if field is None:
        assert_problem(r, 400)
    else:
        assert_problem(r, 400, field=field)


def test_agg_exactly_100000_buckets_ok(tenant, series):
    r = tenant.viewer.telemetry(series["id"], keys="t", **{"from": T0, "to": T0 + 100000}, agg="count", interval="1")
    assert r.status_code == 200, r.text
    assert r.json()["t"] == approx_points([{"ts": T0 + i * 10 * S, "value": 1} for i in range(10)])


@pytest.fixture(scope="module")
def paged(server, tenant):
    d = tenant.device()
    token = d["credentials"]["access_token"]
    body = [{"ts": T0 + i * S, "values": {"p": i}} for i in range(2500)]
    body += [{"ts": T0 + i * S, "values": {"q": -i}} for i in range(1200)]
    body += [{"ts": T0 + i * S, "values": {"r": i}} for i in range(1000)]
    server.ingest_ok(token, body)
    return d


def check_series(points, n, sign=1):
    assert [p["ts"] for p in points] == [T0 + i * S for i in range(n)]
    assert [p["value"] for p in points] == [sign * i for i in range(n)]


def test_raw_pagination_default_limit(tenant, paged):
    c = tenant.viewer
    r = c.telemetry(paged["id"], keys="p,q", **{"from": T0, "to": T0 + H})
    assert r.status_code == 200
    first = r.json()
    assert len(first["p"]) == 1000 and len(first["q"]) == 1000
    assert r.headers.get("X-Next-Cursor")
    got = c.raw_all(paged["id"], "p,q", T0, T0 + H)
    check_series(got["p"], 2500)
    check_series(got["q"], 1200, sign=-1)


@pytest.mark.parametrize("limit", [300, 700, 2499, 2500, 100000])
def test_raw_pagination_limits(tenant, paged, limit):
    c = tenant.viewer
    pages = 0
    got, cursor = {}, None
    while True:
        params = {"keys": "p,q", "from": T0, "to": T0 + H, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = c.telemetry(paged["id"], **params)
        assert r.status_code == 200, r.text
        pages += 1
        for k, pts in r.json().items():
            assert len(pts) <= limit
            got.setdefault(k, []).extend(pts)
        cursor = r.headers.get("X-Next-Cursor")
        if not cursor:
            break
        assert pages <= 2500
    assert pages == -(-2500 // limit)
    check_series(got["p"], 2500)
    check_series(got["q"], 1200, sign=-1)


def test_raw_no_cursor_when_all_fit(tenant, paged):
    r = tenant.viewer.telemetry(paged["id"], keys="r", **{"from": T0, "to": T0 + H})
    assert r.status_code == 200
    check_series(r.json()["r"], 1000)
    assert not r.headers.get("X-Next-Cursor")
    r = tenant.viewer.telemetry(paged["id"], keys="p", **{"from": T0, "to": T0 + 10 * S}, limit=10)
    assert len(r.json()["p"]) == 10 and not r.headers.get("X-Next-Cursor")


def test_raw_pagination_within_bounds(tenant, paged):
    got = tenant.viewer.raw_all(paged["id"], "p", T0 + 100 * S, T0 + 350 * S, limit=100)
    assert [p["value"] for p in got["p"]] == list(range(100, 350))


def test_raw_bad_cursor_400(tenant, paged):
    r = tenant.viewer.telemetry(paged["id"], keys="p", **{"from": T0, "to": T0 + H}, cursor="%%garbage%%")
    assert_problem(r, 400)


# ---------------------------------------------------------------------------------------------
# aggregates
# ---------------------------------------------------------------------------------------------
EXPECTED_1M = {
    "avg": [2.5, 8.5], "min": [0, 6], "max": [5, 11], "sum": [15, 51],
    "count": [6, 6], "first": [0, 6], "last": [5, 11],
}
EXPECTED_1H = {"avg": 5.5, "min": 0, "max": 11, "sum": 66, "count": 12, "first": 0, "last": 11}
EXPECTED_30S = {
    "avg": [1, 4, 7, 10], "min": [0, 3, 6, 9], "max": [2, 5, 8, 11], "sum": [3, 12, 21, 30],
    "count": [3, 3, 3, 3], "first": [0, 3, 6, 9], "last": [2, 5, 8, 11],
}


@pytest.mark.parametrize("fn", list(EXPECTED_1M))
@pytest.mark.parametrize("interval", ["1m", "60s", "60000"])
def test_agg_1m(tenant, series, fn, interval):
    got = tenant.viewer.agg(series["id"], "t", T0, T0 + H, fn, interval)
    assert got == approx_points([{"ts": T0, "value": EXPECTED_1M[fn][0]},
                                 {"ts": T0 + M, "value": EXPECTED_1M[fn][1]}])


@pytest.mark.parametrize("fn", list(EXPECTED_1H))
@pytest.mark.parametrize("interval", ["1h", "1d"])
def test_agg_1h_1d(tenant, series, fn, interval):
    got = tenant.viewer.agg(series["id"], "t", T0, T0 + 2 * 86_400_000, fn, interval)
    assert got == approx_points([{"ts": T0, "value": EXPECTED_1H[fn]}])


@pytest.mark.parametrize("fn", list(EXPECTED_30S))
def test_agg_30s(tenant, series, fn):
    got = tenant.viewer.agg(series["id"], "t", T0, T0 + H, fn, "30s")
    assert got == approx_points([{"ts": T0 + i * 30 * S, "value": EXPECTED_30S[fn][i]} for i in range(4)])


@pytest.mark.parametrize("fn", ["avg", "count", "first"])
def test_agg_500ms(tenant, series, fn):
    got = tenant.viewer.agg(series["id"], "t", T0, T0 + 2 * M, fn, "500")
    expected = {"avg": lambda i: i, "count": lambda i: 1, "first": lambda i: i}[fn]
    assert got == approx_points([{"ts": ts, "value": expected(i)} for ts, i in T_POINTS])


@pytest.mark.parametrize("fn", ["avg", "min", "max", "sum", "count", "first", "last"])
@pytest.mark.parametrize("interval,interval_ms", [("45s", 45 * S), ("7000", 7000), ("25s", 25 * S),
                                                  ("2m", 2 * M), ("13s", 13 * S)])
def test_agg_other_intervals(tenant, series, fn, interval, interval_ms):
    frm, to = T0 - 5 * M, T0 + 5 * M
    got = tenant.viewer.agg(series["id"], "t", frm, to, fn, interval)
    assert got == approx_points(ref_agg(T_POINTS, frm, to, interval_ms, fn))
    for p in got:
        assert p["ts"] % interval_ms == 0, "bucket not aligned to a multiple of the interval since epoch"


def test_agg_respects_from_to(tenant, series):
    c = tenant.viewer
    # from inside a bucket: bucket start stays aligned, only points >= from count
    got = c.agg(series["id"], "t", T0 + 15 * S, T0 + 65 * S, "avg", "1m")
    assert got == approx_points([{"ts": T0, "value": 3.5}, {"ts": T0 + M, "value": 6}])
    got = c.agg(series["id"], "t", T0 + 15 * S, T0 + 65 * S, "count", "1m")
    assert got == approx_points([{"ts": T0, "value": 4}, {"ts": T0 + M, "value": 1}])
    # to is exclusive
    got = c.agg(series["id"], "t", T0, T0 + 60 * S, "sum", "1m")
    assert got == approx_points([{"ts": T0, "value": 15}])
    got = c.agg(series["id"], "t", T0, T0 + 50 * S, "last", "1h")
    assert got == approx_points([{"ts": T0, "value": 4}])
    got = c.agg(series["id"], "t", T0 + 50 * S, T0 + 50 * S + 1, "sum", "1h")
    assert got == approx_points([{"ts": T0, "value": 5}])


def test_agg_booleans_as_0_1(tenant, series):
    c = tenant.viewer
    expected = {"avg": 0.75, "sum": 3, "count": 4, "min": 0, "max": 1, "first": 1, "last": 1}
    for fn, v in expected.items():
        got = c.agg(series["id"], "b", T0, T0 + H, fn, "1m")
        assert got == approx_points([{"ts": T0, "value": v}]), fn
        assert all(isinstance(p["value"], (int, float)) and not isinstance(p["value"], bool) for p in got), fn


def test_agg_multiple_keys(tenant, series):
    r = tenant.viewer.telemetry(series["id"], keys="t,b", **{"from": T0, "to": T0 + H}, agg="max", interval="1h")
    assert r.status_code == 200
    body = r.json()
    assert body["t"] == approx_points([{"ts": T0, "value": 11}])
    assert body["b"] == approx_points([{"ts": T0, "value": 1}])


# ---------------------------------------------------------------------------------------------
# out-of-order and duplicate timestamps
# ---------------------------------------------------------------------------------------------
def test_out_of_order_and_duplicates_last_write_wins(server, tenant):
    d = tenant.device()
    token = d["credentials"]["access_token"]
    c = tenant.viewer
    for body in ({"ts": T0 + 50 * S, "values": {"x": 5}},
                 {"ts": T0 + 10 * S, "values": {"x": 1}},
                 {"ts": T0 + 30 * S, "values": {"x": 3}}):
        server.ingest_ok(token, body)
    # query once (so that any rollup/caching is populated), then overwrite
    assert c.agg(d["id"], "x", T0, T0 + H, "sum", "1m") == approx_points([{"ts": T0, "value": 9}])
    server.ingest_ok(token, {"ts": T0 + 10 * S, "values": {"x": 100}})  # overwrite
    # duplicates inside one request: the later entry wins
    server.ingest_ok(token, [{"ts": T0 + 20 * S, "values": {"x": 2}}, {"ts": T0 + 20 * S, "values": {"x": 200}}])
    server.ingest_ok(token, {"ts": T0 + 40 * S, "values": {"x": 4}})
    expected = [(10, 100), (20, 200), (30, 3), (40, 4), (50, 5)]
    got = c.raw(d["id"], "x", T0, T0 + H)
    assert got["x"] == [{"ts": T0 + s * S, "value": v} for s, v in expected]
    # latest is the newest timestamp, not the last write
    lt = c.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json()
    assert lt == {"x": {"ts": T0 + 50 * S, "value": 5}}
    # aggregates see each timestamp once, with its last value
    for fn, v in {"sum": 312, "count": 5, "avg": 312 / 5, "min": 3, "max": 200, "first": 100, "last": 5}.items():
        assert c.agg(d["id"], "x", T0, T0 + H, fn, "1m") == approx_points([{"ts": T0, "value": v}]), fn
        assert c.agg(d["id"], "x", T0, T0 + H, fn, "1h") == approx_points([{"ts": T0, "value": v}]), fn
    # overwrite with a different type: a string replaces the number
    server.ingest_ok(token, {"ts": T0 + 50 * S, "values": {"x": "five"}})
    lt = c.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json()
    assert lt == {"x": {"ts": T0 + 50 * S, "value": "five"}}
    assert c.raw(d["id"], "x", T0 + 50 * S, T0 + 51 * S)["x"] == [{"ts": T0 + 50 * S, "value": "five"}]
    assert c.agg(d["id"], "x", T0, T0 + H, "sum", "1m") == approx_points([{"ts": T0, "value": 307}])


def test_newer_point_updates_latest(server, tenant):
    d = tenant.device()
    token = d["credentials"]["access_token"]
    server.ingest_ok(token, {"ts": T0, "values": {"k": 1}})
    server.ingest_ok(token, {"ts": T0 + 1, "values": {"k": 2}})
    lt = tenant.viewer.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json()
    assert lt == {"k": {"ts": T0 + 1, "value": 2}}
    server.ingest_ok(token, {"ts": T0 + 1, "values": {"k": 3}})
    lt = tenant.viewer.get(f"/api/v1/devices/{d['id']}/telemetry/latest").json()
    assert lt == {"k": {"ts": T0 + 1, "value": 3}}


@pytest.mark.parametrize("fn", ["avg", "min", "max", "sum"])
def test_agg_ignores_non_numeric(tenant, series, fn):
    got = tenant.viewer.agg(series["id"], "s", T0, T0 + H, fn, "1m")
    assert got == []


def test_raw_empty_or_inverted_range(tenant, series):
    got = tenant.viewer.raw(series["id"], "t", T0 + 10 * S, T0 + 10 * S)
    assert got.get("t", []) == []
    r = tenant.viewer.telemetry(series["id"], keys="t", **{"from": T0 + H, "to": T0})
    if r.status_code == 200:
        assert r.json().get("t", []) == []
    else:
        assert_problem(r, 400)
