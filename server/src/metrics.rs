//! Prometheus metrics: counters kept in atomics on the hot paths, gauges read from
//! the live site when scraped, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use mailsite_shared::route::bucket_name;

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
    /// The helpdesk console.
    Console,
    Other,
}

const ENDPOINTS: [(Endpoint, &str); 8] = [
    (Endpoint::Thunderbird, "thunderbird"),
    (Endpoint::AutodiscoverXml, "autodiscover_xml"),
    (Endpoint::AutodiscoverJson, "autodiscover_json"),
    (Endpoint::Mobileconfig, "mobileconfig"),
    (Endpoint::Health, "health"),
    (Endpoint::Metrics, "metrics"),
    (Endpoint::Console, "console"),
    (Endpoint::Other, "other"),
];

/// DNS response codes counted separately (anything else is "other").
pub const DNS_RCODES: [&str; 6] = [
    "NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "NOTIMP", "other",
];

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// What happened to a recipient at a sorter's delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// A temporary failure: retried later.
    Deferred,
    /// A permanent failure (or the queue lifetime ran out): bounced.
    Failed,
}

const DELIVERIES: [(Delivery, &str); 3] = [
    (Delivery::Delivered, "delivered"),
    (Delivery::Deferred, "deferred"),
    (Delivery::Failed, "failed"),
];

pub struct Metrics {
    http: [[AtomicU64; 5]; ENDPOINTS.len()],
    dns: [AtomicU64; DNS_RCODES.len()],
    accepted: AtomicU64,
    deliveries: [AtomicU64; DELIVERIES.len()],
    bounces: AtomicU64,
    queued: AtomicI64,
    /// Per server: health checks passed and failed, and times marked down and up.
    health: Mutex<BTreeMap<String, [u64; 4]>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

#[allow(clippy::declare_interior_mutable_const)]
const ROW: [AtomicU64; 5] = [ZERO; 5];

pub static METRICS: Metrics = Metrics {
    http: [ROW; ENDPOINTS.len()],
    dns: [ZERO; DNS_RCODES.len()],
    accepted: ZERO,
    deliveries: [ZERO; DELIVERIES.len()],
    bounces: ZERO,
    queued: AtomicI64::new(0),
    health: Mutex::new(BTreeMap::new()),
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

    /// Counts a message a sorter accepted (queued) over SMTP.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one recipient's delivery attempt.
    pub fn delivery(&self, outcome: Delivery) {
        let i = DELIVERIES
            .iter()
            .position(|(d, _)| *d == outcome)
            .unwrap_or(0);
        self.deliveries[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a bounce (DSN) a sorter queued.
    pub fn bounce(&self) {
        self.bounces.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes the number of messages in this node's sorter queues.
    pub fn queue_size(&self, delta: i64) {
        self.queued.fetch_add(delta, Ordering::Relaxed);
    }

    fn health_count(&self, server: &str, slot: usize) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match health.get_mut(server) {
            Some(counts) => counts[slot] += 1,
            None => {
                let mut counts = [0; 4];
                counts[slot] = 1;
                health.insert(server.to_string(), counts);
            }
        }
    }

    /// Counts a health check of a server (made by this node).
    pub fn health_check(&self, server: &str, passed: bool) {
        self.health_count(server, usize::from(!passed));
    }

    /// Counts a server marked down (`failing`) or up again by this node's checks.
    pub fn health_change(&self, server: &str, failing: bool) {
        self.health_count(server, if failing { 2 } else { 3 });
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
        out.push_str("# HELP mailsite_sorter_accepted_total Messages the sorters of this node accepted over SMTP.\n# TYPE mailsite_sorter_accepted_total counter\n");
        let _ = writeln!(
            out,
            "mailsite_sorter_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        out.push_str("# HELP mailsite_sorter_deliveries_total Recipients' delivery attempts, by result.\n# TYPE mailsite_sorter_deliveries_total counter\n");
        for (i, (_, name)) in DELIVERIES.iter().enumerate() {
            let _ = writeln!(
                out,
                "mailsite_sorter_deliveries_total{{result=\"{name}\"}} {}",
                self.deliveries[i].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP mailsite_sorter_bounces_total Bounces (delivery status notifications) the sorters queued.\n# TYPE mailsite_sorter_bounces_total counter\n");
        let _ = writeln!(
            out,
            "mailsite_sorter_bounces_total {}",
            self.bounces.load(Ordering::Relaxed)
        );
        out.push_str("# HELP mailsite_sorter_queue_messages Messages waiting in the sorters' queues of this node.\n# TYPE mailsite_sorter_queue_messages gauge\n");
        let _ = writeln!(
            out,
            "mailsite_sorter_queue_messages {}",
            self.queued.load(Ordering::Relaxed).max(0)
        );
        let health = self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str("# HELP mailsite_health_checks_total Health checks this node made, by server and result.\n# TYPE mailsite_health_checks_total counter\n");
        for (server, counts) in &health {
            for (i, result) in ["pass", "fail"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "mailsite_health_checks_total{{server=\"{server}\",result=\"{result}\"}} {}",
                    counts[i]
                );
            }
        }
        out.push_str("# HELP mailsite_health_changes_total Servers this node's health checks marked down or up again.\n# TYPE mailsite_health_changes_total counter\n");
        for (server, counts) in &health {
            for (i, to) in ["down", "up"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "mailsite_health_changes_total{{server=\"{server}\",to=\"{to}\"}} {}",
                    counts[2 + i]
                );
            }
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
