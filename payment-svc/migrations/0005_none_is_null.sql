-- "None" is NULL, never '': a payment has a decline reason only when it is DECLINED, and
-- a refund asked for without a reason records none. Version 5: 2 to 4 are platform's
-- events schema (platform::db::EVENTS_SCHEMA).
ALTER TABLE payments ALTER COLUMN decline_reason DROP NOT NULL,
                     ALTER COLUMN decline_reason DROP DEFAULT;
UPDATE payments SET decline_reason = NULL WHERE decline_reason = '';
ALTER TABLE payments
    ADD CONSTRAINT payments_decline_reason_known
        CHECK (decline_reason IN ('card_declined', 'insufficient_funds')),
    ADD CONSTRAINT payments_decline_reason_when_declined
        CHECK ((status = 'DECLINED') = (decline_reason IS NOT NULL));

ALTER TABLE refunds ALTER COLUMN reason DROP NOT NULL,
                    ALTER COLUMN reason DROP DEFAULT;
UPDATE refunds SET reason = NULL WHERE reason = '';
