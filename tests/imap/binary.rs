//! BINARY (RFC 3516) as a client uses it, from Python: APPEND of a message whose
//! attachment is sent raw (`~{n}` and `Content-Transfer-Encoding: binary`, NULs in
//! it), then FETCH BINARY.PEEK[n] of each part with its transfer encoding undone
//! (`~{n}` when it holds NUL), BINARY.SIZE, a partial range with its origin, BODY[n]
//! that never shows the raw bytes, BINARY (without PEEK) setting \Seen, and `NO
//! [UNKNOWN-CTE]` for an encoding the server does not know.

use crate::{alice_site, as_alice};

const PROGRAM: &str = r#"
out = {}
m = connect()
raw_part = b"\x00\xe4-\r\n\x00\xff"
message = (
    b"From: a@example.org\r\nSubject: binary\r\nMime-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9 =\r\nau lait\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    + raw_part +
    b"\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    b"begin 644 x\r\n--b--\r\n"
)
out["capability"] = raw(m, "CAPABILITY")
tag = m._new_tag().decode()
m.send(f"{tag} APPEND INBOX ~{{{len(message)}+}}\r\n".encode() + message + b"\r\n")
out["append"] = [m.readline().decode().rstrip("\r\n")]
out["select"] = raw(m, "SELECT INBOX")
def fetch(items):
    tag = m._new_tag().decode()
    m.send(f"{tag} FETCH 1 {items}\r\n".encode())
    got = b""
    while True:
        line = m.readline()
        got += line
        if line.startswith(tag.encode() + b" "):
            return got.decode("latin-1")
out["sizes"] = fetch("(BINARY.SIZE[1] BINARY.SIZE[2])")
out["text"] = fetch("(BINARY.PEEK[1])")
out["attachment"] = fetch("(BINARY.PEEK[2])")
out["partial"] = fetch("(BINARY.PEEK[2]<1.3>)")
out["body"] = fetch("(BODY.PEEK[2])")
out["flags_before"] = fetch("(FLAGS)")
out["unknown"] = fetch("(BINARY.PEEK[3])")
out["seen"] = fetch("(BINARY[1] FLAGS)")
m.logout()
print(json.dumps(out))
"#;

#[test]
fn binary_gives_each_part_decoded_and_keeps_raw_binary_out_of_body() {
    let site = alice_site();
    let out = as_alice(&site, PROGRAM);
    let text = |key: &str| out.0[key].as_str().unwrap_or_default().to_string();
    assert!(
        out.text("capability").contains(" BINARY"),
        "{}",
        out.text("capability")
    );
    assert!(
        out.text("append").contains(" OK [APPENDUID "),
        "{}",
        out.text("append")
    );
    // "café au lait" is 13 octets in UTF-8; the attachment 7, as it was sent.
    assert!(
        text("sizes").contains("BINARY.SIZE[1] 13 BINARY.SIZE[2] 7"),
        "{}",
        text("sizes")
    );
    // (latin-1 as the test reads it: é is C3 A9.)
    assert!(
        text("text").contains("BINARY[1] {13}\r\ncaf\u{c3}\u{a9} au lait)"),
        "{}",
        text("text")
    );
    assert!(
        text("attachment").contains("BINARY[2] ~{7}\r\n\u{0}\u{e4}-\r\n\u{0}\u{ff})"),
        "{:?}",
        text("attachment")
    );
    assert!(
        text("partial").contains("BINARY[2]<1> {3}\r\n\u{e4}-\r)"),
        "{:?}",
        text("partial")
    );
    // BODY[2] is what is kept: base64, not the raw octets.
    let body = text("body");
    assert!(body.contains("BODY[2] {12}\r\nAOQtDQoA/w==)"), "{body:?}");
    assert!(
        !text("flags_before").contains("\\Seen"),
        "{}",
        text("flags_before")
    );
    let unknown = text("unknown");
    assert!(unknown.contains(" NO [UNKNOWN-CTE] "), "{unknown}");
    assert!(!unknown.contains("BINARY[3]"), "{unknown}");
    // BINARY without .PEEK marks the message read, as BODY[] does.
    assert!(text("seen").contains("\\Seen"), "{}", text("seen"));
    assert!(!site.log().contains("panicked"));
}
