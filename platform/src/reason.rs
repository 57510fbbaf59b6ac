//! The `google.rpc.ErrorInfo` reasons the shop attaches to its refusals, as one enum that
//! the services answer with ([`crate::ApiError::precondition`]) and their callers read
//! back ([`Reason::of`]): the orchestrator decides what a step's refusal means by it
//! (`orchestrator::steps`), never by the code or the message alone. The spelling on the
//! wire is `shop_proto::reason`'s, the public contract each RPC's comment names; a
//! reason with no variant here cannot be sent, and a reason read back that has none (a
//! newer service) is `None`, which callers treat as an unexplained refusal.

use shop_proto::reason as wire;
use tonic::Status;
use tonic_types::StatusExt;

/// The `ErrorInfo.domain` of every error the shop returns.
pub const ERROR_DOMAIN: &str = "shop.example";

/// Declares [`Reason`] with each variant's wire spelling, listed once.
macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $wire:path,)+) => {
        /// A machine-readable reason for a refusal (`ErrorInfo.reason`, domain
        /// [`ERROR_DOMAIN`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $variant,)+
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The spelling on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }
    };
}

reasons! {
    /// Any service (ALREADY_EXISTS): an idempotency key came back with another request.
    IdempotencyKeyReused = wire::IDEMPOTENCY_KEY_REUSED,
    /// inventory-svc: a line asks for more units than are available.
    OutOfStock = wire::OUT_OF_STOCK,
    /// inventory-svc, the front door: the cart is priced in more than one currency.
    MixedCurrencies = wire::MIXED_CURRENCIES,
    /// inventory-svc: the reservation was released (by its key) before it arrived.
    ReleasedBeforeReserved = wire::RELEASED_BEFORE_RESERVED,
    /// inventory-svc: the order already holds another reservation.
    OrderAlreadyReserved = wire::ORDER_ALREADY_RESERVED,
    /// order-svc, shipping-svc: cancelled (by the creating call's key) before it arrived.
    CancelledBeforeCreated = wire::CANCELLED_BEFORE_CREATED,
    /// order-svc: the order's status cannot move that way.
    IllegalTransition = wire::ILLEGAL_TRANSITION,
    /// order-svc: the checkout has an order already (one order per checkout).
    CheckoutAlreadyOrdered = wire::CHECKOUT_ALREADY_ORDERED,
    /// payment-svc: refunded (by the charge's key) before the charge arrived.
    CancelledBeforeCharged = wire::CANCELLED_BEFORE_CHARGED,
    /// payment-svc: the payment was refunded already.
    AlreadyRefunded = wire::ALREADY_REFUNDED,
    /// payment-svc: the order already has a captured payment.
    OrderAlreadyPaid = wire::ORDER_ALREADY_PAID,
    /// shipping-svc: the address is in a country that is not served.
    UndeliverableAddress = wire::UNDELIVERABLE_ADDRESS,
    /// shipping-svc: the order already has a shipment.
    OrderAlreadyShipped = wire::ORDER_ALREADY_SHIPPED,
    /// orchestrator: ResumeCheckout on a checkout that is not NEEDS_ATTENTION.
    CheckoutNotParked = wire::CHECKOUT_NOT_PARKED,
    /// orchestrator: ResumeCheckout on a checkout started longer than RETENTION ago.
    CheckoutBeyondRetention = wire::CHECKOUT_BEYOND_RETENTION,
    /// orchestrator (RESOURCE_EXHAUSTED): the caller's WatchCheckout streams are at
    /// their cap.
    WatchStreamsPerCallerExhausted = wire::WATCH_STREAMS_PER_CALLER_EXHAUSTED,
    /// orchestrator (RESOURCE_EXHAUSTED): the replica's WatchCheckout streams are at
    /// their cap.
    WatchStreamsExhausted = wire::WATCH_STREAMS_EXHAUSTED,
    /// EventAdminService: RetryDeadLetter on a letter that was discarded.
    DeadLetterDiscarded = wire::DEAD_LETTER_DISCARDED,
    /// EventAdminService: DiscardDeadLetter on a letter a retry handled.
    DeadLetterRetried = wire::DEAD_LETTER_RETRIED,
    /// EventAdminService: RetryDeadLetter on a message no envelope could be read from.
    DeadLetterUnreadable = wire::DEAD_LETTER_UNREADABLE,
    /// EventAdminService: RetryDeadLetter whose handler refused the event again.
    DeadLetterStillFailing = wire::DEAD_LETTER_STILL_FAILING,
}

impl Reason {
    /// The reason of a wire spelling, `None` for one this build does not know.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == text)
    }

    /// The reason a shop service attached to `status`: its `ErrorInfo` in the shop's
    /// domain. `None` when there is none (a refusal tonic or a proxy made, an injected
    /// fault), it is another domain's, or this build does not know it.
    pub fn of(status: &Status) -> Option<Self> {
        status
            .get_details_error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .and_then(|info| Self::parse(&info.reason))
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic::Code;
    use tonic_types::ErrorDetails;

    use super::*;
    use crate::ApiError;

    #[test]
    fn every_reason_round_trips_through_a_status() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(*reason));
            let status = Status::from(ApiError::precondition(*reason, "no"));
            assert_eq!(Reason::of(&status), Some(*reason), "{reason}");
        }
        let reused = Status::from(ApiError::KeyReused { key: "k".into() });
        assert_eq!(Reason::of(&reused), Some(Reason::IdempotencyKeyReused));
    }

    #[test]
    fn a_status_without_the_shops_error_info_has_no_reason() {
        assert_eq!(Reason::of(&Status::failed_precondition("injected")), None);
        let foreign = Status::with_error_details(
            Code::FailedPrecondition,
            "theirs",
            ErrorDetails::with_error_info("OUT_OF_STOCK", "elsewhere.example", HashMap::new()),
        );
        assert_eq!(Reason::of(&foreign), None, "another domain's reason");
        let unknown = Status::with_error_details(
            Code::FailedPrecondition,
            "newer",
            ErrorDetails::with_error_info("SOMETHING_NEW", ERROR_DOMAIN, HashMap::new()),
        );
        assert_eq!(Reason::of(&unknown), None);
    }
}
