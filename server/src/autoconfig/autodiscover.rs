//! Outlook Autodiscover: `POST /autodiscover/autodiscover.xml` (POX) and
//! `GET /autodiscover/autodiscover.json` (JSON v2, which points at the POX endpoint).
//!
//! Errors are Autodiscover error documents with a 400, never a 401: a 401 makes
//! Outlook prompt the user for a password the service has no use for.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mailsite_shared::autoconfig::autodiscover;

use super::{Answer, App, Kind, account, query_param};
use crate::metrics::Endpoint;
use crate::state::Snapshot;

const XML: &str = "application/xml; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

fn error(code: u16, message: &str) -> Answer {
    Answer::new(
        Endpoint::AutodiscoverXml,
        StatusCode::BAD_REQUEST,
        XML,
        autodiscover::render_error(code, message),
    )
}

pub(super) async fn pox(State(app): State<App>, _headers: HeaderMap, body: Bytes) -> Response {
    pox_answer(&app, &body).into_response()
}

/// The answer to a POX request with this body.
pub(super) fn pox_answer(app: &App, body: &[u8]) -> Answer {
    let Ok(text) = std::str::from_utf8(body) else {
        return error(600, "Invalid Request: the body is not UTF-8 text");
    };
    if text.trim().is_empty() {
        return error(
            600,
            "Invalid Request: the body is empty; POST an Autodiscover request naming EMailAddress",
        );
    }
    let request = match autodiscover::parse_request(text) {
        Ok(request) => request,
        Err(e) => return error(600, &format!("Invalid Request: {e}")),
    };
    if request
        .schema
        .as_deref()
        .is_some_and(|s| s != autodiscover::RESPONSE_SCHEMA)
    {
        return error(
            601,
            "Provider is not available: only the outlook responseschema 2006a is offered",
        );
    }
    let site = app.site.view();
    match account(&site, &request.email) {
        Ok(account) => Answer::new(
            Endpoint::AutodiscoverXml,
            StatusCode::OK,
            XML,
            app.document(&site, account, Kind::Autodiscover),
        ),
        Err(refusal) => error(
            600,
            &format!("Invalid Request: EMailAddress: {}", refusal.0),
        ),
    }
}

pub(super) async fn pox_get() -> Response {
    pox_get_answer().into_response()
}

pub(super) fn pox_get_answer() -> Answer {
    error(
        600,
        "Invalid Request: POST an Autodiscover request to this address",
    )
}

fn json_error(code: &str, message: &str) -> Answer {
    Answer::new(
        Endpoint::AutodiscoverJson,
        StatusCode::BAD_REQUEST,
        JSON,
        autodiscover::render_json_error(code, message),
    )
}

fn json_answer(site: &Snapshot, email: Option<String>, protocol: Option<String>) -> Answer {
    let Some(email) = email.filter(|e| !e.is_empty()) else {
        return json_error(
            "InvalidUser",
            "Email is missing: add ?Email=you@your.domain",
        );
    };
    match protocol.as_deref() {
        Some(p) if p.eq_ignore_ascii_case("AutodiscoverV1") => {}
        Some(p) => {
            return json_error(
                "InvalidProtocol",
                &format!(
                    "The given protocol value '{p}' is not offered. Supported values are 'AutodiscoverV1'."
                ),
            );
        }
        None => {
            return json_error(
                "InvalidProtocol",
                "Protocol is missing: add &Protocol=AutodiscoverV1",
            );
        }
    }
    let account = match account(site, &email) {
        Ok(account) => account,
        Err(refusal) => return json_error("InvalidUser", &format!("Email: {}", refusal.0)),
    };
    let url = site_url(
        site,
        &format!("autodiscover.{}", account.domain),
        "/autodiscover/autodiscover.xml",
    );
    Answer::new(
        Endpoint::AutodiscoverJson,
        StatusCode::OK,
        JSON,
        autodiscover::render_json_v1(&url),
    )
}

/// The public URL of a path on this service under `host`.
fn site_url(site: &Snapshot, host: &str, path: &str) -> String {
    match site.config().http_listen.port() {
        443 => format!("https://{host}{path}"),
        80 => format!("http://{host}{path}"),
        port => format!("http://{host}:{port}{path}"),
    }
}

pub(super) async fn json(State(app): State<App>, uri: Uri) -> Response {
    json_query(&app, uri.query()).into_response()
}

/// The JSON v2 answer for a query naming `Email` and `Protocol`.
pub(super) fn json_query(app: &App, query: Option<&str>) -> Answer {
    let site = app.site.view();
    let email = query_param(query, "Email");
    let protocol = query_param(query, "Protocol");
    match (email, protocol) {
        (Ok(email), Ok(protocol)) => json_answer(&site, email, protocol),
        (Err(reason), _) | (_, Err(reason)) => json_error("InvalidRequest", &reason),
    }
}

pub(super) async fn json_path(
    State(app): State<App>,
    Path(email): Path<String>,
    uri: Uri,
) -> Response {
    let site = app.site.view();
    match query_param(uri.query(), "Protocol") {
        Ok(protocol) => json_answer(&site, Some(email), protocol),
        Err(reason) => json_error("InvalidRequest", &reason),
    }
    .into_response()
}
