//! The IMAP step: greeting, CAPABILITY, STARTTLS, LOGIN and the INBOX's message
//! count, as the user's client does them (async-imap), with a recorded transcript; and
//! the IMAP half of the round trip (find the test message, delete it).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mailsite_shared::autoconfig::ServerSetting;
use mailsite_shared::report::{Problem, Step};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;

use super::wire::{TlsWire, Wire, open, upgrade};
use super::{Login, Running, bounded, expect, login_probe, read_line, send};
use crate::explain;
use crate::net::Net;
use crate::record::{Recorder, Shared};

/// The plain-text part of STARTTLS for the TLS step: greeting, `STARTTLS`, its `OK`.
pub(super) async fn starttls(stream: TcpStream) -> Result<TcpStream, String> {
    let mut r = BufReader::new(stream);
    expect(&read_line(&mut r).await?, "* OK")?;
    send(&mut r, b"t1 STARTTLS\r\n").await?;
    loop {
        let line = read_line(&mut r).await?;
        if line.starts_with("t1 ") {
            expect(&line, "t1 OK")?;
            return Ok(r.into_inner());
        }
    }
}

/// Logs in over IMAP as the user's client would (async-imap); returns the session.
pub(super) async fn session(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<async_imap::Session<TlsWire>, Problem> {
    let wire = open(net, s, ip, t)
        .await
        .map_err(|e| explain::protocol_error("IMAP", &e))?;
    let imap_err = |e: async_imap::error::Error| explain::protocol_error("IMAP", &e.to_string());
    let tls_stream: TlsWire = match wire {
        Wire::Tls(stream) => *stream,
        Wire::Plain(stream) => {
            let mut client = async_imap::Client::new(stream);
            greeting(&mut client).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(imap_err)?;
            let tcp = client.into_inner().into_inner();
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .note("STARTTLS: the connection is encrypted from here");
            let addr = tcp.peer_addr().ok();
            let tls = upgrade(net, s, tcp)
                .await
                .map_err(|e| explain::tls_failed(&s.hostname, &e))?;
            let stream = Recorder::new(tls, t.clone(), addr);
            let mut client = async_imap::Client::new(stream);
            client
                .run_command_and_check_ok("CAPABILITY", None)
                .await
                .map_err(imap_err)?;
            return log_in(client, s, login, t, run).await;
        }
    };
    let mut client = async_imap::Client::new(tls_stream);
    greeting(&mut client).await?;
    client
        .run_command_and_check_ok("CAPABILITY", None)
        .await
        .map_err(imap_err)?;
    log_in(client, s, login, t, run).await
}

/// Reads the server's greeting; a server that closes first gave none.
async fn greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), Problem>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(explain::protocol_error("IMAP", "no greeting")),
        Err(e) => Err(explain::protocol_error("IMAP", &e.to_string())),
    }
}

/// LOGIN; a refusal is explained, a referral (RFC 2221) named.
async fn log_in(
    client: async_imap::Client<TlsWire>,
    s: &ServerSetting,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<async_imap::Session<TlsWire>, Problem> {
    match client.login(&login.username, &login.password).await {
        Ok(session) => {
            run.detail("login", "accepted");
            Ok(session)
        }
        Err((e, _)) => {
            let lines = t.lock().unwrap_or_else(|p| p.into_inner()).lines();
            let last = lines
                .iter()
                .rev()
                .find(|l| l.starts_with("S: "))
                .cloned()
                .unwrap_or_default();
            if let Some(i) = last.find("[REFERRAL ") {
                let url = last[i + 10..].split(']').next().unwrap_or("").to_string();
                let host = url
                    .trim_start_matches("imap://")
                    .rsplit('@')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_string();
                run.detail("referral", &url);
                return Err(explain::referral(&s.hostname, &host));
            }
            if let Some(until) = explain::blocked(&last) {
                run.detail("blocked_until", until.as_deref().unwrap_or("unknown"));
                return Err(explain::source_blocked(
                    "IMAP",
                    &login.username,
                    until.as_deref(),
                ));
            }
            if let Some((label, at)) = explain::app_password_expired_in(&last) {
                run.detail("app_password", &label);
                return Err(explain::app_password_expired(
                    "IMAP",
                    &login.username,
                    &label,
                    &at,
                ));
            }
            if matches!(e, async_imap::error::Error::No(_)) {
                return Err(explain::auth_refused("IMAP", &login.username));
            }
            Err(explain::protocol_error("IMAP", &e.to_string()))
        }
    }
}

/// IMAP: greeting, CAPABILITY, STARTTLS, LOGIN, INBOX message count.
pub async fn imap(net: &Net, s: &ServerSetting, ip: IpAddr, login: &Login) -> Step {
    login_probe(net, ("imap", "IMAP"), s, ip, login, async |t, run| {
        let mut session = session(net, s, ip, login, t, run).await?;
        let caps = session
            .capabilities()
            .await
            .map_err(|e| explain::protocol_error("IMAP", &e.to_string()))?;
        let mut names: Vec<String> = caps.iter().map(|c| format!("{c:?}")).collect();
        names.sort();
        let inbox = session
            .select("INBOX")
            .await
            .map_err(|e| explain::protocol_error("IMAP", &e.to_string()))?;
        let _ = session.logout().await;
        Ok(vec![
            ("capabilities", names.len().to_string()),
            ("inbox_messages", inbox.exists.to_string()),
        ])
    })
    .await
}

/// The IMAP half of the round trip: waits until `deadline` for the message whose
/// subject carries `token`, and deletes it; whether it came.
pub(super) async fn wait_for(
    net: &Net,
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
    token: &str,
    deadline: Instant,
    t: &Shared,
) -> Result<bool, Problem> {
    let mut scratch = Running::new(String::new(), "imap", String::new());
    let err = |e: async_imap::error::Error| explain::protocol_error("IMAP", &e.to_string());
    let mut inbox = bounded(
        net,
        "IMAP",
        session(net, incoming.0, incoming.1, login, t, &mut scratch),
    )
    .await?;
    inbox.select("INBOX").await.map_err(err)?;
    while Instant::now() < deadline {
        let found = inbox
            .uid_search(format!("HEADER Subject \"{token}\""))
            .await
            .map_err(err)?;
        if let Some(uid) = found.into_iter().next() {
            delete_uids(&mut inbox, &[uid]).await?;
            let _ = inbox.logout().await;
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        inbox.noop().await.map_err(err)?;
    }
    let _ = inbox.logout().await;
    Ok(false)
}

/// Deletes every message whose subject carries `token` (the long check's test
/// messages), over a session of its own.
pub(super) async fn delete_matching(
    net: &Net,
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
    token: &str,
    t: &Shared,
) -> Result<(), Problem> {
    let mut scratch = Running::new(String::new(), "imap", String::new());
    let err = |e: async_imap::error::Error| explain::protocol_error("IMAP", &e.to_string());
    let mut inbox = session(net, incoming.0, incoming.1, login, t, &mut scratch).await?;
    inbox.select("INBOX").await.map_err(err)?;
    let found = inbox
        .uid_search(format!("HEADER Subject \"{token}\""))
        .await
        .map_err(err)?;
    let found: Vec<u32> = found.into_iter().collect();
    delete_uids(&mut inbox, &found).await?;
    let _ = inbox.logout().await;
    Ok(())
}

/// Marks the messages of `uids` deleted and expunges them (nothing for none).
async fn delete_uids(
    inbox: &mut async_imap::Session<TlsWire>,
    uids: &[u32],
) -> Result<(), Problem> {
    if uids.is_empty() {
        return Ok(());
    }
    let err = |e: async_imap::error::Error| explain::protocol_error("IMAP", &e.to_string());
    let set: Vec<String> = uids.iter().map(u32::to_string).collect();
    inbox
        .uid_store(set.join(","), "+FLAGS (\\Deleted)")
        .await
        .map_err(err)?
        .for_each(|_| async {})
        .await;
    inbox
        .expunge()
        .await
        .map_err(err)?
        .for_each(|_| async {})
        .await;
    Ok(())
}
