-- Every driver write checks the saga's version and bumps it. Records a replay re-derives
-- commit without waiting for the WAL flush, so a Postgres crash can take the last few
-- back while their driver runs on; its next write then finds the version behind what it
-- holds and reloads the saga from disk instead of building on records that are gone.
ALTER TABLE sagas ADD COLUMN version bigint NOT NULL DEFAULT 0;
