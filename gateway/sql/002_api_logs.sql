-- Every public API call (SPEC section 3, "logs every call"), written in batches.
CREATE TABLE api_logs (
    id            uuid PRIMARY KEY,
    method        text NOT NULL,
    path          text NOT NULL,
    route         text NOT NULL,
    status        integer NOT NULL,
    duration_ms   double precision NOT NULL,
    client_ip     text NOT NULL,
    api_key_id    uuid,
    request_id    text NOT NULL,
    request_body  text,
    response_body text,
    created_at    timestamptz NOT NULL
);
CREATE INDEX api_logs_created ON api_logs (created_at DESC, id DESC);

CREATE FUNCTION api_log_json(l api_logs) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT l.id, l.method, l.path, l.route, l.status, l.duration_ms, l.client_ip,
               l.api_key_id, l.request_id, l.request_body, l.response_body,
               pl_time(l.created_at) AS created_at) t
$$;
