//! `mailsite tls-report`: the TLS reports (RFC 8460) of the sorters' sessions with
//! other domains' mail servers, through the admin core. Only parsing and printing here.

use clap::Args;

use crate::admin::Admin;

#[derive(Args, Debug)]
#[command(after_help = "\
Each report covers one day (UTC) and one domain mail was sent to under a policy:
DANE (\"tlsa\": the domain's MX zone is DNSSEC-signed and publishes TLSA records) or
MTA-STS (\"sts\": the domain publishes a policy at https://mta-sts.<domain>/). It counts
the sessions that met the policy and those that did not, with the RFC 8460 result type
of each failure (certificate-not-trusted, starttls-not-supported, validation-failure,
sts-policy-fetch-error, dnssec-invalid, ...), the MX host and its address. A failure
under an enforced policy means the mail was not handed to that server: it stays queued
(see `mailsite queue list`) until a server passes or the queue lifetime ends.

Examples:
  mailsite tls-report                      # today's sessions, as text
  mailsite tls-report --day 2026-12-05 --json")]
pub struct TlsReportArgs {
    /// The day (UTC) to report, YYYY-MM-DD; today when not given.
    #[arg(long)]
    day: Option<String>,
    /// Print the reports as RFC 8460 JSON (a list, one report per policy domain).
    #[arg(long)]
    json: bool,
}

pub async fn tls_report(admin: &Admin, args: TlsReportArgs) -> anyhow::Result<()> {
    let (day, reports) = admin.tls_reports(args.day.as_deref()).await?;
    if args.json {
        let list: Vec<serde_json::Value> = reports
            .values()
            .map(|r| serde_json::to_value(r).unwrap_or_default())
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if reports.is_empty() {
        println!("no sessions under a DANE or MTA-STS policy on {day}");
        return Ok(());
    }
    for (domain, report) in &reports {
        println!("{domain} ({day})");
        for policy in &report.policies {
            let kind = serde_json::to_value(policy.policy.policy_type).unwrap_or_default();
            println!(
                "  {}: {} successful, {} failed",
                kind.as_str().unwrap_or("policy"),
                policy.summary.total_success,
                policy.summary.total_failure
            );
            for f in &policy.failure_details {
                let result = serde_json::to_value(f.result_type).unwrap_or_default();
                println!(
                    "    {} x{}  {} {}  {}",
                    result.as_str().unwrap_or("failure"),
                    f.failed_session_count,
                    f.receiving_mx_hostname.as_deref().unwrap_or("-"),
                    f.receiving_ip.map(|i| i.to_string()).unwrap_or_default(),
                    f.additional_information.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
