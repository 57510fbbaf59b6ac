//! The console's HTTP routes. Every page handler is a gRPC call to the shop's front door,
//! made with the signed-in person's token, and a rendering; nothing is stored here.
//!
//! Who may do what:
//! - `/sign-in`, the assets and `/healthz` are open to anybody.
//! - Every other page sends a visitor without a session to `/sign-in` (303) before it
//!   asks the shop anything; the live stream answers 401. A session the shop refuses
//!   (an expired or forged token) is cleared and sent to sign in again.
//! - Every state-changing request (any method but GET and HEAD) must come from the
//!   console's own origin ([`crate::site::guard`], 403 before the handler runs) and
//!   carry its form's CSRF token ([`crate::session`], 403 before the shop is called).
//! - The operators' pages (a resume's confirmation, the dead letters and their
//!   confirmations) answer 403 to a session without the operator scope before asking
//!   the shop; their actions are the shop's to refuse, by the token.
//!
//! This file holds the router and what every handler shares (the signed-in person, the
//! answers to a refusal or a bad form); the handlers are in `checkouts.rs` (the list,
//! the demo form, a checkout, its live stream and its resume), `dead_letters.rs`,
//! `sign_in.rs` (sign in and out) and `assets.rs` (stylesheet, script, health).

mod assets;
mod checkouts;
mod dead_letters;
mod sign_in;

use axum::{
    Form, Router,
    extract::{FromRequestParts, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
    middleware,
    response::{AppendHeaders, IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use tonic::{Code, Status};

use crate::{
    live::describe,
    session::{self, Session},
    shop::Shop,
    site::{self, Site, forbidden},
    views::{checkout::TraceLinks, layout::error_page},
};

/// What every handler needs: the shop client, where traces are, and where the console
/// is reached.
#[derive(Debug, Clone)]
pub struct Console {
    pub shop: Shop,
    pub traces: TraceLinks,
    pub site: Site,
}

/// Every route of the console, behind [`site::guard`] (the Origin check and the
/// security headers), the fallback included.
pub fn router(console: Console) -> Router {
    let site = console.site.clone();
    Router::new()
        .route("/", get(checkouts::home))
        .route("/checkouts", post(checkouts::place))
        .route("/checkouts/{id}", get(checkouts::show))
        .route("/checkouts/{id}/events", get(checkouts::events))
        .route(
            "/checkouts/{id}/resume",
            get(checkouts::confirm_resume).post(checkouts::resume),
        )
        .route("/dead-letters", get(dead_letters::list))
        .route(
            "/dead-letters/{service}/{id}/retry",
            get(dead_letters::confirm_retry).post(dead_letters::retry),
        )
        .route(
            "/dead-letters/{service}/{id}/discard",
            get(dead_letters::confirm_discard).post(dead_letters::discard),
        )
        .route("/sign-in", get(sign_in::page).post(sign_in::sign_in))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/assets/console.css", get(assets::stylesheet))
        .route("/assets/console.js", get(assets::script))
        .route("/healthz", get(assets::healthz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(site, site::guard))
        .with_state(console)
}

/// 303 to `location`, setting each of `cookies`.
fn see_other(location: &str, cookies: Vec<String>) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
        AppendHeaders(
            cookies
                .into_iter()
                .map(|cookie| (header::SET_COOKIE, cookie)),
        ),
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
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The answer for a page request without a usable session: 303 to the sign-in page,
/// clearing a cookie that holds no usable token.
fn to_sign_in(console: &Console, headers: &HeaderMap) -> Response {
    let stale = session::cookie(headers, console.site.session_cookie()).is_some();
    let clear = stale.then(|| session::clear_session(&console.site));
    see_other("/sign-in", clear.into_iter().collect())
}

/// The signed-in person of a page request. Taking it as an argument is what makes a
/// page need a session: without a usable one the request is answered with
/// [`to_sign_in`] before the handler runs, so no handler can forget the check.
struct SignedIn(Session);

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        Session::of(&parts.headers, &console.site)
            .map(SignedIn)
            .ok_or_else(|| to_sign_in(console, &parts.headers))
    }
}

/// A refusal of the shop as a page. UNAUTHENTICATED means the shop no longer takes the
/// session's token (expired, or signed with a key it no longer trusts): the session
/// ends and the visitor is sent to sign in again, seeing nothing.
fn shop_refused(console: &Console, error: Status, title: &str) -> Response {
    if error.code() == Code::Unauthenticated {
        return see_other(
            "/sign-in?notice=ended",
            vec![session::clear_session(&console.site)],
        );
    }
    (
        http_status(error.code()),
        error_page(title, &describe(error)),
    )
        .into_response()
}

/// The 403 of a form whose CSRF token is missing or is not this session's.
fn bad_csrf() -> Response {
    forbidden(
        "This form is not one the console gave you in this session (its CSRF token is \
         missing or stale). Reload the page and send it again.",
    )
}

/// A form whose only field is its CSRF token (`POST /sign-out`, a resume, a retry).
#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// A form that carries the CSRF token of the session allowed to send it.
trait CsrfProtected {
    fn csrf(&self) -> &str;
}

impl CsrfProtected for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfProtected for crate::demo::PlaceForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The form the signed-in person sent, once its CSRF token is their session's; `None`
/// (answered with [`bad_csrf`], the form unread) otherwise, or when it does not parse.
fn checked<F: CsrfProtected>(
    who: &Session,
    submitted: Result<Form<F>, FormRejection>,
) -> Option<F> {
    match submitted {
        Ok(Form(form)) if who.csrf_matches(form.csrf()) => Some(form),
        _ => None,
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        error_page("Not found", "The console has no such page."),
    )
        .into_response()
}
