-- Outbound deliveries (SPEC 6): one row per outbound message sent to a channel, and one
-- delivery_attempts row per try.  The message id is the idempotency anchor: a row exists once per
-- message (unique message_id), is claimed (state sending, with a lease in next_attempt_at) before
-- each try, and keeps the provider's message id as soon as the provider answered, so a row that is
-- sent is never sent again.
CREATE TABLE deliveries (
    message_id          uuid PRIMARY KEY,
    conversation_id     uuid NOT NULL,
    seq                 bigint NOT NULL,      -- the message's seq: a conversation's sends keep order
    provider            text NOT NULL CHECK (provider IN ('whatsapp', 'telegram')),
    sender              text,                 -- WhatsApp phone_number_id (NULL for Telegram)
    recipient           text NOT NULL,        -- wa_id, WhatsApp group id or Telegram chat id
    is_group            boolean NOT NULL DEFAULT false,
    body                text NOT NULL,
    state               text NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'sending', 'retrying', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),  -- for sending rows: lease end
    provider_message_id text,
    last_error          jsonb,                -- {"provider","code","message","retryable"}
    synced              boolean NOT NULL DEFAULT false,      -- outcome written to messaging-svc
    request_id          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    CONSTRAINT deliveries_sent_has_id CHECK (state <> 'sent' OR provider_message_id IS NOT NULL)
);
-- What the senders claim: tries that are due, and outcomes still to be written back.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE state IN ('queued', 'sending', 'retrying') OR NOT synced;
-- The earlier unfinished sends of a conversation, which a later message waits for.
CREATE INDEX deliveries_open ON deliveries (conversation_id, seq)
    WHERE state IN ('queued', 'sending', 'retrying');

CREATE TABLE delivery_attempts (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id          uuid NOT NULL REFERENCES deliveries (message_id),
    attempt             integer NOT NULL,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL DEFAULT now(),
    outcome             text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    http_status         integer,              -- NULL when no answer came
    provider_message_id text,
    error               jsonb
);
CREATE INDEX delivery_attempts_message ON delivery_attempts (message_id, id);
