# A DNS server for made-up remote domains, some in DNSSEC-signed zones (signed here
# with dnspython, Ed25519), over UDP and TCP.
#
#   python3 signed_dns.py IP PORT ANCHOR_FILE SPEC_JSON
#
# SPEC_JSON: {"zones": [{"origin": "example.", "signed": true, "records": ["name TTL
# TYPE data", ...]}, ...]}. A zone that is a child of another is delegated from it (NS,
# and DS when the child is signed: an insecure delegation otherwise, proven by the
# parent's NSEC; with "bogus": true, a DS of another key, so the zone fails
# validation). The first zone's key is written to ANCHOR_FILE as a DNSKEY line: the
# trust anchor the relay is given. Answers carry RRSIGs and NSECs when the query sets
# DO. Prints "ready" when it serves.
import base64, json, socket, socketserver, sys, threading, warnings

warnings.filterwarnings("ignore")
import dns.dnssec, dns.exception, dns.flags, dns.message, dns.name, dns.rcode, dns.rdataclass
import dns.rdatatype, dns.rrset, dns.zone
from cryptography.hazmat.primitives.asymmetric import ed25519

ip, port, anchor_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spec = json.loads(sys.argv[4])

SOA = "@ 300 SOA ns.{o} hostmaster.{o} 1 3600 600 86400 300"
names = {z["origin"]: dns.name.from_text(z["origin"]) for z in spec["zones"]}
texts = {o: [SOA.format(o=o), f"@ 300 NS ns.{o}"] for o in names}
keys = {}
for z in spec["zones"]:
    texts[z["origin"]] += z["records"]
    if z["signed"]:
        key = ed25519.Ed25519PrivateKey.generate()
        dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ED25519, flags=257)
        keys[z["origin"]] = (key, dnskey)
# Each zone is delegated from the closest zone above it: NS, and DS when it is signed.
for z in spec["zones"]:
    origin = names[z["origin"]]
    parents = [o for o in names if names[o] != origin and origin.is_subdomain(names[o])]
    if not parents:
        continue
    parent = max(parents, key=lambda o: len(names[o]))
    rel = origin.relativize(names[parent]).to_text()
    texts[parent].append(f"{rel} 300 NS ns.{z['origin']}")
    if z["signed"]:
        # A "bogus" zone's DS names another key than the one it signs with.
        signer = keys[z["origin"]][1]
        if z.get("bogus"):
            other = ed25519.Ed25519PrivateKey.generate().public_key()
            signer = dns.dnssec.make_dnskey(other, dns.dnssec.Algorithm.ED25519, flags=257)
        ds = dns.dnssec.make_ds(origin, signer, "SHA256")
        texts[parent].append(f"{rel} 300 DS {ds.to_text()}")
zones = {}
for o, origin in names.items():
    zone = dns.zone.from_text("\n".join(texts[o]) + "\n", origin=origin, relativize=False)
    if o in keys:
        with zone.writer() as txn:
            dns.dnssec.sign_zone(zone, txn=txn, keys=[keys[o]], lifetime=3 * 86400)
    zones[origin] = zone

first = dns.name.from_text(spec["zones"][0]["origin"])
with open(anchor_file, "w") as f:
    k = keys[spec["zones"][0]["origin"]][1]
    data = base64.b64encode(k.key).decode()
    f.write(f"{first.to_text()} 300 IN DNSKEY {k.flags} {k.protocol} {int(k.algorithm)} {data}\n")


def zone_for(qname, qtype):
    """The zone that answers: the closest enclosing one; the parent for a DS at a cut."""
    best = None
    for origin in zones:
        if not qname.is_subdomain(origin):
            continue
        if qtype == dns.rdatatype.DS and qname == origin and len(zones) > 1 and origin != first:
            continue
        if best is None or len(origin) > len(best):
            best = origin
    return best


def add_set(section, zone, name, rdtype, dnssec):
    rdataset = zone.get_rdataset(name, rdtype)
    if rdataset is None:
        return False
    section.append(dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset)))
    if dnssec:
        sigs = zone.get_rdataset(name, dns.rdatatype.RRSIG, rdtype)
        if sigs is not None:
            section.append(dns.rrset.from_rdata_list(name, sigs.ttl, list(sigs)))
    return True


def answer(wire):
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    dnssec = bool(query.ednsflags & dns.flags.DO)
    if query.edns >= 0:
        response.use_edns(0, dns.flags.DO if dnssec else 0, 1232)
    question = query.question[0]
    qname, qtype = question.name, question.rdtype
    origin = zone_for(qname, qtype)
    if origin is None:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    zone = zones[origin]
    node = zone.get_node(qname)
    if node is not None and add_set(response.answer, zone, qname, qtype, dnssec):
        return response
    add_set(response.authority, zone, origin, dns.rdatatype.SOA, dnssec)
    if node is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        if dnssec:
            for name, n in zone.nodes.items():
                if n.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC) is not None:
                    add_set(response.authority, zone, name, dns.rdatatype.NSEC, True)
    elif dnssec:
        add_set(response.authority, zone, qname, dns.rdatatype.NSEC, True)
    return response


class Udp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        try:
            response = answer(data)
            try:
                out = response.to_wire(max_size=1232)
            except dns.exception.TooBig:
                response.answer, response.authority = [], []
                response.flags |= dns.flags.TC
                out = response.to_wire()
            sock.sendto(out, self.client_address)
        except Exception as e:
            print("error", e, file=sys.stderr, flush=True)


class Tcp(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            size = self.rfile.read(2)
            if len(size) < 2:
                return
            data = self.rfile.read(int.from_bytes(size, "big"))
            try:
                out = answer(data).to_wire()
            except Exception as e:
                print("error", e, file=sys.stderr, flush=True)
                return
            self.wfile.write(len(out).to_bytes(2, "big") + out)


class UdpServer(socketserver.ThreadingUDPServer):
    allow_reuse_address = True


class TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


udp, tcp = UdpServer((ip, port), Udp), TcpServer((ip, port), Tcp)
threading.Thread(target=tcp.serve_forever, daemon=True).start()
print("ready", flush=True)
udp.serve_forever()
