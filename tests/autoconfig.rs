//! The autoconfig service as mail clients use it: Thunderbird clientConfig, Outlook
//! Autodiscover (POX and JSON v2), Apple profiles, health and metrics, and hostile input.

mod common;
#[path = "autoconfig/connections.rs"]
mod connections;

use std::time::Duration;

use common::{Site, curl, python};
use mailsite_shared::autoconfig::{
    LOCALPART_PLACEHOLDER, Protocol, Security, ServerSetting, autodiscover, thunderbird,
};

fn setting(
    protocol: Protocol,
    host: &str,
    port: u16,
    security: Security,
    user: &str,
) -> ServerSetting {
    ServerSetting {
        protocol,
        hostname: host.to_string(),
        port,
        security,
        username: user.to_string(),
    }
}

/// What a user on `alias` who prefers IMAP (or POP3) must be told, written out by hand.
fn expected(alias: &str, user: &str, pop_first: bool) -> (Vec<ServerSetting>, Vec<ServerSetting>) {
    let imap = vec![
        setting(Protocol::Imap, alias, 10993, Security::Tls, user),
        setting(Protocol::Imap, alias, 10143, Security::StartTls, user),
    ];
    let pop = vec![
        setting(Protocol::Pop3, alias, 10995, Security::Tls, user),
        setting(Protocol::Pop3, alias, 10110, Security::StartTls, user),
    ];
    let incoming = if pop_first {
        [pop, imap].concat()
    } else {
        [imap, pop].concat()
    };
    let outgoing = vec![
        setting(
            Protocol::Smtp,
            "outbox.example.test",
            10465,
            Security::Tls,
            user,
        ),
        setting(
            Protocol::Smtp,
            "outbox.example.test",
            10587,
            Security::StartTls,
            user,
        ),
    ];
    (incoming, outgoing)
}

#[test]
fn thunderbird_gets_each_user_their_own_server_and_preference() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);

    for (email, alias, user, pop_first) in [
        ("alice@example.test", "maila.example.test", "alice", false),
        ("Nora@Example.Test", "mailn.example.test", "nora", true),
    ] {
        for path in [
            "/mail/config-v1.1.xml",
            "/.well-known/autoconfig/mail/config-v1.1.xml",
        ] {
            let r = site.get(&format!("{path}?emailaddress={email}"));
            assert_eq!(r.status, 200, "{path} {email}: {}", r.body);
            assert!(r.content_type.starts_with("text/xml"), "{}", r.content_type);
            let doc = thunderbird::parse(&r.body).expect("Thunderbird can read the document");
            let (incoming, outgoing) = expected(alias, user, pop_first);
            assert_eq!(doc.domain, "example.test");
            assert_eq!(doc.incoming, incoming, "{email}");
            assert_eq!(doc.outgoing, outgoing, "{email}");
        }
    }
    // POP3 entries carry the download options Thunderbird reads.
    let r = site.get("/mail/config-v1.1.xml?emailaddress=nora@example.test");
    assert!(
        r.body
            .contains("<leaveMessagesOnServer>true</leaveMessagesOnServer>")
    );
    assert!(
        r.body
            .contains("<daysToLeaveMessagesOnServer>14</daysToLeaveMessagesOnServer>")
    );
}

#[test]
fn a_preference_change_shows_in_the_next_answer() {
    let site = Site::isolated();
    site.add_user("bob", "bob-password", &[]);
    let first = |site: &Site| {
        let r = site.get("/mail/config-v1.1.xml?emailaddress=bob@example.test");
        thunderbird::parse(&r.body).unwrap().incoming[0].protocol
    };
    assert_eq!(first(&site), Protocol::Imap);
    site.ok(&["user", "prefer", "bob", "pop3"], None);
    let took = site.within(Duration::from_secs(2), || first(&site) == Protocol::Pop3);
    assert!(took.is_some(), "the preference did not reach autoconfig");
}

#[test]
fn requests_without_an_address_get_placeholders() {
    let site = Site::isolated();
    let r = site.get("/mail/config-v1.1.xml");
    assert_eq!(r.status, 200);
    let doc = thunderbird::parse(&r.body).unwrap();
    assert_eq!(doc.incoming[0].username, LOCALPART_PLACEHOLDER);
    assert_eq!(doc.incoming[0].hostname, "mail0.example.test");
    assert_eq!(doc.outgoing[0].hostname, "outbox.example.test");
}

#[test]
fn unknown_users_look_like_real_ones_and_disabled_ones_are_refused() {
    let site = Site::isolated();
    site.add_user("carol", "carol-password", &[]);
    let known = site.get("/mail/config-v1.1.xml?emailaddress=carol@example.test");
    let unknown = site.get("/mail/config-v1.1.xml?emailaddress=cyril@example.test");
    assert_eq!(unknown.status, 200);
    // Same document but for the name: nothing tells an account apart from a guess.
    assert_eq!(known.body.replace("carol", "cyril"), unknown.body);

    site.ok(&["user", "disable", "carol"], None);
    let refused = site.within(Duration::from_secs(2), || {
        let r = site.get("/mail/config-v1.1.xml?emailaddress=carol@example.test");
        r.status == 400 && r.body.contains("disabled")
    });
    assert!(refused.is_some());
}

#[test]
fn outlook_autodiscover_pox_on_every_spelling_of_the_path() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);
    let request = autodiscover::render_request("nora@example.test");
    for path in [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
        "/AutoDiscover/AutoDiscover.xml",
    ] {
        let r = site.post(path, "text/xml", request.as_bytes());
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.content_type.contains("xml"));
        assert!(r.body.contains("outlook/responseschema/2006a"));
        let doc = autodiscover::parse_response(&r.body).unwrap();
        let (incoming, outgoing) = expected("mailn.example.test", "nora", true);
        assert_eq!(doc.incoming, incoming);
        assert_eq!(doc.outgoing, outgoing);
    }
    let r = site.post(
        "/autodiscover/autodiscover.xml",
        "text/xml",
        request.as_bytes(),
    );
    // SSL on with Encryption naming the kind, per port.
    assert!(r.body.contains("<Port>10995</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>nora</LoginName>\n        <SPA>off</SPA>\n        <SSL>on</SSL>\n        <Encryption>SSL</Encryption>"));
    assert!(r.body.contains("<Port>10587</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>nora</LoginName>\n        <SPA>off</SPA>\n        <SSL>on</SSL>\n        <Encryption>TLS</Encryption>"));
}

#[test]
fn outlook_autodiscover_json_points_at_the_pox_endpoint() {
    let site = Site::isolated();
    let r = site
        .get("/autodiscover/autodiscover.json?Email=alice@example.test&Protocol=AutodiscoverV1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["Protocol"], "AutodiscoverV1");
    assert_eq!(
        v["Url"],
        "http://autodiscover.example.test:8080/autodiscover/autodiscover.xml"
    );

    let r =
        site.get("/autodiscover/autodiscover.json/v1.0/alice@example.test?Protocol=AutodiscoverV1");
    assert_eq!(r.status, 200, "{}", r.body);

    let r =
        site.get("/autodiscover/autodiscover.json?Email=alice@example.test&Protocol=ActiveSync");
    assert_eq!(r.status, 400);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["ErrorCode"], "InvalidProtocol");

    let r = site.get("/autodiscover/autodiscover.json?Protocol=AutodiscoverV1");
    assert_eq!(r.status, 400);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["ErrorCode"], "InvalidUser");
}

/// Thunderbird 140's Account Hub: autoconfig and its .well-known twin, then in parallel
/// the Autodiscover requests it makes with the user's credentials (POX over POST with
/// Basic auth, the right password and a wrong one, and GET), and JSON v2 in both forms
/// with the protocol in another case. Every answer as Python's urllib saw it.
const ACCOUNT_HUB: &str = r#"
import base64, json, sys, urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor
base, email, password, pox = sys.argv[1:5]
def call(name, path, data=None, auth=None, host="autoconfig.example.test"):
    headers = {"Host": host, "User-Agent": "Thunderbird/140.0"}
    if data is not None:
        headers["Content-Type"] = "text/xml; charset=utf-8"
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    req = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, hdrs, body = r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        status, hdrs, body = e.code, dict(e.headers), e.read().decode()
    return name, {"status": status, "www_authenticate": hdrs.get("WWW-Authenticate"), "body": body}
ad = "autodiscover.example.test"
calls = [
    ("autoconfig", f"/mail/config-v1.1.xml?emailaddress={email}", None, None, "autoconfig.example.test"),
    ("well_known", f"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={email}", None, None, "example.test"),
    ("pox_right", "/autodiscover/autodiscover.xml", pox.encode(), f"{email}:{password}", ad),
    ("pox_wrong", "/autodiscover/autodiscover.xml", pox.encode(), f"{email}:not the password", ad),
    ("pox_none", "/Autodiscover/Autodiscover.xml", pox.encode(), None, ad),
    ("pox_get", "/autodiscover/autodiscover.xml", None, f"{email}:{password}", ad),
    ("json_path", f"/autodiscover/autodiscover.json/v1.0/{email}?Protocol=autodiscoverv1", None, None, ad),
    ("json_query", f"/autodiscover/autodiscover.json?Email={email}&Protocol=AUTODISCOVERV1", None, f"{email}:{password}", ad),
]
with ThreadPoolExecutor(len(calls)) as pool:
    out = dict(pool.map(lambda c: call(*c), calls))
print(json.dumps(out))
"#;

#[test]
fn thunderbird_140_account_hub_never_meets_a_401() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let pox = autodiscover::render_request("alice@example.test");
    let out = python(
        ACCOUNT_HUB,
        &[
            &format!("http://{}", site.http),
            "alice@example.test",
            "alice-password",
            &pox,
        ],
    );
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    for (name, answer) in out.as_object().unwrap() {
        assert_ne!(answer["status"], 401, "{name}: {text}");
        assert!(
            answer["www_authenticate"].is_null(),
            "{name} asks for credentials: {text}"
        );
    }
    for name in ["autoconfig", "well_known"] {
        assert_eq!(out[name]["status"], 200, "{name}: {text}");
        let doc = thunderbird::parse(out[name]["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            doc.incoming[0].hostname, "maila.example.test",
            "{name}: {text}"
        );
    }
    for name in ["pox_right", "pox_wrong", "pox_none"] {
        assert_eq!(out[name]["status"], 200, "{name}: {text}");
        let doc = autodiscover::parse_response(out[name]["body"].as_str().unwrap()).unwrap();
        let (incoming, outgoing) = expected("maila.example.test", "alice", false);
        assert_eq!(doc.incoming, incoming, "{name}");
        assert_eq!(doc.outgoing, outgoing, "{name}");
    }
    // A GET of the POX address is an Autodiscover error document, not a challenge.
    assert_eq!(out["pox_get"]["status"], 400, "{text}");
    assert!(
        out["pox_get"]["body"]
            .as_str()
            .unwrap()
            .contains("<ErrorCode>600</ErrorCode>"),
        "{text}"
    );
    for name in ["json_path", "json_query"] {
        assert_eq!(out[name]["status"], 200, "{name}: {text}");
        let v: serde_json::Value =
            serde_json::from_str(out[name]["body"].as_str().unwrap()).unwrap();
        assert_eq!(v["Protocol"], "AutodiscoverV1", "{name}: {text}");
        assert!(
            v["Url"]
                .as_str()
                .unwrap()
                .ends_with("/autodiscover/autodiscover.xml"),
            "{name}: {text}"
        );
    }
}

const READ_PLIST: &str = r#"
import plistlib, sys, json
p = plistlib.loads(open(sys.argv[1], 'rb').read())
print(json.dumps(p))
"#;

#[test]
fn apple_profiles_are_valid_plists_for_the_preferred_protocol() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);
    for (email, kind, host, port) in [
        (
            "alice@example.test",
            "EmailTypeIMAP",
            "maila.example.test",
            10993,
        ),
        (
            "nora@example.test",
            "EmailTypePOP",
            "mailn.example.test",
            10995,
        ),
    ] {
        let r = site.get(&format!("/mobileconfig?emailaddress={email}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.content_type, "application/x-apple-aspen-config");
        let file = site.dir.join("profile.mobileconfig");
        std::fs::write(&file, &r.body).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&python(READ_PLIST, &[file.to_str().unwrap()])).unwrap();
        assert_eq!(v["PayloadType"], "Configuration");
        let account = &v["PayloadContent"][0];
        assert_eq!(account["PayloadType"], "com.apple.mail.managed");
        assert_eq!(account["EmailAccountType"], kind);
        assert_eq!(account["EmailAddress"], email);
        assert_eq!(account["IncomingMailServerHostName"], host);
        assert_eq!(account["IncomingMailServerPortNumber"], port);
        assert_eq!(account["IncomingMailServerUseSSL"], true);
        assert_eq!(account["OutgoingMailServerHostName"], "outbox.example.test");
        assert_eq!(account["OutgoingMailServerPortNumber"], 10465);
    }
    let r = site.get("/mobileconfig");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("emailaddress"));
}

#[test]
fn markup_in_an_address_never_breaks_a_document() {
    let site = Site::isolated();
    let hostile = "a\"<x>&'@example.test";
    let encoded = "a%22%3Cx%3E%26%27%40example.test";

    let r = site.get(&format!("/mail/config-v1.1.xml?emailaddress={encoded}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("<x>"));
    assert_eq!(
        thunderbird::parse(&r.body).unwrap().incoming[0].username,
        "a\"<x>&'"
    );

    let r = site.post(
        "/autodiscover/autodiscover.xml",
        "text/xml",
        autodiscover::render_request(hostile).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = autodiscover::parse_response(&r.body).unwrap();
    assert_eq!(doc.incoming[0].username, "a\"<x>&'");

    let r = site.get(&format!("/mobileconfig?emailaddress={encoded}"));
    assert_eq!(r.status, 200);
    let file = site.dir.join("hostile.mobileconfig");
    std::fs::write(&file, &r.body).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&python(READ_PLIST, &[file.to_str().unwrap()])).unwrap();
    assert_eq!(
        v["PayloadContent"][0]["EmailAddress"],
        "a\"<x>&'@example.test"
    );

    let r = site.get(&format!(
        "/autodiscover/autodiscover.json?Email={encoded}&Protocol=AutodiscoverV1"
    ));
    assert_eq!(r.status, 200);
    serde_json::from_str::<serde_json::Value>(&r.body).unwrap();
}

#[test]
fn malformed_requests_get_clean_errors() {
    let site = Site::isolated();
    let long = "a".repeat(10_000);
    for (query, reason) in [
        (format!("{long}@example.test"), "longer than"),
        (long.clone(), "longer than"),
        ("%ff%fe@example.test".to_string(), "UTF-8"),
        ("alice".to_string(), "no @domain"),
        (
            "alice@example.org".to_string(),
            "not a mail domain of this site",
        ),
        ("a%20b@example.test".to_string(), "spaces"),
        ("a%0a@example.test".to_string(), "control"),
    ] {
        for path in [
            "/mail/config-v1.1.xml?emailaddress=",
            "/mobileconfig?emailaddress=",
        ] {
            let r = site.get(&format!("{path}{query}"));
            assert_eq!(r.status, 400, "{path}{}", &query[..query.len().min(40)]);
            assert!(r.body.contains(reason), "{path}: {}", r.body);
            assert!(r.body.len() < 200, "the error echoes the input");
        }
    }

    // Autodiscover: every bad body is an error document with code 600, never a 401.
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not xml", b"hello".to_vec()),
        ("json", br#"{"EMailAddress": "alice@example.test"}"#.to_vec()),
        ("non-UTF-8", vec![0x3c, 0xff, 0xfe, 0x3e]),
        ("no address", b"<Autodiscover><Request></Request></Autodiscover>".to_vec()),
        ("unclosed", b"<Autodiscover><Request><EMailAddress>a@example.test".to_vec()),
        (
            "external entity",
            b"<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>".to_vec(),
        ),
        (
            "bad address",
            autodiscover::render_request(&format!("{long}@example.test")).into_bytes(),
        ),
    ];
    for (what, body) in bodies {
        let r = site.post("/autodiscover/autodiscover.xml", "text/xml", &body);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert!(
            r.body.contains("<ErrorCode>600</ErrorCode>"),
            "{what}: {}",
            r.body
        );
        assert!(!r.body.contains("root:"), "{what}");
    }
    let r = site.post(
        "/autodiscover/autodiscover.xml",
        "text/xml",
        &vec![b'x'; 100_000],
    );
    assert_eq!(r.status, 413);
    let r = site.get("/autodiscover/autodiscover.xml");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("POST"));
    let r = site.get("/autodiscover/autodiscover.json?Email=%ff&Protocol=AutodiscoverV1");
    assert_eq!(r.status, 400);
    serde_json::from_str::<serde_json::Value>(&r.body).unwrap();

    // The server is still serving after all of that.
    assert_eq!(site.get("/healthz").status, 200);
    assert!(!site.log().contains("panicked"));
}

#[test]
fn health_readiness_and_metrics() {
    let site = Site::isolated();
    assert_eq!(site.get("/healthz").body, "ok\n");
    assert_eq!(site.get("/readyz").status, 200);
    site.get("/mail/config-v1.1.xml?emailaddress=alice@example.test");
    site.get("/mail/config-v1.1.xml?emailaddress=bad");
    let r = site.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain"));
    assert!(
        r.body
            .contains("mailsite_http_requests_total{endpoint=\"thunderbird\",status=\"2xx\"} 1"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("mailsite_http_requests_total{endpoint=\"thunderbird\",status=\"4xx\"} 1")
    );
    assert!(
        r.body
            .contains("mailsite_letter_owner{letter=\"a\",server=\"mailbox1\"} 1")
    );
    assert!(
        r.body
            .contains("mailsite_server_state{role=\"sorter\",server=\"sorter2\",state=\"up\"} 1")
    );
    assert!(r.body.contains("mailsite_users 0"));
    let r = site.get("/no/such/page");
    assert_eq!(r.status, 404);
    let r = curl(&["-X", "DELETE", &site.url("/mail/config-v1.1.xml")]);
    assert_eq!(r.status, 405);
}

/// Runs jing, a validator nobody here wrote, on `document` with the RELAX NG schema of
/// draft-ietf-mailmaint-autoconfig-06 (tests/schemas/autoconfig-06.rnc).
fn jing(site: &Site, name: &str, document: &str) -> std::process::Output {
    let file = site.dir.join(name);
    std::fs::write(&file, document).expect("write the document to check");
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/schemas/autoconfig-06.rnc"
    );
    common::run_command(
        std::process::Command::new("jing")
            .arg("-c")
            .arg(schema)
            .arg(&file),
        None,
    )
}

fn valid_by_the_drafts_schema(site: &Site, name: &str, document: &str) {
    let out = jing(site, name, document);
    assert!(
        out.status.success(),
        "{name} is not valid by the draft's schema: {}{}\n{document}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mail Autoconfig 1.2 (draft-ietf-mailmaint-autoconfig-06) beside 1.1: the same
/// servers (the user's own letter alias), every authentication the servers offer in
/// the order the site prefers (SASL PLAIN, for SMTP also LOGIN, then the password
/// login every client knows), valid by the draft's schema; an unknown address gets
/// the same shape as a known one, no address gets placeholders, a hostile one cannot
/// break it. A schema check that is not vacuous: a broken document fails it.
#[test]
fn autoconfig_1_2_lists_every_authentication_and_is_valid_by_the_drafts_schema() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);
    for path in [
        "/mail/config-v1.2.xml",
        "/.well-known/autoconfig/mail/config-v1.2.xml",
    ] {
        let known = site.get(&format!("{path}?emailaddress=nora@example.test"));
        assert_eq!(known.status, 200, "{path}");
        assert!(
            known.body.contains("<clientConfig version=\"1.2\">"),
            "{}",
            known.body
        );
        valid_by_the_drafts_schema(&site, "known.xml", &known.body);
        // The settings are 1.1's: what Thunderbird checks holds, server for server.
        let v11 = site.get("/mail/config-v1.1.xml?emailaddress=nora@example.test");
        assert_eq!(
            thunderbird::parse(&known.body).unwrap(),
            thunderbird::parse(&v11.body).unwrap()
        );
        let doc = thunderbird::parse(&known.body).unwrap();
        assert_eq!(
            doc.incoming[0].protocol,
            Protocol::Pop3,
            "nora prefers POP3"
        );
        assert_eq!(doc.incoming[0].hostname, "mailn.example.test");
        // Where nora keeps her filters: ManageSieve on her letter's alias.
        let setup = known
            .body
            .split("<setupServer")
            .nth(1)
            .expect("a setupServer");
        assert!(setup.starts_with(" type=\"managesieve\">"), "{setup}");
        for wanted in [
            "<hostname>mailn.example.test</hostname>",
            "<port>10190</port>",
            "<socketType>STARTTLS</socketType>",
            "<authentication system=\"sasl\">PLAIN</authentication>",
            "<username>nora</username>",
        ] {
            assert!(setup.contains(wanted), "{wanted}: {setup}");
        }
        // Every authentication, most preferred first.
        let outgoing = known.body.split("<outgoingServer").nth(1).unwrap();
        let order: Vec<&str> = outgoing
            .lines()
            .filter(|l| l.contains("<authentication"))
            .map(str::trim)
            .collect();
        assert_eq!(
            order,
            [
                "<authentication system=\"sasl\">PLAIN</authentication>",
                "<authentication system=\"sasl\">LOGIN</authentication>",
                "<authentication>password-cleartext</authentication>",
            ]
        );
        let unknown = site.get(&format!("{path}?emailaddress=nyx@example.test"));
        assert_eq!(unknown.status, 200);
        // Same shape but for the name (and the protocol nora chose).
        let shape = |body: &str| -> std::collections::BTreeSet<String> {
            body.lines()
                .filter(|l| !l.contains("<username>"))
                .map(|l| l.trim().to_string())
                .collect()
        };
        assert_eq!(shape(&known.body), shape(&unknown.body));
    }
    let placeholder = site.get("/mail/config-v1.2.xml");
    assert_eq!(placeholder.status, 200);
    valid_by_the_drafts_schema(&site, "placeholder.xml", &placeholder.body);
    assert_eq!(
        thunderbird::parse(&placeholder.body).unwrap().incoming[0].username,
        LOCALPART_PLACEHOLDER
    );
    let hostile = site.get("/mail/config-v1.2.xml?emailaddress=a%22%3Cx%3E%26%40y@example.test");
    assert_eq!(hostile.status, 200, "{}", hostile.body);
    valid_by_the_drafts_schema(&site, "hostile.xml", &hostile.body);
    assert!(!hostile.body.contains("<x>"));

    // The schema does check: a port that is no number is refused.
    let broken = placeholder.body.replacen("<port>", "<port>port ", 1);
    let out = jing(&site, "broken.xml", &broken);
    assert!(!out.status.success(), "jing took a broken document");
}

/// Thunderbird's own parser, taken from Debian's thunderbird package by
/// scripts/thunderbird-parser (scripts/test runs it and sets `THUNDERBIRD_PARSER`;
/// otherwise it is run here, and finds its work done after the first time).
fn thunderbird_parser() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("THUNDERBIRD_PARSER") {
        let dir = std::path::PathBuf::from(dir);
        assert!(
            dir.join("ready").is_file(),
            "THUNDERBIRD_PARSER={} is not prepared: run scripts/thunderbird-parser",
            dir.display()
        );
        return dir;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/thunderbird-parser");
    let out = common::run_command(&mut std::process::Command::new(script), None);
    assert!(
        out.status.success(),
        "scripts/thunderbird-parser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// What Thunderbird's own `readFromXML` (with its JXON) makes of `document`, as
/// tests/thunderbird/parse.mjs prints it: `ok`, and the servers as Thunderbird holds
/// them, or the error it refused the document with.
fn thunderbird_reads(
    site: &Site,
    parser: &std::path::Path,
    name: &str,
    document: &str,
) -> serde_json::Value {
    let file = site.dir.join(name);
    std::fs::write(&file, document).expect("write the document to check");
    let driver = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/thunderbird/parse.mjs"
    );
    let out = common::run_command(
        std::process::Command::new("node")
            .arg(driver)
            .arg(parser)
            .arg(&file),
        None,
    );
    assert!(
        out.status.success(),
        "parse.mjs could not run Thunderbird's parser on {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parse.mjs prints JSON")
}

/// Thunderbird's `Ci.nsMsgSocketType.SSL` and `.alwaysSTARTTLS`, and
/// `Ci.nsMsgAuthMethod.passwordCleartext` (MailNewsTypes2.idl).
const TB_SSL: u64 = 3;
const TB_STARTTLS: u64 = 2;
const TB_PASSWORD_CLEARTEXT: u64 = 3;

/// A server as Thunderbird holds it: (type, hostname, port, socketType, auth, username).
fn thunderbird_server(server: &serde_json::Value) -> (String, String, u64, u64, u64, String) {
    (
        server["type"].as_str().unwrap_or_default().to_string(),
        server["hostname"].as_str().unwrap_or_default().to_string(),
        server["port"].as_u64().unwrap_or_default(),
        server["socketType"].as_u64().unwrap_or_default(),
        server["auth"].as_u64().unwrap_or_default(),
        server["username"].as_str().unwrap_or_default().to_string(),
    )
}

/// The same, from a setting written out by hand: password-cleartext everywhere.
fn as_thunderbird_holds_it(setting: &ServerSetting) -> (String, String, u64, u64, u64, String) {
    let socket = match setting.security {
        Security::Tls => TB_SSL,
        Security::StartTls => TB_STARTTLS,
        Security::Plain => 0,
    };
    (
        setting.protocol.thunderbird_name().to_string(),
        setting.hostname.clone(),
        u64::from(setting.port),
        socket,
        TB_PASSWORD_CLEARTEXT,
        setting.username.clone(),
    )
}

/// Thunderbird's own parser (readFromXML.sys.mjs and JXON.sys.mjs of Debian's
/// thunderbird 153 ESR, run by tests/thunderbird/parse.mjs) reads both versions of the
/// document for a user who prefers IMAP, one who prefers POP3, an unknown address, no
/// address (placeholders) and a hostile one: it accepts each, takes the preferred
/// server first with implicit TLS and password-cleartext (in 1.2 past the SASL
/// entries, which it does not know, and unbothered by the `setupServer`), keeps the
/// others as alternatives in order, and the submission servers on outbox; it logs no
/// complaint. Not vacuous: a document without its incoming servers is refused, and so
/// is a 1.2 one left with only its SASL entries.
#[test]
fn thunderbirds_own_parser_reads_1_1_and_1_2() {
    let parser = thunderbird_parser();
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);
    let cases = [
        (
            "emailaddress=alice@example.test",
            "maila.example.test",
            "alice",
            false,
        ),
        (
            "emailaddress=nora@example.test",
            "mailn.example.test",
            "nora",
            true,
        ),
        (
            "emailaddress=cyril@example.test",
            "mailc.example.test",
            "cyril",
            false,
        ),
        ("", "mail0.example.test", LOCALPART_PLACEHOLDER, false),
        (
            "emailaddress=a%22%3Cx%3E%26%40y@example.test",
            "maila.example.test",
            "a\"<x>&@y",
            false,
        ),
    ];
    for (query, alias, user, pop_first) in cases {
        for version in ["1.1", "1.2"] {
            let path = format!("/mail/config-v{version}.xml?{query}");
            let r = site.get(&path);
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            let read = thunderbird_reads(&site, &parser, "document.xml", &r.body);
            assert_eq!(
                read["ok"], true,
                "Thunderbird refused {path}: {read}\n{}",
                r.body
            );
            let (incoming, outgoing) = expected(alias, user, pop_first);
            let servers = |first: &str, rest: &str| {
                std::iter::once(&read[first])
                    .chain(
                        read[rest]
                            .as_array()
                            .expect("the parser lists the alternatives"),
                    )
                    .map(thunderbird_server)
                    .collect::<Vec<_>>()
            };
            let want = |settings: &[ServerSetting]| {
                settings
                    .iter()
                    .map(as_thunderbird_holds_it)
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                servers("incoming", "incomingAlternatives"),
                want(&incoming),
                "{path}: {read}"
            );
            assert_eq!(
                servers("outgoing", "outgoingAlternatives"),
                want(&outgoing),
                "{path}: {read}"
            );
            assert_eq!(read["domains"], serde_json::json!(["example.test"]));
            // Nothing it dropped with a complaint on its console on the way.
            assert_eq!(read["logged"], serde_json::json!([]), "{path}: {read}");
            if version == "1.2" {
                assert!(r.body.contains("<authentication system=\"sasl\">PLAIN"));
                assert!(r.body.contains("<setupServer type=\"managesieve\">"));
            }
        }
    }
    // The first of alice's servers as Thunderbird takes it, spelled out.
    let r = site.get("/mail/config-v1.2.xml?emailaddress=alice@example.test");
    let read = thunderbird_reads(&site, &parser, "alice.xml", &r.body);
    assert_eq!(read["incoming"]["type"], "imap", "{read}");
    assert_eq!(read["incoming"]["hostname"], "maila.example.test");
    assert_eq!(read["incoming"]["port"], 10993);
    assert_eq!(read["incoming"]["socketType"], TB_SSL);
    assert_eq!(read["incoming"]["auth"], TB_PASSWORD_CLEARTEXT);
    assert_eq!(read["outgoing"]["hostname"], "outbox.example.test");
    assert_eq!(read["outgoing"]["port"], 10465);
    assert_eq!(read["outgoing"]["socketType"], TB_SSL);

    // Not vacuous: without its incoming servers Thunderbird refuses the document.
    for version in ["1.1", "1.2"] {
        let body = site
            .get(&format!(
                "/mail/config-v{version}.xml?emailaddress=alice@example.test"
            ))
            .body;
        let start = body
            .find("<incomingServer")
            .expect("an incomingServer in the document");
        let end = body.rfind("</incomingServer>").expect("its end") + "</incomingServer>".len();
        let stripped = format!("{}{}", &body[..start], &body[end..]);
        let read = thunderbird_reads(&site, &parser, "stripped.xml", &stripped);
        assert_eq!(read["ok"], false, "{version}: {read}\n{stripped}");
        assert!(
            read["error"]
                .as_str()
                .expect("the parser's error")
                .contains("incomingServer"),
            "{version}: {read}"
        );
    }
    // Nor does it read the SASL entries of 1.2: with only those, it finds no
    // authentication it knows and refuses the document; password-cleartext is what it
    // takes.
    let body = site
        .get("/mail/config-v1.2.xml?emailaddress=alice@example.test")
        .body;
    let sasl_only = body.replace("<authentication>password-cleartext</authentication>", "");
    assert!(sasl_only.contains("<authentication system=\"sasl\">PLAIN</authentication>"));
    let read = thunderbird_reads(&site, &parser, "sasl-only.xml", &sasl_only);
    assert_eq!(read["ok"], false, "{read}\n{sasl_only}");
}

/// The digest an independent implementation (Python's hashlib) computes over the
/// bytes a plain HTTP client receives for `domain`'s PACC document, and the bytes.
fn pacc_fetch(site: &Site, domain: &str) -> (String, String) {
    let program = r#"
import base64, hashlib, json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Host": sys.argv[2]})
with urllib.request.urlopen(request, timeout=10) as response:
    assert response.headers["Content-Type"] == "application/json", response.headers
    body = response.read()
json.loads(body)
print("v=UAAC1; a=sha256; d=" + base64.b64encode(hashlib.sha256(body).digest()).decode())
print(body.decode())
"#;
    let out = python(
        program,
        &[
            &site.url("/.well-known/user-agent-configuration.json"),
            &format!("ua-auto-config.{domain}"),
        ],
    );
    let (digest, body) = out.split_once('\n').unwrap();
    (digest.to_string(), body.trim_end().to_string())
}

/// What dig finds at `_ua-auto-config.<domain>` TXT, quotes removed.
fn pacc_record(site: &Site, domain: &str) -> Vec<String> {
    common::records(site.dns, &format!("_ua-auto-config.{domain}"), "TXT")
        .iter()
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

/// PACC (draft-ietf-mailmaint-pacc): each domain's document at the well-known path of
/// `ua-auto-config.<domain>`, pinned by the TXT record in our own zone: the digest an
/// independent SHA-256 computes over the bytes served is the one published. The
/// document names the hosts that do not depend on the user, so a letter move changes
/// neither it nor the record.
#[test]
fn pacc_document_and_its_digest_record_agree() {
    let site = Site::isolated_with(|text| {
        text.replace("imaps = 10993", "imaps = 993")
            .replace("pop3s = 10995", "pop3s = 995")
            .replace("submissions = 10465", "submissions = 465")
            .replace("other_domains = []", "other_domains = [\"second.test\"]")
            .replace(
                r#"roles = ["autoconfig", "dns", "mailbox", "sorter"]"#,
                r#"roles = ["autoconfig", "dns"]"#,
            )
    });
    let (digest, body) = pacc_fetch(&site, "example.test");
    assert_eq!(pacc_record(&site, "example.test"), vec![digest.clone()]);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["protocols"]["imap"]["host"], "mail0.example.test");
    assert_eq!(doc["protocols"]["pop3"]["host"], "mail0.example.test");
    assert_eq!(doc["protocols"]["submit"]["host"], "outbox.example.test");
    assert_eq!(doc["authentication"]["password"], true);
    assert_eq!(doc["info"]["provider"]["name"], "Example Test Mail");
    // The document's host resolves to the HTTP service.
    assert_eq!(
        common::resolve(site.dns, "ua-auto-config.example.test"),
        vec![site.http.ip().to_string()]
    );

    // Every domain has its own document and record.
    let (second_digest, second_body) = pacc_fetch(&site, "second.test");
    assert!(
        second_body.contains("\"mail0.second.test\""),
        "{second_body}"
    );
    assert_ne!(second_digest, digest);
    assert_eq!(pacc_record(&site, "second.test"), vec![second_digest]);

    // A letter move changes the aliases, not the document or its record.
    let before = common::resolve(site.dns, "maila.example.test");
    site.ok(&["letter", "move", "a", "mailbox2"], None);
    let moved = site.within(Duration::from_secs(5), || {
        common::resolve(site.dns, "maila.example.test") != before
    });
    assert!(moved.is_some(), "the letter move did not show in the zone");
    assert_eq!(pacc_fetch(&site, "example.test"), (digest.clone(), body));
    assert_eq!(pacc_record(&site, "example.test"), vec![digest]);
}

/// The embedded default's ports are not PACC's defaults: no document (a 404 that
/// says why) and no record, rather than a document naming the wrong ports.
#[test]
fn pacc_is_not_published_off_the_default_ports() {
    let site = Site::isolated();
    let answer = curl(&[
        "-H",
        "Host: ua-auto-config.example.test",
        &site.url("/.well-known/user-agent-configuration.json"),
    ]);
    assert_eq!(answer.status, 404, "{answer:?}");
    assert!(answer.body.contains("default TLS ports"), "{answer:?}");
    assert!(answer.body.contains("10993"), "{answer:?}");
    assert!(pacc_record(&site, "example.test").is_empty());
}
