//! The mailbox role: what `mail<letter>.<domain>` points at. The message store
//! ([`store`]) and LMTP intake from the sorters ([`lmtp`]); IMAP and POP3 build on them.

pub mod accept;
pub mod imap;
pub mod lmtp;
pub mod login;
pub mod pop3;
pub mod store;

use std::sync::Arc;

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
