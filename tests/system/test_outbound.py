"""inbound-svc, sending half (SPEC 6, 10; issue 5): outbound messages created on messaging-svc are delivered to the
fake WhatsApp / Telegram provider (tests/system/fake_provider.py) by inbound-svc, retried, failed for good, written
back, and never sent twice.

Each test makes its own customers with random channel ids, so the fake provider's per-recipient scripts and request
logs never mix between tests. A message never sent is proved by a later message of the same conversation: its
events share a Kafka partition, so when the later one has been sent, the earlier one has been decided.
"""

import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

import fake_provider as fake
import parley_sys as ps
import test_media as tm
from parley_sys import sql_lit
from test_runtime import superuser_sql

INBOUND_URL = os.environ.get("PARLEY_INBOUND_URL", "http://127.0.0.1:8005")
CONVERSATION_URL = os.environ.get("PARLEY_CONVERSATION_URL", "http://127.0.0.1:8002")
MESSAGING_URL = os.environ.get("PARLEY_MESSAGING_URL", "http://127.0.0.1:8003")
DB_BASE = "postgresql://parley:parley@127.0.0.1:55432"
INBOUND_DB_URL = os.environ.get("PARLEY_TEST_INBOUND_DATABASE_URL", f"{DB_BASE}/parley_inbound")
WA_TOKEN = os.environ.get("PARLEY_WHATSAPP_ACCESS_TOKEN", "dev-whatsapp-token")
TG_BOT_TOKEN = os.environ.get("PARLEY_TELEGRAM_BOT_TOKEN", "123456:dev-telegram-token")
TG_BOT_ID = TG_BOT_TOKEN.split(":")[0]
TIMEOUT_MS = int(os.environ.get("PARLEY_OUTBOUND_TIMEOUT_MS", "15000"))
LEASE_S = TIMEOUT_MS // 1000 + 5  # OUTB_LEASE_MARGIN_S in inbound-svc/outbound.h


# ----------------------------------------------------------------------------------------------- helpers

def ipsql(sql):
    return ps.psql(sql, url=INBOUND_DB_URL)


def new_number():
    return str(10**11 + uuid.uuid4().int % (9 * 10**11))


def customer(external_type, external_id, name=None):
    body = {"external_type": external_type, "external_id": external_id}
    if name:
        body["name"] = name
    r = ps.Client(ps.CUSTOMER_URL).post("/api/customers", body)
    assert r.status in (200, 201), r
    return r.json["id"]


def conversation(*participants, **fields):
    body = {"type": "direct" if len(participants) == 2 else "group", "participants": list(participants)}
    body.update(fields)
    r = ps.Client(CONVERSATION_URL).post("/api/conversations", body)
    assert r.status in (200, 201), r
    return r.json["id"]


def whatsapp_pair():
    """(conversation id, business customer id, wa_id, phone_number_id) of a fresh WhatsApp conversation."""
    wa_id, pnid = new_number(), new_number()
    biz = customer("whatsapp_business", pnid, "+1 555 000")
    cust = customer("whatsapp", wa_id, "Wanda")
    return conversation(cust, biz), biz, wa_id, pnid


def telegram_pair():
    """(conversation id, bot customer id, chat id) of a fresh Telegram conversation with the bot."""
    chat = new_number()
    bot = customer("telegram_bot", TG_BOT_ID, "Parley bot")
    cust = customer("telegram", chat, "Tom")
    return conversation(cust, bot), bot, chat


def send(conv, sender, body=None, expect=201, request_id=None, **fields):
    m = {"conversation_id": conv, "sender_customer_id": sender, "direction": "outbound",
         "body": body if body is not None else f"hello {uuid.uuid4().hex[:8]} ✓ مرحبا"}
    m.update(fields)
    r = ps.Client(MESSAGING_URL).post("/api/messages", m, request_id=request_id)
    assert r.status == expect, r
    return r.json


def get_message(mid):
    r = ps.Client(MESSAGING_URL).get(f"/api/messages/{mid}")
    assert r.status == 200, r
    return r.json


def wait_for(fn, what, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(interval)


def wait_status(mid, status, timeout=30.0):
    def check():
        m = get_message(mid)
        return m if m["status"] == status else None
    try:
        return wait_for(check, f"message {mid} to be {status}", timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; now {get_message(mid)}; delivery {delivery(mid)}") from None


def delivery(mid):
    out = ipsql(f"SELECT row_to_json(d) FROM deliveries d WHERE message_id = {sql_lit(mid)}")
    return json.loads(out) if out else None


def attempts(mid):
    out = ipsql("SELECT row_to_json(a) FROM (SELECT attempt, outcome, http_status, provider_message_id, error "
                f"FROM delivery_attempts WHERE message_id = {sql_lit(mid)} ORDER BY id) a")
    return [json.loads(line) for line in out.splitlines() if line]


def handled_up_to(kafka, conv):
    """Returns once inbound-svc has handled every message.outbound.created event of conv seen so far.  A Kafka
    partition is handled in order, so it is enough to see a probe message sent whose event came later on the same
    partition: probes in fresh WhatsApp conversations are sent until one lands there."""
    evs = kafka.wait_for("message.outbound.created", lambda e: e.key == conv)
    partition = evs[-1].partition
    for _ in range(30):
        pconv, pbiz, _, _ = whatsapp_pair()
        probe = send(pconv, pbiz)
        ev = kafka.wait_for("message.outbound.created", lambda e: e.key == pconv)[0]
        if ev.partition == partition:
            wait_status(probe["id"], "sent")
            return
    raise AssertionError(f"no probe conversation landed on partition {partition}")


def sends(key):
    """The send requests the fake provider saw for a recipient."""
    return [r for r in fake.requests_for(key) if r["method"] == "POST"]


def wa_error(code, message, status=400):
    return {"status": status, "body": {"error": {"message": message, "type": "OAuthException", "code": code,
                                                 "fbtrace_id": "T"}}}


def svc(action, *env):
    p = subprocess.run(["env", *env, "bash", str(ps.ROOT / "deploy" / "local" / "svc.sh"), action, "inbound-svc"],
                       cwd=str(ps.ROOT), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"svc.sh {action} inbound-svc: {p.stdout[-1500:]}{p.stderr[-1500:]}"


# ----------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def services_up():
    for name, url in (("inbound-svc", INBOUND_URL), ("messaging-svc", MESSAGING_URL),
                      ("conversation-svc", CONVERSATION_URL)):
        assert ps.healthz_ok(url, timeout=5), f"{name} does not answer {url}/healthz (deploy/local/up.sh?)"
    ipsql("SELECT 1 FROM deliveries LIMIT 1")
    fake.ensure_running()


# ----------------------------------------------------------------------------------------------- success

def test_whatsapp_send_writes_back_id_and_sent():
    conv, biz, wa_id, pnid = whatsapp_pair()
    rid = ps.new_request_id("outb")
    kafka = ps.Consumer(("message.status.updated",))
    m = send(conv, biz, body="Hello 👋 from Parley", request_id=rid)
    assert m["status"] == "queued" and m["external_message_id"] is None

    sent = wait_status(m["id"], "sent")
    reqs = sends(wa_id)
    assert len(reqs) == 1, reqs
    req = reqs[0]
    assert req["path"] == f"/whatsapp/{pnid}/messages", req
    assert req["headers"].get("Authorization") == f"Bearer {WA_TOKEN}", req["headers"]
    assert "X-Service-Token" not in req["headers"], "the service token must never leave Parley"
    assert req["body"] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id,
                           "type": "text", "text": {"body": "Hello 👋 from Parley"}}, req["body"]
    assert sent["external_message_id"].startswith("wamid.FAKE"), sent
    assert sent["channel"] == "whatsapp" and sent["sent_at"] is not None and sent["error"] is None, sent
    d = delivery(m["id"])
    assert d["state"] == "sent" and d["attempts"] == 1 and d["synced"] is True, d
    assert d["provider_message_id"] == sent["external_message_id"], d
    assert [a["outcome"] for a in attempts(m["id"])] == ["sent"]
    # The status event carries the provider id and the trace of the request that created the message.
    ev = kafka.wait_for("message.status.updated", lambda e: e.env["payload"]["message_id"] == m["id"])[0]
    assert ev.env["payload"]["status"] == "sent" and ev.env["payload"]["previous_status"] == "queued", ev
    assert ev.env["payload"]["external_message_id"] == sent["external_message_id"], ev
    assert ev.trace_id == rid, ev
    # A WhatsApp status for that id now finds the message (the receiving side looks it up by channel + id).
    r = ps.Client(MESSAGING_URL).request(
        "PUT", f"/api/messages/by-external/whatsapp/{ps.q(sent['external_message_id'])}",
        json_body={"status": "delivered"})
    assert r.status == 200 and r.json["id"] == m["id"] and r.json["status"] == "delivered", r


def test_telegram_send_writes_back_chat_and_message_id():
    conv, bot, chat = telegram_pair()
    m = send(conv, bot, body="Привет from the bot")
    sent = wait_status(m["id"], "sent")
    reqs = sends(chat)
    assert len(reqs) == 1, reqs
    assert reqs[0]["path"] == f"/telegram/bot{TG_BOT_TOKEN}/sendMessage", reqs[0]["path"]
    assert reqs[0]["body"] == {"chat_id": int(chat), "text": "Привет from the bot"}, reqs[0]["body"]
    assert "Authorization" not in reqs[0]["headers"] and "X-Service-Token" not in reqs[0]["headers"]
    ext = sent["external_message_id"]
    assert ext.startswith(f"{chat}:") and ext.split(":")[1].isdigit(), sent
    assert sent["channel"] == "telegram", sent


def test_explicit_channel_picks_the_identity():
    """A conversation with both a WhatsApp and a Telegram customer: the message's channel decides."""
    wa_id, pnid, chat = new_number(), new_number(), new_number()
    biz = customer("whatsapp_business", pnid)
    a = customer("whatsapp", wa_id)
    b = customer("telegram", chat)
    conv = conversation(biz, a, b)
    m = send(conv, biz, channel="telegram")
    wait_status(m["id"], "sent")
    assert len(sends(chat)) == 1 and sends(wa_id) == []


def test_group_chat_goes_to_the_channel_chat_id():
    chat = f"-100{new_number()}"
    bot = customer("telegram_bot", TG_BOT_ID)
    members = [customer("telegram", new_number()) for _ in range(2)]
    conv = conversation(bot, *members, metadata={"channel_chat_id": chat})
    m = send(conv, bot)
    sent = wait_status(m["id"], "sent")
    reqs = sends(chat)
    assert len(reqs) == 1 and reqs[0]["body"]["chat_id"] == int(chat), reqs
    assert sent["external_message_id"].startswith(f"{chat}:"), sent


# ----------------------------------------------------------------------------------------------- retries

def test_whatsapp_500_then_success():
    conv, biz, wa_id, _ = whatsapp_pair()
    fake.script(wa_id, [{"status": 500, "body": {"error": {"message": "Internal", "code": 1}}}])
    m = send(conv, biz)
    sent = wait_status(m["id"], "sent")
    assert len(sends(wa_id)) == 2
    assert [(a["outcome"], a["http_status"]) for a in attempts(m["id"])] == [("retry", 500), ("sent", 200)]
    assert attempts(m["id"])[0]["error"]["retryable"] is True
    d = delivery(m["id"])
    assert d["attempts"] == 2 and d["state"] == "sent", d
    assert sent["error"] is None, sent


def test_whatsapp_429_honours_retry_after():
    conv, biz, wa_id, _ = whatsapp_pair()
    fake.script(wa_id, [{"status": 429, "headers": {"Retry-After": "2"},
                         "body": {"error": {"message": "Rate limit hit", "code": 130429}}}])
    m = send(conv, biz)
    wait_status(m["id"], "sent")
    reqs = sends(wa_id)
    assert len(reqs) == 2, reqs
    assert reqs[1]["at"] - reqs[0]["at"] >= 1.9, "the retry came before Retry-After"
    assert attempts(m["id"])[0]["error"]["code"] == "130429"


@pytest.mark.parametrize("code", [4, 80007, 131048, 131056])
def test_whatsapp_throttling_codes_are_retried(code):
    conv, biz, wa_id, _ = whatsapp_pair()
    fake.script(wa_id, [wa_error(code, "throttled")])
    m = send(conv, biz)
    wait_status(m["id"], "sent")
    assert [a["outcome"] for a in attempts(m["id"])] == ["retry", "sent"]


def test_transport_error_is_retried():
    """The provider closes the connection without an answer.  libcurl itself tries once more on a fresh
    connection when a kept-alive one dies, so two drops make the try fail; the next try succeeds."""
    conv, biz, wa_id, _ = whatsapp_pair()
    fake.script(wa_id, [{"drop": True}, {"drop": True}])
    m = send(conv, biz)
    wait_status(m["id"], "sent")
    first = attempts(m["id"])[0]
    assert first["outcome"] == "retry" and first["http_status"] is None, first
    assert first["error"]["code"] == "transport", first


def test_telegram_429_waits_retry_after():
    conv, bot, chat = telegram_pair()
    fake.script(chat, [{"status": 429, "body": {"ok": False, "error_code": 429,
                                                "description": "Too Many Requests: retry after 2",
                                                "parameters": {"retry_after": 2}}}])
    m = send(conv, bot)
    wait_status(m["id"], "sent")
    reqs = sends(chat)
    assert len(reqs) == 2 and reqs[1]["at"] - reqs[0]["at"] >= 1.9, reqs


# ----------------------------------------------------------------------------------------------- permanent failures

def test_whatsapp_131026_fails_for_good():
    conv, biz, wa_id, _ = whatsapp_pair()
    fake.script(wa_id, [wa_error(131026, "Message undeliverable")])
    m = send(conv, biz)
    failed = wait_status(m["id"], "failed")
    assert failed["error"] == {"provider": "whatsapp", "code": "131026", "message": "Message undeliverable",
                               "retryable": False}, failed
    assert failed["external_message_id"] is None
    time.sleep(1.5)  # longer than the first backoff: nothing more is tried
    assert len(sends(wa_id)) == 1
    d = delivery(m["id"])
    assert d["state"] == "failed" and d["attempts"] == 1 and d["synced"] is True, d


def test_telegram_403_blocked_fails_for_good():
    conv, bot, chat = telegram_pair()
    fake.script(chat, [{"status": 403, "body": {"ok": False, "error_code": 403,
                                                "description": "Forbidden: bot was blocked by the user"}}])
    m = send(conv, bot)
    failed = wait_status(m["id"], "failed")
    assert failed["error"] == {"provider": "telegram", "code": "403",
                               "message": "Forbidden: bot was blocked by the user", "retryable": False}, failed
    assert len(sends(chat)) == 1


def test_content_channels_do_not_carry_is_failed_without_a_call():
    """A location (or any content type that is neither text nor a media kind) is not sent: failed at once."""
    conv, biz, wa_id, _ = whatsapp_pair()
    m = send(conv, biz, content_type="location", body="")
    failed = wait_status(m["id"], "failed")
    assert failed["error"]["code"] == "unsupported_content_type" and failed["error"]["retryable"] is False
    assert sends(wa_id) == []
    assert attempts(m["id"]) == []


def test_whatsapp_without_a_sender_number_is_failed_without_a_call():
    """A WhatsApp customer but no whatsapp_business participant (and no PARLEY_WHATSAPP_PHONE_NUMBER_ID in the
    local stack): the message cannot go out, and says why."""
    wa_id = new_number()
    agent = customer(ps.new_type("agent"), new_number())
    conv = conversation(customer("whatsapp", wa_id), agent)
    m = send(conv, agent)
    failed = wait_status(m["id"], "failed")
    assert failed["error"]["provider"] == "whatsapp" and failed["error"]["code"] == "not_configured", failed
    assert sends(wa_id) == []


# ----------------------------------------------------------------------------------------------- media

def upload(data, filename):
    """A media-svc resource of data (as an agent's upload would make it)."""
    return tm.upload_ok(ps.Client(tm.MEDIA_URL), data, filename)


def fetch_public(url):
    """GET a provider-facing link as the provider would: no API key, no service token.  (status, bytes)"""
    assert url.startswith(f"{ps.PUBLIC_URL}/api/v1/media/"), url  # the local gateway, never the internet
    with urllib.request.urlopen(urllib.request.Request(url), timeout=10) as r:
        return r.status, r.read()


def assert_signed_link(link, media, data):
    assert link.startswith(f"{ps.PUBLIC_URL}/api/v1/media/{media['id']}/content?expires="), link
    assert "&signature=" in link, link
    assert fetch_public(link) == (200, data)


def test_whatsapp_image_with_caption_links_a_working_signed_url():
    conv, biz, wa_id, pnid = whatsapp_pair()
    data = tm.unique_png()
    med = upload(data, "look.png")
    m = send(conv, biz, body="Look 👀 this", content_type="image", media_id=med["id"])
    sent = wait_status(m["id"], "sent")
    reqs = sends(wa_id)
    assert len(reqs) == 1, reqs
    assert reqs[0]["path"] == f"/whatsapp/{pnid}/messages", reqs[0]
    body = reqs[0]["body"]
    link = body.get("image", {}).get("link", "")
    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id,
                    "type": "image", "image": {"link": link, "caption": "Look 👀 this"}}, body
    assert_signed_link(link, med, data)
    assert sent["external_message_id"].startswith("wamid.FAKE") and sent["media_id"] == med["id"], sent
    d = delivery(m["id"])
    assert (d["content_type"], d["media_id"], d["state"]) == ("image", med["id"], "sent"), d


def test_whatsapp_document_carries_its_filename():
    conv, biz, wa_id, _ = whatsapp_pair()
    data = tm.pdf()
    med = upload(data, "Quote Q-17.pdf")
    assert med["filename"] == "Quote Q-17.pdf", med
    m = send(conv, biz, body="Your quote", content_type="document", media_id=med["id"])
    wait_status(m["id"], "sent")
    reqs = sends(wa_id)
    assert len(reqs) == 1, reqs
    doc = reqs[0]["body"]["document"]
    assert reqs[0]["body"]["type"] == "document", reqs[0]["body"]
    assert doc == {"link": doc["link"], "caption": "Your quote", "filename": "Quote Q-17.pdf"}, doc
    assert_signed_link(doc["link"], med, data)


def test_telegram_photo_with_caption():
    conv, bot, chat = telegram_pair()
    data = tm.unique_png()
    med = upload(data, "p.png")
    m = send(conv, bot, body="Фото 📷", content_type="image", media_id=med["id"])
    sent = wait_status(m["id"], "sent")
    reqs = sends(chat)
    assert len(reqs) == 1, reqs
    assert reqs[0]["path"] == f"/telegram/bot{TG_BOT_TOKEN}/sendPhoto", reqs[0]["path"]
    link = reqs[0]["body"].get("photo", "")
    assert reqs[0]["body"] == {"chat_id": int(chat), "photo": link, "caption": "Фото 📷"}, reqs[0]["body"]
    assert_signed_link(link, med, data)
    ext = sent["external_message_id"]
    assert ext.startswith(f"{chat}:") and ext.split(":")[1].isdigit(), sent


def test_telegram_document_without_caption():
    conv, bot, chat = telegram_pair()
    data = tm.pdf()
    med = upload(data, "terms.pdf")
    m = send(conv, bot, body="", content_type="document", media_id=med["id"])
    wait_status(m["id"], "sent")
    reqs = sends(chat)
    assert len(reqs) == 1, reqs
    assert reqs[0]["path"] == f"/telegram/bot{TG_BOT_TOKEN}/sendDocument", reqs[0]["path"]
    link = reqs[0]["body"].get("document", "")
    assert reqs[0]["body"] == {"chat_id": int(chat), "document": link}, reqs[0]["body"]  # no empty caption
    assert_signed_link(link, med, data)


def test_telegram_document_other_than_pdf_gif_zip_is_uploaded():
    """Telegram's sendDocument takes only GIF, PDF and ZIP by URL: any other file goes up with the request."""
    conv, bot, chat = telegram_pair()
    data = ("Order notes 📝\n" + uuid.uuid4().hex * 200).encode()
    med = upload(data, "notes 7.txt")
    assert med["content_type"].startswith("text/plain"), med
    m = send(conv, bot, body="Your notes", content_type="document", media_id=med["id"])
    sent = wait_status(m["id"], "sent")
    reqs = sends(chat)
    assert len(reqs) == 1, reqs
    assert reqs[0]["path"] == f"/telegram/bot{TG_BOT_TOKEN}/sendDocument", reqs[0]["path"]
    assert reqs[0]["headers"]["Content-Type"].startswith("multipart/form-data"), reqs[0]["headers"]
    assert reqs[0]["body"] == {
        "chat_id": chat, "caption": "Your notes",
        "document": {"filename": "notes 7.txt", "content_type": "text/plain", "size": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()}}, reqs[0]["body"]
    assert sent["external_message_id"].startswith(f"{chat}:"), sent
    leftovers = [f for f in os.listdir(os.environ.get("TMPDIR") or "/tmp") if f.startswith("parley-upload-")]
    assert leftovers == [], f"the upload file is removed after the try: {leftovers}"


def test_fake_telegram_refuses_other_documents_by_url():
    """The stand-in keeps Telegram's rule, so the test above would fail if such a file went by link."""
    data = ("plain words " + uuid.uuid4().hex).encode()
    med = upload(data, "words.txt")
    link = ps.Client(tm.MEDIA_URL).get(f"/api/media/{med['id']}/download").json["download_url"]
    status, body = fake._call("POST", f"/telegram/bot{TG_BOT_TOKEN}/sendDocument",
                              {"chat_id": new_number(), "document": link})
    assert status == 400 and body["description"] == "Bad Request: wrong type of the web page content", body


def test_media_message_without_media_id_fails_without_a_call():
    conv, biz, wa_id, _ = whatsapp_pair()
    m = send(conv, biz, body="where is the picture?", content_type="image")
    failed = wait_status(m["id"], "failed")
    assert failed["error"]["provider"] == "whatsapp", failed
    assert failed["error"]["code"] == "media_id_missing" and failed["error"]["retryable"] is False, failed
    assert sends(wa_id) == [] and attempts(m["id"]) == []


def test_unknown_media_id_fails_for_good_without_a_provider_call():
    conv, bot, chat = telegram_pair()
    ghost = str(uuid.uuid4())
    m = send(conv, bot, body="", content_type="video", media_id=ghost)
    failed = wait_status(m["id"], "failed")
    assert failed["error"]["code"] == "media_not_found" and failed["error"]["retryable"] is False, failed
    assert ghost in failed["error"]["message"], failed
    assert sends(chat) == []
    assert [(a["outcome"], a["http_status"]) for a in attempts(m["id"])] == [("failed", None)]


@pytest.mark.parametrize("channel,content_type,body,code", [
    ("whatsapp", "audio", "a caption WhatsApp audio cannot carry", "caption_not_supported"),
    ("telegram", "sticker", "stickers take no caption", "caption_not_supported"),
    ("telegram", "image", "x" * 1025, "caption_too_long"),
    ("whatsapp", "document", "é" * 1025, "caption_too_long"),
])
def test_caption_the_channel_cannot_take_fails_without_a_call(channel, content_type, body, code):
    """The text is never dropped nor split off: the message fails for good, saying why."""
    if channel == "whatsapp":
        conv, sender, key, _ = whatsapp_pair()
    else:
        conv, sender, key = telegram_pair()
    m = send(conv, sender, body=body, content_type=content_type, media_id=str(uuid.uuid4()))
    failed = wait_status(m["id"], "failed")
    assert (failed["error"]["provider"], failed["error"]["code"]) == (channel, code), failed
    assert sends(key) == [] and attempts(m["id"]) == []


def test_media_svc_unreachable_is_retried_then_failed():
    """A sender whose media-svc does not answer ends each try as retryable (no provider call), and fails the
    message with that error after PARLEY_OUTBOUND_MAX_ATTEMPTS.  The stack's media-svc stays up: a spare
    inbound-svc, pointed at a dead PARLEY_MEDIA_URL and at no Kafka broker, runs on a database of its own,
    where the test records the delivery its consumer would have recorded."""
    db = f"parley_outb_{uuid.uuid4().hex[:12]}"
    url = f"{DB_BASE}/{db}"
    superuser_sql(f"CREATE DATABASE {db} OWNER parley")
    spare = None
    try:
        spare = ps.SpareBinary(
            "inbound-svc", url, KAFKA_BROKERS=f"127.0.0.1:{ps.free_port()}",
            PARLEY_MEDIA_URL=f"http://127.0.0.1:{ps.free_port()}", PARLEY_OUTBOUND_MAX_ATTEMPTS="2",
            PARLEY_OUTBOUND_BACKOFF_BASE_MS="100", PARLEY_WHATSAPP_API_BASE=f"{fake.BASE}/whatsapp",
            PARLEY_TELEGRAM_API_BASE=f"{fake.BASE}/telegram", PARLEY_LOG_LEVEL="warn")
        # A message the stack's inbound-svc leaves alone (no channel identity in its conversation).
        a, b = (customer(ps.new_type("x"), new_number()) for _ in range(2))
        m = send(conversation(a, b), a, body="", content_type="image",
                 media_id=upload(tm.unique_png(), "q.png")["id"])
        wa_id = new_number()
        ps.psql("INSERT INTO deliveries (message_id, conversation_id, seq, provider, sender, recipient, body,"
                f" content_type, media_id) VALUES ({sql_lit(m['id'])}, {sql_lit(m['conversation_id'])},"
                f" {m['seq']}, 'whatsapp', {sql_lit(new_number())}, {sql_lit(wa_id)}, '', 'image',"
                f" {sql_lit(m['media_id'])})", url=url)
        failed = wait_status(m["id"], "failed")
        assert failed["error"]["code"] == "media_unavailable" and failed["error"]["retryable"] is True, failed
        out = ps.psql("SELECT row_to_json(a) FROM (SELECT outcome, http_status FROM delivery_attempts"
                      f" WHERE message_id = {sql_lit(m['id'])} ORDER BY id) a", url=url)
        assert [json.loads(x) for x in out.splitlines()] == [{"outcome": "retry", "http_status": None},
                                                             {"outcome": "failed", "http_status": None}], out
        assert sends(wa_id) == []
    finally:
        if spare is not None:
            spare.stop()
        superuser_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


# ----------------------------------------------------------------------------------------------- never sent

def test_echo_and_non_queued_messages_are_never_sent():
    """An echo (outbound with a provider id, as the receiving side stores it) is not sent; a later message is."""
    conv, biz, wa_id, _ = whatsapp_pair()
    echo = send(conv, biz, channel="whatsapp", external_message_id=f"wamid.ECHO{uuid.uuid4().hex}")
    inbound = send(conv, biz, direction="inbound")
    later = send(conv, biz)
    wait_status(later["id"], "sent")
    reqs = sends(wa_id)
    assert len(reqs) == 1 and reqs[0]["body"]["text"]["body"] == later["body"], reqs
    assert delivery(echo["id"]) is None and delivery(inbound["id"]) is None
    assert get_message(echo["id"])["status"] == "queued"


def test_no_channel_identity_no_send():
    """Nobody in the conversation is a WhatsApp or Telegram customer (or the message names a channel that is not
    one): nothing is sent or recorded, and the message stays queued."""
    wa_id, pnid = new_number(), new_number()
    biz = customer("whatsapp_business", pnid)
    others = [customer(ps.new_type("sms"), wa_id), customer(ps.new_type("email"), new_number())]
    conv = conversation(biz, *others)
    kafka = ps.Consumer(("message.outbound.created",))
    msgs = [send(conv, biz), send(conv, biz, channel="sms")]
    handled_up_to(kafka, conv)
    for m in msgs:
        assert delivery(m["id"]) is None
        assert get_message(m["id"])["status"] == "queued"
    assert sends(wa_id) == []


# ----------------------------------------------------------------------------------------------- crash safety

def test_redelivered_event_and_lost_write_back_never_resend():
    """The event comes again (as after a crash before the commit) and the write-back is redone: one send."""
    conv, biz, wa_id, _ = whatsapp_pair()
    m = send(conv, biz)
    wait_status(m["id"], "sent")
    ext = get_message(m["id"])["external_message_id"]
    # Replay the message.outbound.created event with a new event id, as a redelivery would.
    consumer = ps.Consumer(("message.outbound.created",))
    envelope = {"event_id": str(uuid.uuid4()), "topic": "message.outbound.created", "source_service": "messaging-svc",
                "occurred_at": m["created_at"], "trace_id": "replay", "schema_version": 1, "key": conv,
                "payload": m}
    p = subprocess.run(["kcat", "-b", ps.KAFKA_BROKERS, "-P", "-t", "message.outbound.created", "-k", conv],
                       input=json.dumps(envelope), text=True, capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    consumer.wait_for("message.outbound.created", lambda e: e.event_id == envelope["event_id"])
    # And lose the write-back: the row says sent but messaging-svc must be told again.
    ipsql(f"UPDATE deliveries SET synced = false WHERE message_id = {sql_lit(m['id'])}")
    wait_for(lambda: delivery(m["id"])["synced"], "the write-back to be redone")
    later = send(conv, biz)  # same partition: once it is sent, the replayed event has been handled
    wait_status(later["id"], "sent")
    assert len(sends(wa_id)) == 2  # m once, later once
    assert delivery(m["id"])["attempts"] == 1
    assert get_message(m["id"])["external_message_id"] == ext


def test_restart_mid_retry_sends_once():
    conv, biz, wa_id, _ = whatsapp_pair()
    fake.script(wa_id, [{"status": 503, "body": {"error": {"message": "down", "code": 2}}},
                        {"status": 503, "body": {"error": {"message": "down", "code": 2}}}])
    m = send(conv, biz)
    wait_for(lambda: len(sends(wa_id)) >= 1, "the first try")
    svc("restart")
    sent = wait_status(m["id"], "sent", timeout=60)
    reqs = sends(wa_id)
    assert len(reqs) == 3, reqs
    outcomes = [a["outcome"] for a in attempts(m["id"])]
    assert outcomes.count("sent") == 1 and outcomes[-1] == "sent", outcomes
    assert sent["external_message_id"] == delivery(m["id"])["provider_message_id"]


@pytest.mark.slow
def test_kill_9_during_a_try_sends_once_after_the_lease():
    """inbound-svc dies while the provider is still answering (a 500, slowly): after the restart the claimed row
    is tried again once its lease ends, and the message is sent exactly once."""
    conv, biz, wa_id, _ = whatsapp_pair()
    fake.script(wa_id, [{"status": 500, "delay_ms": 3000, "body": {"error": {"message": "slow", "code": 1}}}])
    m = send(conv, biz)
    wait_for(lambda: len(sends(wa_id)) >= 1, "the first try to reach the provider")
    pid = ps.read_pid("inbound-svc")
    assert ps.pid_alive(pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not ps.pid_alive(pid), "inbound-svc to die", timeout=10)
    assert delivery(m["id"])["state"] == "sending"
    svc("start")
    sent = wait_status(m["id"], "sent", timeout=LEASE_S + 40)
    assert len(sends(wa_id)) == 2
    assert [a["outcome"] for a in attempts(m["id"])] == ["sent"]  # the killed try left no outcome
    assert delivery(m["id"])["attempts"] == 2
    assert sent["external_message_id"].startswith("wamid.FAKE")


@pytest.mark.slow
def test_retries_stop_at_max_attempts():
    """With PARLEY_OUTBOUND_MAX_ATTEMPTS=3 a provider that keeps failing is tried three times, then the message
    is failed with the last (retryable) error."""
    try:
        svc("restart", "PARLEY_OUTBOUND_MAX_ATTEMPTS=3", "PARLEY_OUTBOUND_BACKOFF_BASE_MS=100")
        conv, biz, wa_id, _ = whatsapp_pair()
        fake.script(wa_id, [{"status": 502, "body": "bad gateway"}] * 5)
        m = send(conv, biz)
        failed = wait_status(m["id"], "failed")
        assert failed["error"] == {"provider": "whatsapp", "code": "502",
                                   "message": "the provider refused the message", "retryable": True}, failed
        assert len(sends(wa_id)) == 3
        assert [a["outcome"] for a in attempts(m["id"])] == ["retry", "retry", "failed"]
    finally:
        svc("restart")


def test_messaging_write_back_contract():
    """The PUT inbound-svc writes back with (messaging-svc): the provider id and channel are recorded once, the
    same id again changes nothing, another id is a conflict."""
    a, b = (customer(ps.new_type("x"), new_number()) for _ in range(2))
    m = send(conversation(a, b), a)
    api = ps.Client(MESSAGING_URL)
    ext = f"wamid.WB{uuid.uuid4().hex}"
    r = api.request("PUT", f"/api/messages/{m['id']}",
                    json_body={"status": "sent", "external_message_id": ext, "channel": "whatsapp"})
    assert r.status == 200, r
    assert (r.json["status"], r.json["external_message_id"], r.json["channel"]) == ("sent", ext, "whatsapp"), r
    version = r.json["version"]
    r = api.request("PUT", f"/api/messages/{m['id']}", json_body={"external_message_id": ext, "channel": "whatsapp"})
    assert r.status == 200 and r.json["version"] == version, r
    r = api.request("PUT", f"/api/messages/{m['id']}", json_body={"external_message_id": f"{ext}-other"})
    ps.assert_error(r, 409, "conflict")
    r = api.request("PUT", f"/api/messages/{m['id']}", json_body={"external_message_id": ext, "channel": "telegram"})
    ps.assert_error(r, 409, "conflict")
    r = api.request("PUT", f"/api/messages/{m['id']}", json_body={"external_message_id": ""})
    ps.assert_validation(r, "external_message_id")
