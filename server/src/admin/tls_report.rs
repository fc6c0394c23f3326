//! TLS reports (RFC 8460) of the sorters' sessions with other domains' mail servers:
//! for one day, one report per policy domain (DANE or MTA-STS), as the domain would
//! receive it.

use std::collections::BTreeMap;

use mail_auth::report::tlsrpt::TlsReport;

use super::{Admin, Result, refused};
use crate::directory::tls_reports;

impl Admin {
    /// The reports of `day` (`YYYY-MM-DD`, UTC; today when `None`), by policy domain.
    pub async fn tls_reports(
        &self,
        day: Option<&str>,
    ) -> Result<(String, BTreeMap<String, TlsReport>)> {
        let day = match day {
            Some(day) => {
                chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| {
                    refused(format!(
                        "{day:?} is not a day: write it as YYYY-MM-DD, e.g. 2026-12-06"
                    ))
                })?;
                day.to_string()
            }
            None => crate::sorter::tls_policy::today(),
        };
        let results = self.directory.tls_results(&day).await?;
        let (organization, contact) = tls_reports::submitter(&self.config);
        Ok((
            day.clone(),
            tls_reports::report(&results, &day, &organization, &contact),
        ))
    }
}
