//! The long check (opt-in): does push mail survive silence? The helper logs in over
//! IMAP and waits in IDLE as a mail program does; after each silence of the schedule
//! (1, 2, 4, 8 and 14 minutes by default: under 30 minutes in all) it sends the user a
//! test message and waits for the server's notice of it on the idle connection. A home
//! router's NAT or a firewall that forgets connections idle for longer than some time
//! makes the notice never come (or the connection fail): the step then says after how
//! much silence push stopped and the longest silence that still worked, which is the
//! keep-alive interval a mail program, or the server's `[timeouts] idle_keepalive`,
//! must stay under. The test messages are deleted at the end.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_imap::extensions::idle::IdleResponse;
use mailsite_shared::autoconfig::ServerSetting;
use mailsite_shared::report::Step;

use super::{Login, Running, bounded, endpoint, imap, smtp};
use crate::explain;
use crate::net::Net;

/// The silences of the default long check, in order: 29 minutes in all.
pub const DEFAULT_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(2 * 60),
    Duration::from_secs(4 * 60),
    Duration::from_secs(8 * 60),
    Duration::from_secs(14 * 60),
];

/// How long a test message may take to be announced on the idle connection.
pub const PUSH_WAIT: Duration = Duration::from_secs(30);

/// A duration as a user reads it: `45 s`, `2 min`, `2 min 30 s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

/// Parses a schedule as the command line takes it: `1m,2m,4m` (`s`, `m` or `h`).
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let schedule = text
        .split(',')
        .map(|part| {
            let part = part.trim();
            let (number, unit) = part.split_at(part.len().saturating_sub(1));
            let scale = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => return Err(format!("{part:?}: give each silence as 30s, 5m or 1h")),
            };
            number
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| Duration::from_secs(n * scale))
                .ok_or_else(|| format!("{part:?}: give each silence as 30s, 5m or 1h"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total: Duration = schedule.iter().sum();
    if total > Duration::from_secs(30 * 60) {
        return Err(format!(
            "the silences add up to {}: keep the long check under 30 min",
            human(total)
        ));
    }
    Ok(schedule)
}

/// What the long check tells its caller as it goes (a round's outcome), so that a
/// half-hour check shows it is alive.
pub type OnRound<'a> = &'a (dyn Fn(String) + Send + Sync);

/// Waits in IDLE on `incoming` through each silence of `schedule`, sending a test
/// message through `outgoing` after each and waiting up to `push_wait` for its notice.
pub async fn idle_survival(
    net: &Net,
    email: &str,
    outgoing: (&ServerSetting, IpAddr),
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
    (schedule, push_wait): (&[Duration], Duration),
    on_round: OnRound<'_>,
) -> Step {
    let total: Duration = schedule.iter().sum();
    let mut run = Running::new(
        "idle".to_string(),
        "idle",
        format!(
            "Push mail (IMAP IDLE) on {} through up to {} of silence",
            endpoint(incoming.0),
            human(schedule.iter().copied().max().unwrap_or_default())
        ),
    );
    run.detail(
        "schedule",
        schedule
            .iter()
            .map(|d| human(*d))
            .collect::<Vec<_>>()
            .join(", "),
    );
    run.detail("total", human(total));
    let t = run.record(&login.secrets);
    let token = format!("{:016x}", rand::random::<u64>());
    let err = |e: async_imap::error::Error| explain::protocol_error("IMAP", &e.to_string());
    let mut scratch = Running::new(String::new(), "imap", String::new());
    let opened = bounded(net, "IMAP", async {
        let mut session =
            imap::session(net, incoming.0, incoming.1, login, &t, &mut scratch).await?;
        let inbox = session.select("INBOX").await.map_err(err)?;
        let mut idle = session.idle();
        idle.init().await.map_err(err)?;
        Ok((idle, inbox.exists))
    })
    .await;
    // `exists`: the messages the server announced; each test message must raise it.
    let (mut idle, mut exists) = match opened {
        Ok(opened) => opened,
        Err(p) => return run.fail(p),
    };
    let mut survived: Option<Duration> = None;
    let mut stopped = None;
    for (round, silence) in schedule.iter().enumerate() {
        tokio::time::sleep(*silence).await;
        let subject = format!("mailsite-helper push test {token} {}", round + 1);
        let id = format!("{token}.{round}");
        let purpose = "This message tests that new mail is announced to a mail program that waits.";
        let sent =
            smtp::send_to_self(net, outgoing, login, &t, (email, &subject, &id, purpose)).await;
        if let Err(p) = sent {
            return run.fail(p);
        }
        let sent_at = Instant::now();
        let outcome = new_message_notice(&mut idle, &mut exists, sent_at + push_wait)
            .await
            .map(|()| sent_at.elapsed())
            .map_err(|why| why.replace("{wait}", &human(push_wait)));
        match outcome {
            Ok(took) => {
                run.detail(
                    &format!("after {}", human(*silence)),
                    format!("announced in {} ms", took.as_millis()),
                );
                on_round(format!(
                    "push after {} of silence: announced in {} ms",
                    human(*silence),
                    took.as_millis()
                ));
                survived = Some(survived.map_or(*silence, |s| s.max(*silence)));
            }
            Err(why) => {
                run.detail(&format!("after {}", human(*silence)), &why);
                on_round(format!("push after {} of silence: {why}", human(*silence)));
                stopped = Some((*silence, why));
                break;
            }
        }
    }
    // The test messages go, over a connection of their own (the idle one may be dead).
    drop(idle);
    if let Err(p) = bounded(net, "deleting the test messages", async {
        imap::delete_matching(net, incoming, login, &token, &t).await
    })
    .await
    {
        run.detail(
            "cleanup",
            format!("the test messages were not deleted: {}", p.explanation),
        );
    }
    match stopped {
        None => {
            run.detail(
                "longest_silence_survived",
                human(survived.unwrap_or_default()),
            );
            run.pass()
        }
        Some((silence, why)) => {
            run.detail("push_stopped_after", human(silence));
            let works = survived.map(human);
            run.detail("keepalive_that_works", works.as_deref().unwrap_or("none"));
            run.fail(explain::idle_connection_dropped(
                &incoming.0.hostname,
                &human(silence),
                works.as_deref(),
                &why,
            ))
        }
    }
}

/// Waits until `deadline` for an `EXISTS` above `exists` on the idle connection: the
/// notice of the new message. Other news (a `RECENT` that came with an earlier
/// `EXISTS`, flag changes) is read and passed over.
async fn new_message_notice<T>(
    idle: &mut async_imap::extensions::idle::Handle<T>,
    exists: &mut u32,
    deadline: Instant,
) -> Result<(), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    use async_imap::imap_proto::{MailboxDatum, Response};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no notice came within {wait}".to_string());
        }
        let (notice, _stop) = idle.wait_with_timeout(left);
        match notice.await {
            Ok(IdleResponse::NewData(data)) => {
                if let Response::MailboxData(MailboxDatum::Exists(n)) = data.parsed()
                    && *n > *exists
                {
                    *exists = *n;
                    return Ok(());
                }
            }
            Ok(_) => return Err("no notice came within {wait}".to_string()),
            Err(e) => return Err(format!("the connection failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_read_as_users_write_them_and_bounded() {
        assert_eq!(
            parse_schedule("30s, 2m,1m").unwrap(),
            [30, 120, 60].map(Duration::from_secs).to_vec()
        );
        assert_eq!(
            DEFAULT_SCHEDULE.iter().sum::<Duration>(),
            Duration::from_secs(29 * 60)
        );
        for bad in ["", "5", "0m", "2x", "1h", "10m,10m,11m"] {
            assert!(parse_schedule(bad).is_err(), "{bad:?}");
        }
        assert_eq!(human(Duration::from_secs(45)), "45 s");
        assert_eq!(human(Duration::from_secs(120)), "2 min");
        assert_eq!(human(Duration::from_secs(150)), "2 min 30 s");
    }
}
