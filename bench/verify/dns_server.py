"""bench/verify/dns_server.py - the sending domain's authoritative DNS server for bench/verify.sh
(UDP and TCP, dnspython's wire format).

    python3 dns_server.py IP PORT DOMAIN SELECTOR PUBKEY_B64 ALLOWED_IP

Answers TXT for DOMAIN (SPF: `v=spf1 ip4:ALLOWED_IP -all`), _dmarc.DOMAIN (`v=DMARC1;
p=none`) and SELECTOR._domainkey.DOMAIN (the RSA public key), an empty NOERROR for other
types of those names and NXDOMAIN for every other name (negative answers with an SOA,
minimum 300 s, so resolvers cache them). Counts the queries it answers and
prints the count (and per client, name and type) to stderr on each SIGUSR1 and at exit.
"""
import signal, socketserver, struct, sys, threading
import dns.flags, dns.message, dns.rcode, dns.rdatatype, dns.rrset

ip, port, domain, selector, pubkey, allowed = sys.argv[1:7]
port = int(port)


def txt(text):
    return " ".join('"%s"' % text[i:i + 250] for i in range(0, len(text), 250))


records = {
    (domain, "TXT"): [txt(f"v=spf1 ip4:{allowed} -all")],
    (f"_dmarc.{domain}", "TXT"): [txt("v=DMARC1; p=none")],
    (f"{selector}._domainkey.{domain}", "TXT"): [txt(f"v=DKIM1; k=rsa; p={pubkey}")],
}
names = {name for name, _ in records}
count = [0]
by_name = {}
lock = threading.Lock()


def answer(wire, client):
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    response.flags &= ~dns.flags.RA
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    rtype = dns.rdatatype.to_text(question.rdtype)
    if (name, rtype) in records:
        response.answer.append(dns.rrset.from_text(question.name, 300, "IN", rtype, *records[(name, rtype)]))
    else:
        if name not in names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        # A negative answer carries the zone's SOA (RFC 2308), so resolvers cache it for
        # its minimum (300 s); outside sender.example, as the parent zone would answer.
        zone = domain if name == domain or name.endswith("." + domain) else domain.split(".", 1)[-1]
        response.authority.append(dns.rrset.from_text(zone + ".", 300, "IN", "SOA",
            f"ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 300"))
    with lock:
        count[0] += 1
        key = f"{client} {name} {rtype}"
        by_name[key] = by_name.get(key, 0) + 1
    return response.to_wire(max_size=65535)


class Udp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        out = answer(data, self.client_address[0])
        if len(out) > 512:
            # No EDNS bigger than 512: truncate and let the client ask over TCP.
            query = dns.message.from_wire(data)
            if query.edns < 0 or query.payload < len(out):
                r = dns.message.make_response(query)
                r.flags |= dns.flags.AA | dns.flags.TC
                out = r.to_wire()
        sock.sendto(out, self.client_address)


class Tcp(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            length = struct.unpack("!H", head)[0]
            data = b""
            while len(data) < length:
                chunk = self.request.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
            out = answer(data, self.client_address[0])
            self.request.sendall(struct.pack("!H", len(out)) + out)


socketserver.ThreadingUDPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.allow_reuse_address = True
udp = socketserver.ThreadingUDPServer((ip, port), Udp)
tcp = socketserver.ThreadingTCPServer((ip, port), Tcp)
for server in (udp, tcp):
    threading.Thread(target=server.serve_forever, daemon=True).start()
def report(*_):
    with lock:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(by_name.items()))
        print(f"queries={count[0]} ({detail})", file=sys.stderr, flush=True)


signal.signal(signal.SIGUSR1, report)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
print(f"listening {ip}:{port}", file=sys.stderr, flush=True)
while not done.wait(3600):
    pass
report()
