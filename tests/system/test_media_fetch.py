"""media-svc POST /api/media/fetch: a channel's media (WhatsApp media id, Telegram file_id) fetched from the
provider and stored like an upload (SPEC 4.4, 10; issue 6), against the running media-svc, its storage directory,
PostgreSQL, Kafka and the fake channel provider (fake_provider.py). Tests that need other settings (a short fetch
timeout, a 1 MiB limit) run a spare media-svc against a private fake provider of their own."""

import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import fake_provider as fp
import parley_sys as ps
import test_media as tm
from parley_sys import assert_error, assert_json_response, assert_validation

FETCH = "/api/media/fetch"
MIB = 1024 * 1024
SECRETS = (fp.WHATSAPP_TOKEN, fp.TELEGRAM_TOKEN, fp.TELEGRAM_TOKEN.split(":", 1)[1])


@pytest.fixture(scope="module", autouse=True)
def stack_and_fake_are_up():
    assert ps.healthz_ok(tm.MEDIA_URL, timeout=5), f"media-svc does not answer {tm.MEDIA_URL}/healthz"
    fp.ensure_running()


@pytest.fixture
def media():
    return ps.Client(tm.MEDIA_URL)


def new_id(prefix):
    """A media id / file_id unique to this test (so scripts and request logs never mix)."""
    return f"{prefix}{uuid.uuid4().hex}"


def fetch(client, provider, media_id, request_id=None, **fields):
    body = {"provider": provider, "provider_media_id": media_id, **fields}
    return client.post(FETCH, body, request_id=request_id, allow_5xx=True)


def fetch_ok(client, provider, media_id, **kw):
    r = fetch(client, provider, media_id, **kw)
    assert r.status == 201, r
    assert_json_response(r)
    tm.assert_media(r.json)
    return r.json


def rows_with_sha(data):
    return int(tm.psql(f"SELECT count(*) FROM media WHERE sha256 = '{hashlib.sha256(data).hexdigest()}'"))


def assert_no_secret(r):
    text = r.body.decode("utf-8", "replace")
    for s in SECRETS:
        assert s not in text, f"a provider token leaks in the answer: {r!r}"
    assert "127.0.0.1:" not in text and "/bot" not in text, f"a provider URL leaks in the answer: {r!r}"


def lookup_answer(base, media_id, data, **over):
    """A Graph API media lookup answer for data served at base's CDN (fields overridable)."""
    body = {"messaging_product": "whatsapp", "id": media_id, "url": f"{base}/whatsapp-cdn/{media_id}",
            "mime_type": "image/png", "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data)}
    body.update(over)
    return {"status": 200, "body": body}


# ------------------------------------------------------------------------------------------------ round trips

def test_whatsapp_round_trip_and_event(media):
    cons = ps.Consumer((tm.TOPIC,))
    mid, data, rid, conv = new_id("wa"), tm.unique_png(9, 4), ps.new_request_id(), str(uuid.uuid4())
    fp.put_media("whatsapp", mid, data, "application/octet-stream")  # the provider's type is not trusted
    m = fetch_ok(media, "whatsapp", mid, request_id=rid, conversation_id=conv, filename="../../holiday.png")
    assert (m["content_type"], m["width"], m["height"]) == ("image/png", 9, 4), m
    assert (m["size"], m["sha256"]) == (len(data), hashlib.sha256(data).hexdigest()), m
    assert (m["filename"], m["conversation_id"], m["owner_service"]) == ("holiday.png", conv, "inbound-svc"), m
    assert media.get(f"/api/media/{m['id']}").json == m
    r = tm.get_content(f"/api/media/{m['id']}/content")
    assert r.status == 200 and r.body == data, r
    assert r.header("Content-Type") == "image/png" and r.header("ETag") == f'"{m["sha256"]}"', r
    assert tm.stored_path(m).read_bytes() == data

    lookups, downloads = fp.requests_for(mid), fp.requests_for(f"cdn:{mid}")
    assert [q["path"] for q in lookups] == [f"/whatsapp/{mid}"], lookups
    assert [q["path"] for q in downloads] == [f"/whatsapp-cdn/{mid}"], downloads
    for q in lookups + downloads:
        headers = {k.lower(): v for k, v in q["headers"].items()}
        assert headers.get("authorization") == f"Bearer {fp.WHATSAPP_TOKEN}", q
        assert "x-service-token" not in headers, f"our service token went to the provider: {q}"

    ev = cons.wait_for(tm.TOPIC, lambda e: e.key == m["id"])[0]
    assert set(ev.env) == ps.ENVELOPE_KEYS, ev
    assert (ev.env["topic"], ev.env["key"], ev.env["source_service"]) == (tm.TOPIC, m["id"], "media-svc"), ev
    assert ev.env["trace_id"] == rid, ev
    assert ev.env["payload"] == m and list(ev.env["payload"]) == list(m), "payload differs from the API body"


def test_telegram_round_trip(media):
    fid, data = new_id("tg"), tm.pdf()
    fp.put_media("telegram", fid, data, "image/jpeg")
    m = fetch_ok(media, "telegram", fid, owner_service="tests", filename="report.pdf", conversation_id=None)
    assert (m["content_type"], m["width"], m["filename"], m["owner_service"]) == \
        ("application/pdf", None, "report.pdf", "tests"), m
    assert (m["size"], m["sha256"], m["conversation_id"]) == (len(data), hashlib.sha256(data).hexdigest(), None)
    r = tm.get_content(f"/api/media/{m['id']}/content")
    assert r.status == 200 and r.body == data, r
    assert r.header("Content-Disposition") == 'attachment; filename="report.pdf"', r

    lookups, downloads = fp.requests_for(fid), fp.requests_for(f"file:{fid}")
    assert len(lookups) == 1 and lookups[0]["path"] == f"/telegram/bot{fp.TELEGRAM_TOKEN}/getFile", lookups
    assert lookups[0]["query"] == {"file_id": fid}, lookups
    assert [q["path"] for q in downloads] == [f"/telegram/file/bot{fp.TELEGRAM_TOKEN}/documents/{fid}"]
    for q in lookups + downloads:
        assert "x-service-token" not in {k.lower() for k in q["headers"]}, q


def test_identical_content_is_stored_once(media):
    data = tm.unique_png(2, 2)
    wa, tg = new_id("wa"), new_id("tg")
    fp.put_media("whatsapp", wa, data, "image/png")
    fp.put_media("telegram", tg, data, "image/png")
    a = fetch_ok(media, "whatsapp", wa)
    b = fetch_ok(media, "telegram", tg)
    c = fetch_ok(media, "whatsapp", wa)  # the same media fetched again: a row of its own, as an upload
    assert len({a["id"], b["id"], c["id"]}) == 3
    assert a["storage_key"] == b["storage_key"] == c["storage_key"]
    copies = list(tm.MEDIA_DIR.rglob(a["sha256"] + "*"))
    assert copies == [tm.stored_path(a)], f"content stored {len(copies)} times: {copies}"
    assert tm.get_content(f"/api/media/{b['id']}/content").body == data


def test_large_file_streams_with_flat_memory(media):
    pid = ps.read_pid("media-svc")
    assert ps.pid_alive(pid), "media-svc pid file"
    mid, data = new_id("wa"), tm.png(3000, 2000)[:33] + uuid.uuid4().bytes + b"\0" * (16 * MIB)
    fp.put_media("whatsapp", mid, data, "image/png")
    base = tm.vm_rss_kib(pid)
    peak, done = [base], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tm.vm_rss_kib(pid))
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    try:
        m = fetch_ok(media, "whatsapp", mid)
    finally:
        done.set()
        t.join()
    assert (m["size"], m["width"], m["height"]) == (len(data), 3000, 2000), m
    assert m["sha256"] == hashlib.sha256(data).hexdigest()
    assert peak[0] - base < 4 * 1024, f"media-svc RSS grew {(peak[0] - base) / 1024:.1f} MiB during the fetch"


# ------------------------------------------------------------------------------------------------ refusals

@pytest.mark.parametrize("provider", ["whatsapp", "telegram"])
def test_unknown_id_is_404(media, provider):
    r = fetch(media, provider, new_id("gone"))
    body = assert_error(r, 404, "Media not found at provider")
    assert provider in body["message"], body
    assert_no_secret(r)


def test_expired_download_url_is_404(media):
    mid, data = new_id("wa"), tm.pdf()
    fp.put_media("whatsapp", mid, data, "application/pdf")
    fp.script(f"cdn:{mid}", [{"status": 404, "body": ""}])
    assert_error(fetch(media, "whatsapp", mid), 404, "Media not found at provider")
    assert rows_with_sha(data) == 0


def test_elf_is_415_and_nothing_stored(media):
    mid, before = new_id("wa"), tm.tmp_files()
    fp.put_media("whatsapp", mid, tm.ELF, "image/jpeg")
    body = assert_error(fetch(media, "whatsapp", mid, filename="photo.jpg"), 415, "unsupported_media_type")
    assert "executable" in body["message"], body
    assert rows_with_sha(tm.ELF) == 0
    sha = hashlib.sha256(tm.ELF).hexdigest()
    assert not (tm.MEDIA_DIR / sha[:2] / sha[2:4] / sha).exists()
    tm.assert_no_tmp_left(before)


def test_announced_size_over_the_limit_is_413_without_downloading(media):
    mid, data = new_id("wa"), tm.pdf()
    fp.put_media("whatsapp", mid, data, "application/pdf")
    fp.script(mid, [lookup_answer(fp.BASE, mid, data, file_size=26 * MIB)])
    body = assert_error(fetch(media, "whatsapp", mid), 413, "body_too_large")
    assert str(tm.MAX_BYTES) in body["message"], body
    assert fp.requests_for(f"cdn:{mid}") == [], "the file was downloaded although announced too big"
    fid = new_id("tg")
    fp.script(fid, [{"status": 400, "body": {"ok": False, "error_code": 400,
                                             "description": "Bad Request: file is too big"}}])
    assert_error(fetch(media, "telegram", fid), 413, "body_too_large")


def test_service_token_required(media):
    mid = new_id("wa")
    body = {"provider": "whatsapp", "provider_media_id": mid}
    assert_error(media.post(FETCH, body, token=None), 401)
    assert_error(media.post(FETCH, body, token="not-the-token"), 401)
    assert fp.requests_for(mid) == [], "the provider was asked without a valid service token"


@pytest.mark.parametrize("body, field", [
    ({}, "provider"),
    ({"provider_media_id": "abc"}, "provider"),
    ({"provider": "sms", "provider_media_id": "abc"}, "provider"),
    ({"provider": 1, "provider_media_id": "abc"}, "provider"),
    ({"provider": "whatsapp"}, "provider_media_id"),
    ({"provider": "whatsapp", "provider_media_id": ""}, "provider_media_id"),
    ({"provider": "whatsapp", "provider_media_id": 12345}, "provider_media_id"),
    ({"provider": "whatsapp", "provider_media_id": ".."}, "provider_media_id"),
    ({"provider": "whatsapp", "provider_media_id": "../../me"}, "provider_media_id"),
    ({"provider": "telegram", "provider_media_id": "a&file_id=b"}, "provider_media_id"),
    ({"provider": "telegram", "provider_media_id": "a" * 513}, "provider_media_id"),
    ({"provider": "whatsapp", "provider_media_id": "abc", "conversation_id": "nope"}, "conversation_id"),
    ({"provider": "whatsapp", "provider_media_id": "abc", "filename": 5}, "filename"),
    ({"provider": "whatsapp", "provider_media_id": "abc", "owner_service": "x" * 65}, "owner_service"),
    ([], "body"),
])
def test_invalid_bodies_422(media, body, field):
    assert_validation(media.post(FETCH, body), field)


def test_not_json_is_400(media):
    assert_error(media.request("POST", FETCH, raw=b"provider=whatsapp"), 400)


# ------------------------------------------------------------------------------------------------ provider trouble

def _lookup_500(mid, data):
    fp.script(mid, [{"status": 500, "body": {"error": {"message": "oops", "code": 1}}}])


def _lookup_429(mid, data):
    fp.script(mid, [{"status": 429, "body": {"error": {"message": "rate", "code": 80007}}}])


def _lookup_garbage(mid, data):
    fp.script(mid, [{"status": 200, "body": "<html>not json</html>"}])


def _lookup_without_url(mid, data):
    fp.script(mid, [lookup_answer(fp.BASE, mid, data, url="file:///etc/passwd")])


def _lookup_dropped(mid, data):
    fp.script(mid, [{"drop": True}])


def _cdn_500(mid, data):
    fp.script(f"cdn:{mid}", [{"status": 500, "body": "down"}])


def _checksum_mismatch(mid, data):
    fp.script(mid, [lookup_answer(fp.BASE, mid, data, sha256=hashlib.sha256(b"other").hexdigest())])


@pytest.mark.parametrize("trouble", [_lookup_500, _lookup_429, _lookup_garbage, _lookup_without_url,
                                     _lookup_dropped, _cdn_500, _checksum_mismatch])
def test_whatsapp_trouble_is_502_then_a_retry_works(media, trouble):
    mid, data, before = new_id("wa"), tm.pdf(), tm.tmp_files()
    fp.put_media("whatsapp", mid, data, "application/pdf")
    trouble(mid, data)
    r = fetch(media, "whatsapp", mid)
    assert_error(r, 502, "provider_error")
    assert_no_secret(r)
    assert rows_with_sha(data) == 0
    tm.assert_no_tmp_left(before)
    m = fetch_ok(media, "whatsapp", mid)  # the trouble is over: the caller's retry succeeds
    assert m["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("key, answer", [
    ("{fid}", {"status": 500, "body": {"ok": False, "error_code": 500, "description": "Internal"}}),
    ("{fid}", {"status": 401, "body": {"ok": False, "error_code": 401, "description": "Unauthorized"}}),
    ("{fid}", {"status": 200, "body": {"ok": True, "result": {"file_path": "../../bot/getMe"}}}),
    ("file:{fid}", {"status": 502, "body": "bad gateway"}),
])
def test_telegram_trouble_is_502(media, key, answer):
    fid, data = new_id("tg"), tm.pdf()
    fp.put_media("telegram", fid, data, "application/pdf")
    fp.script(key.format(fid=fid), [answer])
    r = fetch(media, "telegram", fid)
    assert_error(r, 502, "provider_error")
    assert_no_secret(r)
    assert rows_with_sha(data) == 0


def test_redirects_only_to_http(media):
    mid, data = new_id("wa"), tm.unique_png(4, 4)
    fp.put_media("whatsapp", mid, data, "image/png")
    fp.script(f"cdn:{mid}", [{"status": 302, "body": "", "headers": {"Location": f"/whatsapp-cdn/{mid}"}}])
    assert fetch_ok(media, "whatsapp", mid)["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(fp.requests_for(f"cdn:{mid}")) == 2, "the redirect was not followed"
    passwd = Path("/etc/passwd").read_bytes()
    for target in ("file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/x"):
        fp.script(f"cdn:{mid}", [{"status": 302, "body": "", "headers": {"Location": target}}])
        assert_error(fetch(media, "whatsapp", mid), 502, "provider_error")
    assert rows_with_sha(passwd) == 0


def test_tokens_never_logged():
    log = ps.RUN_DIR / "logs" / "media-svc.log"
    assert log.is_file(), log
    text = log.read_text(errors="replace")
    for s in SECRETS:
        assert s not in text, "a provider token appears in media-svc's log"


# ------------------------------------------------------------------------------------------------ spare media-svc

@pytest.fixture(scope="module")
def private_fake():
    """A fake provider of this module's own on a free port (its own scripts, whatever version the shared one
    runs), and a spare media-svc using it with a 1 MiB limit and a 1 s fetch timeout. Yields (client, base)."""
    port = ps.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(Path(fp.__file__).resolve()), str(port)],
                            env=dict(os.environ, PARLEY_FAKE_PROVIDER_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spare = None
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fp, "PORT", port)
            deadline = time.monotonic() + 10
            while not fp.is_running():
                assert proc.poll() is None and time.monotonic() < deadline, "private fake provider did not start"
                time.sleep(0.05)
        spare = ps.SpareBinary(
            "media-svc", tm.MEDIA_DB_URL, PARLEY_MEDIA_DIR=str(tm.MEDIA_DIR), PARLEY_MEDIA_MAX_BYTES="1M",
            PARLEY_MEDIA_FETCH_TIMEOUT_MS="1000", PARLEY_WHATSAPP_API_BASE=f"{base}/whatsapp",
            PARLEY_TELEGRAM_API_BASE=f"{base}/telegram", PARLEY_WHATSAPP_ACCESS_TOKEN=fp.WHATSAPP_TOKEN,
            PARLEY_TELEGRAM_BOT_TOKEN=fp.TELEGRAM_TOKEN, PARLEY_LOG_LEVEL="warn")
        yield ps.Client(spare.url), base
    finally:
        if spare is not None:
            spare.stop()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def tight(private_fake, monkeypatch):
    """The spare media-svc (client, fake base), with fake_provider's helpers pointed at the private fake."""
    monkeypatch.setattr(fp, "PORT", int(private_fake[1].rsplit(":", 1)[1]))
    return private_fake


def test_slow_lookup_is_504(tight):
    client, base = tight
    mid, data = new_id("wa"), tm.pdf()
    fp.put_media("whatsapp", mid, data, "application/pdf")
    fp.script(mid, [{**lookup_answer(base, mid, data), "delay_ms": 3000}])
    r = fetch(client, "whatsapp", mid)
    assert_error(r, 504, "provider_timeout")
    assert r.elapsed < 2.5, f"answered after {r.elapsed:.1f} s with a 1 s fetch timeout"
    assert_no_secret(r)


def test_slow_download_is_504_and_nothing_left(tight):
    client, _ = tight
    fid, data, before = new_id("tg"), tm.pdf(), tm.tmp_files()
    fp.put_media("telegram", fid, data, "application/pdf")
    fp.script(f"file:{fid}", [{"status": 200, "body": data.decode(), "delay_ms": 3000}])
    r = fetch(client, "telegram", fid)
    assert_error(r, 504, "provider_timeout")
    assert rows_with_sha(data) == 0
    tm.assert_no_tmp_left(before)


def test_over_the_limit_is_413_at_each_check(tight):
    """Announced by the lookup, announced by Content-Length, and found while streaming a chunked answer:
    each is 413 with the limit in the message, nothing stored and no temporary file left."""
    client, base = tight
    big = tm.png(1, 1)[:33] + b"\0" * (MIB + 1)
    mid, before = new_id("wa"), tm.tmp_files()
    fp.put_media("whatsapp", mid, big, "image/png")
    body = assert_error(fetch(client, "whatsapp", mid), 413, "body_too_large")
    assert str(MIB) in body["message"], body
    assert fp.requests_for(f"cdn:{mid}") == [], "downloaded although the lookup announced it too big"

    fp.script(mid, [lookup_answer(base, mid, big, file_size=1000)])  # the lookup understates the size
    assert_error(fetch(client, "whatsapp", mid), 413, "body_too_large")
    assert len(fp.requests_for(f"cdn:{mid}")) == 1

    text = "x" * (MIB + 64 * 1024)
    fp.script(mid, [lookup_answer(base, mid, big, file_size=1000)])
    fp.script(f"cdn:{mid}", [{"status": 200, "body": text, "chunked": True}])  # no Content-Length at all
    assert_error(fetch(client, "whatsapp", mid), 413, "body_too_large")
    assert rows_with_sha(big) == 0 and rows_with_sha(text.encode()) == 0
    tm.assert_no_tmp_left(before)

    small = tm.unique_png(5, 5)
    fp.put_media("whatsapp", mid, small, "image/png")
    assert fetch_ok(client, "whatsapp", mid)["width"] == 5  # a file under the limit still passes
