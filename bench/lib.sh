#!/usr/bin/env bash
# bench/lib.sh - what the benchmark scripts share: logging, installing missing packages,
# a temp dir, and stopping every daemon and load generator they started, by PID, on exit.
# Sourced by the scripts right after they set BENCH (their name); they set TMP (their
# temp dir) afterwards, which cleanup removes unless the run failed or KEEP_TMP=1.

log() { printf '[%s-bench %3ds] %s\n' "$BENCH" "$SECONDS" "$*" >&2; }
die() { printf '[%s-bench] ERROR: %s\n' "$BENCH" "$*" >&2; exit 1; }

# bench_args "$@": the arguments every script takes: --peers-only (PEERS_ONLY=1: the peers
# alone), -h/--help (the script's header comment), or a path to a mailsite binary
# (MAILSITE_BIN; otherwise whatever default the script set, possibly empty).
bench_args() {
    PEERS_ONLY=0
    local arg
    for arg in "$@"; do
        case "$arg" in
            --peers-only) PEERS_ONLY=1 ;;
            -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
            -*) echo "unknown option: $arg" >&2; exit 2 ;;
            *) MAILSITE_BIN="$arg" ;;
        esac
    done
}

# mailsite_binary: unless --peers-only, makes MAILSITE_BIN an absolute path to an
# executable: an empty MAILSITE_BIN is built first (cargo build --release -p mailsite).
mailsite_binary() {
    [ "$PEERS_ONLY" = 0 ] || return 0
    if [ -z "$MAILSITE_BIN" ]; then
        local repo
        repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
        log "building mailsite (cargo build --release -p mailsite)"
        (cd "$repo" && cargo build --release -q -p mailsite) || die "building mailsite failed"
        MAILSITE_BIN="$repo/target/release/mailsite"
    fi
    [ -x "$MAILSITE_BIN" ] || die "mailsite binary not found or not executable: $MAILSITE_BIN (build it with 'cargo build --release -p mailsite', pass its path, or use --peers-only)"
    MAILSITE_BIN=$(cd "$(dirname "$MAILSITE_BIN")" && pwd)/$(basename "$MAILSITE_BIN")
}

apt_install() {  # apt_install PKG... ; retries once after 'apt-get update'
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; } \
        || die "apt-get install $* failed"
}

# start_postgres MAX_CONNECTIONS: the Debian package's PostgreSQL (newest installed), `initdb`
# in $TMP/postgres and run as the postgres user on PG_ADDR:PG_PORT at its defaults (fsync,
# synchronous_commit on) except listen address, port and max_connections; waits (<= 15 s) until
# it is ready. Sets PG_BIN, PG (its folder; log in $PG/postgres.log) and PG_PID (also in PIDS,
# so cleanup stops it after every client).
start_postgres() {
    PG_BIN=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -1)
    PG="$TMP/postgres"
    mkdir -p "$PG"
    chown postgres: "$PG"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$TMP/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$TMP/initdb.log")"
    log "starting PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') on $PG_ADDR:$PG_PORT (defaults: fsync, synchronous_commit on)"
    # setpriv execs the server itself, so $! is the postmaster (SIGTERM on exit, after every client).
    setpriv --reuid=postgres --regid=postgres --init-groups "$PG_BIN/postgres" -D "$PG/data" \
        -c listen_addresses="$PG_ADDR" -p "$PG_PORT" -c unix_socket_directories= -c max_connections="$1" \
        >"$PG/postgres.log" 2>&1 &
    PG_PID=$!
    PIDS+=("$PG_PID")
    for _ in $(seq 1 150); do
        "$PG_BIN/pg_isready" -q -h "$PG_ADDR" -p "$PG_PORT" && break
        kill -0 "$PG_PID" 2>/dev/null || die "PostgreSQL exited: $(tail -5 "$PG/postgres.log")"
        sleep 0.1
    done
    "$PG_BIN/pg_isready" -q -h "$PG_ADDR" -p "$PG_PORT" || die "PostgreSQL is not ready after 15 s"
}

# Rounds are recorded one per line, "VALUE FILE [MORE...]", in a runs file:
median_line() { sort -n "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }   # the median round's line
median_file() { median_line "$1" | awk '{ print $2 }'; }                                    # the median round's FILE
round_values() { awk '{ printf "%s%s", sep, $1; sep = ", " }' "$1"; }                      # "v1, v2, ..." in run order

tree_cpu() {  # tree_cpu PID: CPU seconds (user + system) PID and every process under it used so far
    # (each live process's own time, plus what it collected from ended children)
    python3 - "$1" <<'PY'
import os, sys
root, parent, ticks = int(sys.argv[1]), {}, {}
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(entry)], ticks[int(entry)] = int(fields[1]), sum(int(v) for v in fields[11:15])
tree, grew = {root}, True
while grew:
    more = {p for p, pp in parent.items() if pp in tree} - tree
    tree |= more
    grew = bool(more)
print(round(sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK"), 2))
PY
}

stat_of() {  # stat_of FILE OP KEY: a value from a load generator's 'stat op=OP ...' line
    awk -v op="$2" -v key="$3" '$1 == "stat" && $2 == "op=" op { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' "$1"
}

# imap_gate NAME: one full IMAP session with the script's `mix`, no error allowed
imap_gate() {
    local name=$1 out="$TMP/gate.$1.txt" errors count
    mix "$name" "$out" --clients 1 --sessions 1
    errors=$(stat_of "$out" all errors)
    count=$(stat_of "$out" all count)
    { [ "$errors" = 0 ] && [ "$count" -ge 9 ] && ! grep -q '^loadgen:' "$out"; } \
        || die "$name failed the one-session check (errors=$errors ops=$count): $(cat "$out")"
    log "$name OK: one full IMAP session ($count operations) without an error"
}

# imap_round NAME ROUND OF RUNS: round ROUND (of OF) of the IMAP mix against NAME with the
# script's own `mix NAME OUT ARGS...` (WARMUP seconds unmeasured before round 1), its
# "ops/s file" line added to RUNS
imap_round() {
    local name=$1 round=$2 of=$3 runs=$4 out="$TMP/imap.$1.$2.txt"
    if [ "$round" = 1 ] && [ "$WARMUP" != 0 ]; then
        log "$name: IMAP warm-up ${WARMUP}s"
        mix "$name" "$TMP/warmup.$name.txt" --clients "$CLIENTS" --duration "$WARMUP" --seed 99
    fi
    log "$name (IMAP round $round/$of): imap-mix --clients $CLIENTS --duration $DURATION"
    mix "$name" "$out" --clients "$CLIENTS" --duration "$DURATION" --seed "$round"
    echo "$(stat_of "$out" all ops_s) $out" >>"$runs"
    log "$name: $(stat_of "$out" all ops_s) ops/s, $(stat_of "$out" all errors) errors"
}

PIDS=()            # every daemon we start, stopped in reverse order on exit
declare -A PID_OF  # server name -> PID

CLIENT_PID=        # the load generator currently running, if any

cleanup() {
    local rc=$? i pid
    trap - EXIT INT TERM
    if [ -n "$CLIENT_PID" ]; then kill -TERM "$CLIENT_PID" 2>/dev/null || true; wait "$CLIENT_PID" 2>/dev/null || true; fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done   # <= 5 s
        kill -0 "$pid" 2>/dev/null && { log "PID $pid ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
        wait "$pid" 2>/dev/null || true
    done
    # keep the evidence on failure (not on Ctrl-C/SIGTERM) or on request
    if [ -z "${TMP:-}" ]; then
        :
    elif [ "${KEEP_TMP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; }; then
        log "temp dir kept: $TMP (logs: *.log)"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_client OUT CMD...: run a load generator in the background and wait for it, so that
# SIGINT/SIGTERM to this script interrupt the wait at once (a foreground child would delay
# the traps until it finished) and cleanup can stop it.
run_client() {
    local out=$1 rc=0
    shift
    "$@" >"$out" 2>&1 &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=
    return "$rc"
}

# wait_dns NAME PID IP: poll (0.1 s apart, bounded ~15 s) until IP:PORT answers maila A with NOERROR.
