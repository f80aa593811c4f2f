-- Retention (PARLEY_INBOUND_RETENTION_DAYS): finished rows older than the period are deleted
-- once an hour.  These indexes let each pass find them without reading the whole tables.
CREATE INDEX inbound_webhooks_done ON inbound_webhooks (processed_at) WHERE status = 'done';
CREATE INDEX deliveries_finished ON deliveries (updated_at)
    WHERE state IN ('sent', 'failed') AND synced;
