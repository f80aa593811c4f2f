"""GET /api/v1/conversations/{id}/stream: Server-Sent Events through the gateway (SPEC 3, 4.3, 10).

Live events for creates, edits and statuses; resume with Last-Event-ID after a disconnect (every change
once, in version order, then live); pings; 401/404/422; a client that reads nothing is dropped while a
normal one keeps receiving, without the gateway's memory growing with it.  Pings and the slow client use
a spare gateway (short ping period) so the stack's gateway keeps its defaults.
"""

import json
import os
import resource  # noqa: F401 - documents that RSS is read from /proc, not from this process
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

import parley_sys as ps

GATEWAY = os.environ.get("PARLEY_GATEWAY_URL", "http://127.0.0.1:8000")
API_KEY = os.environ.get("PARLEY_BOOTSTRAP_API_KEY", "dev-api-key")
GATEWAY_DB = ps.CUSTOMERS_DB_URL.rsplit("/", 1)[0] + "/parley_gateway"
EVENT_NAMES = {"message.created", "message.updated", "message.status.updated"}


# ----------------------------------------------------------------------------------------------- helpers

def api(base=GATEWAY):
    return ps.Client(base_url=base, token=None)


def call(method, path, body=ps._MISSING, base=GATEWAY, headers=None, **kw):
    h = {"X-API-Key": API_KEY, **(headers or {})}
    return api(base).request(method, path, json_body=body, headers=h, **kw)


def new_conversation(base=GATEWAY):
    t = ps.new_type("sse")
    a = call("POST", "/api/v1/customers", {"external_type": t, "external_id": "a", "name": "Ada"},
             base=base).json
    b = call("POST", "/api/v1/customers", {"external_type": t, "external_id": "b", "name": "Bob"},
             base=base).json
    r = call("POST", "/api/v1/conversations", {"type": "direct", "participants": [a["id"], b["id"]]},
             base=base)
    assert r.status == 201, r
    return r.json["id"], a["id"]


def send(conv, body="hi", direction="inbound", base=GATEWAY):
    cid, sender = conv
    r = call("POST", "/api/v1/messages", {"conversation_id": cid, "sender_customer_id": sender,
                                          "direction": direction, "body": body}, base=base)
    assert r.status == 201, r
    return r.json


def put(msg_id, body):
    r = call("PUT", f"/api/v1/messages/{msg_id}", body)
    assert r.status == 200, r
    return r.json


class Sse:
    """A raw HTTP/1.1 SSE client: chunked decoding and event parsing, nothing hidden."""

    def __init__(self, conv_id, base=GATEWAY, headers=None, query="", rcvbuf=None, timeout=10):
        u = urllib.parse.urlsplit(base)
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((u.hostname, u.port))
        h = {"Host": u.netloc, "Accept": "text/event-stream", "X-API-Key": API_KEY, **(headers or {})}
        lines = [f"GET /api/v1/conversations/{conv_id}/stream{query} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in h.items() if v is not None]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.body = b""
        self.status, self.headers = None, {}
        self.eof = False

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise EOFError("stream closed")
        self.raw += data

    def read_head(self):
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        return self

    def _dechunk(self):
        """Moves complete chunks from raw to body."""
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self.eof = True
                return
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def block(self):
        """The next SSE block (text up to a blank line)."""
        while True:
            self._dechunk()
            if b"\n\n" in self.body:
                blk, self.body = self.body.split(b"\n\n", 1)
                return blk.decode()
            if self.eof:
                raise EOFError("stream ended")
            self._recv()

    def event(self, timeout=10):
        """The next event as (id, event, data JSON); comments and retry blocks are skipped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = {}
            for line in self.block().split("\n"):
                if line.startswith(":"):
                    continue
                k, _, v = line.partition(":")
                fields[k] = v[1:] if v.startswith(" ") else v
            if "data" in fields:
                import json
                return int(fields["id"]), fields["event"], json.loads(fields["data"])
        raise TimeoutError("no event")

    def close(self):
        self.sock.close()


def open_stream(conv_id, **kw):
    s = Sse(conv_id, **kw).read_head()
    assert s.status == 200, (s.status, s.raw[:500])
    return s


class Gateway(ps.SpareBinary):
    def __init__(self, **env):
        super().__init__("gateway", GATEWAY_DB, **env)

    def stream(self, conv_id, **kw):
        """Opens a stream once the spare's consumer is positioned (503 until then)."""
        deadline = time.monotonic() + 20
        while True:
            s = Sse(conv_id, base=self.url, **kw).read_head()
            if s.status == 200:
                return s
            s.close()
            assert s.status == 503 and time.monotonic() < deadline, s.status
            time.sleep(0.2)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ----------------------------------------------------------------------------------------------- errors

def test_stream_needs_a_valid_key():
    cid, _ = new_conversation()
    for headers in ({}, {"X-API-Key": "nope"}):
        r = api().request("GET", f"/api/v1/conversations/{cid}/stream", headers=headers)
        ps.assert_error(r, 401, "Unauthorized")


def test_unknown_or_malformed_conversation_is_404():
    for cid in ("0190f0c2-1c7e-7a4b-8c3d-9e0f1a2b3c4d", "not-a-uuid"):
        r = call("GET", f"/api/v1/conversations/{cid}/stream")
        ps.assert_error(r, 404, "Not found")


def test_bad_last_event_id_is_422():
    cid, _ = new_conversation()
    for h in ({"Last-Event-ID": "abc"}, {"Last-Event-ID": "-1"}, {"Last-Event-ID": "1" * 19}):
        r = call("GET", f"/api/v1/conversations/{cid}/stream", headers=h)
        ps.assert_validation(r, "last_event_id")


# ----------------------------------------------------------------------------------------------- live

def test_live_create_edit_and_status_events():
    conv = new_conversation()
    s = open_stream(conv[0])
    try:
        assert s.headers["content-type"].startswith("text/event-stream")
        assert s.headers["cache-control"] == "no-cache" and s.headers["x-accel-buffering"] == "no"
        m = send(conv, "hello", direction="outbound")
        assert s.event() == (m["version"], "message.created", m)
        edited = put(m["id"], {"body": "hello again"})
        assert s.event() == (edited["version"], "message.updated", edited)
        sent = put(m["id"], {"status": "sent"})
        assert s.event() == (sent["version"], "message.status.updated", sent)
        other = send(conv, "second")
        assert s.event() == (other["version"], "message.created", other)
    finally:
        s.close()


def test_two_clients_of_one_conversation_both_receive_other_conversations_do_not():
    conv, elsewhere = new_conversation(), new_conversation()
    a, b, c = open_stream(conv[0]), open_stream(conv[0]), open_stream(elsewhere[0])
    try:
        c.sock.settimeout(1.5)
        m = send(conv)
        assert a.event() == b.event() == (m["version"], "message.created", m)
        with pytest.raises((TimeoutError, socket.timeout)):
            c.event(timeout=1.5)
    finally:
        for s in (a, b, c):
            s.close()


# ----------------------------------------------------------------------------------------------- resume

def test_resume_with_last_event_id_sends_every_change_once_in_order_then_live():
    conv = new_conversation()
    s = open_stream(conv[0])
    a = send(conv, "a", direction="outbound")
    assert s.event()[0] == a["version"]
    s.close()
    # while disconnected: creates, an edit, statuses, an edit of the edit
    b = send(conv, "b", direction="outbound")
    put(a["id"], {"body": "a2"})
    put(b["id"], {"status": "sent"})
    c = send(conv, "c")
    a3 = put(a["id"], {"body": "a3"})
    b3 = put(b["id"], {"status": "delivered"})
    expected = [c, a3, b3]
    names = ["message.created", "message.updated", "message.status.updated"]
    for how in ({"headers": {"Last-Event-ID": str(a["version"])}},
                {"query": f"?last_event_id={a['version']}"}):
        s2 = open_stream(conv[0], **how)
        try:
            got = [s2.event() for _ in expected]
            assert [g[2] for g in got] == expected, "each changed message once, current state"
            assert [g[0] for g in got] == sorted({m["version"] for m in expected})
            assert [g[1] for g in got] == names
            d = send(conv, "d")
            assert s2.event() == (d["version"], "message.created", d), "then live, nothing repeated"
            expected.append(d)
            names.append("message.created")
        finally:
            s2.close()
    # resuming from the latest id sends nothing old
    r = call("GET", f"/api/v1/conversations/{conv[0]}/messages?changed_since=0")
    top = max(m["version"] for m in r.json["data"])
    s3 = open_stream(conv[0], headers={"Last-Event-ID": str(top)})
    try:
        e = send(conv, "e")
        assert s3.event() == (e["version"], "message.created", e)
    finally:
        s3.close()


def test_resume_while_changes_keep_coming_misses_and_repeats_nothing():
    conv = new_conversation()
    first = send(conv, "0")
    stop = threading.Event()
    made = []

    def writer():
        i = 1
        while not stop.is_set() and i < 60:
            made.append(send(conv, str(i)))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.2)
        s = open_stream(conv[0], headers={"Last-Event-ID": str(first["version"])})
        seen = []
        try:
            t.join(timeout=60)
            while len(seen) < len(made):
                seen.append(s.event())
        finally:
            s.close()
    finally:
        stop.set()
        t.join()
    versions = [v for v, _, _ in seen]
    assert versions == sorted(set(versions)), "strictly increasing ids: no repeat, in order"
    assert [m for _, _, m in seen] == made


# ----------------------------------------------------------------------------------------------- ping, slow

@pytest.fixture(scope="module")
def spare():
    # its own rate-limit buckets, wide enough for hundreds of streams and a flood of messages
    g = Gateway(PARLEY_SSE_PING_MS="300", PARLEY_RATE_LIMIT_RPS="100000",
                PARLEY_RATE_LIMIT_BURST="100000")
    yield g
    g.stop()


def test_ping_comment_arrives(spare):
    conv = new_conversation(spare.url)
    s = spare.stream(conv[0])
    try:
        t0 = time.monotonic()
        blocks = [s.block(), s.block()]
        assert ": ping" in blocks and time.monotonic() - t0 < 3, blocks
    finally:
        s.close()


def test_status_event_as_first_event_of_a_stream_carries_the_message(spare):
    """A status event has no message in its payload: the gateway fetches it, also when it has seen
    no version of that conversation yet."""
    conv = new_conversation(spare.url)
    first = spare.stream(conv[0])
    m = send(conv, "out", direction="outbound", base=spare.url)
    assert first.event()[0] == m["version"]  # the create has come through Kafka
    first.close()
    time.sleep(1)  # pings notice the closed stream: the hub forgets the conversation
    s = spare.stream(conv[0])
    try:
        sent = put(m["id"], {"status": "sent"})
        assert s.event() == (sent["version"], "message.status.updated", sent)
        delivered = put(m["id"], {"status": "delivered"})
        assert s.event() == (delivered["version"], "message.status.updated", delivered)
    finally:
        s.close()


def test_slow_client_is_dropped_while_a_normal_one_keeps_receiving(spare):
    conv = new_conversation(spare.url)
    slow = spare.stream(conv[0], rcvbuf=4096)
    normal = spare.stream(conv[0])
    got = []

    def reader():
        try:
            while True:
                got.append(normal.event(timeout=30))
        except (EOFError, OSError, TimeoutError):
            pass

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    before = rss_kib(spare.proc.pid)
    body = "x" * 60000
    made = []
    for i in range(150):  # ~9 MB: far past the 256 KiB queue and the socket buffers
        made.append(send(conv, body, base=spare.url))
        deadline = time.monotonic() + 10
        while len(got) < i - 2 and time.monotonic() < deadline:
            time.sleep(0.005)  # the normal client keeps up: at most 3 messages (180 KB) in flight
    deadline = time.monotonic() + 30
    while len(got) < len(made) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m["id"] for _, _, m in got] == [m["id"] for m in made], "the normal client got everything"
    # the slow client was cut off: after what was buffered, the stream ends
    slow.sock.settimeout(10)
    with pytest.raises((EOFError, ConnectionResetError)):
        while True:
            slow._recv()
            slow.raw = slow.raw[-16:]
    grown = rss_kib(spare.proc.pid) - before
    assert grown < 32 * 1024, f"gateway RSS grew by {grown} KiB"
    normal.close()
    slow.close()


def test_closed_clients_are_forgotten(spare):
    """Many clients come and go; the gateway keeps serving new ones and its memory settles."""
    conv = new_conversation(spare.url)
    before = rss_kib(spare.proc.pid)
    for _ in range(3):
        streams = [spare.stream(conv[0]) for _ in range(100)]
        m = send(conv, base=spare.url)
        for s in streams[:5]:
            assert s.event()[0] == m["version"]
        for s in streams:
            s.close()
    time.sleep(1)  # a ping notices the closed ones
    s = spare.stream(conv[0])
    try:
        m = send(conv, base=spare.url)
        assert s.event()[0] == m["version"]
    finally:
        s.close()
    assert rss_kib(spare.proc.pid) - before < 32 * 1024


def test_sigterm_ends_open_streams_and_exits_promptly():
    g = Gateway(PARLEY_SSE_PING_MS="60000")
    try:
        conv = new_conversation(g.url)
        streams = [g.stream(conv[0]) for _ in range(3)]
        time.sleep(0.3)  # idle: every connection is asleep (suspended)
        t0 = time.monotonic()
        g.proc.terminate()
        assert g.proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 3, "the drain did not wait for the endless streams"
        for s in streams:
            with pytest.raises(EOFError):
                while True:
                    s.block()
            s.close()
    finally:
        if g.proc.poll() is None:
            g.stop()


# ----------------------------------------------------------------------------------------------- partitions

def kafka_env(run_dir, port, controller_port):
    return {**os.environ, "PARLEY_RUN_DIR": str(run_dir), "PARLEY_KAFKA_PORT": str(port),
            "PARLEY_KAFKA_CONTROLLER_PORT": str(controller_port)}


def kafka_sh(env, *args, timeout=120):
    p = subprocess.run([str(ps.ROOT / "deploy" / "local" / "kafka.sh"), *args], env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"kafka.sh {args}: {p.stdout[-2000:]}{p.stderr[-2000:]}"


def produce(brokers, topic, partition, msg):
    envelope = {"event_id": str(uuid.uuid4()), "topic": topic, "source_service": "messaging-svc",
                "occurred_at": msg["created_at"], "trace_id": ps.new_request_id("part"),
                "schema_version": 1, "key": msg["conversation_id"], "payload": msg}
    p = subprocess.run(["kcat", "-b", brokers, "-P", "-t", topic, "-p", str(partition)],
                       input=json.dumps(envelope), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def test_partitions_added_later_are_read_from_their_first_event(tmp_path):
    """Topics gain partitions to scale; a running gateway reads the new ones too, from their first
    event.  Adding partitions cannot be undone, so this runs on a broker of its own, fed by hand
    with real message objects, and a spare gateway reading it."""
    port, controller = ps.free_port(), ps.free_port()
    brokers = f"127.0.0.1:{port}"
    (tmp_path / "run").mkdir()
    env = kafka_env(tmp_path / "run", port, controller)
    kafka_sh(env, "start")
    g = None
    try:
        g = Gateway(KAFKA_BROKERS=brokers, PARLEY_SSE_PING_MS="1000")
        conv = new_conversation()
        first, second = send(conv, "before"), send(conv, "after")
        s = g.stream(conv[0], timeout=40)
        produce(brokers, "message.inbound.created", 2, first)
        assert s.event()[0] == first["version"]  # the spare reads this broker
        kafka_sh(env, "partitions", "message.inbound.created", "4")
        produce(brokers, "message.inbound.created", 3, second)  # the new partition
        version, name, data = s.event(timeout=30)
        assert (version, name, data["id"]) == (second["version"], "message.created", second["id"])
        s.close()
    finally:
        if g is not None:
            g.stop()
        kafka_sh(env, "stop")


def test_backlog_fetch_goes_through_the_messaging_breaker():
    """A stream resuming with Last-Event-ID fetches its backlog from messaging-svc.  When that hangs,
    each try waits for the upstream timeout until the breaker opens; then streams are refused at
    once with Retry-After instead of each holding a thread for the whole timeout."""
    hang, hung_url = ps.hung_upstream()
    g = Gateway(PARLEY_MESSAGING_URL=hung_url,
                PARLEY_UPSTREAM_TIMEOUT_MS="300")
    try:
        conv = new_conversation()
        slow = []
        for _ in range(5):  # GW_BREAKER_FAILURES
            t0 = time.monotonic()
            s = Sse(conv[0], base=g.url, headers={"Last-Event-ID": "1"}).read_head()
            slow.append((s.status, time.monotonic() - t0))
            s.close()
        assert all(st in (503, 504) and dt >= 0.25 for st, dt in slow), slow
        t0 = time.monotonic()
        s = Sse(conv[0], base=g.url, headers={"Last-Event-ID": "1"}).read_head()
        assert s.status == 503 and time.monotonic() - t0 < 0.2
        while b"}" not in s.raw and not s.eof:
            s._recv()
        assert b"circuit open" in s.raw, s.raw
        s.close()
    finally:
        g.stop()
        hang.close()
