//! `mailsite dns check`: what the site's DNS server answers against what the servers
//! present; `mailsite dns ds`: the DS records for the parent zone. Through the admin
//! core. Only parsing and printing here.

use clap::Subcommand;

use crate::admin::Admin;

#[derive(Subcommand, Debug)]
pub enum DnsCommand {
    /// Ask the site's DNS server and the servers themselves, and say where they
    /// disagree: SPF names every sorter; each signing DKIM key is published and its
    /// private half is on this node; the MTA-STS id is that of the served policy; each
    /// TLSA record names the certificate the sorter presents; with DNSSEC on, the
    /// zone serves the stored signing key (the one the DS names). Exits 1 on a
    /// mismatch.
    Check {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the DS record of each domain's zone signing key (DNSSEC), for the parent
    /// zone: give it to the registrar, and resolvers validate the site's answers from
    /// then on. The key is made now if the site has none yet; it stays the same until
    /// the site database is replaced.
    Ds {
        /// Print JSON (domain, key tag, DS and DNSKEY) instead of the DS lines.
        #[arg(long)]
        json: bool,
    },
}

pub async fn dns(admin: &Admin, cmd: DnsCommand) -> anyhow::Result<()> {
    match cmd {
        DnsCommand::Ds { json } => {
            let delegations = admin.dnssec_delegations().await?;
            if json {
                let rows: Vec<serde_json::Value> = delegations
                    .iter()
                    .map(|d| serde_json::json!({"domain": d.domain, "key_tag": d.key_tag, "ds": d.ds, "dnskey": d.dnskey}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for d in &delegations {
                    println!(
                        "; {} (key tag {}): publish in the parent zone",
                        d.domain, d.key_tag
                    );
                    println!("{}", d.ds);
                }
            }
            Ok(())
        }
        DnsCommand::Check { json } => {
            let findings = admin.dns_check().await?;
            if json {
                let rows: Vec<serde_json::Value> = findings
                    .iter()
                    .map(|f| serde_json::json!({"ok": f.ok, "what": f.what, "detail": f.detail}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for f in &findings {
                    let mark = if f.ok { "ok      " } else { "MISMATCH" };
                    println!("{mark} {}: {}", f.what, f.detail);
                }
            }
            let bad = findings.iter().filter(|f| !f.ok).count();
            if bad > 0 {
                anyhow::bail!(
                    "{bad} of {} checks found the zone and the servers disagreeing",
                    findings.len()
                );
            }
            Ok(())
        }
    }
}
