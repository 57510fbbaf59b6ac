//! What an operator can do to a checkout from its page: resume a parked one
//! (`NEEDS_ATTENTION`). The action is a link to a confirmation page whose form posts
//! with the session's CSRF token, so it works without JavaScript and nothing is done by
//! a single stray click; the shop (ResumeCheckout) decides, and refuses anyone but an
//! operator.

use axum::http::StatusCode;
use maud::{Markup, html};
use shop_proto::checkout::v1 as pb;

use crate::views::{
    labels,
    layout::{Head, Viewer, page},
};

fn is_parked(checkout: &pb::Checkout) -> bool {
    checkout.status() == pb::CheckoutStatus::NeedsAttention
}

/// The actions block of a checkout's page: for an operator looking at a parked checkout,
/// the way to resume it; nothing otherwise.
pub fn for_checkout(checkout: &pb::Checkout, viewer: &Viewer) -> Markup {
    html! {
        @if viewer.operator && is_parked(checkout) {
            section class="card actions" aria-labelledby="actions-title" {
                h2 id="actions-title" { "Needs an operator" }
                p {
                    "This checkout stopped where the shop could not decide alone. Once its \
                     cause is fixed, resume it: it is taken up from where it stopped."
                }
                p {
                    a class="button" id="resume"
                        href={ "/checkouts/" (checkout.checkout_id) "/resume" } { "Resume…" }
                }
            }
        }
    }
}

/// The banner of a checkout's page right after an operator resumed it.
pub fn resumed_notice() -> Markup {
    html! {
        p class="notice" role="status" id="resumed" {
            "Resumed: the checkout runs again; this page shows where it goes."
        }
    }
}

/// The confirmation page for resuming `checkout`, and its status: 409 with an
/// explanation when it is not parked (nothing to resume).
pub fn confirm_resume(checkout: &pb::Checkout, viewer: &Viewer) -> (StatusCode, Markup) {
    let id = &checkout.checkout_id;
    let title = "Resume this checkout?";
    let head = Head {
        title,
        viewer: Some(viewer),
        ..Head::default()
    };
    if !is_parked(checkout) {
        let body = html! {
            h1 { "Nothing to resume" }
            p role="alert" {
                "Checkout " code { (id) } " is " (labels::checkout_status(checkout.status))
                ": only a checkout that needs attention can be resumed."
            }
            p { a href={ "/checkouts/" (id) } { "Back to the checkout" } }
        };
        return (StatusCode::CONFLICT, page(&head, body));
    }
    let last_error = checkout.steps.iter().rfind(|s| !s.last_error.is_empty());
    let body = html! {
        h1 { (title) }
        p {
            "Checkout " code class="id" { (id) } " of " code { (checkout.customer_id) }
            " is parked."
        }
        @if let Some(step) = last_error {
            p {
                "Its last error, at " code { (step.name) } ": "
                span class="message" { (step.last_error) }
            }
        }
        p {
            "Resuming takes it up from where it stopped: the step that could not finish runs \
             again (or its compensation, if the checkout was being undone). Fix the cause \
             first, or it parks again."
        }
        form method="post" action={ "/checkouts/" (id) "/resume" } {
            (viewer.csrf_field())
            p {
                button type="submit" id="confirm-resume" { "Resume the checkout" }
                " "
                a href={ "/checkouts/" (id) } { "Cancel" }
            }
        }
    };
    (StatusCode::OK, page(&head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked() -> pb::Checkout {
        pb::Checkout {
            checkout_id: "0190aaaa-0000-7000-8000-000000000001".into(),
            status: pb::CheckoutStatus::NeedsAttention.into(),
            customer_id: "<alice>".into(),
            steps: vec![pb::Step {
                name: "reserve_stock".into(),
                last_error: "unavailable <x>".into(),
                ..pb::Step::default()
            }],
            ..pb::Checkout::default()
        }
    }

    fn operator() -> Viewer {
        Viewer {
            subject: "ops".into(),
            operator: true,
            csrf: "token-1".into(),
        }
    }

    #[test]
    fn only_an_operator_sees_resume_and_only_on_a_parked_checkout() {
        assert!(
            for_checkout(&parked(), &operator())
                .into_string()
                .contains("/resume")
        );
        let customer = Viewer {
            operator: false,
            ..operator()
        };
        assert_eq!(for_checkout(&parked(), &customer).into_string(), "");
        let mut done = parked();
        done.status = pb::CheckoutStatus::Completed.into();
        assert_eq!(for_checkout(&done, &operator()).into_string(), "");
    }

    #[test]
    fn the_confirmation_posts_with_the_csrf_token_and_escapes_what_it_shows() {
        let (status, html) = confirm_resume(&parked(), &operator());
        let html = html.into_string();
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("action=\"/checkouts/0190aaaa-0000-7000-8000-000000000001/resume\""));
        assert!(html.contains("name=\"csrf\" value=\"token-1\""), "{html}");
        assert!(html.contains("&lt;alice&gt;") && html.contains("unavailable &lt;x&gt;"));
        let mut done = parked();
        done.status = pb::CheckoutStatus::Completed.into();
        let (status, html) = confirm_resume(&done, &operator());
        let html = html.into_string();
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            !html.contains("<form method=\"post\" action=\"/checkouts"),
            "{html}"
        );
    }
}
