//! The demo checkout form: what it offers (the seeded catalog, the test payment tokens,
//! a country the shop cannot ship to) and how a submitted form becomes a PlaceOrder
//! request. The shop validates the request; the console only passes the fields on. The
//! customer is not a field: a checkout is placed for the signed-in person's token
//! subject, so a form cannot place one for somebody else.

use serde::Deserialize;
use shop_proto::{checkout::v1 as pb, common::v1 as common};

/// `(value, label)` of each choice a `<select>` offers.
pub type Choices = &'static [(&'static str, &'static str)];

/// The demo catalog `scripts/run` and compose's seed job load (e2e's `demo::CATALOG`).
/// `CAP-1` has only 3 units: order more to see `out_of_stock`.
pub const SKUS: Choices = &[
    ("MUG-1", "MUG-1: enamel mug, 12.00 EUR"),
    ("TEE-1", "TEE-1: organic T-shirt, 25.00 EUR"),
    ("CAP-1", "CAP-1: baseball cap, 18.00 EUR (3 in stock)"),
];

/// The test tokens of docs/CONTRACT.md.
pub const TOKENS: Choices = &[
    ("tok_visa", "tok_visa: approved"),
    ("tok_mastercard", "tok_mastercard: approved"),
    (
        "tok_chargeDeclined",
        "tok_chargeDeclined: declined (card_declined)",
    ),
    (
        "tok_insufficientFunds",
        "tok_insufficientFunds: declined (insufficient_funds)",
    ),
];

/// A few served countries and `AQ`, which shipping refuses after the charge and the
/// reservation, so both are undone.
pub const COUNTRIES: Choices = &[
    ("FR", "FR: France"),
    ("DE", "DE: Germany"),
    ("GB", "GB: United Kingdom"),
    ("US", "US: United States"),
    ("AQ", "AQ: Antarctica (undeliverable)"),
];

/// The coordination modes, as the form names them.
pub const MODES: Choices = &[
    (
        "orchestrated",
        "orchestrated (the orchestrator calls each service)",
    ),
    (
        "choreographed",
        "choreographed (the services react to events)",
    ),
];

/// How long slow motion holds each of the saga's calls: long enough to watch a step
/// run, well under the orchestrator's 2 s attempt timeout so nothing is retried.
const SLOW_MOTION_MS: u32 = 700;

/// Every call an orchestrated saga makes after pricing the cart, forward and back.
const SAGA_CALLS: &[(&str, &str)] = &[
    ("order-svc", "CreateOrder"),
    ("payment-svc", "Charge"),
    ("inventory-svc", "ReserveStock"),
    ("shipping-svc", "CreateShipment"),
    ("order-svc", "ConfirmOrder"),
    ("shipping-svc", "CancelShipment"),
    ("inventory-svc", "ReleaseStock"),
    ("payment-svc", "Refund"),
    ("order-svc", "CancelOrder"),
];

/// The form as submitted (`POST /checkouts`). Every field is text, so a bad value
/// reaches the shop, which names it in its INVALID_ARGUMENT answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlaceForm {
    /// The session's CSRF token ([`crate::session`]); checked before anything is placed.
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub sku: String,
    #[serde(default)]
    pub quantity: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub mode: String,
    /// Present (`on`) when the slow-motion box is ticked.
    #[serde(default)]
    pub slow: Option<String>,
}

impl PlaceForm {
    /// The form as first shown: an order that will be declined, to watch it unwind.
    pub fn initial() -> Self {
        Self {
            csrf: String::new(),
            sku: "MUG-1".into(),
            quantity: "1".into(),
            token: "tok_chargeDeclined".into(),
            country: "FR".into(),
            mode: "orchestrated".into(),
            slow: None,
        }
    }

    /// Whether slow motion was asked for.
    pub fn slow_motion(&self) -> bool {
        self.slow.is_some()
    }

    /// The PlaceOrder request for `customer` (the token's subject), under a fresh
    /// idempotency key: each submission is a new checkout. A quantity that is not a
    /// number is sent as 0, which the shop refuses by name (`items[0].quantity`).
    pub fn request(&self, customer: &str) -> pb::PlaceOrderRequest {
        let mode = match self.mode.as_str() {
            "choreographed" => pb::CoordinationMode::Choreographed,
            _ => pb::CoordinationMode::Orchestrated,
        };
        pb::PlaceOrderRequest {
            idempotency_key: format!("console-{}", uuid::Uuid::new_v4()),
            customer_id: customer.to_owned(),
            items: vec![pb::LineItem {
                sku: self.sku.trim().to_owned(),
                quantity: self.quantity.trim().parse().unwrap_or(0),
            }],
            payment_token: self.token.trim().to_owned(),
            shipping_address: Some(common::Address {
                name: "Demo Customer".into(),
                line1: "1 Demo Street".into(),
                line2: String::new(),
                city: "Lyon".into(),
                postal_code: "69001".into(),
                country: self.country.trim().to_owned(),
            }),
            mode: mode.into(),
        }
    }

    /// The `x-fault` spec of slow motion when it was asked for: every saga call held
    /// [`SLOW_MOTION_MS`] before it runs, once per call (docs/FAULTS.md). The services
    /// obey it only when started with fault injection on (`scripts/run
    /// --fault-injection`), and only orchestrated sagas forward it.
    pub fn fault(&self) -> Option<String> {
        self.slow_motion().then(|| {
            SAGA_CALLS
                .iter()
                .map(|(svc, method)| {
                    format!("svc={svc},method={method},before_ms={SLOW_MOTION_MS}")
                })
                .collect::<Vec<_>>()
                .join(";")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_one_line_under_a_fresh_key() {
        let form = PlaceForm {
            quantity: " 2 ".into(),
            mode: "choreographed".into(),
            ..PlaceForm::initial()
        };
        let first = form.request("alice");
        assert_eq!(first.customer_id, "alice");
        assert_eq!(first.items[0].quantity, 2);
        assert_eq!(first.payment_token, "tok_chargeDeclined");
        assert_eq!(first.mode, i32::from(pb::CoordinationMode::Choreographed));
        assert_ne!(first.idempotency_key, form.request("alice").idempotency_key);
    }

    #[test]
    fn a_quantity_that_is_no_number_is_left_to_the_shop_to_refuse() {
        let form = PlaceForm {
            quantity: "many".into(),
            ..PlaceForm::initial()
        };
        assert_eq!(form.request("alice").items[0].quantity, 0);
    }

    #[test]
    fn slow_motion_holds_every_saga_call_once() {
        assert_eq!(PlaceForm::initial().fault(), None);
        let slow = PlaceForm {
            slow: Some("on".into()),
            ..PlaceForm::initial()
        };
        let fault = slow.fault().unwrap_or_default();
        assert_eq!(fault.split(';').count(), SAGA_CALLS.len());
        assert!(fault.contains("svc=payment-svc,method=Refund,before_ms=700"));
    }
}
