-- A saga that cannot finish by itself (a compensation, or a step past the pivot, that the
-- downstream refuses for good) is parked as NEEDS_ATTENTION: no driver, no recovery, until
-- an operator fixes the cause and resumes it (ResumeCheckout).
ALTER TABLE sagas DROP CONSTRAINT sagas_status_check;
ALTER TABLE sagas ADD CONSTRAINT sagas_status_check
    CHECK (status IN ('RUNNING', 'COMPENSATING', 'COMPLETED', 'CANCELLED', 'NEEDS_ATTENTION'));
