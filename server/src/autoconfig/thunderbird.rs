//! `GET /mail/config-v1.1.xml` and `/.well-known/autoconfig/mail/config-v1.1.xml`
//! (Thunderbird's clientConfig 1.1), and the same paths with `config-v1.2.xml` for the
//! IETF draft's version 1.2 (every authentication the servers offer, in order).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use mailsite_shared::autoconfig::ClientConfig;
use mailsite_shared::autoconfig::thunderbird::{self, Version};

use super::{App, Kind, account, client_config, host_domain, plain_error, query_param, respond};
use crate::metrics::Endpoint;

const XML: &str = "text/xml; charset=utf-8";

pub(super) async fn config(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    answer(&app, &uri, &headers, Version::V1_1)
}

pub(super) async fn config_v1_2(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    answer(&app, &uri, &headers, Version::V1_2)
}

fn answer(app: &App, uri: &Uri, headers: &HeaderMap, version: Version) -> Response {
    let site = app.site.view();
    match query_param(uri.query(), "emailaddress") {
        Err(reason) => plain_error(Endpoint::Thunderbird, StatusCode::BAD_REQUEST, &reason),
        // Thunderbird may ask before the user typed an address: a valid document
        // with placeholders, for the domain the request was sent to.
        Ok(None) => {
            let domain =
                host_domain(&site, headers).unwrap_or_else(|| site.config().domain.clone());
            let config = ClientConfig::placeholder(site.config(), &domain);
            respond(
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
                    Version::V1_1 => app.document(&site, &account, Kind::Thunderbird),
                    Version::V1_2 => {
                        thunderbird::render_version(&client_config(&site, &account), Version::V1_2)
                    }
                };
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
