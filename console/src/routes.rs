//! The console's HTTP routes. Every handler is a gRPC call to CheckoutService and a
//! rendering; nothing is stored here.

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use tonic::Code;

use crate::{
    demo::PlaceForm,
    live::{self, describe},
    shop::Shop,
    views::{
        checkout::{self, TraceLinks},
        form,
        layout::error_page,
        list::{self, ListQuery},
    },
};

/// What every handler needs: the shop client and where traces are.
#[derive(Debug, Clone)]
pub struct Console {
    pub shop: Shop,
    pub traces: TraceLinks,
}

/// Every route of the console.
pub fn router(console: Console) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/checkouts", axum::routing::post(place))
        .route("/checkouts/{id}", get(show))
        .route("/checkouts/{id}/events", get(events))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .route("/healthz", get(healthz))
        .with_state(console)
}

/// An HTML response with its status.
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The HTTP status that fits a gRPC error of the shop.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    }
}

async fn home(State(console): State<Console>, Query(query): Query<ListQuery>) -> Response {
    let place = form::place(&PlaceForm::initial(), None);
    list_page(&console, &query, &place, StatusCode::OK).await
}

async fn list_page(
    console: &Console,
    query: &ListQuery,
    place: &str,
    status: StatusCode,
) -> Response {
    let request = match query.request() {
        Ok(request) => request,
        Err(why) => return html(StatusCode::BAD_REQUEST, error_page("Bad filter", &why)),
    };
    match console.shop.list(request).await {
        Ok(listed) => html(status, list::page_of(query, &listed, place)),
        Err(error) => html(
            http_status(error.code()),
            error_page("The shop could not list the checkouts", &describe(error)),
        ),
    }
}

/// `POST /checkouts`: places the checkout, then sends the browser to its page (303, so
/// a reload does not post again). A refusal shows the form again with the shop's words.
async fn place(State(console): State<Console>, Form(form_values): Form<PlaceForm>) -> Response {
    let fault = form_values.fault();
    match console
        .shop
        .place(form_values.request(), fault.as_deref())
        .await
    {
        Ok(placed) => Redirect::to(&format!("/checkouts/{}", placed.checkout_id)).into_response(),
        Err(error) => {
            let status = http_status(error.code());
            let place = form::place(&form_values, Some(&describe(error)));
            list_page(&console, &ListQuery::default(), &place, status).await
        }
    }
}

async fn show(State(console): State<Console>, Path(id): Path<String>) -> Response {
    match console.shop.get(&id).await {
        Ok(found) => html(StatusCode::OK, checkout::page_of(&found, &console.traces)),
        Err(error) => html(
            http_status(error.code()),
            error_page("No such checkout", &describe(error)),
        ),
    }
}

async fn events(State(console): State<Console>, Path(id): Path<String>) -> Response {
    live::events(console.shop, console.traces, id).into_response()
}

/// Cached briefly only: a new build of the console may change them.
const ASSET_CACHE: &str = "public, max-age=300";

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, ASSET_CACHE),
        ],
        include_str!("../assets/console.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, ASSET_CACHE),
        ],
        include_str!("../assets/console.js"),
    )
        .into_response()
}

/// For the `healthcheck` subcommand: the console serves. It does not ask the shop, so
/// a console whose orchestrator is down stays up and says so on its pages.
async fn healthz() -> &'static str {
    "ok\n"
}
