//! The operators' dead letters (`/dead-letters`): what every service's consumers parked,
//! newest first, one table per service, and the two ways of settling a parked one.
//! Retry… and Discard… are links to a confirmation page of their own whose form posts
//! with the session's CSRF token (Discard asks for a reason, which the letter keeps), so
//! both work without JavaScript and nothing is done by a single stray click; the shop
//! (`shop.operations.v1.DeadLetterService`) decides, refuses anyone but an operator, and
//! its refusal is shown in words. This file holds the page of every service's letters;
//! `settle.rs` the confirmation pages and the refusal.

use maud::{Markup, html};
use prost::Message;
use shop_proto::{
    events::v1::{DeadLetter, DeadLetterState, Envelope},
    operations::v1::ListDeadLettersResponse,
};

use crate::views::{
    format::date_time,
    labels::{self, LetterSource},
    layout::{Head, Viewer, page},
    url::query_value,
};

mod settle;

pub use settle::{confirm_discard, confirm_retry, refused};

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

fn checkout_link(letter: &DeadLetter) -> Markup {
    html! {
        @match checkout_of(letter) {
            Some(id) => {
                a href={ "/checkouts/" (id) } { code { (id.get(..8).unwrap_or(&id)) "…" } }
            }
            None => { "—" }
        }
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
) -> Markup {
    page(
        &Head {
            title: "Dead letters",
            viewer: Some(viewer),
            ..Head::default()
        },
        html! {
            h1 { "Dead letters" }
            @if let Some((done, source, id)) = done {
                p class="notice" role="status" id="outcome" {
                    (done.title()) " dead letter " code { (id) } " of " (source.name) ": "
                    (done.outcome()) "."
                }
            }
            p class="whose" {
                "Events a service's consumer gave up on (unreadable, senseless to it, or \
                 still failing after its deliveries), newest first. A parked event is never \
                 delivered again: its checkout waits. Fix the cause, then retry it; discard, \
                 with a reason, one that must never be handled."
            }
            @if paged.is_some() {
                p class="back" { a href="/dead-letters" { "Every service's newest letters" } }
            }
            @for each in sections {
                (section(each))
            }
        },
    )
}

/// The dead letters table's columns.
const COLUMNS: [&str; 8] = [
    "Parked",
    "Id",
    "Event",
    "Checkout",
    "Deliveries",
    "Why it was parked",
    "State",
    "Actions",
];

fn section(section: &Section) -> Markup {
    let source = section.source;
    let title = format!("dl-{}", source.word);
    html! {
        section aria-labelledby=(title) {
            h2 id=(title) { (source.name) }
            @match &section.listed {
                Err(why) => {
                    p class="error" role="alert" {
                        "The shop could not list " (source.name) "'s dead letters: " (why)
                    }
                }
                Ok(listed) => {
                    div class="table-wrap" {
                        table class="checkouts dead-letters" id={ "dead-letters-" (source.word) } {
                            caption { "Newest first" }
                            thead {
                                tr {
                                    @for heading in COLUMNS {
                                        th scope="col" { (heading) }
                                    }
                                }
                            }
                            tbody {
                                @if listed.dead_letters.is_empty() {
                                    tr {
                                        td colspan="8" {
                                            "None: " (source.name) " has parked no event."
                                        }
                                    }
                                }
                                @for letter in &listed.dead_letters {
                                    (row(source, letter))
                                }
                            }
                        }
                    }
                    @if !listed.next_page_token.is_empty() {
                        nav aria-label={ "Pages of " (source.name) } class="pages" {
                            ul {
                                li {
                                    a href={
                                        "/dead-letters?service=" (source.word)
                                        "&page=" (query_value(&listed.next_page_token))
                                    } rel="next" {
                                        "Older letters of " (source.name)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn row(source: LetterSource, letter: &DeadLetter) -> Markup {
    let id = row_id(source, letter.id);
    let state = labels::dead_letter_state(letter.state);
    let parked = letter.state() == DeadLetterState::Parked;
    html! {
        tr id=(id) data-letter=(id) data-state=(state) {
            td data-label="Parked" { (date_time(letter.park_time.as_ref())) }
            td data-label="Id" { code { (letter.id) } }
            td data-label="Event" { code { (event_type(letter)) } }
            td data-label="Checkout" { (checkout_link(letter)) }
            td data-label="Deliveries" { (letter.deliveries) }
            td data-label="Why it was parked" { span class="message" { (letter.reason) } }
            td data-label="State" {
                span class={ "status " (state) } { (state) }
                @if !parked {
                    br;
                    span class="settled" {
                        (letter.settle_note) " · by " (letter.settled_by) " · "
                        (date_time(letter.settle_time.as_ref()))
                    }
                }
            }
            td data-label="Actions" {
                @if parked {
                    a class="button" id={ "retry-" (id) }
                        href={ "/dead-letters/" (source.word) "/" (letter.id) "/retry" } {
                        "Retry…"
                    }
                    " "
                    a class="button secondary" id={ "discard-" (id) }
                        href={ "/dead-letters/" (source.word) "/" (letter.id) "/discard" } {
                        "Discard…"
                    }
                } @else {
                    "—"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use shop_proto::events::v1::Envelope;

    use super::*;
    use crate::views::labels::LETTER_SOURCES;

    pub(super) fn source() -> LetterSource {
        LETTER_SOURCES[2]
    }

    pub(super) fn parked() -> DeadLetter {
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

    pub(super) fn operator() -> Viewer {
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
        let html = page_of(&sections, None, None, &operator()).into_string();
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
        let row = row(source(), &settled).into_string();
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
        let html = page_of(&sections, None, None, &operator()).into_string();
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
        let page = |viewer| page(&head(viewer), Markup::default()).into_string();
        assert!(!page(&customer).contains("href=\"/dead-letters\""));
        assert!(page(&operator()).contains("id=\"nav-dead-letters\""));
    }

    #[test]
    fn the_banner_reads_the_redirect() {
        for done in [Done::Retried, Done::Discarded] {
            assert_eq!(Done::parse(done.word()), Some(done));
        }
        assert_eq!(Done::parse("resumed"), None);
        let html =
            page_of(&[], Some((Done::Retried, source(), 7)), None, &operator()).into_string();
        assert!(
            html.contains("id=\"outcome\">Retried dead letter <code>7</code> of inventory-svc"),
            "{html}"
        );
    }
}
