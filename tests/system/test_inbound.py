"""inbound-svc, receiving half (SPEC 5, 10; issue 5): signed webhooks in, stored once, processed into customers,
conversations, messages and statuses by the workers, against the running stack.

WhatsApp fixtures (../shared/fixtures/channels) are sent as bytes; their message ids and wa_id are replaced by values
unique to the test (many fixtures share "wamid.xyzxyz") and the exact bytes sent are signed.
"""

import concurrent.futures
import hashlib
import hmac
import json
import os
import time
import uuid
from pathlib import Path

import pytest

import parley_sys as ps
from parley_sys import assert_error, new_request_id, sql_lit

INBOUND_URL = os.environ.get("PARLEY_INBOUND_URL", "http://127.0.0.1:8005")
CONVERSATION_URL = os.environ.get("PARLEY_CONVERSATION_URL", "http://127.0.0.1:8002")
MESSAGING_URL = os.environ.get("PARLEY_MESSAGING_URL", "http://127.0.0.1:8003")
DB_BASE = "postgresql://parley:parley@127.0.0.1:55432"
INBOUND_DB_URL = os.environ.get("PARLEY_TEST_INBOUND_DATABASE_URL", f"{DB_BASE}/parley_inbound")
MESSAGING_DB_URL = os.environ.get("PARLEY_TEST_MESSAGING_DATABASE_URL", f"{DB_BASE}/parley_messaging")
APP_SECRET = os.environ.get("PARLEY_WHATSAPP_APP_SECRET", "dev-whatsapp-secret").encode()
VERIFY_TOKEN = os.environ.get("PARLEY_WHATSAPP_VERIFY_TOKEN", "dev-verify-token")
TG_SECRET = os.environ.get("PARLEY_TELEGRAM_SECRET_TOKEN", "dev-telegram-secret")
TG_BOT_ID = os.environ.get("PARLEY_TELEGRAM_BOT_TOKEN", "123456:dev-telegram-token").split(":")[0]
MAX_ATTEMPTS = int(os.environ.get("PARLEY_INBOUND_MAX_ATTEMPTS", "5"))
def _fixtures_dir():
    """The shared channel payload samples: PARLEY_CHANNEL_FIXTURES, else beside the checkout (the
    project's workspace layout), else the workspace's fixed place on this machine."""
    for candidate in (os.environ.get("PARLEY_CHANNEL_FIXTURES"),
                      str(ps.ROOT.parent / "shared" / "fixtures" / "channels"),
                      "/work/shared/fixtures/channels"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path("/work/shared/fixtures/channels")


FIXTURES = _fixtures_dir()

FIXTURE_WA_ID = b"972987654321"
PHONE_NUMBER_ID = "1122334455667"

# Each fixture holding one message, and the content_type it must end as (SPEC 10).
FIXTURE_TYPES = {
    "whatsapp_text_pywa.json": "text",
    "whatsapp_reply_context.json": "text",
    "whatsapp_forwarded_many_times.json": "text",
    "whatsapp_referral_ctwa.json": "text",
    "whatsapp_image.json": "image",
    "whatsapp_image_no_url.json": "image",
    "whatsapp_audio.json": "audio",
    "whatsapp_voice.json": "voice",
    "whatsapp_video.json": "video",
    "whatsapp_document.json": "document",
    "whatsapp_sticker.json": "sticker",
    "whatsapp_sticker_animated.json": "sticker",
    "whatsapp_location.json": "location",
    "whatsapp_location_current.json": "location",
    "whatsapp_contacts.json": "contacts",
    "whatsapp_interactive_button_reply.json": "interactive",
    "whatsapp_interactive_list_reply.json": "interactive",
    "whatsapp_message_with_value_errors.json": "interactive",
    "whatsapp_button.json": "button",
    "whatsapp_reaction.json": "reaction",
    "whatsapp_reaction_removed.json": "reaction",
    "whatsapp_reaction_removed_no_emoji.json": "reaction",
    "whatsapp_order.json": "order",
    "whatsapp_unsupported.json": "unsupported",
    "whatsapp_unsupported_no_subtype.json": "unsupported",
    "whatsapp_system_identity_changed.json": "system",
    "whatsapp_system_user_changed_number.json": "system",
}


# ----------------------------------------------------------------------------------------------- helpers

def ipsql(sql):
    return ps.psql(sql, url=INBOUND_DB_URL)


def mpsql(sql):
    return ps.psql(sql, url=MESSAGING_DB_URL)


def sign(body, secret=APP_SECRET):
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def event_id(body):
    return hashlib.sha256(body).hexdigest()


def post_whatsapp(body, signature="sign", request_id=None, headers=None):
    h = dict(headers or {})
    if signature == "sign":
        signature = sign(body)
    if signature is not None:
        h["X-Hub-Signature-256"] = signature
    return ps.Client(INBOUND_URL).request("POST", "/api/webhooks/whatsapp", raw=body, token=None,
                                          request_id=request_id, headers=h)


def post_telegram(update, secret=TG_SECRET):
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    h = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return ps.Client(INBOUND_URL).request("POST", "/api/webhooks/telegram", raw=body, token=None, headers=h)


def new_wa_id():
    return str(10**11 + uuid.uuid4().int % (9 * 10**11))


def uniquify(raw, wa_id=None):
    """The fixture's bytes with every message/status id and the sender's wa_id made unique; returns
    (bytes, {old id: new id}, wa_id)."""
    doc = json.loads(raw)
    ids = []
    for entry in doc.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value", {})
            for m in (value.get("messages") or []) + (value.get("statuses") or []):
                if m.get("id") not in ids:
                    ids.append(m["id"])
    mapping = {}
    for old in ids:
        new = f"{old}-{uuid.uuid4().hex[:12]}"
        raw = raw.replace(json.dumps(old).encode(), json.dumps(new).encode())
        mapping[old] = new
    wa_id = wa_id or new_wa_id()
    raw = raw.replace(FIXTURE_WA_ID, wa_id.encode())
    return raw, mapping, wa_id


def fixture(name, wa_id=None):
    return uniquify((FIXTURES / name).read_bytes(), wa_id)


def wa_text_delivery(messages, wa_id, name="Sys Test", phone_number_id=PHONE_NUMBER_ID, entries=1):
    """A delivery written from the documented shape: `entries` entries, each with one change holding messages."""
    def value(msgs):
        return {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550009999", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": mid, "timestamp": "1700000000", "type": "text",
                          "text": {"body": text}} for mid, text in msgs],
        }
    per = max(1, len(messages) // entries)
    chunks = [messages[i:i + per] for i in range(0, len(messages), per)]
    doc = {"object": "whatsapp_business_account",
           "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value(c)}]} for c in chunks]}
    return json.dumps(doc, ensure_ascii=False).encode()


def message_row(channel, external_id):
    out = mpsql(f"SELECT row_to_json(m) FROM messages m WHERE channel = {sql_lit(channel)} "
                f"AND external_message_id = {sql_lit(external_id)}")
    rows = [json.loads(line) for line in out.splitlines() if line]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def wait_for(fn, what, timeout=25.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(interval)


def wait_message(channel, external_id, timeout=25.0):
    return wait_for(lambda: message_row(channel, external_id), f"message {channel}/{external_id}", timeout)


def webhook_rows(provider, provider_event_id):
    out = ipsql("SELECT row_to_json(w) FROM (SELECT id, status, attempts, last_error, request_id, headers, body "
                f"FROM inbound_webhooks WHERE provider = {sql_lit(provider)} "
                f"AND provider_event_id = {sql_lit(provider_event_id)}) w")
    return [json.loads(line) for line in out.splitlines() if line]


def wait_row_status(provider, provider_event_id, status, timeout=25.0):
    def check():
        rows = webhook_rows(provider, provider_event_id)
        return rows[0] if rows and rows[0]["status"] == status else None
    return wait_for(check, f"webhook {provider}/{provider_event_id} to be {status}", timeout)


def customer_by_identity(external_type, external_id):
    r = ps.Client(ps.CUSTOMER_URL).get(f"/api/customers/external/{ps.q(external_type)}/{ps.q(external_id)}")
    return r.json if r.status == 200 else None


def outbound_message(external_id):
    """An outbound WhatsApp message with that provider id, in a fresh conversation (as a send would make)."""
    a = ps.create_customer(ps.Client(ps.CUSTOMER_URL))["id"]
    b = ps.create_customer(ps.Client(ps.CUSTOMER_URL))["id"]
    r = ps.Client(CONVERSATION_URL).post("/api/conversations", {"type": "direct", "participants": [a, b]})
    assert r.status == 201, r
    r = ps.Client(MESSAGING_URL).post("/api/messages", {
        "conversation_id": r.json["id"], "sender_customer_id": b, "direction": "outbound", "channel": "whatsapp",
        "body": "hello from the business", "external_message_id": external_id})
    assert r.status == 201, r
    return r.json


def status_delivery(wamid, status="delivered", wa_id="15550001234"):
    doc = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550009999", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": [{"id": wamid, "status": status, "timestamp": "1700000001", "recipient_id": wa_id}]}}]}]}
    return json.dumps(doc).encode()


# ----------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def services_up():
    for name, url in (("inbound-svc", INBOUND_URL), ("messaging-svc", MESSAGING_URL),
                      ("conversation-svc", CONVERSATION_URL)):
        assert ps.healthz_ok(url, timeout=5), f"{name} does not answer {url}/healthz (deploy/local/up.sh?)"
    ipsql("SELECT 1 FROM inbound_webhooks LIMIT 1")
    assert FIXTURES.is_dir(), f"channel fixtures not found at {FIXTURES}"


# ----------------------------------------------------------------------------------------------- WhatsApp

def test_verification_handshake():
    c = ps.Client(INBOUND_URL)
    r = c.get(f"/api/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
              token=None)
    assert r.status == 200, r
    assert r.body == b"1158201444"
    assert r.header("Content-Type").startswith("text/plain"), r
    for query in (f"hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
                  f"hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
                  "hub.mode=subscribe&hub.challenge=1"):
        assert_error(c.get(f"/api/webhooks/whatsapp?{query}", token=None), 403)


def test_signed_text_end_to_end():
    body, ids, wa_id = fixture("whatsapp_text_pywa.json")
    wamid = ids["wamid.xyzxyz"]
    rid = new_request_id("inb")
    kafka = ps.Consumer(("webhook.inbound.received",))
    r = post_whatsapp(body, request_id=rid)
    assert r.status == 201, r
    assert r.json == {"status": "received"}
    assert r.header("X-Request-Id") == rid

    m = wait_message("whatsapp", wamid)
    assert m["direction"] == "inbound" and m["content_type"] == "text" and m["body"] == "Body Text", m
    assert m["status"] == "received" and m["channel"] == "whatsapp", m
    assert m["metadata"].get("channel_raw_type") == "text", m

    cust = customer_by_identity("whatsapp", wa_id)
    assert cust and cust["name"] == "Test Name" and cust["id"] == m["sender_customer_id"], cust
    biz = customer_by_identity("whatsapp_business", PHONE_NUMBER_ID)
    assert biz and biz["name"] == "972123456789", biz
    conv = ps.Client(CONVERSATION_URL).get(f"/api/conversations/{m['conversation_id']}")
    assert conv.status == 200 and conv.json["type"] == "direct", conv
    assert {p["customer_id"] for p in conv.json["participants"]} == {cust["id"], biz["id"]}, conv

    row = wait_row_status("whatsapp", event_id(body), "done")
    assert row["attempts"] == 1 and row["last_error"] is None, row
    assert row["request_id"] == rid, row
    assert row["body"].encode() == body, "the raw body is stored byte for byte"
    assert not any(k.lower() in ("x-hub-signature-256", "x-service-token") for k in row["headers"]), row
    assert row["headers"].get("Content-Type") == "application/json", row

    evs = kafka.wait_for("webhook.inbound.received", lambda e: e.key == event_id(body), timeout=15)
    env = evs[0].env
    assert env["source_service"] == "inbound-svc" and env["trace_id"] == rid, env
    assert set(env["payload"]) == {"id", "provider", "provider_event_id", "received_at"}, env
    assert env["payload"]["provider"] == "whatsapp" and env["payload"]["id"] == row["id"], env
    assert env["payload"]["provider_event_id"] == event_id(body), env
    received_at = ipsql(f"SELECT pl_time(received_at) FROM inbound_webhooks WHERE id = {sql_lit(row['id'])}")
    assert env["payload"]["received_at"] == received_at, (env, received_at)
    kafka.settle()
    assert len(kafka.matching("webhook.inbound.received", lambda e: e.key == event_id(body))) == 1


@pytest.mark.parametrize("name", sorted(FIXTURE_TYPES))
def test_each_fixture_type_becomes_a_message(name):
    body, ids, wa_id = fixture(name)
    r = post_whatsapp(body)
    assert r.status == 201, r
    wamid = next(iter(ids.values()))
    m = wait_message("whatsapp", wamid)
    assert m["content_type"] == FIXTURE_TYPES[name], m
    assert m["direction"] == ("system" if FIXTURE_TYPES[name] == "system" else "inbound"), m
    doc = json.loads(body)
    msg = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    meta = m["metadata"]
    t = msg["type"]
    if t in ("image", "audio", "video", "document", "sticker"):
        assert meta["media"]["provider_media_id"] == msg[t]["id"], m
        assert m["body"] == msg[t].get("caption", ""), m
    if t == "location":
        assert meta["location"]["latitude"] == msg["location"]["latitude"], m
    if t == "contacts":
        assert meta["contacts"] == msg["contacts"], m
    if t == "reaction":
        assert m["body"] == msg["reaction"].get("emoji", ""), m
        assert meta["reaction_to_external_id"] == msg["reaction"]["message_id"], m
    if t == "interactive" and "interactive" in msg:
        kind = msg["interactive"]["type"]
        assert m["body"] == msg["interactive"][kind]["title"], m
        assert meta["interactive"] == {"type": kind, "id": msg["interactive"][kind]["id"],
                                       "title": msg["interactive"][kind]["title"]}, m
    if t == "button":
        assert m["body"] == msg["button"]["text"], m
    if "context" in msg and "id" in msg["context"]:
        assert meta["reply_to_external_id"] == msg["context"]["id"], m
    if msg.get("context", {}).get("forwarded") or msg.get("context", {}).get("frequently_forwarded"):
        assert meta["forwarded"] is True, m
    wait_row_status("whatsapp", event_id(body), "done")


def test_sequential_duplicate_is_ignored():
    body, ids, _ = fixture("whatsapp_text_pywa.json")
    assert post_whatsapp(body).status == 201
    r = post_whatsapp(body)
    assert r.status == 200 and r.json == {"status": "ignored_duplicate"}, r
    wait_message("whatsapp", ids["wamid.xyzxyz"])
    assert len(webhook_rows("whatsapp", event_id(body))) == 1


def test_concurrent_duplicates_store_one_row_and_one_message():
    body, ids, _ = fixture("whatsapp_image.json")
    kafka = ps.Consumer(("webhook.inbound.received",))
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as ex:
        statuses = sorted(r.status for r in ex.map(lambda _: post_whatsapp(body), range(10)))
    assert statuses == [200] * 9 + [201], statuses
    wait_message("whatsapp", ids["wamid.xyzxyz"])
    wait_row_status("whatsapp", event_id(body), "done")
    assert len(webhook_rows("whatsapp", event_id(body))) == 1
    n = mpsql(f"SELECT count(*) FROM messages WHERE external_message_id = {sql_lit(ids['wamid.xyzxyz'])}")
    assert n == "1"
    kafka.wait_for("webhook.inbound.received", lambda e: e.key == event_id(body), timeout=15)
    kafka.settle()
    assert len(kafka.matching("webhook.inbound.received", lambda e: e.key == event_id(body))) == 1


def test_overlapping_deliveries_create_each_message_once():
    """Different bytes (so two rows) carrying the same message id: one message."""
    wa_id, wamid = new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    a = wa_text_delivery([(wamid, "same")], wa_id)
    b = wa_text_delivery([(wamid, "same")], wa_id, name="Renamed")
    assert post_whatsapp(a).status == 201 and post_whatsapp(b).status == 201
    wait_row_status("whatsapp", event_id(a), "done")
    wait_row_status("whatsapp", event_id(b), "done")
    assert mpsql(f"SELECT count(*) FROM messages WHERE external_message_id = {sql_lit(wamid)}") == "1"


def test_multi_entry_multi_message_delivery_creates_all():
    wa_id = new_wa_id()
    msgs = [(f"wamid.{uuid.uuid4().hex}", f"message {i} ✓ مرحبا") for i in range(6)]
    body = wa_text_delivery(msgs, wa_id, entries=3)
    assert len(json.loads(body)["entry"]) == 3
    assert post_whatsapp(body).status == 201
    rows = [wait_message("whatsapp", mid) for mid, _ in msgs]
    assert [r["body"] for r in rows] == [t for _, t in msgs]
    assert len({r["conversation_id"] for r in rows}) == 1, "one customer, one direct conversation"
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs), "processed in delivery order"


def test_long_text_is_stored_exactly():
    wa_id, wamid = new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    text = ("😀 Parley עברית " * 400)[:4096]
    body = wa_text_delivery([(wamid, text)], wa_id)
    assert post_whatsapp(body).status == 201
    assert wait_message("whatsapp", wamid)["body"] == text


def test_status_before_its_message_is_applied_once_it_exists():
    wamid = f"wamid.{uuid.uuid4().hex}"
    body = status_delivery(wamid, "delivered")
    assert post_whatsapp(body).status == 201
    row = wait_for(lambda: next((r for r in webhook_rows("whatsapp", event_id(body))
                                 if r["attempts"] >= 1 and r["status"] == "pending"), None),
                   "the status row to wait for its message", 15)
    assert "not known yet" in (row["last_error"] or ""), row
    msg = outbound_message(wamid)
    assert msg["status"] == "queued"
    wait_row_status("whatsapp", event_id(body), "done", timeout=40)
    assert message_row("whatsapp", wamid)["status"] == "delivered"


def test_statuses_out_of_order_move_forward_only():
    wamid = f"wamid.{uuid.uuid4().hex}"
    outbound_message(wamid)
    read, delivered = status_delivery(wamid, "read"), status_delivery(wamid, "delivered")
    assert post_whatsapp(read).status == 201
    wait_row_status("whatsapp", event_id(read), "done")
    assert post_whatsapp(delivered).status == 201
    wait_row_status("whatsapp", event_id(delivered), "done")
    assert message_row("whatsapp", wamid)["status"] == "read"


def test_failed_status_carries_the_provider_error():
    raw, ids, _ = fixture("whatsapp_status_failed.json")
    wamid = ids["wamid.xyzxyz"]
    outbound_message(wamid)
    assert post_whatsapp(raw).status == 201
    wait_row_status("whatsapp", event_id(raw), "done")
    m = message_row("whatsapp", wamid)
    assert m["status"] == "failed", m
    assert m["error"] == {"provider": "whatsapp", "code": "130472",
                          "message": "User's number is part of an experiment", "retryable": False}, m


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc", "sha256=zz",
                                       "forged"])
def test_unsigned_or_forged_is_401_and_nothing_stored(signature):
    body, ids, _ = fixture("whatsapp_text_pywa.json")
    r = post_whatsapp(body, signature=signature)
    assert_error(r, 401)
    assert webhook_rows("whatsapp", event_id(body)) == []


def test_signature_of_other_bytes_or_secret_is_refused():
    body, _, _ = fixture("whatsapp_text_pywa.json")
    reserialized = json.dumps(json.loads(body)).encode()
    assert_error(post_whatsapp(reserialized, signature=sign(body)), 401)
    assert_error(post_whatsapp(body, signature=sign(body, b"not-the-secret")), 401)
    assert webhook_rows("whatsapp", event_id(body)) == [] and webhook_rows("whatsapp", event_id(reserialized)) == []


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe{}", b'{"a":"\\u0000"}', b"[1,2]"])
def test_invalid_json_is_400_and_not_stored(body):
    assert_error(post_whatsapp(body), 400)
    assert webhook_rows("whatsapp", event_id(body)) == []


def test_large_delivery_within_3_mib_is_accepted():
    wa_id, wamid = new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    doc = json.loads(wa_text_delivery([(wamid, "big")], wa_id))
    doc["entry"][0]["changes"][0]["value"]["padding"] = "x" * (2 << 20)
    body = json.dumps(doc).encode()
    assert post_whatsapp(body).status == 201
    wait_message("whatsapp", wamid)


# ----------------------------------------------------------------------------------------------- Telegram

def telegram_update(text="hello there", user_id=None, chat_id=None, kind="message", message_id=None):
    user_id = user_id or (10**9 + uuid.uuid4().int % 10**9)
    return {
        "update_id": uuid.uuid4().int % 2**31,
        kind: {
            "message_id": message_id or uuid.uuid4().int % 10**6,
            "from": {"id": user_id, "is_bot": False, "first_name": "Waffle", "last_name": "Lapkin",
                     "username": "wl", "language_code": "en"},
            "chat": {"id": chat_id or user_id, "first_name": "Waffle", "type": "private"},
            "date": 1569518342,
            "text": text,
        },
    }


def test_telegram_text_end_to_end():
    upd = telegram_update("hi from telegram 👋")
    r = post_telegram(upd)
    assert r.status == 201 and r.json == {"status": "received"}, r
    msg = upd["message"]
    ext = f"{msg['chat']['id']}:{msg['message_id']}"
    m = wait_message("telegram", ext)
    assert m["body"] == "hi from telegram 👋" and m["content_type"] == "text" and m["direction"] == "inbound", m
    cust = customer_by_identity("telegram", str(msg["from"]["id"]))
    assert cust["name"] == "Waffle Lapkin" and cust["metadata"] == {"username": "wl", "language_code": "en"}, cust
    assert cust["id"] == m["sender_customer_id"]
    assert customer_by_identity("telegram_bot", TG_BOT_ID) is not None
    row = wait_row_status("telegram", f"{TG_BOT_ID}:{upd['update_id']}", "done")
    assert "X-Telegram-Bot-Api-Secret-Token" not in row["headers"], row


def test_telegram_edited_message_edits_the_earlier_message():
    upd = telegram_update("first words")
    msg = upd["message"]
    ext = f"{msg['chat']['id']}:{msg['message_id']}"
    assert post_telegram(upd).status == 201
    m = wait_message("telegram", ext)
    edit = telegram_update("second words", user_id=msg["from"]["id"], kind="edited_message",
                           message_id=msg["message_id"])
    assert post_telegram(edit).status == 201
    edited = wait_for(lambda: (lambda r: r if r and r["body"] == "second words" else None)(
        message_row("telegram", ext)), "the edit")
    assert edited["id"] == m["id"]
    hist = ps.Client(base_url=MESSAGING_URL).get(f"/api/messages/{m['id']}/history").json["data"]
    assert [(h["previous_body"], h["body"]) for h in hist] == [("first words", "second words")]
    wait_row_status("telegram", f"{TG_BOT_ID}:{edit['update_id']}", "done")


def test_telegram_edit_before_its_message_waits():
    upd = telegram_update("original")
    msg = upd["message"]
    ext = f"{msg['chat']['id']}:{msg['message_id']}"
    edit = telegram_update("edited", user_id=msg["from"]["id"], kind="edited_message",
                           message_id=msg["message_id"])
    assert post_telegram(edit).status == 201
    time.sleep(0.5)
    assert post_telegram(upd).status == 201
    wait_message("telegram", ext)
    final = wait_for(lambda: (lambda r: r if r and r["body"] == "edited" else None)(
        message_row("telegram", ext)), "the early edit applied", timeout=40)
    assert final["body"] == "edited"


def test_telegram_fixture_photo_caption():
    raw = (FIXTURES / "telegram_message_photo_caption.json").read_bytes()
    doc = json.loads(raw)
    doc["update_id"] = uuid.uuid4().int % 2**31
    doc["message"]["message_id"] = uuid.uuid4().int % 10**6
    assert post_telegram(doc).status == 201
    ext = f"{doc['message']['chat']['id']}:{doc['message']['message_id']}"
    m = wait_message("telegram", ext)
    assert m["content_type"] == "image" and m["body"] == doc["message"]["caption"], m
    assert m["metadata"]["media"]["provider_media_id"] == doc["message"]["photo"][-1]["file_id"], m


def test_telegram_duplicate_update_and_secret():
    upd = telegram_update()
    assert post_telegram(upd).status == 201
    r = post_telegram(upd)
    assert r.status == 200 and r.json == {"status": "ignored_duplicate"}, r
    other = telegram_update()
    assert_error(post_telegram(other, secret=None), 401)
    assert_error(post_telegram(other, secret="wrong"), 401)
    assert webhook_rows("telegram", f"{TG_BOT_ID}:{other['update_id']}") == []
    assert_error(post_telegram(b"{nope"), 400)
    assert_error(post_telegram({"message": {}}), 400)  # no update_id


def test_telegram_unknown_update_is_stored_and_done():
    upd = {"update_id": uuid.uuid4().int % 2**31, "some_future_kind": {"x": 1}}
    assert post_telegram(upd).status == 201
    wait_row_status("telegram", f"{TG_BOT_ID}:{upd['update_id']}", "done")


# ----------------------------------------------------------------------------------------------- dead letters

def test_dead_letter_after_max_attempts_then_replay():
    wamid = f"wamid.{uuid.uuid4().hex}"
    body = status_delivery(wamid, "read")
    kafka = ps.Consumer(("webhook.inbound.received",))
    assert post_whatsapp(body).status == 201
    row = wait_for(lambda: next((r for r in webhook_rows("whatsapp", event_id(body)) if r["attempts"] >= 1
                                 and r["status"] == "pending"), None), "a first failed attempt", 15)
    # Skip the backoff: one attempt left, due now.
    ipsql(f"UPDATE inbound_webhooks SET attempts = {MAX_ATTEMPTS - 1}, next_attempt_at = now() "
          f"WHERE id = {sql_lit(row['id'])} AND status = 'pending'")
    dead = wait_row_status("whatsapp", event_id(body), "dead")
    assert dead["attempts"] == MAX_ATTEMPTS and "not known yet" in dead["last_error"], dead

    c = ps.Client(INBOUND_URL)
    assert_error(c.get("/api/webhooks/dead", token=None), 401)
    r = c.get("/api/webhooks/dead?per_page=200")
    assert r.status == 200, r
    assert set(ps.PAGINATOR_KEYS) <= set(r.json), r
    listed = [d for d in r.json["data"] if d["id"] == row["id"]]
    assert listed and listed[0]["status"] == "dead" and listed[0]["last_error"], r.json["data"][:3]

    outbound_message(wamid)  # what it was waiting for
    assert_error(c.post(f"/api/webhooks/{row['id']}/replay", token=None), 401)
    assert_error(c.post(f"/api/webhooks/{uuid.uuid4()}/replay"), 404)
    assert_error(c.post("/api/webhooks/not-a-uuid/replay"), 404)
    r = c.post(f"/api/webhooks/{row['id']}/replay")
    assert r.status == 202, r
    assert r.json["id"] == row["id"] and r.json["attempts"] == 0, r
    wait_row_status("whatsapp", event_id(body), "done")
    assert message_row("whatsapp", wamid)["status"] == "read"
    # Announced by the first claim only: not again by the retries, the dead end or the replay.
    kafka.settle()
    evs = kafka.matching("webhook.inbound.received", lambda e: e.key == event_id(body))
    assert len(evs) == 1 and evs[0].env["payload"]["id"] == row["id"], evs


def test_through_the_gateway_without_api_key():
    """The public path: the channel calls the gateway, which forwards the exact bytes and the signature."""
    body, ids, _ = fixture("whatsapp_text_pywa.json")
    gw = ps.Client(ps.PUBLIC_URL)
    r = gw.request("POST", "/api/v1/webhooks/whatsapp", raw=body, token=None,
                   headers={"X-Hub-Signature-256": sign(body)})
    assert r.status == 201 and r.json == {"status": "received"}, r
    assert gw.request("POST", "/api/v1/webhooks/whatsapp", raw=body, token=None,
                      headers={"X-Hub-Signature-256": sign(body)}).status == 200
    assert_error(gw.request("POST", "/api/v1/webhooks/whatsapp", raw=body + b" ", token=None,
                            headers={"X-Hub-Signature-256": sign(body)}), 401)
    wait_message("whatsapp", ids["wamid.xyzxyz"])
