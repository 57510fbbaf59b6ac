//! A saga as its driver holds it: loaded from its rows, with the state the rules read and
//! what the steps' calls are built from.

use prost::Message;
use shop_proto::{checkout::v1::PlaceOrderRequest, inventory::v1::PriceCartResponse};

use crate::{
    ids::{LeaseToken, SagaId},
    saga::{Step, StepState, rules::SagaState},
    steps,
    store::{Fence, SagaRow, StepRow, WriteError},
};

/// Why a driver stopped before the saga ended. The saga is safe on disk either way: its
/// lease expires and recovery resumes it.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("database unavailable")]
    Db(#[from] sqlx::Error),
    #[error("saga {0} not found")]
    NotFound(SagaId),
    #[error("stored saga is unreadable")]
    Corrupt(#[from] prost::DecodeError),
    #[error("saga {0} has no row for step {1}")]
    MissingStep(SagaId, Step),
}

/// What PlaceOrder recorded of a new saga, for [`Saga::created`].
#[derive(Debug)]
pub struct Created {
    pub saga_id: SagaId,
    pub request: PlaceOrderRequest,
    pub priced: PriceCartResponse,
    pub total_minor: i64,
    pub currency: String,
    pub fault: String,
    pub traceparent: String,
}

/// Where a driver gets its saga from, and the lease it drives it under.
#[derive(Debug)]
pub enum Begin {
    /// Already in memory, as just written (a new checkout, a parked saga just resumed):
    /// nothing to read back.
    Held(Box<Saga>),
    /// Recorded earlier and claimed under `lease` (recovery): read from its rows.
    Stored { saga_id: SagaId, lease: LeaseToken },
}

impl Begin {
    pub fn saga_id(&self) -> SagaId {
        match self {
            Self::Held(saga) => saga.id,
            Self::Stored { saga_id, .. } => *saga_id,
        }
    }

    pub fn lease(&self) -> LeaseToken {
        match self {
            Self::Held(saga) => saga.fence.owner,
            Self::Stored { lease, .. } => *lease,
        }
    }
}

/// The saga as its driver holds it: what PlaceOrder recorded, and the state the rules
/// read, kept equal to the rows.
#[derive(Debug)]
pub struct Saga {
    pub id: SagaId,
    /// The lease token this driver holds and the version of its last write: every write
    /// is fenced by both.
    pub fence: Fence,
    pub state: SagaState,
    pub request: PlaceOrderRequest,
    pub priced: PriceCartResponse,
    pub total_minor: i64,
    pub currency: String,
    pub fault: String,
    pub traceparent: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Saga {
    pub fn from_rows(
        row: SagaRow,
        rows: Vec<StepRow>,
        lease: LeaseToken,
    ) -> Result<Self, DriveError> {
        let steps = Step::ALL
            .iter()
            .map(|step| {
                rows.iter()
                    .find(|r| r.step == *step)
                    .map(|r| StepState {
                        step: *step,
                        status: r.status,
                        uncertain: r.uncertain,
                    })
                    .ok_or(DriveError::MissingStep(row.saga_id, *step))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: row.saga_id,
            fence: Fence {
                owner: lease,
                version: row.version,
            },
            state: SagaState {
                status: row.status,
                resume_from: row.resume_from,
                failure_reason: row.failure_reason,
                order_id: row.order_id,
                steps,
            },
            request: PlaceOrderRequest::decode(row.request.as_slice())?,
            priced: PriceCartResponse::decode(row.priced_cart.as_slice())?,
            total_minor: row.total_minor,
            currency: row.currency,
            fault: row.fault,
            traceparent: row.traceparent,
            created_at: row.created_at,
        })
    }

    /// The saga PlaceOrder just recorded, as `store::insert_saga` wrote it: its driver
    /// starts from this instead of reading back what was just written.
    pub fn created(new: Created, lease: LeaseToken) -> Self {
        Self {
            id: new.saga_id,
            // As inserted: the column's default.
            fence: Fence {
                owner: lease,
                version: 0,
            },
            state: SagaState::created(),
            request: new.request,
            priced: new.priced,
            total_minor: new.total_minor,
            currency: new.currency,
            fault: new.fault,
            traceparent: new.traceparent,
            created_at: chrono::Utc::now(),
        }
    }

    pub fn context(&self) -> steps::Context<'_> {
        steps::Context {
            saga_id: self.id,
            request: &self.request,
            priced: &self.priced,
            total_minor: self.total_minor,
            currency: &self.currency,
            order_id: self.state.order_id,
            failure_reason: self.state.failure_reason,
            fault: &self.fault,
            traceparent: &self.traceparent,
        }
    }
}
