#!/usr/bin/env bash
# bench/hostile.sh - what 1,000 hostile connections that never log in cost mailsite: the
# server's resident memory before and while they are held, and an honest client's IMAP
# login and SMTP delivery latency (median, p99) without and with them.
#
# Run (as root, from anywhere; needs only loopback). About 2 minutes once mailsite is built:
#   bash bench/hostile.sh                      # builds target/release/mailsite first
#   bash bench/hostile.sh /path/to/mailsite    # explicit binary (not built)
#   DATA_MIB=8 bash bench/hostile.sh           # more unfinished SMTP data per connection
#
# What it does:
#   1. writes the embedded default site (`mailsite check-config --print-default`) moved to
#      127.NET.0.0/16 with every limit at its default ([limits] per_source = 50), starts
#      `mailsite serve` on it and adds the user alice;
#   2. honest client alone (bench/hostile/honest.py, from 127.NET.9.9), after 10 unmeasured
#      rounds: SAMPLES IMAP logins
#      (connect, LOGIN, SELECT INBOX, LOGOUT) then SAMPLES SMTP deliveries to alice on the
#      MX port (EHLO, MAIL, RCPT, DATA of a small message, QUIT), one after another;
#   3. reads the server's VmRSS, then starts the attack (bench/hostile/attack.py, asyncio),
#      CONNECTIONS in all, from sources 127.NET.100+.x with PER_SOURCE connections each (under
#      the server's per-source cap, which would otherwise refuse most of them):
#        LITERAL      IMAP `a LOGIN {40000000}` (the server must answer BAD, never "+")
#        LITERALPLUS  IMAP `a LOGIN {40000000+}` then LITERAL_MIB MiB (refused and closed)
#        DATA         SMTP DATA to alice on the MX port, DATA_MIB MiB that never end
#        SLOW         a command line trickled one byte every SLOW_EVERY s (IMAP, POP3, SMTP)
#      and waits until every connection is set up and its data sent;
#   4. reads VmRSS while they are held, runs the honest client again, reads VmRSS again;
#   5. prints the memory added (target: <= 64 MiB) and both latencies unloaded and loaded
#      (target: loaded p99 <= 2x unloaded).
# The unfinished-DATA part meets its bound only where the sorter streams message data to its
# spool file (the SMTP streaming work); before it, each DATA connection holds its DATA_MIB.
#
# Environment knobs:
#   LITERAL=250 LITERALPLUS=150 DATA=300 SLOW=300   connections of each kind (1,000 in all)
#   LITERAL_MIB=2 DATA_MIB=2 SLOW_EVERY=5 PER_SOURCE=40 SAMPLES=400 NET=93 KEEP_TMP=1
set -euo pipefail
BENCH=hostile
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"
bench_args "$@"
mailsite_binary
LITERAL=${LITERAL:-250}
LITERALPLUS=${LITERALPLUS:-150}
DATA=${DATA:-300}
SLOW=${SLOW:-300}
export LITERAL_MIB=${LITERAL_MIB:-2} DATA_MIB=${DATA_MIB:-2} SLOW_EVERY=${SLOW_EVERY:-5} PER_SOURCE=${PER_SOURCE:-40}
SAMPLES=${SAMPLES:-400}
NET=${NET:-93}
command -v python3 >/dev/null || apt_install python3
# 1,000 sockets in one Python process, more in the server.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

TMP=$(mktemp -d /tmp/hostile-bench.XXXXXX)
"$MAILSITE_BIN" check-config --print-default | sed "s/127\.0\.0\./127.$NET.0./g" >"$TMP/site.toml"
grep -q "127.$NET.0.11" "$TMP/site.toml" || die "could not move the site to 127.$NET.0.0/16"
msite() { "$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$TMP/data" "$@"; }
IMAP_HOST=127.$NET.0.11   # mailbox1 (alice)
SMTP_HOST=127.$NET.0.21   # sorter1

log "starting mailsite on 127.$NET.0.0/16"
"$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$TMP/data" serve >>"$TMP/serve.log" 2>&1 &   # the binary itself: $! is its PID
PID_OF[serve]=$!
PIDS+=("${PID_OF[serve]}")
for _ in $(seq 1 300); do
    kill -0 "${PID_OF[serve]}" 2>/dev/null || die "mailsite exited: $(tail -5 "$TMP/serve.log")"
    { (exec 3<>"/dev/tcp/$IMAP_HOST/10143") && (exec 3<>"/dev/tcp/$SMTP_HOST/10025"); } 2>/dev/null && break
    sleep 0.1
done
echo "alice-password" | msite user add alice >/dev/null
sleep 3   # the server picks the new user up from the directory

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/${PID_OF[serve]}/status"; }
honest() {  # honest OUT [SAMPLES]: the honest client's run, its figures in OUT
    run_client "$1" python3 "$SCRIPT_DIR/hostile/honest.py" "$IMAP_HOST" "$SMTP_HOST" "127.$NET.9.9" "${2:-$SAMPLES}" \
        || die "the honest client failed: $(tail -5 "$1")"
    grep -q 'errors=0' <(grep imap_login "$1") && grep -q 'errors=0' <(grep smtp_delivery "$1") \
        || log "the honest client saw errors: $(cat "$1")"
}
figure() { awk -v op="$2" -v key="$3" '$1 == op { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' "$1"; }

log "honest client alone: 10 unmeasured rounds, then $SAMPLES IMAP logins, $SAMPLES SMTP deliveries"
honest "$TMP/warmup.txt" 10
honest "$TMP/unloaded.txt"
RSS_BEFORE=$(rss)

TOTAL=$((LITERAL + LITERALPLUS + DATA + SLOW))
log "attack: $TOTAL connections (literal=$LITERAL literalplus=$LITERALPLUS data=$DATA slow=$SLOW; ${LITERAL_MIB} MiB literals, ${DATA_MIB} MiB DATA)"
python3 "$SCRIPT_DIR/hostile/attack.py" "$IMAP_HOST" "$SMTP_HOST" "$NET" \
    "literal=$LITERAL,literalplus=$LITERALPLUS,data=$DATA,slow=$SLOW" >"$TMP/attack.log" 2>&1 &
ATTACK_PID=$!
PIDS+=("$ATTACK_PID")
for _ in $(seq 1 1500); do   # <= 150 s
    grep -q '^ready' "$TMP/attack.log" && break
    kill -0 "$ATTACK_PID" 2>/dev/null || die "the attack stopped: $(tail -5 "$TMP/attack.log")"
    sleep 0.1
done
grep -q '^ready' "$TMP/attack.log" || die "the attack was not set up within 150 s: $(tail -5 "$TMP/attack.log")"
log "attack $(grep '^ready' "$TMP/attack.log")"
RSS_HELD=$(rss)
log "honest client under attack"
honest "$TMP/loaded.txt"
RSS_AFTER=$(rss)
kill -TERM "$ATTACK_PID" 2>/dev/null || true
wait "$ATTACK_PID" 2>/dev/null || true
log "attack $(grep '^stopped' "$TMP/attack.log" || echo 'stopped')"

added=$(( (RSS_HELD > RSS_AFTER ? RSS_HELD : RSS_AFTER) - RSS_BEFORE ))
echo
echo "### Hostile connections before login ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores shared with the attacker and the client)"
echo
echo "$TOTAL connections: $LITERAL IMAP {40000000} literals, $LITERALPLUS IMAP {40000000+} with ${LITERAL_MIB} MiB each,"
echo "$DATA unfinished SMTP DATA of ${DATA_MIB} MiB each, $SLOW slow lines (1 byte / ${SLOW_EVERY} s); $(grep '^ready' "$TMP/attack.log" | cut -d' ' -f2-)"
echo
echo "| measure | unloaded | under attack | ratio | target |"
echo "|---|---|---|---|---|"
printf "| server RSS (MiB) | %.1f | %.1f (%.1f after the client) | +%.1f MiB | <= +64 MiB |\n" \
    "$(echo "$RSS_BEFORE / 1024" | bc -l)" "$(echo "$RSS_HELD / 1024" | bc -l)" "$(echo "$RSS_AFTER / 1024" | bc -l)" "$(echo "$added / 1024" | bc -l)"
for op in imap_login smtp_delivery; do
    for key in p50 p99; do
        u=$(figure "$TMP/unloaded.txt" "$op" "$key")
        l=$(figure "$TMP/loaded.txt" "$op" "$key")
        target="-"
        [ "$key" = p99 ] && target="<= 2x"
        printf "| %s %s (ms) | %s | %s | %.2fx | %s |\n" "$op" "$key" "$u" "$l" "$(echo "$l / $u" | bc -l)" "$target"
    done
done
echo
echo "errors: unloaded $(figure "$TMP/unloaded.txt" imap_login errors)+$(figure "$TMP/unloaded.txt" smtp_delivery errors), under attack $(figure "$TMP/loaded.txt" imap_login errors)+$(figure "$TMP/loaded.txt" smtp_delivery errors) (IMAP+SMTP)"
