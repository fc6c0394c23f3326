#!/usr/bin/env bash
# bench/sitechange.sh - what one site change costs at 100 users and at 100,000: the time until
# every node serves it, and the nodes' CPU per change, on a multi-node site (issue 14's target:
# a change visible on all nodes within 300 ms; CPU per change independent of the user count
# within 2x).
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run takes about 3 minutes once
# mailsite is built:
#   bash bench/sitechange.sh                      # builds target/release/mailsite first
#   bash bench/sitechange.sh /path/to/mailsite    # explicit mailsite binary (not built)
#   SIZES="100 100000" CHANGES=100 NODES=3 bash bench/sitechange.sh
#
# What it does, per size (the smaller first):
#   1. a database of its own on one PostgreSQL (the Debian package's server, `initdb` in the temp
#      dir, at its defaults except address, port and max_connections);
#   2. imports SIZE users with `mailsite user import` from CSV, every row with one shared
#      pre-computed argon2 hash (of a user added first with `mailsite user add`), so that no
#      password is hashed 100,000 times; the import's time is reported too;
#   3. starts NODES `mailsite serve` processes running the autoconfig role (each its own
#      configuration file, data directory and loopback address; health checks off so that only
#      the measured changes change the site);
#   4. propagation, CHANGES times: `mailsite user prefer USER pop3` for a user not changed before
#      (spread over the whole alphabet), then polls every node's Thunderbird autoconfig answer for
#      that user (kept-alive HTTP, every 2 ms) until each offers POP3 first: from the command's
#      exit (its transaction is committed by then) to the last node's first POP3-first answer;
#   5. CPU, without those polls: the same users changed back (`user prefer USER imap`), one change
#      every 300 ms; utime+stime (/proc/PID/stat) of every node over those changes, less the
#      same nodes' CPU over an idle stretch as long (each node polls the directory every 200 ms at
#      any size), divided by CHANGES;
# then prints a markdown table with p50/p99/max propagation and CPU per change for each size and
# the ratios of the largest size to the smallest.
# All daemons are started by this script and stopped by PID on exit.
#
# Environment knobs:
#   SIZES="100 100000"   user counts (the ratios are of the last to the first)
#   CHANGES=100          changes per size
#   NODES=3              autoconfig nodes
#   NET=251              the nodes listen on 127.NET.0.31, .32, ...
#   PG_ADDR=127.0.0.1 PG_PORT=15433   where PostgreSQL listens
#   KEEP_TMP=1           keep the temp dir (configs, logs)
#
# Caveat: PostgreSQL, the nodes, the CLI and the poller share this machine's cores; compare
# figures from the same run only.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=sitechange
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"
[ "$PEERS_ONLY" = 0 ] || die "--peers-only: this benchmark has no peers"

read -r -a SIZE_LIST <<<"${SIZES:-100 100000}"
CHANGES=${CHANGES:-100}
NODES=${NODES:-3}
NET=${NET:-251}
PG_ADDR=${PG_ADDR:-127.0.0.1}
PG_PORT=${PG_PORT:-15433}

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL is started as the postgres user)"

export PATH="$PATH:/usr/sbin:/sbin"
missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt_install "${missing[@]}"
fi
mailsite_binary

TMP=$(mktemp -d /tmp/mailsite-bench-sitechange.XXXXXX)
chmod 755 "$TMP"
in_use() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# ---------------------------------------------------------------- PostgreSQL
in_use "$PG_ADDR" "$PG_PORT" && die "$PG_ADDR:$PG_PORT is already in use (set PG_PORT)"
start_postgres 200
psql() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_ADDR" -p "$PG_PORT" -U postgres "$@"; }

# ---------------------------------------------------------------- the poller
# measure.py NODES_FILE CHANGES_FILE CLI...: for each user of CHANGES_FILE, runs CLI user prefer
# USER pop3 and polls every node until it answers POP3 first; prints one "change MS" line per
# change, then "cpu_changes TICKS SECONDS" and "cpu_idle TICKS SECONDS" (all nodes together).
cat >"$TMP/measure.py" <<'EOF'
import http.client, os, subprocess, sys, time

nodes_file, changes_file, *cli = sys.argv[1:]
nodes = [line.split() for line in open(nodes_file) if line.strip()]   # "PID HOST PORT"
users = [line.strip() for line in open(changes_file) if line.strip()]

def cpu():
    total = 0
    for pid, _, _ in nodes:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total

conns = [http.client.HTTPConnection(host, int(port), timeout=5) for _, host, port in nodes]

def pop3_first(conn, user):
    conn.request("GET", f"/mail/config-v1.1.xml?emailaddress={user}@example.test")
    body = conn.getresponse().read().decode()
    pop3, imap = body.find('type="pop3"'), body.find('type="imap"')
    return 0 <= pop3 < imap

for user in users[:1]:   # every node answers at all, and nobody prefers POP3 yet
    for conn in conns:
        assert not pop3_first(conn, user), "the user already prefers POP3"

for user in users:
    subprocess.run(cli + ["user", "prefer", user, "pop3"], check=True, stdout=subprocess.DEVNULL)
    changed = time.monotonic()
    waiting = set(range(len(conns)))
    while waiting:
        if time.monotonic() - changed > 10:
            sys.exit(f"{user}: not served by every node within 10 s")
        for i in sorted(waiting):
            if pop3_first(conns[i], user):
                waiting.discard(i)
        if waiting:
            time.sleep(0.002)
    print(f"change {(time.monotonic() - changed) * 1000:.1f}", flush=True)

# CPU, without this poller's requests: the same users changed back, one change every
# 300 ms (after the command's exit), then as long with no change.
start_cpu, start = cpu(), time.monotonic()
for user in users:
    subprocess.run(cli + ["user", "prefer", user, "imap"], check=True, stdout=subprocess.DEVNULL)
    time.sleep(0.3)
time.sleep(0.3)
changes_cpu, changes_time = cpu() - start_cpu, time.monotonic() - start
idle_cpu = cpu()
time.sleep(changes_time)
print(f"cpu_changes {changes_cpu} {changes_time:.3f}")
print(f"cpu_idle {cpu() - idle_cpu} {changes_time:.3f}")
for conn in conns:
    assert not pop3_first(conn, users[-1]), "the changes back were not served"
EOF

# ---------------------------------------------------------------- per size
TICK_MS=$((1000 / $(getconf CLK_TCK)))
declare -A P50 P99 PMAX CPU IDLE NET_CPU IMPORT
percentile() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }

for size in "${SIZE_LIST[@]}"; do
    db="sitechange_$size"
    psql -d postgres -c "CREATE DATABASE $db" || die "CREATE DATABASE $db failed"
    database="postgres://postgres@$PG_ADDR:$PG_PORT/$db"
    : >"$TMP/nodes.$size"
    for ((n = 1; n <= NODES; n++)); do
        addr="127.$NET.0.$((30 + n))"
        in_use "$addr" 8080 && die "$addr:8080 is already in use (set NET)"
        mkdir -p "$TMP/$size/node$n"
        "$MAILSITE_BIN" check-config --print-default \
            | sed -e "s/127\.0\.0\./127.$NET.0./g" \
                  -e "s|^data_dir = .*|data_dir = \"$TMP/$size/node$n\"\ndatabase = \"$database\"|" \
                  -e "s|^roles = .*|roles = [\"autoconfig\"]|" \
                  -e "s|^listen = \"127\.$NET\.0\.1:8080\"|listen = \"$addr:8080\"|" \
                  -e "s|^enabled = true|enabled = false|" \
            >"$TMP/$size/node$n.toml"
    done
    msite() { "$MAILSITE_BIN" --config "$TMP/$size/node1.toml" "$@"; }
    msite check-config >"$TMP/check-config.log" 2>&1 || die "mailsite check-config: $(cat "$TMP/check-config.log")"

    log "$size users: hashing one password, writing the CSV"
    echo "bench-password-$RANDOM$RANDOM" | msite user add zzhashsource >/dev/null 2>"$TMP/useradd.log" \
        || die "mailsite user add: $(cat "$TMP/useradd.log")"
    hash=$(psql -d "$db" -c "SELECT password_hash FROM users WHERE username = 'zzhashsource'")
    # Usernames spread over every letter: a..z, then a number (a000001, b000002, ...).
    awk -v n="$size" -v h="$hash" 'BEGIN {
        print "username,name,prefer,password_hash"
        for (i = 1; i <= n; i++) printf "%c%06d,User %d,imap,\"%s\"\n", 97 + i % 26, i, i, h
    }' >"$TMP/users.$size.csv"
    start=$(date +%s.%N)
    msite user import "$TMP/users.$size.csv" >"$TMP/import.$size.log" 2>&1 \
        || die "mailsite user import: $(tail -5 "$TMP/import.$size.log")"
    IMPORT[$size]=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    log "$size users: imported in ${IMPORT[$size]} s ($(tail -1 "$TMP/import.$size.log"))"

    node_pids=()
    for ((n = 1; n <= NODES; n++)); do
        "$MAILSITE_BIN" --config "$TMP/$size/node$n.toml" serve >"$TMP/$size.node$n.log" 2>&1 &
        PIDS+=("$!")
        node_pids+=("$!")
        echo "$! 127.$NET.0.$((30 + n)) 8080" >>"$TMP/nodes.$size"
    done
    for ((n = 1; n <= NODES; n++)); do
        for _ in $(seq 1 300); do
            curl -sf -o /dev/null "http://127.$NET.0.$((30 + n)):8080/mail/config-v1.1.xml" && break
            kill -0 "${node_pids[n - 1]}" 2>/dev/null || die "node $n exited; see $TMP/$size.node$n.log"
            sleep 0.1
        done
    done
    log "$size users: $NODES nodes serve; $CHANGES changes (user prefer USER pop3)"
    # Users not changed before, spread over the range (and so over the letters).
    awk -v n="$size" -v c="$CHANGES" 'BEGIN { for (k = 0; k < c; k++) { i = 1 + int(k * (n - 1) / c); printf "%c%06d\n", 97 + i % 26, i } }' \
        >"$TMP/changes.$size"
    python3 "$TMP/measure.py" "$TMP/nodes.$size" "$TMP/changes.$size" \
        "$MAILSITE_BIN" --config "$TMP/$size/node1.toml" >"$TMP/measure.$size.txt" \
        || die "measuring failed: $(tail -5 "$TMP/measure.$size.txt")"
    awk '$1 == "change" { print $2 }' "$TMP/measure.$size.txt" >"$TMP/ms.$size"
    P50[$size]=$(percentile "$TMP/ms.$size" 50)
    P99[$size]=$(percentile "$TMP/ms.$size" 99)
    PMAX[$size]=$(percentile "$TMP/ms.$size" 100)
    read -r _ ticks _ < <(grep '^cpu_changes' "$TMP/measure.$size.txt")
    CPU[$size]=$(awk -v t="$ticks" -v c="$CHANGES" -v ms="$TICK_MS" 'BEGIN { printf "%.1f", t * ms / c }')
    read -r _ ticks _ < <(grep '^cpu_idle' "$TMP/measure.$size.txt")
    IDLE[$size]=$(awk -v t="$ticks" -v c="$CHANGES" -v ms="$TICK_MS" 'BEGIN { printf "%.1f", t * ms / c }')
    NET_CPU[$size]=$(awk -v a="${CPU[$size]}" -v b="${IDLE[$size]}" 'BEGIN { printf "%.1f", a - b }')
    log "$size users: propagation p50 ${P50[$size]} ms, p99 ${P99[$size]} ms; CPU ${NET_CPU[$size]} ms per change (${CPU[$size]} ms less ${IDLE[$size]} ms idle)"
    for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
done

# ---------------------------------------------------------------- report
first=${SIZE_LIST[0]}
last=${SIZE_LIST[${#SIZE_LIST[@]} - 1]}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
echo
echo "### Site change propagation ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $NODES autoconfig nodes on one PostgreSQL, $CHANGES changes per size)"
echo
echo "| users | import | propagation p50 | p99 | max | node CPU per change (all nodes) | with the idle polls | idle polls alone |"
echo "|---|---|---|---|---|---|---|---|"
for size in "${SIZE_LIST[@]}"; do
    echo "| $size | ${IMPORT[$size]} s | ${P50[$size]} ms | ${P99[$size]} ms | ${PMAX[$size]} ms | ${NET_CPU[$size]} ms | ${CPU[$size]} ms | ${IDLE[$size]} ms |"
done
echo "| $last / $first | | $(ratio "${P50[$last]}" "${P50[$first]}") | $(ratio "${P99[$last]}" "${P99[$first]}") | | $(ratio "${NET_CPU[$last]}" "${NET_CPU[$first]}") | $(ratio "${CPU[$last]}" "${CPU[$first]}") | |"
