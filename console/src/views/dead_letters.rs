//! The operators' dead letters (`/dead-letters`): what every service's consumers parked,
//! newest first, one table per service, and the two ways of settling a parked one.
//! Retry… and Discard… are links to a confirmation page of their own whose form posts
//! with the session's CSRF token (Discard asks for a reason, which the letter keeps), so
//! both work without JavaScript and nothing is done by a single stray click; the shop
//! (`shop.operations.v1.DeadLetterService`) decides, refuses anyone but an operator, and
//! its refusal is shown in words.

use axum::http::StatusCode;
use prost::Message;
use shop_proto::{
    events::v1::{DeadLetter, DeadLetterState, Envelope},
    operations::v1::ListDeadLettersResponse,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    html::{escape, query_value},
    views::{
        format::date_time,
        labels::{self, LetterSource},
        layout::{Head, Viewer, page},
    },
};

/// Letters per service on the page.
pub const PAGE_SIZE: i32 = 20;

/// What one service's table shows: a page of its letters, or why the shop could not
/// list them (that service down, say: the other tables still show).
#[derive(Debug)]
pub struct Section {
    pub source: LetterSource,
    pub listed: Result<ListDeadLettersResponse, String>,
}

/// What an operator just did, for the banner after the redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Retried,
    Discarded,
}

impl Done {
    /// The `done` query value, as the redirect writes it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Retried => "retried",
            Self::Discarded => "discarded",
        }
    }

    /// What the banner starts with.
    fn title(self) -> &'static str {
        match self {
            Self::Retried => "Retried",
            Self::Discarded => "Discarded",
        }
    }

    /// What the action came to, as the banner says it.
    fn outcome(self) -> &'static str {
        match self {
            Self::Retried => {
                "its event was handled by the service's consumer (the row says whether a \
                 delivery had handled it already)"
            }
            Self::Discarded => "it is settled without being handled, your reason on record",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        [Self::Retried, Self::Discarded]
            .into_iter()
            .find(|done| done.word() == word)
    }
}

/// One letter as its row and the confirmation pages name it: `payment-7`.
fn row_id(source: LetterSource, id: i64) -> String {
    format!("{}-{id}", source.word)
}

/// The event's type, from its subject (`shop.events.payment.PaymentCaptured`), which is
/// there even when the payload could not be read.
fn event_type(letter: &DeadLetter) -> &str {
    letter.subject.rsplit('.').next().unwrap_or(&letter.subject)
}

/// The checkout the letter's event belongs to, when the payload is an envelope.
fn checkout_of(letter: &DeadLetter) -> Option<String> {
    Envelope::decode(letter.payload.as_slice())
        .ok()
        .map(|envelope| envelope.correlation_id)
        .filter(|id| !id.is_empty())
}

fn checkout_link(letter: &DeadLetter) -> String {
    match checkout_of(letter) {
        Some(id) => format!(
            "<a href=\"/checkouts/{id}\"><code>{short}…</code></a>",
            id = escape(&id),
            short = escape(id.get(..8).unwrap_or(&id)),
        ),
        None => "—".into(),
    }
}

/// The whole page for `viewer` (an operator): the banner of what was just done, then a
/// table per section. `paged` names the one service shown when the page is one of its
/// older pages.
pub fn page_of(
    sections: &[Section],
    done: Option<(Done, LetterSource, i64)>,
    paged: Option<LetterSource>,
    viewer: &Viewer,
) -> String {
    let notice = done
        .map(|(done, source, id)| {
            format!(
                "<p class=\"notice\" role=\"status\" id=\"outcome\">{done} dead letter \
<code>{id}</code> of {name}: {what}.</p>",
                done = done.title(),
                name = source.name,
                what = done.outcome(),
            )
        })
        .unwrap_or_default();
    let all = if paged.is_some() {
        "<p class=\"back\"><a href=\"/dead-letters\">Every service's newest letters</a></p>"
    } else {
        ""
    };
    let tables: String = sections.iter().map(section).collect();
    page(
        &Head {
            title: "Dead letters",
            viewer: Some(viewer),
            ..Head::default()
        },
        &format!(
            "<h1>Dead letters</h1>\n{notice}\
<p class=\"whose\">Events a service's consumer gave up on (unreadable, senseless to it, or \
still failing after its deliveries), newest first. A parked event is never delivered \
again: its checkout waits. Fix the cause, then retry it; discard, with a reason, one that \
must never be handled.</p>\n{all}{tables}"
        ),
    )
}

fn section(section: &Section) -> String {
    let source = section.source;
    let title = format!("dl-{}", source.word);
    let body = match &section.listed {
        Err(why) => format!(
            "<p class=\"error\" role=\"alert\">The shop could not list {}'s dead letters: {}</p>",
            source.name,
            escape(why)
        ),
        Ok(listed) => {
            let rows: String = if listed.dead_letters.is_empty() {
                format!(
                    "<tr><td colspan=\"8\">None: {} has parked no event.</td></tr>",
                    source.name
                )
            } else {
                listed
                    .dead_letters
                    .iter()
                    .map(|letter| row(source, letter))
                    .collect()
            };
            let older = if listed.next_page_token.is_empty() {
                String::new()
            } else {
                format!(
                    "<nav aria-label=\"Pages of {name}\" class=\"pages\"><ul><li><a href=\"/dead-letters?service={word}&amp;page={token}\" rel=\"next\">Older letters of {name}</a></li></ul></nav>",
                    name = source.name,
                    word = source.word,
                    token = escape(&query_value(&listed.next_page_token)),
                )
            };
            format!(
                "<div class=\"table-wrap\"><table class=\"checkouts dead-letters\" id=\"dead-letters-{word}\">\
<caption>Newest first</caption>\
<thead><tr><th scope=\"col\">Parked</th><th scope=\"col\">Id</th><th scope=\"col\">Event</th>\
<th scope=\"col\">Checkout</th><th scope=\"col\">Deliveries</th><th scope=\"col\">Why it was parked</th>\
<th scope=\"col\">State</th><th scope=\"col\">Actions</th></tr></thead>\n<tbody>\n{rows}</tbody></table></div>{older}",
                word = source.word,
            )
        }
    };
    format!(
        "<section aria-labelledby=\"{title}\">\n<h2 id=\"{title}\">{name}</h2>\n{body}\n</section>\n",
        name = source.name,
    )
}

fn row(source: LetterSource, letter: &DeadLetter) -> String {
    let id = row_id(source, letter.id);
    let state = labels::dead_letter_state(letter.state);
    let settled = if letter.state() == DeadLetterState::Parked {
        String::new()
    } else {
        format!(
            "<br><span class=\"settled\">{note} · by {by} · {at}</span>",
            note = escape(&letter.settle_note),
            by = escape(&letter.settled_by),
            at = date_time(letter.settle_time.as_ref()),
        )
    };
    let actions = if letter.state() == DeadLetterState::Parked {
        format!(
            "<a class=\"button\" id=\"retry-{id}\" href=\"/dead-letters/{word}/{n}/retry\">Retry…</a> \
<a class=\"button secondary\" id=\"discard-{id}\" href=\"/dead-letters/{word}/{n}/discard\">Discard…</a>",
            word = source.word,
            n = letter.id,
        )
    } else {
        "—".into()
    };
    format!(
        "<tr id=\"{id}\" data-letter=\"{id}\" data-state=\"{state}\">\
<td data-label=\"Parked\">{parked}</td>\
<td data-label=\"Id\"><code>{n}</code></td>\
<td data-label=\"Event\"><code>{event}</code></td>\
<td data-label=\"Checkout\">{checkout}</td>\
<td data-label=\"Deliveries\">{deliveries}</td>\
<td data-label=\"Why it was parked\"><span class=\"message\">{reason}</span></td>\
<td data-label=\"State\"><span class=\"status {state}\">{state}</span>{settled}</td>\
<td data-label=\"Actions\">{actions}</td></tr>\n",
        parked = date_time(letter.park_time.as_ref()),
        n = letter.id,
        event = escape(event_type(letter)),
        checkout = checkout_link(letter),
        deliveries = letter.deliveries,
        reason = escape(&letter.reason),
    )
}

/// What a confirmation page says about the letter it settles.
fn described(source: LetterSource, letter: &DeadLetter) -> String {
    let checkout = match checkout_of(letter) {
        Some(_) => format!(", of checkout {}", checkout_link(letter)),
        None => String::new(),
    };
    format!(
        "<p>Dead letter <code class=\"id\">{n}</code> of <strong>{name}</strong>: \
<code>{event}</code>{checkout}, parked by <code>{consumer}</code> after {deliveries} \
deliveries, at {parked}.</p>\
<p>Why it was parked: <span class=\"message\">{reason}</span></p>",
        n = letter.id,
        name = source.name,
        event = escape(event_type(letter)),
        consumer = escape(&letter.consumer),
        deliveries = letter.deliveries,
        parked = date_time(letter.park_time.as_ref()),
        reason = escape(&letter.reason),
    )
}

/// The page for a letter that is settled already: nothing to confirm (409).
fn settled_already(head: &Head<'_>, source: LetterSource, letter: &DeadLetter) -> String {
    page(
        head,
        &format!(
            "<h1>Nothing to settle</h1>\
<p role=\"alert\">Dead letter <code>{n}</code> of {name} is {state}: only a parked letter \
can be retried or discarded.</p><p><a href=\"/dead-letters#{row}\">Back to the dead letters</a></p>",
            n = letter.id,
            name = source.name,
            state = labels::dead_letter_state(letter.state),
            row = row_id(source, letter.id),
        ),
    )
}

/// The confirmation page for retrying `letter` of `source`, and its status: 409 when
/// the letter is settled already.
pub fn confirm_retry(
    source: LetterSource,
    letter: &DeadLetter,
    viewer: &Viewer,
) -> (StatusCode, String) {
    let title = "Retry this dead letter?";
    let head = Head {
        title,
        viewer: Some(viewer),
        ..Head::default()
    };
    if letter.state() != DeadLetterState::Parked {
        return (StatusCode::CONFLICT, settled_already(&head, source, letter));
    }
    let body = format!(
        "<h1>{title}</h1>{described}\
<p>Retrying hands the event to {name}'s consumer once more, exactly as a delivery would: \
it takes effect once, its follow-up events go out, and its checkout moves on. Fix the \
cause first, or the service refuses it again (and nothing changes).</p>\
<form method=\"post\" action=\"/dead-letters/{word}/{n}/retry\">{csrf}\
<p><button type=\"submit\" id=\"confirm-retry\">Retry the dead letter</button> \
<a href=\"/dead-letters#{row}\">Cancel</a></p></form>",
        described = described(source, letter),
        name = source.name,
        word = source.word,
        n = letter.id,
        row = row_id(source, letter.id),
        csrf = viewer.csrf_field(),
    );
    (StatusCode::OK, page(&head, &body))
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
) -> (StatusCode, String) {
    let title = "Discard this dead letter?";
    let head = Head {
        title,
        viewer: Some(viewer),
        ..Head::default()
    };
    if letter.state() != DeadLetterState::Parked {
        return (StatusCode::CONFLICT, settled_already(&head, source, letter));
    }
    let error = error
        .map(|error| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"discard-error\">The shop refused to discard it: {}</p>",
                escape(error)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1>{described}\
<p>Discarding settles it for good without handling the event: nothing it would have done \
happens, and its checkout, if it has one, must then be settled by hand. Your reason stays \
on record with the letter.</p>{error}\
<form method=\"post\" action=\"/dead-letters/{word}/{n}/discard\">{csrf}\
<p><label for=\"reason\">Why it must not be handled</label>\
<textarea id=\"reason\" name=\"reason\" rows=\"3\" maxlength=\"500\" required>{reason}</textarea></p>\
<p><button type=\"submit\" id=\"confirm-discard\">Discard the dead letter</button> \
<a href=\"/dead-letters#{row}\">Cancel</a></p></form>",
        described = described(source, letter),
        word = source.word,
        n = letter.id,
        row = row_id(source, letter.id),
        csrf = viewer.csrf_field(),
        reason = escape(reason),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, page(&head, &body))
}

/// The page saying the shop refused to `action` (`retry` or `discard`) letter `id` of
/// `source`: what the refusal means, in words, then the service's own message.
pub fn refused(
    action: &str,
    source: LetterSource,
    id: i64,
    error: &Status,
    viewer: &Viewer,
) -> String {
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
        &format!(
            "<h1>{title}</h1>\
<p role=\"alert\" id=\"refusal\">{name} refused to {action} dead letter <code>{id}</code>: {meaning}</p>\
<p>The service said: <span class=\"message\" id=\"refusal-message\">{code:?}{reason}: {message}</span></p>\
<p><a href=\"/dead-letters#{row}\">Back to the dead letters</a></p>",
            title = escape(&title),
            name = source.name,
            code = error.code(),
            reason = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&reason))
            },
            message = escape(error.message()),
            row = row_id(source, id),
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use shop_proto::{events::v1::Envelope, reason};
    use tonic_types::ErrorDetails;

    use super::*;
    use crate::views::labels::LETTER_SOURCES;

    fn source() -> LetterSource {
        LETTER_SOURCES[2]
    }

    fn parked() -> DeadLetter {
        let envelope = Envelope {
            correlation_id: "0190aaaa-0000-7000-8000-000000000001".into(),
            ..Envelope::default()
        };
        DeadLetter {
            id: 7,
            subject: "shop.events.payment.PaymentCaptured".into(),
            consumer: "inventory-svc-payment-PaymentCaptured".into(),
            deliveries: 20,
            reason: "unknown sku <LAMP>".into(),
            payload: envelope.encode_to_vec(),
            state: DeadLetterState::Parked.into(),
            ..DeadLetter::default()
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
    fn a_parked_letter_offers_both_actions_and_a_settled_one_none() {
        let sections = [Section {
            source: source(),
            listed: Ok(ListDeadLettersResponse {
                dead_letters: vec![parked()],
                next_page_token: "t2".into(),
            }),
        }];
        let html = page_of(&sections, None, None, &operator());
        assert!(
            html.contains("href=\"/dead-letters/inventory/7/retry\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/dead-letters/inventory/7/discard\""),
            "{html}"
        );
        assert!(html.contains("PaymentCaptured"));
        assert!(html.contains("href=\"/checkouts/0190aaaa-0000-7000-8000-000000000001\""));
        assert!(html.contains("unknown sku &lt;LAMP&gt;"), "{html}");
        assert!(
            html.contains("/dead-letters?service=inventory&amp;page=t2"),
            "{html}"
        );
        let mut settled = parked();
        settled.state = DeadLetterState::Discarded.into();
        settled.settle_note = "<garbage>".into();
        let row = row(source(), &settled);
        assert!(
            !row.contains("/retry") && !row.contains("/discard"),
            "{row}"
        );
        assert!(row.contains("&lt;garbage&gt;"), "{row}");
    }

    #[test]
    fn a_service_that_cannot_be_listed_says_so_and_the_others_still_show() {
        let sections = [
            Section {
                source: LETTER_SOURCES[0],
                listed: Err("Unavailable: <down>".into()),
            },
            Section {
                source: source(),
                listed: Ok(ListDeadLettersResponse::default()),
            },
        ];
        let html = page_of(&sections, None, None, &operator());
        assert!(
            html.contains("could not list order-svc's dead letters"),
            "{html}"
        );
        assert!(html.contains("Unavailable: &lt;down&gt;"), "{html}");
        assert!(
            html.contains("None: inventory-svc has parked no event."),
            "{html}"
        );
    }

    #[test]
    fn the_confirmations_post_with_the_csrf_token_and_discard_asks_why() {
        let (status, html) = confirm_retry(source(), &parked(), &operator());
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
        let html = refused("retry", source(), 7, &status, &operator());
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
        );
        assert!(
            missing.contains("has no dead letter with this id"),
            "{missing}"
        );
    }

    #[test]
    fn only_an_operator_is_shown_the_way_to_the_dead_letters() {
        let head = |viewer| Head {
            title: "t",
            viewer: Some(viewer),
            ..Head::default()
        };
        let customer = Viewer {
            operator: false,
            ..operator()
        };
        assert!(!page(&head(&customer), "").contains("href=\"/dead-letters\""));
        assert!(page(&head(&operator()), "").contains("id=\"nav-dead-letters\""));
    }

    #[test]
    fn the_banner_reads_the_redirect() {
        for done in [Done::Retried, Done::Discarded] {
            assert_eq!(Done::parse(done.word()), Some(done));
        }
        assert_eq!(Done::parse("resumed"), None);
        let html = page_of(&[], Some((Done::Retried, source(), 7)), None, &operator());
        assert!(
            html.contains("id=\"outcome\">Retried dead letter <code>7</code> of inventory-svc"),
            "{html}"
        );
    }
}
