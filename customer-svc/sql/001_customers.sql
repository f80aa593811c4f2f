-- Customers and their channel identity (SPEC 4.1).
CREATE TABLE customers (
    id            uuid PRIMARY KEY,
    external_type text NOT NULL,
    external_id   text NOT NULL,
    name          text,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_identity UNIQUE (external_type, external_id)
);
CREATE INDEX customers_name_prefix ON customers (lower(name) text_pattern_ops);

-- The customer as the API returns it and as events carry it: one definition for both.
CREATE FUNCTION customer_json(c customers) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT c.id, c.external_id, c.external_type, c.name, c.metadata,
               pl_time(c.created_at) AS created_at, pl_time(c.updated_at) AS updated_at) t
$$;
