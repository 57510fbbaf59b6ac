-- One order per checkout, held by the database: whichever way a second order for the
-- same checkout is asked for (CreateOrder under another key, a second CheckoutRequested
-- with a new event id), the insert finds the first and creates nothing. Orders made before
-- this migration have no checkout (NULL); NULLs never conflict.
ALTER TABLE orders ADD COLUMN checkout_id uuid;
ALTER TABLE orders ADD CONSTRAINT orders_one_per_checkout UNIQUE (checkout_id);
