-- Group conversations of channel chats (SPEC 10 "Channel identities"): a WhatsApp group or a
-- Telegram group/supergroup/channel maps to one conversation, found by (channel, chat id).  The
-- database decides under concurrency: the primary key is the chat key, and a find-or-create
-- inserts the key with ON CONFLICT DO NOTHING in the same statement as the conversation.  A chat
-- that continues under a new id (Telegram migrate_to_chat_id) gets a second key row for the same
-- conversation, so late messages of the old chat still find it.  Key rows are never deleted.
CREATE TABLE conversation_chats (
    channel         text NOT NULL CHECK (channel ~ '^[a-z0-9_-]{1,64}$'),
    chat_id         text NOT NULL CHECK (char_length(chat_id) BETWEEN 1 AND 255),
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, chat_id)
);
CREATE INDEX conversation_chats_conversation ON conversation_chats (conversation_id);
