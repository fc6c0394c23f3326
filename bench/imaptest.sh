#!/usr/bin/env bash
# bench/imaptest.sh - Dovecot's imaptest as a load generator: its default random command mix
# (10 clients on one user's INBOX, every answer checked against its model of the mailbox),
# with and without logouts between sessions, plus LIST and STATUS latency on one connection;
# mailsite against Dovecot (dovecot-imapd) on the same data, in the same run.
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run takes about 5 minutes
# (ROUNDS=3, DURATION=20) once mailsite and imaptest are built; building mailsite adds about 4:
#   bash bench/imaptest.sh                          # builds target/release/mailsite first
#   bash bench/imaptest.sh /path/to/mailsite        # explicit mailsite binary (not built)
#   ROUNDS=1 DURATION=10 bash bench/imaptest.sh     # a quick trial
#   PARTS=latency bash bench/imaptest.sh            # LIST/STATUS latency alone (PARTS=mix: imaptest alone)
#   bash bench/imaptest.sh --peers-only             # Dovecot only
#
# What it does:
#   1. installs what is missing: apt-get dovecot-core dovecot-imapd python3; imaptest comes
#      from scripts/imaptest-build (built once into target/imaptest/ from tests/vendor, which
#      needs dovecot-dev autoconf automake libtool pkg-config gcc make: installed if the binary
#      is not there yet; IMAPTEST=path skips it); builds mailsite (cargo build --release -p
#      mailsite) unless given a binary;
#   2. one user, `bench`, on both servers with the same argon2id hash (so a LOGIN costs both
#      the same): mailsite: an isolated site config (role mailbox only, mailbox1 on MAILSITE_IP,
#      IMAP 10143, every other port its own), `mailsite user add bench`; Dovecot: a passwd-file
#      with that hash ({ARGON2ID}), `dovecot -F` with its own dovecot.conf and base_dir on
#      DOVECOT_IP:10143 (maildir:, static userdb as user 'mail', mail_max_userip_connections
#      raised, everything else default: a process per connection, fsync settings, no auth cache);
#   3. the same mailbox tree on both: an empty INBOX and MAILBOXES=20 folders created over IMAP
#      (Sent, Drafts, Trash, Junk, Archive with three years, Lists with three lists, Projects
#      with three, Committees with two, Receipts; each server's own hierarchy separator), then
#      whatever either server has beyond those created on the other, so that LIST "" "*"
#      answers the same names on both (checked);
#   4. imaptest (MIX): WARMUP s unmeasured per server, then ROUNDS rounds, servers alternating
#      (mailsite first in odd rounds), each round two runs per server:
#        imaptest host=IP port=10143 user=bench pass=... mbox=MBOX clients=CLIENTS secs=DURATION seed=ROUND output=FILE
#        the same with logout=0 (each client logs in once and stays, as real clients do)
#      imaptest's default mix: LOGIN, then per session LIST "" * (50%), STATUS (50%), SELECT,
#      FETCH and FETCH2 (random ranges, flags, envelopes, bodies), STORE (50%), flagging
#      \Deleted and EXPUNGE, APPEND of messages from MBOX (keeping the INBOX near 30 messages),
#      LOGOUT (not with logout=0); every untagged answer is checked against its model of the
#      mailbox. MBOX is imaptest's own src/tests/default.mbox (6 short messages), as the tests
#      run it. Figure: the sum of imaptest's "Totals:" line (commands completed, every type)
#      divided by the run's wall-clock seconds (DURATION plus the clients' final LOGOUTs);
#      per command: the count and imaptest's mean ms (from its output=FILE per-second timers);
#      the CPU time (user + system) the server's processes used during the run, from /proc
#      (mailsite's one process; Dovecot's master and every process under it, ended ones
#      through the master's cutime/cstime), per command completed;
#      the table shows each server's median round;
#   5. errors, over every imaptest run (warm-up included): imaptest's "Error:" lines, those of
#      them that are BAD answers ("BAD reply for command", untagged "BAD received"),
#      disconnects it saw ("Client disconnected", "Unexpected BYE"), and connections that
#      ended without LOGOUT (imaptest reconnects silently when a server closes a connection:
#      LOGINs beyond LOGOUTs in the default mix, beyond CLIENTS with logout=0); mailsite's log
#      is searched for ERROR, WARN and "panicked", Dovecot's for Error/Panic/Fatal;
#   6. latency (LATENCY), per round after the imaptest runs, servers in the same order: a Python
#      client (raw socket, TCP_NODELAY, one command at a time, LOGIN never timed) logs in and
#      sends 20 untimed warm-up commands, then LATENCY_N x `LIST "" "*"` (every answer checked:
#      the whole tree), then LATENCY_N x `STATUS INBOX (MESSAGES UNSEEN UIDNEXT)`, then (for
#      reference: what a round trip costs without work) LATENCY_N x NOOP, each timed with
#      time.perf_counter() from before it is sent to its tagged OK received; p50 and p99 per
#      round, the table the median over rounds (imaptest itself only gives mean ms per
#      command type, no percentiles);
#   7. prints a markdown table: commands/s against the targets (default mix >= 1.5x Dovecot,
#      logout=0 >= 1.2x), LIST and STATUS p50 (<= Dovecot's) and p99, the error counts (0 for
#      mailsite), then the per-command counts and mean times of the median rounds.
# All daemons are started by this script and stopped by PID on exit.
#
# Environment knobs:
#   DURATION=20 ROUNDS=3 WARMUP=5     imaptest seconds per run, rounds (median shown), unmeasured warm-up per server
#   CLIENTS=10                        imaptest clients
#   PARTS="mix latency"               which measurements to make
#   LATENCY_N=500                     timed LIST and STATUS commands each, per round
#   IMAPTEST=path                     imaptest binary (default: what scripts/imaptest-build prints)
#   MBOX=path                         messages imaptest APPENDs (default: its src/tests/default.mbox)
#   MAILSITE_IP=127.0.0.61 DOVECOT_IP=127.0.0.62
#   KEEP_TMP=1                        keep the temp dir (configs, logs, imaptest's output)
#   MAILSITE_LOG=filter               mailsite's RUST_LOG instead of the default below; with
#                                     KEEP_TMP=1 and MAILSITE_LOG=info,sqlx::query=debug its log
#                                     in the temp dir has a line per SQL statement
#
# Caveat: imaptest and the latency client share this machine's cores with the server under
# test; compare figures from the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
MAILSITE_BIN=
BENCH=imaptest
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-5}
CLIENTS=${CLIENTS:-10}
PARTS=${PARTS:-mix latency}
LATENCY_N=${LATENCY_N:-500}
MAILSITE_IP=${MAILSITE_IP:-127.0.0.61}
DOVECOT_IP=${DOVECOT_IP:-127.0.0.62}
IMAP_PORT=10143
USER_NAME=bench
NCPU=$(nproc)
want() { [[ " $PARTS " == *" $1 "* ]]; }
join_by_comma() { local IFS=,; echo "$*"; }

# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi
# Without init, the package's own dovecot service is never started; we never use its config.
if [ -z "${IMAPTEST:-}" ]; then
    if ! [ -x "${CARGO_TARGET_DIR:-$REPO/target}/imaptest/imaptest-924f619/src/imaptest" ]; then
        missing=()
        for p in dovecot-dev autoconf automake libtool pkg-config gcc make; do
            dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then log "apt-get install ${missing[*]} (to build imaptest)"; apt_install "${missing[@]}"; fi
        log "building imaptest (scripts/imaptest-build)"
    fi
    IMAPTEST=$("$REPO/scripts/imaptest-build") || die "scripts/imaptest-build failed"
fi
[ -x "$IMAPTEST" ] || die "imaptest not found or not executable: $IMAPTEST"
MBOX=${MBOX:-$(dirname "$IMAPTEST")/tests/default.mbox}
[ -f "$MBOX" ] || die "no mbox for imaptest to append from: $MBOX"
MBOX_MESSAGES=$(grep -c '^From ' "$MBOX" || true)
mailsite_binary

# ---------------------------------------------------------------- temp dir, the client
TMP=$(mktemp -d /tmp/mailsite-bench-imaptest.XXXXXX)
chmod 755 "$TMP"   # Dovecot's mail processes run as 'mail' and must traverse to their maildirs
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export BENCH_PASSWORD="$PASSWORD"   # the client reads it from the environment

CLIENT="$TMP/client.py"
cat >"$CLIENT" <<'PY'
"""The benchmark's IMAP client and imaptest output reader (bench/imaptest.sh writes and runs it).

  tree HOST PORT USER NAME...      creates the mailboxes NAME (hierarchy written with '/') that
                                   are missing; prints JSON: separator, every LIST "" "*" name
                                   (written with '/')
  latency HOST PORT USER N MAILBOXES
                                   N timed LIST "" "*" (each must list MAILBOXES names), then N
                                   timed STATUS INBOX (MESSAGES UNSEEN UIDNEXT), then N timed
                                   NOOP (a round trip with no work); prints JSON
  summary OUT RESULTS CLIENTS LOGOUT SECONDS
                                   imaptest's output OUT and per-second results file RESULTS
                                   read; prints JSON
The password is BENCH_PASSWORD from the environment.
"""
import json, math, os, re, socket, sys, time

PASSWORD = os.environ.get("BENCH_PASSWORD", "")


class Imap:
    """One connection; answers are read to their tagged line (no literals expected)."""

    def __init__(self, host, port, timeout=120):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0
        greeting = self.sock.recv(65536)
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"greeting {greeting!r}")

    def cmd(self, text):
        """Sends one command; returns (tagged status, everything received, seconds)."""
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
                    return bytes(data[start + len(tag):-2]).decode(errors="replace"), bytes(data), t1 - t0

    def ok(self, text):
        status, data, secs = self.cmd(text)
        if not status.startswith("OK"):
            raise RuntimeError(f"{text[:80]!r} answered {status!r}")
        return data, secs

    def login(self, user):
        self.ok(f'LOGIN {user} "{PASSWORD}"')
        return self

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


LIST = re.compile(rb'^\* LIST \(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") ("(?:[^"\\]|\\.)*"|[^ \r\n]+)\r?$', re.M)


def unquote(b):
    s = b.decode()
    return s[1:-1].replace('\\"', '"').replace("\\\\", "\\") if s.startswith('"') else s


def listed(data):
    """[(separator, name)] of the LIST answers in data."""
    return [(None if m.group(2) == b"NIL" else unquote(m.group(2)), unquote(m.group(3))) for m in LIST.finditer(data)]


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tree(host, port, user, names):
    c = Imap(host, port).login(user)
    data, _ = c.ok('LIST "" ""')
    sep = (listed(data) or [("/", "")])[0][0] or "/"
    have = {n for _, n in listed(c.ok('LIST "" "*"')[0])}
    created = 0
    for name in names:
        own = name.replace("/", sep)
        if own not in have:
            c.ok(f"CREATE {quote(own)}")
            have.add(own)
            created += 1
    now = sorted(n.replace(sep, "/") for _, n in listed(c.ok('LIST "" "*"')[0]))
    c.close()
    print(json.dumps({"separator": sep, "created": created, "mailboxes": now}))


def pct(sorted_values, q):
    """The nearest-rank percentile q (0-1) of sorted values."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def latency(host, port, user, n, mailboxes):
    c = Imap(host, port).login(user)
    out = {}
    for _ in range(10):   # warm-up, not timed
        c.ok('LIST "" "*"')
        c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
    for key, command in (("list", 'LIST "" "*"'), ("status", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)"), ("noop", "NOOP")):
        times, size = [], 0
        for _ in range(n):
            data, secs = c.ok(command)
            times.append(secs)
            size = len(data)
            if key == "list" and len(listed(data)) != mailboxes:
                raise RuntimeError(f"LIST answered {len(listed(data))} mailboxes, expected {mailboxes}: {data[:400]!r}")
            if key == "status" and b"* STATUS" not in data:
                raise RuntimeError(f"no STATUS answer: {data!r}")
        times.sort()
        out[key] = {"p50_ms": pct(times, 0.5) * 1000, "p99_ms": pct(times, 0.99) * 1000,
                    "mean_ms": sum(times) / n * 1000, "max_ms": times[-1] * 1000, "bytes": size}
    c.close()
    print(json.dumps(out))


def summary(out_path, results_path, clients, logout, seconds, cpu_s):
    lines = open(out_path, errors="replace").read().splitlines()
    starts = [i for i, l in enumerate(lines) if l.strip() == "Totals:"]
    if not starts:
        raise SystemExit(f"no 'Totals:' in imaptest's output {out_path}")
    rest = [l for l in lines[starts[-1] + 1:] if l.strip()]
    header = rest[0].split()
    counts = None
    for l in rest[1:]:
        words = l.split()
        if "%" not in l and len(words) == len(header) and all(w.isdigit() for w in words):
            counts = [int(w) for w in words]
            break
    if counts is None:
        raise SystemExit(f"no totals under imaptest's header {header} in {out_path}")
    commands = dict(zip(header, counts))
    # output=FILE: a row per second of three numbers per command type shown (commands done,
    # commands timed, milliseconds summed), in the order of the "Totals:" header. (Its own
    # header line is written before imaptest drops COPY without copybox=: not used.)
    timed, msecs = [0] * len(header), [0] * len(header)
    with open(results_path) as f:
        for row in f:
            v = row.split()
            if len(v) != 3 * len(header) or not all(w.isdigit() for w in v):
                continue
            for i in range(len(header)):
                timed[i] += int(v[3 * i + 1])
                msecs[i] += int(v[3 * i + 2])
    avg_ms = {short: (round(m / t, 2) if t else None) for short, t, m in zip(header, timed, msecs)}
    errors = [l for l in lines if "Error:" in l]
    logins = commands.get("Logi", 0)
    # connections ending without LOGOUT: imaptest reconnects without a word when a server closes
    ended = commands.get("Logo", 0) if logout else clients
    print(json.dumps({
        "commands": commands, "total": sum(counts), "seconds": seconds,
        "per_s": round(sum(counts) / seconds, 1), "avg_ms": avg_ms,
        "cpu_s": cpu_s, "cpu_ms_per_command": round(1000 * cpu_s / max(1, sum(counts)), 3),
        "errors": len(errors),
        "bad": sum(1 for l in errors if "BAD reply for command" in l or "BAD received" in l),
        "disconnect_errors": sum(1 for l in errors if "Client disconnected" in l or "Unexpected BYE" in l),
        "no_logout": max(0, logins - ended),
        "error_lines": errors[:20],
    }))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "tree":
        tree(args[0], int(args[1]), args[2], args[3:])
    elif cmd == "latency":
        latency(args[0], int(args[1]), args[2], int(args[3]), int(args[4]))
    elif cmd == "summary":
        summary(args[0], args[1], int(args[2]), args[3] == "1", float(args[4]), float(args[5]))
    else:
        sys.exit(f"unknown command {cmd}")


main()
PY

# wait_greeting NAME PID IP PORT: poll until IP:PORT greets with "* OK".
wait_greeting() {
    local name=$1 pid=$2 ip=$3 port=$4 line
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        line=$(timeout 2 bash -c "exec 3<>/dev/tcp/$ip/$port && head -n 1 <&3" 2>/dev/null || true)
        [[ "$line" == "* OK"* ]] && return 0
        sleep 0.1
    done
    die "$name did not greet on $ip:$port within 15 s"
}

# ---------------------------------------------------------------- 1. mailsite: config, user
TARGETS=(dovecot)
if [ "$PEERS_ONLY" = 0 ]; then
    TARGETS=(mailsite dovecot)
    MS="$TMP/mailsite"
    mkdir -p "$MS/data"
    cat >"$MS/site.toml" <<EOF
# Generated by bench/imaptest.sh: one mailbox server on $MAILSITE_IP, nothing else running.
[site]
domain = "example.test"
other_domains = []
name = "imaptest benchmark"
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
    log "mailsite: adding user $USER_NAME"
    echo "$PASSWORD" | msite user add "$USER_NAME" >"$TMP/useradd.log" 2>&1 || die "mailsite user add $USER_NAME failed: $(cat "$TMP/useradd.log")"
    chmod 700 "$MS/data"   # as mailsite makes its own folders (else it warns at start)
fi

# ---------------------------------------------------------------- 2. Dovecot: config, user
DC="$TMP/dovecot"
mkdir -p "$DC/home" "$DC/run" "$DC/state" "$DC/mail"
if [ "$PEERS_ONLY" = 0 ]; then
    hash=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT password_hash FROM users WHERE username = ?", (sys.argv[2],)).fetchone()[0])' \
        "$MS/data/site.db" "$USER_NAME") || die "reading $USER_NAME's hash from mailsite's database failed"
    [[ "$hash" == '$argon2id$'* ]] || die "mailsite's hash for $USER_NAME is not argon2id: $hash"
    hash="{ARGON2ID}$hash"
else
    hash=$(doveadm pw -s ARGON2ID -p "$PASSWORD")
fi
echo "$USER_NAME:$hash::::::" >"$DC/passwd"
chmod 644 "$DC/passwd"
chown -R mail:mail "$DC/mail" "$DC/home"
MAIL_UID=$(id -u mail)
cat >"$DC/dovecot.conf" <<EOF
# Generated by bench/imaptest.sh: IMAP on $DOVECOT_IP for the user $USER_NAME.
# Defaults everywhere else (a process per connection, mail_fsync = optimized, no auth cache).
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailsite-bench-imaptest
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
default_process_limit = $((CLIENTS + 100))
default_client_limit = $((2 * CLIENTS + 1000))
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

# ---------------------------------------------------------------- 3. start both, the mailbox tree
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
if [ "$PEERS_ONLY" = 0 ]; then
    v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    LABEL[mailsite]="mailsite${v:+ $v}"
    log "starting ${LABEL[mailsite]} ($MAILSITE_BIN) on $MAILSITE_IP:$IMAP_PORT"
    # mailsite's default log filter, plus the debug line of every connection that ends with an error
    RUST_LOG="${MAILSITE_LOG:-info,sqlx=warn,hickory_server=warn,hickory_net=warn,hickory_proto=warn,imap_next=warn,mailsite::mailbox::accept=debug}" \
        "$MAILSITE_BIN" --config "$MS/site.toml" serve >>"$TMP/mailsite.log" 2>&1 &   # the binary itself, so $! is its PID
    PID_OF[mailsite]=$!
    PIDS+=("${PID_OF[mailsite]}")
    wait_greeting mailsite "${PID_OF[mailsite]}" "$MAILSITE_IP" "$IMAP_PORT"
fi
alive() { kill -0 "${PID_OF[$1]}" 2>/dev/null || die "$1 (PID ${PID_OF[$1]}) died; see its log in $TMP"; }

# json FILE KEY...: a value from a JSON file (keys descend into objects)
json() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); [v := v[k] for k in sys.argv[2:]]; print(v)' "$@"; }

TREE=(Sent Drafts Trash Junk Archive Archive/2022 Archive/2023 Archive/2024 Lists Lists/announce Lists/staff
      Lists/students Projects Projects/budget Projects/thesis Projects/seminar Committees Committees/library
      Committees/network Receipts)
make_tree() {  # make_tree NAME...: the mailboxes on every server, then what either has beyond them on the other
    local name
    for name in "${TARGETS[@]}"; do
        python3 "$CLIENT" tree "${IP_OF[$name]}" "$IMAP_PORT" "$USER_NAME" "$@" >"$TMP/tree.$name.json" 2>"$TMP/tree.$name.err" \
            || die "creating the mailboxes on $name failed: $(tail -5 "$TMP/tree.$name.err")"
    done
}
make_tree "${TREE[@]}"
mapfile -t ALL_BOXES < <(for name in "${TARGETS[@]}"; do python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["mailboxes"]))' "$TMP/tree.$name.json"; done | sort -u)
make_tree "${ALL_BOXES[@]}"
for name in "${TARGETS[@]}"; do
    got=$(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["mailboxes"]))' "$TMP/tree.$name.json")
    [ "$got" = "$(printf '%s\n' "${ALL_BOXES[@]}")" ] || die "$name lists other mailboxes than $(join_by_comma "${ALL_BOXES[@]}"): $got"
    log "$name: ${#ALL_BOXES[@]} mailboxes (separator '$(json "$TMP/tree.$name.json" separator)')"
done
NBOXES=${#ALL_BOXES[@]}

# ---------------------------------------------------------------- 4. imaptest, 6. latency
# imaptest NAME OUT [ARGS...]: one imaptest run of DURATION s (or the secs= in ARGS) against NAME;
# OUT.json is its summary
imaptest() {
    local name=$1 out=$2 t0 t1 c0 c1 logout=1 secs=$DURATION a args=()
    shift 2
    for a in "$@"; do
        case $a in
            logout=0) logout=0; args+=("$a") ;;
            secs=*) secs=${a#secs=} ;;   # imaptest takes each secs= as one more stop timer: once only
            *) args+=("$a") ;;
        esac
    done
    c0=$(tree_cpu "${PID_OF[$name]}")
    t0=$(date +%s.%N)
    run_client "$out" env LD_LIBRARY_PATH=/usr/lib/dovecot "$IMAPTEST" host="${IP_OF[$name]}" port="$IMAP_PORT" \
        user="$USER_NAME" pass="$PASSWORD" mbox="$MBOX" clients="$CLIENTS" secs="$secs" output="$out.results" "${args[@]}" \
        || die "imaptest against $name failed: $(tail -20 "$out")"
    t1=$(date +%s.%N)
    alive "$name"
    sleep 0.2   # Dovecot's master collects its ended imap processes (their time moves to its cutime)
    c1=$(tree_cpu "${PID_OF[$name]}")
    python3 "$CLIENT" summary "$out" "$out.results" "$CLIENTS" "$logout" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
        >"$out.json" 2>"$out.err" || die "reading imaptest's output against $name failed: $(cat "$out.err")"
}
MIXES=(default logout0)
mix_args() { case $1 in default) ;; logout0) echo logout=0 ;; esac; }
mix_label() { case $1 in default) echo "default mix" ;; logout0) echo "logout=0" ;; esac; }

if want mix && [ "$WARMUP" != 0 ]; then
    for name in "${TARGETS[@]}"; do
        log "$name: imaptest warm-up ${WARMUP}s (not measured)"
        imaptest "$name" "$TMP/imaptest.$name.warmup.txt" secs="$WARMUP" seed=99
    done
fi
for r in $(seq 1 "$ROUNDS"); do
    order=("${TARGETS[@]}")
    if [ $((r % 2)) = 0 ] && [ ${#TARGETS[@]} = 2 ]; then order=("${TARGETS[1]}" "${TARGETS[0]}"); fi
    if want mix; then
        for mix in "${MIXES[@]}"; do
            for name in "${order[@]}"; do
                out="$TMP/imaptest.$name.$mix.$r.txt"
                log "$name (round $r/$ROUNDS): imaptest clients=$CLIENTS secs=$DURATION $(mix_args "$mix")"
                # shellcheck disable=SC2046
                imaptest "$name" "$out" seed="$r" $(mix_args "$mix")
                echo "$(json "$out.json" per_s) $out.json" >>"$TMP/runs.$name.$mix"
                log "$name: $(json "$out.json" per_s) commands/s ($(json "$out.json" total) in $(printf '%.1f' "$(json "$out.json" seconds)") s), $(json "$out.json" errors) errors, server CPU $(json "$out.json" cpu_s) s ($(json "$out.json" cpu_ms_per_command) ms per command)"
            done
        done
    fi
    if want latency; then
        for name in "${order[@]}"; do
            out="$TMP/latency.$name.$r.json"
            python3 "$CLIENT" latency "${IP_OF[$name]}" "$IMAP_PORT" "$USER_NAME" "$LATENCY_N" "$NBOXES" >"$out" 2>"$out.err" \
                || die "the latency client against $name failed: $(tail -5 "$out.err")"
            alive "$name"
            log "$name (round $r/$ROUNDS): LIST p50 $(printf '%.3f' "$(json "$out" list p50_ms)") ms, p99 $(printf '%.3f' "$(json "$out" list p99_ms)") ms; STATUS p50 $(printf '%.3f' "$(json "$out" status p50_ms)") ms, p99 $(printf '%.3f' "$(json "$out" status p99_ms)") ms; NOOP p50 $(printf '%.3f' "$(json "$out" noop p50_ms)") ms"
        done
    fi
done

# ---------------------------------------------------------------- 7. report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = (b > 0 ? a / b : 0); printf (r >= 0.1 ? "%.2fx" : "%.3fx"), r }'; }
verdict() {  # verdict VALUE OP TARGET -> met/missed
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=" ? v >= t : v <= t); print (ok ? "**met**" : "**missed**") }'
}
# round_cpu RUNS: the server CPU ms per command of each run listed in RUNS, in round order
round_cpu() { local f; while read -r _ f; do json "$f" cpu_ms_per_command; done <"$1" | paste -sd, | sed 's/,/, /g'; }
# med_lat NAME KEY STAT: the median over the rounds of one latency figure
med_lat() {
    local r
    for r in $(seq 1 "$ROUNDS"); do json "$TMP/latency.$1.$r.json" "$2" "$3"; done | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }'
}
all_lat() { local r; for r in $(seq 1 "$ROUNDS"); do json "$TMP/latency.$1.$r.json" "$2" "$3"; done | awk '{ printf "%s%.3f", s, $1; s = ", " }'; }
# errors NAME KEY: summed over every imaptest run against NAME (warm-up included)
errors() { local f s=0; for f in "$TMP"/imaptest."$1".*.txt.json; do s=$((s + $(json "$f" "$2"))); done; echo "$s"; }
row() { if [ "$PEERS_ONLY" = 0 ]; then echo "| $1 | $2 | $3 | ${4:-} | ${5:-} |"; else echo "| $1 | $2 |"; fi; }
M() { [ "$PEERS_ONLY" = 0 ] && "$@"; }   # a mailsite figure, or nothing with --peers-only

echo
echo "### imaptest and LIST/STATUS latency ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with imaptest; user $USER_NAME with INBOX and $((NBOXES - 1)) other mailboxes; imaptest: $CLIENTS clients on INBOX, ${DURATION}s a run, mbox $(basename "$MBOX") ($MBOX_MESSAGES messages), median of $ROUNDS round(s); latency: $LATENCY_N of each command a round on one connection, median of the rounds' percentiles; parts: $PARTS)"
echo
if [ "$PEERS_ONLY" = 0 ]; then
    echo "| measure | ${LABEL[dovecot]} | ${LABEL[mailsite]} | mailsite / Dovecot | target |"
    echo "|---|---:|---:|---:|---|"
else
    echo "| measure | ${LABEL[dovecot]} |"
    echo "|---|---:|"
fi
declare -A MED
if want mix; then
    for mix in "${MIXES[@]}"; do
        for name in "${TARGETS[@]}"; do MED[$name.$mix]=$(median_file "$TMP/runs.$name.$mix"); done
        case $mix in default) target=1.5 ;; logout0) target=1.2 ;; esac
        d=$(json "${MED[dovecot.$mix]}" per_s)
        if [ "$PEERS_ONLY" = 0 ]; then
            m=$(json "${MED[mailsite.$mix]}" per_s)
            r=$(awk -v a="$m" -v b="$d" 'BEGIN { print (b > 0 ? a / b : 0) }')
            row "imaptest $(mix_label "$mix"), commands/s" "$d" "$m" "$(ratio "$m" "$d")" ">= ${target}x: $(verdict "$r" ">=" "$target")"
            dc=$(json "${MED[dovecot.$mix]}" cpu_ms_per_command)
            mc=$(json "${MED[mailsite.$mix]}" cpu_ms_per_command)
            row "imaptest $(mix_label "$mix"), server CPU ms per command (same round)" "$dc" "$mc" "$(ratio "$mc" "$dc")"
        else
            row "imaptest $(mix_label "$mix"), commands/s" "$d"
            row "imaptest $(mix_label "$mix"), server CPU ms per command" "$(json "${MED[dovecot.$mix]}" cpu_ms_per_command)"
        fi
    done
fi
if want latency; then
    for key in list status noop; do
        case $key in list) label='LIST "" "*"' ;; status) label='STATUS INBOX (MESSAGES UNSEEN UIDNEXT)' ;; noop) label='(reference: NOOP)' ;; esac
        d=$(med_lat dovecot "$key" p50_ms)
        if [ "$PEERS_ONLY" = 0 ]; then
            m=$(med_lat mailsite "$key" p50_ms)
            if [ "$key" = noop ]; then t=""; else t="<= Dovecot's: $(verdict "$m" "<=" "$d")"; fi
            row "$label, p50 ms" "$d" "$m" "$(ratio "$m" "$d")" "$t"
            row "$label, p99 ms" "$(med_lat dovecot "$key" p99_ms)" "$(med_lat mailsite "$key" p99_ms)" \
                "$(ratio "$(med_lat mailsite "$key" p99_ms)" "$(med_lat dovecot "$key" p99_ms)")"
        else
            row "$label, p50 / p99 ms" "$d / $(med_lat dovecot "$key" p99_ms)"
        fi
    done
fi
if want mix; then
    m_err=$(M errors mailsite errors || true)
    row "imaptest \"Error:\" lines, every run" "$(errors dovecot errors)" "$m_err" "" "0 for mailsite: $(M verdict "${m_err:-1}" "<=" 0 || true)"
    row "of them BAD answers; disconnects imaptest reported" "$(errors dovecot bad); $(errors dovecot disconnect_errors)" \
        "$(M errors mailsite bad || true); $(M errors mailsite disconnect_errors || true)"
    row "connections imaptest opened again after a server closed one (lower bound in the default mix)" "$(errors dovecot no_logout)" "$(M errors mailsite no_logout || true)"
fi
# server_closes NAME: sessions the server saw end otherwise than by LOGOUT, from its log
server_closes() {
    case $1 in
        dovecot) grep ' imap(.*Disconnected' "$DC/dovecot.log" 2>/dev/null | grep -cvE 'Disconnected: (Logged out|Aborted login by logging out)' || true ;;
        mailsite) grep -c 'connection ended' "$TMP/mailsite.log" 2>/dev/null || true ;;
    esac
}
row "server side: sessions ended otherwise than by LOGOUT (Dovecot: its Disconnected lines; mailsite: connections ended with an error)" \
    "$(server_closes dovecot)" "$(M server_closes mailsite || true)"
loglines() {  # loglines NAME: the server's complaints in its log
    case $1 in
        dovecot) grep -cE 'Error:|Panic:|Fatal:' "$DC/dovecot.log" 2>/dev/null || true ;;
        mailsite) grep -cE ' ERROR | WARN |panicked' "$TMP/mailsite.log" 2>/dev/null || true ;;
    esac
}
row "server log: errors and warnings (Dovecot: Error/Panic/Fatal; mailsite: ERROR, WARN, panicked)" "$(loglines dovecot)" "$(M loglines mailsite || true)"

if want mix; then
    for mix in "${MIXES[@]}"; do
        echo
        echo "imaptest $(mix_label "$mix"), median round: commands completed and mean ms per command (imaptest's own timers: whole milliseconds per command, rounded down, so sub-millisecond answers count as 0):"
        echo
        if [ "$PEERS_ONLY" = 0 ]; then
            echo "| command | Dovecot count | mailsite count | Dovecot mean ms | mailsite mean ms |"
            echo "|---|---:|---:|---:|---:|"
        else
            echo "| command | Dovecot count | Dovecot mean ms |"
            echo "|---|---:|---:|"
        fi
        python3 - "$PEERS_ONLY" "${MED[dovecot.$mix]}" "${MED[mailsite.$mix]:-}" <<'PY'
import json, sys
peers_only, d = sys.argv[1] == "1", json.load(open(sys.argv[2]))
m = None if peers_only else json.load(open(sys.argv[3]))
fmt = lambda v: "-" if v is None else f"{v:.2f}"
for cmd in d["commands"]:
    if peers_only:
        print(f"| {cmd} | {d['commands'][cmd]} | {fmt(d['avg_ms'].get(cmd))} |")
    else:
        print(f"| {cmd} | {d['commands'][cmd]} | {m['commands'].get(cmd, '-')} | {fmt(d['avg_ms'].get(cmd))} | {fmt(m['avg_ms'].get(cmd))} |")
if peers_only:
    print(f"| all | {d['total']} in {d['seconds']:.1f} s | |")
else:
    print(f"| all | {d['total']} in {d['seconds']:.1f} s | {m['total']} in {m['seconds']:.1f} s | | |")
PY
    done
fi
echo
if want mix; then
    for mix in "${MIXES[@]}"; do
        echo "- imaptest $(mix_label "$mix"), commands/s of each round: Dovecot $(round_values "$TMP/runs.dovecot.$mix")$( [ "$PEERS_ONLY" = 1 ] || echo "; mailsite $(round_values "$TMP/runs.mailsite.$mix")")"
        echo "- imaptest $(mix_label "$mix"), server CPU ms per command of each round: Dovecot $(round_cpu "$TMP/runs.dovecot.$mix")$( [ "$PEERS_ONLY" = 1 ] || echo "; mailsite $(round_cpu "$TMP/runs.mailsite.$mix")")"
    done
    for name in "${TARGETS[@]}"; do
        lines=$(for f in "$TMP"/imaptest."$name".*.txt.json; do python3 -c 'import json, sys; [print(l) for l in json.load(open(sys.argv[1]))["error_lines"]]' "$f"; done | sed 's/^ *//' | sort | uniq -c | sort -rn | head -5)
        [ -z "$lines" ] || echo "- $name, imaptest's most frequent errors: $(echo "$lines" | sed 's/^ *//' | paste -sd';' | sed 's/;/; /g')"
    done
fi
if want latency; then
    for name in "${TARGETS[@]}"; do
        echo "- $name, p50 ms of each round: LIST $(all_lat "$name" list p50_ms); STATUS $(all_lat "$name" status p50_ms); NOOP $(all_lat "$name" noop p50_ms); answer bytes: LIST $(json "$TMP/latency.$name.1.json" list bytes), STATUS $(json "$TMP/latency.$name.1.json" status bytes)"
    done
fi
