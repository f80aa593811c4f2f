"""Idempotency-Key through the gateway (SPEC 2 and 10): every forwarded POST that carries one is
answered once and replayed, per API key, for 24 hours; a different request under the same key is
422; while the first still runs a repeat is 409; a 5xx or no answer lets the key go."""

import http.server
import json
import os
import threading
import time
import uuid

import parley_sys as ps
from test_gateway import API_KEY, Gateway, call, gw, make_key

CONVERSATIONS_DB = ps.CUSTOMERS_DB_URL.rsplit("/", 1)[0] + "/parley_conversations"


def post(path, body, key, api_key=API_KEY, base=None):
    c = gw(key=api_key, base=base) if base else gw(key=api_key)
    return call(c, "POST", path, body, headers={"Idempotency-Key": key}, allow_5xx=True)


def customers(names="ab"):
    t = ps.new_type("idem")
    return [call(gw(), "POST", "/api/v1/customers", {"external_type": t, "external_id": x,
                                                     "name": x}).json["id"] for x in names]


def test_repeat_replays_the_first_answer_and_a_different_request_is_422():
    a, b = customers()
    key = ps.uniq("idem")
    body = {"type": "group", "subject": ps.uniq("s"), "participants": [a, b]}
    first = post("/api/v1/conversations", body, key)
    assert first.status == 201 and first.header("Idempotent-Replayed") is None
    # the same object, serialized differently: still a repeat
    again = gw().request("POST", "/api/v1/conversations",
                         raw=json.dumps(body, indent=2, sort_keys=True).encode()[::1],
                         content_type="application/json",
                         headers={"X-API-Key": API_KEY, "Idempotency-Key": key})
    assert again.status == 201 and again.body == first.body
    assert again.header("Idempotent-Replayed") == "true"
    other = post("/api/v1/conversations", {**body, "subject": "other"}, key)
    assert other.status == 422 and "Idempotency-Key" in other.json["errors"]
    # no key: a second group conversation; another API key: its own key space
    assert post("/api/v1/conversations", body, ps.uniq("k2")).json["id"] != first.json["id"]
    second_key = make_key(["read", "write"])["key"]
    theirs = post("/api/v1/conversations", body, key, api_key=second_key)
    assert theirs.status == 201 and theirs.json["id"] != first.json["id"]
    assert theirs.header("Idempotent-Replayed") is None


def test_every_forwarded_post_takes_a_key():
    a, b, c = customers("abc")
    conv = post("/api/v1/conversations", {"type": "group", "subject": "p", "participants": [a, b]},
                ps.uniq("c")).json
    key = ps.uniq("p")
    path = f"/api/v1/conversations/{conv['id']}/participants"
    first = post(path, {"customer_id": c}, key)
    assert first.status in (200, 201), first
    again = post(path, {"customer_id": c}, key)
    assert (again.status, again.body) == (first.status, first.body)
    t, key = ps.new_type("cust"), ps.uniq("c")
    made = post("/api/v1/customers", {"external_type": t, "external_id": "1", "name": "N"}, key)
    assert made.status == 201
    replay = post("/api/v1/customers", {"external_type": t, "external_id": "1", "name": "N"}, key)
    assert (replay.status, replay.body) == (201, made.body)  # a plain re-create would say 200


def test_bad_keys_are_422():
    for key in ("", "a b", "é", "x" * 256, "tab\there"):
        r = post("/api/v1/customers", {"external_type": "t", "external_id": "1", "name": "N"}, key)
        assert r.status == 422 and "Idempotency-Key" in r.json["errors"], (key, r)
    assert post("/api/v1/customers", {"external_type": ps.new_type("k"), "external_id": "1",
                                      "name": "N"}, ps.uniq("k").ljust(255, "x")).status == 201


def test_concurrent_requests_with_one_key_create_one_conversation():
    a, b = customers()
    key, subject = ps.uniq("race"), ps.uniq("race")
    body = {"type": "group", "subject": subject, "participants": [a, b]}
    answers = []

    def one():
        answers.append(post("/api/v1/conversations", body, key))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status for r in answers} <= {201, 409}, [r.status for r in answers]
    assert all(r.header("Retry-After") == "1" for r in answers if r.status == 409)
    ids = {r.json["id"] for r in answers if r.status == 201}
    assert len(ids) == 1
    time.sleep(1)
    assert post("/api/v1/conversations", body, key).json["id"] in ids
    n = ps.psql(f"SELECT count(*) FROM conversations WHERE subject = '{subject}'", url=CONVERSATIONS_DB)
    assert n.strip() == "1", n


class Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 500 to its first POST, then 201 with a counter; counts every POST it sees."""
    seen = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Flaky.seen += 1
        status = 500 if Flaky.seen == 1 else 201
        body = json.dumps({"n": Flaky.seen}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_5xx_lets_the_key_go_and_the_retry_is_kept():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    g = Gateway(PARLEY_CUSTOMER_URL=f"http://127.0.0.1:{srv.server_port}")
    try:
        Flaky.seen = 0
        key = ps.uniq("flaky")
        body = {"external_type": "t", "external_id": "1", "name": "N"}
        assert post("/api/v1/customers", body, key, base=g.url).status == 500
        retry = post("/api/v1/customers", body, key, base=g.url)
        assert (retry.status, retry.json) == (201, {"n": 2})
        again = post("/api/v1/customers", body, key, base=g.url)
        assert (again.status, again.json, Flaky.seen) == (201, {"n": 2}, 2)
    finally:
        g.stop()
        srv.shutdown()


def upload(content, key, boundary, quoted=False):
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="doc.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    b = f'"{boundary}"' if quoted else boundary
    return gw().request("POST", "/api/v1/media/upload", raw=body,
                        content_type=f"multipart/form-data; boundary={b}",
                        headers={"X-API-Key": API_KEY, "Idempotency-Key": key}, allow_5xx=True)


def test_an_upload_is_replayed_whatever_boundary_the_retry_picks():
    """Clients draw a new multipart boundary for every request, so a retried upload differs in
    that alone: still a repeat.  A different file under the key is 422, and its bytes go nowhere."""
    pdf = b"%PDF-1.4\n" + os.urandom(3 << 20).hex().encode()[: 3 << 20]
    key = ps.uniq("up")
    first = upload(pdf, key, "----a" + uuid.uuid4().hex)
    assert first.status == 201, first
    again = upload(pdf, key, "xyz" + uuid.uuid4().hex[:40], quoted=True)
    assert (again.status, again.body) == (201, first.body)
    assert again.header("Idempotent-Replayed") == "true"
    other = upload(pdf[:-1] + b"!", key, "----a" + uuid.uuid4().hex)
    assert other.status == 422 and "Idempotency-Key" in other.json["errors"]
    fresh = upload(pdf, ps.uniq("up"), "----b" + uuid.uuid4().hex)
    assert fresh.status == 201 and fresh.json["id"] != first.json["id"]
