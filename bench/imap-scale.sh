#!/usr/bin/env bash
# bench/imap-scale.sh - IMAP at scale: SELECT and `UID FETCH 1:* (FLAGS)` on a 100,000-message
# INBOX, a QRESYNC resync after 100 changes against the full FLAGS fetch, the memory of an idle
# selected connection and of a user's first login; mailsite against Dovecot (dovecot-imapd) on
# the same Maildir data, in the same run.
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run takes about 4 minutes
# once mailsite is built: a minute of it mailsite indexing the 100,000 files at its first
# SELECT, another the ~1,200 argon2 logins of the memory test; building mailsite adds about 4:
#   bash bench/imap-scale.sh                        # builds target/release/mailsite first
#   bash bench/imap-scale.sh /path/to/mailsite      # explicit mailsite binary (not built)
#   ROUNDS=5 bash bench/imap-scale.sh               # more timing rounds
#   PARTS=memory bash bench/imap-scale.sh           # the memory test alone (PARTS=timing: the timings)
#   bash bench/imap-scale.sh --peers-only           # Dovecot only
#
# What it does:
#   1. installs what is missing: apt-get dovecot-core dovecot-imapd python3; builds mailsite
#      (cargo build --release -p mailsite) unless given a binary;
#   2. writes the same Maildir files for both servers (a Python writer, deterministic):
#        - user `scale`: an INBOX of MESSAGES small messages (From, To, Subject, Date,
#          Message-ID and 2-6 text lines, about 500 bytes, CRLF), all in cur/, named as both
#          servers' own deliveries are (`<secs>.M<n>P1Q<n>.bench,S=<size>,W=<size>,U=<uid>:2,<flags>`,
#          ~92% \Seen, 4% \Flagged, 10% \Answered), file times the messages' dates;
#        - IDLE_USERS users idle001.. and FIRST_USERS users first001.., each an INBOX of
#          SMALL_MESSAGES such messages (hard links to one pool per server);
#      mailsite: an isolated site config (role mailbox only, mailbox1 on MAILSITE_IP, IMAP 10143,
#      every other port its own), `mailsite user add scale` and `mailsite user import` of the
#      others with the same argon2id hash, the files under <data>/mail/<user>/; the small users'
#      INBOXes indexed with `mailsite mailbox reindex` (as after delivery); `scale`'s INBOX is left
#      for the first SELECT to index (mailsite indexes files it finds in a mailbox it has not
#      scanned since it started, the way it picks up mail dropped into new/);
#      Dovecot: its own copy of the same files, a passwd-file with the same argon2id hash
#      ({ARGON2ID}), `dovecot -F` with its own dovecot.conf and base_dir on DOVECOT_IP:10143
#      (maildir:, static userdb as user 'mail', mail_max_userip_connections raised, everything
#      else default: a process per connection, fsync settings); the small users' INBOXes indexed
#      with `doveadm mailbox status` (as after delivery), `scale`'s left for the first SELECT;
#   3. memory (PARTS memory), first, while neither server has opened scale's INBOX; one server
#      at a time, with a Python client holding the connections (PARALLEL being set up at once):
#        a. each idle user logs in once, SELECTs INBOX and logs out, so that what a server keeps
#           after a user's first login (and mailsite's per-core argon2 buffers) is in the
#           baseline; then the baseline is read;
#        b. IDLE_CONNECTIONS connections (idle users in turn) log in, SELECT INBOX and stay
#           idle (no IDLE command); read again: per idle selected connection = (b - a) / N;
#        c. FIRST_USERS more connections, one per user never logged in since the server
#           started, log in, SELECT INBOX and stay, in two halves, read after each: per first
#           login = (c - b) / FIRST_USERS - the idle connection's figure; the second half alone
#           is shown too (what is left once caches filled by the first half are warm);
#        d. those FIRST_USERS connections log out; read again: (d - b) / FIRST_USERS is what a
#           server keeps per user after the user's first session ended (informational);
#      each reading waits SETTLE s (for Dovecot first until the imap-login processes are gone
#      and every imap process is there), then until the summed RSS holds still (two readings
#      1 s apart within 64 kB, at most 20 s). What is read: the sum over the server's process
#      tree (the process and every descendant) of VmRSS (/proc/PID/status) and of Pss
#      (/proc/PID/smaps_rollup: each shared page divided among the processes sharing it).
#      mailsite is one process: its VmRSS is its figure. Dovecot runs an imap process per
#      connection (and an imap-login process while one logs in): its figure is the PSS of its
#      whole tree (master, anvil, log, config, auth, stats, imap), so what auth and anvil grow by
#      counts too; the RSS sum (shared libraries and mappings counted once per process) is
#      shown beside it. Dovecot's idle connections share each user's index files 10 to a user
#      (PSS divides those pages among them), its first logins have a user each;
#   4. timing (PARTS timing), on scale's INBOX, with the same client (raw sockets, one command
#      at a time, TCP_NODELAY; time.perf_counter() from before a command is sent to its tagged
#      answer received; bytes received counted; LOGIN and ENABLE never timed):
#        warm-up, per server, not counted: one whole round (below), whose first SELECT is when
#        each server indexes the MESSAGES files it has never seen (shown as its own row:
#        Dovecot reads the flags and sizes from the file names, mailsite adds an index row per
#        file) and whose first CONDSTORE use is when Dovecot switches modseqs on for it;
#        then ROUNDS rounds, servers alternating (mailsite first in odd rounds); each round:
#          0. QUIET s after the server's last change, one untimed LOGIN, SELECT INBOX, LOGOUT:
#             the mailbox is quiet (Dovecot's maildir sync reads a folder changed within the
#             last second again at the next look, and each first look after changes brings a
#             server up to date: both are what the resyncs below pay, not the plain SELECT);
#          1. a new connection: timed `SELECT INBOX`, timed `UID FETCH 1:* (FLAGS)` (checked:
#             one FETCH per EXISTS); the full resynchronisation of a client without QRESYNC is
#             the two together;
#          2. 2 x CHANGES messages not flagged, spread evenly over the mailbox (the same UIDs on
#             both servers), every other one in set A, the rest in set B;
#          3. another session (ENABLE CONDSTORE, SELECT INBOX (CONDSTORE), noting UIDVALIDITY
#             and HIGHESTMODSEQ) changes A: `UID STORE A +FLAGS.SILENT (\Flagged)`; then a new
#             session: ENABLE QRESYNC, timed `SELECT INBOX (QRESYNC (uidvalidity modseq))` with
#             the values noted before the change (checked: every UID of A comes with \Flagged,
#             nothing VANISHED);
#          4. the same with B, and EXPUNGES of B's UIDs then get `UID STORE +FLAGS.SILENT
#             (\Deleted)` and `UID EXPUNGE` in the changing session (checked: VANISHED (EARLIER)
#             names exactly those, the rest of B comes with \Flagged);
#        the changing sessions' STORE and expunge times are shown too (informational); every
#        figure is the server's median round;
#   5. prints a markdown table: the times and bytes, the mailsite / Dovecot ratios, each
#      server's resync / full resync ratios (the requirement: a resync costs O(changes), far
#      below a full FLAGS fetch), the memory figures against the targets (<= 30 KiB per idle
#      selected connection, <= 256 KiB per first login beyond that).
# All daemons are started by this script and stopped by PID on exit.
#
# Environment knobs:
#   ROUNDS=3                          timing rounds (median shown)
#   PARTS="memory timing"             which measurements to make
#   MESSAGES=100000                   messages in scale's INBOX
#   CHANGES=100 EXPUNGES=10           messages flagged between the noted MODSEQ and the resync,
#                                     and how many of those are then expunged (set B)
#   QUIET=2                           seconds from a server's last change to the look before the timed SELECT
#   IDLE_CONNECTIONS=500 IDLE_USERS=50 FIRST_USERS=50 SMALL_MESSAGES=200
#   PARALLEL=4                        connections being set up at once in the memory test
#   SETTLE=3                          seconds the memory test waits at least before each reading
#   MAILSITE_IP=127.0.0.51 DOVECOT_IP=127.0.0.52
#   KEEP_TMP=1                        keep the temp dir (configs, data, logs, the client's output)
#
# Caveat: the client shares this machine's cores with the server under test; compare figures
# from the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=imap-scale
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-memory timing}
MESSAGES=${MESSAGES:-100000}
CHANGES=${CHANGES:-100}
EXPUNGES=${EXPUNGES:-10}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-500}
IDLE_USERS=${IDLE_USERS:-50}
FIRST_USERS=${FIRST_USERS:-50}
SMALL_MESSAGES=${SMALL_MESSAGES:-200}
PARALLEL=${PARALLEL:-4}
export SETTLE=${SETTLE:-3} QUIET=${QUIET:-2}
MAILSITE_IP=${MAILSITE_IP:-127.0.0.51}
DOVECOT_IP=${DOVECOT_IP:-127.0.0.52}
IMAP_PORT=10143
NCPU=$(nproc)
want() { [[ " $PARTS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi
# Without init, the package's own dovecot service is never started; we never use its config.
mailsite_binary

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((IDLE_CONNECTIONS + FIRST_USERS + 200)) ] || die "open-files limit $(ulimit -n) is too low for $IDLE_CONNECTIONS connections"

# ---------------------------------------------------------------- temp dir, the client
TMP=$(mktemp -d /tmp/mailsite-bench-imap-scale.XXXXXX)
chmod 755 "$TMP"   # Dovecot's mail processes run as 'mail' and must traverse to their maildirs
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export BENCH_PASSWORD="$PASSWORD"   # the client reads it from the environment

seq_users() { local prefix=$1 n=$2 i; for ((i = 1; i <= n; i++)); do printf "%s%03d\n" "$prefix" "$i"; done; }
mapfile -t IDLE_LIST < <(seq_users idle "$IDLE_USERS")
mapfile -t FIRST_LIST < <(seq_users first "$FIRST_USERS")
join_by_comma() { local IFS=,; echo "$*"; }

CLIENT="$TMP/client.py"
cat >"$CLIENT" <<'PY'
"""The benchmark's IMAP client and Maildir writer (bench/imap-scale.sh writes and runs it).

  seed DIR COUNT SEED              a Maildir (cur/ new/ tmp/) of COUNT small messages
  round HOST PORT USER ROUND CHANGES EXPUNGES
                                   one timing round; prints one JSON line
  memory HOST PORT PID IDLE_USERS FIRST_USERS CONNECTIONS PARALLEL
                                   the memory test against the server whose process tree
                                   starts at PID; prints one JSON line
The password is BENCH_PASSWORD from the environment.
"""
import concurrent.futures, json, os, random, re, socket, sys, time

PASSWORD = os.environ.get("BENCH_PASSWORD", "")
SETTLE = float(os.environ.get("SETTLE", "3"))
QUIET = float(os.environ.get("QUIET", "2"))
FIRST_DATE = 1_700_000_000
WORDS = ("budget meeting report draft review minutes travel invoice schedule library "
         "seminar thesis lecture room booking network printer update notice agenda").split()
NAMES = ("Moreau Tanaka Okafor Lindqvist Novak Haddad Rossi Kowalski Nguyen Silva "
         "Fischer Dubois Ivanova Ortega Mensah Larsen").split()


def seed(path, count, rng_seed):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    total = 0
    for uid in range(1, count + 1):
        rng = random.Random(rng_seed * 1_000_003 + uid)
        date = FIRST_DATE + uid * 300
        name = rng.choice(NAMES)
        subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 11))) for _ in range(rng.randint(2, 6))]
        text = (
            f"From: {name} <{name.lower()}@example.org>\r\n"
            f"To: <user@example.test>\r\n"
            f"Subject: {subject.capitalize()}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(date))}\r\n"
            f"Message-ID: <{rng_seed}.{uid}@bench.example.org>\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n"
            f"\r\n" + "".join(l.capitalize() + ".\r\n" for l in lines)
        ).encode()
        r = rng.randrange(100)
        flags = "" if r < 8 else "FS" if r < 12 else "RS" if r < 22 else "S"
        size = len(text)
        file = os.path.join(path, "cur", f"{date}.M{uid}P1Q{uid}.bench,S={size},W={size},U={uid}:2,{flags}")
        with open(file, "wb") as f:
            f.write(text)
        os.utime(file, (date, date))
        total += size
    print(f"seeded {path}: {count} messages, {total} bytes")


class Imap:
    """One connection; responses are read to their tagged line (no literals expected)."""

    def __init__(self, host, port, timeout=1200):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0
        greeting = self.sock.recv(65536)
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"greeting {greeting!r}")

    def cmd(self, text):
        """Sends one command; returns (tagged status, everything received, seconds, bytes)."""
        self.n += 1
        tag = b"t%d " % self.n
        data = bytearray()
        t0 = time.perf_counter()
        self.sock.sendall(tag + text.encode() + b"\r\n")
        while True:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise RuntimeError(f"connection closed during {text[:60]!r}")
            data += chunk
            if data.endswith(b"\r\n"):
                start = data.rfind(b"\r\n", 0, len(data) - 2)
                start = start + 2 if start >= 0 else 0
                if data.startswith(tag, start):
                    t1 = time.perf_counter()
                    status = bytes(data[start + len(tag):-2]).decode(errors="replace")
                    return status, bytes(data), t1 - t0, len(data)

    def ok(self, text):
        status, data, secs, size = self.cmd(text)
        if not status.startswith("OK"):
            raise RuntimeError(f"{text[:80]!r} answered {status!r}")
        return data, secs, size

    def login(self, user):
        self.ok(f'LOGIN {user} "{PASSWORD}"')
        return self

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def uid_set(uids):
    return ",".join(str(u) for u in uids)


def expand(spec):
    out = set()
    for part in spec.split(","):
        if ":" in part:
            a, b = map(int, part.split(":"))
            out.update(range(min(a, b), max(a, b) + 1))
        elif part:
            out.add(int(part))
    return out


FETCH = re.compile(rb"^\* \d+ FETCH \((.*)\)\r?$", re.M)
UID = re.compile(rb"\bUID (\d+)")
FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


def fetched(data):
    """{uid: flags bytes} of the FETCH responses in data."""
    out = {}
    for m in FETCH.finditer(data):
        body = m.group(1)
        u, f = UID.search(body), FLAGS.search(body)
        if u:
            out[int(u.group(1))] = f.group(1) if f else None
    return out


def change(host, port, user, flag, gone):
    """Another session's changes: +FLAGS.SILENT (\\Flagged) on flag, then \\Deleted and
    UID EXPUNGE on gone. Returns (UIDVALIDITY, HIGHESTMODSEQ before, STORE s, expunge s)."""
    c = Imap(host, port).login(user)
    c.ok("ENABLE CONDSTORE")
    data, _, _ = c.ok("SELECT INBOX (CONDSTORE)")
    validity = int(re.search(rb"\[UIDVALIDITY (\d+)\]", data).group(1))
    modseq = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", data).group(1))
    _, store_s, _ = c.ok(f"UID STORE {uid_set(flag)} +FLAGS.SILENT (\\Flagged)")
    expunge_s = 0.0
    if gone:
        _, t1, _ = c.ok(f"UID STORE {uid_set(gone)} +FLAGS.SILENT (\\Deleted)")
        _, t2, _ = c.ok(f"UID EXPUNGE {uid_set(gone)}")
        expunge_s = t1 + t2
    c.close()
    return validity, modseq, store_s, expunge_s


def resync(host, port, user, validity, modseq, flag, gone):
    """A new session's SELECT INBOX (QRESYNC (validity modseq)), checked: VANISHED
    (EARLIER) names exactly gone, and every other UID of flag comes with \\Flagged.
    Returns (seconds, bytes, FETCH answers, UIDs vanished)."""
    c = Imap(host, port).login(user)
    c.ok("ENABLE QRESYNC")
    data, secs, size = c.ok(f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
    c.close()
    vanished = set()
    for m in re.finditer(rb"^\* VANISHED \(EARLIER\) ([0-9:,]+)", data, re.M):
        vanished |= expand(m.group(1).decode())
    changed = fetched(data)
    missing = [u for u in flag if u not in gone and b"\\Flagged" not in (changed.get(u) or b"")]
    if vanished != set(gone) or missing:
        raise RuntimeError(f"resync: VANISHED {sorted(vanished)[:20]} (expected {gone}); "
                           f"{len(missing)} changed UIDs without their new flags, e.g. {missing[:5]}")
    return secs, size, len(changed), len(vanished)


def round_(host, port, user, rnd, changes, expunges):
    res = {}
    # 0. a quiet mailbox: QUIET s after the last change, one untimed look (Dovecot's
    # maildir sync treats a folder changed within the last second as dirty and reads it
    # again at the next look; mailsite brings its shared index up to date)
    time.sleep(QUIET)
    c = Imap(host, port).login(user)
    _, res["look_s"], _ = c.ok("SELECT INBOX")   # in the warm-up round: the indexing of the files
    c.close()
    # 1. full: SELECT, then every UID's flags
    c = Imap(host, port).login(user)
    data, res["select_s"], res["select_bytes"] = c.ok("SELECT INBOX")
    exists = int(re.search(rb"\* (\d+) EXISTS", data).group(1))
    data, res["fetch_s"], res["fetch_bytes"] = c.ok("UID FETCH 1:* (FLAGS)")
    flags = fetched(data)
    c.close()
    if len(flags) != exists:
        raise RuntimeError(f"SELECT said {exists} EXISTS, UID FETCH 1:* answered {len(flags)} UIDs")
    res["exists"] = exists
    # 2 x CHANGES unflagged UIDs spread over the mailbox (the same on both servers): every
    # other one for the flag-only changes, the rest for the changes with expunges
    cands = sorted(u for u, f in flags.items() if b"\\Flagged" not in f)
    step = len(cands) / (2 * changes)
    offset = (rnd * 0.6180339887) % 1.0
    spread = sorted({cands[min(len(cands) - 1, int((i + offset) * step))] for i in range(2 * changes)})
    only, mixed = spread[0::2], spread[1::2]
    gone = mixed[:: max(1, len(mixed) // expunges)][:expunges] if expunges else []
    # 3. flag changes alone, then the resync
    validity, modseq, res["store_s"], _ = change(host, port, user, only, [])
    res["resync_flags_s"], res["resync_flags_bytes"], n, _ = resync(host, port, user, validity, modseq, only, [])
    res["resync_flags_fetches"] = n
    # 4. flag changes and expunges, then the resync
    validity, modseq, _, res["expunge_s"] = change(host, port, user, mixed, gone)
    res["resync_s"], res["resync_bytes"], res["resync_fetches"], res["resync_vanished"] = \
        resync(host, port, user, validity, modseq, mixed, gone)
    res.update(changes=len(mixed), expunged=len(gone))
    print(json.dumps(res))


# ------------------------------------------------------------ memory
def children():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(root):
    kids, out, todo = children(), [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def field(path, name):
    with open(path) as f:
        for line in f:
            if line.startswith(name):
                return int(line.split()[1])
    return 0


def measure(root):
    rss = pss = n = threads = 0
    names = {}
    for p in tree(root):
        try:
            r = field(f"/proc/{p}/status", "VmRSS:")
            threads += field(f"/proc/{p}/status", "Threads:")
            s = field(f"/proc/{p}/smaps_rollup", "Pss:")
            with open(f"/proc/{p}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        rss, pss, n = rss + r, pss + s, n + 1
        names[comm] = names.get(comm, 0) + 1
    return {"rss_kb": rss, "pss_kb": pss, "processes": n, "threads": threads, "by_name": names}


def settle(root, expect_imap=None):
    """Waits SETTLE s (Dovecot: first until the imap-login processes are gone and every
    imap process is there), then until the summed RSS holds still (two readings 1 s apart
    within 64 kB; at most 20 s more), and returns the last reading."""
    for _ in range(100):
        m = measure(root)
        if expect_imap is None or (m["by_name"].get("imap", 0) == expect_imap and "imap-login" not in m["by_name"]):
            break
        time.sleep(0.1)
    time.sleep(SETTLE)
    last = measure(root)
    for _ in range(20):
        time.sleep(1)
        now = measure(root)
        if abs(now["rss_kb"] - last["rss_kb"]) <= 64:
            return now
        last = now
    return last


def open_selected(host, port, users, parallel):
    def one(user):
        c = Imap(host, port, timeout=300).login(user)
        c.ok("SELECT INBOX")
        return c
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, users))


def memory(host, port, root, idle_users, first_users, connections, parallel):
    is_dovecot = any(name == "dovecot" for name in measure(root)["by_name"])
    imap_n = (lambda n: n) if is_dovecot else (lambda n: None)
    out = {}
    t = time.perf_counter()
    for c in open_selected(host, port, idle_users, parallel):
        c.close()
    out["warm_s"] = time.perf_counter() - t
    out["base"] = settle(root, imap_n(0))
    t = time.perf_counter()
    idle = open_selected(host, port, [idle_users[i % len(idle_users)] for i in range(connections)], parallel)
    out["idle_open_s"] = time.perf_counter() - t
    out["idle"] = settle(root, imap_n(connections))
    # the first logins in two halves: the second half alone shows the marginal cost
    half = len(first_users) // 2
    t = time.perf_counter()
    first = open_selected(host, port, first_users[:half], parallel)
    out["first_half"] = settle(root, imap_n(connections + half))
    first += open_selected(host, port, first_users[half:], parallel)
    out["first_open_s"] = time.perf_counter() - t
    out["first"] = settle(root, imap_n(connections + len(first_users)))
    for c in first:
        c.close()
    out["first_closed"] = settle(root, imap_n(connections))
    for c in idle:
        c.close()
    print(json.dumps(out))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "seed":
        seed(args[0], int(args[1]), int(args[2]))
    elif cmd == "round":
        round_(args[0], int(args[1]), args[2], int(args[3]), int(args[4]), int(args[5]))
    elif cmd == "memory":
        memory(args[0], int(args[1]), int(args[2]), args[3].split(","), args[4].split(","), int(args[5]), int(args[6]))
    else:
        sys.exit(f"unknown command {cmd}")


main()
PY

# wait_greeting NAME PID IP PORT: poll until IP:PORT greets with "* OK".
wait_greeting() {
    local name=$1 pid=$2 ip=$3 port=$4 i line
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        line=$(timeout 2 bash -c "exec 3<>/dev/tcp/$ip/$port && head -n 1 <&3" 2>/dev/null || true)
        [[ "$line" == "* OK"* ]] && return 0
        sleep 0.1
    done
    die "$name did not greet on $ip:$port within 15 s"
}

# ---------------------------------------------------------------- 1. the Maildir files
log "writing the Maildir files: scale with $MESSAGES messages, $((IDLE_USERS + FIRST_USERS)) users with $SMALL_MESSAGES"
POOL="$TMP/pool"
t0=$SECONDS
python3 "$CLIENT" seed "$POOL/scale" "$MESSAGES" 1 >>"$TMP/seed.log" || die "writing the messages failed"
python3 "$CLIENT" seed "$POOL/small" "$SMALL_MESSAGES" 2 >>"$TMP/seed.log" || die "writing the messages failed"
log "$(head -1 "$TMP/seed.log") ($((SECONDS - t0)) s)"
# place ROOT: the users' folders under ROOT: a copy of the pool's files for scale, hard links to
# one copy of the small pool for the others (each server gets its own copies)
place() {
    local root=$1 u
    mkdir -p "$root/scale" "$root/.small"
    cp -a "$POOL/scale/." "$root/scale/"
    cp -a "$POOL/small/." "$root/.small/"
    for u in "${IDLE_LIST[@]}" "${FIRST_LIST[@]}"; do mkdir -p "$root/$u"; cp -al "$root/.small/." "$root/$u/"; done
    rm -rf "$root/.small"
}

# ---------------------------------------------------------------- 2. mailsite: config, users, data
TARGETS=(dovecot)
if [ "$PEERS_ONLY" = 0 ]; then
    TARGETS=(mailsite dovecot)
    MS="$TMP/mailsite"
    mkdir -p "$MS/data/mail"
    cat >"$MS/site.toml" <<EOF
# Generated by bench/imap-scale.sh: one mailbox server on $MAILSITE_IP, nothing else running.
[site]
domain = "example.test"
other_domains = []
name = "IMAP scale benchmark"
short_name = "bench"
data_dir = "$MS/data"

[node]
roles = ["mailbox"]

[http]
listen = "$MAILSITE_IP:18080"
addresses = ["$MAILSITE_IP"]

[dns]
listen = "$MAILSITE_IP:18053"
addresses = ["$MAILSITE_IP"]
ttl = 300
alias_ttl = 30
outbox_ttl = 10

[ports]
imap = $IMAP_PORT
imaps = 18993
pop3 = 18110
pop3s = 18995
smtp = 18025
submission = 18587
submissions = 18465
lmtp = 18024
managesieve = 18190

[[mailbox]]
name = "mailbox1"
addresses = ["$MAILSITE_IP"]

[[sorter]]
name = "sorter1"
addresses = ["$MAILSITE_IP"]

[letters]
"a-z" = "mailbox1"
other = "mailbox1"
EOF
    msite() { "$MAILSITE_BIN" --config "$MS/site.toml" "$@"; }
    msite check-config >"$TMP/check-config.log" 2>&1 || die "mailsite check-config: $(cat "$TMP/check-config.log")"
    log "mailsite: adding $((1 + IDLE_USERS + FIRST_USERS)) users (user add scale, user import the others with its hash)"
    echo "$PASSWORD" | msite user add scale >"$TMP/useradd.log" 2>&1 || die "mailsite user add scale failed: $(cat "$TMP/useradd.log")"
    python3 - "$MS/data/site.db" "$TMP/users.csv" "${IDLE_LIST[@]}" "${FIRST_LIST[@]}" <<'PY' || die "writing the user list failed"
import sqlite3, sys
db, out, users = sys.argv[1], sys.argv[2], sys.argv[3:]
(h,) = sqlite3.connect(db).execute("SELECT password_hash FROM users WHERE username = 'scale'").fetchone()
with open(out, "w") as f:
    f.write("username,name,prefer,password_hash\n")
    for u in users:
        f.write(f"{u},Bench {u},imap,{h}\n")
PY
    msite user import "$TMP/users.csv" >"$TMP/import.log" 2>&1 || die "mailsite user import failed: $(tail -5 "$TMP/import.log")"
    place "$MS/data/mail"
    log "mailsite: indexing the $((IDLE_USERS + FIRST_USERS)) small INBOXes (mailsite mailbox reindex)"
    for u in "${IDLE_LIST[@]}" "${FIRST_LIST[@]}"; do
        msite mailbox reindex "$u" >>"$TMP/reindex.log" 2>&1 || die "mailsite mailbox reindex $u failed: $(tail -3 "$TMP/reindex.log")"
    done
fi

# ---------------------------------------------------------------- 3. Dovecot: config, users, data
DC="$TMP/dovecot"
mkdir -p "$DC/home" "$DC/run" "$DC/state"
if [ "$PEERS_ONLY" = 0 ]; then
    hash=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT password_hash FROM users WHERE username = '"'scale'"'").fetchone()[0])' "$MS/data/site.db")
    hash="{ARGON2ID}$hash"
else
    hash=$(doveadm pw -s ARGON2ID -p "$PASSWORD")
fi
for u in scale "${IDLE_LIST[@]}" "${FIRST_LIST[@]}"; do echo "$u:$hash::::::"; done >"$DC/passwd"
chmod 644 "$DC/passwd"
place "$DC/mail"
rm -rf "$POOL"
chown -R mail:mail "$DC/mail" "$DC/home"
MAIL_UID=$(id -u mail)
cat >"$DC/dovecot.conf" <<EOF
# Generated by bench/imap-scale.sh: IMAP on $DOVECOT_IP over a Maildir copy of mailsite's data.
# Defaults everywhere else (a process per connection, mail_fsync = optimized).
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailsite-bench-imap-scale
log_path = $DC/dovecot.log
protocols = imap
listen = $DOVECOT_IP
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
mail_location = maildir:$DC/mail/%n
first_valid_uid = $MAIL_UID
mail_max_userip_connections = 20000
default_process_limit = $((IDLE_CONNECTIONS + FIRST_USERS + 100))
default_client_limit = $((2 * (IDLE_CONNECTIONS + FIRST_USERS) + 1000))
passdb {
  driver = passwd-file
  args = $DC/passwd
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$DC/home/%n
}
service imap-login {
  inet_listener imap {
    address = $DOVECOT_IP
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
dovecot -c "$DC/dovecot.conf" -n >"$DC/doveconf.log" 2>&1 || die "Dovecot rejects its config: $(cat "$DC/doveconf.log")"

# ---------------------------------------------------------------- 4. start both
# free IP PORT: nothing may listen there yet (another run would answer in our servers' place)
free() { ! timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null || die "something already listens on $1:$2 (another run?)"; }
free "$DOVECOT_IP" "$IMAP_PORT"
[ "$PEERS_ONLY" = 1 ] || free "$MAILSITE_IP" "$IMAP_PORT"
declare -A IP_OF=([dovecot]=$DOVECOT_IP [mailsite]=$MAILSITE_IP)
declare -A LABEL
LABEL[dovecot]="Dovecot $(dovecot --version | awk '{ print $1 }')"
log "starting ${LABEL[dovecot]} on $DOVECOT_IP:$IMAP_PORT"
dovecot -F -c "$DC/dovecot.conf" >"$DC/stdout.log" 2>&1 &
PID_OF[dovecot]=$!
PIDS+=("${PID_OF[dovecot]}")
wait_greeting Dovecot "${PID_OF[dovecot]}" "$DOVECOT_IP" "$IMAP_PORT"
log "dovecot: indexing the $((IDLE_USERS + FIRST_USERS)) small INBOXes (doveadm mailbox status)"
for u in "${IDLE_LIST[@]}" "${FIRST_LIST[@]}"; do
    doveadm -c "$DC/dovecot.conf" mailbox status -u "$u" messages INBOX >>"$TMP/doveadm.log" 2>&1 \
        || die "doveadm mailbox status -u $u failed: $(tail -3 "$TMP/doveadm.log")"
done
grep -q "messages=$SMALL_MESSAGES" "$TMP/doveadm.log" || die "Dovecot does not see $SMALL_MESSAGES messages: $(tail -3 "$TMP/doveadm.log")"
if [ "$PEERS_ONLY" = 0 ]; then
    v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    LABEL[mailsite]="mailsite${v:+ $v}"
    log "starting ${LABEL[mailsite]} ($MAILSITE_BIN) on $MAILSITE_IP:$IMAP_PORT"
    "$MAILSITE_BIN" --config "$MS/site.toml" serve >>"$TMP/mailsite.log" 2>&1 &   # the binary itself, so $! is its PID
    PID_OF[mailsite]=$!
    PIDS+=("${PID_OF[mailsite]}")
    wait_greeting mailsite "${PID_OF[mailsite]}" "$MAILSITE_IP" "$IMAP_PORT"
fi
alive() { kill -0 "${PID_OF[$1]}" 2>/dev/null || die "$1 (PID ${PID_OF[$1]}) died; see its log in $TMP"; }

# json FILE KEY...: a value from the client's JSON line (keys descend into objects)
json() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); [v := v[k] for k in sys.argv[2:]]; print(v)' "$@"; }

# ---------------------------------------------------------------- 5. memory
declare -A MEM
if want memory; then
    for name in "${TARGETS[@]}"; do
        log "$name: memory: $IDLE_USERS users log in once, then $IDLE_CONNECTIONS idle selected connections, then $FIRST_USERS first logins"
        out="$TMP/memory.$name.json"
        python3 "$CLIENT" memory "${IP_OF[$name]}" "$IMAP_PORT" "${PID_OF[$name]}" "$(join_by_comma "${IDLE_LIST[@]}")" \
            "$(join_by_comma "${FIRST_LIST[@]}")" "$IDLE_CONNECTIONS" "$PARALLEL" >"$out" 2>"$TMP/memory.$name.err" \
            || die "the memory test against $name failed: $(tail -5 "$TMP/memory.$name.err")"
        alive "$name"
        # per idle connection and per first login, KiB, from RSS and from PSS
        for k in rss pss; do
            b=$(json "$out" base "${k}_kb") i=$(json "$out" idle "${k}_kb") f=$(json "$out" first "${k}_kb") a=$(json "$out" first_closed "${k}_kb")
            MEM[$name.idle.$k]=$(awk -v b="$b" -v i="$i" -v n="$IDLE_CONNECTIONS" 'BEGIN { printf "%.1f", (i - b) / n }')
            MEM[$name.first.$k]=$(awk -v i="$i" -v f="$f" -v m="$FIRST_USERS" -v c="${MEM[$name.idle.$k]}" 'BEGIN { printf "%.1f", (f - i) / m - c }')
            h=$(json "$out" first_half "${k}_kb")
            MEM[$name.second.$k]=$(awk -v h="$h" -v f="$f" -v m="$((FIRST_USERS - FIRST_USERS / 2))" -v c="${MEM[$name.idle.$k]}" 'BEGIN { printf "%.1f", (f - h) / m - c }')
            MEM[$name.kept.$k]=$(awk -v i="$i" -v a="$a" -v m="$FIRST_USERS" 'BEGIN { printf "%.1f", (a - i) / m }')
            MEM[$name.raw.$k]="$b -> $i -> $h -> $f -> $a"   # the same as chain ${k}_kb
        done
        chain() { local st; for st in base idle first_half first first_closed; do json "$out" "$st" "$1"; done | paste -sd' ' | sed 's/ / -> /g'; }
        MEM[$name.procs]="$(chain processes); threads $(chain threads)"
        MEM[$name.times]=$(python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); print("%.1f s, %.1f s, %.1f s" % (v["warm_s"], v["idle_open_s"], v["first_open_s"]))' "$out")
        log "$name: ${MEM[$name.idle.rss]} KiB RSS (${MEM[$name.idle.pss]} PSS) per idle connection, ${MEM[$name.first.rss]} KiB RSS (${MEM[$name.first.pss]} PSS) per first login beyond that"
    done
fi

# ---------------------------------------------------------------- 6. timing
declare -A FIRST_SELECT
if want timing; then
    round() {  # round NAME ROUND OUT
        python3 "$CLIENT" round "${IP_OF[$1]}" "$IMAP_PORT" scale "$2" "$CHANGES" "$EXPUNGES" >"$3" 2>"$3.err" \
            || die "timing round $2 against $1 failed: $(tail -5 "$3.err")"
        alive "$1"
    }
    for name in "${TARGETS[@]}"; do
        log "$name: warm-up round (its first SELECT indexes the $MESSAGES files)"
        round "$name" 0 "$TMP/timing.$name.0.json"
        FIRST_SELECT[$name]=$(json "$TMP/timing.$name.0.json" look_s)
        log "$name: first SELECT ${FIRST_SELECT[$name]} s"
    done
    for r in $(seq 1 "$ROUNDS"); do
        order=("${TARGETS[@]}")
        if [ $((r % 2)) = 0 ] && [ ${#TARGETS[@]} = 2 ]; then order=("${TARGETS[1]}" "${TARGETS[0]}"); fi
        for name in "${order[@]}"; do
            out="$TMP/timing.$name.$r.json"
            round "$name" "$r" "$out"
            log "$name (round $r/$ROUNDS): SELECT $(json "$out" select_s) s, UID FETCH 1:* (FLAGS) $(json "$out" fetch_s) s, QRESYNC resync $(json "$out" resync_flags_s) s after flag changes, $(json "$out" resync_s) s after flag changes and expunges ($(json "$out" resync_fetches) FETCH, $(json "$out" resync_vanished) VANISHED)"
        done
    done
fi

# ---------------------------------------------------------------- 7. report
# med NAME KEY: the median over the rounds of one figure
med() {
    local name=$1 key=$2 r
    for r in $(seq 1 "$ROUNDS"); do json "$TMP/timing.$name.$r.json" "$key"; done | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
all_rounds() { local r; for r in $(seq 1 "$ROUNDS"); do json "$TMP/timing.$1.$r.json" "$2"; done | awk '{ printf "%s%.4f", s, $1; s = ", " }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = (b > 0 ? a / b : 0); printf (r >= 0.1 ? "%.2fx" : "%.3fx"), r }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t ? "**met**" : "**missed**") }'; }

echo
echo "### IMAP at scale ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with the client; INBOX of $MESSAGES messages; median of $ROUNDS round(s); resync after $CHANGES flag changes, $EXPUNGES of them expunged; memory: $IDLE_CONNECTIONS idle selected connections over $IDLE_USERS users, $FIRST_USERS first logins, INBOXes of $SMALL_MESSAGES messages; parts: $PARTS)"
echo
if [ "$PEERS_ONLY" = 0 ]; then
    echo "| measure | ${LABEL[dovecot]} | ${LABEL[mailsite]} | mailsite / Dovecot | target |"
    echo "|---|---:|---:|---:|---|"
else
    echo "| measure | ${LABEL[dovecot]} |"
    echo "|---|---:|"
fi
row() { if [ "$PEERS_ONLY" = 0 ]; then echo "| $1 | $2 | $3 | ${4:-} | ${5:-} |"; else echo "| $1 | $2 |"; fi; }
declare -A T
if want timing; then
    for name in "${TARGETS[@]}"; do
        for k in select_s fetch_s resync_flags_s resync_s store_s expunge_s select_bytes fetch_bytes resync_flags_bytes resync_bytes \
                 resync_flags_fetches resync_fetches resync_vanished; do
            T[$name.$k]=$(med "$name" "$k")
        done
        T[$name.full_s]=$(for r in $(seq 1 "$ROUNDS"); do python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); print(v["select_s"] + v["fetch_s"])' "$TMP/timing.$name.$r.json"; done | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    done
    M() { [ "$PEERS_ONLY" = 0 ] && "$@"; }   # a mailsite figure, or nothing with --peers-only
    trow() {  # trow LABEL KEY [TARGET]: a time row in ms
        row "$1" "$(ms "${T[dovecot.$2]}")" "$(M ms "${T[mailsite.$2]:-0}")" "$(M ratio "${T[mailsite.$2]:-0}" "${T[dovecot.$2]}")" "${3:-}"
    }
    rr() { awk -v a="${T[$1.$2]}" -v b="${T[$1.full_s]}" 'BEGIN { printf "%.3fx", a / b }'; }
    br() { awk -v a="${T[$1.$2]}" -v b="${T[$1.select_bytes]}" -v c="${T[$1.fetch_bytes]}" 'BEGIN { printf "%d / %d", a, b + c }'; }
    trow "SELECT INBOX (quiet mailbox), ms" select_s "time against Dovecot"
    trow "UID FETCH 1:* (FLAGS), ms" fetch_s "time against Dovecot"
    trow "full resync without QRESYNC: SELECT + UID FETCH 1:* (FLAGS), ms" full_s
    trow "QRESYNC resync (SELECT INBOX (QRESYNC (uidvalidity modseq))) after $CHANGES flag changes, ms" resync_flags_s
    trow "QRESYNC resync after $CHANGES flag changes, $EXPUNGES of them then expunged, ms" resync_s
    row "resync / full resync, time: flag changes only; with expunges" "$(rr dovecot resync_flags_s); $(rr dovecot resync_s)" \
        "$(M rr mailsite resync_flags_s); $(M rr mailsite resync_s)" "" "O(changes): far below 1"
    row "bytes received, resync / full resync: flag changes only; with expunges" "$(br dovecot resync_flags_bytes); $(br dovecot resync_bytes)" \
        "$(M br mailsite resync_flags_bytes); $(M br mailsite resync_bytes)"
    cr() { echo "${T[$1.resync_flags_fetches]} FETCH; ${T[$1.resync_fetches]} FETCH + ${T[$1.resync_vanished]} VANISHED"; }
    row "resync answers (checked)" "$(cr dovecot)" "$(M cr mailsite)"
    trow "(the changes: UID STORE +FLAGS.SILENT on $CHANGES UIDs, ms)" store_s
    trow "(the changes: UID STORE +FLAGS.SILENT (\\Deleted) and UID EXPUNGE of $EXPUNGES, ms)" expunge_s
    fs() { awk -v s="$1" 'BEGIN { printf "%.2f", s }'; }
    row "(first SELECT after the files were put in place: indexing $MESSAGES messages, s)" "$(fs "${FIRST_SELECT[dovecot]}")" \
        "$(M fs "${FIRST_SELECT[mailsite]:-0}")" "$(M ratio "${FIRST_SELECT[mailsite]:-0}" "${FIRST_SELECT[dovecot]}")"
fi
if want memory; then
    if [ "$PEERS_ONLY" = 0 ]; then
        row "memory per idle selected connection, KiB (mailsite: VmRSS; Dovecot: PSS of its process tree)" "${MEM[dovecot.idle.pss]}" "${MEM[mailsite.idle.rss]}" \
            "$(ratio "${MEM[mailsite.idle.rss]}" "${MEM[dovecot.idle.pss]}")" "<= 30 KiB: $(verdict "${MEM[mailsite.idle.rss]}" 30)"
        row "same, Dovecot's RSS summed over its processes" "${MEM[dovecot.idle.rss]}" "${MEM[mailsite.idle.rss]}" "$(ratio "${MEM[mailsite.idle.rss]}" "${MEM[dovecot.idle.rss]}")"
        row "first login of a user, beyond an idle connection, KiB (same measures)" "${MEM[dovecot.first.pss]}" "${MEM[mailsite.first.rss]}" \
            "" "<= 256 KiB: $(verdict "${MEM[mailsite.first.rss]}" 256)"
        row "(same, the second $((FIRST_USERS - FIRST_USERS / 2)) first logins alone)" "${MEM[dovecot.second.pss]}" "${MEM[mailsite.second.rss]}"
        row "(kept per user after that first session logged out, KiB)" "${MEM[dovecot.kept.pss]}" "${MEM[mailsite.kept.rss]}"
    else
        row "memory per idle selected connection, KiB PSS / RSS" "${MEM[dovecot.idle.pss]} / ${MEM[dovecot.idle.rss]}"
        row "first login beyond that, KiB PSS / RSS" "${MEM[dovecot.first.pss]} / ${MEM[dovecot.first.rss]}"
    fi
fi
echo
if want timing; then
    for name in "${TARGETS[@]}"; do
        echo "- $name, seconds of each round: SELECT $(all_rounds "$name" select_s); UID FETCH 1:* (FLAGS) $(all_rounds "$name" fetch_s); QRESYNC resync after flag changes $(all_rounds "$name" resync_flags_s), with expunges $(all_rounds "$name" resync_s); median bytes: SELECT ${T[$name.select_bytes]}, FLAGS fetch ${T[$name.fetch_bytes]}, resyncs ${T[$name.resync_flags_bytes]} and ${T[$name.resync_bytes]}"
    done
fi
if want memory; then
    for name in "${TARGETS[@]}"; do
        echo "- $name memory, kB summed over its process tree (baseline -> $IDLE_CONNECTIONS idle -> + $((FIRST_USERS / 2)) first logins -> + $((FIRST_USERS - FIRST_USERS / 2)) more -> those $FIRST_USERS logged out): VmRSS ${MEM[$name.raw.rss]}; Pss ${MEM[$name.raw.pss]}; processes ${MEM[$name.procs]}; set-up time (warm logins, idle connections, first logins) ${MEM[$name.times]}"
    done
fi
