//! Hostile input: long lines, oversized messages, bare line feeds, pipelining abuse
//! and command injection, a thousand connections at once, slow and silent clients.

use super::*;

#[test]
fn long_lines_oversized_messages_and_bare_line_feeds() {
    let site = Site::isolated_with(|t| {
        t.replace("max_message_size = 26214400", "max_message_size = 3000000")
    });
    site.add_user("nora", "nora-password", &[]);
    let mut mx = Smtp::connect(&format!("{}:10025", site.addr(21)));
    assert!(mx.ask("EHLO client\r\n").contains("SIZE 3000000"));

    // A 1 MB command line is refused, and the session goes on.
    let reply = mx.ask(&format!("NOOP {}\r\n", "x".repeat(1 << 20)));
    assert!(reply.starts_with("500 5.5.2"), "{reply}");
    assert!(mx.ask("NOOP\r\n").starts_with("250"));
    // A line of 1001 octets is too long; one of 1000 is fine.
    let reply = mx.ask(&format!("NOOP {}\r\n", "y".repeat(1001 - 7)));
    assert!(reply.starts_with("500 5.5.2"), "{reply}");
    assert!(
        mx.ask(&format!("NOOP {}\r\n", "y".repeat(1000 - 7)))
            .starts_with("250")
    );

    // A message with a 1 MB line is taken whole.
    let long_line = "z".repeat(1 << 20);
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    assert!(mx.ask("DATA\r\n").starts_with("354"));
    let reply = mx.ask(&format!("Subject: long line\r\n\r\n{long_line}\r\n.\r\n"));
    assert!(reply.starts_with("250 2.0.0"), "{reply}");

    // Oversized: announced with SIZE, sent with DATA, or with BDAT.
    let reply = mx.ask("MAIL FROM:<a@example.org> SIZE=3000001\r\n");
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    assert!(mx.ask("DATA\r\n").starts_with("354"));
    let chunk = format!("{}\r\n", "w".repeat(998));
    for _ in 0..3100 {
        mx.send(&chunk);
    }
    let reply = mx.ask(".\r\n");
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(mx.ask("NOOP\r\n").starts_with("250"), "the session goes on");

    // Bare LF: normalised to CRLF, and "\n.\n" does not end the message, so the
    // commands after it are message text, not a second (smuggled) message.
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    assert!(mx.ask("DATA\r\n").starts_with("354"));
    mx.send("Subject: bare\nX-Test: lf\n\nfirst\n.\nMAIL FROM:<evil@example.org>\nRCPT TO:<nora@example.test>\nDATA\nSubject: smuggled\n\n");
    let reply = mx.ask("last\r\n.\r\n");
    assert!(reply.starts_with("250 2.0.0"), "{reply}");

    // BDAT: chunks, and one over the limit closes the connection.
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    let first = "Subject: chunked\r\n\r\n";
    assert!(
        mx.ask(&format!("BDAT {}\r\n{first}", first.len()))
            .starts_with("250 2.0.0")
    );
    let last = "in chunks\r\n";
    let reply = mx.ask(&format!("BDAT {} LAST\r\n{last}", last.len()));
    assert!(reply.starts_with("250 2.0.0 Ok: queued"), "{reply}");
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    let reply = mx.ask("BDAT 3000001 LAST\r\n");
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(mx.closed());

    let messages = wait_for_mail(&site, "nora", Duration::from_secs(20), |m| m.len() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let messages = if messages.len() == 3 {
        messages
    } else {
        site.inbox("nora")
    };
    assert_eq!(messages.len(), 3, "{messages:?}");
    let long = messages
        .iter()
        .find(|m| m.contains("Subject: long line"))
        .unwrap();
    assert!(long.contains(&format!("\r\n{long_line}\r\n")));
    let bare = messages
        .iter()
        .find(|m| m.contains("Subject: bare"))
        .unwrap();
    assert!(
        bare.ends_with("Subject: bare\r\nX-Test: lf\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<nora@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nlast\r\n"),
        "{bare:?}"
    );
    assert!(
        !bare.contains("\r\r") && !bare.replace("\r\n", "").contains('\n'),
        "{bare:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.ends_with("Subject: chunked\r\n\r\nin chunks\r\n"))
    );
    assert!(!site.log().contains("panicked"));
}

const STARTTLS_INJECTION: &str = r#"
import socket, ssl, sys
host, cafile = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 10587), timeout=10)
f = s.makefile("rb")
def reply():
    out = b""
    while True:
        line = f.readline()
        out += line
        if len(line) < 4 or line[3:4] != b"-":
            return out.decode()
reply()
s.sendall(b"EHLO x\r\n"); reply()
# A command injected after STARTTLS, in the same packet: it must be dropped.
s.sendall(b"STARTTLS\r\nMAIL FROM:<alice@example.test>\r\n")
print(reply().split()[0])
ctx = ssl.create_default_context(cafile=cafile)
t = ctx.wrap_socket(s, server_hostname="outbox.example.test")
f = t.makefile("rb")
t.sendall(b"RCPT TO:<nora@example.test>\r\n")
print(reply().strip())
t.sendall(b"EHLO x\r\n")
print("STARTTLS" in reply())
"#;

#[test]
fn pipelining_abuse_command_injection_and_error_limits() {
    let site = Site::isolated_with(|t| t.replace("max_recipients = 100", "max_recipients = 3"));
    let users = ["nora", "nick", "nina", "nell"];
    for user in users {
        site.add_user(user, "a-password", &[]);
    }
    let addr = format!("{}:10025", site.addr(21));

    // A whole session in one write: 150 recipients naming 4 users (3 allowed), data,
    // then more.
    let mut mx = Smtp::connect(&addr);
    let mut batch = String::from("EHLO client\r\nMAIL FROM:<a@example.org>\r\n");
    for i in 0..150 {
        batch.push_str(&format!("RCPT TO:<{}@example.test>\r\n", users[i % 4]));
    }
    batch.push_str("DATA\r\n");
    mx.send(&batch);
    assert!(mx.reply().starts_with("250-"));
    assert!(mx.reply().starts_with("250 2.1.0"));
    let mut accepted = 0;
    let mut too_many = 0;
    for _ in 0..150 {
        let reply = mx.reply();
        if reply.starts_with("250 2.1.5") {
            accepted += 1;
        } else if reply.starts_with("452 4.5.3") {
            too_many += 1;
        }
    }
    // A user named again is the same recipient; the fourth is one too many.
    assert_eq!((accepted, too_many), (113, 37));
    assert!(mx.reply().starts_with("354"));
    mx.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n");
    assert!(mx.reply().starts_with("250 2.0.0 Ok: queued"));
    assert!(mx.reply().starts_with("250 2.0.0 Reset"));
    assert!(mx.reply().starts_with("250 2.0.0 Ok"));

    // Commands that never lead to a message: cut off.
    let mut noise = String::new();
    for _ in 0..600 {
        noise.push_str("NOOP\r\n");
    }
    mx.send(&noise);
    let mut last = String::new();
    for _ in 0..600 {
        let reply = mx.reply();
        if reply.is_empty() {
            break;
        }
        last = reply;
    }
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert!(mx.closed());

    // Bad commands and bad sequences: 500/501/503, then cut off after 20.
    let mut bad = Smtp::connect(&addr);
    for (command, expect) in [
        ("MAIL FROM:<a@example.org>\r\n", "503 5.5.1"),
        ("EHLO\r\n", "501 5.5.4"),
        ("HELO client\r\n", "250 "),
        ("RCPT TO:<nora@example.test>\r\n", "503 5.5.1"),
        ("DATA\r\n", "503 5.5.1"),
        ("MAIL FROM:<not an address\r\n", "501"),
        ("FROB\r\n", "500 5.5.1"),
        ("AUTH CRAM-MD5\r\n", "504 5.5.4"),
        ("STARTTLS\r\n", "220"),
    ] {
        let reply = bad.ask(command);
        assert!(reply.starts_with(expect), "{command:?} -> {reply}");
        if command.starts_with("STARTTLS") {
            break;
        }
    }
    let mut errors = Smtp::connect(&addr);
    let mut last = String::new();
    for _ in 0..25 {
        last = errors.ask("FROB\r\n");
        if last.contains("421") {
            break;
        }
    }
    assert!(last.contains("421 4.7.0 Too many errors"), "{last}");

    // STARTTLS command injection.
    let ca = site.dir.join("data/tls/ca.pem");
    let out = python(STARTTLS_INJECTION, &[&site.addr(21), ca.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "220");
    assert!(
        lines[1].starts_with("503 5.5.1"),
        "the injected MAIL was taken: {out}"
    );
    assert_eq!(
        lines[2], "False",
        "STARTTLS offered again inside TLS: {out}"
    );

    for user in ["nora", "nick", "nina"] {
        let messages = wait_for_mail(&site, user, Duration::from_secs(20), |m| !m.is_empty());
        assert!(messages[0].contains("Subject: pipelined"));
    }
    assert!(site.inbox("nell").is_empty());
    assert!(!site.log().contains("panicked"));
}

const CROWD: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# 20 connections from each of 50 sources: one source may open only [limits] per_source.
net = host.split(".")[1]
conns = [socket.create_connection((host, port), timeout=30, source_address=(f"127.{net}.{100 + i // 20}.{1 + i % 20}", 0)) for i in range(n)]
greeted = sum(1 for c in conns if c.recv(512).startswith(b"220 "))
for c in conns:
    c.sendall(b"EHLO crowd\r\nQUIT\r\n")
answered = 0
for c in conns:
    data = b""
    while b"221 " not in data:
        more = c.recv(4096)
        if not more:
            break
        data += more
    answered += b"250 " in data and b"221 " in data
    c.close()
print(greeted, answered)
"#;

#[test]
fn a_thousand_concurrent_connections_are_served() {
    let site = Site::isolated();
    for port in ["10025", "10587"] {
        let out = python(CROWD, &[&site.addr(21), port, "1000"]);
        assert_eq!(out.trim(), "1000 1000", "port {port}");
    }
    let out = python(CROWD, &[&site.addr(21), "10025", "1"]);
    assert_eq!(out.trim(), "1 1");
}

const SLOW: &str = r#"
import socket, sys, time
host, mode = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 10025), timeout=30)
start = time.time()
data = s.recv(512)
if mode == "trickle":
    # One byte every half second, never finishing a line.
    try:
        while True:
            s.sendall(b"N")
            time.sleep(0.5)
            if time.time() - start > 20:
                break
    except OSError:
        pass
elif mode == "data":
    s.sendall(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<nora@example.test>\r\nDATA\r\n")
    s.sendall(b"Subject: slow\r\n\r\nand then nothing")
rest = b""
try:
    while True:
        more = s.recv(4096)
        if not more:
            break
        rest += more
except OSError:
    pass
print(round(time.time() - start), b"421 4.4.2" in rest)
"#;

#[test]
fn slow_and_silent_clients_are_disconnected() {
    let site = Site::isolated_with(|t| t.replace("smtp = 300", "smtp = 2"));
    site.add_user("nora", "nora-password", &[]);
    for mode in ["silent", "trickle", "data"] {
        let out = python(SLOW, &[&site.addr(21), mode]);
        let mut words = out.split_whitespace();
        let seconds: u64 = words.next().unwrap().parse().unwrap();
        let told = words.next().unwrap();
        assert!(
            (2..=6).contains(&seconds),
            "{mode}: closed after {seconds} s"
        );
        if mode != "trickle" {
            assert_eq!(told, "True", "{mode}: {out}");
        }
    }
    // Nothing half-received was delivered.
    std::thread::sleep(Duration::from_millis(500));
    assert!(site.inbox("nora").is_empty());
}
