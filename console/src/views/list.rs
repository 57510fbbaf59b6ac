//! The home page: checkouts newest first, filtered by status, customer and mode through a
//! plain GET form (so filters work without JavaScript and every view has a URL), paged
//! by ListCheckouts' page tokens; then the demo form.

use serde::Deserialize;
use shop_proto::checkout::v1 as pb;

use crate::{
    html::{escape, query_value},
    views::{
        format::{date_time, money},
        labels::{self, MODE_FILTERS, STATUS_FILTERS},
        layout::{Head, Viewer, page},
    },
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
pub fn page_of(
    query: &ListQuery,
    listed: &pb::ListCheckoutsResponse,
    place: &str,
    viewer: &Viewer,
) -> String {
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
        &format!(
            "{place}\n<section aria-labelledby=\"list-title\">\n<h1 id=\"list-title\">{title}</h1>\n<p class=\"whose\">{whose}</p>\n{filters}\n{table}\n{pages}\n</section>",
            filters = filters(query, viewer),
            table = table(query, &listed.checkouts),
            pages = pages(query, &listed.next_page_token),
        ),
    )
}

/// The filter form; the customer filter only for an operator (a customer's list is
/// always their own, whatever it asks for).
fn filters(query: &ListQuery, viewer: &Viewer) -> String {
    let any = |label: &str| format!("<option value=\"\">{label}</option>");
    let statuses: Vec<(&str, &str)> = STATUS_FILTERS.iter().map(|(w, _)| (*w, *w)).collect();
    let modes: Vec<(&str, &str)> = MODE_FILTERS.iter().map(|(w, _)| (*w, *w)).collect();
    let choose = |choices: &[(&str, &str)], selected: &str| -> String {
        choices
            .iter()
            .map(|(value, label)| {
                let mark = if *value == selected.trim() {
                    " selected"
                } else {
                    ""
                };
                format!("<option value=\"{value}\"{mark}>{label}</option>")
            })
            .collect()
    };
    let clear = if query.is_filtered() {
        "<a href=\"/\">Clear filters</a>"
    } else {
        ""
    };
    format!(
        r#"<form method="get" action="/" class="filters" role="search" aria-label="Filter checkouts">
<p><label for="f-status">Status</label>
<select id="f-status" name="status">{any_status}{statuses}</select></p>
{customer}
<p><label for="f-mode">Mode</label>
<select id="f-mode" name="mode">{any_mode}{modes}</select></p>
<p><button type="submit">Filter</button> {clear}</p>
</form>"#,
        any_status = any("any status"),
        statuses = choose(&statuses, &query.status),
        customer = if viewer.operator {
            format!(
                "<p><label for=\"f-customer\">Customer id</label>\n<input id=\"f-customer\" name=\"customer\" value=\"{}\" maxlength=\"64\" autocomplete=\"off\"></p>",
                escape(query.customer.trim())
            )
        } else {
            String::new()
        },
        any_mode = any("both modes"),
        modes = choose(&modes, &query.mode),
    )
}

fn table(query: &ListQuery, checkouts: &[pb::Checkout]) -> String {
    let rows: String = if checkouts.is_empty() {
        let what = if query.is_filtered() {
            "No checkout matches these filters."
        } else {
            "No checkouts yet: place one with the form above."
        };
        format!("<tr><td colspan=\"7\">{what}</td></tr>")
    } else {
        checkouts.iter().map(row).collect()
    };
    format!(
        r#"<div class="table-wrap"><table id="checkouts" class="checkouts">
<caption>Newest first</caption>
<thead><tr><th scope="col">Started</th><th scope="col">Checkout</th><th scope="col">Customer</th><th scope="col">Mode</th><th scope="col">Status</th><th scope="col">Failure reason</th><th scope="col">Total</th></tr></thead>
<tbody>
{rows}
</tbody>
</table></div>"#
    )
}

fn row(checkout: &pb::Checkout) -> String {
    let id = escape(&checkout.checkout_id);
    let short = escape(
        checkout
            .checkout_id
            .get(..8)
            .unwrap_or(&checkout.checkout_id),
    );
    let status = labels::checkout_status(checkout.status);
    let stalled = if checkout.stalled {
        " <span class=\"status stalled\">stalled</span>"
    } else {
        ""
    };
    format!(
        "<tr data-checkout=\"{id}\">\
<td data-label=\"Started\">{started}</td>\
<td data-label=\"Checkout\"><a href=\"/checkouts/{id}\" aria-label=\"Checkout {id}\"><code>{short}…</code></a></td>\
<td data-label=\"Customer\"><a href=\"/?customer={customer_q}\">{customer}</a></td>\
<td data-label=\"Mode\">{mode}</td>\
<td data-label=\"Status\"><span class=\"status {status}\">{status}</span>{stalled}</td>\
<td data-label=\"Failure reason\">{reason}</td>\
<td data-label=\"Total\">{total}</td></tr>\n",
        started = date_time(checkout.create_time.as_ref()),
        customer_q = query_value(&checkout.customer_id),
        customer = escape(&checkout.customer_id),
        mode = labels::mode(checkout.mode),
        reason = escape(&checkout.failure_reason),
        total = money(checkout.total.as_ref()),
    )
}

fn pages(query: &ListQuery, next_page_token: &str) -> String {
    let filters = query.filters();
    let mut links = Vec::new();
    if !query.page.is_empty() {
        let first = if filters.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{filters}")
        };
        links.push(format!(
            "<li><a href=\"{}\">Newest checkouts</a></li>",
            escape(&first)
        ));
    }
    if !next_page_token.is_empty() {
        let mut next = format!("/?page={}", query_value(next_page_token));
        if !filters.is_empty() {
            next.push('&');
            next.push_str(&filters);
        }
        links.push(format!(
            "<li><a href=\"{}\" rel=\"next\">Older checkouts</a></li>",
            escape(&next)
        ));
    }
    if links.is_empty() {
        return String::new();
    }
    format!(
        "<nav aria-label=\"Pages\" class=\"pages\"><ul>{}</ul></nav>",
        links.concat()
    )
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
        let nav = pages(&query, "t2");
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
        let html = page_of(&ListQuery::default(), &listed, "", &customer);
        assert!(!html.contains("f-customer"), "{html}");
        assert!(html.contains("Your checkouts"));
        assert!(html.contains("Signed in as <strong id=\"signed-in-as\">alice</strong>"));
        let operator = Viewer {
            operator: true,
            ..customer
        };
        let html = page_of(&ListQuery::default(), &listed, "", &operator);
        assert!(html.contains("f-customer"), "{html}");
    }

    #[test]
    fn a_customer_id_cannot_inject_markup() {
        let checkout = pb::Checkout {
            checkout_id: "0190-abc".into(),
            customer_id: "<img src=x onerror=alert(1)>".into(),
            ..pb::Checkout::default()
        };
        let html = row(&checkout);
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
    }
}
