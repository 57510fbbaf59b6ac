-- Typed state: "no value" is NULL rather than an empty string, so every stored code
-- parses into its enum (an unknown one is an error, never a default), and the database
-- refuses a reason or a code that no version of the orchestrator writes.
ALTER TABLE sagas ALTER COLUMN failure_reason DROP NOT NULL,
                  ALTER COLUMN failure_reason DROP DEFAULT;
UPDATE sagas SET failure_reason = NULL WHERE failure_reason = '';
ALTER TABLE sagas ADD CONSTRAINT sagas_failure_reason_known CHECK (failure_reason IN (
    'card_declined', 'insufficient_funds', 'out_of_stock', 'undeliverable_address',
    'dependency_unavailable'));

ALTER TABLE saga_steps ALTER COLUMN last_error_code DROP NOT NULL,
                       ALTER COLUMN last_error_code DROP DEFAULT;
UPDATE saga_steps SET last_error_code = NULL WHERE last_error_code = '';
ALTER TABLE saga_steps ADD CONSTRAINT saga_steps_step_known CHECK (step IN (
    'price_cart', 'create_order', 'charge_payment', 'reserve_stock', 'create_shipment',
    'confirm_order'));

-- A saga-level event (only the saga's status changed) has no step.
ALTER TABLE saga_events ALTER COLUMN step DROP NOT NULL,
                        ALTER COLUMN step_status DROP NOT NULL,
                        ALTER COLUMN step_status DROP DEFAULT;
UPDATE saga_events SET step = NULL WHERE step = '';
UPDATE saga_events SET step_status = NULL WHERE step_status = '';
