//! ESEARCH (RFC 4731): `SEARCH RETURN (MIN MAX ALL COUNT) ...` answers with one
//! `ESEARCH` line of what was asked for instead of every matching number, and with
//! CONDSTORE a MODSEQ for what it returns (RFC 7162 3.1.5).

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::esearch::{SearchReturnData, SearchReturnOption};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::search::SearchKey;

use super::super::wire;
use super::Session;
use super::responses::{data, ok};

/// A SEARCH as the client sent it.
pub(super) struct Request<'a> {
    pub charset: Option<&'a str>,
    pub criteria: &'a Vec1<SearchKey<'static>>,
    pub by_uid: bool,
    pub options: &'a [SearchReturnOption],
}

impl Session {
    pub(super) async fn esearch(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        request: Request<'_>,
    ) -> Vec<Response<'static>> {
        let save = request.options.contains(&SearchReturnOption::Save);
        let found = match self
            .matching(tag, user, request.charset, request.criteria)
            .await
        {
            Ok(found) => found,
            Err(refusal) => {
                // A SEARCH with SAVE that fails leaves `$` empty (RFC 5182 2.1).
                if save && let Some(selected) = self.selected.as_mut() {
                    selected.saved.clear();
                }
                return refusal;
            }
        };
        if save && let Some(selected) = self.selected.as_mut() {
            selected.saved = saved_uids(&found, request.options);
        }
        let with_modseq = self.searches_modseq(request.criteria.as_ref());
        let found: Vec<(u32, u64)> = found
            .iter()
            .map(|m| {
                let number = if request.by_uid { m.info.uid } else { m.seq };
                (number, m.info.modseq)
            })
            .collect();
        let done = ok(
            tag,
            if request.by_uid {
                "UID SEARCH completed"
            } else {
                "SEARCH completed"
            },
        );
        // SAVE alone saves and answers nothing but OK (RFC 5182 2.4).
        if request.options == [SearchReturnOption::Save] {
            return vec![done];
        }
        let items = return_data(&found, request.options, with_modseq);
        vec![
            data(Data::ESearch {
                tag: Some(tag.clone()),
                uid: request.by_uid,
                data: items,
            }),
            done,
        ]
    }
}

/// What `SEARCH RETURN (SAVE ...)` keeps for `$`, as ascending UIDs: every match, or
/// only the MIN and MAX message when those are asked for without ALL or COUNT
/// (RFC 5182 2.4).
fn saved_uids(found: &[super::messages::Matched], options: &[SearchReturnOption]) -> Vec<u32> {
    let wants = |option| options.contains(&option);
    let ends_only = (wants(SearchReturnOption::Min) || wants(SearchReturnOption::Max))
        && !wants(SearchReturnOption::All)
        && !wants(SearchReturnOption::Count);
    let mut uids: Vec<u32> = if ends_only {
        let first = found.first().filter(|_| wants(SearchReturnOption::Min));
        let last = found.last().filter(|_| wants(SearchReturnOption::Max));
        first.into_iter().chain(last).map(|m| m.info.uid).collect()
    } else {
        found.iter().map(|m| m.info.uid).collect()
    };
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// The items of an ESEARCH answer for `found` (numbers in ascending order, each with
/// its MODSEQ). No MIN, MAX or ALL when nothing matched; COUNT always. With
/// `with_modseq`, the highest MODSEQ of the messages returned: of the MIN and MAX
/// message when only those are asked for, of every match with ALL or COUNT.
pub(super) fn return_data(
    found: &[(u32, u64)],
    options: &[SearchReturnOption],
    with_modseq: bool,
) -> Vec<SearchReturnData> {
    let all = options.is_empty() || options.contains(&SearchReturnOption::All);
    let wants = |option| options.contains(&option);
    let mut items = Vec::new();
    let mut returned: Vec<u64> = Vec::new();
    if wants(SearchReturnOption::Min)
        && let Some(&(first, modseq)) = found.first()
        && let Some(first) = NonZeroU32::new(first)
    {
        items.push(SearchReturnData::Min(first));
        returned.push(modseq);
    }
    if wants(SearchReturnOption::Max)
        && let Some(&(last, modseq)) = found.last()
        && let Some(last) = NonZeroU32::new(last)
    {
        items.push(SearchReturnData::Max(last));
        returned.push(modseq);
    }
    if all {
        let numbers: Vec<u32> = found.iter().map(|&(n, _)| n).collect();
        if let Some(set) = wire::sequence_set(&numbers) {
            items.push(SearchReturnData::All(set));
        }
    }
    if wants(SearchReturnOption::Count) {
        items.push(SearchReturnData::Count(found.len() as u32));
    }
    if all || wants(SearchReturnOption::Count) {
        returned.extend(found.iter().map(|&(_, modseq)| modseq));
    }
    if with_modseq && let Some(highest) = returned.into_iter().max().and_then(NonZeroU64::new) {
        items.push(SearchReturnData::ModSeq(highest));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use SearchReturnOption::{All, Count, Max, Min};
    use imap_codec::encode::Encoder;
    use imap_codec::imap_types::response::Data;

    fn wire_of(found: &[(u32, u64)], options: &[SearchReturnOption], modseq: bool) -> String {
        let data = Data::ESearch {
            tag: Some(Tag::try_from("t").unwrap()),
            uid: false,
            data: return_data(found, options, modseq),
        };
        let bytes = imap_codec::ResponseCodec::default()
            .encode(&Response::Data(data))
            .dump();
        String::from_utf8(bytes).unwrap().trim_end().to_string()
    }

    #[test]
    fn each_option_returns_its_item_and_an_empty_list_means_all() {
        let found = [(1, 10), (2, 30), (3, 20), (5, 5)];
        assert_eq!(
            wire_of(&found, &[], false),
            "* ESEARCH (TAG \"t\") ALL 1:3,5"
        );
        assert_eq!(
            wire_of(&found, &[Min, Max, Count], false),
            "* ESEARCH (TAG \"t\") MIN 1 MAX 5 COUNT 4"
        );
        assert_eq!(
            wire_of(&found, &[Count, All], false),
            "* ESEARCH (TAG \"t\") ALL 1:3,5 COUNT 4"
        );
    }

    #[test]
    fn nothing_found_gives_only_a_count() {
        assert_eq!(
            wire_of(&[], &[Min, Max, All], true),
            "* ESEARCH (TAG \"t\")"
        );
        assert_eq!(
            wire_of(&[], &[Count], true),
            "* ESEARCH (TAG \"t\") COUNT 0"
        );
    }

    #[test]
    fn modseq_is_the_highest_of_what_is_returned() {
        let found = [(1, 10), (2, 30), (3, 20)];
        // MIN alone: the first message's; MIN and MAX: the higher of the two.
        assert_eq!(
            wire_of(&found, &[Min], true),
            "* ESEARCH (TAG \"t\") MIN 1 MODSEQ 10"
        );
        assert_eq!(
            wire_of(&found, &[Min, Max], true),
            "* ESEARCH (TAG \"t\") MIN 1 MAX 3 MODSEQ 20"
        );
        // ALL or COUNT: the highest of every match.
        assert_eq!(
            wire_of(&found, &[Count], true),
            "* ESEARCH (TAG \"t\") COUNT 3 MODSEQ 30"
        );
        assert_eq!(
            wire_of(&found, &[Max], false),
            "* ESEARCH (TAG \"t\") MAX 3"
        );
    }
}
