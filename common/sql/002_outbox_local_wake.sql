-- The relay is woken by its own process after each commit that wrote outbox rows, and by a NOTIFY
-- from the relays of other replicas (common/outbox.c).  A NOTIFY from every writer's commit is gone:
-- PostgreSQL serialises the commits of notifying transactions, so it capped every service's writes.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
