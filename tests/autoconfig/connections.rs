//! One connection, many requests, as clients keep them open: the setup documents come
//! from the prepared HTTP/1.1 path, every other page from the router, in the order
//! asked, on the same connection.

use super::*;

/// Python's http.client keeps one connection for every request, in turn; the answers
/// come back in order, and the connection is never closed under it.
#[test]
fn one_keep_alive_connection_serves_documents_and_pages_in_turn() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let out = python(
        r#"
import http.client, json, sys
host, port = sys.argv[1], int(sys.argv[2])
pox = ('<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
       '<Request><EMailAddress>alice@example.test</EMailAddress><AcceptableResponseSchema>'
       'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
       '</AcceptableResponseSchema></Request></Autodiscover>')
requests = [
    ("GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.test", None),
    ("GET", "/healthz", None),
    ("POST", "/autodiscover/autodiscover.xml", pox),
    ("GET", "/no/such/page", None),
    ("GET", "/mobileconfig?emailaddress=alice@example.test", None),
    ("GET", "/autodiscover/autodiscover.json?Email=alice@example.test&Protocol=AutodiscoverV1", None),
    ("GET", "/mail/config-v1.1.xml?emailaddress=%ff", None),
]
c = http.client.HTTPConnection(host, port, timeout=10)
seen, sockets = [], set()
for method, path, body in requests:
    c.request(method, path, body=body, headers={"Content-Type": "text/xml"} if body else {})
    r = c.getresponse()
    text = r.read().decode()
    sockets.add(c.sock.getsockname())
    seen.append({"status": r.status, "type": r.getheader("Content-Type"),
                 "disposition": r.getheader("Content-Disposition"), "date": r.getheader("Date"),
                 "body": text})
print(json.dumps({"seen": seen, "connections": len(sockets)}))
"#,
        &[&site.http.ip().to_string(), &site.http.port().to_string()],
    );
    let out: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out["connections"], 1, "{out}");
    let seen = out["seen"].as_array().unwrap();
    let status: Vec<u64> = seen.iter().map(|s| s["status"].as_u64().unwrap()).collect();
    assert_eq!(status, [200, 200, 200, 404, 200, 200, 400], "{out}");
    let body = |i: usize| seen[i]["body"].as_str().unwrap().to_string();
    assert!(
        body(0).contains("<username>alice</username>"),
        "{}",
        body(0)
    );
    assert_eq!(body(1), "ok\n");
    assert!(
        body(2).contains("<LoginName>alice</LoginName>"),
        "{}",
        body(2)
    );
    assert!(
        body(4).contains("<string>alice@example.test</string>"),
        "{}",
        body(4)
    );
    assert_eq!(
        seen[4]["disposition"],
        "attachment; filename=\"example.test.mobileconfig\""
    );
    assert!(
        body(5).contains("\"Protocol\":\"AutodiscoverV1\""),
        "{}",
        body(5)
    );
    assert_eq!(body(6), "emailaddress is not valid UTF-8\n");
    for s in seen {
        assert!(s["date"].as_str().unwrap().ends_with(" GMT"), "{s}");
    }
    // Each answer is counted once, by the endpoint that gave it.
    let metrics = site.get("/metrics").body;
    for line in [
        "endpoint=\"thunderbird\",status=\"2xx\"} 1",
        "endpoint=\"thunderbird\",status=\"4xx\"} 1",
        "endpoint=\"autodiscover_xml\",status=\"2xx\"} 1",
        "endpoint=\"mobileconfig\",status=\"2xx\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}:\n{metrics}");
    }
}

/// Requests sent all at once (pipelined) are answered in the order sent, the router's
/// between the prepared path's.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let site = Site::isolated();
    let out = python(
        r#"
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
paths = ["/mail/config-v1.1.xml?emailaddress=p1@example.test", "/readyz",
         "/mobileconfig?emailaddress=p2@example.test", "/healthz",
         "/mail/config-v1.1.xml?emailaddress=p3@example.test"]
s = socket.create_connection((host, port), timeout=10)
s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: autoconfig.example.test\r\n\r\n" % p.encode() for p in paths))
data, answers = b"", []
while len(answers) < len(paths):
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head = data[:end].decode()
        length = int([l.split(":", 1)[1] for l in head.split("\r\n") if l.lower().startswith("content-length:")][0])
        if len(data) >= end + 4 + length:
            answers.append({"status": head.split(" ")[1], "body": data[end + 4:end + 4 + length].decode()})
            data = data[end + 4 + length:]
            continue
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps(answers))
"#,
        &[&site.http.ip().to_string(), &site.http.port().to_string()],
    );
    let answers: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 5, "{answers:?}");
    let body = |i: usize| answers[i]["body"].as_str().unwrap().to_string();
    assert!(body(0).contains("<username>p1</username>"), "{}", body(0));
    assert_eq!(body(1), "ready\n");
    assert!(
        body(2).contains("<string>p2@example.test</string>"),
        "{}",
        body(2)
    );
    assert_eq!(body(3), "ok\n");
    assert!(body(4).contains("<username>p3</username>"), "{}", body(4));
}
