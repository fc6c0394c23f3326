#!/usr/bin/env bash
# bench/smtp.sh - inbound mail benchmark: smtp-source sends MESSAGES messages to mailsite's sorter,
# which queues each one durably and delivers it over LMTP to its mailbox server's Maildirs; in the
# same run, the same load against Postfix delivering over LMTP to Dovecot's Maildirs.
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run (3 rounds) takes about 2.5 minutes once
# mailsite is built; building mailsite from scratch adds about 3 minutes:
#   bash bench/smtp.sh                         # builds target/release/mailsite first
#   bash bench/smtp.sh /path/to/mailsite       # explicit mailsite binary (not built)
#   ROUNDS=5 SIZE=65536 bash bench/smtp.sh     # more rounds / bigger messages
#   bash bench/smtp.sh --peers-only            # Postfix + Dovecot only
#
# What it does:
#   1. installs what is missing: apt-get postfix (debconf main_mailer_type 'No configuration'; it
#      ships smtp-source), dovecot-core, dovecot-lmtpd; builds mailsite (cargo build --release
#      -p mailsite) unless given a binary;
#   2. mailsite: an isolated site config (roles sorter + mailbox, its own data dir; sorter1 on
#      MAILSITE_IP SMTP 10025, mailbox1 on MAILBOX_IP LMTP 10024) and USERS users bench01..
#      (`mailsite user add`); `mailsite --config TMP/mailsite/site.toml serve`;
#   3. peer: Postfix with its own config directory (`postfix -c DIR start`: own queue_directory and
#      data_directory, smtpd on POSTFIX_IP:10025, virtual_mailbox_domains = the same domain with the
#      same USERS users, virtual_transport = lmtp:inet:DOVECOT_IP:10024, maillog_file, everything
#      else default: fsync of queue files, in_flow_delay, LMTP connection caching, concurrency 20)
#      and Dovecot (`dovecot -F` with its own dovecot.conf and base_dir: protocols = lmtp on
#      DOVECOT_IP:10024, mail_location = maildir:, passwd-file userdb as user 'mail', fsync settings
#      at their defaults);
#   4. ROUNDS rounds, servers alternating (mailsite first in odd rounds, the peer first in even):
#      USERS smtp-source processes at once, one per recipient, together MESSAGES messages of SIZE
#      bytes over CONNECTIONS connections, each connection kept for its share of the messages:
#        smtp-source -c -d -l SIZE -m MESSAGES/USERS -s CONNECTIONS/USERS -f loadgen@sender.test \
#                    -t benchNN@DOMAIN IP:10025
#      then polls (every 0.25 s, bounded by TIMEOUT s, and by STALL s without progress) the number of
#      files in the users' Maildir new/ + cur/ until MESSAGES more are there; the time is from just
#      before the first smtp-source starts to the modification time of the newest message file (the
#      last message stored); afterwards checks (after SETTLE s) that exactly MESSAGES arrived (none
#      lost, none twice) and that the queue (mailsite's spool, Postfix's queue) is empty;
#   5. prints a markdown table: messages/s of each (MESSAGES / seconds from the first byte to the
#      last message stored; median round), the mailsite / Postfix+Dovecot ratio against the target
#      >= 1.0x, and messages lost (must be 0); exits non-zero if a message was lost.
# All daemons and load generators are started by this script and stopped by PID on exit.
#
# Environment knobs:
#   MESSAGES=10000 CONNECTIONS=20     messages per round, SMTP connections at once (all servers)
#   SIZE=4096                         smtp-source -l: message body bytes (headers come on top)
#   ROUNDS=3                          rounds per server (the table shows the median round)
#   USERS=4                           recipients bench01..: one smtp-source each; MESSAGES and
#                                     CONNECTIONS must be multiples of USERS
#   TIMEOUT=600 STALL=60 SETTLE=2     delivery wait bounds and the duplicate check's wait, seconds
#   MAILSITE_IP=127.0.0.41 MAILBOX_IP=127.0.0.44 POSTFIX_IP=127.0.0.42 DOVECOT_IP=127.0.0.43
#   KEEP_TMP=1                        keep the temp dir (configs, data, logs)
#
# Caveat: smtp-source shares this machine's cores (and its one disk) with the servers under test;
# compare figures from the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=smtp
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

MESSAGES=${MESSAGES:-10000}
CONNECTIONS=${CONNECTIONS:-20}
SIZE=${SIZE:-4096}
ROUNDS=${ROUNDS:-3}
USERS=${USERS:-4}
TIMEOUT=${TIMEOUT:-600}
STALL=${STALL:-60}
SETTLE=${SETTLE:-2}
MAILSITE_IP=${MAILSITE_IP:-127.0.0.41}
MAILBOX_IP=${MAILBOX_IP:-127.0.0.44}
POSTFIX_IP=${POSTFIX_IP:-127.0.0.42}
DOVECOT_IP=${DOVECOT_IP:-127.0.0.43}
DOMAIN=bench.test
SENDER=loadgen@sender.test
SMTP_PORT=10025
LMTP_PORT=10024
NCPU=$(nproc)


[ "$(id -u)" = 0 ] || die "run as root (Postfix and Dovecot start as root and drop privileges)"
{ [ $((MESSAGES % USERS)) = 0 ] && [ $((CONNECTIONS % USERS)) = 0 ] && [ "$CONNECTIONS" -ge "$USERS" ]; } \
    || die "MESSAGES ($MESSAGES) and CONNECTIONS ($CONNECTIONS) must be multiples of USERS ($USERS)"

# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v smtp-source >/dev/null 2>&1 && command -v postfix >/dev/null 2>&1 || missing+=(postfix)
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    # Postfix's package asks how to configure the system's mail: nothing (we never use /etc/postfix/main.cf).
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install "${missing[@]}"
fi
# Without init, the packages' own postfix and dovecot services are never started.

mailsite_binary

# ---------------------------------------------------------------- temp dir, helpers
TMP=$(mktemp -d /tmp/mailsite-bench-smtp.XXXXXX)
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
for addr in "$MAILSITE_IP:$SMTP_PORT" "$MAILBOX_IP:$LMTP_PORT" "$POSTFIX_IP:$SMTP_PORT" "$DOVECOT_IP:$LMTP_PORT"; do
    in_use "${addr%:*}" "${addr#*:}" && die "$addr is already in use (another benchmark running?)"
done

TARGETS=()
declare -A LABEL MAILROOT SMTP_IP

# ---------------------------------------------------------------- 1. mailsite
if [ "$PEERS_ONLY" = 0 ]; then
    TARGETS+=(mailsite)
    MS="$TMP/mailsite"
    mkdir -p "$MS/data"
    cat >"$MS/site.toml" <<EOF
# Generated by bench/smtp.sh: sorter1 on $MAILSITE_IP and mailbox1 on $MAILBOX_IP, nothing else.
[site]
domain = "$DOMAIN"
other_domains = []
name = "SMTP benchmark"
short_name = "bench"
data_dir = "$MS/data"

[node]
roles = ["sorter", "mailbox"]

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
smtp = $SMTP_PORT
submission = 10587
submissions = 10465
lmtp = $LMTP_PORT

[[mailbox]]
name = "mailbox1"
addresses = ["$MAILBOX_IP"]

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
    log "starting mailsite ($MAILSITE_BIN): sorter1 on $MAILSITE_IP:$SMTP_PORT, mailbox1 on $MAILBOX_IP (LMTP $LMTP_PORT)"
    "$MAILSITE_BIN" --config "$MS/site.toml" serve >>"$TMP/mailsite.log" 2>&1 &   # the binary itself, so $! is its PID
    PID_OF[mailsite]=$!
    PIDS+=("${PID_OF[mailsite]}")
    wait_greeting mailsite "${PID_OF[mailsite]}" "$MAILSITE_IP" "$SMTP_PORT"
    wait_greeting mailsite "${PID_OF[mailsite]}" "$MAILBOX_IP" "$LMTP_PORT"
    v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    LABEL[mailsite]="mailsite${v:+ $v}"
    MAILROOT[mailsite]="$MS/data/mail"
    SMTP_IP[mailsite]=$MAILSITE_IP
    SPOOL_mailsite="$MS/data/queue/sorter1"
fi

# ---------------------------------------------------------------- 2. Dovecot (LMTP into Maildir)
TARGETS+=(peer)
DC="$TMP/dovecot"
MAIL_UID=$(id -u mail)
mkdir -p "$DC/mail" "$DC/home" "$DC/run" "$DC/state"
for u in "${USER_LIST[@]}"; do echo "$u::::::"; done >"$DC/passwd"
chmod 644 "$DC/passwd"
chown -R mail:mail "$DC/mail" "$DC/home"
cat >"$DC/dovecot.conf" <<EOF
# Generated by bench/smtp.sh: LMTP on $DOVECOT_IP:$LMTP_PORT into Maildirs. Defaults everywhere
# else (mail_fsync = optimized: message files fsynced).
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailsite-bench-smtp
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
EOF
dovecot -c "$DC/dovecot.conf" -n >"$DC/doveconf.log" 2>&1 || die "Dovecot rejects its config: $(cat "$DC/doveconf.log")"
log "starting Dovecot $(dovecot --version | awk '{ print $1 }') on $DOVECOT_IP (LMTP $LMTP_PORT)"
dovecot -F -c "$DC/dovecot.conf" >"$DC/stdout.log" 2>&1 &
PID_OF[dovecot]=$!
PIDS+=("${PID_OF[dovecot]}")
wait_greeting Dovecot "${PID_OF[dovecot]}" "$DOVECOT_IP" "$LMTP_PORT"

# ---------------------------------------------------------------- 3. Postfix (SMTP, queue, LMTP client)
PF="$TMP/postfix"
mkdir -p "$PF/conf" "$PF/data" "$PF/spool"
chown postfix "$PF/data"
for u in "${USER_LIST[@]}"; do echo "$u@$DOMAIN ok"; done >"$PF/conf/vmailbox"
cat >"$PF/conf/main.cf" <<EOF
# Generated by bench/smtp.sh: smtpd on $POSTFIX_IP:$SMTP_PORT, $DOMAIN delivered over LMTP to
# Dovecot on $DOVECOT_IP:$LMTP_PORT. Defaults everywhere else (queue file fsync, in_flow_delay,
# LMTP connection cache, destination concurrency 20).
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/postfix.log
maillog_file_prefixes = $PF
myhostname = postfix.$DOMAIN
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_peername_lookup = no
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = texthash:$PF/conf/vmailbox
virtual_transport = lmtp:inet:$DOVECOT_IP:$LMTP_PORT
lmtp_host_lookup = native
EOF
# master.cf: the distribution's services (no chroot: the queue is not set up as one), smtpd on our address.
cat >"$PF/conf/master.cf" <<EOF
$POSTFIX_IP:$SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
postfix -c "$PF/conf" check >"$PF/check.log" 2>&1 || die "postfix check failed: $(cat "$PF/check.log")"
log "starting Postfix $(postconf -c "$PF/conf" -h mail_version) on $POSTFIX_IP:$SMTP_PORT"
postfix -c "$PF/conf" start >"$PF/start.log" 2>&1 || die "postfix start failed: $(cat "$PF/start.log") $(tail -5 "$PF/postfix.log" 2>/dev/null)"
PID_OF[postfix]=$(awk '{ print $1; exit }' "$PF/spool/pid/master.pid")
[ -n "${PID_OF[postfix]}" ] || die "no Postfix master PID in $PF/spool/pid/master.pid"
PIDS+=("${PID_OF[postfix]}")   # its master stops every Postfix process on SIGTERM
wait_greeting Postfix "${PID_OF[postfix]}" "$POSTFIX_IP" "$SMTP_PORT"
LABEL[peer]="Postfix $(postconf -c "$PF/conf" -h mail_version) + Dovecot $(dovecot --version | awk '{ print $1 }')"
MAILROOT[peer]="$DC/mail"
SMTP_IP[peer]=$POSTFIX_IP

# ---------------------------------------------------------------- helpers for a round
alive() {
    local p
    case $1 in mailsite) p=(mailsite) ;; peer) p=(postfix dovecot) ;; esac
    for n in "${p[@]}"; do kill -0 "${PID_OF[$n]}" 2>/dev/null || die "$n (PID ${PID_OF[$n]}) died; see its log in $TMP"; done
}
maildirs() {  # maildirs NAME: the users' INBOX new/ and cur/ folders that exist
    local u d
    for u in "${USER_LIST[@]}"; do for d in new cur; do [ -d "${MAILROOT[$1]}/$u/$d" ] && echo "${MAILROOT[$1]}/$u/$d"; done; done
    return 0
}
count_stored() {  # count_stored NAME: message files in the users' INBOXes
    local dirs
    mapfile -t dirs < <(maildirs "$1")
    [ ${#dirs[@]} = 0 ] && { echo 0; return; }
    find "${dirs[@]}" -maxdepth 1 -type f -printf . | wc -c
}
newest_stored() {  # newest_stored NAME: the modification time (epoch seconds) of the newest message file
    local dirs
    mapfile -t dirs < <(maildirs "$1")
    find "${dirs[@]}" -maxdepth 1 -type f -printf '%T@\n' | sort -n | tail -1
}
queued() {  # queued NAME: messages still in the server's queue
    case $1 in
        mailsite) find "$SPOOL_mailsite" -maxdepth 1 -name '*.json' -printf . 2>/dev/null | wc -c ;;
        peer) find "$PF/spool/incoming" "$PF/spool/active" "$PF/spool/deferred" "$PF/spool/hold" "$PF/spool/maildrop" -type f -printf . 2>/dev/null | wc -c ;;
    esac
}

PER_USER=$((MESSAGES / USERS))
SESSIONS=$((CONNECTIONS / USERS))
declare -A LOST RATES
# one_round NAME ROUND: the load against NAME; appends "rate seconds accept_seconds" to TMP/runs.NAME
one_round() {
    local name=$1 round=$2 before target start end accepted now n last_n last_change pids=() pid rc=0 u i lost
    alive "$name"
    before=$(count_stored "$name")
    target=$((before + MESSAGES))
    log "$name (round $round/$ROUNDS): $USERS x smtp-source -c -d -l $SIZE -m $PER_USER -s $SESSIONS to ${SMTP_IP[$name]}:$SMTP_PORT"
    start=$(date +%s.%N)
    i=0
    for u in "${USER_LIST[@]}"; do
        i=$((i + 1))
        smtp-source -c -d -l "$SIZE" -m "$PER_USER" -s "$SESSIONS" -M "client$i.sender.test" -f "$SENDER" \
            -t "$u@$DOMAIN" "${SMTP_IP[$name]}:$SMTP_PORT" >"$TMP/source.$name.$round.$u.log" 2>&1 &
        pids+=("$!")
        PIDS+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
    accepted=$(date +%s.%N)
    [ "$rc" = 0 ] || die "smtp-source against $name failed (exit $rc): $(tail -c 600 "$TMP"/source."$name"."$round".*.log)"
    # Wait for the last message to be stored: bounded by TIMEOUT overall and STALL without progress.
    last_n=-1
    last_change=$SECONDS
    while :; do
        n=$(count_stored "$name")
        [ "$n" -ge "$target" ] && break
        [ "$n" != "$last_n" ] && { last_n=$n; last_change=$SECONDS; }
        now=$(date +%s)
        if [ $((SECONDS - last_change)) -ge "$STALL" ] || [ "$(awk -v a="$now" -v b="$start" 'BEGIN { print (a - b > '"$TIMEOUT"') }')" = 1 ]; then
            log "$name: gave up waiting: $((n - before)) of $MESSAGES stored, $(queued "$name") still queued"
            break
        fi
        alive "$name"
        sleep 0.25
    done
    end=$(newest_stored "$name")
    sleep "$SETTLE"
    n=$(count_stored "$name")
    lost=$((target - n))
    [ "$lost" -lt 0 ] && die "$name: $((n - before)) messages stored for $MESSAGES sent: $((-lost)) stored twice"
    LOST[$name]=$(( ${LOST[$name]:-0} + lost ))
    awk -v m="$MESSAGES" -v s="$start" -v e="$end" -v a="$accepted" \
        'BEGIN { t = e - s; printf "%.1f %.3f %.3f\n", m / t, t, a - s }' >>"$TMP/runs.$name"
    RATES[$name]="${RATES[$name]:+${RATES[$name]}, }$(tail -1 "$TMP/runs.$name" | awk '{ print $1 }')"
    log "$name: $((n - before)) stored, $lost lost, $(queued "$name") left in the queue; $(tail -1 "$TMP/runs.$name" | awk '{ printf "%s messages/s (%s s to the last stored; smtp-source done after %s s)", $1, $2, $3 }')"
}

# ---------------------------------------------------------------- 4. rounds, servers alternating
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order=("${TARGETS[@]}"); else order=(); for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[i]}"); done; fi
    for name in "${order[@]}"; do one_round "$name" "$round"; done
done

# ---------------------------------------------------------------- 5. report
median() {  # median NAME: the median round's "rate seconds accept_seconds"
    median_line "$TMP/runs.$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = (b > 0 ? a / b : 0); printf (r >= 0.1 ? "%.2fx" : "%.3fx"), r }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "**met**" : "**missed**") }'; }
echo
echo "### SMTP in, delivered to Maildir ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with smtp-source; $MESSAGES messages of $SIZE body bytes over $CONNECTIONS connections to $USERS recipients, fsync on, median of $ROUNDS round(s))"
echo
read -r p_rate p_secs p_acc < <(median peer)
if [ "$PEERS_ONLY" = 0 ]; then
    read -r m_rate m_secs m_acc < <(median mailsite)
    r=$(awk -v a="$m_rate" -v b="$p_rate" 'BEGIN { print (b > 0 ? a / b : 0) }')
    echo "| measure | ${LABEL[peer]} | ${LABEL[mailsite]} | mailsite / peer | target |"
    echo "|---|---:|---:|---:|---|"
    echo "| messages/s, first byte to last message stored | $p_rate | $m_rate | $(ratio "$m_rate" "$p_rate") | >= 1.0x: $(verdict "$r" 1.0) |"
    echo "| seconds, first byte to last message stored | $p_secs | $m_secs | | |"
    echo "| seconds until smtp-source had every 250 | $p_acc | $m_acc | | |"
    echo "| messages lost (all rounds) | ${LOST[peer]} | ${LOST[mailsite]} | | 0: $([ "${LOST[peer]}${LOST[mailsite]}" = 00 ] && echo '**met**' || echo '**missed**') |"
    echo
    echo "- messages/s of each round: ${LABEL[peer]} ${RATES[peer]}; mailsite ${RATES[mailsite]}"
else
    echo "| measure | ${LABEL[peer]} |"
    echo "|---|---:|"
    echo "| messages/s, first byte to last message stored | $p_rate |"
    echo "| seconds, first byte to last message stored | $p_secs |"
    echo "| seconds until smtp-source had every 250 | $p_acc |"
    echo "| messages lost (all rounds) | ${LOST[peer]} |"
    echo
    echo "- messages/s of each round: ${RATES[peer]}"
fi
for name in "${TARGETS[@]}"; do [ "${LOST[$name]}" = 0 ] || die "$name lost ${LOST[$name]} messages"; done
