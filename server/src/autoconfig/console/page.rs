//! The console's HTML: the frame every page shares (title, navigation, who is signed
//! in, the last action's message), escaping, and the responses pages go out in.
//!
//! Pages are built with `format!` from escaped pieces: every value that comes from a
//! request, the directory, a report or the queue goes through [`esc`] (or a helper
//! that calls it), so an address like `<script>@x` shows as text.

use std::borrow::Cow;
use std::fmt::Write;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::Operator;
use crate::autoconfig::respond;
use crate::metrics::Endpoint;

/// The console's style sheet, served at [`STYLE_PATH`].
pub const STYLE: &str = include_str!("console.css");
pub const STYLE_PATH: &str = "/console/console.css";

/// No script, no frames, forms only to this service: what the pages need, nothing more.
const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                      frame-ancestors 'none'; base-uri 'none'";

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(text: &str) -> Cow<'_, str> {
    mailsite_shared::xml::escape(text)
}

/// The pages in the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Map,
    Lookup,
    Report,
    /// A confirmation or sign-in page: nothing highlighted.
    None,
}

/// A whole page: the shared frame around `body`.
pub fn page(title: &str, operator: Option<&Operator>, nav: Nav, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · mailsite helpdesk</title><link rel=\"stylesheet\" href=\"{STYLE_PATH}\"></head><body>\
         <header><span class=\"brand\">mailsite helpdesk</span>",
        esc(title)
    );
    if let Some(op) = operator {
        out.push_str("<nav>");
        for (item, href, label) in [
            (Nav::Map, "/console", "Site map"),
            (Nav::Lookup, "/console/user", "Look up a user"),
            (Nav::Report, "/console/report", "Helper report"),
        ] {
            let current = if item == nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<a href=\"{href}\"{current}>{label}</a>");
        }
        let _ = write!(
            out,
            "</nav><form class=\"signout\" method=\"post\" action=\"/console/logout\">\
             <span id=\"operator\">{}</span>{}<button>Sign out</button></form>",
            esc(&op.username),
            csrf_field(op)
        );
    }
    out.push_str("</header><main>");
    if let Some(message) = operator.and_then(|op| op.flash.as_deref()) {
        let _ = write!(
            out,
            "<p class=\"flash\" role=\"status\">{}</p>",
            esc(message)
        );
    }
    let _ = write!(out, "<h1>{}</h1>{body}</main></body></html>", esc(title));
    out
}

/// The hidden field that ties a form to the session.
pub fn csrf_field(op: &Operator) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&op.csrf)
    )
}

/// A state as a coloured badge.
pub fn badge(state: &str) -> String {
    let class = match state {
        "up" | "pass" | "yes" | "enabled" | "matches" => "good",
        "maintenance" | "skipped" | "pending" => "warn",
        _ => "bad",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(state))
}

/// Adds the headers every console page carries.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Response {
    secure(respond(
        Endpoint::Console,
        status,
        "text/html; charset=utf-8",
        body,
    ))
}

/// A page that only says why a request was refused, with a way on.
pub fn refusal(status: StatusCode, title: &str, message: &str, link: (&str, &str)) -> Response {
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"{}\">{}</a></p>",
        esc(message),
        esc(link.0),
        esc(link.1)
    );
    html(status, page(title, None, Nav::None, &body))
}

/// `303 See Other` to a console path (after a form, or to the sign-in page).
pub fn redirect(location: &str) -> Response {
    let mut response = secure(respond(
        Endpoint::Console,
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        "",
    ));
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The style sheet.
pub fn style() -> Response {
    let mut response = respond(
        Endpoint::Console,
        StatusCode::OK,
        "text/css; charset=utf-8",
        STYLE,
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            esc("<script>\"x\"&'y'@x"),
            "&lt;script&gt;&quot;x&quot;&amp;&apos;y&apos;@x"
        );
        assert!(badge("<b>").contains("&lt;b&gt;"));
    }
}
