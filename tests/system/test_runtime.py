"""The binary itself: configuration errors, log levels, access lines, metrics, readiness, SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import time

import parley_sys as ps

BINARY = ps.ROOT / "build" / "bin" / "customer-svc"
LOG = ps.RUN_DIR / "logs" / "customer-svc.log"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "PORT"))}
    full.update({"DATABASE_URL": ps.CUSTOMERS_DB_URL, "KAFKA_BROKERS": ps.KAFKA_BROKERS})
    full.update(env)
    return subprocess.Popen([str(BINARY)], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_healthy(port, proc, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, f"exited early with {proc.returncode}: {proc.stderr.read()!r}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("no /healthz answer")


def test_bad_config_reports_every_error_and_exits_2():
    proc = spawn(PORT="80a", PARLEY_HTTP_THREADS="9999", PARLEY_LOG_LEVEL="loud")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    text = err.decode()
    assert 'PORT="80a"' in text and 'PARLEY_HTTP_THREADS="9999"' in text


def test_production_refuses_default_secret():
    proc = spawn(PARLEY_ENV="production", PARLEY_SERVICE_TOKEN="dev-service-token")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert b"PARLEY_SERVICE_TOKEN" in err
    assert b"dev-service-token" not in err  # a secret never reaches a log


def test_quiet_log_level_keeps_serving_and_sigterm_drains():
    """Below info level the binary must still wait for its signal, then stop cleanly with 0."""
    port = free_port()
    proc = spawn(PORT=str(port), PARLEY_LOG_LEVEL="warn")
    try:
        wait_healthy(port, proc)
        time.sleep(1.0)
        assert proc.poll() is None, "exited on its own"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def log_since(offset):
    with open(LOG, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def test_access_line_per_request_with_route_pattern(api):
    start = LOG.stat().st_size
    rid = ps.new_request_id("access")
    c = ps.create_customer(api, request_id=rid)
    r = api.get(f"/api/customers/{c['id']}", headers={"X-Request-Id": rid + "-get"})
    assert r.status == 200
    lines = []
    for _ in range(40):  # buffered lines reach the file within the flush period
        lines = [json.loads(l) for l in log_since(start).splitlines()
                 if rid + "-get" in l and '"msg":"request"' in l]
        if lines:
            break
        time.sleep(0.1)
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/api/customers/{id}"  # the pattern, never the raw path
    assert line["status"] == 200 and line["method"] == "GET" and line["service"] == "customer-svc"
    assert line["request_id"] == rid + "-get" and line["us"] > 0 and line["level"] == "info"
    assert ps.SERVICE_TOKEN not in log_since(start)


def test_metrics_count_requests_and_report_outbox(api):
    ps.create_customer(api)
    r = api.get("/metrics", token=None)
    assert r.status == 200
    text = r.body.decode()
    assert 'route="/api/customers",status="201"' in text
    assert "parley_http_request_duration_seconds_bucket" in text
    for gauge in ("parley_outbox_backlog", "parley_outbox_oldest_age_seconds",
                  "parley_kafka_produce_errors_total", "parley_db_connections"):
        assert f"\n{gauge} " in text, gauge


def test_readyz_and_healthz_need_no_token(api):
    for path in ("/readyz", "/healthz"):
        r = api.get(path, token=None)
        assert r.status == 200, path


def superuser_sql(sql):
    """Runs SQL as the cluster's superuser over the private socket (trusted locally)."""
    sock = ps.RUN_DIR / "pg" / "sock"
    out = subprocess.run(["psql", "-h", str(sock), "-p", "55432", "-U", "postgres", "-Atc", sql],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_replicas_migrating_together_apply_each_migration_once():
    """Two binaries started at the same moment on an empty database: one applies, one waits."""
    db = "parley_migrate_test"
    superuser_sql(f"DROP DATABASE IF EXISTS {db}")
    superuser_sql(f"CREATE DATABASE {db} OWNER parley")
    try:
        url = ps.CUSTOMERS_DB_URL.rsplit("/", 1)[0] + "/" + db
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env["DATABASE_URL"] = url
        procs = [subprocess.Popen([str(BINARY), "--migrate-only"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
        applied = sum(o[1].decode().count("applied migration") for o in outs)
        versions = ps.psql("SELECT count(*), count(DISTINCT version) FROM schema_migrations", url=url)
        total, distinct = (int(x) for x in versions.split("|"))
        assert total == distinct == applied, (total, distinct, applied)
        assert total >= 2  # common/001 and customer-svc/001 at least
        # A third start finds everything applied and applies nothing.
        again = subprocess.run([str(BINARY), "--migrate-only"], env=env, capture_output=True,
                               timeout=60)
        assert again.returncode == 0 and b"applied migration" not in again.stderr
    finally:
        superuser_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_connections_ended_while_idle_are_replaced_before_use(api):
    """The database ends every idle connection of the service (a restart, an operator): the
    requests that come later, on every thread, are all answered as if nothing happened."""
    killed = superuser_sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = 'parley_customers' AND pid <> pg_backend_pid() "
        "AND application_name = 'customer-svc'")
    assert int(killed) >= 1
    time.sleep(1.0)  # idle: the service has not used them since
    statuses = [ps.Client(ps.CUSTOMER_URL).get("/api/customers?per_page=1", allow_5xx=True).status
                for _ in range(16)]  # a new connection each, so every pool thread takes some
    assert statuses == [200] * 16, statuses


def test_database_connections_lost_are_reopened(api, kafka):
    """Every backend of the service is killed: answers stay clean (200 or 503, never 500) and
    the service, its relay included, is back within a few requests."""
    consumer = kafka()
    killed = superuser_sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = 'parley_customers' AND pid <> pg_backend_pid() "
        "AND application_name IN ('customer-svc', 'parley-outbox-relay')")
    assert int(killed) >= 1
    statuses = []
    for _ in range(20):
        r = api.get("/api/customers?per_page=1", allow_5xx=True)
        statuses.append(r.status)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[-5:] == [200] * 5, statuses
    c = ps.create_customer(api)
    events = consumer.wait_for(ps.CREATED, lambda ev: ev.key == c["id"], timeout=30)
    assert events[0].env["payload"] == c
