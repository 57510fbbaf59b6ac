//! Tests of the operators' relay: who may call it, and what it refuses before relaying.

use super::*;

#[test]
fn every_service_of_the_wire_is_a_target_and_unspecified_is_refused() {
    let named = [
        (pb::ShopService::Orchestrator, Principal::Orchestrator),
        (pb::ShopService::Order, Principal::OrderSvc),
        (pb::ShopService::Payment, Principal::PaymentSvc),
        (pb::ShopService::Inventory, Principal::InventorySvc),
        (pb::ShopService::Shipping, Principal::ShippingSvc),
    ];
    for (wire, principal) in named {
        assert_eq!(
            Target::of(wire.into()).map(Target::principal),
            Ok(principal)
        );
    }
    assert!(Target::of(pb::ShopService::Unspecified.into()).is_err());
    assert!(Target::of(99).is_err());
}

#[test]
fn every_bad_field_is_named_at_once() {
    let mut v = Violations::default();
    letter_id(&mut v, 0);
    let refused = checked(v, Target::of(0), ()).unwrap_err();
    let ApiError::InvalidArgument(violations) = refused else {
        panic!("{refused:?}");
    };
    let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["id", "service"]);
}

#[test]
fn only_an_operator_is_relayed_for() {
    let mut request = Request::new(());
    assert_eq!(
        operator_of(&request, "RetryDeadLetter").unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    request
        .extensions_mut()
        .insert(Caller::Customer("alice".into()));
    assert_eq!(
        operator_of(&request, "RetryDeadLetter").unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    request
        .extensions_mut()
        .insert(Caller::Operator("ops".into()));
    let (who, deadline) = operator_of(&request, "RetryDeadLetter").unwrap();
    assert_eq!((who.as_str(), deadline), ("ops", RELAY_DEADLINE));
}
