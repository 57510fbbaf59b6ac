//! A checkout's steps and compensations on one time axis (a waterfall, as Jaeger and
//! Temporal draw them), as server-rendered SVG: one row per forward step from its start
//! to its end, then one per compensation from the moment the saga began undoing (the
//! failed step's end) to the compensation's end. Positions are SVG attributes and colours
//! come from the stylesheet, so the page keeps its no-inline-style policy and reads
//! without JavaScript; each bar carries a `<title>` with its exact times for a tooltip,
//! and the timeline below stays the accessible, complete account.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use shop_proto::checkout::v1 as pb;

use crate::views::{format::utc, labels};

/// The drawing's width in SVG units; the label column takes the first [`LABEL`].
const WIDTH: f64 = 1000.0;
const LABEL: f64 = 260.0;
const ROW: f64 = 26.0;
const BAR: f64 = 16.0;
/// The narrowest bar drawn, so an instant step stays visible.
const MIN_BAR: f64 = 2.0;

/// One bar: what it stands for, its state, and when it started and ended (`None`: still
/// going, drawn to the axis's end).
struct Span {
    label: String,
    kind: &'static str,
    status: &'static str,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

/// The waterfall of `checkout`, or nothing when no step has started yet.
pub fn waterfall(checkout: &pb::Checkout, now: DateTime<Utc>) -> Markup {
    let spans = spans(checkout);
    let Some(origin) = spans.iter().map(|s| s.start).min() else {
        return Markup::default();
    };
    let running = !labels::is_final(checkout.status);
    let last = spans
        .iter()
        .filter_map(|s| s.end.or(running.then_some(now)))
        .chain(spans.iter().map(|s| s.start))
        .max()
        .unwrap_or(origin);
    let total_ms = (last - origin).num_milliseconds().max(1) as f64;
    let x = |at: DateTime<Utc>| {
        LABEL + (at - origin).num_milliseconds().max(0) as f64 / total_ms * (WIDTH - LABEL - 8.0)
    };
    let height = ROW * spans.len() as f64 + 24.0;
    let axis = ROW * spans.len() as f64 + 16.0;
    html! {
        figure class="waterfall" id="waterfall" {
            figcaption {
                "Steps on a time axis: " (millis(total_ms)) " from the first step's start"
            }
            svg viewBox={ "0 0 " (WIDTH) " " (height) } role="img"
                aria-labelledby="waterfall-title" {
                title id="waterfall-title" { "Waterfall of the checkout's steps and compensations" }
                @for (row, span) in spans.iter().enumerate() {
                    @let y = ROW * row as f64;
                    @let start = x(span.start);
                    @let end = x(span.end.or(running.then_some(now)).unwrap_or(span.start));
                    @let took = span
                        .end
                        .map(|end| millis((end - span.start).num_milliseconds() as f64))
                        .unwrap_or_else(|| "still running".to_owned());
                    g class={ (span.kind) " " (span.status) } data-bar=(span.label) {
                        text x="0" y=(y + BAR - 3.0) class="label" { (span.label) }
                        rect x=(format!("{start:.1}")) y=(y + 2.0)
                            width=(format!("{:.1}", (end - start).max(MIN_BAR)))
                            height=(BAR) rx="2" {
                            title {
                                (span.label) ": " (span.status) ", " (took) ", from +"
                                (millis((span.start - origin).num_milliseconds() as f64))
                            }
                        }
                    }
                }
                text x=(LABEL) y=(axis) class="axis" { "0" }
                text x=(WIDTH - 8.0) y=(axis) class="axis" text-anchor="end" { (millis(total_ms)) }
            }
        }
    }
}

/// The bars of `checkout`: forward steps that started, in order, then the compensations
/// in the order the saga runs them (reverse).
fn spans(checkout: &pb::Checkout) -> Vec<Span> {
    let mut spans: Vec<Span> = checkout
        .steps
        .iter()
        .filter_map(|step| {
            Some(Span {
                label: step.name.clone(),
                kind: "step",
                status: forward_status(step),
                start: utc(step.start_time.as_ref())?,
                end: utc(step.end_time.as_ref()),
            })
        })
        .collect();
    // Undoing begins when the first step fails; the proto keeps no start of its own
    // for a compensation.
    let undo_from = checkout
        .steps
        .iter()
        .filter(|s| s.status() == pb::StepStatus::Failed)
        .filter_map(|s| utc(s.end_time.as_ref()))
        .min();
    if let Some(undo_from) = undo_from {
        spans.extend(
            checkout
                .steps
                .iter()
                .rev()
                .filter(|s| s.compensation_attempts > 0 || is_undoing(s))
                .map(|step| Span {
                    label: format!("undo {}", step.name),
                    kind: "undo",
                    status: if step.compensation_end_time.is_some() {
                        "compensated"
                    } else {
                        "compensating"
                    },
                    start: undo_from,
                    end: utc(step.compensation_end_time.as_ref()),
                }),
        );
    }
    spans
}

fn is_undoing(step: &pb::Step) -> bool {
    matches!(
        step.status(),
        pb::StepStatus::Compensating | pb::StepStatus::Compensated
    )
}

/// A forward step's outcome as its bar shows it: a compensated step did succeed first.
fn forward_status(step: &pb::Step) -> &'static str {
    match step.status() {
        pb::StepStatus::Compensating | pb::StepStatus::Compensated => "succeeded",
        _ => labels::step_status(step.status),
    }
}

fn millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;

    use super::*;

    fn at(ms: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: 1_700_000_000 + ms / 1000,
            nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
        })
    }

    fn step(name: &str, status: pb::StepStatus, start: i64, end: Option<i64>) -> pb::Step {
        pb::Step {
            name: name.into(),
            status: status.into(),
            attempts: 1,
            start_time: at(start),
            end_time: end.and_then(at),
            ..pb::Step::default()
        }
    }

    fn bar_x(svg: &str, label: &str) -> (f64, f64) {
        let group = &svg[svg.find(&format!("data-bar=\"{label}\"")).unwrap_or(0)..];
        let group = &group[group.find("<rect").unwrap_or(0)..];
        let number = |attr: &str| {
            let from = group.find(&format!(" {attr}=\"")).unwrap_or(0) + attr.len() + 3;
            group[from..]
                .split('"')
                .next()
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        (number("x"), number("width"))
    }

    #[test]
    fn bars_sit_on_one_axis_in_proportion_to_their_times() {
        let mut charge = step("charge_payment", pb::StepStatus::Failed, 100, Some(300));
        charge.last_error = "declined".into();
        let mut order = step("create_order", pb::StepStatus::Compensated, 0, Some(100));
        order.compensation_attempts = 1;
        order.compensation_end_time = at(400);
        let checkout = pb::Checkout {
            status: pb::CheckoutStatus::Cancelled.into(),
            steps: vec![order, charge],
            ..pb::Checkout::default()
        };
        let svg = waterfall(&checkout, DateTime::<Utc>::MIN_UTC).into_string();
        assert!(svg.contains("400 ms from the first step"), "{svg}");
        let (order_x, order_w) = bar_x(&svg, "create_order");
        let (charge_x, charge_w) = bar_x(&svg, "charge_payment");
        let (undo_x, undo_w) = bar_x(&svg, "undo create_order");
        assert_eq!(order_x, LABEL);
        assert!((charge_x - (order_x + order_w)).abs() < 0.2, "{svg}");
        assert!((charge_w - 2.0 * order_w).abs() < 0.2, "{svg}");
        assert!(
            (undo_x - (charge_x + charge_w)).abs() < 0.2,
            "undo starts at the failure"
        );
        assert!((undo_w - order_w).abs() < 0.2, "{svg}");
        assert!(svg.contains("class=\"step succeeded\" data-bar=\"create_order\""));
        assert!(svg.contains("class=\"step failed\" data-bar=\"charge_payment\""));
        assert!(svg.contains("class=\"undo compensated\""));
    }

    #[test]
    fn a_running_step_reaches_now_and_names_are_escaped() {
        let checkout = pb::Checkout {
            status: pb::CheckoutStatus::Running.into(),
            steps: vec![step("<b>", pb::StepStatus::Running, 0, None)],
            ..pb::Checkout::default()
        };
        let now = utc(at(2_000).as_ref()).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let svg = waterfall(&checkout, now).into_string();
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("still running"), "{svg}");
        assert!(svg.contains("2.0 s from the first step"), "{svg}");
    }

    #[test]
    fn nothing_is_drawn_before_a_step_starts() {
        let checkout = pb::Checkout {
            steps: vec![step("create_order", pb::StepStatus::Pending, 0, None)],
            ..pb::Checkout::default()
        };
        let mut unstarted = checkout.clone();
        unstarted.steps[0].start_time = None;
        assert_eq!(waterfall(&unstarted, Utc::now()).into_string(), "");
        assert!(!waterfall(&checkout, Utc::now()).into_string().is_empty());
    }
}
