"""bench/verify/sign.py - the pre-signed messages of bench/verify.sh.

    python3 sign.py KEY.pem SELECTOR DOMAIN SENDER RCPT_DOMAIN USERS SIZE DATE OUTDIR

Writes OUTDIR/benchNN.eml for NN = 01..USERS: a message From: SENDER (at DOMAIN) To:
benchNN@RCPT_DOMAIN with the headers a mail client writes and SIZE octets of text lines
(never a leading dot, so it goes out as is), CRLF line ends, DKIM-signed by dkimpy
(rsa-sha256, relaxed/relaxed, d=DOMAIN, s=SELECTOR) over the eight headers it has.
Each file is then checked with dkimpy against the same key before it is kept.
"""
import base64, os, sys
import dkim
from cryptography.hazmat.primitives import serialization

key_file, selector, domain, sender, rcpt_domain, users, size, date, outdir = sys.argv[1:10]
key = open(key_file, "rb").read()
pub = serialization.load_pem_private_key(key, None).public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
record = f"v=DKIM1; k=rsa; p={base64.b64encode(pub).decode()}".encode()
words = b"The quick brown fox jumps over the lazy dog while the sorter checks the mail "
body = bytearray()
i = 0
while len(body) < int(size):
    room = min(76, max(0, int(size) - len(body) - 2))
    body += bytes(words[(i + j) % len(words)] for j in range(room)) + b"\r\n"
    i += 7
headers = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
           b"content-type", b"content-transfer-encoding"]
for n in range(1, int(users) + 1):
    rcpt = f"bench{n:02d}@{rcpt_domain}"
    msg = (f"From: Someone Elsewhere <{sender}>\r\nTo: <{rcpt}>\r\n"
           f"Subject: verification benchmark message for bench{n:02d}\r\nDate: {date}\r\n"
           f"Message-ID: <verify-bench.{n}.{os.getpid()}@{domain}>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n").encode() + bytes(body)
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key, include_headers=headers,
                    canonicalize=(b"relaxed", b"relaxed"))
    signed = sig + msg
    ok = dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)
    if not ok:
        sys.exit(f"sign.py: the signed message for bench{n:02d} does not verify")
    open(os.path.join(outdir, f"bench{n:02d}.eml"), "wb").write(signed)
print(f"signed {users} messages of {len(body)} body octets")
