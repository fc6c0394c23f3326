//! The other domains of the inbound mail-authentication tests: their DNS server.

use super::common;

/// An authoritative DNS server for the other domains of the inbound tests (UDP and
/// TCP, dnspython's wire format), with the RSA key their DKIM signatures use: it makes
/// the key, writes it to the file named by the first argument, prints its port and
/// answers until its standard input closes. `broken.example` answers SERVFAIL.
const OTHER_DNS: &str = r#"
import base64, json, socket, socketserver, struct, sys, threading
import dns.flags, dns.message, dns.rcode, dns.rdatatype, dns.rrset
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key_file, allowed_ip = sys.argv[1:3]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
open(key_file, "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
spki = key.public_key().public_bytes(serialization.Encoding.DER,
    serialization.PublicFormat.SubjectPublicKeyInfo)
def txt(text):
    return " ".join('"%s"' % text[i:i + 250] for i in range(0, len(text), 250))
records = {
    ("example.org", "TXT"): [txt(f"v=spf1 ip4:{allowed_ip} -all")],
    ("_dmarc.example.org", "TXT"): [txt("v=DMARC1; p=reject")],
    ("sel._domainkey.example.org", "TXT"): [txt("v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode())],
    ("example.org", "A"): ["192.0.2.10"],
}
names = {name for name, _ in records}
def answer(wire):
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    rtype = dns.rdatatype.to_text(question.rdtype)
    if name.endswith("broken.example"):
        response.set_rcode(dns.rcode.SERVFAIL)
    elif (name, rtype) in records:
        response.answer.append(dns.rrset.from_text(question.name, 60, "IN", rtype, *records[(name, rtype)]))
    elif name not in names:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()
class Udp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(answer(data), self.client_address)
class Tcp(socketserver.BaseRequestHandler):
    def handle(self):
        length = struct.unpack("!H", self.request.recv(2))[0]
        data = b""
        while len(data) < length:
            data += self.request.recv(length - len(data))
        out = answer(data)
        self.request.sendall(struct.pack("!H", len(out)) + out)
# The UDP port the system picks may be taken over TCP (another test's connection):
# then another UDP port, a bounded number of times.
for attempt in range(50):
    udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
    port = udp.server_address[1]
    try:
        tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
        break
    except OSError:
        udp.server_close()
else:
    sys.exit("no port free over both UDP and TCP")
for server in (udp, tcp):
    threading.Thread(target=server.serve_forever, daemon=True).start()
print(port, flush=True)
sys.stdin.read()
"#;

/// The other domains' DNS server, stopped when dropped.
pub struct OtherDns {
    pub child: std::process::Child,
    pub port: u16,
    pub key: std::path::PathBuf,
}

impl OtherDns {
    pub fn start(allowed: &str) -> OtherDns {
        use std::io::BufRead;
        let key = common::temp_dir("other-dns").join("dkim.pem");
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(OTHER_DNS)
            .arg(&key)
            .arg(allowed)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the other domains' DNS server");
        let stdout = child.stdout.take().expect("its standard output");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("it prints its port");
        let port = line.trim().parse().expect("a port number");
        OtherDns { child, port, key }
    }
}

impl Drop for OtherDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
