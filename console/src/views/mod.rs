//! The HTML of each page, as Rust format strings: no template engine and no build step.
//! Every value from a request or from the shop goes through [`crate::html::escape`].
//!
//! - [`layout`]: the document every page shares.
//! - [`list`]: the checkouts, filtered and paged.
//! - [`checkout`]: one checkout as a timeline, and the region live updates replace.
//! - [`actions`]: an operator's action on a checkout (resume), with its confirmation.
//! - [`dead_letters`]: every service's dead letters, with Retry and Discard and their
//!   confirmations (operators).
//! - [`waterfall`]: a checkout's steps on a time axis, as SVG.
//! - [`form`]: the demo checkout form.
//! - [`sign_in`]: the sign-in page.
//! - [`labels`]: words for the shop's enums; [`format`]: times, durations, money.

pub mod actions;
pub mod checkout;
pub mod dead_letters;
pub mod form;
pub mod format;
pub mod labels;
pub mod layout;
pub mod list;
pub mod sign_in;
pub mod waterfall;
