//! One checkout as a timeline: its facts, a waterfall of its steps on a time axis
//! ([`super::waterfall`]), each forward step (start, end, attempts, last
//! error and its code), then the compensations in the order they run. The page is
//! complete without JavaScript; while the checkout runs, the script swaps the
//! [`live_region`] for each new rendering the server pushes (`/checkouts/{id}/events`).

use chrono::Utc;
use maud::{Markup, html};
use shop_proto::checkout::v1 as pb;

use crate::views::{
    actions,
    format::{date_time, duration, money, time},
    labels,
    layout::{Head, Viewer, page},
    url::query_value,
    waterfall::waterfall,
};

/// Where a checkout's trace can be found: the Jaeger UI's base URL, when tracing is on.
#[derive(Debug, Clone, Default)]
pub struct TraceLinks {
    pub jaeger_ui_url: Option<String>,
}

impl TraceLinks {
    /// A Jaeger search for the orchestrator's `saga` span of this checkout: the span
    /// carries the checkout id as its `saga_id` attribute, and its trace holds every
    /// step and the services' spans under them.
    pub fn jaeger(&self, checkout_id: &str) -> Option<String> {
        let base = self.jaeger_ui_url.as_deref()?.trim_end_matches('/');
        let tags = format!("{{\"saga_id\":\"{checkout_id}\"}}");
        Some(format!(
            "{base}/search?service=orchestrator&lookback=2d&tags={}",
            query_value(&tags)
        ))
    }
}

/// Seconds between reloads of a running checkout's page when scripts are off.
const REFRESH_SECONDS: u32 = 2;

/// The whole page of one checkout, for `viewer`; `resumed` right after an operator
/// resumed it (the banner saying so).
pub fn page_of(
    checkout: &pb::Checkout,
    traces: &TraceLinks,
    viewer: &Viewer,
    resumed: bool,
) -> Markup {
    let id = &checkout.checkout_id;
    let running = !labels::is_final(checkout.status);
    let title = format!(
        "Checkout {} ({})",
        id.get(..8).unwrap_or(id),
        labels::checkout_status(checkout.status)
    );
    page(
        &Head {
            title: &title,
            refresh_without_script: running.then_some(REFRESH_SECONDS),
            viewer: Some(viewer),
        },
        html! {
            p class="back" {
                a href="/" { @if viewer.operator { "All checkouts" } @else { "Your checkouts" } }
            }
            h1 { "Checkout " code class="id" { (id) } }
            @if resumed {
                (actions::resumed_notice())
            }
            (actions::for_checkout(checkout, viewer))
            p id="announce" class="sr-only" role="status" aria-live="polite" {}
            // What console.js follows, while the checkout runs.
            div id="live" data-live=[running.then_some("true")]
                data-events=[running.then(|| format!("/checkouts/{id}/events"))] {
                (live_region(checkout, traces))
            }
        },
    )
}

/// What changes while the checkout runs: status, facts and timeline. Also what each
/// server-sent event carries, so the page and the live updates are one rendering.
pub fn live_region(checkout: &pb::Checkout, traces: &TraceLinks) -> Markup {
    let status = labels::checkout_status(checkout.status);
    html! {
        div class="checkout" data-status=(status) {
            p class="summary" {
                "Status: "
                span class={ "status " (status) } id="checkout-status" { (status) }
                @if !checkout.failure_reason.is_empty() {
                    ", because " strong id="failure-reason" { (checkout.failure_reason) }
                }
            }
            @if let Some(text) = labels::failure_explained(&checkout.failure_reason) {
                p class="explained" { (text) }
            }
            @if !labels::is_final(checkout.status) {
                p class="watching" id="watching" { "Still running: this page follows it." }
            }
            (facts(checkout, traces))
            (waterfall(checkout, Utc::now()))
            h2 { "Timeline" }
            (timeline(checkout))
        }
    }
}

fn facts(checkout: &pb::Checkout, traces: &TraceLinks) -> Markup {
    let text = |value: &str| {
        html! {
            @if value.is_empty() { "—" } @else { code { (value) } }
        }
    };
    let mut rows = vec![
        ("Mode", html! { (labels::mode(checkout.mode)) }),
        (
            "Customer",
            html! {
                a href={ "/?customer=" (query_value(&checkout.customer_id)) } {
                    (checkout.customer_id)
                }
            },
        ),
        ("Total", html! { (money(checkout.total.as_ref())) }),
        ("Order", text(&checkout.order_id)),
        ("Payment", text(&checkout.payment_id)),
        ("Tracking number", text(&checkout.tracking_number)),
        ("Started", date_time(checkout.create_time.as_ref())),
        ("Last change", date_time(checkout.update_time.as_ref())),
    ];
    if checkout.stalled {
        rows.push((
            "Stalled",
            html! { "yes: no progress for a while; a service may be down" },
        ));
    }
    if let Some(url) = traces.jaeger(&checkout.checkout_id) {
        rows.push((
            "Trace",
            html! {
                a href=(url) rel="external" { "Find this checkout's trace in Jaeger" }
            },
        ));
    }
    html! {
        dl class="facts" {
            @for (term, value) in rows {
                div { dt { (term) } dd { (value) } }
            }
        }
    }
}

/// Forward steps in order, then the compensations of the steps that were (or are being)
/// undone, in the reverse order the saga runs them.
fn timeline(checkout: &pb::Checkout) -> Markup {
    html! {
        ol class="timeline" id="timeline" {
            @for forward in &checkout.steps {
                (step(forward))
            }
            @for undone in checkout.steps.iter().rev().filter(|s| is_compensated(s)) {
                (compensation(undone))
            }
        }
    }
}

fn is_compensated(step: &pb::Step) -> bool {
    let status = labels::step_status(step.status);
    status == "compensating" || status == "compensated" || step.compensation_attempts > 0
}

fn step(step: &pb::Step) -> Markup {
    let title = labels::step_title(&step.name).unwrap_or("Step");
    let status = labels::step_status(step.status);
    let failed = !step.last_error.is_empty() || !step.last_error_code.is_empty();
    let took = duration(step.start_time.as_ref(), step.end_time.as_ref());
    let detailed =
        step.start_time.is_some() || step.end_time.is_some() || step.attempts > 0 || failed;
    html! {
        li class={ "step " (status) } data-step=(step.name) data-status=(status) {
            h3 { (title) " " code { (step.name) } }
            p { span class={ "status " (status) } { (status) } }
            @if detailed {
                dl {
                    @if step.start_time.is_some() {
                        div { dt { "Started" } dd { (time(step.start_time.as_ref())) } }
                    }
                    @if step.end_time.is_some() {
                        div {
                            dt { "Ended" }
                            dd {
                                (time(step.end_time.as_ref()))
                                @if let Some(took) = took {
                                    " (" (took) ")"
                                }
                            }
                        }
                    }
                    @if step.attempts > 0 {
                        div { dt { "Attempts" } dd { (step.attempts) } }
                    }
                    @if failed {
                        div class="error" {
                            dt { "Last error" }
                            dd {
                                // A refusal carries its gRPC code; a decline is a reply, so
                                // it has none.
                                @if !step.last_error_code.is_empty() {
                                    code class="code" { (step.last_error_code) } " "
                                }
                                span class="message" { (step.last_error) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn compensation(step: &pb::Step) -> Markup {
    let title = labels::compensation_title(&step.name);
    let status = match labels::step_status(step.status) {
        "compensated" => "compensated",
        _ => "compensating",
    };
    html! {
        li class={ "compensation " (status) } data-compensation=(step.name) data-status=(status) {
            h3 { (title) " " span class="undoes" { "(undoes " code { (step.name) } ")" } }
            p { span class={ "status " (status) } { (status) } }
            dl {
                div { dt { "Attempts" } dd { (step.compensation_attempts) } }
                @if step.compensation_end_time.is_some() {
                    div { dt { "Ended" } dd { (time(step.compensation_end_time.as_ref())) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declined() -> pb::Checkout {
        let step = |name: &str, status: pb::StepStatus| pb::Step {
            name: name.into(),
            status: status.into(),
            attempts: 1,
            ..pb::Step::default()
        };
        let mut charge = step("charge_payment", pb::StepStatus::Failed);
        charge.last_error = "card <declined>".into();
        charge.last_error_code = "FAILED_PRECONDITION".into();
        let mut order = step("create_order", pb::StepStatus::Compensated);
        order.compensation_attempts = 1;
        pb::Checkout {
            checkout_id: "0190aaaa-0000-7000-8000-000000000001".into(),
            status: pb::CheckoutStatus::Cancelled.into(),
            failure_reason: "card_declined".into(),
            customer_id: "alice".into(),
            steps: vec![
                step("price_cart", pb::StepStatus::Succeeded),
                order,
                charge,
                step("reserve_stock", pb::StepStatus::Skipped),
            ],
            ..pb::Checkout::default()
        }
    }

    #[test]
    fn a_declined_checkout_shows_the_failure_and_the_compensation_after_the_steps() {
        let html = live_region(&declined(), &TraceLinks::default()).into_string();
        assert!(html.contains("data-status=\"cancelled\""), "{html}");
        assert!(html.contains("<strong id=\"failure-reason\">card_declined</strong>"));
        assert!(
            html.contains("card &lt;declined&gt;"),
            "errors are escaped: {html}"
        );
        let charge = html
            .find("data-step=\"charge_payment\"")
            .unwrap_or(usize::MAX);
        let undo = html
            .find("data-compensation=\"create_order\"")
            .unwrap_or_default();
        assert!(charge < undo, "compensations come after the forward steps");
        assert!(html.contains("Cancel the order"));
        assert!(!html.contains("Find this checkout's trace"));
    }

    #[test]
    fn a_finished_checkout_needs_no_live_updates() {
        let viewer = Viewer::default();
        let html = page_of(&declined(), &TraceLinks::default(), &viewer, false).into_string();
        assert!(!html.contains("data-live"), "{html}");
        assert!(!html.contains("http-equiv=\"refresh\""));
        let mut running = declined();
        running.status = pb::CheckoutStatus::Compensating.into();
        let html = page_of(&running, &TraceLinks::default(), &viewer, false).into_string();
        assert!(
            html.contains("data-events=\"/checkouts/0190aaaa-0000-7000-8000-000000000001/events\"")
        );
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>"));
    }

    #[test]
    fn the_jaeger_link_searches_the_saga_span() {
        let traces = TraceLinks {
            jaeger_ui_url: Some("http://127.0.0.1:16686/".into()),
        };
        assert_eq!(
            traces.jaeger("abc").as_deref(),
            Some(
                "http://127.0.0.1:16686/search?service=orchestrator&lookback=2d&tags=%7B%22saga_id%22%3A%22abc%22%7D"
            )
        );
    }
}
