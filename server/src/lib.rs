//! The `mailsite` server: one binary, one module tree per role.
//!
//! - [`admin`]: every operation that changes the site, under the CLI and the console;
//! - [`autoconfig`]: the HTTP service clients configure themselves from;
//! - [`console`]: the helpdesk console operators use in a browser, beside autoconfig;
//! - [`dns`]: the authoritative alias DNS;
//! - [`directory`]: users, letter moves and server states in SQL;
//! - [`mailbox`]: the message store (Maildir bodies, SQL metadata);
//! - [`sorter`]: SMTP (MX and submission), the durable queue, delivery over LMTP;
//! - [`sasl`]: the PLAIN and LOGIN exchanges of SMTP AUTH, POP3 AUTH and IMAP
//!   AUTHENTICATE;
//! - [`state`]: the live site every role reads;
//! - [`throttle`]: login throttling and blocks across connections, for every protocol;
//! - [`health`]: the checks that mark failed servers down and recovered ones up;
//! - [`helpdesk`]: reading desktop helper reports against the site's truth;
//! - [`http`]: the HTTP listeners and threads the HTTP roles are served on;
//! - [`cli`] and [`serve`]: the command line and the process that runs the roles;
//! - `fuzzing`: the entry points of the fuzz targets in `server/fuzz/`, compiled only
//!   for tests and for fuzzing builds (the `fuzzing` feature).

pub mod admin;
pub mod autoconfig;
pub mod cli;
pub mod console;
pub mod directory;
pub mod dkim;
pub mod dns;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod health;
pub mod helpdesk;
pub mod http;
pub mod mailbox;
pub mod metrics;
pub mod sasl;
pub mod serve;
pub mod sorter;
pub mod state;
pub mod throttle;
pub mod tls;

/// A real PostgreSQL for the unit tests that run on both databases (the end-to-end
/// tests' support file, see `tests/common/postgres.rs`).
#[cfg(test)]
#[path = "../../tests/common/postgres.rs"]
pub(crate) mod test_postgres;

/// The test that keeps top-level modules free of circles.
#[cfg(test)]
mod module_graph;
