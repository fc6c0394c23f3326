//! `GET /mobileconfig?emailaddress=`: an Apple configuration profile for one user.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use mailsite_shared::autoconfig::apple;

use super::{App, Kind, account, plain_error, query_param, respond};
use crate::metrics::Endpoint;

pub(super) async fn profile(State(app): State<App>, uri: Uri) -> Response {
    let site = app.site.view();
    let email = match query_param(uri.query(), "emailaddress") {
        Ok(Some(email)) => Ok(email),
        Ok(None) => match query_param(uri.query(), "email") {
            Ok(Some(email)) => Ok(email),
            Ok(None) => {
                Err("a profile is made for one user: add ?emailaddress=you@your.domain".to_string())
            }
            Err(reason) => Err(reason),
        },
        Err(reason) => Err(reason),
    };
    let account = email
        .and_then(|email| account(&site, &email).map_err(|r| format!("emailaddress: {}", r.0)));
    match account {
        Ok(account) => {
            let mut response = respond(
                Endpoint::Mobileconfig,
                StatusCode::OK,
                apple::CONTENT_TYPE,
                app.document(&site, &account, Kind::Apple),
            );
            let disposition = format!("attachment; filename=\"{}.mobileconfig\"", account.domain);
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(reason) => plain_error(Endpoint::Mobileconfig, StatusCode::BAD_REQUEST, &reason),
    }
}
