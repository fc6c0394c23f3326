"""The honest side of bench/hostile.sh: an IMAP login (connect, greeting, LOGIN,
SELECT INBOX, LOGOUT) and an SMTP delivery to a local user on the MX port (connect,
EHLO, MAIL, RCPT, DATA of a small message, its 250, QUIT), one after another, from a
source of its own; prints the median and p99 of each in milliseconds."""

import imaplib, smtplib, socket, sys, time

host_imap, host_smtp, source, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
USER, PASSWORD, RCPT = "alice", "alice-password", "alice@example.test"


class SourcedIMAP(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(source, 0))


def imap_login():
    m = SourcedIMAP(host_imap, 10143, timeout=30)
    typ, _ = m.login(USER, PASSWORD)
    m.select("INBOX")
    m.logout()
    return typ == "OK"


def smtp_delivery(n):
    with smtplib.SMTP(host_smtp, 10025, timeout=30, source_address=(source, 0)) as s:
        message = f"Subject: honest {n}\r\nFrom: <bob@example.org>\r\n\r\nhonest mail {n}\r\n"
        return not s.sendmail("bob@example.org", [RCPT], message)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


for name, op in (("imap_login", lambda n: imap_login()), ("smtp_delivery", smtp_delivery)):
    times, errors = [], 0
    for n in range(samples):
        start = time.monotonic()
        try:
            ok = op(n)
        except Exception as error:  # a refused or broken session counts as an error
            print(f"{name}: {error!r}", file=sys.stderr)
            ok = False
        times.append((time.monotonic() - start) * 1000)
        errors += not ok
    print(f"{name} p50={percentile(times, 50):.1f} p99={percentile(times, 99):.1f} "
          f"n={samples} errors={errors}", flush=True)
