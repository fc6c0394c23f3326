#!/usr/bin/env bash
# bench/failover.sh - how long a killed mailbox server's users wait: the time from SIGKILL
# of a mailbox server to the first successful IMAP login (LOGIN + SELECT INBOX) of one of
# its users at their alias, resolved through the site's DNS at every try; and, after the
# server is started again, until the alias leads back to it and the login works there.
#
# Run (as root, from anywhere; needs only loopback):
#   bash bench/failover.sh                         # mailsite = ../target/release/mailsite (relative to this script)
#   bash bench/failover.sh /path/to/mailsite       # explicit binary
#   RUNS=7 bash bench/failover.sh                  # more kills (default 5); the table shows medians
#
# What it does:
#   1. installs what is missing: apt-get dnsutils (dig), python3;
#   2. writes the embedded default site (`mailsite check-config --print-default`, default
#      [health] and TTLs) into a temp dir and runs it as three processes on one data
#      directory and SQLite database (shared storage): autoconfig+dns (which runs the
#      health checks), mailbox1 (127.0.0.11) and mailbox2 (127.0.0.12); adds user alice
#      (letter a: mailbox1);
#   3. for each run: waits until both mailbox servers are up and passing their checks,
#      then a Python prober sends SIGKILL to mailbox1 and at once starts trying: resolve
#      maila.example.test at 127.0.0.1:10053 with dig, log in there with imaplib (2 s
#      timeout), 50 ms apart, until a login succeeds; it prints the time since the kill;
#   4. starts mailbox1 again and times, the same way, until maila leads to mailbox1 and the
#      login works there (mailbox1's start included);
#   5. prints a markdown table: per run and the median of each figure.
# The processes are started by this script, in the background, and stopped by PID on exit.
#
# Environment knobs:
#   RUNS=5        kills measured
#   KEEP_TMP=1    keep the temp dir (configs, logs)
#
# What to expect: the checks run every second and mark a server down after 3 failures in
# a row, so detection takes 2-3 s; the prober resolves at every try, so the 5 s alias
# TTL does not count here (a client behind a caching resolver waits up to 5 s more).
set -euo pipefail
BENCH=failover
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

MAILSITE_BIN=${1:-$HERE/../target/release/mailsite}
RUNS=${RUNS:-5}
[ -x "$MAILSITE_BIN" ] || die "no mailsite binary at $MAILSITE_BIN: cargo build --release -p mailsite, or give its path"
command -v dig >/dev/null || apt_install dnsutils
command -v python3 >/dev/null || apt_install python3

TMP=$(mktemp -d /tmp/failover-bench.XXXXXX)
DATA=$TMP/data
DNS_IP=127.0.0.1
DNS_PORT=10053
M1=127.0.0.11
M2=127.0.0.12
IMAP_PORT=10143

# ---------------------------------------------------------------- 1. the site's nodes
"$MAILSITE_BIN" check-config --print-default >"$TMP/site.toml"
node_config() {  # node_config NAME ROLES [SERVERS]: a copy of the site with [node] changed
    local servers=""
    [ -n "${3:-}" ] && servers="\nservers = $3"
    sed "s|^roles = .*|roles = $2$servers|" "$TMP/site.toml" >"$TMP/$1.toml"
}
node_config front '["autoconfig", "dns"]'
node_config mailbox1 '["mailbox"]' '["mailbox1"]'
node_config mailbox2 '["mailbox"]' '["mailbox2"]'

spawn_node() {  # spawn_node NAME: start a node in the background (the binary itself: $! is its PID)
    "$MAILSITE_BIN" --config "$TMP/$1.toml" --data-dir "$DATA" serve >>"$TMP/$1.log" 2>&1 &
    PID_OF[$1]=$!
    PIDS+=("${PID_OF[$1]}")
}
start_node() {  # start_node NAME IP PORT: start a node, wait (<= 30 s) until IP:PORT accepts
    spawn_node "$1"
    for _ in $(seq 1 300); do
        kill -0 "${PID_OF[$1]}" 2>/dev/null || die "$1 exited: $(tail -5 "$TMP/$1.log")"
        if (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$1 does not listen on $2:$3"
}

log "starting the site from $MAILSITE_BIN in $TMP: autoconfig+dns, mailbox1 ($M1), mailbox2 ($M2)"
start_node front "$DNS_IP" 8080
start_node mailbox1 "$M1" "$IMAP_PORT"
start_node mailbox2 "$M2" "$IMAP_PORT"
PASSWORD=failover-bench-password
echo "$PASSWORD" | "$MAILSITE_BIN" --config "$TMP/front.toml" --data-dir "$DATA" user add alice >/dev/null

# Waits (<= 30 s) until both mailbox servers are up and mailbox1 passed a check lately.
wait_up() {
    local list
    for _ in $(seq 1 300); do
        list=$("$MAILSITE_BIN" --config "$TMP/front.toml" --data-dir "$DATA" server list)
        if echo "$list" | grep -Eq '^mailbox1 +mailbox +up ' && echo "$list" | grep -Eq '^mailbox2 +mailbox +up ' \
            && [ "$(dig @$DNS_IP -p $DNS_PORT +short maila.example.test A)" = "$M1" ]; then
            return 0
        fi
        sleep 0.1
    done
    die "the mailbox servers are not both up: $list"
}

# The prober: MODE kill (SIGKILL PID first) or back; tries until alice logs in at maila,
# at WANT if given; prints "SECONDS HOST TRIES".
PROBE='
import imaplib, os, signal, subprocess, sys, time
mode, pid, dns_ip, dns_port, want, password = sys.argv[1:7]
def resolve():
    out = subprocess.run(["dig", "@" + dns_ip, "-p", dns_port, "+short", "+tries=1", "+time=1",
                          "maila.example.test", "A"], capture_output=True, text=True).stdout.split()
    return out[0] if out else None
def login(host):
    try:
        m = imaplib.IMAP4(host, 10143, timeout=2)
        m.login("alice", password)
        m.select("INBOX")
        m.logout()
        return True
    except Exception:
        return False
if mode == "kill":
    os.kill(int(pid), signal.SIGKILL)
start, tries = time.monotonic(), 0
while time.monotonic() - start < 60:
    host = resolve()
    tries += 1
    if host and (want == "-" or host == want) and login(host):
        print(f"{time.monotonic() - start:.2f} {host} {tries}")
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
'

declare -a FAILOVER BACK
for run in $(seq 1 "$RUNS"); do
    wait_up
    sleep 1   # a little steady state: checks passing, no change in flight
    out=$(python3 -c "$PROBE" kill "${PID_OF[mailbox1]}" $DNS_IP $DNS_PORT - "$PASSWORD") \
        || die "run $run: alice could not log in within 60 s of the kill"
    wait "${PID_OF[mailbox1]}" 2>/dev/null || true
    read -r secs host tries <<<"$out"
    [ "$host" = "$M2" ] || die "run $run: alice logged in at $host, not the survivor $M2"
    FAILOVER+=("$secs")
    log "run $run: killed mailbox1; alice logged in at maila -> $host after $secs s ($tries tries)"

    spawn_node mailbox1
    out=$(python3 -c "$PROBE" back 0 $DNS_IP $DNS_PORT "$M1" "$PASSWORD") \
        || die "run $run: maila did not return to mailbox1 within 60 s"
    read -r secs host tries <<<"$out"
    BACK+=("$secs")
    log "run $run: restarted mailbox1; maila led back to it after $secs s"
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "| run | SIGKILL -> login at the alias on the survivor (s) | restart -> alias and login back (s) |"
echo "|---|---|---|"
for i in "${!FAILOVER[@]}"; do
    echo "| $((i + 1)) | ${FAILOVER[i]} | ${BACK[i]} |"
done
echo "| **median** | **$(median "${FAILOVER[@]}")** | **$(median "${BACK[@]}")** |"
