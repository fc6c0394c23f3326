#!/usr/bin/env bash
# bench/sieve.sh - Sieve at delivery: smtp-source hands MESSAGES messages over LMTP to mailsite's
# mailbox server while every bench user has the 20-rule script bench/sieve/rules.sieve active, and
# again with no script; in the same run, the same load and the same script against Dovecot's LMTP
# with Pigeonhole. The figure that counts: mailsite with the script >= 1.0x Dovecot with it.
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run (3 rounds of 4 deliveries
# of 4,000 messages) takes about 2 minutes once mailsite is built (--peers-only: 1); building
# mailsite from scratch adds about 3:
#   bash bench/sieve.sh                        # builds target/release/mailsite first
#   bash bench/sieve.sh /path/to/mailsite      # explicit mailsite binary (not built)
#   ROUNDS=5 MESSAGES=8000 bash bench/sieve.sh # more rounds / more messages
#   bash bench/sieve.sh --peers-only           # Dovecot + Pigeonhole only
#
# What it does:
#   1. installs what is missing: apt-get postfix (debconf main_mailer_type 'No configuration'; only
#      its smtp-source is used, no Postfix runs), dovecot-core, dovecot-lmtpd, dovecot-sieve
#      (Pigeonhole); builds mailsite (cargo build --release -p mailsite) unless given a binary;
#   2. mailsite: an isolated site config (role mailbox only, its own data dir; mailbox1 on
#      MAILSITE_IP with LMTP on 10024, [lmtp] allow = ["127.0.0.0/8"] so that smtp-source may
#      deliver), USERS users bench01.. (`mailsite user add`); `mailsite --config TMP/mailsite/site.toml
#      serve`; a script is switched on with `mailsite sieve put USER rules bench/sieve/rules.sieve
#      --activate` and off with `mailsite sieve activate USER --none`, while it runs;
#   3. peer: Dovecot (`dovecot -F` with its own dovecot.conf and base_dir: protocols = lmtp on
#      DOVECOT_IP:10024, mail_location = maildir: (Maildir++, the layout mailsite writes),
#      passwd-file userdb as user 'mail', protocol lmtp { mail_plugins = sieve }, plugin { sieve =
#      file:~/sieve;active=~/.dovecot.sieve }, fsync settings and logging at their defaults); the
#      script is each user's ~/sieve/rules.sieve, switched on by the ~/.dovecot.sieve link and off
#      by removing it (Pigeonhole then keeps every message in INBOX), while it runs;
#   4. ROUNDS rounds of four deliveries - mailsite with the script, mailsite without, Dovecot with,
#      Dovecot without - in that order in odd rounds and the reverse in even ones. Each: USERS
#      smtp-source processes at once, one per recipient, together MESSAGES messages of SIZE bytes
#      over CONNECTIONS LMTP connections, each connection kept for its share of the messages:
#        smtp-source -L -c -d -l SIZE -m MESSAGES/USERS -s CONNECTIONS/USERS -S 'Site load test' \
#                    -f loadgen@sender.test -t benchNN@DOMAIN IP:10024
#      (a message is From:, To:, Date:, Message-Id:, Subject: and SIZE bytes of "NXXX..." lines);
#      then polls (every 0.25 s, bounded by TIMEOUT s, and by STALL s without progress) the files
#      in the users' Maildir new/ + cur/, INBOX and every folder, until MESSAGES more are there; the
#      time is from just before the first smtp-source starts to the modification time of the newest
#      message file (the last message stored); afterwards (after SETTLE s) checks that exactly
#      MESSAGES arrived (none lost, none twice) and where: with the script every one of them in
#      folder Filtered (.Filtered) and flagged \Flagged (":2,F" in its name), none in INBOX or
#      elsewhere; without it every one in INBOX. A message filed anywhere else stops the run:
#      the two interpreters would not have run the same script;
#   5. prints a markdown table: messages/s of each with and without the script (MESSAGES / seconds
#      from the first byte to the last message stored; median round), the mailsite / Dovecot
#      ratios against the target >= 1.0x with the script, what the script costs each (with /
#      without), and messages lost (must be 0); exits non-zero if a message was lost.
# All daemons and load generators are started by this script and stopped by PID on exit.
#
# The script (bench/sieve/rules.sieve) requires fileinto, imap4flags, body, relational,
# variables, envelope, mailbox and comparator-i;ascii-numeric; 19 rules test headers, addresses,
# the envelope, the size and the body and file none of smtp-source's messages, the 20th files
# every one of them into "Filtered" with \Flagged. Rules 1-19 also run the way both interpreters
# agree on (see the script's header for where sieve-rs 0.7 and Pigeonhole differ).
#
# Environment knobs:
#   MESSAGES=4000 CONNECTIONS=8       messages per delivery, LMTP connections at once (all servers)
#   SIZE=4096                         smtp-source -l: message body bytes (headers come on top)
#   ROUNDS=3                          rounds (the table shows each delivery's median round)
#   USERS=4                           recipients bench01..: one smtp-source each; MESSAGES and
#                                     CONNECTIONS must be multiples of USERS
#   TIMEOUT=600 STALL=60 SETTLE=2     delivery wait bounds and the duplicate check's wait, seconds
#   MAILSITE_IP=127.0.0.61 DOVECOT_IP=127.0.0.62
#   KEEP_TMP=1                        keep the temp dir (configs, data, logs)
#
# Caveat: smtp-source shares this machine's cores (and its one disk) with the servers under test;
# compare figures from the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=sieve
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

MESSAGES=${MESSAGES:-4000}
CONNECTIONS=${CONNECTIONS:-8}
SIZE=${SIZE:-4096}
ROUNDS=${ROUNDS:-3}
USERS=${USERS:-4}
TIMEOUT=${TIMEOUT:-600}
STALL=${STALL:-60}
SETTLE=${SETTLE:-2}
MAILSITE_IP=${MAILSITE_IP:-127.0.0.61}
DOVECOT_IP=${DOVECOT_IP:-127.0.0.62}
DOMAIN=bench.test
SENDER=loadgen@sender.test
SUBJECT="Site load test"
LMTP_PORT=10024
RULES="$SCRIPT_DIR/sieve/rules.sieve"
FOLDER=Filtered     # where rule 20 files every message; on disk the Maildir++ folder .Filtered
NCPU=$(nproc)

[ "$(id -u)" = 0 ] || die "run as root (Dovecot starts as root and drops privileges)"
{ [ $((MESSAGES % USERS)) = 0 ] && [ $((CONNECTIONS % USERS)) = 0 ] && [ "$CONNECTIONS" -ge "$USERS" ]; } \
    || die "MESSAGES ($MESSAGES) and CONNECTIONS ($CONNECTIONS) must be multiples of USERS ($USERS)"
[ -r "$RULES" ] || die "the Sieve script is missing: $RULES"

# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
SIEVE_PLUGIN=/usr/lib/dovecot/modules/lib90_sieve_plugin.so
missing=()
command -v smtp-source >/dev/null 2>&1 || missing+=(postfix)
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
[ -e "$SIEVE_PLUGIN" ] || missing+=(dovecot-sieve)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    # Postfix's package asks how to configure the system's mail: nothing (we never use /etc/postfix/main.cf).
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install "${missing[@]}"
fi
# Without init, the packages' own postfix and dovecot services are never started.

mailsite_binary
if [ "$PEERS_ONLY" = 0 ]; then
    "$MAILSITE_BIN" sieve --help >/dev/null 2>&1 \
        || die "$MAILSITE_BIN has no 'sieve' command (mailsite sieve put/activate): build a mailsite with Sieve, or use --peers-only"
fi

# ---------------------------------------------------------------- temp dir, helpers
TMP=$(mktemp -d /tmp/mailsite-bench-sieve.XXXXXX)
chmod 755 "$TMP"   # Dovecot's mail processes run as 'mail' and must traverse to their maildirs
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mapfile -t USER_LIST < <(for ((i = 1; i <= USERS; i++)); do printf 'bench%02d\n' "$i"; done)

# wait_greeting NAME PID IP PORT: poll until IP:PORT greets with "220".
wait_greeting() {
    local name=$1 pid=$2 ip=$3 port=$4 line
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        line=$(timeout 2 bash -c "exec 3<>/dev/tcp/$ip/$port && head -n 1 <&3" 2>/dev/null || true)
        [[ "$line" == 220* ]] && return 0
        sleep 0.1
    done
    die "$name did not greet on $ip:$port within 15 s"
}

# Nothing may answer on our addresses yet (another run of this script, or someone's daemon).
in_use() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
for addr in "$MAILSITE_IP:$LMTP_PORT" "$DOVECOT_IP:$LMTP_PORT"; do
    in_use "${addr%:*}" "${addr#*:}" && die "$addr is already in use (another benchmark running?)"
done

SERVERS=()
declare -A LABEL MAILROOT LMTP_IP SIEVE_NOW

# ---------------------------------------------------------------- 1. mailsite
if [ "$PEERS_ONLY" = 0 ]; then
    SERVERS+=(mailsite)
    MS="$TMP/mailsite"
    mkdir -p "$MS/data"
    cat >"$MS/site.toml" <<EOF
# Generated by bench/sieve.sh: mailbox1 on $MAILSITE_IP (LMTP $LMTP_PORT), nothing else running.
[site]
domain = "$DOMAIN"
other_domains = []
name = "Sieve benchmark"
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

[ports]
imap = 10143
imaps = 10993
pop3 = 10110
pop3s = 10995
smtp = 10025
submission = 10587
submissions = 10465
lmtp = $LMTP_PORT

[lmtp]
# smtp-source delivers straight to the mailbox server, as a sorter would.
allow = ["127.0.0.0/8"]

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
    log "mailsite: adding $USERS users"
    for u in "${USER_LIST[@]}"; do
        echo "$PASSWORD" | msite user add "$u" >>"$TMP/useradd.log" 2>&1 || die "mailsite user add $u failed: $(tail -3 "$TMP/useradd.log")"
    done
    log "starting mailsite ($MAILSITE_BIN): mailbox1 on $MAILSITE_IP (LMTP $LMTP_PORT)"
    "$MAILSITE_BIN" --config "$MS/site.toml" serve >>"$TMP/mailsite.log" 2>&1 &   # the binary itself, so $! is its PID
    PID_OF[mailsite]=$!
    PIDS+=("${PID_OF[mailsite]}")
    wait_greeting mailsite "${PID_OF[mailsite]}" "$MAILSITE_IP" "$LMTP_PORT"
    v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    LABEL[mailsite]="mailsite${v:+ $v}"
    MAILROOT[mailsite]="$MS/data/mail"
    LMTP_IP[mailsite]=$MAILSITE_IP
    SIEVE_NOW[mailsite]=off
fi

# ---------------------------------------------------------------- 2. Dovecot + Pigeonhole (LMTP into Maildir)
SERVERS+=(dovecot)
DC="$TMP/dovecot"
MAIL_UID=$(id -u mail)
mkdir -p "$DC/mail" "$DC/home" "$DC/run" "$DC/state"
for u in "${USER_LIST[@]}"; do
    echo "$u::::::"
    mkdir -p "$DC/home/$u/sieve"
    cp "$RULES" "$DC/home/$u/sieve/rules.sieve"   # Pigeonhole keeps it compiled in ~/.dovecot.svbin
done >"$DC/passwd"
chmod 644 "$DC/passwd"
chown -R mail:mail "$DC/mail" "$DC/home"
cat >"$DC/dovecot.conf" <<EOF
# Generated by bench/sieve.sh: LMTP on $DOVECOT_IP:$LMTP_PORT into Maildirs, the Sieve plugin
# (Pigeonhole) running each user's ~/.dovecot.sieve if there is one. Defaults everywhere else
# (mail_fsync = optimized: message files fsynced; a log line per delivery).
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailsite-bench-sieve
log_path = $DC/dovecot.log
protocols = lmtp
listen = $DOVECOT_IP
ssl = no
auth_username_format = %Ln
mail_location = maildir:$DC/mail/%n
first_valid_uid = $MAIL_UID
passdb {
  driver = passwd-file
  args = $DC/passwd
}
userdb {
  driver = passwd-file
  args = $DC/passwd
  default_fields = uid=mail gid=mail home=$DC/home/%n
}
service lmtp {
  inet_listener lmtp {
    address = $DOVECOT_IP
    port = $LMTP_PORT
  }
}
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
EOF
dovecot -c "$DC/dovecot.conf" -n >"$DC/doveconf.log" 2>&1 || die "Dovecot rejects its config: $(cat "$DC/doveconf.log")"
DOVECOT_VERSION=$(dovecot --version | awk '{ print $1 }')
PIGEONHOLE_VERSION=$(grep -aoE 'Pigeonhole Sieve [0-9][0-9.]*' /usr/lib/dovecot/libdovecot-sieve.so* 2>/dev/null | head -1 | awk '{ print $NF }' || true)
log "starting Dovecot $DOVECOT_VERSION with Pigeonhole ${PIGEONHOLE_VERSION:-?} on $DOVECOT_IP (LMTP $LMTP_PORT)"
dovecot -F -c "$DC/dovecot.conf" >"$DC/stdout.log" 2>&1 &
PID_OF[dovecot]=$!
PIDS+=("${PID_OF[dovecot]}")
wait_greeting Dovecot "${PID_OF[dovecot]}" "$DOVECOT_IP" "$LMTP_PORT"
LABEL[dovecot]="Dovecot $DOVECOT_VERSION + Pigeonhole ${PIGEONHOLE_VERSION:-?}"
MAILROOT[dovecot]="$DC/mail"
LMTP_IP[dovecot]=$DOVECOT_IP
SIEVE_NOW[dovecot]=off

# ---------------------------------------------------------------- helpers for a delivery
alive() { kill -0 "${PID_OF[$1]}" 2>/dev/null || die "$1 (PID ${PID_OF[$1]}) died; see its log in $TMP"; }

# sieve_set SERVER on|off: the script active for every bench user, or no script at all.
sieve_set() {
    local server=$1 want=$2 u
    [ "${SIEVE_NOW[$server]}" = "$want" ] && return 0
    for u in "${USER_LIST[@]}"; do
        case "$server:$want" in
            mailsite:on) msite sieve put "$u" rules "$RULES" --activate >>"$TMP/sieve-cli.log" 2>&1 \
                             || die "mailsite sieve put $u rules $RULES --activate failed: $(tail -3 "$TMP/sieve-cli.log")" ;;
            mailsite:off) msite sieve activate "$u" --none >>"$TMP/sieve-cli.log" 2>&1 \
                             || die "mailsite sieve activate $u --none failed: $(tail -3 "$TMP/sieve-cli.log")" ;;
            dovecot:on) ln -sfn sieve/rules.sieve "$DC/home/$u/.dovecot.sieve" ;;
            dovecot:off) rm -f "$DC/home/$u/.dovecot.sieve" ;;
        esac
    done
    SIEVE_NOW[$server]=$want
    log "$server: Sieve script $([ "$want" = on ] && echo "active ($RULES)" || echo "off") for ${USER_LIST[*]}"
}

# folders SERVER WHICH: the users' Maildir new/ and cur/ that exist, of INBOX (inbox), of the
# Filtered folder (filtered), or of INBOX and every Maildir++ folder (all)
folders() {
    local root=${MAILROOT[$1]} u d
    local -a maildirs
    for u in "${USER_LIST[@]}"; do
        case $2 in
            inbox) maildirs=("$root/$u") ;;
            filtered) maildirs=("$root/$u/.$FOLDER") ;;
            all) maildirs=("$root/$u" "$root/$u"/.[!.]*) ;;   # an unmatched pattern stays as is: no new/ in it
        esac
        for d in "${maildirs[@]}"; do
            [ -d "$d/new" ] && echo "$d/new"
            [ -d "$d/cur" ] && echo "$d/cur"
        done
    done
    return 0
}
# count SERVER WHICH [FIND-TESTS...]: message files in those folders (e.g. -name '*:2,*F*')
count() {
    local server=$1 which=$2 dirs
    shift 2
    mapfile -t dirs < <(folders "$server" "$which")
    [ ${#dirs[@]} = 0 ] && { echo 0; return; }
    find "${dirs[@]}" -maxdepth 1 -type f "$@" -printf . | wc -c
}
newest_stored() {  # newest_stored SERVER: the modification time (epoch seconds) of the newest message file
    local dirs
    mapfile -t dirs < <(folders "$1" all)
    find "${dirs[@]}" -maxdepth 1 -type f -printf '%T@\n' | sort -n | tail -1
}
counts() {  # counts SERVER: "all inbox filtered flagged" message files
    echo "$(count "$1" all) $(count "$1" inbox) $(count "$1" filtered) $(count "$1" filtered -name '*:2,*F*')"
}

PER_USER=$((MESSAGES / USERS))
SESSIONS=$((CONNECTIONS / USERS))
declare -A LOST RATES
# one_delivery SERVER on|off ROUND: the load against SERVER with the script on or off; appends
# "rate seconds accept_seconds" to TMP/runs.SERVER.on|off
one_delivery() {
    local server=$1 mode=$2 round=$3 key="$1.$2" b_all b_inbox b_filtered b_flagged a_all a_inbox a_filtered a_flagged
    local target start end accepted now n last_n last_change pids=() pid rc=0 u i daemons lost stored inbox filtered flagged elsewhere
    alive "$server"
    sieve_set "$server" "$mode"
    read -r b_all b_inbox b_filtered b_flagged < <(counts "$server")
    target=$((b_all + MESSAGES))
    log "$server, Sieve $mode (round $round/$ROUNDS): $USERS x smtp-source -L -c -d -l $SIZE -m $PER_USER -s $SESSIONS to ${LMTP_IP[$server]}:$LMTP_PORT"
    start=$(date +%s.%N)
    i=0
    daemons=${#PIDS[@]}   # the smtp-source PIDs stay in PIDS (stopped on exit) only while they run
    for u in "${USER_LIST[@]}"; do
        i=$((i + 1))
        smtp-source -L -c -d -l "$SIZE" -m "$PER_USER" -s "$SESSIONS" -S "$SUBJECT" -M "client$i.sender.test" -f "$SENDER" \
            -t "$u@$DOMAIN" "${LMTP_IP[$server]}:$LMTP_PORT" >"$TMP/source.$key.$round.$u.log" 2>&1 &
        pids+=("$!")
        PIDS+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
    accepted=$(date +%s.%N)
    PIDS=("${PIDS[@]:0:$daemons}")
    [ "$rc" = 0 ] || die "smtp-source against $server failed (exit $rc): $(tail -c 600 "$TMP"/source."$key"."$round".*.log)"
    # Wait for the last message to be stored: bounded by TIMEOUT overall and STALL without progress.
    last_n=-1
    last_change=$SECONDS
    while :; do
        n=$(count "$server" all)
        [ "$n" -ge "$target" ] && break
        [ "$n" != "$last_n" ] && { last_n=$n; last_change=$SECONDS; }
        now=$(date +%s)
        if [ $((SECONDS - last_change)) -ge "$STALL" ] || [ "$(awk -v a="$now" -v b="$start" 'BEGIN { print (a - b > '"$TIMEOUT"') }')" = 1 ]; then
            log "$server: gave up waiting: $((n - b_all)) of $MESSAGES stored"
            break
        fi
        alive "$server"
        sleep 0.25
    done
    end=$(newest_stored "$server")
    sleep "$SETTLE"
    read -r a_all a_inbox a_filtered a_flagged < <(counts "$server")
    stored=$((a_all - b_all)) inbox=$((a_inbox - b_inbox)) filtered=$((a_filtered - b_filtered)) flagged=$((a_flagged - b_flagged))
    elsewhere=$((stored - inbox - filtered))
    lost=$((MESSAGES - stored))
    [ "$lost" -lt 0 ] && die "$server: $stored messages stored for $MESSAGES sent: $((-lost)) stored twice"
    # Where they went: the script files every message into Filtered, flagged; without it, INBOX.
    if [ "$mode" = on ]; then
        { [ "$filtered" = "$stored" ] && [ "$flagged" = "$stored" ]; } \
            || die "$server did not run the Sieve script on every message: of $stored stored, $filtered in $FOLDER ($flagged of them \\Flagged), $inbox in INBOX, $elsewhere elsewhere; see $TMP"
    else
        [ "$inbox" = "$stored" ] \
            || die "$server filed messages with no script active: of $stored stored, $inbox in INBOX, $filtered in $FOLDER, $elsewhere elsewhere; see $TMP"
    fi
    LOST[$key]=$(( ${LOST[$key]:-0} + lost ))
    awk -v m="$MESSAGES" -v s="$start" -v e="$end" -v a="$accepted" \
        'BEGIN { t = e - s; printf "%.1f %.3f %.3f\n", m / t, t, a - s }' >>"$TMP/runs.$key"
    RATES[$key]="${RATES[$key]:+${RATES[$key]}, }$(tail -1 "$TMP/runs.$key" | awk '{ print $1 }')"
    log "$server, Sieve $mode: $stored stored ($([ "$mode" = on ] && echo "all in $FOLDER, \\Flagged" || echo "all in INBOX")), $lost lost; $(tail -1 "$TMP/runs.$key" | awk '{ printf "%s messages/s (%s s to the last stored; smtp-source done after %s s)", $1, $2, $3 }')"
}

# ---------------------------------------------------------------- 3. rounds, deliveries alternating
DELIVERIES=()
for server in "${SERVERS[@]}"; do DELIVERIES+=("$server:on" "$server:off"); done
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order=("${DELIVERIES[@]}"); else order=(); for ((i = ${#DELIVERIES[@]} - 1; i >= 0; i--)); do order+=("${DELIVERIES[i]}"); done; fi
    for d in "${order[@]}"; do one_delivery "${d%:*}" "${d#*:}" "$round"; done
done
grep -q 'sieve.*[Ee]rror' "$DC/dovecot.log" && log "Pigeonhole logged errors: $(grep 'sieve.*[Ee]rror' "$DC/dovecot.log" | tail -3)"

# ---------------------------------------------------------------- 4. report
field() { median_line "$TMP/runs.$1" | awk -v f="$2" '{ print $f }'; }   # field SERVER.MODE N: of the median round
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = (b > 0 ? a / b : 0); printf (r >= 0.1 ? "%.2fx" : "%.3fx"), r }'; }
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { print ((b > 0 ? a / b : 0) >= t ? "**met**" : "**missed**") }'; }
echo
echo "### LMTP delivery with a 20-rule Sieve script ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with smtp-source; $MESSAGES messages of $SIZE body bytes over $CONNECTIONS LMTP connections to $USERS users, every one filed into $FOLDER with \\Flagged by rule 20 of bench/sieve/rules.sieve; fsync on, median of $ROUNDS round(s))"
echo
pw=$(field dovecot.on 1) po=$(field dovecot.off 1)
if [ "$PEERS_ONLY" = 0 ]; then
    mw=$(field mailsite.on 1) mo=$(field mailsite.off 1)
    echo "| measure | ${LABEL[dovecot]} | ${LABEL[mailsite]} | mailsite / Dovecot | target |"
    echo "|---|---:|---:|---:|---|"
    echo "| messages/s with the Sieve script, first byte to last message stored | $pw | $mw | $(ratio "$mw" "$pw") | >= 1.0x: $(verdict "$mw" "$pw" 1.0) |"
    echo "| messages/s without a script | $po | $mo | $(ratio "$mo" "$po") | |"
    echo "| with the script / without | $(ratio "$pw" "$po") | $(ratio "$mw" "$mo") | | |"
    echo "| seconds, first byte to last message stored, with / without the script | $(field dovecot.on 2) / $(field dovecot.off 2) | $(field mailsite.on 2) / $(field mailsite.off 2) | | |"
    echo "| seconds until smtp-source had every 250, with / without | $(field dovecot.on 3) / $(field dovecot.off 3) | $(field mailsite.on 3) / $(field mailsite.off 3) | | |"
    all_lost=$(( ${LOST[dovecot.on]} + ${LOST[dovecot.off]} + ${LOST[mailsite.on]} + ${LOST[mailsite.off]} ))
    echo "| messages lost (all rounds), with / without | ${LOST[dovecot.on]} / ${LOST[dovecot.off]} | ${LOST[mailsite.on]} / ${LOST[mailsite.off]} | | 0: $([ "$all_lost" = 0 ] && echo '**met**' || echo '**missed**') |"
    echo
    echo "- messages/s of each round, with the script: Dovecot ${RATES[dovecot.on]}; mailsite ${RATES[mailsite.on]}"
    echo "- messages/s of each round, without: Dovecot ${RATES[dovecot.off]}; mailsite ${RATES[mailsite.off]}"
else
    echo "| measure | ${LABEL[dovecot]} |"
    echo "|---|---:|"
    echo "| messages/s with the Sieve script, first byte to last message stored | $pw |"
    echo "| messages/s without a script | $po |"
    echo "| with the script / without | $(ratio "$pw" "$po") |"
    echo "| seconds, first byte to last message stored, with / without the script | $(field dovecot.on 2) / $(field dovecot.off 2) |"
    echo "| seconds until smtp-source had every 250, with / without | $(field dovecot.on 3) / $(field dovecot.off 3) |"
    echo "| messages lost (all rounds), with / without | ${LOST[dovecot.on]} / ${LOST[dovecot.off]} |"
    echo
    echo "- messages/s of each round, with the script: ${RATES[dovecot.on]}; without: ${RATES[dovecot.off]}"
fi
for key in "${!LOST[@]}"; do [ "${LOST[$key]}" = 0 ] || die "$key lost ${LOST[$key]} messages"; done
