//! Who is calling the front door, as the bearer token proves: checked by
//! [`BearerLayer`] before the request is decoded, then read by each handler as a typed
//! [`Caller`]. A customer sees and places only their own checkouts, and another
//! customer's checkout is NOT_FOUND to them, never PERMISSION_DENIED, so that checkout ids
//! do not leak; the operator scope sees and operates all. With `--dev-insecure` nothing is
//! checked.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{Either, Ready, ready};
use tonic::{Request, Status, body::Body, metadata::MetadataMap};
use tower::{Layer, Service};

use super::token::{Bearer, Verifier};
use crate::ApiError;

/// The caller of one front-door call, as its token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// `--dev-insecure`: no token checks, every checkout is visible.
    Unchecked,
    Customer(String),
    Operator(String),
}

impl Caller {
    /// Whether the caller may see a checkout of `customer_id`.
    pub fn may_see(&self, customer_id: &str) -> bool {
        match self {
            Caller::Unchecked | Caller::Operator(_) => true,
            Caller::Customer(me) => me == customer_id,
        }
    }

    /// The customer a checkout is placed for: the token's subject for a customer (who
    /// may leave `customer_id` empty, or repeat it, but not name another), as requested
    /// for an operator or in development mode.
    pub fn customer_for(&self, requested: &str) -> Result<String, ApiError> {
        match self {
            Caller::Customer(me) if requested.is_empty() || requested == me => Ok(me.clone()),
            Caller::Customer(me) => Err(ApiError::PermissionDenied(format!(
                "customer_id {requested:?} differs from the token's subject {me:?}: a \
                 customer places checkouts for themselves only"
            ))),
            Caller::Unchecked | Caller::Operator(_) => Ok(requested.to_owned()),
        }
    }

    /// Only the customer filter a caller may list by: a customer sees only their own.
    pub fn list_filter(&self, requested: Option<String>) -> Option<String> {
        match self {
            Caller::Customer(me) => Some(me.clone()),
            Caller::Unchecked | Caller::Operator(_) => requested,
        }
    }

    /// Operator calls (ResumeCheckout).
    pub fn require_operator(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Caller::Unchecked | Caller::Operator(_) => Ok(()),
            Caller::Customer(_) => Err(ApiError::PermissionDenied(format!(
                "{what} needs a token with the operator scope"
            ))),
        }
    }
}

/// Checks the bearer token of every call to one service (the front door) before it is
/// decoded: UNAUTHENTICATED, with the reason, if the token is missing or invalid;
/// otherwise the [`Caller`] rides along as a request extension for the handler. Calls to
/// other services (health, reflection) pass untouched.
#[derive(Debug, Clone, Default)]
pub struct BearerLayer {
    /// `/package.Service/`; `None` checks nothing.
    prefix: Option<String>,
    /// `None`: `--dev-insecure`, every caller is [`Caller::Unchecked`].
    verifier: Option<Arc<Verifier>>,
}

impl BearerLayer {
    /// Checks calls to `service` (its full name) with `verifier`, or lets every call
    /// through as [`Caller::Unchecked`] when there is none.
    pub fn new(service: &str, verifier: Option<Verifier>) -> Self {
        Self {
            prefix: Some(format!("/{service}/")),
            verifier: verifier.map(Arc::new),
        }
    }

    fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        Ok(match &self.verifier {
            None => Caller::Unchecked,
            Some(verifier) => match verifier.bearer(metadata)? {
                Bearer::Customer(id) => Caller::Customer(id),
                Bearer::Operator(id) => Caller::Operator(id),
            },
        })
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerCheck<S>;

    fn layer(&self, inner: S) -> BearerCheck<S> {
        BearerCheck {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`BearerLayer`].
#[derive(Debug, Clone)]
pub struct BearerCheck<S> {
    inner: S,
    layer: BearerLayer,
}

impl<S, B> Service<http::Request<B>> for BearerCheck<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<http::Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let covered = self
            .layer
            .prefix
            .as_deref()
            .is_some_and(|prefix| request.uri().path().starts_with(prefix));
        if !covered {
            return Either::Left(self.inner.call(request));
        }
        let metadata = MetadataMap::from_headers(request.headers().clone());
        match self.layer.caller(&metadata) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Either::Left(self.inner.call(request))
            }
            Err(status) => Either::Right(ready(Ok(status.into_http()))),
        }
    }
}

impl Caller {
    /// The caller [`BearerLayer`] attached to a request; UNAUTHENTICATED if none did (a
    /// service served without the layer).
    pub fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("the caller was not authenticated"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_acts_and_sees_for_themselves_only() {
        let alice = Caller::Customer("alice".into());
        assert_eq!(alice.customer_for("").unwrap(), "alice");
        assert_eq!(alice.customer_for("alice").unwrap(), "alice");
        assert!(matches!(
            alice.customer_for("bob"),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(alice.may_see("alice") && !alice.may_see("bob"));
        assert_eq!(alice.list_filter(Some("bob".into())), Some("alice".into()));
        assert!(alice.require_operator("ResumeCheckout").is_err());
    }

    #[test]
    fn an_operator_sees_and_acts_for_everyone() {
        let ops = Caller::Operator("ops".into());
        assert_eq!(ops.customer_for("bob").unwrap(), "bob");
        assert!(ops.may_see("bob"));
        assert_eq!(ops.list_filter(None), None);
        assert!(ops.require_operator("ResumeCheckout").is_ok());
    }
}
