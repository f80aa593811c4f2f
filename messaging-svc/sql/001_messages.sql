-- Messages of conversations, their edit history and the Idempotency-Key store (SPEC 2, 4.3).

-- One row per conversation: the last seq handed out and the conversation's change counter.
-- Every create, edit and status change updates this row first, so its row lock serializes the
-- writers of one conversation: seq and version are assigned in commit order, without gaps, and
-- a reader never sees seq (or version) N + 1 committed while N is still in flight.
CREATE TABLE conversation_counters (
    conversation_id uuid PRIMARY KEY,
    last_seq        bigint NOT NULL,
    version         bigint NOT NULL
);

CREATE TABLE messages (
    id                  uuid PRIMARY KEY,
    conversation_id     uuid NOT NULL,
    seq                 bigint NOT NULL,
    version             bigint NOT NULL,
    sender_customer_id  uuid NOT NULL,
    direction           text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'system')),
    channel             text,
    body                text NOT NULL,
    content_type        text NOT NULL,
    media_id            uuid,
    external_message_id text,
    status              text NOT NULL,
    status_updated_at   timestamptz NOT NULL DEFAULT now(),
    error               jsonb,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    sent_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_conversation_seq UNIQUE (conversation_id, seq)
);
-- A provider's message id is unique within its channel (a repeat returns the first message).
CREATE UNIQUE INDEX messages_channel_external ON messages (channel, external_message_id)
    WHERE channel IS NOT NULL AND external_message_id IS NOT NULL;
-- changed_since: messages of a conversation by the version of their latest change.
CREATE INDEX messages_conversation_version ON messages (conversation_id, version);

CREATE TABLE message_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    uuid NOT NULL REFERENCES messages (id),
    body          text NOT NULL,
    previous_body text NOT NULL,
    edited_by     uuid,
    edited_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_history_message ON message_history (message_id, id);

-- Idempotency-Key: the first response of a create, replayed for 24 hours.  request_hash is the
-- SHA-256 of the request body in canonical form; status and body are written in the same
-- transaction as the message, so a stored key always has its response.
CREATE TABLE idempotency (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    status       integer,
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_created ON idempotency (created_at);

-- The message as the API returns it and as events carry it: one definition for both.
CREATE FUNCTION message_json(m messages) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT m.id, m.conversation_id, m.seq, m.version, m.sender_customer_id, m.direction,
               m.channel, m.body, m.content_type, m.media_id, m.external_message_id, m.status,
               pl_time(m.status_updated_at) AS status_updated_at, m.error, m.metadata,
               pl_time(m.sent_at) AS sent_at, pl_time(m.created_at) AS created_at,
               pl_time(m.updated_at) AS updated_at) t
$$;

-- The payload of message.status.updated (SPEC 10).
CREATE FUNCTION message_status_json(m messages, previous_status text) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT m.id AS message_id, m.conversation_id, m.status, previous_status,
               m.external_message_id, m.error) t
$$;

-- GET /api/messages/{id}/history: {"data": [...]} oldest first.
CREATE FUNCTION message_history_json(p_message_id uuid) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"data":[' || COALESCE(string_agg(x.j, ',' ORDER BY x.ord), '') || ']}'
    FROM (SELECT h.id AS ord,
                 (SELECT row_to_json(t)::text FROM (
                     SELECT h.body, h.previous_body, pl_time(h.edited_at) AS edited_at,
                            h.edited_by) t) AS j
          FROM message_history h WHERE h.message_id = p_message_id) x
$$;
