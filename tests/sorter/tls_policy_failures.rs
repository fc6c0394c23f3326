//! Outbound TLS policy when something is wrong: a domain whose DNSSEC fails
//! validation, MX hosts that do not offer STARTTLS although a policy requires it, an
//! MTA-STS policy that cannot be fetched (with and without a kept one), and a kept
//! policy across a restart of the site and after it expires. The world (DNS, policy
//! server, sinks) is the one of [`super::tls_policy`].

use super::relay::sunk;
use super::tls_policy::{Issuer, certificate, spki_sha256, world};
use super::*;

#[test]
fn bogus_dnssec_and_missing_starttls_hold_the_mail_under_a_policy() {
    let dir = common::temp_dir("tls-policy-held");
    certificate(&dir, "ca", &["Test CA"], Issuer::Authority);
    let policy_cert = certificate(
        &dir,
        "policies",
        &["mta-sts.sts-plain.example", "mta-sts.no-policy.example"],
        Issuer::TestCa,
    );
    let bogus = certificate(&dir, "bogus", &["mx.bogus.example"], Issuer::SelfSigned);
    let bogus_hash = spki_sha256(&bogus.0);
    let dane = certificate(&dir, "dane", &["mx.dane-plain.example"], Issuer::SelfSigned);
    let dane_hash = spki_sha256(&dane.0);
    let open = certificate(&dir, "open", &["mx.no-policy.example"], Issuer::SelfSigned);
    let none = || (PathBuf::from("none"), PathBuf::from("none"));
    let w = world(
        &dir,
        |net| {
            serde_json::json!({"zones": [
                {"origin": "example.", "signed": true, "records": []},
                // Signed with another key than its DS names: validation fails.
                {"origin": "bogus.example.", "signed": true, "bogus": true, "records": [
                    "@ 300 MX 10 mx.bogus.example.",
                    format!("mx 300 A {net}91"),
                    format!("_10026._tcp.mx 300 TLSA 3 1 1 {bogus_hash}"),
                ]},
                // DANE, and a server without STARTTLS.
                {"origin": "dane-plain.example.", "signed": true, "records": [
                    "@ 300 MX 10 mx.dane-plain.example.",
                    format!("mx 300 A {net}92"),
                    format!("_10026._tcp.mx 300 TLSA 3 1 1 {dane_hash}"),
                ]},
                // MTA-STS enforce, and a server without STARTTLS.
                {"origin": "sts-plain.example.", "signed": false, "records": [
                    "@ 300 MX 10 mx.sts-plain.example.",
                    format!("mx 300 A {net}93"),
                    "_mta-sts 300 TXT \"v=STSv1; id=1\"".to_string(),
                    format!("mta-sts 300 A {net}97"),
                ]},
                // An MTA-STS record whose policy server has no policy (404).
                {"origin": "no-policy.example.", "signed": false, "records": [
                    "@ 300 MX 10 mx.no-policy.example.",
                    format!("mx 300 A {net}94"),
                    "_mta-sts 300 TXT \"v=STSv1; id=1\"".to_string(),
                    format!("mta-sts 300 A {net}97"),
                ]},
            ]})
        },
        &[
            (91, bogus.0, bogus.1),
            (92, none().0, none().1),
            (93, none().0, none().1),
            (94, open.0, open.1),
        ],
        &[(
            "mta-sts.sts-plain.example",
            "version: STSv1\nmode: enforce\nmx: mx.sts-plain.example\nmax_age: 86400\n",
        )],
        Some(policy_cert),
    );
    let site = &w.site;
    for (rcpt, subject) in [
        ("bo@bogus.example", "bogus"),
        ("di@dane-plain.example", "dane plain"),
        ("si@sts-plain.example", "sts plain"),
        ("ni@no-policy.example", "no policy"),
    ] {
        assert_eq!(send(site, "alice", rcpt, subject), "refused {}");
    }

    // No policy could be fetched and none is kept: mail goes as without MTA-STS.
    let open = w.wait_sunk(3, 1);
    assert!(open[0].contains("Subject: no policy"), "{}", open[0]);
    assert!(open[0].starts_with("X-Sink-TLS: True\r\n"), "{}", open[0]);

    // Bogus DNSSEC: the domain's mail waits, though its server would take it.
    let queue = w.tried("bo@bogus.example", 2);
    assert!(
        queue.contains("fail DNSSEC validation") && queue.contains("451 4.7.5"),
        "the queue does not say why: {queue}"
    );
    // No STARTTLS where DANE or an enforced MTA-STS policy requires TLS: the
    // message is not handed over in the clear.
    for rcpt in ["di@dane-plain.example", "si@sts-plain.example"] {
        let queue = w.tried(rcpt, 2);
        // The recipient's line and its "last error" line.
        let entry: String = queue
            .lines()
            .skip_while(|l| !l.contains(rcpt))
            .take(2)
            .collect();
        assert!(
            entry.contains("starttls-not-supported") && entry.contains("does not offer STARTTLS"),
            "the queue does not say why: {queue}"
        );
    }
    for i in 0..3 {
        assert!(
            sunk(&w.sinks[i].folder).is_empty(),
            "sink {i} got mail it should not have: {}",
            site.log()
        );
    }
    assert_eq!(
        site.sql("SELECT count(*) FROM mta_sts_policies WHERE domain = 'no-policy.example'")
            .trim(),
        "0",
        "a failed fetch keeps nothing"
    );

    let reports = w.reports();
    let first_failure = |domain: &str| {
        let policy = &reports
            .get(domain)
            .unwrap_or_else(|| panic!("no report for {domain}: {reports:?}"))["policies"][0];
        (
            policy["policy"]["policy-type"].clone(),
            policy["summary"].clone(),
            policy["failure-details"][0].clone(),
        )
    };
    let (kind, summary, failure) = first_failure("bogus.example");
    assert_eq!(kind, "tlsa");
    assert_eq!(failure["result-type"], "dnssec-invalid", "{failure}");
    assert_eq!(summary["total-successful-session-count"], 0, "{summary}");
    for (domain, kind) in [("dane-plain.example", "tlsa"), ("sts-plain.example", "sts")] {
        let (policy_kind, summary, failure) = first_failure(domain);
        assert_eq!(policy_kind, kind, "{domain}");
        assert_eq!(
            failure["result-type"], "starttls-not-supported",
            "{domain}: {failure}"
        );
        assert_eq!(summary["total-successful-session-count"], 0, "{summary}");
        assert!(
            summary["total-failure-session-count"].as_u64() >= Some(2),
            "{domain}: {summary}"
        );
    }
    let (kind, _, failure) = first_failure("no-policy.example");
    assert_eq!(kind, "sts");
    assert_eq!(
        failure["result-type"], "sts-policy-fetch-error",
        "{failure}"
    );
    assert!(
        failure["additional-information"]
            .as_str()
            .or(failure["failure-reason-code"].as_str())
            .is_some_and(|s| s.contains("404")),
        "the report does not say what the server answered: {failure}"
    );
}

/// Submits a message with `subject` from alice to kim@kept.example.
fn send_kim(site: &Site, subject: &str) {
    assert_eq!(
        send(site, "alice", "kim@kept.example", subject),
        "refused {}"
    );
}

#[test]
fn a_kept_mta_sts_policy_holds_while_fetches_fail_and_across_restarts() {
    let dir = common::temp_dir("tls-policy-kept");
    certificate(&dir, "ca", &["Test CA"], Issuer::Authority);
    let policy_cert = certificate(&dir, "policies", &["mta-sts.kept.example"], Issuer::TestCa);
    // The preferred MX host is not in the policy; both have trusted certificates.
    let mx0 = certificate(&dir, "mx0", &["mx0.kept.example"], Issuer::TestCa);
    let mx1 = certificate(&dir, "mx1", &["mx1.kept.example"], Issuer::TestCa);
    let mut w = world(
        &dir,
        |net| {
            serde_json::json!({"zones": [
                {"origin": "example.", "signed": true, "records": []},
                {"origin": "kept.example.", "signed": false, "records": [
                    "@ 300 MX 10 mx0.kept.example.",
                    "@ 300 MX 20 mx1.kept.example.",
                    format!("mx0 300 A {net}95"),
                    format!("mx1 300 A {net}96"),
                    "_mta-sts 300 TXT \"v=STSv1; id=20261207\"".to_string(),
                    format!("mta-sts 300 A {net}97"),
                ]},
            ]})
        },
        &[(95, mx0.0, mx0.1), (96, mx1.0, mx1.1)],
        &[(
            "mta-sts.kept.example",
            "version: STSv1\nmode: enforce\nmx: mx1.kept.example\nmax_age: 86400\n",
        )],
        Some(policy_cert),
    );
    let subjects = |i: usize| -> Vec<String> {
        let mut found: Vec<String> = sunk(&w.sinks[i].folder)
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect();
        found.sort();
        found
    };

    // Fetched: only the policy's MX host gets the mail.
    send_kim(&w.site, "one");
    w.wait_sunk(1, 1);
    let kept = w
        .site
        .sql("SELECT policy_id FROM mta_sts_policies WHERE domain = 'kept.example'");
    assert_eq!(kept.trim(), "20261207");

    // The policy server goes away and the site restarts: the kept policy applies.
    w.policy_server = None;
    w.site.kill_hard();
    w.site.start_again();
    send_kim(&w.site, "two");
    w.wait_sunk(1, 2);

    // The record names a new id, which cannot be fetched: the kept policy still
    // applies (RFC 8461 5.1), and the failed fetch is reported.
    w.site
        .sql("UPDATE mta_sts_policies SET policy_id = 'older' WHERE domain = 'kept.example'");
    send_kim(&w.site, "three");
    w.wait_sunk(1, 3);
    assert!(
        subjects(0).is_empty(),
        "an MX host outside the kept policy was used: {:?}",
        subjects(0)
    );
    assert_eq!(subjects(1), ["one", "three", "two"]);
    let reports = w.reports();
    let policy = &reports["kept.example"]["policies"][0];
    assert_eq!(policy["policy"]["policy-type"], "sts", "{policy}");
    assert_eq!(policy["policy"]["mx-host"][0], "mx1.kept.example");
    assert_eq!(
        policy["summary"]["total-successful-session-count"], 3,
        "{policy}"
    );
    assert!(
        policy["failure-details"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["result-type"] == "sts-policy-fetch-error"),
        "the failed fetch is not reported: {policy}"
    );

    // Once the kept policy has expired and no new one can be fetched, there is no
    // policy: the preferred MX host gets the mail again.
    w.site
        .sql("UPDATE mta_sts_policies SET expires_at = 1 WHERE domain = 'kept.example'");
    send_kim(&w.site, "four");
    w.wait_sunk(0, 1);
    assert_eq!(subjects(0), ["four"]);
}
