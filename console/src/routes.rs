//! The console's HTTP routes. Every page handler is a gRPC call to CheckoutService, made
//! with the signed-in person's token, and a rendering; nothing is stored here.
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

use axum::{
    Form, Router,
    extract::{FromRequestParts, Path, Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
    middleware,
    response::{AppendHeaders, IntoResponse, Response},
    routing::{get, post},
};
use futures::future::join_all;
use serde::Deserialize;
use shop_proto::{checkout::v1 as pb, events::v1::DeadLetter};
use tonic::{Code, Status};

use crate::{
    demo::PlaceForm,
    live::{self, describe},
    session::{self, Session},
    shop::Shop,
    site::{self, Site, forbidden},
    views::{
        actions,
        checkout::{self, TraceLinks},
        dead_letters::{self, Done, Section},
        form,
        labels::{LETTER_SOURCES, LetterSource, letter_source},
        layout::{Viewer, error_page},
        list::{self, ListQuery},
        sign_in::{self, Notice},
    },
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
        .route("/", get(home))
        .route("/checkouts", post(place))
        .route("/checkouts/{id}", get(show))
        .route("/checkouts/{id}/events", get(events))
        .route("/checkouts/{id}/resume", get(confirm_resume).post(resume))
        .route("/dead-letters", get(dead_letter_list))
        .route(
            "/dead-letters/{service}/{id}/retry",
            get(confirm_retry).post(retry),
        )
        .route(
            "/dead-letters/{service}/{id}/discard",
            get(confirm_discard).post(discard),
        )
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(site, site::guard))
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
    html(
        http_status(error.code()),
        error_page(title, &describe(error)),
    )
}

/// The 403 of a form whose CSRF token is missing or is not this session's.
fn bad_csrf() -> Response {
    forbidden(
        "This form is not one the console gave you in this session (its CSRF token is \
         missing or stale). Reload the page and send it again.",
    )
}

async fn home(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Query(query): Query<ListQuery>,
) -> Response {
    let viewer = who.viewer();
    let place = form::place(&PlaceForm::initial(), None, &viewer);
    list_page(&console, &who, &viewer, &query, &place, StatusCode::OK).await
}

async fn list_page(
    console: &Console,
    who: &Session,
    viewer: &Viewer,
    query: &ListQuery,
    place: &str,
    status: StatusCode,
) -> Response {
    let request = match query.request() {
        Ok(request) => request,
        Err(why) => return html(StatusCode::BAD_REQUEST, error_page("Bad filter", &why)),
    };
    match console.shop.list(who, request).await {
        Ok(listed) => html(status, list::page_of(query, &listed, place, viewer)),
        Err(error) => shop_refused(console, error, "The shop could not list the checkouts"),
    }
}

/// `POST /checkouts`: places the checkout as the signed-in person, then sends the
/// browser to its page (303, so a reload does not post again). A refusal shows the form
/// again with the shop's words.
async fn place(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    submitted: Result<Form<PlaceForm>, FormRejection>,
) -> Response {
    let Ok(Form(form_values)) = submitted else {
        return bad_csrf();
    };
    if !who.csrf_matches(&form_values.csrf) {
        return bad_csrf();
    }
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
                &place,
                status,
            )
            .await
        }
    }
}

/// The query of a checkout's page: `notice=resumed` after an operator resumed it.
#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    #[serde(default)]
    notice: String,
}

async fn show(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    match console.shop.get(&who, &id).await {
        Ok(found) => html(
            StatusCode::OK,
            checkout::page_of(
                &found,
                &console.traces,
                &who.viewer(),
                query.notice == "resumed",
            ),
        ),
        Err(error) => shop_refused(&console, error, "No such checkout"),
    }
}

/// `GET /checkouts/{id}/resume`: asks an operator to confirm resuming a parked checkout
/// (a page of its own, so the confirmation works without JavaScript).
async fn confirm_resume(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path(id): Path<String>,
) -> Response {
    if !who.is_operator() {
        return forbidden("Only an operator resumes checkouts.");
    }
    match console.shop.get(&who, &id).await {
        Ok(found) => {
            let (status, body) = actions::confirm_resume(&found, &who.viewer());
            html(status, body)
        }
        Err(error) => shop_refused(&console, error, "No such checkout"),
    }
}

/// `POST /checkouts/{id}/resume`: ResumeCheckout as the signed-in operator, then the
/// checkout's page with the outcome; a refusal is shown in the shop's words.
async fn resume(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path(id): Path<String>,
    submitted: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Ok(Form(form_values)) = submitted else {
        return bad_csrf();
    };
    if !who.csrf_matches(&form_values.csrf) {
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

/// What a session without the operator scope is told on an operator's page.
const ONLY_OPERATORS: &str = "Only an operator sees and settles dead letters.";

/// The query of `/dead-letters`: `service` (its word) and `page` show an older page of
/// one service; `done`, `of` and `id` the banner after an operator's action.
#[derive(Debug, Default, Deserialize)]
struct DeadLettersQuery {
    #[serde(default)]
    service: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    done: String,
    #[serde(default)]
    of: String,
    #[serde(default)]
    id: String,
}

/// `GET /dead-letters`: the newest letters of every service (or an older page of one),
/// each service asked at once; one that cannot be listed says so in its table.
async fn dead_letter_list(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Query(query): Query<DeadLettersQuery>,
) -> Response {
    if !who.is_operator() {
        return forbidden(ONLY_OPERATORS);
    }
    let paged = match query.service.trim() {
        "" => None,
        word => match letter_source(word) {
            Some(source) => Some(source),
            None => {
                return html(
                    StatusCode::BAD_REQUEST,
                    error_page("Bad filter", &format!("no service is called `{word}`")),
                );
            }
        },
    };
    let (sources, page_token) = match paged {
        Some(source) => (vec![source], query.page.as_str()),
        None => (LETTER_SOURCES.to_vec(), ""),
    };
    let listed = join_all(sources.iter().map(|source| {
        console
            .shop
            .dead_letters(&who, source.service, dead_letters::PAGE_SIZE, page_token)
    }))
    .await;
    let mut sections = Vec::with_capacity(sources.len());
    for (source, listed) in sources.into_iter().zip(listed) {
        match listed {
            Err(error)
                if matches!(error.code(), Code::Unauthenticated | Code::PermissionDenied) =>
            {
                return shop_refused(&console, error, "The shop did not list the dead letters");
            }
            listed => sections.push(Section {
                source,
                listed: listed.map_err(describe),
            }),
        }
    }
    let done = Done::parse(&query.done)
        .zip(letter_address(&query.of, &query.id))
        .map(|(done, (source, id))| (done, source, id));
    html(
        StatusCode::OK,
        dead_letters::page_of(&sections, done, paged, &who.viewer()),
    )
}

/// The service and letter id an address names, when it names one.
fn letter_address(service: &str, id: &str) -> Option<(LetterSource, i64)> {
    Some((
        letter_source(service)?,
        id.parse().ok().filter(|id| *id > 0)?,
    ))
}

/// The largest page the shop lists, for looking a letter up.
const FIND_PAGE_SIZE: i32 = 100;
/// How many such pages a confirmation page looks through for its letter: the newest
/// 2,000 of the service's letters.
const FIND_PAGES: usize = 20;

/// Letter `id` of `source` as `who` sees it, for its confirmation page. There is no call
/// for one letter: the service's pages are read newest first (ids descend), until a
/// page reaches past it.
async fn find_letter(
    console: &Console,
    who: &Session,
    source: LetterSource,
    id: i64,
) -> Result<Option<DeadLetter>, Status> {
    let mut page_token = String::new();
    for _ in 0..FIND_PAGES {
        let page = console
            .shop
            .dead_letters(who, source.service, FIND_PAGE_SIZE, &page_token)
            .await?;
        let past = page.dead_letters.last().is_some_and(|last| last.id <= id);
        if let Some(letter) = page.dead_letters.into_iter().find(|letter| letter.id == id) {
            return Ok(Some(letter));
        }
        if past || page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(None)
}

/// The letter an operator's page is about, or the answer to give instead: 403 without
/// the operator scope, 404 for an address or letter that does not exist, the shop's
/// refusal.
async fn letter_to_settle(
    console: &Console,
    who: &Session,
    service: &str,
    id: &str,
) -> Result<(LetterSource, DeadLetter), Response> {
    if !who.is_operator() {
        return Err(forbidden(ONLY_OPERATORS));
    }
    let Some((source, id)) = letter_address(service, id) else {
        return Err(not_found().await);
    };
    match find_letter(console, who, source, id).await {
        Ok(Some(letter)) => Ok((source, letter)),
        Ok(None) => Err(html(
            StatusCode::NOT_FOUND,
            error_page(
                "No such dead letter",
                &format!("{} has no dead letter {id}.", source.name),
            ),
        )),
        Err(error) => Err(shop_refused(
            console,
            error,
            "The shop could not find this dead letter",
        )),
    }
}

/// `GET /dead-letters/{service}/{id}/retry`: asks an operator to confirm the retry.
async fn confirm_retry(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
) -> Response {
    match letter_to_settle(&console, &who, &service, &id).await {
        Ok((source, letter)) => {
            let (status, body) = dead_letters::confirm_retry(source, &letter, &who.viewer());
            html(status, body)
        }
        Err(answer) => answer,
    }
}

/// `GET /dead-letters/{service}/{id}/discard`: asks an operator why, and to confirm.
async fn confirm_discard(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
) -> Response {
    match letter_to_settle(&console, &who, &service, &id).await {
        Ok((source, letter)) => {
            let (status, body) =
                dead_letters::confirm_discard(source, &letter, &who.viewer(), "", None);
            html(status, body)
        }
        Err(answer) => answer,
    }
}

/// Where the browser goes after an action the shop took: the dead letters, with the
/// banner saying what was done, at the letter's row.
fn settled(done: Done, source: LetterSource, id: i64) -> Response {
    see_other(
        &format!(
            "/dead-letters?done={}&of={}&id={id}#{}-{id}",
            done.word(),
            source.word,
            source.word
        ),
        Vec::new(),
    )
}

/// `POST /dead-letters/{service}/{id}/retry`: RetryDeadLetter as the signed-in
/// operator, then the dead letters with the outcome; a refusal is shown in words.
async fn retry(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
    submitted: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Ok(Form(form_values)) = submitted else {
        return bad_csrf();
    };
    if !who.csrf_matches(&form_values.csrf) {
        return bad_csrf();
    }
    let Some((source, id)) = letter_address(&service, &id) else {
        return not_found().await;
    };
    match console
        .shop
        .retry_dead_letter(&who, source.service, id)
        .await
    {
        Ok(_) => settled(Done::Retried, source, id),
        Err(error) if error.code() == Code::Unauthenticated => {
            shop_refused(&console, error, "The shop did not retry this dead letter")
        }
        Err(error) => html(
            http_status(error.code()),
            dead_letters::refused("retry", source, id, &error, &who.viewer()),
        ),
    }
}

/// `POST /dead-letters/{service}/{id}/discard`.
#[derive(Debug, Default, Deserialize)]
struct DiscardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /dead-letters/{service}/{id}/discard`: DiscardDeadLetter with the operator's
/// reason, then the dead letters with the outcome. A reason the shop refuses (empty, too
/// long) shows the form again with its words; any other refusal is shown in words.
async fn discard(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
    submitted: Result<Form<DiscardForm>, FormRejection>,
) -> Response {
    let Ok(Form(form_values)) = submitted else {
        return bad_csrf();
    };
    if !who.csrf_matches(&form_values.csrf) {
        return bad_csrf();
    }
    let Some((source, letter_id)) = letter_address(&service, &id) else {
        return not_found().await;
    };
    let discarded = console
        .shop
        .discard_dead_letter(&who, source.service, letter_id, &form_values.reason)
        .await;
    match discarded {
        Ok(_) => settled(Done::Discarded, source, letter_id),
        Err(error) if error.code() == Code::Unauthenticated => {
            shop_refused(&console, error, "The shop did not discard this dead letter")
        }
        Err(error) if error.code() == Code::InvalidArgument => {
            match letter_to_settle(&console, &who, &service, &id).await {
                Ok((source, letter)) => {
                    let (status, body) = dead_letters::confirm_discard(
                        source,
                        &letter,
                        &who.viewer(),
                        &form_values.reason,
                        Some(error.message()),
                    );
                    html(status, body)
                }
                Err(answer) => answer,
            }
        }
        Err(error) => html(
            http_status(error.code()),
            dead_letters::refused("discard", source, letter_id, &error, &who.viewer()),
        ),
    }
}

/// The live stream: 401 without a session (an event stream cannot follow a redirect to
/// a page).
async fn events(
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

/// The query of `GET /sign-in`: `notice=signed-out` or `notice=ended` say why it shows.
#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    #[serde(default)]
    notice: String,
}

/// `POST /sign-in`.
#[derive(Debug, Default, Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`.
#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /sign-in`: the form, with a nonce cookie its CSRF token is bound to (kept when
/// the browser has one already, so two open sign-in tabs both work).
async fn sign_in_page(
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
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (
                header::SET_COOKIE,
                session::set_sign_in_nonce(&console.site, &nonce),
            ),
        ],
        sign_in::page_of(&session::csrf_of(&nonce), error, notice, current.as_ref()),
    )
        .into_response()
}

/// `POST /sign-in`: checks the form's CSRF token against the nonce cookie, that the
/// token is a well-formed unexpired JWT, then that the shop takes it (a ListCheckouts of
/// one); only then keeps it in the session cookie and goes to the checkouts.
async fn sign_in(
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
async fn sign_out(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    submitted: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    match submitted {
        Ok(Form(form)) if who.csrf_matches(&form.csrf) => see_other(
            "/sign-in?notice=signed-out",
            vec![session::clear_session(&console.site)],
        ),
        _ => bad_csrf(),
    }
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

async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        error_page("Not found", "The console has no such page."),
    )
}
