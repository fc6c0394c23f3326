//! Mail a mailbox server sends itself: what users' Sieve scripts send at delivery
//! (vacation replies, redirects). It leaves through the site's sorters, like any other
//! mail: SMTP to a sorter's MX port from the mailbox server's own address, which the
//! sorters let relay messages whose sender is empty (auto-replies, RFC 3834 3.3) or
//! one of the site's own addresses (see `sorter::session`). The sorter queues it
//! durably and delivers, retries or bounces it as any other message.
//!
//! Sending starts once the delivery that caused it is stored and acknowledged; a
//! sorter that does not answer is followed by the next, and the whole round is tried
//! again a few times before the message is given up (and logged).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mailsite_shared::smtp_data::dot_stuffed;
use mailsite_shared::smtp_reply::{self, ReplyLimits};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use super::sieve::Outgoing;
use crate::metrics::Sieve;
use crate::state::Site;

/// Rounds over the sorters before a message is given up.
const ROUNDS: u32 = 4;
/// The wait after the first failed round; doubled after each.
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// How long one SMTP transaction may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `messages` through the sorters in the background.
pub fn send(site: Arc<Site>, server: &str, hostname: &str, messages: Vec<Outgoing>) {
    if messages.is_empty() {
        return;
    }
    let (server, hostname) = (server.to_string(), hostname.to_string());
    tokio::spawn(async move {
        for message in messages {
            send_one(&site, &server, &hostname, &message).await;
        }
    });
}

/// How one attempt at one sorter ended.
enum Sent {
    Taken,
    /// 5xx: the sorter will never take it.
    Refused(String),
    /// No connection, a 4xx, a timeout: another sorter, or later.
    NotNow(String),
}

async fn send_one(site: &Site, server: &str, hostname: &str, message: &Outgoing) {
    let data = dot_stuffed(&message.message);
    let mut wait = FIRST_WAIT;
    let mut last = String::from("no sorter to send through");
    for round in 1..=ROUNDS {
        let (targets, source) = targets(site, server);
        for (host, addr) in &targets {
            let attempt = tokio::time::timeout(
                TIMEOUT,
                transaction(*addr, source, hostname, message, &data),
            )
            .await
            .unwrap_or_else(|_| Sent::NotNow("timed out".into()));
            match attempt {
                Sent::Taken => {
                    site.metrics.sieve(Sieve::Sent);
                    tracing::info!(%server, to = %message.recipient, sorter = %host, "Sieve message handed to a sorter");
                    return;
                }
                Sent::Refused(reply) => {
                    site.metrics.sieve(Sieve::NotSent);
                    tracing::warn!(%server, to = %message.recipient, sorter = %host, %reply, "Sieve message refused by the sorter; not sent");
                    return;
                }
                Sent::NotNow(why) => last = format!("{host}: {why}"),
            }
        }
        if round < ROUNDS {
            tracing::info!(%server, to = %message.recipient, error = %last, round, "Sieve message not taken yet; trying again");
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    site.metrics.sieve(Sieve::NotSent);
    tracing::warn!(%server, to = %message.recipient, error = %last, "Sieve message given up: no sorter took it");
}

/// One SMTP transaction: EHLO, MAIL, RCPT, DATA, QUIT.
async fn transaction(
    addr: SocketAddr,
    source: Option<IpAddr>,
    hostname: &str,
    message: &Outgoing,
    data: &[u8],
) -> Sent {
    let stream = match connect(addr, source).await {
        Ok(stream) => stream,
        Err(e) => return Sent::NotNow(format!("cannot connect: {e}")),
    };
    let mut stream = BufReader::new(stream);
    let steps: [(Vec<u8>, u16); 5] = [
        (Vec::new(), 220),
        (format!("EHLO {hostname}\r\n").into_bytes(), 250),
        (
            format!("MAIL FROM:<{}>\r\n", message.sender).into_bytes(),
            250,
        ),
        (
            format!("RCPT TO:<{}>\r\n", message.recipient).into_bytes(),
            250,
        ),
        (b"DATA\r\n".to_vec(), 354),
    ];
    for (command, expected) in steps.iter().chain([(data.to_vec(), 250)].iter()) {
        if !command.is_empty()
            && let Err(e) = stream.get_mut().write_all(command).await
        {
            return Sent::NotNow(e.to_string());
        }
        let reply = match smtp_reply::read_reply(&mut stream, ReplyLimits::default()).await {
            Ok(reply) => reply,
            Err(e) => return Sent::NotNow(e.to_string()),
        };
        if reply.code / 100 != expected / 100 {
            let text = format!("{} {}", reply.code, reply.last_line());
            return match reply.code / 100 {
                5 => Sent::Refused(text),
                _ => Sent::NotNow(text),
            };
        }
    }
    let _ = stream.get_mut().write_all(b"QUIT\r\n").await;
    Sent::Taken
}

/// Connects from `source` when this host can (the sorters trust the mailbox servers'
/// own addresses), else from the default address.
async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    if let Some(source) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if socket.bind(SocketAddr::new(source, 0)).is_ok() {
            return socket.connect(addr).await;
        }
    }
    TcpStream::connect(addr).await
}

/// The sorters `outbox` points at (their SMTP port), and this server's own address to
/// connect from.
fn targets(site: &Site, server: &str) -> (Vec<(String, SocketAddr)>, Option<IpAddr>) {
    let view = site.view();
    let config = view.config();
    let port = config.ports.smtp;
    let targets = view
        .map
        .outbox_sorters()
        .into_iter()
        .flat_map(|s| {
            let host = format!("{}.{}", s.name, config.domain);
            s.addresses
                .iter()
                .map(move |ip| (host.clone(), SocketAddr::new(*ip, port)))
        })
        .collect();
    let source = config
        .mailboxes
        .iter()
        .find(|m| m.name == server)
        .and_then(|m| m.addresses.first().copied());
    (targets, source)
}

#[cfg(test)]
mod tests {
    #[test]
    fn data_is_dot_stuffed_with_crlf_line_ends() {
        assert_eq!(
            super::dot_stuffed(b"a\n.b\r\n..c"),
            b"a\r\n..b\r\n...c\r\n.\r\n".to_vec()
        );
    }
}
