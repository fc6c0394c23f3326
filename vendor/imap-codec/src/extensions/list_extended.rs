//! IMAP4 LIST Command Extensions ([RFC 5258], LIST-EXTENDED), with RFC 6154's
//! `SPECIAL-USE` options and LIST-STATUS ([RFC 5819]): selection options, several
//! patterns and return options in the command, and the `CHILDINFO` extended data item in
//! the response.
//!
//! [RFC 5258]: https://www.rfc-editor.org/rfc/rfc5258
//! [RFC 5819]: https://www.rfc-editor.org/rfc/rfc5819

use alloc::vec::Vec;
use core::fmt::{self, Write};

use abnf_core::streaming::sp;
use imap_types::{
    core::{Atom, Vec1},
    extensions::list_extended::{
        ListReturnOption, ListSelectBaseOpt, ListSelectBaseOptExtension,
        ListSelectBaseOptExtensionTag, ListSelectOption, MboxListExtendedItem, TaggedExtComp,
        TaggedExtSimple, TaggedExtVal,
    },
    mailbox::ListMailbox,
};
use nom::{
    branch::alt,
    bytes::streaming::{tag, tag_no_case},
    combinator::{map, map_opt, value},
    multi::{separated_list0, separated_list1},
    sequence::{delimited, preceded, tuple},
};

use crate::{
    core::quoted,
    decode::IMAPResult,
    encode::{EncodeContext, EncodeIntoContext, utils::join_serializable},
    mailbox::list_mailbox,
    status::status_att,
};

/// ```abnf
/// list-select-opts = "(" [list-select-option *(SP list-select-option)] ")"
/// list-select-option = "SUBSCRIBED" / "REMOTE" / "RECURSIVEMATCH" / "SPECIAL-USE"
/// ```
pub(crate) fn list_select_opts(input: &[u8]) -> IMAPResult<&[u8], Vec<ListSelectOption>> {
    delimited(
        tag(b"("),
        separated_list0(
            sp,
            alt((
                value(ListSelectOption::Subscribed, tag_no_case(b"SUBSCRIBED")),
                value(ListSelectOption::Remote, tag_no_case(b"REMOTE")),
                value(
                    ListSelectOption::RecursiveMatch,
                    tag_no_case(b"RECURSIVEMATCH"),
                ),
                value(ListSelectOption::SpecialUse, tag_no_case(b"SPECIAL-USE")),
            )),
        ),
        tag(b")"),
    )(input)
}

/// ```abnf
/// mbox-or-pat = list-mailbox / patterns
/// patterns    = "(" list-mailbox *(SP list-mailbox) ")"
/// ```
///
/// The first pattern, and those after it.
pub(crate) fn mbox_or_pat(input: &[u8]) -> IMAPResult<&[u8], (ListMailbox, Vec<ListMailbox>)> {
    alt((
        map(
            delimited(tag(b"("), separated_list1(sp, list_mailbox), tag(b")")),
            |mut patterns| {
                let first = patterns.remove(0);
                (first, patterns)
            },
        ),
        map(list_mailbox, |pattern| (pattern, Vec::new())),
    ))(input)
}

/// ```abnf
/// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
/// return-option    = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option
/// status-option    = "STATUS" SP "(" status-att *(SP status-att) ")"
/// ```
pub(crate) fn list_return_opts(input: &[u8]) -> IMAPResult<&[u8], Vec<ListReturnOption>> {
    preceded(
        tag_no_case(b"RETURN ("),
        nom::sequence::terminated(
            separated_list0(
                sp,
                alt((
                    value(ListReturnOption::Subscribed, tag_no_case(b"SUBSCRIBED")),
                    value(ListReturnOption::Children, tag_no_case(b"CHILDREN")),
                    value(ListReturnOption::SpecialUse, tag_no_case(b"SPECIAL-USE")),
                    map(
                        delimited(
                            tag_no_case(b"STATUS ("),
                            separated_list1(sp, status_att),
                            tag(b")"),
                        ),
                        |items| ListReturnOption::Status(Vec1::unvalidated(items)),
                    ),
                )),
            ),
            tag(b")"),
        ),
    )(input)
}

/// The extended data items of a LIST response; of them only `CHILDINFO` is parsed.
///
/// ```abnf
/// mbox-list-extended = "(" [mbox-list-extended-item *(SP mbox-list-extended-item)] ")"
/// childinfo-extended-item = "CHILDINFO" SP "("
///     list-select-base-opt-quoted *(SP list-select-base-opt-quoted) ")"
/// list-select-base-opt-quoted = DQUOTE list-select-base-opt DQUOTE
/// ```
pub(crate) fn mbox_list_extended(input: &[u8]) -> IMAPResult<&[u8], Vec<MboxListExtendedItem>> {
    delimited(
        tag(b"("),
        separated_list0(
            sp,
            map(
                preceded(
                    tag_no_case(b"CHILDINFO ("),
                    nom::sequence::terminated(separated_list1(sp, base_opt_quoted), tag(b")")),
                ),
                |options| MboxListExtendedItem::ChildInfo(Vec1::unvalidated(options)),
            ),
        ),
        tag(b")"),
    )(input)
}

/// `list-select-base-opt-quoted`: `"SUBSCRIBED"` or another option's tag, quoted.
fn base_opt_quoted(input: &[u8]) -> IMAPResult<&[u8], ListSelectBaseOpt> {
    map_opt(quoted, |quoted| {
        let text = quoted.into_inner();
        if text.eq_ignore_ascii_case("SUBSCRIBED") {
            return Some(ListSelectBaseOpt::Subscribed);
        }
        let atom = Atom::try_from(alloc::string::String::from(text)).ok()?;
        Some(ListSelectBaseOpt::Extension(ListSelectBaseOptExtension {
            tag: ListSelectBaseOptExtensionTag::try_from(atom).ok()?,
            value: None,
        }))
    })(input)
}

impl EncodeIntoContext for ListSelectOption {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        ctx.write_str(match self {
            ListSelectOption::Subscribed => "SUBSCRIBED",
            ListSelectOption::Remote => "REMOTE",
            ListSelectOption::RecursiveMatch => "RECURSIVEMATCH",
            ListSelectOption::SpecialUse => "SPECIAL-USE",
        })
    }
}

impl EncodeIntoContext for ListReturnOption {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            ListReturnOption::Subscribed => ctx.write_str("SUBSCRIBED"),
            ListReturnOption::Children => ctx.write_str("CHILDREN"),
            ListReturnOption::SpecialUse => ctx.write_str("SPECIAL-USE"),
            ListReturnOption::Status(items) => {
                ctx.write_str("STATUS (")?;
                join_serializable(items.as_ref(), b" ", ctx)?;
                ctx.write_str(")")
            }
        }
    }
}

impl EncodeIntoContext for MboxListExtendedItem<'_> {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            MboxListExtendedItem::ChildInfo(options) => {
                ctx.write_str("CHILDINFO (")?;
                for (i, option) in options.as_ref().iter().enumerate() {
                    if i > 0 {
                        ctx.write_str(" ")?;
                    }
                    // An option's value has no place between the quotes.
                    match option {
                        ListSelectBaseOpt::Subscribed => ctx.write_str("\"SUBSCRIBED\"")?,
                        ListSelectBaseOpt::Extension(extension) => {
                            write!(ctx, "\"{}\"", extension.tag.inner().as_ref())?
                        }
                    }
                }
                ctx.write_str(")")
            }
            MboxListExtendedItem::Other { tag, value } => {
                tag.inner().encode_ctx(ctx)?;
                ctx.write_str(" ")?;
                value.encode_ctx(ctx)
            }
        }
    }
}

impl EncodeIntoContext for TaggedExtVal<'_> {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            TaggedExtVal::Simple(TaggedExtSimple::SequenceSet(set)) => set.encode_ctx(ctx),
            TaggedExtVal::Simple(TaggedExtSimple::Number(number)) => write!(ctx, "{number}"),
            TaggedExtVal::Comp(comp) => {
                ctx.write_str("(")?;
                if let Some(comp) = comp {
                    comp.encode_ctx(ctx)?;
                }
                ctx.write_str(")")
            }
        }
    }
}

impl EncodeIntoContext for TaggedExtComp<'_> {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            TaggedExtComp::Single(astring) => astring.encode_ctx(ctx),
            TaggedExtComp::Multi(comps) => join_serializable(comps.as_ref(), b" ", ctx),
            TaggedExtComp::Group(comp) => {
                ctx.write_str("(")?;
                comp.encode_ctx(ctx)?;
                ctx.write_str(")")
            }
        }
    }
}

/// `LIST` with the options and patterns of LIST-EXTENDED, as its parser reads them.
#[allow(clippy::type_complexity)]
pub(crate) fn list_extended_parts(
    input: &[u8],
) -> IMAPResult<
    &[u8],
    (
        Vec<ListSelectOption>,
        imap_types::mailbox::Mailbox,
        (ListMailbox, Vec<ListMailbox>),
        Vec<ListReturnOption>,
    ),
> {
    let mut parser = tuple((
        tag_no_case(b"LIST"),
        nom::combinator::opt(preceded(sp, list_select_opts)),
        sp,
        crate::mailbox::mailbox,
        sp,
        mbox_or_pat,
        nom::combinator::opt(preceded(sp, list_return_opts)),
    ));
    let (remaining, (_, selection, _, reference, _, patterns, ret)) = parser(input)?;
    Ok((
        remaining,
        (
            selection.unwrap_or_default(),
            reference,
            patterns,
            ret.unwrap_or_default(),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use alloc::{vec, vec::Vec};

    use imap_types::{
        command::{Command, CommandBody},
        core::{QuotedChar, Vec1},
        extensions::list_extended::{
            ListReturnOption, ListSelectBaseOpt, ListSelectOption, MboxListExtendedItem,
        },
        flag::FlagNameAttribute,
        mailbox::{ListMailbox, Mailbox},
        response::{Data, Response},
        status::StatusDataItemName,
    };

    use crate::{
        CommandCodec,
        decode::{CommandDecodeError, Decoder},
        testing::{kat_inverse_command, kat_inverse_response, known_answer_test_encode},
    };

    fn list(
        selection: Vec<ListSelectOption>,
        patterns: &[&'static str],
        ret: Vec<ListReturnOption>,
    ) -> Command<'static> {
        let mut patterns = patterns
            .iter()
            .map(|p| ListMailbox::try_from(*p).unwrap())
            .collect::<Vec<_>>();
        let first = patterns.remove(0);
        Command::new(
            "A",
            CommandBody::List {
                reference: Mailbox::try_from("").unwrap(),
                mailbox_wildcard: first,
                selection,
                more_wildcards: patterns,
                ret,
            },
        )
        .unwrap()
    }

    #[test]
    fn test_kat_inverse_command_list_extended() {
        use ListReturnOption as R;
        use ListSelectOption as S;
        kat_inverse_command(&[
            (
                b"A LIST \"\" *\r\n".as_ref(),
                b"".as_ref(),
                list(vec![], &["*"], vec![]),
            ),
            (
                b"A LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a% b/*) RETURN (CHILDREN)\r\n",
                b"",
                list(
                    vec![S::Subscribed, S::RecursiveMatch],
                    &["a%", "b/*"],
                    vec![R::Children],
                ),
            ),
            (
                b"A LIST (REMOTE SPECIAL-USE) \"\" % RETURN (SUBSCRIBED SPECIAL-USE)\r\n",
                b"",
                list(
                    vec![S::Remote, S::SpecialUse],
                    &["%"],
                    vec![R::Subscribed, R::SpecialUse],
                ),
            ),
            (
                b"A LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n",
                b"",
                list(
                    vec![],
                    &["%"],
                    vec![R::Status(
                        Vec1::try_from(vec![
                            StatusDataItemName::Messages,
                            StatusDataItemName::Unseen,
                        ])
                        .unwrap(),
                    )],
                ),
            ),
        ]);
    }

    #[test]
    fn test_list_extended_forms_that_read_as_plain_list() {
        // Empty options and one parenthesized pattern mean what the plain form does.
        for wire in [
            b"A LIST () \"\" (*)\r\n".as_ref(),
            b"A list \"\" * return ()\r\n",
        ] {
            let (rest, command) = CommandCodec::default().decode(wire).unwrap();
            assert!(rest.is_empty());
            assert_eq!(command, list(vec![], &["*"], vec![]), "{wire:?}");
        }
    }

    #[test]
    fn test_list_extended_unknown_options_are_refused() {
        for wire in [
            b"A LIST (IMAPTEST) \"\" \"\"\r\n".as_ref(),
            b"A LIST \"\" \"\" RETURN (IMAPTEST)\r\n",
            b"A LIST \"\" () \r\n",
            b"A LIST \"\" % RETURN (STATUS ())\r\n",
        ] {
            assert!(
                matches!(
                    CommandCodec::default().decode(wire),
                    Err(CommandDecodeError::Failed)
                ),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn test_kat_inverse_response_list_childinfo() {
        let childinfo = |name: &'static str, extended| {
            Response::Data(Data::List {
                items: vec![FlagNameAttribute::from(
                    imap_types::core::Atom::try_from("HasChildren").unwrap(),
                )],
                delimiter: Some(QuotedChar::try_from('/').unwrap()),
                mailbox: Mailbox::try_from(name).unwrap(),
                extended,
            })
        };
        kat_inverse_response(&[
            (
                b"* LIST (\\HasChildren) \"/\" Lists (CHILDINFO (\"SUBSCRIBED\"))\r\n".as_ref(),
                b"".as_ref(),
                childinfo(
                    "Lists",
                    vec![MboxListExtendedItem::ChildInfo(Vec1::from(
                        ListSelectBaseOpt::Subscribed,
                    ))],
                ),
            ),
            (
                b"* LIST (\\HasChildren) \"/\" Lists\r\n",
                b"",
                childinfo("Lists", vec![]),
            ),
        ]);
        // Lower case reads the same.
        let (_, lower) = crate::ResponseCodec::default()
            .decode(b"* LIST () \"/\" a (childinfo (\"subscribed\"))\r\n")
            .unwrap();
        let Response::Data(Data::List { extended, .. }) = lower else {
            panic!("{lower:?}")
        };
        assert_eq!(
            extended,
            vec![MboxListExtendedItem::ChildInfo(Vec1::from(
                ListSelectBaseOpt::Subscribed
            ))]
        );
        known_answer_test_encode((
            MboxListExtendedItem::ChildInfo(Vec1::from(ListSelectBaseOpt::Subscribed)),
            b"CHILDINFO (\"SUBSCRIBED\")".as_ref(),
        ));
    }
}
