//! The long check: push mail (IMAP IDLE) through silences, against a real site, once
//! through a NAT that forgets connections quiet for 2 s (a relay here that then
//! forwards nothing, telling neither end, as a home router does): push stops, and the
//! step says after how much silence and what still worked; with the site's keep-alive
//! under that limit push survives. And `check --long` on the command line, its rounds
//! told as they happen.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use mailsite_helper::net::Net;
use mailsite_helper::probe::{self, Login};
use mailsite_helper::record::Secrets;
use mailsite_shared::autoconfig::{Protocol, Security, ServerSetting};
use mailsite_shared::report::{Outcome, Report, Step};
use support::{HELPER, Site, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "correct horse battery";

/// A NAT in front of `upstream` that forgets a connection after `limit` without a
/// byte either way; from then on it forwards nothing and closes nothing.
async fn nat(upstream: SocketAddr, limit: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            if let Ok(server) = TcpStream::connect(upstream).await {
                tokio::spawn(relay(client, server, limit));
            }
        }
    });
    addr
}

async fn relay(client: TcpStream, server: TcpStream, limit: Duration) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        tokio::select! {
            n = from_client.read(&mut up) => match n {
                Ok(n) if n > 0 && to_server.write_all(&up[..n]).await.is_ok() => {}
                _ => return,
            },
            n = from_server.read(&mut down) => match n {
                Ok(n) if n > 0 && to_client.write_all(&down[..n]).await.is_ok() => {}
                _ => return,
            },
            () = tokio::time::sleep(limit) => {
                // Forgotten: both ends stay open, and nothing passes any more.
                let _held = (from_client, to_client, from_server, to_server);
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
        }
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

/// The long check of alice's IMAP through a NAT with a 2 s memory, silences 1 s and
/// 3 s, each notice awaited for 3 s.
async fn through_a_nat(site: &Site) -> Step {
    let upstream: SocketAddr = format!("{}:10993", site.addr(11)).parse().unwrap();
    let front = nat(upstream, Duration::from_secs(2)).await;
    let net = Net::new(&site.overrides(), Duration::from_secs(10)).unwrap();
    let login = Login {
        username: "alice".into(),
        password: PASSWORD.into(),
        secrets: Secrets::new(PASSWORD, &["alice"]),
    };
    let incoming = setting(
        Protocol::Imap,
        "maila.example.test",
        front.port(),
        Security::Tls,
    );
    let outgoing = setting(
        Protocol::Smtp,
        "outbox.example.test",
        10587,
        Security::StartTls,
    );
    let out_ip: IpAddr = site.addr(21).parse().unwrap();
    let schedule = [Duration::from_secs(1), Duration::from_secs(3)];
    probe::idle_survival(
        &net,
        "alice@example.test",
        (&outgoing, out_ip),
        (&incoming, front.ip()),
        &login,
        (&schedule, Duration::from_secs(3)),
        &|_| {},
    )
    .await
}

/// Messages in alice's INBOX, by Python's imaplib.
fn inbox_count(site: &Site) -> String {
    let out = run(
        Command::new("python3").args([
            "-c",
            "import imaplib, sys\n\
             m = imaplib.IMAP4(sys.argv[1], 10143)\n\
             m.login('alice', sys.argv[2])\n\
             print(m.select('INBOX')[1][0].decode())\n\
             m.logout()",
            &site.addr(11),
            PASSWORD,
        ]),
        None,
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn push_stops_behind_a_nat_that_forgets_and_survives_with_short_keepalives() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    let step = through_a_nat(&site).await;
    assert_eq!(step.outcome, Outcome::Fail, "{step:?}");
    let problem = step.problem.as_ref().unwrap();
    assert_eq!(problem.code, "idle_connection_dropped", "{step:?}");
    assert_eq!(step.detail("push_stopped_after"), Some("3 s"));
    assert_eq!(step.detail("keepalive_that_works"), Some("1 s"));
    assert!(
        step.detail("after 1 s")
            .is_some_and(|d| d.starts_with("announced in")),
        "{step:?}"
    );
    assert!(
        problem.explanation.contains("after 3 s without traffic")
            && problem
                .explanation
                .contains("After 1 s of silence it still worked"),
        "{}",
        problem.explanation
    );
    // The test messages were deleted.
    assert_eq!(inbox_count(&site), "0");

    // The helpdesk reads it: the site's keep-alive, and what to set it under.
    let report = Report {
        schema_version: mailsite_shared::report::SCHEMA_VERSION,
        helper_version: "test".into(),
        os: "linux".into(),
        started_at: chrono::Utc::now().to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        email: "alice@example.test".into(),
        protocol: "imap".into(),
        overrides: Vec::new(),
        discovery: Default::default(),
        passed: false,
        summary: problem.explanation.clone(),
        steps: vec![step.clone()],
        findings: Vec::new(),
    };
    let file = site.dir.join("push-report.json");
    std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
    let explained = site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None);
    assert!(
        explained.contains("push mail stops on the user's network after 3 s")
            && explained.contains("idle_keepalive")
            && explained.contains("every 120 s"),
        "{explained}"
    );

    // A site whose keep-alive comes every second: the NAT never sees 2 s of quiet.
    let keeping = Site::start_with(|t| t.replace("idle_keepalive = 120 ", "idle_keepalive = 1 "));
    keeping.add_user("alice", PASSWORD);
    let step = through_a_nat(&keeping).await;
    assert_eq!(step.outcome, Outcome::Pass, "{step:?}");
    assert_eq!(step.detail("longest_silence_survived"), Some("3 s"));
    assert_eq!(inbox_count(&keeping), "0");
}

#[test]
fn check_long_tells_each_round_and_reports_the_push_step() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    let config = site.dir.join("helper-config");
    let mut cmd = Command::new(HELPER);
    cmd.args([
        "check",
        "alice@example.test",
        "--json",
        "--password-stdin",
        "--long",
        "--idle-schedule",
        "1s,2s",
    ])
    .args(site.helper_args())
    .env("MAILSITE_HELPER_CONFIG_DIR", &config);
    let out = run(&mut cmd, Some(&format!("{PASSWORD}\n")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for round in ["1 s", "2 s"] {
        assert!(
            stderr.contains(&format!(
                "long check: push after {round} of silence: announced in"
            )),
            "{stderr}"
        );
    }
    let report: Report = serde_json::from_slice(&out.stdout).unwrap();
    let idle = report
        .steps
        .iter()
        .find(|s| s.kind == "idle")
        .expect("the push step");
    assert_eq!(idle.outcome, Outcome::Pass);
    assert_eq!(idle.detail("longest_silence_survived"), Some("2 s"));

    // Usage errors: a schedule over 30 minutes, or one without --long.
    for args in [
        vec!["--long", "--idle-schedule", "20m,20m"],
        vec!["--idle-schedule", "1s"],
    ] {
        let mut cmd = Command::new(HELPER);
        cmd.args(["check", "alice@example.test", "--password-stdin"])
            .args(args)
            .args(site.helper_args());
        let out = run(&mut cmd, Some(&format!("{PASSWORD}\n")));
        assert_eq!(out.status.code(), Some(2), "{out:?}");
    }
}
