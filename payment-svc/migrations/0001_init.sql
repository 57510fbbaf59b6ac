-- Payments in integer minor units, one currency each. An order has at most one
-- CAPTURED payment at a time: the partial unique index backs up the saga's own rules.
CREATE TABLE payments (
    payment_id     uuid PRIMARY KEY,
    order_id       uuid NOT NULL,
    amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status         text NOT NULL CHECK (status IN ('CAPTURED', 'REFUNDED', 'DECLINED')),
    decline_reason text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payments_one_capture_per_order ON payments (order_id) WHERE status = 'CAPTURED';
CREATE INDEX payments_order ON payments (order_id, created_at);

CREATE TABLE refunds (
    refund_id    uuid PRIMARY KEY,
    payment_id   uuid NOT NULL UNIQUE REFERENCES payments (payment_id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    reason       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
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
