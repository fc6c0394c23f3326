//! bench/verify/send.rs - the MX load generator of bench/verify.sh (std only:
//! `rustc -O bench/verify/send.rs`), adapted from bench/dkim/submit.rs.
//!
//! CONNECTIONS connections at once to ADDR, each from the source address SOURCE (bound
//! before connect, so the receiver's SPF check sees the address the sending domain's
//! SPF record allows); each says EHLO (no AUTH: mail from another domain to the MX port)
//! and waits until every connection is ready; then the clock starts and each sends its
//! share of MESSAGES messages on the same connection: MAIL FROM:<SENDER>, RCPT TO its
//! user and DATA pipelined (RFC 2920), then the message, and waits for its 250.
//! Connection k sends to user number k % USERS (DIR/benchNN.eml is that user's
//! pre-signed message, sent byte for byte: the DKIM signature stays intact; the files
//! end in CRLF and have no line that begins with a dot). Prints one line:
//!   start=EPOCH accepted=EPOCH messages=N errors=E seconds=S rate=R
//! where start is the moment every connection was ready and accepted the moment the
//! last 250 came. Exits 1 if any message was not accepted with a 250.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Opts {
    addr: SocketAddrV4,
    source: Ipv4Addr,
    messages: usize,
    connections: usize,
    users: usize,
    rcpt_domain: String,
    sender: String,
    dir: String,
    helo: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: send IP:PORT --source IP --messages N --connections C --users U \
         --rcpt-domain DOMAIN --sender ADDRESS --dir DIR [--helo NAME]"
    );
    std::process::exit(2)
}

fn parse() -> Opts {
    let mut args = std::env::args().skip(1);
    let mut addr = None;
    let mut o = Opts {
        addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 25),
        source: Ipv4Addr::LOCALHOST,
        messages: 1000,
        connections: 20,
        users: 4,
        rcpt_domain: "bench.test".into(),
        sender: "someone@sender.example".into(),
        dir: ".".into(),
        helo: "mta.sender.example".into(),
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--source" => o.source = val().parse().unwrap_or_else(|_| usage()),
            "--messages" => o.messages = val().parse().unwrap_or_else(|_| usage()),
            "--connections" => o.connections = val().parse().unwrap_or_else(|_| usage()),
            "--users" => o.users = val().parse().unwrap_or_else(|_| usage()),
            "--rcpt-domain" => o.rcpt_domain = val(),
            "--sender" => o.sender = val(),
            "--dir" => o.dir = val(),
            "--helo" => o.helo = val(),
            s if !s.starts_with('-') && addr.is_none() => addr = Some(s.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    match addr {
        Some(a) if o.connections > 0 && o.users > 0 => o.addr = a,
        _ => usage(),
    }
    o
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

// std cannot bind a TcpStream before connecting: the three libc calls, by hand (Linux).
#[repr(C)]
struct SockaddrIn {
    family: u16,
    port: u16,
    addr: [u8; 4],
    zero: [u8; 8],
}
extern "C" {
    fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
    fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    fn connect(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    fn close(fd: i32) -> i32;
}
fn sockaddr(ip: Ipv4Addr, port: u16) -> SockaddrIn {
    SockaddrIn { family: 2, port: port.to_be(), addr: ip.octets(), zero: [0; 8] }
}
fn connect_from(source: Ipv4Addr, to: SocketAddrV4) -> Result<TcpStream, String> {
    // SAFETY: plain libc calls on a descriptor we own; on success it moves into the TcpStream.
    unsafe {
        let fd = socket(2, 1 | 0o2000000, 0); // AF_INET, SOCK_STREAM | SOCK_CLOEXEC
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let local = sockaddr(source, 0);
        if bind(fd, &local, 16) != 0 {
            let e = std::io::Error::last_os_error();
            close(fd);
            return Err(format!("bind {source}: {e}"));
        }
        let remote = sockaddr(*to.ip(), to.port());
        if connect(fd, &remote, 16) != 0 {
            let e = std::io::Error::last_os_error();
            close(fd);
            return Err(format!("connect {to}: {e}"));
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
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

fn setup(o: &Opts) -> Result<Conn, String> {
    let stream = connect_from(o.source, o.addr)?;
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
    Ok(c)
}

fn main() {
    let o = Arc::new(parse());
    // The pre-signed messages, one per user, each followed by the end of data.
    let mut messages = Vec::new();
    for u in 1..=o.users {
        let path = format!("{}/bench{u:02}.eml", o.dir);
        let mut m = std::fs::read(&path).unwrap_or_else(|e| {
            eprintln!("send: {path}: {e}");
            std::process::exit(2)
        });
        if !m.ends_with(b"\r\n") || m.windows(3).any(|w| w == b"\n.") {
            eprintln!("send: {path} must end in CRLF and have no line beginning with a dot");
            std::process::exit(2)
        }
        m.extend_from_slice(b".\r\n");
        messages.push(m);
    }
    let messages = Arc::new(messages);
    let barrier = Arc::new(Barrier::new(o.connections + 1));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut threads = Vec::new();
    for k in 0..o.connections {
        let (o, messages, barrier, errors) = (o.clone(), messages.clone(), barrier.clone(), errors.clone());
        // This connection's share of the messages.
        let share = o.messages / o.connections + usize::from(k < o.messages % o.connections);
        threads.push(std::thread::spawn(move || -> usize {
            let user = k % o.users;
            let rcpt = format!("bench{:02}@{}", user + 1, o.rcpt_domain);
            let envelope = format!("MAIL FROM:<{}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n", o.sender);
            let conn = setup(&o);
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
                    c.send(envelope.as_bytes())?;
                    c.expect(2, "MAIL FROM")?;
                    c.expect(2, "RCPT TO")?;
                    c.expect(3, "DATA")?;
                    c.send(&messages[user])?;
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
        eprintln!("send: {e}");
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
