//! Prometheus metrics: counters kept in atomics on the hot paths, gauges read from
//! the live site when scraped, rendered in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use mailsite_shared::config::bucket_name;

use crate::state::Snapshot;

/// The HTTP endpoints counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Thunderbird,
    AutodiscoverXml,
    AutodiscoverJson,
    Mobileconfig,
    Health,
    Metrics,
    Other,
}

const ENDPOINTS: [(Endpoint, &str); 7] = [
    (Endpoint::Thunderbird, "thunderbird"),
    (Endpoint::AutodiscoverXml, "autodiscover_xml"),
    (Endpoint::AutodiscoverJson, "autodiscover_json"),
    (Endpoint::Mobileconfig, "mobileconfig"),
    (Endpoint::Health, "health"),
    (Endpoint::Metrics, "metrics"),
    (Endpoint::Other, "other"),
];

/// DNS response codes counted separately (anything else is "other").
pub const DNS_RCODES: [&str; 6] = [
    "NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "NOTIMP", "other",
];

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

pub struct Metrics {
    http: [[AtomicU64; 5]; ENDPOINTS.len()],
    dns: [AtomicU64; DNS_RCODES.len()],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

#[allow(clippy::declare_interior_mutable_const)]
const ROW: [AtomicU64; 5] = [ZERO; 5];

pub static METRICS: Metrics = Metrics {
    http: [ROW; ENDPOINTS.len()],
    dns: [ZERO; DNS_RCODES.len()],
};

impl Metrics {
    pub fn http(&self, endpoint: Endpoint, status: u16) {
        let e = ENDPOINTS
            .iter()
            .position(|(x, _)| *x == endpoint)
            .unwrap_or(6);
        let class = ((status / 100).clamp(1, 5) - 1) as usize;
        self.http[e][class].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a DNS answer by its index in [`DNS_RCODES`].
    pub fn dns(&self, rcode: usize) {
        self.dns[rcode.min(DNS_RCODES.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, site: &Snapshot) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP mailsite_http_requests_total HTTP requests answered, by endpoint and status class.\n# TYPE mailsite_http_requests_total counter\n");
        for (e, (_, name)) in ENDPOINTS.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                let n = self.http[e][c].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "mailsite_http_requests_total{{endpoint=\"{name}\",status=\"{class}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP mailsite_dns_responses_total DNS responses sent, by response code.\n# TYPE mailsite_dns_responses_total counter\n");
        for (i, rcode) in DNS_RCODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "mailsite_dns_responses_total{{rcode=\"{rcode}\"}} {}",
                self.dns[i].load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP mailsite_users Users in the directory.\n# TYPE mailsite_users gauge\n",
        );
        let _ = writeln!(out, "mailsite_users {}", site.users.len());
        out.push_str("# HELP mailsite_site_generation Directory generation this node serves.\n# TYPE mailsite_site_generation gauge\n");
        let _ = writeln!(out, "mailsite_site_generation {}", site.map.generation);
        out.push_str("# HELP mailsite_server_state Server state (1 for the state it is in).\n# TYPE mailsite_server_state gauge\n");
        let config = site.config();
        let servers = config
            .mailboxes
            .iter()
            .zip(&site.map.mailbox_states)
            .map(|(s, st)| ("mailbox", s, st))
            .chain(
                config
                    .sorters
                    .iter()
                    .zip(&site.map.sorter_states)
                    .map(|(s, st)| ("sorter", s, st)),
            );
        for (role, server, state) in servers {
            for candidate in ["up", "maintenance", "down"] {
                let _ = writeln!(
                    out,
                    "mailsite_server_state{{role=\"{role}\",server=\"{}\",state=\"{candidate}\"}} {}",
                    server.name,
                    u8::from(state.as_str() == candidate)
                );
            }
        }
        out.push_str("# HELP mailsite_letter_owner The mailbox server serving each letter (1).\n# TYPE mailsite_letter_owner gauge\n");
        for bucket in 0..mailsite_shared::config::BUCKETS {
            let _ = writeln!(
                out,
                "mailsite_letter_owner{{letter=\"{}\",server=\"{}\"}} 1",
                bucket_name(bucket),
                site.map.owner(bucket).name
            );
        }
        out
    }
}
