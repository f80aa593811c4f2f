"""inbound-svc retention (PARLEY_INBOUND_RETENTION_DAYS): processed webhook rows and finished outbound deliveries
older than the period are deleted by the first pass, 10 s after start; everything else stays.

A spare inbound-svc runs on a database of its own (its migrations make the tables), with no Kafka broker and
no other service reachable, so only its retention pass touches the rows the test writes there.
"""

import subprocess
import uuid

import parley_sys as ps
import test_inbound as inb
from parley_sys import sql_lit
from test_runtime import superuser_sql

DB_BASE = "postgresql://parley:parley@127.0.0.1:55432"
BINARY = ps.ROOT / "build" / "bin" / "inbound-svc"


def webhook(url, status, age_days):
    wid = str(uuid.uuid4())
    ps.psql("INSERT INTO inbound_webhooks (id, provider, provider_event_id, body, headers, status,"
            " received_at, processed_at, next_attempt_at)"
            f" VALUES ({sql_lit(wid)}, 'whatsapp', {sql_lit(uuid.uuid4().hex)}, '{{}}', '{{}}',"
            f" {sql_lit(status)}, now() - make_interval(days => {age_days}),"
            f" now() - make_interval(days => {age_days}), now() + interval '1 day')", url=url)
    return wid


def delivery(url, state, synced, age_days, tries=1):
    mid = str(uuid.uuid4())
    ps.psql("INSERT INTO deliveries (message_id, conversation_id, seq, provider, sender, recipient, body, state,"
            " provider_message_id, synced, updated_at, next_attempt_at)"
            f" VALUES ({sql_lit(mid)}, {sql_lit(str(uuid.uuid4()))}, 1, 'whatsapp', '1', '2', 'x',"
            f" {sql_lit(state)}, 'wamid.x', {str(synced).lower()},"
            f" now() - make_interval(days => {age_days}), now() + interval '1 day')", url=url)
    for n in range(tries):
        ps.psql("INSERT INTO delivery_attempts (message_id, attempt, started_at, outcome)"
                f" VALUES ({sql_lit(mid)}, {n + 1}, now(), 'sent')", url=url)
    return mid


def remaining(url, table, column, ids):
    got = ps.psql(f"SELECT {column} FROM {table} WHERE {column} IN ({', '.join(sql_lit(i) for i in ids)})",
                  url=url)
    return set(got.split())


def test_first_pass_deletes_only_old_finished_rows():
    db = f"parley_ret_{uuid.uuid4().hex[:12]}"
    url = f"{DB_BASE}/{db}"
    superuser_sql(f"CREATE DATABASE {db} OWNER parley")
    spare = None
    env = dict(KAFKA_BROKERS=f"127.0.0.1:{ps.free_port()}", PARLEY_INBOUND_RETENTION_DAYS="30",
               PARLEY_MESSAGING_URL=f"http://127.0.0.1:{ps.free_port()}", PARLEY_LOG_LEVEL="warn")
    try:
        ps.SpareBinary("inbound-svc", url, **env).stop()  # migrations only: the tables exist now
        old_done = [webhook(url, "done", 31 + i) for i in range(3)]
        kept = [webhook(url, "done", 29), webhook(url, "dead", 400)]
        old_sent = [delivery(url, "sent", True, 31, tries=2), delivery(url, "failed", True, 45)]
        kept_deliveries = [delivery(url, "sent", False, 60), delivery(url, "sent", True, 20)]
        spare = ps.SpareBinary("inbound-svc", url, **env)

        def purged():
            return (not remaining(url, "inbound_webhooks", "id", old_done)
                    and not remaining(url, "deliveries", "message_id", old_sent))
        inb.wait_for(purged, "the first retention pass", timeout=30)
        assert remaining(url, "inbound_webhooks", "id", kept) == set(kept)
        assert remaining(url, "deliveries", "message_id", kept_deliveries) == set(kept_deliveries)
        assert remaining(url, "delivery_attempts", "message_id", old_sent) == set()
    finally:
        if spare is not None:
            spare.stop()
        superuser_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_a_period_shorter_than_the_redelivery_window_is_refused():
    env = {"PATH": "/usr/bin:/bin", "PARLEY_INBOUND_RETENTION_DAYS": "7", "DATABASE_URL": f"{DB_BASE}/postgres"}
    out = subprocess.run([str(BINARY)], env=env, capture_output=True, text=True, timeout=20)
    assert out.returncode == 2, out
    assert "PARLEY_INBOUND_RETENTION_DAYS" in out.stderr, out.stderr
