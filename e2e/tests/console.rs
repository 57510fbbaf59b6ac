//! The console (the saga viewer) in a real browser: Debian's Chromium, headless, driven
//! by playwright-core (e2e/browser/), against the console binary and the five real
//! services. Each test starts a stack and a console, then runs one script of
//! e2e/browser/ with node and expects it to exit 0. Every script signs in first, with a
//! token of the stack's: the console acts as the person signed in.
//!
//! One test needs no browser: it speaks plain HTTP to the console
//! ([`e2e::console::http`]) to check, byte by byte, what a visitor without a session
//! gets, the cookie's attributes, the security headers, and that a cross-origin or
//! CSRF-less POST is refused with 403 and places nothing.
//!
//! Needs `node`, the `chromium` binary (CHROMIUM_BIN, else /usr/bin/chromium) and
//! `npm ci --prefix e2e/browser`; scripts/test runs that `npm ci` and .ci/run installs
//! Chromium. A missing one fails the test with how to get it, never skips it.
//! `CONSOLE_SCREENSHOT=docs/console.png` makes the first test save its final page there.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

mod poison;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use e2e::{
    Stack, StackOptions, Svc,
    clients::Clients,
    console::{Console, HttpAnswer, http, sign_in_token},
    demo,
    scenario::{get_checkout, place, place_until_accepted},
};
use platform::security::token::{DEFAULT_ISSUER, Signer};
use poison::{
    GARBAGE_SUBJECT, admin, letters, park_payment_captured, parked_on, publish_garbage, restore,
};
use shop_proto::{checkout::v1 as pb, events::v1::DeadLetterState};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Fails, saying how to install it, when a tool the browser tests need is missing.
fn require_tools() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not installed: the console's browser tests need it (Debian: apt-get install nodejs npm)"
    );
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: the console's browser tests drive it (Debian: apt-get install chromium, or set CHROMIUM_BIN)"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run npm ci --prefix e2e/browser (scripts/test does)"
    );
}

/// A stack that obeys slow motion (fault injection on), the demo catalog, a console.
async fn stack_and_console() -> (Stack, Clients, Console) {
    let stack = Stack::start(StackOptions {
        fault_injection: true,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let mut clients = Clients::of(&stack);
    demo::seed(&mut clients.inventory).await.unwrap();
    let console = Console::start(&stack, false).await.unwrap();
    (stack, clients, console)
}

/// Runs `node e2e/browser/<script>` against the console and fails with its output
/// unless it exits 0.
fn run_browser_test(script: &str, console: &Console, env: &[(&str, &str)]) {
    let mut command = Command::new("node");
    command
        .arg(script)
        .current_dir(browser_dir())
        .env("CONSOLE_URL", console.url());
    for (name, value) in env {
        command.env(name, value);
    }
    if let Ok(path) = std::env::var("CONSOLE_SCREENSHOT") {
        // Relative to the repository, as a person running the test would write it.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        command.env("CONSOLE_SCREENSHOT", root.join(path));
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "node {script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// Places a completed checkout for `customer` through the front door, with their own
/// token, and returns its id.
async fn placed_by(stack: &Stack, customer: &str) -> String {
    let clients = Clients::of_as(
        stack,
        stack.security(),
        stack.token(customer, false).unwrap(),
    );
    let mut message = place(
        &format!("{customer}-{}", uuid::Uuid::new_v4()),
        "tok_visa",
        "FR",
        &[("MUG-1", 1)],
    );
    message.customer_id = customer.to_owned();
    let placed = place_until_accepted(&clients, message, None).await;
    assert_eq!(placed.status(), pb::CheckoutStatus::Completed, "{placed:?}");
    placed.checkout_id
}

/// A well-formed token for `subject` that the shop refuses: signed with a key it does not
/// know.
fn forged_token(stack: &Stack, subject: &str) -> String {
    let secret = stack.log_dir.join("forged-secret");
    std::fs::write(&secret, "not-the-shops-secret-not-the-shops-secret\n").unwrap();
    Signer::from_secret_file(&secret, DEFAULT_ISSUER)
        .unwrap()
        .sign(subject, true, std::time::Duration::from_secs(3600))
        .unwrap()
}

/// How many checkouts the shop holds, as its operator sees them.
async fn checkout_count(clients: &Clients) -> usize {
    let mut client = clients.checkout.clone();
    let mut count = 0;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_checkouts(pb::ListCheckoutsRequest {
                page_size: 100,
                page_token: page_token.clone(),
                ..pb::ListCheckoutsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        count += page.checkouts.len();
        if page.next_page_token.is_empty() {
            return count;
        }
        page_token = page.next_page_token;
    }
}

/// `name=value` of the cookie called `name` that `answer` sets, and the whole
/// `Set-Cookie` line.
fn set_cookie(answer: &HttpAnswer, name: &str) -> (String, String) {
    let line = answer
        .all("set-cookie")
        .into_iter()
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {answer:?}"))
        .to_owned();
    let pair = line.split(';').next().unwrap().trim().to_owned();
    (pair, line)
}

/// The value of the hidden `csrf` field of the first form of `html`.
fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn assert_security_headers(answer: &HttpAnswer, what: &str) {
    let csp = answer.header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{what}: CSP {csp:?}");
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(answer.header("x-frame-options"), "DENY", "{what}");
    assert_eq!(answer.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(answer.header("referrer-policy"), "same-origin", "{what}");
}

/// Over plain HTTP, no browser: a visitor without a session gets no checkout data; the
/// sign-in sets an `HttpOnly`, `SameSite=Strict`, `Path=/` cookie; an operator's session
/// shows every customer's checkouts; a POST from another origin, or without the CSRF
/// token, or with neither Origin nor Referer, is refused with 403 and places nothing,
/// while the same POST from the console's own page places a checkout.
#[tokio::test]
async fn without_a_session_nothing_shows_and_foreign_or_csrf_less_posts_are_refused() {
    let (stack, clients, console) = stack_and_console().await;
    let alice = placed_by(&stack, "alice").await;
    let bob = placed_by(&stack, "bob").await;
    let addr = console.addr();
    let origin = console.url();

    // No session: sent to sign in, no data, with the security headers.
    for path in [
        "/".to_owned(),
        "/?customer=alice".to_owned(),
        format!("/checkouts/{alice}"),
    ] {
        let answer = http(addr, "GET", &path, &[], "").await.unwrap();
        assert_eq!(answer.status, 303, "{path}: {answer:?}");
        assert_eq!(answer.header("location"), "/sign-in", "{path}");
        assert!(
            !answer.body.contains(&alice) && !answer.body.contains(&bob),
            "{path}: {}",
            answer.body
        );
        assert_security_headers(&answer, &path);
    }
    let answer = http(addr, "GET", &format!("/checkouts/{alice}/events"), &[], "")
        .await
        .unwrap();
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(!answer.body.contains(&alice));

    // Signing in: the form's nonce cookie and CSRF token, then the token itself.
    let page = http(addr, "GET", "/sign-in", &[], "").await.unwrap();
    assert_eq!(page.status, 200);
    assert_security_headers(&page, "/sign-in");
    assert!(!page.body.contains(&alice) && !page.body.contains(&bob));
    let (nonce, _) = set_cookie(&page, "console_sign_in");
    let sign_in_csrf = csrf_field(&page.body);
    let operator = sign_in_token(&stack, "operator", true).unwrap();
    let sign_in = |token: String, csrf: String| {
        let nonce = nonce.clone();
        let origin = origin.clone();
        async move {
            http(
                addr,
                "POST",
                "/sign-in",
                &[("Origin", &origin), ("Cookie", &nonce)],
                &format!("csrf={csrf}&token={token}"),
            )
            .await
            .unwrap()
        }
    };
    let refused = sign_in(operator.clone(), String::new()).await;
    assert_eq!(refused.status, 403, "sign-in without its CSRF token");
    let refused = sign_in(forged_token(&stack, "operator"), sign_in_csrf.clone()).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(refused.body.contains("refused"), "{}", refused.body);
    assert!(
        refused
            .all("set-cookie")
            .iter()
            .all(|c| !c.starts_with("console_session="))
    );
    let signed_in = sign_in(operator.clone(), sign_in_csrf).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    assert_eq!(signed_in.header("location"), "/");
    let (session, line) = set_cookie(&signed_in, "console_session");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "served over plain HTTP: {line}");

    // The operator sees every customer's checkouts.
    let home = http(addr, "GET", "/", &[("Cookie", &session)], "")
        .await
        .unwrap();
    assert_eq!(home.status, 200, "{home:?}");
    assert_security_headers(&home, "/ signed in");
    assert!(home.body.contains(&alice) && home.body.contains(&bob));
    let csrf = csrf_field(&home.body);

    // State-changing requests the console must refuse, with no effect.
    let before = checkout_count(&clients).await;
    let form = |csrf: &str| {
        format!("csrf={csrf}&sku=MUG-1&quantity=1&token=tok_visa&country=FR&mode=orchestrated")
    };
    for (headers, body, why) in [
        (
            vec![
                ("Cookie", session.as_str()),
                ("Origin", "https://evil.example"),
            ],
            form(&csrf),
            "a foreign Origin, with the session and its CSRF token",
        ),
        (
            vec![
                ("Cookie", session.as_str()),
                ("Referer", "https://evil.example/win"),
            ],
            form(&csrf),
            "a foreign Referer and no Origin",
        ),
        (
            vec![("Cookie", session.as_str())],
            form(&csrf),
            "neither Origin nor Referer",
        ),
        (
            vec![("Cookie", session.as_str()), ("Origin", origin.as_str())],
            "sku=MUG-1&quantity=1&token=tok_visa&country=FR".to_owned(),
            "no CSRF token",
        ),
        (
            vec![("Cookie", session.as_str()), ("Origin", origin.as_str())],
            form(&"0".repeat(64)),
            "a wrong CSRF token",
        ),
    ] {
        let answer = http(addr, "POST", "/checkouts", &headers, &body)
            .await
            .unwrap();
        assert_eq!(answer.status, 403, "{why}: {answer:?}");
        assert_security_headers(&answer, why);
    }
    let answer = http(
        addr,
        "POST",
        "/sign-out",
        &[("Cookie", &session), ("Origin", "https://evil.example")],
        &format!("csrf={csrf}"),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 403, "a cross-origin sign-out");
    assert_eq!(
        checkout_count(&clients).await,
        before,
        "a refused POST placed a checkout"
    );

    // The same POST from the console's own page places one (by Origin, and by Referer
    // when a browser sends no Origin), for the signed-in person.
    for own in [
        ("Origin", origin.clone()),
        ("Referer", format!("{origin}/")),
    ] {
        let answer = http(
            addr,
            "POST",
            "/checkouts",
            &[("Cookie", &session), (own.0, &own.1)],
            &form(&csrf),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 303, "{answer:?}");
        assert!(answer.header("location").starts_with("/checkouts/"));
    }
    assert_eq!(checkout_count(&clients).await, before + 2);

    // Signing out clears the cookie.
    let answer = http(
        addr,
        "POST",
        "/sign-out",
        &[("Cookie", &session), ("Origin", &origin)],
        &format!("csrf={csrf}"),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 303);
    let (cleared, line) = set_cookie(&answer, "console_session");
    assert_eq!(cleared, "console_session=");
    assert!(line.contains("Max-Age=0"), "{line}");
}

/// In the browser: sign-in, a customer's view (only their own checkouts), an operator's
/// (everyone's), sign-out, and a page of another origin that can neither place a
/// checkout through the console nor frame it.
#[tokio::test]
async fn in_the_browser_each_person_sees_what_their_token_allows() {
    require_tools();
    let (stack, _clients, console) = stack_and_console().await;
    let alice = placed_by(&stack, "alice").await;
    let bob = placed_by(&stack, "bob").await;
    run_browser_test(
        "sign-in.mjs",
        &console,
        &[
            (
                "ALICE_TOKEN",
                &sign_in_token(&stack, "alice", false).unwrap(),
            ),
            (
                "OPERATOR_TOKEN",
                &sign_in_token(&stack, "operator", true).unwrap(),
            ),
            ("FORGED_TOKEN", &forged_token(&stack, "operator")),
            ("ALICE_CHECKOUT", &alice),
            ("BOB_CHECKOUT", &bob),
        ],
    );
}

#[tokio::test]
async fn a_declined_card_placed_in_the_browser_unwinds_live_on_its_timeline() {
    require_tools();
    let (stack, _clients, console) = stack_and_console().await;
    let customer = format!(
        "browser-declined-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let token = sign_in_token(&stack, &customer, false).unwrap();
    run_browser_test(
        "declined.mjs",
        &console,
        &[("CUSTOMER", &customer), ("CUSTOMER_TOKEN", &token)],
    );
}

#[tokio::test]
async fn the_list_filters_by_customer_and_status_without_javascript() {
    require_tools();
    let (stack, clients, console) = stack_and_console().await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let completed = format!("filter-completed-{}", &suffix[..8]);
    let cancelled = format!("filter-cancelled-{}", &suffix[..8]);
    for (customer, token, status) in [
        (&completed, "tok_visa", pb::CheckoutStatus::Completed),
        (
            &cancelled,
            "tok_chargeDeclined",
            pb::CheckoutStatus::Cancelled,
        ),
    ] {
        let mut message = place(&format!("{customer}-key"), token, "FR", &[("MUG-1", 1)]);
        message.customer_id = customer.clone();
        let placed = place_until_accepted(&clients, message, None).await;
        assert_eq!(placed.status(), status, "{placed:?}");
    }
    let operator = sign_in_token(&stack, "operator", true).unwrap();
    run_browser_test(
        "list-filter.mjs",
        &console,
        &[
            ("FILTER_COMPLETED", &completed),
            ("FILTER_CANCELLED", &cancelled),
            ("OPERATOR_TOKEN", &operator),
        ],
    );
}

/// An operator resumes a parked checkout through the console (list, page, confirmation,
/// outcome); its customer sees it but cannot resume it. The checkout parks because
/// shipping refuses Antarctica and payment-svc refuses the refund once.
#[tokio::test]
async fn an_operator_resumes_a_parked_checkout_from_its_page_after_confirming() {
    require_tools();
    let (stack, clients, console) = stack_and_console().await;
    let customer = format!(
        "browser-parked-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut message = place(
        &format!("{customer}-key"),
        "tok_visa",
        "AQ",
        &[("MUG-1", 1)],
    );
    message.customer_id = customer.clone();
    let placed = place_until_accepted(
        &clients,
        message,
        Some("svc=payment-svc,method=Refund,code=failed_precondition,times=1"),
    )
    .await;
    let mut client = clients.checkout.clone();
    let mut status = placed.status();
    for _ in 0..200 {
        if status == pb::CheckoutStatus::NeedsAttention {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = client
            .get_checkout(pb::GetCheckoutRequest {
                checkout_id: placed.checkout_id.clone(),
                order_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .checkout
            .unwrap()
            .status();
    }
    assert_eq!(status, pb::CheckoutStatus::NeedsAttention, "{placed:?}");
    run_browser_test(
        "resume.mjs",
        &console,
        &[
            ("PARKED", &placed.checkout_id),
            (
                "OPERATOR_TOKEN",
                &sign_in_token(&stack, "operator", true).unwrap(),
            ),
            (
                "CUSTOMER_TOKEN",
                &sign_in_token(&stack, &customer, false).unwrap(),
            ),
        ],
    );
}

/// An operator settles dead letters through the console, with JavaScript off: the list
/// of every service's letters, Retry… and Discard… each through a confirmation page, the
/// outcome, and a refusal in words; a customer gets none of it. The letters are made for
/// real: inventory-svc parks a PaymentCaptured whose product was taken away (restored
/// before the browser retries it), and payment-svc and the orchestrator's tracker park a
/// message that is no event.
#[tokio::test]
async fn an_operator_retries_and_discards_dead_letters_after_confirming() {
    require_tools();
    let (mut stack, mut clients, console) = stack_and_console().await;
    restore(&mut clients, "LAMP", 5).await;
    let (placed, to_retry) = park_payment_captured(&mut stack, &clients, "LAMP").await;
    publish_garbage(&stack).await;
    let to_discard = parked_on(&mut admin(&stack, Svc::Payment), GARBAGE_SUBJECT).await;
    let unreadable = parked_on(&mut admin(&stack, Svc::Orchestrator), GARBAGE_SUBJECT).await;
    // The cause fixed, as an operator would before retrying.
    restore(&mut clients, "LAMP", 5).await;
    run_browser_test(
        "dead-letters.mjs",
        &console,
        &[
            ("RETRY_LETTER", &to_retry.id.to_string()),
            ("DISCARD_LETTER", &to_discard.id.to_string()),
            ("UNREADABLE_LETTER", &unreadable.id.to_string()),
            ("PARKED_CHECKOUT", &placed.checkout_id),
            (
                "OPERATOR_TOKEN",
                &sign_in_token(&stack, "operator", true).unwrap(),
            ),
            (
                "CUSTOMER_TOKEN",
                &sign_in_token(&stack, "alice", false).unwrap(),
            ),
        ],
    );
    // What the browser did, as the shop records it.
    let retried = &letters(&mut admin(&stack, Svc::Inventory)).await[0];
    assert_eq!(retried.state(), DeadLetterState::Retried, "{retried:?}");
    let discarded = &letters(&mut admin(&stack, Svc::Payment)).await[0];
    assert_eq!(
        discarded.state(),
        DeadLetterState::Discarded,
        "{discarded:?}"
    );
    assert!(
        discarded.settle_note.contains("discarded in the browser"),
        "{discarded:?}"
    );
    let refused = &letters(&mut admin(&stack, Svc::Orchestrator)).await[0];
    assert_eq!(refused.state(), DeadLetterState::Parked, "{refused:?}");
    let ended = get_checkout(&mut clients, &placed.checkout_id).await;
    assert_eq!(ended.status(), pb::CheckoutStatus::Completed, "{ended:?}");
}
