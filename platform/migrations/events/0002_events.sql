-- The tables of platform::events, the same in every service that takes part in the
-- choreographed checkout (each service owns them in its own database).

-- Events written in the same transaction as the change they announce; the relay
-- publishes them to JetStream and marks them sent, and prunes sent rows later.
CREATE TABLE outbox (
    event_id   uuid PRIMARY KEY,
    subject    text NOT NULL,
    envelope   bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (created_at, event_id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Events already handled, written in the same transaction as their effects: a
-- redelivery finds its id here and changes nothing.
CREATE TABLE inbox (
    event_id   uuid PRIMARY KEY,
    consumer   text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now()
);

-- Messages a consumer gave up on, for a person (EventAdminService.ListDeadLetters).
CREATE TABLE dead_letters (
    id         bigserial PRIMARY KEY,
    -- Empty when the message could not be read at all.
    event_id   text NOT NULL,
    subject    text NOT NULL,
    consumer   text NOT NULL,
    deliveries bigint NOT NULL,
    reason     text NOT NULL,
    payload    bytea NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now()
);
