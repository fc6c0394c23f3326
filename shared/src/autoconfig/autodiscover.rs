//! Outlook Autodiscover: the POX (plain old XML) request and response, with
//! `responseschema/2006a` `Protocol` entries, and the JSON v2 redirect document.

use std::fmt::Write;

use super::{ClientConfig, DocumentError, Protocol, Security, ServerSetting};
use crate::xml::{self, escape};

pub const REQUEST_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
pub const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
const ENVELOPE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";

/// What a POX request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub email: String,
    /// `AcceptableResponseSchema`, if the client named one.
    pub schema: Option<String>,
}

/// Reads a POX request body: `<Autodiscover><Request><EMailAddress>`. What it reads is
/// what [`xml::parse`] and the tree's `child` and `child_text` would find (the first
/// `Request` in the root, its first `EMailAddress` and `AcceptableResponseSchema`, their
/// own text trimmed), walked without building the tree: every Outlook that sets itself
/// up sends one, and the answer is prepared.
pub fn parse_request(text: &str) -> Result<Request, DocumentError> {
    #[derive(PartialEq)]
    enum Seen {
        No,
        Inside,
        Done,
    }
    let (mut depth, mut root, mut request) = (0usize, false, Seen::No);
    let (mut email, mut schema): (Option<String>, Option<String>) = (None, None);
    // Which of the two the element open at depth 3 is, if it is the first of its name.
    let mut field: Option<bool> = None;
    xml::walk(text, |step| {
        match step {
            xml::Step::Start(start) => {
                depth += 1;
                match depth {
                    1 => root = start.name == "Autodiscover",
                    2 if request == Seen::No && start.name == "Request" => {
                        request = Seen::Inside;
                    }
                    3 if request == Seen::Inside => {
                        field = match start.name {
                            "EMailAddress" if email.is_none() => Some(true),
                            "AcceptableResponseSchema" if schema.is_none() => Some(false),
                            _ => None,
                        };
                        match field {
                            Some(true) => email = Some(String::new()),
                            Some(false) => schema = Some(String::new()),
                            None => {}
                        }
                    }
                    _ => {}
                }
            }
            xml::Step::Text(text) => {
                let into = match field {
                    Some(true) if depth == 3 => email.as_mut(),
                    Some(false) if depth == 3 => schema.as_mut(),
                    _ => None,
                };
                if let Some(into) = into {
                    into.push_str(text);
                }
            }
            xml::Step::End => {
                match depth {
                    3 => field = None,
                    2 if request == Seen::Inside => request = Seen::Done,
                    _ => {}
                }
                depth -= 1;
            }
        }
        Ok(())
    })?;
    if !root {
        return Err(DocumentError::Missing("the Autodiscover root element"));
    }
    if request == Seen::No {
        return Err(DocumentError::Missing("Request"));
    }
    let email = email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(DocumentError::Missing("EMailAddress"))?
        .to_string();
    Ok(Request {
        email,
        schema: schema.as_deref().map(|s| s.trim().to_string()),
    })
}

/// Renders a POX request (what Outlook sends), for clients and tests.
pub fn render_request(email: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{REQUEST_SCHEMA}\">\n  <Request>\n    <EMailAddress>{}</EMailAddress>\n    <AcceptableResponseSchema>{RESPONSE_SCHEMA}</AcceptableResponseSchema>\n  </Request>\n</Autodiscover>\n",
        escape(email)
    )
}

fn protocol_entry(out: &mut String, s: &ServerSetting) {
    let kind = match s.protocol {
        Protocol::Imap => "IMAP",
        Protocol::Pop3 => "POP3",
        Protocol::Smtp => "SMTP",
    };
    // SSL says whether the connection is encrypted at all; Encryption says how.
    let (ssl, encryption) = match s.security {
        Security::Tls => ("on", "SSL"),
        Security::StartTls => ("on", "TLS"),
        Security::Plain => ("off", "None"),
    };
    let _ = write!(
        out,
        "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{}</Server>\n        <Port>{}</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>{}</LoginName>\n        <SPA>off</SPA>\n        <SSL>{ssl}</SSL>\n        <Encryption>{encryption}</Encryption>\n        <AuthRequired>on</AuthRequired>\n",
        escape(&s.hostname),
        s.port,
        escape(&s.username),
    );
    if s.protocol == Protocol::Smtp {
        out.push_str("        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n");
    }
    out.push_str("      </Protocol>\n");
}

/// Renders the settings response.
pub fn render_response(config: &ClientConfig) -> String {
    let mut out = String::with_capacity(3072);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{ENVELOPE_SCHEMA}\">\n  <Response xmlns=\"{RESPONSE_SCHEMA}\">\n    <User>\n      <DisplayName>{}</DisplayName>\n    </User>\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
        escape(config.email.as_deref().unwrap_or(&config.display_name)),
    );
    for s in config.incoming.iter().chain(&config.outgoing) {
        protocol_entry(&mut out, s);
    }
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    out
}

/// Renders an error response. Autodiscover errors are answered in the body (code 600
/// is "Invalid Request", 602 "Bad Address"), never with 401.
pub fn render_error(code: u16, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{ENVELOPE_SCHEMA}\">\n  <Response>\n    <Error Id=\"{code}\">\n      <ErrorCode>{code}</ErrorCode>\n      <Message>{}</Message>\n      <DebugData />\n    </Error>\n  </Response>\n</Autodiscover>\n",
        escape(message)
    )
}

/// Reads a settings response back into the model (the error case yields
/// `BadValue("Error", message)`).
pub fn parse_response(text: &str) -> Result<ClientConfig, DocumentError> {
    let root = xml::parse(text)?;
    let response = root
        .child("Response")
        .ok_or(DocumentError::Missing("Response"))?;
    if let Some(error) = response.child("Error") {
        let message = error.child_text("Message").unwrap_or_default().to_string();
        return Err(DocumentError::BadValue("Error", message));
    }
    let account = response
        .child("Account")
        .ok_or(DocumentError::Missing("Account"))?;
    let mut incoming = Vec::new();
    let mut outgoing = Vec::new();
    for p in account.children_named("Protocol") {
        let protocol = match p.child_text("Type") {
            Some("IMAP") => Protocol::Imap,
            Some("POP3") => Protocol::Pop3,
            Some("SMTP") => Protocol::Smtp,
            _ => continue,
        };
        let port_text = p.child_text("Port").ok_or(DocumentError::Missing("Port"))?;
        let port = port_text
            .parse()
            .map_err(|_| DocumentError::BadValue("Port", port_text.to_string()))?;
        let security = match (p.child_text("SSL"), p.child_text("Encryption")) {
            (_, Some("SSL")) => Security::Tls,
            (_, Some("TLS")) => Security::StartTls,
            (Some("off"), _) | (_, Some("None")) => Security::Plain,
            _ => Security::Tls,
        };
        let setting = ServerSetting {
            protocol,
            hostname: p
                .child_text("Server")
                .ok_or(DocumentError::Missing("Server"))?
                .to_string(),
            port,
            security,
            username: p.child_text("LoginName").unwrap_or_default().to_string(),
        };
        if protocol == Protocol::Smtp {
            outgoing.push(setting);
        } else {
            incoming.push(setting);
        }
    }
    let email = response
        .child("User")
        .and_then(|u| u.child_text("DisplayName"))
        .map(str::to_string);
    let domain = email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    Ok(ClientConfig {
        domain,
        email,
        display_name: String::new(),
        short_name: String::new(),
        incoming,
        outgoing,
        sieve: None,
    })
}

/// The protocols the JSON v2 endpoint is asked about.
pub const JSON_PROTOCOLS: &str = "AutodiscoverV1, ActiveSync, Ews, Rest";

/// The JSON v2 answer for `Protocol=AutodiscoverV1`: where the POX endpoint is.
pub fn render_json_v1(url: &str) -> String {
    serde_json::json!({ "Protocol": "AutodiscoverV1", "Url": url }).to_string()
}

/// The JSON v2 error body.
pub fn render_json_error(code: &str, message: &str) -> String {
    serde_json::json!({ "ErrorCode": code, "ErrorMessage": message }).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::autoconfig::Preference;
    use crate::config::SiteConfig;
    use crate::route::SiteMap;

    #[test]
    fn request_round_trips_even_with_markup_in_the_address() {
        let req = parse_request(&render_request("a\"<x>&@example.test")).unwrap();
        assert_eq!(req.email, "a\"<x>&@example.test");
        assert_eq!(req.schema.as_deref(), Some(RESPONSE_SCHEMA));
    }

    #[test]
    fn response_round_trips() {
        let site = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let route = site.route("nora@example.test").unwrap();
        let config = ClientConfig::for_route(&site.config, &route, Preference::Pop3);
        let xml = render_response(&config);
        assert!(xml.contains("<Encryption>SSL</Encryption>"));
        assert!(xml.contains("<Encryption>TLS</Encryption>"));
        let parsed = parse_response(&xml).unwrap();
        assert_eq!(parsed.incoming, config.incoming);
        assert_eq!(parsed.outgoing, config.outgoing);
        assert_eq!(parsed.incoming[0].protocol, Protocol::Pop3);
    }

    #[test]
    fn bad_requests_are_named() {
        assert!(parse_request("not xml").is_err());
        assert_eq!(
            parse_request("<Autodiscover><Request/></Autodiscover>"),
            Err(DocumentError::Missing("EMailAddress"))
        );
        let err = parse_response(&render_error(600, "Invalid Request")).unwrap_err();
        assert_eq!(
            err,
            DocumentError::BadValue("Error", "Invalid Request".into())
        );
    }
}
