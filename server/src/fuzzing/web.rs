//! The `http_requests` and `console_reports` targets: the fuzzer's bytes as requests to
//! the HTTP service (autoconfig and the helpdesk console, one router as `serve` builds
//! it), over a site database in a scratch directory with a user, a disabled user and
//! an operator who is signed in to the console.
//!
//! `http_requests`: the first byte picks an endpoint ([`ROUTES`]); the bytes up to the
//! first newline are the `Host` header (none when there is no newline), the rest the
//! query string (bytes a URI cannot carry are percent-encoded; `%`, `&`, `=` and `+`
//! are left for the handlers to decode), the path's last segment, or the body.
//! `console_reports`: the bytes are the report file of the console's upload form.
//!
//! Every answer must be a client's or a success (never a server error), and its body
//! what its type says: XML that parses (quick-xml) and names the user the request
//! did, JSON that parses, HTML that is well formed ([`super::html`]); redirects stay on
//! this site. Each input is sent a second time with its markup characters (`<`, `>`,
//! `"`) defused: the two HTML pages must have the same elements, so nothing supplied
//! in a request or a report becomes markup.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use mailsite_shared::SiteConfig;
use mailsite_shared::autoconfig::{Preference, autodiscover, thunderbird};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::runtime::Runtime;
use tower::ServiceExt;

use super::harness::{DISABLED, PASSWORD, USER, scratch_dir};
use super::html;
use crate::autoconfig::{self, App, account};
use crate::console::{self, Console};
use crate::directory::Directory;
use crate::state::Site;

/// The operator the fixture signs in as.
pub const OPERATOR: &str = "op";

/// Where every request comes from: the console answers loopback peers only.
const PEER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    40000,
);

const FORM: &str = "application/x-www-form-urlencoded";

/// How an endpoint takes the fuzzer's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Carry {
    Query,
    /// The path's last segment (and whatever follows it, a query included).
    Path,
    /// The body, with this content type.
    Body(&'static str),
}

/// The endpoints `http_requests` reaches, picked by the first byte: method, path, how
/// the bytes go, and whether the operator's session goes along.
pub const ROUTES: [(&str, &str, Carry, bool); 16] = [
    ("GET", "/mail/config-v1.1.xml", Carry::Query, false),
    (
        "GET",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        Carry::Query,
        false,
    ),
    (
        "POST",
        "/autodiscover/autodiscover.xml",
        Carry::Body("text/xml"),
        false,
    ),
    (
        "POST",
        "/AutoDiscover/AutoDiscover.xml",
        Carry::Body("text/xml"),
        false,
    ),
    (
        "GET",
        "/autodiscover/autodiscover.json",
        Carry::Query,
        false,
    ),
    (
        "GET",
        "/autodiscover/autodiscover.json/v1.0/",
        Carry::Path,
        false,
    ),
    ("GET", "/mobileconfig", Carry::Query, false),
    ("GET", "/console/login", Carry::Query, false),
    // Without the sign-in form's cookie: refused before any password is looked at.
    ("POST", "/console/login", Carry::Body(FORM), false),
    ("GET", "/console", Carry::Query, true),
    ("GET", "/console/user", Carry::Query, true),
    ("GET", "/console/letter", Carry::Query, true),
    ("GET", "/console/server", Carry::Query, true),
    // Without the session's CSRF token: parsed, then refused, so nothing changes.
    ("POST", "/console/letter", Carry::Body(FORM), true),
    ("POST", "/console/server", Carry::Body(FORM), true),
    ("GET", "/console/report", Carry::Query, true),
];

/// Bytes a URI cannot carry as they are; `%&=+;/?:@` and the like are left as sent.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/')
    .remove(b'?')
    .remove(b'%');

pub struct Web {
    runtime: Runtime,
    router: Router,
    /// The autoconfig service itself, for the prepared HTTP/1.1 path (`wire`).
    pub(super) app: App,
    pub site: Arc<Site>,
    /// The `Cookie` header of the operator's session.
    session: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// The fixture, built once per process.
pub fn web() -> &'static Web {
    static WEB: OnceLock<Web> = OnceLock::new();
    WEB.get_or_init(Web::new)
}

/// One answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of `name="<field>" value="..."` in a page.
    fn field(&self, field: &str) -> Option<String> {
        let text = self.text();
        let marker = format!("name=\"{field}\" value=\"");
        let start = text.find(&marker)? + marker.len();
        let end = text[start..].find('"')?;
        Some(text[start..start + end].to_string())
    }

    /// A cookie this answer sets, as `name=value`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

impl Web {
    fn new() -> Web {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for fuzzing");
        let scratch = scratch_dir("web");
        let (router, site, app) = runtime.block_on(async {
            let mut config = SiteConfig::embedded();
            config.data_dir = scratch.clone();
            let directory = Directory::open(&config)
                .await
                .expect("the fuzzing site database");
            for user in [USER, DISABLED, OPERATOR] {
                directory
                    .add_user(user, PASSWORD, user, Preference::Imap)
                    .await
                    .expect("a fuzzing user");
            }
            directory
                .set_enabled(DISABLED, false)
                .await
                .expect("a disabled fuzzing user");
            directory
                .set_operator(OPERATOR, true)
                .await
                .expect("the fuzzing operator");
            let config = Arc::new(config);
            let site = Site::load(config.clone(), directory)
                .await
                .expect("the fuzzing site");
            let app = App::new(site.clone(), Arc::new(AtomicBool::new(true)));
            let console = Console::new(config, app.clone());
            (
                autoconfig::router(app.clone()).merge(console::router(console)),
                site,
                app,
            )
        });
        let mut web = Web {
            runtime,
            router,
            app,
            site,
            session: String::new(),
            csrf: String::new(),
        };
        web.sign_in();
        web
    }

    /// Signs the operator in through the sign-in form, as a browser does.
    fn sign_in(&mut self) {
        let form = self.send(Method::GET, "/console/login", None, None, Vec::new(), None);
        let login_cookie = form.cookie("mailsite_console_login");
        let login = form.field("login").unwrap_or_default();
        let body = format!("username={OPERATOR}&password={PASSWORD}&login={login}&next=/console");
        let signed = self.send(
            Method::POST,
            "/console/login",
            None,
            Some(FORM),
            body.into_bytes(),
            login_cookie.as_deref(),
        );
        self.session = signed
            .cookie("mailsite_console")
            .unwrap_or_else(|| panic!("the operator cannot sign in: {}", signed.text()));
        let page = self.send(
            Method::GET,
            "/console/report",
            None,
            None,
            Vec::new(),
            Some(&self.session.clone()),
        );
        self.csrf = page
            .field("csrf")
            .unwrap_or_else(|| panic!("no CSRF token in {}", page.text()));
    }

    /// Sends one request through the router and reads the whole answer.
    pub fn send(
        &self,
        method: Method,
        uri: &str,
        host: Option<&[u8]>,
        content_type: Option<&str>,
        body: Vec<u8>,
        cookie: Option<&str>,
    ) -> Answer {
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri.parse().expect("a URI the caller checked");
        let headers = request.headers_mut();
        if let Some(host) = host.and_then(|h| HeaderValue::from_bytes(h).ok()) {
            headers.insert(header::HOST, host);
        }
        if let Some(content_type) = content_type {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).expect("a content type"),
            );
        }
        if let Some(cookie) = cookie {
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(cookie).expect("a cookie"),
            );
        }
        request.extensions_mut().insert(ConnectInfo(PEER));
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router answers");
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20)
                .await
                .expect("a whole body");
            Answer {
                status: parts.status,
                headers: parts.headers,
                body: body.to_vec(),
            }
        })
    }

    /// The operator's session cookie, for the console's pages.
    pub fn session(&self) -> &str {
        &self.session
    }
}

/// `bytes` with the characters that make markup replaced by harmless ones, raw and
/// percent-encoded alike (`<` `(`, `>` `)`, `"` `'`).
pub fn defused(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i..i + 3)
            .filter(|e| e[0] == b'%')
            .map(|e| e[1..].to_ascii_uppercase());
        match escape.as_deref() {
            Some(b"3C") => out.extend_from_slice(b"%28"),
            Some(b"3E") => out.extend_from_slice(b"%29"),
            Some(b"22") => out.extend_from_slice(b"%27"),
            _ => {
                out.push(match bytes[i] {
                    b'<' => b'(',
                    b'>' => b')',
                    b'"' => b'\'',
                    b => b,
                });
                i += 1;
                continue;
            }
        }
        i += 3;
    }
    out
}

/// Checks what an answer's body is against what its type says, and where a redirect
/// leads; returns the shape of an HTML page.
pub fn check(answer: &Answer) -> Option<html::Shape> {
    assert!(
        !answer.status.is_server_error(),
        "a server error: {} {}",
        answer.status,
        answer.text()
    );
    if let Some(location) = answer.headers.get(header::LOCATION) {
        let location = location.to_str().expect("a readable Location");
        assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.contains('\\'),
            "a redirect off this site: {location}"
        );
    }
    let content_type = answer.content_type().to_string();
    if content_type.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(&answer.body)
        .unwrap_or_else(|_| panic!("a {content_type} body that is not UTF-8"));
    if content_type.starts_with("text/html") {
        return Some(html::checked(text));
    }
    if content_type.starts_with("application/xml") || content_type.starts_with("text/xml") {
        well_formed_xml(text);
    } else if content_type.starts_with("application/json") {
        serde_json::from_str::<serde_json::Value>(text)
            .unwrap_or_else(|e| panic!("JSON that does not parse ({e}): {text}"));
    } else if content_type == mailsite_shared::autoconfig::apple::CONTENT_TYPE {
        // Apple's fixed DOCTYPE first; the plist after it must be well formed.
        let plist = text
            .find("<plist")
            .map(|at| &text[at..])
            .unwrap_or_else(|| panic!("a profile without a plist: {text}"));
        well_formed_xml(plist);
    } else {
        assert!(
            content_type.starts_with("text/plain"),
            "an unexpected content type {content_type}"
        );
    }
    None
}

/// Panics unless `text` is one well-formed XML document.
fn well_formed_xml(text: &str) {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(quick_xml::events::Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Text(t)) => {
                t.decode()
                    .unwrap_or_else(|e| panic!("undecodable XML text ({e}): {text}"));
                let raw = String::from_utf8_lossy(&t);
                assert!(
                    !raw.contains('<') && crate::fuzzing::html::shape(&raw).is_ok(),
                    "broken XML text {raw:?}: {text}"
                );
            }
            Ok(_) => {}
            Err(e) => panic!("XML that does not parse ({e}): {text}"),
        }
    }
    assert!(depth == 0 && roots == 1, "not one XML document: {text}");
}

/// The request `http_requests` makes of some bytes.
struct Outgoing<'a> {
    method: Method,
    uri: String,
    host: Option<&'a [u8]>,
    carry: Carry,
    body: Vec<u8>,
    signed_in: bool,
}

impl Outgoing<'_> {
    /// Sends the request, with the operator's session if it goes along.
    fn send(&self, web: &Web) -> Answer {
        let content_type = match self.carry {
            Carry::Body(content_type) => Some(content_type),
            _ => None,
        };
        web.send(
            self.method.clone(),
            &self.uri,
            self.host,
            content_type,
            self.body.clone(),
            self.signed_in.then(|| web.session()),
        )
    }
}

/// The request `http_requests` makes of `data`; `None` when the bytes make no URI.
fn request(data: &[u8]) -> Option<Outgoing<'_>> {
    let (selector, rest) = data.split_first()?;
    let (method, path, carry, signed_in) = ROUTES[usize::from(*selector) % ROUTES.len()];
    let (host, payload) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let encoded = || percent_encoding::percent_encode(payload, ENCODED).to_string();
    let (uri, body) = match carry {
        Carry::Query if payload.is_empty() => (path.to_string(), Vec::new()),
        Carry::Query => (format!("{path}?{}", encoded()), Vec::new()),
        Carry::Path => (format!("{path}{}", encoded()), Vec::new()),
        Carry::Body(_) => (path.to_string(), payload.to_vec()),
    };
    let uri = if uri.parse::<axum::http::Uri>().is_ok() {
        uri
    } else {
        // A `%` that starts no escape: sent encoded.
        let all =
            utf8_percent_encode(&String::from_utf8_lossy(payload), NON_ALPHANUMERIC).to_string();
        match carry {
            Carry::Query => format!("{path}?{all}"),
            Carry::Path => format!("{path}{all}"),
            Carry::Body(_) => path.to_string(),
        }
    };
    uri.parse::<axum::http::Uri>().ok()?;
    Some(Outgoing {
        method: Method::from_bytes(method.as_bytes()).ok()?,
        uri,
        host,
        carry,
        body,
        signed_in,
    })
}

/// The username a configuration document must name for the address a request asked
/// about (`None`: the request named no address the site configures).
fn expected_username(web: &Web, uri: &str, body: &[u8], carry: Carry) -> Option<String> {
    let site = web.site.view();
    let email = match carry {
        Carry::Body(_) => {
            autodiscover::parse_request(std::str::from_utf8(body).ok()?)
                .ok()?
                .email
        }
        _ => {
            let query = uri.split_once('?').map(|(_, q)| q);
            autoconfig::query_param(query, "emailaddress").ok()??
        }
    };
    account(&site, &email).ok().map(|a| a.username)
}

/// Any bytes as a request to the HTTP service: see the module's documentation.
pub fn http_requests(data: &[u8]) {
    let Some(outgoing) = request(data) else {
        return;
    };
    let web = web();
    let answer = outgoing.send(web);
    let shape = check(&answer);
    let uri = &outgoing.uri;
    if answer.status == StatusCode::OK
        && (uri.contains("config-v1.1.xml")
            || uri
                .to_ascii_lowercase()
                .starts_with("/autodiscover/autodiscover.xml"))
        && let Some(username) = expected_username(web, uri, &outgoing.body, outgoing.carry)
    {
        let text = answer.text();
        let named = if uri.contains("config-v1.1.xml") {
            thunderbird::parse(&text).map(|c| c.incoming[0].username.clone())
        } else {
            autodiscover::parse_response(&text).map(|c| c.incoming[0].username.clone())
        };
        assert_eq!(
            named.unwrap_or_else(|e| panic!("a document that does not read back ({e}): {text}")),
            username
        );
    }
    let Some(shape) = shape else { return };
    let defused_data: Vec<u8> = [&data[..1], &defused(&data[1..])].concat();
    if defused_data == data {
        return;
    }
    let Some(again) = request(&defused_data).map(|o| o.send(web)) else {
        return;
    };
    if again.status == answer.status
        && let Some(again_shape) = check(&again)
    {
        assert_eq!(
            shape,
            again_shape,
            "markup in the request changed the page's elements:\n{}\n----- defused:\n{}",
            answer.text(),
            again.text()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(data: &[u8]) -> Answer {
        request(data).expect("a request").send(web())
    }

    /// The fixture is what the seeds assume: autoconfig answers for the user, the
    /// operator is signed in, and forms without the session's token change nothing.
    #[test]
    fn the_fixture_answers_as_clients_do() {
        let answer = get(b"\x00\nemailaddress=alice%40example.test");
        assert_eq!(answer.status, StatusCode::OK);
        let config = thunderbird::parse(&answer.text()).expect("a clientConfig");
        assert_eq!(config.incoming[0].username, USER);

        let answer = get(b"\x06\nemailaddress=dave@example.test");
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());

        let answer = get(b"\x0a\nq=alice");
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            answer.text().contains("id=\"operator\">op<"),
            "{}",
            answer.text()
        );

        let answer = get(b"\x0a\nq=%3Cscript%3E%22@example.test");
        assert!(
            answer.text().contains("&lt;script&gt;&quot;@example.test"),
            "{}",
            answer.text()
        );
        assert!(check(&answer).is_some());

        let answer = get(b"\x0d\nletter=a&server=mailbox2&csrf=forged&confirm=yes");
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());

        let answer = get(b"\x07\nnext=//evil.example");
        assert!(
            answer.text().contains("value=\"/console\""),
            "{}",
            answer.text()
        );
    }

    #[test]
    fn markup_is_defused_raw_and_encoded() {
        assert_eq!(
            defused(b"q=<a href=\"x\">%3cb%3E%22%2"),
            b"q=(a href='x')%28b%29%27%2".to_vec()
        );
    }
}
