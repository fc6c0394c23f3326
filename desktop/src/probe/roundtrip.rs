//! The round trip: a test message sent to the user through the outgoing server and
//! awaited over the incoming one (IMAP or POP3), then deleted: the one step that shows
//! mail a user sends actually arrives.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mailsite_shared::autoconfig::{Protocol, ServerSetting};
use mailsite_shared::report::Step;

use super::{Login, Running, endpoint, imap, pop3, smtp};
use crate::explain;
use crate::net::Net;

/// How long the round trip waits for the test message.
pub const ROUND_TRIP_WAIT: Duration = Duration::from_secs(30);

/// Sends a test message to the user through `outgoing` and waits for it over
/// `incoming`, then deletes it.
pub async fn round_trip(
    net: &Net,
    email: &str,
    outgoing: (&ServerSetting, IpAddr),
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
) -> Step {
    let protocol = incoming.0.protocol.thunderbird_name().to_uppercase();
    let mut run = Running::new(
        "roundtrip".to_string(),
        "roundtrip",
        format!(
            "Round trip: a test message through {} back over {protocol}",
            endpoint(outgoing.0)
        ),
    );
    let t = run.record(&login.secrets);
    let token = format!("{:016x}", rand::random::<u64>());
    let subject = format!("mailsite-helper round trip {token}");
    run.detail("subject", &subject);
    let purpose = "This message tests that mail you send comes back to you.";
    let sent =
        smtp::send_to_self(net, outgoing, login, &t, (email, &subject, &token, purpose)).await;
    if let Err(p) = sent {
        return run.fail(p);
    }
    let sent_at = Instant::now();
    let deadline = sent_at + ROUND_TRIP_WAIT;
    let arrived = match incoming.0.protocol {
        Protocol::Imap => imap::wait_for(net, incoming, login, &token, deadline, &t).await,
        _ => pop3::wait_for(net, incoming, login, &token, deadline, &t).await,
    };
    match arrived {
        Ok(true) => {
            run.detail("delay_ms", sent_at.elapsed().as_millis());
            run.pass()
        }
        Ok(false) => run.fail(explain::not_delivered(
            ROUND_TRIP_WAIT.as_secs_f64(),
            &protocol,
        )),
        Err(p) => run.fail(p),
    }
}
