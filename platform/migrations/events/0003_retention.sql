-- The retention sweep (platform/src/retention.rs) deletes the oldest rows first, a batch
-- at a time: these indexes let it find them without reading the whole table.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX inbox_handled ON inbox (handled_at);
