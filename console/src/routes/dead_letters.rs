//! The operators' dead letters: every service's letters (`/dead-letters`), and Retry and
//! Discard, each a confirmation page and the form it posts.

use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures::future::join_all;
use serde::Deserialize;
use shop_proto::events::v1::DeadLetter;
use tonic::{Code, Status};

use super::{
    Console, CsrfForm, CsrfProtected, SignedIn, bad_csrf, checked, http_status, not_found,
    see_other, shop_refused,
};
use crate::{
    live::describe,
    session::Session,
    site::forbidden,
    views::{
        dead_letters::{self, Done, Section},
        labels::{LETTER_SOURCES, LetterSource, letter_source},
        layout::error_page,
    },
};

/// What a session without the operator scope is told on an operator's page.
const ONLY_OPERATORS: &str = "Only an operator sees and settles dead letters.";

/// The query of `/dead-letters`: `service` (its word) and `page` show an older page of
/// one service; `done`, `of` and `id` the banner after an operator's action.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DeadLettersQuery {
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
pub(super) async fn list(
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
                return (
                    StatusCode::BAD_REQUEST,
                    error_page("Bad filter", &format!("no service is called `{word}`")),
                )
                    .into_response();
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
    dead_letters::page_of(&sections, done, paged, &who.viewer()).into_response()
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
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            error_page(
                "No such dead letter",
                &format!("{} has no dead letter {id}.", source.name),
            ),
        )
            .into_response()),
        Err(error) => Err(shop_refused(
            console,
            error,
            "The shop could not find this dead letter",
        )),
    }
}

/// `GET /dead-letters/{service}/{id}/retry`: asks an operator to confirm the retry.
pub(super) async fn confirm_retry(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
) -> Response {
    match letter_to_settle(&console, &who, &service, &id).await {
        Ok((source, letter)) => {
            dead_letters::confirm_retry(source, &letter, &who.viewer()).into_response()
        }
        Err(answer) => answer,
    }
}

/// `GET /dead-letters/{service}/{id}/discard`: asks an operator why, and to confirm.
pub(super) async fn confirm_discard(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
) -> Response {
    match letter_to_settle(&console, &who, &service, &id).await {
        Ok((source, letter)) => {
            dead_letters::confirm_discard(source, &letter, &who.viewer(), "", None).into_response()
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
pub(super) async fn retry(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
    submitted: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if checked(&who, submitted).is_none() {
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
        Err(error) => (
            http_status(error.code()),
            dead_letters::refused("retry", source, id, &error, &who.viewer()),
        )
            .into_response(),
    }
}

/// `POST /dead-letters/{service}/{id}/discard`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DiscardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

impl CsrfProtected for DiscardForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /dead-letters/{service}/{id}/discard`: DiscardDeadLetter with the operator's
/// reason, then the dead letters with the outcome. A reason the shop refuses (empty, too
/// long) shows the form again with its words; any other refusal is shown in words.
pub(super) async fn discard(
    State(console): State<Console>,
    SignedIn(who): SignedIn,
    Path((service, id)): Path<(String, String)>,
    submitted: Result<Form<DiscardForm>, FormRejection>,
) -> Response {
    let Some(form_values) = checked(&who, submitted) else {
        return bad_csrf();
    };
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
                Ok((source, letter)) => dead_letters::confirm_discard(
                    source,
                    &letter,
                    &who.viewer(),
                    &form_values.reason,
                    Some(error.message()),
                )
                .into_response(),
                Err(answer) => answer,
            }
        }
        Err(error) => (
            http_status(error.code()),
            dead_letters::refused("discard", source, letter_id, &error, &who.viewer()),
        )
            .into_response(),
    }
}
