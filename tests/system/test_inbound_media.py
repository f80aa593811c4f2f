"""inbound-svc media (SPEC 10 metadata.media; issue 5): a media message's file is fetched through media-svc
(POST /api/media/fetch) once its conversation is known, and the message carries the media resource's id in
media_id and metadata.media.media_id.  A fetch refused for good (404, 415...) stores the message without its file
(metadata.media.fetch_error); provider trouble (502) retries the webhook row, which then converges on one
message and one media resource.  Against the running stack and the fake channel provider.
"""

import hashlib
import json
import uuid

import pytest

import fake_provider as fp
import parley_sys as ps
import test_inbound as inb
import test_media as tm
from parley_sys import sql_lit


@pytest.fixture(scope="module", autouse=True)
def services_up():
    for url in (inb.INBOUND_URL, inb.MESSAGING_URL, tm.MEDIA_URL):
        assert ps.healthz_ok(url, timeout=5), f"{url}/healthz does not answer (deploy/local/up.sh?)"
    fp.ensure_running()


def wa_image(media_id, caption="a photo", wamid=None, wa_id=None):
    """A WhatsApp image message delivery (documented shape) naming media_id; returns (body, wamid)."""
    wamid = wamid or f"wamid.{uuid.uuid4().hex}"
    wa_id = wa_id or inb.new_wa_id()
    doc = json.loads(inb.wa_text_delivery([(wamid, "x")], wa_id))
    msg = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    del msg["text"]
    msg["type"] = "image"
    msg["image"] = {"caption": caption, "mime_type": "image/png", "sha256": "ignored", "id": media_id}
    return json.dumps(doc).encode(), wamid


def media_resource(media_id):
    r = ps.Client(tm.MEDIA_URL).get(f"/api/media/{media_id}")
    assert r.status == 200, r
    return r.json


def lookups(media_id):
    """The provider's media lookups (GET /whatsapp/{id}) made for media_id."""
    return [q for q in fp.requests_for(media_id) if q["method"] == "GET" and q["path"].endswith(f"/{media_id}")]


def test_whatsapp_image_is_fetched_and_linked():
    media_id, data = f"wa{uuid.uuid4().hex}", tm.unique_png(5, 3)
    fp.put_media("whatsapp", media_id, data, "image/png")
    body, wamid = wa_image(media_id, caption="look at this")
    assert inb.post_whatsapp(body).status == 201
    m = inb.wait_message("whatsapp", wamid)
    assert m["media_id"] is not None, m
    assert m["metadata"]["media"]["media_id"] == m["media_id"], m
    assert m["metadata"]["media"]["provider_media_id"] == media_id, m
    assert m["body"] == "look at this" and m["content_type"] == "image", m
    res = media_resource(m["media_id"])
    assert res["sha256"] == hashlib.sha256(data).hexdigest() and res["size"] == len(data), res
    assert res["content_type"] == "image/png" and (res["width"], res["height"]) == (5, 3), res
    assert res["conversation_id"] == m["conversation_id"] and res["owner_service"] == "inbound-svc", res
    inb.wait_row_status("whatsapp", inb.event_id(body), "done")


def test_telegram_photo_is_fetched_by_its_largest_file_id():
    small, big, data = f"tgs{uuid.uuid4().hex}", f"tgb{uuid.uuid4().hex}", tm.unique_png(8, 6)
    fp.put_media("telegram", big, data, "image/png")
    user = 10**9 + uuid.uuid4().int % 10**9
    upd = {"update_id": uuid.uuid4().int % 2**31,
           "message": {"message_id": uuid.uuid4().int % 10**6, "date": 1700000000,
                       "from": {"id": user, "is_bot": False, "first_name": "Pic"},
                       "chat": {"id": user, "type": "private"}, "caption": "sunset",
                       "photo": [{"file_id": small, "file_unique_id": "s", "width": 2, "height": 1},
                                 {"file_id": big, "file_unique_id": "b", "width": 8, "height": 6}]}}
    assert inb.post_telegram(upd).status == 201
    m = inb.wait_message("telegram", f"{user}:{upd['message']['message_id']}")
    assert m["media_id"] and m["metadata"]["media"]["media_id"] == m["media_id"], m
    assert media_resource(m["media_id"])["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("case", ["unknown", "executable"])
def test_media_refused_for_good_keeps_the_message(case):
    """404 (unknown at the provider) and 415 (type not allowed) cost the media only, never the message."""
    media_id = f"wa{uuid.uuid4().hex}"
    if case == "executable":
        fp.put_media("whatsapp", media_id, tm.ELF, "image/png")
    body, wamid = wa_image(media_id, caption=f"{case} media")
    assert inb.post_whatsapp(body).status == 201
    row = inb.wait_row_status("whatsapp", inb.event_id(body), "done")
    assert row["attempts"] == 1, row
    m = inb.message_row("whatsapp", wamid)
    assert m is not None and m["body"] == f"{case} media", m
    assert m["media_id"] is None and "media_id" not in m["metadata"]["media"], m
    err = m["metadata"]["media"]["fetch_error"]
    assert err["status"] == (404 if case == "unknown" else 415) and err["error"] and err["message"], err


def test_provider_trouble_retries_the_row_and_converges():
    media_id, data = f"wa{uuid.uuid4().hex}", tm.unique_png(4, 4)
    fp.put_media("whatsapp", media_id, data, "image/png")
    fp.script(media_id, [{"status": 500, "body": {"error": {"message": "try later", "code": 2}}}])
    body, wamid = wa_image(media_id)
    assert inb.post_whatsapp(body).status == 201
    row = inb.wait_for(lambda: next((r for r in inb.webhook_rows("whatsapp", inb.event_id(body))
                                     if r["attempts"] >= 1 and r["status"] == "pending"), None),
                       "a first attempt that waits for the provider", 15)
    assert "media fetch" in row["last_error"], row
    assert inb.message_row("whatsapp", wamid) is None, "no message before its media could be fetched"
    done = inb.wait_row_status("whatsapp", inb.event_id(body), "done", timeout=40)
    assert done["attempts"] >= 2, done
    m = inb.message_row("whatsapp", wamid)
    assert m["media_id"] and media_resource(m["media_id"])["sha256"] == hashlib.sha256(data).hexdigest(), m
    assert inb.mpsql(f"SELECT count(*) FROM messages WHERE external_message_id = {sql_lit(wamid)}") == "1"


def test_overlapping_deliveries_fetch_the_media_once():
    """Two deliveries (different bytes) of one image message: one message, one fetch, one media resource."""
    media_id, data = f"wa{uuid.uuid4().hex}", tm.unique_png(6, 2)
    fp.put_media("whatsapp", media_id, data, "image/png")
    wa_id, wamid = inb.new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    first, _ = wa_image(media_id, caption="same", wamid=wamid, wa_id=wa_id)
    second = first.replace(b'"Sys Test"', b'"Sys Test Again"')
    assert first != second
    assert inb.post_whatsapp(first).status == 201
    inb.wait_row_status("whatsapp", inb.event_id(first), "done")
    assert inb.post_whatsapp(second).status == 201
    inb.wait_row_status("whatsapp", inb.event_id(second), "done")
    assert len(lookups(media_id)) == 1, fp.requests_for(media_id)
    assert inb.mpsql(f"SELECT count(*) FROM messages WHERE external_message_id = {sql_lit(wamid)}") == "1"
    assert tm.psql(f"SELECT count(*) FROM media WHERE sha256 = '{hashlib.sha256(data).hexdigest()}'") == "1"
    recorded = inb.ipsql(f"SELECT media_id FROM inbound_media WHERE provider = 'whatsapp' "
                         f"AND provider_media_id = {sql_lit(media_id)}")
    assert recorded == inb.message_row("whatsapp", wamid)["media_id"]
