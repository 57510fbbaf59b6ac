//! `shop.operations.v1.DeadLetterService`: the dead letters of every service, for a
//! person the front door proves an operator by bearer token, as the console's operators
//! see them.
//!
//! Each service keeps its own letters behind `shop.events.v1.EventAdminService`, which
//! the access table opens to certificates, not tokens. The console acts as a person with
//! that person's token and holds no operator certificate; so this service checks the
//! token (the operator scope, as ResumeCheckout does), validates the request, and relays
//! it to the named service with the orchestrator's own certificate, which the access
//! table grants EventAdminService for this alone (`platform::security::grants` argues
//! why). Whoever asked is logged with the letter, since the service records the relaying
//! principal. What the service answers (its NOT_FOUND, its FAILED_PRECONDITION reasons,
//! UNAVAILABLE) is passed on unchanged. The orchestrator's own letters, its tracker's,
//! are served in process by the same `DeadLetters` its EventAdminService runs.

use std::{
    convert::Infallible,
    future::Future,
    task::{Context, Poll},
    time::Duration,
};

use platform::{
    ApiError,
    events::admin::{DeadLetters, MAX_DISCARD_REASON_CHARS, ON_BEHALF_OF},
    page,
    security::{
        Peer, Principal, Security,
        caller::{BearerCheck, Caller},
        connect,
        gate::{GateLayer, Gated},
        principal::Identity,
        token::Verifier,
    },
    validate::Violations,
};
use shop_proto::{
    events::v1::{self as events, event_admin_service_client::EventAdminServiceClient},
    operations::v1::{
        self as pb,
        dead_letter_service_server::{DeadLetterService, DeadLetterServiceServer},
    },
};
use sqlx::PgPool;
use tonic::{
    Request, Response, Status,
    body::Body,
    codegen::http,
    metadata::MetadataValue,
    server::NamedService,
    transport::{Endpoint, Error as TransportError},
};
use tower::{Layer, Service, ServiceExt, util::BoxCloneSyncService};

use crate::{api::metadata::wait_budget, config::Settings};

/// The longest a relayed call may take when the caller's deadline is longer or unset. A
/// retry runs one consumer handler in one transaction, normally in milliseconds; a
/// service that takes longer is in trouble, and the operator is better told so.
const RELAY_DEADLINE: Duration = Duration::from_secs(10);

/// A service's EventAdminService, over the network or in process. A transport failure
/// is a `Status` already (UNAVAILABLE for a service that cannot be reached), which the
/// client passes on as it is.
type Admin =
    EventAdminServiceClient<BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Status>>;

/// A service that parks events, as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// This binary's tracker.
    Orchestrator,
    Order,
    Payment,
    Inventory,
    Shipping,
}

impl Target {
    /// The service a request names, or what is wrong with the field.
    fn of(wire: i32) -> Result<Self, &'static str> {
        match pb::ShopService::try_from(wire) {
            Ok(pb::ShopService::Orchestrator) => Ok(Self::Orchestrator),
            Ok(pb::ShopService::Order) => Ok(Self::Order),
            Ok(pb::ShopService::Payment) => Ok(Self::Payment),
            Ok(pb::ShopService::Inventory) => Ok(Self::Inventory),
            Ok(pb::ShopService::Shipping) => Ok(Self::Shipping),
            Ok(pb::ShopService::Unspecified) | Err(_) => Err(
                "must name a service: SHOP_SERVICE_ORCHESTRATOR, SHOP_SERVICE_ORDER, \
                 SHOP_SERVICE_PAYMENT, SHOP_SERVICE_INVENTORY or SHOP_SERVICE_SHIPPING",
            ),
        }
    }

    /// The service's principal: its name in logs and the name its certificate must carry.
    fn principal(self) -> Principal {
        match self {
            Self::Orchestrator => Principal::Orchestrator,
            Self::Order => Principal::OrderSvc,
            Self::Payment => Principal::PaymentSvc,
            Self::Inventory => Principal::InventorySvc,
            Self::Shipping => Principal::ShippingSvc,
        }
    }
}

/// Checks `service`, collecting its violation with the others of the request; `Err`
/// holds every violation once all fields are checked.
fn checked<T>(
    mut v: Violations,
    service: Result<Target, &'static str>,
    request: T,
) -> Result<(Target, T), ApiError> {
    if let Err(why) = service {
        v.add("service", why);
    }
    v.finish(())?;
    let target = service.map_err(|why| ApiError::invalid("service", why))?;
    Ok((target, request))
}

fn letter_id(v: &mut Violations, id: i64) {
    if id <= 0 {
        v.add("id", "must be a dead letter's id (positive)");
    }
}

/// Serves `DeadLetterService` by relaying to each service's EventAdminService.
#[derive(Debug, Clone)]
pub struct Operations {
    /// The tracker's letters, in process; `None` when this orchestrator runs without a
    /// broker (then it has no consumer, and serves no EventAdminService either).
    own: Option<Admin>,
    order: Admin,
    payment: Admin,
    inventory: Admin,
    shipping: Admin,
}

impl Operations {
    /// Relays to the services at `settings`' URLs, connecting lazily (the orchestrator
    /// starts while a service is down; a call to it is UNAVAILABLE until it is back), on
    /// connections of their own: an operator's call neither queues behind the saga's calls
    /// nor counts in their breakers and retry budgets, and is not retried. `own` is this
    /// binary's database, when it runs the tracker.
    pub fn new(
        settings: &Settings,
        security: &Security,
        own: Option<PgPool>,
    ) -> Result<Self, TransportError> {
        let remote = |url: &str, server: Principal| -> Result<Admin, TransportError> {
            let endpoint =
                Endpoint::from_shared(url.to_owned())?.connect_timeout(Duration::from_secs(1));
            let channel = connect::channel(endpoint, security, server);
            Ok(EventAdminServiceClient::new(BoxCloneSyncService::new(
                channel.map_err(|error| Status::from_error(Box::new(error))),
            )))
        };
        // In process, the call carries this binary's identity as a remote call would
        // carry its certificate's, so the letter records who settled it the same way.
        let identity = match security {
            Security::DevInsecure => Identity::Plaintext,
            Security::Tls(_) => Identity::Known(Principal::Orchestrator),
        };
        let local = |pool: PgPool| -> Admin {
            let server = DeadLetters::server(pool, crate::tracker::participant())
                .map_request(move |mut request: http::Request<Body>| {
                    request.extensions_mut().insert(Peer {
                        remote_addr: None,
                        identity,
                    });
                    request
                })
                .map_err(|never: Infallible| -> Status { match never {} });
            EventAdminServiceClient::new(BoxCloneSyncService::new(server))
        };
        Ok(Self {
            own: own.map(local),
            order: remote(&settings.order_url, Principal::OrderSvc)?,
            payment: remote(&settings.payment_url, Principal::PaymentSvc)?,
            inventory: remote(&settings.inventory_url, Principal::InventorySvc)?,
            shipping: remote(&settings.shipping_url, Principal::ShippingSvc)?,
        })
    }

    fn admin(&self, target: Target) -> Result<Admin, Status> {
        match target {
            Target::Orchestrator => self.own.clone().ok_or_else(|| {
                Status::unimplemented(
                    "this orchestrator runs no event consumer (no broker configured), so it \
                     keeps no dead letters",
                )
            }),
            Target::Order => Ok(self.order.clone()),
            Target::Payment => Ok(self.payment.clone()),
            Target::Inventory => Ok(self.inventory.clone()),
            Target::Shipping => Ok(self.shipping.clone()),
        }
    }

    /// `call` on `target`'s EventAdminService with `message`, within `deadline`; the
    /// service's answer as it gave it.
    async fn relay<Req, Resp, Call, Answer>(
        &self,
        target: Target,
        (operator, deadline): (&str, Duration),
        message: Req,
        call: Call,
    ) -> Result<Resp, Status>
    where
        Call: FnOnce(Admin, Request<Req>) -> Answer,
        Answer: Future<Output = Result<Response<Resp>, Status>>,
    {
        let admin = self.admin(target)?;
        let mut request = Request::new(message);
        request.set_timeout(deadline);
        // The service records the person with the settlement (it believes this only from
        // the orchestrator's certificate); a name metadata cannot carry is left out, and
        // the letter then names the orchestrator alone, as the log still names the person.
        if let Ok(person) = MetadataValue::try_from(operator) {
            request.metadata_mut().insert(ON_BEHALF_OF, person);
        }
        match tokio::time::timeout(deadline, call(admin, request)).await {
            Ok(answer) => answer.map(Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "{} did not answer within {deadline:?}",
                target.principal()
            ))),
        }
    }
}

/// The operator a call is made for, or why not (UNAUTHENTICATED when no token was
/// checked, PERMISSION_DENIED for a customer's), and how long the relay may take.
fn operator_of<T>(request: &Request<T>, rpc: &str) -> Result<(String, Duration), Status> {
    let caller = Caller::of(request)?;
    caller.require_operator(rpc).map_err(Status::from)?;
    let who = match caller {
        Caller::Operator(subject) | Caller::Customer(subject) => subject,
        Caller::Unchecked => "an unchecked caller (--dev-insecure)".to_owned(),
    };
    Ok((who, wait_budget(request.metadata(), RELAY_DEADLINE)))
}

/// Logs what a relayed settlement came to, naming the person: the service records only
/// the principal that called it, the orchestrator.
fn audit<T>(action: &str, operator: &str, target: Target, id: i64, outcome: &Result<T, Status>) {
    let service = target.principal().name();
    match outcome {
        Ok(_) => tracing::warn!(operator, service, id, "{action} for an operator"),
        Err(refused) => tracing::warn!(
            operator,
            service,
            id,
            code = ?refused.code(),
            error = refused.message(),
            "{action} refused"
        ),
    }
}

#[tonic::async_trait]
impl DeadLetterService for Operations {
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let (operator, deadline) = operator_of(&request, "ListDeadLetters")?;
        let req = request.into_inner();
        let mut v = Violations::default();
        page::page_size(&mut v, "page_size", req.page_size);
        let (target, message) = checked(
            v,
            Target::of(req.service),
            events::ListDeadLettersRequest {
                page_size: req.page_size,
                page_token: req.page_token,
            },
        )?;
        let listed = self
            .relay(
                target,
                (&operator, deadline),
                message,
                |mut admin, request| async move { admin.list_dead_letters(request).await },
            )
            .await?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: listed.dead_letters,
            next_page_token: listed.next_page_token,
        }))
    }

    async fn retry_dead_letter(
        &self,
        request: Request<pb::RetryDeadLetterRequest>,
    ) -> Result<Response<pb::RetryDeadLetterResponse>, Status> {
        let (operator, deadline) = operator_of(&request, "RetryDeadLetter")?;
        let req = request.into_inner();
        let mut v = Violations::default();
        letter_id(&mut v, req.id);
        let (target, message) = checked(
            v,
            Target::of(req.service),
            events::RetryDeadLetterRequest { id: req.id },
        )?;
        let retried = self
            .relay(
                target,
                (&operator, deadline),
                message,
                |mut admin, request| async move { admin.retry_dead_letter(request).await },
            )
            .await;
        audit("dead letter retried", &operator, target, req.id, &retried);
        Ok(Response::new(pb::RetryDeadLetterResponse {
            dead_letter: retried?.dead_letter,
        }))
    }

    async fn discard_dead_letter(
        &self,
        request: Request<pb::DiscardDeadLetterRequest>,
    ) -> Result<Response<pb::DiscardDeadLetterResponse>, Status> {
        let (operator, deadline) = operator_of(&request, "DiscardDeadLetter")?;
        let req = request.into_inner();
        let mut v = Violations::default();
        letter_id(&mut v, req.id);
        // The service's own rule, checked here too so that a bad request never leaves.
        let why = req.reason.trim();
        if why.is_empty() {
            v.add("reason", "is required: say why the event is not handled");
        } else if why.chars().count() > MAX_DISCARD_REASON_CHARS {
            v.add(
                "reason",
                format!("must be at most {MAX_DISCARD_REASON_CHARS} characters"),
            );
        }
        let (target, message) = checked(
            v,
            Target::of(req.service),
            events::DiscardDeadLetterRequest {
                id: req.id,
                reason: req.reason,
            },
        )?;
        let discarded = self
            .relay(
                target,
                (&operator, deadline),
                message,
                |mut admin, request| async move { admin.discard_dead_letter(request).await },
            )
            .await;
        audit(
            "dead letter discarded",
            &operator,
            target,
            req.id,
            &discarded,
        );
        Ok(Response::new(pb::DiscardDeadLetterResponse {
            dead_letter: discarded?.dead_letter,
        }))
    }
}

/// `DeadLetterService` behind its own bearer-token check. The server's gate checks the
/// token of `CheckoutService` alone, so this one puts the same [`BearerCheck`] in front
/// of this service: a call without a valid token is UNAUTHENTICATED before its request is
/// read, and the handler finds the [`Caller`] the token proved.
#[derive(Debug, Clone)]
pub struct TokenChecked(Checked);

type Checked = Gated<DeadLetterServiceServer<Operations>, BearerCheck>;

impl Service<http::Request<Body>> for TokenChecked {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = <Checked as Service<http::Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Checked as Service<http::Request<Body>>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.0.call(request)
    }
}

impl NamedService for TokenChecked {
    const NAME: &'static str = <DeadLetterServiceServer<Operations> as NamedService>::NAME;
}

/// The service to add to the orchestrator's server: [`Operations`] behind its token
/// check, with the front door's token key (none with `--dev-insecure`, where every caller
/// is unchecked). `own` is this binary's database when it runs the tracker.
pub fn server(
    settings: &Settings,
    security: &Security,
    own: Option<PgPool>,
) -> anyhow::Result<TokenChecked> {
    let verifier = match security {
        Security::DevInsecure => None,
        Security::Tls(_) => Some(Verifier::from_args(&settings.tokens)?),
    };
    let server = DeadLetterServiceServer::new(Operations::new(settings, security, own)?)
        .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES);
    let check = BearerCheck::new(
        <DeadLetterServiceServer<Operations> as NamedService>::NAME,
        verifier,
    );
    Ok(TokenChecked(GateLayer(check).layer(server)))
}

#[cfg(test)]
mod tests;
