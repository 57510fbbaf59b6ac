//! The console's routes in-process, against a shop that is not there: what a page says
//! when the orchestrator is down, bad filters, health and assets. The pages against a
//! real shop, in a real browser, are e2e/tests/console.rs.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use console::{
    routes::{Console, router},
    shop::Shop,
    views::checkout::TraceLinks,
};
use tower::ServiceExt;

/// A console whose orchestrator address refuses connections (port 1 of loopback).
fn console_without_shop() -> Console {
    Console {
        shop: Shop::connect_lazy(
            "http://127.0.0.1:1",
            &platform::security::Security::DevInsecure,
            platform::security::token::AttachToken::none(),
        )
        .unwrap(),
        traces: TraceLinks::default(),
    }
}

async fn get(uri: &str) -> (StatusCode, String, String) {
    let response = router(console_without_shop())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn health_and_assets_need_no_shop() {
    let (status, _, body) = get("/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    let (status, content_type, body) = get("/assets/console.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("text/javascript"),
        "{content_type}"
    );
    assert!(body.contains("EventSource"));
    let (status, content_type, _) = get("/assets/console.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/css"), "{content_type}");
}

#[tokio::test]
async fn a_shop_that_is_down_is_said_so_on_the_page() {
    let (status, content_type, body) = get("/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("role=\"alert\""), "{body}");
    assert!(body.contains("Unavailable"), "{body}");
    let (status, _, body) = get("/checkouts/0190aaaa-0000-7000-8000-000000000001").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn an_unknown_filter_word_is_a_bad_request() {
    let (status, _, body) = get("/?status=%3Cb%3Elost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("`&lt;b&gt;lost`"),
        "the value is escaped: {body}"
    );
}
