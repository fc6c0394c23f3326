//! `GET /mail/config-v1.1.xml` and `/.well-known/autoconfig/mail/config-v1.1.xml`
//! (Thunderbird's clientConfig 1.1), and the same paths with `config-v1.2.xml` for the
//! IETF draft's version 1.2 (every authentication the servers offer, in order).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mailsite_shared::autoconfig::ClientConfig;
use mailsite_shared::autoconfig::thunderbird::{self, Version};

use super::{Answer, App, Kind, account, client_config, host, host_domain, query_param};
use crate::metrics::Endpoint;

const XML: &str = "text/xml; charset=utf-8";

pub(super) async fn config(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    answer(&app, uri.query(), host(&headers), Version::V1_1).into_response()
}

pub(super) async fn config_v1_2(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    answer(&app, uri.query(), host(&headers), Version::V1_2).into_response()
}

/// The document for the query's `emailaddress`; `host` is the request's `Host`.
pub(super) fn answer(
    app: &App,
    query: Option<&str>,
    host: Option<&str>,
    version: Version,
) -> Answer {
    let site = app.site.view();
    match query_param(query, "emailaddress") {
        Err(reason) => Answer::error(Endpoint::Thunderbird, StatusCode::BAD_REQUEST, &reason),
        // Thunderbird may ask before the user typed an address: a valid document
        // with placeholders, for the domain the request was sent to.
        Ok(None) => {
            let domain = host_domain(&site, host).unwrap_or_else(|| site.config().domain.clone());
            let config = ClientConfig::placeholder(site.config(), &domain);
            Answer::new(
                Endpoint::Thunderbird,
                StatusCode::OK,
                XML,
                thunderbird::render_version(&config, version),
            )
        }
        // Unknown users get what a new user would (see `account`): the answer does not
        // tell who has an account.
        Ok(Some(email)) => match account(&site, &email) {
            Ok(account) => {
                let body = match version {
                    Version::V1_1 => app.document(&site, account, Kind::Thunderbird),
                    Version::V1_2 => {
                        thunderbird::render_version(&client_config(&site, &account), Version::V1_2)
                            .into()
                    }
                };
                Answer::new(Endpoint::Thunderbird, StatusCode::OK, XML, body)
            }
            Err(refusal) => Answer::error(
                Endpoint::Thunderbird,
                StatusCode::BAD_REQUEST,
                &format!("emailaddress: {}", refusal.0),
            ),
        },
    }
}
