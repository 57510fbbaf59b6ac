//! `shop.checkout.v1.CheckoutService`: the front door. Validates, prices the cart,
//! records the saga and waits for it within the caller's deadline.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use platform::{
    ApiError,
    error::{Reply, reply},
    fingerprint::Fingerprint,
    page,
    reason::Reason,
    security::caller::Caller,
};
use prost::Message;
use shop_proto::{
    checkout::v1::{self as pb, checkout_service_server::CheckoutService},
    inventory::v1 as inventory,
};
use sqlx::PgPool;
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, metadata::MetadataMap};

use tonic_types::StatusExt;
use tower::BoxError;
use tracing::Instrument;

use crate::{
    command::{self, CheckoutRef, ListQuery, PlaceOrder},
    convert::{self, to_checkout},
    engine::Engine,
    feed::Feed,
    ids::{LeaseToken, SagaId},
    loaded::{Begin, Created, DriveError, Saga},
    metadata::{header, wait_budget},
    resilience::{Call, send},
    saga::{CoordinationMode, SagaStatus},
    store::{self, NewSaga, SagaRow, WriteError},
    streams::{StreamPermit, Streams},
};

/// The CheckoutService implementation.
#[derive(Debug, Clone)]
pub struct CheckoutApi {
    /// The drivers' pool: PlaceOrder and ResumeCheckout, which start or wait for them.
    pool: PgPool,
    read: ReadSide,
    engine: Arc<Engine>,
    price_cart:
        crate::resilience::StepService<inventory::PriceCartRequest, inventory::PriceCartResponse>,
    max_wait: Duration,
    /// How long without progress flags a checkout that has not ended as stalled.
    stall_after: Duration,
    /// `RETENTION`: after it the services no longer know a checkout's calls, so it is
    /// not resumed.
    retention: Duration,
}

/// What serves GetCheckout, ListCheckouts and WatchCheckout, apart from the drivers.
#[derive(Debug, Clone)]
pub struct ReadSide {
    /// The read pool (`DATABASE_READ_CONNECTIONS`): reads wait for these connections,
    /// never for one a driver needs to renew its lease.
    pub pool: PgPool,
    /// Wakes PlaceOrder waiters and WatchCheckout streams when their saga changes.
    pub feed: Arc<Feed>,
    /// The caps on open WatchCheckout streams.
    pub streams: Arc<Streams>,
}

impl CheckoutApi {
    pub fn new(
        pool: PgPool,
        read: ReadSide,
        engine: Arc<Engine>,
        clients: &crate::downstream::Clients,
        settings: &crate::config::Settings,
        retention: Duration,
    ) -> Self {
        Self {
            pool,
            read,
            engine,
            price_cart: clients.price_cart.clone(),
            max_wait: settings.max_wait,
            stall_after: settings.stall_after,
            retention,
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::WatchCheckoutResponse, Status>> + Send>>;

#[tonic::async_trait]
impl CheckoutService for CheckoutApi {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Reply<pb::PlaceOrderResponse> {
        let caller = Caller::of(&request)?;
        let (metadata, _, mut message) = request.into_parts();
        message.customer_id = match caller.customer_for(&message.customer_id) {
            Ok(customer) => customer,
            Err(refused) => return reply(Err(refused)),
        };
        let until = Instant::now() + wait_budget(&metadata, self.max_wait);
        // Started in a task of its own: a caller that gives up (a deadline of a few
        // milliseconds, a closed connection) drops this handler, and that must not leave
        // a recorded saga without its driver until its lease expires.
        let api = self.clone();
        let started = tokio::spawn(
            async move { api.start(&metadata, message).await }.instrument(tracing::Span::current()),
        );
        let result = match started.await {
            Ok(Ok(started)) => self.wait_for(started, until).await,
            Ok(Err(error)) => Err(error),
            Err(panicked) => Err(ApiError::Internal(panicked.into())),
        };
        reply(result)
    }

    async fn get_checkout(
        &self,
        request: Request<pb::GetCheckoutRequest>,
    ) -> Reply<pb::GetCheckoutResponse> {
        let caller = Caller::of(&request)?;
        reply(self.get_checkout(&caller, request.into_inner()).await)
    }

    async fn list_checkouts(
        &self,
        request: Request<pb::ListCheckoutsRequest>,
    ) -> Reply<pb::ListCheckoutsResponse> {
        let caller = Caller::of(&request)?;
        reply(self.list_checkouts(&caller, request.into_inner()).await)
    }

    async fn resume_checkout(
        &self,
        request: Request<pb::ResumeCheckoutRequest>,
    ) -> Reply<pb::ResumeCheckoutResponse> {
        let caller = Caller::of(&request)?;
        if let Err(refused) = caller.require_operator("ResumeCheckout") {
            return reply(Err(refused));
        }
        reply(self.resume_checkout(request.into_inner()).await)
    }

    type WatchCheckoutStream = EventStream;

    async fn watch_checkout(
        &self,
        request: Request<pb::WatchCheckoutRequest>,
    ) -> Reply<EventStream> {
        let caller = Caller::of(&request)?;
        // Counted first: a refused stream costs no read. Held until the stream ends.
        let permit = self.read.streams.admit(&caller)?;
        reply(
            self.watch_checkout(&caller, permit, request.into_inner())
                .await,
        )
    }
}

impl CheckoutApi {
    /// Validates, prices and records a new checkout and starts it, or finds the one a
    /// repeat of the key names.
    async fn start(
        &self,
        metadata: &MetadataMap,
        req: pb::PlaceOrderRequest,
    ) -> Result<Started, ApiError> {
        let order = PlaceOrder::try_from(req)?;
        tracing::Span::current().record("key", order.idempotency_key.as_str());
        let hash = Fingerprint::of(&order.request)?;
        // The key is not looked up first: a new checkout (the usual case) learns it is new
        // from the insert itself, one statement fewer. A repeat prices its cart again (a
        // read), then finds its checkout on the insert's conflict, or, if pricing now
        // fails, before that failure is answered.
        let fault = header(metadata, platform::fault::FAULT_HEADER);
        // This call's own context (a child of the caller's), stored so a resumed saga
        // joins the same trace; the caller's, when traces are not exported.
        let traceparent = Some(platform::telemetry::current_traceparent())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| header(metadata, "traceparent"));
        let priced_at = chrono::Utc::now();
        let call = Call::new(
            inventory::PriceCartRequest {
                lines: order.lines.clone(),
            },
            None,
            &fault,
            &traceparent,
        );
        let priced = match send(&self.price_cart, call.clone()).await {
            Ok(priced) => order.check_priced(&priced).map(|()| priced),
            Err(error) => Err(pricing_error(error)),
        };
        let priced = match priced {
            Ok(priced) => priced,
            Err(refused) => {
                return match store::find_by_key(
                    &self.pool,
                    &order.customer_id,
                    &order.idempotency_key,
                )
                .await?
                {
                    Some(existing) => replay(existing, &hash),
                    None => Err(refused),
                };
            }
        };
        let total = priced.total.clone().unwrap_or_default();

        let saga_id = SagaId::generate();
        let new = NewSaga {
            saga_id,
            idempotency_key: &order.idempotency_key,
            request_hash: hash.as_bytes(),
            request: &order.request.encode_to_vec(),
            priced_cart: &priced.encode_to_vec(),
            customer_id: &order.customer_id,
            total_minor: total.amount_minor,
            currency: &total.currency,
            fault: &fault,
            traceparent: &traceparent,
            price_attempts: i32::try_from(call.attempts()).unwrap_or(i32::MAX),
            price_started: priced_at,
            mode: order.mode,
        };
        let lease = LeaseToken::generate();
        let inserted = match order.mode {
            // One statement, one commit: the saga, its steps and the first intent.
            CoordinationMode::Orchestrated => {
                let mut conn = self.pool.acquire().await?;
                store::insert_saga(&mut conn, &new, lease, self.engine.lease()).await?
            }
            // The saga and the event that starts the choreography commit together.
            CoordinationMode::Choreographed => {
                let mut tx = self.pool.begin().await?;
                let inserted =
                    store::insert_saga(&mut tx, &new, lease, self.engine.lease()).await?;
                if inserted {
                    let requested = checkout_requested(saga_id, &order, &priced);
                    platform::events::outbox::enqueue(&mut tx, &requested).await?;
                    tx.commit().await?;
                }
                inserted
            }
        };
        if !inserted {
            // A concurrent PlaceOrder with the same key won the insert.
            let existing =
                store::find_by_key(&self.pool, &order.customer_id, &order.idempotency_key)
                    .await?
                    .ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!("saga vanished after a key conflict"))
                    })?;
            return replay(existing, &hash);
        }
        tracing::info!(%saga_id, mode = %order.mode, "checkout started");
        let driver = (order.mode == CoordinationMode::Orchestrated).then(|| {
            let created = Created {
                saga_id,
                request: order.request,
                priced,
                total_minor: total.amount_minor,
                currency: total.currency,
                fault,
                traceparent,
            };
            let saga = Saga::created(created, lease);
            self.engine.spawn(Begin::Held(Box::new(saga)), None)
        });
        Ok(Started { saga_id, driver })
    }

    /// Waits for a started checkout to end, up to `until`.
    async fn wait_for(
        &self,
        started: Started,
        until: Instant,
    ) -> Result<pb::PlaceOrderResponse, ApiError> {
        if let Some(driver) = started.driver {
            let _ = tokio::time::timeout_at(until, driver).await;
        }
        // Orchestrated: usually over by now; if the driver stopped early (lost its lease,
        // database trouble), wait for whoever resumes the saga. Choreographed: the tracker
        // announces each event. Either way, up to the caller's deadline.
        self.wait(started.saga_id, until).await
    }

    /// The checkout once it ends, or as it stands at `until`.
    async fn wait(
        &self,
        saga_id: SagaId,
        until: Instant,
    ) -> Result<pb::PlaceOrderResponse, ApiError> {
        let mut watch = self.read.feed.watch(saga_id);
        loop {
            watch.mark_seen();
            let (row, steps) = self.load(saga_id).await?;
            // A parked checkout will not move before a person resumes it.
            if !row.status.is_moving() || Instant::now() >= until {
                return Ok(pb::PlaceOrderResponse {
                    checkout: Some(to_checkout(row, steps, self.stall_after)),
                });
            }
            // Woken by the change feed: this replica's driver, any replica's tracker, or
            // the feed's poll when another replica drives it.
            tokio::select! {
                () = watch.changed() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn load(&self, saga_id: SagaId) -> Result<(SagaRow, Vec<store::StepRow>), ApiError> {
        store::load(&self.pool, saga_id)
            .await?
            .ok_or_else(|| ApiError::not_found("checkout", saga_id.to_string()))
    }

    async fn get_checkout(
        &self,
        caller: &Caller,
        req: pb::GetCheckoutRequest,
    ) -> Result<pb::GetCheckoutResponse, ApiError> {
        let by = CheckoutRef::try_from(&req)?;
        // Every NOT_FOUND names only what the caller sent: a checkout looked up by its
        // order must not answer with the checkout id (another customer's, say).
        let not_found = || match by {
            CheckoutRef::Checkout(_) => ApiError::not_found("checkout", &req.checkout_id),
            CheckoutRef::Order(_) => ApiError::not_found("checkout of order", &req.order_id),
        };
        let saga_id = match by {
            CheckoutRef::Checkout(id) => id,
            CheckoutRef::Order(order_id) => store::find_by_order(&self.read.pool, order_id)
                .await?
                .ok_or_else(not_found)?,
        };
        let (row, steps) = store::load(&self.read.pool, saga_id)
            .await?
            .filter(|(row, _)| caller.may_see(&row.customer_id))
            .ok_or_else(not_found)?;
        Ok(pb::GetCheckoutResponse {
            checkout: Some(to_checkout(row, steps, self.stall_after)),
        })
    }

    async fn list_checkouts(
        &self,
        caller: &Caller,
        req: pb::ListCheckoutsRequest,
    ) -> Result<pb::ListCheckoutsResponse, ApiError> {
        let mut query = ListQuery::try_from(&req)?;
        query.filter.customer_id = caller.list_filter(query.filter.customer_id.take());
        let sagas = store::list(&self.read.pool, &query.filter, query.page_size + 1).await?;
        let (sagas, next_page_token) =
            page::split(sagas, query.page_size, |(row, _)| row.saga_id.to_string());
        Ok(pb::ListCheckoutsResponse {
            checkouts: sagas
                .into_iter()
                .map(|(row, steps)| to_checkout(row, steps, self.stall_after))
                .collect(),
            next_page_token,
        })
    }

    async fn resume_checkout(
        &self,
        req: pb::ResumeCheckoutRequest,
    ) -> Result<pb::ResumeCheckoutResponse, ApiError> {
        let saga_id = command::resumed(&req)?;
        let Some(claim) =
            store::claim_parked(&self.pool, saga_id, self.engine.lease(), self.retention).await?
        else {
            // Not taken: say why, from the row as it stands.
            let (row, _) = self.load(saga_id).await?;
            if row.status != SagaStatus::NeedsAttention {
                return Err(ApiError::precondition(
                    Reason::CheckoutNotParked,
                    format!("checkout {saga_id} is {}, not NEEDS_ATTENTION", row.status),
                ));
            }
            return Err(ApiError::precondition(
                Reason::CheckoutBeyondRetention,
                format!(
                    "checkout {saga_id} started more than RETENTION ({:?}) ago: the services \
                     no longer hold the keys its compensations need; finish it by hand \
                     (docs/OPERATIONS.md, \"Parked beyond retention\")",
                    self.retention
                ),
            ));
        };
        self.engine
            .resume_parked(claim)
            .await
            .map_err(|error| match error {
                DriveError::Db(db) | DriveError::Write(WriteError::Db(db)) => ApiError::from(db),
                // Another ResumeCheckout claimed it between this one's claim and its first
                // write, and resumed it: for this caller it is no longer parked, as if the
                // other had come first.
                DriveError::Write(WriteError::LeaseLost(_)) => ApiError::precondition(
                    Reason::CheckoutNotParked,
                    format!("checkout {saga_id} was resumed by another call at the same time"),
                ),
                other => ApiError::Internal(other.into()),
            })?;
        let (row, steps) = self.load(saga_id).await?;
        Ok(pb::ResumeCheckoutResponse {
            checkout: Some(to_checkout(row, steps, self.stall_after)),
        })
    }

    async fn watch_checkout(
        &self,
        caller: &Caller,
        permit: StreamPermit,
        req: pb::WatchCheckoutRequest,
    ) -> Result<EventStream, ApiError> {
        let saga_id = command::watched(&req)?;
        // Registered before the first read, so no change after it is missed.
        let mut watch = self.read.feed.watch(saga_id);
        match store::load(&self.read.pool, saga_id).await? {
            Some((row, _)) if caller.may_see(&row.customer_id) => {}
            _ => return Err(ApiError::not_found("checkout", &req.checkout_id)),
        }
        let (tx, rx) = mpsc::channel(32);
        let pool = self.read.pool.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut last = 0;
            loop {
                watch.mark_seen();
                let sent = stream_events(&pool, saga_id, &mut last, &tx).await;
                match sent {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
                // No timer: the change feed wakes it (see `feed`).
                tokio::select! {
                    () = watch.changed() => {}
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

/// A checkout PlaceOrder started (with its driver, when this call started it
/// orchestrated) or found under the key.
#[derive(Debug)]
struct Started {
    saga_id: SagaId,
    driver: Option<tokio::task::JoinHandle<()>>,
}

/// A repeat of a known key: the same checkout, waited for like the first call.
fn replay(existing: SagaRow, hash: &Fingerprint) -> Result<Started, ApiError> {
    if !hash.matches(&existing.request_hash) {
        return Err(ApiError::KeyReused {
            key: existing.idempotency_key,
        });
    }
    Ok(Started {
        saga_id: existing.saga_id,
        driver: None,
    })
}

/// Sends the events after `last`; `Ok(true)` once the saga is over and all were sent.
async fn stream_events(
    pool: &PgPool,
    saga_id: SagaId,
    last: &mut i64,
    tx: &mpsc::Sender<Result<pb::WatchCheckoutResponse, Status>>,
) -> Result<bool, Status> {
    let unavailable = |e: sqlx::Error| Status::from(ApiError::from(e));
    // The saga first, then its events: the write that ends a saga appends its last events
    // in the same statement, so a saga read as ended has all its events visible after.
    let (row, steps) = store::load(pool, saga_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Status::not_found("checkout disappeared"))?;
    let events = store::events_after(pool, saga_id, *last)
        .await
        .map_err(unavailable)?;
    let steps: Vec<pb::Step> = steps.into_iter().map(convert::to_step).collect();
    for event in events {
        *last = event.id;
        if tx
            .send(Ok(convert::to_event(&event, &steps)))
            .await
            .is_err()
        {
            return Ok(true);
        }
    }
    Ok(row.status.is_terminal())
}

/// The event that starts a choreographed checkout: everything the services need, priced
/// by inventory (never the caller's prices).
fn checkout_requested(
    saga_id: SagaId,
    order: &PlaceOrder,
    priced: &inventory::PriceCartResponse,
) -> platform::events::Event {
    use shop_proto::events::v1::{self as events, envelope::Payload};
    let checkout = events::Checkout {
        checkout_id: saga_id.to_string(),
        order_id: String::new(),
        customer_id: order.customer_id.clone(),
        lines: priced
            .lines
            .iter()
            .map(|l| events::Line {
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price.clone(),
                line_total: l.line_total.clone(),
            })
            .collect(),
        total: priced.total.clone(),
        payment_token: order.request.payment_token.clone(),
        shipping_address: order.request.shipping_address.clone(),
    };
    platform::events::Event::new(
        platform::events::roles::ORCHESTRATOR.producer,
        &saga_id.to_string(),
        None,
        Payload::CheckoutRequested(events::CheckoutRequested {
            checkout: Some(checkout),
        }),
    )
}

/// The caller learns why the cart cannot be priced; nothing was recorded.
fn pricing_error(error: BoxError) -> ApiError {
    let Ok(status) = error.downcast::<Status>() else {
        return ApiError::DependencyUnavailable("inventory-svc".into());
    };
    match status.code() {
        tonic::Code::NotFound => {
            let skus = status
                .get_details_resource_info()
                .map(|r| r.resource_name)
                .unwrap_or_default();
            ApiError::not_found("sku", skus)
        }
        tonic::Code::FailedPrecondition if Reason::of(&status) == Some(Reason::MixedCurrencies) => {
            ApiError::precondition(Reason::MixedCurrencies, status.message())
        }
        tonic::Code::InvalidArgument => ApiError::invalid("items", status.message()),
        _ => ApiError::DependencyUnavailable("inventory-svc".into()),
    }
}
