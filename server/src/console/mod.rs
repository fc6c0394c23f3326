//! The helpdesk console at `/console`: a web page for the site's operators (users with
//! the directory's operator flag) to look up a user, disable or enable their account,
//! reset their password, add and remove their app passwords or set their quota, see
//! the site map, move a letter, drain a server or bring it back, lift login blocks,
//! and read a desktop helper report against the site's truth. Plain server-rendered
//! HTML, no script.
//!
//! Security, in the order a request meets it:
//! - the HTTP service speaks plain HTTP, so the console answers loopback peers only
//!   (a browser on the server, or an HTTPS reverse proxy on this host, which also makes
//!   the session cookie `Secure` with `X-Forwarded-Proto: https`); others get 403 and
//!   the advice to use HTTPS, before any password or cookie is looked at;
//! - a POST that a browser says came from another origin (`Origin`, `Sec-Fetch-Site`)
//!   is refused;
//! - sign-in goes through the site's login throttle (a blocked source is refused before
//!   any check), counts each attempt against its (name, source) before checking the
//!   password, and locks that pair out for longer and longer after repeated failures
//!   ([`session`]), so a stranger cannot lock an operator out from elsewhere; a wrong
//!   password and a non-operator's right one get the same answer; the sign-in form
//!   carries its own token, so another site cannot sign a browser in to an account of
//!   its choosing;
//! - a session ends at the next request once its operator is disabled or demoted;
//! - the session is a random token in an `HttpOnly`, `SameSite=Strict` cookie, kept
//!   server-side with an expiry; every POST must also carry the session's CSRF token;
//! - every changing action goes through a confirmation page and is logged with the
//!   operator's name. Passwords and report contents are never logged.

mod account;
mod actions;
mod app_passwords;
mod blocks;
mod filters;
mod login;
mod lookup;
mod page;
mod quota;
mod report;
mod session;
mod sitemap;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

pub use session::Sessions;

use crate::admin::Admin;
use crate::autoconfig::App;
use crate::state::Site;

/// The console's state: the live site, this node's console sessions, the admin core its
/// changes go through, and the autoconfig service whose answers it shows.
#[derive(Clone)]
pub struct Console {
    pub site: Arc<Site>,
    console: Arc<Sessions>,
    pub admin: Admin,
    pub autoconfig: App,
}

impl Console {
    /// The console of a node: `config` is the site as configured (servers added at run
    /// time come from the directory).
    pub fn new(config: Arc<mailsite_shared::SiteConfig>, autoconfig: App) -> Console {
        let site = autoconfig.site.clone();
        Console {
            admin: Admin::new(config, site.directory.clone()),
            site,
            console: Arc::default(),
            autoconfig,
        }
    }
}

/// The session cookie's name.
const SESSION_COOKIE: &str = "mailsite_console";

/// The console's routes, to merge into the HTTP service's router.
pub fn router(console: Console) -> Router {
    Router::new()
        .route("/console", get(sitemap::show))
        .route("/console/", get(|| async { page::redirect("/console") }))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/user", get(lookup::show))
        .route(
            "/console/account",
            get(account::confirm).post(account::apply),
        )
        .route("/console/quota", get(quota::confirm).post(quota::apply))
        .route(
            "/console/app-password",
            get(app_passwords::confirm_remove).post(app_passwords::apply),
        )
        .route(
            "/console/letter",
            get(actions::confirm_move).post(actions::move_letter),
        )
        .route(
            "/console/server",
            get(actions::confirm_state).post(actions::set_state),
        )
        .route(
            "/console/report",
            get(report::form)
                .post(report::upload)
                .layer(DefaultBodyLimit::max(report::MAX_REPORT)),
        )
        .route("/console/blocks", get(blocks::show).post(blocks::remove))
        .route(page::STYLE_PATH, get(|| async { page::style() }))
        .layer(DefaultBodyLimit::max(crate::autoconfig::MAX_BODY))
        .with_state(console)
}

/// A request that may use the console: from a loopback peer, and for a POST, not
/// from another site.
pub struct Local {
    pub peer: SocketAddr,
    /// The request came through an HTTPS reverse proxy on this host.
    pub https: bool,
}

impl FromRequestParts<Console> for Local {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &Console) -> Result<Local, Response> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let Some(peer) = peer.filter(|p| p.ip().to_canonical().is_loopback()) else {
            return Err(page::refusal(
                StatusCode::FORBIDDEN,
                "Use HTTPS",
                "This address speaks plain HTTP, where passwords and sessions could be read on \
                 the way, so the helpdesk console answers only this machine. Use the site's \
                 HTTPS address (an HTTPS reverse proxy on the server), or a browser on the \
                 server itself.",
                ("/", "Mail settings"),
            ));
        };
        if parts.method == Method::POST && !same_origin(&parts.headers) {
            return Err(page::refusal(
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form was sent from another site; nothing was changed.",
                ("/console", "Site map"),
            ));
        }
        let https = parts
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        Ok(Local { peer, https })
    }
}

/// Whether a browser's own account of where a request comes from (when it gives one)
/// is this service: `Sec-Fetch-Site` where the browser sends it, else `Origin` against
/// the host asked for (`Host`, or `X-Forwarded-Host` from a reverse proxy).
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = text("origin") else {
        return true; // not a browser's cross-site form: the CSRF token decides
    };
    let Some((_, origin_host)) = origin.split_once("://") else {
        return false; // "null": a sandboxed or privacy-stripped origin
    };
    [text("host"), text("x-forwarded-host")]
        .into_iter()
        .flatten()
        .any(|host| origin_host.eq_ignore_ascii_case(host.trim()))
}

/// The signed-in operator of a request.
pub struct Operator {
    pub username: String,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    token: String,
    /// What the last action did (GET pages only).
    pub flash: Option<String>,
}

impl FromRequestParts<Console> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Console) -> Result<Operator, Response> {
        Local::from_request_parts(parts, app).await?;
        let take_flash = parts.method == Method::GET;
        let found = cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|token| Some((app.console.get(&token, take_flash)?, token)));
        // A session lasts only while its operator is an enabled operator: one disabled
        // or demoted is signed out at their next request.
        let found = match found {
            Some(((session, flash), token)) => {
                let still = app
                    .site
                    .directory
                    .user(&session.username)
                    .await
                    .is_ok_and(|u| u.enabled && u.operator);
                if !still {
                    app.console.end(&token);
                    tracing::warn!(operator = %session.username, "console: session ended, no longer an enabled operator");
                }
                still.then_some(((session, flash), token))
            }
            None => None,
        };
        match found {
            Some(((session, flash), token)) => Ok(Operator {
                username: session.username,
                csrf: session.csrf,
                token,
                flash,
            }),
            None => {
                // Back to the page asked for after signing in (a GET's own address).
                let next = match parts.method {
                    Method::GET => parts.uri.path_and_query().map(|p| p.as_str()),
                    _ => None,
                };
                let location = match next.map(login::safe_next) {
                    Some(next) if next != "/console" => format!(
                        "/console/login?next={}",
                        percent_encoding::utf8_percent_encode(
                            next,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ),
                    _ => "/console/login".to_string(),
                };
                Err(page::redirect(&location))
            }
        }
    }
}

impl Operator {
    /// The refusal of a form whose CSRF token is not the session's (`None`: it is).
    pub fn forged(&self, csrf: &str) -> Option<Response> {
        if session::same_secret(csrf, &self.csrf) {
            None
        } else {
            tracing::warn!(operator = %self.username, "console: a form without this session's CSRF token was refused");
            Some(page::refusal(
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form does not belong to your session (it is out of date, or it came from \
                 another page). Nothing was changed: reload the page and try again.",
                ("/console", "Site map"),
            ))
        }
    }

    /// Leaves a message for this operator's next page.
    pub fn tell(&self, app: &Console, message: String) {
        app.console.flash(&self.token, message);
    }
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_string())
        })
}

/// Sets (or with `max_age` 0, removes) a console cookie on a response.
fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: Option<u64>, https: bool) {
    let mut text = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if https {
        text.push_str("; Secure");
    }
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::Request;
    use mailsite_shared::autoconfig::Preference;
    use tower::ServiceExt;

    use super::*;

    async fn app() -> (Router, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mailsite-console-{}", rand::random::<u64>()));
        let mut config = mailsite_shared::SiteConfig::embedded();
        config.data_dir = dir.clone();
        let directory = crate::directory::Directory::open(&config).await.unwrap();
        directory
            .add_user("op", "op-password", "Operator", Preference::Imap)
            .await
            .unwrap();
        directory.set_operator("op", true).await.unwrap();
        let config = Arc::new(config);
        let site = crate::state::Site::load(config.clone(), directory)
            .await
            .unwrap();
        let app = App::new(site, Arc::new(AtomicBool::new(true)));
        let console = Console::new(config, app.clone());
        (crate::autoconfig::router(app).merge(router(console)), dir)
    }

    fn request(method: &str, path: &str, peer: &str, body: &str) -> Request<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A browser elsewhere on the network gets the advice to use HTTPS, for the sign-in
    /// form and for a sign-in with the right password alike.
    #[tokio::test]
    async fn plain_http_from_the_network_is_refused() {
        let (router, dir) = app().await;
        for (method, body) in [
            ("GET", ""),
            ("POST", "username=op&password=op-password&login=x"),
        ] {
            let response = router
                .clone()
                .oneshot(request(method, "/console/login", "192.0.2.7:40000", body))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert!(response.headers().get(header::SET_COOKIE).is_none());
            assert!(text(response).await.contains("HTTPS"));
        }
        let local = router
            .clone()
            .oneshot(request("GET", "/console/login", "127.0.0.1:40000", ""))
            .await
            .unwrap();
        assert_eq!(local.status(), StatusCode::OK);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Without a session every page leads to the sign-in form, keeping where it was.
    #[tokio::test]
    async fn pages_need_a_session() {
        let (router, dir) = app().await;
        let response = router
            .clone()
            .oneshot(request("GET", "/console/user?q=alice", "127.0.0.1:1", ""))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[header::LOCATION],
            "/console/login?next=%2Fconsole%2Fuser%3Fq%3Dalice"
        );
        let response = router
            .oneshot(request(
                "POST",
                "/console/server",
                "127.0.0.1:1",
                "name=mailbox1&state=maintenance&confirm=yes",
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert("x-forwarded-host", "mail.example.test".parse().unwrap());
        h.insert(header::ORIGIN, "https://mail.example.test".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(same_origin(&h));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; mailsite_console=tok; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
