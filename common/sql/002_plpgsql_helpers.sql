-- outbox_add and pl_jsonb_merge, unchanged in what they do, in PL/pgSQL.  A plain SQL function
-- whose body is an INSERT or has a subquery cannot be inlined, so PostgreSQL parsed and planned
-- that body again on every call (for outbox_add, once per event written); PL/pgSQL keeps the
-- body's plan for the life of the connection.

CREATE OR REPLACE FUNCTION pl_jsonb_merge(old jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF patch IS NULL THEN
        RETURN COALESCE(old, '{}'::jsonb);
    END IF;
    RETURN (COALESCE(old, '{}'::jsonb) || patch)
           - ARRAY(SELECT e.key FROM jsonb_each(patch) AS e WHERE jsonb_typeof(e.value) = 'null');
END
$$;

CREATE OR REPLACE FUNCTION outbox_add(p_event_id uuid, p_topic text, p_key text, p_source text,
                                      p_trace text, p_payload json) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO outbox (event_id, topic, key, envelope)
    VALUES (p_event_id, p_topic, p_key,
            (SELECT row_to_json(e)::text FROM (
                SELECT p_event_id AS event_id, p_topic AS topic, p_source AS source_service,
                       pl_time(now()) AS occurred_at, p_trace AS trace_id, 1 AS schema_version,
                       p_key AS key, p_payload AS payload) e))
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
