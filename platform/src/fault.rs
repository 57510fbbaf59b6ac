//! Fault injection: a tower layer that, only when a service runs with
//! `--fault-injection`, obeys the `x-fault` request metadata. With faults disabled the
//! metadata is ignored and the layer is a pass-through.
//!
//! Format (docs/FAULTS.md): one or more specs separated by `;`, each a comma-separated
//! list of `name=value`:
//!
//! ```text
//! x-fault: svc=payment-svc,method=Charge,code=unavailable,times=2
//! x-fault: svc=inventory-svc,method=ReserveStock,after_ms=1500
//! ```
//!
//! - `svc` (required): the binary the spec targets (`payment-svc`, `orchestrator`, ...);
//!   other services ignore it, so a caller can forward the header unchanged.
//! - `method` (required): the RPC name, for example `Charge`.
//! - exactly one action: `code=<grpc code>` fails the call without running it,
//!   `before_ms=N` delays before handling, `after_ms=N` handles the call and then holds
//!   the response back (the work is done but the caller may time out: a late success).
//! - `times=N` (default 1): act on the first N calls per idempotency key, which the
//!   caller sends as `idempotency-key` metadata (calls without it share one count).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures::future::{BoxFuture, Either};
use tonic::{Code, Status};
use tower::{Layer, Service};

/// Metadata key carrying fault specs.
pub const FAULT_HEADER: &str = "x-fault";
/// Metadata key carrying the idempotency key of the call, for per-key counting.
pub const KEY_HEADER: &str = "idempotency-key";

/// Counts kept per (method, spec, key); cleared when it grows past this many entries.
const MAX_TRACKED: usize = 100_000;

/// What a matching spec does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Fail(Code),
    DelayBefore(Duration),
    DelayAfter(Duration),
}

/// One parsed fault spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub service: String,
    pub method: String,
    pub action: Action,
    pub times: u32,
}

/// Parses an `x-fault` value into its specs.
pub fn parse(value: &str) -> Result<Vec<FaultSpec>, String> {
    value
        .split(';')
        .filter(|spec| !spec.trim().is_empty())
        .map(parse_spec)
        .collect()
}

fn parse_spec(spec: &str) -> Result<FaultSpec, String> {
    let (mut service, mut method, mut action, mut times) = (None, None, None, 1);
    for pair in spec.split(',') {
        let (name, value) = pair
            .split_once('=')
            .map(|(n, v)| (n.trim(), v.trim()))
            .ok_or_else(|| format!("`{pair}` is not name=value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{name}: `{value}` is not a number"))
        };
        let previous = match name {
            "svc" => service.replace(value.to_owned()).map(|_| ()),
            "method" => method.replace(value.to_owned()).map(|_| ()),
            "code" => action.replace(Action::Fail(parse_code(value)?)).map(|_| ()),
            "before_ms" => action
                .replace(Action::DelayBefore(Duration::from_millis(number()?)))
                .map(|_| ()),
            "after_ms" => action
                .replace(Action::DelayAfter(Duration::from_millis(number()?)))
                .map(|_| ()),
            "times" => {
                times = u32::try_from(number()?).map_err(|_| "times is too large".to_owned())?;
                None
            }
            other => return Err(format!("unknown fault setting `{other}`")),
        };
        if previous.is_some() {
            return Err(format!(
                "`{name}` given twice, or more than one action, in `{spec}`"
            ));
        }
    }
    Ok(FaultSpec {
        service: service.ok_or("svc is required")?,
        method: method.ok_or("method is required")?,
        action: action.ok_or("one of code, before_ms, after_ms is required")?,
        times,
    })
}

fn parse_code(name: &str) -> Result<Code, String> {
    let code = match name.to_ascii_uppercase().as_str() {
        "CANCELLED" => Code::Cancelled,
        "UNKNOWN" => Code::Unknown,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
        "ABORTED" => Code::Aborted,
        "INTERNAL" => Code::Internal,
        "UNAVAILABLE" => Code::Unavailable,
        "DATA_LOSS" => Code::DataLoss,
        "FAILED_PRECONDITION" => Code::FailedPrecondition,
        _ => return Err(format!("`{name}` is not an injectable gRPC code")),
    };
    Ok(code)
}

/// The layer: pass-through unless built with [`FaultLayer::enabled`].
#[derive(Debug, Clone)]
pub struct FaultLayer {
    state: Option<Arc<State>>,
}

#[derive(Debug)]
struct State {
    service: &'static str,
    seen: Mutex<HashMap<String, u32>>,
}

impl FaultLayer {
    /// Obeys `x-fault` specs addressed to `service` when `enabled`.
    pub fn new(service: &'static str, enabled: bool) -> Self {
        let state = enabled.then(|| {
            Arc::new(State {
                service,
                seen: Mutex::default(),
            })
        });
        Self { state }
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service the layer wraps around a gRPC server.
#[derive(Debug, Clone)]
pub struct FaultService<S> {
    inner: S,
    state: Option<Arc<State>>,
}

impl State {
    /// The actions to apply to this call, counting it against each matching spec.
    fn actions<B>(&self, req: &http::Request<B>) -> Result<Vec<Action>, String> {
        let path = req.uri().path();
        let key = req
            .headers()
            .get(KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut actions = Vec::new();
        for value in req.headers().get_all(FAULT_HEADER) {
            let value = value
                .to_str()
                .map_err(|_| "x-fault is not ASCII".to_owned())?;
            for spec in parse(value)? {
                let targets_me = spec.service == self.service
                    && path.rsplit('/').next() == Some(spec.method.as_str());
                if !targets_me {
                    continue;
                }
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                if seen.len() >= MAX_TRACKED {
                    seen.clear();
                }
                let count = seen.entry(format!("{path}|{spec:?}|{key}")).or_insert(0);
                *count += 1;
                if *count <= spec.times {
                    actions.push(spec.action);
                }
            }
        }
        Ok(actions)
    }
}

impl<S, B> Service<http::Request<B>> for FaultService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Some(state) = &self.state else {
            return Either::Left(self.inner.call(req));
        };
        let actions = match state.actions(&req) {
            Ok(actions) if actions.is_empty() => return Either::Left(self.inner.call(req)),
            Ok(actions) => actions,
            Err(problem) => {
                let status = Status::invalid_argument(format!("bad x-fault metadata: {problem}"));
                return Either::Right(Box::pin(async move { Ok(status.into_http()) }));
            }
        };
        // Take the service that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            let mut hold_back = Duration::ZERO;
            for action in &actions {
                match *action {
                    Action::Fail(code) => {
                        tracing::info!(?code, "fault injected: failing the call");
                        return Ok(Status::new(code, "injected fault").into_http());
                    }
                    Action::DelayBefore(delay) => {
                        tracing::info!(?delay, "fault injected: delaying before handling");
                        tokio::time::sleep(delay).await;
                    }
                    Action::DelayAfter(delay) => hold_back += delay,
                }
            }
            let response = inner.call(req).await;
            if !hold_back.is_zero() {
                tracing::info!(delay = ?hold_back, "fault injected: holding the response back");
                tokio::time::sleep(hold_back).await;
            }
            response
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let specs = parse(
            "svc=payment-svc,method=Charge,code=unavailable,times=2; \
             svc=inventory-svc,method=ReserveStock,after_ms=1500",
        );
        assert_eq!(
            specs,
            Ok(vec![
                FaultSpec {
                    service: "payment-svc".into(),
                    method: "Charge".into(),
                    action: Action::Fail(Code::Unavailable),
                    times: 2,
                },
                FaultSpec {
                    service: "inventory-svc".into(),
                    method: "ReserveStock".into(),
                    action: Action::DelayAfter(Duration::from_millis(1500)),
                    times: 1,
                },
            ])
        );
    }

    #[test]
    fn malformed_specs_are_refused() {
        assert!(parse("svc=a,method=B").is_err(), "no action");
        assert!(
            parse("svc=a,method=B,code=ok").is_err(),
            "OK is not a fault"
        );
        assert!(
            parse("svc=a,method=B,code=unavailable,after_ms=3").is_err(),
            "two actions"
        );
        assert!(parse("svc=a,method=B,before_ms=soon").is_err());
        assert!(parse("method=B,code=internal").is_err(), "no svc");
        assert!(parse("svc=a,method=B,colour=red,code=internal").is_err());
    }

    fn request(fault: &str, key: &str) -> http::Request<()> {
        http::Request::builder()
            .uri("http://x/shop.payment.v1.PaymentService/Charge")
            .header(FAULT_HEADER, fault)
            .header(KEY_HEADER, key)
            .body(())
            .unwrap_or_default()
    }

    #[test]
    fn acts_the_first_n_times_per_key_and_only_on_its_target() {
        let state = State {
            service: "payment-svc",
            seen: Mutex::default(),
        };
        let spec = "svc=payment-svc,method=Charge,code=unavailable,times=2";
        let fail = Ok(vec![Action::Fail(Code::Unavailable)]);
        assert_eq!(state.actions(&request(spec, "k1")), fail);
        assert_eq!(state.actions(&request(spec, "k1")), fail);
        assert_eq!(state.actions(&request(spec, "k1")), Ok(vec![]));
        assert_eq!(state.actions(&request(spec, "k2")), fail, "counted per key");
        let other = "svc=order-svc,method=Charge,code=unavailable";
        assert_eq!(state.actions(&request(other, "k3")), Ok(vec![]));
        let other_method = "svc=payment-svc,method=Refund,code=unavailable";
        assert_eq!(state.actions(&request(other_method, "k3")), Ok(vec![]));
    }
}
