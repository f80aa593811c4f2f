"""inbound-svc's store batcher (inbound-svc/store.c; issue 5): deliveries arriving together are written
together, in one statement and one commit, and each still gets its own answer, decided by the database.

These tests send bursts of concurrent deliveries so that batches hold several of them: new ones and
redeliveries mixed, and bodies and headers full of the characters a PostgreSQL array literal must escape.
"""

import concurrent.futures
import json
import uuid

import pytest

import parley_sys as ps
from parley_sys import sql_lit
from test_inbound import (INBOUND_URL, event_id, ipsql, message_row, new_wa_id, post_whatsapp, wa_text_delivery,
                          wait_for)

BURST = 24


@pytest.fixture(scope="module", autouse=True)
def inbound_up():
    assert ps.healthz_ok(INBOUND_URL, timeout=5), f"inbound-svc does not answer {INBOUND_URL}/healthz"


def stored(provider_event_id):
    """(body, headers) of every row with that event id."""
    out = ipsql("SELECT json_build_object('body', body, 'headers', headers) FROM inbound_webhooks "
                f"WHERE provider = 'whatsapp' AND provider_event_id = {sql_lit(provider_event_id)}")
    return [json.loads(line) for line in out.splitlines() if line]


def burst(requests):
    """Posts every (body, headers) at once; the answers in the same order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(requests)) as ex:
        return list(ex.map(lambda r: post_whatsapp(r[0], headers=r[1]), requests))


def test_burst_of_new_deliveries_and_redeliveries_answers_each_once():
    bodies = [wa_text_delivery([(f"wamid.{uuid.uuid4().hex}", f"burst {i}")], new_wa_id())
              for i in range(BURST)]
    answers = burst([(b, None) for b in bodies + bodies])
    for i, body in enumerate(bodies):
        statuses = sorted((answers[i].status, answers[BURST + i].status))
        assert statuses == [200, 201], (i, answers[i], answers[BURST + i])
        first = answers[i] if answers[i].status == 201 else answers[BURST + i]
        again = answers[BURST + i] if first is answers[i] else answers[i]
        assert first.json == {"status": "received"} and again.json == {"status": "ignored_duplicate"}
        rows = stored(event_id(body))
        assert len(rows) == 1 and rows[0]["body"].encode() == body, (i, rows)


def test_bodies_and_headers_needing_escapes_are_stored_exactly():
    texts = ['quote " backslash \\ both \\" end', "braces {a,b} and NULL", "", "NULL",
             "tab\tnew\nline \u00e9\u05e9\u05dc\u05d5\u05dd \U0001F600", '\\\\"\\"' * 50]
    bodies = [wa_text_delivery([(f"wamid.{uuid.uuid4().hex}", t)], new_wa_id()) for t in texts]
    bodies.append(b'{"object":"whatsapp_business_account","entry":[],"raw":"\\\\ \\" \\/ \\ud83d\\ude00",'
                  b'"n":"%s"}' % uuid.uuid4().hex.encode())
    header = 'a "quoted" value, a \\ backslash, {braces}'
    answers = burst([(b, {"X-Parley-Test": header}) for b in bodies])
    assert [a.status for a in answers] == [201] * len(bodies), answers
    for body in bodies:
        rows = stored(event_id(body))
        assert len(rows) == 1, rows
        assert rows[0]["body"].encode() == body, "the raw body is stored byte for byte"
        assert rows[0]["headers"].get("X-Parley-Test") == header, rows[0]["headers"]


def test_a_row_claimed_too_often_goes_dead_without_running():
    """A row whose workers kept dying (attempts past the maximum) is set dead at its next claim, not run again."""
    wa_id, wamid = new_wa_id(), f"wamid.{uuid.uuid4().hex}"
    body = wa_text_delivery([(wamid, "never processed")], wa_id).decode()
    rid = str(uuid.uuid4())
    ipsql("INSERT INTO inbound_webhooks (id, provider, provider_event_id, body, headers, status, attempts)"
          f" VALUES ({sql_lit(rid)}, 'whatsapp', {sql_lit(uuid.uuid4().hex)}, {sql_lit(body)}, '{{}}',"
          " 'pending', 99)")

    def dead():
        out = ipsql("SELECT status || '|' || coalesce(last_error, '') FROM inbound_webhooks"
                    f" WHERE id = {sql_lit(rid)}")
        return out if out.startswith("dead|") else None
    assert wait_for(dead, "the poison row to die") == "dead|claimed too often without finishing"
    assert ps.healthz_ok(INBOUND_URL), "the worker survived it"
    assert message_row("whatsapp", wamid) is None, "its message was not created"
