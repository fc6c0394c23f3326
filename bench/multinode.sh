#!/usr/bin/env bash
# bench/multinode.sh - the SMTP load of bench/smtp.sh and the IMAP mix of bench/mailbox.sh against
# the multi-node PostgreSQL site, beside the same site on SQLite, in the same run.
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run takes about 7 minutes once
# mailsite and the load generator are built (a third of it indexing the IMAP users' 40,000
# messages into each database):
#   bash bench/multinode.sh                        # builds target/release/mailsite and bench/loadgen first
#   bash bench/multinode.sh /path/to/mailsite      # explicit mailsite binary (not built)
#   SMTP_ROUNDS=1 IMAP_ROUNDS=1 bash bench/multinode.sh
#
# The sites (each the embedded default's shape: two mailbox servers, two sorters, letters a-m on
# mailbox1 and n-z on mailbox2, on its own loopback /16, its own data):
#   sqlite      one `mailsite serve` running every role, directory and mail index in SQLite: what
#               bench/smtp.sh and bench/mailbox.sh measure;
#   pg-one      the same single process with `database = "postgres://..."`: PostgreSQL's share;
#   pg-nodes    the site of deploy/ on one machine: five processes (autoconfig+dns, mailbox1,
#               mailbox2, sorter1, sorter2), each with its own configuration file and data
#               directory, against one PostgreSQL; the mailbox servers share their mail storage.
# PostgreSQL: the Debian package's server (`initdb` in the temp dir, run as the postgres user on
# PG_ADDR:PG_PORT), at its defaults (fsync, synchronous_commit = on) except listen address, port
# and max_connections; each PostgreSQL site has its own database.
#
# What it does:
#   1. installs what is missing: apt-get postfix (for smtp-source), postgresql, python3; builds
#      mailsite and the load generator (bench/loadgen);
#   2. per site: writes the configuration(s), adds the users with `mailsite user add`, seeds the
#      IMAP users' INBOXes (`mailsite-loadgen seed`, hard links to one pool, as bench/mailbox.sh)
#      and indexes them (`mailsite mailbox reindex`), starts the process(es);
#   3. SMTP, SMTP_ROUNDS rounds, sites in turn (the order reversed every other round), as
#      bench/smtp.sh: USERS smtp-source processes at once, one per recipient, together MESSAGES
#      messages of SIZE bytes over CONNECTIONS connections to the MX port of sorter1 (recipients
#      1, 3, ...) or sorter2 (2, 4, ...), like outbox's round robin; recipients alternate between
#      letters a (mailbox1) and n (mailbox2); the time runs from just before the first
#      smtp-source starts to the modification time of the newest stored message file, once all
#      are there; then (after SETTLE s) the count must be exact and the sorters' queues empty;
#   4. IMAP, as bench/mailbox.sh: WARMUP s unmeasured, then IMAP_ROUNDS rounds of DURATION s,
#      sites in turn: `mailsite-loadgen imap-mix --clients CLIENTS` against mailbox1 with IMAP_USERS
#      users (letter a) who each have an IMAP_MESSAGES-message INBOX; a correctness gate first;
#   5. prints a markdown table: each site's median round and the ratios to sqlite.
# All daemons and load generators are started by this script and stopped by PID on exit.
#
# Environment knobs:
#   SITES="sqlite pg-one pg-nodes"    which sites to run (sqlite must stay first for the ratios)
#   MESSAGES=10000 CONNECTIONS=20 SIZE=4096 USERS=4 SMTP_ROUNDS=3   the SMTP load
#   CLIENTS=16 IMAP_USERS=4 IMAP_MESSAGES=10000 DURATION=30 WARMUP=5 IMAP_ROUNDS=1   the IMAP load
#   TIMEOUT=600 STALL=60 SETTLE=2     delivery wait bounds and the duplicate check's wait, seconds
#   NET=60                            the sites use 127.NET.0.0/16, 127.NET+1.., 127.NET+2..
#   PG_ADDR=127.0.0.1 PG_PORT=15432   where PostgreSQL listens
#   KEEP_TMP=1                        keep the temp dir (configs, data, logs)
#
# Caveat: the load generators share this machine's cores (and its one disk) with the servers,
# and PostgreSQL runs on the same machine (a real site gives it its own); compare figures from
# the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=multinode
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"
[ "$PEERS_ONLY" = 0 ] || die "--peers-only: this benchmark has no peers (see bench/smtp.sh, bench/mailbox.sh)"

read -r -a SITE_LIST <<<"${SITES:-sqlite pg-one pg-nodes}"
MESSAGES=${MESSAGES:-10000}
CONNECTIONS=${CONNECTIONS:-20}
SIZE=${SIZE:-4096}
USERS=${USERS:-4}
SMTP_ROUNDS=${SMTP_ROUNDS:-3}
CLIENTS=${CLIENTS:-16}
IMAP_USERS=${IMAP_USERS:-4}
IMAP_MESSAGES=${IMAP_MESSAGES:-10000}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
IMAP_ROUNDS=${IMAP_ROUNDS:-1}
TIMEOUT=${TIMEOUT:-600}
STALL=${STALL:-60}
SETTLE=${SETTLE:-2}
NET=${NET:-60}
PG_ADDR=${PG_ADDR:-127.0.0.1}
PG_PORT=${PG_PORT:-15432}
DOMAIN=example.test
SENDER=loadgen@sender.test
NCPU=$(nproc)

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL is started as the postgres user)"
{ [ $((MESSAGES % USERS)) = 0 ] && [ $((CONNECTIONS % USERS)) = 0 ] && [ "$CONNECTIONS" -ge "$USERS" ]; } \
    || die "MESSAGES ($MESSAGES) and CONNECTIONS ($CONNECTIONS) must be multiples of USERS ($USERS)"
[ "${SITE_LIST[0]}" = sqlite ] || die "SITES must start with sqlite (the ratios are to it)"

# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v smtp-source >/dev/null 2>&1 || missing+=(postfix)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install "${missing[@]}"
fi

mailsite_binary
log "building the load generator (bench/loadgen)"
env -u CARGO_TARGET_DIR cargo build --release -q --manifest-path "$SCRIPT_DIR/loadgen/Cargo.toml" \
    || die "building bench/loadgen failed"
LOADGEN="$SCRIPT_DIR/loadgen/target/release/mailsite-loadgen"

# ---------------------------------------------------------------- temp dir, helpers
TMP=$(mktemp -d /tmp/mailsite-bench-multinode.XXXXXX)
chmod 755 "$TMP"
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export LOADGEN_PASSWORD="$PASSWORD"
# SMTP recipients alternate between letter a (mailbox1) and n (mailbox2); IMAP users are on mailbox1.
mapfile -t SMTP_LIST < <(for ((i = 1; i <= USERS; i++)); do printf '%sbench%02d\n' "$( ((i % 2)) && echo a || echo n)" "$i"; done)
mapfile -t IMAP_LIST < <(for ((i = 1; i <= IMAP_USERS; i++)); do printf 'aimap%02d\n' "$i"; done)
join_by_comma() { local IFS=,; echo "$*"; }

# wait_greeting NAME PID IP PORT PREFIX: poll (bounded, 15 s) until IP:PORT greets with PREFIX.
wait_greeting() {
    local name=$1 pid=$2 ip=$3 port=$4 prefix=$5 line
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        line=$(timeout 2 bash -c "exec 3<>/dev/tcp/$ip/$port && head -n 1 <&3" 2>/dev/null || true)
        [[ "$line" == "$prefix"* ]] && return 0
        sleep 0.1
    done
    die "$name did not greet on $ip:$port within 15 s"
}
in_use() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# ---------------------------------------------------------------- 1. PostgreSQL
needs_pg=0
for s in "${SITE_LIST[@]}"; do [[ $s == pg-* ]] && needs_pg=1; done
if [ "$needs_pg" = 1 ]; then
    in_use "$PG_ADDR" "$PG_PORT" && die "$PG_ADDR:$PG_PORT is already in use (set PG_PORT)"
    start_postgres 300
    PID_OF[postgres]=$PG_PID
fi
psql_admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_ADDR" -p "$PG_PORT" -U postgres -d postgres "$@"; }

# ---------------------------------------------------------------- 2. the sites
declare -A SITE_NET LABEL MAILROOT NODES_OF ADMIN_CONFIG REINDEX
# site_toml NET DATA_DIR DATABASE ROLES [SERVERS]: the embedded default moved to 127.NET.0.0/16.
site_toml() {
    local net=$1 data=$2 database=$3 roles=$4 servers=${5:-}
    "$MAILSITE_BIN" check-config --print-default \
        | sed -e "s/127\.0\.0\./127.$net.0./g" \
              -e "s|^data_dir = .*|data_dir = \"$data\"${database:+\\ndatabase = \"$database\"}|" \
              -e "s|^roles = .*|roles = $roles${servers:+\\nservers = $servers}|"
}

# start_node SITE NAME CONFIG: one `mailsite serve` (the binary itself, so $! is its PID).
start_node() {
    local site=$1 name=$2 config=$3
    "$MAILSITE_BIN" --config "$config" serve >>"$TMP/$site.$name.log" 2>&1 &
    PID_OF[$site.$name]=$!
    PIDS+=("$!")
    NODES_OF[$site]="${NODES_OF[$site]:-} $site.$name"
}

k=0
for site in "${SITE_LIST[@]}"; do
    net=$((NET + k))
    k=$((k + 1))
    SITE_NET[$site]=$net
    dir="$TMP/$site"
    mkdir -p "$dir/mail"
    database=
    if [[ $site == pg-* ]]; then
        db="mailsite_${site//-/_}"
        psql_admin -c "CREATE DATABASE $db" || die "CREATE DATABASE $db failed"
        database="postgres://postgres@$PG_ADDR:$PG_PORT/$db"
    fi
    for addr in 1:8080 11:10143 12:10143 21:10025 22:10025; do
        in_use "127.$net.0.${addr%:*}" "${addr#*:}" && die "127.$net.0.$addr is already in use (set NET)"
    done
    case $site in
        sqlite | pg-one)
            mkdir -p "$dir/data"
            ln -s "$dir/mail" "$dir/data/mail"
            site_toml "$net" "$dir/data" "$database" '["autoconfig", "dns", "mailbox", "sorter"]' >"$dir/site.toml"
            ADMIN_CONFIG[$site]="$dir/site.toml"
            ;;
        pg-nodes)
            for node in dns-autoconfig mailbox1 mailbox2 sorter1 sorter2; do
                mkdir -p "$dir/$node/data"
                case $node in
                    dns-autoconfig) roles='["autoconfig", "dns"]' servers= ;;
                    mailbox*) roles='["mailbox"]' servers="[\"$node\"]"; ln -s "$dir/mail" "$dir/$node/data/mail" ;;
                    sorter*) roles='["sorter"]' servers="[\"$node\"]" ;;
                esac
                site_toml "$net" "$dir/$node/data" "$database" "$roles" "$servers" >"$dir/$node.toml"
            done
            ADMIN_CONFIG[$site]="$dir/mailbox1.toml"
            ;;
        *) die "unknown site $site (SITES: sqlite, pg-one, pg-nodes)" ;;
    esac
    MAILROOT[$site]="$dir/mail"
done

msite() { local site=$1; shift; "$MAILSITE_BIN" --config "${ADMIN_CONFIG[$site]}" "$@"; }

log "seeding $IMAP_USERS x $IMAP_MESSAGES messages (IMAP users, one pool)"
"$LOADGEN" seed --dir "$TMP/pool" --count "$IMAP_MESSAGES" --seed 1 >"$TMP/seed.log" 2>&1 \
    || die "seeding failed: $(tail -5 "$TMP/seed.log")"
for site in "${SITE_LIST[@]}"; do
    msite "$site" check-config >"$TMP/$site.check-config.log" 2>&1 || die "$site: mailsite check-config: $(cat "$TMP/$site.check-config.log")"
    log "$site: adding $((USERS + IMAP_USERS)) users, indexing $((IMAP_USERS * IMAP_MESSAGES)) messages"
    for u in "${SMTP_LIST[@]}" "${IMAP_LIST[@]}"; do
        echo "$PASSWORD" | msite "$site" user add "$u" >>"$TMP/$site.useradd.log" 2>&1 \
            || die "$site: mailsite user add $u failed: $(tail -3 "$TMP/$site.useradd.log")"
    done
    start=$SECONDS
    for u in "${IMAP_LIST[@]}"; do
        mkdir -p "${MAILROOT[$site]}/$u"
        cp -al "$TMP/pool/." "${MAILROOT[$site]}/$u/"
        msite "$site" mailbox reindex "$u" >>"$TMP/$site.reindex.log" 2>&1 \
            || die "$site: mailsite mailbox reindex $u failed: $(tail -3 "$TMP/$site.reindex.log")"
    done
    REINDEX[$site]=$((SECONDS - start))
    log "$site: indexed in ${REINDEX[$site]} s"
done

for site in "${SITE_LIST[@]}"; do
    net=${SITE_NET[$site]}
    dir="$TMP/$site"
    case $site in
        sqlite | pg-one) start_node "$site" all "$dir/site.toml" ;;
        pg-nodes) for node in dns-autoconfig mailbox1 mailbox2 sorter1 sorter2; do start_node "$site" "$node" "$dir/$node.toml"; done ;;
    esac
    for node in ${NODES_OF[$site]}; do
        pid=${PID_OF[$node]}
        case $node in
            *.all | *.mailbox1) wait_greeting "$node" "$pid" "127.$net.0.11" 10143 "* OK" ;;&
            *.all | *.mailbox2) wait_greeting "$node" "$pid" "127.$net.0.12" 10024 "220" ;;&
            *.all | *.sorter1) wait_greeting "$node" "$pid" "127.$net.0.21" 10025 "220" ;;&
            *.all | *.sorter2) wait_greeting "$node" "$pid" "127.$net.0.22" 10025 "220" ;;&
            *) ;;
        esac
    done
    v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    case $site in
        sqlite) LABEL[$site]="SQLite, 1 process" ;;
        pg-one) LABEL[$site]="PostgreSQL, 1 process" ;;
        pg-nodes) LABEL[$site]="PostgreSQL, 5 nodes" ;;
    esac
    log "$site: mailsite ${v} started (${NODES_OF[$site]# }) on 127.$net.0.0/16"
done

alive() {
    local node
    for node in ${NODES_OF[$1]}; do kill -0 "${PID_OF[$node]}" 2>/dev/null || die "$node (PID ${PID_OF[$node]}) died; see $TMP/$node.log"; done
    if [ "$needs_pg" = 1 ]; then kill -0 "${PID_OF[postgres]}" 2>/dev/null || die "PostgreSQL died; see $PG/postgres.log"; fi
}

# ---------------------------------------------------------------- 3. SMTP
maildirs() {  # maildirs SITE: the SMTP recipients' INBOX new/ and cur/ folders that exist
    local u d
    for u in "${SMTP_LIST[@]}"; do for d in new cur; do [ -d "${MAILROOT[$1]}/$u/$d" ] && echo "${MAILROOT[$1]}/$u/$d"; done; done
    return 0
}
count_stored() {
    local dirs
    mapfile -t dirs < <(maildirs "$1")
    [ ${#dirs[@]} = 0 ] && { echo 0; return; }
    find "${dirs[@]}" -maxdepth 1 -type f -printf . | wc -c
}
newest_stored() {
    local dirs
    mapfile -t dirs < <(maildirs "$1")
    find "${dirs[@]}" -maxdepth 1 -type f -printf '%T@\n' | sort -n | tail -1
}
queued() {  # queued SITE: messages still in its sorters' spools
    find "$TMP/$1"/data/queue "$TMP/$1"/sorter*/data/queue -name '*.json' -printf . 2>/dev/null | wc -c
}

PER_USER=$((MESSAGES / USERS))
SESSIONS=$((CONNECTIONS / USERS))
declare -A LOST
smtp_round() {  # smtp_round SITE ROUND: appends "rate seconds accept_seconds" to TMP/smtp.SITE
    local site=$1 round=$2 net=${SITE_NET[$1]} before target start accepted end n last_n last_change now pids=() pid rc=0 i lost host
    alive "$site"
    before=$(count_stored "$site")
    target=$((before + MESSAGES))
    log "$site (SMTP round $round/$SMTP_ROUNDS): $USERS x smtp-source -c -d -l $SIZE -m $PER_USER -s $SESSIONS to sorter1/sorter2"
    start=$(date +%s.%N)
    i=0
    for u in "${SMTP_LIST[@]}"; do
        i=$((i + 1))
        host="127.$net.0.$((i % 2 ? 21 : 22))"
        smtp-source -c -d -l "$SIZE" -m "$PER_USER" -s "$SESSIONS" -M "client$i.sender.test" -f "$SENDER" \
            -t "$u@$DOMAIN" "$host:10025" >"$TMP/source.$site.$round.$u.log" 2>&1 &
        pids+=("$!")
        PIDS+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
    accepted=$(date +%s.%N)
    [ "$rc" = 0 ] || die "smtp-source against $site failed (exit $rc): $(tail -c 600 "$TMP"/source."$site"."$round".*.log)"
    last_n=-1
    last_change=$SECONDS
    while :; do
        n=$(count_stored "$site")
        [ "$n" -ge "$target" ] && break
        [ "$n" != "$last_n" ] && { last_n=$n; last_change=$SECONDS; }
        now=$(date +%s)
        if [ $((SECONDS - last_change)) -ge "$STALL" ] || [ "$(awk -v a="$now" -v b="$start" 'BEGIN { print (a - b > '"$TIMEOUT"') }')" = 1 ]; then
            log "$site: gave up waiting: $((n - before)) of $MESSAGES stored, $(queued "$site") still queued"
            break
        fi
        alive "$site"
        sleep 0.25
    done
    end=$(newest_stored "$site")
    sleep "$SETTLE"
    n=$(count_stored "$site")
    lost=$((target - n))
    [ "$lost" -lt 0 ] && die "$site: $((n - before)) messages stored for $MESSAGES sent: $((-lost)) stored twice"
    LOST[$site]=$(( ${LOST[$site]:-0} + lost ))
    [ "$(queued "$site")" = 0 ] || log "$site: $(queued "$site") messages still queued after the round"
    awk -v m="$MESSAGES" -v s="$start" -v e="$end" -v a="$accepted" \
        'BEGIN { t = e - s; printf "%.1f %.3f %.3f\n", m / t, t, a - s }' >>"$TMP/smtp.$site"
    log "$site: $((n - before)) stored, $lost lost; $(tail -1 "$TMP/smtp.$site" | awk '{ printf "%s messages/s (%s s to the last stored; smtp-source done after %s s)", $1, $2, $3 }')"
}
in_turn() {  # in_turn ROUND: the sites, reversed in even rounds
    local i
    if [ $(($1 % 2)) = 1 ]; then echo "${SITE_LIST[@]}"; else for ((i = ${#SITE_LIST[@]} - 1; i >= 0; i--)); do printf '%s ' "${SITE_LIST[i]}"; done; echo; fi
}
for round in $(seq 1 "$SMTP_ROUNDS"); do
    for site in $(in_turn "$round"); do smtp_round "$site" "$round"; done
done

# ---------------------------------------------------------------- 4. IMAP mix
IMAP_USERS_ARG=$(join_by_comma "${IMAP_LIST[@]}")
mix() {  # mix SITE OUT ARGS...: one imap-mix run against the site's mailbox1
    local site=$1 out=$2
    shift 2
    run_client "$out" "$LOADGEN" imap-mix --addr "127.${SITE_NET[$site]}.0.11:10143" --users "$IMAP_USERS_ARG" \
        --label "$site" "$@" || die "imap-mix against $site failed: $(tail -20 "$out")"
    alive "$site"
}
for site in "${SITE_LIST[@]}"; do imap_gate "$site"; done
for round in $(seq 1 "$IMAP_ROUNDS"); do
    for site in $(in_turn "$round"); do imap_round "$site" "$round" "$IMAP_ROUNDS" "$TMP/imap.$site"; done
done

# ---------------------------------------------------------------- 5. report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = (b > 0 ? a / b : 0); printf "%.2fx", r }'; }
declare -A SMTP_MED SMTP_SECS IMAP_MED IMAP_FILE
for site in "${SITE_LIST[@]}"; do
    read -r "SMTP_MED[$site]" "SMTP_SECS[$site]" _ < <(median_line "$TMP/smtp.$site")
    read -r "IMAP_MED[$site]" "IMAP_FILE[$site]" < <(median_line "$TMP/imap.$site")
done
base=${SITE_LIST[0]}
row() {  # row TITLE VALUES...: a table row with one value per site
    local title=$1 line
    shift
    line="| $title |"
    for v in "$@"; do line+=" $v |"; done
    echo "$line"
}
header=("measure") sep="|---|"
for site in "${SITE_LIST[@]}"; do header+=("${LABEL[$site]}"); sep+="---:|"; done
for site in "${SITE_LIST[@]:1}"; do header+=("${LABEL[$site]} / ${LABEL[$base]}"); sep+="---:|"; done
smtp=() secs=() lost=() imap=() errs=() reidx=() r_smtp=() r_imap=()
for site in "${SITE_LIST[@]}"; do
    smtp+=("${SMTP_MED[$site]}") secs+=("${SMTP_SECS[$site]}") lost+=("${LOST[$site]:-0}")
    imap+=("${IMAP_MED[$site]}") errs+=("$(stat_of "${IMAP_FILE[$site]}" all errors)") reidx+=("${REINDEX[$site]}")
done
for site in "${SITE_LIST[@]:1}"; do
    r_smtp+=("$(ratio "${SMTP_MED[$site]}" "${SMTP_MED[$base]}")")
    r_imap+=("$(ratio "${IMAP_MED[$site]}" "${IMAP_MED[$base]}")")
done
blank=()
for _ in "${SITE_LIST[@]:1}"; do blank+=(""); done
echo
echo "### mailsite on SQLite and on PostgreSQL, one process and five nodes ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with the load generators and PostgreSQL; SMTP: $MESSAGES messages of $SIZE body bytes over $CONNECTIONS connections to $USERS recipients, median of $SMTP_ROUNDS round(s); IMAP mix: $CLIENTS clients over $IMAP_USERS users with a $IMAP_MESSAGES-message INBOX each, ${DURATION}s, median of $IMAP_ROUNDS round(s))"
echo
printf '| %s ' "${header[@]}"; echo "|"
echo "$sep"
row "SMTP in, messages/s, first byte to last message stored" "${smtp[@]}" "${r_smtp[@]}"
row "SMTP in, seconds to the last message stored" "${secs[@]}" "${blank[@]}"
row "SMTP in, messages lost (all rounds)" "${lost[@]}" "${blank[@]}"
row "IMAP mix, operations/s" "${imap[@]}" "${r_imap[@]}"
row "IMAP mix, errors" "${errs[@]}" "${blank[@]}"
row "mailbox reindex of $((IMAP_USERS * IMAP_MESSAGES)) messages, s" "${reidx[@]}" "${blank[@]}"
echo
echo "IMAP operations (median round), p50 / p99 ms:"
echo
line="| operation |"; sep="|---|"
for site in "${SITE_LIST[@]}"; do line+=" ${LABEL[$site]} |"; sep+="---:|"; done
echo "$line"; echo "$sep"
for op in login select fetch-flags fetch-envelopes fetch-body store search append logout; do
    line="| $op |"
    for site in "${SITE_LIST[@]}"; do line+=" $(stat_of "${IMAP_FILE[$site]}" "$op" p50_ms) / $(stat_of "${IMAP_FILE[$site]}" "$op" p99_ms) |"; done
    echo "$line"
done
echo
for site in "${SITE_LIST[@]}"; do
    echo "- ${LABEL[$site]}: SMTP messages/s of each round $(round_values "$TMP/smtp.$site"); IMAP ops/s of each round $(round_values "$TMP/imap.$site")"
done
total_lost=0
for site in "${SITE_LIST[@]}"; do total_lost=$((total_lost + ${LOST[$site]:-0})); done
[ "$total_lost" = 0 ] || exit 1
