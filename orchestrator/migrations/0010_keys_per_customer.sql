-- Idempotency keys are each customer's own: the same key from two customers is two
-- checkouts. Unique across everyone, a key told one customer that another had used it
-- (ALREADY_EXISTS) and let them take it first. The new constraint's index also serves
-- PlaceOrder's lookup of a repeated key (customer_id, idempotency_key).
ALTER TABLE sagas DROP CONSTRAINT sagas_idempotency_key_key;
ALTER TABLE sagas ADD CONSTRAINT sagas_customer_key UNIQUE (customer_id, idempotency_key);
