//! `GET /.well-known/mta-sts.txt`: the MTA-STS policy (RFC 8461 3.3) of the domain the
//! request was sent to (`mta-sts.<domain>`), the text whose id the zone publishes (see
//! [`mailsite_shared::mta_sts`]). Senders fetch it over HTTPS only: serve this port
//! behind the site's HTTPS front (README: Running a site on several machines).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mailsite_shared::mta_sts;

use super::{App, host_domain, plain_error, respond};
use crate::metrics::Endpoint;

pub(super) async fn policy(State(app): State<App>, headers: HeaderMap) -> Response {
    let site = app.site.view();
    match host_domain(&site, super::host(&headers)) {
        // RFC 8461 3.3: text/plain.
        Some(domain) => respond(
            Endpoint::MtaSts,
            StatusCode::OK,
            "text/plain",
            mta_sts::policy(site.config(), &domain),
        ),
        None => plain_error(
            Endpoint::MtaSts,
            StatusCode::NOT_FOUND,
            "no MTA-STS policy here: ask for it at mta-sts.<domain> of one of this site's domains",
        ),
    }
}
