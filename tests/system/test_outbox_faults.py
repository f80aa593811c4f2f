"""customer-svc outbox under faults: Kafka paused (SIGSTOP) and the service killed with SIGKILL.

These tests freeze the shared Kafka broker for a few seconds and kill/restart customer-svc; they always resume
Kafka and leave customer-svc running (finally blocks)."""

import os
import signal
import time

import pytest

import parley_sys as ps
from parley_sys import CREATED, assert_customer, new_request_id, new_type, uniq

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

DELIVERY_DEADLINE = 60.0
PER_REQUEST_MAX = 2.0


def create_quickly(api, et, n):
    """Create n customers; each answer must be a 201 within PER_REQUEST_MAX seconds."""
    out = []
    for i in range(n):
        rid = new_request_id(f"fault{i}")
        t0 = time.monotonic()
        r = api.post("/api/customers", {"external_type": et, "external_id": uniq(f"f{i}"), "name": f"F{i}"},
                     request_id=rid, timeout=PER_REQUEST_MAX + 10)
        elapsed = time.monotonic() - t0
        assert r.status == 201, r
        assert elapsed <= PER_REQUEST_MAX, f"create #{i} took {elapsed:.2f}s while Kafka was paused"
        assert_customer(r.json)
        out.append((rid, r.json))
    return out


def wait_all_created(cons, created, deadline):
    ids = {c["id"] for _, c in created}
    return cons.wait_for(CREATED, lambda e: e.key in ids and e.env is not None, n=len(ids), timeout=deadline)


def check_events(cons, created, exactly_once):
    by_key = {}
    for ev in cons.matching(CREATED, lambda e: e.key in {c["id"] for _, c in created}):
        by_key.setdefault(ev.key, []).append(ev)
    missing = [c["id"] for _, c in created if c["id"] not in by_key]
    assert not missing, f"customer.created never arrived for {missing}"
    all_event_ids = []
    for rid, c in created:
        evs = by_key[c["id"]]
        event_ids = {e.event_id for e in evs}
        assert len(event_ids) == 1, f"{c['id']}: {len(event_ids)} distinct event_ids for one create: {evs}"
        if exactly_once:
            assert len(evs) == 1, f"{c['id']}: delivered {len(evs)} times: {evs}"
        for ev in evs:
            ps.assert_envelope(ev, CREATED, key=c["id"], trace_id=rid, payload=c)
            assert ev.env == evs[0].env, "a redelivery must be the identical event"
        all_event_ids.append(evs[0].event_id)
    assert len(set(all_event_ids)) == len(created), "two customers share an event_id"


@pytest.fixture
def restore_stack():
    yield
    ps.kafka_resume()
    ps.ensure_customer_svc_running()


def test_kafka_paused_api_keeps_serving_then_every_event_exactly_once(api, kafka, restore_stack):
    cons = kafka()  # mark offsets while Kafka still answers
    et = new_type("fa")
    paused_at = time.monotonic()
    ps.kafka_pause()
    try:
        created = create_quickly(api, et, 20)
        # reads keep working too
        assert api.get(f"/api/customers/{created[0][1]['id']}").json == created[0][1]
        assert api.get(f"/api/customers?external_type={et}").json["total"] == 20
        time.sleep(max(0.0, 3.0 - (time.monotonic() - paused_at)))  # keep the broker frozen for >= 3 s
    finally:
        ps.kafka_resume()
    wait_all_created(cons, created, DELIVERY_DEADLINE)
    cons.settle(3.0)  # late duplicates would show up here
    check_events(cons, created, exactly_once=True)


def test_kill9_with_pending_outbox_then_restart_delivers_everything(api, kafka, restore_stack):
    cons = kafka()
    et = new_type("fb")
    ps.kafka_pause()
    try:
        created = create_quickly(api, et, 10)
        pending = ps.outbox_pending()
        assert pending >= len(created), f"only {pending} outbox rows pending with Kafka paused after {len(created)} creates"

        pid = ps.read_pid("customer-svc")
        assert ps.pid_alive(pid), f"customer-svc pid file names no live process ({pid})"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while ps.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not ps.pid_alive(pid), "customer-svc survived SIGKILL?"

        # the events survive the crash in the database
        assert ps.outbox_pending() >= len(created)

        p = ps.svc_start("customer-svc")
        assert p.returncode == 0, f"svc.sh start customer-svc failed (Kafka paused):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
        assert ps.healthz_ok(), "customer-svc not answering after restart"
        new_pid = ps.read_pid("customer-svc")
        assert new_pid and new_pid != pid and ps.pid_alive(new_pid)
        # the restarted service serves while Kafka is still paused
        assert api.get(f"/api/customers/{created[-1][1]['id']}").json == created[-1][1]
    finally:
        ps.kafka_resume()

    wait_all_created(cons, created, DELIVERY_DEADLINE)
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while ps.outbox_pending() != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ps.outbox_pending() == 0, "outbox did not drain after Kafka came back"
    cons.settle(2.0)
    check_events(cons, created, exactly_once=False)


def test_two_replicas_publish_every_event_exactly_once(api, kafka):
    """A second customer-svc on the same database: one relay publishes (the advisory lock), the
    other waits, so events written through either replica arrive once each, in order per key."""
    spare = ps.SpareBinary("customer-svc", ps.CUSTOMERS_DB_URL)
    try:
        second = ps.Client(base_url=spare.url)
        cons = kafka()
        et = new_type("repl")
        created = []
        for i in range(20):
            via = api if i % 2 == 0 else second
            r = via.post("/api/customers", {"external_type": et, "external_id": f"r{i}"},
                         request_id=new_request_id(f"repl{i}"))
            assert r.status == 201, r
            created.append((None, r.json))
            u = via.patch(f"/api/customers/{r.json['id']}", {"metadata": {"n": i}})
            assert u.status == 200, u
        wait_all_created(cons, created, DELIVERY_DEADLINE)
        ids = {c["id"] for _, c in created}
        cons.wait_for(ps.UPDATED, lambda e: e.key in ids, n=len(ids), timeout=DELIVERY_DEADLINE)
        cons.settle(1.0)
        for topic in (CREATED, ps.UPDATED):
            events = cons.matching(topic, lambda e: e.key in ids)
            assert len(events) == len(ids), (topic, len(events))
            assert len({e.env["event_id"] for e in events}) == len(ids)
    finally:
        spare.stop()
