//! The five services of a stack, by name: their binaries, principals and default ports.

use platform::security::Principal;

/// One of the five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Svc {
    Order,
    Payment,
    Inventory,
    Shipping,
    Orchestrator,
}

impl Svc {
    /// Start order: the orchestrator last, after its downstreams.
    pub const ALL: [Svc; 5] = [
        Svc::Order,
        Svc::Payment,
        Svc::Inventory,
        Svc::Shipping,
        Svc::Orchestrator,
    ];

    /// The binary's name.
    pub fn binary(self) -> &'static str {
        match self {
            Svc::Order => "order-svc",
            Svc::Payment => "payment-svc",
            Svc::Inventory => "inventory-svc",
            Svc::Shipping => "shipping-svc",
            Svc::Orchestrator => "orchestrator",
        }
    }

    /// Whom its certificate names.
    pub fn principal(self) -> Principal {
        match self {
            Svc::Order => Principal::OrderSvc,
            Svc::Payment => Principal::PaymentSvc,
            Svc::Inventory => Principal::InventorySvc,
            Svc::Shipping => Principal::ShippingSvc,
            Svc::Orchestrator => Principal::Orchestrator,
        }
    }

    /// The default port of docs/CONTRACT.md.
    pub fn default_port(self) -> u16 {
        match self {
            Svc::Orchestrator => 50050,
            Svc::Order => 50051,
            Svc::Payment => 50052,
            Svc::Inventory => 50053,
            Svc::Shipping => 50054,
        }
    }
}
