-- API keys of the public API: only the SHA-256 of a key is stored (SPEC section 3).
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    key_hash     text NOT NULL UNIQUE,      -- hex SHA-256 of the key
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT scopes__known CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[])
);

-- The key as the API lists it: never the secret, never its hash.
CREATE FUNCTION api_key_json(k api_keys) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT k.id, k.name, k.scopes, pl_time(k.created_at) AS created_at,
               pl_time(k.last_used_at) AS last_used_at, pl_time(k.revoked_at) AS revoked_at) t
$$;
