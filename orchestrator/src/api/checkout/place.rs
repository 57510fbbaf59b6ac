//! PlaceOrder: validate, price, record the saga (and, choreographed, the event that starts
//! it) in one commit, start its driver, and wait for the end within the caller's deadline.

use platform::{ApiError, fingerprint::Fingerprint, reason::Reason};
use prost::Message;
use shop_proto::{checkout::v1 as pb, inventory::v1 as inventory};
use tokio::time::Instant;
use tonic::{Status, metadata::MetadataMap};
use tonic_types::StatusExt;
use tower::BoxError;

use super::CheckoutApi;
use crate::{
    api::{command::PlaceOrder, convert::to_checkout, metadata::header},
    downstream::resilience::{Call, send},
    driver::loaded::{Begin, Created, Saga},
    ids::{LeaseToken, SagaId},
    saga::CoordinationMode,
    store::{self, NewSaga, SagaRow},
};

impl CheckoutApi {
    /// Validates, prices and records a new checkout and starts it, or finds the one a
    /// repeat of the key names.
    pub(super) async fn start(
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
    pub(super) async fn wait_for(
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
    pub(super) async fn wait(
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
}

/// A checkout PlaceOrder started (with its driver, when this call started it
/// orchestrated) or found under the key.
#[derive(Debug)]
pub(super) struct Started {
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
