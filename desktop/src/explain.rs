//! Failures in words a user can act on: each [`Problem`] says what happened, in
//! terms of the user's own settings, and what to try. Codes are stable so that the
//! helpdesk (`mailsite helpdesk explain`) can match on them.

use mailsite_shared::report::{Discovery, Finding, Outcome, Problem, Step};

fn problem(code: &str, explanation: String, suggestion: &str) -> Problem {
    Problem {
        code: code.to_string(),
        explanation,
        suggestion: suggestion.to_string(),
    }
}

pub fn dns_no_such_name(host: &str) -> Problem {
    problem(
        "dns_no_such_name",
        format!("The name {host} does not exist in DNS."),
        "Check the spelling of the server name in your mail settings (and of the domain in your address); the helper can fill in the right settings for you.",
    )
}

/// The DNS server gave no answer at all (as opposed to "no such name").
pub fn dns_not_answering(host: &str, server: &str) -> Problem {
    problem(
        "dns_not_answering",
        format!("The DNS server {server} did not answer when asked for {host}."),
        "Check that this computer is online (open a web page). If it is, its DNS server may be down or blocked: try another network; if the site names its own DNS server, check that address.",
    )
}

pub fn dns_failed(host: &str, error: &str) -> Problem {
    problem(
        "dns_failed",
        format!("The address of {host} could not be looked up: {error}."),
        "Check that this computer is online and that its DNS works (open a web page); then try again.",
    )
}

pub fn connection_refused(host: &str, addr: &str, port: u16) -> Problem {
    problem(
        "connection_refused",
        format!("Nothing answers on port {port} of {host} ({addr}): the connection was refused."),
        "The server or this service may be stopped, or the port number in your settings is wrong. Check the port; if it is right, tell the helpdesk and send them this report.",
    )
}

pub fn connection_timeout(host: &str, addr: &str, port: u16) -> Problem {
    problem(
        "connection_timeout",
        format!(
            "{host} ({addr}) did not answer on port {port}: a firewall may be dropping the connection."
        ),
        "Try another network (e.g. a phone hotspot), or the other port offered for this service; networks often block mail ports.",
    )
}

pub fn tls_wrong_name(host: &str, names: &str) -> Problem {
    problem(
        "tls_wrong_name",
        format!("The server's certificate is not for {host}; it names {names}."),
        "Use a server name the certificate names (the helper's discovered settings do); if you did, the connection may be going to the wrong server: tell the helpdesk.",
    )
}

pub fn tls_expired(host: &str, when: &str) -> Problem {
    problem(
        "tls_expired",
        format!("The certificate of {host} expired on {when}."),
        "Check that this computer's date and time are right; if they are, the server's certificate must be renewed: tell the helpdesk. Do not accept the certificate anyway.",
    )
}

pub fn tls_untrusted(host: &str, issuer: &str) -> Problem {
    problem(
        "tls_untrusted",
        format!(
            "The certificate of {host} was issued by {issuer}, which this computer does not trust."
        ),
        "If your site uses its own certificate authority, install its CA certificate (or pass it with --ca); otherwise the connection may be intercepted: do not send your password.",
    )
}

/// The server's certificate is wrong in itself (self-signed, or its signature does not
/// check): no CA file can make it trusted, unlike [`tls_untrusted`].
pub fn tls_bad_certificate(host: &str) -> Problem {
    problem(
        "tls_bad_certificate",
        format!(
            "The certificate of {host} was not issued by any certificate authority (it is self-signed) or its signature is broken, so no computer can check it."
        ),
        "Do not accept it and do not send your password: tell the helpdesk and send them this report. The server needs a certificate issued by an authority (the site's own CA, or a public one).",
    )
}

pub fn tls_failed(host: &str, error: &str) -> Problem {
    problem(
        "tls_failed",
        format!("The secure connection to {host} failed: {error}."),
        "Check that the security setting (SSL/TLS or STARTTLS) matches the port; the helper's discovered settings do.",
    )
}

/// The server offers no way of logging in with a password that the helper (and a mail
/// client) can use on this connection: no AUTH at all (a relay port such as 25), or
/// only mechanisms without a password.
pub fn mechanism_not_offered(what: &str, host: &str, port: u16, offered: &str) -> Problem {
    problem(
        "mechanism_not_offered",
        format!(
            "The {what} server at {host} port {port} offers no password login on this connection (it offers: {offered}), so your client cannot sign in there."
        ),
        "This is usually the wrong port for sending mail (port 25 is for servers; clients use 465 or 587): use the settings the helper discovered. If they are what you use, tell the helpdesk.",
    )
}

pub fn auth_refused(what: &str, login: &str) -> Problem {
    problem(
        "auth_refused",
        format!("The {what} server refused the password for {login}."),
        "Type the password again (check Caps Lock); if it still fails, reset it with the helpdesk. The user name is the part of your address before @.",
    )
}

/// Whether a server's refusal says this computer's address is blocked after too many
/// failed logins (as mailsite's IMAP, POP3 and SMTP say it), with the block's end when
/// the server gives it.
pub fn blocked(reply: &str) -> Option<Option<String>> {
    if !reply.contains("Too many failed logins") {
        return None;
    }
    let until = reply.split("blocked until ").nth(1).map(|rest| {
        rest.split([')', ' ', ';'])
            .next()
            .unwrap_or_default()
            .to_string()
    });
    Some(until.filter(|u| !u.is_empty()))
}

/// The server refused to check any password from this computer's address: it is
/// blocked for a while after too many failed logins from it.
pub fn source_blocked(what: &str, login: &str, until: Option<&str>) -> Problem {
    let when = until.map_or_else(String::new, |u| format!(" until {u}"));
    problem(
        "source_blocked",
        format!(
            "The {what} server does not check passwords from this computer's address{when}: too many failed logins came from it (a phone or program with an old password, say). The password was not tried."
        ),
        &format!(
            "Wait until the block ends, or ask the helpdesk to lift it now (`mailsite block remove {login}`, or the Blocks page of the console); then correct the password in every device that kept trying the old one, or the block comes back."
        ),
    )
}

/// Whether a server's refusal says the password was an app password that expired (as
/// mailsite's IMAP, POP3 and SMTP say it): its label and when it expired.
pub fn app_password_expired_in(reply: &str) -> Option<(String, String)> {
    let rest = reply.split("The app password \"").nth(1)?;
    let (label, rest) = rest.split_once("\" expired at ")?;
    // An RFC 3339 UTC time, which has colons of its own: up to the 'Z' that ends it.
    let at = rest.find('Z').map_or(rest, |end| &rest[..=end]);
    Some((label.to_string(), at.to_string()))
}

/// The password given is one of the user's app passwords, and it has expired: the
/// right secret, out of date.
pub fn app_password_expired(what: &str, login: &str, label: &str, at: &str) -> Problem {
    problem(
        "app_password_expired",
        format!(
            "The {what} server recognised the password as {login}'s app password \"{label}\", which expired at {at}. The password is not wrong, it is out of date."
        ),
        &format!(
            "Create a new app password for this device (ask the helpdesk, or `mailsite user app-password add {login} --label \"{label}\"`) and type it in place of the old one; remove the old one once the device works."
        ),
    )
}

/// Push mail stopped after a silence: something between this computer and the server
/// forgets connections idle that long.
pub fn idle_connection_dropped(host: &str, after: &str, works: Option<&str>, why: &str) -> Problem {
    let works = works.map_or_else(
        || "Even the shortest silence tried was too long.".to_string(),
        |w| format!("After {w} of silence it still worked."),
    );
    problem(
        "idle_connection_dropped",
        format!(
            "New mail stopped being announced: after {after} without traffic, the waiting connection to {host} no longer carried the server's notices ({why}). Something between this computer and the server, usually a home router's NAT or a firewall, forgets connections that stay quiet that long. {works}"
        ),
        "Set your mail program to check for new mail more often than that (Thunderbird: Account Settings, Server Settings, \"Check for new messages every N minutes\"), or ask the helpdesk to make the server's keep-alive shorter; send them this report.",
    )
}

pub fn referral(server_host: &str, target: &str) -> Problem {
    problem(
        "referral",
        format!(
            "The server at {server_host} does not hold your mailbox now (it may be in maintenance); your mail is now served by {target}."
        ),
        &format!(
            "Use {target} as the incoming server name: it always points at whichever server holds your mail, so you will not need to change it again."
        ),
    )
}

pub fn server_temporary(what: &str, message: &str) -> Problem {
    problem(
        "server_temporary",
        format!("The {what} server answered with a temporary error: {message}"),
        "Wait a few minutes and try again; if it lasts, tell the helpdesk.",
    )
}

pub fn protocol_error(what: &str, message: &str) -> Problem {
    problem(
        "protocol_error",
        format!("The {what} conversation failed: {message}"),
        "Try again; if it keeps failing, send this report to the helpdesk.",
    )
}

pub fn timeout(what: &str, secs: f64) -> Problem {
    problem(
        "timeout",
        format!("The {what} step did not finish within {secs:.0} s."),
        "The server or the network is very slow or dropping packets; try again later or from another network.",
    )
}

pub fn not_delivered(secs: f64, protocol: &str) -> Problem {
    problem(
        "not_delivered",
        format!(
            "The test message was accepted for sending but did not arrive over {protocol} within {secs:.0} s."
        ),
        "Mail may be queued at the site; wait a few minutes and check again, and tell the helpdesk if it never arrives.",
    )
}

pub fn discovery_failed(domain: &str) -> Problem {
    problem(
        "discovery_failed",
        format!(
            "No settings could be found for {domain}: no autoconfig, Autodiscover, SRV record or mail<letter>.{domain} name answered."
        ),
        "Check the domain of your address; if it is right, this computer may be offline or its DNS may not know the site.",
    )
}

/// The site's autoconfig service said the account is disabled: that is the headline,
/// whatever the logins then say (every password is refused for a disabled account).
pub fn account_disabled(discovery: &Discovery, email: &str) -> Option<Finding> {
    discovery
        .attempts
        .iter()
        .any(|a| a.method == "autoconfig" && a.status.contains("this account is disabled"))
        .then(|| Finding {
            code: "account_disabled".to_string(),
            explanation: format!(
                "The site says the account {email} is disabled, so no password works for it now."
            ),
            suggestion: "Ask your helpdesk to enable the account again; changing the password in your mail client will not help.".to_string(),
        })
}

/// Conclusions that need several steps: one port blocked while its sibling works, or
/// a whole server not answering.
pub fn findings(steps: &[Step]) -> Vec<Finding> {
    let mut out = Vec::new();
    let tcp: Vec<&Step> = steps.iter().filter(|s| s.kind == "tcp").collect();
    for protocol in ["smtp", "imap", "pop3"] {
        let of = |outcome| {
            tcp.iter()
                .filter(|s| s.detail("protocol") == Some(protocol) && s.outcome == outcome)
                .filter_map(|s| s.detail("port").map(str::to_string))
                .collect::<Vec<_>>()
        };
        let (passed, failed) = (of(Outcome::Pass), of(Outcome::Fail));
        let good = passed.iter().find(|p| !failed.contains(p));
        let bad = failed.iter().find(|f| !passed.contains(f));
        if let (Some(good), Some(bad)) = (good, bad) {
            out.push(Finding {
                code: "port_blocked".to_string(),
                explanation: format!("Port {bad} ({}) is blocked or closed on this network; port {good} works.", protocol.to_uppercase()),
                suggestion: format!("Set your mail client to use port {good} with the security that goes with it (the helper's settings list it)."),
            });
        }
    }
    let mut hosts: Vec<&str> = tcp.iter().filter_map(|s| s.detail("host")).collect();
    hosts.sort();
    hosts.dedup();
    for host in hosts {
        let of_host: Vec<&&Step> = tcp
            .iter()
            .filter(|s| s.detail("host") == Some(host))
            .collect();
        if of_host.len() > 1 && of_host.iter().all(|s| s.outcome == Outcome::Fail) {
            out.push(Finding {
                code: "server_down".to_string(),
                explanation: format!("{host} answers on none of its ports: the server is stopped or unreachable."),
                suggestion: "Nothing in your settings can fix this: tell the helpdesk (send this report); your mail is kept and will arrive once the server is back.".to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{app_password_expired_in, blocked};

    #[test]
    fn expired_app_passwords_are_read_from_each_protocols_refusal() {
        let text = "The app password \"phone (old)\" expired at 2026-12-01T00:00:00Z: create a new one for this device";
        for reply in [
            format!("a1 NO [EXPIRED] {text}"),
            format!("-ERR [AUTH] {text}"),
            format!("535 5.7.8 {text}"),
        ] {
            assert_eq!(
                app_password_expired_in(&reply),
                Some(("phone (old)".into(), "2026-12-01T00:00:00Z".into())),
                "{reply}"
            );
        }
        assert_eq!(
            app_password_expired_in("a1 NO [AUTHENTICATIONFAILED] Wrong user name or password"),
            None
        );
    }

    #[test]
    fn blocks_are_read_from_each_protocols_refusal() {
        let end = Some("2026-12-05T09:15:19Z".to_string());
        for reply in [
            "a1 NO [UNAVAILABLE] Too many failed logins from your address: try again in 15 minutes (blocked until 2026-12-05T09:15:19Z)",
            "-ERR [SYS/TEMP] Too many failed logins from your address: try again in 15 minutes (blocked until 2026-12-05T09:15:19Z)",
            "421 4.7.0 Too many failed logins from your address: try again in 15 minutes (blocked until 2026-12-05T09:15:19Z); closing",
        ] {
            assert_eq!(blocked(reply), Some(end.clone()), "{reply}");
        }
        assert_eq!(
            blocked(
                "NO [UNAVAILABLE] Too many failed logins from your address: try again in 1 minutes"
            ),
            Some(None)
        );
        assert_eq!(
            blocked("NO [AUTHENTICATIONFAILED] Wrong user name or password"),
            None
        );
    }
}
