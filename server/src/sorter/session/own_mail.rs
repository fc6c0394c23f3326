//! What a session does for the site's own mail (a user's submission, or what a mailbox
//! server sends for a user): whose DKIM signatures it gets, and the signatures.

use super::{Port, Session};
use crate::sorter::incoming::Incoming;
use crate::sorter::message;

impl Session {
    /// The domain whose DKIM signature a message gets: its From: domain, when it is
    /// one of the site's and the message is the site's own (a user's submission, or an
    /// auto-reply or redirect of a mailbox server).
    pub(super) fn signing_domain(&self, header: &[u8]) -> Option<String> {
        let config = self.sorter.site.view().map.config.clone();
        if !self.own_mail() {
            return None;
        }
        let now = crate::dkim::now();
        message::from_domain(header).filter(|domain| {
            // A domain with no key signing now (none made yet, or only keys waiting
            // for their time) costs no read of the message.
            config.serves_domain(domain)
                && !self
                    .sorter
                    .site
                    .view()
                    .map
                    .dkim_signing(domain, now)
                    .is_empty()
        })
    }

    /// Whether the message is the site's own: a user's submission, or what a mailbox
    /// server sends for a user (auto-replies, redirects).
    pub(super) fn own_mail(&self) -> bool {
        self.user.is_some()
            || (self.port == Port::Mx
                && self
                    .sorter
                    .site
                    .view()
                    .config()
                    .is_mailbox_server(self.peer.ip()))
    }

    /// The DKIM-Signature header lines for the message in `incoming` with the headers
    /// `added` before it (off the async threads: RSA signing takes a while).
    pub(super) async fn signatures(
        &self,
        domain: &str,
        incoming: &mut Incoming,
        added: &str,
        now: u64,
    ) -> std::io::Result<String> {
        let message = incoming.message().await?;
        let (signer, map) = (self.sorter.dkim.clone(), self.sorter.site.snapshot());
        let (domain, added) = (domain.to_string(), added.to_string());
        tokio::task::spawn_blocking(move || {
            signer.sign(&map.map, &domain, &[added.as_bytes(), &message], now as i64)
        })
        .await
        .map_err(std::io::Error::other)
    }
}
