//! Sending TLS reports (RFC 8460 3): once a day is over, each domain mail went to under
//! a policy gets that day's report at the `mailto:` addresses of its
//! `_smtp._tls.<domain>` TXT record (`v=TLSRPTv1; rua=...`), as a message with the
//! gzipped JSON attached (`application/tlsrpt+gzip`), signed like the site's bounces
//! and sent through the sorter's own queue. One sorter of the site sends each report:
//! the first to note it in the site database.

use std::time::Duration;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::mta_sts::{ReportUri, TlsRpt};
use tokio::sync::watch;

use super::{day_of, now, txt_bytes};
use crate::directory::tls_reports;
use crate::sorter::Sorter;
use crate::sorter::queue::{Envelope, Recipient};

/// How long after a start the first look is taken, and how often after that.
const FIRST_LOOK: Duration = Duration::from_secs(5);
const EVERY: Duration = Duration::from_secs(3600);

/// Sends the reports of past days that have not gone out, hourly, until `stop`.
pub async fn run(sorter: Sorter, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut wait = FIRST_LOOK;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        wait = EVERY;
        if let Err(error) = send_due(&sorter).await {
            tracing::error!(sorter = %sorter.name, error = format!("{error:#}"), "cannot send TLS reports");
        }
    }
}

/// Queues every report of a day before today not sent yet.
async fn send_due(sorter: &Sorter) -> anyhow::Result<()> {
    let directory = &sorter.site.directory;
    let now = now();
    for (day, domain) in directory.unsent_tls_reports(&day_of(now)).await? {
        if !directory.tls_report_sent(&day, &domain, now).await? {
            continue;
        }
        let rua = addresses(sorter, &domain).await;
        if rua.is_empty() {
            tracing::debug!(%domain, %day, "no TLS report addresses (_smtp._tls TXT): report not sent");
            continue;
        }
        let results: Vec<_> = directory
            .tls_results(&day)
            .await?
            .into_iter()
            .filter(|r| r.policy_domain == domain)
            .collect();
        let (organization, contact) = tls_reports::submitter(sorter.site.view().config());
        let Some(report) =
            tls_reports::report(&results, &day, &organization, &contact).remove(&domain)
        else {
            continue;
        };
        let from = format!("MAILER-DAEMON@{organization}");
        let mut message = Vec::new();
        report.write_rfc5322(
            &domain,
            &sorter.hostname,
            from.as_str(),
            rua.iter().map(String::as_str),
            &mut message,
        )?;
        let signatures =
            sorter
                .dkim
                .sign(&sorter.site.snapshot().map, &organization, &[&message], now);
        message.splice(0..0, signatures.into_bytes());
        let recipients = {
            let view = sorter.site.view();
            rua.iter()
                .map(|a| Recipient::new(a.clone(), view.map.route(a).is_err(), now as u64))
                .collect()
        };
        let envelope = Envelope {
            id: sorter.queue.new_id(),
            sender: String::new(),
            received: now as u64,
            authenticated: None,
            client: format!("TLS report of {day} for {domain}"),
            size: message.len() as u64,
            ret_full: false,
            envid: None,
            recipients,
        };
        let id = envelope.id.clone();
        sorter.queue.accept(envelope, message).await?;
        tracing::info!(sorter = %sorter.name, %domain, %day, report = %id, to = %rua.join(", "), "TLS report queued");
    }
    Ok(())
}

/// The `mailto:` addresses of `domain`'s TLS reporting policy.
async fn addresses(sorter: &Sorter, domain: &str) -> Vec<String> {
    let Some(resolver) = sorter.relay.resolver() else {
        return Vec::new();
    };
    let name = format!("_smtp._tls.{domain}.");
    let Ok(lookup) = resolver.txt_lookup(name.as_str()).await else {
        return Vec::new();
    };
    lookup
        .answers()
        .iter()
        .filter_map(|r| TlsRpt::parse(&txt_bytes(r)?).ok())
        .flat_map(|policy| policy.rua)
        .filter_map(|uri| match uri {
            ReportUri::Mail(address) if address.contains('@') => Some(address),
            _ => None,
        })
        .collect()
}
