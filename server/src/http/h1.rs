//! The prepared HTTP/1.1 path: a connection's requests are parsed here (httparse, the
//! parser hyper itself uses) and the few that clients send at setup, answered from
//! documents rendered ahead, are written straight to the socket without building a
//! request or a response object. The first request this path does not take (another
//! method or page, HTTP/1.0, a chunked or oversized body, `Expect`, `Upgrade`, a
//! `Connection` option, a head it cannot parse) hands the connection, with the bytes
//! already read, to hyper and the router for the rest of its life. HTTP/1.1 requests are
//! answered in order, so the client cannot tell which path answered: the
//! `http_wire` fuzz target checks that a connection's answers are hyper's byte for byte
//! (the `date` header aside).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tower::{Layer, Service};

/// Largest request head the prepared path reads before handing the connection over
/// (hyper's own limit is far larger; real setup requests are under 1 KiB).
pub const MAX_HEAD: usize = 16 * 1024;

/// How long a connection may take to send a request, or stay idle between requests,
/// on either path (hyper's `header_read_timeout`): a deadline, which bytes sent slowly
/// do not move.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest body the prepared path reads (autoconfig's own limit: larger bodies go to
/// the router, which refuses them with 413).
pub const MAX_BODY: usize = 64 * 1024;

/// Headers read per request; a request with more goes to hyper.
const HEADERS: usize = 32;

/// A request the prepared path parsed: all an answer may depend on.
#[derive(Debug)]
pub struct Head<'a> {
    pub method: &'a str,
    /// The origin-form request target: the path and, after `?`, the query.
    pub target: &'a str,
    /// The first `Host` header, when it is visible ASCII (as `HeaderValue::to_str`).
    pub host: Option<&'a str>,
    /// The body, `Content-Length` bytes.
    pub body: &'a [u8],
}

/// The answers the prepared path gives.
pub trait Prepared: Clone + Send + Sync + 'static {
    /// Appends the whole response to `request` (status line, headers, body; see
    /// [`write_response`]) to `out`, or returns false, leaving `out` alone, when the
    /// router should answer it.
    fn answer(&self, request: &Head<'_>, out: &mut Vec<u8>) -> bool;
}

/// Appends an HTTP/1.1 response as hyper encodes it: the status line, `headers` (names
/// in lower case), `content-length`, `date`, the blank line and `body`.
pub fn write_response(out: &mut Vec<u8>, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    write_head(out, status, headers, body.len());
    out.extend_from_slice(body);
}

/// Appends the head of a response with a body of `length` bytes, as
/// [`write_response`] writes it; the body goes after it.
pub fn write_head(out: &mut Vec<u8>, status: u16, headers: &[(&str, &str)], length: usize) {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    date(out);
    out.extend_from_slice(b"\r\n\r\n");
}

/// The current time as an HTTP date, formatted once a second per thread.
fn date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static NOW: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NOW.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
}

/// What the prepared path made of the bytes at the start of a connection's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A request answered into the output: this many bytes of it are consumed.
    Answered(usize),
    /// The request is not complete yet.
    More,
    /// The router answers this request, and every later one on the connection.
    HandOff,
}

/// Parses the request at the start of `buf` and answers it if it is one for the
/// prepared path.
pub fn step<P: Prepared>(prepared: &P, buf: &[u8], out: &mut Vec<u8>) -> Step {
    // Empty lines before a request: hyper's to judge.
    if buf.first().is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        return Step::HandOff;
    }
    let mut headers = [httparse::EMPTY_HEADER; HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Step::More,
        Ok(httparse::Status::Partial) | Err(_) => return Step::HandOff,
    };
    let (Some(method), Some(target), Some(1)) = (request.method, request.path, request.version)
    else {
        return Step::HandOff;
    };
    if !target.starts_with('/') || !target.bytes().all(is_uri_byte) {
        return Step::HandOff;
    }
    let mut host = None;
    let mut length = None;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            if host.is_none() {
                host = Some(visible(header.value));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match (length, digits(header.value)) {
                (None, Some(n)) => length = Some(n),
                _ => return Step::HandOff,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
            || (name.eq_ignore_ascii_case("connection")
                && !header.value.eq_ignore_ascii_case(b"keep-alive"))
        {
            return Step::HandOff;
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Step::HandOff;
    }
    let Some(body) = buf.get(head_len..head_len + length) else {
        return Step::More;
    };
    let head = Head {
        method,
        target,
        host: host.flatten(),
        body,
    };
    if prepared.answer(&head, out) {
        Step::Answered(head_len + length)
    } else {
        Step::HandOff
    }
}

/// The bytes of an origin-form target that `http::Uri` takes as they are (RFC 3986
/// path and query characters): anything else goes to hyper, which decides.
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:@/?".contains(&b)
}

/// A header value as `HeaderValue::to_str` gives it: visible ASCII and tabs only.
fn visible(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (32..127).contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// A `Content-Length` value: decimal digits only, and not absurdly long.
fn digits(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 12 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Serves one connection: the prepared path while it can, then hyper with `service`.
/// Returns when the peer closes, has not sent its next request within [`HEAD_TIMEOUT`]
/// of the last answer, or `stop` turns true (seen before it waits for the next request).
pub async fn connection<IO, P, S>(
    mut io: IO,
    peer: SocketAddr,
    prepared: P,
    service: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: Prepared,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
    let mut answered = false;
    if *stop.borrow() {
        return;
    }
    // One wait for `stop` and one timer serve every request of the prepared path: the
    // timer is moved to the deadline only when it fires early, and the wait stays
    // registered, so that a request costs no timer or waiter registration.
    let handoff = {
        let stopped = stop.changed();
        tokio::pin!(stopped);
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(timer);
        loop {
            let mut consumed = 0;
            let handoff = loop {
                match step(&prepared, &buf[consumed..], &mut out) {
                    Step::Answered(n) => consumed += n,
                    Step::More => break false,
                    Step::HandOff => break true,
                }
            };
            if consumed > 0 {
                answered = true;
                buf.drain(..consumed);
                deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
            }
            if !out.is_empty() {
                if io.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
                wrote_answers();
            }
            if handoff {
                break true;
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            // In this order: a request that has arrived is read without looking at
            // the others; `stop` is seen before the connection waits again.
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(n) if n > 0 => {}
                    // The peer closed in the middle of a request: hyper answers that.
                    Ok(_) if !buf.is_empty() => break true,
                    // The peer closed or failed.
                    _ => break false,
                },
                _ = &mut stopped => break false,
                () = &mut timer => {
                    if tokio::time::Instant::now() >= deadline {
                        // Nothing, or not a whole request, within the time.
                        break false;
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    };
    if handoff {
        hand_off(io, buf, answered, peer, service, stop).await;
    }
}

/// Writes of answers a thread of the front door makes before it offers its core to the
/// other threads that wait for one (`sched_yield`).
///
/// Under load the runtime's two workers always find a connection to serve (a worker
/// with ready connections wakes the other to take some), so they seldom wait in the
/// kernel as nginx's workers do between batches, and on a kernel without preemption of
/// running threads (`PREEMPT_NONE`, 250 Hz) whatever else wants the core waits up to a
/// scheduler tick: 4 ms. Those are the node's other roles (DNS answers, IMAP) and, in
/// `bench/autoconfig-users.sh`, the client sharing the cores, whose p99 stayed at 4.3 to
/// 4.9 ms while nginx's was 2.3 to 3.5 in its good rounds. Offering the core every 16
/// writes (about 0.3 ms of work) brought mailsite's p99 to 1.7 to 2.1 ms (BENCHMARKS.md).
const YIELD_EVERY: u32 = 16;

/// Counts a write of answers on this thread, offering the core after [`YIELD_EVERY`].
fn wrote_answers() {
    use std::cell::Cell;
    thread_local! { static ANSWERS: Cell<u32> = const { Cell::new(0) }; }
    ANSWERS.with(|answers| {
        let n = answers.get() + 1;
        if n >= YIELD_EVERY {
            answers.set(0);
            std::thread::yield_now();
        } else {
            answers.set(n);
        }
    });
}

/// Serves the rest of a connection with hyper: the bytes already read come first.
/// `answered`: the prepared path answered requests on it, so it is an HTTP/1.1
/// connection, which hyper alone would know by now: it goes to hyper's HTTP/1 server
/// directly, without the version sniffing of a new connection (whose first 24-byte
/// read changes when hyper parses the next head, and so what it answers to a bad one).
pub async fn hand_off<IO, S>(
    io: IO,
    read: Vec<u8>,
    answered: bool,
    peer: SocketAddr,
    service: S,
    stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let service = axum::Extension(ConnectInfo(peer))
        .layer(service)
        .map_request(|request: hyper::Request<hyper::body::Incoming>| {
            request.map(axum::body::Body::new)
        });
    let service = TowerToHyperService::new(service);
    let io = TokioIo::new(Rewind { read, at: 0, io });
    if answered {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT);
        let connection = builder.serve_connection(io, service).with_upgrades();
        until_stopped(connection, stop, |c| c.graceful_shutdown()).await;
    } else {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT);
        let connection = builder.serve_connection_with_upgrades(io, service);
        until_stopped(connection, stop, |c| c.graceful_shutdown()).await;
    }
}

/// Drives a hyper connection to its end, shutting it down gracefully (with `shutdown`)
/// once `stop` turns true.
async fn until_stopped<C: Future>(
    connection: C,
    mut stop: tokio::sync::watch::Receiver<bool>,
    shutdown: impl Fn(Pin<&mut C>),
) {
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                shutdown(connection.as_mut());
            }
        }
    }
}

/// A stream whose first bytes were already read: they are read again first.
struct Rewind<IO> {
    read: Vec<u8>,
    at: usize,
    io: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.at);
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            if this.at == this.read.len() {
                this.read = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `GET /hello` only.
    #[derive(Clone)]
    struct Hello;

    impl Prepared for Hello {
        fn answer(&self, request: &Head<'_>, out: &mut Vec<u8>) -> bool {
            if request.method != "GET" || request.target != "/hello" {
                return false;
            }
            let host = request.host.unwrap_or("-");
            write_response(out, 200, &[("content-type", "text/plain")], host.as_bytes());
            true
        }
    }

    fn run(input: &[u8]) -> (Vec<Step>, String) {
        let mut out = Vec::new();
        let mut steps = Vec::new();
        let mut at = 0;
        loop {
            let step = step(&Hello, &input[at..], &mut out);
            let done = !matches!(step, Step::Answered(_));
            if let Step::Answered(n) = step {
                at += n;
            }
            steps.push(step);
            if done {
                return (steps, String::from_utf8_lossy(&out).into_owned());
            }
        }
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_until_one_is_not_prepared() {
        let first = "GET /hello HTTP/1.1\r\nHost: a.example\r\n\r\n";
        let second = "GET /hello HTTP/1.1\r\nhost: b.example\r\nConnection: keep-alive\r\n\r\n";
        let input = format!("{first}{second}GET /other HTTP/1.1\r\n\r\n");
        let (steps, out) = run(input.as_bytes());
        assert_eq!(
            steps,
            [
                Step::Answered(first.len()),
                Step::Answered(second.len()),
                Step::HandOff
            ]
        );
        assert!(
            out.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 9\r\ndate: "
            ),
            "{out}"
        );
        assert!(
            out.contains("GMT\r\n\r\na.exampleHTTP/1.1 200 OK\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nb.example"), "{out}");
    }

    #[test]
    fn what_the_prepared_path_does_not_take_goes_to_hyper() {
        for request in [
            "GET /hello HTTP/1.0\r\n\r\n",
            "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /hello HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nxx",
            "GET /hello HTTP/1.1\r\nContent-Length: +1\r\n\r\nx",
            "GET /hello HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /hello HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "GET http://a.example/hello HTTP/1.1\r\n\r\n",
            "GET /hello#x HTTP/1.1\r\n\r\n",
            "GET /he\"llo HTTP/1.1\r\n\r\n",
            "GET  /hello HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03",
        ] {
            assert_eq!(run(request.as_bytes()).0, [Step::HandOff], "{request:?}");
        }
        let many = format!(
            "GET /hello HTTP/1.1\r\n{}\r\n",
            "X-A: b\r\n".repeat(HEADERS + 1)
        );
        assert_eq!(run(many.as_bytes()).0, [Step::HandOff]);
        let long = format!("GET /hello HTTP/1.1\r\nX-A: {}", "b".repeat(MAX_HEAD));
        assert_eq!(run(long.as_bytes()).0, [Step::HandOff]);
    }

    #[test]
    fn an_unfinished_request_waits_for_its_bytes() {
        let request = "GET /hello HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
        for cut in 0..request.len() {
            assert_eq!(run(&request.as_bytes()[..cut]).0, [Step::More], "{cut}");
        }
        let (steps, out) = run(request.as_bytes());
        assert_eq!(steps, [Step::Answered(request.len()), Step::More]);
        assert!(out.ends_with("\r\n\r\n-"), "{out}");
        // A host that is not visible ASCII is no host, as for the router.
        let (_, out) = run(b"GET /hello HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n");
        assert!(out.ends_with("\r\n\r\n-"), "{out}");
    }

    /// A router that answers nothing: these tests stay on the prepared path.
    fn nobody() -> tower::util::BoxCloneService<Request, Response, Infallible> {
        tower::util::BoxCloneService::new(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        }))
    }

    /// Reads one answer to `GET /hello` from `client`.
    async fn answer(client: &mut tokio::io::DuplexStream) -> String {
        let mut got = Vec::new();
        let mut chunk = [0u8; 512];
        while !got.ends_with(b"\r\n\r\n-") {
            let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk));
            let n = read.await.expect("an answer within 5 s").unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    /// An idle connection is closed `HEAD_TIMEOUT` after its last answer (not after the
    /// first), one that went quiet in the middle of a request likewise, and one that
    /// waits is closed as soon as `stop` turns true.
    #[tokio::test(start_paused = true)]
    async fn idle_connections_end_at_the_deadline_after_the_last_answer_or_at_stop() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let (mut client, server) = tokio::io::duplex(4096);
        let served = tokio::spawn(connection(server, peer, Hello, nobody(), stop.clone()));
        let request = b"GET /hello HTTP/1.1\r\n\r\n";
        client.write_all(request).await.unwrap();
        assert!(answer(&mut client).await.starts_with("HTTP/1.1 200 OK"));
        tokio::time::sleep(HEAD_TIMEOUT - Duration::from_secs(10)).await;
        client.write_all(request).await.unwrap();
        answer(&mut client).await;
        // Past the first answer's deadline, within the second's.
        tokio::time::sleep(HEAD_TIMEOUT - Duration::from_secs(1)).await;
        assert!(!served.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest));
        closed.await.expect("closed at the deadline").unwrap();
        assert!(rest.is_empty());
        served.await.unwrap();

        // Half a request, then nothing.
        let (mut client, server) = tokio::io::duplex(4096);
        let served = tokio::spawn(connection(server, peer, Hello, nobody(), stop.clone()));
        client
            .write_all(b"GET /hello HTTP/1.1\r\nHo")
            .await
            .unwrap();
        tokio::time::sleep(HEAD_TIMEOUT + Duration::from_secs(1)).await;
        assert!(served.is_finished());
        served.await.unwrap();

        // Waiting for its next request when the node stops.
        let (mut client, server) = tokio::io::duplex(4096);
        let served = tokio::spawn(connection(server, peer, Hello, nobody(), stop));
        client.write_all(request).await.unwrap();
        answer(&mut client).await;
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), served)
            .await
            .expect("the connection ended at stop")
            .unwrap();
    }
}
