-- "None" is NULL, never an empty string (as failure_reason and last_error_code became in
-- 0004): a saga that has no payment or shipment yet, and a step that has no error.
ALTER TABLE sagas ALTER COLUMN payment_id DROP NOT NULL,
                  ALTER COLUMN payment_id DROP DEFAULT,
                  ALTER COLUMN tracking_number DROP NOT NULL,
                  ALTER COLUMN tracking_number DROP DEFAULT;
UPDATE sagas SET payment_id = NULL WHERE payment_id = '';
UPDATE sagas SET tracking_number = NULL WHERE tracking_number = '';

-- An error with a code but an empty message was still an error: only a step with neither
-- had none. A code comes only with an error.
ALTER TABLE saga_steps ALTER COLUMN last_error DROP NOT NULL,
                       ALTER COLUMN last_error DROP DEFAULT;
UPDATE saga_steps SET last_error = NULL WHERE last_error = '' AND last_error_code IS NULL;
ALTER TABLE saga_steps ADD CONSTRAINT saga_steps_code_with_error
    CHECK (last_error_code IS NULL OR last_error IS NOT NULL);

-- Where a parked (NEEDS_ATTENTION) saga goes on when an operator resumes it: forward (a
-- step past the pivot was refused) or back through its compensations. Recorded by the
-- write that parks it, and cleared by the one that resumes it, so a saga has one exactly
-- while it is parked. Sagas parked before this knew it only from their failure reason
-- (one that failed compensates); that rule fills theirs, so they resume as before.
ALTER TABLE sagas ADD COLUMN resume_from text
    CONSTRAINT sagas_resume_from_known CHECK (resume_from IN ('forward', 'compensating'));
UPDATE sagas
   SET resume_from = CASE WHEN failure_reason IS NULL THEN 'forward' ELSE 'compensating' END
 WHERE status = 'NEEDS_ATTENTION';
ALTER TABLE sagas ADD CONSTRAINT sagas_resume_from_while_parked
    CHECK ((status = 'NEEDS_ATTENTION') = (resume_from IS NOT NULL));
