-- The statement customer-svc runs for POST /api/customers (customer-svc/customers_db.c, "upsert"),
-- with the service's parameters replaced by equivalent expressions. Keep the two in step.
\set r random(1, 2000000000)
WITH up AS (
 INSERT INTO customers AS c (id, external_type, external_id, name, metadata)
 VALUES (gen_random_uuid(), 'bench', 'pg-' || :r, 'Bench User', pl_jsonb_merge('{}', '{"k":"v"}'::jsonb))
 ON CONFLICT (external_type, external_id) DO UPDATE
  SET name = COALESCE(EXCLUDED.name, c.name),
      metadata = pl_jsonb_merge(c.metadata, '{"k":"v"}'::jsonb), updated_at = now()
  WHERE (COALESCE(EXCLUDED.name, c.name), pl_jsonb_merge(c.metadata, '{"k":"v"}'::jsonb))
        IS DISTINCT FROM (c.name, c.metadata)
 RETURNING c.id, (c.xmax = 0) AS created, customer_json(c) AS body)
SELECT up.created, up.body,
 outbox_add(gen_random_uuid(), CASE WHEN up.created THEN 'customer.created'
            ELSE 'customer.updated' END, up.id::text, 'customer-svc', 'bench-trace', up.body)
 FROM up;
