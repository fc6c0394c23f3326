//! Deterministic, realistic-looking messages (CRLF line ends): plain text, text with an
//! HTML alternative, and a few with a base64 attachment; and `seed`, which writes them
//! as a Maildir folder both servers can read.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

pub const FIRST_NAMES: [&str; 20] = [
    "Alice", "Bruno", "Chiara", "Dmitri", "Emma", "Farid", "Greta", "Hiroshi", "Ines", "Jonas",
    "Kerstin", "Luca", "Mira", "Nils", "Olga", "Pablo", "Quentin", "Rosa", "Sven", "Tamara",
];

/// Sender surnames: `SEARCH FROM "<surname>"` matches about one message in 25.
pub const SURNAMES: [&str; 25] = [
    "Albrecht",
    "Bianchi",
    "Carvalho",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zimmermann",
];

const DOMAINS: [&str; 6] = [
    "physik.example.org",
    "lab.example.net",
    "uni.example.edu",
    "example.com",
    "mail.example.org",
    "institute.example.de",
];

/// Subject words: `SEARCH SUBJECT "<word>"` matches about one message in 10.
pub const SUBJECT_WORDS: [&str; 30] = [
    "seminar",
    "beamtime",
    "budget",
    "thesis",
    "draft",
    "review",
    "meeting",
    "cluster",
    "results",
    "poster",
    "travel",
    "invoice",
    "deadline",
    "proposal",
    "workshop",
    "slides",
    "dataset",
    "calibration",
    "samples",
    "report",
    "agenda",
    "minutes",
    "grant",
    "paper",
    "referee",
    "visit",
    "lecture",
    "exam",
    "software",
    "license",
];

const WORDS: [&str; 48] = [
    "the",
    "measurement",
    "of",
    "we",
    "will",
    "need",
    "detector",
    "please",
    "find",
    "attached",
    "and",
    "a",
    "new",
    "version",
    "for",
    "next",
    "week",
    "thanks",
    "to",
    "everyone",
    "who",
    "sent",
    "comments",
    "on",
    "analysis",
    "is",
    "still",
    "running",
    "cluster",
    "queue",
    "results",
    "look",
    "good",
    "but",
    "calibration",
    "should",
    "be",
    "checked",
    "again",
    "before",
    "we",
    "submit",
    "paper",
    "i",
    "think",
    "meeting",
    "room",
    "booked",
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Seconds since the epoch of the first seeded message; one arrives every ~20 minutes.
pub const FIRST_DATE: i64 = 1_700_000_000;

/// RFC 5322 date (UTC) for seconds since the epoch.
pub fn rfc5322_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An IMAP date for SEARCH SINCE/BEFORE (`1-Jan-2024`).
pub fn imap_date(secs: i64) -> String {
    let d = rfc5322_date(secs);
    let parts: Vec<&str> = d.split(' ').collect();
    format!("{}-{}-{}", parts[1], parts[2], parts[3])
}

fn sentence(rng: &mut fastrand::Rng, out: &mut String, width: usize) {
    let mut line = 0;
    let n = rng.usize(6..16);
    for i in 0..n {
        let w = WORDS[rng.usize(..WORDS.len())];
        if line + w.len() + 1 > width {
            out.push_str("\r\n");
            line = 0;
        } else if i > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(w);
        line += w.len();
    }
    out.push_str(".\r\n");
}

fn paragraphs(rng: &mut fastrand::Rng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 200);
    while out.len() < bytes {
        sentence(rng, &mut out, 72);
        if rng.u8(..4) == 0 {
            out.push_str("\r\n");
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(A[(n >> (18 - 6 * j) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push_str("\r\n");
    out
}

/// A person: (display name, address).
fn person(rng: &mut fastrand::Rng) -> (String, String) {
    let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
    let last = SURNAMES[rng.usize(..SURNAMES.len())];
    let domain = DOMAINS[rng.usize(..DOMAINS.len())];
    (
        format!("{first} {last}"),
        format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
    )
}

/// Message number `n` of the stream `seed`, to `to`, dated `date`: 75% plain text of
/// 1-6 KB, 20% text with an HTML alternative (4-16 KB), 5% with a 20-80 KB attachment.
pub fn message(seed: u64, n: u64, to: &str, date: i64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n);
    let (from_name, from_addr) = person(&mut rng);
    let w1 = SUBJECT_WORDS[rng.usize(..SUBJECT_WORDS.len())];
    let w2 = SUBJECT_WORDS[rng.usize(..SUBJECT_WORDS.len())];
    let prefix = ["", "", "Re: ", "Fwd: ", "Re: Re: "][rng.usize(..5)];
    let subject = format!(
        "{prefix}{} {w1} and {w2} (#{n})",
        ["About the", "Next", "Updated", "Question on the", "Our"][rng.usize(..5)]
    );
    let mut h = String::with_capacity(1024);
    let host = DOMAINS[rng.usize(..DOMAINS.len())];
    let _ = write!(
        h,
        "Return-Path: <{from_addr}>\r\n\
         Received: from mx.{host} (mx.{host} [192.0.2.{}])\r\n\tby mailbox1.example.test with LMTP id b{seed:x}n{n}\r\n\tfor <{to}>; {}\r\n\
         Date: {}\r\n\
         From: \"{from_name}\" <{from_addr}>\r\n\
         To: <{to}>\r\n",
        rng.u8(1..250),
        rfc5322_date(date + 2),
        rfc5322_date(date),
    );
    if rng.u8(..3) == 0 {
        let (cc_name, cc_addr) = person(&mut rng);
        let _ = write!(h, "Cc: \"{cc_name}\" <{cc_addr}>\r\n");
    }
    let _ = write!(
        h,
        "Subject: {subject}\r\n\
         Message-ID: <{n}.{seed:x}.bench@{host}>\r\n\
         MIME-Version: 1.0\r\n"
    );
    let kind = rng.u8(..100);
    let mut body = String::new();
    if kind < 75 {
        let size = rng.usize(1000..6000);
        h.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
        );
        body.push_str(&paragraphs(&mut rng, size));
    } else if kind < 95 {
        let size = rng.usize(2000..8000);
        let text = paragraphs(&mut rng, size);
        let boundary = format!("=_alt_{n:x}");
        let _ = write!(
            h,
            "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n"
        );
        let html = text.replace("\r\n\r\n", "</p>\r\n<p>");
        let _ = write!(
            body,
            "This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             {text}\r\n--{boundary}\r\n\
             Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             <html><body><p>{html}</p></body></html>\r\n--{boundary}--\r\n"
        );
    } else {
        let size = rng.usize(1000..3000);
        let text = paragraphs(&mut rng, size);
        let boundary = format!("=_mix_{n:x}");
        let attachment: Vec<u8> = (0..rng.usize(15_000..60_000)).map(|_| rng.u8(..)).collect();
        let _ = write!(
            h,
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n"
        );
        let _ = write!(
            body,
            "This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             {text}\r\n--{boundary}\r\n\
             Content-Type: application/pdf; name=\"{w1}-{n}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"{w1}-{n}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}--{boundary}--\r\n",
            base64(&attachment)
        );
    }
    h.push_str("\r\n");
    h.push_str(&body);
    h.into_bytes()
}

/// The Maildir flag suffix of seeded message `n`: most are read (S), some flagged (F)
/// or answered (R), about 8% unread.
fn seeded_flags(seed: u64, n: u64) -> &'static str {
    let mut rng = fastrand::Rng::with_seed(seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
    match rng.u8(..100) {
        0..8 => "",
        8..12 => "FS",
        12..22 => "RS",
        _ => "S",
    }
}

/// Writes `count` messages as a Maildir folder in `dir` (`cur/`, `new/`, `tmp/`), named
/// like mailsite names its files (`<secs>.M<n>P1Q<n>.bench,S=<size>,U=<uid>:2,<flags>`)
/// with UIDs 1..=count in name order, and file times set to each message's date. The
/// names also carry `W=<size>`, the size with CRLF line ends (the messages have them),
/// as Dovecot's own deliveries name their files: Dovecot then knows a message's size
/// for POP3 and RFC822.SIZE without reading it, as it would on a real site.
/// Returns the total size in bytes.
pub fn seed(dir: &Path, count: u64, seed: u64, to: &str) -> io::Result<u64> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let mut total = 0;
    for uid in 1..=count {
        let date = FIRST_DATE + (uid as i64) * 1200;
        let bytes = message(seed, uid, to, date);
        let size = bytes.len();
        let name = format!(
            "{}.M{uid}P1Q{uid}.bench,S={size},W={size},U={uid}:2,{}",
            date,
            seeded_flags(seed, uid)
        );
        let path = dir.join("cur").join(name);
        fs::write(&path, &bytes)?;
        let file = fs::File::options().write(true).open(&path)?;
        file.set_modified(UNIX_EPOCH + Duration::from_secs(date as u64))?;
        total += size as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_messages() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(imap_date(1_700_000_000), "14-Nov-2023");
        let a = message(1, 7, "bench@example.test", FIRST_DATE);
        assert_eq!(a, message(1, 7, "bench@example.test", FIRST_DATE));
        let text = String::from_utf8(a).unwrap();
        assert!(text.contains("\r\n\r\n") && text.contains("Subject: "));
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert_eq!(base64(b"Man"), "TWFu\r\n");
        assert_eq!(base64(b"Ma"), "TWE=\r\n");
    }
}
