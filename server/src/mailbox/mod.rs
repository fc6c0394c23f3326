//! The mailbox role: what `mail<letter>.<domain>` points at. The message store
//! ([`store`]) and LMTP intake from the sorters ([`lmtp`]); IMAP and POP3 build on them.

pub mod accept;
pub mod imap;
pub mod lmtp;
pub mod login;
pub mod pop3;
pub mod store;
