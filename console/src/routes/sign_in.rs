//! Signing in (`/sign-in`, with its own CSRF token bound to a nonce cookie, since there
//! is no session yet) and out (`POST /sign-out`).

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use shop_proto::checkout::v1 as pb;
use tonic::Code;

use super::{Console, CsrfForm, SignedIn, bad_csrf, checked, http_status, see_other};
use crate::{
    live::describe,
    session::{self, Session},
    site::forbidden,
    views::{
        layout::Viewer,
        sign_in::{self, Notice},
    },
};

/// The query of `GET /sign-in`: `notice=signed-out` or `notice=ended` say why it shows.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SignInQuery {
    #[serde(default)]
    notice: String,
}

/// `POST /sign-in`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `GET /sign-in`: the form, with a nonce cookie its CSRF token is bound to (kept when
/// the browser has one already, so two open sign-in tabs both work).
pub(super) async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let notice = match query.notice.as_str() {
        "signed-out" => Notice::SignedOut,
        "ended" => Notice::Ended,
        _ => Notice::None,
    };
    let current = Session::of(&headers, &console.site).map(|who| who.viewer());
    sign_in_form(&console, &headers, StatusCode::OK, None, notice, current)
}

/// The sign-in page with `status` and `error`, (re)setting its nonce cookie.
fn sign_in_form(
    console: &Console,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    notice: Notice,
    current: Option<Viewer>,
) -> Response {
    let nonce = session::sign_in_nonce(headers, &console.site).unwrap_or_else(session::new_nonce);
    (
        status,
        [(
            header::SET_COOKIE,
            session::set_sign_in_nonce(&console.site, &nonce),
        )],
        sign_in::page_of(&session::csrf_of(&nonce), error, notice, current.as_ref()),
    )
        .into_response()
}

/// `POST /sign-in`: checks the form's CSRF token against the nonce cookie, that the
/// token is a well-formed unexpired JWT, then that the shop takes it (a ListCheckouts of
/// one); only then keeps it in the session cookie and goes to the checkouts.
pub(super) async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    submitted: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Some(nonce) = session::sign_in_nonce(&headers, &console.site) else {
        return forbidden(
            "This sign-in form has expired, or the browser does not keep the console's \
             cookies. Reload the sign-in page and try again.",
        );
    };
    let Ok(Form(submitted)) = submitted else {
        return bad_csrf();
    };
    if !session::csrf_matches(&nonce, &submitted.csrf) {
        return bad_csrf();
    }
    let refused = |status: StatusCode, why: &str| {
        sign_in_form(
            &console,
            &headers,
            status,
            Some(why),
            Notice::None,
            Session::of(&headers, &console.site).map(|who| who.viewer()),
        )
    };
    let who = match Session::from_token(&submitted.token) {
        Ok(who) => who,
        Err(why) => return refused(StatusCode::BAD_REQUEST, &why),
    };
    let probe = pb::ListCheckoutsRequest {
        page_size: 1,
        ..pb::ListCheckoutsRequest::default()
    };
    match console.shop.list(&who, probe).await {
        Ok(_) => {
            tracing::info!(
                subject = who.subject(),
                operator = who.is_operator(),
                "signed in"
            );
            see_other(
                "/",
                vec![
                    who.set_cookie(&console.site),
                    session::clear_sign_in_nonce(&console.site),
                ],
            )
        }
        Err(error) if error.code() == Code::Unauthenticated => refused(
            StatusCode::UNAUTHORIZED,
            &format!("the shop refused this token: {}", error.message()),
        ),
        Err(error) => refused(
            http_status(error.code()),
            &format!("the shop could not check this token: {}", describe(error)),
        ),
    }
}

/// `POST /sign-out`: clears the session cookie and shows the sign-in page.
pub(super) async fn sign_out(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    submitted: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    match checked(&who, submitted) {
        Some(_) => see_other(
            "/sign-in?notice=signed-out",
            vec![session::clear_session(&console.site)],
        ),
        None => bad_csrf(),
    }
}
