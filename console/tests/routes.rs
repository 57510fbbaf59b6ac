//! The console's routes in-process, against a shop that is not there: who gets past the
//! sign-in, the Origin and CSRF checks, the operators' pages, the security headers, what
//! a page says when the orchestrator is down, bad filters, health and assets. The pages against a real shop,
//! in a real browser, are e2e/tests/console.rs.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    body::{Body, to_bytes},
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use console::{
    routes::{Console, router},
    session::csrf_of,
    shop::Shop,
    site::{CONTENT_SECURITY_POLICY, Site},
    views::checkout::TraceLinks,
};
use jsonwebtoken::{EncodingKey, Header, encode};
use platform::security::token::Claims;
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";

/// A console whose orchestrator address refuses connections (port 1 of loopback).
fn console_without_shop(site: Site) -> Console {
    Console {
        shop: Shop::connect_lazy(
            "http://127.0.0.1:1",
            &platform::security::Security::DevInsecure,
        )
        .unwrap(),
        traces: TraceLinks::default(),
        site,
    }
}

/// A well-formed token for `subject`, valid an hour. Its signature is nobody's: the
/// console does not check it (the shop would).
fn token(subject: &str) -> String {
    token_with(subject, None)
}

/// [`token`] with the operator scope.
fn operator_token(subject: &str) -> String {
    token_with(subject, Some("operator"))
}

fn token_with(subject: &str, scope: Option<&str>) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = Claims {
        sub: subject.into(),
        iss: "shop".into(),
        exp,
        scope: scope.map(str::to_owned),
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap(),
    )
    .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn send_to(site: Site, request: Request<Body>) -> Answer {
    let response = router(console_without_shop(site))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(uri: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(uri).header(header::HOST, HOST);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send_to(Site::default(), request.body(Body::empty()).unwrap()).await
}

async fn post(uri: &str, headers: &[(header::HeaderName, &str)], body: &str) -> Answer {
    let mut request = Request::post(uri).header(header::HOST, HOST);
    if !headers.iter().any(|(name, _)| name == header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    send_to(
        Site::default(),
        request.body(Body::from(body.to_owned())).unwrap(),
    )
    .await
}

fn session_cookie(token: &str) -> String {
    format!("console_session={token}")
}

#[tokio::test]
async fn health_and_assets_need_no_session_and_no_shop() {
    let answer = get("/healthz", None).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let answer = get("/assets/console.js", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header(header::CONTENT_TYPE)
            .starts_with("text/javascript"),
        "{}",
        answer.header(header::CONTENT_TYPE)
    );
    assert!(answer.body.contains("EventSource"));
    let answer = get("/assets/console.css", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.header(header::CONTENT_TYPE).starts_with("text/css"));
}

#[tokio::test]
async fn a_visitor_without_a_session_is_sent_to_sign_in_and_sees_nothing() {
    for path in [
        "/",
        "/?status=completed",
        "/checkouts/0190aaaa-0000-7000-8000-000000000001",
    ] {
        for cookie in [None, Some("console_session=not-a-token")] {
            let answer = get(path, cookie).await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(answer.header(header::LOCATION), "/sign-in", "{path}");
            assert!(answer.body.is_empty(), "{path}: {}", answer.body);
            // A cookie that holds no usable token is cleared on the way.
            assert_eq!(
                answer.header(header::SET_COOKIE).contains("Max-Age=0"),
                cookie.is_some(),
                "{path}"
            );
        }
    }
    let answer = get(
        "/checkouts/0190aaaa-0000-7000-8000-000000000001/events",
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = get("/sign-in", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("name=\"token\""), "{}", answer.body);
    assert!(!answer.body.contains("Sign out"));
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let alice = session_cookie(&token("alice"));
    for answer in [
        get("/", None).await,
        get("/", Some(&alice)).await,
        get("/sign-in", None).await,
        get("/assets/console.js", None).await,
        get("/no-such-page", None).await,
        post(
            "/checkouts",
            &[(header::ORIGIN, "https://evil.example")],
            "",
        )
        .await,
    ] {
        assert_eq!(
            answer.header(header::CONTENT_SECURITY_POLICY),
            CONTENT_SECURITY_POLICY
        );
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self'"));
        assert_eq!(answer.header(header::X_FRAME_OPTIONS), "DENY");
        assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(answer.header(header::REFERRER_POLICY), "same-origin");
        assert!(!answer.header(header::CACHE_CONTROL).is_empty());
    }
}

#[tokio::test]
async fn a_shop_that_is_down_is_said_so_on_the_page() {
    let alice = session_cookie(&token("alice"));
    let answer = get("/", Some(&alice)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert!(answer.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert!(answer.body.contains("role=\"alert\""), "{}", answer.body);
    assert!(answer.body.contains("Unavailable"), "{}", answer.body);
    let answer = get(
        "/checkouts/0190aaaa-0000-7000-8000-000000000001",
        Some(&alice),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn an_unknown_filter_word_is_a_bad_request() {
    let alice = session_cookie(&token("alice"));
    let answer = get("/?status=%3Cb%3Elost", Some(&alice)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("`&lt;b&gt;lost`"),
        "the value is escaped: {}",
        answer.body
    );
}

#[tokio::test]
async fn a_post_from_another_origin_or_without_the_csrf_token_is_refused() {
    let token = token("alice");
    let cookie = session_cookie(&token);
    let csrf = csrf_of(&token);
    let form = format!("csrf={csrf}&sku=MUG-1&quantity=1&token=tok_visa&country=FR");
    for (headers, why) in [
        (
            vec![
                (header::COOKIE, cookie.as_str()),
                (header::ORIGIN, "https://evil.example"),
            ],
            "a foreign Origin",
        ),
        (
            vec![
                (header::COOKIE, cookie.as_str()),
                (header::ORIGIN, "http://127.0.0.1:9999"),
            ],
            "another port of the same host",
        ),
        (
            vec![
                (header::COOKIE, cookie.as_str()),
                (header::REFERER, "https://evil.example/page"),
            ],
            "a foreign Referer",
        ),
        (
            vec![(header::COOKIE, cookie.as_str())],
            "no Origin, no Referer",
        ),
        (
            vec![(header::COOKIE, cookie.as_str()), (header::ORIGIN, "null")],
            "Origin: null",
        ),
    ] {
        let answer = post("/checkouts", &headers, &form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{why}");
    }
    for (body, why) in [
        ("sku=MUG-1&quantity=1".to_owned(), "no CSRF token"),
        (
            format!("csrf={}&sku=MUG-1", csrf_of("another")),
            "another session's",
        ),
    ] {
        let answer = post(
            "/checkouts",
            &[(header::COOKIE, &cookie), (header::ORIGIN, ORIGIN)],
            &body,
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{why}");
    }
    let answer = post(
        "/checkouts",
        &[
            (header::COOKIE, &cookie),
            (header::ORIGIN, ORIGIN),
            (header::CONTENT_TYPE, "text/plain"),
        ],
        &form,
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::FORBIDDEN,
        "a body that is no form"
    );
    // The same request from the console's own page gets through the checks to the shop
    // (which is down here), by Origin or, without one, by Referer.
    for own in [
        (header::ORIGIN, ORIGIN),
        (header::REFERER, "http://127.0.0.1:8080/"),
    ] {
        let answer = post("/checkouts", &[(header::COOKIE, &cookie), own], &form).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.body
        );
    }
    // Without a session: nothing to act as; sent to sign in.
    let answer = post("/checkouts", &[(header::ORIGIN, ORIGIN)], &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_checks_its_csrf_token_and_the_token_then_asks_the_shop() {
    let page = get("/sign-in", None).await;
    let set = page.header(header::SET_COOKIE);
    assert!(set.starts_with("console_sign_in="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let nonce = set
        .trim_start_matches("console_sign_in=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = csrf_of(&nonce);
    assert!(page.body.contains(&csrf), "the form carries its CSRF token");
    let nonce_cookie = format!("console_sign_in={nonce}");
    let sign_in = |body: String, cookie: Option<String>| async move {
        let mut headers = vec![(header::ORIGIN, ORIGIN)];
        if let Some(cookie) = &cookie {
            headers.push((header::COOKIE, cookie.as_str()));
        }
        post("/sign-in", &headers, &body).await
    };
    let alice = token("alice");
    let answer = sign_in(format!("token={alice}"), Some(nonce_cookie.clone())).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "no CSRF token");
    let answer = sign_in(format!("csrf={csrf}&token={alice}"), None).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "no nonce cookie");
    let answer = sign_in(
        format!("csrf={csrf}&token=hello"),
        Some(nonce_cookie.clone()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("not a JWT"), "{}", answer.body);
    assert!(
        answer
            .header(header::SET_COOKIE)
            .contains("console_sign_in=")
    );
    assert!(
        !answer
            .header(header::SET_COOKIE)
            .contains("console_session")
    );
    // A well-formed token is checked with the shop, which is down: not signed in.
    let answer = sign_in(format!("csrf={csrf}&token={alice}"), Some(nonce_cookie)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert!(
        !answer
            .header(header::SET_COOKIE)
            .contains("console_session")
    );
    assert!(
        !answer.body.contains(&alice),
        "the token is never shown back"
    );
}

#[tokio::test]
async fn sign_out_wants_the_csrf_token_and_clears_the_cookie() {
    let token = token("alice");
    let cookie = session_cookie(&token);
    let answer = post(
        "/sign-out",
        &[(header::COOKIE, &cookie), (header::ORIGIN, ORIGIN)],
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = post(
        "/sign-out",
        &[(header::COOKIE, &cookie), (header::ORIGIN, ORIGIN)],
        &format!("csrf={}", csrf_of(&token)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header(header::LOCATION),
        "/sign-in?notice=signed-out"
    );
    assert!(
        answer
            .header(header::SET_COOKIE)
            .starts_with("console_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        "{}",
        answer.header(header::SET_COOKIE)
    );
}

#[tokio::test]
async fn behind_https_the_cookies_are_secure_and_only_the_public_origin_may_post() {
    let site = Site::new(Some("https://console.example")).unwrap();
    let request = |method: Method, origin: &str| {
        Request::builder()
            .method(method)
            .uri("/sign-out")
            .header(header::HOST, "10.1.2.3:8080")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let answer = send_to(site.clone(), request(Method::POST, "http://10.1.2.3:8080")).await;
    assert_eq!(
        answer.status,
        StatusCode::FORBIDDEN,
        "the Host is not the origin"
    );
    let answer = send_to(
        site.clone(),
        request(Method::POST, "https://console.example"),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "no session: to sign in"
    );
    let page = send_to(
        site,
        Request::get("/sign-in")
            .header(header::HOST, "10.1.2.3:8080")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let set = page.header(header::SET_COOKIE);
    assert!(set.starts_with("__Host-console_sign_in="), "{set}");
    assert!(set.ends_with("; Secure"), "{set}");
}

#[tokio::test]
async fn the_dead_letters_are_an_operators_and_their_actions_want_the_csrf_token() {
    let pages = [
        "/dead-letters",
        "/dead-letters/payment/7/retry",
        "/dead-letters/payment/7/discard",
    ];
    // Nobody signed in: sent to sign in. A customer: refused before the shop is asked
    // (it is down here, which would be a 503).
    let alice = session_cookie(&token("alice"));
    for path in pages {
        let answer = get(path, None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.header(header::LOCATION), "/sign-in", "{path}");
        let answer = get(path, Some(&alice)).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
    }

    // An operator: the page shows, each service saying it could not be listed.
    let ops_token = operator_token("ops");
    let ops = session_cookie(&ops_token);
    let answer = get("/dead-letters", Some(&ops)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    for service in [
        "order-svc",
        "payment-svc",
        "inventory-svc",
        "shipping-svc",
        "orchestrator",
    ] {
        assert!(
            answer
                .body
                .contains(&format!("could not list {service}'s dead letters")),
            "{service}: {}",
            answer.body
        );
    }
    assert!(answer.body.contains("id=\"nav-dead-letters\""));
    let answer = get("/dead-letters?service=%3Cbilling%3E", Some(&ops)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("`&lt;billing&gt;`"), "{}", answer.body);
    for path in [
        "/dead-letters/billing/7/retry",
        "/dead-letters/payment/seven/retry",
        "/dead-letters/payment/0/discard",
    ] {
        assert_eq!(
            get(path, Some(&ops)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // Retry and discard: the Origin and CSRF checks first, then the shop (down here:
    // said so, in words).
    let csrf = csrf_of(&ops_token);
    for (path, form) in [
        ("/dead-letters/payment/7/retry", format!("csrf={csrf}")),
        (
            "/dead-letters/payment/7/discard",
            format!("csrf={csrf}&reason=garbage"),
        ),
    ] {
        let foreign = post(
            path,
            &[
                (header::COOKIE, &ops),
                (header::ORIGIN, "https://evil.example"),
            ],
            &form,
        )
        .await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{path}");
        let csrf_less = post(
            path,
            &[(header::COOKIE, &ops), (header::ORIGIN, ORIGIN)],
            "reason=garbage",
        )
        .await;
        assert_eq!(csrf_less.status, StatusCode::FORBIDDEN, "{path}");
        let answer = post(
            path,
            &[(header::COOKIE, &ops), (header::ORIGIN, ORIGIN)],
            &form,
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("could not be reached"),
            "{}",
            answer.body
        );
    }
}
