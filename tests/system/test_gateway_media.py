"""The gateway's media routes (SPEC 3, 10 "Media"; issues 4 and 6): uploads and content stream through
the gateway without being held whole, signed download URLs work there without an API key, the caller's
Range and conditional headers reach media-svc, its statuses and content headers come back, and media-svc
never sees the caller's credentials nor an unauthenticated request."""

import hashlib
import http.client
import http.server
import os
import socket
import threading
import time
import urllib.parse
import uuid

import pytest

import parley_sys as ps
from parley_sys import assert_error, assert_json_response
from test_gateway import API_KEY, GATEWAY, Gateway, call, free_port, gw, make_key
from test_media import ELF, MEDIA_KEYS, multipart, png, sign, vm_rss_kib

MIB = 1024 * 1024
MAX_BYTES = 25 * MIB
RSS_GROWTH_MAX_KIB = 8 * 1024


def upload(data, filename="file.bin", key=API_KEY, base=GATEWAY, fields=(), ctype=None, **kw):
    content_type, body = multipart(fields, [("file", filename, data) + ((ctype,) if ctype else ())])
    return gw(key=key, base=base).request("POST", "/api/v1/media/upload", raw=body, content_type=content_type,
                                          headers={"X-API-Key": key} if key else None, **kw)


def upload_ok(data, filename="file.bin", **kw):
    r = upload(data, filename, **kw)
    assert r.status == 201, r
    assert_json_response(r)
    assert list(r.json) == MEDIA_KEYS, r
    return r.json


def content(media_id, query="", key=API_KEY, headers=None, base=GATEWAY):
    h = dict(headers or {})
    if key:
        h["X-API-Key"] = key
    path = f"/api/v1/media/{media_id}/content" + (f"?{query}" if query else "")
    return gw(key=None, base=base).request("GET", path, headers=h)


def signed_query(media_id, expires=None):
    expires = expires if expires is not None else int(time.time()) + 600
    return f"expires={expires}&signature={sign(media_id, expires)}"


def gateway_pid():
    pid = ps.read_pid("gateway")
    assert ps.pid_alive(pid), "gateway pid file"
    return pid


def rss_sampler(pid):
    base = vm_rss_kib(pid)
    peak = [base]

    def sample():
        peak[0] = max(peak[0], vm_rss_kib(pid))
    return base, peak, sample


def send_upload(size, head, chunked=False, during=None, key=API_KEY, base=GATEWAY):
    """Uploads a file of head + zeros (size bytes) through the gateway in 256 KiB pieces, with Content-Length
    or Transfer-Encoding: chunked; during() runs between pieces.  Returns (status, headers, body bytes)."""
    boundary = "----gwmedia" + uuid.uuid4().hex
    pre = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
           f"Content-Type: image/png\r\n\r\n").encode() + head
    post = f"\r\n--{boundary}--\r\n".encode()
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    try:
        conn.putrequest("POST", "/api/v1/media/upload")
        conn.putheader("X-API-Key", key)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(len(pre) + size - len(head) + len(post)))
        conn.endheaders()

        def send(b):
            conn.send(b"%x\r\n" % len(b) + b + b"\r\n" if chunked else b)

        block = b"\0" * (256 * 1024)
        send(pre)
        left = size - len(head)
        try:
            while left > 0:
                send(block[:min(left, len(block))])
                left -= min(left, len(block))
                if during:
                    during()
            send(post)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early; read the answer
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stored():
    data = png(3, 2, os.urandom(20000))
    return upload_ok(data, "pic.png"), data


# ------------------------------------------------------------------------------------------ round trip

def test_upload_round_trip_via_signed_url_and_via_key(stored):
    m, data = stored
    assert (m["content_type"], m["size"], m["sha256"]) == ("image/png", len(data), hashlib.sha256(data).hexdigest())
    r = call(gw(), "GET", f"/api/v1/media/{m['id']}")
    assert r.status == 200 and r.json == m, r
    r = call(gw(), "GET", f"/api/v1/media/{m['id']}/download")
    assert r.status == 200 and list(r.json) == ["download_url", "expires_in_seconds"], r
    url = urllib.parse.urlsplit(r.json["download_url"])
    assert f"{url.scheme}://{url.netloc}" == ps.PUBLIC_URL, r.json
    assert url.path == f"/api/v1/media/{m['id']}/content", r.json

    for got in (content(m["id"], url.query, key=None), content(m["id"])):
        assert got.status == 200 and got.body == data, got
        assert got.header("Content-Type") == "image/png"
        assert got.header("ETag") == f'"{m["sha256"]}"'
        assert got.header("Content-Length") == str(len(data))
        assert got.header("Accept-Ranges") == "bytes"
        assert got.header("X-Content-Type-Options") == "nosniff"
        assert got.header("Content-Disposition") == 'inline; filename="pic.png"'
        assert got.header("X-Request-Id")


def test_document_downloads_as_attachment_with_fields():
    data = b"%PDF-1.4\n% " + uuid.uuid4().hex.encode() + b"\n%%EOF\n"
    conv = str(uuid.uuid4())
    m = upload_ok(data, "../../etc/report.pdf", fields=[("conversation_id", conv), ("owner_service", "gw-tests")])
    assert (m["filename"], m["conversation_id"], m["owner_service"]) == ("report.pdf", conv, "gw-tests"), m
    got = content(m["id"])
    assert got.status == 200 and got.body == data, got
    assert got.header("Content-Type") == "application/pdf"
    assert got.header("Content-Disposition") == 'attachment; filename="report.pdf"'


@pytest.mark.parametrize("rng, sl", [("bytes=0-9", slice(0, 10)), ("bytes=100-", slice(100, None)),
                                     ("bytes=-7", slice(-7, None))])
def test_range_206(stored, rng, sl):
    m, data = stored
    r = content(m["id"], headers={"Range": rng})
    part = data[sl]
    start = len(data) - len(part) if sl.start and sl.start < 0 else (sl.start or 0)
    assert r.status == 206 and r.body == part, r
    assert r.header("Content-Range") == f"bytes {start}-{start + len(part) - 1}/{len(data)}"
    assert r.header("Content-Length") == str(len(part))
    r = content(m["id"], signed_query(m["id"]), key=None, headers={"Range": rng})
    assert r.status == 206 and r.body == part, r


def test_if_range_and_416(stored):
    m, data = stored
    r = content(m["id"], headers={"Range": "bytes=0-1", "If-Range": '"old"'})
    assert r.status == 200 and r.body == data, r
    r = content(m["id"], headers={"Range": f"bytes={len(data) + 10}-"})
    assert_error(r, 416, "range_not_satisfiable")
    assert r.header("Content-Range") == f"bytes */{len(data)}"


def test_if_none_match_304(stored):
    m, _ = stored
    etag = f'"{m["sha256"]}"'
    for query, key in (("", API_KEY), (signed_query(m["id"]), None)):
        r = content(m["id"], query, key=key, headers={"If-None-Match": etag})
        assert r.status == 304 and r.body == b"", r
        assert r.header("ETag") == etag
    r = content(m["id"], headers={"If-None-Match": '"other"'})
    assert r.status == 200, r


def test_unknown_and_malformed_ids_404():
    for mid in (str(uuid.uuid4()), "not-a-uuid"):
        for path in (f"/api/v1/media/{mid}", f"/api/v1/media/{mid}/download", f"/api/v1/media/{mid}/content"):
            assert_error(call(gw(), "GET", path), 404, "Media not found")
        assert_error(content(mid, signed_query(mid), key=None), 404, "Media not found")


# ------------------------------------------------------------------------------------------ authentication

def test_content_needs_key_or_valid_signature(stored):
    m, data = stored
    assert_error(content(m["id"], key=None), 401, "Unauthorized")
    assert_error(content(m["id"], key="wrong-key"), 401, "Unauthorized")
    exp = int(time.time()) + 600
    good = sign(m["id"], exp)
    past = int(time.time()) - 5
    bad = [
        f"expires={exp}&signature={good[:-1]}{'0' if good[-1] != '0' else '1'}",
        f"expires={exp + 1}&signature={good}",
        f"expires={exp}&signature={good.upper()}",
        f"expires={exp}&signature={good[:32]}",
        f"expires={exp}",
        f"signature={good}",
        f"expires={exp}&signature={sign(str(uuid.uuid4()), exp)}",
        f"expires={exp}&signature={sign(m['id'], exp, b'wrong-secret')}",
        f"expires={past}&signature={sign(m['id'], past)}",
        f"expires=-1&signature={sign(m['id'], -1)}",
        f"expires={exp}abc&signature={good}",
    ]
    for query in bad:
        assert_error(content(m["id"], query, key=None), 403, "forbidden")
        assert_error(content(m["id"], query, key="wrong-key"), 403, "forbidden")
        r = content(m["id"], query)  # a valid API key wins over a bad signature
        assert r.status == 200 and r.body == data, (query, r)
    r = content(m["id"], f"expires={exp}&signature={good}", key=None)
    assert r.status == 200 and r.body == data, r


def test_signed_link_downloads_are_rate_limited_per_client(stored):
    """A signed link carries no key, so its downloads take tokens from the client's own bucket."""
    m, data = stored
    g = Gateway(PARLEY_RATE_LIMIT_RPS="1", PARLEY_RATE_LIMIT_BURST="3",
                PARLEY_MEDIA_URL_SECRET=os.environ.get("PARLEY_MEDIA_URL_SECRET", "dev-media-url-secret"))
    try:
        answers = [content(m["id"], signed_query(m["id"]), key=None, base=g.url) for _ in range(4)]
        assert [r.status for r in answers] == [200, 200, 200, 429], answers
        assert answers[0].body == data and answers[0].header("RateLimit-Remaining") == "2", answers[0]
        limited = answers[3]
        assert_error(limited, 429, "Too Many Requests")
        assert int(limited.header("Retry-After")) >= 1 and limited.header("RateLimit-Limit") == "1"
        assert content(m["id"], key=API_KEY, base=g.url).status == 200, "the API key has a bucket of its own"
        time.sleep(1.2)
        assert content(m["id"], signed_query(m["id"]), key=None, base=g.url).status == 200
    finally:
        g.stop()


def test_scopes():
    reader, writer = make_key(["read"]), make_key(["write"])
    m = upload_ok(png(2, 2, uuid.uuid4().bytes), key=writer["key"])
    assert content(m["id"], key=reader["key"]).status == 200
    assert_error(content(m["id"], key=writer["key"]), 403, "Forbidden")
    assert_error(upload(png(1, 1, uuid.uuid4().bytes), key=reader["key"]), 403, "Forbidden")
    assert_error(upload(png(1, 1, uuid.uuid4().bytes), key=None), 401, "Unauthorized")


# ------------------------------------------------------------------------------------------ refusals

def test_415_and_422_pass_through_as_json():
    r = gw().request("POST", "/api/v1/media/upload", raw=b'{"file": "x"}', headers={"X-API-Key": API_KEY})
    assert_error(r, 415, "unsupported_media_type")
    assert_error(upload(ELF, "photo.jpg"), 415, "unsupported_media_type")
    content_type, body = multipart([("owner_service", "x")])
    r = gw().request("POST", "/api/v1/media/upload", raw=body, content_type=content_type,
                     headers={"X-API-Key": API_KEY})
    ps.assert_validation(r, "file")


def test_declared_too_large_is_413_at_once():
    t0 = time.monotonic()
    status, headers, body = send_upload(26 * MIB, png(1, 1)[:33])
    assert status == 413, body
    r = ps.Resp("POST", "/api/v1/media/upload", status, headers, body, 0)
    assert_error(r, 413, "body_too_large")
    assert str(MAX_BYTES) in r.json["message"], r
    assert time.monotonic() - t0 < 10


def test_chunked_too_large_is_413():
    status, headers, body = send_upload(26 * MIB, png(1, 1)[:33], chunked=True)
    r = ps.Resp("POST", "/api/v1/media/upload", status, headers, body, 0)
    assert_error(r, 413, "body_too_large")


# ------------------------------------------------------------------------------------------ memory

@pytest.fixture(scope="module")
def big():
    """A 24 MiB upload through the gateway, with the gateway's RSS sampled while it streams."""
    pid = gateway_pid()
    send_upload(2 * MIB, png(1, 1)[:33] + uuid.uuid4().bytes)  # warm up: buffers of the first stream
    base, peak, sample = rss_sampler(pid)
    head = png(4000, 3000)[:33] + uuid.uuid4().bytes
    status, _, body = send_upload(24 * MIB, head, during=sample)
    sample()
    return status, body, head, peak[0] - base


def test_24mib_upload_streams_with_flat_gateway_memory(big):
    status, body, _, growth = big
    assert status == 201, body
    m = ps.Resp("POST", "/api/v1/media/upload", status, {}, body, 0).json
    assert (m["size"], m["content_type"], m["width"], m["height"]) == (24 * MIB, "image/png", 4000, 3000), m
    assert growth < RSS_GROWTH_MAX_KIB, f"gateway RSS grew {growth / 1024:.1f} MiB during a 24 MiB upload"


def test_24mib_download_streams_with_flat_gateway_memory(big):
    status, body, head, _ = big
    assert status == 201, body
    m = ps.Resp("POST", "/api/v1/media/upload", status, {}, body, 0).json
    want = hashlib.sha256(head + b"\0" * (24 * MIB - len(head))).hexdigest()
    assert m["sha256"] == want
    pid = gateway_pid()
    content(m["id"], headers={"Range": "bytes=0-99999"})  # warm up
    base, peak, sample = rss_sampler(pid)
    u = urllib.parse.urlsplit(GATEWAY)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request("GET", f"/api/v1/media/{m['id']}/content?{signed_query(m['id'])}")
        r = conn.getresponse()
        assert r.status == 200 and r.headers["Content-Length"] == str(24 * MIB)
        h, n = hashlib.sha256(), 0
        while piece := r.read(256 * 1024):
            h.update(piece)
            n += len(piece)
            sample()
            time.sleep(0.002)  # a client slower than the disk: the gateway must not buffer ahead
    finally:
        conn.close()
    assert n == 24 * MIB and h.hexdigest() == want
    growth = peak[0] - base
    assert growth < RSS_GROWTH_MAX_KIB, f"gateway RSS grew {growth / 1024:.1f} MiB during a 24 MiB download"


# ------------------------------------------------------------------------------------------ hygiene

class MediaRecorder(http.server.BaseHTTPRequestHandler):
    """A stand-in media-svc that records what reaches it."""
    protocol_version = "HTTP/1.1"  # answers Expect: 100-continue as media-svc does
    seen = []

    def _answer(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        MediaRecorder.seen.append((self.path, dict(self.headers), b""))
        self._answer(206, b"0123", "image/png", [("Content-Range", "bytes 0-3/10"), ("ETag", '"e"'),
                                                  ("X-Internal", "not for clients")])

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        MediaRecorder.seen.append((self.path, dict(self.headers), self.rfile.read(n)))
        self._answer(201, b'{"id":"x"}')

    def log_message(self, *a):
        pass


@pytest.fixture
def recorded_gateway():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MediaRecorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    g = Gateway(PARLEY_MEDIA_URL=f"http://127.0.0.1:{srv.server_port}", PARLEY_SERVICE_TOKEN="svc-token-m")
    MediaRecorder.seen.clear()
    try:
        yield g
    finally:
        g.stop()
        srv.shutdown()


def lower(headers):
    return {k.lower(): v for k, v in headers.items()}


def test_media_svc_never_sees_credentials(recorded_gateway):
    g = recorded_gateway
    content_type, body = multipart([], [("file", "a.png", b"abc")])
    r = gw(key=None, base=g.url).request(
        "POST", "/api/v1/media/upload", raw=body, content_type=content_type,
        headers={"X-API-Key": API_KEY, "Cookie": "session=secret", "X-Request-Id": "gwm-1"})
    assert r.status == 201 and r.json == {"id": "x"}, r
    path, headers, got = MediaRecorder.seen[-1]
    h = lower(headers)
    assert path == "/api/media/upload" and got == body
    assert h["content-type"] == content_type and h["content-length"] == str(len(body))
    assert "x-api-key" not in h and "cookie" not in h and "authorization" not in h
    assert h["x-service-token"] == "svc-token-m" and h["x-request-id"] == "gwm-1" and h["x-parley-key-id"]

    mid = str(uuid.uuid4())
    r = content(mid, headers={"Range": "bytes=0-3", "If-None-Match": '"x"', "Authorization": "Bearer " + API_KEY},
                key=None, base=g.url)
    assert r.status == 206 and r.body == b"0123", r
    assert r.header("Content-Range") == "bytes 0-3/10" and r.header("ETag") == '"e"'
    assert r.header("X-Internal") is None
    path, headers, _ = MediaRecorder.seen[-1]
    h = lower(headers)
    assert path == f"/api/media/{mid}/content"
    assert h["range"] == "bytes=0-3" and h["if-none-match"] == '"x"'
    assert "authorization" not in h and "x-api-key" not in h and h["x-service-token"] == "svc-token-m"

    r = content(mid, signed_query(mid), key=None, base=g.url)
    assert r.status == 206, r
    path, headers, _ = MediaRecorder.seen[-1]
    assert path == f"/api/media/{mid}/content", "the signature stays at the gateway"
    assert "x-parley-key-id" not in lower(headers)


def test_unauthenticated_calls_never_reach_media_svc(recorded_gateway):
    g = recorded_gateway
    mid = str(uuid.uuid4())
    past = int(time.time()) - 5
    for query, key in (("", None), ("", "wrong"), (f"expires={past}&signature={sign(mid, past)}", None)):
        r = content(mid, query, key=key, base=g.url)
        assert r.status in (401, 403), r
    assert upload(b"abc", key=None, base=g.url).status == 401
    assert MediaRecorder.seen == []


def test_unreachable_media_svc_is_503_json():
    g = Gateway(PARLEY_MEDIA_URL=f"http://127.0.0.1:{free_port()}")
    try:
        r = upload(b"abc", base=g.url, allow_5xx=True)
        assert_error(r, 503, "upstream_unavailable")
        r = gw(key=None, base=g.url).request("GET", f"/api/v1/media/{uuid.uuid4()}/content",
                                             headers={"X-API-Key": API_KEY}, allow_5xx=True)
        assert_error(r, 503, "upstream_unavailable")
        assert "127.0.0.1" not in r.body.decode()
    finally:
        g.stop()


class Stall:
    """A stand-in media-svc that reads the headers of each request, says 100 Continue when asked to, and
    then neither reads nor answers."""

    def __init__(self, say_continue):
        self.say_continue = say_continue
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # fills up soon
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._hold, args=(c,), daemon=True).start()

    def _hold(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            piece = c.recv(1)
            if not piece:
                return
            head += piece
        if self.say_continue:
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_stalled_media_svc_is_504_within_the_timeout():
    stall = Stall(say_continue=True)
    g = Gateway(PARLEY_MEDIA_URL=stall.url, PARLEY_UPSTREAM_TIMEOUT_MS="1000")
    try:
        t0 = time.monotonic()
        r = gw(key=None, base=g.url).request("GET", f"/api/v1/media/{uuid.uuid4()}/content",
                                             headers={"X-API-Key": API_KEY}, allow_5xx=True)
        assert_error(r, 504, "upstream_timeout")
        assert time.monotonic() - t0 < 5, r
        t0 = time.monotonic()
        status, headers, body = send_upload(16 * MIB, png(1, 1)[:33], base=g.url)
        r = ps.Resp("POST", "/api/v1/media/upload", status, headers, body, 0)
        assert_error(r, 504, "upstream_timeout")
        assert time.monotonic() - t0 < 10, "the upload waited on a stalled media-svc beyond its timeout"
        assert ps.healthz_ok(g.url)
    finally:
        g.stop()
        stall.close()
