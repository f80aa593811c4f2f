-- The same media_json, in PL/pgSQL.  A plain SQL function whose body reads a table or has a
-- subquery cannot be inlined, so PostgreSQL parsed and planned that body again on every call of
-- every statement (0.3-0.8 ms each, more than the statements themselves); PL/pgSQL keeps the
-- body's plan for the life of the connection.  Results are unchanged, byte for byte.

CREATE OR REPLACE FUNCTION media_json(m media) RETURNS json
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT row_to_json(t) FROM (
            SELECT m.id, m.owner_service, m.conversation_id, m.filename, m.content_type, m.size,
                   m.sha256, m.width, m.height, m.storage_key, m.scanned,
                   pl_time(m.created_at) AS created_at) t);
END
$$;
