"""conversation-svc channel chats (SPEC 10 "Channel identities"; issue 5, item 3): the internal find-or-create of
the group conversation of a WhatsApp group or a Telegram chat, keyed by (channel, chat id) with the database
deciding under concurrency, and the record of a chat that continues under a new id.  Against the running
conversation-svc, customer-svc, PostgreSQL and Kafka.
"""

import concurrent.futures
import os
import uuid

import pytest

import parley_sys as ps
from parley_sys import assert_error, assert_validation, sql_lit

CONVERSATION_URL = os.environ.get("PARLEY_CONVERSATION_URL", "http://127.0.0.1:8002")
CONVERSATIONS_DB_URL = os.environ.get("PARLEY_TEST_CONVERSATIONS_DATABASE_URL",
                                      "postgresql://parley:parley@127.0.0.1:55432/parley_conversations")


@pytest.fixture(scope="module", autouse=True)
def conversation_svc_up():
    assert ps.healthz_ok(CONVERSATION_URL, timeout=5), f"conversation-svc does not answer {CONVERSATION_URL}"


@pytest.fixture
def conv():
    return ps.Client(CONVERSATION_URL)


def customers(n):
    api = ps.Client()
    return [ps.create_customer(api)["id"] for _ in range(n)]


def chat_path(chat_id, channel="telegram"):
    return f"/api/conversations/by-chat/{ps.q(channel)}/{ps.q(chat_id)}"


def new_chat():
    return str(-(10**12 + uuid.uuid4().int % 10**11))


def put(conv, chat_id, participants, channel="telegram", **fields):
    return conv.request("PUT", chat_path(chat_id, channel), json_body={"participants": participants, **fields})


def members(c):
    return sorted(p["customer_id"] for p in c["participants"] if p["left_at"] is None)


def keys_of(conversation_id):
    return ps.psql(f"SELECT string_agg(channel || ':' || chat_id, ',' ORDER BY created_at) FROM conversation_chats "
                   f"WHERE conversation_id = {sql_lit(conversation_id)}", url=CONVERSATIONS_DB_URL)


def test_find_or_create_then_find_adds_missing_participants(conv):
    a, b, c = customers(3)
    chat = new_chat()
    kafka = ps.Consumer(("conversation.opened", "conversation.participant.added"))
    r = put(conv, chat, [a, b], subject="Team", metadata={"source": "test"})
    assert r.status == 201, r
    created = r.json
    assert created["type"] == "group" and created["subject"] == "Team", created
    assert created["metadata"] == {"source": "test", "channel_chat_id": chat}, created
    assert members(created) == sorted([a, b])
    r = put(conv, chat, [a, c], subject="ignored for an existing chat")
    assert r.status == 200, r
    assert r.json["id"] == created["id"] and r.json["subject"] == "Team", r.json
    assert members(r.json) == sorted([a, b, c])
    r = put(conv, chat, [b, c])  # both there already: nothing changes
    assert r.status == 200 and members(r.json) == sorted([a, b, c]), r
    assert [p["customer_id"] for p in r.json["participants"]].count(c) == 1
    key = lambda e: e.key == created["id"]  # noqa: E731
    kafka.wait_for("conversation.opened", key, n=1)
    kafka.wait_for("conversation.participant.added", key, n=3)
    kafka.settle(1.0)
    assert len(kafka.matching("conversation.opened", key)) == 1
    assert len(kafka.matching("conversation.participant.added", key)) == 3
    # the same chat id of another channel is another chat
    other = put(conv, chat, [a, b], channel="whatsapp")
    assert other.status == 201 and other.json["id"] != created["id"], other


def test_concurrent_find_or_create_makes_one_conversation(conv):
    ids = customers(9)
    biz, senders = ids[0], ids[1:]
    chat = new_chat()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(lambda s: put(ps.Client(CONVERSATION_URL), chat, [biz, s]), senders))
    assert sorted(r.status for r in results) == [200] * 7 + [201], [r.status for r in results]
    assert len({r.json["id"] for r in results}) == 1
    conv_id = results[0].json["id"]
    final = conv.get(f"/api/conversations/{conv_id}").json
    assert members(final) == sorted(ids), final
    assert keys_of(conv_id) == f"telegram:{chat}"
    n = ps.psql(f"SELECT count(*) FROM conversations WHERE metadata->>'channel_chat_id' = {sql_lit(chat)}",
                url=CONVERSATIONS_DB_URL)
    assert n == "1", "no orphan conversation from the losers"


def test_migrate_links_the_new_chat_id(conv):
    a, b = customers(2)
    old, new = new_chat(), new_chat()
    created = put(conv, old, [a, b]).json
    path = chat_path(old) + "/migrate"
    for _ in range(2):  # idempotent
        r = conv.post(path, {"to_chat_id": new})
        assert r.status == 200 and r.json["id"] == created["id"], r
        assert r.json["metadata"]["channel_chat_id"] == new, r
        assert r.json["metadata"]["migrated_from_chat_id"] == old, r
    assert keys_of(created["id"]) == f"telegram:{old},telegram:{new}"
    for chat in (old, new):
        r = put(conv, chat, [a, b])
        assert r.status == 200 and r.json["id"] == created["id"], r
    # a chat that already has a conversation of its own is not merged
    taken = new_chat()
    put(conv, taken, [a, b])
    assert_error(conv.post(path, {"to_chat_id": taken}), 409, "conflict")
    assert_error(conv.post(chat_path(new_chat()) + "/migrate", {"to_chat_id": new_chat()}), 404)


def test_validation_and_service_token(conv):
    a, b = customers(2)
    chat = new_chat()
    assert_validation(put(conv, chat, [a, b], type="direct"), "type")
    assert_validation(put(conv, chat, [a]), "participants")  # a group takes 2 or more
    assert_validation(put(conv, chat, [a, "not-a-uuid"]), "participants")
    assert_validation(put(conv, chat, [a, str(uuid.uuid4())]), "participants")  # unknown customer
    assert_validation(put(conv, chat, [a, b], channel="Tele gram"), "channel")
    assert_validation(put(conv, "x" * 256, [a, b]), "chat_id")
    assert_validation(conv.request("PUT", chat_path(chat), json_body={"type": "group"}), "participants")
    assert_validation(conv.post(chat_path(chat) + "/migrate", {}), "to_chat_id")
    assert_validation(conv.post(chat_path(chat) + "/migrate", {"to_chat_id": 5}), "to_chat_id")
    assert_error(conv.request("PUT", chat_path(chat), json_body={"participants": [a, b]}, token=None), 401)
    assert ps.psql(f"SELECT count(*) FROM conversation_chats WHERE chat_id = {sql_lit(chat)}",
                   url=CONVERSATIONS_DB_URL) == "0"
    r = put(conv, chat, [a, b], type="channel")
    assert r.status == 201 and r.json["type"] == "channel", r
