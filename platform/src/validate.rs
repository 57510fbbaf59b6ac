//! Field checks that collect every violation of a request before answering, so a caller
//! fixes all of them in one round trip. Field paths follow the proto (`items[2].quantity`).
//!
//! The limits live here, once, and every service and the front door check with them, so
//! a checkout the front door accepts is never refused downstream for a limit (the
//! front door checks what it will send: the priced cart's totals and the payment token
//! too). docs/CONTRACT.md and the proto comments state them.

use shop_proto::common::v1::Address;
use tonic_types::FieldViolation;
use uuid::Uuid;

use crate::error::ApiError;

/// Longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 128;
/// Most lines in one order, cart or reservation.
pub const MAX_LINES: usize = 100;
/// Units of one sku in one line.
pub const MAX_QUANTITY: i32 = 1000;
/// Largest amount in minor units (one million in a two-decimal currency): a price, a line
/// total or an order's total.
pub const MAX_AMOUNT_MINOR: i64 = 100_000_000;
/// Smallest price in minor units: nothing is free, so every total can be charged (a
/// charge takes at least one minor unit).
pub const MIN_PRICE_MINOR: i64 = 1;
/// The payment tokens the shop's test gateway knows, in the style of well-known card test
/// tokens. The front door refuses any other, as payment-svc does, so a typo is a bad
/// request rather than a declined card.
pub const PAYMENT_TOKENS: &[&str] = &[
    "tok_visa",
    "tok_mastercard",
    "tok_chargeDeclined",
    "tok_insufficientFunds",
];

/// Violations found so far in one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was found, else every violation as INVALID_ARGUMENT.
    pub fn finish<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }

    /// A string whose length in characters lies within `min..=max`.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min || len > max {
            if min > 0 && value.trim().is_empty() {
                self.add(field, "must not be empty");
            } else {
                self.add(field, format!("must be {min} to {max} characters"));
            }
        } else if min > 0 && value.trim().is_empty() {
            self.add(field, "must not be blank");
        } else if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
    }

    /// An idempotency key: 1..=128 visible characters.
    pub fn idempotency_key(&mut self, field: &str, value: &str) {
        self.text(field, value, 1, MAX_KEY_LEN);
    }

    /// A UUID in its usual text form.
    pub fn uuid(&mut self, field: &str, value: &str) -> Uuid {
        match Uuid::try_parse(value) {
            Ok(id) => id,
            Err(_) => {
                if value.is_empty() {
                    self.add(field, "must not be empty");
                } else {
                    self.add(field, "must be a UUID");
                }
                Uuid::nil()
            }
        }
    }

    /// A stock-keeping unit: 1..=64 of `[A-Za-z0-9._-]`.
    pub fn sku(&mut self, field: &str, value: &str) {
        let ok_chars = value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if value.is_empty() {
            self.add(field, "must not be empty");
        } else if value.len() > 64 || !ok_chars {
            self.add(
                field,
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'",
            );
        }
    }

    /// One of [`PAYMENT_TOKENS`].
    pub fn payment_token(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.add(field, "must not be empty");
        } else if !PAYMENT_TOKENS.contains(&value) {
            self.add(
                field,
                format!(
                    "must be one of the test tokens {}",
                    PAYMENT_TOKENS.join(", ")
                ),
            );
        }
    }

    /// A quantity of one line.
    pub fn quantity(&mut self, field: &str, value: i32) {
        if !(1..=MAX_QUANTITY).contains(&value) {
            self.add(field, format!("must be between 1 and {MAX_QUANTITY}"));
        }
    }

    /// An ISO 4217 code: three upper-case letters.
    pub fn currency(&mut self, field: &str, value: &str) {
        if value.len() != 3 || !value.chars().all(|c| c.is_ascii_uppercase()) {
            self.add(field, "must be an ISO 4217 code such as EUR");
        }
    }

    /// An officially assigned ISO 3166-1 alpha-2 code.
    pub fn country(&mut self, field: &str, value: &str) {
        if !crate::countries::is_assigned(value) {
            self.add(
                field,
                "must be an ISO 3166-1 alpha-2 country code such as FR",
            );
        }
    }

    /// An amount in minor units within `min..=MAX_AMOUNT_MINOR`.
    pub fn amount(&mut self, field: &str, value: i64, min: i64) {
        if !(min..=MAX_AMOUNT_MINOR).contains(&value) {
            self.add(
                field,
                format!("must be between {min} and {MAX_AMOUNT_MINOR}"),
            );
        }
    }

    /// A required money field: `(amount_minor, currency)`, amount within `min..`.
    pub fn money(&mut self, field: &str, money: Option<(i64, &str)>, min: i64) -> (i64, String) {
        let Some((amount_minor, currency)) = money else {
            self.add(field, "is required");
            return (0, String::new());
        };
        self.amount(&format!("{field}.amount_minor"), amount_minor, min);
        self.currency(&format!("{field}.currency"), currency);
        (amount_minor, currency.to_owned())
    }

    /// A required postal address with the limits stated in the protos.
    pub fn address(&mut self, field: &str, address: Option<&Address>) {
        let Some(a) = address else {
            self.add(field, "is required");
            return;
        };
        self.text(&format!("{field}.name"), &a.name, 1, 200);
        self.text(&format!("{field}.line1"), &a.line1, 1, 200);
        self.text(&format!("{field}.line2"), &a.line2, 0, 200);
        self.text(&format!("{field}.city"), &a.city, 1, 200);
        self.text(&format!("{field}.postal_code"), &a.postal_code, 1, 20);
        self.country(&format!("{field}.country"), &a.country);
    }

    /// Between 1 and [`MAX_LINES`] entries.
    pub fn line_count(&mut self, field: &str, count: usize) {
        if count == 0 {
            self.add(field, "must not be empty");
        } else if count > MAX_LINES {
            self.add(field, format!("must have at most {MAX_LINES} entries"));
        }
    }

    /// Each sku once: reports the index of every repeat.
    pub fn unique_skus<'a>(&mut self, field: &str, skus: impl IntoIterator<Item = &'a str>) {
        let mut seen = std::collections::HashSet::new();
        for (i, sku) in skus.into_iter().enumerate() {
            if !sku.is_empty() && !seen.insert(sku) {
                self.add(format!("{field}[{i}].sku"), "appears more than once");
            }
        }
    }

    /// A compensation's target: exactly one of an id (a UUID) or the idempotency key of
    /// the forward call it undoes. Returns the id when that is what was given.
    pub fn target(&mut self, id: (&str, &str), forward_key: (&str, &str)) -> Option<Uuid> {
        self.exactly_one(id, forward_key);
        let by_id = (!id.1.is_empty()).then(|| self.uuid(id.0, id.1));
        if !forward_key.1.is_empty() {
            self.idempotency_key(forward_key.0, forward_key.1);
        }
        by_id
    }

    /// Exactly one of two alternative identifiers.
    pub fn exactly_one(&mut self, first: (&str, &str), second: (&str, &str)) {
        match (first.1.is_empty(), second.1.is_empty()) {
            (false, false) => self.add(second.0, format!("must be empty when {} is set", first.0)),
            (true, true) => self.add(
                first.0,
                format!("either {} or {} is required", first.0, second.0),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Violations) -> Vec<String> {
        v.0.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut v = Violations::default();
        v.sku("sku", "has space");
        v.quantity("quantity", 0);
        v.currency("currency", "eur");
        v.country("country", "FRA");
        v.country("country", "XX");
        v.amount("amount_minor", -1, 0);
        v.idempotency_key("idempotency_key", "");
        v.uuid("order_id", "nope");
        assert_eq!(
            fields(v),
            [
                "sku",
                "quantity",
                "currency",
                "country",
                "country",
                "amount_minor",
                "idempotency_key",
                "order_id"
            ]
        );
    }

    #[test]
    fn good_values_pass() {
        let mut v = Violations::default();
        v.sku("sku", "MUG-1.blue_x");
        v.quantity("quantity", 1000);
        v.currency("currency", "EUR");
        v.country("country", "FR");
        v.amount("amount_minor", MAX_AMOUNT_MINOR, 0);
        v.text("name", "Ünïcode mug", 1, 200);
        assert!(v.is_empty());
    }

    #[test]
    fn repeated_skus_point_at_the_repeat() {
        let mut v = Violations::default();
        v.unique_skus("items", ["A", "B", "A"]);
        assert_eq!(fields(v), ["items[2].sku"]);
    }

    #[test]
    fn blank_and_overlong_text_is_rejected() {
        let mut v = Violations::default();
        v.text("name", "   ", 1, 10);
        v.text("city", &"x".repeat(11), 1, 10);
        v.text("line2", "", 0, 10);
        assert_eq!(fields(v), ["name", "city"]);
    }
}
