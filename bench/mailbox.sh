#!/usr/bin/env bash
# bench/mailbox.sh - mailbox server benchmark: mailsite's IMAP and POP3 vs Dovecot (dovecot-imapd,
# dovecot-pop3d) serving the same Maildir data, in the same run.
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run takes about 5 minutes once
# the binaries are built (ROUNDS=3: about 7), half of it the 10,300 argon2 logins of the memory
# test; building mailsite from scratch adds about 3 minutes:
#   bash bench/mailbox.sh                          # builds target/release/mailsite and bench/loadgen first
#   bash bench/mailbox.sh /path/to/mailsite        # explicit mailsite binary (not built); the load generator still is
#   DURATION=60 ROUNDS=3 bash bench/mailbox.sh     # longer / more IMAP rounds
#   bash bench/mailbox.sh --peers-only             # Dovecot only
#
# What it does:
#   1. installs what is missing: apt-get dovecot-imapd dovecot-pop3d python3; builds mailsite
#      (cargo build --release -p mailsite) and the load generator bench/loadgen (its own workspace);
#   2. writes identical Maildir data for both servers with `mailsite-loadgen seed` (deterministic
#      messages of 1-80 KB: plain text, HTML alternative, 5% with an attachment; ~92% read):
#        - IMAP_USERS users bench01.. with a MESSAGES-message INBOX each (hard links to one pool),
#        - POP3_USERS users pop01.. with a POP3_MESSAGES-message maildrop each,
#        - IDLE_USERS users idle001.. with an IDLE_MESSAGES-message INBOX each (for the memory test);
#      mailsite: an isolated site config (role mailbox only, mailbox1 on MAILSITE_IP, IMAP 10143,
#      POP3 10110), `mailsite user add` for each user, the files under <data>/mail/<user>/, then
#      `mailsite mailbox reindex <user>`; Dovecot: a copy of the same files under its own mail root,
#      a passwd-file with the very same argon2id hashes mailsite stored (Dovecot's {ARGON2ID}), so a
#      login costs both the same;
#   3. starts `mailsite --config TMP/mailsite/site.toml serve` and Dovecot (`dovecot -F` with its own
#      dovecot.conf and base_dir: DOVECOT_IP, IMAP 10143, POP3 10110, maildir:, passwd-file +
#      static userdb as user 'mail', mail_max_userip_connections raised, fsync settings at their
#      defaults, everything else default: a process per IMAP/POP3 connection);
#   4. correctness gate: one full IMAP session against each (no error allowed; SELECT's EXISTS
#      must equal the UIDs FETCH 1:* returns);
#   5. IMAP mix: WARMUP s unmeasured, then ROUNDS rounds of DURATION s, servers alternating:
#        mailsite-loadgen imap-mix --clients CLIENTS --users bench01,.. (clients take users in turn)
#      each session: LOGIN, SELECT INBOX, UID FETCH 1:* (FLAGS), UID FETCH of 50 envelopes (newest
#      or a random window), 3 x UID FETCH n BODY.PEEK[], 2 x UID STORE n +/-FLAGS.SILENT (\Seen or
#      \Flagged), 1 x UID SEARCH (UNSEEN | FLAGGED | SINCE date | FROM "name" | SUBJECT "word"),
#      1 x APPEND (1-80 KB), LOGOUT; the table shows each server's median round;
#   6. POP3: POP3_ROUNDS rounds, servers alternating, each from full maildrops that both servers
#      have indexed (as after delivery: `mailsite mailbox reindex`, `doveadm mailbox status`) and
#      opened once since they started (LOGIN, STAT, QUIT per user, nothing deleted): one
#      client per pop user, all at once: USER/PASS, STAT, UIDL, RETR + DELE of every message, QUIT;
#      checks every maildrop is empty afterwards; the table shows each server's median round;
#   7. memory: Dovecot first: `mailsite-loadgen idle` opens DOVECOT_IDLE_CONNECTIONS connections
#      (logged in, INBOX selected, idle users in turn), then the sum of VmRSS and of Pss
#      (/proc/PID/smaps_rollup) of its imap processes / connections. mailsite is restarted (a fresh
#      process), its VmRSS read, then two idle load generators open IDLE_CONNECTIONS/2 connections
#      each, VmRSS read after each: per connection = (RSS with all - fresh RSS) / IDLE_CONNECTIONS;
#      marginal = (RSS with all - RSS with half) / the second half;
#   8. prints markdown tables: IMAP ops/s, POP3 ops/s and messages/s, memory per connection, each
#      with the mailsite/Dovecot ratio and the target, and per-operation latencies.
# All daemons and load generators are started by this script and stopped by PID on exit.
#
# Environment knobs:
#   DURATION=30 WARMUP=5 ROUNDS=1     IMAP mix: seconds per measured round, unmeasured warm-up, rounds
#   POP3_ROUNDS=$ROUNDS               POP3 rounds (each from full, indexed maildrops); the median counts
#   PARTS="imap pop3 memory"          which measurements to make (e.g. PARTS=pop3 for POP3 alone)
#   CLIENTS=16 IMAP_USERS=4 MESSAGES=10000
#   POP3_USERS=8 POP3_MESSAGES=1000
#   IDLE_CONNECTIONS=10000 DOVECOT_IDLE_CONNECTIONS=300 IDLE_USERS=100 IDLE_MESSAGES=200
#   IDLE_PARALLEL=16                  connections being set up at once in the memory test
#   MAILSITE_IP=127.0.0.31 DOVECOT_IP=127.0.0.32
#   LOADGEN_THREADS=2                 load generator worker threads
#   KEEP_TMP=1                        keep the temp dir (configs, data, logs, raw load generator output)
#
# Caveat: the load generator shares this machine's cores with the server under test; compare
# figures from the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=mailbox
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
ROUNDS=${ROUNDS:-1}
POP3_ROUNDS=${POP3_ROUNDS:-$ROUNDS}
PARTS=${PARTS:-imap pop3 memory}
CLIENTS=${CLIENTS:-16}
IMAP_USERS=${IMAP_USERS:-4}
MESSAGES=${MESSAGES:-10000}
POP3_USERS=${POP3_USERS:-8}
POP3_MESSAGES=${POP3_MESSAGES:-1000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
DOVECOT_IDLE_CONNECTIONS=${DOVECOT_IDLE_CONNECTIONS:-300}
IDLE_USERS=${IDLE_USERS:-100}
IDLE_MESSAGES=${IDLE_MESSAGES:-200}
IDLE_PARALLEL=${IDLE_PARALLEL:-16}
MAILSITE_IP=${MAILSITE_IP:-127.0.0.31}
DOVECOT_IP=${DOVECOT_IP:-127.0.0.32}
IMAP_PORT=10143
POP3_PORT=10110
NCPU=$(nproc)


# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
[ -x /usr/lib/dovecot/pop3 ] || missing+=(dovecot-pop3d)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi
# Without init, the package's own dovecot service is never started; we never use its config.

mailsite_binary
log "building the load generator (bench/loadgen)"
cargo build --release -q --manifest-path "$SCRIPT_DIR/loadgen/Cargo.toml" || die "building bench/loadgen failed"
LOADGEN="$SCRIPT_DIR/loadgen/target/release/mailsite-loadgen"

# 10,000 connections need as many descriptors in the server and in the load generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((IDLE_CONNECTIONS + 200)) ] || die "open-files limit $(ulimit -n) is too low for IDLE_CONNECTIONS=$IDLE_CONNECTIONS"

# ---------------------------------------------------------------- temp dir, helpers
TMP=$(mktemp -d /tmp/mailsite-bench-mailbox.XXXXXX)
chmod 755 "$TMP"   # Dovecot's mail processes run as 'mail' and must traverse to their maildirs
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export LOADGEN_PASSWORD="$PASSWORD"   # the load generator reads it from the environment

seq_users() { local prefix=$1 n=$2 width=$3 i; for ((i = 1; i <= n; i++)); do printf "%s%0${width}d\n" "$prefix" "$i"; done; }
mapfile -t IMAP_LIST < <(seq_users bench "$IMAP_USERS" 2)
mapfile -t POP3_LIST < <(seq_users pop "$POP3_USERS" 2)
mapfile -t IDLE_LIST < <(seq_users idle "$IDLE_USERS" 3)
join_by_comma() { local IFS=,; echo "$*"; }
want() { [[ " $PARTS " == *" $1 "* ]]; }   # want PART: is PART among the PARTS to measure?

# wait_greeting NAME PID IP PORT PREFIX: poll until IP:PORT greets with PREFIX ("* OK", "+OK").
wait_greeting() {
    local name=$1 pid=$2 ip=$3 port=$4 prefix=$5 i line
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        line=$(timeout 2 bash -c "exec 3<>/dev/tcp/$ip/$port && head -n 1 <&3" 2>/dev/null || true)
        [[ "$line" == "$prefix"* ]] && return 0
        sleep 0.1
    done
    die "$name did not greet on $ip:$port within 15 s"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

# seed_pool DIR COUNT SEED: one Maildir folder of deterministic messages.
seed_pool() {
    "$LOADGEN" seed --dir "$1" --count "$2" --seed "$3" >>"$TMP/seed.log" 2>&1 || die "seeding $1 failed: $(tail -5 "$TMP/seed.log")"
}

# ---------------------------------------------------------------- 1. mailsite: config, users, data
TARGETS=(dovecot)
if [ "$PEERS_ONLY" = 0 ]; then
    TARGETS+=(mailsite)
    MS="$TMP/mailsite"
    mkdir -p "$MS/data/mail" "$MS/pool"
    cat >"$MS/site.toml" <<EOF
# Generated by bench/mailbox.sh: one mailbox server on $MAILSITE_IP, nothing else running.
[site]
domain = "example.test"
other_domains = []
name = "mailbox benchmark"
short_name = "bench"
data_dir = "$MS/data"

[node]
roles = ["mailbox"]

[http]
listen = "$MAILSITE_IP:8080"
addresses = ["$MAILSITE_IP"]

[dns]
listen = "$MAILSITE_IP:10053"
addresses = ["$MAILSITE_IP"]
ttl = 300
alias_ttl = 30
outbox_ttl = 10

[ports]
imap = $IMAP_PORT
imaps = 10993
pop3 = $POP3_PORT
pop3s = 10995
smtp = 10025
submission = 10587
submissions = 10465
lmtp = 10024

[limits]
# The memory test holds IDLE_CONNECTIONS logged-in connections on the one IMAP listener.
imap_connections = 20000

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
    log "mailsite: adding $((IMAP_USERS + POP3_USERS + IDLE_USERS)) users"
    for u in "${IMAP_LIST[@]}" "${POP3_LIST[@]}" "${IDLE_LIST[@]}"; do
        echo "$PASSWORD" | msite user add "$u" >>"$TMP/useradd.log" 2>&1 || die "mailsite user add $u failed: $(tail -3 "$TMP/useradd.log")"
    done
fi

# The Maildir data: one pool per kind, hard-linked into each user's folder (INBOX at the root).
# link_pool POOL ROOT USER...: ROOT/USER/{cur,new,tmp} as hard links to POOL's files.
link_pool() {
    local pool=$1 root=$2 u
    shift 2
    for u in "$@"; do mkdir -p "$root/$u"; cp -al "$pool/." "$root/$u/"; done
}
log "seeding: $IMAP_USERS x $MESSAGES (IMAP), $POP3_USERS x $POP3_MESSAGES (POP3), $IDLE_USERS x $IDLE_MESSAGES (idle) messages, for each server"
DC="$TMP/dovecot"
mkdir -p "$DC/mail" "$DC/home" "$DC/pool"
for side in "${TARGETS[@]}"; do
    case $side in dovecot) pool="$DC/pool" root="$DC/mail" ;; mailsite) pool="$MS/pool" root="$MS/data/mail" ;; esac
    seed_pool "$pool/imap" "$MESSAGES" 1
    seed_pool "$pool/pop3" "$POP3_MESSAGES" 2
    seed_pool "$pool/idle" "$IDLE_MESSAGES" 3
    [ "$side" = dovecot ] && chown -R mail:mail "$pool"
    link_pool "$pool/imap" "$root" "${IMAP_LIST[@]}"
    link_pool "$pool/pop3" "$root" "${POP3_LIST[@]}"
    link_pool "$pool/idle" "$root" "${IDLE_LIST[@]}"
done
log "$(head -1 "$TMP/seed.log")"

if [ "$PEERS_ONLY" = 0 ]; then
    log "mailsite: indexing the Maildirs (mailsite mailbox reindex, $((IMAP_USERS + POP3_USERS + IDLE_USERS)) users)"
    for u in "${IMAP_LIST[@]}" "${POP3_LIST[@]}" "${IDLE_LIST[@]}"; do
        msite mailbox reindex "$u" >>"$TMP/reindex.log" 2>&1 || die "mailsite mailbox reindex $u failed: $(tail -3 "$TMP/reindex.log")"
    done
    # Dovecot checks the same argon2id hashes (PHC strings) that mailsite stored.
    python3 - "$MS/data/site.db" >"$DC/passwd" <<'PY' || die "cannot read the password hashes from mailsite's database"
import sqlite3, sys
for name, h in sqlite3.connect(sys.argv[1]).execute("SELECT username, password_hash FROM users ORDER BY username"):
    print(f"{name}:{{ARGON2ID}}{h}::::::")
PY
else
    hash=$(doveadm pw -s ARGON2ID -p "$PASSWORD")
    for u in "${IMAP_LIST[@]}" "${POP3_LIST[@]}" "${IDLE_LIST[@]}"; do echo "$u:$hash::::::"; done >"$DC/passwd"
fi
chmod 644 "$DC/passwd"
chown -R mail:mail "$DC/mail" "$DC/home"

# ---------------------------------------------------------------- 2. Dovecot
MAIL_UID=$(id -u mail)
mkdir -p "$DC/run" "$DC/state"
cat >"$DC/dovecot.conf" <<EOF
# Generated by bench/mailbox.sh: IMAP and POP3 on $DOVECOT_IP over a Maildir copy of mailsite's data.
# Defaults everywhere else (a process per connection, mail_fsync = optimized).
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailsite-bench
log_path = $DC/dovecot.log
protocols = imap pop3
listen = $DOVECOT_IP
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
mail_location = maildir:$DC/mail/%n
first_valid_uid = $MAIL_UID
mail_max_userip_connections = 20000
default_process_limit = $((DOVECOT_IDLE_CONNECTIONS + CLIENTS + POP3_USERS + 100))
default_client_limit = 2000
pop3_uidl_format = %08Xu%08Xv
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
service pop3-login {
  inet_listener pop3 {
    address = $DOVECOT_IP
    port = $POP3_PORT
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
dovecot -c "$DC/dovecot.conf" -n >"$DC/doveconf.log" 2>&1 || die "Dovecot rejects its config: $(cat "$DC/doveconf.log")"
log "starting Dovecot $(dovecot --version | awk '{ print $1 }') on $DOVECOT_IP (IMAP $IMAP_PORT, POP3 $POP3_PORT)"
dovecot -F -c "$DC/dovecot.conf" >"$DC/stdout.log" 2>&1 &
PID_OF[dovecot]=$!
PIDS+=("${PID_OF[dovecot]}")
wait_greeting Dovecot "${PID_OF[dovecot]}" "$DOVECOT_IP" "$IMAP_PORT" "* OK"
wait_greeting Dovecot "${PID_OF[dovecot]}" "$DOVECOT_IP" "$POP3_PORT" "+OK"

# ---------------------------------------------------------------- 3. mailsite
start_mailsite() {
    "$MAILSITE_BIN" --config "$MS/site.toml" serve >>"$TMP/mailsite.log" 2>&1 &   # the binary itself, so $! is its PID
    PID_OF[mailsite]=$!
    PIDS+=("${PID_OF[mailsite]}")
    wait_greeting mailsite "${PID_OF[mailsite]}" "$MAILSITE_IP" "$IMAP_PORT" "* OK"
    wait_greeting mailsite "${PID_OF[mailsite]}" "$MAILSITE_IP" "$POP3_PORT" "+OK"
}
if [ "$PEERS_ONLY" = 0 ]; then
    log "starting mailsite ($MAILSITE_BIN) on $MAILSITE_IP (IMAP $IMAP_PORT, POP3 $POP3_PORT)"
    start_mailsite
fi
declare -A IP_OF=([dovecot]=$DOVECOT_IP [mailsite]=$MAILSITE_IP)
declare -A LABEL
LABEL[dovecot]="Dovecot $(dovecot --version | awk '{ print $1 }')"
if [ "$PEERS_ONLY" = 0 ]; then
    v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    LABEL[mailsite]="mailsite${v:+ $v}"
fi

alive() { kill -0 "${PID_OF[$1]}" 2>/dev/null || die "$1 (PID ${PID_OF[$1]}) died; see its log in $TMP"; }

IMAP_USERS_ARG=$(join_by_comma "${IMAP_LIST[@]}")
mix() {  # mix NAME OUT ARGS...: one imap-mix run
    local name=$1 out=$2
    shift 2
    run_client "$out" "$LOADGEN" imap-mix --addr "${IP_OF[$name]}:$IMAP_PORT" --users "$IMAP_USERS_ARG" \
        --label "$name" "$@" || die "imap-mix against $name failed: $(tail -20 "$out")"
    alive "$name"
}

if want imap; then
# ---------------------------------------------------------------- 4. correctness gate
    for name in "${TARGETS[@]}"; do imap_gate "$name"; done

# ---------------------------------------------------------------- 5. IMAP mix
    for round in $(seq 1 "$ROUNDS"); do
        for name in "${TARGETS[@]}"; do imap_round "$name" "$round" "$ROUNDS" "$TMP/runs.$name"; done
    done
    declare -A IMAP_OUT IMAP_ALL
    for name in "${TARGETS[@]}"; do
        IMAP_OUT[$name]=$(median_file "$TMP/runs.$name")
        IMAP_ALL[$name]=$(round_values "$TMP/runs.$name")
    done
fi

# ---------------------------------------------------------------- 6. POP3
# Each round starts from full maildrops that both servers have indexed, as after delivery
# (mailsite's LMTP and Dovecot's LMTP both index what they store): the pool is linked in
# again, mailsite indexes it (`mailsite mailbox reindex`, while stopped) and Dovecot does
# (`doveadm mailbox status`, which brings its index and uidlist up to date). Then each
# maildrop is opened once (LOGIN, STAT, QUIT, as a client checking for mail), so that
# neither server's first look at a maildrop since it started is what the round measures.
declare -A POP3_OUT POP3_RUNS
POP3_USERS_ARG=$(join_by_comma "${POP3_LIST[@]}")
# relink_pop3 POOL ROOT ROUND: the POP3 users' cur/ full again, under names new to the servers
# (`P<round>` in place of `P1`), as new deliveries would be named: Dovecot remembers the names
# it expunged in the last round.
relink_pop3() {
    python3 - "$1" "$2" "$3" "${POP3_LIST[@]}" <<'PY' || die "relinking the POP3 maildrops failed"
import os, sys
pool, root, rnd, users = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
names = os.listdir(os.path.join(pool, "cur"))
for user in users:
    for name in names:
        os.link(os.path.join(pool, "cur", name), os.path.join(root, user, "cur", name.replace("P1Q", "P%sQ" % rnd, 1)))
PY
}
refill_pop3() {  # refill_pop3 NAME ROUND: full, indexed maildrops again
    local name=$1 round=$2 u
    case $name in
        dovecot)
            [ "$round" = 1 ] || relink_pop3 "$DC/pool/pop3" "$DC/mail" "$round"
            chown -R mail:mail "$DC/mail"
            for u in "${POP3_LIST[@]}"; do
                doveadm -c "$DC/dovecot.conf" mailbox status -u "$u" messages INBOX >>"$TMP/doveadm.log" 2>&1 \
                    || die "doveadm mailbox status -u $u failed: $(tail -3 "$TMP/doveadm.log")"
            done
            ;;
        mailsite)
            kill -TERM "${PID_OF[mailsite]}"; wait "${PID_OF[mailsite]}" 2>/dev/null || true
            relink_pop3 "$MS/pool/pop3" "$MS/data/mail" "$round"
            for u in "${POP3_LIST[@]}"; do
                msite mailbox reindex "$u" >>"$TMP/reindex.log" 2>&1 || die "mailsite mailbox reindex $u failed: $(tail -3 "$TMP/reindex.log")"
            done
            start_mailsite
            ;;
    esac
}
check_pop3() {  # check_pop3 NAME: one LOGIN, STAT, QUIT per POP3 user, nothing deleted
    python3 - "${IP_OF[$1]}" "$POP3_PORT" "$PASSWORD" "$POP3_MESSAGES" "${POP3_LIST[@]}" <<'PY' || die "$1: checking the POP3 maildrops failed"
import poplib, sys
host, port, password, want, users = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:]
for user in users:
    pop = poplib.POP3(host, port, timeout=60)
    pop.user(user)
    pop.pass_(password)
    count, _ = pop.stat()
    pop.quit()
    if count != want:
        sys.exit("%s has %d messages, expected %d" % (user, count, want))
PY
}
if want pop3; then
    for round in $(seq 1 "$POP3_ROUNDS"); do
        for name in "${TARGETS[@]}"; do
            # Round 1 of mailsite finds the maildrops indexed already; Dovecot's are indexed here.
            if [ "$round" -gt 1 ] || [ "$name" = dovecot ]; then refill_pop3 "$name" "$round"; fi
            check_pop3 "$name"
            log "$name (POP3 round $round/$POP3_ROUNDS): $POP3_USERS clients each retrieving and deleting $POP3_MESSAGES messages"
            out="$TMP/pop3.$name.$round.txt"
            run_client "$out" "$LOADGEN" pop3 --addr "${IP_OF[$name]}:$POP3_PORT" --users "$POP3_USERS_ARG" --label "$name" \
                || die "pop3 against $name failed: $(tail -20 "$out")"
            alive "$name"
            got=$(stat_of "$out" all messages)
            [ "$got" = $((POP3_USERS * POP3_MESSAGES)) ] || die "$name: POP3 moved $got messages, expected $((POP3_USERS * POP3_MESSAGES)): $(cat "$out")"
            case $name in dovecot) root="$DC/mail" ;; mailsite) root="$MS/data/mail" ;; esac
            left=$(for u in "${POP3_LIST[@]}"; do find "$root/$u/cur" "$root/$u/new" -type f; done | grep -c . || true)
            [ "$left" = 0 ] || die "$name: $left message files are left in the POP3 maildrops after QUIT"
            echo "$(stat_of "$out" all ops_s) $out" >>"$TMP/pop3runs.$name"
            log "$name: $(stat_of "$out" all ops_s) POP3 ops/s, $(stat_of "$out" all messages_s) messages/s, maildrops empty"
        done
    done
    for name in "${TARGETS[@]}"; do
        POP3_OUT[$name]=$(median_file "$TMP/pop3runs.$name")
        POP3_RUNS[$name]=$(round_values "$TMP/pop3runs.$name")
    done
fi

# ---------------------------------------------------------------- 7. memory per idle selected connection
if want memory; then
    IDLE_USERS_ARG=$(join_by_comma "${IDLE_LIST[@]}")
    IDLE_PIDS=()
    # idle NAME CONNECTIONS OUT: start an idle load generator, return when all its connections are
    # set up (it keeps holding them; stop_idle ends every one started).
    idle() {
        local name=$1 n=$2 out=$3 pid ok failed
        "$LOADGEN" idle --addr "${IP_OF[$name]}:$IMAP_PORT" --users "$IDLE_USERS_ARG" --label "$name" \
            --connections "$n" --parallel "$IDLE_PARALLEL" --timeout 600 >"$out" 2>&1 &
        pid=$!
        IDLE_PIDS+=("$pid")
        PIDS+=("$pid")   # so that cleanup stops it too
        until grep -q '^ready ' "$out" 2>/dev/null; do
            kill -0 "$pid" 2>/dev/null || die "the idle load generator against $name exited: $(tail -20 "$out")"
            alive "$name"
            sleep 0.5
        done
        ok=$(awk '/^ready / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "connections") print kv[2] } }' "$out")
        failed=$(awk '/^ready / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "failed") print kv[2] } }' "$out")
        { [ "$failed" = 0 ] && [ "$ok" = "$n" ]; } || die "$name: $failed of $n idle connections failed: $(tail -20 "$out")"
        log "$name: $n more connections logged in with INBOX selected ($(awk '/^ready / { print $4 }' "$out"))"
        sleep 2   # let the server settle (finished tasks, freed buffers)
    }
    stop_idle() {
        local pid
        for pid in "${IDLE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
        IDLE_PIDS=()
    }
    declare -A MEM
    # Dovecot: the imap processes (one per connection) are the master's children named imap.
    log "dovecot: memory with $DOVECOT_IDLE_CONNECTIONS idle connections"
    idle dovecot "$DOVECOT_IDLE_CONNECTIONS" "$TMP/idle.dovecot.txt"
    mapfile -t IMAP_PIDS < <(ps --ppid "${PID_OF[dovecot]}" -o pid=,comm= | awk '$2 == "imap" { print $1 }')
    [ "${#IMAP_PIDS[@]}" -ge "$DOVECOT_IDLE_CONNECTIONS" ] || die "expected $DOVECOT_IDLE_CONNECTIONS Dovecot imap processes, found ${#IMAP_PIDS[@]}"
    rss=0 pss=0
    for p in "${IMAP_PIDS[@]}"; do rss=$((rss + $(rss_kb "$p"))); pss=$((pss + $(pss_kb "$p"))); done
    MEM[dovecot.n]=${#IMAP_PIDS[@]}
    MEM[dovecot.rss]=$(awk -v t="$rss" -v n="${#IMAP_PIDS[@]}" 'BEGIN { printf "%.1f", t / n }')
    MEM[dovecot.pss]=$(awk -v t="$pss" -v n="${#IMAP_PIDS[@]}" 'BEGIN { printf "%.1f", t / n }')
    MEM[dovecot.total]="$rss kB RSS, $pss kB PSS in ${#IMAP_PIDS[@]} imap processes"
    log "dovecot: ${MEM[dovecot.total]}"
    stop_idle

    if [ "$PEERS_ONLY" = 0 ]; then
        # Two load generators of half the connections each: the RSS at half way also gives the
        # marginal cost of a connection, apart from what the process keeps after a burst of logins.
        half=$((IDLE_CONNECTIONS / 2))
        log "mailsite: restarting for a fresh process, then memory with $half + $((IDLE_CONNECTIONS - half)) idle connections"
        kill -TERM "${PID_OF[mailsite]}"; wait "${PID_OF[mailsite]}" 2>/dev/null || true
        start_mailsite
        sleep 2
        pid=${PID_OF[mailsite]}
        rss0=$(rss_kb "$pid") pss0=$(pss_kb "$pid")
        idle mailsite "$half" "$TMP/idle.mailsite.1.txt"
        rss_half=$(rss_kb "$pid")
        idle mailsite "$((IDLE_CONNECTIONS - half))" "$TMP/idle.mailsite.2.txt"
        rss1=$(rss_kb "$pid") pss1=$(pss_kb "$pid")
        MEM[mailsite.n]=$IDLE_CONNECTIONS
        MEM[mailsite.rss]=$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE_CONNECTIONS" 'BEGIN { printf "%.1f", (b - a) / n }')
        MEM[mailsite.marginal]=$(awk -v a="$rss_half" -v b="$rss1" -v n="$((IDLE_CONNECTIONS - half))" 'BEGIN { printf "%.1f", (b - a) / n }')
        MEM[mailsite.total]="VmRSS $rss0 kB fresh, $rss_half kB with $half connections, $rss1 kB with $IDLE_CONNECTIONS (PSS $pss0 -> $pss1 kB)"
        log "mailsite: ${MEM[mailsite.total]}"
        stop_idle
    fi
fi

# ---------------------------------------------------------------- 8. report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = (b > 0 ? a / b : 0); printf (r >= 0.1 ? "%.2fx" : "%.3fx"), r }'; }
verdict() {  # verdict RATIO_VALUE OP TARGET -> met/missed
    awk -v r="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=" ? r >= t : r <= t); print (ok ? "**met**" : "**missed**") }'
}
echo
echo "### Mailbox servers benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with the load generator; IMAP mix: $CLIENTS clients over $IMAP_USERS users with a $MESSAGES-message INBOX each, ${DURATION}s, median of $ROUNDS round(s); POP3: $POP3_USERS clients x $POP3_MESSAGES messages, median of $POP3_ROUNDS round(s); parts: $PARTS)"
echo
# row LABEL DOVECOT MAILSITE [RATIO TARGET]: one row, with the mailsite column only when measured
row() {
    if [ "$PEERS_ONLY" = 0 ]; then echo "| $1 | $2 | $3 | ${4:-} | ${5:-} |"; else echo "| $1 | $2 |"; fi
}
if [ "$PEERS_ONLY" = 0 ]; then
    echo "| measure | ${LABEL[dovecot]} | ${LABEL[mailsite]} | mailsite / Dovecot | target |"
    echo "|---|---:|---:|---:|---|"
else
    echo "| measure | ${LABEL[dovecot]} |"
    echo "|---|---:|"
fi
m() { [ "$PEERS_ONLY" = 0 ] && stat_of "$@"; }   # a mailsite figure, or nothing with --peers-only
if want imap; then
    d_imap=$(stat_of "${IMAP_OUT[dovecot]}" all ops_s) m_imap=$(m "${IMAP_OUT[mailsite]:-}" all ops_s || true)
    r_imap=$(awk -v a="$m_imap" -v b="$d_imap" 'BEGIN { print (b > 0 ? a / b : 0) }')
    row "IMAP mix, operations/s (errors)" "$d_imap ($(stat_of "${IMAP_OUT[dovecot]}" all errors))" \
        "$m_imap ($(m "${IMAP_OUT[mailsite]:-}" all errors || true))" "$(ratio "$m_imap" "$d_imap")" ">= 1.0x: $(verdict "$r_imap" ">=" 1.0)"
    sessions() { awk -v s="$1" -v d="$DURATION" 'BEGIN { printf "%.2f", s / d }'; }
    row "IMAP mix, complete sessions/s" "$(sessions "$(stat_of "${IMAP_OUT[dovecot]}" all sessions)")" \
        "$(sessions "$(m "${IMAP_OUT[mailsite]:-}" all sessions || true)")"
fi
if want pop3; then
    d_pop=$(stat_of "${POP3_OUT[dovecot]}" all ops_s) m_pop=$(m "${POP3_OUT[mailsite]:-}" all ops_s || true)
    d_msg=$(stat_of "${POP3_OUT[dovecot]}" all messages_s) m_msg=$(m "${POP3_OUT[mailsite]:-}" all messages_s || true)
    r_pop=$(awk -v a="$m_pop" -v b="$d_pop" 'BEGIN { print (b > 0 ? a / b : 0) }')
    row "POP3, operations/s" "$d_pop" "$m_pop" "$(ratio "$m_pop" "$d_pop")" ">= 1.0x: $(verdict "$r_pop" ">=" 1.0)"
    row "POP3, messages retrieved and deleted/s" "$d_msg" "$m_msg" "$(ratio "$m_msg" "$d_msg")"
fi
if want memory; then
    if [ "$PEERS_ONLY" = 0 ]; then
        r_rss=$(awk -v a="${MEM[mailsite.rss]}" -v b="${MEM[dovecot.rss]}" 'BEGIN { print (b > 0 ? a / b : 0) }')
        r_pss=$(awk -v a="${MEM[mailsite.rss]}" -v b="${MEM[dovecot.pss]}" 'BEGIN { print (b > 0 ? a / b : 0) }')
        r_marg=$(awk -v a="${MEM[mailsite.marginal]}" -v b="${MEM[dovecot.pss]}" 'BEGIN { print (b > 0 ? a / b : 0) }')
        row "memory per idle selected IMAP connection, KiB (RSS)" "${MEM[dovecot.rss]} (${MEM[dovecot.n]} conns)" \
            "${MEM[mailsite.rss]} (${MEM[mailsite.n]} conns)" "$(ratio "${MEM[mailsite.rss]}" "${MEM[dovecot.rss]}")" "<= 0.05x: $(verdict "$r_rss" "<=" 0.05)"
        row "same, against Dovecot's PSS (shared pages split)" "${MEM[dovecot.pss]}" "${MEM[mailsite.rss]}" \
            "$(ratio "${MEM[mailsite.rss]}" "${MEM[dovecot.pss]}")" "<= 0.05x: $(verdict "$r_pss" "<=" 0.05)"
        row "marginal: mailsite's second half of the connections, against Dovecot's PSS" "${MEM[dovecot.pss]}" \
            "${MEM[mailsite.marginal]}" "$(ratio "${MEM[mailsite.marginal]}" "${MEM[dovecot.pss]}")" "(<= 0.05x: $(verdict "$r_marg" "<=" 0.05))"
    else
        row "memory per idle selected IMAP connection, KiB RSS / PSS" "${MEM[dovecot.rss]} / ${MEM[dovecot.pss]}"
    fi
fi
if [ "$PEERS_ONLY" = 0 ] && want imap; then
    echo
    echo "IMAP operations (median round):"
    echo
    echo "| operation | Dovecot ops/s | mailsite ops/s | Dovecot p50 / p99 ms | mailsite p50 / p99 ms | mailsite errors |"
    echo "|---|---:|---:|---:|---:|---:|"
    for op in login select fetch-flags fetch-envelopes fetch-body store search append logout; do
        d=${IMAP_OUT[dovecot]} m=${IMAP_OUT[mailsite]}
        echo "| $op | $(stat_of "$d" "$op" ops_s) | $(stat_of "$m" "$op" ops_s) | $(stat_of "$d" "$op" p50_ms) / $(stat_of "$d" "$op" p99_ms) | $(stat_of "$m" "$op" p50_ms) / $(stat_of "$m" "$op" p99_ms) | $(stat_of "$m" "$op" errors) |"
    done
fi
if [ "$PEERS_ONLY" = 0 ] && want pop3; then
    echo
    echo "POP3 operations (median round):"
    echo
    echo "| operation | Dovecot p50 / p99 ms | mailsite p50 / p99 ms |"
    echo "|---|---:|---:|"
    for op in login stat uidl retr dele quit; do
        d=${POP3_OUT[dovecot]} m=${POP3_OUT[mailsite]}
        echo "| $op | $(stat_of "$d" "$op" p50_ms) / $(stat_of "$d" "$op" p99_ms) | $(stat_of "$m" "$op" p50_ms) / $(stat_of "$m" "$op" p99_ms) |"
    done
fi
echo
if want imap; then
    echo "- IMAP ops/s of each round: Dovecot ${IMAP_ALL[dovecot]}${IMAP_ALL[mailsite]:+; mailsite ${IMAP_ALL[mailsite]}}"
fi
if want pop3; then
    echo "- POP3 ops/s of each round: Dovecot ${POP3_RUNS[dovecot]}${POP3_RUNS[mailsite]:+; mailsite ${POP3_RUNS[mailsite]}}"
fi
if want memory; then
    echo "- memory: Dovecot ${MEM[dovecot.total]}${MEM[mailsite.total]:+; mailsite ${MEM[mailsite.total]}}; idle users' INBOX: $IDLE_MESSAGES messages"
fi
