//! `GET /mobileconfig?emailaddress=`: an Apple configuration profile for one user.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mailsite_shared::autoconfig::apple;

use super::{Answer, App, Kind, account, query_param};
use crate::metrics::Endpoint;

pub(super) async fn profile(State(app): State<App>, uri: Uri) -> Response {
    answer(&app, uri.query()).into_response()
}

/// The profile for the query's `emailaddress` (or `email`).
pub(super) fn answer(app: &App, query: Option<&str>) -> Answer {
    let site = app.site.view();
    let email = match query_param(query, "emailaddress") {
        Ok(Some(email)) => Ok(email),
        Ok(None) => match query_param(query, "email") {
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
            let disposition = format!("attachment; filename=\"{}.mobileconfig\"", account.domain);
            let mut answer = Answer::new(
                Endpoint::Mobileconfig,
                StatusCode::OK,
                apple::CONTENT_TYPE,
                app.document(&site, account, Kind::Apple),
            );
            answer.disposition = Some(disposition);
            answer
        }
        Err(reason) => Answer::error(Endpoint::Mobileconfig, StatusCode::BAD_REQUEST, &reason),
    }
}
