-- Each event records the step's status as of that event, so a late watcher replays the
-- history as it happened rather than the steps as they are now.
ALTER TABLE saga_events ADD COLUMN step_status text NOT NULL DEFAULT '';
