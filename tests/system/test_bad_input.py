"""customer-svc: hostile and malformed input. Every answer is a 4xx with the error envelope, never a 500,
nothing is stored by a refused request, and the service is still healthy with its data intact afterwards."""

import json
import re
import uuid

import pytest

import parley_sys as ps
from parley_sys import assert_customer, assert_error, assert_validation, create_customer, new_type, q, uniq

MIB = 1024 * 1024
LIMIT_RE = re.compile(r"1\s*MiB|1048576|1,048,576|1024\s*KiB|1\s*MB", re.IGNORECASE)
KEEP = []  # customers created successfully in this module; re-read at the end


@pytest.fixture(scope="module", autouse=True)
def sentinel():
    api = ps.Client()
    c = create_customer(api, new_type("sentinel"), uniq("sentinel"), name="Sentinel", metadata={"keep": "me"})
    KEEP.append(c)
    return c


def keep(c):
    KEEP.append(c)
    return c


def nothing_stored_for_type(et):
    assert int(ps.psql(f"SELECT count(*) FROM customers WHERE external_type = {ps.sql_lit(et)}")) == 0


def post_raw(api, raw, content_type="application/json"):
    return api.request("POST", "/api/customers", raw=raw, content_type=content_type)


# ----------------------------------------------------------------------------------------------- malformed JSON

MALFORMED = [
    '{{"external_type": "{et}", "external_id": "e1"',
    '{{"external_type": "{et}", "external_id": "e1",}}',
    '{{external_type: "{et}", external_id: "e1"}}',
    "{{'external_type': '{et}', 'external_id': 'e1'}}",
    '{{"external_type": "{et}", "external_id": "e1"}} trailing',
    '{{"external_type": "{et}", "external_id": "e1"}}{{"a": 1}}',
    '{{"external_type": "{et}", "external_id": "e1", "metadata": {{"n": NaN}}}}',
    '{{"external_type": "{et}", "external_id": "e1", "metadata": {{"n": 01}}}}',
    '{{"external_type": "{et}", "external_id": "e1\u0001"}}',   # raw control character inside a string
    '{{"external_type": "{et}", "external_id": "e1\\x41"}}',   # invalid escape
    '{{"external_type": "{et}", "external_id": "e1", "name": "\\u12"}}',
    "",
    "   ",
]


@pytest.mark.parametrize("template", MALFORMED)
def test_malformed_json_400(api, template):
    et = new_type()
    r = post_raw(api, template.format(et=et).encode("utf-8"))
    assert_error(r, 400, "invalid_json")
    nothing_stored_for_type(et)


def test_malformed_json_patch_400(api, sentinel):
    r = api.request("PATCH", f"/api/customers/{sentinel['id']}", raw=b'{"name": "x",')
    assert_error(r, 400, "invalid_json")
    assert api.get(f"/api/customers/{sentinel['id']}").json == sentinel


@pytest.mark.parametrize("bad", [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80",
                                 b"\xf8\x88\x80\x80\x80", b"\xf4\x90\x80\x80"])
@pytest.mark.parametrize("where", ["external_id", "name", "metadata_key", "metadata_value"])
def test_invalid_utf8_400(api, bad, where):
    et = new_type()
    s = b"ab" + bad + b"cd"
    parts = {"external_id": b'"e1"', "name": b'"n"', "metadata": b"{}"}
    if where == "external_id":
        parts["external_id"] = b'"' + s + b'"'
    elif where == "name":
        parts["name"] = b'"' + s + b'"'
    elif where == "metadata_key":
        parts["metadata"] = b'{"' + s + b'": 1}'
    else:
        parts["metadata"] = b'{"k": "' + s + b'"}'
    raw = (b'{"external_type": "' + et.encode() + b'", "external_id": ' + parts["external_id"]
           + b', "name": ' + parts["name"] + b', "metadata": ' + parts["metadata"] + b"}")
    assert_error(post_raw(api, raw), 400, "invalid_json")
    nothing_stored_for_type(et)


def test_invalid_utf8_patch_400(api, sentinel):
    r = api.request("PATCH", f"/api/customers/{sentinel['id']}", raw=b'{"name": "ab\xffcd"}')
    assert_error(r, 400, "invalid_json")
    assert api.get(f"/api/customers/{sentinel['id']}").json == sentinel


def test_deeply_nested_json_is_refused_cleanly(api):
    et = new_type()
    depth = 50000
    raw = ('{"external_type": "%s", "external_id": "deep", "metadata": {"a": %s%s}}'
           % (et, "[" * depth, "]" * depth)).encode()
    try:
        r = post_raw(api, raw)
        assert r.status in (400, 422), r
        assert_error(r, r.status)
        nothing_stored_for_type(et)
        assert ps.healthz_ok(), "customer-svc died on deeply nested JSON"
    finally:
        ps.ensure_customer_svc_running()  # a crash here must not take the rest of the run down with it


# ----------------------------------------------------------------------------------------------- size limits

def big_body(et, size):
    head = {"external_type": et, "external_id": "big", "metadata": {"blob": ""}}
    overhead = len(json.dumps(head).encode())
    head["metadata"]["blob"] = "x" * (size - overhead)
    raw = json.dumps(head).encode()
    assert len(raw) == size
    return raw


@pytest.mark.parametrize("size", [2 * MIB, MIB + 1024])
def test_body_over_1mib_413(api, size):
    et = new_type()
    r = post_raw(api, big_body(et, size))
    body = assert_error(r, 413, "body_too_large")
    assert LIMIT_RE.search(body["message"]), f"413 message does not name the 1 MiB limit: {body['message']!r}"
    nothing_stored_for_type(et)


def test_patch_body_over_1mib_413(api, sentinel):
    r = api.request("PATCH", f"/api/customers/{sentinel['id']}", raw=big_body(new_type(), 2 * MIB))
    body = assert_error(r, 413, "body_too_large")
    assert LIMIT_RE.search(body["message"]), body
    assert api.get(f"/api/customers/{sentinel['id']}").json == sentinel


def test_body_just_under_1mib_is_read_and_validated(api):
    """Under the body limit the request is parsed: its 1 MB metadata then fails validation (422, not 413)."""
    et = new_type()
    r = post_raw(api, big_body(et, MIB - 4096))
    assert_validation(r, "metadata", only=("external_type", "external_id"))
    nothing_stored_for_type(et)


# ----------------------------------------------------------------------------------------------- types / required

WRONG_TYPES = [
    ("external_type", 123), ("external_type", 1.5), ("external_type", True), ("external_type", None),
    ("external_type", []), ("external_type", {}), ("external_type", ["t"]),
    ("external_id", 123), ("external_id", True), ("external_id", None), ("external_id", []),
    ("external_id", {"a": 1}),
    ("name", 123), ("name", True), ("name", []), ("name", {}), ("name", ["x"]),
    ("metadata", "str"), ("metadata", 123), ("metadata", True), ("metadata", []), ("metadata", [{"a": 1}]),
]


@pytest.mark.parametrize("field,value", WRONG_TYPES, ids=[f"{f}={json.dumps(v)}" for f, v in WRONG_TYPES])
def test_wrong_type_422(api, field, value):
    et, eid = new_type(), uniq("ext")
    body = {"external_type": et, "external_id": eid, "name": "ok", "metadata": {"ok": 1}}
    body[field] = value
    r = api.post("/api/customers", body)
    others = [f for f in ("external_type", "external_id", "name", "metadata") if f != field]
    assert_validation(r, field, only=others)
    nothing_stored_for_type(et)
    assert int(ps.psql(f"SELECT count(*) FROM customers WHERE external_id = {ps.sql_lit(eid)}")) == 0


@pytest.mark.parametrize("field,value", [("name", 123), ("name", []), ("metadata", "x"), ("metadata", []),
                                         ("metadata", 5)])
def test_patch_wrong_type_422(api, field, value):
    c = create_customer(api, name="Typed", metadata={"a": 1})
    r = api.patch(f"/api/customers/{c['id']}", {field: value})
    assert_validation(r, field)
    assert api.get(f"/api/customers/{c['id']}").json == c
    keep(c)  # kept for the final re-check only once this test's own checks passed


@pytest.mark.parametrize("missing", [("external_type",), ("external_id",), ("external_type", "external_id")])
def test_missing_required_422(api, missing):
    et, eid = new_type(), uniq("ext")
    body = {"external_type": et, "external_id": eid, "name": "n"}
    for f in missing:
        del body[f]
    present = [f for f in ("external_type", "external_id") if f not in missing]
    assert_validation(api.post("/api/customers", body), *missing, only=present)
    nothing_stored_for_type(et)


@pytest.mark.parametrize("field", ["external_type", "external_id"])
def test_empty_required_string_422(api, field):
    et, eid = new_type(), uniq("ext")
    body = {"external_type": et, "external_id": eid}
    body[field] = ""
    assert_validation(api.post("/api/customers", body), field)
    nothing_stored_for_type(et)


# ----------------------------------------------------------------------------------------------- lengths (chars)

CHARS = ["a", "é", "😀", "𝄞"]


def stored_lengths(cid, column):
    out = ps.psql(f"SELECT char_length({column}), octet_length({column}) FROM customers WHERE id = {ps.sql_lit(cid)}")
    chars, octets = out.split("|")
    return int(chars), int(octets)


@pytest.mark.parametrize("ch", CHARS)
def test_name_255_chars_ok_256_rejected(api, ch):
    et = new_type()
    ok = ch * 255
    c = create_customer(api, et, uniq("len"), name=ok)
    assert c["name"] == ok
    assert api.get(f"/api/customers/{c['id']}").json["name"] == ok
    assert stored_lengths(c["id"], "name") == (255, 255 * len(ch.encode()))
    assert_validation(api.post("/api/customers", {"external_type": et, "external_id": uniq("len"), "name": ch * 256}),
                      "name")
    assert int(ps.psql(f"SELECT count(*) FROM customers WHERE external_type = {ps.sql_lit(et)}")) == 1
    # PATCH obeys the same limit, and accepts exactly 255
    assert_validation(api.patch(f"/api/customers/{c['id']}", {"name": ch * 256}), "name")
    assert api.get(f"/api/customers/{c['id']}").json == c
    keep(c)


@pytest.mark.parametrize("ch", CHARS)
def test_external_id_255_chars_ok_256_rejected(api, ch):
    et = new_type()
    ok = uuid.uuid4().hex + ch * (255 - 32)
    c = keep(create_customer(api, et, ok))
    assert c["external_id"] == ok
    assert stored_lengths(c["id"], "external_id")[0] == 255
    assert api.get(f"/api/customers/external/{q(et)}/{q(ok)}").json == c
    assert_validation(api.post("/api/customers", {"external_type": et, "external_id": ok + ch}), "external_id")
    assert int(ps.psql(f"SELECT count(*) FROM customers WHERE external_type = {ps.sql_lit(et)}")) == 1


@pytest.mark.parametrize("ch", CHARS)
def test_external_type_64_chars_ok_65_rejected(api, ch):
    base = new_type()  # 21 chars, unique
    ok = base + ch * (64 - len(base))
    c = keep(create_customer(api, ok, uniq("len")))
    assert c["external_type"] == ok
    assert stored_lengths(c["id"], "external_type")[0] == 64
    too_long = ok + ch
    assert_validation(api.post("/api/customers", {"external_type": too_long, "external_id": uniq("len")}),
                      "external_type")
    nothing_stored_for_type(too_long)


# ----------------------------------------------------------------------------------------------- metadata size

def test_metadata_over_16kib_422(api):
    et = new_type()
    for meta in ({"blob": "x" * 17000}, {f"k{i:05d}": i for i in range(2000)}):
        assert len(json.dumps(meta)) > 16 * 1024
        r = api.post("/api/customers", {"external_type": et, "external_id": uniq("m"), "metadata": meta})
        assert_validation(r, "metadata", only=("external_type", "external_id"))
    nothing_stored_for_type(et)
    ok = {"blob": "x" * 15000}
    c = keep(create_customer(api, et, uniq("m"), metadata=ok))
    assert c["metadata"] == ok


def test_metadata_merge_cannot_grow_past_16kib(api):
    c = create_customer(api, metadata={"a": "x" * 10000})
    r = api.patch(f"/api/customers/{c['id']}", {"metadata": {"b": "y" * 10000}})
    assert_validation(r, "metadata")
    r = api.post("/api/customers", {"external_type": c["external_type"], "external_id": c["external_id"],
                                    "metadata": {"b": "y" * 10000}})
    assert_validation(r, "metadata")
    assert api.get(f"/api/customers/{c['id']}").json == c
    keep(c)


# ----------------------------------------------------------------------------------------------- non-object body

@pytest.mark.parametrize("raw", [b"[]", b'[{"external_type": "t", "external_id": "e"}]', b'"string"', b"123",
                                 b"null", b"true"])
def test_non_object_body_422(api, raw, sentinel):
    assert_error(post_raw(api, raw), 422, "validation_failed")
    assert_error(api.request("PATCH", f"/api/customers/{sentinel['id']}", raw=raw), 422, "validation_failed")
    assert api.get(f"/api/customers/{sentinel['id']}").json == sentinel


# ----------------------------------------------------------------------------------------------- SQL metacharacters

def test_sql_metacharacters_stored_verbatim(api):
    et = new_type()
    eid_a = f"'; DROP TABLE customers; -- {uuid.uuid4().hex}"
    a = keep(create_customer(api, et, eid_a, name="%_\\abc", metadata={"q": "' OR '1'='1", "b": "\\\\"}))
    b = keep(create_customer(api, et, f"%_\\{uuid.uuid4().hex}", name="zz%_"))
    c = keep(create_customer(api, et, f"x\" OR 1=1 --{uuid.uuid4().hex}", name="Robert'); DROP TABLE customers;--"))

    assert (a["external_id"], a["name"]) == (eid_a, "%_\\abc")
    stored = ps.psql(f"SELECT external_id || E'\\x1f' || name FROM customers WHERE id = {ps.sql_lit(a['id'])}")
    assert stored == eid_a + "\x1f" + "%_\\abc"
    stored_b = ps.psql(f"SELECT external_id FROM customers WHERE id = {ps.sql_lit(b['id'])}")
    assert stored_b == b["external_id"]

    for cust in (a, b, c):
        r = api.get(f"/api/customers/external/{q(et)}/{q(cust['external_id'])}")
        assert r.status == 200 and r.json == cust, r
        body = api.get(f"/api/customers?external_type={q(et)}&external_id={q(cust['external_id'])}").json
        assert [x["id"] for x in body["data"]] == [cust["id"]]

    # wildcard characters must be literal in exact lookups
    for wild in ("%", "_", "%_\\%", "'; DROP TABLE customers; --%"):
        assert_error(api.get(f"/api/customers/external/{q(et)}/{q(wild)}"), 404, "Customer not found")
        assert api.get(f"/api/customers?external_type={q(et)}&external_id={q(wild)}").json["total"] == 0
    assert_error(api.get(f"/api/customers/external/{q('%')}/{q(eid_a)}"), 404, "Customer not found")

    expect = {"%": [a], "%_": [a], "%_\\": [a], "%_\\ABC": [a], "_": [], "\\": [], "zz%": [b], "zz%_": [b],
              "zz_": [], "zz%%": [], "robert')": [c], "'": [], "%'": []}
    for prefix, want in expect.items():
        body = api.get(f"/api/customers?external_type={q(et)}&q={q(prefix)}").json
        assert [x["id"] for x in body["data"]] == [w["id"] for w in want], f"q={prefix!r}: {body}"

    # the table is still there and whole
    assert int(ps.psql(f"SELECT count(*) FROM customers WHERE external_type = {ps.sql_lit(et)}")) == 3


# ----------------------------------------------------------------------------------------------- path ids

@pytest.mark.parametrize("bad", ["%00", "..%2F..%2Fetc%2Fpasswd", "a" * 1000, "%27%20OR%20%271%27%3D%271",
                                 "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4d%00", "%E2%98%83",
                                 "{0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4d}", "-1", "null"])
def test_malformed_uuid_in_path_404(api, bad):
    assert_error(api.get(f"/api/customers/{bad}"), 404)
    assert_error(api.patch(f"/api/customers/{bad}", {"name": "x"}), 404)


# ----------------------------------------------------------------------------------------------- content type

@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                   "application/xml", "application/jsonx", "text/html; charset=utf-8"])
def test_non_json_content_type_415(api, ctype, sentinel):
    et = new_type()
    raw = json.dumps({"external_type": et, "external_id": "e1"}).encode()
    assert_error(post_raw(api, raw, content_type=ctype), 415)
    nothing_stored_for_type(et)
    r = api.request("PATCH", f"/api/customers/{sentinel['id']}", raw=b'{"name": "changed"}', content_type=ctype)
    assert_error(r, 415)
    assert api.get(f"/api/customers/{sentinel['id']}").json == sentinel


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "application/json;charset=UTF-8",
                                   "Application/JSON"])
def test_json_content_type_variants_accepted(api, ctype):
    et = new_type()
    r = post_raw(api, json.dumps({"external_type": et, "external_id": "e1"}).encode(), content_type=ctype)
    assert r.status == 201, r
    assert_customer(r.json)
    keep(r.json)


def test_missing_content_type(api):
    """No Content-Type at all: refused with 415, or read as JSON; never anything else."""
    et = new_type()
    r = post_raw(api, json.dumps({"external_type": et, "external_id": "e1"}).encode(), content_type=None)
    assert r.status in (201, 415), r
    if r.status == 415:
        assert_error(r, 415)
        nothing_stored_for_type(et)
    else:
        assert_customer(r.json)
        assert ps.db_count_identity(et, "e1") == 1
        keep(r.json)


# ----------------------------------------------------------------------------------------------- afterwards

def test_zz_service_still_up_and_rows_intact(api, sentinel):
    assert api.get("/healthz", token=None).status == 200
    assert api.get("/readyz", token=None).status == 200
    assert KEEP and KEEP[0] == sentinel
    for c in KEEP:
        r = api.get(f"/api/customers/{c['id']}")
        assert r.status == 200, r
        assert r.json == c, f"row changed by a refused request: {c['id']}"
    assert int(ps.psql("SELECT count(*) FROM customers")) >= len(KEEP)
