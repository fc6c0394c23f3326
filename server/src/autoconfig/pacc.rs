//! `GET /.well-known/user-agent-configuration.json`: the PACC document of the domain
//! the request was sent to (`ua-auto-config.<domain>`), the very bytes whose digest
//! the zone publishes (see [`mailsite_shared::autoconfig::pacc`]).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mailsite_shared::autoconfig::pacc::{CONTENT_TYPE, Document};

use super::{App, host_domain, plain_error, respond};
use crate::metrics::Endpoint;

pub(super) async fn document(State(app): State<App>, headers: HeaderMap) -> Response {
    let site = app.site.view();
    let domain =
        host_domain(&site, super::host(&headers)).unwrap_or_else(|| site.config().domain.clone());
    match Document::for_domain(site.config(), &domain) {
        Ok(document) => respond(Endpoint::Pacc, StatusCode::OK, CONTENT_TYPE, document.bytes),
        Err(why) => plain_error(Endpoint::Pacc, StatusCode::NOT_FOUND, &why),
    }
}
