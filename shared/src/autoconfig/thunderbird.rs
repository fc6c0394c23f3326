//! Thunderbird clientConfig v1.1 (the format of `/mail/config-v1.1.xml`), and v1.2 of
//! the IETF's Mail Autoconfig (draft-ietf-mailmaint-autoconfig-06), which lists every
//! authentication a server offers, most preferred first, SASL mechanisms by name.
//!
//! Version 1.2 also names the ManageSieve server (`setupServer type="managesieve"`),
//! where users keep their filters.
//!
//! Thunderbird rejects a file without `<domain>`, an incoming and an outgoing server,
//! and `socketType` and `authentication` on each; every value written here is escaped.

use std::fmt::Write;

use super::{ClientConfig, DocumentError, Protocol, Security, ServerSetting};
use crate::xml::{self, Element, escape};

/// Days a POP3 client leaves downloaded mail on the server: long enough that a lost
/// laptop does not lose mail, short enough that the mailbox does not fill up.
pub const POP3_DAYS_ON_SERVER: u32 = 14;

/// How a client may log in to a mailsite server of `protocol`, most preferred first,
/// as v1.2 lists them: the SASL mechanisms the server offers (`system="sasl"`), then
/// the generic password login every client knows (IMAP LOGIN, POP3 USER/PASS).
pub fn authentications(protocol: Protocol) -> &'static [(Option<&'static str>, &'static str)] {
    match protocol {
        Protocol::Imap | Protocol::Pop3 => &[(Some("sasl"), "PLAIN"), (None, "password-cleartext")],
        Protocol::Smtp => &[
            (Some("sasl"), "PLAIN"),
            (Some("sasl"), "LOGIN"),
            (None, "password-cleartext"),
        ],
    }
}

/// The clientConfig versions this module writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Thunderbird's format: one `password-cleartext` authentication per server.
    V1_1,
    /// draft-ietf-mailmaint-autoconfig-06: every authentication, in preference order.
    V1_2,
}

fn server(out: &mut String, tag: &str, s: &ServerSetting, version: Version) {
    let _ = write!(
        out,
        "    <{tag} type=\"{}\">\n      <hostname>{}</hostname>\n      <port>{}</port>\n      <socketType>{}</socketType>\n",
        s.protocol.thunderbird_name(),
        escape(&s.hostname),
        s.port,
        s.security.thunderbird_name(),
    );
    match version {
        Version::V1_1 => {
            out.push_str("      <authentication>password-cleartext</authentication>\n")
        }
        Version::V1_2 => {
            for (system, method) in authentications(s.protocol) {
                match system {
                    Some(system) => {
                        let _ = writeln!(
                            out,
                            "      <authentication system=\"{system}\">{method}</authentication>"
                        );
                    }
                    None => {
                        let _ = writeln!(out, "      <authentication>{method}</authentication>");
                    }
                }
            }
        }
    }
    let _ = writeln!(out, "      <username>{}</username>", escape(&s.username));
    if s.protocol == Protocol::Pop3 {
        let _ = write!(
            out,
            "      <pop3>\n        <leaveMessagesOnServer>true</leaveMessagesOnServer>\n        <daysToLeaveMessagesOnServer>{POP3_DAYS_ON_SERVER}</daysToLeaveMessagesOnServer>\n        <downloadOnBiff>true</downloadOnBiff>\n        <checkInterval minutes=\"10\"/>\n      </pop3>\n"
        );
    }
    let _ = writeln!(out, "    </{tag}>");
}

/// Renders the clientConfig v1.1 document.
pub fn render(config: &ClientConfig) -> String {
    render_version(config, Version::V1_1)
}

/// Renders a clientConfig document of `version`.
pub fn render_version(config: &ClientConfig, version: Version) -> String {
    let mut out = String::with_capacity(2048);
    let domain = escape(&config.domain);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"{}\">\n  <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    <displayName>{}</displayName>\n    <displayShortName>{}</displayShortName>\n",
        match version {
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        },
        escape(&config.display_name),
        escape(&config.short_name),
    );
    for s in &config.incoming {
        server(&mut out, "incomingServer", s, version);
    }
    for s in &config.outgoing {
        server(&mut out, "outgoingServer", s, version);
    }
    out.push_str("  </emailProvider>\n");
    if let (Version::V1_2, Some(sieve)) = (version, &config.sieve) {
        let _ = write!(
            out,
            "  <setupServer type=\"managesieve\">\n    <hostname>{}</hostname>\n    <port>{}</port>\n    <socketType>STARTTLS</socketType>\n    <authentication system=\"sasl\">PLAIN</authentication>\n    <username>{}</username>\n  </setupServer>\n",
            escape(&sieve.hostname),
            sieve.port,
            escape(&sieve.username),
        );
    }
    out.push_str("</clientConfig>\n");
    out
}

fn parse_server(el: &Element, kind: &'static str) -> Result<ServerSetting, DocumentError> {
    let protocol = match el.attribute("type") {
        Some("imap") => Protocol::Imap,
        Some("pop3") => Protocol::Pop3,
        Some("smtp") => Protocol::Smtp,
        Some(other) => return Err(DocumentError::BadValue(kind, other.to_string())),
        None => return Err(DocumentError::Missing("a server type")),
    };
    let hostname = el
        .child_text("hostname")
        .filter(|h| !h.is_empty())
        .ok_or(DocumentError::Missing("hostname"))?
        .to_string();
    let port_text = el
        .child_text("port")
        .ok_or(DocumentError::Missing("port"))?;
    let port = port_text
        .parse::<u16>()
        .map_err(|_| DocumentError::BadValue("port", port_text.to_string()))?;
    let security = match el.child_text("socketType") {
        Some("SSL") => Security::Tls,
        Some("STARTTLS") => Security::StartTls,
        Some("plain") => Security::Plain,
        Some(other) => return Err(DocumentError::BadValue("socketType", other.to_string())),
        None => return Err(DocumentError::Missing("socketType")),
    };
    if el.child_text("authentication").is_none() {
        return Err(DocumentError::Missing("authentication"));
    }
    Ok(ServerSetting {
        protocol,
        hostname,
        port,
        security,
        username: el.child_text("username").unwrap_or_default().to_string(),
    })
}

/// Parses a clientConfig document, checking what Thunderbird checks.
pub fn parse(text: &str) -> Result<ClientConfig, DocumentError> {
    let root = xml::parse(text)?;
    if root.name != "clientConfig" {
        return Err(DocumentError::Missing("the clientConfig root element"));
    }
    let provider = root
        .child("emailProvider")
        .ok_or(DocumentError::Missing("emailProvider"))?;
    let domain = provider
        .child_text("domain")
        .filter(|d| !d.is_empty())
        .ok_or(DocumentError::Missing("domain"))?
        .to_string();
    let incoming = provider
        .children_named("incomingServer")
        .map(|el| parse_server(el, "incomingServer type"))
        .collect::<Result<Vec<_>, _>>()?;
    let outgoing = provider
        .children_named("outgoingServer")
        .map(|el| parse_server(el, "outgoingServer type"))
        .collect::<Result<Vec<_>, _>>()?;
    if incoming.is_empty() {
        return Err(DocumentError::Missing("an incomingServer"));
    }
    if outgoing.is_empty() {
        return Err(DocumentError::Missing("an outgoingServer"));
    }
    Ok(ClientConfig {
        domain,
        email: None,
        display_name: provider
            .child_text("displayName")
            .unwrap_or_default()
            .to_string(),
        short_name: provider
            .child_text("displayShortName")
            .unwrap_or_default()
            .to_string(),
        incoming,
        outgoing,
        sieve: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::autoconfig::Preference;
    use crate::config::SiteConfig;
    use crate::route::SiteMap;

    fn config_for(email: &str, pref: Preference) -> ClientConfig {
        let site = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let route = site.route(email).unwrap();
        ClientConfig::for_route(&site.config, &route, pref)
    }

    #[test]
    fn round_trips_field_by_field() {
        let config = config_for("nora@example.test", Preference::Imap);
        let parsed = parse(&render(&config)).unwrap();
        assert_eq!(parsed.incoming, config.incoming);
        assert_eq!(parsed.outgoing, config.outgoing);
        assert_eq!(parsed.domain, "example.test");
        assert_eq!(parsed.incoming[0].hostname, "mailn.example.test");
        assert_eq!(parsed.incoming[0].port, 10993);
        assert_eq!(parsed.incoming[0].security, Security::Tls);
        assert_eq!(parsed.outgoing[0].hostname, "outbox.example.test");
    }

    #[test]
    fn pop_preference_lists_pop3_first_with_its_options() {
        let config = config_for("alice@example.test", Preference::Pop3);
        let xml = render(&config);
        assert_eq!(parse(&xml).unwrap().incoming[0].protocol, Protocol::Pop3);
        assert!(xml.contains("<leaveMessagesOnServer>true</leaveMessagesOnServer>"));
    }

    #[test]
    fn hostile_local_part_cannot_break_the_document() {
        let config = config_for("a\"<x>&@example.test", Preference::Imap);
        let xml = render(&config);
        assert!(!xml.contains("<x>"));
        let parsed = parse(&xml).unwrap();
        assert_eq!(parsed.incoming[0].username, "a\"<x>&");
    }

    #[test]
    fn version_1_2_lists_every_authentication_in_order_and_parses_as_1_1() {
        let config = config_for("nora@example.test", Preference::Imap);
        let xml = render_version(&config, Version::V1_2);
        assert!(xml.contains("<clientConfig version=\"1.2\">"), "{xml}");
        let imap = xml.split("</incomingServer>").next().unwrap();
        let sasl = imap.find("<authentication system=\"sasl\">PLAIN</authentication>");
        let password = imap.find("<authentication>password-cleartext</authentication>");
        assert!(
            sasl.is_some() && password.is_some() && sasl < password,
            "{imap}"
        );
        assert!(xml.contains("<authentication system=\"sasl\">LOGIN</authentication>"));
        // What Thunderbird checks holds, and the settings are the v1.1 document's.
        let parsed = parse(&xml).unwrap();
        assert_eq!(parsed, parse(&render(&config)).unwrap());
    }

    #[test]
    fn missing_parts_are_named() {
        let config = config_for("alice@example.test", Preference::Imap);
        let xml = render(&config);
        let no_out = xml.replace("outgoingServer", "otherServer");
        assert_eq!(
            parse(&no_out),
            Err(DocumentError::Missing("an outgoingServer"))
        );
        let no_socket = xml.replace("socketType", "socket");
        assert_eq!(parse(&no_socket), Err(DocumentError::Missing("socketType")));
    }
}
