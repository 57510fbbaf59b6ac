//! Who publishes and who consumes which events: one table, keyed by the principal a
//! certificate is issued to. The services' consumers are made from it, and so is the
//! broker's authorization ([`super::permissions`]), so what a service does and what the
//! broker lets its certificate do cannot drift apart. A principal without a role here
//! (the console, the load generator, an operator) may do nothing with events.

use super::{ConsumerSpec, EventKind, envelope::subject};
use crate::security::Principal;

/// Which of its producer's subjects a principal may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publishes {
    /// Every event type under its producer name: `shop.events.<producer>.>`.
    AllOfItsProducer,
    /// These event types only (the front door announces checkouts and nothing else).
    Only(&'static [EventKind]),
}

/// A principal's part in the choreography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub principal: Principal,
    /// The producer name in its subjects and envelopes: `shop.events.<producer>.<type>`.
    pub producer: &'static str,
    pub publishes: Publishes,
    /// What its durable consumer reacts to: `(producer, type)`, the type `>` for every
    /// event of that producer.
    pub consumes: &'static [(&'static str, EventKind)],
}

/// The front door: announces choreographed checkouts, and its tracker follows every
/// service's events to write their timelines.
pub const ORCHESTRATOR: Role = Role {
    principal: Principal::Orchestrator,
    producer: "checkout",
    publishes: Publishes::Only(&["CheckoutRequested"]),
    consumes: &[
        ("order", ">"),
        ("payment", ">"),
        ("inventory", ">"),
        ("shipping", ">"),
    ],
};

/// Places the order on request, confirms it once shipped, cancels it when the payment
/// is declined or refunded.
pub const ORDER_SVC: Role = Role {
    principal: Principal::OrderSvc,
    producer: "order",
    publishes: Publishes::AllOfItsProducer,
    consumes: &[
        ("checkout", "CheckoutRequested"),
        ("shipping", "ShipmentCreated"),
        ("payment", "PaymentDeclined"),
        ("payment", "PaymentRefunded"),
    ],
};

/// Charges a placed order, refunds it when stock or shipping fails.
pub const PAYMENT_SVC: Role = Role {
    principal: Principal::PaymentSvc,
    producer: "payment",
    publishes: Publishes::AllOfItsProducer,
    consumes: &[
        ("order", "OrderPlaced"),
        ("inventory", "StockRejected"),
        ("inventory", "StockReleased"),
    ],
};

/// Reserves stock for a captured payment, releases it when shipping is refused.
pub const INVENTORY_SVC: Role = Role {
    principal: Principal::InventorySvc,
    producer: "inventory",
    publishes: Publishes::AllOfItsProducer,
    consumes: &[
        ("payment", "PaymentCaptured"),
        ("shipping", "ShipmentRejected"),
    ],
};

/// Ships reserved stock.
pub const SHIPPING_SVC: Role = Role {
    principal: Principal::ShippingSvc,
    producer: "shipping",
    publishes: Publishes::AllOfItsProducer,
    consumes: &[("inventory", "StockReserved")],
};

/// Every role.
pub const ALL: [Role; 5] = [
    ORCHESTRATOR,
    ORDER_SVC,
    PAYMENT_SVC,
    INVENTORY_SVC,
    SHIPPING_SVC,
];

/// The role of `principal`, if it has one.
pub fn of(principal: Principal) -> Option<&'static Role> {
    ALL.iter().find(|role| role.principal == principal)
}

impl Role {
    /// The subjects it may publish to (a pattern for [`Publishes::AllOfItsProducer`]).
    pub fn publish_subjects(&self) -> Vec<String> {
        match self.publishes {
            Publishes::AllOfItsProducer => vec![subject(self.producer, ">")],
            Publishes::Only(kinds) => kinds
                .iter()
                .map(|kind| subject(self.producer, kind))
                .collect(),
        }
    }

    /// Its durable consumer, named after the principal: the broker lets a certificate
    /// use only the durables that carry its principal's name.
    pub fn consumer(&self) -> ConsumerSpec {
        ConsumerSpec::of(self.principal.name(), self.consumes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_principal_has_at_most_one_role_and_the_clients_have_none() {
        for principal in Principal::ALL {
            let roles = ALL.iter().filter(|r| r.principal == principal).count();
            assert!(roles <= 1, "{principal} has {roles} roles");
        }
        for principal in [Principal::Console, Principal::Loadgen, Principal::Operator] {
            assert_eq!(of(principal), None, "{principal}");
        }
    }

    #[test]
    fn a_service_produces_under_its_name_without_the_suffix() {
        // platform::service names a service's producer this way; the table must agree.
        for role in ALL
            .iter()
            .filter(|r| r.principal != Principal::Orchestrator)
        {
            assert_eq!(
                role.producer,
                role.principal.name().trim_end_matches("-svc"),
                "{role:?}"
            );
        }
    }

    #[test]
    fn every_consumed_event_is_one_some_role_may_publish() {
        for role in ALL {
            for (producer, kind) in role.consumes {
                let publisher = ALL.iter().find(|r| r.producer == *producer);
                let Some(publisher) = publisher else {
                    panic!(
                        "{} consumes {producer}.{kind}: no role produces it",
                        role.principal
                    );
                };
                if let Publishes::Only(kinds) = publisher.publishes {
                    assert!(
                        *kind == ">" || kinds.contains(kind),
                        "{} consumes {producer}.{kind}, which {} may not publish",
                        role.principal,
                        publisher.principal
                    );
                }
            }
        }
    }

    #[test]
    fn the_front_door_may_publish_only_the_checkout_request() {
        assert_eq!(
            ORCHESTRATOR.publish_subjects(),
            ["shop.events.checkout.CheckoutRequested"]
        );
        assert_eq!(PAYMENT_SVC.publish_subjects(), ["shop.events.payment.>"]);
        assert_eq!(PAYMENT_SVC.consumer().durable, "payment-svc");
    }
}
