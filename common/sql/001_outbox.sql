-- The transactional outbox shared by every service, and helpers every service's SQL uses.

-- RFC 3339 UTC with microseconds, the one timestamp format of the API and events.
CREATE FUNCTION pl_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Metadata merge of the API: keys of patch replace those of old; a key whose value is JSON null
-- is removed.  A NULL patch leaves old as it was.
CREATE FUNCTION pl_jsonb_merge(old jsonb, patch jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN patch IS NULL THEN COALESCE(old, '{}'::jsonb)
           ELSE (COALESCE(old, '{}'::jsonb) || patch)
                - ARRAY(SELECT key FROM jsonb_each(patch) WHERE jsonb_typeof(value) = 'null')
           END
$$;

CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   uuid NOT NULL UNIQUE,
    topic      text NOT NULL,
    key        text NOT NULL,
    envelope   text NOT NULL,          -- published byte for byte
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at    timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Writes one event in the caller's transaction; the envelope of SPEC section 7 is built here so
-- that events written from C and from a single SQL statement are identical.
CREATE FUNCTION outbox_add(p_event_id uuid, p_topic text, p_key text, p_source text,
                           p_trace text, p_payload json) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO outbox (event_id, topic, key, envelope)
    VALUES (p_event_id, p_topic, p_key,
            (SELECT row_to_json(e)::text FROM (
                SELECT p_event_id AS event_id, p_topic AS topic, p_source AS source_service,
                       pl_time(now()) AS occurred_at, p_trace AS trace_id, 1 AS schema_version,
                       p_key AS key, p_payload AS payload) e))
    RETURNING id
$$;

-- Wakes the relay (LISTEN parley_outbox) once per inserting statement, at commit.
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('parley_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
