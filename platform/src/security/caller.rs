//! Who is calling the front door, as the bearer token proves: checked by
//! [`BearerCheck`] before the request is decoded, then read by each handler as a typed
//! [`Caller`]. A customer sees and places only their own checkouts, and another
//! customer's checkout is NOT_FOUND to them, never PERMISSION_DENIED, so that checkout ids
//! do not leak; the operator scope sees and operates all. With `--dev-insecure` nothing is
//! checked.

use std::sync::Arc;

use tonic::{Request, Status};

use super::{
    gate::Gate,
    token::{Bearer, Verifier},
};
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
pub struct BearerCheck {
    /// `/package.Service/`; `None` checks nothing.
    prefix: Option<String>,
    /// `None`: `--dev-insecure`, every caller is [`Caller::Unchecked`].
    verifier: Option<Arc<Verifier>>,
}

impl BearerCheck {
    /// Checks calls to `service` (its full name) with `verifier`, or lets every call
    /// through as [`Caller::Unchecked`] when there is none.
    pub fn new(service: &str, verifier: Option<Verifier>) -> Self {
        Self {
            prefix: Some(format!("/{service}/")),
            verifier: verifier.map(Arc::new),
        }
    }
}

impl Gate for BearerCheck {
    fn admit(
        &self,
        path: &str,
        headers: &http::HeaderMap,
        extensions: &mut http::Extensions,
    ) -> Result<(), Status> {
        if !self
            .prefix
            .as_deref()
            .is_some_and(|prefix| path.starts_with(prefix))
        {
            return Ok(());
        }
        let caller = match &self.verifier {
            None => Caller::Unchecked,
            Some(verifier) => match verifier.bearer(headers)? {
                Bearer::Customer(id) => Caller::Customer(id),
                Bearer::Operator(id) => Caller::Operator(id),
            },
        };
        extensions.insert(caller);
        Ok(())
    }
}

impl Caller {
    /// The caller [`BearerCheck`] attached to a request; UNAUTHENTICATED if none did (a
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
