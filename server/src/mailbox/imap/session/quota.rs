//! QUOTA (RFC 9208): one quota root, `""`, over all of a user's mailboxes, with the
//! STORAGE (in units of 1024 octets) and MESSAGE resources the operators set;
//! GETQUOTA and GETQUOTAROOT read it, SETQUOTA is the operators' (`mailsite user
//! quota`), and APPEND and COPY that would go over it get `NO [OVERQUOTA]`.

use imap_codec::imap_types::core::{AString, Quoted, Tag, Vec1};
use imap_codec::imap_types::extensions::quota::{QuotaGet, Resource};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response};

use super::Session;
use super::responses::{data, no, ok, status, store_no};
use crate::mailbox::quota::{Standing, room, standing};

/// The name of the one quota root.
const ROOT: &str = "";

fn root() -> AString<'static> {
    AString::from(Quoted::unvalidated(ROOT))
}

/// The resources of a quota, as QUOTA lists them; none when nothing is limited.
fn resources(standing: &Standing) -> Vec<QuotaGet<'static>> {
    let Standing { quota, usage } = standing;
    let mut out = Vec::new();
    if quota.storage > 0 {
        out.push(QuotaGet::new(
            Resource::Storage,
            usage.storage / 1024,
            quota.storage / 1024,
        ));
    }
    if quota.messages > 0 {
        out.push(QuotaGet::new(
            Resource::Message,
            usage.messages,
            quota.messages,
        ));
    }
    out
}

impl Session {
    /// `NO [OVERQUOTA]` (or a NO saying the check failed) when `messages` more
    /// messages of `storage` octets do not fit in the user's quota.
    pub(super) async fn over_quota(
        &self,
        tag: &Tag<'static>,
        user: &str,
        storage: u64,
        messages: u64,
    ) -> Option<Response<'static>> {
        match room(&self.site.directory, &self.store, user, storage, messages).await {
            Ok(Ok(())) => None,
            Ok(Err(exceeded)) => Some(status(
                Some(tag),
                "NO",
                Some(Code::OverQuota),
                &format!("{exceeded}; delete some mail, or ask the site's helpdesk for more room"),
            )),
            Err(e) => Some(store_no(tag, e)),
        }
    }

    async fn quota_data(
        &self,
        tag: &Tag<'static>,
        user: &str,
    ) -> Result<Option<Data<'static>>, Response<'static>> {
        let standing = standing(&self.site.directory, &self.store, user)
            .await
            .map_err(|e| store_no(tag, e))?;
        Ok(Vec1::try_from(resources(&standing))
            .ok()
            .map(|quotas| Data::Quota {
                root: root(),
                quotas,
            }))
    }

    /// GETQUOTAROOT: the mailbox's one root (none when the user has no limit), and it.
    pub(super) async fn get_quota_root(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
    ) -> Vec<Response<'static>> {
        let name = match super::super::wire::mailbox_name(mailbox, self.names()) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        if let Err(e) = self.store.mailbox(user, &name).await {
            return vec![store_no(tag, e)];
        }
        let quota = match self.quota_data(tag, user).await {
            Ok(quota) => quota,
            Err(refusal) => return vec![refusal],
        };
        let roots = if quota.is_some() {
            vec![root()]
        } else {
            Vec::new()
        };
        let mut out = vec![data(Data::QuotaRoot {
            mailbox: mailbox.clone(),
            roots,
        })];
        out.extend(quota.map(data));
        out.push(ok(tag, "GETQUOTAROOT completed"));
        out
    }

    /// GETQUOTA: the one root's limits and usage.
    pub(super) async fn get_quota(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        asked: &AString<'static>,
    ) -> Vec<Response<'static>> {
        let quota = match self.quota_data(tag, user).await {
            Ok(quota) => quota,
            Err(refusal) => return vec![refusal],
        };
        match quota {
            Some(quota) if asked.as_ref() == ROOT.as_bytes() => {
                vec![data(quota), ok(tag, "GETQUOTA completed")]
            }
            _ => vec![no(tag, "No such quota root")],
        }
    }
}
