//! IMAP LIST Extension for Special-Use Mailboxes ([RFC 6154]): the `USE` parameter
//! of CREATE (CREATE-SPECIAL-USE).
//!
//! [RFC 6154]: https://www.rfc-editor.org/rfc/rfc6154

use alloc::vec::Vec;

use abnf_core::streaming::sp;
use imap_types::flag::FlagNameAttribute;
use nom::{
    bytes::streaming::{tag, tag_no_case},
    character::streaming::char,
    combinator::map,
    multi::separated_list0,
    sequence::{delimited, preceded},
};

use crate::{core::atom, decode::IMAPResult};

/// ```abnf
/// create-params = SP "(" create-param *(SP create-param) ")"
/// create-param  =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"
/// use-attr      = "\All" / "\Archive" / "\Drafts" / "\Flagged" /
///                 "\Junk" / "\Sent" / "\Trash" / use-attr-ext
/// use-attr-ext  = "\" atom
/// ```
pub(crate) fn create_params(input: &[u8]) -> IMAPResult<&[u8], Vec<FlagNameAttribute>> {
    delimited(
        tag_no_case(b" (USE ("),
        separated_list0(sp, use_attr),
        tag(b"))"),
    )(input)
}

/// `use-attr = "\" atom`
fn use_attr(input: &[u8]) -> IMAPResult<&[u8], FlagNameAttribute> {
    map(preceded(char('\\'), atom), FlagNameAttribute::from)(input)
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use imap_types::{
        command::{Command, CommandBody},
        core::Atom,
        flag::FlagNameAttribute,
        mailbox::Mailbox,
    };

    use crate::{CommandCodec, decode::Decoder, testing::kat_inverse_command};

    fn attr(name: &'static str) -> FlagNameAttribute<'static> {
        FlagNameAttribute::from(Atom::try_from(name).unwrap())
    }

    #[test]
    fn test_kat_inverse_create_special_use() {
        kat_inverse_command(&[
            (
                b"A CREATE MySpecialArchive (USE (\\Archive))\r\n".as_ref(),
                b"".as_ref(),
                Command::new(
                    "A",
                    CommandBody::Create {
                        mailbox: Mailbox::try_from("MySpecialArchive").unwrap(),
                        special_use: vec![attr("Archive")],
                    },
                )
                .unwrap(),
            ),
            (
                b"A create Stuff (use (\\Drafts \\Sent))\r\n?",
                b"?",
                Command::new(
                    "A",
                    CommandBody::Create {
                        mailbox: Mailbox::try_from("Stuff").unwrap(),
                        special_use: vec![attr("Drafts"), attr("Sent")],
                    },
                )
                .unwrap(),
            ),
            (
                b"A CREATE Plain\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Create {
                        mailbox: Mailbox::try_from("Plain").unwrap(),
                        special_use: vec![],
                    },
                )
                .unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_other_create_params_are_not_parsed() {
        for input in [
            b"A CREATE x (FOO bar)\r\n".as_ref(),
            b"A CREATE x (USE (Drafts))\r\n",
            b"A CREATE x (USE (\\Drafts)\r\n",
        ] {
            assert!(
                CommandCodec::default().decode(input).is_err(),
                "{}",
                alloc::string::String::from_utf8_lossy(input)
            );
        }
    }
}
