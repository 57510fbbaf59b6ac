-- Durable saga state. A saga is owned by one orchestrator replica at a time through its
-- lease (lease_owner, lease_until); every write of a driver is fenced by the owner.
CREATE TABLE sagas (
    saga_id         uuid PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    request_hash    bytea NOT NULL,
    -- The PlaceOrderRequest and the priced cart, so any replica can resume the saga.
    request         bytea NOT NULL,
    priced_cart     bytea NOT NULL,
    customer_id     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('RUNNING', 'COMPENSATING', 'COMPLETED', 'CANCELLED')),
    failure_reason  text NOT NULL DEFAULT '',
    total_minor     bigint NOT NULL,
    currency        text NOT NULL,
    order_id        uuid,
    payment_id      text NOT NULL DEFAULT '',
    tracking_number text NOT NULL DEFAULT '',
    -- Metadata forwarded downstream on every call (fault injection, trace context).
    fault           text NOT NULL DEFAULT '',
    traceparent     text NOT NULL DEFAULT '',
    lease_owner     uuid,
    lease_until     timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sagas_resumable ON sagas (lease_until) WHERE status IN ('RUNNING', 'COMPENSATING');
CREATE INDEX sagas_order ON sagas (order_id);
CREATE INDEX sagas_status ON sagas (status, saga_id DESC);

CREATE TABLE saga_steps (
    saga_id               uuid NOT NULL REFERENCES sagas (saga_id),
    step                  text NOT NULL,
    position              integer NOT NULL,
    status                text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED',
                                                          'COMPENSATING', 'COMPENSATED', 'SKIPPED')),
    -- A failed forward call whose effect is unknown (retries exhausted): compensate it.
    uncertain             boolean NOT NULL DEFAULT false,
    attempts              integer NOT NULL DEFAULT 0,
    started_at            timestamptz,
    ended_at              timestamptz,
    last_error            text NOT NULL DEFAULT '',
    last_error_code       text NOT NULL DEFAULT '',
    compensation_attempts integer NOT NULL DEFAULT 0,
    compensation_ended_at timestamptz,
    PRIMARY KEY (saga_id, step)
);

-- What WatchCheckout streams: every step change, in order.
CREATE TABLE saga_events (
    id          bigserial PRIMARY KEY,
    saga_id     uuid NOT NULL REFERENCES sagas (saga_id),
    step        text NOT NULL,
    saga_status text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saga_events_saga ON saga_events (saga_id, id);
