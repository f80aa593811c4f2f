"""inbound-svc, receiving half beyond plain messages (SPEC 10 "Inbound message normalisation"; issue 5): WhatsApp
edits and revokes (also when they overtake their message), message echoes, system messages about a changed number,
and Telegram my_chat_member, end to end to the stored messages and customers, against the running stack.

Deliveries are the shared fixtures where one fits (ids made unique per test) or built from the documented shapes.
"""

import json
import time
import uuid

import pytest

import fake_provider
import parley_sys as ps
import test_inbound as inb
from parley_sys import sql_lit

BUSINESS_NUMBER = "972123456789"  # display_phone_number of the shared fixtures


@pytest.fixture(scope="module", autouse=True)
def services_up():
    for url in (inb.INBOUND_URL, inb.MESSAGING_URL, inb.CONVERSATION_URL, ps.CUSTOMER_URL):
        assert ps.healthz_ok(url, timeout=5), f"{url}/healthz does not answer (deploy/local/up.sh?)"


def wa_delivery(messages, field="messages", key="messages", contacts=None):
    """A WhatsApp delivery of one change written from the documented shape."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": BUSINESS_NUMBER, "phone_number_id": inb.PHONE_NUMBER_ID},
             key: messages}
    if contacts is not None:
        value["contacts"] = contacts
    doc = {"object": "whatsapp_business_account",
           "entry": [{"id": "WABA", "changes": [{"field": field, "value": value}]}]}
    return json.dumps(doc, ensure_ascii=False).encode()


def wa_edit(wa_id, target, new_text):
    return wa_delivery([{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": "1700000100",
                         "type": "edit", "edit": {"original_message_id": target,
                                                  "message": {"type": "text", "text": {"body": new_text}}}}])


def wa_revoke(wa_id, target):
    return wa_delivery([{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": "1700000100",
                         "type": "revoke", "revoke": {"original_message_id": target}}])


def text_message(text="original words"):
    wa_id, wamid = inb.new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    assert inb.post_whatsapp(inb.wa_text_delivery([(wamid, text)], wa_id)).status == 201
    return wa_id, wamid, inb.wait_message("whatsapp", wamid)


def history(message_id):
    r = ps.Client(inb.MESSAGING_URL).get(f"/api/messages/{message_id}/history")
    assert r.status == 200, r
    return [(h["previous_body"], h["body"]) for h in r.json["data"]]


def wait_body(external_id, body, timeout=40):
    return inb.wait_for(lambda: (lambda m: m if m and m["body"] == body else None)(
        inb.message_row("whatsapp", external_id)), f"body {body!r} on {external_id}", timeout)


def wait_pending_not_known(body):
    """The row of body failed its first attempt because its target is not there yet."""
    row = inb.wait_for(lambda: next((r for r in inb.webhook_rows("whatsapp", inb.event_id(body))
                                     if r["attempts"] >= 1 and r["status"] == "pending"), None),
                       "the row to wait for its target", 15)
    assert "not known yet" in (row["last_error"] or ""), row
    return row


# ----------------------------------------------------------------------------------------------- edits

def test_whatsapp_edit_changes_the_message_and_keeps_history():
    wa_id, wamid, m = text_message("first words")
    kafka = ps.Consumer(("message.updated",))
    body = wa_edit(wa_id, wamid, "second words ✓")
    assert inb.post_whatsapp(body).status == 201
    edited = wait_body(wamid, "second words ✓")
    assert edited["id"] == m["id"] and edited["version"] > m["version"], edited
    assert history(m["id"]) == [("first words", "second words ✓")]
    inb.wait_row_status("whatsapp", inb.event_id(body), "done")
    evs = kafka.wait_for("message.updated", lambda e: e.env["payload"]["id"] == m["id"], timeout=15)
    assert evs[0].key == m["conversation_id"] and evs[0].env["payload"]["body"] == "second words ✓", evs[0]
    # the edit notification is not a message of its own
    assert inb.mpsql(f"SELECT count(*) FROM messages WHERE conversation_id = {sql_lit(m['conversation_id'])}") == "1"


def test_whatsapp_edit_fixture_changes_an_image_caption():
    raw, ids, wa_id = inb.fixture("whatsapp_image.json")
    image_id = next(iter(ids.values()))
    assert inb.post_whatsapp(raw).status == 201
    before = inb.wait_message("whatsapp", image_id)
    edit = (inb.FIXTURES / "whatsapp_edit.json").read_bytes()
    original = json.loads(edit)["entry"][0]["changes"][0]["value"]["messages"][0]["edit"]["original_message_id"]
    edit, _, _ = inb.uniquify(edit.replace(json.dumps(original).encode(), json.dumps(image_id).encode()), wa_id)
    assert inb.post_whatsapp(edit).status == 201
    after = wait_body(image_id, "Updated image caption")
    assert after["id"] == before["id"] and after["content_type"] == "image", after
    assert history(before["id"]) == [(before["body"], "Updated image caption")]


def test_whatsapp_edit_before_its_message_waits_then_applies():
    wa_id, wamid = inb.new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    edit = wa_edit(wa_id, wamid, "the corrected text")
    assert inb.post_whatsapp(edit).status == 201
    wait_pending_not_known(edit)
    assert inb.message_row("whatsapp", wamid) is None
    assert inb.post_whatsapp(inb.wa_text_delivery([(wamid, "the first text")], wa_id)).status == 201
    m = wait_body(wamid, "the corrected text")
    inb.wait_row_status("whatsapp", inb.event_id(edit), "done", timeout=40)
    assert history(m["id"]) == [("the first text", "the corrected text")]


# ----------------------------------------------------------------------------------------------- revokes

def test_whatsapp_revoke_fixture_empties_the_body_and_marks_deleted():
    wa_id, wamid, m = text_message("something regretted")
    raw = (inb.FIXTURES / "edge_whatsapp_revoke.json").read_bytes()
    raw, _, _ = inb.uniquify(raw.replace(b'"wamid.xyzxyz"', json.dumps(wamid).encode()), wa_id)
    assert inb.post_whatsapp(raw).status == 201
    inb.wait_row_status("whatsapp", inb.event_id(raw), "done")
    gone = inb.message_row("whatsapp", wamid)
    assert gone["id"] == m["id"] and gone["body"] == "" and gone["metadata"].get("deleted") is True, gone
    assert gone["metadata"]["channel_raw_type"] == "text", "the rest of the metadata is kept"
    assert history(m["id"]) == [("something regretted", "")]
    # a redelivered revoke (other bytes, same target) changes nothing more
    again = wa_revoke(wa_id, wamid)
    assert inb.post_whatsapp(again).status == 201
    inb.wait_row_status("whatsapp", inb.event_id(again), "done")
    assert inb.message_row("whatsapp", wamid)["version"] == gone["version"]
    assert len(history(m["id"])) == 1


def test_whatsapp_revoke_before_its_message_waits_even_without_a_body():
    """A captionless image has an empty body already: the revoke must still mark it deleted."""
    raw, ids, wa_id = inb.fixture("whatsapp_image_no_url.json")
    image_id = next(iter(ids.values()))
    revoke = wa_revoke(wa_id, image_id)
    assert inb.post_whatsapp(revoke).status == 201
    wait_pending_not_known(revoke)
    assert inb.post_whatsapp(raw).status == 201
    inb.wait_row_status("whatsapp", inb.event_id(revoke), "done", timeout=40)
    m = inb.message_row("whatsapp", image_id)
    assert m["body"] == "" and m["metadata"]["deleted"] is True, m


# ----------------------------------------------------------------------------------------------- echoes

def test_echo_fixture_is_stored_as_sent_outbound_and_never_sent():
    raw = (inb.FIXTURES / "edge_whatsapp_smb_message_echo.json").read_bytes()
    echo_id = json.loads(raw)["entry"][0]["changes"][0]["value"]["message_echoes"][0]["id"]
    new_id = f"wamid.echo-{uuid.uuid4().hex}"
    raw, _, wa_id = inb.uniquify(raw.replace(json.dumps(echo_id).encode(), json.dumps(new_id).encode()))
    assert inb.post_whatsapp(raw).status == 201
    m = inb.wait_for(lambda: (lambda r: r if r and r["status"] == "sent" else None)(
        inb.message_row("whatsapp", new_id)), "the echo stored as sent")
    assert m["direction"] == "outbound" and m["body"] == "Test message" and m["content_type"] == "text", m
    assert m["sent_at"] is not None, m
    biz = inb.customer_by_identity("whatsapp_business", inb.PHONE_NUMBER_ID)
    cust = inb.customer_by_identity("whatsapp", wa_id)
    assert cust is not None and m["sender_customer_id"] == biz["id"], (m, biz)
    conv = ps.Client(inb.CONVERSATION_URL).get(f"/api/conversations/{m['conversation_id']}").json
    assert conv["type"] == "direct" and {p["customer_id"] for p in conv["participants"]} == {cust["id"], biz["id"]}
    inb.wait_row_status("whatsapp", inb.event_id(raw), "done")
    time.sleep(2)  # time enough for the sending side to (wrongly) pick it up
    assert fake_provider.requests_for(wa_id) == [], "an echo must never be sent to the customer again"
    assert inb.message_row("whatsapp", new_id)["status"] == "sent"


def test_echo_and_the_customers_reply_share_the_direct_conversation():
    wa_id, echo_id, reply_id = inb.new_wa_id(), f"wamid.{uuid.uuid4().hex}", f"wamid.{uuid.uuid4().hex}"
    echo = wa_delivery([{"from": BUSINESS_NUMBER, "to": wa_id, "id": echo_id, "timestamp": "1700000000",
                         "type": "text", "text": {"body": "your order shipped"}}],
                       field="smb_message_echoes", key="message_echoes",
                       contacts=[{"profile": {"name": "Echo Customer"}, "wa_id": wa_id}])
    assert inb.post_whatsapp(echo).status == 201
    assert inb.post_whatsapp(inb.wa_text_delivery([(reply_id, "thanks!")], wa_id)).status == 201
    sent = inb.wait_for(lambda: (lambda r: r if r and r["status"] == "sent" else None)(
        inb.message_row("whatsapp", echo_id)), "the echo")
    reply = inb.wait_message("whatsapp", reply_id)
    assert sent["conversation_id"] == reply["conversation_id"]
    assert sent["direction"] == "outbound" and reply["direction"] == "inbound"


# ----------------------------------------------------------------------------------------------- system messages

def test_number_change_is_a_system_message_and_records_the_new_id():
    raw, ids, wa_id = inb.fixture("whatsapp_system_user_changed_number.json")
    new_id = inb.new_wa_id()
    raw = raw.replace(b"972912345678", new_id.encode())
    assert inb.post_whatsapp(raw).status == 201
    m = inb.wait_message("whatsapp", next(iter(ids.values())))
    assert m["direction"] == "system" and m["content_type"] == "system", m
    assert new_id in m["body"], m
    cust = inb.customer_by_identity("whatsapp", wa_id)
    assert cust["metadata"].get("new_wa_id") == new_id, cust
    assert cust["id"] == m["sender_customer_id"]


def test_identity_change_is_a_system_message_without_new_id():
    raw, ids, wa_id = inb.fixture("whatsapp_system_identity_changed.json")
    assert inb.post_whatsapp(raw).status == 201
    m = inb.wait_message("whatsapp", next(iter(ids.values())))
    assert m["direction"] == "system" and m["body"] == "User identity changed", m
    assert "new_wa_id" not in inb.customer_by_identity("whatsapp", wa_id)["metadata"]


# ----------------------------------------------------------------------------------------------- Telegram

def my_chat_member(user_id, status):
    doc = json.loads((inb.FIXTURES / "telegram_my_chat_member_blocked.json").read_bytes())
    doc["update_id"] = uuid.uuid4().int % 2**31
    upd = doc["my_chat_member"]
    upd["chat"]["id"] = upd["from"]["id"] = user_id
    upd["new_chat_member"]["status"] = status
    return doc


def test_telegram_block_and_unblock_set_customer_metadata():
    user_id = 10**9 + uuid.uuid4().int % 10**9
    blocked = my_chat_member(user_id, "kicked")
    assert inb.post_telegram(blocked).status == 201
    inb.wait_row_status("telegram", f"{inb.TG_BOT_ID}:{blocked['update_id']}", "done")
    cust = inb.customer_by_identity("telegram", str(user_id))
    assert cust is not None and cust["metadata"]["blocked"] is True and cust["name"] == "FN LN", cust
    back = my_chat_member(user_id, "member")
    assert inb.post_telegram(back).status == 201
    inb.wait_row_status("telegram", f"{inb.TG_BOT_ID}:{back['update_id']}", "done")
    assert inb.customer_by_identity("telegram", str(user_id))["metadata"]["blocked"] is False


def test_telegram_bot_removed_from_a_group_blocks_nobody():
    user_id = 10**9 + uuid.uuid4().int % 10**9
    upd = my_chat_member(user_id, "kicked")
    upd["my_chat_member"]["chat"] = {"id": -4000000000 - user_id % 10**6, "title": "g", "type": "group"}
    assert inb.post_telegram(upd).status == 201
    inb.wait_row_status("telegram", f"{inb.TG_BOT_ID}:{upd['update_id']}", "done")
    assert inb.customer_by_identity("telegram", str(user_id)) is None


# ----------------------------------------------------------------------------------------------- batching

def test_message_then_its_edit_and_revoke_in_one_delivery_apply_in_order_at_once():
    """The workers send message creates in batches; an edit or revoke after them must still find its message."""
    wa_id, wamid = inb.new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    msg = {"from": wa_id, "id": wamid, "timestamp": "1700000000", "type": "text", "text": {"body": "first words"}}
    edit = {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": "1700000050", "type": "edit",
            "edit": {"original_message_id": wamid, "message": {"type": "text", "text": {"body": "second words"}}}}
    revoke = {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": "1700000100", "type": "revoke",
              "revoke": {"original_message_id": wamid}}
    body = wa_delivery([msg, edit, revoke], contacts=[{"profile": {"name": "In Order"}, "wa_id": wa_id}])
    assert inb.post_whatsapp(body).status == 201
    row = inb.wait_row_status("whatsapp", inb.event_id(body), "done")
    assert row["attempts"] == 1 and row["last_error"] is None, f"done at the first attempt: {row}"
    m = inb.message_row("whatsapp", wamid)
    assert m["body"] == "" and m["metadata"].get("deleted") is True, m
    assert history(m["id"]) == [("first words", "second words"), ("second words", "")]


def test_messages_of_many_deliveries_each_carry_their_delivery_trace_id():
    """Creates of several rows go out in one batch; each message event keeps its own delivery's request id."""
    consumer = ps.Consumer(("message.inbound.created",))
    sent = []
    for _ in range(12):
        wa_id, wamid = inb.new_wa_id(), f"wamid.{uuid.uuid4().hex}"
        rid = ps.new_request_id("batch")
        assert inb.post_whatsapp(inb.wa_text_delivery([(wamid, "hi " + rid)], wa_id), request_id=rid).status == 201
        sent.append((wamid, rid))
    for wamid, rid in sent:
        ev = consumer.wait_for("message.inbound.created",
                               lambda e, w=wamid: e.env["payload"]["external_message_id"] == w)[0]
        assert ev.env["trace_id"] == rid, ev
        assert inb.message_row("whatsapp", wamid)["body"] == "hi " + rid
