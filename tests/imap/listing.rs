//! LIST and LSUB as RFC 3501 6.3.8-6.3.9 has them, with Python's imaplib: a pattern of
//! odd but valid atoms is answered (OK, nothing matches) rather than refused; LSUB
//! with `%` names the unsubscribed parent of a subscribed mailbox as `\Noselect`, with
//! `*` only what is subscribed, and forgets a mailbox once it is unsubscribed. And an
//! empty mailbox as Dovecot 2.3 answers it: `FETCH 1:*` BAD (no message set), `UID
//! FETCH 1:*` OK with nothing.

use crate::RAW_SESSION;
use crate::common::{Site, python};

#[test]
fn list_and_lsub_follow_rfc_3501() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let program = format!(
        "{RAW_SESSION}{}",
        r#"
m = connect()
out = {}
m.create("foo")
m.create("foo/bar")
# CREATE does not subscribe: foo stays an unsubscribed parent of a subscribed mailbox.
m.subscribe("foo/bar")
out["odd"] = raw(m, "LIST \"\" !#$$&'+,-.0123456789:;<=>?@^_`|[}%*")
out["lsub_percent"] = raw(m, 'LSUB "" "%"')
out["lsub_star"] = raw(m, 'LSUB "" "*"')
out["lsub_below"] = raw(m, 'LSUB "" "foo/%"')
m.unsubscribe("foo/bar")
out["lsub_after"] = raw(m, 'LSUB "" "*"')
out["lsub_percent_after"] = raw(m, 'LSUB "" "%"')
m.select("foo/bar")
out["empty_fetch"] = raw(m, "FETCH 1:* (FLAGS)")
out["empty_uid_fetch"] = raw(m, "UID FETCH 1:* (FLAGS)")
m.logout()
print(json.dumps(out))
"#
    );
    let out = python(&program, &[&site.addr(11), "alice", "alice-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The answers about foo (the default folders are subscribed too), and the tagged one.
    let lines = |key: &str| -> Vec<String> {
        let all: Vec<String> =
            serde_json::from_value(out[key].clone()).unwrap_or_else(|_| panic!("{key}: {out}"));
        all.into_iter()
            .filter(|l| !l.starts_with('*') || l.contains(" foo"))
            .collect()
    };
    let odd = lines("odd");
    assert_eq!(odd.len(), 1, "{odd:?}");
    assert!(odd[0].contains(" OK "), "{odd:?}");

    let percent = lines("lsub_percent");
    assert_eq!(percent.len(), 2, "{percent:?}");
    assert!(
        percent[0].starts_with("* LSUB (\\Noselect") && percent[0].ends_with("\"/\" foo"),
        "{percent:?}"
    );
    let star = lines("lsub_star");
    assert_eq!(star.len(), 2, "{star:?}");
    assert!(
        star[0].starts_with("* LSUB (") && star[0].ends_with(" foo/bar"),
        "{star:?}"
    );
    assert!(!star[0].contains("Noselect"), "{star:?}");
    let below = lines("lsub_below");
    assert!(
        below[0].ends_with(" foo/bar") && below.len() == 2,
        "{below:?}"
    );

    let empty = lines("empty_fetch");
    assert!(empty.len() == 1 && empty[0].contains(" BAD "), "{empty:?}");
    let empty = lines("empty_uid_fetch");
    assert!(empty.len() == 1 && empty[0].contains(" OK "), "{empty:?}");
    for key in ["lsub_after", "lsub_percent_after"] {
        let after = lines(key);
        assert_eq!(after.len(), 1, "{key}: {after:?}");
        assert!(after[0].contains(" OK "), "{after:?}");
    }
}

/// CREATE-SPECIAL-USE (RFC 6154) from imaplib: a mailbox made for a use (or two) is
/// listed with it; the virtual uses (\All, \Flagged) and unknown ones are refused with
/// `NO [USEATTR]` and nothing is made; a plain CREATE has no use.
#[test]
fn create_special_use_marks_the_new_mailbox() {
    let site = crate::alice_site();
    let out = crate::as_alice(
        &site,
        r#"
m = connect()
out = {}
out["capability"] = raw(m, "CAPABILITY")
out["archive"] = raw(m, "CREATE Old (USE (\\Archive))")
out["two"] = raw(m, "CREATE Bin (USE (\\trash \\Junk))")
out["all"] = raw(m, "CREATE Everything (USE (\\All))")
out["unknown"] = raw(m, "CREATE Mine (USE (\\Important))")
out["plain"] = raw(m, "CREATE Plain")
out["list"] = raw(m, 'LIST "" "*"')
m.logout()
print(json.dumps(out))
"#,
    );
    assert!(
        out.text("capability").contains(" CREATE-SPECIAL-USE"),
        "{}",
        out.text("capability")
    );
    for key in ["archive", "two", "plain"] {
        assert!(out.text(key).contains(" OK "), "{key}: {}", out.text(key));
    }
    for key in ["all", "unknown"] {
        assert!(
            out.text(key).contains(" NO [USEATTR] "),
            "{key}: {}",
            out.text(key)
        );
    }
    let list = out.text("list");
    out.has("list", "* LIST (\\HasNoChildren \\Archive) \"/\" Old");
    out.has("list", "* LIST (\\HasNoChildren \\Trash \\Junk) \"/\" Bin");
    out.has("list", "* LIST (\\HasNoChildren) \"/\" Plain");
    assert!(
        !list.contains("Everything") && !list.contains("Mine"),
        "{list}"
    );
}
