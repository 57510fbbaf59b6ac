//! The checkouts: the list with the demo form (`/`), placing one (`POST /checkouts`), a
//! checkout's page and its live stream, and an operator's resume with its confirmation.

use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::Markup;
use serde::Deserialize;
use tonic::Code;

use super::{Console, CsrfForm, SignedIn, bad_csrf, checked, http_status, see_other, shop_refused};
use crate::{
    demo::PlaceForm,
    live::{self, describe},
    session::Session,
    site::forbidden,
    views::{
        actions, checkout, form,
        layout::{Viewer, error_page},
        list::{self, ListQuery},
    },
};

/// `GET /`: the checkouts `who` may see, filtered by the query, below the demo form.
pub(super) async fn home(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Query(query): Query<ListQuery>,
) -> Response {
    let viewer = who.viewer();
    let place = form::place(&PlaceForm::initial(), None, &viewer);
    list_page(&console, &who, &viewer, &query, place, StatusCode::OK).await
}

/// The list for `query` with `place` (the demo form's section) above it, answered with
/// `status`.
async fn list_page(
    console: &Console,
    who: &Session,
    viewer: &Viewer,
    query: &ListQuery,
    place: Markup,
    status: StatusCode,
) -> Response {
    let request = match query.request() {
        Ok(request) => request,
        Err(why) => {
            return (StatusCode::BAD_REQUEST, error_page("Bad filter", &why)).into_response();
        }
    };
    match console.shop.list(who, request).await {
        Ok(listed) => (status, list::page_of(query, &listed, place, viewer)).into_response(),
        Err(error) => shop_refused(console, error, "The shop could not list the checkouts"),
    }
}

/// `POST /checkouts`: places the checkout as the signed-in person, then sends the
/// browser to its page (303, so a reload does not post again). A refusal shows the form
/// again with the shop's words.
pub(super) async fn place(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    submitted: Result<Form<PlaceForm>, FormRejection>,
) -> Response {
    let Some(form_values) = checked(&who, submitted) else {
        return bad_csrf();
    };
    let fault = form_values.fault();
    match console
        .shop
        .place(&who, form_values.request(who.subject()), fault.as_deref())
        .await
    {
        Ok(placed) => see_other(&format!("/checkouts/{}", placed.checkout_id), Vec::new()),
        Err(error) if error.code() == Code::Unauthenticated => {
            shop_refused(&console, error, "The shop refused this checkout")
        }
        Err(error) => {
            let status = http_status(error.code());
            let viewer = who.viewer();
            let place = form::place(&form_values, Some(&describe(error)), &viewer);
            list_page(
                &console,
                &who,
                &viewer,
                &ListQuery::default(),
                place,
                status,
            )
            .await
        }
    }
}

/// The query of a checkout's page: `notice=resumed` after an operator resumed it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ShowQuery {
    #[serde(default)]
    notice: String,
}

/// `GET /checkouts/{id}`: the checkout as a timeline.
pub(super) async fn show(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    match console.shop.get(&who, &id).await {
        Ok(found) => checkout::page_of(
            &found,
            &console.traces,
            &who.viewer(),
            query.notice == "resumed",
        )
        .into_response(),
        Err(error) => shop_refused(&console, error, "No such checkout"),
    }
}

/// `GET /checkouts/{id}/events`: the live stream; 401 without a session (an event stream
/// cannot follow a redirect to a page).
pub(super) async fn events(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match Session::of(&headers, &console.site) {
        Some(who) => live::events(console.shop, console.traces, who, id).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "sign in first: /sign-in\n",
        )
            .into_response(),
    }
}

/// `GET /checkouts/{id}/resume`: asks an operator to confirm resuming a parked checkout
/// (a page of its own, so the confirmation works without JavaScript).
pub(super) async fn confirm_resume(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path(id): Path<String>,
) -> Response {
    if !who.is_operator() {
        return forbidden("Only an operator resumes checkouts.");
    }
    match console.shop.get(&who, &id).await {
        Ok(found) => actions::confirm_resume(&found, &who.viewer()).into_response(),
        Err(error) => shop_refused(&console, error, "No such checkout"),
    }
}

/// `POST /checkouts/{id}/resume`: ResumeCheckout as the signed-in operator, then the
/// checkout's page with the outcome; a refusal is shown in the shop's words.
pub(super) async fn resume(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path(id): Path<String>,
    submitted: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if checked(&who, submitted).is_none() {
        return bad_csrf();
    }
    match console.shop.resume(&who, &id).await {
        Ok(resumed) => see_other(
            &format!("/checkouts/{}?notice=resumed", resumed.checkout_id),
            Vec::new(),
        ),
        Err(error) => shop_refused(&console, error, "The shop did not resume this checkout"),
    }
}
