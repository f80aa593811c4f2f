"""inbound-svc group chats (SPEC 10 "Channel identities"; issue 5): WhatsApp messages with group_id and Telegram
group, supergroup and channel chats go to one conversation of type group per chat, keyed by the chat id (kept in
metadata.channel_chat_id), with each sender added as a participant once; a Telegram migrate_to_chat_id keeps the
conversation under the new id.  End to end against the running stack.
"""

import json
import uuid

import pytest

import parley_sys as ps
import test_inbound as inb
from parley_sys import sql_lit


@pytest.fixture(scope="module", autouse=True)
def services_up():
    for url in (inb.INBOUND_URL, inb.MESSAGING_URL, inb.CONVERSATION_URL, ps.CUSTOMER_URL):
        assert ps.healthz_ok(url, timeout=5), f"{url}/healthz does not answer (deploy/local/up.sh?)"


def new_user():
    return 10**9 + uuid.uuid4().int % 10**9


def new_group_id():
    return -(10**12 + uuid.uuid4().int % 10**11)


def tg_group_message(chat_id, user_id, text, chat_type="supergroup", title="Parley Team", **extra):
    msg = {"message_id": uuid.uuid4().int % 10**6, "date": 1700000000,
           "from": {"id": user_id, "is_bot": False, "first_name": f"U{user_id % 1000}"},
           "chat": {"id": chat_id, "title": title, "type": chat_type}}
    if text is not None:
        msg["text"] = text
    msg.update(extra)
    return {"update_id": uuid.uuid4().int % 2**31, "message": msg}


def tg_ext(upd, kind="message"):
    return f"{upd[kind]['chat']['id']}:{upd[kind]['message_id']}"


def conversation(conv_id):
    r = ps.Client(inb.CONVERSATION_URL).get(f"/api/conversations/{conv_id}")
    assert r.status == 200, r
    return r.json


def active_members(conv):
    return [p["customer_id"] for p in conv["participants"] if p["left_at"] is None]


def tg_customer_id(user_id):
    return inb.customer_by_identity("telegram", str(user_id))["id"]


def test_telegram_group_messages_share_one_group_conversation():
    chat, alice, bob = new_group_id(), new_user(), new_user()
    updates = [tg_group_message(chat, alice, "hi team"), tg_group_message(chat, bob, "hello"),
               tg_group_message(chat, alice, "again")]
    for upd in updates:
        assert inb.post_telegram(upd).status == 201
    rows = [inb.wait_message("telegram", tg_ext(u)) for u in updates]
    assert len({r["conversation_id"] for r in rows}) == 1, rows
    conv = conversation(rows[0]["conversation_id"])
    assert conv["type"] == "group" and conv["subject"] == "Parley Team", conv
    assert conv["metadata"]["channel_chat_id"] == str(chat), conv
    bot = inb.customer_by_identity("telegram_bot", inb.TG_BOT_ID)["id"]
    members = active_members(conv)
    assert sorted(members) == sorted([bot, tg_customer_id(alice), tg_customer_id(bob)]), conv
    assert rows[0]["sender_customer_id"] == tg_customer_id(alice)
    assert rows[1]["sender_customer_id"] == tg_customer_id(bob)
    # the sender's direct conversation with the bot is not where group messages go
    direct = ps.Client(inb.CONVERSATION_URL).get(
        f"/api/conversations?customer_id={tg_customer_id(alice)}&type=direct").json["data"]
    assert direct == [], direct


def test_telegram_group_fixture_with_reply_and_anonymous_admin():
    raw = json.loads((inb.FIXTURES / "telegram_group_command_reply_story.json").read_bytes())
    chat = new_group_id()
    raw["update_id"] = uuid.uuid4().int % 2**31
    raw["message"]["chat"]["id"] = raw["message"]["reply_to_message"]["chat"]["id"] = chat
    raw["message"]["from"]["id"] = new_user()
    assert inb.post_telegram(raw).status == 201
    m = inb.wait_message("telegram", tg_ext(raw))
    conv = conversation(m["conversation_id"])
    assert conv["type"] == "group" and conv["metadata"]["channel_chat_id"] == str(chat), conv
    assert conv["subject"] == "CryptoInside Chat"
    assert m["metadata"]["reply_to_external_id"] == f"{chat}:{raw['message']['reply_to_message']['message_id']}"

    anon = json.loads((inb.FIXTURES / "edge_telegram_anonymous_group_admin.json").read_bytes())
    anon["update_id"] = uuid.uuid4().int % 2**31
    anon["message"]["chat"]["id"] = anon["message"]["sender_chat"]["id"] = chat
    anon["message"]["message_id"] = uuid.uuid4().int % 10**6
    assert inb.post_telegram(anon).status == 201
    a = inb.wait_message("telegram", tg_ext(anon))
    assert a["conversation_id"] == m["conversation_id"], "the same chat, the same conversation"
    assert a["sender_customer_id"] == inb.customer_by_identity("telegram", str(chat))["id"]
    assert a["sender_customer_id"] in active_members(conversation(a["conversation_id"]))


def test_telegram_channel_post_goes_to_the_channels_group_conversation():
    chat = new_group_id()
    upd = {"update_id": uuid.uuid4().int % 2**31,
           "channel_post": {"message_id": uuid.uuid4().int % 10**6, "date": 1700000000,
                            "sender_chat": {"id": chat, "title": "News", "type": "channel"},
                            "chat": {"id": chat, "title": "News", "type": "channel"}, "text": "announcement"}}
    assert inb.post_telegram(upd).status == 201
    m = inb.wait_message("telegram", tg_ext(upd, "channel_post"))
    conv = conversation(m["conversation_id"])
    assert conv["type"] == "group" and conv["metadata"]["channel_chat_id"] == str(chat), conv


def test_telegram_migration_keeps_the_conversation_under_the_new_id():
    old, new, user = new_group_id(), new_group_id(), new_user()
    first = tg_group_message(old, user, "before the upgrade", chat_type="group")
    assert inb.post_telegram(first).status == 201
    conv_id = inb.wait_message("telegram", tg_ext(first))["conversation_id"]

    moved = json.loads((inb.FIXTURES / "edge_telegram_group_migrated_to_supergroup.json").read_bytes())
    moved["update_id"] = uuid.uuid4().int % 2**31
    moved["message"]["chat"]["id"] = old
    moved["message"]["from"]["id"] = user
    moved["message"]["migrate_to_chat_id"] = new
    assert inb.post_telegram(moved).status == 201
    inb.wait_row_status("telegram", f"{inb.TG_BOT_ID}:{moved['update_id']}", "done")
    conv = conversation(conv_id)
    assert conv["metadata"]["channel_chat_id"] == str(new), conv
    assert conv["metadata"]["migrated_from_chat_id"] == str(old), conv
    assert inb.message_row("telegram", tg_ext(moved)) is None, "the service message is no chat message"

    later = tg_group_message(new, new_user(), "after the upgrade")
    late_old = tg_group_message(old, user, "a straggler from the old chat", chat_type="group")
    for upd in (later, late_old):
        assert inb.post_telegram(upd).status == 201
    assert inb.wait_message("telegram", tg_ext(later))["conversation_id"] == conv_id
    assert inb.wait_message("telegram", tg_ext(late_old))["conversation_id"] == conv_id
    keys = ps.psql(f"SELECT count(*) FROM conversation_chats WHERE conversation_id = {sql_lit(conv_id)}",
                   url=inb.DB_BASE + "/parley_conversations")
    assert keys == "2", keys


def test_whatsapp_group_message_goes_to_the_groups_conversation():
    group_id = f"1203630{uuid.uuid4().int % 10**11}@g.us"
    a, b = inb.new_wa_id(), inb.new_wa_id()
    ids = [f"wamid.{uuid.uuid4().hex}" for _ in range(3)]

    def delivery(wa_id, wamid, text):
        doc = json.loads(inb.wa_text_delivery([(wamid, text)], wa_id))
        doc["entry"][0]["changes"][0]["value"]["messages"][0]["group_id"] = group_id
        return json.dumps(doc).encode()

    for body in (delivery(a, ids[0], "one"), delivery(b, ids[1], "two"), delivery(a, ids[2], "three")):
        assert inb.post_whatsapp(body).status == 201
    rows = [inb.wait_message("whatsapp", i) for i in ids]
    assert len({r["conversation_id"] for r in rows}) == 1
    conv = conversation(rows[0]["conversation_id"])
    assert conv["type"] == "group" and conv["metadata"]["channel_chat_id"] == group_id, conv
    biz = inb.customer_by_identity("whatsapp_business", inb.PHONE_NUMBER_ID)["id"]
    senders = [inb.customer_by_identity("whatsapp", x)["id"] for x in (a, b)]
    assert sorted(active_members(conv)) == sorted([biz] + senders), conv
    assert [p["customer_id"] for p in conv["participants"]].count(senders[0]) == 1
