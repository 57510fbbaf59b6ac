//! One checkout as a timeline: its facts, a waterfall of its steps on a time axis
//! ([`super::waterfall`]), each forward step (start, end, attempts, last
//! error and its code), then the compensations in the order they run. The page is
//! complete without JavaScript; while the checkout runs, the script swaps the
//! [`live_region`] for each new rendering the server pushes (`/checkouts/{id}/events`).

use chrono::Utc;
use shop_proto::checkout::v1 as pb;

use crate::{
    html::{escape, query_value},
    views::{
        actions,
        format::{date_time, duration, money, time},
        labels,
        layout::{Head, Viewer, page},
        waterfall::waterfall,
    },
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
) -> String {
    let id = escape(&checkout.checkout_id);
    let running = !labels::is_final(checkout.status);
    let live = if running {
        format!(" data-live=\"true\" data-events=\"/checkouts/{id}/events\"")
    } else {
        String::new()
    };
    let title = format!(
        "Checkout {} ({})",
        checkout
            .checkout_id
            .get(..8)
            .unwrap_or(&checkout.checkout_id),
        labels::checkout_status(checkout.status)
    );
    page(
        &Head {
            title: &title,
            refresh_without_script: running.then_some(REFRESH_SECONDS),
            viewer: Some(viewer),
        },
        &format!(
            "<p class=\"back\"><a href=\"/\">{back}</a></p>\n\
<h1>Checkout <code class=\"id\">{id}</code></h1>\n{notice}{actions}\
<p id=\"announce\" class=\"sr-only\" role=\"status\" aria-live=\"polite\"></p>\n\
<div id=\"live\"{live}>\n{region}\n</div>",
            notice = if resumed {
                actions::resumed_notice()
            } else {
                ""
            },
            actions = actions::for_checkout(checkout, viewer),
            region = live_region(checkout, traces),
            back = if viewer.operator {
                "All checkouts"
            } else {
                "Your checkouts"
            },
        ),
    )
}

/// What changes while the checkout runs: status, facts and timeline. Also what each
/// server-sent event carries, so the page and the live updates are one rendering.
pub fn live_region(checkout: &pb::Checkout, traces: &TraceLinks) -> String {
    let status = labels::checkout_status(checkout.status);
    let explained = labels::failure_explained(&checkout.failure_reason)
        .map(|text| format!("<p class=\"explained\">{text}</p>"))
        .unwrap_or_default();
    let watching = if labels::is_final(checkout.status) {
        ""
    } else {
        "<p class=\"watching\" id=\"watching\">Still running: this page follows it.</p>"
    };
    format!(
        "<div class=\"checkout\" data-status=\"{status}\">\n\
<p class=\"summary\">Status: <span class=\"status {status}\" id=\"checkout-status\">{status}</span>{reason}</p>\n\
{explained}{watching}\n{facts}\n{waterfall}\n<h2>Timeline</h2>\n{timeline}\n</div>",
        reason = if checkout.failure_reason.is_empty() {
            String::new()
        } else {
            format!(
                ", because <strong id=\"failure-reason\">{}</strong>",
                escape(&checkout.failure_reason)
            )
        },
        facts = facts(checkout, traces),
        waterfall = waterfall(checkout, Utc::now()),
        timeline = timeline(checkout),
    )
}

fn facts(checkout: &pb::Checkout, traces: &TraceLinks) -> String {
    let text = |value: &str| {
        if value.is_empty() {
            "—".to_owned()
        } else {
            format!("<code>{}</code>", escape(value))
        }
    };
    let mut rows = vec![
        ("Mode", labels::mode(checkout.mode).to_owned()),
        (
            "Customer",
            format!(
                "<a href=\"/?customer={}\">{}</a>",
                query_value(&checkout.customer_id),
                escape(&checkout.customer_id)
            ),
        ),
        ("Total", money(checkout.total.as_ref())),
        ("Order", text(&checkout.order_id)),
        ("Payment", text(&checkout.payment_id)),
        ("Tracking number", text(&checkout.tracking_number)),
        ("Started", date_time(checkout.create_time.as_ref())),
        ("Last change", date_time(checkout.update_time.as_ref())),
    ];
    if checkout.stalled {
        rows.push((
            "Stalled",
            "yes: no progress for a while; a service may be down".to_owned(),
        ));
    }
    if let Some(url) = traces.jaeger(&checkout.checkout_id) {
        rows.push((
            "Trace",
            format!(
                "<a href=\"{}\" rel=\"external\">Find this checkout's trace in Jaeger</a>",
                escape(&url)
            ),
        ));
    }
    let items: String = rows
        .iter()
        .map(|(term, value)| format!("<div><dt>{term}</dt><dd>{value}</dd></div>"))
        .collect();
    format!("<dl class=\"facts\">{items}</dl>")
}

/// Forward steps in order, then the compensations of the steps that were (or are being)
/// undone, in the reverse order the saga runs them.
fn timeline(checkout: &pb::Checkout) -> String {
    let forward: String = checkout.steps.iter().map(step).collect();
    let undone: String = checkout
        .steps
        .iter()
        .rev()
        .filter(|s| is_compensated(s))
        .map(compensation)
        .collect();
    format!("<ol class=\"timeline\" id=\"timeline\">\n{forward}{undone}</ol>")
}

fn is_compensated(step: &pb::Step) -> bool {
    let status = labels::step_status(step.status);
    status == "compensating" || status == "compensated" || step.compensation_attempts > 0
}

fn step(step: &pb::Step) -> String {
    let name = escape(&step.name);
    let title = labels::step_title(&step.name).unwrap_or("Step");
    let status = labels::step_status(step.status);
    let mut details = Vec::new();
    if step.start_time.is_some() {
        details.push(format!(
            "<div><dt>Started</dt><dd>{}</dd></div>",
            time(step.start_time.as_ref())
        ));
    }
    if step.end_time.is_some() {
        let took = duration(step.start_time.as_ref(), step.end_time.as_ref())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        details.push(format!(
            "<div><dt>Ended</dt><dd>{}{took}</dd></div>",
            time(step.end_time.as_ref())
        ));
    }
    if step.attempts > 0 {
        details.push(format!(
            "<div><dt>Attempts</dt><dd>{}</dd></div>",
            step.attempts
        ));
    }
    if !step.last_error.is_empty() || !step.last_error_code.is_empty() {
        // A refusal carries its gRPC code; a decline is a reply, so it has none.
        let code = if step.last_error_code.is_empty() {
            String::new()
        } else {
            format!(
                "<code class=\"code\">{}</code> ",
                escape(&step.last_error_code)
            )
        };
        details.push(format!(
            "<div class=\"error\"><dt>Last error</dt><dd>{code}<span class=\"message\">{}</span></dd></div>",
            escape(&step.last_error)
        ));
    }
    let details = if details.is_empty() {
        String::new()
    } else {
        format!("<dl>{}</dl>", details.concat())
    };
    format!(
        "<li class=\"step {status}\" data-step=\"{name}\" data-status=\"{status}\">\
<h3>{title} <code>{name}</code></h3>\
<p><span class=\"status {status}\">{status}</span></p>{details}</li>\n"
    )
}

fn compensation(step: &pb::Step) -> String {
    let name = escape(&step.name);
    let title = labels::compensation_title(&step.name);
    let status = match labels::step_status(step.status) {
        "compensated" => "compensated",
        _ => "compensating",
    };
    let mut details = vec![format!(
        "<div><dt>Attempts</dt><dd>{}</dd></div>",
        step.compensation_attempts
    )];
    if step.compensation_end_time.is_some() {
        details.push(format!(
            "<div><dt>Ended</dt><dd>{}</dd></div>",
            time(step.compensation_end_time.as_ref())
        ));
    }
    format!(
        "<li class=\"compensation {status}\" data-compensation=\"{name}\" data-status=\"{status}\">\
<h3>{title} <span class=\"undoes\">(undoes <code>{name}</code>)</span></h3>\
<p><span class=\"status {status}\">{status}</span></p><dl>{}</dl></li>\n",
        details.concat()
    )
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
        let html = live_region(&declined(), &TraceLinks::default());
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
        let html = page_of(&declined(), &TraceLinks::default(), &viewer, false);
        assert!(!html.contains("data-live"), "{html}");
        assert!(!html.contains("http-equiv=\"refresh\""));
        let mut running = declined();
        running.status = pb::CheckoutStatus::Compensating.into();
        let html = page_of(&running, &TraceLinks::default(), &viewer, false);
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
