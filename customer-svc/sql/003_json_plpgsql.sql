-- The same customer_json, in PL/pgSQL.  A plain SQL function whose body reads a table or has a
-- subquery cannot be inlined, so PostgreSQL parsed and planned that body again on every call of
-- every statement (0.3-0.8 ms each, more than the statements themselves); PL/pgSQL keeps the
-- body's plan for the life of the connection.  Results are unchanged, byte for byte.

CREATE OR REPLACE FUNCTION customer_json(c customers) RETURNS json
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT row_to_json(t) FROM (
            SELECT c.id, c.external_id, c.external_type, c.name, c.metadata,
                   pl_time(c.created_at) AS created_at, pl_time(c.updated_at) AS updated_at) t);
END
$$;
