#!/usr/bin/env bash
# bench/verify.sh - what checking inbound mail costs on the MX port (issue 18 part 8, second
# half): messages/s that another domain's server delivers to us, with verification on and off,
# for mailsite and for its peer Postfix + OpenDKIM, in the same run, rounds rotating.
#
# Run (as root, from anywhere; needs only loopback):
#   bash bench/verify.sh                          # builds target/release/mailsite first
#   bash bench/verify.sh /path/to/mailsite        # explicit mailsite binary (not built)
#   ROUNDS=3 MESSAGES=2000 bash bench/verify.sh   # fewer rounds / more messages a round
#   bash bench/verify.sh --peers-only             # Postfix + OpenDKIM only
#
# The sending domain sender.example has its own authoritative DNS server (bench/verify/dns_server.py,
# dnspython, UDP + TCP on NET.53:53; port 53 because OpenDKIM's Nameservers takes addresses
# only): TXT sender.example `v=spf1 ip4:NET.99 -all`, _dmarc.sender.example `v=DMARC1; p=none`,
# sel1._domainkey.sender.example the RSA-2048 public key; NXDOMAIN for anything else. Before
# the rounds, bench/verify/sign.py (dkimpy) signs ONE message per recipient user (rsa-sha256,
# relaxed/relaxed, d=sender.example, 8 headers, SIZE body octets) and the load sends those
# exact bytes, every time (so Message-ID repeats; nothing here deduplicates).
#
# The four variants, each its own server(s), all started before the first round:
#   ms-verify  mailsite (roles sorter + mailbox, own data dir): sorter1 on NET.1, MX port 10025,
#              mailbox1 on NET.11 (LMTP into Maildir); [mail_auth] verify = true and
#              [relay] resolver = "NET.53:53": SPF, DKIM, ARC and DMARC with mail-auth through
#              hickory (its cache on), an Authentication-Results header, before the 250.
#   ms-off     the same on NET.2 / NET.12 with [mail_auth] verify = false.
#   pf-verify  Postfix (smtpd on NET.3:10025, mynetworks = 127.0.0.1/32 so the load is not
#              "ours") with smtpd_milters = OpenDKIM in Mode v over a local socket (as Debian
#              sets it up), Nameservers NET.53 (this build resolves with libunbound, which
#              caches), QueryCache yes; milter_default_action = tempfail. OpenDKIM checks DKIM
#              only: no SPF, no DMARC (the peer does less work than mailsite's verify).
#   pf-off     a second Postfix, identical but without the milter, on NET.4:10025.
#   Both Postfix instances deliver over LMTP to one Dovecot (NET.6:10024, Maildir), as in
#   bench/dkim.sh; mailsite delivers over LMTP to its own mailbox server.
#
# The load: bench/verify/send.rs (std-only Rust, compiled here with rustc -O), CONNECTIONS
# connections at once, each bound to NET.99 (the address the SPF record allows), EHLO
# mta.sender.example, no AUTH; once every connection is ready the clock starts, and each sends
# its share of MESSAGES messages (MAIL FROM:<someone@sender.example>, RCPT TO its user benchNN,
# DATA pipelined, then the pre-signed message, wait for 250). Measured per round:
#   - MX msg/s: MESSAGES / (clock start .. the last 250), what verification delays;
#   - stored msg/s: MESSAGES / (clock start .. the last message stored, newest file mtime).
# Then (after SETTLE s) exactly MESSAGES more stored (none lost, none twice).
#
# Before the rounds each variant gets a gate (USERS messages; the newest stored message's
# Authentication-Results must say: ms-verify dkim=pass, spf=pass and dmarc=pass under
# authserv-id bench.test; pf-verify dkim=pass from OpenDKIM; the off variants none that says
# dkim=) and an unmeasured warm-up of WARMUP messages. Rounds rotate the order of the four
# variants. The report: medians per variant, ratios of the medians and, in brackets, the
# median of the per-round ratios; the server logs' errors and warnings; the DNS server's query
# count. Exits non-zero if a message was lost, a gate failed or a server died. All daemons are
# started by this script and stopped by PID on exit.
#
# Environment knobs:
#   MESSAGES=2000 CONNECTIONS=20 SIZE=4096 USERS=4   per round and variant
#   ROUNDS=5 WARMUP=500                              measured rounds; unmeasured messages first
#   TIMEOUT=300 STALL=60 SETTLE=2 POLL=0.25          delivery wait bounds (s)
#   NET=127.252.0                                    the /24 whose .1-.6, .11, .12, .53, .99 are used
#   KEEP_TMP=1                                       keep the temp dir (configs, data, logs)
#
# Caveat: the load generator and the DNS server share this machine's cores (and its disk) with
# the servers; compare figures from the same run only, and read the ratios.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN=
BENCH=verify
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

MESSAGES=${MESSAGES:-2000}
CONNECTIONS=${CONNECTIONS:-20}
SIZE=${SIZE:-4096}
USERS=${USERS:-4}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-500}
TIMEOUT=${TIMEOUT:-300}
STALL=${STALL:-60}
SETTLE=${SETTLE:-2}
POLL=${POLL:-0.25}
NET=${NET:-127.252.0}
DOMAIN=bench.test
SENDER_DOMAIN=sender.example
SENDER=someone@$SENDER_DOMAIN
SELECTOR=sel1
MX_PORT=10025
LMTP_PORT=10024
NCPU=$(nproc)

declare -A IP=([ms-verify]=$NET.1 [ms-off]=$NET.2 [pf-verify]=$NET.3 [pf-off]=$NET.4)
MBOX_IP_VERIFY=$NET.11
MBOX_IP_OFF=$NET.12
DOVECOT_IP=$NET.6
DNS_IP=$NET.53
SOURCE_IP=$NET.99

[ "$(id -u)" = 0 ] || die "run as root (Postfix, Dovecot and OpenDKIM start as root and drop privileges)"
[ "$CONNECTIONS" -ge 1 ] && [ "$MESSAGES" -ge "$CONNECTIONS" ] || die "need MESSAGES >= CONNECTIONS >= 1"
[ "$CONNECTIONS" -le 50 ] || die "CONNECTIONS must be <= 50 (mailsite takes at most 50 SMTP connections from one source)"

# ---------------------------------------------------------------- install what is missing, build
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v postfix >/dev/null 2>&1 || missing+=(postfix)
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
command -v opendkim >/dev/null 2>&1 || missing+=(opendkim)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install "${missing[@]}"
fi
# dkimpy signs the messages, dnspython serves the sending domain, cryptography reads the key.
PY=python3
if ! "$PY" -c 'import dkim, dns.message, cryptography' 2>/dev/null; then
    PY=/usr/bin/python3
    "$PY" -c 'import dkim, dns.message, cryptography' 2>/dev/null \
        || { log "apt-get install python3-dkim python3-dnspython python3-cryptography"; apt_install python3 python3-dkim python3-dnspython python3-cryptography; }
fi
command -v rustc >/dev/null 2>&1 || die "rustc not found: the load generator bench/verify/send.rs is compiled with it"

mailsite_binary

# ---------------------------------------------------------------- temp dir, load generator, messages
TMP=$(mktemp -d /tmp/mailsite-bench-verify.XXXXXX)
chmod 755 "$TMP"   # Dovecot's mail processes ('mail') and OpenDKIM ('opendkim') traverse it
SEND="$TMP/send"
rustc --edition 2021 -O "$SCRIPT_DIR/verify/send.rs" -o "$SEND" 2>"$TMP/rustc.log" \
    || die "compiling bench/verify/send.rs failed: $(tail -20 "$TMP/rustc.log")"
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mapfile -t USER_LIST < <(for ((i = 1; i <= USERS; i++)); do printf 'bench%02d\n' "$i"; done)
DATE=$(LC_ALL=C date -R)

wait_greeting() {  # wait_greeting NAME PID IP PORT: poll until IP:PORT greets with "220"
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
for addr in "${IP[ms-verify]}:$MX_PORT" "${IP[ms-off]}:$MX_PORT" "${IP[pf-verify]}:$MX_PORT" "${IP[pf-off]}:$MX_PORT" \
    "$MBOX_IP_VERIFY:$LMTP_PORT" "$MBOX_IP_OFF:$LMTP_PORT" "$DOVECOT_IP:$LMTP_PORT" "$DNS_IP:53"; do
    in_use "${addr%:*}" "${addr#*:}" && die "$addr is already in use (another benchmark running?)"
done

# The sending domain's key, its pre-signed messages and its DNS server.
MSGS="$TMP/messages"
mkdir -p "$MSGS"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$TMP/sender-key.pem" 2>"$TMP/genpkey.log" \
    || die "openssl genpkey failed: $(cat "$TMP/genpkey.log")"
SENDER_PUB=$(openssl pkey -in "$TMP/sender-key.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
"$PY" "$SCRIPT_DIR/verify/sign.py" "$TMP/sender-key.pem" "$SELECTOR" "$SENDER_DOMAIN" "$SENDER" "$DOMAIN" \
    "$USERS" "$SIZE" "$DATE" "$MSGS" >"$TMP/sign.log" 2>&1 || die "signing the messages failed: $(cat "$TMP/sign.log")"
log "$(cat "$TMP/sign.log") with dkimpy (rsa-sha256, $SELECTOR._domainkey.$SENDER_DOMAIN)"
log "starting the DNS server of $SENDER_DOMAIN on $DNS_IP:53 (SPF ip4:$SOURCE_IP, DMARC p=none, DKIM key)"
"$PY" "$SCRIPT_DIR/verify/dns_server.py" "$DNS_IP" 53 "$SENDER_DOMAIN" "$SELECTOR" "$SENDER_PUB" "$SOURCE_IP" >"$TMP/dns.log" 2>&1 &
PID_OF[dns]=$!
PIDS+=("${PID_OF[dns]}")
for _ in $(seq 1 100); do
    kill -0 "${PID_OF[dns]}" 2>/dev/null || die "the DNS server exited: $(cat "$TMP/dns.log")"
    grep -q listening "$TMP/dns.log" && break
    sleep 0.1
done
"$PY" - "$DNS_IP" "$SENDER_DOMAIN" "$SELECTOR" >"$TMP/dns-check.log" 2>&1 <<'PYEOF' || die "the DNS server does not answer: $(cat "$TMP/dns-check.log")"
import sys, dns.message, dns.query
ip, domain, sel = sys.argv[1:4]
for name in (domain, f"_dmarc.{domain}", f"{sel}._domainkey.{domain}"):
    q = dns.message.make_query(name, "TXT")
    r, _ = dns.query.udp_with_fallback(q, ip, port=53, timeout=3)
    assert r.answer, name
    print(name, "ok")
PYEOF

VARIANTS=()
declare -A LABEL MAILROOT QUEUE_KIND QUEUE_DIR

# ---------------------------------------------------------------- 1. mailsite, verifying and not
make_site() {  # make_site NAME SORTER_IP MAILBOX_IP VERIFY: a one-process site (sorter1 + mailbox1) in TMP/NAME
    local name=$1 sorter_ip=$2 mbox_ip=$3 verify=$4 dir="$TMP/$1" u
    mkdir -p "$dir/data"
    chmod 700 "$dir/data"
    cat >"$dir/site.toml" <<EOT
# Generated by bench/verify.sh ($name): sorter1 on $sorter_ip and mailbox1 on $mbox_ip, nothing else.
[site]
domain = "$DOMAIN"
other_domains = []
name = "Verification benchmark ($name)"
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
smtp = $MX_PORT
submission = 10587
submissions = 10465
lmtp = $LMTP_PORT

[relay]
resolver = "$DNS_IP:53"

[mail_auth]
verify = $verify

[[mailbox]]
name = "mailbox1"
addresses = ["$mbox_ip"]

[[sorter]]
name = "sorter1"
addresses = ["$sorter_ip"]

[letters]
"a-z" = "mailbox1"
other = "mailbox1"
EOT
    "$MAILSITE_BIN" --config "$dir/site.toml" check-config >"$dir/check-config.log" 2>&1 \
        || die "mailsite check-config ($name): $(cat "$dir/check-config.log")"
    for u in "${USER_LIST[@]}"; do
        echo "$PASSWORD" | "$MAILSITE_BIN" --config "$dir/site.toml" user add "$u" >>"$dir/useradd.log" 2>&1 \
            || die "mailsite user add $u ($name) failed: $(tail -3 "$dir/useradd.log")"
    done
}
start_site() {  # start_site NAME SORTER_IP MAILBOX_IP
    local name=$1 dir="$TMP/$1"
    log "starting mailsite ($name): sorter1 on $2:$MX_PORT, mailbox1 on $3 (LMTP $LMTP_PORT)"
    "$MAILSITE_BIN" --config "$dir/site.toml" serve >>"$dir/mailsite.log" 2>&1 &
    PID_OF[$name]=$!
    PIDS+=("${PID_OF[$name]}")
    wait_greeting "mailsite ($name)" "${PID_OF[$name]}" "$2" "$MX_PORT"
    wait_greeting "mailsite ($name)" "${PID_OF[$name]}" "$3" "$LMTP_PORT"
    MAILROOT[$name]="$dir/data/mail"
    QUEUE_KIND[$name]=mailsite
    QUEUE_DIR[$name]="$dir/data/queue/sorter1"
}

if [ "$PEERS_ONLY" = 0 ]; then
    MS_VERSION=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true)
    make_site ms-verify "${IP[ms-verify]}" "$MBOX_IP_VERIFY" true
    start_site ms-verify "${IP[ms-verify]}" "$MBOX_IP_VERIFY"
    LABEL[ms-verify]="mailsite${MS_VERSION:+ $MS_VERSION} verify on (SPF, DKIM, ARC, DMARC)"
    make_site ms-off "${IP[ms-off]}" "$MBOX_IP_OFF" false
    start_site ms-off "${IP[ms-off]}" "$MBOX_IP_OFF"
    LABEL[ms-off]="mailsite${MS_VERSION:+ $MS_VERSION} verify off"
    VARIANTS+=(ms-verify ms-off)
fi

# ---------------------------------------------------------------- 2. OpenDKIM, verifying
OD="$TMP/opendkim"
mkdir -p "$OD/run"
chown opendkim:opendkim "$OD/run"
OD_VERSION=$(opendkim -V | awk 'NR == 1 { print $NF }')
cat >"$OD/opendkim.conf" <<EOT
# Generated by bench/verify.sh: verify only, DNS at the sending domain's server.
Syslog                  no
LogWhy                  no
Mode                    v
Socket                  local:$OD/run/verify.sock
UMask                   000
PidFile                 $OD/opendkim.pid
UserID                  opendkim:opendkim
Nameservers             $DNS_IP
QueryCache              yes
AuthservID              pf-verify.$DOMAIN
AlwaysAddARHeader       yes
EOT
log "starting OpenDKIM $OD_VERSION (Mode v) on local:$OD/run/verify.sock"
opendkim -f -x "$OD/opendkim.conf" >"$OD/opendkim.log" 2>&1 &
PID_OF[opendkim]=$!
PIDS+=("${PID_OF[opendkim]}")
for _ in $(seq 1 100); do
    kill -0 "${PID_OF[opendkim]}" 2>/dev/null || die "OpenDKIM exited: $(cat "$OD/opendkim.log")"
    [ -S "$OD/run/verify.sock" ] && break
    sleep 0.1
done
[ -S "$OD/run/verify.sock" ] || die "OpenDKIM does not listen: $(cat "$OD/opendkim.log")"

# ---------------------------------------------------------------- 3. Dovecot (LMTP into Maildir)
DC="$TMP/dovecot"
MAIL_UID=$(id -u mail)
mkdir -p "$DC/mail" "$DC/home" "$DC/run" "$DC/state"
for u in "${USER_LIST[@]}"; do echo "$u::::::"; done >"$DC/passwd"
chmod 644 "$DC/passwd"
chown -R mail:mail "$DC/mail" "$DC/home"
cat >"$DC/dovecot.conf" <<EOF
# Generated by bench/verify.sh: LMTP on $DOVECOT_IP:$LMTP_PORT into Maildirs. Defaults everywhere
# else (mail_fsync = optimized: message files fsynced).
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailsite-bench-verify
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
start_postfix() {  # start_postfix NAME IP MILTER(0/1)
    local name=$1 ip=$2 milter=$3 pf="$TMP/$1" u
    mkdir -p "$pf/conf" "$pf/data" "$pf/spool"
    chown postfix "$pf/data"
    for u in "${USER_LIST[@]}"; do echo "$u@$DOMAIN ok"; done >"$pf/conf/vmailbox"
    cat >"$pf/conf/main.cf" <<EOT
# Generated by bench/verify.sh ($name): smtpd on $ip:$MX_PORT as an MX (mynetworks is 127.0.0.1
# alone, so the load from $SOURCE_IP is a stranger), $DOMAIN delivered over LMTP to Dovecot on
# $DOVECOT_IP:$LMTP_PORT. Defaults everywhere else.
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
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
biff = no
smtpd_peername_lookup = no
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = texthash:$pf/conf/vmailbox
virtual_transport = lmtp:inet:$DOVECOT_IP:$LMTP_PORT
lmtp_host_lookup = native
EOT
    if [ "$milter" = 1 ]; then
        cat >>"$pf/conf/main.cf" <<EOT
# DKIM verification by OpenDKIM before the 250; a milter failure is a 4xx.
smtpd_milters = unix:$OD/run/verify.sock
milter_default_action = tempfail
EOT
    fi
    cat >"$pf/conf/master.cf" <<EOT
$ip:$MX_PORT inet n - n - - smtpd
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
EOT
    postfix -c "$pf/conf" check >"$pf/check.log" 2>&1 || die "postfix check ($name) failed: $(cat "$pf/check.log")"
    log "starting Postfix $(postconf -c "$pf/conf" -h mail_version) ($name) on $ip:$MX_PORT$([ "$milter" = 1 ] && echo ", milter OpenDKIM (verify)")"
    postfix -c "$pf/conf" start >"$pf/start.log" 2>&1 || die "postfix start ($name) failed: $(cat "$pf/start.log") $(tail -5 "$pf/postfix.log" 2>/dev/null)"
    PID_OF[$name]=$(awk '{ print $1; exit }' "$pf/spool/pid/master.pid")
    [ -n "${PID_OF[$name]}" ] || die "no Postfix master PID in $pf/spool/pid/master.pid"
    PIDS+=("${PID_OF[$name]}")
    wait_greeting "Postfix ($name)" "${PID_OF[$name]}" "$ip" "$MX_PORT"
    MAILROOT[$name]="$DC/mail"
    QUEUE_KIND[$name]=postfix
    QUEUE_DIR[$name]="$pf/spool"
}
start_postfix pf-verify "${IP[pf-verify]}" 1
start_postfix pf-off "${IP[pf-off]}" 0
PF_VERSION=$(postconf -c "$TMP/pf-verify/conf" -h mail_version)
LABEL[pf-verify]="Postfix $PF_VERSION + OpenDKIM $OD_VERSION verifying (DKIM)"
LABEL[pf-off]="Postfix $PF_VERSION, no milter"
VARIANTS+=(pf-verify pf-off)

# ---------------------------------------------------------------- helpers for a round
alive() {
    local n
    case $1 in ms-*) set -- "$1" dns ;; pf-*) set -- "$1" dovecot opendkim dns ;; esac
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
    local name=$1 count=$2 out=$3 conns=${4:-$CONNECTIONS}
    run_client "$out" "$SEND" "${IP[$name]}:$MX_PORT" --source "$SOURCE_IP" --messages "$count" --connections "$conns" \
        --users "$USERS" --rcpt-domain "$DOMAIN" --sender "$SENDER" --dir "$MSGS" \
        || die "the load generator against $name failed: $(tail -c 800 "$out")"
}
field() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }

wait_stored() {  # wait_stored NAME TARGET: until TARGET messages are stored (bounded by TIMEOUT and STALL)
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
one_round() {  # one_round NAME ROUND: appends "stored_rate accept_rate stored_s accept_s" to TMP/runs.NAME
    local name=$1 round=$2 before target out="$TMP/send.$1.$2.txt" start accepted end n lost
    alive "$name"
    before=$(count_stored "$name")
    target=$((before + MESSAGES))
    log "$name (round $round/$ROUNDS): $MESSAGES messages over $CONNECTIONS connections to ${IP[$name]}:$MX_PORT"
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
    log "$name: $((n - before)) stored, $lost lost, $(queued "$name") queued; $(tail -1 "$TMP/runs.$name" | awk '{ printf "MX %s msg/s (last 250 after %s s), stored %s msg/s (last stored after %s s)", $2, $4, $1, $3 }')"
}

# gate NAME: USERS messages, then the newest stored one's Authentication-Results checked
declare -A GATE
gate() {
    local name=$1 before file ar
    alive "$name"
    before=$(count_stored "$name")
    send "$name" "$USERS" "$TMP/gate-send.$name.txt" "$USERS"
    wait_stored "$name" $((before + USERS)) || die "$name: the gate's $USERS messages were not all stored"
    file=$(newest_file "$name" | cut -d' ' -f2-)
    cp "$file" "$TMP/gate.$name.eml"
    # The Authentication-Results fields, each unfolded onto one line.
    ar=$("$PY" -c '
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for v in m.get_all("Authentication-Results", []):
    print(" ".join(str(v).split()))
' "$file")
    case $name in
        ms-verify)
            grep -q "^$DOMAIN;" <<<"$ar" && grep -q 'dkim=pass' <<<"$ar" && grep -q 'spf=pass' <<<"$ar" && grep -q 'dmarc=pass' <<<"$ar" \
                || die "$name: expected dkim=pass, spf=pass and dmarc=pass in Authentication-Results, got: ${ar:-none}" ;;
        pf-verify)
            grep -q "^pf-verify.$DOMAIN;.*dkim=pass" <<<"$ar" \
                || die "$name: expected OpenDKIM's dkim=pass in Authentication-Results, got: ${ar:-none}" ;;
        *)
            ! grep -q 'dkim=' <<<"$ar" || die "$name: verification is off, yet: $ar" ;;
    esac
    GATE[$name]=$(sed 's/|/\\|/g' <<<"${ar:-none}" | paste -sd' ' -)
    log "$name OK: Authentication-Results: ${ar:-none}"
}

# ---------------------------------------------------------------- 5. gates, warm-up, rounds
declare -A LOG_MARK
server_log() { case $1 in ms-*) echo "$TMP/$1/mailsite.log" ;; pf-*) echo "$TMP/$1/postfix.log" ;; esac; }
for name in "${VARIANTS[@]}"; do LOG_MARK[$name]=$(wc -l <"$(server_log "$name")"); done
for name in "${VARIANTS[@]}"; do gate "$name"; done
if [ "$WARMUP" -gt 0 ]; then
    for name in "${VARIANTS[@]}"; do
        log "$name: warm-up, $WARMUP messages (not measured)"
        before=$(count_stored "$name")
        send "$name" "$WARMUP" "$TMP/warmup.$name.txt" "$([ "$WARMUP" -ge "$CONNECTIONS" ] && echo "$CONNECTIONS" || echo 1)"
        wait_stored "$name" $((before + WARMUP)) || die "$name: the warm-up was not all stored"
    done
fi
kill -USR1 "${PID_OF[dns]}"; sleep 0.2
DNS_BEFORE=$(sed -n 's/^queries=\([0-9]*\).*/\1/p' "$TMP/dns.log" | tail -1)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
N=${#VARIANTS[@]}
for round in $(seq 1 "$ROUNDS"); do
    for ((i = 0; i < N; i++)); do
        one_round "${VARIANTS[$(( (round - 1 + i) % N ))]}" "$round"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
kill -USR1 "${PID_OF[dns]}"; sleep 0.2
DNS_AFTER=$(sed -n 's/^queries=\([0-9]*\).*/\1/p' "$TMP/dns.log" | tail -1)

# ---------------------------------------------------------------- 6. report
median_col() {  # median_col FILE COLUMN
    awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}
col() { awk -v c="$2" '{ printf "%s%s", sep, $c; sep = ", " }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
paired() {  # paired A B COLUMN: the median over rounds of A's round value / B's round value
    paste -d' ' <(awk -v c="$3" '{ print $c }' "$TMP/runs.$1") <(awk -v c="$3" '{ print $c }' "$TMP/runs.$2") \
        | awk '{ print ($2 > 0 ? $1 / $2 : 0) }' | sort -g | awk '{ l[NR] = $0 } END { printf "%.2fx", l[int((NR + 1) / 2)] }'
}
error_lines() {  # error_lines NAME: error/warning lines in the variant's server log since the gates
    tail -n +"$((${LOG_MARK[$1]} + 1))" "$(server_log "$1")" | case $1 in
        ms-*) grep -E '\b(ERROR|WARN)\b|panicked' || true ;;
        pf-*) grep -i -E 'warning|error|fatal|panic|reject|milter' || true ;;
    esac
}
log_errors() { error_lines "$1" | grep -c . || true; }
declare -A MX STO
for name in "${VARIANTS[@]}"; do
    STO[$name]=$(median_col "$TMP/runs.$name" 1)
    MX[$name]=$(median_col "$TMP/runs.$name" 2)
done

echo
echo "### Verifying inbound mail on the MX port ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with the load generator and the DNS server, load $LOAD_BEFORE before / $LOAD_AFTER after; $MESSAGES pre-signed messages of $SIZE body bytes per round over $CONNECTIONS connections from $SOURCE_IP, $USERS recipients, median of $ROUNDS rounds)"
echo
header="| measure |"; sep="|---|"
for name in "${VARIANTS[@]}"; do header+=" ${LABEL[$name]} |"; sep+="---:|"; done
echo "$header"
echo "$sep"
row() { local line="| $1 |" name; shift; for name in "${VARIANTS[@]}"; do line+=" $("$@" "$name") |"; done; echo "$line"; }
v_mx() { echo "${MX[$1]}"; }
v_sto() { echo "${STO[$1]}"; }
v_secs() { echo "$(median_col "$TMP/runs.$1" 4) / $(median_col "$TMP/runs.$1" 3)"; }
v_lost() { echo "${LOST[$1]:-0}"; }
v_err() { log_errors "$1"; }
row "MX messages/s (ready connections to the last 250)" v_mx
row "stored messages/s (ready connections to the last message stored)" v_sto
row "seconds to the last 250 / to the last stored (medians)" v_secs
row "messages lost (all rounds)" v_lost
row "server log error/warning lines (gates and rounds)" v_err
echo
echo "| ratio | MX (last 250) | stored (last in Maildir) |"
echo "|---|---:|---:|"
if [ "$PEERS_ONLY" = 0 ]; then
    echo "| mailsite verify on / mailsite verify off | $(ratio "${MX[ms-verify]}" "${MX[ms-off]}") ($(paired ms-verify ms-off 2)) | $(ratio "${STO[ms-verify]}" "${STO[ms-off]}") ($(paired ms-verify ms-off 1)) |"
fi
echo "| Postfix + OpenDKIM verifying / Postfix, no milter | $(ratio "${MX[pf-verify]}" "${MX[pf-off]}") ($(paired pf-verify pf-off 2)) | $(ratio "${STO[pf-verify]}" "${STO[pf-off]}") ($(paired pf-verify pf-off 1)) |"
if [ "$PEERS_ONLY" = 0 ]; then
    echo "| mailsite verify on / Postfix + OpenDKIM verifying | $(ratio "${MX[ms-verify]}" "${MX[pf-verify]}") ($(paired ms-verify pf-verify 2)) | $(ratio "${STO[ms-verify]}" "${STO[pf-verify]}") ($(paired ms-verify pf-verify 1)) |"
    echo "| (reference) mailsite verify off / Postfix, no milter | $(ratio "${MX[ms-off]}" "${MX[pf-off]}") ($(paired ms-off pf-off 2)) | $(ratio "${STO[ms-off]}" "${STO[pf-off]}") ($(paired ms-off pf-off 1)) |"
fi
echo
echo "Ratios of the medians; in brackets the median of the per-round ratios."
echo
for name in "${VARIANTS[@]}"; do
    echo "- ${LABEL[$name]}: MX msg/s by round $(col "$TMP/runs.$name" 2); stored $(col "$TMP/runs.$name" 1); gate message's Authentication-Results: ${GATE[$name]}; lost ${LOST[$name]:-0}; server log error/warning lines $(log_errors "$name")"
done
for name in "${VARIANTS[@]}"; do
    [ "$(log_errors "$name")" = 0 ] || { echo "- $name server log, first error/warning lines:"; error_lines "$name" | head -3 | cut -c1-300 | sed 's/^/    /'; }
done
echo "- DNS server of $SENDER_DOMAIN: $((DNS_AFTER - DNS_BEFORE)) queries answered during the rounds ($DNS_AFTER in all); mailsite caches through hickory, OpenDKIM through libunbound + QueryCache. All queries by client, name and type: $(sed -n 's/^queries=[0-9]* (\(.*\))$/\1/p' "$TMP/dns.log" | tail -1)"
echo "- OpenDKIM: $(grep -c . "$OD/opendkim.log" || true) log lines; Dovecot: $(cat "$DC/dovecot.log" 2>/dev/null | grep -c -i -E 'error|fatal|panic' || true) error lines"
echo "- OpenDKIM checks DKIM only; mailsite's verify does SPF, DKIM, ARC (none here) and DMARC. The same pre-signed message per recipient is sent every time."
total_lost=0
for name in "${VARIANTS[@]}"; do total_lost=$((total_lost + ${LOST[$name]:-0})); done
[ "$total_lost" = 0 ] || die "$total_lost messages lost"
