//! Settling one dead letter: the confirmation pages of Retry… and Discard… (each a form
//! that posts with the session's CSRF token) and the page of the shop's refusal.

use axum::http::StatusCode;
use maud::{Markup, html};
use shop_proto::events::v1::{DeadLetter, DeadLetterState};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::{checkout_link, checkout_of, event_type, row_id};
use crate::views::{
    format::date_time,
    labels::{self, LetterSource},
    layout::{Head, Viewer, page},
};

/// What a confirmation page says about the letter it settles.
fn described(source: LetterSource, letter: &DeadLetter) -> Markup {
    html! {
        p {
            "Dead letter " code class="id" { (letter.id) } " of " strong { (source.name) } ": "
            code { (event_type(letter)) }
            @if checkout_of(letter).is_some() {
                ", of checkout " (checkout_link(letter))
            }
            ", parked by " code { (letter.consumer) } " after " (letter.deliveries)
            " deliveries, at " (date_time(letter.park_time.as_ref())) "."
        }
        p { "Why it was parked: " span class="message" { (letter.reason) } }
    }
}

/// The page for a letter that is settled already: nothing to confirm (409).
fn settled_already(head: &Head<'_>, source: LetterSource, letter: &DeadLetter) -> Markup {
    page(
        head,
        html! {
            h1 { "Nothing to settle" }
            p role="alert" {
                "Dead letter " code { (letter.id) } " of " (source.name) " is "
                (labels::dead_letter_state(letter.state))
                ": only a parked letter can be retried or discarded."
            }
            p {
                a href={ "/dead-letters#" (row_id(source, letter.id)) } {
                    "Back to the dead letters"
                }
            }
        },
    )
}

/// The confirmation page for retrying `letter` of `source`, and its status: 409 when
/// the letter is settled already.
pub fn confirm_retry(
    source: LetterSource,
    letter: &DeadLetter,
    viewer: &Viewer,
) -> (StatusCode, Markup) {
    let title = "Retry this dead letter?";
    let head = Head {
        title,
        viewer: Some(viewer),
        ..Head::default()
    };
    if letter.state() != DeadLetterState::Parked {
        return (StatusCode::CONFLICT, settled_already(&head, source, letter));
    }
    let body = html! {
        h1 { (title) }
        (described(source, letter))
        p {
            "Retrying hands the event to " (source.name) "'s consumer once more, exactly as \
             a delivery would: it takes effect once, its follow-up events go out, and its \
             checkout moves on. Fix the cause first, or the service refuses it again (and \
             nothing changes)."
        }
        form method="post" action={ "/dead-letters/" (source.word) "/" (letter.id) "/retry" } {
            (viewer.csrf_field())
            p {
                button type="submit" id="confirm-retry" { "Retry the dead letter" }
                " "
                a href={ "/dead-letters#" (row_id(source, letter.id)) } { "Cancel" }
            }
        }
    };
    (StatusCode::OK, page(&head, body))
}

/// The confirmation page for discarding `letter` of `source`, asking for the reason
/// (`reason` is what was typed, kept when the shop refused it with `error`), and its
/// status: 409 when the letter is settled already.
pub fn confirm_discard(
    source: LetterSource,
    letter: &DeadLetter,
    viewer: &Viewer,
    reason: &str,
    error: Option<&str>,
) -> (StatusCode, Markup) {
    let title = "Discard this dead letter?";
    let head = Head {
        title,
        viewer: Some(viewer),
        ..Head::default()
    };
    if letter.state() != DeadLetterState::Parked {
        return (StatusCode::CONFLICT, settled_already(&head, source, letter));
    }
    let body = html! {
        h1 { (title) }
        (described(source, letter))
        p {
            "Discarding settles it for good without handling the event: nothing it would \
             have done happens, and its checkout, if it has one, must then be settled by \
             hand. Your reason stays on record with the letter."
        }
        @if let Some(error) = error {
            p class="error" role="alert" id="discard-error" {
                "The shop refused to discard it: " (error)
            }
        }
        form method="post" action={ "/dead-letters/" (source.word) "/" (letter.id) "/discard" } {
            (viewer.csrf_field())
            p {
                label for="reason" { "Why it must not be handled" }
                textarea id="reason" name="reason" rows="3" maxlength="500" required { (reason) }
            }
            p {
                button type="submit" id="confirm-discard" { "Discard the dead letter" }
                " "
                a href={ "/dead-letters#" (row_id(source, letter.id)) } { "Cancel" }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, page(&head, body))
}

/// The page saying the shop refused to `action` (`retry` or `discard`) letter `id` of
/// `source`: what the refusal means, in words, then the service's own message.
pub fn refused(
    action: &str,
    source: LetterSource,
    id: i64,
    error: &Status,
    viewer: &Viewer,
) -> Markup {
    let reason = error
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default();
    let meaning = match (labels::dead_letter_refusal(&reason), error.code()) {
        (Some(words), _) => words,
        (None, Code::NotFound) => {
            "The service has no dead letter with this id (retention may have swept a \
             settled one)."
        }
        (None, Code::Unavailable | Code::DeadlineExceeded) => {
            "The service could not be reached, or could not reach its database: nothing \
             changed. Try again later."
        }
        (None, _) => "Nothing changed.",
    };
    let title = format!("The shop did not {action} this dead letter");
    page(
        &Head {
            title: &title,
            viewer: Some(viewer),
            ..Head::default()
        },
        html! {
            h1 { (title) }
            p role="alert" id="refusal" {
                (source.name) " refused to " (action) " dead letter " code { (id) } ": " (meaning)
            }
            p {
                "The service said: "
                span class="message" id="refusal-message" {
                    (format!("{:?}", error.code()))
                    @if !reason.is_empty() { " (" (reason) ")" }
                    ": " (error.message())
                }
            }
            p { a href={ "/dead-letters#" (row_id(source, id)) } { "Back to the dead letters" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use shop_proto::reason;
    use tonic_types::ErrorDetails;

    use super::*;
    use crate::views::dead_letters::tests::{operator, parked, source};

    #[test]
    fn the_confirmations_post_with_the_csrf_token_and_discard_asks_why() {
        let (status, html) = confirm_retry(source(), &parked(), &operator());
        let html = html.into_string();
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("action=\"/dead-letters/inventory/7/retry\""),
            "{html}"
        );
        assert!(html.contains("name=\"csrf\" value=\"token-1\""), "{html}");
        let (status, html) = confirm_discard(
            source(),
            &parked(),
            &operator(),
            "<typed>",
            Some("reason is required"),
        );
        let html = html.into_string();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            html.contains("action=\"/dead-letters/inventory/7/discard\""),
            "{html}"
        );
        assert!(
            html.contains("name=\"reason\"") && html.contains("required"),
            "{html}"
        );
        assert!(html.contains("&lt;typed&gt;</textarea>"), "{html}");
        let mut retried = parked();
        retried.state = DeadLetterState::Retried.into();
        let (status, html) = confirm_retry(source(), &retried, &operator());
        let html = html.into_string();
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            !html.contains("<form method=\"post\" action=\"/dead-letters"),
            "{html}"
        );
    }

    #[test]
    fn a_refusal_is_explained_by_its_reason() {
        let status = Status::with_error_details(
            Code::FailedPrecondition,
            "the handler refused the event again: no product <LAMP>",
            ErrorDetails::with_error_info(
                reason::DEAD_LETTER_STILL_FAILING,
                "shop.example",
                HashMap::new(),
            ),
        );
        let html = refused("retry", source(), 7, &status, &operator()).into_string();
        assert!(
            html.contains("Its consumer refused the event again"),
            "{html}"
        );
        assert!(html.contains("DEAD_LETTER_STILL_FAILING"), "{html}");
        assert!(html.contains("no product &lt;LAMP&gt;"), "{html}");
        let missing = refused(
            "discard",
            source(),
            8,
            &Status::not_found("dead letter 8 not found"),
            &operator(),
        )
        .into_string();
        assert!(
            missing.contains("has no dead letter with this id"),
            "{missing}"
        );
    }
}
