-- webhook.inbound.received is written when a row is first claimed, not when it is stored: an
-- outbox row makes its transaction NOTIFY at commit, and PostgreSQL lets only one notifying
-- transaction commit at a time (a database-wide lock held across the WAL flush), so stores that
-- wrote events could not share a flush and the acknowledgement rate stopped at the disk's.
--
-- A trigger writes the event in the transaction of the update that first takes the row out of
-- pending (a claim: one row or a batch, whichever statement the workers use) and sets
-- announced_at, so the event is written once per row: retries, expired leases and replays find
-- announced_at set.  The payload, key and trace id are those of SPEC 10, as the store wrote them.
--
-- Rows stored before this migration were announced by their store.  Adding the column with a
-- constant default marks all of them ('-infinity': before the column existed) without rewriting
-- the table, as PostgreSQL keeps that value for the existing rows only; dropping the default
-- right after leaves every new row NULL, to be announced by its first claim.
ALTER TABLE inbound_webhooks ADD COLUMN announced_at timestamptz DEFAULT '-infinity';
ALTER TABLE inbound_webhooks ALTER COLUMN announced_at DROP DEFAULT;

-- A UUIDv7 (SPEC 2) made in SQL: a random UUID whose first 48 bits become the Unix time in
-- milliseconds and whose version nibble becomes 7 (bits 52 and 53 of the bytea, numbered from
-- each byte's least significant bit, turn version 4 into 7).
CREATE FUNCTION inb_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
               PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                                 FROM 3)
               FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

CREATE FUNCTION inbound_webhook_announce() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.announced_at := now();
    PERFORM outbox_add(inb_uuid_v7(), 'webhook.inbound.received', NEW.provider_event_id,
                       'inbound-svc', NEW.request_id,
                       json_build_object('id', NEW.id, 'provider', NEW.provider,
                                         'provider_event_id', NEW.provider_event_id,
                                         'received_at', pl_time(NEW.received_at)));
    RETURN NEW;
END
$$;
CREATE TRIGGER inbound_webhook_announce BEFORE UPDATE OF status ON inbound_webhooks
    FOR EACH ROW WHEN (OLD.announced_at IS NULL AND NEW.status <> 'pending')
    EXECUTE FUNCTION inbound_webhook_announce();
