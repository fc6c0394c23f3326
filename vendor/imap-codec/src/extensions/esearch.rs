//! IMAP4 Extension to SEARCH Command for Controlling What Kind of Information Is Returned
//! ([RFC 4731]), with the `SAVE` result option of SEARCHRES ([RFC 5182]).
//!
//! [RFC 4731]: https://www.rfc-editor.org/rfc/rfc4731
//! [RFC 5182]: https://www.rfc-editor.org/rfc/rfc5182

use alloc::vec::Vec;
use core::fmt;

use abnf_core::streaming::sp;
use imap_types::{
    core::Tag,
    extensions::esearch::{SearchReturnData, SearchReturnOption},
    response::Data,
};
use nom::{
    branch::alt,
    bytes::streaming::{tag, tag_no_case},
    combinator::{map, map_opt, opt, value},
    multi::{many0, separated_list0},
    sequence::{delimited, preceded, tuple},
};

#[cfg(feature = "ext_condstore_qresync")]
use crate::extensions::condstore_qresync::mod_sequence_value;
use crate::{
    core::{number, nz_number, string},
    decode::IMAPResult,
    encode::{EncodeContext, EncodeIntoContext},
    sequence::sequence_set,
};

/// ```abnf
/// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
/// ```
///
/// [RFC 4466, section 2.6](https://www.rfc-editor.org/rfc/rfc4466#section-2.6).
pub(crate) fn search_return_opts(input: &[u8]) -> IMAPResult<&[u8], Vec<SearchReturnOption>> {
    preceded(
        tag_no_case(b" RETURN ("),
        nom::sequence::terminated(separated_list0(sp, search_return_opt), tag(b")")),
    )(input)
}

/// ```abnf
/// search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" /
///                     "SAVE" ; RFC 5182
/// ```
pub(crate) fn search_return_opt(input: &[u8]) -> IMAPResult<&[u8], SearchReturnOption> {
    alt((
        value(SearchReturnOption::Min, tag_no_case(b"MIN")),
        value(SearchReturnOption::Max, tag_no_case(b"MAX")),
        value(SearchReturnOption::All, tag_no_case(b"ALL")),
        value(SearchReturnOption::Count, tag_no_case(b"COUNT")),
        value(SearchReturnOption::Save, tag_no_case(b"SAVE")),
    ))(input)
}

/// ```abnf
/// esearch-response  = "ESEARCH" [search-correlator] [SP "UID"]
///                     *(SP search-return-data)
/// search-correlator = SP "(" "TAG" SP tag-string ")"
/// tag-string        = string
/// ```
pub(crate) fn esearch_response(input: &[u8]) -> IMAPResult<&[u8], Data> {
    let mut parser = tuple((
        tag_no_case(b"ESEARCH"),
        opt(delimited(
            tag_no_case(b" (TAG "),
            map_opt(string, |tag| Tag::try_from(tag.as_ref().to_vec()).ok()),
            tag(b")"),
        )),
        map(opt(tag_no_case(b" UID")), |uid| uid.is_some()),
        many0(preceded(sp, search_return_data)),
    ));

    let (remaining, (_, tag, uid, data)) = parser(input)?;

    Ok((remaining, Data::ESearch { tag, uid, data }))
}

/// ```abnf
/// search-return-data = "MIN" SP nz-number /
///                      "MAX" SP nz-number /
///                      "ALL" SP sequence-set /
///                      "COUNT" SP number /
///                      "MODSEQ" SP mod-sequence-value ; RFC 7162
/// ```
pub(crate) fn search_return_data(input: &[u8]) -> IMAPResult<&[u8], SearchReturnData> {
    alt((
        map(
            preceded(tag_no_case(b"MIN "), nz_number),
            SearchReturnData::Min,
        ),
        map(
            preceded(tag_no_case(b"MAX "), nz_number),
            SearchReturnData::Max,
        ),
        map(
            preceded(tag_no_case(b"ALL "), sequence_set),
            SearchReturnData::All,
        ),
        map(
            preceded(tag_no_case(b"COUNT "), number),
            SearchReturnData::Count,
        ),
        #[cfg(feature = "ext_condstore_qresync")]
        map(
            preceded(tag_no_case(b"MODSEQ "), mod_sequence_value),
            SearchReturnData::ModSeq,
        ),
    ))(input)
}

impl EncodeIntoContext for SearchReturnOption {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        ctx.write_all(self.as_str().as_bytes())
    }
}

impl EncodeIntoContext for SearchReturnData {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            Self::Min(number) => {
                ctx.write_all(b"MIN ")?;
                number.encode_ctx(ctx)
            }
            Self::Max(number) => {
                ctx.write_all(b"MAX ")?;
                number.encode_ctx(ctx)
            }
            Self::All(set) => {
                ctx.write_all(b"ALL ")?;
                set.encode_ctx(ctx)
            }
            Self::Count(count) => {
                ctx.write_all(b"COUNT ")?;
                count.encode_ctx(ctx)
            }
            #[cfg(feature = "ext_condstore_qresync")]
            Self::ModSeq(modseq) => {
                ctx.write_all(b"MODSEQ ")?;
                modseq.encode_ctx(ctx)
            }
        }
    }
}

/// Writes an `ESEARCH` response's data (after `* `).
pub(crate) fn encode_esearch(
    tag: Option<&Tag>,
    uid: bool,
    data: &[SearchReturnData],
    ctx: &mut EncodeContext,
) -> fmt::Result {
    ctx.write_all(b"ESEARCH")?;
    if let Some(tag) = tag {
        // A tag is made of ASTRING-CHARs other than "+": never a quote or a backslash.
        ctx.write_all(b" (TAG \"")?;
        ctx.write_all(tag.as_ref().as_bytes())?;
        ctx.write_all(b"\")")?;
    }
    if uid {
        ctx.write_all(b" UID")?;
    }
    for item in data {
        ctx.write_all(b" ")?;
        item.encode_ctx(ctx)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use core::num::NonZeroU32;

    use imap_types::{
        command::{Command, CommandBody},
        core::Vec1,
        response::Response,
        search::SearchKey,
        sequence::SequenceSet,
    };

    use super::*;
    #[cfg(feature = "ext_condstore_qresync")]
    use crate::testing::known_answer_test_encode;
    use crate::testing::{kat_inverse_command, kat_inverse_response};

    fn search(ret: Option<Vec<SearchReturnOption>>, uid: bool) -> CommandBody<'static> {
        CommandBody::Search {
            charset: None,
            criteria: Vec1::from(SearchKey::All),
            uid,
            ret,
        }
    }

    #[test]
    fn test_kat_inverse_command_search_return() {
        kat_inverse_command(&[
            (
                b"A SEARCH RETURN (MIN MAX) ALL\r\n".as_ref(),
                b"".as_ref(),
                Command::new(
                    "A",
                    search(
                        Some(vec![SearchReturnOption::Min, SearchReturnOption::Max]),
                        false,
                    ),
                )
                .unwrap(),
            ),
            (
                b"A UID SEARCH RETURN () ALL\r\n?",
                b"?",
                Command::new("A", search(Some(vec![]), true)).unwrap(),
            ),
            (
                b"A search return (count all save) all\r\n",
                b"",
                Command::new(
                    "A",
                    search(
                        Some(vec![
                            SearchReturnOption::Count,
                            SearchReturnOption::All,
                            SearchReturnOption::Save,
                        ]),
                        false,
                    ),
                )
                .unwrap(),
            ),
            (
                b"A SEARCH ALL\r\n",
                b"",
                Command::new("A", search(None, false)).unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_search_return_is_before_charset() {
        let (rest, got) =
            crate::search::search(b"SEARCH RETURN (COUNT) CHARSET UTF-8 ALL\r\n").unwrap();
        assert_eq!(rest, b"\r\n");
        let CommandBody::Search { charset, ret, .. } = got else {
            panic!("not a search: {got:?}");
        };
        assert!(charset.is_some());
        assert_eq!(ret, Some(vec![SearchReturnOption::Count]));
        // An unknown option and an unclosed list are no SEARCH.
        assert!(crate::search::search(b"SEARCH RETURN (PARTIAL 1:5) ALL\r\n").is_err());
        assert!(crate::search::search(b"SEARCH RETURN (MIN ALL\r\n").is_err());
    }

    #[test]
    fn test_kat_inverse_response_esearch() {
        let set = SequenceSet::try_from("1:3,5").unwrap();
        kat_inverse_response(&[
            (
                b"* ESEARCH (TAG \"A1\") UID MIN 1 MAX 5 ALL 1:3,5 COUNT 4\r\n".as_ref(),
                b"".as_ref(),
                Response::Data(Data::ESearch {
                    tag: Some(Tag::try_from("A1").unwrap()),
                    uid: true,
                    data: vec![
                        SearchReturnData::Min(NonZeroU32::new(1).unwrap()),
                        SearchReturnData::Max(NonZeroU32::new(5).unwrap()),
                        SearchReturnData::All(set),
                        SearchReturnData::Count(4),
                    ],
                }),
            ),
            (
                b"* ESEARCH (TAG \"x\")\r\n",
                b"",
                Response::Data(Data::ESearch {
                    tag: Some(Tag::try_from("x").unwrap()),
                    uid: false,
                    data: vec![],
                }),
            ),
            (
                b"* ESEARCH COUNT 0\r\n",
                b"",
                Response::Data(Data::ESearch {
                    tag: None,
                    uid: false,
                    data: vec![SearchReturnData::Count(0)],
                }),
            ),
        ]);
    }

    #[cfg(feature = "ext_condstore_qresync")]
    #[test]
    fn test_encode_esearch_modseq() {
        known_answer_test_encode((
            Data::ESearch {
                tag: Some(Tag::try_from("t").unwrap()),
                uid: false,
                data: vec![
                    SearchReturnData::Min(NonZeroU32::new(2).unwrap()),
                    SearchReturnData::ModSeq(core::num::NonZeroU64::new(917).unwrap()),
                ],
            },
            b"* ESEARCH (TAG \"t\") MIN 2 MODSEQ 917\r\n".as_ref(),
        ));
    }
}
