//! The responses every command builds: tagged OK/NO/BAD, response codes, and the
//! store's errors worded for the user.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, CodeOther, Data, Response, Status};

use super::super::wire;
use crate::mailbox::store::StoreError;

pub(super) fn status(
    tag: Option<&Tag<'static>>,
    kind: &str,
    code: Option<Code<'static>>,
    text: &str,
) -> Response<'static> {
    let tag = tag.cloned();
    let text = wire::text(text);
    let status = match kind {
        "OK" => Status::ok(tag, code, text),
        "NO" => Status::no(tag, code, text),
        _ => Status::bad(tag, code, text),
    };
    Response::Status(status.unwrap_or_else(|never| match never {}))
}

pub(super) fn ok(tag: &Tag<'static>, text: &str) -> Response<'static> {
    status(Some(tag), "OK", None, text)
}

pub(super) fn no(tag: &Tag<'static>, text: &str) -> Response<'static> {
    status(Some(tag), "NO", None, text)
}

pub(super) fn bad(tag: &Tag<'static>, text: &str) -> Response<'static> {
    status(Some(tag), "BAD", None, text)
}

pub(super) fn other_code(code: &str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(code.as_bytes().to_vec()))
}

/// A store error as a tagged NO a user can act on.
pub(super) fn store_no(tag: &Tag<'static>, error: StoreError) -> Response<'static> {
    match error {
        StoreError::NoMailbox(name) => status(
            Some(tag),
            "NO",
            Some(Code::TryCreate),
            &format!("No mailbox {name}"),
        ),
        StoreError::Exists(name) => status(
            Some(tag),
            "NO",
            Some(other_code("ALREADYEXISTS")),
            &format!("Mailbox {name} already exists"),
        ),
        StoreError::Name(e) => no(tag, &format!("Refused: {e}")),
        StoreError::Refused(e) => no(tag, &e),
        StoreError::NoMessage(uid) => no(tag, &format!("No message with UID {uid}")),
        error @ (StoreError::BadUser(_)
        | StoreError::Io(_)
        | StoreError::Sql(_)
        | StoreError::Local(_)) => {
            tracing::warn!(%error, "IMAP store operation failed");
            status(
                Some(tag),
                "NO",
                Some(other_code("SERVERBUG")),
                "The mailbox store failed; try again later",
            )
        }
    }
}

pub(super) fn data(data: Data<'static>) -> Response<'static> {
    Response::Data(data)
}
