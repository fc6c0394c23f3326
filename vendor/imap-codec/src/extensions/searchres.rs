//! IMAP Extension for Referencing the Last SEARCH Result ([RFC 5182], SEARCHRES): `$` as a
//! sequence set, for the messages that the last `SEARCH RETURN (SAVE)` found.
//!
//! ```abnf
//! sequence-set     =/ seq-last-command
//! seq-last-command = "$"
//! ```
//!
//! `$` is parsed by `sequence_set` (so it goes wherever a sequence set does: FETCH, STORE,
//! COPY, MOVE, UID EXPUNGE and the sequence-set and `UID` search keys) as
//! [`Sequence::LastCommand`](imap_types::sequence::Sequence::LastCommand), the only element
//! of its set. `SAVE` itself is a return option of ESEARCH (`ext_esearch`).
//!
//! [RFC 5182]: https://www.rfc-editor.org/rfc/rfc5182

#[cfg(test)]
mod tests {
    use alloc::vec;

    use imap_types::{
        command::{Command, CommandBody},
        core::Vec1,
        fetch::{Macro, MacroOrMessageDataItemNames},
        mailbox::Mailbox,
        search::SearchKey,
        sequence::{Sequence, SequenceSet},
    };

    use crate::{
        CommandCodec,
        decode::Decoder,
        sequence::sequence_set,
        testing::{kat_inverse_command, known_answer_test_encode},
    };

    #[test]
    fn test_parse_last_command_is_a_whole_set() {
        assert_eq!(
            sequence_set(b"$ ").unwrap(),
            (b" ".as_ref(), SequenceSet::last_command())
        );
        // Not an element of a list: `$` ends the set, and what follows is left.
        assert_eq!(
            sequence_set(b"$,1 ").unwrap(),
            (b",1 ".as_ref(), SequenceSet::last_command())
        );
        let (rest, set) = sequence_set(b"1,$ ").unwrap();
        assert_eq!(rest, b",$ ");
        assert!(!set.is_last_command());
        assert!(SequenceSet::last_command().is_last_command());
        assert_eq!(
            "$".parse::<SequenceSet>().unwrap(),
            SequenceSet::last_command()
        );
    }

    #[test]
    fn test_encode_last_command() {
        known_answer_test_encode((SequenceSet::last_command(), b"$".as_ref()));
        known_answer_test_encode((Sequence::LastCommand, b"$".as_ref()));
    }

    #[test]
    fn test_last_command_expands_to_nothing_and_is_not_normalized() {
        let mut set = SequenceSet::last_command();
        set.normalize();
        assert_eq!(set, SequenceSet::last_command());
        let largest = 10.try_into().unwrap();
        assert_eq!(set.iter(largest).count(), 0);
    }

    #[test]
    fn test_kat_inverse_command_last_command() {
        kat_inverse_command(&[
            (
                b"A FETCH $ (FLAGS)\r\n".as_ref(),
                b"".as_ref(),
                Command::new(
                    "A",
                    CommandBody::Fetch {
                        sequence_set: SequenceSet::last_command(),
                        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(
                            vec![imap_types::fetch::MessageDataItemName::Flags],
                        ),
                        uid: false,
                        #[cfg(feature = "ext_condstore_qresync")]
                        modifiers: vec![],
                    },
                )
                .unwrap(),
            ),
            (
                b"A UID FETCH $ FAST\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Fetch {
                        sequence_set: SequenceSet::last_command(),
                        macro_or_item_names: MacroOrMessageDataItemNames::Macro(Macro::Fast),
                        uid: true,
                        #[cfg(feature = "ext_condstore_qresync")]
                        modifiers: vec![],
                    },
                )
                .unwrap(),
            ),
            (
                b"A UID COPY $ Trash\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Copy {
                        sequence_set: SequenceSet::last_command(),
                        mailbox: Mailbox::try_from("Trash").unwrap(),
                        uid: true,
                    },
                )
                .unwrap(),
            ),
            (
                b"A UID SEARCH UID $ UNSEEN\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Search {
                        charset: None,
                        criteria: Vec1::try_from(vec![
                            SearchKey::Uid(SequenceSet::last_command()),
                            SearchKey::Unseen,
                        ])
                        .unwrap(),
                        uid: true,
                        #[cfg(feature = "ext_esearch")]
                        ret: None,
                    },
                )
                .unwrap(),
            ),
            (
                b"A SEARCH $\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Search {
                        charset: None,
                        criteria: Vec1::from(SearchKey::SequenceSet(SequenceSet::last_command())),
                        uid: false,
                        #[cfg(feature = "ext_esearch")]
                        ret: None,
                    },
                )
                .unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_last_command_in_a_list_is_refused() {
        assert!(
            CommandCodec::default()
                .decode(b"A FETCH 1,$ FLAGS\r\n")
                .is_err()
        );
        assert!(
            CommandCodec::default()
                .decode(b"A FETCH $,1 FLAGS\r\n")
                .is_err()
        );
        assert!(
            CommandCodec::default()
                .decode(b"A FETCH $:3 FLAGS\r\n")
                .is_err()
        );
    }
}
