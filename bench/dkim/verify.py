#!/usr/bin/env python3
"""bench/dkim/verify.py - checks the DKIM signatures of one delivered message for bench/dkim.sh.

    python3 verify.py MESSAGE_FILE RECORDS_JSON

RECORDS_JSON maps DNS names ("<selector>._domainkey.<domain>") to their TXT record text,
so no DNS server is needed. Prints one line per DKIM-Signature header: its algorithm
(a=), canonicalization (c=), selector and whether it verifies (dkimpy), then
"signatures=N verified=M algorithms=a1,a2". Exits 0 unless a signature fails.
"""
import json
import re
import sys

import dkim


def main() -> int:
    message = open(sys.argv[1], "rb").read()
    records = json.load(open(sys.argv[2]))

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        text = records.get(name.rstrip("."))
        return text.encode() if text is not None else b""

    header = message.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in message else message.split(b"\n\n", 1)[0]
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", header)
    signatures = [l for l in re.split(rb"\r?\n", unfolded) if l.lower().startswith(b"dkim-signature:")]
    ok = 0
    algorithms = []
    for i, sig in enumerate(signatures):
        tags = dict(
            (k.strip(), v.strip())
            for k, _, v in (t.partition(b"=") for t in sig.split(b":", 1)[1].split(b";"))
            if k.strip()
        )
        a = tags.get(b"a", b"?").decode()
        algorithms.append(a)
        good = dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc)
        ok += bool(good)
        print(f"  a={a} c={tags.get(b'c', b'?').decode()} s={tags.get(b's', b'?').decode()}: "
              f"{'verifies' if good else 'DOES NOT VERIFY'}")
    print(f"signatures={len(signatures)} verified={ok} algorithms={','.join(algorithms) or '-'}")
    return 0 if ok == len(signatures) else 1


if __name__ == "__main__":
    sys.exit(main())
