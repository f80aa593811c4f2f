"""The gateway's forwarding path under upstream trouble: one jittered retry of idempotent calls
whose connection failed, the circuit breaker per upstream (open, half-open probe, close), a paused
service answered 504 within the upstream timeout; and CORS (PARLEY_CORS_ORIGINS).

Each test runs its own gateway binary on a free port (the Gateway helper of test_gateway.py) so
the stack's gateway and its breakers are never disturbed."""

import http.server
import json
import math
import os
import signal
import subprocess
import threading
import time

import pytest

import parley_sys as ps

API_KEY = os.environ.get("PARLEY_BOOTSTRAP_API_KEY", "dev-api-key")
BINARY = ps.ROOT / "build" / "bin" / "gateway"
GATEWAY_DB = ps.CUSTOMERS_DB_URL.rsplit("/", 1)[0] + "/parley_gateway"
BREAKER_FAILURES = 5  # gateway/svc.h GW_BREAKER_FAILURES
BREAKER_OPEN_S = 10   # gateway/svc.h GW_BREAKER_OPEN_US


free_port = ps.free_port


class Gateway(ps.SpareBinary):
    """A second gateway binary on a free port with its own settings (same database)."""

    def __init__(self, **env):
        super().__init__("gateway", GATEWAY_DB, **env)

    def call(self, method, path, body=ps._MISSING, headers=None, **kw):
        h = {"X-API-Key": API_KEY}
        h.update(headers or {})
        return ps.Client(base_url=self.url, token=None).request(
            method, path, json_body=body, headers=h, allow_5xx=True, **kw)



class FakeUpstream:
    """A customer-svc stand-in that records every request and answers as told: an HTTP status,
    or "drop" (close the connection without a reply: the gateway sees a failed exchange)."""

    def __init__(self, answer=500):
        self.answer = answer
        self.plan = []  # answers for the next requests, before falling back to self.answer
        self.hits = []  # (method, path) as received
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with fake.lock:
                    fake.hits.append((self.command, self.path))
                    answer = fake.plan.pop(0) if fake.plan else fake.answer
                if answer == "drop":
                    self.close_connection = True
                    return
                body = json.dumps({"data": [], "fake": answer}).encode()
                self.send_response(answer)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self):
        with self.lock:
            return len(self.hits)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeUpstream()
    yield f
    f.stop()


@pytest.fixture
def gateway_on():
    started = []

    def start(**env):
        g = Gateway(**env)
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()


def is_circuit_open(r):
    return (r.status == 503 and r.json and r.json.get("error") == "upstream_unavailable"
            and "circuit open" in r.json.get("message", ""))


# ----------------------------------------------------------------------------- retry

def test_idempotent_call_retried_once_after_failed_exchange(fake, gateway_on):
    g = gateway_on(PARLEY_CUSTOMER_URL=fake.url)
    fake.answer = 200
    fake.plan = ["drop"]
    t0 = time.monotonic()
    r = g.call("GET", "/api/v1/customers?q=a")
    assert r.status == 200 and r.json["fake"] == 200, r
    assert fake.hits == [("GET", "/api/customers?q=a")] * 2
    assert time.monotonic() - t0 >= 0.010  # the jitter: at least 10 ms between the tries

    fake.hits.clear()
    fake.plan = ["drop", "drop"]  # retried once, not more
    r = g.call("GET", "/api/v1/customers/abc")
    assert r.status == 503 and r.json["error"] == "upstream_unavailable", r
    assert fake.hits == [("GET", "/api/customers/abc")] * 2
    assert "127.0.0.1" not in r.body.decode()


def test_post_and_patch_never_retried(fake, gateway_on):
    g = gateway_on(PARLEY_CUSTOMER_URL=fake.url)
    for method, path in (("POST", "/api/v1/customers"), ("PATCH", "/api/v1/customers/abc")):
        fake.hits.clear()
        fake.plan = ["drop"]
        fake.answer = 200
        r = g.call(method, path, {"name": "x"})
        assert r.status == 503 and r.json["error"] == "upstream_unavailable", r
        assert len(fake.hits) == 1, (method, fake.hits)


def test_connection_refused_retried_then_503(gateway_on):
    # Nobody listens: both tries fail to connect, at least 10 ms apart.
    g = gateway_on(PARLEY_CUSTOMER_URL=f"http://127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    r = g.call("GET", "/api/v1/customers")
    assert r.status == 503 and r.json["error"] == "upstream_unavailable", r
    assert 0.010 <= time.monotonic() - t0 < 1.0


# ----------------------------------------------------------------------------- circuit breaker

@pytest.mark.slow
def test_breaker_opens_probes_reopens_and_closes(fake, gateway_on):
    g = gateway_on(PARLEY_CUSTOMER_URL=fake.url)
    fake.answer = 500

    # Closed: failures pass through as they are, until GW_BREAKER_FAILURES in a row.
    for _ in range(BREAKER_FAILURES):
        assert g.call("GET", "/api/v1/customers").status == 500
    assert fake.count() == BREAKER_FAILURES

    # Open: refused at once, the upstream never reached; other upstreams are not affected.
    for _ in range(3):
        r = g.call("GET", "/api/v1/customers")
        assert is_circuit_open(r) and r.elapsed < 0.2, r
        assert "127.0.0.1" not in r.body.decode()
        # when to come back: the rest of the open period, in whole seconds
        assert 1 <= int(r.header("Retry-After")) <= math.ceil(BREAKER_OPEN_S), r
    assert fake.count() == BREAKER_FAILURES

    # Half-open after the period: one probe goes through; it fails, so the breaker reopens.
    time.sleep(BREAKER_OPEN_S + 0.3)
    assert g.call("GET", "/api/v1/customers").status == 500
    assert fake.count() == BREAKER_FAILURES + 1
    assert is_circuit_open(g.call("GET", "/api/v1/customers"))
    assert fake.count() == BREAKER_FAILURES + 1

    # The upstream recovers; the next probe succeeds and closes the breaker for everyone.
    fake.answer = 200
    time.sleep(BREAKER_OPEN_S + 0.3)
    for i in range(5):
        r = g.call("GET", "/api/v1/customers")
        assert r.status == 200 and r.json["fake"] == 200, (i, r)
    assert fake.count() == BREAKER_FAILURES + 6


def test_breaker_success_resets_the_failure_count(fake, gateway_on):
    g = gateway_on(PARLEY_CUSTOMER_URL=fake.url)
    fake.plan = [500] * (BREAKER_FAILURES - 1) + [200] + [500] * (BREAKER_FAILURES - 1)
    fake.answer = 200
    statuses = [g.call("GET", "/api/v1/customers").status for _ in range(2 * BREAKER_FAILURES)]
    assert 503 not in statuses, statuses
    assert fake.count() == 2 * BREAKER_FAILURES


def test_breaker_counts_transport_failures_and_4xx_are_fine(fake, gateway_on):
    g = gateway_on(PARLEY_CUSTOMER_URL=fake.url)
    fake.answer = 404
    for _ in range(2 * BREAKER_FAILURES):
        assert g.call("GET", "/api/v1/customers/none").status == 404
    fake.answer = "drop"  # POST: not retried, so one failure per call
    for _ in range(BREAKER_FAILURES):
        r = g.call("POST", "/api/v1/customers", {"name": "x"})
        assert r.status == 503 and not is_circuit_open(r), r
    before = fake.count()
    assert is_circuit_open(g.call("POST", "/api/v1/customers", {"name": "x"}))
    assert fake.count() == before


def test_concurrent_requests_while_open_all_fast(fake, gateway_on):
    g = gateway_on(PARLEY_CUSTOMER_URL=fake.url)
    for _ in range(BREAKER_FAILURES):
        g.call("GET", "/api/v1/customers")
    before = fake.count()
    results = []

    def worker():
        for _ in range(20):
            results.append(g.call("GET", "/api/v1/customers"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160 and all(is_circuit_open(r) for r in results)
    assert fake.count() == before


# ----------------------------------------------------------------------------- paused service

@pytest.mark.slow
def test_paused_service_is_504_within_timeout_and_recovers(gateway_on):
    g = gateway_on(PARLEY_UPSTREAM_TIMEOUT_MS="1000")
    assert g.call("GET", "/api/v1/customers").status == 200  # a warm connection to the service
    pid = int((ps.RUN_DIR / "pids" / "customer-svc.pid").read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        for path in ("/api/v1/customers", "/api/v1/customers?per_page=1"):
            t0 = time.monotonic()
            r = g.call("GET", path, timeout=10)
            took = time.monotonic() - t0
            assert r.status == 504 and r.json["error"] == "upstream_timeout", r
            assert 0.9 <= took < 1.6, took  # the timeout, and no retry after it
            assert "127.0.0.1" not in r.body.decode()
    finally:
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while True:
        r = g.call("GET", "/api/v1/customers")
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status == 200, r


# ----------------------------------------------------------------------------- CORS

ORIGIN = "https://app.example.com"
EXPOSED = {"x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
           "retry-after"}
_HTTP_H = (ps.ROOT / "common" / "include" / "parley" / "http.h").read_text()
_MAIN_C = (ps.ROOT / "gateway" / "main.c").read_text()
CORS_HOOK = "decorate" in _HTTP_H and "gw_cors_decorate" in _MAIN_C
needs_hook = pytest.mark.skipif(
    not CORS_HOOK,
    reason="needs pl_server_opts.decorate in common/http.c (the server answers OPTIONS and "
           "404/405 before any handler) and its wiring in gateway/main.c to gw_cors_decorate")


def exposed(r):
    return {h.strip().lower() for h in (r.header("Access-Control-Expose-Headers") or "").split(",")}


def test_cors_off_by_default():
    r = ps.Client(base_url=os.environ.get("PARLEY_GATEWAY_URL", "http://127.0.0.1:8000"),
                  token=None).request("GET", "/api/v1/customers",
                                      headers={"X-API-Key": API_KEY, "Origin": ORIGIN})
    assert r.status == 200 and r.header("Access-Control-Allow-Origin") is None


@needs_hook
def test_cors_allowed_origin_on_every_reply(gateway_on):
    g = gateway_on(PARLEY_CORS_ORIGINS=f"https://other.example, {ORIGIN}")
    for method, path, key in (("GET", "/api/v1/customers", API_KEY),
                              ("GET", "/api/v1/customers", "wrong"),  # 401
                              ("GET", "/api/v1/nowhere", API_KEY),    # 404 from the server
                              ("DELETE", "/api/v1/customers", API_KEY)):  # 405
        r = g.call(method, path, headers={"Origin": ORIGIN, "X-API-Key": key})
        assert r.header("Access-Control-Allow-Origin") == ORIGIN, r
        assert "origin" in (r.header("Vary") or "").lower(), r
        assert exposed(r) >= EXPOSED, r


@needs_hook
def test_cors_unlisted_origin_gets_nothing(gateway_on):
    g = gateway_on(PARLEY_CORS_ORIGINS=ORIGIN)
    for origin in ("https://evil.example", ORIGIN + ".evil.example", ORIGIN.upper(), "null"):
        r = g.call("GET", "/api/v1/customers", headers={"Origin": origin})
        assert r.status == 200 and r.header("Access-Control-Allow-Origin") is None, (origin, r)
    r = g.call("GET", "/api/v1/customers")  # no Origin: not a CORS request
    assert r.header("Access-Control-Allow-Origin") is None


@needs_hook
def test_cors_preflight(gateway_on):
    g = gateway_on(PARLEY_CORS_ORIGINS=ORIGIN)
    r = ps.Client(base_url=g.url, token=None).request(
        "OPTIONS", "/api/v1/customers/abc",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "x-api-key, content-type"})
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Origin") == ORIGIN
    methods = {m.strip() for m in r.header("Access-Control-Allow-Methods").split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in r.header("Access-Control-Allow-Headers").split(",")}
    assert {"x-api-key", "authorization", "content-type", "idempotency-key",
            "x-request-id"} <= allowed
    assert int(r.header("Access-Control-Max-Age")) > 0
    assert "origin" in (r.header("Vary") or "").lower()
    # A preflight from an unlisted origin gets the server's plain 204 without CORS headers.
    r = ps.Client(base_url=g.url, token=None).request(
        "OPTIONS", "/api/v1/customers",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert r.status == 204 and r.header("Access-Control-Allow-Origin") is None


def test_cors_wildcard_refused_at_start():
    if not CORS_HOOK:
        pytest.skip("PARLEY_CORS_ORIGINS is read by gateway/main.c once the decorate hook is wired")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "PORT"))}
    env.update({"DATABASE_URL": GATEWAY_DB, "KAFKA_BROKERS": ps.KAFKA_BROKERS, "PORT": str(port),
                "PARLEY_CORS_ORIGINS": "*"})
    p = subprocess.run([str(BINARY)], env=env, capture_output=True, timeout=15)
    assert p.returncode == 2 and b"PARLEY_CORS_ORIGINS" in p.stderr, p
