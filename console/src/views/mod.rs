//! The HTML of each page, as maud templates (`html!`): checked when the console compiles,
//! no template files and no build step. maud escapes every value put into a template
//! (`(value)`), whatever its source, so a customer id or an error message cannot inject
//! markup; a [`maud::Markup`] is what a view returns and another view embeds as is.
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
//! - [`labels`]: words for the shop's enums; [`format`](mod@format): times, durations, money;
//!   [`url`]: values percent-encoded for the console's links.

pub mod actions;
pub mod checkout;
pub mod dead_letters;
pub mod form;
pub mod format;
pub mod labels;
pub mod layout;
pub mod list;
pub mod sign_in;
pub mod url;
pub mod waterfall;
