//! IMAP MULTIAPPEND Extension ([RFC 3502]): one APPEND with several messages, which
//! the server appends all or none of.
//!
//! [RFC 3502]: https://www.rfc-editor.org/rfc/rfc3502

use alloc::vec::Vec;

#[cfg(feature = "arbitrary")]
use arbitrary::Arbitrary;
use bounded_static_derive::ToStatic;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::{datetime::DateTime, extensions::binary::LiteralOrLiteral8, flag::Flag};

/// A message of an APPEND after its first, with its own flags and date.
///
/// ```abnf
/// append         = "APPEND" SP mailbox 1*append-message
/// append-message = append-opts SP append-data
/// append-opts    = [SP flag-list] [SP date-time] *(SP append-ext)
/// ```
#[cfg_attr(feature = "arbitrary", derive(Arbitrary))]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, ToStatic)]
pub struct AppendMessage<'a> {
    /// Flags.
    pub flags: Vec<Flag<'a>>,
    /// Datetime.
    pub date: Option<DateTime>,
    /// Message to append.
    pub message: LiteralOrLiteral8<'a>,
}
