//! Telling the site which protocol the user prefers: `POST /helper/preference` on the
//! autoconfig service, authenticated with the user's password (HTTP Basic), so that
//! the next autoconfig or Autodiscover answer lists that protocol first.

use base64::Engine;
use mailsite_shared::autoconfig::Preference;
use mailsite_shared::route::Address;

use crate::HelperError;
use crate::http::{Redirects, Url};
use crate::net::{Net, SiteOverride};

/// Where the endpoint is: the override's origin, or `https://autoconfig.<domain>`.
pub fn endpoint(site: &SiteOverride, domain: &str) -> Result<Url, HelperError> {
    let origin = match &site.site_url {
        Some(url) => url.clone(),
        None => format!("https://autoconfig.{domain}"),
    };
    let url = Url::parse(&origin)
        .and_then(|o| o.join("/helper/preference"))
        .map_err(|e| HelperError::Setup(format!("{origin:?}: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err(HelperError::Setup(format!(
            "{origin:?} is not an http:// or https:// URL"
        ))),
    }
}

/// Stores the preference on the server; the answer's first line on success.
pub async fn store(
    net: &Net,
    site: &SiteOverride,
    email: &str,
    password: &str,
    preference: Preference,
) -> Result<String, HelperError> {
    let address = Address::parse(email)
        .map_err(|e| HelperError::BadAddress(email.to_string(), e.to_string()))?;
    let url = endpoint(site, &address.domain)?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{address}:{password}"));
    let body = serde_json::json!({ "preference": preference.as_str() }).to_string();
    let response = net
        .http(
            &url,
            Some(("application/json", body.as_bytes())),
            &[("Authorization", format!("Basic {basic}"))],
            Redirects::Refuse,
        )
        .await
        .map_err(|e| HelperError::Server(format!("{url}: {e}")))?;
    let first = response.body.lines().next().unwrap_or("").to_string();
    match response.status {
        200 => Ok(first),
        401 => Err(HelperError::Server(
            "the site refused the password; nothing was changed there".to_string(),
        )),
        status => Err(HelperError::Server(format!(
            "{url} answered {status}: {first}"
        ))),
    }
}
