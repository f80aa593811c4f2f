"""messaging-svc (SPEC 4.3, 10): every route against the running service, conversation-svc, Kafka and PostgreSQL.

Conversations are made through the real conversation-svc (POST /api/conversations) with customers made on
customer-svc, so the participant check runs end to end.
"""

import concurrent.futures
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

import parley_sys as ps
from parley_sys import assert_error, assert_json_response, assert_validation, new_request_id, uniq

MESSAGING_URL = os.environ.get("PARLEY_MESSAGING_URL", "http://127.0.0.1:8003")
CONVERSATION_URL = os.environ.get("PARLEY_CONVERSATION_URL", "http://127.0.0.1:8002")
MESSAGING_DB_URL = os.environ.get(
    "PARLEY_TEST_MESSAGING_DATABASE_URL", "postgresql://parley:parley@127.0.0.1:55432/parley_messaging")

OUT_CREATED = "message.outbound.created"
IN_CREATED = "message.inbound.created"
UPDATED = "message.updated"
STATUS = "message.status.updated"
MESSAGE_TOPICS = (OUT_CREATED, IN_CREATED, UPDATED, STATUS)

MESSAGE_KEYS = [
    "id", "conversation_id", "seq", "version", "sender_customer_id", "direction", "channel", "body",
    "content_type", "media_id", "external_message_id", "status", "status_updated_at", "error", "metadata",
    "sent_at", "created_at", "updated_at",
]
STATUS_KEYS = ["message_id", "conversation_id", "status", "previous_status", "external_message_id", "error"]
MALFORMED_IDS = [
    "not-a-uuid", "123", "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4", "0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3cXY",
    "0190f0c21c7e7a4b8c3d9e0f1a2b3c4d", "%27%3B%20DROP%20TABLE%20messages%3B%20--",
]
ERROR_OBJ = {"provider": "whatsapp", "code": "131026", "message": "Message undeliverable", "retryable": False}


def unknown_uuid7():
    h = uuid.uuid4().hex
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def mpsql(sql):
    return ps.psql(sql, url=MESSAGING_DB_URL)


# ----------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def services_up():
    for name, url in (("messaging-svc", MESSAGING_URL), ("conversation-svc", CONVERSATION_URL)):
        assert ps.healthz_ok(url, timeout=5), f"{name} does not answer {url}/healthz (deploy/local/up.sh?)"
    mpsql("SELECT 1")


@pytest.fixture
def api():
    return ps.Client(MESSAGING_URL)


@pytest.fixture
def kafka():
    for topic in MESSAGE_TOPICS:
        ps.topic_partitions(topic)
    return lambda topics=MESSAGE_TOPICS: ps.Consumer(topics)


def new_conversation(n=2):
    """A fresh conversation with n new customers: returns (conversation_id, [customer ids])."""
    customers = [ps.create_customer(ps.Client(ps.CUSTOMER_URL))["id"] for _ in range(n)]
    body = {"type": "direct" if n == 2 else "group", "participants": customers}
    r = ps.Client(CONVERSATION_URL).post("/api/conversations", body)
    assert r.status == 201, r
    return r.json["id"], customers


@pytest.fixture
def conv():
    return new_conversation()


def msg_body(conv, direction="outbound", **fields):
    cid, customers = conv
    body = {"conversation_id": cid, "sender_customer_id": customers[0], "direction": direction,
            "body": uniq("hello")}
    body.update(fields)
    return body


def create(api, conv, expect=201, headers=None, request_id=None, **fields):
    r = api.post("/api/messages", msg_body(conv, **fields), headers=headers, request_id=request_id)
    assert r.status == expect, r
    assert_message(r.json)
    return r.json


def put(api, path, body, **kw):
    return api.request("PUT", path, json_body=body, **kw)


def assert_message(m):
    assert isinstance(m, dict), m
    assert list(m.keys()) == MESSAGE_KEYS, f"message keys/order {list(m.keys())}"
    assert ps.UUID7_RE.match(m["id"]), m
    assert type(m["seq"]) is int and m["seq"] >= 1, m
    assert type(m["version"]) is int and m["version"] >= m["seq"], m
    assert m["direction"] in ("inbound", "outbound", "system"), m
    assert isinstance(m["metadata"], dict), m
    for k in ("status_updated_at", "created_at", "updated_at"):
        assert ps.TS_RE.match(m[k]), f"{k}: {m[k]!r}"
    assert m["sent_at"] is None or ps.TS_RE.match(m["sent_at"]), m


def assert_msg_envelope(ev, topic, key, payload, trace_id=None):
    env = ev.env
    assert isinstance(env, dict) and set(env) == ps.ENVELOPE_KEYS, ev
    assert ev.topic == topic and env["topic"] == topic, ev
    assert ev.key == key and env["key"] == key, f"Kafka key {ev.key!r} != {key!r}"
    assert env["source_service"] == "messaging-svc", ev
    assert env["schema_version"] == 1 and ps.UUID_RE.match(env["event_id"]), ev
    assert ps.TS_RE.match(env["occurred_at"]), ev
    if trace_id is not None:
        assert env["trace_id"] == trace_id, ev
    assert env["payload"] == payload, f"payload differs from the API body:\n{env['payload']}\n{payload}"
    assert list(env["payload"]) == list(payload), "payload key order differs"


def list_all_seqs(api, cid):
    r = api.get(f"/api/conversations/{cid}/messages?after_seq=0&limit=200")
    assert r.status == 200, r
    return [m["seq"] for m in r.json["data"]]


# ----------------------------------------------------------------------------------------------- create

def test_create_outbound_201_queued_with_event(api, kafka, conv):
    cons = kafka()
    rid = new_request_id()
    fields = {"channel": "whatsapp", "external_message_id": uniq("wamid"), "content_type": "image",
              "media_id": unknown_uuid7(), "metadata": {"a": [1, {"b": None}], "caption": "ünï"}}
    m = create(api, conv, request_id=rid, **fields)
    cid, customers = conv
    assert (m["conversation_id"], m["sender_customer_id"], m["direction"]) == (cid, customers[0], "outbound")
    assert (m["seq"], m["version"], m["status"], m["error"], m["sent_at"]) == (1, 1, "queued", None, None)
    for k, v in fields.items():
        assert m[k] == v, k
    assert m["status_updated_at"] == m["created_at"] == m["updated_at"]
    r = api.get(f"/api/messages/{m['id']}")
    assert r.status == 200 and r.json == m, r
    assert_json_response(r)
    ev = cons.wait_for(OUT_CREATED, lambda e: e.env["payload"]["id"] == m["id"])[0]
    assert_msg_envelope(ev, OUT_CREATED, cid, m, trace_id=rid)
    cons.settle(0.5)
    assert cons.matching(IN_CREATED, lambda e: e.env["payload"]["id"] == m["id"]) == []


@pytest.mark.parametrize("direction", ["inbound", "system"])
def test_create_inbound_and_system_received_with_inbound_event(api, kafka, conv, direction):
    cons = kafka()
    m = create(api, conv, direction=direction, sender_customer_id=conv[1][1])
    assert m["status"] == "received" and m["direction"] == direction and m["sender_customer_id"] == conv[1][1]
    ev = cons.wait_for(IN_CREATED, lambda e: e.env["payload"]["id"] == m["id"])[0]
    assert_msg_envelope(ev, IN_CREATED, conv[0], m)


def test_create_defaults(api, conv):
    cid, customers = conv
    r = api.post("/api/messages", {"conversation_id": cid, "sender_customer_id": customers[1],
                                   "direction": "inbound", "unknown": 1})
    assert r.status == 201, r
    m = r.json
    assert_message(m)
    assert (m["body"], m["content_type"], m["metadata"], m["channel"], m["media_id"], m["external_message_id"]) == (
        "", "text", {}, None, None, None)
    r = api.post("/api/messages", msg_body(conv, body="", channel=None, metadata=None, content_type=None))
    assert r.status == 201 and r.json["body"] == "" and r.json["content_type"] == "text", r


def test_body_limit_counts_characters(api, conv):
    m = create(api, conv, body="é" * 65536)
    assert len(m["body"]) == 65536
    r = api.post("/api/messages", msg_body(conv, body="x" * 70 * 1024))
    assert_validation(r, "body")
    r = api.post("/api/messages", msg_body(conv, body="😀" * 65537))
    assert_validation(r, "body")


@pytest.mark.parametrize("field,value", [
    ("conversation_id", "not-a-uuid"), ("conversation_id", None), ("conversation_id", 5),
    ("sender_customer_id", "123"), ("sender_customer_id", None),
    ("direction", "sideways"), ("direction", None), ("direction", 1),
    ("body", 12), ("body", None), ("body", ["x"]),
    ("content_type", "photo"), ("content_type", "x" * 65),
    ("channel", "c" * 65), ("channel", ""), ("channel", 3),
    ("media_id", "nope"), ("external_message_id", "e" * 256), ("external_message_id", ""),
    ("metadata", "str"), ("metadata", [1]), ("metadata", {"k": "v" * 16400}),
])
def test_create_invalid_field_422(api, conv, field, value):
    body = msg_body(conv)
    body[field] = value
    before = mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = '{conv[0]}'")
    assert_validation(api.post("/api/messages", body), field)
    assert mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = '{conv[0]}'") == before


@pytest.mark.parametrize("field", ["conversation_id", "sender_customer_id", "direction"])
def test_create_missing_required_422(api, conv, field):
    body = msg_body(conv)
    del body[field]
    assert_validation(api.post("/api/messages", body), field)


@pytest.mark.parametrize("raw,status", [(b"{", 400), (b"[]", 422), (b'"x"', 422), (b"\xff\xfe", 400)])
def test_create_malformed_body(api, raw, status):
    r = api.post("/api/messages", raw=raw)
    assert_error(r, status)


def test_unknown_conversation_422(api, conv):
    r = api.post("/api/messages", msg_body(conv, conversation_id=unknown_uuid7()))
    body = assert_validation(r, "conversation_id", only=["sender_customer_id"])
    assert body["errors"]["conversation_id"]


def test_non_participant_sender_422(api, conv):
    stranger = ps.create_customer(ps.Client(ps.CUSTOMER_URL))["id"]
    r = api.post("/api/messages", msg_body(conv, sender_customer_id=stranger))
    assert_validation(r, "sender_customer_id", only=["conversation_id"])
    r = api.post("/api/messages", msg_body(conv, sender_customer_id=unknown_uuid7()))
    assert_validation(r, "sender_customer_id")
    assert mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = '{conv[0]}'") == "0"


def test_external_message_id_repeat_returns_first_200_no_event(api, kafka, conv):
    cons = kafka()
    ext = uniq("wamid")
    m1 = create(api, conv, channel="whatsapp", external_message_id=ext, direction="inbound")
    m2 = create(api, conv, expect=200, channel="whatsapp", external_message_id=ext, direction="inbound",
                body="different")
    assert m2 == m1
    # same provider id on another channel, or without a channel, is a different message
    m3 = create(api, conv, channel="telegram", external_message_id=ext)
    m4 = create(api, conv, external_message_id=ext)
    assert (m3["seq"], m4["seq"]) == (2, 3), "the repeat must not consume a seq"
    cons.wait_for(IN_CREATED, lambda e: e.env["payload"]["id"] == m1["id"])
    cons.wait_for(OUT_CREATED, lambda e: e.env["payload"]["id"] == m4["id"])
    cons.settle(0.5)
    assert len(cons.matching(IN_CREATED, lambda e: e.key == conv[0])) == 1


def test_concurrent_external_repeats_make_one_message(api, conv):
    ext = uniq("wamid")
    body = msg_body(conv, channel="whatsapp", external_message_id=ext)
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        rs = list(ex.map(lambda _: api.post("/api/messages", body), range(10)))
    assert sorted(r.status for r in rs) == [200] * 9 + [201], rs
    assert len({r.json["id"] for r in rs}) == 1
    assert list_all_seqs(api, conv[0]) == [1]


def test_50_concurrent_creates_get_seq_1_to_50(api, conv):
    cid, customers = conv
    bodies = [msg_body(conv, body=f"m{i}", sender_customer_id=customers[i % 2]) for i in range(50)]
    with concurrent.futures.ThreadPoolExecutor(50) as ex:
        rs = list(ex.map(lambda b: api.post("/api/messages", b), bodies))
    assert all(r.status == 201 for r in rs), [r for r in rs if r.status != 201][:3]
    assert sorted(r.json["seq"] for r in rs) == list(range(1, 51))
    assert sorted(r.json["version"] for r in rs) == list(range(1, 51))
    assert list_all_seqs(api, cid) == list(range(1, 51))
    assert mpsql(f"SELECT count(DISTINCT seq), min(seq), max(seq) FROM messages WHERE conversation_id = '{cid}'") \
        == "50|1|50"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_conversation_svc_unreachable_503(conv, tmp_path):
    """A second messaging-svc whose conversation-svc URL points at a closed port answers 503, stores nothing."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATABASE_URL=MESSAGING_DB_URL,
               PARLEY_CONVERSATION_URL=f"http://127.0.0.1:{free_port()}", PARLEY_LOG_LEVEL="warn")
    log = open(tmp_path / "messaging-svc.log", "wb")
    proc = subprocess.Popen([str(ps.ROOT / "build" / "bin" / "messaging-svc")], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while not ps.healthz_ok(f"http://127.0.0.1:{port}", timeout=1):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "messaging-svc.log").read_text()
            time.sleep(0.1)
        r = ps.Client(f"http://127.0.0.1:{port}").post("/api/messages", msg_body(conv), allow_5xx=True)
        assert_error(r, 503)
        assert mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = '{conv[0]}'") == "0"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


# ----------------------------------------------------------------------------------------------- idempotency

def test_idempotency_replays_first_response(api, kafka, conv):
    cons = kafka()
    key = uniq("idem")
    body = msg_body(conv)
    r1 = api.post("/api/messages", body, headers={"Idempotency-Key": key})
    assert r1.status == 201, r1
    # same request, keys in another order: replayed byte for byte
    r2 = api.post("/api/messages", dict(reversed(list(body.items()))), headers={"Idempotency-Key": key})
    assert (r2.status, r2.body) == (201, r1.body), r2
    assert r1.header("Idempotent-Replayed") is None and r2.header("Idempotent-Replayed") == "true"
    assert mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = '{conv[0]}'") == "1"
    assert mpsql(f"SELECT status, body = {ps.sql_lit(r1.body.decode())} FROM idempotency WHERE key = "
                 f"{ps.sql_lit(':' + key)}") == "201|t"
    r3 = api.post("/api/messages", dict(body, body="other"), headers={"Idempotency-Key": key})
    assert_validation(r3, "Idempotency-Key")
    cons.wait_for(OUT_CREATED, lambda e: e.key == conv[0])
    cons.settle(0.5)
    assert len(cons.matching(OUT_CREATED, lambda e: e.key == conv[0])) == 1


def test_idempotency_10_concurrent_same_key_one_row(api, conv):
    key = uniq("idem")
    body = msg_body(conv)
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        rs = list(ex.map(lambda _: api.post("/api/messages", body, headers={"Idempotency-Key": key}), range(10)))
    assert all(r.status == 201 for r in rs), rs
    assert len({r.body for r in rs}) == 1
    assert sum(r.header("Idempotent-Replayed") == "true" for r in rs) == 9
    assert mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = '{conv[0]}'") == "1"
    assert mpsql(f"SELECT count(*) FROM idempotency WHERE key = {ps.sql_lit(':' + key)}") == "1"


def test_idempotency_key_is_scoped_per_caller(api, conv):
    """One key sent by two API keys (the gateway's X-Parley-Key-Id) makes two messages."""
    key = uniq("idem")
    body = msg_body(conv)
    a1 = api.post("/api/messages", body, headers={"Idempotency-Key": key, "X-Parley-Key-Id": "aaaa-1"})
    b1 = api.post("/api/messages", body, headers={"Idempotency-Key": key, "X-Parley-Key-Id": "bbbb-2"})
    a2 = api.post("/api/messages", body, headers={"Idempotency-Key": key, "X-Parley-Key-Id": "aaaa-1"})
    assert (a1.status, b1.status, a2.status) == (201, 201, 201)
    assert a1.json["id"] != b1.json["id"]
    assert a2.body == a1.body and a2.header("Idempotent-Replayed") == "true"
    assert mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = '{conv[0]}'") == "2"


def test_idempotency_stores_200_of_external_repeat(api, conv):
    ext = uniq("wamid")
    first = create(api, conv, channel="whatsapp", external_message_id=ext)
    key = uniq("idem")
    body = msg_body(conv, channel="whatsapp", external_message_id=ext)
    r1 = api.post("/api/messages", body, headers={"Idempotency-Key": key})
    r2 = api.post("/api/messages", body, headers={"Idempotency-Key": key})
    assert r1.status == r2.status == 200 and r1.json == r2.json == first


def test_idempotency_expired_key_is_reused(api, conv):
    key = uniq("idem")
    body = msg_body(conv)
    r1 = api.post("/api/messages", body, headers={"Idempotency-Key": key})
    assert r1.status == 201, r1
    mpsql(f"UPDATE idempotency SET created_at = now() - interval '25 hours' WHERE key = {ps.sql_lit(':' + key)}")
    r2 = api.post("/api/messages", dict(body, body="new"), headers={"Idempotency-Key": key})
    assert r2.status == 201 and r2.json["id"] != r1.json["id"] and r2.json["seq"] == 2, r2


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "ünï"])
def test_idempotency_key_malformed_422(api, conv, key):
    r = api.request("POST", "/api/messages", raw=None, json_body=msg_body(conv),
                    headers={"Idempotency-Key": key.encode().decode("latin-1")})
    assert_validation(r, "Idempotency-Key")


# ----------------------------------------------------------------------------------------------- edit

def test_edit_body_history_event_and_version(api, kafka, conv):
    cons = kafka()
    m = create(api, conv, body="v1")
    other = create(api, conv)
    editor = conv[1][1]
    rid = new_request_id()
    r = put(api, f"/api/messages/{m['id']}", {"body": "v2", "edited_by": editor}, request_id=rid)
    assert r.status == 200, r
    e1 = r.json
    assert_message(e1)
    assert (e1["body"], e1["seq"], e1["version"], e1["status"]) == ("v2", 1, 3, "queued")
    assert e1["updated_at"] > m["updated_at"] and e1["created_at"] == m["created_at"]
    assert e1["status_updated_at"] == m["status_updated_at"]
    e2 = put(api, f"/api/messages/{m['id']}", {"body": "v3"}).json
    assert e2["version"] == 4
    same = put(api, f"/api/messages/{m['id']}", {"body": "v3"})
    assert same.status == 200 and same.json == e2, "an edit to the same body changes nothing"
    assert api.get(f"/api/messages/{m['id']}").json == e2
    assert api.get(f"/api/messages/{other['id']}").json == other
    h = api.get(f"/api/messages/{m['id']}/history")
    assert h.status == 200, h
    assert_json_response(h)
    hist = h.json["data"]
    assert [list(x) for x in hist] == [["body", "previous_body", "edited_at", "edited_by"]] * 2
    assert [(x["body"], x["previous_body"], x["edited_by"]) for x in hist] == [("v2", "v1", editor),
                                                                                ("v3", "v2", None)]
    assert hist[0]["edited_at"] == e1["updated_at"] and ps.TS_RE.match(hist[1]["edited_at"])
    evs = cons.wait_for(UPDATED, lambda e: e.key == conv[0], n=2)
    assert_msg_envelope(evs[0], UPDATED, conv[0], e1, trace_id=rid)
    assert_msg_envelope(evs[1], UPDATED, conv[0], e2)
    cons.settle(0.5)
    assert len(cons.matching(UPDATED, lambda e: e.key == conv[0])) == 2
    assert cons.matching(STATUS, lambda e: e.key == conv[0]) == []


def test_history_empty_and_unknown(api, conv):
    m = create(api, conv)
    r = api.get(f"/api/messages/{m['id']}/history")
    assert r.status == 200 and r.json == {"data": []}, r
    assert_error(api.get(f"/api/messages/{unknown_uuid7()}/history"), 404)


@pytest.mark.parametrize("body,field", [
    ({}, "status"), ({"body": 1}, "body"), ({"body": None}, "body"), ({"body": "x" * 65537}, "body"),
    ({"body": "x", "edited_by": "bob"}, "edited_by"), ({"status": "bogus"}, "status"), ({"status": 3}, "status"),
    ({"status": "failed"}, "error"), ({"status": "failed", "error": "boom"}, "error"),
])
def test_update_invalid_422(api, conv, body, field):
    m = create(api, conv)
    assert_validation(put(api, f"/api/messages/{m['id']}", body), field)
    assert api.get(f"/api/messages/{m['id']}").json == m


# ----------------------------------------------------------------------------------------------- status

def test_outbound_status_forward_only_with_events(api, kafka, conv):
    cons = kafka()
    m = create(api, conv, channel="whatsapp", external_message_id=uniq("wamid"))
    path = f"/api/messages/{m['id']}"
    seen = [m]
    for st in ("sent", "delivered", "read"):
        r = put(api, path, {"status": st})
        assert r.status == 200 and r.json["status"] == st, r
        assert r.json["version"] == seen[-1]["version"] + 1
        assert r.json["status_updated_at"] > seen[-1]["status_updated_at"]
        seen.append(r.json)
    assert seen[1]["sent_at"] == seen[1]["status_updated_at"] == seen[3]["sent_at"]
    # regressions and repeats: 200, unchanged, no event
    for st in ("delivered", "sent", "queued", "read", "played", "failed"):
        body = {"status": st, "error": ERROR_OBJ} if st == "failed" else {"status": st}
        r = put(api, path, body)
        assert r.status == 200 and r.json == seen[-1], (st, r)
    evs = cons.wait_for(STATUS, lambda e: e.key == conv[0], n=3)
    prev = ["queued", "sent", "delivered"]
    for i, ev in enumerate(evs):
        payload = {"message_id": m["id"], "conversation_id": conv[0], "status": seen[i + 1]["status"],
                   "previous_status": prev[i], "external_message_id": m["external_message_id"], "error": None}
        assert_msg_envelope(ev, STATUS, conv[0], payload)
        assert list(ev.env["payload"]) == STATUS_KEYS
    cons.settle(1.0)
    assert len(cons.matching(STATUS, lambda e: e.key == conv[0])) == 3
    assert cons.matching(UPDATED, lambda e: e.key == conv[0]) == []


def test_played_counts_as_read_and_skipping_is_allowed(api, conv):
    m = create(api, conv)
    r = put(api, f"/api/messages/{m['id']}", {"status": "played"})
    assert r.status == 200 and r.json["status"] == "read" and r.json["sent_at"] is not None, r


def test_failed_from_queued_or_sent_only(api, kafka, conv):
    cons = kafka()
    a = create(api, conv)
    r = put(api, f"/api/messages/{a['id']}", {"status": "failed", "error": ERROR_OBJ})
    assert r.status == 200 and r.json["status"] == "failed" and r.json["error"] == ERROR_OBJ, r
    failed = r.json
    assert put(api, f"/api/messages/{a['id']}", {"status": "sent"}).json == failed, "failed is final"
    b = create(api, conv)
    assert put(api, f"/api/messages/{b['id']}", {"status": "sent"}).json["status"] == "sent"
    assert put(api, f"/api/messages/{b['id']}", {"status": "failed", "error": ERROR_OBJ}).json["status"] == "failed"
    c = create(api, conv)
    d = put(api, f"/api/messages/{c['id']}", {"status": "delivered"}).json
    r = put(api, f"/api/messages/{c['id']}", {"status": "failed", "error": ERROR_OBJ})
    assert r.status == 200 and r.json == d, "failed after delivered changes nothing"
    ev = cons.wait_for(STATUS, lambda e: e.env["payload"]["message_id"] == a["id"])[0]
    assert ev.env["payload"]["error"] == ERROR_OBJ and ev.env["payload"]["previous_status"] == "queued"


def test_inbound_received_to_read_only(api, conv):
    m = create(api, conv, direction="inbound")
    for st in ("sent", "delivered", "queued", "failed"):
        body = {"status": st, "error": ERROR_OBJ} if st == "failed" else {"status": st}
        assert_validation(put(api, f"/api/messages/{m['id']}", body), "status")
    assert put(api, f"/api/messages/{m['id']}", {"status": "received"}).json == m
    r = put(api, f"/api/messages/{m['id']}", {"status": "read"})
    assert r.status == 200 and r.json["status"] == "read" and r.json["sent_at"] is None, r
    assert put(api, f"/api/messages/{m['id']}", {"status": "received"}).json == r.json


def test_outbound_received_is_422(api, conv):
    m = create(api, conv)
    assert_validation(put(api, f"/api/messages/{m['id']}", {"status": "received"}), "status")


def test_body_and_status_in_one_put(api, kafka, conv):
    cons = kafka()
    m = create(api, conv, body="a")
    r = put(api, f"/api/messages/{m['id']}", {"body": "b", "status": "sent"})
    assert r.status == 200 and (r.json["body"], r.json["status"], r.json["version"]) == ("b", "sent", 2), r
    assert_msg_envelope(cons.wait_for(UPDATED, lambda e: e.key == conv[0])[0], UPDATED, conv[0], r.json)
    assert cons.wait_for(STATUS, lambda e: e.key == conv[0])[0].env["payload"]["status"] == "sent"


def test_status_by_external_id(api, kafka, conv):
    cons = kafka()
    ext = f"{uuid.uuid4().int % 10**9}:{uniq('m')}"  # Telegram-style "<chat_id>:<message_id>"
    m = create(api, conv, channel="telegram", external_message_id=ext)
    path = f"/api/messages/by-external/telegram/{ps.q(ext)}"
    r = put(api, path, {"status": "delivered"})
    assert r.status == 200 and r.json["id"] == m["id"] and r.json["status"] == "delivered", r
    assert put(api, path, {"status": "sent"}).json == r.json
    r2 = put(api, path, {"status": "read", "body": "edited by its external id"})
    assert r2.json["status"] == "read" and r2.json["body"] == "edited by its external id"
    hist = api.get(f"/api/messages/{m['id']}/history").json["data"]
    assert [(h["previous_body"], h["body"]) for h in hist] == [(m["body"], "edited by its external id")]
    assert_validation(put(api, path, {}), "status")
    assert_validation(put(api, path, {"status": "nope"}), "status")
    assert_error(put(api, f"/api/messages/by-external/whatsapp/{ps.q(ext)}", {"status": "read"}), 404)
    assert_error(put(api, f"/api/messages/by-external/telegram/{uniq('x')}", {"status": "read"}), 404)
    ev = cons.wait_for(STATUS, lambda e: e.key == conv[0], n=2)
    assert [e.env["payload"]["status"] for e in ev] == ["delivered", "read"]
    assert ev[0].env["payload"]["external_message_id"] == ext


# ----------------------------------------------------------------------------------------------- reads

@pytest.mark.parametrize("bad", MALFORMED_IDS)
def test_malformed_ids_404(api, bad):
    assert_error(api.get(f"/api/messages/{bad}"), 404)
    assert_error(api.get(f"/api/messages/{bad}/history"), 404)
    assert_error(put(api, f"/api/messages/{bad}", {"status": "sent"}), 404)
    assert_error(api.get(f"/api/conversations/{bad}/messages"), 404)


def test_unknown_message_404(api):
    assert_error(api.get(f"/api/messages/{unknown_uuid7()}"), 404)
    assert_error(put(api, f"/api/messages/{unknown_uuid7()}", {"status": "sent"}), 404)


@pytest.fixture
def seven(api):
    conv = new_conversation()
    return conv, [create(api, conv, body=f"m{i}") for i in range(7)]


def test_list_paginator_newest_first(api, seven):
    (cid, _), msgs = seven
    r = api.get(f"/api/conversations/{cid}/messages")
    assert r.status == 200, r
    assert_json_response(r)
    assert set(r.json) == ps.PAGINATOR_KEYS
    assert [m["seq"] for m in r.json["data"]] == [7, 6, 5, 4, 3, 2, 1]
    assert r.json["data"][0] == msgs[6]
    assert (r.json["per_page"], r.json["total"], r.json["last_page"]) == (50, 7, 1)
    r = api.get(f"/api/conversations/{cid}/messages?per_page=3&page=2")
    assert [m["seq"] for m in r.json["data"]] == [4, 3, 2]
    assert (r.json["current_page"], r.json["total"], r.json["last_page"], r.json["from"], r.json["to"]) == (
        2, 7, 3, 4, 6)
    assert r.json["next_page_url"].startswith(ps.PUBLIC_URL + f"/api/v1/conversations/{cid}/messages?")
    r = api.get(f"/api/conversations/{cid}/messages?per_page=3&page=9")
    assert r.json["data"] == [] and r.json["total"] == 7
    r = api.get(f"/api/conversations/{unknown_uuid7()}/messages")
    assert r.status == 200 and r.json["data"] == [] and r.json["total"] == 0


@pytest.mark.parametrize("query,field", [
    ("per_page=0", "per_page"), ("per_page=201", "per_page"), ("page=0", "page"), ("page=x", "page"),
    ("after_seq=-1", "after_seq"), ("after_seq=x", "after_seq"), ("after_seq=", "after_seq"),
    ("before_seq=1.5", "before_seq"), ("changed_since=abc", "changed_since"),
    ("after_seq=1&limit=0", "limit"), ("after_seq=1&limit=201", "limit"), ("before_seq=3&limit=x", "limit"),
    ("after_seq=1&before_seq=5", "before_seq"), ("after_seq=1&changed_since=5", "changed_since"),
    ("before_seq=1&changed_since=5", "changed_since"),
])
def test_list_invalid_query_422(api, seven, query, field):
    (cid, _), _msgs = seven
    assert_validation(api.get(f"/api/conversations/{cid}/messages?{query}"), field)


def test_keyset_after_and_before(api, seven):
    (cid, _), msgs = seven
    base = f"/api/conversations/{cid}/messages"
    r = api.get(f"{base}?after_seq=2&limit=3")
    assert r.status == 200 and list(r.json) == ["data", "has_more", "next_cursor"], r
    assert ([m["seq"] for m in r.json["data"]], r.json["has_more"], r.json["next_cursor"]) == ([3, 4, 5], True, 5)
    assert r.json["data"][0] == msgs[2]
    r = api.get(f"{base}?after_seq=5&limit=3")
    assert ([m["seq"] for m in r.json["data"]], r.json["has_more"], r.json["next_cursor"]) == ([6, 7], False, 7)
    r = api.get(f"{base}?after_seq=7")
    assert (r.json["data"], r.json["has_more"], r.json["next_cursor"]) == ([], False, None)
    r = api.get(f"{base}?before_seq=6&limit=2")
    assert ([m["seq"] for m in r.json["data"]], r.json["has_more"], r.json["next_cursor"]) == ([5, 4], True, 4)
    r = api.get(f"{base}?before_seq=3&limit=2")
    assert ([m["seq"] for m in r.json["data"]], r.json["has_more"]) == ([2, 1], False)
    r = api.get(f"{base}?before_seq=1")
    assert r.json["data"] == [] and r.json["has_more"] is False


def test_cursors_never_skip_or_repeat_under_concurrent_creates(api, conv):
    cid, customers = conv
    total, stop = 120, threading.Event()

    def writer(i):
        for j in range(total // 4):
            r = api.post("/api/messages", msg_body(conv, body=f"w{i}-{j}", sender_customer_id=customers[j % 2]))
            assert r.status == 201, r

    seen, cursor = [], 0
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(writer, i) for i in range(4)]
        while not stop.is_set():
            done = all(f.done() for f in futs)
            r = api.get(f"/api/conversations/{cid}/messages?after_seq={cursor}&limit=7")
            assert r.status == 200, r
            page = [m["seq"] for m in r.json["data"]]
            assert page == list(range(cursor + 1, cursor + 1 + len(page))), f"skip or repeat after {cursor}: {page}"
            seen += page
            cursor = r.json["next_cursor"] or cursor
            if done and not r.json["has_more"]:
                stop.set()
        for f in futs:
            f.result()
    assert seen == list(range(1, total + 1))
    # and backwards from the end
    back, cursor = [], total + 1
    while True:
        r = api.get(f"/api/conversations/{cid}/messages?before_seq={cursor}&limit=13")
        back += [m["seq"] for m in r.json["data"]]
        if not r.json["has_more"]:
            break
        cursor = r.json["next_cursor"]
    assert back == list(range(total, 0, -1))


def test_changed_since_catches_creates_edits_and_statuses(api, conv):
    cid, _ = conv
    base = f"/api/conversations/{cid}/messages"
    a, b, c = (create(api, conv, body=x) for x in "abc")
    r = api.get(f"{base}?changed_since=0")
    assert r.status == 200 and list(r.json) == ["data", "has_more", "next_cursor"], r
    assert [m["id"] for m in r.json["data"]] == [a["id"], b["id"], c["id"]] and r.json["next_cursor"] == 3
    mark = r.json["next_cursor"]
    a2 = put(api, f"/api/messages/{a['id']}", {"body": "a2"}).json
    b2 = put(api, f"/api/messages/{b['id']}", {"status": "sent"}).json
    put(api, f"/api/messages/{b['id']}", {"status": "queued"})  # ignored: no change, no version
    d = create(api, conv, body="d")
    a3 = put(api, f"/api/messages/{a['id']}", {"status": "delivered"}).json
    r = api.get(f"{base}?changed_since={mark}")
    assert r.json["data"] == [b2, d, a3], "changed messages once each, in current state, by version"
    assert [m["version"] for m in r.json["data"]] == [5, 6, 7] and r.json["next_cursor"] == 7
    assert a2["version"] == 4
    r = api.get(f"{base}?changed_since={mark}&limit=2")
    assert (r.json["data"], r.json["has_more"], r.json["next_cursor"]) == ([b2, d], True, 6)
    r = api.get(f"{base}?changed_since=7")
    assert (r.json["data"], r.json["has_more"], r.json["next_cursor"]) == ([], False, None)


# ----------------------------------------------------------------------------------------------- auth, probes

@pytest.mark.parametrize("method,path", [
    ("GET", f"/api/messages/{unknown_uuid7()}"), ("POST", "/api/messages"),
    ("PUT", f"/api/messages/{unknown_uuid7()}"), ("GET", f"/api/conversations/{unknown_uuid7()}/messages"),
])
@pytest.mark.parametrize("token", [None, "wrong"])
def test_401_without_valid_token(api, method, path, token):
    r = api.request(method, path, json_body={} if method != "GET" else ps._MISSING, token=token)
    assert_error(r, 401)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_need_no_token(api, path):
    assert api.get(path, token=None).status == 200
