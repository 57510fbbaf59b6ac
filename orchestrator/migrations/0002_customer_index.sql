-- ListCheckouts by customer (the load generator's checker lists one run's checkouts).
CREATE INDEX sagas_customer ON sagas (customer_id, saga_id DESC);
