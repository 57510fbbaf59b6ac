//! `shop.checkout.v1.CheckoutService`: the front door. Validates, prices the cart,
//! records the saga and waits for it within the caller's deadline.
//!
//! The handlers, one module per concern: `place` (PlaceOrder), `reads` (GetCheckout,
//! ListCheckouts, WatchCheckout, on the read pool), `resume` (ResumeCheckout).

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use platform::{
    ApiError,
    error::{Reply, reply},
    security::caller::Caller,
};
use shop_proto::{
    checkout::v1::{self as pb, checkout_service_server::CheckoutService},
    inventory::v1 as inventory,
};
use sqlx::PgPool;
use tokio::time::Instant;
use tonic::{Request, Status};
use tracing::Instrument;

use crate::{
    api::{metadata::wait_budget, streams::Streams},
    driver::engine::Engine,
    feed::Feed,
};

/// The CheckoutService implementation.
#[derive(Debug, Clone)]
pub struct CheckoutApi {
    /// The drivers' pool: PlaceOrder and ResumeCheckout, which start or wait for them.
    pool: PgPool,
    read: ReadSide,
    engine: Arc<Engine>,
    price_cart: crate::downstream::resilience::StepService<
        inventory::PriceCartRequest,
        inventory::PriceCartResponse,
    >,
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
        clients: &crate::downstream::clients::Clients,
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

mod place;
mod reads;
mod resume;
