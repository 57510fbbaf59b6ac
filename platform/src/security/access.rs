//! Which principal may call which RPC: one table for the whole shop, checked by a tower
//! layer in front of every server running TLS. Least privilege: the internal services
//! accept only the calls each peer needs. The orchestrator drives the saga steps; the
//! load generator's checker and operators read; only operators write the catalogue and
//! stock levels (the demo seed runs with the operator's certificate: seeding is the
//! operator's act, done by a tool) and settle dead letters (by certificate, or through the
//! orchestrator, which relays for a person its front door proved an operator by token).
//! The console reaches only the front door, and the services only health and reflection.
//! A method without a rule is refused. The tests below argue every grant, principal by
//! principal and RPC by RPC.
//!
//! The front door (`CheckoutService`, and the operator's `DeadLetterService`) is open to
//! any peer that completed the handshake: its callers prove who they are with a bearer
//! token (see [`super::token`]).

use tonic::Status;

use super::{
    gate::Gate,
    principal::{Identity, Peer, Principal},
};

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Any peer that completed the handshake (with TLS on, one the CA vouches for, or a
    /// front-door customer): health, reflection, and the token-checked front door.
    AnyPeer,
    /// Only these principals.
    Only(&'static [Principal]),
}

use Principal::{Loadgen, Operator, Orchestrator};

/// The saga's steps and compensations.
const SAGA: Allow = Allow::Only(&[Orchestrator]);
/// Reads of what a checkout did: the load generator's checker verifies the invariants
/// from outside, operators look. (The orchestrator and the console read nothing here:
/// the saga keeps its own record, the console reads only the front door.)
const READ: Allow = Allow::Only(&[Loadgen, Operator]);
/// The catalogue and stock levels: what customers pay and what can be sold. Operators
/// only (by hand, or through a tool run with their certificate: the demo seed, a load
/// test setting up its products).
const ADMIN: Allow = Allow::Only(&[Operator]);
/// Dead letters hold whole events, and settling one acts on the event: operators, by
/// certificate (grpcurl), or as a person whose operator token the front door checked
/// (`shop.operations.v1.DeadLetterService`), which the orchestrator relays with its own.
const OPERATE: Allow = Allow::Only(&[Operator, Orchestrator]);

/// `(service, method, who)`; method `*` covers every method of the service.
pub const RULES: &[(&str, &str, Allow)] = &[
    ("grpc.health.v1.Health", "*", Allow::AnyPeer),
    ("grpc.reflection.v1.ServerReflection", "*", Allow::AnyPeer),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        "*",
        Allow::AnyPeer,
    ),
    ("shop.checkout.v1.CheckoutService", "*", Allow::AnyPeer),
    ("shop.operations.v1.DeadLetterService", "*", Allow::AnyPeer),
    ("shop.order.v1.OrderService", "CreateOrder", SAGA),
    ("shop.order.v1.OrderService", "ConfirmOrder", SAGA),
    ("shop.order.v1.OrderService", "CancelOrder", SAGA),
    ("shop.order.v1.OrderService", "GetOrder", READ),
    ("shop.order.v1.OrderService", "ListOrders", READ),
    ("shop.order.v1.OrderService", "GetOrderHistory", READ),
    ("shop.payment.v1.PaymentService", "Charge", SAGA),
    ("shop.payment.v1.PaymentService", "Refund", SAGA),
    ("shop.payment.v1.PaymentService", "GetPayment", READ),
    ("shop.payment.v1.PaymentService", "ListPayments", READ),
    ("shop.inventory.v1.InventoryService", "UpsertProduct", ADMIN),
    ("shop.inventory.v1.InventoryService", "SetStock", ADMIN),
    ("shop.inventory.v1.InventoryService", "GetProduct", READ),
    ("shop.inventory.v1.InventoryService", "ListProducts", READ),
    ("shop.inventory.v1.InventoryService", "GetStock", READ),
    ("shop.inventory.v1.InventoryService", "PriceCart", SAGA),
    ("shop.inventory.v1.InventoryService", "ReserveStock", SAGA),
    ("shop.inventory.v1.InventoryService", "ReleaseStock", SAGA),
    ("shop.inventory.v1.InventoryService", "GetReservation", READ),
    ("shop.shipping.v1.ShippingService", "CreateShipment", SAGA),
    ("shop.shipping.v1.ShippingService", "CancelShipment", SAGA),
    ("shop.shipping.v1.ShippingService", "GetShipment", READ),
    (
        "shop.events.v1.EventAdminService",
        "ListDeadLetters",
        OPERATE,
    ),
    (
        "shop.events.v1.EventAdminService",
        "RetryDeadLetter",
        OPERATE,
    ),
    (
        "shop.events.v1.EventAdminService",
        "DiscardDeadLetter",
        OPERATE,
    ),
];

/// The rule for a request path (`/package.Service/Method`), if there is one.
pub fn rule(path: &str) -> Option<Allow> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    RULES
        .iter()
        .find(|(s, m, _)| *s == service && (*m == method || *m == "*"))
        .map(|(_, _, allow)| *allow)
}

/// Whether a peer may call `path`; `Err` says why not.
pub fn check(path: &str, identity: Identity) -> Result<(), String> {
    if identity == Identity::Plaintext {
        // --dev-insecure: nothing is checked, by definition.
        return Ok(());
    }
    match (rule(path), identity) {
        (None, _) => Err(format!("{path} is not open to any peer")),
        (Some(Allow::AnyPeer), _) => Ok(()),
        (Some(Allow::Only(who)), Identity::Known(principal)) if who.contains(&principal) => Ok(()),
        (Some(Allow::Only(who)), identity) => Err(format!(
            "{identity} may not call {path} (open to: {})",
            who.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Refuses, with PERMISSION_DENIED, every call its peer may not make.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessCheck;

impl Gate for AccessCheck {
    fn admit(
        &self,
        path: &str,
        _: &http::HeaderMap,
        extensions: &mut http::Extensions,
    ) -> Result<(), Status> {
        // A request without connect info did not come through `incoming` (an in-process
        // test service): nothing to check it against, so nothing is trusted either.
        let identity = extensions
            .get::<Peer>()
            .map_or(Identity::Anonymous, |peer| peer.identity);
        check(path, identity).map_err(|why| {
            tracing::warn!(rpc = path, %identity, "call refused: {why}");
            Status::permission_denied(why)
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    fn methods() -> Vec<String> {
        let set = FileDescriptorSet::decode(shop_proto::FILE_DESCRIPTOR_SET).unwrap();
        set.file
            .iter()
            .flat_map(|file| {
                file.service.iter().flat_map(move |service| {
                    service.method.iter().map(move |method| {
                        format!("/{}.{}/{}", file.package(), service.name(), method.name())
                    })
                })
            })
            .collect()
    }

    #[test]
    fn every_method_of_the_shop_has_a_rule_and_every_rule_a_method() {
        let methods = methods();
        assert!(methods.len() > 20, "{methods:?}");
        for method in &methods {
            assert!(rule(method).is_some(), "{method} has no access rule");
        }
        for (service, method, _) in RULES {
            if service.starts_with("shop.") && *method != "*" {
                let path = format!("/{service}/{method}");
                assert!(methods.contains(&path), "{path} names no RPC");
            }
        }
    }

    #[test]
    fn saga_steps_are_the_orchestrators_alone() {
        let charge = "/shop.payment.v1.PaymentService/Charge";
        assert!(check(charge, Identity::Known(Orchestrator)).is_ok());
        for principal in Principal::ALL.into_iter().filter(|p| *p != Orchestrator) {
            let refused = check(charge, Identity::Known(principal)).unwrap_err();
            assert!(refused.contains("may not call"), "{refused}");
        }
        assert!(check(charge, Identity::Anonymous).is_err());
        assert!(check(charge, Identity::Unknown).is_err());
    }

    #[test]
    fn reads_are_open_to_the_checker_and_admin_to_operators() {
        let list = "/shop.payment.v1.PaymentService/ListPayments";
        assert!(check(list, Identity::Known(Loadgen)).is_ok());
        assert!(check(list, Identity::Known(Principal::PaymentSvc)).is_err());
        let set_stock = "/shop.inventory.v1.InventoryService/SetStock";
        assert!(check(set_stock, Identity::Known(Operator)).is_ok());
        assert!(check(set_stock, Identity::Known(Orchestrator)).is_err());
    }

    #[test]
    fn health_and_the_front_door_are_open_to_any_peer_and_unknown_paths_to_none() {
        let health = "/grpc.health.v1.Health/Check";
        assert!(check(health, Identity::Anonymous).is_ok());
        let place = "/shop.checkout.v1.CheckoutService/PlaceOrder";
        assert!(check(place, Identity::Anonymous).is_ok());
        assert!(check("/shop.secret.v1.Backdoor/Open", Identity::Known(Operator)).is_err());
        assert!(check("nonsense", Identity::Known(Operator)).is_err());
    }

    #[test]
    fn development_mode_checks_nothing() {
        let refund = "/shop.payment.v1.PaymentService/Refund";
        assert!(check(refund, Identity::Plaintext).is_ok());
    }
}
