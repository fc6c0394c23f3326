#!/usr/bin/env bash
# bench/autoconfig.sh - Thunderbird autoconfig HTTP benchmark: mailsite vs nginx vs automx2.
#
# Run (as root, from anywhere; needs only loopback):
#   bash bench/autoconfig.sh                               # mailsite = ../target/release/mailsite (relative to this script)
#   bash bench/autoconfig.sh /path/to/mailsite             # explicit binary
#   DURATION=30 bash bench/autoconfig.sh                   # longer wrk runs (default 10 s each)
#   bash bench/autoconfig.sh --peers-only                  # nginx + automx2 only, with a built-in sample document
#
# What it does:
#   1. installs what is missing: apt-get wrk nginx curl, pip automx2 gunicorn;
#   2. starts `mailsite --data-dir TMP/data serve` (HTTP 127.0.0.1:8080), waits for /readyz,
#      creates user alice, fetches alice's autoconfig document once with curl;
#   3. serves that exact document as a static file from nginx on 127.0.0.3:8080
#      (own nginx.conf, worker_processes auto, access_log off, pid/temp paths under TMP);
#   4. starts automx2 (Flask app) under gunicorn on 127.0.0.4:8080, seeded through its
#      POST /initdb/ endpoint with the same site (example.test, maila/outbox, same ports);
#   5. checks each of the three answers HTTP 200 with a clientConfig XML body (fails otherwise);
#   6. runs `wrk -t2 -c50 -d${DURATION}s --latency` against each in turn, same path+query:
#        /mail/config-v1.1.xml?emailaddress=alice@example.test
#      and prints a markdown table (server, requests/s, p50, p99, ratio vs nginx).
# All daemons are started by this script, in the background, and stopped by PID on exit.
#
# Environment knobs:
#   DURATION=10         seconds per measured wrk run
#   WARMUP=2            seconds of unmeasured wrk warm-up per server (0 = none)
#   ROUNDS=1            rounds (servers alternate within a round); the table shows each
#                       server's median-requests/s run. ROUNDS=3 is advisable on a noisy machine.
#   WRK_THREADS=2 WRK_CONNS=50
#   AUTOMX2_WORKERS     gunicorn sync workers (default 2*nproc+1, gunicorn's own recommendation)
#   KEEP_TMP=1          keep the temp dir (configs, logs, bodies, raw wrk output) for inspection
#
# Caveat: wrk, the server under test and anything else running share this machine's cores;
# compare figures from the same run only.
set -euo pipefail

# ---------------------------------------------------------------- arguments
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN="$SCRIPT_DIR/../target/release/mailsite"
BENCH=autoconfig
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-1}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-50}
NCPU=$(nproc)
AUTOMX2_WORKERS=${AUTOMX2_WORKERS:-$((2 * NCPU + 1))}
AUTOMX2_PIP_SPEC=${AUTOMX2_PIP_SPEC:-automx2==2026.2}   # the version whose /initdb/ schema this script was written against
GUNICORN_PIP_SPEC=${GUNICORN_PIP_SPEC:-gunicorn}

QUERY_PATH='/mail/config-v1.1.xml?emailaddress=alice@example.test'
MAILSITE_ADDR=127.0.0.1:8080   # fixed by mailsite's embedded default site
NGINX_ADDR=127.0.0.3:8080
AUTOMX2_ADDR=127.0.0.4:8080


mailsite_binary

# ---------------------------------------------------------------- install what is missing
missing=()
command -v wrk   >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v curl  >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || { log "apt-get install python3 python3-pip"; apt_install python3 python3-pip; }
pip_missing=()
"$PYTHON" -c 'import automx2' 2>/dev/null || pip_missing+=("$AUTOMX2_PIP_SPEC")
"$PYTHON" -c 'import gunicorn' 2>/dev/null || pip_missing+=("$GUNICORN_PIP_SPEC")
if [ ${#pip_missing[@]} -gt 0 ]; then
    log "pip install ${pip_missing[*]}"
    # --break-system-packages is needed on Debian's own python3 (PEP 668), harmless elsewhere.
    "$PYTHON" -m pip install -q "${pip_missing[@]}" 2>/dev/null \
        || "$PYTHON" -m pip install -q --break-system-packages "${pip_missing[@]}" \
        || die "pip install ${pip_missing[*]} failed"
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------- temp dir, process bookkeeping, cleanup
TMP=$(mktemp -d /tmp/mailsite-bench-autoconfig.XXXXXX)
chmod 755 "$TMP"   # nginx workers run as an unprivileged user and must traverse to the docroot
wait_http() {
    local name=$1 pid=$2 url=$3 tries=${4:-150} i
    for i in $(seq 1 "$tries"); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$name did not answer $url within $((tries / 10)) s"
}

# check_doc NAME URL: GET URL, require HTTP 200 and a clientConfig XML body naming our servers.
check_doc() {
    local name=$1 url=$2 body="$TMP/body.$1" code
    code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 5 "$url") || die "$name: request to $url failed"
    [ "$code" = 200 ] || die "$name: $url returned HTTP $code (expected 200); body: $(head -c 300 "$body")"
    grep -q '<clientConfig' "$body" || die "$name: body of $url is not a clientConfig XML document: $(head -c 300 "$body")"
    grep -q 'maila\.example\.test' "$body" && grep -q 'outbox\.example\.test' "$body" \
        || die "$name: document from $url does not mention maila.example.test and outbox.example.test: $(head -c 600 "$body")"
    log "$name OK: HTTP 200, $(wc -c <"$body") bytes of clientConfig XML"
}

# ---------------------------------------------------------------- 1. mailsite (skipped with --peers-only)
mkdir -p "$TMP/www/mail"
DOC="$TMP/www/mail/config-v1.1.xml"   # the static file nginx serves
if [ "$PEERS_ONLY" = 0 ]; then
    log "starting mailsite ($MAILSITE_BIN) on $MAILSITE_ADDR"
    mkdir -p "$TMP/data"
    "$MAILSITE_BIN" --data-dir "$TMP/data" serve >"$TMP/mailsite.log" 2>&1 &
    PID_OF[mailsite]=$!
    PIDS+=("${PID_OF[mailsite]}")
    wait_http mailsite "${PID_OF[mailsite]}" "http://$MAILSITE_ADDR/readyz" 300
    echo 'bench-password-123' | "$MAILSITE_BIN" --data-dir "$TMP/data" user add alice >"$TMP/useradd.log" 2>&1 \
        || die "mailsite user add alice failed: $(cat "$TMP/useradd.log")"
    # Fetch alice's document once; nginx will serve these exact bytes.
    code=$(curl -sS -o "$DOC" -w '%{http_code}' --max-time 5 "http://$MAILSITE_ADDR$QUERY_PATH") \
        || die "fetching autoconfig from mailsite failed"
    [ "$code" = 200 ] || die "mailsite autoconfig returned HTTP $code: $(head -c 300 "$DOC")"
else
    log "--peers-only: nginx serves a built-in sample clientConfig document"
    # Same shape as mailsite's document for alice@example.test (~1.5 KB).
    cat >"$DOC" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    <displayName>example.test mail</displayName>
    <displayShortName>example.test</displayShortName>
    <incomingServer type="imap">
      <hostname>maila.example.test</hostname>
      <port>10993</port>
      <socketType>SSL</socketType>
      <username>alice@example.test</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>maila.example.test</hostname>
      <port>10143</port>
      <socketType>STARTTLS</socketType>
      <username>alice@example.test</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>maila.example.test</hostname>
      <port>10995</port>
      <socketType>SSL</socketType>
      <username>alice@example.test</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>maila.example.test</hostname>
      <port>10110</port>
      <socketType>STARTTLS</socketType>
      <username>alice@example.test</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>outbox.example.test</hostname>
      <port>10465</port>
      <socketType>SSL</socketType>
      <username>alice@example.test</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>outbox.example.test</hostname>
      <port>10587</port>
      <socketType>STARTTLS</socketType>
      <username>alice@example.test</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
XML
fi
chmod -R a+rX "$TMP/www"

# ---------------------------------------------------------------- 2. nginx serving the static copy
mkdir -p "$TMP/nginx/tmp"
cat >"$TMP/nginx/nginx.conf" <<EOF
# Generated by bench/autoconfig.sh: serve one static clientConfig file, tuned for throughput.
daemon off;                      # stays in the foreground; the script backgrounds it and stops it by PID
master_process on;
worker_processes auto;           # one per core ($NCPU here)
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/client_body;
    proxy_temp_path       $TMP/nginx/tmp/proxy;
    fastcgi_temp_path     $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path       $TMP/nginx/tmp/uwsgi;
    scgi_temp_path        $TMP/nginx/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    open_file_cache max=16 inactive=60s;  # no open()/stat() per request
    open_file_cache_valid 60s;
    keepalive_timeout 65s;
    keepalive_requests 1000000;           # don't make wrk reconnect every 1000 requests (nginx default)
    server {
        listen $NGINX_ADDR;
        server_name _;
        root $TMP/www;
        # The query string (?emailaddress=...) is ignored for static files.
        location = /mail/config-v1.1.xml { default_type application/xml; types { } }
        location / { return 404; }
    }
}
EOF
log "starting nginx on $NGINX_ADDR"
# -e: early error log before the config is read (instead of /var/log/nginx/error.log)
"$NGINX_BIN" -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout.log" 2>&1 &
PID_OF[nginx]=$!
PIDS+=("${PID_OF[nginx]}")
wait_http nginx "${PID_OF[nginx]}" "http://$NGINX_ADDR/mail/config-v1.1.xml"

# ---------------------------------------------------------------- 3. automx2 under gunicorn
# automx2 reads its config from $AUTOMX2_CONF (INI, section [automx2]). The default DB is
# sqlite in-memory, which would be a separate empty DB per gunicorn worker, so use a file.
mkdir -p "$TMP/automx2"
cat >"$TMP/automx2/automx2.conf" <<EOF
[automx2]
loglevel = WARNING
db_echo = no
db_uri = sqlite:///$TMP/automx2/automx2.db
proxy_count = 0
EOF
# Seed data for POST /initdb/ (format "version 2", see automx2/database.py:populate_with_dict).
# Caveat: automx2 derives socketType from the port number (SSL only for 465/993/995, else
# STARTTLS), so our 10993/10995/10465 are fixed to SSL in the DB right after seeding.
cat >"$TMP/automx2/seed.json" <<'EOF'
{
  "version": 2,
  "provider": "example.test mail",
  "domains": [ { "name": "example.test" } ],
  "servers": [
    { "type": "imap", "name": "maila.example.test",  "port": 10993, "prio": 10 },
    { "type": "imap", "name": "maila.example.test",  "port": 10143, "prio": 20 },
    { "type": "pop",  "name": "maila.example.test",  "port": 10995, "prio": 30 },
    { "type": "pop",  "name": "maila.example.test",  "port": 10110, "prio": 40 },
    { "type": "smtp", "name": "outbox.example.test", "port": 10465, "prio": 10 },
    { "type": "smtp", "name": "outbox.example.test", "port": 10587, "prio": 20 }
  ]
}
EOF
gunicorn_args=(-w "$AUTOMX2_WORKERS" -b "$AUTOMX2_ADDR" --chdir "$TMP/automx2"
               --pid "$TMP/automx2/gunicorn.pid" --worker-tmp-dir "$TMP/automx2"
               --error-logfile "$TMP/automx2/gunicorn.log" --log-level warning)
# Newer gunicorn opens a control socket under ~/.gunicorn by default; keep it off.
if "$PYTHON" -m gunicorn --help 2>/dev/null | grep -q -- '--no-control-socket'; then
    gunicorn_args+=(--no-control-socket)
fi
log "starting automx2 under gunicorn ($AUTOMX2_WORKERS sync workers) on $AUTOMX2_ADDR"
AUTOMX2_CONF="$TMP/automx2/automx2.conf" "$PYTHON" -m gunicorn "${gunicorn_args[@]}" automx2.server:app \
    >"$TMP/automx2/stdout.log" 2>&1 &
PID_OF[automx2]=$!
PIDS+=("${PID_OF[automx2]}")
# (automx2 logs "no such table: provider" for this GET / until /initdb/ has created the schema; harmless)
wait_http automx2 "${PID_OF[automx2]}" "http://$AUTOMX2_ADDR/" 300
curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' \
     --data-binary "@$TMP/automx2/seed.json" "http://$AUTOMX2_ADDR/initdb/" >"$TMP/automx2/initdb.html" \
    || die "automx2 POST /initdb/ failed; see $TMP/automx2/gunicorn.log"
grep -q 'now prepared' "$TMP/automx2/initdb.html" || die "automx2 /initdb/ did not seed: $(cat "$TMP/automx2/initdb.html")"
"$PYTHON" - "$TMP/automx2/automx2.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE server SET socket_type = 'SSL' WHERE port IN (10993, 10995, 10465)").rowcount
db.commit()
assert n == 3, f"expected to fix 3 SSL servers, fixed {n}"
PY

# ---------------------------------------------------------------- 4. correctness gate
TARGETS=()   # "name addr" in benchmark order
TARGETS+=("nginx $NGINX_ADDR")
TARGETS+=("automx2 $AUTOMX2_ADDR")
[ "$PEERS_ONLY" = 0 ] && TARGETS+=("mailsite $MAILSITE_ADDR")
for t in "${TARGETS[@]}"; do
    read -r name addr <<<"$t"
    check_doc "$name" "http://$addr$QUERY_PATH"
done
grep -q '<socketType>SSL</socketType>' "$TMP/body.automx2" || die "automx2 document has no SSL server (socket_type fix-up failed)"
if [ "$PEERS_ONLY" = 0 ]; then
    cmp -s "$TMP/body.nginx" "$TMP/body.mailsite" || log "note: mailsite's body differs from the copy nginx serves (dynamic content?)"
fi

# ---------------------------------------------------------------- 5. wrk runs
# to_ms VALUE: wrk prints latencies as 850.00us / 1.23ms / 1.02s / 1.50m
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# ROUNDS rounds, alternating servers within each round; each server's reported figures are
# those of its median-requests/s run (this machine's run-to-run noise is easily +-20 %).
for round in $(seq 1 "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        read -r name addr <<<"$t"
        url="http://$addr$QUERY_PATH"
        if [ "$round" = 1 ] && [ "$WARMUP" != 0 ]; then
            log "$name: warm-up ${WARMUP}s"
            run_client /dev/null wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WARMUP}s" "$url" || true
        fi
        log "$name (round $round/$ROUNDS): wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s --latency $url"
        out="$TMP/wrk.$name.$round.txt"
        run_client "$out" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency "$url" \
            || die "wrk against $name failed: $(cat "$out")"
        rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
        [ -n "$rps" ] || die "could not parse wrk output for $name: $(cat "$out")"
        echo "$rps $out" >>"$TMP/runs.$name"
        kill -0 "${PID_OF[$name]}" 2>/dev/null || die "$name (PID ${PID_OF[$name]}) died during the benchmark; see its log in $TMP"
    done
done

declare -A RPS P50 P99 NOTE ALL
for t in "${TARGETS[@]}"; do
    read -r name _ <<<"$t"
    out=$(median_file "$TMP/runs.$name")   # median run
    ALL[$name]=$(round_values "$TMP/runs.$name")
    RPS[$name]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    NOTE[$name]=$(awk '/Non-2xx or 3xx responses:/ { printf "NON-2XX RESPONSES: %s; ", $NF } /Socket errors:/ { sub(/^ *Socket errors: */, ""); printf "socket errors: %s; ", $0 }' "$out")
done

# ---------------------------------------------------------------- 6. report
echo
echo "### Autoconfig HTTP benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores, wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s, median of $ROUNDS round(s), GET $QUERY_PATH)"
echo
echo "| server | requests/s | p50 latency (ms) | p99 latency (ms) | ratio vs nginx |"
echo "|---|---:|---:|---:|---:|"
base=${RPS[nginx]}
for t in "${TARGETS[@]}"; do
    read -r name _ <<<"$t"
    case $name in
        nginx)    label="nginx $("$NGINX_BIN" -v 2>&1 | sed 's|.*/||') (static file)" ;;
        automx2)  label="automx2 $("$PYTHON" -c 'import importlib.metadata as m; print(m.version("automx2"))' 2>/dev/null || true) (gunicorn, $AUTOMX2_WORKERS workers)" ;;
        *)        v=$("$MAILSITE_BIN" --version 2>/dev/null | head -1 | awk '{ print $NF }' || true); label="mailsite${v:+ $v}" ;;
    esac
    ratio=$(awk -v a="${RPS[$name]}" -v b="$base" 'BEGIN { r = (b > 0 ? a / b : 0); printf (r >= 0.1 ? "%.2fx" : "%.4fx"), r }')
    echo "| $label | ${RPS[$name]} | ${P50[$name]} | ${P99[$name]} | $ratio |"
done
echo
for t in "${TARGETS[@]}"; do
    read -r name _ <<<"$t"
    printf -- '- %s: %s bytes per response; %srequests/s of each round: %s\n' "$name" "$(wc -c <"$TMP/body.$name")" "${NOTE[$name]:-no errors; }" "${ALL[$name]}"
done
