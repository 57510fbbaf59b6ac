//! The SQL of the orchestrator: sagas, their steps, their events and their leases. Every
//! query is checked at compile time against the migrations (`sqlx::query!` and friends,
//! from the committed cache in `orchestrator/.sqlx` when no database is set; see
//! `scripts/sqlx-prepare`).
//!
//! Every write a driver makes is fenced by its lease: it changes rows only while
//! `lease_owner` is still the driver's token, so a driver that lost its lease (paused,
//! partitioned, or claimed again) cannot overwrite the progress of the one that took over.
//!
//! Rows decode into typed fields: `orchestrator/sqlx.toml` maps each id, status, step,
//! reason and code column to its type, so a stored value that does not parse fails the
//! read instead of becoming a default. Parameters of those types are bound as
//! `value as _`: the type encodes itself, where the macro would ask for bare text or UUID.
//!
//! - `sagas`: a new saga, and sagas read with their steps.
//! - `leases`: a lease renewed, claimed (expired or parked sagas) and released.
//! - `writes`: a transition written, fenced by the lease or under the row's lock.
//! - `events`: what WatchCheckout and the change feed read.

mod events;
mod leases;
mod sagas;
mod writes;

pub use events::{events_after, orchestrated_versions};
pub use leases::{Claim, claim_expired, claim_parked, release, renew};
pub use sagas::{Filter, NewSaga, find_by_key, find_by_order, insert_saga, list, load, lock};
pub use writes::{apply, write};

use chrono::{DateTime, Utc};

use crate::{
    ids::{LeaseToken, OrderId, SagaId},
    saga::{CoordinationMode, FailureReason, GrpcCode, ResumePoint, SagaStatus, Step, StepStatus},
};

/// A saga's row, as every read of one returns it.
#[derive(Debug, Clone)]
pub struct SagaRow {
    pub saga_id: SagaId,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub request: Vec<u8>,
    pub priced_cart: Vec<u8>,
    pub customer_id: String,
    pub status: SagaStatus,
    /// Set exactly while the saga is parked (NEEDS_ATTENTION).
    pub resume_from: Option<ResumePoint>,
    pub failure_reason: Option<FailureReason>,
    pub total_minor: i64,
    pub currency: String,
    pub order_id: Option<OrderId>,
    pub payment_id: Option<String>,
    pub tracking_number: Option<String>,
    /// The fault-injection header PlaceOrder was called with, forwarded on every call;
    /// empty when there was none, as the header is then not sent.
    pub fault: String,
    /// The trace PlaceOrder ran in, for a resumed driver to join; empty for none, as above.
    pub traceparent: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub mode: CoordinationMode,
    /// Bumped by every driver write (see [`Fence`]).
    pub version: i64,
}

/// A step's row.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub saga_id: SagaId,
    pub step: Step,
    pub status: StepStatus,
    pub uncertain: bool,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The last call's error; `None` until one failed.
    pub last_error: Option<String>,
    /// That error's gRPC code; `None` also for a refusal carried in a reply (a decline).
    pub last_error_code: Option<GrpcCode>,
    pub compensation_attempts: i32,
    pub compensation_ended_at: Option<DateTime<Utc>>,
}

/// One change of a saga, as WatchCheckout streams it.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    /// `None` for a saga-level event (only the saga's status changed).
    pub step: Option<Step>,
    pub saga_status: SagaStatus,
    /// The step's status as of this event.
    pub step_status: Option<StepStatus>,
    pub created_at: DateTime<Utc>,
}

/// The driver lost its lease: another replica owns the saga now.
#[derive(Debug, thiserror::Error)]
#[error("lease on saga {0} lost")]
pub struct LeaseLost(pub SagaId);

/// Why a store write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    LeaseLost(#[from] LeaseLost),
    /// The driver holds the lease, but the saga on disk is older than the driver's copy:
    /// a Postgres crash took back records committed without a WAL flush. The driver must
    /// reload the saga and go on from there.
    #[error("saga {0} on disk is behind its driver (records lost in a crash)")]
    Behind(SagaId),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a driver's write is checked against: it changes the saga only if the saga is
/// still this driver's (the lease token) and still as the driver last wrote it (the
/// version, bumped by each write).
#[derive(Debug, Clone, Copy)]
pub struct Fence {
    pub owner: LeaseToken,
    pub version: i64,
}
