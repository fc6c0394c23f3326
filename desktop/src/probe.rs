//! The tests, one [`Step`] each: DNS (addresses and TTLs), TCP per address and port,
//! TLS (version, cipher, certificate, trust, name), IMAP (async-imap), POP3 (a small
//! client here), SMTP (lettre) and the round trip. Each step is bounded by the check's
//! step timeout and explains its own failure (see [`crate::explain`]).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hickory_resolver::proto::rr::{RData, RecordType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use mailsite_shared::autoconfig::{Protocol, Security, ServerSetting};
use mailsite_shared::report::{Outcome, Problem, Step};
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, CertificateError};

use crate::explain;
use crate::net::Net;
use crate::record::{Recorder, Secrets, Shared, Transcript};

/// A step being run.
pub struct Running {
    step: Step,
    start: Instant,
    transcript: Option<Shared>,
}

impl Running {
    pub fn new(id: String, kind: &str, title: String) -> Running {
        Running {
            step: Step {
                id,
                kind: kind.to_string(),
                title,
                outcome: Outcome::Pass,
                millis: 0,
                details: Vec::new(),
                transcript: Vec::new(),
                problem: None,
            },
            start: Instant::now(),
            transcript: None,
        }
    }

    pub fn detail(&mut self, key: &str, value: impl ToString) {
        self.step.details.push((key.to_string(), value.to_string()));
    }

    pub fn record(&mut self, secrets: &Secrets) -> Shared {
        let t = Transcript::shared(secrets.clone());
        self.transcript = Some(t.clone());
        t
    }

    fn end(mut self, outcome: Outcome, problem: Option<Problem>) -> Step {
        self.step.outcome = outcome;
        self.step.problem = problem;
        self.step.millis = self.start.elapsed().as_millis() as u64;
        if let Some(t) = self.transcript {
            self.step.transcript = t.lock().unwrap_or_else(|p| p.into_inner()).lines();
        }
        self.step
    }

    pub fn pass(self) -> Step {
        self.end(Outcome::Pass, None)
    }

    pub fn fail(self, problem: Problem) -> Step {
        self.end(Outcome::Fail, Some(problem))
    }

    pub fn skip(mut self, because: &str) -> Step {
        self.detail("skipped", because);
        self.end(Outcome::Skipped, None)
    }
}

/// Runs `work` within the step timeout; a timeout fails the step.
async fn bounded<T>(
    net: &Net,
    what: &str,
    work: impl std::future::Future<Output = Result<T, Problem>>,
) -> Result<T, Problem> {
    match tokio::time::timeout(net.step_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(explain::timeout(what, net.step_timeout.as_secs_f64())),
    }
}

pub fn security_name(s: Security) -> &'static str {
    match s {
        Security::Tls => "SSL/TLS",
        Security::StartTls => "STARTTLS",
        Security::Plain => "no encryption",
    }
}

fn endpoint(s: &ServerSetting) -> String {
    format!("{}:{}", s.hostname, s.port)
}

// ---- DNS ----------------------------------------------------------------------------

/// Looks up a host's A and AAAA records with their TTLs; the addresses come back for
/// the TCP steps.
pub async fn dns(net: &Net, host: &str) -> (Step, Vec<IpAddr>) {
    let mut run = Running::new(
        format!("dns:{host}"),
        "dns",
        format!("DNS lookup of {host}"),
    );
    run.detail("host", host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        run.detail("address", ip);
        return (run.pass(), vec![ip]);
    }
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    let mut ips = Vec::new();
    let mut nx = false;
    let mut error = None;
    for rtype in [RecordType::A, RecordType::AAAA] {
        let lookup =
            tokio::time::timeout(net.step_timeout, net.resolver.lookup(fqdn.as_str(), rtype)).await;
        match lookup {
            Ok(Ok(answer)) => {
                for record in answer.answers() {
                    let ip = match &record.data {
                        RData::A(a) => IpAddr::V4(a.0),
                        RData::AAAA(a) => IpAddr::V6(a.0),
                        RData::CNAME(c) => {
                            run.detail("alias", format!("{host} -> {}", c.0));
                            continue;
                        }
                        _ => continue,
                    };
                    run.detail(
                        if ip.is_ipv4() { "a" } else { "aaaa" },
                        format!("{ip} (ttl {} s)", record.ttl),
                    );
                    ips.push(ip);
                }
            }
            Ok(Err(e)) if e.is_nx_domain() => nx = true,
            Ok(Err(e)) if e.is_no_records_found() => {}
            Ok(Err(e)) => error = Some(e.to_string()),
            Err(_) => error = Some(format!("no answer within {:?}", net.step_timeout)),
        }
    }
    if !ips.is_empty() {
        let list: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        run.detail("maps_to", format!("{host} -> {}", list.join(", ")));
        return (run.pass(), ips);
    }
    let problem = if nx {
        explain::dns_no_such_name(host)
    } else {
        explain::dns_failed(host, error.as_deref().unwrap_or("no A or AAAA record"))
    };
    (run.fail(problem), ips)
}

// ---- TCP ----------------------------------------------------------------------------

pub async fn tcp(net: &Net, s: &ServerSetting, ip: IpAddr) -> (Step, Option<TcpStream>) {
    let addr = SocketAddr::new(ip, s.port);
    let mut run = Running::new(
        format!("tcp:{}:{}@{ip}", s.hostname, s.port),
        "tcp",
        format!("Connect to {} port {} ({ip})", s.hostname, s.port),
    );
    run.detail("protocol", s.protocol.thunderbird_name());
    run.detail("host", &s.hostname);
    run.detail("address", ip);
    run.detail("port", s.port);
    match tokio::time::timeout(net.step_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => (run.pass(), Some(stream)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
            run.fail(explain::connection_refused(
                &s.hostname,
                &ip.to_string(),
                s.port,
            )),
            None,
        ),
        Ok(Err(e)) => (
            run.fail(explain::protocol_error("TCP", &format!("{addr}: {e}"))),
            None,
        ),
        Err(_) => (
            run.fail(explain::connection_timeout(
                &s.hostname,
                &ip.to_string(),
                s.port,
            )),
            None,
        ),
    }
}

// ---- TLS ----------------------------------------------------------------------------

/// Reads one line (CRLF) of a plain-text protocol.
async fn read_line<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Result<String, String> {
    let mut line = String::new();
    match r.read_line(&mut line).await {
        Ok(0) => Err("the server closed the connection".to_string()),
        Ok(_) => Ok(line),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads an SMTP reply (all its continuation lines).
async fn smtp_reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Result<String, String> {
    let mut all = String::new();
    loop {
        let line = read_line(r).await?;
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(all);
        }
    }
}

/// The plain-text part of STARTTLS/STLS, up to the point where TLS starts.
async fn starttls_preamble<S: AsyncRead + AsyncWrite + Unpin>(
    protocol: Protocol,
    stream: S,
) -> Result<S, String> {
    let mut r = BufReader::new(stream);
    let expect = |reply: &str, ok: &str| {
        if reply.starts_with(ok) {
            Ok(())
        } else {
            Err(format!("unexpected answer: {}", reply.trim_end()))
        }
    };
    match protocol {
        Protocol::Imap => {
            expect(&read_line(&mut r).await?, "* OK")?;
            r.get_mut()
                .write_all(b"t1 STARTTLS\r\n")
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let line = read_line(&mut r).await?;
                if line.starts_with("t1 ") {
                    expect(&line, "t1 OK")?;
                    break;
                }
            }
        }
        Protocol::Pop3 => {
            expect(&read_line(&mut r).await?, "+OK")?;
            r.get_mut()
                .write_all(b"STLS\r\n")
                .await
                .map_err(|e| e.to_string())?;
            expect(&read_line(&mut r).await?, "+OK")?;
        }
        Protocol::Smtp => {
            expect(&smtp_reply(&mut r).await?, "220")?;
            r.get_mut()
                .write_all(b"EHLO mailsite-helper.invalid\r\n")
                .await
                .map_err(|e| e.to_string())?;
            expect(&smtp_reply(&mut r).await?, "250")?;
            r.get_mut()
                .write_all(b"STARTTLS\r\n")
                .await
                .map_err(|e| e.to_string())?;
            expect(&smtp_reply(&mut r).await?, "220")?;
        }
    }
    Ok(r.into_inner())
}

/// Facts about a certificate (DER).
pub fn describe_certificate(der: &[u8], run: &mut Running) -> (String, String, String) {
    let fingerprint = sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let mut names = String::new();
    let mut issuer = String::new();
    let mut expiry = String::new();
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            run.detail("subject", cert.subject());
            issuer = cert.issuer().to_string();
            run.detail("issuer", &issuer);
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                let list: Vec<String> = san
                    .value
                    .general_names
                    .iter()
                    .map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                        x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())
                                .to_string(),
                            16 => IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())
                                .to_string(),
                            _ => format!("{ip:?}"),
                        },
                        other => other.to_string(),
                    })
                    .collect();
                names = list.join(", ");
                run.detail("sans", &names);
            }
            expiry = cert
                .validity()
                .not_after
                .to_rfc2822()
                .unwrap_or_else(|_| cert.validity().not_after.to_string());
            run.detail("not_after", &expiry);
        }
        Err(e) => run.detail("certificate_error", e),
    }
    run.detail("sha256", &fingerprint);
    (names, issuer, expiry)
}

/// A TLS handshake (after STARTTLS for those settings) that shows the certificate
/// whatever it is, then says whether the user's client would accept it.
pub async fn tls(net: &Net, s: &ServerSetting, stream: TcpStream) -> Step {
    let peer = stream.peer_addr().ok();
    let mut run = Running::new(
        format!("tls:{}:{}", s.hostname, s.port),
        "tls",
        format!("TLS on {} ({})", endpoint(s), security_name(s.security)),
    );
    run.detail("protocol", s.protocol.thunderbird_name());
    run.detail("host", &s.hostname);
    run.detail("port", s.port);
    if let Some(p) = peer {
        run.detail("address", p.ip());
    }
    let (connector, verdict) = net.inspecting();
    let Ok(name) = ServerName::try_from(s.hostname.clone()) else {
        return run.fail(explain::tls_failed(&s.hostname, "not a valid server name"));
    };
    let work = async {
        let stream = if s.security == Security::StartTls {
            starttls_preamble(s.protocol, stream)
                .await
                .map_err(|e| explain::tls_failed(&s.hostname, &format!("STARTTLS: {e}")))?
        } else {
            stream
        };
        connector
            .connect(name, stream)
            .await
            .map_err(|e| explain::tls_failed(&s.hostname, &e.to_string()))
    };
    let tls = match bounded(net, "TLS", work).await {
        Ok(tls) => tls,
        Err(p) => return run.fail(p),
    };
    let conn = tls.get_ref().1;
    if let Some(v) = conn.protocol_version() {
        run.detail(
            "tls_version",
            v.as_str().unwrap_or("unknown").replace('_', "."),
        );
    }
    if let Some(c) = conn.negotiated_cipher_suite() {
        run.detail("cipher", format!("{:?}", c.suite()));
    }
    let (names, issuer, expiry) = match conn.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => describe_certificate(cert.as_ref(), &mut run),
        None => {
            return run.fail(explain::tls_failed(
                &s.hostname,
                "the server sent no certificate",
            ));
        }
    };
    let verdict = verdict.lock().unwrap_or_else(|p| p.into_inner()).take();
    run.detail(
        "trusted",
        verdict.is_none()
            || !matches!(
                verdict,
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer
                ))
            ),
    );
    let name_ok = !matches!(
        verdict,
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ))
    );
    run.detail("host_matches", name_ok);
    match verdict {
        None => run.pass(),
        Some(rustls::Error::InvalidCertificate(e)) => match e {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                run.fail(explain::tls_wrong_name(&s.hostname, &names))
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                run.fail(explain::tls_expired(&s.hostname, &expiry))
            }
            CertificateError::UnknownIssuer => {
                run.fail(explain::tls_untrusted(&s.hostname, &issuer))
            }
            other => run.fail(explain::tls_failed(&s.hostname, &format!("{other:?}"))),
        },
        Some(other) => run.fail(explain::tls_failed(&s.hostname, &other.to_string())),
    }
}

// ---- sessions -------------------------------------------------------------------

/// A recorded connection to `ip`, TLS from the start for implicit-TLS settings.
pub enum Wire {
    Plain(Recorder<TcpStream>),
    Tls(Box<Recorder<tokio_rustls::client::TlsStream<TcpStream>>>),
}

async fn open(net: &Net, s: &ServerSetting, ip: IpAddr, t: &Shared) -> Result<Wire, String> {
    let addr = SocketAddr::new(ip, s.port);
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    if s.security == Security::Tls {
        Ok(Wire::Tls(Box::new(Recorder::new(
            upgrade(net, s, tcp).await?,
            t.clone(),
            Some(addr),
        ))))
    } else {
        Ok(Wire::Plain(Recorder::new(tcp, t.clone(), Some(addr))))
    }
}

async fn upgrade(
    net: &Net,
    s: &ServerSetting,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(s.hostname.clone()).map_err(|e| e.to_string())?;
    net.strict()
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))
}

/// The login credentials of a check.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
    pub secrets: Secrets,
}

// ---- IMAP ---------------------------------------------------------------------------

type ImapTls = Recorder<tokio_rustls::client::TlsStream<TcpStream>>;

/// Logs in over IMAP as the user's client would (async-imap); returns the session.
async fn imap_session(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<async_imap::Session<ImapTls>, Problem> {
    let wire = open(net, s, ip, t)
        .await
        .map_err(|e| explain::protocol_error("IMAP", &e))?;
    let imap_err = |e: async_imap::error::Error| explain::protocol_error("IMAP", &e.to_string());
    let tls_stream: ImapTls = match wire {
        Wire::Tls(stream) => *stream,
        Wire::Plain(stream) => {
            let mut client = async_imap::Client::new(stream);
            imap_greeting(&mut client).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(imap_err)?;
            let tcp = client.into_inner().into_inner();
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .note("STARTTLS: the connection is encrypted from here");
            let addr = tcp.peer_addr().ok();
            let tls = upgrade(net, s, tcp)
                .await
                .map_err(|e| explain::tls_failed(&s.hostname, &e))?;
            let stream = Recorder::new(tls, t.clone(), addr);
            let mut client = async_imap::Client::new(stream);
            client
                .run_command_and_check_ok("CAPABILITY", None)
                .await
                .map_err(imap_err)?;
            return imap_login(client, s, login, t, run).await;
        }
    };
    let mut client = async_imap::Client::new(tls_stream);
    imap_greeting(&mut client).await?;
    client
        .run_command_and_check_ok("CAPABILITY", None)
        .await
        .map_err(imap_err)?;
    imap_login(client, s, login, t, run).await
}

/// Reads the server's greeting; a server that closes first gave none.
async fn imap_greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), Problem>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(explain::protocol_error("IMAP", "no greeting")),
        Err(e) => Err(explain::protocol_error("IMAP", &e.to_string())),
    }
}

async fn imap_login(
    client: async_imap::Client<ImapTls>,
    s: &ServerSetting,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<async_imap::Session<ImapTls>, Problem> {
    match client.login(&login.username, &login.password).await {
        Ok(session) => {
            run.detail("login", "accepted");
            Ok(session)
        }
        Err((e, _)) => {
            let lines = t.lock().unwrap_or_else(|p| p.into_inner()).lines();
            let last = lines
                .iter()
                .rev()
                .find(|l| l.starts_with("S: "))
                .cloned()
                .unwrap_or_default();
            if let Some(i) = last.find("[REFERRAL ") {
                let url = last[i + 10..].split(']').next().unwrap_or("").to_string();
                let host = url
                    .trim_start_matches("imap://")
                    .rsplit('@')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_string();
                run.detail("referral", &url);
                return Err(explain::referral(&s.hostname, &host));
            }
            if matches!(e, async_imap::error::Error::No(_)) {
                return Err(explain::auth_refused("IMAP", &login.username));
            }
            Err(explain::protocol_error("IMAP", &e.to_string()))
        }
    }
}

/// The step of a login on one server address (`kind` names it, `upper` says it).
fn login_step(kind: &str, upper: &str, s: &ServerSetting, ip: IpAddr) -> Running {
    let mut run = Running::new(
        format!("{kind}:{}", endpoint(s)),
        kind,
        format!(
            "{upper} login on {} ({})",
            endpoint(s),
            security_name(s.security)
        ),
    );
    run.detail("host", &s.hostname);
    run.detail("address", ip);
    run.detail("port", s.port);
    run
}

/// IMAP: greeting, CAPABILITY, STARTTLS, LOGIN, INBOX message count.
pub async fn imap(net: &Net, s: &ServerSetting, ip: IpAddr, login: &Login) -> Step {
    let mut run = login_step("imap", "IMAP", s, ip);
    let t = run.record(&login.secrets);
    let result = bounded(net, "IMAP", async {
        let mut session = imap_session(net, s, ip, login, &t, &mut run).await?;
        let caps = session
            .capabilities()
            .await
            .map_err(|e| explain::protocol_error("IMAP", &e.to_string()))?;
        let mut names: Vec<String> = caps.iter().map(|c| format!("{c:?}")).collect();
        names.sort();
        let inbox = session
            .select("INBOX")
            .await
            .map_err(|e| explain::protocol_error("IMAP", &e.to_string()))?;
        let _ = session.logout().await;
        Ok((names.len(), inbox.exists))
    })
    .await;
    match result {
        Ok((caps, exists)) => {
            run.detail("capabilities", caps);
            run.detail("inbox_messages", exists);
            run.pass()
        }
        Err(p) => run.fail(p),
    }
}

// ---- POP3 ---------------------------------------------------------------------------

/// A small POP3 client: enough for CAPA, STLS, USER/PASS, STAT, TOP, DELE.
pub struct Pop3<S> {
    r: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3<S> {
    async fn command(&mut self, line: &str) -> Result<String, String> {
        self.r
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_line(&mut self.r).await
    }

    async fn multiline(&mut self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut self.r).await?;
            let line = line.trim_end_matches(['\r', '\n']);
            if line == "." {
                return Ok(out);
            }
            out.push(line.strip_prefix('.').unwrap_or(line).to_string());
        }
    }
}

/// Why a POP3 `-ERR` happened, from its response code (RFC 2449/3206).
fn pop3_problem(s: &ServerSetting, login: &Login, reply: &str) -> Problem {
    let text = reply.trim_end();
    if text.contains("[SYS/TEMP]") && text.contains(" is served by ") {
        let target = text
            .split(" is served by ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("another server");
        return explain::referral(&s.hostname, target);
    }
    if text.contains("[SYS/TEMP]") || text.contains("[IN-USE]") {
        return explain::server_temporary("POP3", text);
    }
    if text.starts_with("-ERR") {
        return explain::auth_refused("POP3", &login.username);
    }
    explain::protocol_error("POP3", text)
}

async fn pop3_session(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<Pop3<ImapTls>, Problem> {
    let perr = |e: String| explain::protocol_error("POP3", &e);
    let wire = open(net, s, ip, t).await.map_err(perr)?;
    let tls = match wire {
        Wire::Tls(stream) => *stream,
        Wire::Plain(stream) => {
            let mut p = Pop3 {
                r: BufReader::new(stream),
            };
            let greeting = read_line(&mut p.r).await.map_err(perr)?;
            if !greeting.starts_with("+OK") {
                return Err(pop3_problem(s, login, &greeting));
            }
            let capa = p.command("CAPA").await.map_err(perr)?;
            if capa.starts_with("+OK") {
                let caps = p.multiline().await.map_err(perr)?;
                run.detail("capabilities_before_tls", caps.join(" "));
            }
            let stls = p.command("STLS").await.map_err(perr)?;
            if !stls.starts_with("+OK") {
                return Err(explain::tls_failed(&s.hostname, stls.trim_end()));
            }
            let tcp = p.r.into_inner().into_inner();
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .note("STLS: the connection is encrypted from here");
            let addr = tcp.peer_addr().ok();
            let tls = upgrade(net, s, tcp)
                .await
                .map_err(|e| explain::tls_failed(&s.hostname, &e))?;
            let mut p = Pop3 {
                r: BufReader::new(Recorder::new(tls, t.clone(), addr)),
            };
            return pop3_login(&mut p, s, login, run).await.map(|_| p);
        }
    };
    let mut p = Pop3 {
        r: BufReader::new(tls),
    };
    let greeting = read_line(&mut p.r).await.map_err(perr)?;
    if !greeting.starts_with("+OK") {
        return Err(pop3_problem(s, login, &greeting));
    }
    pop3_login(&mut p, s, login, run).await.map(|_| p)
}

async fn pop3_login<S: AsyncRead + AsyncWrite + Unpin>(
    p: &mut Pop3<S>,
    s: &ServerSetting,
    login: &Login,
    run: &mut Running,
) -> Result<(), Problem> {
    let perr = |e: String| explain::protocol_error("POP3", &e);
    let capa = p.command("CAPA").await.map_err(perr)?;
    if capa.starts_with("+OK") {
        let caps = p.multiline().await.map_err(perr)?;
        run.detail("capabilities", caps.join(" "));
    }
    let user = p
        .command(&format!("USER {}", login.username))
        .await
        .map_err(perr)?;
    if !user.starts_with("+OK") {
        return Err(pop3_problem(s, login, &user));
    }
    let pass = p
        .command(&format!("PASS {}", login.password))
        .await
        .map_err(perr)?;
    if !pass.starts_with("+OK") {
        return Err(pop3_problem(s, login, &pass));
    }
    run.detail("login", "accepted");
    Ok(())
}

/// POP3: greeting, CAPA, STLS, USER/PASS, STAT.
pub async fn pop3(net: &Net, s: &ServerSetting, ip: IpAddr, login: &Login) -> Step {
    let mut run = login_step("pop3", "POP3", s, ip);
    let t = run.record(&login.secrets);
    let result = bounded(net, "POP3", async {
        let mut p = pop3_session(net, s, ip, login, &t, &mut run).await?;
        let stat = p
            .command("STAT")
            .await
            .map_err(|e| explain::protocol_error("POP3", &e))?;
        let _ = p.command("QUIT").await;
        let count = stat.split_whitespace().nth(1).unwrap_or("?").to_string();
        Ok(count)
    })
    .await;
    match result {
        Ok(count) => {
            run.detail("maildrop_messages", count);
            run.pass()
        }
        Err(p) => run.fail(p),
    }
}

// ---- SMTP ---------------------------------------------------------------------------

fn hello() -> ClientId {
    ClientId::Domain("mailsite-helper.invalid".to_string())
}

fn tls_parameters(net: &Net, host: &str) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(pem) = &net.ca_pem {
        builder =
            builder.add_root_certificate(Certificate::from_pem(pem).map_err(|e| e.to_string())?);
    }
    builder.build_rustls().map_err(|e| e.to_string())
}

/// Connects and authenticates with lettre; the transcript is kept at the command level.
async fn smtp_session(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<AsyncSmtpConnection, Problem> {
    let note = |from_client: bool, line: &str| {
        t.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(from_client, line);
    };
    let serr = |e: lettre::transport::smtp::Error| explain::protocol_error("SMTP", &e.to_string());
    let params =
        tls_parameters(net, &s.hostname).map_err(|e| explain::tls_failed(&s.hostname, &e))?;
    let implicit = (s.security == Security::Tls).then(|| params.clone());
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        (ip, s.port),
        Some(net.step_timeout),
        &hello(),
        implicit,
        None,
    )
    .await
    .map_err(serr)?;
    note(true, "EHLO mailsite-helper.invalid");
    note(false, &format!("250 {}", conn.server_info()));
    if s.security == Security::StartTls {
        note(true, "STARTTLS");
        conn.starttls(params, &hello())
            .await
            .map_err(|e| explain::tls_failed(&s.hostname, &e.to_string()))?;
        note(false, "220 (TLS started)");
        note(true, "EHLO mailsite-helper.invalid");
        note(false, &format!("250 {}", conn.server_info()));
    }
    run.detail("server", conn.server_info().to_string());
    let credentials = Credentials::new(login.username.clone(), login.password.clone());
    note(true, "AUTH PLAIN <redacted>");
    match conn
        .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
        .await
    {
        Ok(response) => {
            note(
                false,
                &format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ),
            );
            run.detail("auth", "accepted");
            Ok(conn)
        }
        Err(e) => {
            note(false, &e.to_string());
            if e.status().is_some_and(|c| c.to_string() == "535") || e.is_permanent() {
                Err(explain::auth_refused("outgoing (SMTP)", &login.username))
            } else if e.is_transient() {
                Err(explain::server_temporary("outgoing (SMTP)", &e.to_string()))
            } else {
                Err(serr(e))
            }
        }
    }
}

/// SMTP: EHLO, STARTTLS, AUTH (lettre).
pub async fn smtp(net: &Net, s: &ServerSetting, ip: IpAddr, login: &Login) -> Step {
    let mut run = login_step("smtp", "SMTP", s, ip);
    let t = run.record(&login.secrets);
    let result = bounded(net, "SMTP", async {
        let mut conn = smtp_session(net, s, ip, login, &t, &mut run).await?;
        let _ = conn.quit().await;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => run.pass(),
        Err(p) => run.fail(p),
    }
}

// ---- round trip ---------------------------------------------------------------------

/// How long the round trip waits for the test message.
pub const ROUND_TRIP_WAIT: Duration = Duration::from_secs(30);

/// Sends a test message to the user through `outgoing` and waits for it over
/// `incoming`, then deletes it.
pub async fn round_trip(
    net: &Net,
    email: &str,
    outgoing: (&ServerSetting, IpAddr),
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
) -> Step {
    let protocol = incoming.0.protocol.thunderbird_name().to_uppercase();
    let mut run = Running::new(
        "roundtrip".to_string(),
        "roundtrip",
        format!(
            "Round trip: a test message through {} back over {protocol}",
            endpoint(outgoing.0)
        ),
    );
    let t = run.record(&login.secrets);
    let token = format!("{:016x}", rand::random::<u64>());
    let subject = format!("mailsite-helper round trip {token}");
    run.detail("subject", &subject);
    let message = format!(
        "From: <{email}>\r\nTo: <{email}>\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{token}@mailsite-helper.invalid>\r\n\r\nThis message tests that mail you send comes back to you. The helper deletes it.\r\n",
        chrono::Utc::now().to_rfc2822()
    );
    let sent = bounded(net, "sending the test message", async {
        let mut run_smtp = Running::new(String::new(), "smtp", String::new());
        let mut conn = smtp_session(net, outgoing.0, outgoing.1, login, &t, &mut run_smtp).await?;
        let address: lettre::Address =
            email.parse().map_err(|e: lettre::address::AddressError| {
                explain::protocol_error("SMTP", &e.to_string())
            })?;
        let envelope = lettre::address::Envelope::new(Some(address.clone()), vec![address])
            .map_err(|e| explain::protocol_error("SMTP", &e.to_string()))?;
        t.lock().unwrap_or_else(|p| p.into_inner()).push(
            true,
            &format!(
                "MAIL FROM:<{email}> / RCPT TO:<{email}> / DATA ({} bytes)",
                message.len()
            ),
        );
        let response = conn
            .send(&envelope, message.as_bytes())
            .await
            .map_err(|e| explain::protocol_error("SMTP", &e.to_string()))?;
        t.lock().unwrap_or_else(|p| p.into_inner()).push(
            false,
            &format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            ),
        );
        let _ = conn.quit().await;
        Ok(())
    })
    .await;
    if let Err(p) = sent {
        return run.fail(p);
    }
    let sent_at = Instant::now();
    let deadline = sent_at + ROUND_TRIP_WAIT;
    let arrived = match incoming.0.protocol {
        Protocol::Imap => imap_wait(net, incoming, login, &token, deadline, &t).await,
        _ => pop3_wait(net, incoming, login, &token, deadline, &t).await,
    };
    match arrived {
        Ok(true) => {
            run.detail("delay_ms", sent_at.elapsed().as_millis());
            run.pass()
        }
        Ok(false) => run.fail(explain::not_delivered(
            ROUND_TRIP_WAIT.as_secs_f64(),
            &protocol,
        )),
        Err(p) => run.fail(p),
    }
}

async fn imap_wait(
    net: &Net,
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
    token: &str,
    deadline: Instant,
    t: &Shared,
) -> Result<bool, Problem> {
    let mut scratch = Running::new(String::new(), "imap", String::new());
    let err = |e: async_imap::error::Error| explain::protocol_error("IMAP", &e.to_string());
    let mut session = bounded(
        net,
        "IMAP",
        imap_session(net, incoming.0, incoming.1, login, t, &mut scratch),
    )
    .await?;
    session.select("INBOX").await.map_err(err)?;
    while Instant::now() < deadline {
        let found = session
            .uid_search(format!("HEADER Subject \"{token}\""))
            .await
            .map_err(err)?;
        if let Some(uid) = found.into_iter().next() {
            session
                .uid_store(uid.to_string(), "+FLAGS (\\Deleted)")
                .await
                .map_err(err)?
                .for_each(|_| async {})
                .await;
            session
                .expunge()
                .await
                .map_err(err)?
                .for_each(|_| async {})
                .await;
            let _ = session.logout().await;
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        session.noop().await.map_err(err)?;
    }
    let _ = session.logout().await;
    Ok(false)
}

async fn pop3_wait(
    net: &Net,
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
    token: &str,
    deadline: Instant,
    t: &Shared,
) -> Result<bool, Problem> {
    let perr = |e: String| explain::protocol_error("POP3", &e);
    while Instant::now() < deadline {
        let mut scratch = Running::new(String::new(), "pop3", String::new());
        let mut p = bounded(
            net,
            "POP3",
            pop3_session(net, incoming.0, incoming.1, login, t, &mut scratch),
        )
        .await?;
        let stat = p.command("STAT").await.map_err(perr)?;
        let count: usize = stat
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // The newest messages are last.
        for n in (1..=count).rev().take(20) {
            if !p
                .command(&format!("TOP {n} 0"))
                .await
                .map_err(perr)?
                .starts_with("+OK")
            {
                continue;
            }
            let headers = p.multiline().await.map_err(perr)?;
            if headers.iter().any(|h| h.contains(token)) {
                p.command(&format!("DELE {n}")).await.map_err(perr)?;
                p.command("QUIT").await.map_err(perr)?;
                return Ok(true);
            }
        }
        let _ = p.command("QUIT").await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(false)
}
