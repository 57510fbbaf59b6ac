//! Traces and metrics of the real stack: a checkout is one trace with spans from all five
//! services (received by an in-test OTLP collector), and every service's Prometheus
//! endpoint counts the traffic it served.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use e2e::{
    Stack, StackOptions, Svc,
    clients::Clients,
    demo,
    metrics::{sample, scrape},
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use shop_proto::checkout::v1 as pb;
use shop_proto::common::v1 as common;
use tonic::Request;

/// `(trace id, service name, span name)` of every span received.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

#[derive(Clone, Default)]
struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let trace: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    received.push((trace, service.clone(), span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn collector() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    let received = collector.0.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, received)
}

fn order(key: &str, token: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        mode: pb::CoordinationMode::Unspecified.into(),
        idempotency_key: key.into(),
        customer_id: "observer".into(),
        items: vec![pb::LineItem {
            sku: "MUG-1".into(),
            quantity: 1,
        }],
        payment_token: token.into(),
        shipping_address: Some(common::Address {
            name: "Ada".into(),
            line1: "1 Road".into(),
            line2: String::new(),
            city: "Lyon".into(),
            postal_code: "69001".into(),
            country: "FR".into(),
        }),
    }
}

#[tokio::test]
async fn one_checkout_is_one_trace_across_five_services_and_metrics_count_it() {
    let (otlp, received) = collector().await;
    let env = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            format!("http://{otlp}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
    ];
    let stack = Stack::start(StackOptions {
        env,
        metrics: true,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let mut clients = Clients::of(&stack);
    demo::seed(&mut clients.inventory).await.unwrap();

    // The caller starts the trace; every hop must continue it.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = Request::new(order("traced", "tok_visa"));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    let placed = clients
        .checkout
        .place_order(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        placed.checkout.unwrap().status(),
        pb::CheckoutStatus::Completed
    );
    let declined = clients
        .checkout
        .place_order(order("declined", "tok_chargeDeclined"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        declined.checkout.unwrap().status(),
        pb::CheckoutStatus::Cancelled
    );

    let expected: BTreeSet<String> = Svc::ALL.iter().map(|s| s.binary().to_owned()).collect();
    let wanted = [
        "shop.checkout.v1.CheckoutService/PlaceOrder",
        "saga",
        "step",
        "shop.payment.v1.PaymentService/Charge",
    ];
    let in_trace = || {
        let received = received.lock().unwrap();
        let spans: Vec<_> = received
            .iter()
            .filter(|(t, _, _)| t == trace)
            .cloned()
            .collect();
        let services: BTreeSet<String> = spans.iter().map(|(_, s, _)| s.clone()).collect();
        let names: BTreeSet<String> = spans.into_iter().map(|(_, _, n)| n).collect();
        (services, names)
    };
    for _ in 0..100 {
        let (services, names) = in_trace();
        if services == expected && wanted.iter().all(|w| names.contains(*w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (services, names) = in_trace();
    assert_eq!(services, expected, "services with spans in trace {trace}");
    for span in wanted {
        assert!(names.contains(span), "no {span} span in {names:?}");
    }

    let orch = scrape(stack.metrics_addr(Svc::Orchestrator).unwrap())
        .await
        .unwrap();
    let place = "method=\"/shop.checkout.v1.CheckoutService/PlaceOrder\"";
    assert_eq!(
        sample(&orch, "rpc_server_requests_total", &[place, "code=\"OK\""]),
        Some(2.0),
        "{orch}"
    );
    assert_eq!(
        sample(&orch, "saga_outcomes_total", &["status=\"COMPLETED\""]),
        Some(1.0),
        "{orch}"
    );
    assert_eq!(
        sample(
            &orch,
            "saga_outcomes_total",
            &["status=\"CANCELLED\"", "reason=\"card_declined\""]
        ),
        Some(1.0),
        "{orch}"
    );
    assert_eq!(
        sample(
            &orch,
            "saga_compensations_total",
            &["step=\"create_order\"", "result=\"succeeded\""]
        ),
        Some(1.0)
    );
    assert!(sample(&orch, "rpc_server_duration_seconds_count", &[place]).is_some_and(|n| n >= 2.0));
    let pay = scrape(stack.metrics_addr(Svc::Payment).unwrap())
        .await
        .unwrap();
    let charge = "method=\"/shop.payment.v1.PaymentService/Charge\"";
    assert_eq!(
        sample(&pay, "rpc_server_requests_total", &[charge, "code=\"OK\""]),
        Some(2.0),
        "{pay}"
    );
    let inventory = scrape(stack.metrics_addr(Svc::Inventory).unwrap())
        .await
        .unwrap();
    assert!(
        sample(&inventory, "db_pool_connections", &["state=\"idle\""]).is_some(),
        "{inventory}"
    );
}
