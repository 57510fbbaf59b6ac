-- Shipments. An order has at most one live (CREATED) shipment.
CREATE TABLE shipments (
    shipment_id     uuid PRIMARY KEY,
    order_id        uuid NOT NULL,
    tracking_number text NOT NULL UNIQUE,
    status          text NOT NULL CHECK (status IN ('CREATED', 'CANCELLED')),
    name            text NOT NULL,
    line1           text NOT NULL,
    line2           text NOT NULL DEFAULT '',
    city            text NOT NULL,
    postal_code     text NOT NULL,
    country         text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX shipments_live_order ON shipments (order_id) WHERE status = 'CREATED';
CREATE INDEX shipments_order ON shipments (order_id, created_at);

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
