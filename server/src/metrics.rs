//! Prometheus metrics with the `prometheus-client` crate: counters bumped on the hot
//! paths, gauges read from the live site when scraped, written in the Prometheus text
//! format that `/metrics` serves. The names and labels are what dashboards and the
//! end-to-end tests read: keep them.

use std::sync::OnceLock;

use mailsite_shared::SiteMap;
use mailsite_shared::config::BUCKETS;
use mailsite_shared::route::bucket_name;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::throttle::Protocol;

/// The `Content-Type` of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// How many [`Endpoint`]s there are (`Other` is the last).
const ENDPOINT_COUNT: usize = Endpoint::Other as usize + 1;

/// The HTTP endpoints counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Thunderbird,
    AutodiscoverXml,
    AutodiscoverJson,
    Mobileconfig,
    /// The PACC document.
    Pacc,
    /// The MTA-STS policy.
    MtaSts,
    Health,
    Metrics,
    /// The helpdesk console.
    Console,
    Other,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Thunderbird => "thunderbird",
            Endpoint::AutodiscoverXml => "autodiscover_xml",
            Endpoint::AutodiscoverJson => "autodiscover_json",
            Endpoint::Mobileconfig => "mobileconfig",
            Endpoint::Pacc => "pacc",
            Endpoint::MtaSts => "mta_sts",
            Endpoint::Health => "health",
            Endpoint::Metrics => "metrics",
            Endpoint::Console => "console",
            Endpoint::Other => "other",
        }
    }
}

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

impl Delivery {
    const ALL: [Delivery; 3] = [Delivery::Delivered, Delivery::Deferred, Delivery::Failed];

    fn label(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Deferred => "deferred",
            Delivery::Failed => "failed",
        }
    }
}

/// What a delivery's Sieve script came to, and what became of what scripts send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sieve {
    /// The script ran: the message was filed (INBOX or elsewhere).
    Filed,
    Discarded,
    Rejected,
    /// The script failed: the message was kept in INBOX.
    Failed,
    /// A vacation reply or redirect taken by a sorter.
    Sent,
    /// One no sorter took, after every retry, or that a sorter refused.
    NotSent,
}

impl Sieve {
    fn label(self) -> &'static str {
        match self {
            Sieve::Filed => "filed",
            Sieve::Discarded => "discarded",
            Sieve::Rejected => "rejected",
            Sieve::Failed => "failed",
            Sieve::Sent => "sent",
            Sieve::NotSent => "not_sent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    endpoint: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RcodeLabels {
    rcode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TlsPolicyLabels {
    /// `sts` or `tlsa`.
    policy: &'static str,
    /// `success` or an RFC 8460 result type.
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HealthCheckLabels {
    server: String,
    /// `pass` or `fail`.
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HealthChangeLabels {
    server: String,
    /// `down` or `up`.
    to: &'static str,
}

/// This node's counters. The families share their values with every registry they
/// are registered in, so a scrape reads them as they are.
pub struct Metrics {
    http: Family<HttpLabels, Counter>,
    /// Each endpoint's and status class's counter once it was first counted: the hot
    /// path then adds to its atomic without the family's lock and map lookup (a
    /// `Counter` clone shares its value). Series appear when first counted, as before.
    http_counters: [[OnceLock<Counter>; 5]; ENDPOINT_COUNT],
    dns: Family<RcodeLabels, Counter>,
    /// The counter of each response code, resolved once (every code shows from the start).
    dns_counters: [Counter; DNS_RCODES.len()],
    accepted: Counter,
    deliveries: Family<DeliveryLabels, Counter>,
    bounces: Counter,
    queued: Gauge,
    health_checks: Family<HealthCheckLabels, Counter>,
    health_changes: Family<HealthChangeLabels, Counter>,
    /// Login throttling: failures and refusals by protocol (each counter resolved
    /// once, indexed as [`Protocol::ALL`]), and blocks started.
    login_failures: Family<ProtocolLabels, Counter>,
    login_failure_counters: [Counter; Protocol::ALL.len()],
    login_blocked: Family<ProtocolLabels, Counter>,
    login_blocked_counters: [Counter; Protocol::ALL.len()],
    blocks_started: Counter,
    sieve: Family<DeliveryLabels, Counter>,
    /// Inbound messages by what their SPF/DKIM/DMARC verdict made of them.
    verdicts: Family<DeliveryLabels, Counter>,
    /// Outbound TLS sessions under a DANE or MTA-STS policy, by result.
    tls_policy: Family<TlsPolicyLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A node's counters, at 0. Each node's [`crate::state::Site`] owns one.
    pub fn new() -> Metrics {
        let dns = Family::<RcodeLabels, Counter>::default();
        let dns_counters =
            DNS_RCODES.map(|rcode| dns.get_or_create(&RcodeLabels { rcode }).clone());
        let login_failures = Family::<ProtocolLabels, Counter>::default();
        let login_failure_counters = Protocol::ALL.map(|p| {
            login_failures
                .get_or_create(&ProtocolLabels {
                    protocol: p.label(),
                })
                .clone()
        });
        let login_blocked = Family::<ProtocolLabels, Counter>::default();
        let login_blocked_counters = Protocol::ALL.map(|p| {
            login_blocked
                .get_or_create(&ProtocolLabels {
                    protocol: p.label(),
                })
                .clone()
        });
        let metrics = Metrics {
            login_failures,
            login_failure_counters,
            login_blocked,
            login_blocked_counters,
            blocks_started: Counter::default(),
            sieve: Family::default(),
            verdicts: Family::default(),
            tls_policy: Family::default(),
            http: Family::default(),
            http_counters: Default::default(),
            dns,
            dns_counters,
            accepted: Counter::default(),
            deliveries: Family::default(),
            bounces: Counter::default(),
            queued: Gauge::default(),
            health_checks: Family::default(),
            health_changes: Family::default(),
        };
        // Every response code (above) and delivery result is shown from the start, at 0.
        for outcome in Delivery::ALL {
            let _ = metrics.deliveries.get_or_create(&DeliveryLabels {
                result: outcome.label(),
            });
        }
        metrics
    }

    pub fn http(&self, endpoint: Endpoint, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        self.http_counters[endpoint as usize][class]
            .get_or_init(|| {
                self.http
                    .get_or_create(&HttpLabels {
                        endpoint: endpoint.label(),
                        status: STATUS_CLASSES[class],
                    })
                    .clone()
            })
            .inc();
    }

    /// Counts a DNS answer by its index in [`DNS_RCODES`].
    pub fn dns(&self, rcode: usize) {
        self.dns_counters[rcode.min(DNS_RCODES.len() - 1)].inc();
    }

    /// Counts `count` DNS answers with one response code at once (a batch's).
    pub fn dns_by(&self, rcode: usize, count: u64) {
        if count > 0 {
            self.dns_counters[rcode.min(DNS_RCODES.len() - 1)].inc_by(count);
        }
    }

    /// Counts a message a sorter accepted (queued) over SMTP.
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    /// Counts one recipient's delivery attempt.
    pub fn delivery(&self, outcome: Delivery) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                result: outcome.label(),
            })
            .inc();
    }

    /// Counts a failed password login.
    pub fn login_failure(&self, protocol: Protocol) {
        self.login_failure_counters[protocol as usize].inc();
    }

    /// Counts a login refused, unchecked, because its source is blocked.
    pub fn login_blocked(&self, protocol: Protocol) {
        self.login_blocked_counters[protocol as usize].inc();
    }

    /// Counts a Sieve script's run at delivery, or a message one sent.
    /// Counts an inbound message's verdict by its result (`accepted`, `junk`,
    /// `refused` or `deferred`).
    pub fn verdict(&self, result: &'static str) {
        self.verdicts
            .get_or_create(&DeliveryLabels { result })
            .inc();
    }

    /// Counts an outbound TLS session under a policy (`sts`, `tlsa`) by its result
    /// (`success` or an RFC 8460 result type).
    pub fn tls_policy(&self, policy: &'static str, result: &str) {
        self.tls_policy
            .get_or_create(&TlsPolicyLabels {
                policy,
                result: result.to_string(),
            })
            .inc();
    }

    pub fn sieve(&self, result: Sieve) {
        self.sieve
            .get_or_create(&DeliveryLabels {
                result: result.label(),
            })
            .inc();
    }

    /// Counts a source blocked by this node.
    pub fn block_started(&self) {
        self.blocks_started.inc();
    }

    /// Counts a bounce (DSN) a sorter queued.
    pub fn bounce(&self) {
        self.bounces.inc();
    }

    /// The gauge of the messages in this node's sorter queues, for a queue to keep
    /// (a clone shares its value).
    pub fn queue_gauge(&self) -> Gauge {
        self.queued.clone()
    }

    /// The counters of a server's health, all four shown (at 0) once it is checked.
    fn health(&self, server: &str) -> ([HealthCheckLabels; 2], [HealthChangeLabels; 2]) {
        let checks = ["pass", "fail"].map(|result| HealthCheckLabels {
            server: server.to_string(),
            result,
        });
        let changes = ["down", "up"].map(|to| HealthChangeLabels {
            server: server.to_string(),
            to,
        });
        for labels in &checks {
            let _ = self.health_checks.get_or_create(labels);
        }
        for labels in &changes {
            let _ = self.health_changes.get_or_create(labels);
        }
        (checks, changes)
    }

    /// Counts a health check of a server (made by this node).
    pub fn health_check(&self, server: &str, passed: bool) {
        let ([pass, fail], _) = self.health(server);
        let labels = if passed { pass } else { fail };
        self.health_checks.get_or_create(&labels).inc();
    }

    /// Counts a server marked down (`failing`) or up again by this node's checks.
    pub fn health_change(&self, server: &str, failing: bool) {
        let (_, [down, up]) = self.health(server);
        let labels = if failing { down } else { up };
        self.health_changes.get_or_create(&labels).inc();
    }

    /// This node's counters and the site's state as this node serves it (the map,
    /// the number of users, the generation), in the Prometheus text format.
    pub fn render(&self, map: &SiteMap, users: usize, generation: i64) -> String {
        let mut registry = Registry::default();
        registry.register(
            "mailsite_http_requests",
            "HTTP requests answered, by endpoint and status class",
            self.http.clone(),
        );
        registry.register(
            "mailsite_dns_responses",
            "DNS responses sent, by response code",
            self.dns.clone(),
        );
        registry.register(
            "mailsite_sorter_accepted",
            "Messages the sorters of this node accepted over SMTP",
            self.accepted.clone(),
        );
        registry.register(
            "mailsite_sorter_deliveries",
            "Recipients' delivery attempts, by result",
            self.deliveries.clone(),
        );
        registry.register(
            "mailsite_sorter_bounces",
            "Bounces (delivery status notifications) the sorters queued",
            self.bounces.clone(),
        );
        registry.register(
            "mailsite_sorter_queue_messages",
            "Messages waiting in the sorters' queues of this node",
            ConstGauge::new(self.queued.get().max(0)),
        );
        registry.register(
            "mailsite_health_checks",
            "Health checks this node made, by server and result",
            self.health_checks.clone(),
        );
        registry.register(
            "mailsite_health_changes",
            "Servers this node's health checks marked down or up again",
            self.health_changes.clone(),
        );
        registry.register(
            "mailsite_login_failures",
            "Failed password logins, by protocol",
            self.login_failures.clone(),
        );
        registry.register(
            "mailsite_login_blocked",
            "Logins refused without a check because their source is blocked, by protocol",
            self.login_blocked.clone(),
        );
        registry.register(
            "mailsite_login_blocks_started",
            "Sources this node blocked after too many failed logins",
            self.blocks_started.clone(),
        );
        registry.register(
            "mailsite_outbound_tls_policy",
            "TLS sessions to other domains' mail servers under a DANE (tlsa) or MTA-STS (sts) policy, by result: success or the TLS-RPT result type of the failure",
            self.tls_policy.clone(),
        );
        registry.register(
            "mailsite_inbound_verdicts",
            "Messages from other domains by what their SPF, DKIM and DMARC checks made of them: accepted, junk, refused (550) or deferred (451)",
            self.verdicts.clone(),
        );
        registry.register(
            "mailsite_sieve",
            "Deliveries whose Sieve script filed, discarded, rejected or failed, and the messages scripts sent (sent, not_sent)",
            self.sieve.clone(),
        );
        registry.register(
            "mailsite_users",
            "Users in the directory",
            ConstGauge::new(users as i64),
        );
        registry.register(
            "mailsite_site_generation",
            "Directory generation this node serves",
            ConstGauge::new(generation),
        );
        registry.register_collector(Box::new(SiteState::of(map)));
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// The site's state as this node serves it, read at each scrape and written in a
/// stable order (servers as configured, letters a to z).
#[derive(Debug)]
struct SiteState {
    /// Role, server name and the state it is in.
    servers: Vec<(&'static str, String, &'static str)>,
    /// Letter and the mailbox server serving it.
    owners: Vec<(String, String)>,
}

impl SiteState {
    fn of(map: &SiteMap) -> SiteState {
        let config = &map.config;
        let mailboxes = config.mailboxes.iter().zip(&map.mailbox_states);
        let sorters = config.sorters.iter().zip(&map.sorter_states);
        SiteState {
            servers: mailboxes
                .map(|(s, st)| ("mailbox", s.name.clone(), st.as_str()))
                .chain(sorters.map(|(s, st)| ("sorter", s.name.clone(), st.as_str())))
                .collect(),
            owners: (0..BUCKETS)
                .map(|bucket| (bucket_name(bucket), map.owner(bucket).name.clone()))
                .collect(),
        }
    }
}

impl Collector for SiteState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "mailsite_server_state",
            "Server state (1 for the state it is in).",
            None,
            MetricType::Gauge,
        )?;
        for (role, server, state) in &self.servers {
            for candidate in ["up", "maintenance", "down"] {
                let labels = [
                    ("role", *role),
                    ("server", server.as_str()),
                    ("state", candidate),
                ];
                ConstGauge::new(i64::from(*state == candidate))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "mailsite_letter_owner",
            "The mailbox server serving each letter (1).",
            None,
            MetricType::Gauge,
        )?;
        for (letter, server) in &self.owners {
            let labels = [("letter", letter.as_str()), ("server", server.as_str())];
            ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mailsite_shared::{SiteConfig, SiteMap};

    use super::*;

    #[test]
    fn names_labels_and_values_stay_as_dashboards_read_them() {
        let metrics = Metrics::new();
        metrics.http(Endpoint::Thunderbird, 200);
        metrics.http(Endpoint::Thunderbird, 404);
        metrics.http(Endpoint::Thunderbird, 404);
        metrics.dns(1);
        metrics.dns(99);
        metrics.accepted();
        metrics.delivery(Delivery::Delivered);
        metrics.bounce();
        metrics.queue_gauge().inc_by(2);
        metrics.queue_gauge().inc_by(-5);
        metrics.health_check("mailbox1", false);
        metrics.health_change("mailbox1", true);
        metrics.login_failure(Protocol::Pop3);
        metrics.login_blocked(Protocol::Imap);
        metrics.block_started();
        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let text = metrics.render(&map, 0, map.generation);
        for line in [
            "# HELP mailsite_http_requests_total HTTP requests answered, by endpoint and status class.",
            "# TYPE mailsite_http_requests_total counter",
            "mailsite_http_requests_total{endpoint=\"thunderbird\",status=\"2xx\"} 1",
            "mailsite_http_requests_total{endpoint=\"thunderbird\",status=\"4xx\"} 2",
            "mailsite_dns_responses_total{rcode=\"NXDOMAIN\"} 1",
            "mailsite_dns_responses_total{rcode=\"other\"} 1",
            "mailsite_dns_responses_total{rcode=\"NOERROR\"} 0",
            "mailsite_sorter_accepted_total 1",
            "mailsite_sorter_deliveries_total{result=\"delivered\"} 1",
            "mailsite_sorter_deliveries_total{result=\"failed\"} 0",
            "mailsite_sorter_bounces_total 1",
            "# TYPE mailsite_sorter_queue_messages gauge",
            "mailsite_sorter_queue_messages 0",
            "mailsite_health_checks_total{server=\"mailbox1\",result=\"fail\"} 1",
            "mailsite_health_checks_total{server=\"mailbox1\",result=\"pass\"} 0",
            "mailsite_health_changes_total{server=\"mailbox1\",to=\"down\"} 1",
            "mailsite_health_changes_total{server=\"mailbox1\",to=\"up\"} 0",
            "mailsite_login_failures_total{protocol=\"pop3\"} 1",
            "mailsite_login_failures_total{protocol=\"console\"} 0",
            "mailsite_login_blocked_total{protocol=\"imap\"} 1",
            "mailsite_login_blocks_started_total 1",
            "mailsite_users 0",
            "mailsite_site_generation 0",
            "# TYPE mailsite_server_state gauge",
            "mailsite_server_state{role=\"mailbox\",server=\"mailbox1\",state=\"up\"} 1",
            "mailsite_server_state{role=\"sorter\",server=\"sorter2\",state=\"down\"} 0",
            "mailsite_letter_owner{letter=\"a\",server=\"mailbox1\"} 1",
            "mailsite_letter_owner{letter=\"other\",server=\"mailbox1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }
}
