//! Mail that receivers accept, judged by tools nobody here wrote:
//!
//! - DKIM: what users submit, what the sorters bounce and what mailbox servers send on
//!   a user's behalf leaves signed twice (Ed25519 and RSA) with the From: domain, and
//!   Python's dkimpy verifies both signatures against the public keys our own zone
//!   publishes (looked up with dnspython). Mail from outside is not signed; a changed
//!   message fails; `mailsite dkim rotate` publishes new keys, signs with them after
//!   its delay and withdraws the old ones from the zone.
//! - The zone's other records: SPF evaluated by pyspf, DMARC and MTA-STS parsed by
//!   checkdmarc, the MTA-STS policy fetched with curl, TLS-RPT, and TLSA records
//!   compared with the certificate the sorters present (openssl).

mod common;
#[path = "mail_auth/other_dns.rs"]
mod other_dns;

use std::time::Duration;

use common::{Site, python};
use other_dns::OtherDns;

/// Sends one message (`submission`: as alice over port 10587 with her password, else
/// unauthenticated to the MX port) and prints what smtplib returned.
const SEND: &str = r#"
import smtplib, sys
host, port, user, password, sender, rcpt, subject = sys.argv[1:8]
msg = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nHello from {sender}.\r\nA second line.\r\n"
with smtplib.SMTP(host, int(port), timeout=10) as s:
    s.ehlo("client.example.org")
    if user:
        s.login(user, password)
    print(s.sendmail(sender, [rcpt], msg.encode()))
"#;

/// Waits (at most 20 s) for a message whose Subject contains the text, then verifies
/// every DKIM-Signature of it with dkimpy, the keys read from our zone with dnspython;
/// prints JSON: each signature's d=, s=, a= and verdict, and the verdicts again after
/// the Subject was changed.
const VERIFY: &str = r#"
import imaplib, json, re, sys, time
import dkim, dns.message, dns.query, dns.rdatatype
imap, user, password, subject, dns_ip, dns_port = sys.argv[1:7]

def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    # No EDNS: an RSA key's record does not fit in 512 octets, so this also takes the
    # truncated answer and asks again over TCP.
    reply, _ = dns.query.udp_with_fallback(dns.message.make_query(name, "TXT"), dns_ip, port=int(dns_port), timeout=timeout)
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            for rdata in rrset:
                return b"".join(rdata.strings)
    return None

raw = None
deadline = time.time() + 20
while raw is None and time.time() < deadline:
    m = imaplib.IMAP4(imap, 10143, timeout=10)
    m.login(user, password)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", f'"{subject}"')
    ids = data[0].split()
    if ids:
        typ, data = m.fetch(ids[-1], "(BODY.PEEK[])")
        raw = data[0][1]
    m.logout()
    if raw is None:
        time.sleep(0.3)
if raw is None:
    print(json.dumps({"found": False}))
    sys.exit(0)

def verdicts(message):
    d = dkim.DKIM(message)
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    out = []
    for i in range(count):
        ok = d.verify(idx=i, dnsfunc=txt)
        f = d.signature_fields
        out.append({"d": f.get(b"d", b"").decode(), "s": f.get(b"s", b"").decode(),
                    "a": f.get(b"a", b"").decode(), "ok": bool(ok)})
    return out

changed = re.sub(rb"(?m)^Subject: ", b"Subject: Re: ", raw, count=1)
print(json.dumps({"found": True, "signatures": verdicts(raw), "changed": verdicts(changed)}))
"#;

fn send(site: &Site, submission: bool, sender: &str, rcpt: &str, subject: &str) {
    let (port, user, password) = match submission {
        true => ("10587", "alice", "alice-password"),
        false => ("10025", "", ""),
    };
    let out = python(
        SEND,
        &[&site.addr(21), port, user, password, sender, rcpt, subject],
    );
    assert_eq!(out.trim(), "{}", "{subject}: {out}");
}

fn verify(site: &Site, user: &str, subject: &str) -> serde_json::Value {
    let out = python(
        VERIFY,
        &[
            &site.addr(11),
            user,
            &format!("{user}-password"),
            subject,
            &site.dns.ip().to_string(),
            &site.dns.port().to_string(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("the verifier prints JSON");
    assert_eq!(v["found"], true, "{subject} never arrived for {user}");
    v
}

/// (algorithm, selector, verified) of each signature, sorted.
fn signatures(v: &serde_json::Value, part: &str) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = v[part]
        .as_array()
        .expect("a list of signatures")
        .iter()
        .map(|s| {
            assert_eq!(s["d"], "example.test", "{s}");
            (
                s["a"].as_str().unwrap_or_default().to_string(),
                s["s"].as_str().unwrap_or_default().to_string(),
                s["ok"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

fn keys(site: &Site) -> Vec<serde_json::Value> {
    let listed: serde_json::Value =
        serde_json::from_str(&site.ok(&["dkim", "list", "--json"], None))
            .expect("dkim list --json prints JSON");
    listed.as_array().expect("a list of keys").clone()
}

/// Selectors of `keys` in `state`, sorted.
fn in_state(keys: &[serde_json::Value], state: &str) -> Vec<String> {
    let mut out: Vec<String> = keys
        .iter()
        .filter(|k| k["state"] == state)
        .map(|k| k["selector"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

fn txt(site: &Site, selector: &str) -> Vec<String> {
    common::records(
        site.dns,
        &format!("{selector}._domainkey.example.test"),
        "TXT",
    )
}

#[test]
fn what_the_site_sends_is_signed_twice_and_verifies_with_dkimpy() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("bob", "bob-password", &[]);

    // The first start made one Ed25519 and one RSA key, private to the data directory.
    let listed = keys(&site);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(in_state(&listed, "signing").len(), 2, "{listed:?}");
    for key in &listed {
        assert_eq!(key["private_key_here"], true, "{key}");
        let selector = key["selector"].as_str().expect("a selector");
        let published = txt(&site, selector).concat().replace("\" \"", "");
        let algorithm = key["algorithm"].as_str().expect("an algorithm");
        assert!(
            published.starts_with(&format!("\"v=DKIM1; k={algorithm}; p=")),
            "{selector}: {published}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = site.dir.join("data/dkim");
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p)
                .expect("the key folder and files")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&dir), 0o700);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .expect("the key folder")
            .map(|e| e.expect("a key file").path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        for file in files {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    let zone = site.ok(&["zone", "export"], None);
    assert_eq!(
        zone.lines()
            .filter(|l| l.contains("._domainkey.example.test.") && l.contains(" IN TXT "))
            .count(),
        2,
        "{zone}"
    );

    // A submission: signed with both keys (over the Date and Message-ID the sorter
    // added too), and both signatures verify; a changed Subject fails both.
    send(
        &site,
        true,
        "alice@example.test",
        "bob@example.test",
        "signed hello",
    );
    let v = verify(&site, "bob", "signed hello");
    let sigs = signatures(&v, "signatures");
    assert_eq!(
        sigs.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["ed25519-sha256", "rsa-sha256"],
        "{v}"
    );
    assert!(sigs.iter().all(|s| s.2), "a signature failed: {v}");
    assert!(
        signatures(&v, "changed").iter().all(|s| !s.2),
        "a changed message still verified: {v}"
    );

    // Mail from outside through the MX port is not ours to sign.
    send(
        &site,
        false,
        "someone@example.org",
        "bob@example.test",
        "from outside",
    );
    let v = verify(&site, "bob", "from outside");
    assert_eq!(signatures(&v, "signatures"), [], "{v}");

    // A bounce (bob's filter rejects it at delivery) comes back to alice signed.
    site.ok(
        &["sieve", "put", "bob", "refuse", "-", "--activate"],
        Some("require \"reject\";\nif header :contains \"Subject\" \"refuse me\" { reject \"Not wanted.\"; }\n"),
    );
    send(
        &site,
        true,
        "alice@example.test",
        "bob@example.test",
        "refuse me",
    );
    let v = verify(&site, "alice", "Undelivered Mail Returned to Sender");
    let sigs = signatures(&v, "signatures");
    assert_eq!(sigs.len(), 2, "{v}");
    assert!(sigs.iter().all(|s| s.2), "a bounce signature failed: {v}");

    // No private key reaches the log.
    let log = site.log();
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[test]
fn rotation_publishes_signs_after_its_delay_and_withdraws_the_old_keys() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("bob", "bob-password", &[]);
    let first = in_state(&keys(&site), "signing");
    assert_eq!(first.len(), 2);

    // New keys waiting an hour: published now, the old keys still sign.
    let out = site.ok(&["dkim", "rotate", "--sign-after", "1h"], None);
    assert!(out.contains("example.test: published ms-"), "{out}");
    let listed = keys(&site);
    let waiting = in_state(&listed, "waiting");
    assert_eq!(waiting.len(), 2, "{listed:?}");
    assert_eq!(in_state(&listed, "signing"), first, "{listed:?}");
    for selector in &waiting {
        let found = site.within(Duration::from_secs(5), || !txt(&site, selector).is_empty());
        assert!(found.is_some(), "{selector} was not published");
    }
    send(
        &site,
        true,
        "alice@example.test",
        "bob@example.test",
        "before the switch",
    );
    let v = verify(&site, "bob", "before the switch");
    let used: Vec<String> = signatures(&v, "signatures")
        .into_iter()
        .map(|s| s.1)
        .collect();
    let mut used_sorted = used.clone();
    used_sorted.sort();
    assert_eq!(used_sorted, first, "{v}");

    // Another rotation that signs at once and withdraws the older keys 3 s later.
    site.ok(
        &[
            "dkim",
            "rotate",
            "--sign-after",
            "0s",
            "--withdraw-after",
            "3s",
        ],
        None,
    );
    let listed = keys(&site);
    let signing = in_state(&listed, "signing");
    assert_eq!(signing.len(), 2, "{listed:?}");
    assert!(
        signing
            .iter()
            .all(|s| !first.contains(s) && !waiting.contains(s))
    );
    assert_eq!(in_state(&listed, "retiring").len(), 4, "{listed:?}");
    // The sorter follows within a poll.
    let mut last = serde_json::Value::Null;
    let switched = site.within(Duration::from_secs(10), || {
        let subject = format!("after the switch {}", rand_suffix());
        send(
            &site,
            true,
            "alice@example.test",
            "bob@example.test",
            &subject,
        );
        last = verify(&site, "bob", &subject);
        let sigs = signatures(&last, "signatures");
        sigs.iter().all(|s| s.2) && sigs.iter().map(|s| s.1.clone()).collect::<Vec<_>>() == signing
    });
    assert!(switched.is_some(), "not signed with the new keys: {last}");

    // The older keys leave the zone when their time comes, without any other change.
    let gone = site.within(Duration::from_secs(15), || {
        first
            .iter()
            .chain(&waiting)
            .all(|selector| txt(&site, selector).is_empty())
    });
    assert!(gone.is_some(), "the old keys are still published");
    assert_eq!(in_state(&keys(&site), "withdrawn").len(), 4);
    for selector in &signing {
        assert!(!txt(&site, selector).is_empty(), "{selector} went too");
    }

    // Bad input is refused with the fix.
    let out = site.run(&["dkim", "rotate", "--sign-after", "2w"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use a number with s, m, h or d"),
        "{out:?}"
    );
    let out = site.run(&["dkim", "rotate", "--domain", "example.org"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not one of this site's domains"),
        "{out:?}"
    );
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Evaluates SPF with pyspf and parses the DMARC and MTA-STS records with checkdmarc,
/// every lookup going to our zone (dnspython's default resolver pointed at it); the
/// MTA-STS policy text comes as the first argument. Prints JSON.
const RECORDS: &str = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
import dns.resolver
policy, dns_ip, dns_port, sorter_ip = sys.argv[1:5]
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [dns_ip]
resolver.port = int(dns_port)
dns.resolver.default_resolver = resolver
import spf
from checkdmarc import dmarc, mta_sts
out = {}
out["spf_sorter"] = spf.check2(i=sorter_ip, s="alice@example.test", h="sorter1.example.test")[0]
out["spf_stranger"] = spf.check2(i="192.0.2.7", s="alice@example.test", h="mail.example.org")[0]
record = b"".join(resolver.resolve("_dmarc.example.test", "TXT")[0].strings).decode()
parsed = dmarc.parse_dmarc_record(record, "example.test", resolver=resolver)
out["dmarc"] = {k: v["value"] for k, v in parsed["tags"].items()}
# checkdmarc looks up the report address's MX records through our zone too.
out["dmarc_warnings"] = parsed["warnings"]
record = b"".join(resolver.resolve("_mta-sts.example.test", "TXT")[0].strings).decode()
out["sts_record"] = mta_sts.parse_mta_sts_record(record)["tags"]["id"]
parsed = mta_sts.parse_mta_sts_policy(policy)
out["sts_policy"] = parsed["policy"]
record = b"".join(resolver.resolve("_smtp._tls.example.test", "TXT")[0].strings).decode()
out["tlsrpt"] = record
print(json.dumps(out, default=str))
"#;

/// The SHA-256 of the public key in the certificate a server presents after STARTTLS
/// (`smtp`), as openssl sees it.
fn presented_key_digest(addr: &str, starttls: Option<&str>) -> String {
    let mut script = format!("openssl s_client -connect {addr} -servername outbox.example.test");
    if let Some(protocol) = starttls {
        script.push_str(&format!(" -starttls {protocol}"));
    }
    script.push_str(
        " </dev/null 2>/dev/null | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum",
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash runs openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let digest = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(digest.len(), 64, "openssl for {addr}: {text}");
    digest
}

#[test]
fn the_zone_publishes_spf_dmarc_mta_sts_tls_rpt_and_tlsa_from_the_live_site() {
    let site = Site::isolated_with(|text| {
        text.replace("dmarc_policy = \"quarantine\"", "dmarc_policy = \"reject\"")
    });
    let sorter1 = site.addr(21);

    // The MTA-STS policy, fetched as senders do (by host name; HTTPS is the site's
    // front's, as for autoconfig), names every sorter and the mode.
    let fetched = common::curl(&[
        "-s",
        "--resolve",
        &format!(
            "mta-sts.example.test:{}:{}",
            site.http.port(),
            site.http.ip()
        ),
        &format!(
            "http://mta-sts.example.test:{}/.well-known/mta-sts.txt",
            site.http.port()
        ),
    ]);
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert!(
        fetched.content_type.starts_with("text/plain"),
        "{}",
        fetched.content_type
    );
    let policy = fetched.body;
    let other = site.get("/.well-known/mta-sts.txt");
    assert_eq!(
        other.status, 404,
        "no policy for a host that is no site domain"
    );

    let out = python(
        RECORDS,
        &[
            &policy,
            &site.dns.ip().to_string(),
            &site.dns.port().to_string(),
            &sorter1,
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("the checker prints JSON");
    // SPF: the sorters pass, anyone else fails (-all).
    assert_eq!(v["spf_sorter"], "pass", "{v}");
    assert_eq!(v["spf_stranger"], "fail", "{v}");
    // DMARC: the configured policy, reports to the domain's postmaster.
    assert_eq!(v["dmarc"]["p"], "reject", "{v}");
    assert_eq!(v["dmarc"]["v"], "DMARC1", "{v}");
    assert!(
        v["dmarc"]["rua"]
            .to_string()
            .contains("postmaster@example.test"),
        "{v}"
    );
    assert_eq!(v["dmarc_warnings"], serde_json::json!([]), "{v}");
    // MTA-STS: testing with the site's own CA; MX hosts are the sorters; the id in the
    // zone is the policy's.
    assert_eq!(v["sts_policy"]["mode"], "testing", "{v}");
    let mx = v["sts_policy"]["mx"].to_string();
    assert!(
        mx.contains("sorter1.example.test") && mx.contains("sorter2.example.test"),
        "{v}"
    );
    assert_eq!(v["sts_policy"]["max_age"].to_string(), "604800", "{v}");
    let id = v["sts_record"].as_str().expect("an id");
    assert_eq!(id.len(), 20, "{v}");
    assert_eq!(
        v["tlsrpt"], "v=TLSRPTv1; rua=mailto:postmaster@example.test",
        "{v}"
    );
    // The MX hosts and the policy host resolve.
    assert_eq!(
        common::resolve(site.dns, "mta-sts.example.test"),
        [site.http.ip().to_string()]
    );

    // TLSA 3 1 1 for the sorters' SMTP port and the submission host, naming the key
    // of the certificate they really present.
    let presented = presented_key_digest(&format!("{sorter1}:10025"), Some("smtp"));
    for name in [
        "_10025._tcp.sorter1.example.test",
        "_10025._tcp.sorter2.example.test",
        "_10587._tcp.outbox.example.test",
        "_10465._tcp.outbox.example.test",
    ] {
        let records = common::records(site.dns, name, "TLSA");
        assert_eq!(records.len(), 1, "{name}: {records:?}");
        let fields: Vec<&str> = records[0].split_whitespace().collect();
        assert_eq!(&fields[..3], ["3", "1", "1"], "{name}: {records:?}");
        assert_eq!(
            fields[3..].concat().to_ascii_lowercase(),
            presented,
            "{name}"
        );
    }
    let on_465 = presented_key_digest(&format!("{sorter1}:10465"), None);
    assert_eq!(on_465, presented);

    // zone export shows them all.
    let zone = site.ok(&["zone", "export"], None);
    for needle in [
        "\"v=spf1 ip4:",
        "_dmarc.example.test.",
        "_mta-sts.example.test.",
        "_smtp._tls.example.test.",
        "TLSA",
    ] {
        assert!(zone.contains(needle), "{needle}: {zone}");
    }

    // `mailsite dns check` finds the zone and the servers agreeing, and says so.
    let checked = site.ok(&["dns", "check"], None);
    for needle in [
        "ok       SPF example.test",
        "ok       DKIM ms-",
        "ok       MTA-STS example.test",
        "ok       TLSA _10025._tcp.sorter1.example.test",
        "ok       TLSA _10025._tcp.sorter2.example.test",
        "ok       TLSA _10465._tcp.outbox.example.test",
    ] {
        assert!(checked.contains(needle), "{needle}:\n{checked}");
    }
    // The zone serves the DNSKEY whose DS `dns ds` gives the parent.
    let ds: serde_json::Value =
        serde_json::from_str(&site.ok(&["dns", "ds", "--json"], None)).expect("JSON");
    let tag = &ds[0]["key_tag"];
    assert!(
        checked.contains(&format!(
            "ok       DNSKEY example.test: the zone serves the stored key (tag {tag})"
        )),
        "{ds}:\n{checked}"
    );
    // A stored key that is not the one the zone serves is a mismatch, with the fix.
    let stored = site.sql("SELECT private_key FROM dnssec_keys WHERE domain = 'example.test'");
    let other = python(
        "import base64\n\
         from cryptography.hazmat.primitives.asymmetric import ec\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = ec.generate_private_key(ec.SECP256R1())\n\
         print(base64.b64encode(k.private_bytes(s.Encoding.DER, s.PrivateFormat.PKCS8, s.NoEncryption())).decode())",
        &[],
    );
    let set = |key: &str| {
        site.sql(&format!(
            "UPDATE dnssec_keys SET private_key = '{}' WHERE domain = 'example.test'",
            key.trim()
        ))
    };
    set(&other);
    let out = site.run(&["dns", "check"], None);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("MISMATCH DNSKEY example.test: the zone does not serve the stored key"),
        "{said}"
    );
    set(&stored);
    assert!(!checked.contains("MISMATCH"), "{checked}");
    // Without a signing key's private half on this node, it says which and fails.
    let keys = std::fs::read_dir(site.dir.join("data/dkim"))
        .expect("the key folder")
        .map(|e| e.expect("a key file").path())
        .collect::<Vec<_>>();
    let moved = site.dir.join("moved-key.pem");
    std::fs::rename(&keys[0], &moved).expect("move a key away");
    let out = site.run(&["dns", "check"], None);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("MISMATCH DKIM") && said.contains("not on this node"),
        "{said}"
    );
    std::fs::rename(&moved, &keys[0]).expect("put the key back");

    // A policy that does not exist is refused at its line, with the fix.
    let config = site.config.as_ref().expect("an isolated site has a file");
    let text = std::fs::read_to_string(config).expect("the site configuration");
    let bad = site.dir.join("bad.toml");
    std::fs::write(
        &bad,
        text.replace("dmarc_policy = \"reject\"", "dmarc_policy = \"strict\""),
    )
    .expect("write a bad configuration");
    let out = std::process::Command::new(common::BIN)
        .args(["--config"])
        .arg(&bad)
        .arg("check-config")
        .output()
        .expect("mailsite runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("mail_auth.dmarc_policy") && said.contains("\"quarantine\""),
        "{said}"
    );
    // It names the file and line: `bad.toml:127: mail_auth.dmarc_policy: ...`.
    let line = said
        .split_once("bad.toml:")
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).count());
    assert!(line.is_some_and(|digits| digits > 0), "{said}");
}

/// Sends one message to bob through the MX port from `source` and prints the SMTP
/// outcome as JSON: DKIM-signed with the other domain's key when asked, changed after
/// signing when asked, with extra header lines before it.
const SEND_INBOUND: &str = r#"
import json, smtplib, sys
import dkim
host, source, key_file, sender, from_, subject, sign, alter, extra = sys.argv[1:10]
msg = (f"From: {from_}\r\nTo: bob@example.test\r\nSubject: {subject}\r\n"
       f"Message-ID: <{abs(hash(subject))}@example.org>\r\n{extra}"
       f"\r\nThe quarterly figures are attached.\r\n").encode()
if sign == "yes":
    msg = dkim.sign(msg, b"sel", b"example.org", open(key_file, "rb").read(),
                    include_headers=[b"from", b"to", b"subject", b"message-id"]) + msg
elif sign == "arc":
    # A forwarder at example.org vouches for what it saw (RFC 8617), with dkimpy.
    msg = b"Authentication-Results: relay.example.org; spf=pass smtp.mailfrom=news@example.org\r\n" + msg
    msg = b"".join(dkim.arc_sign(msg, b"sel", b"example.org", open(key_file, "rb").read(),
                                 b"relay.example.org")) + msg
if alter == "header":
    msg = msg.replace(b"To: bob@example.test", b"To: Bob <bob@example.test>")
elif alter == "body":
    msg = msg.replace(b"quarterly", b"monthly")
try:
    with smtplib.SMTP(host, 10025, timeout=30, source_address=(source, 0)) as s:
        s.sendmail(sender, ["bob@example.test"], msg)
    print(json.dumps({"code": 250}))
except smtplib.SMTPDataError as e:
    print(json.dumps({"code": e.smtp_code, "text": e.smtp_error.decode()}))
"#;

/// The Authentication-Results headers of bob's message with this subject in a
/// mailbox (waiting up to 20 s), as JSON; `null` when it never came.
const RESULTS_OF: &str = r#"
import email, imaplib, json, sys, time
host, mailbox, subject = sys.argv[1:4]
deadline = time.time() + 20
found = None
while found is None and time.time() < deadline:
    m = imaplib.IMAP4(host, 10143, timeout=10)
    m.login("bob", "bob-password")
    m.select(mailbox)
    typ, data = m.search(None, "SUBJECT", f'"{subject}"')
    ids = data[0].split()
    if ids:
        typ, data = m.fetch(ids[-1], "(BODY.PEEK[HEADER])")
        headers = email.message_from_bytes(data[0][1])
        found = [" ".join(v.split()) for v in headers.get_all("Authentication-Results", [])]
    m.logout()
    if found is None:
        time.sleep(0.3)
print(json.dumps(found))
"#;

/// A site whose sorters look other domains up in `dns`.
fn site_with_other_dns(dns: &OtherDns, reject: &str) -> Site {
    let port = dns.port;
    let reject = reject.to_string();
    let site = Site::isolated_with(move |text| {
        text.replace(
            "resolver = \"system\"",
            &format!("resolver = \"127.0.0.1:{port}\""),
        )
        .replace(
            "dmarc_reject = \"reject\"",
            &format!("dmarc_reject = \"{reject}\""),
        )
    });
    site.add_user("bob", "bob-password", &[]);
    site
}

struct Inbound<'a> {
    source: &'a str,
    sender: &'a str,
    from: &'a str,
    subject: &'a str,
    /// "yes" (DKIM), "arc" (an ARC set) or "no".
    sign: &'a str,
    /// "header", "body" or "no": what is changed after signing.
    alter: &'a str,
    extra: &'a str,
}

fn send_inbound(site: &Site, dns: &OtherDns, m: &Inbound<'_>) -> serde_json::Value {
    let out = python(
        SEND_INBOUND,
        &[
            &site.addr(21),
            m.source,
            &dns.key.to_string_lossy(),
            m.sender,
            m.from,
            m.subject,
            m.sign,
            m.alter,
            m.extra,
        ],
    );
    serde_json::from_str(&out).expect("the sender prints JSON")
}

fn results_of(site: &Site, mailbox: &str, subject: &str) -> Vec<String> {
    let out = python(RESULTS_OF, &[&site.addr(11), mailbox, subject]);
    let v: Option<Vec<String>> = serde_json::from_str(&out).expect("the reader prints JSON");
    v.unwrap_or_else(|| panic!("{subject} never arrived in {mailbox}"))
}

#[test]
fn inbound_mail_gets_spf_dkim_and_dmarc_verdicts_and_a_spoofed_reject_domain_is_refused() {
    let site_net_source = |host: u8| format!("127.0.0.{host}");
    let allowed = site_net_source(77);
    let dns = OtherDns::start(&allowed);
    let site = site_with_other_dns(&dns, "reject");
    let stranger = site_net_source(78);

    // Signed by dkimpy, from the address the domain's SPF names: everything passes.
    let sent = send_inbound(
        &site,
        &dns,
        &Inbound {
            source: &allowed,
            sender: "news@example.org",
            from: "News <news@example.org>",
            subject: "signed and aligned",
            sign: "yes",
            alter: "no",
            extra: "",
        },
    );
    assert_eq!(sent["code"], 250, "{sent}");
    let results = results_of(&site, "INBOX", "signed and aligned");
    assert_eq!(results.len(), 1, "{results:?}");
    let ours = &results[0];
    assert!(ours.starts_with("example.test;"), "{ours}");
    for verdict in [
        "dkim=pass",
        "header.i=@example.org",
        "spf=pass",
        "dmarc=pass",
        "policy.dmarc=reject",
    ] {
        assert!(ours.contains(verdict), "{verdict}: {ours}");
    }

    // Changed after signing, from the SPF address: DKIM fails, DMARC passes by SPF;
    // a forged verdict of ours that came with it is gone, another's is kept.
    let sent = send_inbound(
        &site,
        &dns,
        &Inbound {
            source: &allowed,
            sender: "news@example.org",
            from: "news@example.org",
            subject: "altered on the way",
            sign: "yes",
            alter: "header",
            extra: "Authentication-Results: example.test; dkim=pass header.d=example.org\r\nAuthentication-Results: relay.example.net; spf=pass\r\n",
        },
    );
    assert_eq!(sent["code"], 250, "{sent}");
    let results = results_of(&site, "INBOX", "altered on the way");
    let ours: Vec<&String> = results
        .iter()
        .filter(|r| r.starts_with("example.test"))
        .collect();
    assert_eq!(ours.len(), 1, "{results:?}");
    assert!(ours[0].contains("dkim=fail"), "{results:?}");
    assert!(ours[0].contains("spf=pass"), "{results:?}");
    assert!(ours[0].contains("dmarc=pass"), "{results:?}");
    assert!(
        results.iter().any(|r| r.starts_with("relay.example.net")),
        "{results:?}"
    );
    // A changed body: the signature is not counted (mail-auth says neutral, "body
    // hash did not verify"), and DMARC still passes by SPF.
    let sent = send_inbound(
        &site,
        &dns,
        &Inbound {
            source: &allowed,
            sender: "news@example.org",
            from: "news@example.org",
            subject: "body changed on the way",
            sign: "yes",
            alter: "body",
            extra: "",
        },
    );
    assert_eq!(sent["code"], 250, "{sent}");
    let results = results_of(&site, "INBOX", "body changed on the way");
    assert!(
        results[0].contains("body hash did not verify") && !results[0].contains("dkim=pass"),
        "{results:?}"
    );

    // An ARC set added on the way by a forwarder: its verdict is recorded.
    let sent = send_inbound(
        &site,
        &dns,
        &Inbound {
            source: &allowed,
            sender: "news@example.org",
            from: "news@example.org",
            subject: "forwarded with arc",
            sign: "arc",
            alter: "no",
            extra: "",
        },
    );
    assert_eq!(sent["code"], 250, "{sent}");
    let results = results_of(&site, "INBOX", "forwarded with arc");
    let ours: Vec<&String> = results
        .iter()
        .filter(|r| r.starts_with("example.test"))
        .collect();
    assert!(
        ours.len() == 1 && ours[0].contains("arc=pass"),
        "{results:?}"
    );

    // A spoofed From: of the p=reject domain, from elsewhere and unsigned: refused.
    let sent = send_inbound(
        &site,
        &dns,
        &Inbound {
            source: &stranger,
            sender: "billing@spoofer.example",
            from: "CEO <ceo@example.org>",
            subject: "urgent wire transfer",
            sign: "no",
            alter: "no",
            extra: "",
        },
    );
    assert_eq!(sent["code"], 550, "{sent}");
    assert!(
        sent["text"]
            .as_str()
            .is_some_and(|t| t.contains("5.7.1") && t.contains("DMARC")),
        "{sent}"
    );

    // A domain whose DMARC record cannot be looked up (SERVFAIL): try again later,
    // never refused for good.
    let sent = send_inbound(
        &site,
        &dns,
        &Inbound {
            source: &stranger,
            sender: "someone@broken.example",
            from: "someone@broken.example",
            subject: "dns is down",
            sign: "no",
            alter: "no",
            extra: "",
        },
    );
    assert_eq!(sent["code"], 451, "{sent}");

    let metrics = site.get("/metrics").body;
    for line in [
        "mailsite_inbound_verdicts_total{result=\"accepted\"} 4",
        "mailsite_inbound_verdicts_total{result=\"refused\"} 1",
        "mailsite_inbound_verdicts_total{result=\"deferred\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}:\n{metrics}");
    }
    let inbox = site.inbox("bob").join("\n");
    assert!(!inbox.contains("urgent wire transfer"), "{inbox}");
    assert!(!inbox.contains("dns is down"), "{inbox}");
}

#[test]
fn a_site_that_sends_dmarc_rejects_to_junk_delivers_them_there() {
    let dns = OtherDns::start("127.0.0.77");
    let site = site_with_other_dns(&dns, "junk");
    let sent = send_inbound(
        &site,
        &dns,
        &Inbound {
            source: "127.0.0.78",
            sender: "billing@spoofer.example",
            from: "CEO <ceo@example.org>",
            subject: "urgent wire transfer",
            sign: "no",
            alter: "no",
            extra: "",
        },
    );
    assert_eq!(sent["code"], 250, "{sent}");
    let results = results_of(&site, "Junk", "urgent wire transfer");
    assert!(
        results
            .iter()
            .any(|r| r.contains("dmarc=fail") && r.contains("policy.dmarc=reject")),
        "{results:?}"
    );
    let inbox = site.inbox("bob").join("\n");
    assert!(!inbox.contains("urgent wire transfer"), "{inbox}");
}
