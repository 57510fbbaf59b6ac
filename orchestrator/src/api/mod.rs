//! The front door as tonic sees it: `shop.checkout.v1.CheckoutService`, and for operators
//! `shop.operations.v1.DeadLetterService` (`operator`: the relay of their dead-letter
//! actions to each service's `EventAdminService`).
//!
//! - `checkout`: the handlers (each asks the `Caller` its bearer token proved what it may
//!   see); `command`: requests parsed into typed commands; `convert`: the one mapping to
//!   protobuf; `metadata`: what is read from call metadata.
//! - `streams`: the caps on open WatchCheckout streams (the change feed that wakes them
//!   is `crate::feed`).

pub mod checkout;
pub mod command;
pub mod convert;
pub mod metadata;
pub mod operator;
pub mod streams;
