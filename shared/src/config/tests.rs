use super::*;

#[test]
fn embedded_default_is_the_documented_site() {
    let c = SiteConfig::embedded();
    assert_eq!(c.domain, "example.test");
    assert_eq!(c.mailboxes.len(), 2);
    assert_eq!(
        c.mailboxes[0].addresses,
        vec!["127.0.0.11".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        c.sorters[1].addresses,
        vec!["127.0.0.22".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(c.letters[0], 0); // a -> mailbox1
    assert_eq!(c.letters[12], 0); // m -> mailbox1
    assert_eq!(c.letters[13], 1); // n -> mailbox2
    assert_eq!(c.letters[25], 1); // z -> mailbox2
    assert_eq!(c.letters[26], 0); // other -> mailbox1
    assert_eq!(c.http_listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.dns_listen, "127.0.0.1:10053".parse().unwrap());
}

fn with(replace: &str, by: &str) -> Result<SiteConfig, ConfigError> {
    assert!(DEFAULT_SITE_TOML.contains(replace), "{replace}");
    let text = DEFAULT_SITE_TOML.replacen(replace, by, 1);
    SiteConfig::from_toml(&text, Some(Path::new("site.toml")))
}

fn line_of(needle: &str) -> usize {
    DEFAULT_SITE_TOML
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn unknown_server_in_letter_map_names_line_and_fix() {
    let e = with("\"n-z\" = \"mailbox2\"", "\"n-z\" = \"mailbox3\"").unwrap_err();
    assert_eq!(e.line, Some(line_of("\"n-z\"")));
    assert!(e.message.contains("mailbox3"), "{e}");
    assert!(e.fix.contains("mailbox1, mailbox2"), "{e}");
    assert!(e.to_string().starts_with("site.toml:"), "{e}");
}

#[test]
fn missing_letters_are_listed() {
    let e = with("\"n-z\" = \"mailbox2\"", "\"n-x\" = \"mailbox2\"").unwrap_err();
    assert!(e.message.ends_with("y, z"), "{e}");
}

#[test]
fn letter_mapped_twice_is_refused() {
    let e = with(
        "other = \"mailbox1\"",
        "other = \"mailbox1\"\n\"q\" = \"mailbox1\"",
    )
    .unwrap_err();
    assert!(e.message.contains("letter q is mapped twice"), "{e}");
}

#[test]
fn typo_in_key_names_its_line() {
    let e = with("alias_ttl = 5", "alias_tll = 5").unwrap_err();
    assert_eq!(e.line, Some(line_of("alias_ttl")));
    assert!(e.message.contains("alias_tll"), "{e}");
    assert!(e.fix.contains("print-default"), "{e}");
}

#[test]
fn timeouts_default_and_a_zero_names_its_line() {
    let c = with("login = 60 ", "").unwrap();
    assert_eq!(c.timeouts.login, 60);
    assert_eq!(c.timeouts.imap, 1800);
    let c = with("pop3 = 600", "pop3 = 900").unwrap();
    assert_eq!(c.timeouts.pop3, 900);
    let e = with("login = 60 ", "login = 0 ").unwrap_err();
    assert_eq!(e.line, Some(line_of("login = 60 ")));
    assert_eq!(e.key, "timeouts.login");
    assert_eq!(c.timeouts.smtp, 300);
}

#[test]
fn idle_keepalives_default_may_be_off_and_stay_under_29_minutes() {
    assert_eq!(SiteConfig::embedded().timeouts.idle_keepalive, 120);
    let c = with("idle_keepalive = 120", "idle_keepalive = 0").unwrap();
    assert_eq!(c.timeouts.idle_keepalive, 0);
    let e = with("idle_keepalive = 120", "idle_keepalive = 1800").unwrap_err();
    assert_eq!(e.key, "timeouts.idle_keepalive");
    assert_eq!(e.line, Some(line_of("idle_keepalive")));
}

#[test]
fn sorter_limits_default_and_bad_values_name_their_line() {
    let c = SiteConfig::embedded();
    assert_eq!(c.smtp.max_message_size, 25 * 1024 * 1024);
    assert_eq!(c.queue.lifetime, 5 * 24 * 3600);
    assert_eq!(c.queue.retry_first, 5);
    let c = with("retry_first = 5", "retry_first = 2").unwrap();
    assert_eq!(c.queue.retry_first, 2);
    let e = with(
        "max_message_size = 26214400",
        "max_message_size = 999999999999",
    )
    .unwrap_err();
    assert_eq!(e.key, "smtp.max_message_size");
    assert_eq!(e.line, Some(line_of("max_message_size")));
    assert!(e.fix.contains("bytes"), "{e}");
    let e = with("retry_max = 600", "retry_max = 1").unwrap_err();
    assert_eq!(e.key, "queue.retry_max");
    let e = with("[queue]", "[queue]\nretries = 3").unwrap_err();
    assert!(e.message.contains("retries"), "{e}");
    assert_eq!(SiteConfig::embedded().relay, RelaySettings::default());
    let c = with("resolver = \"system\"", "resolver = \"127.0.0.1:10053\"").unwrap();
    assert_eq!(c.relay.resolver, Some("127.0.0.1:10053".parse().unwrap()));
    let e = with("resolver = \"system\"", "resolver = \"dns.example\"").unwrap_err();
    assert_eq!(e.key, "relay.resolver");
    assert_eq!(e.line, Some(line_of("resolver = \"system\"")));
    let c = with("# smarthost = ", "smarthost = \"relay.example:587\" # ").unwrap();
    assert_eq!(c.relay.smarthost.as_deref(), Some("relay.example:587"));
    let e = with("# smarthost = ", "smarthost = \"relay.example\" # ").unwrap_err();
    assert_eq!(e.key, "relay.smarthost");
}

#[test]
fn health_defaults_and_bad_values_name_their_line() {
    let c = SiteConfig::embedded();
    assert_eq!(c.health, HealthSettings::default());
    assert_eq!(c.alias_ttl, 5);
    // A killed server leaves the answers within the checks, then the TTL: < 10 s.
    let h = c.health;
    assert!(h.interval_ms * u64::from(h.down_after) + u64::from(c.alias_ttl) * 1000 < 10_000);
    let c = with("interval_ms = 1000", "interval_ms = 250").unwrap();
    assert_eq!(c.health.interval_ms, 250);
    let c = with("enabled = true", "enabled = false").unwrap();
    assert!(!c.health.enabled);
    let e = with("down_after = 3", "down_after = 0").unwrap_err();
    assert_eq!(e.key, "health.down_after");
    assert_eq!(e.line, Some(line_of("down_after = 3")));
    let e = with("timeout_ms = 2000", "timeout_ms = 5").unwrap_err();
    assert_eq!(e.key, "health.timeout_ms");
    assert!(e.fix.contains("milliseconds"), "{e}");
    let e = with("up_after = 2", "up_after = 2\nrise = 2").unwrap_err();
    assert!(e.message.contains("rise"), "{e}");
}

#[test]
fn node_servers_pick_some_of_the_sites_servers() {
    let c = SiteConfig::embedded();
    assert!(c.runs_server("mailbox2"));
    let roles = "roles = [\"autoconfig\", \"dns\", \"mailbox\", \"sorter\"]";
    let c = with(roles, "roles = [\"mailbox\"]\nservers = [\"Mailbox1\"]").unwrap();
    assert!(c.runs_server("mailbox1"));
    assert!(!c.runs_server("mailbox2"));
    let e = with(roles, "roles = [\"mailbox\"]\nservers = [\"mailbox7\"]").unwrap_err();
    assert_eq!(e.key, "node.servers");
    assert_eq!(e.line, Some(line_of(roles) + 1));
    assert!(
        e.fix.contains("mailbox1, mailbox2, sorter1, sorter2"),
        "{e}"
    );
}

#[test]
fn bad_address_names_its_line() {
    let e = with("\"127.0.0.12\"", "\"127.0.0.300\"").unwrap_err();
    assert_eq!(e.line, Some(line_of("127.0.0.12")));
}

#[test]
fn bad_domain_is_refused() {
    let e = with("domain = \"example.test\"", "domain = \"exa mple\"").unwrap_err();
    assert_eq!(e.key, "site.domain");
}

#[test]
fn duplicate_server_names_are_refused() {
    let e = with("name = \"sorter2\"", "name = \"mailbox1\"").unwrap_err();
    assert!(e.message.contains("already named"), "{e}");
}

#[test]
fn lmtp_is_for_the_sorters_and_the_allowed_networks() {
    let c = SiteConfig::embedded();
    assert!(c.lmtp_allowed("127.0.0.21".parse().unwrap()));
    assert!(c.lmtp_allowed("::ffff:127.0.0.22".parse().unwrap()));
    assert!(!c.lmtp_allowed("127.0.0.1".parse().unwrap()));
    assert!(!c.lmtp_allowed("127.0.0.11".parse().unwrap()));
    let c = with("allow = []", "allow = [\"10.0.0.0/8\", \"192.0.2.7\"]").unwrap();
    assert!(c.lmtp_allowed("10.200.0.1".parse().unwrap()));
    assert!(c.lmtp_allowed("192.0.2.7".parse().unwrap()));
    assert!(!c.lmtp_allowed("192.0.2.8".parse().unwrap()));
    let e = with("allow = []", "allow = [\"10.0.0.0/40\"]").unwrap_err();
    assert_eq!(e.key, "lmtp.allow");
    assert_eq!(e.line, Some(line_of("allow = []")));
}

#[test]
fn postmaster_defaults_and_a_non_user_names_its_line() {
    assert_eq!(SiteConfig::embedded().postmaster, "demo");
    let c = with("postmaster = \"demo\"", "").unwrap();
    assert_eq!(c.postmaster, "postmaster");
    let c = with("postmaster = \"demo\"", "postmaster = \"Alice\"").unwrap();
    assert_eq!(c.postmaster, "alice");
    let e = with(
        "postmaster = \"demo\"",
        "postmaster = \"root@example.test\"",
    )
    .unwrap_err();
    assert_eq!(e.key, "site.postmaster");
    assert_eq!(e.line, Some(line_of("postmaster = \"demo\"")));
}

#[test]
fn connection_limits_default_and_bad_values_name_their_line() {
    let c = SiteConfig::embedded();
    assert_eq!(c.limits, ConnectionLimits::default());
    assert_eq!(c.timeouts.login_total, 180);
    let c = with("per_source = 50", "per_source = 5").unwrap();
    assert_eq!(c.limits.per_source, 5);
    let c = with("[limits]\n", "").unwrap_err();
    assert!(c.message.contains("unknown field"), "{c}");
    let e = with("per_source = 50", "per_source = 0").unwrap_err();
    assert_eq!(e.line, Some(line_of("per_source = 50")));
    assert_eq!(e.key, "limits.per_source");
    let e = with("imap_connections = 4000", "imap_connections = 100000").unwrap_err();
    assert_eq!(e.key, "limits.imap_connections");
    assert!(e.to_string().contains("from 1 to 20000"), "{e}");
}
