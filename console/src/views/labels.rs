//! Words for the shop's enums, as the pages show them and as the list filter takes them.

use shop_proto::{
    checkout::v1::{CheckoutStatus, CoordinationMode, StepStatus},
    events::v1::DeadLetterState,
    operations::v1::ShopService,
    reason,
};

/// The statuses the list can be filtered by: `(query value, status)`.
pub const STATUS_FILTERS: &[(&str, CheckoutStatus)] = &[
    ("running", CheckoutStatus::Running),
    ("compensating", CheckoutStatus::Compensating),
    ("completed", CheckoutStatus::Completed),
    ("cancelled", CheckoutStatus::Cancelled),
    ("needs-attention", CheckoutStatus::NeedsAttention),
];

/// The modes the list can be filtered by: `(query value, mode)`.
pub const MODE_FILTERS: &[(&str, CoordinationMode)] = &[
    ("orchestrated", CoordinationMode::Orchestrated),
    ("choreographed", CoordinationMode::Choreographed),
];

/// `running`, `completed`, …: a checkout status as one lower-case word (also its CSS
/// class). An unknown number reads `unknown`.
pub fn checkout_status(status: i32) -> &'static str {
    match CheckoutStatus::try_from(status) {
        Ok(CheckoutStatus::Running) => "running",
        Ok(CheckoutStatus::Compensating) => "compensating",
        Ok(CheckoutStatus::Completed) => "completed",
        Ok(CheckoutStatus::Cancelled) => "cancelled",
        Ok(CheckoutStatus::NeedsAttention) => "needs-attention",
        Ok(CheckoutStatus::Unspecified) | Err(_) => "unknown",
    }
}

/// Whether the checkout has ended: nothing more will happen to it.
pub fn is_final(status: i32) -> bool {
    matches!(
        CheckoutStatus::try_from(status),
        Ok(CheckoutStatus::Completed | CheckoutStatus::Cancelled)
    )
}

/// A step status as one lower-case word (also its CSS class).
pub fn step_status(status: i32) -> &'static str {
    match StepStatus::try_from(status) {
        Ok(StepStatus::Pending) => "pending",
        Ok(StepStatus::Running) => "running",
        Ok(StepStatus::Succeeded) => "succeeded",
        Ok(StepStatus::Failed) => "failed",
        Ok(StepStatus::Compensating) => "compensating",
        Ok(StepStatus::Compensated) => "compensated",
        Ok(StepStatus::Skipped) => "skipped",
        Ok(StepStatus::Unspecified) | Err(_) => "unknown",
    }
}

/// `orchestrated` or `choreographed` (UNSPECIFIED is orchestrated, as in the proto).
pub fn mode(mode: i32) -> &'static str {
    match CoordinationMode::try_from(mode) {
        Ok(CoordinationMode::Choreographed) => "choreographed",
        _ => "orchestrated",
    }
}

/// What a step does, in words, for the timeline.
pub fn step_title(name: &str) -> Option<&'static str> {
    Some(match name {
        "price_cart" => "Price the cart",
        "create_order" => "Create the order",
        "charge_payment" => "Charge the card",
        "reserve_stock" => "Reserve the stock",
        "create_shipment" => "Create the shipment",
        "confirm_order" => "Confirm the order",
        _ => return None,
    })
}

/// The compensation that undoes a step, for the timeline.
pub fn compensation_title(name: &str) -> &'static str {
    match name {
        "create_order" => "Cancel the order",
        "charge_payment" => "Refund the charge",
        "reserve_stock" => "Release the stock",
        "create_shipment" => "Cancel the shipment",
        _ => "Undo",
    }
}

/// What a `failure_reason` means, in a sentence (docs/CONTRACT.md#failure_reason).
pub fn failure_explained(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "card_declined" => {
            "The card was declined, so everything done before the charge was undone."
        }
        "insufficient_funds" => {
            "The card has insufficient funds, so everything done before the charge was undone."
        }
        "out_of_stock" => {
            "Not enough units were in stock, so the charge was refunded and the order cancelled."
        }
        "undeliverable_address" => {
            "The country is not served, so the stock was released, the charge refunded and the order cancelled."
        }
        "dependency_unavailable" => {
            "A service did not answer in time, so what may have taken effect was undone."
        }
        _ => return None,
    })
}

/// A service whose dead letters an operator sees and settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LetterSource {
    /// Its word in the console's addresses (`/dead-letters/payment/7/retry`), also the
    /// prefix of its rows' ids.
    pub word: &'static str,
    pub service: ShopService,
    /// Its name as the shop's logs and metrics give it.
    pub name: &'static str,
}

/// Every service that parks events, in the order the page lists them: the flow's
/// order, then the orchestrator's tracker.
pub const LETTER_SOURCES: [LetterSource; 5] = [
    LetterSource {
        word: "order",
        service: ShopService::Order,
        name: "order-svc",
    },
    LetterSource {
        word: "payment",
        service: ShopService::Payment,
        name: "payment-svc",
    },
    LetterSource {
        word: "inventory",
        service: ShopService::Inventory,
        name: "inventory-svc",
    },
    LetterSource {
        word: "shipping",
        service: ShopService::Shipping,
        name: "shipping-svc",
    },
    LetterSource {
        word: "orchestrator",
        service: ShopService::Orchestrator,
        name: "orchestrator",
    },
];

/// The service an address names by its word.
pub fn letter_source(word: &str) -> Option<LetterSource> {
    LETTER_SOURCES
        .into_iter()
        .find(|source| source.word == word)
}

/// `parked`, `retried`, `discarded`: a dead letter's state as one word (also its CSS
/// class).
pub fn dead_letter_state(state: i32) -> &'static str {
    match DeadLetterState::try_from(state) {
        Ok(DeadLetterState::Parked) => "parked",
        Ok(DeadLetterState::Retried) => "retried",
        Ok(DeadLetterState::Discarded) => "discarded",
        Ok(DeadLetterState::Unspecified) | Err(_) => "unknown",
    }
}

/// What a service's refusal to settle a dead letter means, by its ErrorInfo reason, in a
/// sentence that says what to do.
pub fn dead_letter_refusal(reason: &str) -> Option<&'static str> {
    Some(match reason {
        reason::DEAD_LETTER_STILL_FAILING => {
            "Its consumer refused the event again, so nothing changed: the letter stays \
             parked. Fix the cause the service names below, then retry."
        }
        reason::DEAD_LETTER_UNREADABLE => {
            "The message is no event the service can read, so there is nothing to handle: \
             discard it."
        }
        reason::DEAD_LETTER_DISCARDED => {
            "It was discarded already, and stays so: its event is never handled."
        }
        reason::DEAD_LETTER_RETRIED => {
            "A retry handled its event already; discarding the letter cannot undo that."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_word_is_the_status_word() {
        for (word, status) in STATUS_FILTERS {
            assert_eq!(checkout_status(*status as i32), *word);
        }
        for (word, value) in MODE_FILTERS {
            assert_eq!(mode(*value as i32), *word);
        }
    }

    #[test]
    fn every_service_that_parks_events_has_one_word() {
        for source in LETTER_SOURCES {
            assert_eq!(letter_source(source.word), Some(source));
        }
        let services: std::collections::BTreeSet<i32> = LETTER_SOURCES
            .iter()
            .map(|source| source.service as i32)
            .collect();
        assert_eq!(services.len(), LETTER_SOURCES.len());
        assert!(!services.contains(&(ShopService::Unspecified as i32)));
        assert_eq!(letter_source("billing"), None);
    }

    #[test]
    fn only_completed_and_cancelled_are_final() {
        assert!(is_final(CheckoutStatus::Cancelled as i32));
        assert!(is_final(CheckoutStatus::Completed as i32));
        assert!(!is_final(CheckoutStatus::Compensating as i32));
        assert!(!is_final(99));
    }
}
