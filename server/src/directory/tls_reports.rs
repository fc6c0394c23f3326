//! What the sorters keep about TLS to other domains, in the site database so that every
//! sorter and restart shares it: other domains' MTA-STS policies as last fetched
//! (RFC 8461 5.1), and TLS session results counted per day for TLS reports (RFC 8460),
//! which [`report`] turns into the report's JSON form.

use std::collections::BTreeMap;

use mail_auth::report::tlsrpt::{
    DateRange, FailureDetails, Policy, PolicyDetails, PolicyType, ResultType, Summary, TlsReport,
};
use sqlx::Row;

use super::{Directory, Result};

/// An MTA-STS policy as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPolicy {
    /// The id of the `_mta-sts` TXT record it was fetched for.
    pub id: String,
    /// The policy file's text.
    pub policy: String,
    pub fetched_at: i64,
    /// When its max_age runs out (Unix seconds).
    pub expires_at: i64,
}

/// One TLS session's result, or a count of like ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionResult {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub policy_domain: String,
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// The policy's lines (the MTA-STS file, or the TLSA records), joined by newlines.
    pub policy_string: String,
    /// The MTA-STS policy's `mx` patterns, joined by newlines.
    pub mx_host: String,
    /// The RFC 8460 result type; empty for a successful session.
    pub result_type: String,
    pub sending_ip: String,
    pub receiving_mx: String,
    pub receiving_ip: String,
    /// Words on what failed (RFC 8460 `additional-information`).
    pub information: String,
    /// How many sessions (when read back).
    pub sessions: i64,
}

impl Directory {
    /// The cached MTA-STS policy of `domain`, if any.
    pub async fn mta_sts_policy(&self, domain: &str) -> Result<Option<CachedPolicy>> {
        let row = sqlx::query(
            "SELECT policy_id, policy, fetched_at, expires_at FROM mta_sts_policies \
             WHERE domain = $1",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(CachedPolicy {
                id: row.try_get(0)?,
                policy: row.try_get(1)?,
                fetched_at: row.try_get(2)?,
                expires_at: row.try_get(3)?,
            }),
            None => None,
        })
    }

    /// Keeps `policy` as `domain`'s, replacing the one before.
    pub async fn put_mta_sts_policy(&self, domain: &str, policy: &CachedPolicy) -> Result<()> {
        sqlx::query(
            "INSERT INTO mta_sts_policies (domain, policy_id, policy, fetched_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (domain) DO UPDATE SET policy_id = $2, policy = $3, \
             fetched_at = $4, expires_at = $5",
        )
        .bind(domain)
        .bind(&policy.id)
        .bind(&policy.policy)
        .bind(policy.fetched_at)
        .bind(policy.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts one session with this result.
    pub async fn record_tls_result(&self, result: &SessionResult) -> Result<()> {
        sqlx::query(
            "INSERT INTO tls_results (day, policy_domain, policy_type, policy_string, mx_host, \
             result_type, sending_ip, receiving_mx, receiving_ip, information, sessions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1) \
             ON CONFLICT (day, policy_domain, policy_type, policy_string, mx_host, result_type, \
             sending_ip, receiving_mx, receiving_ip, information) \
             DO UPDATE SET sessions = tls_results.sessions + 1",
        )
        .bind(&result.day)
        .bind(&result.policy_domain)
        .bind(&result.policy_type)
        .bind(&result.policy_string)
        .bind(&result.mx_host)
        .bind(&result.result_type)
        .bind(&result.sending_ip)
        .bind(&result.receiving_mx)
        .bind(&result.receiving_ip)
        .bind(&result.information)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every result counted on `day`.
    pub async fn tls_results(&self, day: &str) -> Result<Vec<SessionResult>> {
        let rows = sqlx::query(
            "SELECT day, policy_domain, policy_type, policy_string, mx_host, result_type, \
             sending_ip, receiving_mx, receiving_ip, information, sessions FROM tls_results \
             WHERE day = $1 ORDER BY policy_domain, policy_type, result_type, receiving_mx",
        )
        .bind(day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionResult {
                    day: row.try_get(0)?,
                    policy_domain: row.try_get(1)?,
                    policy_type: row.try_get(2)?,
                    policy_string: row.try_get(3)?,
                    mx_host: row.try_get(4)?,
                    result_type: row.try_get(5)?,
                    sending_ip: row.try_get(6)?,
                    receiving_mx: row.try_get(7)?,
                    receiving_ip: row.try_get(8)?,
                    information: row.try_get(9)?,
                    sessions: row.try_get(10)?,
                })
            })
            .collect()
    }

    /// The days before `today` with results whose report has not gone out, and the
    /// domains of each, oldest first.
    pub async fn unsent_tls_reports(&self, today: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.day, r.policy_domain FROM tls_results r \
             WHERE r.day < $1 AND NOT EXISTS (SELECT 1 FROM tls_reports_sent s \
             WHERE s.day = r.day AND s.policy_domain = r.policy_domain) \
             ORDER BY r.day, r.policy_domain",
        )
        .bind(today)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Notes that `domain`'s report of `day` was dealt with (sent, or nowhere to send);
    /// false if another sorter did first.
    pub async fn tls_report_sent(&self, day: &str, domain: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO tls_reports_sent (day, policy_domain, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (day, policy_domain) DO NOTHING",
        )
        .bind(day)
        .bind(domain)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Who a site's reports say they are from: its domain, and its postmaster.
pub fn submitter(config: &mailsite_shared::SiteConfig) -> (String, String) {
    (
        config.domain.clone(),
        format!("mailto:{}@{}", config.postmaster, config.domain),
    )
}

/// The RFC 8460 reports of one day's `results`, one per policy domain, by domain.
pub fn report(
    results: &[SessionResult],
    day: &str,
    organization: &str,
    contact: &str,
) -> BTreeMap<String, TlsReport> {
    let start = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(0);
    let mut reports: BTreeMap<String, TlsReport> = BTreeMap::new();
    for r in results {
        let report = reports
            .entry(r.policy_domain.clone())
            .or_insert_with(|| TlsReport {
                organization_name: Some(organization.to_string()),
                date_range: DateRange::from_timestamps(start, start + 86_399),
                contact_info: Some(contact.to_string()),
                report_id: format!("{day}.{}@{organization}", r.policy_domain),
                policies: Vec::new(),
            });
        let policy_type = match r.policy_type.as_str() {
            "sts" => PolicyType::Sts,
            "tlsa" => PolicyType::Tlsa,
            "no-policy-found" => PolicyType::NoPolicyFound,
            _ => PolicyType::Other,
        };
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        };
        let details = PolicyDetails {
            policy_type,
            policy_string: lines(&r.policy_string),
            policy_domain: r.policy_domain.clone(),
            mx_host: lines(&r.mx_host),
        };
        let index = match report.policies.iter().position(|p| p.policy == details) {
            Some(i) => i,
            None => {
                report.policies.push(Policy {
                    policy: details,
                    summary: Summary {
                        total_success: 0,
                        total_failure: 0,
                    },
                    failure_details: Vec::new(),
                });
                report.policies.len() - 1
            }
        };
        let policy = &mut report.policies[index];
        let sessions = u32::try_from(r.sessions).unwrap_or(u32::MAX);
        if r.result_type.is_empty() {
            policy.summary.total_success = policy.summary.total_success.saturating_add(sessions);
            continue;
        }
        policy.summary.total_failure = policy.summary.total_failure.saturating_add(sessions);
        let mut failure = FailureDetails::new(result_type(&r.result_type));
        failure.sending_mta_ip = r.sending_ip.parse().ok();
        failure.receiving_mx_hostname = Some(r.receiving_mx.clone()).filter(|h| !h.is_empty());
        failure.receiving_ip = r.receiving_ip.parse().ok();
        failure.additional_information = Some(r.information.clone()).filter(|i| !i.is_empty());
        failure.failed_session_count = sessions;
        policy.failure_details.push(failure);
    }
    reports
}

/// The result type named `name` in RFC 8460.
fn result_type(name: &str) -> ResultType {
    serde_json::from_value(serde_json::Value::String(name.to_string())).unwrap_or(ResultType::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_results_become_one_report_per_domain() {
        let ok = SessionResult {
            day: "2026-12-06".into(),
            policy_domain: "remote.example".into(),
            policy_type: "sts".into(),
            policy_string: "version: STSv1\nmode: enforce".into(),
            mx_host: "mx.remote.example".into(),
            sessions: 3,
            ..Default::default()
        };
        let failed = SessionResult {
            result_type: "certificate-not-trusted".into(),
            receiving_mx: "mx.remote.example".into(),
            receiving_ip: "192.0.2.1".into(),
            sessions: 2,
            ..ok.clone()
        };
        let reports = report(&[ok, failed], "2026-12-06", "example.test", "mailto:x@y");
        let json: serde_json::Value =
            serde_json::from_str(&reports["remote.example"].to_json()).unwrap();
        let policy = &json["policies"][0];
        assert_eq!(policy["policy"]["policy-type"], "sts");
        assert_eq!(policy["policy"]["mx-host"][0], "mx.remote.example");
        assert_eq!(policy["summary"]["total-successful-session-count"], 3);
        assert_eq!(policy["summary"]["total-failure-session-count"], 2);
        let failure = &policy["failure-details"][0];
        assert_eq!(failure["result-type"], "certificate-not-trusted");
        assert_eq!(failure["receiving-ip"], "192.0.2.1");
        assert_eq!(failure["failed-session-count"], 2);
        assert_eq!(
            json["date-range"]["start-datetime"], "2026-12-06T00:00:00Z",
            "{json}"
        );
        assert_eq!(result_type("dane-required"), ResultType::DaneRequired);
        assert_eq!(result_type("whatever"), ResultType::Other);
    }
}
