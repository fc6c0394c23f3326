//! bench/dkim/submit.rs - the SMTP submission load generator of bench/dkim.sh (std only:
//! `rustc -O bench/dkim/submit.rs`).
//!
//! CONNECTIONS connections at once to ADDR; each says EHLO, optionally AUTH PLAIN as its
//! user, and waits until every connection is ready; then the clock starts and each sends
//! its share of MESSAGES messages on the same connection: MAIL FROM, RCPT TO and DATA
//! pipelined (RFC 2920), then the message, and waits for its 250. Connection k uses user
//! number k % USERS (`--user-prefix` + two digits, in `--domain`): the envelope sender,
//! the From: and the To: are that user's address, as a user sending to themself.
//!
//! Each message has the headers a mail client writes (From, To, Subject, Date,
//! Message-ID, MIME-Version, Content-Type, Content-Transfer-Encoding) and a body of
//! SIZE octets of 76-character text lines. Prints one line:
//!   start=EPOCH accepted=EPOCH messages=N errors=E seconds=S rate=R
//! where start is the moment every connection was ready and accepted the moment the
//! last 250 came. Exits 1 if any message was not accepted with a 250.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Opts {
    addr: String,
    messages: usize,
    connections: usize,
    size: usize,
    users: usize,
    user_prefix: String,
    domain: String,
    password: Option<String>,
    helo: String,
    date: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: submit ADDR:PORT --messages N --connections C --size BYTES --users U \
         --user-prefix bench --domain DOMAIN [--password P (AUTH PLAIN)] [--helo NAME] [--date RFC5322-DATE]"
    );
    std::process::exit(2)
}

fn parse() -> Opts {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        addr: String::new(),
        messages: 1000,
        connections: 20,
        size: 4096,
        users: 4,
        user_prefix: "bench".into(),
        domain: "bench.test".into(),
        password: None,
        helo: "loadgen.sender.test".into(),
        date: "Thu, 01 Jan 2026 00:00:00 +0000".into(),
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--messages" => o.messages = val().parse().unwrap_or_else(|_| usage()),
            "--connections" => o.connections = val().parse().unwrap_or_else(|_| usage()),
            "--size" => o.size = val().parse().unwrap_or_else(|_| usage()),
            "--users" => o.users = val().parse().unwrap_or_else(|_| usage()),
            "--user-prefix" => o.user_prefix = val(),
            "--domain" => o.domain = val(),
            "--password" => o.password = Some(val()),
            "--helo" => o.helo = val(),
            "--date" => o.date = val(),
            s if !s.starts_with('-') && o.addr.is_empty() => o.addr = s.to_string(),
            _ => usage(),
        }
    }
    if o.addr.is_empty() || o.connections == 0 || o.users == 0 {
        usage()
    }
    o
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// One (possibly multi-line) reply; its code.
    fn reply(&mut self) -> Result<(u16, String), String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err(format!("connection closed (after {all:?})"));
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code = line.get(..3).and_then(|c| c.parse().ok()).ok_or(format!("bad reply {line:?}"))?;
                return Ok((code, all));
            }
        }
    }

    fn expect(&mut self, class: u16, what: &str) -> Result<(), String> {
        let (code, text) = self.reply()?;
        if code / 100 != class {
            return Err(format!("{what}: {}", text.trim_end()));
        }
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> Result<(), String> {
        self.writer.write_all(data).map_err(|e| format!("write: {e}"))
    }
}

fn body(size: usize) -> Vec<u8> {
    // Text lines of 76 characters (78 with CRLF) until SIZE octets; never a leading dot.
    let words = b"The quick brown fox jumps over the lazy dog while the sorter signs the mail ";
    let mut out = Vec::with_capacity(size + 80);
    let mut i = 0usize;
    while out.len() < size {
        let room = (size - out.len()).saturating_sub(2).min(76);
        for j in 0..room {
            out.push(words[(i + j) % words.len()]);
        }
        out.extend_from_slice(b"\r\n");
        i += 7;
    }
    out
}

fn setup(o: &Opts, user: &str) -> Result<Conn, String> {
    let stream = TcpStream::connect(&o.addr).map_err(|e| format!("connect {}: {e}", o.addr))?;
    stream.set_nodelay(true).ok();
    stream.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut c = Conn { reader: BufReader::new(stream), writer };
    c.expect(2, "greeting")?;
    c.send(format!("EHLO {}\r\n", o.helo).as_bytes())?;
    let (code, text) = c.reply()?;
    if code != 250 {
        return Err(format!("EHLO: {}", text.trim_end()));
    }
    if !text.contains("PIPELINING") {
        return Err("the server does not offer PIPELINING".into());
    }
    if let Some(password) = &o.password {
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        c.send(format!("AUTH PLAIN {token}\r\n").as_bytes())?;
        c.expect(2, "AUTH PLAIN")?;
    }
    Ok(c)
}

fn main() {
    let o = Arc::new(parse());
    let body = Arc::new(body(o.size));
    let barrier = Arc::new(Barrier::new(o.connections + 1));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let pid = std::process::id();
    let mut threads = Vec::new();
    for k in 0..o.connections {
        let (o, body, barrier, errors) = (o.clone(), body.clone(), barrier.clone(), errors.clone());
        // This connection's share of the messages.
        let share = o.messages / o.connections + usize::from(k < o.messages % o.connections);
        threads.push(std::thread::spawn(move || -> usize {
            let user = format!("{}{:02}", o.user_prefix, k % o.users + 1);
            let address = format!("{user}@{}", o.domain);
            let conn = setup(&o, &user);
            barrier.wait();
            let mut c = match conn {
                Ok(c) => c,
                Err(e) => {
                    errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("connection {k}: {e}"));
                    return 0;
                }
            };
            let mut sent = 0;
            for i in 0..share {
                let mut run = || -> Result<(), String> {
                    c.send(format!("MAIL FROM:<{address}>\r\nRCPT TO:<{address}>\r\nDATA\r\n").as_bytes())?;
                    c.expect(2, "MAIL FROM")?;
                    c.expect(2, "RCPT TO")?;
                    c.expect(3, "DATA")?;
                    let mut msg = format!(
                        "From: Bench User <{address}>\r\nTo: <{address}>\r\nSubject: DKIM benchmark message {k}.{i}\r\n\
                         Date: {}\r\nMessage-ID: <{pid}.{k}.{i}@{}>\r\nMIME-Version: 1.0\r\n\
                         Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
                        o.date, o.helo
                    )
                    .into_bytes();
                    msg.extend_from_slice(&body);
                    msg.extend_from_slice(b".\r\n");
                    c.send(&msg)?;
                    c.expect(2, "end of data")
                };
                match run() {
                    Ok(()) => sent += 1,
                    Err(e) => {
                        errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("connection {k}, message {i}: {e}"));
                        return sent;
                    }
                }
            }
            let _ = c.send(b"QUIT\r\n");
            let _ = c.reply();
            sent
        }));
    }
    barrier.wait();
    let start = now();
    let sent: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let accepted = now();
    let errors = errors.lock().unwrap_or_else(|e| e.into_inner());
    for e in errors.iter().take(5) {
        eprintln!("submit: {e}");
    }
    let seconds = accepted - start;
    println!(
        "start={start:.6} accepted={accepted:.6} messages={sent} errors={} seconds={seconds:.3} rate={:.1}",
        o.messages - sent,
        sent as f64 / seconds
    );
    if sent != o.messages {
        std::process::exit(1);
    }
}
