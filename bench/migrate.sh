#!/usr/bin/env bash
# bench/migrate.sh - how long moving a letter to a mailbox server with storage of its own
# takes: `mailsite letter move a mailbox2 --migrate` for one user with a MESSAGES-message
# INBOX, while the site runs (the move's copy, flip and catch-up included); beside it, as a
# reference for the file copying alone, `cp -a` of the same Maildir followed by `sync`.
#
# Run (as root, from anywhere; needs only loopback):
#   bash bench/migrate.sh                      # builds target/release/mailsite and bench/loadgen
#   bash bench/migrate.sh /path/to/mailsite    # explicit mailsite binary
#   RUNS=5 MESSAGES=10000 bash bench/migrate.sh
#
# What it does:
#   1. writes the embedded default site (`mailsite check-config --print-default`) with
#      mailbox2 given `storage = "mail2"` (separate storage) into a temp dir and starts it
#      (`mailsite serve`, every role in one process);
#   2. adds user alice (letter a: mailbox1), writes MESSAGES deterministic messages (1-80 KB,
#      `mailsite-loadgen seed`) into her Maildir in the shared storage and indexes them
#      (`mailsite mailbox reindex alice`);
#   3. each run: `mailsite letter move a mailbox2 --migrate` (timed), checks that mailbox2's
#      storage holds every message and that an IMAP login at maila reaches mailbox2 with
#      the same UIDVALIDITY and message count, then moves the letter back to mailbox1 the
#      same way (also timed) and removes mail2/ so that the next run copies everything;
#   4. reference: `cp -a` of alice's Maildir to a new folder, then `sync` (timed);
#   5. prints a markdown table: median seconds and messages/s of each.
#
# Environment knobs: RUNS=3 MESSAGES=10000 KEEP_TMP=1
set -euo pipefail
BENCH=migrate
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"
bench_args "$@"
mailsite_binary
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-10000}
command -v python3 >/dev/null || apt_install python3
log "building the load generator (bench/loadgen)"
cargo build --release -q --manifest-path "$SCRIPT_DIR/loadgen/Cargo.toml" || die "building bench/loadgen failed"
LOADGEN="$SCRIPT_DIR/loadgen/target/release/mailsite-loadgen"

TMP=$(mktemp -d /tmp/migrate-bench.XXXXXX)
DATA=$TMP/data
"$MAILSITE_BIN" check-config --print-default \
    | sed 's|^name = "mailbox2"$|name = "mailbox2"\nstorage = "mail2"|' >"$TMP/site.toml"
grep -q '^storage = "mail2"' "$TMP/site.toml" || die "could not give mailbox2 its own storage"
msite() { "$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$DATA" "$@"; }

log "starting mailsite (embedded default, mailbox2 with storage of its own)"
"$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$DATA" serve >>"$TMP/serve.log" 2>&1 &   # the binary itself: $! is its PID
PID_OF[serve]=$!
PIDS+=("${PID_OF[serve]}")
for _ in $(seq 1 300); do
    kill -0 "${PID_OF[serve]}" 2>/dev/null || die "mailsite exited: $(tail -5 "$TMP/serve.log")"
    (exec 3<>/dev/tcp/127.0.0.11/10143) 2>/dev/null && break
    sleep 0.1
done
echo "alice-pass" | msite user add alice >/dev/null
log "seeding $MESSAGES messages for alice"
"$LOADGEN" seed --dir "$TMP/pool" --count "$MESSAGES" --seed 1 >"$TMP/seed.log" 2>&1 || die "seeding failed: $(tail -5 "$TMP/seed.log")"
mkdir -p "$DATA/mail/alice"
cp -a "$TMP/pool/." "$DATA/mail/alice/"
msite mailbox reindex alice >"$TMP/reindex.log" 2>&1 || die "reindex failed: $(cat "$TMP/reindex.log")"
BYTES=$(du -sb "$DATA/mail/alice" | cut -f1)

check() {  # check HOST: alice's INBOX at HOST: "UIDVALIDITY COUNT"
    python3 - "$1" <<'PY'
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 10143)
m.login("alice", "alice-pass")
typ, data = m.select("INBOX", readonly=True)
print(m.response("UIDVALIDITY")[1][0].decode(), int(data[0]))
m.logout()
PY
}
expected=$(check 127.0.0.11)
[ "${expected#* }" = "$MESSAGES" ] || die "mailbox1 shows $expected, not $MESSAGES messages"

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: >"$TMP/there" ; : >"$TMP/back" ; : >"$TMP/cp"
for run in $(seq 1 "$RUNS"); do
    t0=$(now)
    msite letter move a mailbox2 --migrate >>"$TMP/move.log" 2>&1 || die "the move failed: $(tail -5 "$TMP/move.log")"
    t1=$(now)
    copied=$(find "$DATA/mail2/alice/cur" -type f | wc -l)
    [ "$copied" = "$MESSAGES" ] || die "mail2 holds $copied messages, not $MESSAGES"
    sleep 0.5
    got=$(check 127.0.0.12)
    [ "$got" = "$expected" ] || die "mailbox2 shows '$got', mailbox1 showed '$expected'"
    echo "$t1 - $t0" | bc >>"$TMP/there"
    t0=$(now)
    msite letter move a mailbox1 --migrate >>"$TMP/move.log" 2>&1 || die "the move back failed: $(tail -5 "$TMP/move.log")"
    t1=$(now)
    echo "$t1 - $t0" | bc >>"$TMP/back"
    rm -rf "$DATA/mail2"
    log "run $run/$RUNS: there $(tail -1 "$TMP/there") s, back $(tail -1 "$TMP/back") s"
    t0=$(now)
    cp -a "$DATA/mail/alice" "$TMP/copy" && sync
    t1=$(now)
    echo "$t1 - $t0" | bc >>"$TMP/cp"
    rm -rf "$TMP/copy"
done

r2() { xargs printf '%.2f\n'; }
there=$(median <"$TMP/there" | r2); back=$(median <"$TMP/back" | r2); ref=$(median <"$TMP/cp" | r2)
rate() { echo "scale=0; $MESSAGES / $1" | bc; }
cat <<EOF

### Letter migration benchmark ($(date -u +%Y-%m-%dT%H:%MZ), one user, $MESSAGES messages, $((BYTES / 1048576)) MiB, median of $RUNS run(s))

| what | seconds | messages/s |
|---|---:|---:|
| \`letter move a mailbox2 --migrate\` (copy to empty storage, flip, catch-up) | $there | $(rate "$there") |
| \`letter move a mailbox1 --migrate\` (back: mailbox1 still has every file) | $back | $(rate "$back") |
| reference: \`cp -a\` of the Maildir + \`sync\` | $ref | $(rate "$ref") |

- seconds of each run: there $(r2 <"$TMP/there" | paste -sd' '); back $(r2 <"$TMP/back" | paste -sd' '); cp $(r2 <"$TMP/cp" | paste -sd' ')
- at least 2 s of each move is the catch-up's wait for the running nodes to follow the flip
EOF
