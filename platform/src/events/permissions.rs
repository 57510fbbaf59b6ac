//! What the broker must let each principal do, as NATS subjects: its role's events
//! ([`super::roles`]) plus exactly the JetStream API calls this module's clients make
//! for them, and nothing else. The deployment tooling turns this into the broker's
//! `authorization` block (e2e's `nats_auth`), one NATS user per principal, mapped from
//! the name on its certificate.
//!
//! The set was found by running the real services against a broker that allowed only
//! it (the choreography suite passes over it), and follows from how async-nats calls
//! JetStream here:
//! - the relay publishes to the stream's subjects and waits for the ack on a reply
//!   subject;
//! - [`super::broker::ensure_stream`] asks `STREAM.UPDATE`, then `STREAM.CREATE` if
//!   there is none; [`super::consumer`] asks `STREAM.INFO`, creates its durables with
//!   `CONSUMER.CREATE.<stream>.<durable>.<filter>` (the broker refuses a request whose
//!   filter differs from the subject's, so allowing only that subject pins each durable
//!   to its filter), pulls with `CONSUMER.MSG.NEXT`, reads its lag with `CONSUMER.INFO`,
//!   and settles each message on its `$JS.ACK.<stream>.<durable>.…` reply subject;
//! - every answer comes back on a reply subject under the client's inbox prefix, which
//!   is the principal's own ([`inbox_prefix`]), so no certificate can read the replies
//!   (events pulled by another's consumer included) meant for another.
//!
//! Not covered: every service may create and update the stream, because each brings it
//! to the shared configuration when it starts.

use super::{STREAM, consumer::durable_name, roles};
use crate::security::Principal;

/// The JetStream API's subject prefix.
const API: &str = "$JS.API";

/// Subjects a principal may publish to and subscribe to; anything else the broker
/// refuses. Both empty: nothing at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerPermissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The prefix of the reply subjects a principal's connections use (async-nats's
/// `_INBOX` by default, shared by everyone; one of its own here).
pub fn inbox_prefix(principal: Principal) -> String {
    format!("_INBOX.{}", principal.name())
}

/// What `principal` may do on the broker: its role's, or nothing.
pub fn of(principal: Principal) -> BrokerPermissions {
    let Some(role) = roles::of(principal) else {
        return BrokerPermissions::default();
    };
    let mut publish = role.publish_subjects();
    publish
        .extend(["INFO", "CREATE", "UPDATE"].map(|call| format!("{API}.STREAM.{call}.{STREAM}")));
    for filter in role.consumer().subjects {
        let durable = durable_name(principal.name(), &filter);
        publish.extend([
            format!("{API}.CONSUMER.CREATE.{STREAM}.{durable}.{filter}"),
            format!("{API}.CONSUMER.INFO.{STREAM}.{durable}"),
            format!("{API}.CONSUMER.MSG.NEXT.{STREAM}.{durable}"),
            // Acknowledgements (ack, nak with a delay, term) go to the message's reply
            // subject: `$JS.ACK.<stream>.<durable>.<counts…>`, or with a domain and an
            // account hash in front of the stream in the newer format servers may send.
            format!("$JS.ACK.{STREAM}.{durable}.>"),
            format!("$JS.ACK.*.*.{STREAM}.{durable}.>"),
        ]);
    }
    BrokerPermissions {
        publish,
        subscribe: vec![format!("{}.>", inbox_prefix(principal))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_get_nothing() {
        for principal in [Principal::Console, Principal::Loadgen, Principal::Operator] {
            assert_eq!(of(principal), BrokerPermissions::default(), "{principal}");
        }
    }

    #[test]
    fn a_service_publishes_its_own_events_and_uses_its_own_durables_only() {
        let payment = of(Principal::PaymentSvc);
        assert!(
            payment
                .publish
                .contains(&"shop.events.payment.>".to_owned())
        );
        assert!(payment.publish.contains(
            &"$JS.API.CONSUMER.CREATE.SHOP_EVENTS.payment-svc-order-OrderPlaced.shop.events.order.OrderPlaced"
                .to_owned()
        ));
        assert!(
            payment
                .publish
                .contains(&"$JS.ACK.SHOP_EVENTS.payment-svc-order-OrderPlaced.>".to_owned())
        );
        assert_eq!(payment.subscribe, ["_INBOX.payment-svc.>"]);
        for subject in &payment.publish {
            assert!(
                subject.starts_with("shop.events.payment.")
                    || subject.contains("payment-svc-")
                    || subject.starts_with("$JS.API.STREAM."),
                "payment-svc may publish to {subject}"
            );
        }
        // The consumer create call names no durable without its filter: a durable
        // could otherwise be made to follow any subject.
        assert!(
            !payment
                .publish
                .iter()
                .any(|s| s.starts_with("$JS.API.CONSUMER.DURABLE."))
        );
    }

    #[test]
    fn the_front_door_publishes_only_the_checkout_request() {
        let front = of(Principal::Orchestrator);
        let events: Vec<_> = front
            .publish
            .iter()
            .filter(|s| s.starts_with("shop.events."))
            .collect();
        assert_eq!(events, ["shop.events.checkout.CheckoutRequested"]);
        assert!(
            front.publish.contains(
                &"$JS.API.CONSUMER.CREATE.SHOP_EVENTS.orchestrator-order-all.shop.events.order.>"
                    .to_owned()
            )
        );
    }
}
