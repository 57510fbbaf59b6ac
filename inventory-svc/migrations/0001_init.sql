-- Catalog, stock and reservations. Stock can never go negative: the CHECK constraints
-- back up the conditional updates in store.rs.
CREATE TABLE products (
    sku         text PRIMARY KEY,
    name        text NOT NULL,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stock (
    sku       text PRIMARY KEY REFERENCES products (sku),
    available bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved  bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);

CREATE TABLE reservations (
    reservation_id uuid PRIMARY KEY,
    order_id       uuid NOT NULL,
    status         text NOT NULL CHECK (status IN ('RESERVED', 'RELEASED')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz
);
-- At most one live reservation per order.
CREATE UNIQUE INDEX reservations_live_order ON reservations (order_id) WHERE status = 'RESERVED';
CREATE INDEX reservations_order ON reservations (order_id, created_at);

CREATE TABLE reservation_lines (
    reservation_id uuid NOT NULL REFERENCES reservations (reservation_id),
    sku            text NOT NULL REFERENCES products (sku),
    quantity       integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, sku)
);

-- See platform::idempotency.
CREATE TABLE idempotency_keys (
    operation    text NOT NULL,
    key          text NOT NULL,
    request_hash bytea,
    state        text NOT NULL CHECK (state IN ('completed', 'blocked')),
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operation, key)
);
