-- The statement messaging-svc runs for POST /api/messages (messaging-svc/messages_db.c, "create"),
-- with the service's parameters replaced by equivalent expressions; each pgbench client writes
-- into its own conversation, as each wrk connection does. Keep the two in step.
WITH k AS (
 INSERT INTO conversation_counters AS k (conversation_id, last_seq, version)
 SELECT ('00000000-0000-7000-8000-' || lpad(:client_id::text, 12, '0'))::uuid, 1, 1
 WHERE NULL::text IS NULL OR NULL::text IS NULL OR NOT EXISTS
  (SELECT 1 FROM messages x WHERE x.channel = NULL AND x.external_message_id = NULL)
 ON CONFLICT (conversation_id) DO UPDATE
  SET last_seq = k.last_seq + 1, version = k.version + 1
 RETURNING k.last_seq, k.version),
m AS (
 INSERT INTO messages AS m (id, conversation_id, seq, version, sender_customer_id, direction,
  channel, body, content_type, media_id, external_message_id, status, metadata)
 SELECT gen_random_uuid(), ('00000000-0000-7000-8000-' || lpad(:client_id::text, 12, '0'))::uuid,
  k.last_seq, k.version, '00000000-0000-7000-8000-00000000beef'::uuid, 'inbound', NULL,
  'hello from the benchmark', 'text', NULL::uuid, NULL, 'received', COALESCE(NULL::jsonb, '{}'::jsonb)
 FROM k
 RETURNING m.conversation_id, message_json(m) AS body)
SELECT m.body, outbox_add(gen_random_uuid(), 'message.inbound.created', m.conversation_id::text,
 'messaging-svc', 'bench-trace', m.body) FROM m;
