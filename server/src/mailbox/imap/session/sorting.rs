//! SORT and THREAD (RFC 5256) on the selected mailbox: the messages SEARCH would find,
//! ordered or threaded by [`super::super::sort`].

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::search::SearchKey;

use super::super::sort::{self, Keys};
use super::Session;
use super::messages::Matched;
use super::responses::{bad, data, ok};
use crate::mailbox::store::MessageInfo;

impl Session {
    pub(super) async fn sort(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        criteria: &Vec1<SortCriterion>,
        charset: &Charset<'static>,
        search: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Vec<Response<'static>> {
        if !sort::supported(criteria.as_ref()) {
            return vec![bad(
                tag,
                "DISPLAYFROM and DISPLAYTO are not available (no SORT=DISPLAY)",
            )];
        }
        let keys = match self.keys(tag, user, charset, search, by_uid).await {
            Ok(keys) => keys,
            Err(refusal) => return refusal,
        };
        let modseq = self.highest_found(search.as_ref(), keys.iter().map(|k| k.modseq));
        let sorted = sort::sort(keys, criteria.as_ref());
        vec![
            data(Data::Sort(sorted, modseq)),
            ok(
                tag,
                if by_uid {
                    "UID SORT completed"
                } else {
                    "SORT completed"
                },
            ),
        ]
    }

    pub(super) async fn thread(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        algorithm: &ThreadingAlgorithm<'static>,
        charset: &Charset<'static>,
        search: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Vec<Response<'static>> {
        let threading: fn(Vec<Keys>) -> _ = match algorithm {
            ThreadingAlgorithm::OrderedSubject => sort::ordered_subject,
            ThreadingAlgorithm::References => sort::references,
            ThreadingAlgorithm::Other(_) => {
                return vec![bad(
                    tag,
                    "Unknown threading algorithm: ORDEREDSUBJECT and REFERENCES are offered",
                )];
            }
        };
        let keys = match self.keys(tag, user, charset, search, by_uid).await {
            Ok(keys) => keys,
            Err(refusal) => return refusal,
        };
        vec![
            data(Data::Thread(threading(keys))),
            ok(
                tag,
                if by_uid {
                    "UID THREAD completed"
                } else {
                    "THREAD completed"
                },
            ),
        ]
    }

    /// The sort keys of the messages `search` matches.
    async fn keys(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        charset: &Charset<'static>,
        search: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Result<Vec<Keys>, Vec<Response<'static>>> {
        let found: Vec<Matched> = self
            .matching(tag, user, Some(charset.as_ref()), search)
            .await?;
        let Some(mailbox) = self.selected.as_ref().map(|s| s.name.clone()) else {
            return Err(vec![bad(tag, "Select a mailbox first")]);
        };
        let infos: Vec<&MessageInfo> = found.iter().map(|m| &m.info).collect();
        let headers = self.headers_of(tag, user, &mailbox, &infos).await?;
        Ok(found
            .iter()
            .zip(headers)
            .map(|(m, header)| {
                let number = if by_uid { m.info.uid } else { m.seq };
                Keys::of(number, m.seq, &m.info, header.as_deref())
            })
            .collect())
    }
}
