"""Helpers for the black-box system tests of the local Parley stack.

Standard library only: http.client for HTTP, `psql` and `kcat` through subprocess.
Everything here talks to the real running stack (see deploy/local and SPEC section 8).
"""

import concurrent.futures
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("PARLEY_RUN_DIR", str(ROOT / ".run")))

CUSTOMER_URL = os.environ.get("PARLEY_CUSTOMER_URL", "http://127.0.0.1:8001")
PUBLIC_URL = os.environ.get("PARLEY_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
SERVICE_TOKEN = os.environ.get("PARLEY_SERVICE_TOKEN", "dev-service-token")
CUSTOMERS_DB_URL = os.environ.get(
    "PARLEY_TEST_CUSTOMERS_DATABASE_URL",
    "postgresql://parley:parley@127.0.0.1:55432/parley_customers",
)
KAFKA_BROKERS = os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")

CREATED = "customer.created"
UPDATED = "customer.updated"
CUSTOMER_TOPICS = (CREATED, UPDATED)

CUSTOMER_KEYS = ["id", "external_id", "external_type", "name", "metadata", "created_at", "updated_at"]
ENVELOPE_KEYS = {
    "event_id", "topic", "source_service", "occurred_at", "trace_id", "schema_version", "key", "payload",
}
PAGINATOR_KEYS = {
    "data", "current_page", "per_page", "total", "last_page", "from", "to", "next_page_url", "prev_page_url",
}

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_MISSING = object()


# --------------------------------------------------------------------------- ids

def uniq(prefix="x"):
    """A value unique to this call (uuid4 based)."""
    return f"{prefix}-{uuid.uuid4().hex}"


def new_type(prefix="t"):
    """A fresh external_type: lowercase letters/digits, starts with a letter, 1 + 20 chars."""
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def new_request_id(prefix="sys"):
    return f"{prefix}-{uuid.uuid4().hex}"


def q(s):
    """URL-encode one path segment or query value completely (`+` -> %2B, space -> %20)."""
    return urllib.parse.quote(s, safe="")


# --------------------------------------------------------------------------- HTTP

class Resp:
    def __init__(self, method, path, status, headers, body, elapsed):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive get)
        self.body = body
        self.elapsed = elapsed
        self.json = None
        self.json_error = None
        if body:
            try:
                self.json = json.loads(body.decode("utf-8"), object_pairs_hook=_dict_no_dupes)
            except Exception as e:  # noqa: BLE001 - recorded for the assertion message
                self.json_error = repr(e)

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        text = self.body[:1500].decode("utf-8", "replace")
        return f"<{self.method} {self.path[:200]} -> {self.status} {dict(self.headers.items())} {text!r}>"


def _dict_no_dupes(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate JSON key {k!r}")
        d[k] = v
    return d


class Client:
    """Tiny HTTP client for one service. A 5xx answer fails the test unless allow_5xx=True."""

    def __init__(self, base_url=CUSTOMER_URL, token=SERVICE_TOKEN):
        u = urllib.parse.urlsplit(base_url)
        self.host = u.hostname
        self.port = u.port or 80
        self.token = token

    def request(self, method, path, json_body=_MISSING, raw=None, content_type=_MISSING, headers=None,
                token=_MISSING, request_id=None, timeout=15, allow_5xx=False):
        if json_body is not _MISSING and raw is not None:
            raise ValueError("json_body and raw are exclusive")
        body = None
        if json_body is not _MISSING:
            body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        elif raw is not None:
            body = raw
        if content_type is _MISSING:
            content_type = "application/json" if body is not None else None
        if token is _MISSING:
            token = self.token

        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        t0 = time.monotonic()
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            if token is not None:
                conn.putheader("X-Service-Token", token)
            if request_id is not None:
                conn.putheader("X-Request-Id", request_id)
            if content_type is not None:
                conn.putheader("Content-Type", content_type)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None or method in ("POST", "PATCH", "PUT"):
                conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders()
            send_error = None
            if body:
                view = memoryview(body)
                try:
                    for i in range(0, len(body), 65536):
                        conn.send(view[i:i + 65536])
                except (BrokenPipeError, ConnectionResetError) as e:
                    # The server may answer (e.g. 413) before reading everything; read its answer.
                    send_error = e
            try:
                r = conn.getresponse()
                data = r.read()
            except Exception as e:  # noqa: BLE001
                raise AssertionError(
                    f"{method} {path[:200]}: no HTTP response ({e!r}; error while sending body: {send_error!r})"
                ) from e
            resp = Resp(method, path, r.status, r.headers, data, time.monotonic() - t0)
        finally:
            conn.close()
        if resp.status >= 500 and not allow_5xx:
            raise AssertionError(f"server error (never acceptable here): {resp!r}")
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json_body=_MISSING, **kw):
        return self.request("POST", path, json_body=json_body, **kw)

    def patch(self, path, json_body=_MISSING, **kw):
        return self.request("PATCH", path, json_body=json_body, **kw)


def create_customer(api, external_type=None, external_id=None, expect=201, request_id=None, **fields):
    body = {"external_type": external_type or new_type(), "external_id": external_id or uniq("ext")}
    body.update(fields)
    r = api.post("/api/customers", body, request_id=request_id)
    assert r.status == expect, r
    assert_customer(r.json)
    return r.json


# --------------------------------------------------------------------------- shape assertions

def assert_json_response(r):
    ct = r.header("Content-Type") or ""
    assert ct.split(";")[0].strip().lower() == "application/json", f"Content-Type {ct!r}: {r!r}"
    assert r.json_error is None, f"body is not valid JSON ({r.json_error}): {r!r}"
    rid = r.header("X-Request-Id")
    assert rid and REQUEST_ID_RE.match(rid), f"missing/invalid X-Request-Id: {r!r}"


def assert_customer(c):
    assert isinstance(c, dict), c
    assert list(c.keys()) == CUSTOMER_KEYS, f"customer keys/order {list(c.keys())}"
    assert isinstance(c["id"], str) and UUID7_RE.match(c["id"]), f"id is not a lowercase UUIDv7: {c['id']!r}"
    assert isinstance(c["external_id"], str) and c["external_id"], c
    assert isinstance(c["external_type"], str) and c["external_type"], c
    assert c["name"] is None or isinstance(c["name"], str), c
    assert isinstance(c["metadata"], dict), c
    for k in ("created_at", "updated_at"):
        assert isinstance(c[k], str) and TS_RE.match(c[k]), f"{k} not RFC 3339 UTC with microseconds: {c[k]!r}"
    assert c["updated_at"] >= c["created_at"], c


def assert_error(r, status, error=None):
    """Check the error envelope: status, `error`, `message`, `errors` only on 422."""
    assert r.status == status, r
    assert_json_response(r)
    body = r.json
    assert isinstance(body, dict), r
    assert isinstance(body.get("error"), str) and body["error"], f"no `error` string: {r!r}"
    assert isinstance(body.get("message"), str) and body["message"], f"no `message` string: {r!r}"
    if error is not None:
        assert body["error"] == error, r
    if status == 422:
        assert body["error"] == "validation_failed", r
        errs = body.get("errors")
        assert isinstance(errs, dict) and errs, f"422 without `errors` object: {r!r}"
        for field, msgs in errs.items():
            assert isinstance(msgs, list) and msgs and all(isinstance(m, str) and m for m in msgs), r
    else:
        assert "errors" not in body, f"`errors` only belongs on 422: {r!r}"
    for leak in ("SELECT ", "INSERT ", "syntax error", "Traceback", "postgresql://", "segfault"):
        assert leak.lower() not in r.body.decode("utf-8", "replace").lower(), f"leaks internals: {r!r}"
    return body


def assert_validation(r, *fields, only=None):
    body = assert_error(r, 422, "validation_failed")
    for f in fields:
        assert f in body["errors"], f"expected errors[{f!r}]: {r!r}"
    if only:
        for f in only:
            assert f not in body["errors"], f"did not expect errors[{f!r}]: {r!r}"
    return body


def assert_envelope(ev, topic, key, trace_id=None, payload=None):
    env = ev.env
    assert isinstance(env, dict), f"event value is not a JSON object: {ev!r}"
    assert set(env) == ENVELOPE_KEYS, f"envelope keys {sorted(env)}"
    assert ev.topic == topic and env["topic"] == topic, ev
    assert ev.key == key, f"Kafka key {ev.key!r} != {key!r}"
    assert env["key"] == key, ev
    assert env["source_service"] == "customer-svc", ev
    assert env["schema_version"] == 1 and type(env["schema_version"]) is int, ev
    assert isinstance(env["event_id"], str) and UUID_RE.match(env["event_id"]), ev
    assert isinstance(env["occurred_at"], str) and TS_RE.match(env["occurred_at"]), ev
    if trace_id is not None:
        assert env["trace_id"] == trace_id, f"trace_id {env['trace_id']!r} != {trace_id!r}"
    if payload is not None:
        assert env["payload"] == payload, f"payload differs from the API body:\n{env['payload']}\n{payload}"
        assert list(env["payload"]) == list(payload), "payload key order differs from the API body"


# --------------------------------------------------------------------------- PostgreSQL

def sql_lit(s):
    return "'" + str(s).replace("'", "''") + "'"


def psql(sql, url=CUSTOMERS_DB_URL, timeout=20):
    p = subprocess.run(
        ["psql", url, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, timeout=timeout,
    )
    if p.returncode != 0:
        raise AssertionError(f"psql failed ({p.returncode}) for {sql!r}: {p.stderr.strip()}")
    return p.stdout.rstrip("\n")


def db_count_identity(external_type, external_id):
    return int(psql(
        f"SELECT count(*) FROM customers WHERE external_type = {sql_lit(external_type)} "
        f"AND external_id = {sql_lit(external_id)}"
    ))


def outbox_pending():
    return int(psql("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


# --------------------------------------------------------------------------- Kafka (kcat)

class Event:
    def __init__(self, rec):
        self.topic = rec.get("topic")
        self.partition = rec.get("partition")
        self.offset = rec.get("offset")
        self.key = rec.get("key")
        self.raw = rec.get("payload")
        self.env = None
        if isinstance(self.raw, str):
            try:
                self.env = json.loads(self.raw)
            except ValueError:
                self.env = None
        elif isinstance(self.raw, dict):
            self.env = self.raw

    @property
    def event_id(self):
        return self.env.get("event_id") if isinstance(self.env, dict) else None

    @property
    def trace_id(self):
        return self.env.get("trace_id") if isinstance(self.env, dict) else None

    def __repr__(self):
        return f"<{self.topic}[{self.partition}]@{self.offset} key={self.key!r} {str(self.raw)[:400]}>"


def _kcat(args, timeout=30):
    p = subprocess.run(["kcat", "-b", KAFKA_BROKERS, *args], capture_output=True, text=True, timeout=timeout)
    return p


_partitions_cache = {}


def topic_partitions(topic):
    if topic in _partitions_cache:
        return _partitions_cache[topic]
    p = _kcat(["-L", "-J", "-t", topic])
    if p.returncode != 0:
        raise AssertionError(f"kcat -L failed for {topic}: {p.stderr.strip()}")
    meta = json.loads(p.stdout)
    parts = []
    for t in meta.get("topics", []):
        if t.get("topic") == topic:
            if t.get("error"):
                raise AssertionError(f"topic {topic}: {t['error']}")
            parts = sorted(pp["partition"] for pp in t.get("partitions", []))
    if not parts:
        raise AssertionError(f"topic {topic} has no partitions (does it exist?): {p.stdout[:500]}")
    _partitions_cache[topic] = parts
    return parts


_Q_RE = re.compile(r"^(\S+) \[(\d+)\] offset (-?\d+)\s*$")


def end_offsets(topic):
    """Per-partition high watermark (next offset to be written)."""
    parts = topic_partitions(topic)
    args = ["-Q"]
    for part in parts:
        args += ["-t", f"{topic}:{part}:-1"]
    p = _kcat(args)
    result = {}
    if p.returncode == 0:
        for line in p.stdout.splitlines():
            m = _Q_RE.match(line.strip())
            if m and m.group(1) == topic and int(m.group(3)) >= 0:
                result[int(m.group(2))] = int(m.group(3))
    for part in parts:
        if part not in result:
            # Fallback: read the last message of the partition (-o -1); none -> 0 (start from the beginning).
            c = _kcat(["-C", "-t", topic, "-p", str(part), "-o", "-1", "-e", "-J", "-q"])
            last = -1
            for line in c.stdout.splitlines():
                try:
                    last = max(last, json.loads(line)["offset"])
                except (ValueError, KeyError):
                    pass
            result[part] = last + 1
    return result


class Consumer:
    """Reads the given topics from the offsets they had when it was made, incrementally, with kcat."""

    def __init__(self, topics=CUSTOMER_TOPICS):
        self.topics = tuple(topics)
        self.next = {t: end_offsets(t) for t in self.topics}
        self.events = {t: [] for t in self.topics}
        self.last_error = None

    def _read_partition(self, topic, part, offset):
        """Messages from offset to the current end; a failed/slow kcat run (broker just resumed) reads nothing
        this round and is remembered in last_error for the timeout message."""
        try:
            p = _kcat(["-C", "-t", topic, "-p", str(part), "-o", str(offset), "-e", "-J", "-q"], timeout=20)
        except subprocess.TimeoutExpired:
            self.last_error = f"kcat consume {topic}[{part}]@{offset} timed out"
            return []
        out = []
        for line in p.stdout.splitlines():
            line = line.strip()
            if line:
                out.append(Event(json.loads(line)))
        if p.returncode != 0:
            self.last_error = f"kcat consume {topic}[{part}]@{offset} failed: {p.stderr.strip()[-500:]}"
        return out

    def poll(self):
        jobs = [(t, part, off) for t in self.topics for part, off in self.next[t].items()]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as ex:
            results = list(ex.map(lambda j: (j, self._read_partition(*j)), jobs))
        for (t, part, _off), evs in results:
            for ev in sorted(evs, key=lambda e: e.offset):
                if ev.offset >= self.next[t][part]:
                    self.events[t].append(ev)
                    self.next[t][part] = ev.offset + 1

    def matching(self, topic, pred):
        return [e for e in self.events[topic] if pred(e)]

    def wait_for(self, topic, pred, n=1, timeout=15.0, interval=0.3):
        """Poll until at least n events of topic satisfy pred; fail with what was seen on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            got = self.matching(topic, pred)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout}s for {n} matching event(s) on {topic}, got {len(got)}: {got[:5]}; "
                    f"{len(self.events[topic])} event(s) seen on the topic since the mark; "
                    f"last kcat error: {self.last_error}"
                )
            time.sleep(interval)

    def settle(self, seconds=1.0):
        time.sleep(seconds)
        self.poll()


# --------------------------------------------------------------------------- process control

def read_pid(name):
    f = RUN_DIR / "pids" / f"{name}.pid"
    try:
        return int(f.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid):
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        for c in children.get(p, []):
            out.append(c)
            stack.append(c)
    return out


def signal_tree(pid, sig):
    """Send sig to pid and its descendants (the pid file may name a wrapper around the JVM)."""
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def kafka_pause():
    pid = read_pid("kafka")
    assert pid_alive(pid), f"Kafka is not running (pid file {RUN_DIR / 'pids' / 'kafka.pid'} -> {pid})"
    signal_tree(pid, signal.SIGSTOP)
    return pid


def kafka_resume():
    pid = read_pid("kafka")
    if pid:
        signal_tree(pid, signal.SIGCONT)


def healthz_ok(base=CUSTOMER_URL, timeout=2):
    try:
        r = Client(base).get("/healthz", token=None, timeout=timeout, allow_5xx=True)
        return r.status == 200
    except Exception:  # noqa: BLE001
        return False


def svc_start(name="customer-svc", timeout=90):
    p = subprocess.run(
        ["bash", str(ROOT / "deploy" / "local" / "svc.sh"), "start", name],
        cwd=str(ROOT), capture_output=True, text=True, timeout=timeout,
    )
    return p


def ensure_customer_svc_running():
    if healthz_ok():
        return
    p = svc_start()
    assert p.returncode == 0 and healthz_ok(), (
        f"could not restart customer-svc: rc={p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    )


# --------------------------------------------------------------------------- spare binaries

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hung_upstream():
    """A listening socket that accepts connections and never answers, and its base URL: a service
    that hangs.  Close the socket when done."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


class SpareBinary:
    """Another instance of a binary (build/bin/<name>) on a free port with its own settings and the
    given database, beside the stack's; ready when it answers /healthz.  stop() ends it."""

    def __init__(self, name, database_url, **env):
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "PORT"))}
        full.update({"DATABASE_URL": database_url, "KAFKA_BROKERS": KAFKA_BROKERS,
                     "PORT": str(self.port)})
        full.update(env)
        self.proc = subprocess.Popen([str(ROOT / "build" / "bin" / name)], env=full,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 15
        while not healthz_ok(self.url, timeout=1):
            assert self.proc.poll() is None, f"spare {name} exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, f"spare {name} did not start"
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
