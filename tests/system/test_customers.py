"""customer-svc: every route of /tmp/parley/CUSTOMER_API.md against the running service, Kafka and PostgreSQL."""

import urllib.parse
import uuid

import pytest

import parley_sys as ps
from parley_sys import (
    CREATED, UPDATED, assert_customer, assert_envelope, assert_error, assert_json_response, assert_validation,
    create_customer, new_request_id, new_type, q, uniq,
)

UNAUTHORIZED = {"error": "Unauthorized", "message": "Valid authentication required."}
MALFORMED_IDS = [
    "not-a-uuid",
    "123",
    "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4",    # 35 chars
    "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4d5",  # 37 chars
    "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3cXY",   # non-hex
    "0190f0c21c7e7a4b8c3d9e0f1a2b3c4d",       # no dashes
    "%27%3B%20DROP%20TABLE%20customers%3B%20--",
]


def unknown_uuid7():
    """A well-formed lowercase UUIDv7-shaped id that no row has."""
    h = uuid.uuid4().hex
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def page_url_query(url):
    u = urllib.parse.urlsplit(url)
    base = urllib.parse.urlsplit(ps.PUBLIC_URL)
    assert (u.scheme, u.netloc, u.path) == (base.scheme, base.netloc, "/api/v1/customers"), url
    return {k: v for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=False).items()}


# ----------------------------------------------------------------------------------------------- create / upsert

def test_create_201_publishes_customer_created(api, kafka):
    cons = kafka()
    et, eid, rid = new_type(), uniq("ext"), new_request_id()
    body = {"external_type": et, "external_id": eid, "name": "Ada Lovelace",
            "metadata": {"tier": "gold", "n": 3, "nested": {"a": [1, 2.5, None, True]}}, "unknown_field": "x"}
    r = api.post("/api/customers", body, request_id=rid)
    assert r.status == 201, r
    assert_json_response(r)
    assert r.header("X-Request-Id") == rid
    c = r.json
    assert_customer(c)
    assert (c["external_type"], c["external_id"], c["name"]) == (et, eid, "Ada Lovelace")
    assert c["metadata"] == body["metadata"]
    assert "unknown_field" not in c
    assert ps.db_count_identity(et, eid) == 1
    assert ps.psql(f"SELECT id::text FROM customers WHERE external_type = {ps.sql_lit(et)}") == c["id"]

    assert api.get(f"/api/customers/{c['id']}").json == c

    ev = cons.wait_for(CREATED, lambda e: e.key == c["id"])[0]
    assert_envelope(ev, CREATED, key=c["id"], trace_id=rid, payload=c)
    cons.settle(1.0)
    assert len(cons.matching(CREATED, lambda e: e.key == c["id"])) == 1, "customer.created published twice"
    assert cons.matching(UPDATED, lambda e: e.key == c["id"]) == [], "a create must not emit customer.updated"


def test_create_defaults_name_null_metadata_empty(api, kafka):
    cons = kafka()
    c = create_customer(api)
    assert c["name"] is None and c["metadata"] == {}
    ev = cons.wait_for(CREATED, lambda e: e.key == c["id"])[0]
    assert_envelope(ev, CREATED, key=c["id"], payload=c)


def test_upsert_existing_identity_200_merges_and_publishes_updated(api, kafka):
    cons = kafka()
    et, eid = new_type(), uniq("ext")
    c1 = create_customer(api, et, eid, name="Alice", metadata={"a": 1, "b": "x", "keep": True})

    rid2 = new_request_id()
    r2 = api.post("/api/customers", {"external_type": et, "external_id": eid,
                                     "metadata": {"a": None, "b": "y", "c": [1, 2]}}, request_id=rid2)
    assert r2.status == 200, r2
    c2 = r2.json
    assert_customer(c2)
    assert c2["id"] == c1["id"] and c2["created_at"] == c1["created_at"]
    assert c2["name"] == "Alice", "name must stay when not given"
    assert c2["metadata"] == {"b": "y", "keep": True, "c": [1, 2]}, "merge: add/replace keys, null deletes"
    assert c2["updated_at"] > c1["updated_at"]
    assert api.get(f"/api/customers/{c1['id']}").json == c2

    # name null -> unchanged; name given -> replaced
    rid3 = new_request_id()
    r3 = api.post("/api/customers", {"external_type": et, "external_id": eid, "name": "Bob"}, request_id=rid3)
    assert r3.status == 200, r3
    c3 = r3.json
    assert c3["name"] == "Bob" and c3["metadata"] == c2["metadata"] and c3["id"] == c1["id"]
    r4 = api.post("/api/customers", {"external_type": et, "external_id": eid, "name": None, "metadata": {"z": 0}})
    assert r4.status == 200, r4
    assert r4.json["name"] == "Bob", "name null on upsert must not clear the name"
    assert r4.json["metadata"] == {"b": "y", "keep": True, "c": [1, 2], "z": 0}

    assert ps.db_count_identity(et, eid) == 1

    ups = cons.wait_for(UPDATED, lambda e: e.key == c1["id"], n=3)
    assert_envelope(ups[0], UPDATED, key=c1["id"], trace_id=rid2, payload=c2)
    assert_envelope(ups[1], UPDATED, key=c1["id"], trace_id=rid3, payload=c3)
    assert_envelope(ups[2], UPDATED, key=c1["id"], payload=r4.json)
    assert len({e.event_id for e in ups}) == 3
    cons.wait_for(CREATED, lambda e: e.key == c1["id"])
    cons.settle(1.0)
    assert len(cons.matching(CREATED, lambda e: e.key == c1["id"])) == 1, "upsert of an existing row re-emitted created"
    assert len(cons.matching(UPDATED, lambda e: e.key == c1["id"])) == 3


def test_noop_upsert_emits_nothing_and_keeps_updated_at(api, kafka):
    cons = kafka()
    et, eid = new_type(), uniq("ext")
    c = create_customer(api, et, eid, name="Nora", metadata={"k": "v", "n": 1})
    noops = [
        {"external_type": et, "external_id": eid, "name": "Nora", "metadata": {"k": "v", "n": 1}},
        {"external_type": et, "external_id": eid},
        {"external_type": et, "external_id": eid, "name": None, "metadata": {}},
        {"external_type": et, "external_id": eid, "metadata": {"k": "v"}},
        {"external_type": et, "external_id": eid, "metadata": {"absent_key": None}},
    ]
    for body in noops:
        r = api.post("/api/customers", body)
        assert r.status == 200, (body, r)
        assert r.json == c, f"no-op upsert {body} changed the customer (updated_at must be kept)"
    # Fence: a real change on the same key. Events of one key share a partition and keep commit order,
    # so an event from the no-ops would show up before the fence's.
    fence_rid = new_request_id("fence")
    r = api.patch(f"/api/customers/{c['id']}", {"name": "Nora F."}, request_id=fence_rid)
    assert r.status == 200, r
    cons.wait_for(UPDATED, lambda e: e.key == c["id"] and e.trace_id == fence_rid)
    ups = cons.matching(UPDATED, lambda e: e.key == c["id"])
    assert [e.trace_id for e in ups] == [fence_rid], f"no-op upserts emitted customer.updated: {ups}"
    cons.wait_for(CREATED, lambda e: e.key == c["id"])  # other topic: may land a moment after the fence
    cons.settle(1.0)
    assert len(cons.matching(CREATED, lambda e: e.key == c["id"])) == 1


# ----------------------------------------------------------------------------------------------- get

def test_get_by_id(api):
    c = create_customer(api, name="Getter", metadata={"x": 1})
    r = api.get(f"/api/customers/{c['id']}")
    assert r.status == 200, r
    assert_json_response(r)
    assert r.json == c
    assert list(r.json) == ps.CUSTOMER_KEYS


def test_get_unknown_id_404(api):
    assert_error(api.get(f"/api/customers/{unknown_uuid7()}"), 404, "Customer not found")
    assert_error(api.get(f"/api/customers/{uuid.uuid4()}"), 404, "Customer not found")


@pytest.mark.parametrize("bad", MALFORMED_IDS)
def test_get_malformed_id_404(api, bad):
    assert_error(api.get(f"/api/customers/{bad}"), 404, "Customer not found")


# ----------------------------------------------------------------------------------------------- external lookup

@pytest.mark.parametrize("eid", [
    "+15550100",
    "john doe",
    "+1 555 0100 ext 7",
    "a+b c+d",
    "ñandú 😀 ✓",
    "50%off&x=1?y#z",
])
def test_external_lookup(api, eid):
    et = new_type()
    c = create_customer(api, et, eid, name="Ext")
    assert c["external_id"] == eid
    r = api.get(f"/api/customers/external/{q(et)}/{q(eid)}")
    assert r.status == 200, r
    assert_json_response(r)
    assert r.json == c
    # the other id of a pair differing only by `+`/space must not be found
    if "+" in eid:
        other = eid.replace("+", " ")
        assert_error(api.get(f"/api/customers/external/{q(et)}/{q(other)}"), 404, "Customer not found")


def test_external_lookup_literal_plus_in_path_is_plus(api):
    et, eid = new_type(), f"+4917{uuid.uuid4().int % 10**9:09d}"
    c = create_customer(api, et, eid)
    r = api.get(f"/api/customers/external/{et}/{eid}")  # `+` left unencoded: a path is not form-encoded
    assert r.status == 200, r
    assert r.json["id"] == c["id"]


def test_external_lookup_404(api):
    et, eid = new_type(), uniq("ext")
    create_customer(api, et, eid)
    assert_error(api.get(f"/api/customers/external/{q(et)}/{q(eid + 'x')}"), 404, "Customer not found")
    assert_error(api.get(f"/api/customers/external/{q(new_type())}/{q(eid)}"), 404, "Customer not found")


# ----------------------------------------------------------------------------------------------- list

@pytest.fixture
def four(api):
    """Four customers of one fresh external_type, created in order a, b, c, d."""
    et = new_type()
    names = ["Alpha One", "alpine", "Beta", "Salty"]
    cs = [create_customer(api, et, uniq(f"l{i}"), name=n) for i, n in enumerate(names)]
    return et, cs


def list_ok(api, query):
    r = api.get("/api/customers?" + query)
    assert r.status == 200, r
    assert_json_response(r)
    body = r.json
    assert PAGINATOR_KEYS <= set(body), f"paginator keys missing: {PAGINATOR_KEYS - set(body)}"
    for c in body["data"]:
        assert_customer(c)
    return body


PAGINATOR_KEYS = ps.PAGINATOR_KEYS


def ids(body):
    return [c["id"] for c in body["data"]]


def test_list_by_external_type_newest_first(api, four):
    et, (a, b, c, d) = four
    body = list_ok(api, f"external_type={q(et)}")
    assert ids(body) == [d["id"], c["id"], b["id"], a["id"]]
    assert body["data"] == [d, c, b, a]
    assert body["total"] == 4 and body["current_page"] == 1 and body["per_page"] == 20
    assert body["last_page"] == 1 and body["from"] == 1 and body["to"] == 4
    assert body["next_page_url"] is None and body["prev_page_url"] is None


def test_list_by_external_id(api, four):
    et, (a, b, c, d) = four
    assert ids(list_ok(api, f"external_type={q(et)}&external_id={q(b['external_id'])}")) == [b["id"]]
    assert ids(list_ok(api, f"external_id={q(c['external_id'])}")) == [c["id"]]
    body = list_ok(api, f"external_type={q(et)}&external_id=nope-{uuid.uuid4().hex}")
    assert body["data"] == [] and body["total"] == 0


@pytest.mark.parametrize("prefix,expect", [
    ("al", ["b", "a"]), ("AL", ["b", "a"]), ("Alpha", ["a"]), ("alpine", ["b"]), ("sal", ["d"]),
    ("lpha", []), ("zzz", []),
])
def test_list_q_is_case_insensitive_name_prefix(api, four, prefix, expect):
    et, cs = four
    by = dict(zip("abcd", cs))
    body = list_ok(api, f"external_type={q(et)}&q={q(prefix)}")
    assert ids(body) == [by[k]["id"] for k in expect]
    assert body["total"] == len(expect)


def test_list_ids_batch(api, four):
    _, (a, b, c, d) = four
    body = list_ok(api, f"ids={a['id']},{c['id']}")
    assert ids(body) == [c["id"], a["id"]] and body["total"] == 2
    body = list_ok(api, f"ids={unknown_uuid7()},{b['id']}")
    assert ids(body) == [b["id"]]
    # 200 ids is the documented maximum and must be accepted
    many = [unknown_uuid7() for _ in range(199)] + [d["id"]]
    body = list_ok(api, "per_page=200&ids=" + ",".join(many))
    assert ids(body) == [d["id"]]


def test_list_ids_too_many_or_malformed_422(api, four):
    _, (a, *_rest) = four
    assert_validation(api.get("/api/customers?ids=" + ",".join([unknown_uuid7() for _ in range(201)])), "ids")
    assert_validation(api.get(f"/api/customers?ids={a['id']},not-a-uuid"), "ids")
    assert_validation(api.get(f"/api/customers?ids={a['id']},{q(chr(39) + '; DROP TABLE customers; --')}"), "ids")


def test_list_pagination(api):
    et = new_type()
    cs = [create_customer(api, et, uniq(f"p{i}"), name=f"P{i}") for i in range(5)]
    newest_first = [c["id"] for c in reversed(cs)]

    p1 = list_ok(api, f"external_type={q(et)}&per_page=2")
    assert (p1["current_page"], p1["per_page"], p1["total"], p1["last_page"], p1["from"], p1["to"]) == \
        (1, 2, 5, 3, 1, 2), p1
    assert p1["prev_page_url"] is None
    assert page_url_query(p1["next_page_url"]) == {"page": ["2"], "per_page": ["2"], "external_type": [et]}

    p2 = list_ok(api, f"external_type={q(et)}&per_page=2&page=2")
    assert (p2["current_page"], p2["from"], p2["to"], p2["last_page"]) == (2, 3, 4, 3), p2
    assert page_url_query(p2["prev_page_url"]) == {"page": ["1"], "per_page": ["2"], "external_type": [et]}
    assert page_url_query(p2["next_page_url"]) == {"page": ["3"], "per_page": ["2"], "external_type": [et]}

    p3 = list_ok(api, f"external_type={q(et)}&per_page=2&page=3")
    assert (p3["current_page"], p3["from"], p3["to"], p3["last_page"]) == (3, 5, 5, 3), p3
    assert p3["next_page_url"] is None
    assert page_url_query(p3["prev_page_url"]) == {"page": ["2"], "per_page": ["2"], "external_type": [et]}

    assert ids(p1) + ids(p2) + ids(p3) == newest_first

    p4 = list_ok(api, f"external_type={q(et)}&per_page=2&page=4")
    assert p4["data"] == [] and p4["from"] is None and p4["to"] is None
    assert p4["total"] == 5 and p4["last_page"] == 3 and p4["next_page_url"] is None

    # other filters are kept in the URLs
    pq = list_ok(api, f"external_type={q(et)}&q=p&per_page=1")
    assert pq["total"] == 5 and pq["last_page"] == 5
    assert page_url_query(pq["next_page_url"]) == {"page": ["2"], "per_page": ["1"], "external_type": [et],
                                                   "q": ["p"]}


def test_list_empty_result(api):
    body = list_ok(api, f"external_type={new_type()}")
    assert body["data"] == [] and body["total"] == 0
    assert body["from"] is None and body["to"] is None
    assert body["last_page"] == 1 and body["current_page"] == 1
    assert body["next_page_url"] is None and body["prev_page_url"] is None


@pytest.mark.parametrize("value", ["1", "200"])
def test_list_per_page_bounds_accepted(api, value):
    assert list_ok(api, f"external_type={new_type()}&per_page={value}")["per_page"] == int(value)


@pytest.mark.parametrize("value", ["0", "201", "abc", "-1", "2.5", "99999999999999999999"])
def test_list_per_page_invalid_422(api, value):
    assert_validation(api.get(f"/api/customers?per_page={value}"), "per_page")


@pytest.mark.parametrize("value", ["0", "-1", "abc", "99999999999999999999"])
def test_list_page_invalid_422(api, value):
    assert_validation(api.get(f"/api/customers?page={value}"), "page")


# ----------------------------------------------------------------------------------------------- patch

def test_patch_name_and_metadata_merge(api, kafka):
    cons = kafka()
    c = create_customer(api, name="Pat", metadata={"a": 1, "b": 2, "c": {"d": 1}})
    rid = new_request_id()
    r = api.patch(f"/api/customers/{c['id']}", {"name": "Patricia", "metadata": {"b": None, "e": "new", "a": 10}},
                  request_id=rid)
    assert r.status == 200, r
    assert_json_response(r)
    p = r.json
    assert_customer(p)
    assert p["id"] == c["id"] and p["created_at"] == c["created_at"]
    assert (p["external_type"], p["external_id"]) == (c["external_type"], c["external_id"])
    assert p["name"] == "Patricia"
    assert p["metadata"] == {"a": 10, "c": {"d": 1}, "e": "new"}
    assert p["updated_at"] > c["updated_at"]
    assert api.get(f"/api/customers/{c['id']}").json == p

    r2 = api.patch(f"/api/customers/{c['id']}", {"metadata": {"e": None}})
    assert r2.status == 200, r2
    assert r2.json["name"] == "Patricia" and r2.json["metadata"] == {"a": 10, "c": {"d": 1}}

    ups = cons.wait_for(UPDATED, lambda e: e.key == c["id"], n=2)
    assert_envelope(ups[0], UPDATED, key=c["id"], trace_id=rid, payload=p)
    assert_envelope(ups[1], UPDATED, key=c["id"], payload=r2.json)


def test_patch_noop_emits_nothing(api, kafka):
    cons = kafka()
    c = create_customer(api, name="Still", metadata={"k": 1})
    for body in ({}, {"name": "Still"}, {"metadata": {"k": 1}}, {"metadata": {"missing": None}}):
        r = api.patch(f"/api/customers/{c['id']}", body)
        assert r.status == 200, (body, r)
        assert r.json == c, f"no-op PATCH {body} changed the customer"
    fence = new_request_id("fence")
    assert api.patch(f"/api/customers/{c['id']}", {"metadata": {"k": 2}}, request_id=fence).status == 200
    cons.wait_for(UPDATED, lambda e: e.key == c["id"] and e.trace_id == fence)
    assert [e.trace_id for e in cons.matching(UPDATED, lambda e: e.key == c["id"])] == [fence]


def test_patch_unknown_404(api):
    assert_error(api.patch(f"/api/customers/{unknown_uuid7()}", {"name": "x"}), 404, "Customer not found")


@pytest.mark.parametrize("bad", MALFORMED_IDS)
def test_patch_malformed_id_404(api, bad):
    assert_error(api.patch(f"/api/customers/{bad}", {"name": "x"}), 404, "Customer not found")


# ----------------------------------------------------------------------------------------------- stats

def test_stats_channels(api):
    base = new_type("st")
    counts = {base + "a": 3, base + "b": 1, base + "c": 2, base + "d": 2}
    for et, n in counts.items():
        for _ in range(n):
            create_customer(api, et, uniq("s"))
    r = api.get("/api/stats/channels")
    assert r.status == 200, r
    assert_json_response(r)
    items = r.json
    assert isinstance(items, list) and items
    for it in items:
        assert isinstance(it, dict) and set(it) == {"name", "value"}, it
        assert isinstance(it["name"], str) and type(it["value"]) is int and it["value"] >= 1, it
    values = [it["value"] for it in items]
    assert values == sorted(values, reverse=True), "not ordered by value desc"
    expected = {et[0].upper() + et[1:]: n for et, n in counts.items()}
    mine = [it for it in items if it["name"] in expected]
    assert {it["name"]: it["value"] for it in mine} == expected
    assert len(mine) == 4
    assert [it["name"] for it in mine] == sorted(expected, key=lambda nm: (-expected[nm], nm)), \
        "ties must be ordered by name"


def test_stats_channels_counts_follow_creates(api):
    et = new_type("sc")
    name = et[0].upper() + et[1:]

    def value():
        items = api.get("/api/stats/channels").json
        return {it["name"]: it["value"] for it in items}.get(name)

    assert value() is None
    create_customer(api, et, uniq("s"))
    assert value() == 1
    c = create_customer(api, et, uniq("s"))
    assert value() == 2
    # an upsert of an existing identity does not count twice
    assert api.post("/api/customers", {"external_type": et, "external_id": c["external_id"]}).status == 200
    assert value() == 2


# ----------------------------------------------------------------------------------------------- request id

@pytest.mark.parametrize("rid", ["abc", "A-Z.a_z:0-9", "x" * 128, "1"])
@pytest.mark.parametrize("path,token", [("/api/stats/channels", True), (None, True), ("/api/stats/channels", False),
                                        ("/healthz", False)])
def test_request_id_echoed(api, rid, path, token):
    path = path or f"/api/customers/{unknown_uuid7()}"
    r = api.get(path, request_id=rid, token=ps.SERVICE_TOKEN if token else None)
    assert r.header("X-Request-Id") == rid, r


@pytest.mark.parametrize("rid", ["has space", "x" * 129, "bad/slash", "semi;colon", "quote\"d", "ünï", ""])
def test_invalid_request_id_replaced(api, rid):
    r = api.get("/api/stats/channels", request_id=rid)
    assert r.status == 200, r
    got = r.header("X-Request-Id")
    assert got and got != rid and ps.REQUEST_ID_RE.match(got), f"invalid X-Request-Id {rid!r} -> {got!r}"


def test_request_id_generated_and_unique(api):
    a = api.get("/api/stats/channels").header("X-Request-Id")
    b = api.get("/api/stats/channels").header("X-Request-Id")
    c = api.get(f"/api/customers/{unknown_uuid7()}").header("X-Request-Id")
    for x in (a, b, c):
        assert x and ps.REQUEST_ID_RE.match(x), x
    assert len({a, b, c}) == 3


def test_generated_request_id_is_event_trace_id(api, kafka):
    cons = kafka()
    r = api.post("/api/customers", {"external_type": new_type(), "external_id": uniq("ext")})
    assert r.status == 201, r
    rid = r.header("X-Request-Id")
    assert rid
    ev = cons.wait_for(CREATED, lambda e: e.key == r.json["id"])[0]
    assert_envelope(ev, CREATED, key=r.json["id"], trace_id=rid, payload=r.json)


# ----------------------------------------------------------------------------------------------- auth / routing

@pytest.mark.parametrize("token", [None, "", "wrong", "dev-service-token-x", "dev-service-toke", "DEV-SERVICE-TOKEN",
                                   "Bearer dev-service-token"])
@pytest.mark.parametrize("method,path", [("GET", "/api/customers"), ("GET", "/api/stats/channels"),
                                         ("GET", "/api/customers/{id}"), ("PATCH", "/api/customers/{id}")])
def test_401_without_valid_token(api, token, method, path):
    path = path.replace("{id}", unknown_uuid7())
    kw = {"json_body": {"name": "x"}} if method == "PATCH" else {}
    r = api.request(method, path, token=token, **kw)
    assert r.status == 401, r
    assert_json_response(r)
    assert r.json == UNAUTHORIZED


@pytest.mark.parametrize("token", [None, "wrong"])
def test_401_post_creates_nothing(api, token):
    et, eid = new_type(), uniq("ext")
    r = api.post("/api/customers", {"external_type": et, "external_id": eid}, token=token)
    assert r.status == 401, r
    assert r.json == UNAUTHORIZED
    assert ps.db_count_identity(et, eid) == 0
    assert_error(api.get(f"/api/customers/external/{et}/{eid}"), 404, "Customer not found")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_need_no_token(api, path):
    r = api.get(path, token=None)
    assert r.status == 200, r


@pytest.mark.parametrize("path", ["/api/nope", "/api/customerz", "/api/v1/customers", "/api/customers/{id}/extra",
                                  "/api/stats", "/api/stats/channels/x", "/nope"])
def test_unknown_route_404_json(api, path):
    r = api.get(path.replace("{id}", unknown_uuid7()))
    assert_error(r, 404, "Not found")


def allow_set(r):
    allow = r.header("Allow")
    assert allow, f"405 without Allow header: {r!r}"
    return {m.strip().upper() for m in allow.split(",") if m.strip()}


@pytest.mark.parametrize("method,path,must_allow", [
    ("DELETE", "/api/customers/{id}", {"GET", "PATCH"}),
    ("PUT", "/api/customers/{id}", {"GET", "PATCH"}),
    ("POST", "/api/customers/{id}", {"GET", "PATCH"}),
    ("PUT", "/api/customers", {"GET", "POST"}),
    ("DELETE", "/api/customers", {"GET", "POST"}),
    ("PATCH", "/api/customers", {"GET", "POST"}),
    ("POST", "/api/stats/channels", {"GET"}),
    ("DELETE", "/api/customers/external/{type}/{eid}", {"GET"}),
])
def test_wrong_method_405_with_allow(api, method, path, must_allow):
    c = create_customer(api)
    path = path.replace("{id}", c["id"]).replace("{type}", q(c["external_type"])).replace("{eid}", q(c["external_id"]))
    kw = {"json_body": {"name": "zzz"}} if method in ("POST", "PUT", "PATCH") else {}
    r = api.request(method, path, **kw)
    assert_error(r, 405)
    allowed = allow_set(r)
    assert must_allow <= allowed, f"Allow {allowed} lacks {must_allow - allowed}"
    assert method not in allowed
    # nothing changed
    assert api.get(f"/api/customers/{c['id']}").json == c
