//! The console's HTML: the frame every page shares (title, navigation, who is signed
//! in, the last action's message), the small pieces several pages use, and the
//! responses pages go out in.
//!
//! Pages are written with maud's `html!`, which escapes every value it is given unless
//! it is already [`Markup`]: an address like `<script>@x` from a request, the
//! directory, a report or the queue shows as text without anyone remembering to
//! escape it. maud quotes every attribute with `"`, so `'` needs no escaping.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};

use super::Operator;
use crate::autoconfig::respond;
use crate::metrics::Endpoint;

/// The console's style sheet, served at [`STYLE_PATH`].
pub const STYLE: &str = include_str!("console.css");
pub const STYLE_PATH: &str = "/console/console.css";

/// No script, no frames, forms only to this service: what the pages need, nothing more.
const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                      frame-ancestors 'none'; base-uri 'none'";

/// The pages in the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Map,
    Lookup,
    Report,
    Blocks,
    /// A confirmation or sign-in page: nothing highlighted.
    None,
}

/// A whole page: the shared frame around `body`.
pub fn page(title: &str, operator: Option<&Operator>, nav: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mailsite helpdesk" }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header {
                    span.brand { "mailsite helpdesk" }
                    @if let Some(op) = operator {
                        nav {
                            @for (item, href, label) in [
                                (Nav::Map, "/console", "Site map"),
                                (Nav::Lookup, "/console/user", "Look up a user"),
                                (Nav::Report, "/console/report", "Helper report"),
                                (Nav::Blocks, "/console/blocks", "Login blocks"),
                            ] {
                                @let current = (item == nav).then_some("page");
                                a href=(href) aria-current=[current] { (label) }
                            }
                        }
                        form.signout method="post" action="/console/logout" {
                            span #operator { (op.username) }
                            (csrf_field(op))
                            button { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some(message) = operator.and_then(|op| op.flash.as_deref()) {
                        p.flash role="status" { (message) }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field that ties a form to the session.
pub fn csrf_field(op: &Operator) -> Markup {
    html! { input type="hidden" name="csrf" value=(op.csrf); }
}

/// A state as a coloured badge.
pub fn badge(state: &str) -> Markup {
    let class = match state {
        "up" | "pass" | "yes" | "enabled" | "matches" => "good",
        "maintenance" | "skipped" | "pending" => "warn",
        _ => "bad",
    };
    html! { span class={ "badge " (class) } { (state) } }
}

/// An error message that a screen reader announces.
pub fn alert(message: &str) -> Markup {
    html! { p.error role="alert" { (message) } }
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
pub fn html(status: StatusCode, page: Markup) -> Response {
    secure(respond(
        Endpoint::Console,
        status,
        "text/html; charset=utf-8",
        page.into_string(),
    ))
}

/// A page that only says why a request was refused, with a way on.
pub fn refusal(status: StatusCode, title: &str, message: &str, link: (&str, &str)) -> Response {
    let body = html! {
        (alert(message))
        p { a href=(link.0) { (link.1) } }
    };
    html(status, page(title, None, Nav::None, body))
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

    /// Whatever the frame shows from a request or a session comes out as text: in
    /// element content and in a (double-quoted) attribute value alike.
    #[test]
    fn hostile_text_is_escaped() {
        let hostile = "<script>\"x\"&'y'@x";
        let op = Operator {
            username: hostile.into(),
            csrf: hostile.into(),
            token: String::new(),
            flash: Some(hostile.into()),
        };
        let out = page(hostile, Some(&op), Nav::Map, badge(hostile)).into_string();
        let escaped = "&lt;script&gt;&quot;x&quot;&amp;'y'@x";
        // The title, the operator, the CSRF field, the flash, the heading, the badge.
        assert_eq!(out.matches(escaped).count(), 6, "{out}");
        assert!(out.contains(&format!("value=\"{escaped}\"")), "{out}");
        assert!(!out.contains("<script"), "{out}");
        assert!(
            badge("<b>").into_string().contains("&lt;b&gt;"),
            "a badge's text is escaped"
        );
    }
}
