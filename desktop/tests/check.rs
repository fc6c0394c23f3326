//! The helper's core against a real `mailsite serve`: discovery by each path, every
//! probe passing for users of both mailbox servers, and each failure produced for real
//! and explained. Every report is searched for the password.

mod support;

use std::time::Duration;

use mailsite_helper::discover::{self, Method};
use mailsite_helper::net::Net;
use mailsite_helper::{CheckOptions, Report, render};
use mailsite_shared::autoconfig::Preference;
use mailsite_shared::report::Outcome;
use mailsite_shared::route::Address;
use support::{Site, assert_no_secret};

const PASSWORD: &str = "correct horse battery";

fn options(site: &Site, email: &str, password: &str) -> CheckOptions {
    let mut o = CheckOptions::new(email, password);
    o.site = site.overrides();
    o.step_timeout = Duration::from_secs(8);
    o
}

/// Checks, and greps both renderings of the report for the password.
async fn check(o: &CheckOptions) -> Report {
    let report = mailsite_helper::check(o).await.expect("a check runs");
    let local = o.email.split('@').next().unwrap();
    let json = serde_json::to_string(&report).unwrap();
    assert_no_secret(&json, &o.password, &[local, &o.email]);
    assert_no_secret(&render::text(&report), &o.password, &[local, &o.email]);
    report
}

fn problems(report: &Report) -> Vec<String> {
    report
        .steps
        .iter()
        .filter_map(|s| s.problem.as_ref().map(|p| p.code.clone()))
        .collect()
}

fn step<'a>(report: &'a Report, kind: &str) -> Vec<&'a mailsite_shared::report::Step> {
    report.steps.iter().filter(|s| s.kind == kind).collect()
}

#[tokio::test]
async fn every_probe_passes_for_users_of_both_servers() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    site.add_user("nora", PASSWORD);
    // alice (letter a: mailbox1) over IMAP.
    let report = check(&options(&site, "alice@example.test", PASSWORD)).await;
    assert!(report.passed, "{}", render::text(&report));
    assert_eq!(report.protocol, "imap");
    assert_eq!(report.discovery.method.as_deref(), Some("autoconfig"));
    let dns = step(&report, "dns");
    let maila = dns
        .iter()
        .find(|s| s.detail("host") == Some("maila.example.test"))
        .unwrap();
    assert_eq!(
        maila.detail("maps_to"),
        Some(format!("maila.example.test -> {}", site.addr(11)).as_str())
    );
    assert!(maila.detail("a").unwrap().contains("ttl 5 s"));
    let tls = step(&report, "tls");
    assert_eq!(tls.len(), 4, "two IMAP and two SMTP settings");
    for t in &tls {
        assert_eq!(t.detail("trusted"), Some("true"));
        assert_eq!(t.detail("host_matches"), Some("true"));
        assert!(t.detail("sans").unwrap().contains("maila.example.test"));
        assert_eq!(t.detail("sha256").unwrap().len(), 95);
        assert!(t.detail("tls_version").unwrap().starts_with("TLSv1"));
    }
    let imap = step(&report, "imap");
    assert_eq!(imap.len(), 2);
    assert!(imap.iter().all(|s| s.detail("inbox_messages") == Some("0")));
    assert!(
        imap[0]
            .transcript
            .iter()
            .any(|l| l.contains("LOGIN \"alice\" <redacted>")),
        "{:?}",
        imap[0].transcript
    );
    let smtp = step(&report, "smtp");
    assert_eq!(smtp.len(), 2);
    // The server's replies as it sent them, credentials redacted, no library text.
    for s in &smtp {
        let t = &s.transcript;
        for (what, found) in [
            ("greeting", t.iter().any(|l| l.starts_with("S: 220 "))),
            (
                "EHLO",
                t.iter().any(|l| l == "C: EHLO mailsite-helper.invalid"),
            ),
            (
                "the extensions, one per line",
                t.iter().any(|l| l.starts_with("S: 250-"))
                    && t.iter().any(|l| l.starts_with("S: 250 ")),
            ),
            ("AUTH", t.iter().any(|l| l == "C: AUTH PLAIN <redacted>")),
            ("its answer", t.iter().any(|l| l.starts_with("S: 235 "))),
            (
                "no Rust debug text",
                !t.iter()
                    .any(|l| l.contains('{') || l.contains("Authentication(")),
            ),
            ("no password", !t.iter().any(|l| l.contains(PASSWORD))),
        ] {
            assert!(found, "SMTP transcript lacks {what}: {t:#?}");
        }
    }
    let trip = step(&report, "roundtrip")[0];
    assert!(
        trip.transcript
            .iter()
            .any(|l| l == "C: MAIL FROM:<alice@example.test>")
            && trip.transcript.iter().any(|l| l == "C: DATA")
            && trip.transcript.iter().any(|l| l.starts_with("S: 354")),
        "{:#?}",
        trip.transcript
    );
    assert_eq!(trip.outcome, Outcome::Pass);
    assert!(trip.detail("delay_ms").is_some());
    assert!(report.summary.starts_with("All "), "{}", report.summary);
    assert!(render::text(&report).starts_with(&report.summary));
    // The test message was deleted again.
    assert!(
        site.ok(&["mailbox", "list", "alice"], None)
            .contains("INBOX")
    );

    // nora (letter n: mailbox2) over POP3.
    let mut o = options(&site, "nora@example.test", PASSWORD);
    o.protocol = Some(Preference::Pop3);
    let report = check(&o).await;
    assert!(report.passed, "{}", render::text(&report));
    assert_eq!(report.protocol, "pop3");
    let pop3 = step(&report, "pop3");
    assert_eq!(pop3.len(), 2);
    assert!(
        pop3.iter()
            .all(|s| s.detail("address") == Some(site.addr(12).as_str()))
    );
    assert!(
        pop3[0].transcript.iter().any(|l| l == "C: PASS <redacted>"),
        "{:?}",
        pop3[0].transcript
    );
    assert_eq!(step(&report, "roundtrip")[0].outcome, Outcome::Pass);
}

#[tokio::test]
async fn discovery_works_by_each_path() {
    let site = Site::start();
    let net = Net::new(&site.overrides(), Duration::from_secs(5)).unwrap();
    let nora = Address::parse("nora@example.test").unwrap();
    let run = |methods: Vec<Method>| {
        let (net, site, nora) = (&net, site.overrides(), &nora);
        async move { discover::discover(net, &site, nora, &methods).await }
    };

    let found = run(vec![Method::Autoconfig]).await;
    assert_eq!(found.discovery.method.as_deref(), Some("autoconfig"));
    let attempts = &found.discovery.attempts;
    // As Thunderbird: https first (the embedded site has plain HTTP only), then http.
    assert!(attempts[0].target.starts_with("https://") && !attempts[0].ok);
    let last = attempts.last().unwrap();
    assert!(
        last.ok
            && last.target.starts_with("http://")
            && last.target.contains("emailaddress=nora%40example%2Etest"),
        "{attempts:?}"
    );
    let config = found.config.unwrap();
    assert_eq!(config.incoming[0].hostname, "mailn.example.test");
    assert_eq!(config.incoming[0].username, "nora");

    let found = run(vec![Method::Autodiscover]).await;
    assert_eq!(found.discovery.method.as_deref(), Some("autodiscover"));
    assert!(
        found
            .discovery
            .attempts
            .last()
            .unwrap()
            .target
            .starts_with("POST http://")
    );
    assert_eq!(
        found.config.unwrap().outgoing[0].hostname,
        "outbox.example.test"
    );

    let found = run(vec![Method::Srv]).await;
    assert_eq!(found.discovery.method.as_deref(), Some("srv"));
    let config = found.config.unwrap();
    assert!(
        config.incoming[0].hostname.starts_with("mailbox"),
        "{config:?}"
    );
    assert_eq!(config.incoming[0].port, 10993);
    assert!(
        found
            .discovery
            .attempts
            .iter()
            .any(|a| a.target == "_imaps._tcp.example.test. SRV" && a.ok)
    );

    let found = run(vec![Method::Convention]).await;
    assert_eq!(found.discovery.method.as_deref(), Some("convention"));
    let config = found.config.unwrap();
    assert_eq!(
        (
            config.incoming[0].hostname.as_str(),
            config.incoming[0].port
        ),
        ("mailn.example.test", 10993)
    );
    assert_eq!(
        (
            config.outgoing[1].hostname.as_str(),
            config.outgoing[1].port
        ),
        ("outbox.example.test", 10587)
    );

    // Nothing answers: the site URL on a port nobody listens on, and no DNS.
    let mut dead = site.overrides();
    dead.site_url = Some(format!("http://{}:9", site.addr(1)));
    dead.dns = Some(format!("{}:9", site.addr(1)).parse().unwrap());
    let net = Net::new(&dead, Duration::from_secs(1)).unwrap();
    let found = discover::discover(&net, &dead, &nora, &Method::ALL).await;
    assert!(found.config.is_none());
    assert!(found.discovery.attempts.len() >= 6 && found.discovery.attempts.iter().all(|a| !a.ok));
}

/// Whether `check` holds within 5 s (the running site follows a directory change
/// within a poll).
fn within_5s(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..50 {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[tokio::test]
async fn a_wrong_password_a_misspelt_name_and_a_server_in_maintenance_are_explained() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);

    let mut o = options(&site, "alice@example.test", "wrong password 1");
    o.round_trip = false;
    let report = check(&o).await;
    assert!(!report.passed);
    let codes = problems(&report);
    assert!(
        codes.iter().filter(|c| *c == "auth_refused").count() >= 3,
        "{codes:?}"
    );
    assert!(
        report.summary.contains("refused the password"),
        "{}",
        report.summary
    );
    let imap = step(&report, "imap")[0];
    assert!(
        imap.problem
            .as_ref()
            .unwrap()
            .suggestion
            .contains("password")
    );

    // A disabled account is the headline, not the refused passwords that follow.
    site.ok(&["user", "disable", "alice"], None);
    let disabled = within_5s(|| {
        site.get("/mail/config-v1.1.xml?emailaddress=alice@example.test")
            .contains("disabled")
    });
    assert!(disabled, "autoconfig did not follow the change");
    let mut o = options(&site, "alice@example.test", PASSWORD);
    o.round_trip = false;
    let report = check(&o).await;
    assert!(!report.passed);
    assert_eq!(report.findings[0].code, "account_disabled");
    assert!(
        report.summary.contains("disabled") && !report.summary.contains("refused the password"),
        "{}",
        report.summary
    );
    site.ok(&["user", "enable", "alice"], None);
    let enabled = within_5s(|| {
        !site
            .get("/mail/config-v1.1.xml?emailaddress=alice@example.test")
            .contains("disabled")
    });
    assert!(enabled, "autoconfig did not follow the change");

    let mut o = options(&site, "alice@example.test", PASSWORD);
    o.round_trip = false;
    o.incoming_host = Some("mial.example.test".into());
    let report = check(&o).await;
    assert!(
        problems(&report).contains(&"dns_no_such_name".to_string()),
        "{}",
        render::text(&report)
    );
    assert!(
        report.summary.contains("mial.example.test does not exist"),
        "{}",
        report.summary
    );

    // alice's client has mailbox1's own name; mailbox1 goes into maintenance.
    site.ok(&["server", "maintenance", "mailbox1"], None);
    site.wait_served("a", "mailbox2");
    let mut o = options(&site, "alice@example.test", PASSWORD);
    o.round_trip = false;
    o.incoming_host = Some("mailbox1.example.test".into());
    let report = check(&o).await;
    let imap = step(&report, "imap")[0];
    let p = imap.problem.as_ref().expect("a referral");
    assert_eq!(p.code, "referral", "{}", render::text(&report));
    assert!(
        p.explanation.contains("maila.example.test") && p.suggestion.contains("maila.example.test")
    );
    o.protocol = Some(Preference::Pop3);
    let report = check(&o).await;
    let p = step(&report, "pop3")[0].problem.clone().expect("a refusal");
    assert_eq!(p.code, "referral");
    assert!(p.explanation.contains("maila.example.test"));
    // With the discovered alias the same user works: it follows the move.
    let mut o = options(&site, "alice@example.test", PASSWORD);
    o.round_trip = false;
    let report = check(&o).await;
    assert!(report.passed, "{}", render::text(&report));
}

/// A site whose sorters run in a second process with another submission port than
/// autoconfig announces: port 10587 is closed while 10465 works; then the sorters stop.
#[tokio::test]
async fn a_closed_port_and_a_stopped_server_are_explained() {
    let mut site = Site::start_with(|t| {
        t.replace(
            "roles = [\"autoconfig\", \"dns\", \"mailbox\", \"sorter\"]",
            "roles = [\"autoconfig\", \"dns\", \"mailbox\"]",
        )
    });
    site.add_user("alice", PASSWORD);
    let sorters = site.dir.join("sorters.toml");
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace(
            "roles = [\"autoconfig\", \"dns\", \"mailbox\"]",
            "roles = [\"sorter\"]",
        )
        .replace("submission = 10587", "submission = 10588");
    std::fs::write(&sorters, text).unwrap();
    let child = site.spawn(&sorters, "sorters.log");
    site.children.push(child);
    support::wait_port(&format!("{}:10465", site.addr(21)));
    support::wait_port(&format!("{}:10465", site.addr(22)));

    let report = check(&options(&site, "alice@example.test", PASSWORD)).await;
    assert!(!report.passed);
    let finding = report
        .findings
        .iter()
        .find(|f| f.code == "port_blocked")
        .expect("a blocked port");
    assert!(
        finding.explanation.contains("Port 10587") && finding.explanation.contains("10465 works"),
        "{finding:?}"
    );
    assert!(problems(&report).contains(&"connection_refused".to_string()));
    // Mail still goes through the working port.
    assert_eq!(
        step(&report, "roundtrip")[0].outcome,
        Outcome::Pass,
        "{}",
        render::text(&report)
    );
    assert!(report.summary.contains("10587"), "{}", report.summary);

    // Stop the sorters: outbox answers on no port.
    let mut sorter = site.children.pop().unwrap();
    sorter.kill().unwrap();
    sorter.wait().unwrap();
    let report = check(&options(&site, "alice@example.test", PASSWORD)).await;
    let down = report
        .findings
        .iter()
        .find(|f| f.code == "server_down")
        .expect("a stopped server");
    assert!(down.explanation.contains("outbox.example.test"), "{down:?}");
    assert!(
        step(&report, "imap")
            .iter()
            .all(|s| s.outcome == Outcome::Pass)
    );
    assert_eq!(step(&report, "roundtrip")[0].outcome, Outcome::Skipped);
}

/// Writes a CA and a server certificate for `names`, valid until `not_after`.
fn certificates(dir: &std::path::Path, names: &[&str], expired: bool) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = ["cert.pem", "key.pem", "testca.pem"].map(|f| dir.join(f).display().to_string());
    std::fs::write(&paths[0], cert.pem()).unwrap();
    std::fs::write(&paths[1], key.serialize_pem()).unwrap();
    std::fs::write(&paths[2], ca_cert.pem()).unwrap();
    (paths[0].clone(), paths[1].clone(), paths[2].clone())
}

async fn with_certificate(names: &[&str], expired: bool) -> Report {
    let dir = std::env::temp_dir().join(format!("helper-certs-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, ca) = certificates(&dir, names, expired);
    let site = Site::start_with(|t| format!("{t}\n[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
    site.add_user("alice", PASSWORD);
    let mut o = options(&site, "alice@example.test", PASSWORD);
    o.site.ca = Some(ca.into());
    o.round_trip = false;
    let report = check(&o).await;
    std::fs::remove_dir_all(dir).ok();
    report
}

#[tokio::test]
async fn certificates_for_the_wrong_name_or_expired_are_explained() {
    let report = with_certificate(&["mail.elsewhere.example"], false).await;
    let tls = step(&report, "tls");
    assert!(!tls.is_empty());
    for t in &tls {
        let p = t.problem.as_ref().expect("a wrong name");
        assert_eq!(p.code, "tls_wrong_name");
        assert!(p.explanation.contains("mail.elsewhere.example"), "{p:?}");
        assert_eq!(t.detail("host_matches"), Some("false"));
    }
    // No password is sent over a connection the client would refuse.
    assert!(
        step(&report, "imap")
            .iter()
            .all(|s| s.outcome == Outcome::Skipped)
    );

    let report = with_certificate(&["maila.example.test", "outbox.example.test"], true).await;
    let p = step(&report, "tls")[0].problem.clone().expect("expired");
    assert_eq!(p.code, "tls_expired");
    assert!(p.explanation.contains("2021"), "{p:?}");
}

/// A computer whose address the site blocked after failed logins (a phone kept an old
/// password, say) is told that, with the block's end and how it is lifted, and not that
/// its password is wrong; the helpdesk's explanation names the command that lifts it,
/// and once it is lifted the check passes.
#[tokio::test]
async fn a_blocked_address_is_explained_as_blocked_not_as_a_wrong_password() {
    let site = Site::start_with(|t| {
        t.replace("block_after = 10 ", "block_after = 3 ")
            .replace("first_delay_ms = 250 ", "first_delay_ms = 10 ")
            .replace("max_delay_ms = 4000 ", "max_delay_ms = 20 ")
    });
    site.add_user("alice", PASSWORD);
    let mut o = options(&site, "alice@example.test", "wrong password 7");
    o.round_trip = false;
    let report = check(&o).await;
    assert!(
        problems(&report).contains(&"auth_refused".to_string()),
        "{}",
        render::text(&report)
    );

    // The right password now: not tried, and the report says why.
    let mut o = options(&site, "alice@example.test", PASSWORD);
    o.round_trip = false;
    let report = check(&o).await;
    assert!(!report.passed);
    let codes = problems(&report);
    assert!(
        codes.iter().filter(|c| *c == "source_blocked").count() >= 3
            && !codes.contains(&"auth_refused".to_string()),
        "{codes:?}\n{}",
        render::text(&report)
    );
    assert!(
        report
            .summary
            .contains("does not check passwords from this computer's address until"),
        "{}",
        report.summary
    );
    let imap = step(&report, "imap")[0];
    let until = imap.detail("blocked_until").expect("the block's end");
    let until = chrono::DateTime::parse_from_rfc3339(until).expect("an RFC 3339 time");
    assert!(until > chrono::Utc::now(), "{until}");
    let problem = imap.problem.as_ref().unwrap();
    assert!(
        problem.suggestion.contains("mailsite block remove alice"),
        "{}",
        problem.suggestion
    );

    // POP3 says the same.
    let mut pop = options(&site, "alice@example.test", PASSWORD);
    pop.round_trip = false;
    pop.protocol = Some(Preference::Pop3);
    let pop = check(&pop).await;
    let pop3 = step(&pop, "pop3");
    assert!(!pop3.is_empty(), "{}", render::text(&pop));
    assert!(
        pop3.iter()
            .all(|s| s.problem.as_ref().map(|p| p.code.as_str()) == Some("source_blocked")),
        "{}",
        render::text(&pop)
    );

    // The helpdesk reads the report: the block, and the command that lifts it.
    let file = site.dir.join("blocked-report.json");
    std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
    let explained = site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None);
    assert!(
        explained.contains("blocked after too many failed logins")
            && explained.contains("`mailsite block remove alice`"),
        "{explained}"
    );

    // Lifted: the running site lets the address in again within a poll.
    site.ok(&["block", "remove", "alice"], None);
    let mut report = check(&o).await;
    for _ in 0..10 {
        if report.passed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        report = check(&o).await;
    }
    assert!(report.passed, "{}", render::text(&report));
}

/// A device with an app password that has expired is told just that, with the app
/// password's label and end, and not that its password is wrong; the helpdesk's
/// explanation says how to make a new one.
#[tokio::test]
async fn an_expired_app_password_is_explained_as_expired_not_as_wrong() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    let end = chrono::Utc::now() + chrono::Duration::seconds(2);
    let end = end.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let added = site.ok(
        &[
            "user",
            "app-password",
            "add",
            "alice",
            "--label",
            "phone",
            "--expires",
            &end,
            "--json",
        ],
        None,
    );
    let added: serde_json::Value = serde_json::from_str(&added).unwrap();
    let app_password = added["password"].as_str().unwrap().to_string();

    // Before its end it works like the password.
    let mut o = options(&site, "alice@example.test", &app_password);
    o.round_trip = false;
    let report = check(&o).await;
    assert!(report.passed, "{}", render::text(&report));

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let report = check(&o).await;
    assert!(!report.passed);
    let codes = problems(&report);
    assert!(
        codes
            .iter()
            .filter(|c| *c == "app_password_expired")
            .count()
            >= 2
            && !codes.contains(&"auth_refused".to_string()),
        "{codes:?}\n{}",
        render::text(&report)
    );
    let imap = step(&report, "imap")[0];
    assert_eq!(imap.detail("app_password"), Some("phone"));
    let problem = imap.problem.as_ref().unwrap();
    assert!(
        problem.explanation.contains("\"phone\"") && problem.explanation.contains(&end),
        "{}",
        problem.explanation
    );
    assert!(
        problem.suggestion.contains("new app password"),
        "{}",
        problem.suggestion
    );
    let smtp = step(&report, "smtp");
    assert!(
        smtp.iter()
            .any(|s| s.problem.as_ref().map(|p| p.code.as_str()) == Some("app_password_expired")),
        "{}",
        render::text(&report)
    );

    let file = site.dir.join("expired-report.json");
    std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
    let explained = site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None);
    assert!(
        explained.contains("app password \"phone\", which has expired")
            && explained.contains("mailsite user app-password add alice"),
        "{explained}"
    );
}
