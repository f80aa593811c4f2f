-- Media metadata (SPEC 4.4).  The bytes live content-addressed in PARLEY_MEDIA_DIR under
-- storage_key; many rows may share one storage_key (identical content is stored once).
CREATE TABLE media (
    id              uuid PRIMARY KEY,
    owner_service   text,
    conversation_id uuid,
    filename        text CHECK (filename IS NULL OR char_length(filename) BETWEEN 1 AND 255),
    content_type    text NOT NULL,
    size            bigint NOT NULL CHECK (size > 0),
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width           integer,
    height          integer,
    storage_key     text NOT NULL,
    scanned         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_conversation ON media (conversation_id) WHERE conversation_id IS NOT NULL;

-- The media as the API returns it and as media.uploaded carries it: one definition for both.
CREATE FUNCTION media_json(m media) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT m.id, m.owner_service, m.conversation_id, m.filename, m.content_type, m.size,
               m.sha256, m.width, m.height, m.storage_key, m.scanned,
               pl_time(m.created_at) AS created_at) t
$$;
