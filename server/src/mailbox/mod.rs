//! The mailbox role: what `mail<letter>.<domain>` points at. The message store
//! ([`store`]) and LMTP intake from the sorters ([`lmtp`]); IMAP and POP3 build on them.

pub mod accept;
pub mod imap;
pub mod junk;
pub mod lmtp;
pub mod login;
pub mod managesieve;
pub mod outbound;
pub mod pop3;
pub mod quota;
pub mod sieve;
pub mod store;

use std::sync::Arc;

use tokio::sync::watch;

use crate::state::Site;

/// One mailbox server as this process runs it: what the sessions of every protocol
/// need, cloned into each listener.
#[derive(Clone)]
pub struct MailboxServer {
    /// The server's name in the site configuration (`mailbox1`).
    pub name: String,
    /// The name it greets with (`mailbox1.example.test`).
    pub hostname: String,
    pub site: Arc<Site>,
    pub store: store::Store,
    /// TLS for STARTTLS/STLS and the implicit-TLS ports.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Users' Sieve scripts, run at LMTP delivery.
    pub sieve: Arc<sieve::Engine>,
}

impl MailboxServer {
    /// What a session waits on to learn that this server is being drained.
    pub fn drain(&self) -> Drain {
        Drain::new(self.site.clone(), &self.name)
    }
}

/// Tells a session when its server stops serving it: the server is drained (put in
/// maintenance by an operator, or marked down by the health checks, while another
/// server takes its letters), or the logged-in user's letter moved to another server.
/// Sessions then say goodbye (IMAP `* BYE`, POP3 `-ERR`) so that clients reconnect
/// through the alias, which names the server serving them now.
///
/// Only a change counts: a session opened on a server already drained is not ended
/// (its login gets a referral), but one open when the drain starts is.
pub struct Drain {
    site: Arc<Site>,
    server: String,
    changes: watch::Receiver<i64>,
    /// The logged-in user's letter (bucket), once there is one.
    bucket: Option<usize>,
    gone: bool,
}

impl Drain {
    pub fn new(site: Arc<Site>, server: &str) -> Drain {
        let changes = site.subscribe();
        let mut drain = Drain {
            site,
            server: server.to_string(),
            changes,
            bucket: None,
            gone: false,
        };
        drain.gone = drain.out_of_service();
        drain
    }

    /// Follows the session's user (after a login): the session also ends when that
    /// user's letter moves away from this server.
    pub fn follow(&mut self, username: Option<&str>) {
        let bucket = username.map(mailsite_shared::route::bucket_of);
        if bucket != self.bucket {
            self.bucket = bucket;
            self.gone = self.out_of_service();
        }
    }

    fn out_of_service(&self) -> bool {
        let view = self.site.view();
        view.map.drained(&self.server)
            || self
                .bucket
                .is_some_and(|bucket| view.map.owner(bucket).name != self.server)
    }

    /// Resolves when the server stops serving this session (never, if the site stops
    /// changing). Cancel-safe: it can be a branch of `select!` in a loop.
    pub async fn started(&mut self) {
        loop {
            if self.changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            let now = self.out_of_service();
            let started = now && !self.gone;
            self.gone = now;
            if started {
                return;
            }
        }
    }
}
