"""conversation-svc: every route against the running service, customer-svc, Kafka and PostgreSQL.

Contract: /tmp/parley/CONV_MSG.md and SPEC 4.2.  Documented choices these tests pin down:
- adding a customer who is already an active participant answers 200 with the existing participant
  and emits nothing;
- a participant who left and is added again gets the same row back (same id, left_at null, joined_at
  and role renewed) and a new conversation.participant.added;
- the participants of a direct conversation cannot be added to or removed (409); reopening a closed
  direct conversation while another open one exists for the pair is 409;
- list items carry participants too, so a list item equals the single GET.
"""

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

import parley_sys as ps
from parley_sys import assert_error, assert_json_response, assert_validation, new_request_id

CONV_URL = os.environ.get("PARLEY_CONVERSATION_URL", "http://127.0.0.1:8002")
CONV_DB_URL = os.environ.get(
    "PARLEY_TEST_CONVERSATIONS_DATABASE_URL",
    "postgresql://parley:parley@127.0.0.1:55432/parley_conversations",
)
OPENED, CLOSED = "conversation.opened", "conversation.closed"
ADDED, REMOVED = "conversation.participant.added", "conversation.participant.removed"
CONV_TOPICS = (OPENED, CLOSED, ADDED, REMOVED)
CONVERSATION_KEYS = ["id", "type", "status", "subject", "metadata", "last_message_at", "created_at",
                     "updated_at", "participants"]
PARTICIPANT_KEYS = ["id", "conversation_id", "customer_id", "role", "joined_at", "left_at"]
UNAUTHORIZED = {"error": "Unauthorized", "message": "Valid authentication required."}
MIB = 1024 * 1024
MALFORMED_IDS = [
    "not-a-uuid",
    "123",
    "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4",
    "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4d5",
    "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3cXY",
    "0190f0c21c7e7a4b8c3d9e0f1a2b3c4d",
    "%27%3B%20DROP%20TABLE%20conversations%3B%20--",
]


def unknown_uuid7():
    h = uuid.uuid4().hex
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def cpsql(sql):
    return ps.psql(sql, url=CONV_DB_URL)


# ----------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def conversation_svc_is_up():
    assert ps.healthz_ok(CONV_URL, timeout=5), f"conversation-svc does not answer {CONV_URL}/healthz"


@pytest.fixture
def conv():
    return ps.Client(CONV_URL)


@pytest.fixture
def cust():
    return ps.Client(ps.CUSTOMER_URL)


@pytest.fixture
def customers(cust):
    """Factory: n fresh customers (their ids)."""
    return lambda n: [ps.create_customer(cust)["id"] for _ in range(n)]


@pytest.fixture
def events():
    """Factory: a Consumer of the conversation topics from their end offsets now."""
    for topic in CONV_TOPICS:
        ps.topic_partitions(topic)
    return lambda: ps.Consumer(CONV_TOPICS)


# ----------------------------------------------------------------------------------------------- helpers

def assert_participant(p, conversation_id=None):
    assert list(p) == PARTICIPANT_KEYS, f"participant keys/order {list(p)}"
    assert ps.UUID7_RE.match(p["id"]), p
    assert ps.UUID_RE.match(p["conversation_id"]) and ps.UUID_RE.match(p["customer_id"]), p
    assert p["role"] in ("member", "admin", "owner"), p
    assert ps.TS_RE.match(p["joined_at"]), p
    assert p["left_at"] is None or ps.TS_RE.match(p["left_at"]), p
    if conversation_id is not None:
        assert p["conversation_id"] == conversation_id, p


def assert_conversation(c, participants=True):
    assert isinstance(c, dict), c
    keys = CONVERSATION_KEYS if participants else CONVERSATION_KEYS[:-1]
    assert list(c) == keys, f"conversation keys/order {list(c)}"
    assert ps.UUID7_RE.match(c["id"]), c
    assert c["type"] in ("direct", "group", "channel"), c
    assert c["status"] in ("open", "pending", "closed"), c
    assert c["subject"] is None or isinstance(c["subject"], str), c
    assert isinstance(c["metadata"], dict), c
    assert c["last_message_at"] is None or ps.TS_RE.match(c["last_message_at"]), c
    assert ps.TS_RE.match(c["created_at"]) and ps.TS_RE.match(c["updated_at"]), c
    assert c["updated_at"] >= c["created_at"], c
    if participants:
        assert isinstance(c["participants"], list), c
        for p in c["participants"]:
            assert_participant(p, c["id"])


def create(conv, ctype, participants, expect=201, request_id=None, **fields):
    body = {"type": ctype, "participants": participants, **fields}
    r = conv.post("/api/conversations", body, request_id=request_id)
    assert r.status == expect, r
    assert_json_response(r)
    assert_conversation(r.json)
    return r.json


def get(conv, cid):
    r = conv.get(f"/api/conversations/{cid}")
    assert r.status == 200, r
    assert_conversation(r.json)
    return r.json


def active(c):
    return [p["customer_id"] for p in c["participants"] if p["left_at"] is None]


def assert_envelope(ev, topic, key, trace_id=None, payload=None):
    env = ev.env
    assert isinstance(env, dict), f"event value is not a JSON object: {ev!r}"
    assert set(env) == ps.ENVELOPE_KEYS, f"envelope keys {sorted(env)}"
    assert ev.topic == topic and env["topic"] == topic, ev
    assert ev.key == key and env["key"] == key, f"key {ev.key!r}/{env['key']!r} != {key!r}"
    assert env["source_service"] == "conversation-svc", ev
    assert env["schema_version"] == 1 and type(env["schema_version"]) is int, ev
    assert ps.UUID_RE.match(env["event_id"]), ev
    assert ps.TS_RE.match(env["occurred_at"]), ev
    if trace_id is not None:
        assert env["trace_id"] == trace_id, f"trace_id {env['trace_id']!r} != {trace_id!r}"
    if payload is not None:
        assert env["payload"] == payload, f"payload differs from the API body:\n{env['payload']}\n{payload}"
        assert list(env["payload"]) == list(payload), "payload key order differs from the API body"


def count_direct(a, b):
    key = ":".join(sorted([a, b]))
    return int(cpsql(f"SELECT count(*) FROM conversations WHERE direct_key = {ps.sql_lit(key)}"))


# ----------------------------------------------------------------------------------------------- create

def test_create_group_201_stored_and_events(conv, customers, events):
    cons = events()
    ids = customers(3)
    rid = new_request_id()
    c = create(conv, "group", ids, request_id=rid, subject="Team", metadata={"k": "v", "n": [1, None]},
               unknown_field=1)
    assert (c["type"], c["status"], c["subject"], c["metadata"]) == ("group", "open", "Team", {"k": "v", "n": [1, None]})
    assert c["last_message_at"] is None
    assert [p["customer_id"] for p in c["participants"]] == ids, "participants keep the request order"
    assert all(p["role"] == "member" and p["left_at"] is None for p in c["participants"])
    assert get(conv, c["id"]) == c
    assert cpsql(f"SELECT count(*) FROM participants WHERE conversation_id = '{c['id']}'") == "3"

    ev = cons.wait_for(OPENED, lambda e: e.key == c["id"])[0]
    assert_envelope(ev, OPENED, c["id"], trace_id=rid, payload=c)
    added = cons.wait_for(ADDED, lambda e: e.key == c["id"], n=3)
    by_customer = {e.env["payload"]["customer_id"]: e for e in added}
    assert set(by_customer) == set(ids)
    for p in c["participants"]:
        assert_envelope(by_customer[p["customer_id"]], ADDED, c["id"], trace_id=rid, payload=p)
    cons.settle(1.0)
    assert len(cons.matching(OPENED, lambda e: e.key == c["id"])) == 1
    assert len(cons.matching(ADDED, lambda e: e.key == c["id"])) == 3


def test_create_channel_with_one_participant(conv, customers):
    ids = customers(1)
    c = create(conv, "channel", ids)
    assert c["type"] == "channel" and active(c) == ids
    assert c["subject"] is None and c["metadata"] == {}


def test_create_uppercase_ids_are_stored_lowercase(conv, customers):
    ids = customers(2)
    c = create(conv, "group", [i.upper() for i in ids])
    assert active(c) == ids


# ----------------------------------------------------------------------------------------------- direct reuse

def test_direct_reuses_open_conversation(conv, customers, events):
    cons = events()
    a, b = customers(2)
    c1 = create(conv, "direct", [a, b], subject="first")
    c2 = create(conv, "direct", [b, a], expect=200, subject="ignored", metadata={"x": 1})
    assert c2 == c1, "the existing open direct conversation is returned unchanged"
    assert create(conv, "direct", [a.upper(), b], expect=200)["id"] == c1["id"]
    # pending still counts as open
    assert conv.patch(f"/api/conversations/{c1['id']}", {"status": "pending"}).status == 200
    assert create(conv, "direct", [a, b], expect=200)["id"] == c1["id"]
    assert count_direct(a, b) == 1
    cons.wait_for(OPENED, lambda e: e.key == c1["id"])
    cons.settle(1.0)
    assert len(cons.matching(OPENED, lambda e: e.key == c1["id"])) == 1, "a reused conversation was reopened"
    assert len(cons.matching(ADDED, lambda e: e.key == c1["id"])) == 2


def test_direct_with_a_third_party_is_a_different_pair(conv, customers):
    a, b, c = customers(3)
    ab = create(conv, "direct", [a, b])
    ac = create(conv, "direct", [a, c])
    assert ab["id"] != ac["id"]
    # a group of the same two customers is not a direct conversation
    assert create(conv, "group", [a, b])["id"] != ab["id"]


def test_closed_direct_is_not_reused_and_cannot_reopen_beside_a_new_one(conv, customers, events):
    cons = events()
    a, b = customers(2)
    c1 = create(conv, "direct", [a, b])
    rid = new_request_id()
    r = conv.patch(f"/api/conversations/{c1['id']}", {"status": "closed"}, request_id=rid)
    assert r.status == 200, r
    closed = r.json
    assert closed["status"] == "closed"
    c2 = create(conv, "direct", [a, b])
    assert c2["id"] != c1["id"] and c2["status"] == "open"
    assert count_direct(a, b) == 2
    assert create(conv, "direct", [b, a], expect=200)["id"] == c2["id"]
    # reopening the old one would make two open direct conversations for one pair
    r = conv.patch(f"/api/conversations/{c1['id']}", {"status": "open"})
    assert_error(r, 409)
    assert get(conv, c1["id"])["status"] == "closed"
    ev = cons.wait_for(CLOSED, lambda e: e.key == c1["id"])[0]
    assert_envelope(ev, CLOSED, c1["id"], trace_id=rid, payload=closed)


def test_concurrent_direct_creates_make_one_conversation(conv, customers, events):
    cons = events()
    a, b = customers(2)
    n = 10
    barrier = threading.Barrier(n)

    def one(i):
        pair = [a, b] if i % 2 == 0 else [b, a]
        barrier.wait()
        return ps.Client(CONV_URL).post("/api/conversations", {"type": "direct", "participants": pair})

    with ThreadPoolExecutor(max_workers=n) as ex:
        rs = list(ex.map(one, range(n)))
    assert sorted(r.status for r in rs) == [200] * (n - 1) + [201], rs
    assert len({r.json["id"] for r in rs}) == 1, "concurrent direct creates made several conversations"
    cid = rs[0].json["id"]
    assert count_direct(a, b) == 1
    assert cpsql(f"SELECT count(*) FROM participants WHERE conversation_id = '{cid}'") == "2"
    assert all(r.json == rs[0].json for r in rs)
    cons.wait_for(OPENED, lambda e: e.key == cid)
    cons.wait_for(ADDED, lambda e: e.key == cid, n=2)
    cons.settle(1.0)
    assert len(cons.matching(OPENED, lambda e: e.key == cid)) == 1
    assert len(cons.matching(ADDED, lambda e: e.key == cid)) == 2


# ----------------------------------------------------------------------------------------------- create: bad input

@pytest.mark.parametrize("body,field", [
    ({"participants": ["{a}", "{b}"]}, "type"),
    ({"type": "private", "participants": ["{a}", "{b}"]}, "type"),
    ({"type": 3, "participants": ["{a}", "{b}"]}, "type"),
    ({"type": None, "participants": ["{a}", "{b}"]}, "type"),
    ({"type": "group"}, "participants"),
    ({"type": "group", "participants": "{a},{b}"}, "participants"),
    ({"type": "group", "participants": {"a": "{a}"}}, "participants"),
    ({"type": "group", "participants": ["{a}", 42]}, "participants"),
    ({"type": "group", "participants": ["{a}", None]}, "participants"),
    ({"type": "group", "participants": ["{a}", "not-a-uuid"]}, "participants"),
    ({"type": "group", "participants": ["{a}", "{a}"]}, "participants"),
    ({"type": "group", "participants": ["{a}", "{b}", "{A}"]}, "participants"),
    ({"type": "direct", "participants": ["{a}"]}, "participants"),
    ({"type": "direct", "participants": ["{a}", "{b}", "{c}"]}, "participants"),
    ({"type": "direct", "participants": ["{a}", "{a}"]}, "participants"),
    ({"type": "group", "participants": ["{a}"]}, "participants"),
    ({"type": "channel", "participants": []}, "participants"),
    ({"type": "group", "participants": ["{a}", "{b}"], "subject": "s" * 256}, "subject"),
    ({"type": "group", "participants": ["{a}", "{b}"], "subject": 5}, "subject"),
    ({"type": "group", "participants": ["{a}", "{b}"], "metadata": [1]}, "metadata"),
    ({"type": "group", "participants": ["{a}", "{b}"], "metadata": "x"}, "metadata"),
    ({"type": "group", "participants": ["{a}", "{b}"], "metadata": {"blob": "x" * 16384}}, "metadata"),
])
def test_create_invalid_422_stores_nothing(conv, customers, body, field):
    a, b, c = customers(3)
    text = json.dumps(body).replace("{a}", a).replace("{b}", b).replace("{c}", c).replace("{A}", a.upper())
    r = conv.request("POST", "/api/conversations", raw=text.encode())
    assert_validation(r, field)
    assert cpsql("SELECT count(*) FROM participants WHERE customer_id IN "
                 f"('{a}', '{b}', '{c}')") == "0"


def test_create_subject_255_chars_ok(conv, customers):
    c = create(conv, "group", customers(2), subject="ü" * 255)
    assert c["subject"] == "ü" * 255


def test_create_101_participants_422(conv):
    assert_validation(conv.post("/api/conversations", {"type": "group",
                                                       "participants": [unknown_uuid7() for _ in range(101)]}),
                      "participants")


def test_create_unknown_participant_422_names_it(conv, customers):
    a, b = customers(2)
    x, y = unknown_uuid7(), unknown_uuid7()
    r = conv.post("/api/conversations", {"type": "group", "participants": [a, x, b, y]})
    body = assert_validation(r, "participants")
    msgs = " ".join(body["errors"]["participants"])
    assert x in msgs and y in msgs and a not in msgs and b not in msgs, body
    r = conv.post("/api/conversations", {"type": "direct", "participants": [a, x]})
    assert x in " ".join(assert_validation(r, "participants")["errors"]["participants"])
    assert cpsql(f"SELECT count(*) FROM participants WHERE customer_id IN ('{a}', '{b}')") == "0"


@pytest.mark.parametrize("raw", [b'{"type": "group", "participants": [', b"not json", b"", b'{"type": "group",}',
                                 b'{"type": "group", "type": "direct", "participants": []}'])
def test_create_malformed_json_400(conv, raw):
    assert_error(conv.request("POST", "/api/conversations", raw=raw), 400)


@pytest.mark.parametrize("raw", [b"[]", b'"direct"', b"null", b"42"])
def test_create_non_object_body_422(conv, raw):
    assert_validation(conv.request("POST", "/api/conversations", raw=raw), "body")


def test_create_2mib_body_413(conv):
    raw = json.dumps({"type": "group", "participants": [], "subject": "x" * (2 * MIB)}).encode()
    assert_error(conv.request("POST", "/api/conversations", raw=raw), 413)


def test_create_wrong_content_type_415(conv, customers):
    raw = json.dumps({"type": "group", "participants": customers(2)}).encode()
    assert_error(conv.request("POST", "/api/conversations", raw=raw, content_type="text/plain"), 415)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_customer_svc_unreachable_503(customers):
    """A second conversation-svc on a free port whose customer-svc URL points at a closed port."""
    ids = customers(2)
    port, dead = free_port(), free_port()
    env = dict(os.environ, PORT=str(port), DATABASE_URL=CONV_DB_URL, PARLEY_CUSTOMER_URL=f"http://127.0.0.1:{dead}",
               KAFKA_BROKERS=ps.KAFKA_BROKERS, PARLEY_SERVICE_TOKEN=ps.SERVICE_TOKEN, PARLEY_LOG_LEVEL="warn")
    proc = subprocess.Popen([str(ps.ROOT / "build" / "bin" / "conversation-svc")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not ps.healthz_ok(base, timeout=1):
            assert proc.poll() is None, f"second instance exited: {proc.stderr.read()[-2000:]!r}"
            assert time.monotonic() < deadline, "second instance did not start"
            time.sleep(0.2)
        other = ps.Client(base)
        r = other.post("/api/conversations", {"type": "group", "participants": ids}, allow_5xx=True)
        assert_error(r, 503)
        a = other.post(f"/api/conversations/{unknown_uuid7()}/participants", {"customer_id": ids[0]},
                       allow_5xx=True)
        assert_error(a, 503)
        assert cpsql(f"SELECT count(*) FROM participants WHERE customer_id = '{ids[0]}'") == "0"
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    assert rc == 0, f"SIGTERM did not end the second instance cleanly (exit {rc})"


# ----------------------------------------------------------------------------------------------- get

def test_get_unknown_404(conv):
    r = conv.get(f"/api/conversations/{unknown_uuid7()}")
    assert assert_error(r, 404, "Not found")["error"] == "Not found"


@pytest.mark.parametrize("bad", MALFORMED_IDS)
def test_get_malformed_id_404(conv, bad):
    assert_error(conv.get(f"/api/conversations/{bad}"), 404, "Not found")


# ----------------------------------------------------------------------------------------------- list

def list_ok(conv, query):
    r = conv.get("/api/conversations?" + query)
    assert r.status == 200, r
    assert_json_response(r)
    assert ps.PAGINATOR_KEYS <= set(r.json), r
    for c in r.json["data"]:
        assert_conversation(c, participants="participants" in c)
    return r.json


def ids_of(body):
    return [c["id"] for c in body["data"]]


def test_list_filters_and_order(conv, customers):
    a, b, c = customers(3)
    g1 = create(conv, "group", [a, b])
    d1 = create(conv, "direct", [a, c])
    ch = create(conv, "channel", [a])
    g2 = create(conv, "group", [a, c])
    assert conv.patch(f"/api/conversations/{g2['id']}", {"status": "pending"}).status == 200
    assert conv.patch(f"/api/conversations/{ch['id']}", {"status": "closed"}).status == 200

    body = list_ok(conv, f"customer_id={a}")
    assert ids_of(body) == [g2["id"], ch["id"], d1["id"], g1["id"]], "newest activity first"
    assert body["total"] == 4 and body["per_page"] == 20 and body["current_page"] == 1
    assert body["data"][3] == get(conv, g1["id"]), "a list item equals the single GET"
    assert ids_of(list_ok(conv, f"customer_id={b}")) == [g1["id"]]
    assert ids_of(list_ok(conv, f"customer_id={c}&type=group")) == [g2["id"]]
    assert ids_of(list_ok(conv, f"customer_id={a}&type=direct")) == [d1["id"]]
    assert ids_of(list_ok(conv, f"customer_id={a}&status=open")) == [d1["id"], g1["id"]]
    assert ids_of(list_ok(conv, f"customer_id={a}&status=pending")) == [g2["id"]]
    assert ids_of(list_ok(conv, f"customer_id={a}&status=closed&type=channel")) == [ch["id"]]
    assert list_ok(conv, f"customer_id={unknown_uuid7()}")["data"] == []
    # a customer who left no longer finds the conversation
    assert conv.request("DELETE", f"/api/conversations/{g1['id']}/participants/{b}").status == 200
    assert list_ok(conv, f"customer_id={b}")["total"] == 0


def test_list_pagination(conv, customers):
    a, *others = customers(6)
    made = [create(conv, "group", [a, o])["id"] for o in others]
    newest = list(reversed(made))
    p1 = list_ok(conv, f"customer_id={a}&per_page=2")
    assert (p1["total"], p1["last_page"], p1["from"], p1["to"]) == (5, 3, 1, 2), p1
    assert p1["prev_page_url"] is None and "/api/v1/conversations?" in p1["next_page_url"]
    assert f"customer_id={a}" in p1["next_page_url"]
    p2 = list_ok(conv, f"customer_id={a}&per_page=2&page=2")
    p3 = list_ok(conv, f"customer_id={a}&per_page=2&page=3")
    assert ids_of(p1) + ids_of(p2) + ids_of(p3) == newest
    p4 = list_ok(conv, f"customer_id={a}&per_page=2&page=4")
    assert p4["data"] == [] and p4["total"] == 5


def test_list_default_page(conv):
    body = list_ok(conv, "")
    assert body["per_page"] == 20 and len(body["data"]) <= 20
    acts = [c["last_message_at"] or c["created_at"] for c in body["data"]]
    assert acts == sorted(acts, reverse=True), "newest activity first"


@pytest.mark.parametrize("query,field", [
    ("status=archived", "status"), ("status=OPEN", "status"), ("type=dm", "type"),
    ("customer_id=not-a-uuid", "customer_id"), ("customer_id=1", "customer_id"),
    ("per_page=0", "per_page"), ("per_page=201", "per_page"), ("page=0", "page"), ("page=x", "page"),
])
def test_list_invalid_filter_422(conv, query, field):
    assert_validation(conv.get("/api/conversations?" + query), field)


# ----------------------------------------------------------------------------------------------- patch

def test_patch_subject_metadata_status(conv, customers, events):
    cons = events()
    c = create(conv, "group", customers(2), subject="old", metadata={"a": 1, "b": 2})
    r = conv.patch(f"/api/conversations/{c['id']}", {"subject": "new", "metadata": {"a": None, "c": 3}})
    assert r.status == 200, r
    p = r.json
    assert_conversation(p)
    assert (p["subject"], p["metadata"], p["status"]) == ("new", {"b": 2, "c": 3}, "open")
    assert p["updated_at"] > c["updated_at"] and p["created_at"] == c["created_at"]
    assert p["participants"] == c["participants"]
    assert get(conv, c["id"]) == p
    r = conv.patch(f"/api/conversations/{c['id']}", {"subject": None})
    assert r.status == 200 and r.json["subject"] is None, r
    # no-op: nothing changes, not even updated_at
    same = conv.patch(f"/api/conversations/{c['id']}", {"metadata": {"zz": None}, "status": "open"})
    assert same.status == 200 and same.json == r.json, same
    pend = conv.patch(f"/api/conversations/{c['id']}", {"status": "pending"})
    assert pend.status == 200 and pend.json["status"] == "pending"
    rid = new_request_id()
    closed = conv.patch(f"/api/conversations/{c['id']}", {"status": "closed"}, request_id=rid)
    assert closed.status == 200 and closed.json["status"] == "closed", closed
    again = conv.patch(f"/api/conversations/{c['id']}", {"status": "closed", "subject": "after"})
    assert again.status == 200 and again.json["subject"] == "after"
    ev = cons.wait_for(CLOSED, lambda e: e.key == c["id"])[0]
    assert_envelope(ev, CLOSED, c["id"], trace_id=rid, payload=closed.json)
    cons.settle(1.0)
    assert len(cons.matching(CLOSED, lambda e: e.key == c["id"])) == 1, "closing a closed conversation re-emitted"
    # reopen and close again: a second close is a second event
    assert conv.patch(f"/api/conversations/{c['id']}", {"status": "open"}).status == 200
    assert conv.patch(f"/api/conversations/{c['id']}", {"status": "closed"}).status == 200
    cons.wait_for(CLOSED, lambda e: e.key == c["id"], n=2)


@pytest.mark.parametrize("body,field", [
    ({"status": "archived"}, "status"), ({"status": None}, "status"), ({"status": 1}, "status"),
    ({"subject": 1}, "subject"), ({"subject": "x" * 256}, "subject"),
    ({"metadata": [1]}, "metadata"), ({"metadata": {"blob": "x" * 16384}}, "metadata"),
])
def test_patch_invalid_422(conv, customers, body, field):
    c = create(conv, "group", customers(2))
    assert_validation(conv.patch(f"/api/conversations/{c['id']}", body), field)
    assert get(conv, c["id"]) == c


def test_patch_metadata_cannot_grow_past_16kib(conv, customers):
    c = create(conv, "group", customers(2), metadata={"a": "x" * 9000})
    r = conv.patch(f"/api/conversations/{c['id']}", {"metadata": {"b": "y" * 9000}})
    assert_validation(r, "metadata")
    assert get(conv, c["id"]) == c


def test_patch_unknown_and_malformed_404(conv):
    assert_error(conv.patch(f"/api/conversations/{unknown_uuid7()}", {"status": "closed"}), 404, "Not found")
    for bad in MALFORMED_IDS:
        assert_error(conv.patch(f"/api/conversations/{bad}", {"status": "closed"}), 404, "Not found")


def test_patch_malformed_json_400(conv, customers):
    c = create(conv, "group", customers(2))
    assert_error(conv.request("PATCH", f"/api/conversations/{c['id']}", raw=b'{"status": '), 400)


def test_patch_2mib_body_413(conv, customers):
    c = create(conv, "group", customers(2))
    raw = json.dumps({"subject": "x" * (2 * MIB)}).encode()
    assert_error(conv.request("PATCH", f"/api/conversations/{c['id']}", raw=raw), 413)


# ----------------------------------------------------------------------------------------------- participants

def test_add_remove_rejoin_participant(conv, customers, events):
    cons = events()
    a, b, x = customers(3)
    c = create(conv, "group", [a, b])
    rid = new_request_id()
    r = conv.post(f"/api/conversations/{c['id']}/participants", {"customer_id": x, "role": "admin"}, request_id=rid)
    assert r.status == 201, r
    p = r.json
    assert_participant(p, c["id"])
    assert (p["customer_id"], p["role"], p["left_at"]) == (x, "admin", None)
    assert get(conv, c["id"])["participants"][-1] == p
    ev = cons.wait_for(ADDED, lambda e: e.key == c["id"] and e.trace_id == rid)[0]
    assert_envelope(ev, ADDED, c["id"], trace_id=rid, payload=p)

    # already active: 200 with the existing participant, nothing emitted, role unchanged
    r2 = conv.post(f"/api/conversations/{c['id']}/participants", {"customer_id": x, "role": "owner"})
    assert r2.status == 200 and r2.json == p, r2

    g = conv.get(f"/api/conversations/{c['id']}/participants/{x}")
    assert g.status == 200 and g.json == p, g

    rid = new_request_id()
    d = conv.request("DELETE", f"/api/conversations/{c['id']}/participants/{x}", request_id=rid)
    assert d.status == 200, d
    left = d.json
    assert_participant(left, c["id"])
    assert left["id"] == p["id"] and left["left_at"] is not None and left["left_at"] >= left["joined_at"]
    ev = cons.wait_for(REMOVED, lambda e: e.key == c["id"])[0]
    assert_envelope(ev, REMOVED, c["id"], trace_id=rid, payload=left)
    assert [q for q in get(conv, c["id"])["participants"] if q["customer_id"] == x] == [left]

    d2 = conv.request("DELETE", f"/api/conversations/{c['id']}/participants/{x}")
    assert_error(d2, 404, "Not found")
    assert d2.json["message"] == "participant not found"
    g = conv.get(f"/api/conversations/{c['id']}/participants/{x}")
    assert_error(g, 404, "Not found")
    assert g.json["message"] == "participant not found"

    # rejoin: same row, active again, role as asked (default member), a new added event
    rid = new_request_id()
    r3 = conv.post(f"/api/conversations/{c['id']}/participants", {"customer_id": x}, request_id=rid)
    assert r3.status == 201, r3
    back = r3.json
    assert back["id"] == p["id"] and back["left_at"] is None and back["role"] == "member"
    assert back["joined_at"] > p["joined_at"]
    ev = cons.wait_for(ADDED, lambda e: e.key == c["id"] and e.trace_id == rid)[0]
    assert_envelope(ev, ADDED, c["id"], payload=back)
    full = get(conv, c["id"])
    assert active(full) == [a, b, x] and len(full["participants"]) == 3
    cons.settle(1.0)
    assert len(cons.matching(ADDED, lambda e: e.key == c["id"])) == 4, "2 at create, 1 add, 1 rejoin"
    assert len(cons.matching(REMOVED, lambda e: e.key == c["id"])) == 1


def test_concurrent_adds_of_one_customer_one_row(conv, customers, events):
    cons = events()
    a, b, x = customers(3)
    c = create(conv, "group", [a, b])
    n = 8
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait()
        return ps.Client(CONV_URL).post(f"/api/conversations/{c['id']}/participants", {"customer_id": x})

    with ThreadPoolExecutor(max_workers=n) as ex:
        rs = list(ex.map(one, range(n)))
    assert sorted(r.status for r in rs) == [200] * (n - 1) + [201], rs
    assert len({r.json["id"] for r in rs}) == 1
    assert cpsql(f"SELECT count(*) FROM participants WHERE conversation_id = '{c['id']}'") == "3"
    cons.wait_for(ADDED, lambda e: e.key == c["id"], n=3)
    cons.settle(1.0)
    assert len(cons.matching(ADDED, lambda e: e.key == c["id"])) == 3


def test_get_participant_contract_for_messaging(conv, customers):
    a, b, x = customers(3)
    c = create(conv, "group", [a, b])
    r = conv.get(f"/api/conversations/{c['id']}/participants/{a}")
    assert r.status == 200 and r.json == c["participants"][0], r
    assert conv.get(f"/api/conversations/{c['id']}/participants/{a.upper()}").json == r.json
    for path, message in [
        (f"/api/conversations/{c['id']}/participants/{x}", "participant not found"),
        (f"/api/conversations/{c['id']}/participants/not-a-uuid", "participant not found"),
        (f"/api/conversations/{unknown_uuid7()}/participants/{a}", "conversation not found"),
        (f"/api/conversations/not-a-uuid/participants/{a}", "conversation not found"),
    ]:
        body = assert_error(conv.get(path), 404, "Not found")
        assert body["message"] == message, (path, body)


@pytest.mark.parametrize("body,field", [
    ({}, "customer_id"), ({"customer_id": None}, "customer_id"), ({"customer_id": 5}, "customer_id"),
    ({"customer_id": "not-a-uuid"}, "customer_id"), ({"customer_id": "{x}", "role": "boss"}, "role"),
    ({"customer_id": "{x}", "role": 1}, "role"), ({"customer_id": "{x}", "role": None}, "role"),
])
def test_add_participant_invalid_422(conv, customers, body, field):
    a, b, x = customers(3)
    c = create(conv, "group", [a, b])
    raw = json.dumps(body).replace("{x}", x).encode()
    assert_validation(conv.request("POST", f"/api/conversations/{c['id']}/participants", raw=raw), field)
    assert get(conv, c["id"]) == c


def test_add_unknown_customer_422(conv, customers):
    c = create(conv, "group", customers(2))
    x = unknown_uuid7()
    body = assert_validation(conv.post(f"/api/conversations/{c['id']}/participants", {"customer_id": x}),
                             "customer_id")
    assert x in " ".join(body["errors"]["customer_id"])
    assert get(conv, c["id"]) == c


def test_add_to_unknown_or_malformed_conversation_404(conv, customers):
    (x,) = customers(1)
    for cid in [unknown_uuid7(), *MALFORMED_IDS]:
        r = conv.post(f"/api/conversations/{cid}/participants", {"customer_id": x})
        assert assert_error(r, 404, "Not found")["message"] == "conversation not found", r


def test_remove_unknown_or_malformed_404(conv, customers):
    a, b = customers(2)
    c = create(conv, "group", [a, b])
    body = assert_error(conv.request("DELETE", f"/api/conversations/{unknown_uuid7()}/participants/{a}"), 404)
    assert body["message"] == "conversation not found"
    body = assert_error(conv.request("DELETE", f"/api/conversations/{c['id']}/participants/{unknown_uuid7()}"), 404)
    assert body["message"] == "participant not found"
    for bad in MALFORMED_IDS:
        assert_error(conv.request("DELETE", f"/api/conversations/{bad}/participants/{a}"), 404, "Not found")
        assert_error(conv.request("DELETE", f"/api/conversations/{c['id']}/participants/{bad}"), 404, "Not found")
    assert get(conv, c["id"]) == c


def test_direct_participants_are_fixed_409(conv, customers):
    a, b, x = customers(3)
    d = create(conv, "direct", [a, b])
    assert_error(conv.post(f"/api/conversations/{d['id']}/participants", {"customer_id": x}), 409)
    assert_error(conv.request("DELETE", f"/api/conversations/{d['id']}/participants/{a}"), 409)
    assert_error(conv.request("DELETE", f"/api/conversations/{d['id']}/participants/{x}"), 404)
    assert get(conv, d["id"]) == d


def test_add_participant_malformed_json_400_and_413(conv, customers):
    c = create(conv, "group", customers(2))
    assert_error(conv.request("POST", f"/api/conversations/{c['id']}/participants", raw=b"{"), 400)
    raw = json.dumps({"customer_id": "x" * (2 * MIB)}).encode()
    assert_error(conv.request("POST", f"/api/conversations/{c['id']}/participants", raw=raw), 413)


# ----------------------------------------------------------------------------------------------- last_message_at

def kcat_produce(topic, key, value):
    p = subprocess.run(["kcat", "-P", "-b", ps.KAFKA_BROKERS, "-t", topic, "-k", key],
                       input=value, text=True, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr


def message_event(topic, conversation_id, created_at):
    env = {"event_id": str(uuid.uuid4()), "topic": topic, "source_service": "messaging-svc",
           "occurred_at": created_at, "trace_id": "sys-test", "schema_version": 1, "key": conversation_id,
           "payload": {"id": str(uuid.uuid4()), "conversation_id": conversation_id, "created_at": created_at}}
    return json.dumps(env)


def ts(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wait_last_message_at(conv, cid, expect, timeout=45):
    deadline = time.monotonic() + timeout
    while True:
        got = get(conv, cid)["last_message_at"]
        if got == expect:
            return
        assert time.monotonic() < deadline, f"last_message_at of {cid} is {got!r}, expected {expect!r}"
        time.sleep(0.3)


def test_last_message_at_follows_message_events(conv, customers):
    a, b = customers(2)
    older = create(conv, "group", [a, b])
    c = create(conv, "group", [a, b])
    base = datetime.now(timezone.utc) + timedelta(days=1)
    t1, t0, t2 = ts(base), ts(base - timedelta(hours=1)), ts(base + timedelta(seconds=1, microseconds=123))

    # an unknown conversation and a broken message must not stall the partition
    for junk in ("not json", json.dumps({"payload": {"conversation_id": "nope"}})):
        kcat_produce("message.inbound.created", older["id"], junk)
    for bad_time in ("infinity", "yesterday", "2026-11-23T10:00:00", "2026-13-45T10:00:00Z", None, 17):
        kcat_produce("message.inbound.created", older["id"],
                     message_event("message.inbound.created", older["id"], bad_time))
    kcat_produce("message.inbound.created", unknown_uuid7(),
                 message_event("message.inbound.created", unknown_uuid7(), t1))
    kcat_produce("message.inbound.created", older["id"], message_event("message.inbound.created", older["id"], t1))
    wait_last_message_at(conv, older["id"], t1)

    ev = message_event("message.outbound.created", c["id"], t1)
    kcat_produce("message.outbound.created", c["id"], ev)
    wait_last_message_at(conv, c["id"], t1)
    before = get(conv, c["id"])
    assert before["updated_at"] == c["updated_at"], "last_message_at is not a user change"

    # replay and an older message change nothing; a newer one moves it forward
    kcat_produce("message.outbound.created", c["id"], ev)
    kcat_produce("message.inbound.created", c["id"], message_event("message.inbound.created", c["id"], t0))
    kcat_produce("message.inbound.created", c["id"], message_event("message.inbound.created", c["id"], t2))
    wait_last_message_at(conv, c["id"], t2)
    kcat_produce("message.inbound.created", c["id"], message_event("message.inbound.created", c["id"], t1))
    # fence: a later event for the other conversation on the same key's partition is applied after it
    t3 = ts(base + timedelta(seconds=5))
    kcat_produce("message.inbound.created", c["id"], message_event("message.inbound.created", older["id"], t3))
    wait_last_message_at(conv, older["id"], t3)
    assert get(conv, c["id"])["last_message_at"] == t2

    # newest activity first: the conversation with the newer message leads the list
    body = list_ok(conv, f"customer_id={a}")
    assert ids_of(body)[:2] == [older["id"], c["id"]]


# ----------------------------------------------------------------------------------------------- auth / routing

@pytest.mark.parametrize("token", [None, "", "wrong", "Bearer dev-service-token"])
@pytest.mark.parametrize("method,path", [
    ("GET", "/api/conversations"), ("POST", "/api/conversations"), ("GET", "/api/conversations/{id}"),
    ("PATCH", "/api/conversations/{id}"), ("POST", "/api/conversations/{id}/participants"),
    ("GET", "/api/conversations/{id}/participants/{id}"), ("DELETE", "/api/conversations/{id}/participants/{id}"),
])
def test_401_without_valid_token(conv, token, method, path):
    path = path.replace("{id}", unknown_uuid7())
    kw = {"json_body": {"type": "group", "participants": []}} if method in ("POST", "PATCH") else {}
    r = conv.request(method, path, token=token, **kw)
    assert r.status == 401, r
    assert r.json == UNAUTHORIZED


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_need_no_token(conv, path):
    assert conv.get(path, token=None).status == 200


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/api/conversations/{id}", {"GET", "PATCH"}),
    ("PUT", "/api/conversations", {"GET", "POST"}),
    ("GET", "/api/conversations/{id}/participants", {"POST"}),
    ("PATCH", "/api/conversations/{id}/participants/{id}", {"GET", "DELETE"}),
])
def test_wrong_method_405(conv, method, path, allowed):
    r = conv.request(method, path.replace("{id}", unknown_uuid7()))
    assert_error(r, 405)
    got = {m.strip() for m in (r.header("Allow") or "").split(",")}
    assert allowed <= got and method not in got, r
