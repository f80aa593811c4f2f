"""customer-svc: concurrent upserts race on the (external_type, external_id) unique key."""

import threading
from concurrent.futures import ThreadPoolExecutor

import parley_sys as ps
from parley_sys import CREATED, UPDATED, assert_customer, new_request_id, new_type, uniq

N = 20


def run_together(bodies):
    """POST every body from its own thread, released at once by a barrier; returns the responses in order."""
    barrier = threading.Barrier(len(bodies))

    def one(body):
        api = ps.Client()
        barrier.wait(timeout=30)
        return api.post("/api/customers", body, timeout=30)

    with ThreadPoolExecutor(max_workers=len(bodies)) as ex:
        return list(ex.map(one, bodies))


def test_concurrent_upserts_same_identity_one_row(kafka):
    cons = kafka()
    et, eid = new_type(), uniq("race")
    body = {"external_type": et, "external_id": eid, "name": "Racer", "metadata": {"r": 1}}
    resps = run_together([body] * N)

    statuses = sorted(r.status for r in resps)
    assert statuses == [200] * (N - 1) + [201], f"statuses {statuses}: {[r for r in resps if r.status not in (200, 201)]}"
    for r in resps:
        assert_customer(r.json)
    ids = {r.json["id"] for r in resps}
    assert len(ids) == 1, f"concurrent upserts returned different ids: {ids}"
    cid = ids.pop()
    created = next(r.json for r in resps if r.status == 201)
    for r in resps:
        assert r.json == created, "identical upserts after the create must change nothing"
    assert ps.db_count_identity(et, eid) == 1
    assert ps.psql(f"SELECT id::text FROM customers WHERE external_type = {ps.sql_lit(et)}") == cid

    # one customer.created, and the 19 no-op upserts emit nothing (fence: a real change on the same key)
    api = ps.Client()
    fence = new_request_id("fence")
    assert api.patch(f"/api/customers/{cid}", {"name": "Racer 2"}, request_id=fence).status == 200
    cons.wait_for(UPDATED, lambda e: e.key == cid and e.trace_id == fence)
    assert [e.trace_id for e in cons.matching(UPDATED, lambda e: e.key == cid)] == [fence]
    evs = cons.wait_for(CREATED, lambda e: e.key == cid)
    cons.settle(1.0)
    evs = cons.matching(CREATED, lambda e: e.key == cid)
    assert len(evs) == 1, f"{len(evs)} customer.created events for one customer"
    ps.assert_envelope(evs[0], CREATED, key=cid, payload=created)


def test_concurrent_upserts_with_different_changes_all_applied():
    """Concurrent upserts adding different metadata keys to one identity: no update is lost."""
    et, eid = new_type(), uniq("race")
    bodies = [{"external_type": et, "external_id": eid, "metadata": {f"k{i}": i}} for i in range(N)]
    resps = run_together(bodies)
    statuses = sorted(r.status for r in resps)
    assert statuses == [200] * (N - 1) + [201], statuses
    assert len({r.json["id"] for r in resps}) == 1
    final = ps.Client().get(f"/api/customers/{resps[0].json['id']}").json
    assert final["metadata"] == {f"k{i}": i for i in range(N)}, "a concurrent metadata merge was lost"
    assert ps.db_count_identity(et, eid) == 1


def test_concurrent_creates_distinct_identities_all_201(kafka):
    cons = kafka()
    et = new_type()
    bodies = [{"external_type": et, "external_id": uniq(f"d{i}"), "name": f"D{i}"} for i in range(N)]
    resps = run_together(bodies)
    assert [r.status for r in resps] == [201] * N, [r for r in resps if r.status != 201]
    for body, r in zip(bodies, resps):
        assert_customer(r.json)
        assert r.json["external_id"] == body["external_id"] and r.json["name"] == body["name"]
    ids = [r.json["id"] for r in resps]
    assert len(set(ids)) == N
    assert int(ps.psql(f"SELECT count(*) FROM customers WHERE external_type = {ps.sql_lit(et)}")) == N
    assert int(ps.psql(f"SELECT count(DISTINCT id) FROM customers WHERE external_type = {ps.sql_lit(et)}")) == N
    evs = cons.wait_for(CREATED, lambda e: e.key in set(ids), n=N)
    assert sorted(e.key for e in evs) == sorted(ids)
