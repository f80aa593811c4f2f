"""The gateway: API keys, scopes, rate limits, header hygiene, upstream failures, and the Kobliat
client flows through /api/v1 (SPEC section 3)."""

import http.client
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse


import parley_sys as ps

GATEWAY = os.environ.get("PARLEY_GATEWAY_URL", "http://127.0.0.1:8000")
API_KEY = os.environ.get("PARLEY_BOOTSTRAP_API_KEY", "dev-api-key")
BINARY = ps.ROOT / "build" / "bin" / "gateway"
GATEWAY_DB = ps.CUSTOMERS_DB_URL.rsplit("/", 1)[0] + "/parley_gateway"
UNAUTHORIZED = {"error": "Unauthorized", "message": "Valid authentication required."}


def gw(key=API_KEY, base=GATEWAY):
    c = ps.Client(base_url=base, token=None)
    c.key = key
    return c


def call(client, method, path, body=ps._MISSING, headers=None, **kw):
    h = dict(headers or {})
    if getattr(client, "key", None):
        h.setdefault("X-API-Key", client.key)
    return client.request(method, path, json_body=body, headers=h, **kw)


free_port = ps.free_port


class Gateway(ps.SpareBinary):
    """A second gateway binary on a free port with its own settings (same database)."""

    def __init__(self, **env):
        super().__init__("gateway", GATEWAY_DB, **env)



def make_key(scopes, name=None):
    r = call(gw(), "POST", "/api/v1/api-keys", {"name": name or ps.uniq("key"), "scopes": scopes})
    assert r.status == 201, r
    return r.json


# ----------------------------------------------------------------------------- authentication

def test_no_key_wrong_key_are_401():
    for headers in ({}, {"X-API-Key": "nope"}, {"Authorization": "Bearer nope"},
                    {"Authorization": "Basic " + API_KEY}):
        r = gw(key=None).request("GET", "/api/v1/customers", headers=headers)
        assert r.status == 401 and r.json == UNAUTHORIZED, (headers, r)


def test_bearer_and_header_keys_work():
    assert gw(key=None).request("GET", "/api/v1/customers",
                                headers={"Authorization": f"Bearer {API_KEY}"}).status == 200
    assert call(gw(), "GET", "/api/v1/customers").status == 200


def test_api_key_created_once_listed_without_secret_and_revoked():
    created = make_key(["read"])
    assert set(created) == {"id", "name", "scopes", "key", "created_at", "last_used_at",
                            "revoked_at"}
    assert created["scopes"] == ["read"] and created["key"].startswith("pk_")
    listed = call(gw(), "GET", "/api/v1/api-keys").json["data"]
    mine = [k for k in listed if k["id"] == created["id"]]
    assert len(mine) == 1 and "key" not in mine[0]
    assert created["key"] not in json.dumps(listed)
    stored = ps.psql(f"SELECT key_hash FROM api_keys WHERE id = '{created['id']}'", url=GATEWAY_DB)
    assert stored != created["key"] and len(stored) == 64
    reader = gw(key=created["key"])
    assert call(reader, "GET", "/api/v1/customers").status == 200
    r = call(gw(), "DELETE", f"/api/v1/api-keys/{created['id']}")
    assert r.status == 200 and r.json["revoked_at"] is not None
    deadline = time.monotonic() + 10
    while call(reader, "GET", "/api/v1/customers").status != 401:
        assert time.monotonic() < deadline, "revoked key still works"
        time.sleep(0.5)


def test_scopes_read_write_admin():
    reader = gw(key=make_key(["read"])["key"])
    writer = gw(key=make_key(["read", "write"])["key"])
    body = {"external_type": ps.new_type("scope"), "external_id": "1"}
    assert call(reader, "GET", "/api/v1/customers").status == 200
    r = call(reader, "POST", "/api/v1/customers", body)
    assert r.status == 403 and r.json["error"] == "Forbidden"
    assert call(writer, "POST", "/api/v1/customers", body).status == 201
    for who in (reader, writer):
        assert call(who, "GET", "/api/v1/api-keys").status == 403
        assert call(who, "POST", "/api/v1/api-keys", {"name": "x"}).status == 403


def test_api_key_validation_and_idempotency_refused():
    for body in ({}, {"name": ""}, {"name": "x", "scopes": ["root"]}, {"name": "x", "scopes": []},
                 {"name": 5}):
        r = call(gw(), "POST", "/api/v1/api-keys", body)
        assert r.status == 422 and r.json["error"] == "validation_failed", (body, r)
    r = call(gw(), "POST", "/api/v1/api-keys", {"name": "x"}, headers={"Idempotency-Key": "k1"})
    assert r.status == 409 and "key" not in (r.json or {})
    for bad in ("nope", "00000000-0000-7000-8000-000000000000"):
        assert call(gw(), "DELETE", f"/api/v1/api-keys/{bad}").status == 404


def test_create_api_key_command_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["DATABASE_URL"] = GATEWAY_DB
    out = subprocess.run([str(BINARY), "--create-api-key", ps.uniq("cli"), "--scopes", "read"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    key = out.stdout.split("key: ")[1].strip()
    assert call(gw(key=key), "GET", "/api/v1/customers").status == 200
    assert call(gw(key=key), "POST", "/api/v1/customers", {}).status == 403


# ----------------------------------------------------------------------------- rate limiting

def test_rate_limit_429_with_headers():
    g = Gateway(PARLEY_RATE_LIMIT_RPS="1", PARLEY_RATE_LIMIT_BURST="3")
    try:
        c = gw(base=g.url)
        statuses = [call(c, "GET", "/api/v1/stats/channels") for _ in range(5)]
        assert [r.status for r in statuses[:3]] == [200, 200, 200]
        limited = statuses[3]
        assert limited.status == 429 and int(limited.header("Retry-After")) >= 1
        assert limited.header("RateLimit-Limit") == "1"
        assert statuses[0].header("RateLimit-Remaining") == "2"
        time.sleep(1.2)
        assert call(c, "GET", "/api/v1/stats/channels").status == 200
    finally:
        g.stop()


# ----------------------------------------------------------------------------- hygiene and failures

class Recorder(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        Recorder.seen.append((self.path, dict(self.headers)))
        body = b'{"data":[]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        Recorder.seen.append((self.path, dict(self.headers), self.rfile.read(n)))
        body = b'{"status":"received"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Challenge(Recorder):
    def do_GET(self):
        Recorder.seen.append((self.path, dict(self.headers)))
        body = b"1158201444"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_webhooks_pass_byte_for_byte_without_api_key():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Challenge)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    g = Gateway(PARLEY_INBOUND_URL=f"http://127.0.0.1:{srv.server_port}")
    try:
        c = gw(key=None, base=g.url)
        raw = b'{"object":"whatsapp_business_account",  "entry":[{"id":"1"}] }\n'
        Recorder.seen.clear()
        r = c.request("POST", "/api/v1/webhooks/whatsapp", raw=raw,
                      headers={"X-Hub-Signature-256": "sha256=abc123"})
        assert r.status == 201 and r.json == {"status": "received"}
        path, headers, body = Recorder.seen[-1]
        lower = {k.lower(): v for k, v in headers.items()}
        assert path == "/api/webhooks/whatsapp" and body == raw
        assert lower["x-hub-signature-256"] == "sha256=abc123"
        r = c.request("POST", "/api/v1/webhooks/telegram", raw=b'{"update_id":1}',
                      headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"})
        assert r.status == 201
        assert {k.lower(): v for k, v in Recorder.seen[-1][1].items()}[
            "x-telegram-bot-api-secret-token"] == "tg-secret"
        r = c.request("GET", "/api/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=t"
                      "&hub.challenge=1158201444")
        assert r.status == 200 and r.body == b"1158201444"
        assert r.header("Content-Type").startswith("text/plain")
        assert "hub.challenge=1158201444" in Recorder.seen[-1][0]
        big = b'{"pad":"' + b"x" * (2 << 20) + b'"}'
        assert c.request("POST", "/api/v1/webhooks/whatsapp", raw=big).status == 201
        assert len(Recorder.seen[-1][2]) == len(big)
        api = gw(base=g.url)
        r = call(api, "POST", "/api/v1/customers", raw=big)
        assert r.status == 413 and r.json["error"] == "body_too_large"
    finally:
        g.stop()
        srv.shutdown()


def test_service_never_sees_the_callers_credentials():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    g = Gateway(PARLEY_CUSTOMER_URL=f"http://127.0.0.1:{srv.server_port}",
                PARLEY_SERVICE_TOKEN="svc-token-x")
    try:
        Recorder.seen.clear()
        r = gw(key=None, base=g.url).request(
            "GET", "/api/v1/customers?q=a%20b&per_page=5",
            headers={"X-API-Key": API_KEY, "Cookie": "session=secret", "X-Request-Id": "hyg-1"})
        assert r.status == 200
        path, headers = Recorder.seen[-1]
        lower = {k.lower(): v for k, v in headers.items()}
        assert path.startswith("/api/customers?") and "q=a%20b" in path and "per_page=5" in path
        assert "x-api-key" not in lower and "cookie" not in lower and "authorization" not in lower
        assert lower["x-service-token"] == "svc-token-x"
        assert lower["x-request-id"] == "hyg-1" and lower["x-parley-key-id"]
    finally:
        g.stop()
        srv.shutdown()


def test_path_ids_stay_in_their_segment():
    """A path arrives decoded; "?", "#" or "%" in an id (sent as %3F, %23, %25) must reach the
    service inside the same segment, never as a query the caller chose."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    g = Gateway(PARLEY_CUSTOMER_URL=f"http://127.0.0.1:{srv.server_port}")
    try:
        Recorder.seen.clear()
        r = gw(base=g.url).request("GET", "/api/v1/customers/external/t/x%3Fq%3D1%23f%20%25",
                                   headers={"X-API-Key": API_KEY})
        assert r.status == 200
        assert Recorder.seen[-1][0] == "/api/customers/external/t/x%3Fq%3D1%23f%20%25"
    finally:
        g.stop()
        srv.shutdown()
    t = ps.new_type("odd")
    odd = "x?y#z w+\u00e9&q=1%41"
    made = call(gw(), "POST", "/api/v1/customers", {"external_type": t, "external_id": odd,
                                                     "name": "Odd"})
    assert made.status == 201
    r = call(gw(), "GET", f"/api/v1/customers/external/{t}/" + urllib.parse.quote(odd, safe=""))
    assert r.status == 200 and r.json["id"] == made.json["id"] and r.json["external_id"] == odd
    # ".." is an id like any other: not folded into the path before it (by the gateway or libcurl)
    dots = call(gw(), "POST", "/api/v1/customers", {"external_type": t, "external_id": "..",
                                                     "name": "Dots"}).json
    for path in (f"/api/v1/customers/external/{t}/..", f"/api/v1/customers/external/{t}/%2E%2E"):
        r = call(gw(), "GET", path)
        assert r.status == 200 and r.json["id"] == dots["id"], path


def test_unreachable_service_is_503_without_internal_url():
    g = Gateway(PARLEY_CUSTOMER_URL=f"http://127.0.0.1:{free_port()}")
    try:
        r = gw(base=g.url).request("GET", "/api/v1/customers", headers={"X-API-Key": API_KEY},
                                   allow_5xx=True)
        assert r.status == 503 and r.json["error"] == "upstream_unavailable"
        assert "127.0.0.1" not in r.body.decode()
    finally:
        g.stop()


def test_body_limits_are_per_route():
    """API bodies stop at 1 MiB with the 1 MiB limit named; only the webhooks take up to 3 MiB
    (SPEC 2).  Declared, chunked and direct-to-inbound-svc alike."""
    for size in ((1 << 20) + 1, 4 << 20):
        r = gw().request("POST", "/api/v1/customers", raw=b"a" * size,
                         content_type="application/json", headers={"X-API-Key": API_KEY})
        assert r.status == 413 and "1048576" in r.json["message"], (size, r)
    u = urllib.parse.urlsplit(GATEWAY)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:  # 4 MiB without a Content-Length
        conn.request("POST", "/api/v1/customers", body=iter([b"a" * (1 << 20)] * 4),
                     headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
                     encode_chunked=True)
        r = conn.getresponse()
        assert r.status == 413 and b"1048576" in r.read()
    finally:
        conn.close()
    hook = b"a" * (5 << 19)  # 2.5 MiB: within the webhook limit, so the signature decides
    r = gw(key=None).request("POST", "/api/v1/webhooks/telegram", raw=hook,
                             content_type="application/json")
    assert r.status == 401, r
    r = gw(key=None).request("POST", "/api/v1/webhooks/telegram", raw=b"a" * ((3 << 20) + 1),
                             content_type="application/json")
    assert r.status == 413 and "3145728" in r.json["message"], r
    r = ps.Client(base_url=os.environ.get("PARLEY_INBOUND_URL", "http://127.0.0.1:8005")).request(
        "POST", "/api/webhooks/00000000-0000-7000-8000-000000000000/replay", raw=hook,
        content_type="application/json")
    assert r.status == 413 and "1048576" in r.json["message"], r


def test_head_is_get_without_a_body():
    """RFC 9110: where GET is served, HEAD is too, with the same status and headers and no body,
    and the connection stays usable.  Read scope suffices; the service itself answers HEAD too."""
    t = ps.new_type("head")
    cust = call(gw(), "POST", "/api/v1/customers", {"external_type": t, "external_id": "1",
                                                     "name": "Head"}).json
    reader = make_key(["read"])["key"]
    u = urllib.parse.urlsplit(GATEWAY)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        path = f"/api/v1/customers/{cust['id']}"
        conn.request("GET", path, headers={"X-API-Key": reader})
        got = conn.getresponse()
        body = got.read()
        conn.request("HEAD", path, headers={"X-API-Key": reader})
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b""
        assert int(head.getheader("Content-Length")) == len(body)
        assert head.getheader("Content-Type") == got.getheader("Content-Type")
        conn.request("GET", path, headers={"X-API-Key": reader})  # same connection
        again = conn.getresponse()
        assert again.status == 200 and again.read() == body
        conn.request("HEAD", "/api/v1/customers/00000000-0000-7000-8000-000000000000",
                     headers={"X-API-Key": reader})
        missing = conn.getresponse()
        assert missing.status == 404 and missing.read() == b""
    finally:
        conn.close()
    r = ps.Client().request("HEAD", f"/api/customers/{cust['id']}")
    assert r.status == 200 and r.body == b""
    r = call(gw(), "DELETE", "/api/v1/customers")
    assert r.status == 405 and r.header("Allow") == "POST, GET, HEAD, OPTIONS"


def test_unknown_route_and_method():
    assert call(gw(), "GET", "/api/v1/nowhere").status == 404
    r = call(gw(), "DELETE", "/api/v1/customers")
    assert r.status == 405 and "GET" in r.header("Allow")


# ----------------------------------------------------------------------------- Kobliat flows

def test_kobliat_flow_through_the_gateway():
    c = gw()
    t = ps.new_type("flow")
    a = call(c, "POST", "/api/v1/customers", {"external_type": t, "external_id": "a", "name": "Ann"})
    assert a.status == 201 and set(a.json) >= {"id", "external_id", "external_type", "name"}
    again = call(c, "POST", "/api/v1/customers", {"external_type": t, "external_id": "a"})
    assert again.status == 200 and again.json["id"] == a.json["id"]
    b = call(c, "POST", "/api/v1/customers", {"external_type": t, "external_id": "b"}).json
    assert call(c, "GET", f"/api/v1/customers/{b['id']}").json == b
    r = call(c, "GET", "/api/v1/customers/not-a-uuid")
    assert r.status == 404 and r.json["error"] == "Customer not found"
    conv = call(c, "POST", "/api/v1/conversations",
                {"type": "direct", "participants": [a.json["id"], b["id"]]})
    assert conv.status == 201 and len(conv.json["participants"]) == 2
    cid = conv.json["id"]
    assert call(c, "POST", "/api/v1/conversations", {"type": "direct", "participants":
                                                      [b["id"], a.json["id"]]}).status == 200
    m1 = call(c, "POST", "/api/v1/messages", {"conversation_id": cid, "sender_customer_id":
                                             a.json["id"], "direction": "inbound", "body": "hi"})
    assert m1.status == 201 and m1.json["seq"] == 1 and m1.json["status"] == "received"
    m2 = call(c, "POST", "/api/v1/messages", {"conversation_id": cid, "sender_customer_id":
                                             b["id"], "direction": "outbound", "body": "hello"},
              headers={"Idempotency-Key": ps.uniq("flow")})
    assert m2.status == 201 and m2.json["seq"] == 2 and m2.json["status"] == "queued"
    edit = call(c, "PUT", f"/api/v1/messages/{m2.json['id']}", {"body": "hello!", "status": "sent"})
    assert edit.status == 200 and edit.json["body"] == "hello!" and edit.json["status"] == "sent"
    hist = call(c, "GET", f"/api/v1/messages/{m2.json['id']}/history").json["data"]
    assert [h["previous_body"] for h in hist] == ["hello"]
    page = call(c, "GET", f"/api/v1/conversations/{cid}/messages?per_page=1").json
    assert page["total"] == 2 and page["data"][0]["seq"] == 2
    assert page["next_page_url"].startswith(ps.PUBLIC_URL + f"/api/v1/conversations/{cid}/messages")
    after = call(c, "GET", f"/api/v1/conversations/{cid}/messages?after_seq=1").json
    assert [m["seq"] for m in after["data"]] == [2]
    assert call(c, "GET", f"/api/v1/conversations?customer_id={a.json['id']}").json["total"] >= 1
    stats = call(c, "GET", "/api/v1/stats/channels").json
    assert {"name": t[0].upper() + t[1:], "value": 2} in stats


def test_services_health_shape():
    r = call(gw(), "GET", "/api/v1/services/health")
    assert r.status == 200
    services = r.json["services"]
    assert set(services) == {"api-gateway", "customer-service", "conversation-service",
                             "messaging-service", "media-service", "inbound-gateway"}
    for key, s in services.items():
        assert set(s) == {"name", "key", "status", "port", "response_time", "version", "uptime",
                          "last_checked"}, key
        assert s["key"] == key and s["status"] in ("healthy", "unhealthy", "offline")
    assert services["api-gateway"]["status"] == "healthy"
    one = call(gw(), "GET", "/api/v1/services/health/messaging-service")
    assert one.status == 200 and one.json["key"] == "messaging-service"
    assert call(gw(), "GET", "/api/v1/services/health/nope").status == 404


# ----------------------------------------------------------------------------- api_logs

def wait_log(request_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        r = call(gw(), "GET", "/api/v1/logs?per_page=200&path=/api/v1/")
        hits = [e for e in r.json["data"] if e["request_id"] == request_id]
        if hits:
            return hits[0]
        assert time.monotonic() < deadline, f"no api_logs row for {request_id}"
        time.sleep(0.2)


def test_every_call_logged_with_secrets_redacted():
    rid = ps.new_request_id("log")
    made = call(gw(), "POST", "/api/v1/api-keys", {"name": "logged", "password": "hunter2"},
                headers={"X-Request-Id": rid})
    assert made.status == 201
    row = wait_log(rid)
    assert row["method"] == "POST" and row["route"] == "/api/v1/api-keys" and row["status"] == 201
    assert row["api_key_id"] and row["client_ip"] == "127.0.0.1" and row["duration_ms"] > 0
    text = json.dumps(row)
    assert made.json["key"] not in text and API_KEY not in text and "hunter2" not in text
    assert json.loads(row["response_body"])["key"] == "[redacted]"
    one = call(gw(), "GET", f"/api/v1/logs/{row['id']}")
    assert one.status == 200 and one.json == row
    unauth = ps.new_request_id("log")
    gw(key=None).request("GET", "/api/v1/nowhere", headers={"X-Request-Id": unauth})
    miss = wait_log(unauth)
    assert miss["status"] == 404 and miss["route"] == "unmatched" and miss["api_key_id"] is None


def follow_logs_paginator(rid):
    """The paginator's URLs are public ones that answer the next and previous pages."""
    call(gw(), "GET", "/api/v1/customers/not-a-uuid", headers={"X-Request-Id": rid + "b"})
    wait_log(rid + "b")
    p1 = call(gw(), "GET", "/api/v1/logs?path=not-a-uuid&per_page=1")
    assert p1.status == 200 and p1.json["last_page"] >= 2
    nxt = urllib.parse.urlsplit(p1.json["next_page_url"])
    assert nxt.path == "/api/v1/logs"
    assert urllib.parse.parse_qs(nxt.query) == {"path": ["not-a-uuid"], "page": ["2"],
                                                "per_page": ["1"]}
    p2 = call(gw(), "GET", f"{nxt.path}?{nxt.query}")
    assert p2.status == 200 and p2.json["current_page"] == 2
    assert p2.json["data"][0]["id"] != p1.json["data"][0]["id"]
    assert urllib.parse.urlsplit(p2.json["prev_page_url"]).path == "/api/v1/logs"


def test_logs_filters_paginator_and_bad_filters():
    rid = ps.new_request_id("logf")
    call(gw(), "GET", "/api/v1/customers/not-a-uuid", headers={"X-Request-Id": rid})
    wait_log(rid)
    r = call(gw(), "GET", "/api/v1/logs?method=get&status=404&path=not-a-uuid&per_page=5")
    assert r.status == 200 and set(r.json) >= {"data", "current_page", "per_page", "total",
                                               "last_page", "next_page_url", "prev_page_url"}
    assert r.json["per_page"] == 5 and r.json["data"]
    assert all(e["method"] == "GET" and e["status"] == 404 and "not-a-uuid" in e["path"]
               for e in r.json["data"])
    follow_logs_paginator(rid)
    # a status under 400 is filtered without the error rows' index, and rightly too
    ok = call(gw(), "GET", "/api/v1/logs?status=200&per_page=5").json
    assert ok["data"] and all(e["status"] == 200 for e in ok["data"])
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert call(gw(), "GET", f"/api/v1/logs?start_date={today}").json["total"] >= 1
    assert call(gw(), "GET", "/api/v1/logs?end_date=2000-01-01").json["total"] == 0
    for q in ("status=abc", "start_date=yesterday", "end_date=2026-13", "method=G%27T",
              "per_page=500"):
        assert call(gw(), "GET", f"/api/v1/logs?{q}").status == 422, q
    assert call(gw(), "GET", "/api/v1/logs/not-a-uuid").status == 404


def test_telemetry_and_notifications():
    t = call(gw(), "GET", "/api/v1/telemetry/metrics")
    assert t.status == 200
    assert set(t.json) >= {"total_requests", "average_response_time", "error_rate"}
    assert t.json["total_requests"] >= 1 and 0 <= t.json["error_rate"] <= 100
    # it is summed from per-minute totals, written with the rows: new calls count, errors too
    rid = ps.new_request_id("tele")
    for i in range(3):
        call(gw(), "GET", "/api/v1/customers/not-a-uuid", headers={"X-Request-Id": f"{rid}{i}"})
    wait_log(f"{rid}2")
    t2 = call(gw(), "GET", "/api/v1/telemetry/metrics").json
    assert t2["total_requests"] >= t.json["total_requests"] + 3


def test_telemetry_totals_match_the_rows():
    """The per-minute totals agree with api_logs itself over the same minutes (one snapshot)."""
    window = "date_trunc('minute', now() - interval '24 hours')"
    got = ps.psql(
        "SELECT m.*, r.* FROM (SELECT sum(requests), sum(errors), sum(server_errors),"
        f" sum(duration_ms_sum) FROM api_log_minutes WHERE minute >= {window}) m,"
        " (SELECT count(*), count(*) FILTER (WHERE status >= 400),"
        " count(*) FILTER (WHERE status >= 500), sum(duration_ms)"
        f" FROM api_logs WHERE created_at >= {window}) r", url=GATEWAY_DB).strip().split("|")
    minutes, rows = got[:4], got[4:]
    assert minutes[:3] == rows[:3] and int(rows[0]) > 0, got
    assert abs(float(minutes[3]) - float(rows[3])) < 0.01, got
    n = call(gw(), "GET", "/api/v1/notifications")
    assert n.status == 200 and isinstance(n.json, list) and n.json
    assert all({"type", "title", "message"} <= set(item) for item in n.json)


# ----------------------------------------------------------------------------- details aggregate

def conversation_with_messages(n=3):
    c = gw()
    t = ps.new_type("det")
    a = call(c, "POST", "/api/v1/customers", {"external_type": t, "external_id": "a",
                                              "name": "Ada"}).json
    b = call(c, "POST", "/api/v1/customers", {"external_type": t, "external_id": "b",
                                              "name": "Bob"}).json
    conv = call(c, "POST", "/api/v1/conversations",
                {"type": "direct", "participants": [a["id"], b["id"]]}).json
    for i in range(n):
        assert call(c, "POST", "/api/v1/messages", {"conversation_id": conv["id"],
                    "sender_customer_id": a["id"], "direction": "inbound",
                    "body": f"m{i}"}).status == 201
    return conv, a, b


def test_details_aggregate():
    conv, a, b = conversation_with_messages(3)
    r = call(gw(), "GET", f"/api/v1/conversations/{conv['id']}/details")
    assert r.status == 200
    d = r.json
    assert d["id"] == conv["id"] and d["type"] == "direct" and d["message_count"] == 3
    assert [m["body"] for m in d["messages"]["data"]] == ["m2", "m1", "m0"]
    names = {p["customer_id"]: (p["name"], p["external_id"], p["external_type"])
             for p in d["participants"]}
    assert names[a["id"]] == ("Ada", "a", a["external_type"])
    assert names[b["id"]] == ("Bob", "b", b["external_type"])
    for bad in ("not-a-uuid", "00000000-0000-7000-8000-000000000000"):
        r = call(gw(), "GET", f"/api/v1/conversations/{bad}/details")
        assert r.status == 404 and r.json["error"] == "Not found", bad


def test_details_degrades_one_field_at_a_time():
    conv, a, _ = conversation_with_messages(1)
    dead = f"http://127.0.0.1:{free_port()}"
    g = Gateway(PARLEY_MESSAGING_URL=dead)
    try:
        d = call(gw(base=g.url), "GET", f"/api/v1/conversations/{conv['id']}/details").json
        assert d["messages"] is None and d["message_count"] is None
        assert {p["name"] for p in d["participants"]} == {"Ada", "Bob"}
    finally:
        g.stop()
    g = Gateway(PARLEY_CUSTOMER_URL=dead)
    try:
        d = call(gw(base=g.url), "GET", f"/api/v1/conversations/{conv['id']}/details").json
        assert d["message_count"] == 1 and all(p["name"] is None for p in d["participants"])
        assert {p["customer_id"] for p in d["participants"]} >= {a["id"]}
    finally:
        g.stop()
    g = Gateway(PARLEY_CONVERSATION_URL=dead)
    try:
        r = gw(base=g.url).request("GET", f"/api/v1/conversations/{conv['id']}/details",
                                   headers={"X-API-Key": API_KEY}, allow_5xx=True)
        assert r.status == 503 and "127.0.0.1" not in r.body.decode()
    finally:
        g.stop()


def test_details_part_behind_an_open_breaker_degrades_at_once():
    """A hanging messaging-svc costs each details call the (short) timeout until its breaker opens;
    then the messages part degrades at once while the rest is still answered."""
    conv, a, b = conversation_with_messages(1)
    hang, hung_url = ps.hung_upstream()
    g = Gateway(PARLEY_MESSAGING_URL=hung_url,
                PARLEY_UPSTREAM_TIMEOUT_MS="300")
    try:
        times = []
        for _ in range(6):  # GW_BREAKER_FAILURES, then one more
            t0 = time.monotonic()
            r = call(gw(base=g.url), "GET", f"/api/v1/conversations/{conv['id']}/details")
            times.append(time.monotonic() - t0)
            assert r.status == 200 and r.json["messages"] is None and r.json["id"] == conv["id"]
            assert {p["name"] for p in r.json["participants"]} == {"Ada", "Bob"}
        assert min(times[:5]) >= 0.25 and times[5] < 0.2, times
    finally:
        g.stop()
        hang.close()


def test_dead_webhooks_and_replay_need_admin():
    r = call(gw(), "GET", "/api/v1/webhooks/dead")
    assert r.status == 200 and "data" in r.json
    reader = gw(key=make_key(["read", "write"])["key"])
    assert call(reader, "GET", "/api/v1/webhooks/dead").status == 403
    assert call(reader, "POST", "/api/v1/webhooks/00000000-0000-7000-8000-000000000000/replay",
                {}).status == 403
    r = call(gw(), "POST", "/api/v1/webhooks/00000000-0000-7000-8000-000000000000/replay", {})
    assert r.status == 404
