//! The console's only way into the shop: a client of the orchestrator's front door,
//! `shop.checkout.v1.CheckoutService` and, for operators, the dead letters of every
//! service through `shop.operations.v1.DeadLetterService`, with the deadlines a web page
//! can afford. Every call carries the bearer token of the person signed in ([`Session`]):
//! the console has none of its own, so it can show and do only what that person's token
//! allows, which the orchestrator decides.

use std::time::Duration;

use platform::security::{Principal, Security, connect};
use shop_proto::{
    checkout::v1::{self as pb, checkout_service_client::CheckoutServiceClient},
    events::v1::DeadLetter,
    operations::v1::{
        self as ops, ShopService, dead_letter_service_client::DeadLetterServiceClient,
    },
};
use tonic::{
    Code, Request, Status, Streaming,
    metadata::MetadataValue,
    transport::{Channel, Endpoint},
};

use crate::session::Session;

/// How long a page waits for a read (ListCheckouts, GetCheckout) before it shows an error.
const READ_DEADLINE: Duration = Duration::from_secs(5);
/// How long the demo form lets PlaceOrder wait for the checkout to end. Short on purpose:
/// PlaceOrder returns the checkout as it stands when the deadline nears, and the
/// browser then watches the rest of it live instead of waiting for a blank page.
const PLACE_DEADLINE: Duration = Duration::from_secs(1);
/// The repeat, with the same key, when the first call ran out of time before the
/// checkout was even recorded (pricing the cart was slow).
const PLACE_REPEAT_DEADLINE: Duration = Duration::from_secs(10);
/// How long a resume may take: the claim, then the driver's first moves.
const RESUME_DEADLINE: Duration = Duration::from_secs(10);
/// How long a dead letter's retry or discard may take: the orchestrator relays it to the
/// service, whose consumer handles the event in one transaction (the relay's own limit).
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);

/// A lazily connected client of the front door; cheap to clone (two HTTP/2 connections).
#[derive(Debug, Clone)]
pub struct Shop {
    client: CheckoutServiceClient<Channel>,
    /// The operators' dead letters, on the same connection as `client`.
    dead_letters: DeadLetterServiceClient<Channel>,
    /// WatchCheckout's own connection. A connection carries a bounded number of calls at
    /// once (the shop's MAX_STREAMS_PER_CONNECTION, 256) and a live page holds one for as
    /// long as it is open: on one shared connection, hundreds of open pages left the list
    /// page's calls queued until the proxy gave up (502). Apart, pages queue only behind
    /// pages.
    watches: CheckoutServiceClient<Channel>,
}

impl Shop {
    /// A client of the orchestrator at `url` (`https://host:port`), connecting as
    /// `security` makes the console; connects on first use, so the console starts, and
    /// shows a readable error, while the shop is still down.
    pub fn connect_lazy(url: &str, security: &Security) -> Result<Self, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(url.to_owned())?;
        let channel = |endpoint| connect::channel(endpoint, security, Principal::Orchestrator);
        let calls = channel(endpoint.clone());
        Ok(Self {
            client: CheckoutServiceClient::new(calls.clone()),
            dead_letters: DeadLetterServiceClient::new(calls),
            watches: CheckoutServiceClient::new(channel(endpoint)),
        })
    }

    /// One page of ListCheckouts, as `who` sees it.
    pub async fn list(
        &self,
        who: &Session,
        request: pb::ListCheckoutsRequest,
    ) -> Result<pb::ListCheckoutsResponse, Status> {
        let mut client = self.client.clone();
        Ok(client
            .list_checkouts(as_who(who, request, Some(READ_DEADLINE)))
            .await?
            .into_inner())
    }

    /// GetCheckout by checkout id, as `who` sees it.
    pub async fn get(&self, who: &Session, checkout_id: &str) -> Result<pb::Checkout, Status> {
        let mut client = self.client.clone();
        let request = pb::GetCheckoutRequest {
            checkout_id: checkout_id.to_owned(),
            order_id: String::new(),
        };
        client
            .get_checkout(as_who(who, request, Some(READ_DEADLINE)))
            .await?
            .into_inner()
            .checkout
            .ok_or_else(|| Status::internal("GetCheckout answered without a checkout"))
    }

    /// WatchCheckout: the checkout's events from its start, then live, until it ends.
    /// No deadline: the stream lasts as long as the checkout runs. RESOURCE_EXHAUSTED
    /// when `who` (or everyone) has as many streams open as the shop allows.
    pub async fn watch(
        &self,
        who: &Session,
        checkout_id: &str,
    ) -> Result<Streaming<pb::WatchCheckoutResponse>, Status> {
        let mut client = self.watches.clone();
        let request = pb::WatchCheckoutRequest {
            checkout_id: checkout_id.to_owned(),
        };
        Ok(client
            .watch_checkout(as_who(who, request, None))
            .await?
            .into_inner())
    }

    /// ResumeCheckout as `who` (the shop answers PERMISSION_DENIED unless `who` is an
    /// operator): the parked checkout is claimed and driven again; the answer is the
    /// checkout as the claim left it.
    pub async fn resume(&self, who: &Session, checkout_id: &str) -> Result<pb::Checkout, Status> {
        let mut client = self.client.clone();
        let request = pb::ResumeCheckoutRequest {
            checkout_id: checkout_id.to_owned(),
        };
        client
            .resume_checkout(as_who(who, request, Some(RESUME_DEADLINE)))
            .await?
            .into_inner()
            .checkout
            .ok_or_else(|| Status::internal("ResumeCheckout answered without a checkout"))
    }

    /// One page of `service`'s dead letters, newest first (ListDeadLetters as `who`: the
    /// shop answers PERMISSION_DENIED unless `who` is an operator).
    pub async fn dead_letters(
        &self,
        who: &Session,
        service: ShopService,
        page_size: i32,
        page_token: &str,
    ) -> Result<ops::ListDeadLettersResponse, Status> {
        let mut client = self.dead_letters.clone();
        let request = ops::ListDeadLettersRequest {
            service: service.into(),
            page_size,
            page_token: page_token.to_owned(),
        };
        Ok(client
            .list_dead_letters(as_who(who, request, Some(READ_DEADLINE)))
            .await?
            .into_inner())
    }

    /// RetryDeadLetter as `who`: `service` handles letter `id`'s event once more; the
    /// answer is the letter as the retry left it (RETRIED), or the service's refusal.
    pub async fn retry_dead_letter(
        &self,
        who: &Session,
        service: ShopService,
        id: i64,
    ) -> Result<DeadLetter, Status> {
        let mut client = self.dead_letters.clone();
        let request = ops::RetryDeadLetterRequest {
            service: service.into(),
            id,
        };
        client
            .retry_dead_letter(as_who(who, request, Some(SETTLE_DEADLINE)))
            .await?
            .into_inner()
            .dead_letter
            .ok_or_else(|| Status::internal("RetryDeadLetter answered without a letter"))
    }

    /// DiscardDeadLetter as `who`, with the person's `reason` for the record.
    pub async fn discard_dead_letter(
        &self,
        who: &Session,
        service: ShopService,
        id: i64,
        reason: &str,
    ) -> Result<DeadLetter, Status> {
        let mut client = self.dead_letters.clone();
        let request = ops::DiscardDeadLetterRequest {
            service: service.into(),
            id,
            reason: reason.to_owned(),
        };
        client
            .discard_dead_letter(as_who(who, request, Some(SETTLE_DEADLINE)))
            .await?
            .into_inner()
            .dead_letter
            .ok_or_else(|| Status::internal("DiscardDeadLetter answered without a letter"))
    }

    /// PlaceOrder as `who`, returning as soon as the checkout is recorded and has had a
    /// short while to run. `fault` is sent as `x-fault` metadata when set (the demo's
    /// slow motion; docs/FAULTS.md).
    pub async fn place(
        &self,
        who: &Session,
        request: pb::PlaceOrderRequest,
        fault: Option<&str>,
    ) -> Result<pb::Checkout, Status> {
        match self
            .place_within(who, request.clone(), fault, PLACE_DEADLINE)
            .await
        {
            // Out of time, by the server's clock (DEADLINE_EXCEEDED) or by our tonic
            // client's own timer (CANCELLED "Timeout expired"); maybe nothing was
            // recorded. The same key makes the repeat safe.
            Err(status) if matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled) => {
                self.place_within(who, request, fault, PLACE_REPEAT_DEADLINE)
                    .await
            }
            other => other,
        }
    }

    async fn place_within(
        &self,
        who: &Session,
        request: pb::PlaceOrderRequest,
        fault: Option<&str>,
        deadline: Duration,
    ) -> Result<pb::Checkout, Status> {
        let mut client = self.client.clone();
        let mut request = as_who(who, request, Some(deadline));
        if let Some(fault) = fault {
            let value = MetadataValue::try_from(fault)
                .map_err(|_| Status::invalid_argument("the x-fault spec is not ASCII"))?;
            request.metadata_mut().insert("x-fault", value);
        }
        client
            .place_order(request)
            .await?
            .into_inner()
            .checkout
            .ok_or_else(|| Status::internal("PlaceOrder answered without a checkout"))
    }
}

/// `message` with `who`'s bearer token and, when given, a deadline.
fn as_who<T>(who: &Session, message: T, deadline: Option<Duration>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", who.authorization());
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    request
}
