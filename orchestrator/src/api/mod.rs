//! The front door as tonic sees it: `shop.checkout.v1.CheckoutService`.
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
pub mod streams;
