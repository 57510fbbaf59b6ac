//! What needs no session and no shop: the stylesheet, the script and `/healthz`.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};

/// Cached briefly only: a new build of the console may change them.
const ASSET_CACHE: &str = "public, max-age=300";

pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, ASSET_CACHE),
        ],
        include_str!("../../assets/console.css"),
    )
        .into_response()
}

pub(super) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, ASSET_CACHE),
        ],
        include_str!("../../assets/console.js"),
    )
        .into_response()
}

/// For the `healthcheck` subcommand: the console serves. It does not ask the shop, so
/// a console whose orchestrator is down stays up and says so on its pages.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}
