//! `POST /helper/preference`: a user tells the site whether they prefer POP or IMAP
//! (the desktop helper does this when they choose), so that the next autoconfig and
//! Autodiscover answers list that protocol first.
//!
//! Authenticated with the user's own password (HTTP Basic, checked against the
//! directory's argon2 hash); the body is `{"preference": "imap" | "pop3"}`. A wrong
//! password waits before its 401, as a wrong login does, so the endpoint is no faster
//! an oracle than IMAP. Basic sends the password as it is, and this service speaks
//! plain HTTP: a password is taken only from a loopback peer (the helper on the same
//! machine, or an HTTPS reverse proxy on this host); any other peer gets 403 and the
//! advice to use HTTPS, before its password is looked at.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use mailsite_shared::autoconfig::Preference;
use mailsite_shared::route::login_username;

use super::{App, plain_error, respond};
use crate::metrics::Endpoint;

/// The wait before answering a wrong password.
const FAILURE_DELAY: Duration = Duration::from_millis(250);

/// Name and password from an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

fn unauthorized(message: &str) -> Response {
    let mut response = plain_error(Endpoint::Other, StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"mailsite\", charset=\"UTF-8\""),
    );
    response
}

pub(super) async fn store(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |m: &str| plain_error(Endpoint::Other, StatusCode::BAD_REQUEST, m);
    if !peer.ip().is_loopback() {
        return plain_error(
            Endpoint::Other,
            StatusCode::FORBIDDEN,
            "passwords are not taken over plain HTTP from the network: use the site's HTTPS address",
        );
    }
    let Some((typed, password)) = basic(&headers) else {
        return unauthorized("sign in with your address and password (HTTP Basic)");
    };
    let preference = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(value) => match value.get("preference").and_then(|p| p.as_str()) {
            Some(p) => match Preference::parse(p) {
                Some(p) => p,
                None => return bad("preference must be \"imap\" or \"pop3\""),
            },
            None => return bad("the body must be {\"preference\": \"imap\" | \"pop3\"}"),
        },
        Err(_) => return bad("the body must be JSON: {\"preference\": \"imap\" | \"pop3\"}"),
    };
    let username = login_username(app.site.view().config(), &typed).unwrap_or_default();
    let directory = &app.site.directory;
    let valid = !username.is_empty()
        && directory
            .verify_password(&username, &password)
            .await
            .unwrap_or(false);
    if !valid {
        tokio::time::sleep(FAILURE_DELAY).await;
        return unauthorized("wrong address or password; nothing was changed");
    }
    if let Err(error) = directory.set_preference(&username, preference).await {
        tracing::warn!(%error, "cannot store a preference");
        return plain_error(
            Endpoint::Other,
            StatusCode::SERVICE_UNAVAILABLE,
            "the directory cannot be written now; try again later",
        );
    }
    // Serve the new order at once rather than at the next poll.
    if let Err(error) = app.site.refresh().await {
        tracing::warn!(%error, "cannot reload the site after a preference change");
    }
    tracing::info!(user = %username, %preference, "preference changed by the user");
    respond(
        Endpoint::Other,
        StatusCode::OK,
        "text/plain; charset=utf-8",
        format!("{username} now prefers {preference}; autoconfig and Autodiscover list it first\n"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// A password sent from the network over plain HTTP is refused before it is looked
    /// at (nothing changes, even with the right one); from loopback it is checked.
    #[tokio::test]
    async fn passwords_only_from_loopback_over_plain_http() {
        let dir = std::env::temp_dir().join(format!("mailsite-pref-{}", rand::random::<u64>()));
        let mut config = mailsite_shared::SiteConfig::embedded();
        config.data_dir = dir.clone();
        let directory = crate::directory::Directory::open(&config).await.unwrap();
        directory
            .add_user("alice", "alice-password", "Alice", Preference::Imap)
            .await
            .unwrap();
        let site = crate::state::Site::load(Arc::new(config), directory)
            .await
            .unwrap();
        let router = super::super::router(App::new(site.clone(), Arc::new(AtomicBool::new(true))));
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:alice-password");
        let ask = |peer: &str| {
            let mut request = Request::post("/helper/preference")
                .header(header::AUTHORIZATION, format!("Basic {auth}"))
                .body(Body::from(r#"{"preference": "pop3"}"#))
                .unwrap();
            let peer: std::net::SocketAddr = peer.parse().unwrap();
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        };
        let remote = ask("192.0.2.7:40000").await.unwrap();
        assert_eq!(remote.status(), StatusCode::FORBIDDEN);
        let prefers = |site: &crate::state::Site| {
            site.snapshot()
                .users
                .get("alice")
                .map(|user| user.preference)
        };
        assert_eq!(prefers(&site), Some(Preference::Imap));
        let local = ask("127.0.0.1:40000").await.unwrap();
        assert_eq!(local.status(), StatusCode::OK);
        assert_eq!(prefers(&site), Some(Preference::Pop3));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn basic_credentials_are_read() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("alice@example.test:pa:ss");
        h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
        assert_eq!(
            basic(&h),
            Some(("alice@example.test".into(), "pa:ss".into()))
        );
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(basic(&h), None);
    }
}
