-- Orders, their lines and every status transition.
CREATE TABLE orders (
    order_id      uuid PRIMARY KEY,
    customer_id   text NOT NULL,
    status        text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_minor   bigint NOT NULL CHECK (total_minor >= 0),
    ship_name     text NOT NULL,
    ship_line1    text NOT NULL,
    ship_line2    text NOT NULL DEFAULT '',
    ship_city     text NOT NULL,
    ship_postal   text NOT NULL,
    ship_country  text NOT NULL,
    cancel_reason text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer ON orders (customer_id, order_id DESC);

CREATE TABLE order_lines (
    order_id         uuid NOT NULL REFERENCES orders (order_id),
    line_no          integer NOT NULL,
    sku              text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    line_total_minor bigint NOT NULL CHECK (line_total_minor = unit_price_minor * quantity),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_status_history (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (order_id),
    from_status text,
    to_status   text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, id);

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
