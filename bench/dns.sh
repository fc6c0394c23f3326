#!/usr/bin/env bash
# bench/dns.sh - authoritative DNS benchmark: mailsite vs NSD serving the same example.test zone.
#
# Run (as root, from anywhere; needs only loopback):
#   bash bench/dns.sh                              # mailsite = ../target/release/mailsite (relative to this script)
#   bash bench/dns.sh /path/to/mailsite            # explicit binary
#   DURATION=30 bash bench/dns.sh                  # longer dnsperf runs (default 10 s each)
#   bash bench/dns.sh --peers-only                 # NSD only, with a built-in sample zone
#
# What it does:
#   1. installs what is missing: apt-get dnsperf nsd dnsutils(dig) curl;
#   2. starts `mailsite --data-dir TMP/data serve` (DNS 127.0.0.1:10053 UDP+TCP), waits for
#      /readyz, and writes the zone with `mailsite zone export` (--peers-only: a sample zone);
#   3. checks the zone with nsd-checkzone and starts NSD on 127.0.0.5:10053 with its own
#      nsd.conf (rrl-ratelimit: 0, pid/db/xfrd/zonelist paths in TMP, foreground -d, backgrounded);
#   4. checks both answer `dig @ADDR -p 10053 maila.example.test A`, then every distinct
#      query of the mix (NOERROR, non-empty answer; AA flag and answers identical to NSD's
#      are warnings only);
#   5. builds a dnsperf query file: A for maila..mailz, outbox, autoconfig, plus MX example.test
#      and SRV _imaps._tcp.example.test (each 4x, so ~1/5 of the mix is MX/SRV);
#   6. runs `dnsperf -m udp|tcp -s ADDR -p 10053 -d queries -l DURATION -c CLIENTS -T THREADS
#      -Q 1000000` against each in turn, over UDP and then TCP, and prints a markdown table a
#      transport (server, queries/s, lost %, avg latency, ratio vs NSD, and the server's CPU time
#      per answered query: user + system over its process tree from /proc, during the run);
#   7. during mailsite's last UDP round, moves letter MOVE_LETTER to the other mailbox server
#      with `mailsite letter move` and asks its alias until the new address shows (the answers
#      stay live under load; target within 1 s).
# All daemons are started by this script, in the background, and stopped by PID on exit.
#
# Environment knobs:
#   DURATION=10            seconds per measured dnsperf run
#   WARMUP=1               seconds of unmeasured warm-up per server (0 = none)
#   ROUNDS=1               rounds (servers alternate within a round); the table shows each
#                          server's median-qps run. ROUNDS=3 is advisable on a noisy machine.
#   DNSPERF_CLIENTS=8      dnsperf -c (UDP sockets)
#   DNSPERF_THREADS=2      dnsperf -T
#   DNSPERF_OUTSTANDING=500 dnsperf -q (max in-flight queries; default 100 is too few at this rate)
#   NSD_SERVERS=2          NSD server-count (with reuseport: yes)
#   TRANSPORTS="udp tcp"   dnsperf -m for each table
#   DNSSEC_OK=0            1: every query sets DO (dnsperf -D), as validating resolvers do;
#                          both servers then answer from the signed zone with RRSIG records
#                          (the gate checks that both do)
#   MOVE_LETTER=q          the letter moved mid-run
#   KEEP_TMP=1             keep the temp dir (configs, zone, logs, raw dnsperf output)
#
# Caveat: dnsperf and the server under test share this machine's cores (2 here): the client
# costs about as much CPU per query as the server, so absolute qps is client-limited too;
# compare figures from the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN="$SCRIPT_DIR/../target/release/mailsite"
BENCH=dns
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-1}
DNSPERF_CLIENTS=${DNSPERF_CLIENTS:-8}
DNSPERF_THREADS=${DNSPERF_THREADS:-2}
DNSPERF_OUTSTANDING=${DNSPERF_OUTSTANDING:-500}
NSD_SERVERS=${NSD_SERVERS:-2}
DNSSEC_OK=${DNSSEC_OK:-0}
DIG_DO=()
PERF_DO=()
if [ "$DNSSEC_OK" = 1 ]; then DIG_DO=(+dnssec); PERF_DO=(-D); fi
NCPU=$(nproc)

ZONE=example.test
PORT=10053
MAILSITE_IP=127.0.0.1     # fixed by mailsite's embedded default site
MAILSITE_HTTP=127.0.0.1:8080
NSD_IP=127.0.0.5


mailsite_binary

# ---------------------------------------------------------------- install what is missing
export PATH="$PATH:/usr/sbin:/sbin"   # nsd lives in /usr/sbin
missing=()
command -v dnsperf       >/dev/null 2>&1 || missing+=(dnsperf)
command -v nsd           >/dev/null 2>&1 || missing+=(nsd)
command -v dig           >/dev/null 2>&1 || missing+=(dnsutils)
command -v curl          >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi
# Debian's nsd package may try to start the service on install; without systemd/init that is
# a no-op here. We never use the packaged config.

# ---------------------------------------------------------------- temp dir, process bookkeeping, cleanup
TMP=$(mktemp -d /tmp/mailsite-bench-dns.XXXXXX)
wait_dns() {
    local name=$1 pid=$2 ip=$3 i
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        dig @"$ip" -p "$PORT" +time=1 +tries=1 "maila.$ZONE" A 2>/dev/null | grep -q 'status: NOERROR' && return 0
        sleep 0.1
    done
    die "$name did not answer maila.$ZONE A on $ip:$PORT within 15 s"
}

# ---------------------------------------------------------------- 1. mailsite + its zone (or the sample zone)
ZONEFILE="$TMP/$ZONE.zone"
if [ "$PEERS_ONLY" = 0 ]; then
    log "starting mailsite ($MAILSITE_BIN): DNS on $MAILSITE_IP:$PORT"
    mkdir -p "$TMP/data"
    # The embedded default, with response rate limiting off as NSD's is below
    # (rrl-ratelimit: 0): the load comes from one address, far above any real client's rate.
    "$MAILSITE_BIN" check-config --print-default | sed 's/^rate_limit = .*/rate_limit = 0/' >"$TMP/site.toml"
    grep -q '^rate_limit = 0$' "$TMP/site.toml" || die "cannot turn DNS rate limiting off in $TMP/site.toml"
    "$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$TMP/data" serve >"$TMP/mailsite.log" 2>&1 &
    PID_OF[mailsite]=$!
    PIDS+=("${PID_OF[mailsite]}")
    for i in $(seq 1 300); do   # HTTP readiness, <= 30 s
        kill -0 "${PID_OF[mailsite]}" 2>/dev/null || die "mailsite exited during start-up: $(tail -20 "$TMP/mailsite.log")"
        curl -fsS -o /dev/null --max-time 2 "http://$MAILSITE_HTTP/readyz" 2>/dev/null && break
        [ "$i" = 300 ] && die "mailsite /readyz not 200 within 30 s"
        sleep 0.1
    done
    wait_dns mailsite "${PID_OF[mailsite]}" "$MAILSITE_IP"
    "$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$TMP/data" zone export >"$ZONEFILE" 2>"$TMP/zone-export.log" \
        || die "mailsite zone export failed: $(cat "$TMP/zone-export.log")"
else
    log "--peers-only: NSD serves a built-in sample zone for $ZONE"
    # Same content as mailsite's export is described to have: SOA, NS, A for maila..mailz,
    # mail0, outbox, autoconfig, autodiscover, MX and SRV records.
    {
        cat <<'EOF'
$ORIGIN example.test.
$TTL 300
@               IN SOA  ns1.example.test. hostmaster.example.test. ( 1 3600 600 604800 300 )
@               IN NS   ns1.example.test.
@               IN MX   10 mail0.example.test.
ns1             IN A    127.0.0.1
mail0           IN A    127.0.0.1
outbox          IN A    127.0.0.1
autoconfig      IN A    127.0.0.1
autodiscover    IN A    127.0.0.1
_imaps._tcp     IN SRV  0 1 10993 maila.example.test.
_imap._tcp      IN SRV  0 1 10143 maila.example.test.
_pop3s._tcp     IN SRV  0 1 10995 maila.example.test.
_pop3._tcp      IN SRV  0 1 10110 maila.example.test.
_submissions._tcp IN SRV 0 1 10465 outbox.example.test.
_submission._tcp  IN SRV 0 1 10587 outbox.example.test.
_autodiscover._tcp IN SRV 0 1 8080 autodiscover.example.test.
EOF
        for l in {a..z}; do printf 'mail%-11s IN A    127.0.0.1\n' "$l"; done
    } >"$ZONEFILE"
fi
log "zone file: $(grep -c . "$ZONEFILE") lines"
nsd-checkzone "$ZONE" "$ZONEFILE" >"$TMP/checkzone.log" 2>&1 \
    || die "nsd-checkzone rejects the zone: $(cat "$TMP/checkzone.log")"

# ---------------------------------------------------------------- 2. NSD
mkdir -p "$TMP/nsd/xfr"
cat >"$TMP/nsd/nsd.conf" <<EOF
# Generated by bench/dns.sh: one zone, no rate limiting, everything under $TMP/nsd.
server:
    ip-address: $NSD_IP@$PORT
    port: $PORT
    server-count: $NSD_SERVERS
    reuseport: yes              # one socket per server process
    username: ""                # don't switch to the 'nsd' user (it couldn't read $TMP)
    chroot: ""
    zonesdir: "$TMP"
    database: ""                # no nsd.db, zones are read from text
    zonelistfile: "$TMP/nsd/zone.list"
    pidfile: "$TMP/nsd/nsd.pid"
    xfrdfile: "$TMP/nsd/xfrd.state"
    xfrdir: "$TMP/nsd/xfr"
    cookie-secret-file: "$TMP/nsd/cookiesecrets.txt"
    logfile: "$TMP/nsd/nsd.log"
    verbosity: 1
    hide-version: yes
    rrl-ratelimit: 0            # response rate limiting off: we are the flood
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "$ZONE"
    zonefile: "$ZONEFILE"
EOF
nsd-checkconf "$TMP/nsd/nsd.conf" >"$TMP/nsd/checkconf.log" 2>&1 || die "nsd-checkconf: $(cat "$TMP/nsd/checkconf.log")"
log "starting NSD on $NSD_IP:$PORT (server-count $NSD_SERVERS)"
nsd -d -c "$TMP/nsd/nsd.conf" >"$TMP/nsd/stdout.log" 2>&1 &
PID_OF[NSD]=$!
PIDS+=("${PID_OF[NSD]}")
wait_dns NSD "${PID_OF[NSD]}" "$NSD_IP"

# ---------------------------------------------------------------- 3. query mix
QUERIES="$TMP/queries.txt"
{
    for l in {a..z}; do echo "mail$l.$ZONE A"; done
    echo "outbox.$ZONE A"
    echo "autoconfig.$ZONE A"
    for _ in 1 2 3 4; do echo "$ZONE MX"; echo "_imaps._tcp.$ZONE SRV"; done
} >"$QUERIES"
log "query file: $(wc -l <"$QUERIES") queries ($(sort -u "$QUERIES" | wc -l) distinct)"

# ---------------------------------------------------------------- 4. correctness gate
TARGETS=("NSD $NSD_IP")
[ "$PEERS_ONLY" = 0 ] && TARGETS+=("mailsite $MAILSITE_IP")
for t in "${TARGETS[@]}"; do
    read -r name ip <<<"$t"
    dig @"$ip" -p "$PORT" +time=2 +tries=2 "maila.$ZONE" A >"$TMP/dig.$name.maila" 2>&1 || true
    grep -q 'status: NOERROR' "$TMP/dig.$name.maila" && grep -qE '^maila\.example\.test\.[[:space:]].*[[:space:]]A[[:space:]]' "$TMP/dig.$name.maila" \
        || die "$name: 'dig @$ip -p $PORT maila.$ZONE A' gave no A answer: $(cat "$TMP/dig.$name.maila")"
    warned_aa=0
    while read -r qname qtype; do
        out=$(dig @"$ip" -p "$PORT" +time=2 +tries=2 +norec "${DIG_DO[@]}" "$qname" "$qtype" 2>&1) || true
        grep -q 'status: NOERROR' <<<"$out" || die "$name: $qname $qtype did not return NOERROR: $out"
        grep -qE 'ANSWER: [1-9]' <<<"$out" || die "$name: $qname $qtype returned an empty answer: $out"
        if [ "$DNSSEC_OK" = 1 ]; then
            grep -qE "[[:space:]]RRSIG[[:space:]]+$qtype[[:space:]]" <<<"$out" || die "$name: $qname $qtype with DO came without its RRSIG: $out"
        fi
        if [ "$warned_aa" = 0 ] && ! grep -qE 'flags:[^;]* aa[ ;]' <<<"$out"; then
            log "WARNING: $name answers $qname $qtype without the AA (authoritative) flag"; warned_aa=1
        fi
        dig @"$ip" -p "$PORT" +time=2 +tries=2 +short "${DIG_DO[@]}" "$qname" "$qtype" 2>/dev/null | sort >>"$TMP/answers.$name"
    done < <(sort -u "$QUERIES")
    log "$name OK: all $(sort -u "$QUERIES" | wc -l) distinct queries answered NOERROR with data"
done
if [ "$PEERS_ONLY" = 0 ] && ! cmp -s "$TMP/answers.NSD" "$TMP/answers.mailsite"; then
    log "WARNING: mailsite and NSD answer differently for the same zone:"
    diff "$TMP/answers.NSD" "$TMP/answers.mailsite" | head -20 >&2 || true
fi

# ---------------------------------------------------------------- 5. dnsperf runs
# For each transport, ROUNDS rounds alternating servers within each round; each server's
# reported figures are those of its median-qps run (this machine's run-to-run noise is
# easily +-20 %). During mailsite's last UDP round a letter moves to the other mailbox
# server (`mailsite letter move`, a separate process, as an operator would) and its alias
# is asked until the new address shows: the answers stay live under load.
MOVE_LETTER=${MOVE_LETTER:-q}
move_mid_run() {   # move_mid_run OUT: writes "letter from to old_ip new_ip ms" or "FAIL reason"
    local out=$1 before after from to i t0 t1
    sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
    from=$("$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$TMP/data" letter list 2>/dev/null \
        | awk -v l="$MOVE_LETTER" '$1 == l { print $3 }')
    to=$("$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$TMP/data" letter list 2>/dev/null \
        | awk -v f="$from" 'NR > 1 && $3 != f && $3 ~ /^mailbox/ { print $3; exit }')
    [ -n "$from" ] && [ -n "$to" ] || { echo "FAIL cannot tell letter $MOVE_LETTER's server or another (from '$from', to '$to')" >"$out"; return; }
    before=$(dig @"$MAILSITE_IP" -p "$PORT" +time=1 +tries=3 +short "mail$MOVE_LETTER.$ZONE" A | head -1)
    t0=$(date +%s%N)
    "$MAILSITE_BIN" --config "$TMP/site.toml" --data-dir "$TMP/data" letter move "$MOVE_LETTER" "$to" >"$TMP/move.log" 2>&1 \
        || { echo "FAIL letter move: $(cat "$TMP/move.log")" >"$out"; return; }
    for i in $(seq 1 100); do   # bounded: 100 asks, ~2 s at the most
        after=$(dig @"$MAILSITE_IP" -p "$PORT" +time=1 +tries=3 +short "mail$MOVE_LETTER.$ZONE" A | head -1)
        [ -n "$after" ] && [ "$after" != "$before" ] && break
        sleep 0.02
    done
    t1=$(date +%s%N)
    if [ -n "$after" ] && [ "$after" != "$before" ]; then
        echo "$MOVE_LETTER $from $to $before $after $(( (t1 - t0) / 1000000 ))" >"$out"
    else
        echo "FAIL mail$MOVE_LETTER.$ZONE still answered $before after the move to $to" >"$out"
    fi
}

TRANSPORTS=${TRANSPORTS:-udp tcp}
for transport in $TRANSPORTS; do
    for round in $(seq 1 "$ROUNDS"); do
        for t in "${TARGETS[@]}"; do
            read -r name ip <<<"$t"
            args=(-m "$transport" -s "$ip" -p "$PORT" -d "$QUERIES" -c "$DNSPERF_CLIENTS" -T "$DNSPERF_THREADS" -q "$DNSPERF_OUTSTANDING" -Q 1000000 "${PERF_DO[@]}")
            if [ "$round" = 1 ] && [ "$WARMUP" != 0 ]; then
                log "$name $transport: warm-up ${WARMUP}s"
                run_client /dev/null dnsperf "${args[@]}" -l "$WARMUP" || true
            fi
            MOVER=
            if [ "$name" = mailsite ] && [ "$transport" = udp ] && [ "$round" = "$ROUNDS" ]; then
                move_mid_run "$TMP/move.result" &
                MOVER=$!
            fi
            log "$name (round $round/$ROUNDS): dnsperf ${args[*]} -l $DURATION"
            out="$TMP/dnsperf.$name.$transport.$round.txt"
            c0=$(tree_cpu "${PID_OF[$name]}")
            run_client "$out" dnsperf "${args[@]}" -l "$DURATION" || die "dnsperf against $name failed: $(cat "$out")"
            c1=$(tree_cpu "${PID_OF[$name]}")
            [ -n "$MOVER" ] && wait "$MOVER"
            qps=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$out")
            [ -n "$qps" ] || die "could not parse dnsperf output for $name: $(cat "$out")"
            # The server's CPU per answered query: what it leaves of the two cores to dnsperf.
            cpu_us=$(awk -v a="$c0" -v b="$c1" '/Queries completed:/ { printf "%.2f", ($3 > 0 ? (b - a) * 1e6 / $3 : 0) }' "$out")
            log "$name: $qps queries/s, server CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') s, ${cpu_us} us per query"
            echo "$qps $out $cpu_us" >>"$TMP/runs.$name.$transport"
            kill -0 "${PID_OF[$name]}" 2>/dev/null || die "$name (PID ${PID_OF[$name]}) died during the benchmark; see its log in $TMP"
        done
    done
done

# ---------------------------------------------------------------- 6. report
for transport in $TRANSPORTS; do
    declare -A QPS=() LOST=() LAT=() NOTE=() ALL=() CPU=() ALLCPU=()
    for t in "${TARGETS[@]}"; do
        read -r name _ <<<"$t"
        out=$(median_file "$TMP/runs.$name.$transport")   # median run
        ALL[$name]=$(round_values "$TMP/runs.$name.$transport")
        CPU[$name]=$(awk -v f="$out" '$2 == f { print $3 }' "$TMP/runs.$name.$transport")
        ALLCPU[$name]=$(awk '{ printf "%s%s", sep, $3; sep = ", " }' "$TMP/runs.$name.$transport")
        QPS[$name]=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$out")
        LOST[$name]=$(awk '/Queries lost:/ { gsub(/[()%]/, "", $4); print $4 }' "$out")
        LAT[$name]=$(awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000; exit }' "$out")   # the first: TCP runs add the connections' own
        [ -n "${LOST[$name]}" ] && [ -n "${LAT[$name]}" ] || die "could not parse dnsperf output for $name: $(cat "$out")"
        NOTE[$name]=$(awk '/Response codes:/ { sub(/^ *Response codes: */, ""); print }' "$out")
    done
    echo
    echo "### Authoritative DNS benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with dnsperf, ${transport^^}, dnsperf -m $transport${PERF_DO:+ -D} -c $DNSPERF_CLIENTS -T $DNSPERF_THREADS -q $DNSPERF_OUTSTANDING -l $DURATION, median of $ROUNDS round(s))"
    echo
    echo "| server | queries/s | lost % | avg latency (ms) | ratio vs NSD | server CPU us per query (same run) |"
    echo "|---|---:|---:|---:|---:|---:|"
    base=${QPS[NSD]}
    for t in "${TARGETS[@]}"; do
        read -r name _ <<<"$t"
        case $name in
            NSD) label="NSD $(nsd -v 2>&1 | awk 'NR == 1 { print $3 }') (server-count $NSD_SERVERS)" ;;
            *)   v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true); label="mailsite${v:+ $v}" ;;
        esac
        ratio=$(awk -v a="${QPS[$name]}" -v b="$base" 'BEGIN { r = (b > 0 ? a / b : 0); printf (r >= 0.1 ? "%.2fx" : "%.4fx"), r }')
        echo "| $label | ${QPS[$name]} | ${LOST[$name]} | ${LAT[$name]} | $ratio | ${CPU[$name]} |"
    done
    echo
    for t in "${TARGETS[@]}"; do
        read -r name _ <<<"$t"
        printf -- '- %s: response codes %s; queries/s of each round: %s; server CPU us per query: %s\n' "$name" "${NOTE[$name]:-?}" "${ALL[$name]}" "${ALLCPU[$name]}"
    done
    if [ "$transport" = udp ] && [ "$PEERS_ONLY" = 0 ] && [ -f "$TMP/move.result" ]; then
        read -r letter from to old new ms <"$TMP/move.result"
        if [ "$letter" = FAIL ]; then
            echo "- letter moved during mailsite's last UDP round: **failed**: $(cut -d' ' -f2- "$TMP/move.result")"
            MOVE_FAILED=1
        else
            verdict=$([ "$ms" -le 1000 ] && echo "met" || echo "**not met**")
            echo "- letter moved during mailsite's last UDP round: mail$letter.$ZONE from $from to $to answered $old before and $new ${ms} ms after \`mailsite letter move\` started (target <= 1000 ms: $verdict)"
        fi
    fi
done
[ "${MOVE_FAILED:-0}" = 0 ] || die "the letter moved mid-run did not show in the answers"
