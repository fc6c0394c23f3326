//! The `http_wire` target: the fuzzer's bytes as everything a client sends on one HTTP
//! connection, served twice: by the prepared HTTP/1.1 path with hyper behind it (as
//! `serve` runs the front door) and by hyper alone. The two must write the same bytes,
//! `date` headers aside: whichever requests the prepared path answers, the client
//! cannot tell.
//!
//! The router behind both is the autoconfig service of the `web` fixture, with the
//! pages whose answers change from one request to the next (`/metrics` counts, the
//! helper's stored preference, the console's tokens) answered by `/healthz` instead,
//! so that the two runs can be compared.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use super::web::web;
use crate::autoconfig;
use crate::http::h1;

/// How long (on the paused clock) the client waits for more answers.
const IDLE: Duration = Duration::from_secs(1);

const PEER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    40001,
);

/// Runs both paths over `data` and compares what they wrote.
pub fn http_wire(data: &[u8]) {
    let prepared = serve(data, true);
    let hyper = serve(data, false);
    let (prepared, hyper) = (dateless(&prepared), dateless(&hyper));
    if prepared != hyper {
        let at = prepared
            .iter()
            .zip(&hyper)
            .position(|(a, b)| a != b)
            .unwrap_or(prepared.len().min(hyper.len()));
        let around = |bytes: &[u8]| {
            String::from_utf8_lossy(&bytes[at.saturating_sub(200)..bytes.len().min(at + 200)])
                .into_owned()
        };
        panic!(
            "the prepared path answered {:?} differently from hyper, from byte {at} \
             ({} and {} bytes):\nprepared: {:?}\nhyper:    {:?}",
            String::from_utf8_lossy(data),
            prepared.len(),
            hyper.len(),
            around(&prepared),
            around(&hyper)
        );
    }
}

/// What the server writes back on a connection on which the client sent `data` and
/// then closed its side.
pub fn serve(data: &[u8], prepared: bool) -> Vec<u8> {
    let web = web();
    let app = web.app.clone();
    let router = autoconfig::router(app.clone()).map_request(|mut request: Request<Body>| {
        let path = request.uri().path();
        if path == "/metrics" || path.starts_with("/helper/") || path.starts_with("/console") {
            *request.uri_mut() = axum::http::Uri::from_static("/healthz");
        }
        request
    });
    // A runtime of its own, its clock paused: time moves only when every task waits,
    // so a read that times out means the server has answered all it will before more
    // bytes come.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime for the wire harness");
    runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let served = tokio::spawn(async move {
            if prepared {
                h1::connection(server, PEER, app, router, stop).await;
            } else {
                h1::hand_off(server, Vec::new(), false, PEER, router, stop).await;
            }
        });
        let mut written = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let talk = async {
            client.write_all(data).await?;
            while let Ok(read) = tokio::time::timeout(IDLE, client.read(&mut chunk)).await {
                match read? {
                    0 => return Ok(()),
                    n => written.extend_from_slice(&chunk[..n]),
                }
            }
            // Then the client closes its side, as in the middle of a request.
            client.shutdown().await?;
            client.read_to_end(&mut written).await.map(|_| ())
        };
        let _: std::io::Result<()> = tokio::time::timeout(Duration::from_secs(60), talk)
            .await
            .unwrap_or(Ok(()));
        served.abort();
        written
    })
}

/// `bytes` with the value of every `date:` header line blanked.
pub fn dateless(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, b"\r\ndate: ") {
        let start = at + b"\r\ndate: ".len();
        out.extend_from_slice(&rest[..start]);
        let end = find(&rest[start..], b"\r\n").map_or(rest.len(), |e| start + e);
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// Every format a client asks for, pipelined on one connection, then a request the
    /// prepared path does not take and one more it would: the same bytes as hyper's.
    #[test]
    fn the_prepared_path_answers_as_hyper_does() {
        let user = super::super::harness::USER;
        let pox = format!(
            "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>{user}@example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
        );
        let requests = [
            format!("GET /mail/config-v1.1.xml?emailaddress={user}%40example.test HTTP/1.1\r\nHost: autoconfig.example.test\r\n\r\n"),
            "GET /.well-known/autoconfig/mail/config-v1.2.xml HTTP/1.1\r\nHost: autoconfig.example.test:8080\r\n\r\n".to_string(),
            format!("POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.test\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{pox}", pox.len()),
            format!("GET /AutoDiscover/AutoDiscover.json?Email={user}@example.test&Protocol=AutodiscoverV1 HTTP/1.1\r\n\r\n"),
            format!("GET /mobileconfig?emailaddress={user}@example.test HTTP/1.1\r\n\r\n"),
            "GET /mobileconfig?emailaddress=someone@elsewhere.example HTTP/1.1\r\n\r\n".to_string(),
            "GET /mail/config-v1.1.xml?emailaddress=%ff HTTP/1.1\r\n\r\n".to_string(),
            "GET /autodiscover/autodiscover.xml HTTP/1.1\r\n\r\n".to_string(),
            "GET /healthz HTTP/1.1\r\n\r\n".to_string(),
            format!("GET /mobileconfig?emailaddress={user}@example.test HTTP/1.1\r\n\r\n"),
        ];
        // All but `/healthz` take the prepared path.
        let app = &web().app;
        for (i, request) in requests.iter().enumerate() {
            let step = h1::step(app, request.as_bytes(), &mut Vec::new());
            let prepared = i != 8;
            assert_eq!(
                step == h1::Step::Answered(request.len()),
                prepared,
                "{request}: {step:?}"
            );
        }
        let data = requests.concat();
        let prepared = serve(data.as_bytes(), true);
        let hyper = serve(data.as_bytes(), false);
        assert_eq!(text(&dateless(&prepared)), text(&dateless(&hyper)));
        let answers = text(&prepared);
        assert_eq!(
            answers.matches("HTTP/1.1 200 OK\r\n").count(),
            7,
            "{answers}"
        );
        assert_eq!(
            answers.matches("HTTP/1.1 400 Bad Request\r\n").count(),
            3,
            "{answers}"
        );
        assert!(
            answers.contains(
                "content-disposition: attachment; filename=\"example.test.mobileconfig\"\r\n"
            ),
            "{answers}"
        );
        assert!(
            answers.contains(&format!("<username>{user}</username>")),
            "{answers}"
        );
    }

    /// A client that sends its request a byte a second, or nothing after its last
    /// answer, is cut off at the deadline, on the prepared path as on hyper's.
    #[test]
    fn slow_and_idle_clients_are_cut_off_after_the_deadline() {
        for prepared in [true, false] {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            let app = web().app.clone();
            let (closed_after, idle_after) = runtime.block_on(async move {
                let router = autoconfig::router(app.clone());
                let connect = |(prepared, app, router): (bool, _, _)| {
                    let (client, server) = tokio::io::duplex(1 << 16);
                    let (stop_tx, stop) = tokio::sync::watch::channel(false);
                    tokio::spawn(async move {
                        let _stop_tx = stop_tx;
                        if prepared {
                            h1::connection(server, PEER, app, router, stop).await;
                        } else {
                            h1::hand_off(server, Vec::new(), false, PEER, router, stop).await;
                        }
                    });
                    client
                };
                // A byte a second: the connection ends before the head does.
                let mut slow = connect((prepared, app.clone(), router.clone()));
                let start = tokio::time::Instant::now();
                let head = b"GET /mobileconfig?emailaddress=slow@example.test HTTP/1.1\r\nX-Pad: aaaaaaaaaaaa\r\n\r\n";
                for byte in head.iter() {
                    if slow.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let mut rest = Vec::new();
                let bound = Duration::from_secs(300);
                let _ = tokio::time::timeout(bound, slow.read_to_end(&mut rest)).await;
                let closed_after = start.elapsed();
                // One answer, then silence: closed at the deadline after the answer.
                let mut idle = connect((prepared, app, router));
                let start = tokio::time::Instant::now();
                idle.write_all(b"GET /mobileconfig?emailaddress=idle@example.test HTTP/1.1\r\n\r\n")
                    .await
                    .unwrap();
                let mut answer = Vec::new();
                let _ = tokio::time::timeout(bound, idle.read_to_end(&mut answer)).await;
                assert!(
                    String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK\r\n"),
                    "prepared {prepared}"
                );
                (closed_after, start.elapsed())
            });
            assert!(
                closed_after <= Duration::from_secs(35),
                "prepared {prepared}: {closed_after:?}"
            );
            assert!(
                idle_after >= Duration::from_secs(29) && idle_after <= Duration::from_secs(35),
                "prepared {prepared}: {idle_after:?}"
            );
        }
    }

    /// Cut anywhere, and with what hyper refuses, the two still agree.
    #[test]
    fn cut_and_malformed_requests_agree_with_hyper() {
        let request = "GET /mobileconfig?emailaddress=a@example.test HTTP/1.1\r\nHost: x\r\n\r\n";
        let body = "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nContent-Length: 5\r\n\r\n<a/>";
        for data in [request, body] {
            for cut in (0..data.len()).step_by(7) {
                http_wire(&data.as_bytes()[..cut]);
            }
        }
        for data in [
            "GET /mobileconfig HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "GET /mobileconfig HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /mobileconfig HTTP/1.0\r\n\r\n",
            "GET /mobileconfig HTTP/1.1\r\nConnection: close\r\n\r\nGET /mobileconfig HTTP/1.1\r\n\r\n",
            "GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: \x7f\r\n\r\n",
            "GET /mobileconfig?email=a%40example.test HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nContent-Length: 70000\r\n\r\n",
            "\r\n\r\nGET /mobileconfig HTTP/1.1\r\n\r\n",
            "get /mobileconfig HTTP/1.1\r\n\r\n",
        ] {
            http_wire(data.as_bytes());
        }
        // After a prepared answer, a head hyper refuses as soon as it parses it (a
        // byte no URI has, the line unfinished or not): hyper alone answers 400 where
        // a new connection's version sniffing would have it wait (found by the fuzzer).
        let answered = "GET /mail/config-v1.1.xml?emailaddress=a%40example.test HTTP/1.1\r\n\r\n";
        for next in [
            &b"GET /.well-known/autoconfig/mail/confi\xa1-v1.1.xml "[..],
            b"GET /.well-known/autoconfig/mail/confi\x01-v1.1.xml HTTP/1.1\r\n",
            b"GET /.w\xa1",
            b"GET /mobileconfig HTTP/1.1\r\nHost: x\r\n",
        ] {
            let mut data = answered.as_bytes().to_vec();
            data.extend_from_slice(next);
            http_wire(&data);
        }
    }
}
