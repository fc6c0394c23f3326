//! IMAP4 Extension to SEARCH Command for Controlling What Kind of Information Is Returned
//! ([RFC 4731]), with the `SAVE` result option of SEARCHRES ([RFC 5182]).
//!
//! `SEARCH RETURN (MIN MAX ALL COUNT SAVE) ...` asks for an `ESEARCH` response instead
//! of the `SEARCH` list of every matching number.
//!
//! [RFC 4731]: https://www.rfc-editor.org/rfc/rfc4731
//! [RFC 5182]: https://www.rfc-editor.org/rfc/rfc5182

use core::num::NonZeroU32;
#[cfg(feature = "ext_condstore_qresync")]
use core::num::NonZeroU64;

#[cfg(feature = "arbitrary")]
use arbitrary::Arbitrary;
use bounded_static_derive::ToStatic;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::sequence::SequenceSet;

/// What a client asks an extended SEARCH to return.
///
/// ```abnf
/// search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" /
///                     "SAVE" ; RFC 5182
/// ```
///
/// An empty list of options (`RETURN ()`) is the same as `RETURN (ALL)`.
#[cfg_attr(feature = "arbitrary", derive(Arbitrary))]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToStatic)]
pub enum SearchReturnOption {
    /// The lowest matching number.
    Min,
    /// The highest matching number.
    Max,
    /// Every matching number, as a sequence set.
    All,
    /// How many messages match.
    Count,
    /// Keep the result for later commands to refer to as `$` (RFC 5182).
    Save,
}

impl SearchReturnOption {
    /// The option's name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Min => "MIN",
            Self::Max => "MAX",
            Self::All => "ALL",
            Self::Count => "COUNT",
            Self::Save => "SAVE",
        }
    }
}

/// One item of an `ESEARCH` response.
///
/// ```abnf
/// search-return-data = "MIN" SP nz-number /
///                      "MAX" SP nz-number /
///                      "ALL" SP sequence-set /
///                      "COUNT" SP number /
///                      "MODSEQ" SP mod-sequence-value ; RFC 7162
/// ```
#[cfg_attr(feature = "arbitrary", derive(Arbitrary))]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", content = "content"))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, ToStatic)]
pub enum SearchReturnData {
    /// The lowest matching number.
    Min(NonZeroU32),
    /// The highest matching number.
    Max(NonZeroU32),
    /// Every matching number.
    All(SequenceSet),
    /// How many messages match.
    Count(u32),
    /// The highest mod-sequence of the messages returned (RFC 7162, section 3.1.5).
    #[cfg(feature = "ext_condstore_qresync")]
    ModSeq(NonZeroU64),
}
