"""inbound-svc processing shortcuts (issue 5, processing rate): the workers claim several rows per
round trip and remember the customer ids of repeat senders, and conversation-svc answers a direct
find-or-create of an existing pair from one read.  These tests hold the shortcuts to the rules they
must not bend, against the running stack: a changed profile name still renames the customer, a
closed conversation is never written to again, a direct find-or-create still refuses unknown
customers, and a batch of rows with one failing row finishes the others exactly once.
"""

import concurrent.futures
import json
import uuid

import pytest

import parley_sys as ps
import test_inbound as inb
from parley_sys import sql_lit


@pytest.fixture(scope="module", autouse=True)
def services_up():
    for url in (inb.INBOUND_URL, inb.MESSAGING_URL, inb.CONVERSATION_URL, ps.CUSTOMER_URL):
        assert ps.healthz_ok(url, timeout=5), f"{url}/healthz does not answer (deploy/local/up.sh?)"


def wamid():
    return f"wamid.PERF.{uuid.uuid4().hex}"


def send_text(wa_id, text, name="Perf Sender", phone_number_id=inb.PHONE_NUMBER_ID):
    """Posts one signed text message and waits until it is stored; returns the stored message."""
    mid = wamid()
    r = inb.post_whatsapp(inb.wa_text_delivery([(mid, text)], wa_id, name=name, phone_number_id=phone_number_id))
    assert r.status == 201, r
    return inb.wait_message("whatsapp", mid)


def conversation(conv_id):
    r = ps.Client(inb.CONVERSATION_URL).get(f"/api/conversations/{conv_id}")
    assert r.status == 200, r
    return r.json


def messages_in(conv_id):
    out = inb.mpsql(f"SELECT external_message_id FROM messages WHERE conversation_id = {sql_lit(conv_id)} "
                    "ORDER BY seq")
    return [line for line in out.splitlines() if line]


def test_repeat_sender_with_a_new_profile_name_is_renamed():
    wa_id = inb.new_wa_id()
    first = send_text(wa_id, "hello", name="Ana Before")
    assert inb.customer_by_identity("whatsapp", wa_id)["name"] == "Ana Before"
    second = send_text(wa_id, "hello again", name="Ana Before")  # unchanged: may come from the cache
    assert second["sender_customer_id"] == first["sender_customer_id"]
    third = send_text(wa_id, "new name", name="Ana After")
    assert third["sender_customer_id"] == first["sender_customer_id"]
    assert inb.customer_by_identity("whatsapp", wa_id)["name"] == "Ana After"


def test_message_after_the_conversation_closed_opens_a_new_one():
    wa_id = inb.new_wa_id()
    first = send_text(wa_id, "before close")
    old = first["conversation_id"]
    send_text(wa_id, "still open")  # the pair is now known to every shortcut
    r = ps.Client(inb.CONVERSATION_URL).patch(f"/api/conversations/{old}", {"status": "closed"})
    assert r.status == 200 and r.json["status"] == "closed", r
    after = send_text(wa_id, "after close")
    assert after["conversation_id"] != old
    assert conversation(after["conversation_id"])["status"] == "open"
    assert after["external_message_id"] not in messages_in(old)
    assert len(messages_in(old)) == 2
    later = send_text(wa_id, "and later")
    assert later["conversation_id"] == after["conversation_id"]


def test_direct_find_or_create_of_an_existing_pair_answers_200_with_it():
    api = ps.Client(ps.CUSTOMER_URL)
    a, b = ps.create_customer(api)["id"], ps.create_customer(api)["id"]
    conv = ps.Client(inb.CONVERSATION_URL)
    r1 = conv.post("/api/conversations", {"type": "direct", "participants": [a, b]})
    assert r1.status == 201, r1
    r2 = conv.post("/api/conversations", {"type": "direct", "participants": [b, a], "subject": "ignored"})
    assert r2.status == 200 and r2.json["id"] == r1.json["id"], r2
    assert r2.json["subject"] == r1.json["subject"]


def test_direct_find_or_create_still_refuses_an_unknown_customer():
    api = ps.Client(ps.CUSTOMER_URL)
    a = ps.create_customer(api)["id"]
    r = ps.Client(inb.CONVERSATION_URL).post("/api/conversations",
                                             {"type": "direct", "participants": [a, str(uuid.uuid4())]})
    ps.assert_validation(r, "participants")


def test_a_burst_of_deliveries_is_processed_once_each_and_a_failing_row_alone_retries():
    senders = [inb.new_wa_id() for _ in range(5)]
    deliveries = []
    for i in range(40):
        mids = [wamid() for _ in range(1 + i % 2)]
        body = inb.wa_text_delivery([(m, f"burst {i}") for m in mids], senders[i % 5], name=f"Burst {i % 5}")
        deliveries.append((body, mids))
    stuck = inb.status_delivery(f"wamid.PERF.unknown.{uuid.uuid4().hex}")  # its message never comes
    bodies = [b for b, _ in deliveries] + [stuck]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(inb.post_whatsapp, bodies))
    assert all(r.status == 201 for r in answers), [r for r in answers if r.status != 201]

    stored = {m: inb.wait_message("whatsapp", m) for _, mids in deliveries for m in mids}
    for body, _ in deliveries:
        inb.wait_row_status("whatsapp", inb.event_id(body), "done")
    ids = ", ".join(sql_lit(m) for m in stored)
    counts = inb.mpsql(f"SELECT count(*), count(DISTINCT external_message_id) FROM messages "
                       f"WHERE channel = 'whatsapp' AND external_message_id IN ({ids})")
    assert counts.strip() == f"{len(stored)}|{len(stored)}", counts
    by_sender = {}
    for i, (_, mids) in enumerate(deliveries):
        by_sender.setdefault(senders[i % 5], set()).update(stored[m]["conversation_id"] for m in mids)
    assert all(len(convs) == 1 for convs in by_sender.values()), by_sender
    assert len({c for convs in by_sender.values() for c in convs}) == 5

    # The failing row was recorded on its own (it dies after max attempts, as any such row).
    row = inb.wait_for(lambda: next((w for w in inb.webhook_rows("whatsapp", inb.event_id(stuck))
                                     if w["last_error"]), None), "the failing row's error")
    assert row["status"] in ("pending", "processing", "dead") and row["attempts"] >= 1, row
    assert "not known yet" in row["last_error"], row


def test_a_delivery_with_two_senders_keeps_each_in_its_own_conversation():
    a, b = inb.new_wa_id(), inb.new_wa_id()
    ma, mb = wamid(), wamid()
    doc = json.loads(inb.wa_text_delivery([(ma, "from a")], a, name="Sender A"))
    other = json.loads(inb.wa_text_delivery([(mb, "from b")], b, name="Sender B"))
    doc["entry"][0]["changes"].append(other["entry"][0]["changes"][0])
    r = inb.post_whatsapp(json.dumps(doc).encode())
    assert r.status == 201, r
    sa, sb = inb.wait_message("whatsapp", ma), inb.wait_message("whatsapp", mb)
    assert sa["sender_customer_id"] != sb["sender_customer_id"]
    assert sa["conversation_id"] != sb["conversation_id"]
    assert inb.customer_by_identity("whatsapp", a)["id"] == sa["sender_customer_id"]
    assert inb.customer_by_identity("whatsapp", b)["id"] == sb["sender_customer_id"]
