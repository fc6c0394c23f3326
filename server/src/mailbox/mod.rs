//! The mailbox role: what `mail<letter>.<domain>` points at. So far the message store
//! ([`store`]); the IMAP, POP3 and LMTP front ends build on it.

pub mod store;
