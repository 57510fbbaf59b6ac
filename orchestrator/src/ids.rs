//! Identifiers that cross module boundaries, as types of their own: a saga id, an order id
//! and a lease token are all UUIDs, and a swapped argument must not compile.

use std::fmt;

use uuid::Uuid;

use platform::uuid_id;

uuid_id!(
    /// A checkout's saga (the `checkout_id` users see). UUIDv7, so ids sort by creation.
    pub SagaId
);
uuid_id!(
    /// An order of order-svc, learnt from its CreateOrder reply.
    pub OrderId
);
uuid_id!(
    /// The token of one claim of a saga's lease. Each claim gets a fresh one, and every
    /// write of a driver is fenced by it, so a driver whose saga was claimed again (even by
    /// its own replica) changes nothing.
    pub LeaseToken
);

impl SagaId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl LeaseToken {
    /// A fresh token for a new claim.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

/// The idempotency key of one downstream call. Derived from the saga and a step's stable
/// code, so every retry and every replay after a crash sends the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for IdempotencyKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
