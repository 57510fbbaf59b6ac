-- An operator settles a dead letter (EventAdminService.RetryDeadLetter and
-- DiscardDeadLetter): the row stays, and says what was decided, by whom, when and why.
-- Settled letters are swept after RETENTION like other finished records; parked ones
-- never are.
ALTER TABLE dead_letters
    ADD COLUMN state       text NOT NULL DEFAULT 'parked'
        CHECK (state IN ('parked', 'retried', 'discarded')),
    ADD COLUMN settled_at  timestamptz,
    ADD COLUMN settled_by  text,
    ADD COLUMN settle_note text,
    -- A settlement is whole: when, who and why, or none of them.
    ADD CONSTRAINT dead_letters_settled_when_not_parked CHECK (
        (state = 'parked') = (settled_at IS NULL)
        AND (settled_at IS NULL) = (settled_by IS NULL)
        AND (settled_at IS NULL) = (settle_note IS NULL));
CREATE INDEX dead_letters_settled ON dead_letters (settled_at) WHERE settled_at IS NOT NULL;
