-- "None" is NULL, never '': an order has a cancel reason only when it is CANCELLED. And
-- every stored status is one the service knows, in the history as in the order. Version
-- 6: 2 to 4 are platform's events schema (platform::db::EVENTS_SCHEMA), 5 is taken.
ALTER TABLE orders ALTER COLUMN cancel_reason DROP NOT NULL,
                   ALTER COLUMN cancel_reason DROP DEFAULT;
UPDATE orders SET cancel_reason = NULL WHERE cancel_reason = '';
ALTER TABLE orders
    ADD CONSTRAINT orders_cancel_reason_when_cancelled
        CHECK ((status = 'CANCELLED') = (cancel_reason IS NOT NULL));

ALTER TABLE order_status_history
    ADD CONSTRAINT order_status_history_from_status_known
        CHECK (from_status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    ADD CONSTRAINT order_status_history_to_status_known
        CHECK (to_status IN ('PENDING', 'CONFIRMED', 'CANCELLED'));
