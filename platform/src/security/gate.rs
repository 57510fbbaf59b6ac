//! A check of every call before its request is read: the peer's right to call the RPC
//! ([`super::access::AccessCheck`]), the front door's bearer token
//! ([`super::caller::BearerCheck`]). A refused call is answered at once with the check's
//! status, never decoded; an admitted one may carry what the check learned (the caller)
//! as a request extension.

use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// What a [`GateLayer`] asks of each call.
pub trait Gate: Clone {
    /// Admits the call to `path`, or says why not; may add to its `extensions`.
    fn admit(
        &self,
        path: &str,
        headers: &http::HeaderMap,
        extensions: &mut http::Extensions,
    ) -> Result<(), Status>;
}

/// Puts a [`Gate`] in front of a service.
#[derive(Debug, Clone, Default)]
pub struct GateLayer<G>(pub G);

impl<S, G: Gate> Layer<S> for GateLayer<G> {
    type Service = Gated<S, G>;

    fn layer(&self, inner: S) -> Gated<S, G> {
        Gated {
            inner,
            gate: self.0.clone(),
        }
    }
}

/// See [`GateLayer`].
#[derive(Debug, Clone)]
pub struct Gated<S, G> {
    inner: S,
    gate: G,
}

impl<S, G, B> Service<http::Request<B>> for Gated<S, G>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    G: Gate,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<http::Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        match self
            .gate
            .admit(parts.uri.path(), &parts.headers, &mut parts.extensions)
        {
            Ok(()) => Either::Left(self.inner.call(http::Request::from_parts(parts, body))),
            Err(status) => Either::Right(ready(Ok(status.into_http()))),
        }
    }
}
