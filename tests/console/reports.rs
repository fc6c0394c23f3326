//! Helper reports read against the site: a stale one, judged against the site as it
//! was when it was made.

use super::*;

/// A helper report of alice, written after her letter moved: her computer still had
/// `maila` at mailbox1's address, and mailbox1 answered her login with a referral.
pub(crate) fn stale_report(site: &Site) -> Report {
    let old = site.addr(11);
    let step = |kind: &str, title: &str, outcome, details: &[(&str, &str)]| Step {
        id: format!("{kind}:maila.example.test"),
        kind: kind.to_string(),
        title: title.to_string(),
        outcome,
        millis: 3,
        details: details
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        transcript: Vec::new(),
        problem: None,
    };
    let maps_to = format!("maila.example.test -> {old}");
    let ttl = format!("{old} (ttl 5 s)");
    let mut login = step(
        "imap",
        "IMAP login on maila.example.test:10993 (SSL/TLS)",
        Outcome::Fail,
        &[
            ("host", "maila.example.test"),
            ("address", &old),
            ("port", "10993"),
        ],
    );
    login.transcript = vec![
        "C: a1 LOGIN alice <redacted>".to_string(),
        "S: a1 NO [REFERRAL imap://alice@mailbox2.example.test/] not here".to_string(),
    ];
    login.problem = Some(Problem {
        code: "referral".to_string(),
        explanation: "the server says this account is served elsewhere".to_string(),
        suggestion: "use the server the site names".to_string(),
    });
    Report {
        schema_version: 1,
        helper_version: "0.1.0".to_string(),
        os: "linux x86_64".to_string(),
        // Written after the letter moved (the drain comes later in the tests that
        // upload it): the site judges a report against the site as it was then.
        started_at: later(3600),
        finished_at: later(3602),
        email: "alice@example.test".to_string(),
        protocol: "imap".to_string(),
        overrides: Vec::new(),
        discovery: Discovery {
            method: Some("autoconfig".to_string()),
            attempts: Vec::new(),
            settings: vec![Setting {
                protocol: "imap".to_string(),
                host: "maila.example.test".to_string(),
                port: 10993,
                security: "SSL".to_string(),
                username: "alice".to_string(),
            }],
        },
        steps: vec![
            step(
                "dns",
                "DNS lookup of maila.example.test",
                Outcome::Pass,
                &[
                    ("host", "maila.example.test"),
                    ("a", &ttl),
                    ("maps_to", &maps_to),
                ],
            ),
            login,
        ],
        findings: Vec::new(),
        summary: "1 of 2 steps passed; the IMAP login was referred elsewhere".to_string(),
        passed: false,
    }
}

/// A report made before a drain is judged against the site as it was then: its DNS
/// answers, right at the time, are not called stale, and the move since is said last.
#[test]
fn a_report_is_judged_against_the_site_when_it_was_made() {
    let site = site();
    let mut report = stale_report(&site);
    report.started_at = later(-5);
    report.finished_at = later(-3);
    // And a computer without the site's CA: the certificate is fine, the computer
    // lacks the authority.
    report.steps.push(Step {
        id: "tls:outbox.example.test:10465".to_string(),
        kind: "tls".to_string(),
        title: "TLS on outbox.example.test:10465".to_string(),
        outcome: Outcome::Fail,
        millis: 4,
        details: vec![("host".to_string(), "outbox.example.test".to_string())],
        transcript: Vec::new(),
        problem: Some(Problem {
            code: "tls_untrusted".to_string(),
            explanation: "The certificate of outbox.example.test was issued by mailsite example.test CA, which this computer does not trust.".to_string(),
            suggestion: "install the site's CA certificate".to_string(),
        }),
    });
    let file = site.dir.join("before-the-drain.json");
    std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
    // The site's history starts a second later than the report.
    std::thread::sleep(Duration::from_millis(1100));
    site.ok(&["server", "maintenance", "mailbox1"], None);
    let out = site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None);
    assert!(!out.contains("stale"), "{out}");
    assert!(
        !out.contains("the user's computer had maila.example.test at"),
        "{out}"
    );
    assert!(
        out.contains("since the report, letter a moved from mailbox1 to mailbox2"),
        "{out}"
    );
    assert!(
        out.contains("does not trust the authority that issued it")
            && out.contains("ca.pem")
            && out.contains("need no change"),
        "{out}"
    );
    assert!(!out.contains("renew"), "{out}");
}
