//! The console (the saga viewer) in a real browser: Debian's Chromium, headless, driven
//! by playwright-core (e2e/browser/), against the console binary and the five real
//! services. Each test starts a stack and a console, then runs one script of
//! e2e/browser/ with node and expects it to exit 0.
//!
//! Needs `node`, the `chromium` binary (CHROMIUM_BIN, else /usr/bin/chromium) and
//! `npm ci --prefix e2e/browser`; scripts/test runs that `npm ci` and .ci/run installs
//! Chromium. A missing one fails the test with how to get it, never skips it.
//! `CONSOLE_SCREENSHOT=docs/console.png` makes the first test save its final page there.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use e2e::{
    Stack, StackOptions,
    clients::Clients,
    console::Console,
    demo,
    scenario::{place, place_until_accepted},
};
use shop_proto::checkout::v1 as pb;

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

#[tokio::test]
async fn a_declined_card_placed_in_the_browser_unwinds_live_on_its_timeline() {
    require_tools();
    let (_stack, _clients, console) = stack_and_console().await;
    run_browser_test("declined.mjs", &console, &[]);
}

#[tokio::test]
async fn the_list_filters_by_customer_and_status_without_javascript() {
    require_tools();
    let (_stack, clients, console) = stack_and_console().await;
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
    run_browser_test(
        "list-filter.mjs",
        &console,
        &[
            ("FILTER_COMPLETED", &completed),
            ("FILTER_CANCELLED", &cancelled),
        ],
    );
}
