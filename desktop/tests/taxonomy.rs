//! Failures a user meets, each produced for real and told apart by its stable code:
//! a certificate from an authority this computer lacks (`tls_untrusted`, fixed by the
//! site's CA file) and one issued by nobody (`tls_bad_certificate`, which no CA file
//! fixes); a DNS server that does not answer (`dns_not_answering`); a port that drops
//! connections (`connection_timeout`, a listener whose queue is full) beside one that
//! refuses them; and a port that offers no password login (`mechanism_not_offered`,
//! Python's own SMTP server, which offers no AUTH, as relay ports do).

mod support;

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use mailsite_helper::net::Net;
use mailsite_helper::probe::{self, Login};
use mailsite_helper::record::Secrets;
use mailsite_helper::{CheckOptions, Report, SiteOverride, render};
use mailsite_shared::autoconfig::{Protocol, Security, ServerSetting};
use support::Site;

const PASSWORD: &str = "correct horse battery";

fn options(site: &Site) -> CheckOptions {
    let mut o = CheckOptions::new("alice@example.test", PASSWORD);
    o.site = site.overrides();
    o.step_timeout = Duration::from_secs(3);
    o.round_trip = false;
    o
}

async fn check(o: &CheckOptions) -> Report {
    mailsite_helper::check(o).await.expect("a check runs")
}

fn codes(report: &Report, kind: &str) -> Vec<String> {
    report
        .steps
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| {
            s.problem
                .as_ref()
                .map_or("passed".into(), |p| p.code.clone())
        })
        .collect()
}

fn explained(site: &Site, report: &Report, name: &str) -> String {
    let file = site.dir.join(name);
    std::fs::write(&file, serde_json::to_string(report).unwrap()).unwrap();
    site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None)
}

#[tokio::test]
async fn an_authority_this_computer_lacks_is_told_apart_from_a_self_signed_certificate() {
    // The site's own CA, which the user has not installed.
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    let mut o = options(&site);
    o.site.ca = None;
    let report = check(&o).await;
    let tls = codes(&report, "tls");
    assert!(
        !tls.is_empty() && tls.iter().all(|c| c == "tls_untrusted"),
        "{tls:?}\n{}",
        render::text(&report)
    );
    let advice = explained(&site, &report, "untrusted.json");
    assert!(
        advice.contains("give the user the site's CA certificate"),
        "{advice}"
    );

    // A certificate that vouches for itself: no CA file can help.
    let dir = site.dir.join("self-signed");
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![
        "maila.example.test".to_string(),
        "outbox.example.test".to_string(),
    ])
    .unwrap()
    .self_signed(&key)
    .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let bad =
        Site::start_with(|t| format!("{t}\n[tls]\ncert = {cert_path:?}\nkey = {key_path:?}\n"));
    bad.add_user("alice", PASSWORD);
    let mut o = options(&bad);
    o.site.ca = None;
    let report = check(&o).await;
    let tls = codes(&report, "tls");
    assert!(
        !tls.is_empty() && tls.iter().all(|c| c == "tls_bad_certificate"),
        "{tls:?}\n{}",
        render::text(&report)
    );
    let step = report.steps.iter().find(|s| s.kind == "tls").unwrap();
    assert_eq!(step.detail("self_signed"), Some("true"));
    // No password went over it.
    assert!(
        report
            .steps
            .iter()
            .filter(|s| s.kind == "imap")
            .all(|s| s.problem.is_none() || s.outcome != mailsite_shared::report::Outcome::Pass),
    );
    let advice = explained(&bad, &report, "self-signed.json");
    assert!(advice.contains("issued by no authority"), "{advice}");
}

#[tokio::test]
async fn a_dns_server_that_does_not_answer_is_named() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    // A socket that takes queries and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut o = options(&site);
    o.site.dns = Some(silent.local_addr().unwrap());
    o.step_timeout = Duration::from_secs(1);
    let report = check(&o).await;
    let dns = codes(&report, "dns");
    assert!(
        !dns.is_empty() && dns.iter().all(|c| c == "dns_not_answering"),
        "{dns:?}\n{}",
        render::text(&report)
    );
    let problem = report
        .steps
        .iter()
        .find_map(|s| s.problem.as_ref().filter(|p| p.code == "dns_not_answering"))
        .unwrap();
    assert!(
        problem
            .explanation
            .contains(&silent.local_addr().unwrap().to_string()),
        "{}",
        problem.explanation
    );
}

fn login() -> Login {
    Login {
        username: "alice".into(),
        password: PASSWORD.into(),
        secrets: Secrets::new(PASSWORD, &["alice"]),
    }
}

fn setting(protocol: Protocol, hostname: &str, port: u16, security: Security) -> ServerSetting {
    ServerSetting {
        protocol,
        hostname: hostname.into(),
        port,
        security,
        username: "alice".into(),
    }
}

#[tokio::test]
async fn a_port_that_drops_connections_is_told_apart_from_one_that_refuses() {
    // A listener whose queue is full: the kernel drops further connection attempts
    // without an answer, as a filtering firewall does.
    let (mut full, port) = serve_python(
        r#"
import socket, sys, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(0)
queued = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(l.getsockname())
    queued.append(c)
time.sleep(0.3)
print(l.getsockname()[1], flush=True)
time.sleep(30)
"#,
    );
    let net = Net::new(&SiteOverride::default(), Duration::from_secs(2)).unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let (step, stream) = probe::tcp(
        &net,
        &setting(Protocol::Imap, "mail.example.test", port, Security::Tls),
        ip,
    )
    .await;
    let _ = full.kill();
    let _ = full.wait();
    assert!(stream.is_none());
    assert_eq!(
        step.problem.as_ref().map(|p| p.code.as_str()),
        Some("connection_timeout"),
        "{step:?}"
    );

    // A port nobody listens on refuses at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (step, _) = probe::tcp(
        &net,
        &setting(Protocol::Imap, "mail.example.test", port, Security::Tls),
        ip,
    )
    .await;
    assert_eq!(
        step.problem.as_ref().map(|p| p.code.as_str()),
        Some("connection_refused"),
        "{step:?}"
    );
}

/// Starts a Python program that prints the port it listens on, then serves; the
/// child, and the port.
fn serve_python(program: &str) -> (std::process::Child, u16) {
    let mut child = Command::new("python3")
        .args(["-W", "ignore", "-c", program])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no port: {line:?}"));
    (child, port)
}

#[tokio::test]
async fn a_port_without_password_login_is_named() {
    // Python's own SMTP server (smtpd), which offers no AUTH, as a relay port does.
    let (mut server, port) = serve_python(
        r#"
import asyncore, smtpd
s = smtpd.SMTPServer(("127.0.0.1", 0), None)
print(s.socket.getsockname()[1], flush=True)
asyncore.loop(timeout=1, count=60)
"#,
    );
    let net = Net::new(&SiteOverride::default(), Duration::from_secs(5)).unwrap();
    let relay = setting(Protocol::Smtp, "relay.example.test", port, Security::Plain);
    let step = probe::smtp(&net, &relay, "127.0.0.1".parse().unwrap(), &login()).await;
    let _ = server.kill();
    let _ = server.wait();
    let problem = step
        .problem
        .as_ref()
        .unwrap_or_else(|| panic!("no password login there: {step:?}"));
    assert_eq!(problem.code, "mechanism_not_offered", "{step:?}");
    assert!(
        problem.explanation.contains(&format!("port {port}"))
            && problem.explanation.contains("no AUTH"),
        "{}",
        problem.explanation
    );
    assert_eq!(step.detail("auth_offered"), Some("none"));
    // No password was sent.
    assert!(
        step.transcript.iter().all(|l| !l.starts_with("C: AUTH")),
        "{:?}",
        step.transcript
    );
}
