-- Conversations and their participants (SPEC 4.2).
CREATE TABLE conversations (
    id              uuid PRIMARY KEY,
    type            text NOT NULL CONSTRAINT type__direct_group_or_channel
                        CHECK (type IN ('direct', 'group', 'channel')),
    status          text NOT NULL DEFAULT 'open' CONSTRAINT status__open_pending_or_closed
                        CHECK (status IN ('open', 'pending', 'closed')),
    subject         text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb CONSTRAINT metadata__max_16384_bytes
                        CHECK (octet_length(metadata::text) <= 16384),
    -- Direct conversations only: the two customer ids, sorted, joined by ':'.  Never shown.
    direct_key      text,
    last_message_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT direct_key_iff_direct CHECK ((type = 'direct') = (direct_key IS NOT NULL))
);
-- At most one open (not closed) direct conversation per pair of customers.  Two concurrent creates
-- for one pair meet here: the second waits for the first to commit, then inserts nothing and
-- returns the first one's conversation.  Reopening a closed one while another is open is a 409.
CREATE UNIQUE INDEX conversations_open_direct ON conversations (direct_key)
    WHERE status <> 'closed';
-- The list order: newest activity first.
CREATE INDEX conversations_activity
    ON conversations ((COALESCE(last_message_at, created_at)) DESC, id DESC);

-- One row per (conversation, customer).  Leaving sets left_at; joining again clears it (same row,
-- same id, joined_at and role renewed), so participants[] never lists a customer twice.
CREATE TABLE participants (
    id              uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    customer_id     uuid NOT NULL,
    role            text NOT NULL DEFAULT 'member' CONSTRAINT role__member_admin_or_owner
                        CHECK (role IN ('member', 'admin', 'owner')),
    joined_at       timestamptz NOT NULL DEFAULT now(),
    left_at         timestamptz,
    CONSTRAINT participants_once UNIQUE (conversation_id, customer_id)
);
-- The customer_id filter of the list: conversations where that customer is active.
CREATE INDEX participants_active_customer ON participants (customer_id) WHERE left_at IS NULL;

-- The participant as the API returns it and as events carry it.
CREATE FUNCTION participant_json(p participants) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT p.id, p.conversation_id, p.customer_id, p.role, pl_time(p.joined_at) AS joined_at,
               pl_time(p.left_at) AS left_at) t
$$;

-- The conversation with the given participants list.  A statement that inserts participants
-- cannot read them back (one snapshot), so it passes the list it built from its own RETURNING.
CREATE FUNCTION conversation_json(c conversations, parts json) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_to_json(t) FROM (
        SELECT c.id, c.type, c.status, c.subject, c.metadata,
               pl_time(c.last_message_at) AS last_message_at, pl_time(c.created_at) AS created_at,
               pl_time(c.updated_at) AS updated_at, parts AS participants) t
$$;

-- The conversation as the API returns it: with every participant (left ones carry left_at),
-- in the order they were first added.
CREATE FUNCTION conversation_json(c conversations) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT conversation_json(c, (
        SELECT COALESCE(json_agg(participant_json(p) ORDER BY p.id), '[]'::json)
        FROM participants p WHERE p.conversation_id = c.id))
$$;
