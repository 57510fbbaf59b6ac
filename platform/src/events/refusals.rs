//! What the broker refused a connection. Under per-principal authorization
//! ([`super::permissions`]) the broker answers a publish or a subscription the
//! certificate may not make with `-ERR 'Permissions Violation for Publish to "<subject>"'`
//! and drops it; the publisher's call itself succeeds, and a JetStream publish then just
//! never gets its ack. Keeping what was refused lets the relay tell a refused event (a
//! configuration error: retrying cannot fix it, a person must) from a slow broker, and
//! say which subject it was.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Publish,
    Subscribe,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Publish => "publish",
            Operation::Subscribe => "subscribe",
        }
    }
}

/// One refusal, as [`Refusals::record`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub operation: Operation,
    pub subject: String,
    /// The same was refused before and not yet asked about (a batch of events of one
    /// subject): worth one log line, not one each.
    pub again: bool,
}

/// How many refusals are kept until asked about: a relay round asks about every event
/// it published, so a few batches' worth; older ones are forgotten.
const KEPT: usize = 1024;

/// The refusals one connection was sent, most recent last. Cloned handles share them.
#[derive(Debug, Clone, Default)]
pub struct Refusals {
    seen: Arc<Mutex<VecDeque<(Operation, String)>>>,
}

impl Refusals {
    /// Records the refusal `message` (a server error's text) names, and returns it;
    /// `None` for any other server error.
    pub fn record(&self, message: &str) -> Option<Refused> {
        let (operation, subject) = parse(message)?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let again = seen.iter().any(|(op, s)| *op == operation && s == subject);
        if seen.len() == KEPT {
            seen.pop_front();
        }
        seen.push_back((operation, subject.to_owned()));
        Some(Refused {
            operation,
            subject: subject.to_owned(),
            again,
        })
    }

    /// Whether a publish to `subject` was refused and not yet asked about; forgets one
    /// such refusal (one refusal per publish: two refused events of one subject are
    /// two answers).
    pub fn take_publish(&self, subject: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let found = seen
            .iter()
            .position(|(op, s)| *op == Operation::Publish && s == subject);
        found.and_then(|at| seen.remove(at)).is_some()
    }

    /// Whether a subscription to `subject` was refused (kept: a subscription is refused
    /// once, when it is made).
    pub fn subscription_refused(&self, subject: &str) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter()
            .any(|(op, s)| *op == Operation::Subscribe && s == subject)
    }
}

/// The operation and subject of a nats-server permissions violation:
/// `Permissions Violation for Publish to "<subject>"`, `… for Subscription to
/// "<subject>"` (with ` using queue "<queue>"` after it for a queue subscription).
pub fn parse(message: &str) -> Option<(Operation, &str)> {
    let rest = message.trim().trim_matches('\'');
    let rest = rest.strip_prefix("Permissions Violation for ")?;
    let (operation, rest) = if let Some(rest) = rest.strip_prefix("Publish to ") {
        (Operation::Publish, rest)
    } else {
        (Operation::Subscribe, rest.strip_prefix("Subscription to ")?)
    };
    let subject = rest.strip_prefix('"')?.split('"').next()?;
    Some((operation, subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_refusals_are_read() {
        assert_eq!(
            parse(r#"Permissions Violation for Publish to "shop.events.order.OrderPlaced""#),
            Some((Operation::Publish, "shop.events.order.OrderPlaced"))
        );
        assert_eq!(
            parse(r#"'Permissions Violation for Subscription to "shop.events.>"'"#),
            Some((Operation::Subscribe, "shop.events.>"))
        );
        assert_eq!(
            parse(r#"Permissions Violation for Subscription to "a.b" using queue "q""#),
            Some((Operation::Subscribe, "a.b"))
        );
        assert_eq!(parse("Authorization Violation"), None);
        assert_eq!(parse("Maximum Payload Violation"), None);
    }

    #[test]
    fn each_refused_publish_answers_once() {
        let refusals = Refusals::default();
        let message = r#"Permissions Violation for Publish to "shop.events.order.X""#;
        let first = refusals.record(message).unwrap();
        assert_eq!(
            (first.operation, first.subject.as_str(), first.again),
            (Operation::Publish, "shop.events.order.X", false)
        );
        assert!(refusals.record(message).unwrap().again);
        assert!(refusals.record("Stale Connection").is_none());
        assert!(!refusals.take_publish("shop.events.order.Y"));
        assert!(refusals.take_publish("shop.events.order.X"));
        assert!(refusals.take_publish("shop.events.order.X"));
        assert!(!refusals.take_publish("shop.events.order.X"));
    }

    #[test]
    fn only_the_latest_are_kept() {
        let refusals = Refusals::default();
        for n in 0..KEPT + 10 {
            refusals.record(&format!(r#"Permissions Violation for Publish to "s.{n}""#));
        }
        assert!(!refusals.take_publish("s.0"), "forgotten");
        assert!(refusals.take_publish(&format!("s.{}", KEPT + 9)));
    }
}
