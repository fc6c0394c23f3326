#!/usr/bin/env bash
# bench/dkim.sh - what DKIM signing costs on submission (issue 18 part 8): messages/s that users
# submit, with DKIM signing on and off, for mailsite and for its peer Postfix + OpenDKIM, in the
# same run, rounds alternating. Target: mailsite signing >= 1.5x Postfix + OpenDKIM signing.
#
# Run (as root, from anywhere; needs only loopback). On 2 cores a run (5 rounds of 2000
# messages per variant) takes about 5 minutes once mailsite is built:
#   bash bench/dkim.sh                         # builds target/release/mailsite first
#   bash bench/dkim.sh /path/to/mailsite       # explicit mailsite binary (not built)
#   ROUNDS=3 MESSAGES=4000 bash bench/dkim.sh  # fewer rounds / more messages a round
#   PEER_KEYS=rsa bash bench/dkim.sh           # OpenDKIM signs with RSA-2048 alone
#   bash bench/dkim.sh --peers-only            # Postfix + OpenDKIM only
#
# The four variants, each its own server(s), all started before the first round:
#   ms-sign   mailsite (roles sorter + mailbox, own data dir): sorter1 on NET.1 (submission port
#             10587, AUTH PLAIN over plain text, which mailsite allows from loopback only),
#             mailbox1 on NET.11 (LMTP into Maildir). Its first start makes the domain's keys
#             (Ed25519 + RSA-2048), so every submitted message is signed twice before the 250,
#             relaxed/relaxed, by the sorter itself (mail-auth).
#   ms-off    the same on NET.2 / NET.12, but before its first start `mailsite dkim rotate
#             --sign-after 365d` publishes the domain's keys with signing a year away: the
#             sorter finds keys (so makes none) and no key signs yet, the supported state of a
#             domain between `dkim rotate` and its first signing. Such a domain's messages are
#             queued as they came (no read-back of the message, no signing thread), exactly
#             as before DKIM signing existed, so ms-sign / ms-off is the whole cost of
#             signing: reading the message back, the two signatures and the rewrite of the
#             spool file with the headers in.
#   pf-sign   Postfix (own config dir and queue: smtpd on NET.3:10587, relay/submission for
#             mynetworks = 127.0.0.0/8, queue files fsynced as always) with
#             smtpd_milters = OpenDKIM (Mode s, relaxed/relaxed, the same 18 headers signed
#             as mailsite's SIGNED_HEADERS) over local sockets, as Debian's package sets it up.
#             By default two OpenDKIM instances, both in smtpd_milters: one signs with an
#             Ed25519 key (openssl genpkey: opendkim-genkey makes RSA keys only) and one with
#             an RSA-2048 key (opendkim-genkey -b 2048), like mailsite. OpenDKIM 2.11 does
#             sign ed25519-sha256 (`opendkim -V`), but SignatureAlgorithm is global to an
#             instance. PEER_KEYS=rsa: one instance, RSA-2048 only.
#             milter_default_action = tempfail, so a milter failure shows as errors.
#   pf-off    a second Postfix, identical but without the milter, on NET.4:10587.
#   Both Postfix instances deliver over LMTP to one Dovecot (NET.6:10024, Maildir, fsync at its
#   defaults), as bench/smtp.sh does; mailsite delivers over LMTP to its own mailbox server.
#   Nothing is relayed off the machine: every recipient is a local user.
#
# The load: bench/dkim/submit.rs (std-only Rust, compiled here with rustc -O), CONNECTIONS
# connections at once; each says EHLO and (mailsite only; Postfix takes mynetworks without
# AUTH, as a site's own relay does) AUTH PLAIN as user benchNN (connection k: user k % USERS);
# once every connection is ready the clock starts, and each sends its share of MESSAGES
# messages on its connection (MAIL/RCPT/DATA pipelined, then the message, wait for 250): From,
# envelope sender and recipient the user's own address, the headers a mail client writes and
# SIZE body octets of text. Measured per round:
#   - submission msg/s: MESSAGES / (clock start .. the last 250), what signing delays;
#   - stored msg/s: MESSAGES / (clock start .. the last message stored in the recipients'
#     Maildirs, newest file mtime), the whole job as in bench/smtp.sh.
# Then (after SETTLE s) exactly MESSAGES more stored (none lost, none twice), queues empty.
#
# Before the rounds, each variant gets a gate (USERS messages; the newest stored message's
# DKIM-Signature headers are checked with dkimpy against the public keys, no DNS: signing
# variants must carry verifying Ed25519 + RSA signatures (peer: as PEER_KEYS), off variants none)
# and an unmeasured warm-up of WARMUP messages. Rounds then rotate the order of the four
# variants (round r starts with variant r). The report: medians per variant, ratios of the
# medians and, in brackets, the median of the per-round ratios (paired within a round, steadier
# on a noisy machine); the server logs' errors and warnings. Exits non-zero if a message was
# lost, a gate failed or a server died. All daemons are started by this script and stopped by
# PID on exit.
#
# Environment knobs:
#   MESSAGES=2000 CONNECTIONS=20 SIZE=4096 USERS=4   per round and variant; USERS recipients bench01..
#   ROUNDS=5 WARMUP=500                              measured rounds; unmeasured messages first
#   PEER_KEYS=both|rsa                               OpenDKIM's keys: Ed25519 + RSA-2048, or RSA-2048
#   TIMEOUT=300 STALL=60 SETTLE=2 POLL=0.25          delivery wait bounds (s)
#   NET=127.251.0                                    the /24 whose .1-.6, .11, .12 the servers use
#   INET_MILTER=1                                    OpenDKIM on TCP NET.5:8891/8892 instead of local
#                                                    sockets (each message then waits ~90 ms more)
#   KEEP_TMP=1                                       keep the temp dir (configs, data, logs)
#
# Caveat: the load generator shares this machine's 2 cores (and its disk) with the servers;
# compare figures from the same run only, and read the ratios.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=dkim
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

MESSAGES=${MESSAGES:-2000}
CONNECTIONS=${CONNECTIONS:-20}
SIZE=${SIZE:-4096}
USERS=${USERS:-4}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-500}
PEER_KEYS=${PEER_KEYS:-both}
TIMEOUT=${TIMEOUT:-300}
STALL=${STALL:-60}
SETTLE=${SETTLE:-2}
POLL=${POLL:-0.25}
NET=${NET:-127.251.0}
DOMAIN=bench.test
SUB_PORT=10587
LMTP_PORT=10024
MILTER_PORT=8891
NCPU=$(nproc)

declare -A IP=([ms-sign]=$NET.1 [ms-off]=$NET.2 [pf-sign]=$NET.3 [pf-off]=$NET.4)
MBOX_IP_SIGN=$NET.11
MBOX_IP_OFF=$NET.12
OPENDKIM_IP=$NET.5
DOVECOT_IP=$NET.6

[ "$(id -u)" = 0 ] || die "run as root (Postfix, Dovecot and OpenDKIM start as root and drop privileges)"
case $PEER_KEYS in both|rsa) ;; *) die "PEER_KEYS must be both or rsa" ;; esac
[ "$CONNECTIONS" -ge 1 ] && [ "$MESSAGES" -ge "$CONNECTIONS" ] || die "need MESSAGES >= CONNECTIONS >= 1"

# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v postfix >/dev/null 2>&1 || missing+=(postfix)
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
command -v opendkim >/dev/null 2>&1 || missing+=(opendkim)
command -v opendkim-genkey >/dev/null 2>&1 || missing+=(opendkim-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    # Postfix's package asks how to configure the system's mail: nothing (we never use /etc/postfix/main.cf).
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install "${missing[@]}"
fi
# dkimpy (and PyNaCl for Ed25519) to check the signatures at the gate.
PY=python3
if ! "$PY" -c 'import dkim, nacl' 2>/dev/null; then
    PY=/usr/bin/python3
    "$PY" -c 'import dkim, nacl' 2>/dev/null || { log "apt-get install python3-dkim python3-nacl"; apt_install python3 python3-dkim python3-nacl; }
fi
command -v rustc >/dev/null 2>&1 || die "rustc not found: the load generator bench/dkim/submit.rs is compiled with it"

mailsite_binary

# ---------------------------------------------------------------- temp dir, load generator
TMP=$(mktemp -d /tmp/mailsite-bench-dkim.XXXXXX)
chmod 755 "$TMP"   # Dovecot's mail processes ('mail') and OpenDKIM ('opendkim') traverse it
SUBMIT="$TMP/submit"
rustc --edition 2021 -O "$SCRIPT_DIR/dkim/submit.rs" -o "$SUBMIT" 2>"$TMP/rustc.log" \
    || die "compiling bench/dkim/submit.rs failed: $(tail -20 "$TMP/rustc.log")"
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mapfile -t USER_LIST < <(for ((i = 1; i <= USERS; i++)); do printf 'bench%02d\n' "$i"; done)
DATE=$(LC_ALL=C date -R)

# wait_greeting NAME PID IP PORT: poll until IP:PORT greets with "220".
wait_greeting() {
    local name=$1 pid=$2 ip=$3 port=$4 line
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        line=$(timeout 2 bash -c "exec 3<>/dev/tcp/$ip/$port && head -n 1 <&3" 2>/dev/null || true)
        [[ "$line" == 220* ]] && return 0
        sleep 0.1
    done
    die "$name did not greet on $ip:$port within 30 s"
}
in_use() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
for addr in "${IP[ms-sign]}:$SUB_PORT" "${IP[ms-off]}:$SUB_PORT" "${IP[pf-sign]}:$SUB_PORT" "${IP[pf-off]}:$SUB_PORT" \
    "$MBOX_IP_SIGN:$LMTP_PORT" "$MBOX_IP_OFF:$LMTP_PORT" "$OPENDKIM_IP:$MILTER_PORT" "$DOVECOT_IP:$LMTP_PORT"; do
    in_use "${addr%:*}" "${addr#*:}" && die "$addr is already in use (another benchmark running?)"
done

VARIANTS=()
declare -A LABEL MAILROOT QUEUE_KIND QUEUE_DIR AUTH SIGNS
echo '{}' >"$TMP/records.json"   # DKIM record name -> TXT, for the gate's dkimpy check

# add_records: merge the mailsite `dkim list --json` on stdin into TMP/records.json
add_records() {
    "$PY" -c '
import json, sys
path = sys.argv[1]
records = json.load(open(path))
for k in json.load(sys.stdin):
    records[k["record_name"].rstrip(".")] = k["record"]
json.dump(records, open(path, "w"), indent=1)
' "$TMP/records.json"
}

# ---------------------------------------------------------------- 1. mailsite, signing and not
# make_site NAME SORTER_IP MAILBOX_IP: a one-process site (sorter1 + mailbox1) in TMP/NAME
make_site() {
    local name=$1 sorter_ip=$2 mbox_ip=$3 dir="$TMP/$1" u
    mkdir -p "$dir/data"
    chmod 700 "$dir/data"
    cat >"$dir/site.toml" <<EOF
# Generated by bench/dkim.sh ($name): sorter1 on $sorter_ip and mailbox1 on $mbox_ip, nothing else.
[site]
domain = "$DOMAIN"
other_domains = []
name = "DKIM benchmark ($name)"
short_name = "bench"
data_dir = "$dir/data"

[node]
roles = ["sorter", "mailbox"]

[http]
listen = "$sorter_ip:8080"
addresses = ["$sorter_ip"]

[dns]
listen = "$sorter_ip:10053"
addresses = ["$sorter_ip"]

[ports]
imap = 10143
imaps = 10993
pop3 = 10110
pop3s = 10995
smtp = 10025
submission = $SUB_PORT
submissions = 10465
lmtp = $LMTP_PORT

[[mailbox]]
name = "mailbox1"
addresses = ["$mbox_ip"]

[[sorter]]
name = "sorter1"
addresses = ["$sorter_ip"]

[letters]
"a-z" = "mailbox1"
other = "mailbox1"
EOF
    "$MAILSITE_BIN" --config "$dir/site.toml" check-config >"$dir/check-config.log" 2>&1 \
        || die "mailsite check-config ($name): $(cat "$dir/check-config.log")"
    for u in "${USER_LIST[@]}"; do
        echo "$PASSWORD" | "$MAILSITE_BIN" --config "$dir/site.toml" user add "$u" >>"$dir/useradd.log" 2>&1 \
            || die "mailsite user add $u ($name) failed: $(tail -3 "$dir/useradd.log")"
    done
}
start_site() {  # start_site NAME SORTER_IP MAILBOX_IP
    local name=$1 dir="$TMP/$1"
    log "starting mailsite ($name): sorter1 on $2:$SUB_PORT, mailbox1 on $3 (LMTP $LMTP_PORT)"
    "$MAILSITE_BIN" --config "$dir/site.toml" serve >>"$dir/mailsite.log" 2>&1 &   # the binary itself: $! is its PID
    PID_OF[$name]=$!
    PIDS+=("${PID_OF[$name]}")
    wait_greeting "mailsite ($name)" "${PID_OF[$name]}" "$2" "$SUB_PORT"
    wait_greeting "mailsite ($name)" "${PID_OF[$name]}" "$3" "$LMTP_PORT"
    MAILROOT[$name]="$dir/data/mail"
    QUEUE_KIND[$name]=mailsite
    QUEUE_DIR[$name]="$dir/data/queue/sorter1"
    AUTH[$name]=1
}
dkim_states() {  # dkim_states NAME: "algorithm:state ..." of the site's keys
    "$MAILSITE_BIN" --config "$TMP/$1/site.toml" dkim list --json 2>>"$TMP/$1/dkim-list.log" \
        | "$PY" -c 'import json, sys; print(" ".join(sorted(k["algorithm"] + ":" + k["state"] for k in json.load(sys.stdin))))'
}

if [ "$PEERS_ONLY" = 0 ]; then
    MS_VERSION=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    make_site ms-sign "${IP[ms-sign]}" "$MBOX_IP_SIGN"
    start_site ms-sign "${IP[ms-sign]}" "$MBOX_IP_SIGN"
    states=$(dkim_states ms-sign)
    [ "$states" = "ed25519:signing rsa:signing" ] || die "ms-sign: expected an Ed25519 and an RSA key signing, got '$states'"
    "$MAILSITE_BIN" --config "$TMP/ms-sign/site.toml" dkim list --json | add_records
    LABEL[ms-sign]="mailsite${MS_VERSION:+ $MS_VERSION} signing (Ed25519 + RSA-2048)"
    SIGNS[ms-sign]="ed25519-sha256,rsa-sha256"

    make_site ms-off "${IP[ms-off]}" "$MBOX_IP_OFF"
    "$MAILSITE_BIN" --config "$TMP/ms-off/site.toml" dkim rotate --sign-after 365d >"$TMP/ms-off/rotate.log" 2>&1 \
        || die "mailsite dkim rotate (ms-off) failed: $(cat "$TMP/ms-off/rotate.log")"
    start_site ms-off "${IP[ms-off]}" "$MBOX_IP_OFF"
    states=$(dkim_states ms-off)
    [ "$states" = "ed25519:waiting rsa:waiting" ] || die "ms-off: expected an Ed25519 and an RSA key waiting, got '$states'"
    LABEL[ms-off]="mailsite${MS_VERSION:+ $MS_VERSION} not signing (keys waiting)"
    SIGNS[ms-off]=""
    VARIANTS+=(ms-sign ms-off)
fi

# ---------------------------------------------------------------- 2. OpenDKIM, one instance per algorithm
# OpenDKIM 2.11 signs ed25519-sha256 (`opendkim -V`), but its SignatureAlgorithm is global: an
# instance signs with one algorithm, and an Ed25519 key under rsa-sha256 fails
# ("EVP_PKEY_get1_RSA() failed"). Two signatures per message take two instances, both in
# Postfix's smtpd_milters (the usual recipe for dual signing with OpenDKIM).
OD="$TMP/opendkim"
mkdir -p "$OD/keys"
OD_VERSION=$(opendkim -V | awk 'NR == 1 { print $NF }')
opendkim-genkey -b 2048 -d "$DOMAIN" -s pf-rsa -D "$OD/keys" >"$OD/genkey.log" 2>&1 || die "opendkim-genkey failed: $(cat "$OD/genkey.log")"
rsa_p=$(openssl pkey -in "$OD/keys/pf-rsa.private" -pubout -outform DER 2>/dev/null | base64 -w0)
OD_INSTANCES=(rsa)
if [ "$PEER_KEYS" = both ]; then
    openssl genpkey -algorithm ed25519 -out "$OD/keys/pf-ed25519.pem" 2>"$OD/genpkey.log" || die "openssl genpkey ed25519 failed: $(cat "$OD/genpkey.log")"
    ed_p=$(openssl pkey -in "$OD/keys/pf-ed25519.pem" -pubout -outform DER 2>/dev/null | tail -c 32 | base64 -w0)
    OD_INSTANCES=(ed25519 rsa)
fi
"$PY" - "$TMP/records.json" "$DOMAIN" "$rsa_p" "${ed_p:-}" <<'PYEOF'
import json, sys
path, domain, rsa, ed = sys.argv[1:5]
records = json.load(open(path))
records[f"pf-rsa._domainkey.{domain}"] = f"v=DKIM1; k=rsa; p={rsa}"
if ed:
    records[f"pf-ed25519._domainkey.{domain}"] = f"v=DKIM1; k=ed25519; p={ed}"
json.dump(records, open(path, "w"), indent=1)
PYEOF
chown -R opendkim:opendkim "$OD/keys"
chmod 700 "$OD/keys"
chmod 600 "$OD"/keys/*
echo "127.*" >"$OD/InternalHosts"   # the load generator's connections come from 127.0.0.1
# Milter sockets: local (Unix domain) sockets, as Debian's opendkim package sets it up. Over TCP,
# each message waits about 90 ms on loopback (libmilter's small writes meet delayed ACKs), which
# would measure that, not signing: INET_MILTER=1 shows it.
mkdir -p "$OD/run"
chown opendkim:opendkim "$OD/run"
# od_socket ALG opendkim|postfix: the milter socket of instance ALG, as each side names it
od_socket() {
    local port=$MILTER_PORT
    [ "$1" = rsa ] && port=$((MILTER_PORT + 1))
    if [ "${INET_MILTER:-0}" = 1 ]; then
        [ "$2" = opendkim ] && echo "inet:$port@$OPENDKIM_IP" || echo "inet:$OPENDKIM_IP:$port"
    else
        [ "$2" = opendkim ] && echo "local:$OD/run/$1.sock" || echo "unix:$OD/run/$1.sock"
    fi
}
od_listening() {
    if [ "${INET_MILTER:-0}" = 1 ]; then
        in_use "$OPENDKIM_IP" "$([ "$1" = rsa ] && echo $((MILTER_PORT + 1)) || echo "$MILTER_PORT")"
    else
        [ -S "$OD/run/$1.sock" ]
    fi
}
for alg in "${OD_INSTANCES[@]}"; do
    key="$OD/keys/pf-$alg.$([ "$alg" = rsa ] && echo private || echo pem)"
    echo "pf-$alg $DOMAIN:pf-$alg:$key" >"$OD/KeyTable.$alg"
    echo "*@$DOMAIN pf-$alg" >"$OD/SigningTable.$alg"
    cat >"$OD/opendkim.$alg.conf" <<EOF
# Generated by bench/dkim.sh: sign only ($alg-sha256), relaxed/relaxed, mailsite's 18 signed
# headers, for clients in 127.0.0.0/8. RequireSafeKeys off: the key is under /tmp, which is
# world-writable (sticky), and OpenDKIM refuses keys below such a folder.
Syslog                  no
LogWhy                  no
Mode                    s
Socket                  $(od_socket "$alg" opendkim)
UMask                   000
PidFile                 $OD/opendkim.$alg.pid
UserID                  opendkim:opendkim
SignatureAlgorithm      $alg-sha256
Canonicalization        relaxed/relaxed
SignHeaders             From,Sender,Reply-To,Subject,Date,Message-ID,To,Cc,MIME-Version,Content-Type,Content-Transfer-Encoding,In-Reply-To,References,List-Id,List-Unsubscribe,List-Unsubscribe-Post,Auto-Submitted,Feedback-ID
KeyTable                file:$OD/KeyTable.$alg
SigningTable            refile:$OD/SigningTable.$alg
InternalHosts           refile:$OD/InternalHosts
SubDomains              no
RequireSafeKeys         false
EOF
    log "starting OpenDKIM $OD_VERSION ($alg-sha256) on $(od_socket "$alg" opendkim)"
    opendkim -f -x "$OD/opendkim.$alg.conf" >"$OD/opendkim.$alg.log" 2>&1 &
    PID_OF[opendkim-$alg]=$!
    PIDS+=("${PID_OF[opendkim-$alg]}")
    for _ in $(seq 1 100); do
        kill -0 "${PID_OF[opendkim-$alg]}" 2>/dev/null || die "OpenDKIM ($alg) exited: $(cat "$OD/opendkim.$alg.log")"
        od_listening "$alg" && break
        sleep 0.1
    done
    od_listening "$alg" || die "OpenDKIM ($alg) does not listen on $(od_socket "$alg" opendkim): $(cat "$OD/opendkim.$alg.log")"
    MILTERS+=("$(od_socket "$alg" postfix)")
done

# ---------------------------------------------------------------- 3. Dovecot (LMTP into Maildir)
DC="$TMP/dovecot"
MAIL_UID=$(id -u mail)
mkdir -p "$DC/mail" "$DC/home" "$DC/run" "$DC/state"
for u in "${USER_LIST[@]}"; do echo "$u::::::"; done >"$DC/passwd"
chmod 644 "$DC/passwd"
chown -R mail:mail "$DC/mail" "$DC/home"
cat >"$DC/dovecot.conf" <<EOF
# Generated by bench/dkim.sh: LMTP on $DOVECOT_IP:$LMTP_PORT into Maildirs. Defaults everywhere
# else (mail_fsync = optimized: message files fsynced).
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailsite-bench-dkim
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
DOVECOT_VERSION=$(dovecot --version | awk '{ print $1 }')
log "starting Dovecot $DOVECOT_VERSION on $DOVECOT_IP (LMTP $LMTP_PORT)"
dovecot -F -c "$DC/dovecot.conf" >"$DC/stdout.log" 2>&1 &
PID_OF[dovecot]=$!
PIDS+=("${PID_OF[dovecot]}")
wait_greeting Dovecot "${PID_OF[dovecot]}" "$DOVECOT_IP" "$LMTP_PORT"

# ---------------------------------------------------------------- 4. Postfix, with and without the milter
# start_postfix NAME IP MILTER(0/1)
start_postfix() {
    local name=$1 ip=$2 milter=$3 pf="$TMP/$1" u
    mkdir -p "$pf/conf" "$pf/data" "$pf/spool"
    chown postfix "$pf/data"
    for u in "${USER_LIST[@]}"; do echo "$u@$DOMAIN ok"; done >"$pf/conf/vmailbox"
    cat >"$pf/conf/main.cf" <<EOF
# Generated by bench/dkim.sh ($name): smtpd on $ip:$SUB_PORT taking mail from mynetworks (loopback),
# $DOMAIN delivered over LMTP to Dovecot on $DOVECOT_IP:$LMTP_PORT. Defaults everywhere else
# (queue file fsync, in_flow_delay, LMTP connection cache, destination concurrency 20).
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $pf/postfix.log
maillog_file_prefixes = $pf
myhostname = $name.$DOMAIN
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
virtual_mailbox_maps = texthash:$pf/conf/vmailbox
virtual_transport = lmtp:inet:$DOVECOT_IP:$LMTP_PORT
lmtp_host_lookup = native
EOF
    if [ "$milter" = 1 ]; then
        cat >>"$pf/conf/main.cf" <<EOF
# DKIM signing by OpenDKIM before the 250; a milter failure is a 4xx, never unsigned mail.
smtpd_milters = ${MILTERS[*]}
non_smtpd_milters = \$smtpd_milters
milter_default_action = tempfail
EOF
    fi
    cat >"$pf/conf/master.cf" <<EOF
$ip:$SUB_PORT inet n - n - - smtpd
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
    postfix -c "$pf/conf" check >"$pf/check.log" 2>&1 || die "postfix check ($name) failed: $(cat "$pf/check.log")"
    log "starting Postfix $(postconf -c "$pf/conf" -h mail_version) ($name) on $ip:$SUB_PORT$([ "$milter" = 1 ] && echo ", milter OpenDKIM")"
    postfix -c "$pf/conf" start >"$pf/start.log" 2>&1 || die "postfix start ($name) failed: $(cat "$pf/start.log") $(tail -5 "$pf/postfix.log" 2>/dev/null)"
    PID_OF[$name]=$(awk '{ print $1; exit }' "$pf/spool/pid/master.pid")
    [ -n "${PID_OF[$name]}" ] || die "no Postfix master PID in $pf/spool/pid/master.pid"
    PIDS+=("${PID_OF[$name]}")   # its master stops every Postfix process on SIGTERM
    wait_greeting "Postfix ($name)" "${PID_OF[$name]}" "$ip" "$SUB_PORT"
    MAILROOT[$name]="$DC/mail"
    QUEUE_KIND[$name]=postfix
    QUEUE_DIR[$name]="$pf/spool"
    AUTH[$name]=0
}
start_postfix pf-sign "${IP[pf-sign]}" 1
start_postfix pf-off "${IP[pf-off]}" 0
PF_VERSION=$(postconf -c "$TMP/pf-sign/conf" -h mail_version)
if [ "$PEER_KEYS" = both ]; then
    LABEL[pf-sign]="Postfix $PF_VERSION + OpenDKIM $OD_VERSION signing (Ed25519 + RSA-2048)"
    SIGNS[pf-sign]="ed25519-sha256,rsa-sha256"
else
    LABEL[pf-sign]="Postfix $PF_VERSION + OpenDKIM $OD_VERSION signing (RSA-2048)"
    SIGNS[pf-sign]="rsa-sha256"
fi
LABEL[pf-off]="Postfix $PF_VERSION, no milter"
SIGNS[pf-off]=""
VARIANTS+=(pf-sign pf-off)

# ---------------------------------------------------------------- helpers for a round
alive() {
    local n
    case $1 in ms-*) set -- "$1" ;; pf-*) set -- "$1" dovecot "${OD_INSTANCES[@]/#/opendkim-}" ;; esac
    for n in "$@"; do kill -0 "${PID_OF[$n]}" 2>/dev/null || die "$n (PID ${PID_OF[$n]}) died; see its log in $TMP"; done
}
maildirs() {  # maildirs NAME: the users' INBOX new/ and cur/ folders that exist
    local u d
    for u in "${USER_LIST[@]}"; do for d in new cur; do [ -d "${MAILROOT[$1]}/$u/$d" ] && echo "${MAILROOT[$1]}/$u/$d"; done; done
    return 0
}
count_stored() {
    local dirs
    mapfile -t dirs < <(maildirs "$1")
    [ ${#dirs[@]} = 0 ] && { echo 0; return; }
    find "${dirs[@]}" -maxdepth 1 -type f -printf . | wc -c
}
newest_file() {  # newest_file NAME: "mtime path" of the newest message file
    local dirs
    mapfile -t dirs < <(maildirs "$1")
    find "${dirs[@]}" -maxdepth 1 -type f -printf '%T@ %p\n' | sort -n | tail -1
}
queued() {
    case ${QUEUE_KIND[$1]} in
        mailsite) find "${QUEUE_DIR[$1]}" -maxdepth 1 -name '*.json' -printf . 2>/dev/null | wc -c ;;
        postfix) find "${QUEUE_DIR[$1]}"/{incoming,active,deferred,hold,maildrop} -type f -printf . 2>/dev/null | wc -c ;;
    esac
}

# send NAME COUNT OUT [CONNECTIONS]: the load generator against NAME; its summary line in OUT
send() {
    local name=$1 count=$2 out=$3 conns=${4:-$CONNECTIONS} auth=()
    [ "${AUTH[$name]}" = 1 ] && auth=(--password "$PASSWORD")
    run_client "$out" "$SUBMIT" "${IP[$name]}:$SUB_PORT" --messages "$count" --connections "$conns" --size "$SIZE" \
        --users "$USERS" --user-prefix bench --domain "$DOMAIN" --date "$DATE" "${auth[@]}" \
        || die "the load generator against $name failed: $(tail -c 800 "$out")"
}
field() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }   # field FILE KEY: KEY=value of the summary line

# wait_stored NAME TARGET: until TARGET messages are stored (bounded by TIMEOUT and STALL)
wait_stored() {
    local name=$1 target=$2 n last_n=-1 last_change=$SECONDS started=$SECONDS
    while :; do
        n=$(count_stored "$name")
        [ "$n" -ge "$target" ] && return 0
        [ "$n" != "$last_n" ] && { last_n=$n; last_change=$SECONDS; }
        if [ $((SECONDS - last_change)) -ge "$STALL" ] || [ $((SECONDS - started)) -ge "$TIMEOUT" ]; then
            log "$name: gave up waiting: $n of $target stored, $(queued "$name") still queued"
            return 1
        fi
        alive "$name"
        sleep "$POLL"
    done
}

declare -A LOST
# one_round NAME ROUND: appends "stored_rate accept_rate stored_s accept_s" to TMP/runs.NAME
one_round() {
    local name=$1 round=$2 before target out="$TMP/submit.$1.$2.txt" start accepted end n lost
    alive "$name"
    before=$(count_stored "$name")
    target=$((before + MESSAGES))
    log "$name (round $round/$ROUNDS): $MESSAGES messages over $CONNECTIONS connections to ${IP[$name]}:$SUB_PORT"
    send "$name" "$MESSAGES" "$out"
    start=$(field "$out" start)
    accepted=$(field "$out" accepted)
    wait_stored "$name" "$target" || true
    end=$(newest_file "$name" | awk '{ print $1 }')
    sleep "$SETTLE"
    n=$(count_stored "$name")
    lost=$((target - n))
    [ "$lost" -lt 0 ] && die "$name: $((n - before)) messages stored for $MESSAGES sent: $((-lost)) stored twice"
    LOST[$name]=$(( ${LOST[$name]:-0} + lost ))
    awk -v m="$MESSAGES" -v s="$start" -v e="$end" -v a="$accepted" \
        'BEGIN { printf "%.1f %.1f %.3f %.3f\n", m / (e - s), m / (a - s), e - s, a - s }' >>"$TMP/runs.$name"
    log "$name: $((n - before)) stored, $lost lost, $(queued "$name") queued; $(tail -1 "$TMP/runs.$name" | awk '{ printf "submission %s msg/s (last 250 after %s s), stored %s msg/s (last stored after %s s)", $2, $4, $1, $3 }')"
}

# gate NAME: USERS messages, then the newest stored one's signatures checked with dkimpy
gate() {
    local name=$1 before out="$TMP/gate.$1.txt" file result
    alive "$name"
    before=$(count_stored "$name")
    send "$name" "$USERS" "$TMP/gate-submit.$name.txt" "$USERS"
    wait_stored "$name" $((before + USERS)) || die "$name: the gate's $USERS messages were not all stored"
    file=$(newest_file "$name" | cut -d' ' -f2-)
    cp "$file" "$TMP/gate.$name.eml"
    "$PY" "$SCRIPT_DIR/dkim/verify.py" "$file" "$TMP/records.json" >"$out" 2>&1 || die "$name: a DKIM signature does not verify: $(cat "$out")"
    result=$(tail -1 "$out")
    local want_n want_algs
    if [ -n "${SIGNS[$name]}" ]; then
        want_n=$(tr ',' '\n' <<<"${SIGNS[$name]}" | wc -l)
        want_algs=${SIGNS[$name]}
    else
        want_n=0
        want_algs=-
    fi
    local algs
    algs=$(sed -n 's/.*algorithms=//p' <<<"$result" | tr ',' '\n' | sort | paste -sd, -)
    [[ "$result" == "signatures=$want_n verified=$want_n "* ]] && [ "$algs" = "$want_algs" ] \
        || die "$name: expected $want_n verifying signature(s) ($want_algs), got: $(cat "$out")"
    GATE[$name]="$want_n ($([ "$want_n" = 0 ] && echo none || echo "$algs"), verified)"
    log "$name OK: $result"
}

# ---------------------------------------------------------------- 5. gates, warm-up, rounds
declare -A GATE LOG_MARK
server_log() { case $1 in ms-*) echo "$TMP/$1/mailsite.log" ;; pf-*) echo "$TMP/$1/postfix.log" ;; esac; }
for name in "${VARIANTS[@]}"; do LOG_MARK[$name]=$(wc -l <"$(server_log "$name")"); done   # start-up notices aside
for name in "${VARIANTS[@]}"; do gate "$name"; done
if [ "$WARMUP" -gt 0 ]; then
    for name in "${VARIANTS[@]}"; do
        log "$name: warm-up, $WARMUP messages (not measured)"
        before=$(count_stored "$name")
        send "$name" "$WARMUP" "$TMP/warmup.$name.txt" "$([ "$WARMUP" -ge "$CONNECTIONS" ] && echo "$CONNECTIONS" || echo 1)"
        wait_stored "$name" $((before + WARMUP)) || die "$name: the warm-up was not all stored"
    done
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
N=${#VARIANTS[@]}
for round in $(seq 1 "$ROUNDS"); do
    for ((i = 0; i < N; i++)); do
        one_round "${VARIANTS[$(( (round - 1 + i) % N ))]}" "$round"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 6. report
median_col() {  # median_col FILE COLUMN
    awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}
col() { awk -v c="$2" '{ printf "%s%s", sep, $c; sep = ", " }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
# paired A B COLUMN: the median over rounds of A's round value / B's round value
paired() {
    paste -d' ' <(awk -v c="$3" '{ print $c }' "$TMP/runs.$1") <(awk -v c="$3" '{ print $c }' "$TMP/runs.$2") \
        | awk '{ print ($2 > 0 ? $1 / $2 : 0) }' | sort -g | awk '{ l[NR] = $0 } END { printf "%.2fx", l[int((NR + 1) / 2)] }'
}
verdict() { awk -v r="${1%x}" -v t="$2" 'BEGIN { print (r >= t ? "**met**" : "**missed**") }'; }
error_lines() {  # error_lines NAME: error/warning lines in the variant's server log since the gates
    tail -n +"$((${LOG_MARK[$1]} + 1))" "$(server_log "$1")" | case $1 in
        ms-*) grep -E '\b(ERROR|WARN)\b|panicked' || true ;;
        pf-*) grep -i -E 'warning|error|fatal|panic|reject|milter' || true ;;
    esac
}
log_errors() { error_lines "$1" | grep -c . || true; }
declare -A SUB STO
for name in "${VARIANTS[@]}"; do
    STO[$name]=$(median_col "$TMP/runs.$name" 1)
    SUB[$name]=$(median_col "$TMP/runs.$name" 2)
done

echo
echo "### DKIM signing on submission ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with the load generator, load $LOAD_BEFORE before / $LOAD_AFTER after; $MESSAGES messages of $SIZE body bytes per round over $CONNECTIONS connections, $USERS users, fsync on, median of $ROUNDS rounds)"
echo
header="| measure |"; sep="|---|"
for name in "${VARIANTS[@]}"; do header+=" ${LABEL[$name]} |"; sep+="---:|"; done
echo "$header"
echo "$sep"
row() { local line="| $1 |" name; shift; for name in "${VARIANTS[@]}"; do line+=" $("$@" "$name") |"; done; echo "$line"; }
v_sub() { echo "${SUB[$1]}"; }
v_sto() { echo "${STO[$1]}"; }
v_secs() { echo "$(median_col "$TMP/runs.$1" 4) / $(median_col "$TMP/runs.$1" 3)"; }
v_gate() { echo "${GATE[$1]}"; }
v_lost() { echo "${LOST[$1]:-0}"; }
v_err() { log_errors "$1"; }
row "submission messages/s (ready connections to the last 250)" v_sub
row "stored messages/s (ready connections to the last message stored)" v_sto
row "seconds to the last 250 / to the last stored (medians)" v_secs
row "DKIM signatures on the gate message (dkimpy)" v_gate
row "messages lost (all rounds)" v_lost
row "server log error/warning lines (gates and rounds)" v_err
echo
echo "| ratio | submission (last 250) | stored (last in Maildir) | target |"
echo "|---|---:|---:|---|"
if [ "$PEERS_ONLY" = 0 ]; then
    r=$(ratio "${SUB[ms-sign]}" "${SUB[pf-sign]}")
    r2=$(ratio "${STO[ms-sign]}" "${STO[pf-sign]}")
    echo "| mailsite signing / Postfix + OpenDKIM signing | $r ($(paired ms-sign pf-sign 2)) | $r2 ($(paired ms-sign pf-sign 1)) | >= 1.5x: $(verdict "$r" 1.5) (submission), $(verdict "$r2" 1.5) (stored) |"
    echo "| mailsite signing / mailsite not signing | $(ratio "${SUB[ms-sign]}" "${SUB[ms-off]}") ($(paired ms-sign ms-off 2)) | $(ratio "${STO[ms-sign]}" "${STO[ms-off]}") ($(paired ms-sign ms-off 1)) | |"
fi
echo "| Postfix + OpenDKIM signing / Postfix, no milter | $(ratio "${SUB[pf-sign]}" "${SUB[pf-off]}") ($(paired pf-sign pf-off 2)) | $(ratio "${STO[pf-sign]}" "${STO[pf-off]}") ($(paired pf-sign pf-off 1)) | |"
if [ "$PEERS_ONLY" = 0 ]; then
    echo "| (reference) mailsite not signing / Postfix, no milter | $(ratio "${SUB[ms-off]}" "${SUB[pf-off]}") ($(paired ms-off pf-off 2)) | $(ratio "${STO[ms-off]}" "${STO[pf-off]}") ($(paired ms-off pf-off 1)) | |"
fi
echo
echo "Ratios of the medians; in brackets the median of the per-round ratios."
echo
for name in "${VARIANTS[@]}"; do
    echo "- ${LABEL[$name]}: submission msg/s by round $(col "$TMP/runs.$name" 2); stored $(col "$TMP/runs.$name" 1); signatures on the gate message: ${GATE[$name]}; lost ${LOST[$name]:-0}; server log error/warning lines $(log_errors "$name")"
done
for name in "${VARIANTS[@]}"; do
    [ "$(log_errors "$name")" = 0 ] || { echo "- $name server log, first error/warning lines:"; error_lines "$name" | head -3 | cut -c1-300 | sed 's/^/    /'; }
done
echo "- OpenDKIM: $(cat "$OD"/opendkim.*.log | grep -c . || true) log lines; Dovecot: $(cat "$DC/dovecot.log" 2>/dev/null | grep -c -i -E 'error|fatal|panic' || true) error lines"
echo "- mailsite not signing = its domain's keys published with signing a year away (\`mailsite dkim rotate --sign-after 365d\` before the first start): a domain with no key signing yet is queued as it came (no read-back, no signing thread), so signing / not signing is the whole cost of signing."
if [ "$PEER_KEYS" = both ]; then
    echo "- OpenDKIM $OD_VERSION signs Ed25519 (ed25519-sha256 is in \`opendkim -V\`; key from openssl genpkey, as opendkim-genkey makes RSA keys only) and RSA-2048 (opendkim-genkey -b 2048), like mailsite; its SignatureAlgorithm is global, so that is two OpenDKIM instances, both in smtpd_milters. PEER_KEYS=rsa: one instance, RSA alone."
else
    echo "- OpenDKIM $OD_VERSION signs RSA-2048 only (PEER_KEYS=rsa); mailsite signs Ed25519 + RSA-2048."
fi
echo "- Postfix takes the messages from mynetworks without AUTH; mailsite needs AUTH PLAIN (done once per connection, before the clock starts)."
total_lost=0
for name in "${VARIANTS[@]}"; do total_lost=$((total_lost + ${LOST[$name]:-0})); done
[ "$total_lost" = 0 ] || die "$total_lost messages lost"
