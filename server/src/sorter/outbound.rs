//! Handing a message to another domain: the first of its servers ([`Relay::route`])
//! that takes a connection and passes the TLS its domain's policy requires. A server
//! that fails the policy (no STARTTLS, a certificate that does not match) is skipped
//! like one that is down, and the session's result is counted for the TLS report.

use mail_auth::report::tlsrpt::ResultType;

use super::client::{self, Dialect, Handoff, Outcome, Starttls, TlsSeen};
use super::relay::{Relay, Target};
use super::tls_policy::{Failure, Requirement, Session, verify};

/// One outcome per recipient, and the host that answered (as [`client::deliver`]).
pub async fn deliver(
    relay: &Relay,
    targets: &[Target],
    handoff: &Handoff<'_>,
) -> (Vec<Outcome>, Option<String>) {
    let mut last: Option<Vec<Outcome>> = None;
    for target in targets {
        let (starttls, verdict, policy) = match &target.tls {
            Requirement::Opportunistic => (Starttls::from(relay.tls()), None, None),
            Requirement::Policy {
                check,
                enforce,
                policy,
            } => match verify::connector(relay.provider(), check.clone(), *enforce) {
                Ok((connector, verdict)) => (
                    Starttls {
                        connector,
                        required: *enforce,
                        seen: Default::default(),
                    },
                    Some(verdict),
                    Some((policy.clone(), *enforce)),
                ),
                Err(e) => {
                    let why = format!("451 4.7.5 {}: no TLS client: {e}", target.host);
                    last = Some(vec![Outcome::Temporary(why); handoff.recipients.len()]);
                    continue;
                }
            },
        };
        let seen = starttls.seen.clone();
        let dialect = Dialect::Smtp {
            tls: Some(starttls),
        };
        let one = [(target.host.clone(), target.addr)];
        let (outcomes, host) = client::deliver(&one, &dialect, handoff).await;
        let Some((policy, enforce)) = policy else {
            if host.is_some() {
                return (outcomes, host);
            }
            last = Some(outcomes);
            continue;
        };
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let verdict = verdict.and_then(|v| v.lock().ok().and_then(|v| v.clone()));
        let Some(result) = judge(&seen, verdict) else {
            // No session to judge (not connected, or gone before EHLO).
            if host.is_some() {
                return (outcomes, host);
            }
            last = Some(outcomes);
            continue;
        };
        relay
            .recorder()
            .record(Session {
                policy: &policy,
                result: result.clone(),
                mx_host: &target.host,
                receiving_ip: Some(target.addr.ip()),
                sending_ip: seen.local,
            })
            .await;
        match result {
            Err(failure) if enforce => {
                let why = format!(
                    "451 4.7.5 {} ({}): {} ({}, {} policy of {})",
                    target.host,
                    target.addr.ip(),
                    failure.detail,
                    failure.kind_name(),
                    match policy.kind {
                        "tlsa" => "DANE",
                        _ => "MTA-STS",
                    },
                    policy.domain
                );
                last = Some(vec![Outcome::Temporary(why); handoff.recipients.len()]);
            }
            _ => return (outcomes, host),
        }
    }
    let outcomes = last.unwrap_or_else(|| {
        vec![Outcome::Temporary("no address to deliver to".into()); handoff.recipients.len()]
    });
    (outcomes, None)
}

/// The result of a session under a policy, from what it saw and the certificate's
/// verdict; `None` when it ended before TLS was a question.
fn judge(seen: &TlsSeen, verdict: Option<Result<(), Failure>>) -> Option<Result<(), Failure>> {
    if !seen.greeted {
        return None;
    }
    if !seen.offered {
        return Some(Err(Failure::new(
            ResultType::StartTlsNotSupported,
            "the server does not offer STARTTLS",
        )));
    }
    match verdict {
        Some(Err(failure)) => Some(Err(failure)),
        Some(Ok(())) if seen.encrypted => Some(Ok(())),
        _ => seen.failed.as_ref().map(|why| {
            Err(Failure::new(
                ResultType::ValidationFailure,
                format!("the TLS handshake failed: {why}"),
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_judged_by_what_they_saw() {
        let greeted = TlsSeen {
            greeted: true,
            ..Default::default()
        };
        assert_eq!(judge(&TlsSeen::default(), None), None);
        let plain = judge(&greeted, None).unwrap().unwrap_err();
        assert_eq!(plain.kind, ResultType::StartTlsNotSupported);
        let offered = TlsSeen {
            offered: true,
            ..greeted.clone()
        };
        let bad = Failure::new(ResultType::CertificateNotTrusted, "x");
        assert_eq!(
            judge(&offered, Some(Err(bad.clone()))),
            Some(Err(bad.clone()))
        );
        let encrypted = TlsSeen {
            encrypted: true,
            ..offered.clone()
        };
        assert_eq!(judge(&encrypted, Some(Ok(()))), Some(Ok(())));
        let broken = TlsSeen {
            failed: Some("alert".into()),
            ..offered
        };
        assert_eq!(
            judge(&broken, None).unwrap().unwrap_err().kind,
            ResultType::ValidationFailure
        );
    }
}
