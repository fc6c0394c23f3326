//! IMAP MULTIAPPEND Extension ([RFC 3502]).
//!
//! The parser and encoder are APPEND's own (`command::append`), which read and
//! write every `append-message` with this feature; here are their tests.
//!
//! [RFC 3502]: https://www.rfc-editor.org/rfc/rfc3502

#[cfg(test)]
mod tests {
    use alloc::vec;

    use imap_types::{
        command::{Command, CommandBody},
        core::Literal,
        extensions::{
            binary::{Literal8, LiteralOrLiteral8},
            multiappend::AppendMessage,
        },
        flag::Flag,
        mailbox::Mailbox,
    };

    use crate::{
        CommandCodec,
        decode::Decoder,
        testing::{kat_inverse_command, known_answer_test_encode},
    };

    fn literal(text: &'static str) -> LiteralOrLiteral8<'static> {
        LiteralOrLiteral8::Literal(Literal::try_from(text).unwrap())
    }

    #[test]
    fn test_kat_inverse_command_multiappend() {
        kat_inverse_command(&[
            (
                b"A APPEND INBOX {3}\r\none {3}\r\ntwo\r\n".as_ref(),
                b"".as_ref(),
                Command::new(
                    "A",
                    CommandBody::Append {
                        mailbox: Mailbox::Inbox,
                        flags: vec![],
                        date: None,
                        message: literal("one"),
                        more: vec![AppendMessage {
                            flags: vec![],
                            date: None,
                            message: literal("two"),
                        }],
                    },
                )
                .unwrap(),
            ),
            (
                b"A APPEND INBOX (\\Seen) {1}\r\na (\\Flagged \\Draft) {1}\r\nb ~{1}\r\nc\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Append {
                        mailbox: Mailbox::Inbox,
                        flags: vec![Flag::Seen],
                        date: None,
                        message: literal("a"),
                        more: vec![
                            AppendMessage {
                                flags: vec![Flag::Flagged, Flag::Draft],
                                date: None,
                                message: literal("b"),
                            },
                            AppendMessage {
                                flags: vec![],
                                date: None,
                                message: LiteralOrLiteral8::Literal8(Literal8 {
                                    data: b"c".as_ref().into(),
                                    mode: imap_types::core::LiteralMode::Sync,
                                }),
                            },
                        ],
                    },
                )
                .unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_kat_inverse_response_appenduid_set() {
        use core::num::NonZeroU32;

        use imap_types::{
            core::Text,
            extensions::uidplus::{UidElement, UidSet},
            response::{Code, Response, Status, StatusBody, StatusKind, Tagged},
        };

        use crate::testing::kat_inverse_response;

        let n = |n| NonZeroU32::new(n).unwrap();
        let tagged = |code| {
            Response::Status(Status::Tagged(Tagged {
                tag: imap_types::core::Tag::try_from("A").unwrap(),
                body: StatusBody {
                    kind: StatusKind::Ok,
                    code: Some(code),
                    text: Text::try_from("done").unwrap(),
                },
            }))
        };
        kat_inverse_response(&[
            (
                b"A OK [APPENDUID 7 3:4,9] done\r\n".as_ref(),
                b"".as_ref(),
                tagged(Code::AppendUids {
                    uid_validity: n(7),
                    uids: UidSet(
                        vec![UidElement::Range(n(3), n(4)), UidElement::Single(n(9))]
                            .try_into()
                            .unwrap(),
                    ),
                }),
            ),
            (
                b"A OK [APPENDUID 7 3] done\r\n",
                b"",
                tagged(Code::AppendUid {
                    uid_validity: n(7),
                    uid: n(3),
                }),
            ),
        ]);
    }

    #[test]
    fn test_one_message_has_no_more() {
        let (_, command) = CommandCodec::default()
            .decode(b"A APPEND INBOX {1}\r\na\r\n")
            .unwrap();
        let CommandBody::Append { more, .. } = command.body else {
            panic!("not an APPEND: {command:?}");
        };
        assert!(more.is_empty());
        // A message without its literal is no APPEND.
        assert!(
            CommandCodec::default()
                .decode(b"A APPEND INBOX {1}\r\na (\\Seen)\r\n")
                .is_err()
        );
    }

    #[test]
    fn test_encode_dates_and_flags_per_message() {
        let date = imap_types::datetime::DateTime::try_from(
            chrono::DateTime::parse_from_rfc2822("Sat, 24 Mar 2007 23:00:00 +0200").unwrap(),
        )
        .unwrap();
        known_answer_test_encode((
            Command::new(
                "B",
                CommandBody::Append {
                    mailbox: Mailbox::Inbox,
                    flags: vec![],
                    date: Some(date.clone()),
                    message: literal("x"),
                    more: vec![AppendMessage {
                        flags: vec![Flag::Answered],
                        date: Some(date),
                        message: literal("y"),
                    }],
                },
            )
            .unwrap(),
            b"B APPEND INBOX \"24-Mar-2007 23:00:00 +0200\" {1}\r\nx (\\Answered) \"24-Mar-2007 23:00:00 +0200\" {1}\r\ny\r\n".as_ref(),
        ));
    }
}
