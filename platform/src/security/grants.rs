//! Every grant of the access table ([`super::access::RULES`]), argued: who may call what,
//! and why they need it. The test enumerates every principal, a peer without a client
//! certificate and one whose certificate names no principal, against every RPC of the
//! shop (and health and reflection), and fails on any grant the table makes that is not
//! argued here, and on any argued here that the table does not make. So a new grant
//! needs its reason written down first, and a grant nobody can argue for is removed.

use super::{
    access::check,
    principal::{Identity, Principal},
};
use Principal::{Loadgen, Operator, Orchestrator};

/// Who a grant is for.
enum To {
    /// Any peer that completed the handshake, certificate or not.
    AnyPeer,
    Only(&'static [Principal]),
}

/// The saga's driver.
const SAGA: To = To::Only(&[Orchestrator]);
const READ_WHY: &str = "reads: the load generator's checker verifies every checkout's \
                        invariants from outside; operators look into a checkout";
const READ: To = To::Only(&[Loadgen, Operator]);
const OPERATOR: To = To::Only(&[Operator]);
/// Dead letters: operators by certificate (grpcurl), and the orchestrator relaying the
/// front door's `shop.operations.v1.DeadLetterService`. The orchestrator relays only for
/// a person who proved the operator scope with a bearer token at its front door (the
/// check ResumeCheckout makes), and logs that person with the letter. The alternatives are
/// worse: the operator grant on the console's certificate would let anyone holding that
/// certificate act without a person's token, and the token key on every service would let
/// any of them mint operator tokens. What the grant adds: a compromised orchestrator can
/// list, retry or discard dead letters, less than it can already do (it drives every saga
/// step: charges, refunds, cancellations).
const DEAD_LETTERS: To = To::Only(&[Operator, Orchestrator]);

/// `(path, to whom, why)`: a path ending in `/*` stands for every method of the service.
const ARGUED: &[(&str, To, &str)] = &[
    (
        "/grpc.health.v1.Health/*",
        To::AnyPeer,
        "container and kubelet probes, and every client's readiness wait: it answers \
         SERVING or not, nothing else",
    ),
    (
        "/grpc.reflection.v1.ServerReflection/*",
        To::AnyPeer,
        "grpcurl lists the API without proto files; the schema is public (the protos), \
         and REFLECTION=false turns it off",
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/*",
        To::AnyPeer,
        "as v1, for older grpcurl, Postman and evans",
    ),
    (
        "/shop.checkout.v1.CheckoutService/*",
        To::AnyPeer,
        "the front door: every call needs a bearer token, which decides whose checkouts \
         it sees and places, and whether it may resume one (operator scope)",
    ),
    (
        "/shop.operations.v1.DeadLetterService/*",
        To::AnyPeer,
        "the front door's operator API: every call needs a bearer token with the operator \
         scope, checked before the request is read, as for ResumeCheckout",
    ),
    (
        "/shop.order.v1.OrderService/CreateOrder",
        SAGA,
        "saga step create_order",
    ),
    (
        "/shop.order.v1.OrderService/ConfirmOrder",
        SAGA,
        "saga step confirm_order",
    ),
    (
        "/shop.order.v1.OrderService/CancelOrder",
        SAGA,
        "create_order's compensation",
    ),
    ("/shop.order.v1.OrderService/GetOrder", READ, READ_WHY),
    ("/shop.order.v1.OrderService/ListOrders", READ, READ_WHY),
    (
        "/shop.order.v1.OrderService/GetOrderHistory",
        READ,
        READ_WHY,
    ),
    (
        "/shop.payment.v1.PaymentService/Charge",
        SAGA,
        "saga step charge_payment",
    ),
    (
        "/shop.payment.v1.PaymentService/Refund",
        SAGA,
        "charge_payment's compensation",
    ),
    ("/shop.payment.v1.PaymentService/GetPayment", READ, READ_WHY),
    (
        "/shop.payment.v1.PaymentService/ListPayments",
        READ,
        READ_WHY,
    ),
    (
        "/shop.inventory.v1.InventoryService/UpsertProduct",
        OPERATOR,
        "the catalogue sets what customers pay: an operator's act, by hand or through a \
         tool run with the operator's certificate (the demo seed, a load test's setup)",
    ),
    (
        "/shop.inventory.v1.InventoryService/SetStock",
        OPERATOR,
        "stock levels set what can be sold: an operator's act, as UpsertProduct",
    ),
    (
        "/shop.inventory.v1.InventoryService/GetProduct",
        READ,
        READ_WHY,
    ),
    (
        "/shop.inventory.v1.InventoryService/ListProducts",
        READ,
        READ_WHY,
    ),
    (
        "/shop.inventory.v1.InventoryService/GetStock",
        READ,
        READ_WHY,
    ),
    (
        "/shop.inventory.v1.InventoryService/GetReservation",
        READ,
        READ_WHY,
    ),
    (
        "/shop.inventory.v1.InventoryService/PriceCart",
        SAGA,
        "the front door prices a cart before it records a checkout",
    ),
    (
        "/shop.inventory.v1.InventoryService/ReserveStock",
        SAGA,
        "saga step reserve_stock",
    ),
    (
        "/shop.inventory.v1.InventoryService/ReleaseStock",
        SAGA,
        "reserve_stock's compensation",
    ),
    (
        "/shop.shipping.v1.ShippingService/CreateShipment",
        SAGA,
        "saga step create_shipment",
    ),
    (
        "/shop.shipping.v1.ShippingService/CancelShipment",
        SAGA,
        "create_shipment's compensation",
    ),
    (
        "/shop.shipping.v1.ShippingService/GetShipment",
        READ,
        READ_WHY,
    ),
    (
        "/shop.events.v1.EventAdminService/ListDeadLetters",
        DEAD_LETTERS,
        "dead letters hold whole events (customers, addresses, payment tokens): operators, \
         and the orchestrator relaying for a person its front door proved an operator by \
         token",
    ),
    (
        "/shop.events.v1.EventAdminService/RetryDeadLetter",
        DEAD_LETTERS,
        "retrying a dead letter acts on its event: a person decides, by the operator's \
         certificate or through the orchestrator, which relays only for an operator's token \
         and logs who",
    ),
    (
        "/shop.events.v1.EventAdminService/DiscardDeadLetter",
        DEAD_LETTERS,
        "discarding a dead letter drops its event for good: a person decides, by the \
         operator's certificate or through the orchestrator, which relays only for an \
         operator's token and logs who",
    ),
];

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    /// Every RPC a shop server serves: the shop's own, health and reflection.
    fn methods() -> Vec<String> {
        let set = FileDescriptorSet::decode(shop_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                file.service.iter().flat_map(move |service| {
                    service.method.iter().map(move |method| {
                        format!("/{}.{}/{}", file.package(), service.name(), method.name())
                    })
                })
            })
            .collect();
        methods.extend(
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ]
            .map(String::from),
        );
        methods
    }

    fn covers(argued: &str, method: &str) -> bool {
        match argued.strip_suffix("/*") {
            Some(service) => method
                .strip_prefix(service)
                .is_some_and(|m| m.starts_with('/')),
            None => argued == method,
        }
    }

    fn argued_for(method: &str) -> &'static (&'static str, To, &'static str) {
        let mut found = ARGUED.iter().filter(|(path, _, _)| covers(path, method));
        let argued = found
            .next()
            .unwrap_or_else(|| panic!("{method}: no grant argued; add one to ARGUED"));
        assert!(found.next().is_none(), "{method} is argued twice");
        argued
    }

    #[test]
    fn every_grant_of_the_table_is_argued_and_every_argued_grant_made() {
        let mut peers: Vec<Identity> = Principal::ALL.map(Identity::Known).to_vec();
        peers.extend([Identity::Anonymous, Identity::Unknown]);
        let methods = methods();
        for method in &methods {
            let (_, to, why) = argued_for(method);
            assert!(!why.trim().is_empty(), "{method}: an empty reason");
            for peer in &peers {
                let argued = match (to, peer) {
                    (To::AnyPeer, _) => true,
                    (To::Only(who), Identity::Known(p)) => who.contains(p),
                    (To::Only(_), _) => false,
                };
                let granted = check(method, *peer).is_ok();
                assert_eq!(
                    granted,
                    argued,
                    "{peer} on {method}: the access table {} it, the argued grants {} it",
                    if granted { "grants" } else { "refuses" },
                    if argued { "grant" } else { "do not grant" },
                );
            }
        }
        for (path, _, _) in ARGUED {
            assert!(
                methods.iter().any(|m| covers(path, m)),
                "{path} is argued but names no RPC"
            );
        }
    }

    #[test]
    fn only_operators_write_the_catalogue_and_the_console_calls_only_the_front_door() {
        for method in ["UpsertProduct", "SetStock"] {
            let path = format!("/shop.inventory.v1.InventoryService/{method}");
            for principal in Principal::ALL {
                assert_eq!(
                    check(&path, Identity::Known(principal)).is_ok(),
                    principal == Operator,
                    "{principal} on {path}"
                );
            }
        }
        let console = Identity::Known(Principal::Console);
        for method in methods() {
            let open = matches!(argued_for(&method).1, To::AnyPeer);
            assert_eq!(check(&method, console).is_ok(), open, "console on {method}");
        }
    }
}
