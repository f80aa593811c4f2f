-- Idempotency-Key (SPEC 2, 10): the first answer to a keyed POST, per (API key, key), replayed for
-- 24 hours.  status is NULL while the first request is still running (a claim).
CREATE TABLE idempotency (
    key_id       uuid NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       integer,
    content_type text,
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
