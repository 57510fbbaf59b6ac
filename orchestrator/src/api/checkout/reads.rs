//! GetCheckout, ListCheckouts and WatchCheckout: reads on their own pool, woken by the
//! change feed rather than by polling each saga.

use platform::{ApiError, page, security::caller::Caller};
use shop_proto::checkout::v1 as pb;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{CheckoutApi, EventStream};
use crate::{
    api::{
        command::{self, CheckoutRef, ListQuery},
        convert::{self, to_checkout},
        streams::StreamPermit,
    },
    ids::SagaId,
    store::{self, SagaRow},
};

impl CheckoutApi {
    pub(super) async fn load(
        &self,
        saga_id: SagaId,
    ) -> Result<(SagaRow, Vec<store::StepRow>), ApiError> {
        store::load(&self.pool, saga_id)
            .await?
            .ok_or_else(|| ApiError::not_found("checkout", saga_id.to_string()))
    }

    pub(super) async fn get_checkout(
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

    pub(super) async fn list_checkouts(
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

    pub(super) async fn watch_checkout(
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
