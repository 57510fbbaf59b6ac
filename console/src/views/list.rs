//! The home page: checkouts newest first, filtered by status, customer and mode through a
//! plain GET form (so filters work without JavaScript and every view has a URL), paged
//! by ListCheckouts' page tokens; then the demo form.

use maud::{Markup, html};
use serde::Deserialize;
use shop_proto::checkout::v1 as pb;

use crate::views::{
    format::{date_time, money},
    labels::{self, MODE_FILTERS, STATUS_FILTERS},
    layout::{Head, Viewer, page},
    url::query_value,
};

/// Rows per page.
pub const PAGE_SIZE: i32 = 20;

/// The query string of `/`: every field optional, empty meaning "any".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub customer: String,
    #[serde(default)]
    pub mode: String,
    /// A `next_page_token` of ListCheckouts; empty for the first page.
    #[serde(default)]
    pub page: String,
}

impl ListQuery {
    /// The ListCheckouts request for this query, or which filter value is unknown.
    pub fn request(&self) -> Result<pb::ListCheckoutsRequest, String> {
        let status = match self.status.trim() {
            "" => pb::CheckoutStatus::Unspecified,
            word => STATUS_FILTERS
                .iter()
                .find(|(name, _)| *name == word)
                .map(|(_, status)| *status)
                .ok_or_else(|| format!("no checkout status is called `{word}`"))?,
        };
        let mode = match self.mode.trim() {
            "" => pb::CoordinationMode::Unspecified,
            word => MODE_FILTERS
                .iter()
                .find(|(name, _)| *name == word)
                .map(|(_, mode)| *mode)
                .ok_or_else(|| format!("no coordination mode is called `{word}`"))?,
        };
        Ok(pb::ListCheckoutsRequest {
            page_size: PAGE_SIZE,
            page_token: self.page.clone(),
            status: status.into(),
            customer_id: self.customer.trim().to_owned(),
            mode: mode.into(),
        })
    }

    /// `status=…&customer=…&mode=…` of the filters that are set, for paging links.
    fn filters(&self) -> String {
        [
            ("status", self.status.trim()),
            ("customer", self.customer.trim()),
            ("mode", self.mode.trim()),
        ]
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", query_value(value)))
        .collect::<Vec<_>>()
        .join("&")
    }

    fn is_filtered(&self) -> bool {
        !self.filters().is_empty()
    }
}

/// The whole home page for one page of results, as `viewer` sees it: an operator every
/// customer's checkouts, a customer their own (the shop decides; the page only says so).
/// `place` is the demo form's section, shown above the list.
pub fn page_of(
    query: &ListQuery,
    listed: &pb::ListCheckoutsResponse,
    place: Markup,
    viewer: &Viewer,
) -> Markup {
    let (title, whose) = if viewer.operator {
        ("Checkouts", "Every customer's checkouts.")
    } else {
        (
            "Your checkouts",
            "Only your own checkouts: the shop shows a customer nothing else.",
        )
    };
    page(
        &Head {
            title,
            viewer: Some(viewer),
            ..Head::default()
        },
        html! {
            (place)
            section aria-labelledby="list-title" {
                h1 id="list-title" { (title) }
                p class="whose" { (whose) }
                (filters(query, viewer))
                (table(query, &listed.checkouts))
                (pages(query, &listed.next_page_token))
            }
        },
    )
}

/// The filter form; the customer filter only for an operator (a customer's list is
/// always their own, whatever it asks for).
fn filters(query: &ListQuery, viewer: &Viewer) -> Markup {
    html! {
        form method="get" action="/" class="filters" role="search" aria-label="Filter checkouts" {
            p {
                label for="f-status" { "Status" }
                select id="f-status" name="status" {
                    option value="" { "any status" }
                    (word_options(STATUS_FILTERS, &query.status))
                }
            }
            @if viewer.operator {
                p {
                    label for="f-customer" { "Customer id" }
                    input id="f-customer" name="customer" value=(query.customer.trim())
                        maxlength="64" autocomplete="off";
                }
            }
            p {
                label for="f-mode" { "Mode" }
                select id="f-mode" name="mode" {
                    option value="" { "both modes" }
                    (word_options(MODE_FILTERS, &query.mode))
                }
            }
            p {
                button type="submit" { "Filter" }
                " "
                @if query.is_filtered() {
                    a href="/" { "Clear filters" }
                }
            }
        }
    }
}

/// An `<option>` per filter word, the one `chosen` marked selected.
fn word_options<T>(filters: &[(&str, T)], chosen: &str) -> Markup {
    html! {
        @for (word, _) in filters {
            option value=(word) selected[*word == chosen.trim()] { (word) }
        }
    }
}

fn table(query: &ListQuery, checkouts: &[pb::Checkout]) -> Markup {
    html! {
        div class="table-wrap" {
            table id="checkouts" class="checkouts" {
                caption { "Newest first" }
                thead {
                    tr {
                        @for heading in COLUMNS {
                            th scope="col" { (heading) }
                        }
                    }
                }
                tbody {
                    @if checkouts.is_empty() {
                        tr {
                            td colspan="7" {
                                @if query.is_filtered() {
                                    "No checkout matches these filters."
                                } @else {
                                    "No checkouts yet: place one with the form above."
                                }
                            }
                        }
                    }
                    @for checkout in checkouts {
                        (row(checkout))
                    }
                }
            }
        }
    }
}

/// The list's columns; each cell repeats its heading as `data-label`, which the
/// stylesheet shows on narrow screens, where the table is a list of cards.
const COLUMNS: [&str; 7] = [
    "Started",
    "Checkout",
    "Customer",
    "Mode",
    "Status",
    "Failure reason",
    "Total",
];

fn row(checkout: &pb::Checkout) -> Markup {
    let id = &checkout.checkout_id;
    let short = id.get(..8).unwrap_or(id);
    let status = labels::checkout_status(checkout.status);
    html! {
        tr data-checkout=(id) {
            td data-label="Started" { (date_time(checkout.create_time.as_ref())) }
            td data-label="Checkout" {
                a href={ "/checkouts/" (id) } aria-label={ "Checkout " (id) } {
                    code { (short) "…" }
                }
            }
            td data-label="Customer" {
                a href={ "/?customer=" (query_value(&checkout.customer_id)) } {
                    (checkout.customer_id)
                }
            }
            td data-label="Mode" { (labels::mode(checkout.mode)) }
            td data-label="Status" {
                span class={ "status " (status) } { (status) }
                @if checkout.stalled {
                    " " span class="status stalled" { "stalled" }
                }
            }
            td data-label="Failure reason" { (checkout.failure_reason) }
            td data-label="Total" { (money(checkout.total.as_ref())) }
        }
    }
}

fn pages(query: &ListQuery, next_page_token: &str) -> Markup {
    let filters = query.filters();
    let first = (!query.page.is_empty()).then(|| {
        if filters.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{filters}")
        }
    });
    let next = (!next_page_token.is_empty()).then(|| {
        let mut next = format!("/?page={}", query_value(next_page_token));
        if !filters.is_empty() {
            next.push('&');
            next.push_str(&filters);
        }
        next
    });
    html! {
        @if first.is_some() || next.is_some() {
            nav aria-label="Pages" class="pages" {
                ul {
                    @if let Some(first) = first {
                        li { a href=(first) { "Newest checkouts" } }
                    }
                    @if let Some(next) = next {
                        li { a href=(next) rel="next" { "Older checkouts" } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_request_and_unknown_words_are_refused() {
        let query = ListQuery {
            status: "cancelled".into(),
            customer: " alice ".into(),
            mode: "choreographed".into(),
            page: String::new(),
        };
        let request = query.request().unwrap_or_default();
        assert_eq!(request.status, pb::CheckoutStatus::Cancelled as i32);
        assert_eq!(request.customer_id, "alice");
        assert_eq!(request.mode, pb::CoordinationMode::Choreographed as i32);
        assert_eq!(request.page_size, PAGE_SIZE);
        let bad = ListQuery {
            status: "lost".into(),
            ..ListQuery::default()
        };
        assert!(bad.request().is_err());
    }

    #[test]
    fn paging_links_keep_the_filters_and_escape_them() {
        let query = ListQuery {
            customer: "a&b".into(),
            page: "t1".into(),
            ..ListQuery::default()
        };
        let nav = pages(&query, "t2").into_string();
        assert!(nav.contains("href=\"/?customer=a%26b\""), "{nav}");
        assert!(
            nav.contains("href=\"/?page=t2&amp;customer=a%26b\""),
            "{nav}"
        );
    }

    #[test]
    fn only_an_operator_gets_the_customer_filter() {
        let listed = pb::ListCheckoutsResponse::default();
        let customer = Viewer {
            subject: "alice".into(),
            ..Viewer::default()
        };
        let html =
            page_of(&ListQuery::default(), &listed, Markup::default(), &customer).into_string();
        assert!(!html.contains("f-customer"), "{html}");
        assert!(html.contains("Your checkouts"));
        assert!(html.contains("Signed in as <strong id=\"signed-in-as\">alice</strong>"));
        let operator = Viewer {
            operator: true,
            ..customer
        };
        let html =
            page_of(&ListQuery::default(), &listed, Markup::default(), &operator).into_string();
        assert!(html.contains("f-customer"), "{html}");
    }

    #[test]
    fn a_customer_id_cannot_inject_markup() {
        let checkout = pb::Checkout {
            checkout_id: "0190-abc".into(),
            customer_id: "<img src=x onerror=alert(1)>".into(),
            ..pb::Checkout::default()
        };
        let html = row(&checkout).into_string();
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
    }
}
