"""media-svc: streamed uploads, type sniffing, content-addressed storage, signed download URLs and content
(SPEC 3, 4.4 and 10), against the running service, its storage directory, PostgreSQL and Kafka."""

import hashlib
import hmac
import http.client
import json
import os
import pwd
import struct
import time
import urllib.parse
import uuid
import zlib
from pathlib import Path

import pytest

import parley_sys as ps
from parley_sys import assert_error, assert_json_response, assert_validation

MEDIA_URL = os.environ.get("PARLEY_MEDIA_URL", "http://127.0.0.1:8004")
MEDIA_DB_URL = os.environ.get("PARLEY_TEST_MEDIA_DATABASE_URL",
                              "postgresql://parley:parley@127.0.0.1:55432/parley_media")
MEDIA_DIR = Path(os.environ.get("PARLEY_MEDIA_DIR", str(ps.RUN_DIR / "media")))
URL_SECRET = os.environ.get("PARLEY_MEDIA_URL_SECRET", "dev-media-url-secret").encode()
MAX_BYTES = 25 * 1024 * 1024
MIB = 1024 * 1024
TOPIC = "media.uploaded"
MEDIA_KEYS = ["id", "owner_service", "conversation_id", "filename", "content_type", "size", "sha256", "width",
              "height", "storage_key", "scanned", "created_at"]


@pytest.fixture(scope="module", autouse=True)
def media_is_up():
    assert ps.healthz_ok(MEDIA_URL, timeout=5), f"media-svc does not answer {MEDIA_URL}/healthz"
    assert MEDIA_DIR.is_dir(), f"media storage directory {MEDIA_DIR} missing"


@pytest.fixture
def media():
    return ps.Client(MEDIA_URL)


# ------------------------------------------------------------------------------------------------ files

def png(w, h, extra=b""):
    """A valid w x h greyscale PNG; extra goes into a private ancillary chunk (to make it unique or big)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\0" + b"\x80" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + (chunk(b"prVt", extra) if extra else b"") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def unique_png(w=3, h=2):
    return png(w, h, uuid.uuid4().bytes)


def pdf():
    return b"%PDF-1.4\n% " + uuid.uuid4().hex.encode() + b"\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"


ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + os.urandom(200)


# ------------------------------------------------------------------------------------------------ HTTP

def multipart(fields=(), files=(), boundary=None):
    """(content_type, body) of a multipart/form-data body: fields [(name, value)], files [(name, filename, bytes)]."""
    boundary = boundary or "----parley" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                   + value.encode() + b"\r\n")
    for name, filename, data, *ctype in files:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                   f'Content-Type: {ctype[0] if ctype else "application/octet-stream"}\r\n\r\n'.encode()
                   + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(out)


def upload(media, data, filename="file.bin", fields=(), ctype=None, request_id=None):
    content_type, body = multipart(fields, [("file", filename, data) + ((ctype,) if ctype else ())])
    return media.request("POST", "/api/media/upload", raw=body, content_type=content_type, request_id=request_id)


def upload_ok(media, data, filename="file.bin", **kw):
    r = upload(media, data, filename, **kw)
    assert r.status == 201, r
    assert_json_response(r)
    assert_media(r.json)
    return r.json


def upload_stream(size, head=b"", chunk=256 * 1024, token=ps.SERVICE_TOKEN, during=None):
    """Uploads head + zeros up to size bytes of file with Transfer-Encoding: chunked (nothing declares the
    length, so the server finds out while streaming); returns (status, json). during() runs between chunks."""
    boundary = "----parley" + uuid.uuid4().hex
    pre = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
           f"Content-Type: image/png\r\n\r\n").encode() + head
    post = f"\r\n--{boundary}--\r\n".encode()
    u = urllib.parse.urlsplit(MEDIA_URL)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.putrequest("POST", "/api/media/upload")
    conn.putheader("X-Service-Token", token)
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()

    def send(b):
        conn.send(b"%x\r\n" % len(b) + b + b"\r\n")

    block = b"\0" * chunk
    try:
        send(pre)
        left = size - len(head)
        while left > 0:
            send(block[:min(left, chunk)])
            left -= min(left, chunk)
            if during:
                during()
        send(post)
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        body = r.read()
        return r.status, json.loads(body)
    finally:
        conn.close()


def get_content(path, headers=None, token=ps.SERVICE_TOKEN):
    return ps.Client(MEDIA_URL).get(path, headers=headers, token=token)


def assert_media(m):
    assert isinstance(m, dict), m
    assert list(m) == MEDIA_KEYS, f"media keys/order {list(m)}"
    assert ps.UUID7_RE.match(m["id"]), m
    assert ps.TS_RE.match(m["created_at"]), m
    assert isinstance(m["size"], int) and m["size"] > 0, m
    assert len(m["sha256"]) == 64 and int(m["sha256"], 16) >= 0, m
    assert m["storage_key"] == f"{m['sha256'][:2]}/{m['sha256'][2:4]}/{m['sha256']}", m
    assert m["scanned"] is False, "no scanner is configured: scanned must say false"


def stored_path(m):
    return MEDIA_DIR / m["storage_key"]


def psql(sql):
    return ps.psql(sql, url=MEDIA_DB_URL)


def sign(media_id, expires, secret=URL_SECRET):
    return hmac.new(secret, f"{media_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def local_path(download_url):
    """The media-svc path for a gateway download URL (the gateway maps /api/v1/... to /api/...)."""
    u = urllib.parse.urlsplit(download_url)
    assert u.path.startswith("/api/v1/media/"), download_url
    return "/api/" + u.path[len("/api/v1/"):] + "?" + u.query


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def tmp_files():
    return {p.name for p in (MEDIA_DIR / "tmp").iterdir()}


def assert_no_tmp_left(before, timeout=10.0):
    """No temporary upload file appeared since `before` and stayed. Other clients' uploads in flight (a
    concurrent run) may show theirs for a moment, so new names must go away, not be absent at once."""
    deadline = time.monotonic() + timeout
    while (left := tmp_files() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"temporary upload files left behind: {sorted(left)}"


# ------------------------------------------------------------------------------------------------ upload

def test_round_trip_bytes_identical_and_event(media):
    cons = ps.Consumer((TOPIC,))
    data, rid, conv = unique_png(7, 5), ps.new_request_id(), str(uuid.uuid4())
    m = upload_ok(media, data, "holiday photo.png", fields=[("conversation_id", conv), ("owner_service", "tests")],
                  ctype="application/x-evil", request_id=rid)
    assert (m["content_type"], m["width"], m["height"]) == ("image/png", 7, 5), m
    assert (m["filename"], m["conversation_id"], m["owner_service"]) == ("holiday photo.png", conv, "tests"), m
    assert m["size"] == len(data) and m["sha256"] == hashlib.sha256(data).hexdigest(), m
    assert stored_path(m).read_bytes() == data

    got = media.get(f"/api/media/{m['id']}")
    assert got.status == 200 and got.json == m, got
    r = get_content(f"/api/media/{m['id']}/content")
    assert r.status == 200, r
    assert r.body == data
    assert r.header("Content-Type") == "image/png"
    assert r.header("ETag") == f'"{m["sha256"]}"'
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Content-Disposition").startswith("inline"), r  # images may show inline
    assert psql(f"SELECT count(*) FROM media WHERE id = '{m['id']}'") == "1"

    ev = cons.wait_for(TOPIC, lambda e: e.key == m["id"])[0]
    env = ev.env
    assert set(env) == ps.ENVELOPE_KEYS, env
    assert (env["topic"], env["key"], env["source_service"], env["schema_version"]) == \
        (TOPIC, m["id"], "media-svc", 1), env
    assert env["trace_id"] == rid, env
    assert ps.UUID_RE.match(env["event_id"]) and ps.TS_RE.match(env["occurred_at"]), env
    assert env["payload"] == m and list(env["payload"]) == list(m), "payload differs from the API body"


def test_document_and_text_download_as_attachment(media):
    m = upload_ok(media, pdf(), "report.pdf")
    assert m["content_type"] == "application/pdf" and m["width"] is None, m
    r = get_content(f"/api/media/{m['id']}/content")
    assert r.header("Content-Disposition") == 'attachment; filename="report.pdf"', r
    t = upload_ok(media, f"<script>alert(1)</script> {uuid.uuid4()}\n".encode(), "page.html", ctype="text/html")
    assert t["content_type"] == "text/plain; charset=utf-8", t
    r = get_content(f"/api/media/{t['id']}/content")
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    assert r.header("Content-Disposition").startswith("attachment"), r
    assert r.header("X-Content-Type-Options") == "nosniff"


def test_not_multipart_415_no_file_422_empty_422(media):
    r = media.post("/api/media/upload", {"file": "x"})
    assert_error(r, 415, "unsupported_media_type")
    ct, body = multipart(fields=[("owner_service", "x")])
    assert_validation(media.request("POST", "/api/media/upload", raw=body, content_type=ct), "file")
    assert_validation(upload(media, b"", "empty.txt"), "file")
    assert_validation(upload(media, b"hello\n", "a.txt", fields=[("conversation_id", "nope")]), "conversation_id")


def test_malformed_multipart(media):
    part = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello there\r\n'
    post = lambda body, ct="multipart/form-data; boundary=XX": media.request(  # noqa: E731
        "POST", "/api/media/upload", raw=body, content_type=ct)
    before = tmp_files()
    assert_error(post(part), 400, "invalid_multipart")                       # no closing boundary
    assert_error(post(part, "multipart/form-data"), 400, "invalid_multipart")  # no boundary parameter
    assert_validation(post(part + part.replace(b"a.txt", b"b.txt") + b"--XX--\r\n"), "file")  # two files
    assert_no_tmp_left(before)


def test_upload_needs_service_token(media):
    ct, body = multipart(files=[("file", "a.txt", b"hi\n")])
    r = media.request("POST", "/api/media/upload", raw=body, content_type=ct, token=None)
    assert_error(r, 401)


def test_elf_named_photo_jpg_is_415(media):
    before = tmp_files()
    r = upload(media, ELF, "photo.jpg", ctype="image/jpeg")
    body = assert_error(r, 415, "unsupported_media_type")
    assert "executable" in body["message"]
    assert psql("SELECT count(*) FROM media WHERE sha256 = "
                f"'{hashlib.sha256(ELF).hexdigest()}'") == "0"
    assert not (MEDIA_DIR / hashlib.sha256(ELF).hexdigest()[:2]).joinpath(
        hashlib.sha256(ELF).hexdigest()[2:4], hashlib.sha256(ELF).hexdigest()).exists()
    assert_no_tmp_left(before)


@pytest.mark.parametrize("data", [b"#!/bin/sh\nrm -rf /\n", b"\xef\xbb\xbf#!/usr/bin/python3\nprint(1)\n",
                                  b"MZ\x90\x00\x03\x00\x00\x00" + b"\xff" * 64, os.urandom(1024)])
def test_scripts_executables_unknown_415(media, data):
    assert_error(upload(media, data, "notes.txt", ctype="text/plain"), 415, "unsupported_media_type")


def test_amr_starting_with_hash_bang_is_audio(media):
    m = upload_ok(media, b"#!AMR\n" + uuid.uuid4().bytes, "voice.amr")
    assert m["content_type"] == "audio/amr", m


@pytest.mark.parametrize("name, want", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\evil.png", "evil.png"),
    ("/abs/../../..hidden.png", "hidden.png"),
    ("..", None),
    ("a\tb;c|d$(e).png", "a_b_c_d__e_.png"),
    ("café.png", "caf_.png"),
    ("x" * 300 + ".png", "x" * 255),
])
def test_path_traversal_and_odd_filenames_are_sanitised(media, name, want):
    m = upload_ok(media, unique_png(), name)
    assert m["filename"] == want, m
    assert stored_path(m).resolve().parent.parent.parent == MEDIA_DIR.resolve()
    for bad in ("passwd", "evil.png", "hidden.png"):
        assert not (MEDIA_DIR / bad).exists()
    if want:
        r = get_content(f"/api/media/{m['id']}/content")
        assert r.header("Content-Disposition") == f'inline; filename="{want}"', r


def test_identical_content_stored_once(media):
    data = pdf()
    a = upload_ok(media, data, "a.pdf")
    b = upload_ok(media, data, "b.pdf")
    assert a["id"] != b["id"] and (a["filename"], b["filename"]) == ("a.pdf", "b.pdf")
    assert a["storage_key"] == b["storage_key"] == f"{a['sha256'][:2]}/{a['sha256'][2:4]}/{a['sha256']}"
    copies = [p for p in MEDIA_DIR.rglob(a["sha256"] + "*")]
    assert copies == [stored_path(a)], f"content stored {len(copies)} times: {copies}"
    assert get_content(f"/api/media/{b['id']}/content").body == data


# ------------------------------------------------------------------------------------------------ size limit

def test_declared_26mib_upload_is_413_at_once(media):
    before = tmp_files()
    r = upload(media, b"\0" * (26 * MIB), "big.bin")
    body = assert_error(r, 413, "body_too_large")
    assert str(MAX_BYTES) in body["message"], body
    assert_no_tmp_left(before)


def test_streamed_26mib_upload_is_413_and_memory_stays_flat():
    pid = ps.read_pid("media-svc")
    assert ps.pid_alive(pid), "media-svc pid file"
    upload_stream(2 * MIB, head=png(1, 1)[:33])  # warm up this connection path once
    before_tmp, base = tmp_files(), vm_rss_kib(pid)
    peak = [base]

    def sample():
        peak[0] = max(peak[0], vm_rss_kib(pid))

    status, body = upload_stream(26 * MIB, head=png(1, 1)[:33], during=sample)
    sample()
    assert status == 413 and body["error"] == "body_too_large", body
    assert str(MAX_BYTES) in body["message"], body
    assert peak[0] - base < 4 * 1024, f"media-svc RSS grew {(peak[0] - base) / 1024:.1f} MiB during the upload"
    assert_no_tmp_left(before_tmp)


def test_streamed_24mib_upload_stored_with_flat_memory():
    pid = ps.read_pid("media-svc")
    base = vm_rss_kib(pid)
    peak = [base]
    head = png(4000, 3000)[:33] + uuid.uuid4().bytes

    def sample():
        peak[0] = max(peak[0], vm_rss_kib(pid))

    status, m = upload_stream(24 * MIB, head=head, during=sample)
    assert status == 201, m
    assert (m["size"], m["content_type"], m["width"], m["height"]) == (24 * MIB, "image/png", 4000, 3000), m
    assert stored_path(m).stat().st_size == 24 * MIB
    assert peak[0] - base < 4 * 1024, f"media-svc RSS grew {(peak[0] - base) / 1024:.1f} MiB during the upload"


# ------------------------------------------------------------------------------------------------ content

@pytest.fixture(scope="module")
def stored():
    data = png(2, 2, os.urandom(5000))
    return upload_ok(ps.Client(MEDIA_URL), data, "r.png"), data


def test_if_none_match_304(stored):
    m, _ = stored
    etag = f'"{m["sha256"]}"'
    for inm in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = get_content(f"/api/media/{m['id']}/content", headers={"If-None-Match": inm})
        assert r.status == 304 and r.body == b"", r
        assert r.header("ETag") == etag
    r = get_content(f"/api/media/{m['id']}/content", headers={"If-None-Match": '"other"'})
    assert r.status == 200, r


@pytest.mark.parametrize("rng, sl", [
    ("bytes=0-9", slice(0, 10)), ("bytes=100-", slice(100, None)), ("bytes=-7", slice(-7, None)),
    ("bytes=10-999999", slice(10, None)), ("bytes=0-0", slice(0, 1)),
])
def test_range_206(stored, rng, sl):
    m, data = stored
    r = get_content(f"/api/media/{m['id']}/content", headers={"Range": rng})
    assert r.status == 206, r
    part = data[sl]
    start = sl.start if sl.start is None or sl.start >= 0 else len(data) + sl.start
    start = start or 0
    assert r.body == part
    assert r.header("Content-Range") == f"bytes {start}-{start + len(part) - 1}/{len(data)}"
    assert r.header("ETag") == f'"{m["sha256"]}"'


@pytest.mark.parametrize("rng", ["bytes=999999-", "bytes=-0"])
def test_range_416(stored, rng):
    m, data = stored
    r = get_content(f"/api/media/{m['id']}/content", headers={"Range": rng})
    assert_error(r, 416)
    assert r.header("Content-Range") == f"bytes */{len(data)}"


@pytest.mark.parametrize("rng", ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=x-"])
def test_other_ranges_serve_everything(stored, rng):
    m, data = stored
    r = get_content(f"/api/media/{m['id']}/content", headers={"Range": rng})
    assert r.status == 200 and r.body == data, r


def test_if_range_mismatch_serves_everything(stored):
    m, data = stored
    r = get_content(f"/api/media/{m['id']}/content", headers={"Range": "bytes=0-1", "If-Range": '"old"'})
    assert r.status == 200 and r.body == data, r


def test_unknown_and_malformed_ids_404(media):
    for mid in (str(uuid.uuid4()), "not-a-uuid", "%27%3B--"):
        assert_error(media.get(f"/api/media/{mid}"), 404)
        assert_error(media.get(f"/api/media/{mid}/download"), 404)
        assert_error(get_content(f"/api/media/{mid}/content"), 404)


# ------------------------------------------------------------------------------------------------ signed URLs

def test_download_url_works_without_token_until_it_expires(media, stored):
    m, data = stored
    r = media.get(f"/api/media/{m['id']}/download")
    assert r.status == 200, r
    assert list(r.json) == ["download_url", "expires_in_seconds"] and r.json["expires_in_seconds"] == 3600
    url = r.json["download_url"]
    u = urllib.parse.urlsplit(url)
    assert f"{u.scheme}://{u.netloc}" == ps.PUBLIC_URL and u.path == f"/api/v1/media/{m['id']}/content", url
    qs = urllib.parse.parse_qs(u.query)
    expires = int(qs["expires"][0])
    assert abs(expires - (time.time() + 3600)) < 30
    assert qs["signature"][0] == sign(m["id"], expires)
    got = get_content(local_path(url), token=None)
    assert got.status == 200 and got.body == data, got


def test_no_auth_401_tampered_or_expired_403(stored):
    m, _ = stored
    path = f"/api/media/{m['id']}/content"
    assert_error(get_content(path, token=None), 401)
    exp = int(time.time()) + 600
    good = sign(m["id"], exp)
    bad = [
        f"expires={exp}&signature={good[:-1]}{'0' if good[-1] != '0' else '1'}",  # one hex digit changed
        f"expires={exp + 1}&signature={good}",                                   # expiry moved
        f"expires={exp}&signature={good.upper()}",
        f"expires={exp}&signature={good[:32]}",
        f"expires={exp}",
        f"signature={good}",
        f"expires={exp}&signature={sign(str(uuid.uuid4()), exp)}",               # another media's signature
        f"expires={exp}&signature={sign(m['id'], exp, b'wrong-secret')}",
        f"expires={int(time.time()) - 5}&signature={sign(m['id'], int(time.time()) - 5)}",  # expired
        f"expires=-1&signature={sign(m['id'], -1)}",
        f"expires={exp}abc&signature={good}",
    ]
    for query in bad:
        assert_error(get_content(f"{path}?{query}", token=None), 403)
    assert get_content(f"{path}?expires={exp}&signature={good}", token=None).status == 200
    # A valid service token wins over a bad signature.
    assert get_content(f"{path}?{bad[0]}").status == 200


# ------------------------------------------------------------------------------------------------ virus scan

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Clamd:
    """Debian's clamd on a private Unix socket, with a signature database of one test signature (EICAR), so
    it starts in a second and needs no download. Every clean scan is logged, which is how scans are counted."""

    def __init__(self, workdir):
        import shutil
        import subprocess
        binary = shutil.which("clamd") or "/usr/sbin/clamd"
        assert os.path.exists(binary), "clamd is missing (deploy/local/install.sh installs clamav-daemon)"
        self.path = str(workdir / "clamd.sock")
        self.log = workdir / "clamd.log"
        (workdir / "db").mkdir()
        (workdir / "db" / "parley-test.ndb").write_text(f"Eicar-Test-Signature:0:*:{EICAR.hex()}\n")
        conf = workdir / "clamd.conf"
        conf.write_text("\n".join([
            "Foreground yes", f"LocalSocket {self.path}", f"DatabaseDirectory {workdir / 'db'}",
            f"LogFile {self.log}", "LogClean yes", "LogTime no", "StreamMaxLength 64M", "MaxFileSize 64M",
            "MaxScanSize 64M", f"User {pwd.getpwuid(os.getuid()).pw_name}", ""]))
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.path):
            assert self.proc.poll() is None, f"clamd exited: {self.proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "clamd did not open its socket"
            time.sleep(0.05)

    @property
    def scans(self):
        """Clean scans so far (clamd logs "stream(...): OK" for each)."""
        return self.log.read_text(errors="replace").count(": OK") if self.log.exists() else 0

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def scanning_media(tmp_path_factory):
    """A second media-svc on a free port (same database and storage) scanning with a real clamd."""
    import socket
    import subprocess
    clamd = Clamd(tmp_path_factory.mktemp("clamd"))
    sock_path = clamd.path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port), DATABASE_URL=MEDIA_DB_URL, PARLEY_MEDIA_DIR=str(MEDIA_DIR),
               PARLEY_CLAMD_SOCKET=sock_path, PARLEY_LOG_LEVEL="warn")
    binary = os.environ.get("PARLEY_TEST_MEDIA_BIN", str(ps.ROOT / "build" / "bin" / "media-svc"))
    proc = subprocess.Popen([binary], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not ps.healthz_ok(base, timeout=1):
        assert proc.poll() is None, f"scanning media-svc exited: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "scanning media-svc did not start"
        time.sleep(0.1)
    yield ps.Client(base), clamd
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    clamd.close()
    assert b"Sanitizer" not in err, err.decode(errors="replace")[-3000:]  # with PARLEY_TEST_MEDIA_BIN=asan


def test_clean_file_scanned_true(scanning_media):
    client, clamd = scanning_media
    before = clamd.scans
    m = upload(client, pdf(), "clean.pdf")
    assert m.status == 201, m
    assert m.json["scanned"] is True, m
    deadline = time.monotonic() + 5
    while clamd.scans < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # clamd writes its log line after answering
    assert clamd.scans == before + 1


def test_infected_file_422_nothing_stored(scanning_media):
    client, _ = scanning_media
    data = EICAR + b"\n" + uuid.uuid4().hex.encode() + b"\n"
    before = tmp_files()
    body = assert_validation(upload(client, data, "eicar.txt"), "file")
    assert "Eicar-Test-Signature" in body["errors"]["file"][0], body
    sha = hashlib.sha256(data).hexdigest()
    assert psql(f"SELECT count(*) FROM media WHERE sha256 = '{sha}'") == "0"
    assert not (MEDIA_DIR / sha[:2] / sha[2:4] / sha).exists()
    assert_no_tmp_left(before)


def test_scanner_down_503_fails_closed(scanning_media):
    client, clamd = scanning_media
    os.rename(clamd.path, clamd.path + ".away")
    try:
        ct, body = multipart(files=[("file", "x.pdf", pdf())])
        r = client.request("POST", "/api/media/upload", raw=body, content_type=ct, allow_5xx=True)
    finally:
        os.rename(clamd.path + ".away", clamd.path)
    assert_error(r, 503, "scanner_unavailable")
