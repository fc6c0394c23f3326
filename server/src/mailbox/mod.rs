//! The mailbox role: what `mail<letter>.<domain>` points at. The message store
//! ([`store`]) and LMTP intake from the sorters ([`lmtp`]); IMAP and POP3 build on them.

pub mod accept;
pub mod imap;
pub mod lmtp;
pub mod login;
pub mod pop3;
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
}

impl MailboxServer {
    /// What a session waits on to learn that this server is being drained.
    pub fn drain(&self) -> Drain {
        Drain::new(self.site.clone(), &self.name)
    }
}

/// Tells a session when its server is drained: put in maintenance by an operator, or
/// marked down by the health checks, while another server takes its letters. Sessions
/// then say goodbye (IMAP `* BYE`, POP3 `-ERR`) so that clients reconnect through the
/// alias, which names the server serving them now.
///
/// Only a change counts: a session opened on a server already drained is not ended
/// (its login gets a referral), but one open when the drain starts is.
pub struct Drain {
    site: Arc<Site>,
    server: String,
    changes: watch::Receiver<i64>,
    drained: bool,
}

impl Drain {
    pub fn new(site: Arc<Site>, server: &str) -> Drain {
        let changes = site.subscribe();
        let drained = site.view().map.drained(server);
        Drain {
            site,
            server: server.to_string(),
            changes,
            drained,
        }
    }

    /// Resolves when the server becomes drained (never, if the site stops changing).
    /// Cancel-safe: it can be a branch of `select!` in a loop.
    pub async fn started(&mut self) {
        loop {
            if self.changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            let now = self.site.view().map.drained(&self.server);
            let started = now && !self.drained;
            self.drained = now;
            if started {
                return;
            }
        }
    }
}
