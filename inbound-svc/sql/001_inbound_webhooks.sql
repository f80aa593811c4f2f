-- Every channel delivery as received (SPEC 5): stored before it is answered, processed after.
-- A row is never deleted by processing.  The database decides duplicates: (provider,
-- provider_event_id) is unique, and the insert is ON CONFLICT DO NOTHING.
CREATE TABLE inbound_webhooks (
    id                uuid PRIMARY KEY,
    provider          text NOT NULL CHECK (provider IN ('whatsapp', 'telegram')),
    provider_event_id text NOT NULL,
    body              text NOT NULL,            -- the raw bytes (valid UTF-8 JSON) as received
    headers           jsonb NOT NULL DEFAULT '{}'::jsonb,  -- without secrets or signatures
    received_at       timestamptz NOT NULL DEFAULT now(),
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'done', 'dead')),
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),  -- for processing rows: lease end
    processed_at      timestamptz,
    request_id        text,
    CONSTRAINT inbound_webhooks_event UNIQUE (provider, provider_event_id)
);
-- What the workers claim: due rows, oldest first.
CREATE INDEX inbound_webhooks_due ON inbound_webhooks (next_attempt_at)
    WHERE status IN ('pending', 'processing');
CREATE INDEX inbound_webhooks_dead ON inbound_webhooks (received_at) WHERE status = 'dead';

-- A row as GET /api/webhooks/dead and the replay answer show it (no body, no headers).
CREATE FUNCTION inbound_webhook_json(w inbound_webhooks) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT w.id, w.provider, w.provider_event_id, w.status, w.attempts, w.last_error,
               pl_time(w.received_at) AS received_at, pl_time(w.next_attempt_at) AS next_attempt_at,
               pl_time(w.processed_at) AS processed_at, w.request_id) t
$$;
