//! The autoconfig role: the HTTP service mail clients configure themselves from
//! (Thunderbird, Outlook Autodiscover, Apple profiles, PACC), the desktop helper's
//! preference endpoint, plus health and metrics. The helpdesk console (`/console`) is
//! served beside it ([`crate::console`]).
//!
//! Every answer comes from the live [`Site`] (routing and user preferences in memory),
//! so the hot path never touches the database. Unknown users get a realistic answer
//! (the service must not reveal who has an account); malformed input gets a 400 that
//! says what is wrong, never a panic and never the hostile input echoed back.

mod apple;
mod autodiscover;
mod fast;
mod mta_sts;
mod pacc;
mod preference;
mod template;
mod thunderbird;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailsite_shared::autoconfig::{
    ClientConfig, Preference, autodiscover as ad, thunderbird as tb,
};
use mailsite_shared::route::{Address, bucket_of};

use crate::metrics::{Endpoint, Metrics};
use crate::state::{Site, Snapshot};
pub use template::Kind;
use template::Templates;

/// Largest Autodiscover request body read; real ones are under 1 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared state of the HTTP service.
#[derive(Clone)]
pub struct App {
    pub site: Arc<Site>,
    /// Set once every role of this node is listening.
    pub ready: Arc<AtomicBool>,
    templates: Arc<ArcSwap<Templates>>,
}

impl App {
    /// The service's state; its pre-rendered documents follow every site change.
    pub fn new(site: Arc<Site>, ready: Arc<AtomicBool>) -> App {
        let templates = Arc::new(ArcSwap::from_pointee(Templates::build(
            &site.snapshot().map,
        )));
        let mut changes = site.subscribe();
        let (live, watched) = (templates.clone(), site.clone());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                live.store(Arc::new(Templates::build(&watched.snapshot().map)));
            }
        });
        App {
            site,
            ready,
            templates,
        }
    }
}

/// The router with every endpoint.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/mail/config-v1.1.xml", get(thunderbird::config))
        .route("/mail/config-v1.2.xml", get(thunderbird::config_v1_2))
        .route(
            "/.well-known/autoconfig/mail/config-v1.2.xml",
            get(thunderbird::config_v1_2),
        )
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird::config),
        )
        .route(
            "/autodiscover/autodiscover.xml",
            post(autodiscover::pox).get(autodiscover::pox_get),
        )
        .route(
            "/Autodiscover/Autodiscover.xml",
            post(autodiscover::pox).get(autodiscover::pox_get),
        )
        .route("/autodiscover/autodiscover.json", get(autodiscover::json))
        .route(
            "/autodiscover/autodiscover.json/v1.0/{email}",
            get(autodiscover::json_path),
        )
        .route(mailsite_shared::autoconfig::pacc::PATH, get(pacc::document))
        .route(mailsite_shared::mta_sts::PATH, get(mta_sts::policy))
        .route("/helper/preference", post(preference::store))
        .route("/mobileconfig", get(apple::profile))
        .route("/email.mobileconfig", get(apple::profile))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// Counts every answer of `router` in the node's `metrics`, by the endpoint that
/// [`respond`] named (`other` for answers axum made itself, such as a refused body).
/// It wraps the router once, around all of it: a `Router::layer` would wrap each
/// route, and axum's middleware boxes a future and clones the route per request,
/// which cost the front door about 11% of its requests per second (BENCHMARKS.md).
pub fn counted(
    router: Router,
    metrics: Arc<Metrics>,
) -> impl tower::Service<
    axum::extract::Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    use tower::ServiceExt;
    ServiceExt::<axum::extract::Request>::map_response(router, move |response: Response| {
        let endpoint = response
            .extensions()
            .get::<Endpoint>()
            .copied()
            .unwrap_or(Endpoint::Other);
        metrics.http(endpoint, response.status().as_u16());
        response
    })
}

/// Why a request cannot be answered with a configuration.
pub(crate) struct Refusal(pub String);

/// An address that may be configured: a site domain, and not a disabled account.
pub(crate) struct Account {
    pub username: String,
    pub domain: String,
    pub preference: Preference,
}

/// Checks an address against the site and the directory.
pub(crate) fn account(site: &Snapshot, email: &str) -> Result<Account, Refusal> {
    let address = Address::parse(email).map_err(|e| Refusal(e.to_string()))?;
    if !site.config().serves_domain(&address.domain) {
        let e = mailsite_shared::route::AddressError::ForeignDomain(address.domain);
        return Err(Refusal(e.to_string()));
    }
    let preference = match site.users.get(&address.local) {
        Some(user) if !user.enabled => {
            return Err(Refusal("this account is disabled".to_string()));
        }
        Some(user) => user.preference,
        // Unknown users get what a new user would: nothing tells them apart.
        None => Preference::Imap,
    };
    Ok(Account {
        username: address.local,
        domain: address.domain,
        preference,
    })
}

/// The configuration model for an account.
pub(crate) fn client_config(site: &Snapshot, account: &Account) -> ClientConfig {
    let route = site.map.route_user(&account.username, &account.domain);
    ClientConfig::for_route(site.config(), &route, account.preference)
}

impl App {
    /// A rendered document for an account: from the templates of the site generation
    /// being served, or rendered directly in the moment a new generation arrives.
    pub(crate) fn document(&self, site: &Snapshot, account: Account, kind: Kind) -> Document {
        let templates = self.templates.load();
        if templates.generation == site.map.generation {
            let bucket = bucket_of(&account.username);
            if let Some(at) = templates.find(&account.domain, bucket, account.preference, kind) {
                return Document::Template {
                    templates,
                    at,
                    username: account.username,
                    domain: account.domain,
                };
            }
        }
        let doc = client_config(site, &account);
        Document::Text(match kind {
            Kind::Thunderbird => tb::render(&doc),
            Kind::Autodiscover => ad::render_response(&doc),
            Kind::Apple => mailsite_shared::autoconfig::apple::render(&doc),
        })
    }
}

/// The body of an [`Answer`]: text, or a template of the generation being served with
/// the user's values, which the prepared path writes without making the text first.
pub(crate) enum Document {
    Text(String),
    Template {
        templates: arc_swap::Guard<Arc<Templates>>,
        at: template::At,
        username: String,
        domain: String,
    },
}

impl Document {
    /// Writes the body, after a head that says its length, to the end of `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>, head: impl FnOnce(&mut Vec<u8>, usize)) {
        match self {
            Document::Text(text) => {
                head(out, text.len());
                out.extend_from_slice(text.as_bytes());
            }
            Document::Template {
                templates,
                at,
                username,
                domain,
            } => {
                let filled = templates.at(*at).with(username, domain);
                head(out, filled.len());
                filled.write(|part| out.extend_from_slice(part.as_bytes()));
            }
        }
    }

    /// The body as text.
    pub(crate) fn into_text(self) -> String {
        match self {
            Document::Text(text) => text,
            Document::Template {
                templates,
                at,
                username,
                domain,
            } => templates.at(at).fill(&username, &domain),
        }
    }
}

impl From<String> for Document {
    fn from(text: String) -> Document {
        Document::Text(text)
    }
}

/// The value of a query parameter (name compared case-insensitively), percent- and
/// plus-decoded; an error if it is not UTF-8.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, String> {
    let Some(query) = query else { return Ok(None) };
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.eq_ignore_ascii_case(name) {
            let value = value.replace('+', " ");
            let bytes: Vec<u8> = percent_encoding::percent_decode_str(&value).collect();
            return String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| format!("{name} is not valid UTF-8"));
        }
    }
    Ok(None)
}

/// The `Host` of a request, when it is visible ASCII.
pub(crate) fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

/// The site domain a request's Host names (`autoconfig.<domain>`), if any.
pub(crate) fn host_domain(site: &Snapshot, host: Option<&str>) -> Option<String> {
    let host = host?;
    let host = host
        .rsplit_once(':')
        .map_or(host, |(h, _)| h)
        .to_ascii_lowercase();
    let domain = host
        .strip_prefix("autoconfig.")
        .or_else(|| host.strip_prefix("autodiscover."))
        .or_else(|| host.strip_prefix("ua-auto-config."))
        .or_else(|| host.strip_prefix("mta-sts."))
        .unwrap_or(&host);
    site.config()
        .serves_domain(domain)
        .then(|| domain.to_string())
}

/// Builds a response with a content type, named by its endpoint for [`counted`].
pub(crate) fn respond(
    endpoint: Endpoint,
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    response.extensions_mut().insert(endpoint);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in FIXED_HEADERS {
        headers.insert(
            axum::http::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// What every answer says after its content type: not to be cached, not to be sniffed
/// (names in lower case, as hyper writes them).
pub(crate) const FIXED_HEADERS: [(&str, &str); 2] = [
    ("cache-control", "no-cache"),
    ("x-content-type-options", "nosniff"),
];

/// An answer of the four setup documents' endpoints before it is a response: the router
/// turns it into one ([`IntoResponse`]), the prepared HTTP/1.1 path ([`fast`]) writes it
/// to the socket as hyper would.
pub(crate) struct Answer {
    pub endpoint: Endpoint,
    pub status: StatusCode,
    pub content_type: &'static str,
    /// The `Content-Disposition` (the Apple profile's file name).
    pub disposition: Option<String>,
    pub body: Document,
}

impl Answer {
    pub(crate) fn new(
        endpoint: Endpoint,
        status: StatusCode,
        content_type: &'static str,
        body: impl Into<Document>,
    ) -> Answer {
        Answer {
            endpoint,
            status,
            content_type,
            disposition: None,
            body: body.into(),
        }
    }

    /// The `Content-Disposition`, when it is a valid header value (as
    /// `HeaderValue::from_str` takes it); otherwise the answer goes without one.
    pub(crate) fn disposition(&self) -> Option<&str> {
        self.disposition
            .as_deref()
            .filter(|d| d.bytes().all(|b| b == b'\t' || (b >= 32 && b != 127)))
    }

    /// A plain-text error, as [`plain_error`].
    pub(crate) fn error(endpoint: Endpoint, status: StatusCode, message: &str) -> Answer {
        Answer::new(
            endpoint,
            status,
            "text/plain; charset=utf-8",
            format!("{message}\n"),
        )
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let disposition = self
            .disposition()
            .and_then(|d| HeaderValue::from_str(d).ok());
        let body = self.body.into_text();
        let mut response = respond(self.endpoint, self.status, self.content_type, body);
        if let Some(value) = disposition {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
        response
    }
}

pub(crate) fn plain_error(endpoint: Endpoint, status: StatusCode, message: &str) -> Response {
    respond(
        endpoint,
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n"),
    )
}

async fn index(State(app): State<App>) -> Response {
    let site = app.site.snapshot();
    let d = mailsite_shared::xml::escape(&site.config().domain).into_owned();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{d} mail settings</title></head><body>\
         <h1>Mail settings for {d}</h1>\
         <p>Mail clients set themselves up from this service. Enter your address to see what they are told.</p>\
         <form action=\"/mail/config-v1.1.xml\"><label>Email address <input name=\"emailaddress\" type=\"email\" required></label> <button>Show settings</button></form>\
         <ul><li>Thunderbird: <code>/mail/config-v1.1.xml?emailaddress=</code></li>\
         <li>Mail Autoconfig 1.2 (IETF draft): <code>/mail/config-v1.2.xml?emailaddress=</code></li>\
         <li>Outlook: <code>POST /autodiscover/autodiscover.xml</code>, <code>/autodiscover/autodiscover.json</code></li>\
         <li>Apple Mail: <code>/mobileconfig?emailaddress=</code></li></ul></body></html>"
    );
    respond(
        Endpoint::Other,
        StatusCode::OK,
        "text/html; charset=utf-8",
        body,
    )
}

async fn healthz() -> Response {
    respond(
        Endpoint::Health,
        StatusCode::OK,
        "text/plain; charset=utf-8",
        "ok\n",
    )
}

async fn readyz(State(app): State<App>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        respond(
            Endpoint::Health,
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ready\n",
        )
    } else {
        plain_error(
            Endpoint::Health,
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
        )
    }
}

async fn metrics(State(app): State<App>) -> Response {
    let site = app.site.snapshot();
    let body = app
        .site
        .metrics
        .render(&site.map, site.users.len(), site.generation);
    respond(
        Endpoint::Metrics,
        StatusCode::OK,
        crate::metrics::CONTENT_TYPE,
        body,
    )
}

/// Clients spell the Autodiscover path in many cases; anything else is 404.
async fn fallback(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if uri
        .path()
        .eq_ignore_ascii_case("/autodiscover/autodiscover.xml")
    {
        return if method == Method::POST {
            autodiscover::pox(State(app), headers, body).await
        } else {
            autodiscover::pox_get().await
        };
    }
    if uri
        .path()
        .eq_ignore_ascii_case("/autodiscover/autodiscover.json")
    {
        return autodiscover::json(State(app), uri).await.into_response();
    }
    plain_error(Endpoint::Other, StatusCode::NOT_FOUND, "not found")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// The front door as `serve` runs it: the routes wrapped once by [`counted`].
    type Front = tower::util::BoxCloneService<Request<Body>, Response, std::convert::Infallible>;

    async fn node(name: &str) -> (Front, Arc<Site>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mailsite-{name}-{}", rand::random::<u64>()));
        let mut config = mailsite_shared::SiteConfig::embedded();
        config.data_dir = dir.clone();
        let directory = crate::directory::Directory::open(&config).await.unwrap();
        let site = Site::load(Arc::new(config), directory).await.unwrap();
        let app = App::new(site.clone(), Arc::new(AtomicBool::new(true)));
        let front = Front::new(counted(router(app), site.metrics.clone()));
        (front, site, dir)
    }

    async fn get(router: &Front, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Each node counts its own answers (two in one process share nothing), by the
    /// endpoint that answered, and answers axum makes itself count as `other`.
    #[tokio::test]
    async fn each_node_counts_its_own_answers_by_endpoint() {
        let (first, _, first_dir) = node("metrics-a").await;
        let (second, second_site, second_dir) = node("metrics-b").await;
        let address = "/mail/config-v1.1.xml?emailaddress=someone@example.test";
        assert_eq!(get(&first, address).await.0, StatusCode::OK);
        assert_eq!(get(&first, "/no/such/page").await.0, StatusCode::NOT_FOUND);
        let big = Request::post("/autodiscover/autodiscover.xml")
            .body(Body::from(vec![b'x'; MAX_BODY + 1]))
            .unwrap();
        let refused = first.clone().oneshot(big).await.unwrap().status();
        assert_eq!(refused, StatusCode::PAYLOAD_TOO_LARGE);
        let (_, text) = get(&first, "/metrics").await;
        let line = |endpoint: &str, status: &str, n: u32| {
            format!(
                "mailsite_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}\n"
            )
        };
        assert!(text.contains(&line("thunderbird", "2xx", 1)), "{text}");
        // The unknown page and the refused body.
        assert!(text.contains(&line("other", "4xx", 2)), "{text}");
        let (_, other) = get(&second, "/metrics").await;
        assert!(!other.contains("endpoint=\"thunderbird\""), "{other}");
        second_site.metrics.accepted();
        let (_, other) = get(&second, "/metrics").await;
        assert!(
            other.contains("mailsite_sorter_accepted_total 1"),
            "{other}"
        );
        let (_, first_text) = get(&first, "/metrics").await;
        assert!(
            first_text.contains("mailsite_sorter_accepted_total 0"),
            "{first_text}"
        );
        let _ = std::fs::remove_dir_all(first_dir);
        let _ = std::fs::remove_dir_all(second_dir);
    }

    #[test]
    fn query_params_decode_and_refuse_bad_utf8() {
        let q = Some("a=1&EmailAddress=al%2Bice%40example.test&x");
        assert_eq!(
            query_param(q, "emailaddress").unwrap().as_deref(),
            Some("al+ice@example.test")
        );
        assert_eq!(
            query_param(Some("e=a+b"), "e").unwrap().as_deref(),
            Some("a b")
        );
        assert_eq!(query_param(q, "missing").unwrap(), None);
        assert!(query_param(Some("e=%ff%fe"), "e").is_err());
        assert_eq!(query_param(None, "e").unwrap(), None);
    }
}
