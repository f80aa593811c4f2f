"""messaging-svc POST /api/messages/batch (internal, inbound-svc's workers): several creates in one request.

Each item must be answered exactly as POST /api/messages would answer it, in the order given, with its own
events carrying its own trace id; one bad item must cost only itself; concurrent batches touching the same
conversations in opposite orders must neither deadlock nor give two messages one seq.
"""

import concurrent.futures

import pytest

import parley_sys as ps
from parley_sys import uniq
from test_messages import (IN_CREATED, MESSAGING_URL, OUT_CREATED, api, assert_message,  # noqa: F401
                           assert_msg_envelope, kafka, list_all_seqs, mpsql, msg_body, new_conversation,
                           unknown_uuid7)


def batch(api, items, expect=200):
    r = api.post("/api/messages/batch", {"messages": items})
    assert r.status == expect, r
    if expect == 200:
        assert list(r.json) == ["data"] and len(r.json["data"]) == len(items), r
        for entry in r.json["data"]:
            assert list(entry) == ["status", "body"], entry
    return r


def test_items_created_in_order_with_their_own_trace_ids(api, kafka):
    conv = new_conversation()
    other = new_conversation()
    consumer = kafka()
    items = [
        {"trace_id": "batch-a-" + uniq(), "message": msg_body(conv, direction="inbound", body="one")},
        {"trace_id": "batch-b-" + uniq(), "message": msg_body(other, direction="outbound", body="two")},
        {"message": msg_body(conv, direction="inbound", body="three")},
    ]
    r = batch(api, items)
    got = [e["body"] for e in r.json["data"]]
    assert [e["status"] for e in r.json["data"]] == [201, 201, 201], r
    for m in got:
        assert_message(m)
    assert [m["body"] for m in got] == ["one", "two", "three"]
    assert [got[0]["seq"], got[2]["seq"]] == [1, 2], "a conversation's items keep their order"
    assert got[1]["seq"] == 1 and got[1]["status"] == "queued"
    for item, m in zip(items[:2], got[:2]):
        topic = IN_CREATED if m["direction"] == "inbound" else OUT_CREATED
        ev = consumer.wait_for(topic, lambda e, i=m["id"]: e.env["payload"]["id"] == i)[0]
        assert_msg_envelope(ev, topic, m["conversation_id"], m, trace_id=item["trace_id"])
    fetched = api.get(f"/api/messages/{got[2]['id']}")
    assert fetched.status == 200 and fetched.json == got[2], fetched


def test_channel_repeat_inside_and_across_batches_answers_the_first(api, kafka):
    conv = new_conversation()
    ext = uniq("wamid.batch.")
    first = msg_body(conv, direction="inbound", channel="whatsapp", external_message_id=ext, body="first")
    again = dict(first, body="again")
    consumer = kafka()
    r = batch(api, [{"message": first}, {"message": again}])
    (a, b) = r.json["data"]
    assert (a["status"], b["status"]) == (201, 200), r
    assert b["body"] == a["body"] and b["body"]["body"] == "first"
    r2 = batch(api, [{"message": again}])
    assert r2.json["data"][0] == {"status": 200, "body": a["body"]}, r2
    consumer.settle(1.5)
    events = consumer.matching(IN_CREATED, lambda e: e.env["payload"]["external_message_id"] == ext)
    assert len(events) == 1, f"one message, one event: {events}"
    assert mpsql(f"SELECT count(*) FROM messages WHERE external_message_id = {ps.sql_lit(ext)}") == "1"


def test_bad_items_fail_alone(api):
    conv = new_conversation()
    stranger = ps.create_customer(ps.Client(ps.CUSTOMER_URL))["id"]
    items = [
        {"message": msg_body(conv, direction="sideways")},
        {"message": msg_body(conv, sender_customer_id=stranger)},
        {"message": msg_body(conv, conversation_id=unknown_uuid7())},
        {"message": "not an object"},
        {"trace_id": 7, "message": msg_body(conv)},
        {"trace_id": "x" * 129, "message": msg_body(conv)},
        {"trace_id": "two words", "message": msg_body(conv)},
        5,
        {"message": msg_body(conv, body="kept")},
    ]
    r = batch(api, items)
    data = r.json["data"]
    assert [e["status"] for e in data] == [422] * 8 + [201], r
    assert set(data[0]["body"]["errors"]) == {"direction"}, data[0]
    assert set(data[1]["body"]["errors"]) == {"sender_customer_id"}, data[1]
    assert set(data[2]["body"]["errors"]) == {"conversation_id"}, data[2]
    assert set(data[3]["body"]["errors"]) == {"message"}, data[3]
    assert set(data[4]["body"]["errors"]) == {"trace_id"}, data[4]
    assert set(data[5]["body"]["errors"]) == {"trace_id"}, data[5]
    assert set(data[6]["body"]["errors"]) == {"trace_id"}, data[6]
    assert set(data[7]["body"]["errors"]) == {"message"}, data[7]
    for e in data[:8]:
        assert e["body"]["error"] == "validation_failed", e
    assert data[8]["body"]["body"] == "kept" and data[8]["body"]["seq"] == 1, data[8]
    assert list_all_seqs(api, conv[0]) == [1], "nothing but the good item was stored"


@pytest.mark.parametrize("body", [
    {}, {"messages": []}, {"messages": {}}, {"messages": "x"}, [1],
    {"messages": [{"message": {}}] * 65},
])
def test_batch_shape_422(api, body):
    r = api.post("/api/messages/batch", body)
    ps.assert_validation(r, "messages")


def test_batch_needs_the_service_token():
    r = ps.Client(MESSAGING_URL).post("/api/messages/batch", {"messages": [{"message": {}}]}, token=None)
    assert r.status == 401, r


def test_crossing_batches_neither_deadlock_nor_share_a_seq(api):
    convs = [new_conversation() for _ in range(4)]

    def one(k):
        order = convs if k % 2 == 0 else list(reversed(convs))
        items = [{"message": msg_body(c, direction="inbound", body=f"{k}-{i}")}
                 for i in range(3) for c in order]
        return ps.Client(MESSAGING_URL).post("/api/messages/batch", {"messages": items})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(16)))
    for r in answers:
        assert r.status == 200, r
        assert all(e["status"] == 201 for e in r.json["data"]), r
    for cid, _ in convs:
        assert list_all_seqs(api, cid) == list(range(1, 16 * 3 + 1)), "seqs 1..48, each once"
