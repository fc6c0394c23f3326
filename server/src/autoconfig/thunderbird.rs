//! `GET /mail/config-v1.1.xml` and `/.well-known/autoconfig/mail/config-v1.1.xml`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use mailsite_shared::autoconfig::{ClientConfig, thunderbird};

use super::{App, Kind, account, host_domain, plain_error, query_param, respond};
use crate::metrics::Endpoint;

const XML: &str = "text/xml; charset=utf-8";

pub(super) async fn config(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    let site = app.site.view();
    match query_param(uri.query(), "emailaddress") {
        Err(reason) => plain_error(Endpoint::Thunderbird, StatusCode::BAD_REQUEST, &reason),
        // Thunderbird may ask before the user typed an address: a valid document
        // with placeholders, for the domain the request was sent to.
        Ok(None) => {
            let domain =
                host_domain(&site, &headers).unwrap_or_else(|| site.config().domain.clone());
            let config = ClientConfig::placeholder(site.config(), &domain);
            respond(
                Endpoint::Thunderbird,
                StatusCode::OK,
                XML,
                thunderbird::render(&config),
            )
        }
        Ok(Some(email)) => match account(&site, &email) {
            Ok(account) => {
                let body = app.document(&site, &account, Kind::Thunderbird);
                respond(Endpoint::Thunderbird, StatusCode::OK, XML, body)
            }
            Err(refusal) => plain_error(
                Endpoint::Thunderbird,
                StatusCode::BAD_REQUEST,
                &format!("emailaddress: {}", refusal.0),
            ),
        },
    }
}
