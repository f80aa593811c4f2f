-- The same api_key_json and api_log_json, in PL/pgSQL.  A plain SQL function whose body reads a
-- table or has a subquery cannot be inlined, so PostgreSQL parsed and planned that body again on every call of
-- every statement (0.3-0.8 ms each, more than the statements themselves); PL/pgSQL keeps the
-- body's plan for the life of the connection.  Results are unchanged, byte for byte.

CREATE OR REPLACE FUNCTION api_key_json(k api_keys) RETURNS json
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT row_to_json(t) FROM (
            SELECT k.id, k.name, k.scopes, pl_time(k.created_at) AS created_at,
                   pl_time(k.last_used_at) AS last_used_at, pl_time(k.revoked_at) AS revoked_at) t);
END
$$;

CREATE OR REPLACE FUNCTION api_log_json(l api_logs) RETURNS json
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT row_to_json(t) FROM (
            SELECT l.id, l.method, l.path, l.route, l.status, l.duration_ms, l.client_ip,
                   l.api_key_id, l.request_id, l.request_body, l.response_body,
                   pl_time(l.created_at) AS created_at) t);
END
$$;
