-- The retention sweep deletes finished sagas (with their steps and events) and inbox rows
-- oldest first, a batch at a time: these indexes let it find them without reading the
-- whole table. Live and parked sagas are not in the first index at all.
CREATE INDEX sagas_finished ON sagas (updated_at) WHERE status IN ('COMPLETED', 'CANCELLED');
CREATE INDEX inbox_handled ON inbox (handled_at);
