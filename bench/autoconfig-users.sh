#!/usr/bin/env bash
# bench/autoconfig-users.sh - the autoconfig service with 10,000 users, the load rotating over
# all of them, in the four formats clients ask for: mailsite against nginx serving each
# user's documents as static files.
#
# Run (as root, from anywhere; needs only loopback):
#   bash bench/autoconfig-users.sh                      # mailsite = ../target/release/mailsite
#   bash bench/autoconfig-users.sh /path/to/mailsite    # explicit binary
#   ROUNDS=5 DURATION=10 bash bench/autoconfig-users.sh
#
# What it does:
#   1. installs what is missing: apt-get wrk nginx curl python3;
#   2. starts `mailsite serve` (the embedded default, HTTP 127.0.0.1:8080) and imports USERS
#      users (`mailsite user import`, CSV with one argon2 hash for all, so that the import
#      does not hash 10,000 passwords); every 10th prefers POP3, so the documents differ by
#      user in name, letter alias and protocol order;
#   3. fetches every user's document in each format from mailsite once (Python, keep-alive)
#      and writes them as files that nginx serves (127.0.0.3:8080, one worker per core,
#      open_file_cache for all of them, access_log off) at the same paths:
#        thunderbird   GET  /mail/config-v1.1.xml?emailaddress=USER@example.test
#        pox           POST /autodiscover/autodiscover.xml?u=USER (the Autodiscover request
#                      for USER@example.test as body; nginx picks the file by u=, mailsite
#                      reads the body; nginx answers the POST from the file through
#                      `error_page 405 =200`)
#        json          GET  /autodiscover/autodiscover.json?Email=USER@example.test&Protocol=AutodiscoverV1
#        mobileconfig  GET  /mobileconfig?emailaddress=USER@example.test
#      and checks that both answer every user's request with the same bytes (the
#      mobileconfig's per-request UUIDs aside: same length);
#   4. for each format, ROUNDS rounds alternating the servers: `wrk -t2 -c50 -d DURATION
#      --latency -s rotate.lua`, where each wrk thread walks the user list from its own
#      offset, one user per request (its 10,000 requests made once when the thread
#      starts, so that the client, which shares the cores, spends little per request);
#   5. prints a table per format: requests/s, p50 and p99 of the median round, the ratio,
#      and whether mailsite's p99 was at most nginx's in every round.
#
# Environment knobs: USERS=10000 ROUNDS=3 DURATION=5 WARMUP=3 WRK_THREADS=2 WRK_CONNS=50
#   FORMATS="thunderbird pox json mobileconfig" KEEP_TMP=1
#   WARMUP: seconds of unrecorded load on each server before a format's first round;
#   with 1 s, mailsite's first round was the widest-tailed of its run in 5 of the 8 runs
#   of 2026-12-07 (BENCHMARKS.md).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAILSITE_BIN="$SCRIPT_DIR/../target/release/mailsite"
BENCH=autoconfig-users
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
bench_args "$@"

USERS=${USERS:-10000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-50}
FORMATS=${FORMATS:-thunderbird pox json mobileconfig}
NCPU=$(nproc)
MAILSITE_ADDR=127.0.0.1:8080   # fixed by mailsite's embedded default site
NGINX_ADDR=127.0.0.3:8080
[ "$PEERS_ONLY" = 0 ] || die "--peers-only: this benchmark needs mailsite to make the users' documents"

mailsite_binary

missing=()
command -v wrk     >/dev/null 2>&1 || missing+=(wrk)
command -v nginx   >/dev/null 2>&1 || missing+=(nginx)
command -v curl    >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

TMP=$(mktemp -d /tmp/mailsite-bench-autoconfig-users.XXXXXX)
chmod 755 "$TMP"   # nginx workers run as an unprivileged user and must traverse to the docroot

wait_http() {
    local name=$1 pid=$2 url=$3 i
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see its log in $TMP"
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$name did not answer $url within 30 s"
}

# ---------------------------------------------------------------- 1. mailsite and its users
log "starting mailsite ($MAILSITE_BIN) on $MAILSITE_ADDR"
mkdir -p "$TMP/data"
"$MAILSITE_BIN" --data-dir "$TMP/data" serve >"$TMP/mailsite.log" 2>&1 &
PID_OF[mailsite]=$!
PIDS+=("${PID_OF[mailsite]}")
wait_http mailsite "${PID_OF[mailsite]}" "http://$MAILSITE_ADDR/readyz"
echo 'bench-password-123' | "$MAILSITE_BIN" --data-dir "$TMP/data" user add seed >"$TMP/useradd.log" 2>&1 \
    || die "mailsite user add seed failed: $(cat "$TMP/useradd.log")"
python3 - "$TMP/data/site.db" "$USERS" "$TMP/users.csv" "$TMP/users.txt" <<'PY'
import sqlite3, sys
db, n, csv_path, list_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
(hash_,) = sqlite3.connect(db).execute("SELECT password_hash FROM users WHERE username = 'seed'").fetchone()
# Names spread over every letter, as real first letters are: a letter, a number.
letters = "abcdefghijklmnopqrstuvwxyz"
names = [f"{letters[i % 26]}{letters[(i // 26) % 26]}user{i:05d}" for i in range(n)]
with open(csv_path, "w") as f:
    f.write("username,name,prefer,password_hash\n")
    for i, u in enumerate(names):
        f.write(f"{u},User {i},{'pop3' if i % 10 == 0 else 'imap'},{hash_}\n")
with open(list_path, "w") as f:
    f.write("\n".join(names) + "\n")
PY
log "importing $USERS users"
"$MAILSITE_BIN" --data-dir "$TMP/data" user import "$TMP/users.csv" >"$TMP/import.log" 2>&1 \
    || die "mailsite user import failed: $(tail -5 "$TMP/import.log")"
# The serving process follows the directory within a poll; wait until the last user is seen.
last=$(tail -1 "$TMP/users.txt")
for i in $(seq 1 100); do
    "$MAILSITE_BIN" --data-dir "$TMP/data" user show "$last" >/dev/null 2>&1 && break
    sleep 0.1
done

# ---------------------------------------------------------------- 2. every user's documents as files
mkdir -p "$TMP/www"
log "fetching $USERS users' documents in every format from mailsite"
python3 - "$MAILSITE_ADDR" "$TMP/users.txt" "$TMP/www" <<'PY' || die "fetching the documents failed"
import http.client, os, sys
addr, users_path, www = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = addr.split(":")
users = open(users_path).read().split()
conn = http.client.HTTPConnection(host, int(port), timeout=10)
def pox_body(email):
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
            f'<Request><EMailAddress>{email}</EMailAddress>'
            '<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
            '</Request></Autodiscover>')
for d in ("tb", "pox", "json", "mc", "body"):
    os.makedirs(os.path.join(www, d), exist_ok=True)
for u in users:
    email = f"{u}@example.test"
    for d, method, path, body in (
        ("tb", "GET", f"/mail/config-v1.1.xml?emailaddress={email}", None),
        ("pox", "POST", f"/autodiscover/autodiscover.xml?u={u}", pox_body(email)),
        ("json", "GET", f"/autodiscover/autodiscover.json?Email={email}&Protocol=AutodiscoverV1", None),
        ("mc", "GET", f"/mobileconfig?emailaddress={email}", None),
    ):
        headers = {"Content-Type": "text/xml"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
        # nginx picks the file by the request's address (pox: by u=).
        with open(os.path.join(www, d, u if d == "pox" else email), "wb") as f:
            f.write(data)
    with open(os.path.join(www, "body", u), "w") as f:
        f.write(pox_body(email))
PY
grep -q "maila\.example\.test" "$TMP/www/tb/$(head -1 "$TMP/users.txt")@example.test" || die "the first user's document names no maila alias"
chmod -R a+rX "$TMP/www"

# ---------------------------------------------------------------- 3. nginx serving them
mkdir -p "$TMP/nginx/tmp"
cat >"$TMP/nginx/nginx.conf" <<EOF
# Generated by bench/autoconfig-users.sh: every user's documents as static files.
daemon off;
master_process on;
worker_processes auto;           # one per core ($NCPU here)
worker_rlimit_nofile 16384;      # room for the open_file_cache below and the connections
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
    open_file_cache max=12000 inactive=60s;   # one format's files of every user stay open: no open()/stat()
    open_file_cache_valid 60s;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_buffer_size 16k;              # the POX bodies stay in memory
    server {
        listen $NGINX_ADDR;
        server_name _;
        root $TMP/www;
        location = /mail/config-v1.1.xml {
            default_type "text/xml; charset=utf-8";
            try_files /tb/\$arg_emailaddress =404;
        }
        location = /autodiscover/autodiscover.xml {
            # A static file cannot answer a POST (405): answer it from the user's file.
            error_page 405 =200 /pox/\$arg_u;
            return 405;
        }
        location /pox/ { internal; default_type "application/xml; charset=utf-8"; }
        location = /autodiscover/autodiscover.json {
            default_type "application/json; charset=utf-8";
            try_files /json/\$arg_email =404;
        }
        location = /mobileconfig {
            default_type "application/x-apple-aspen-config";
            try_files /mc/\$arg_emailaddress =404;
        }
        location / { return 404; }
    }
}
EOF
log "starting nginx on $NGINX_ADDR"
"$NGINX_BIN" -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout.log" 2>&1 &
PID_OF[nginx]=$!
PIDS+=("${PID_OF[nginx]}")
wait_http nginx "${PID_OF[nginx]}" "http://$NGINX_ADDR/mail/config-v1.1.xml?emailaddress=$(head -1 "$TMP/users.txt")@example.test"

# ---------------------------------------------------------------- 4. the same answers from both
log "checking both servers give every user the same document in every format"
python3 - "$MAILSITE_ADDR" "$NGINX_ADDR" "$TMP/users.txt" "$TMP/www/body" <<'PY' || die "the servers' answers differ"
import http.client, sys
a, b, users_path, bodies = sys.argv[1:5]
users = open(users_path).read().split()
conns = [http.client.HTTPConnection(*x.split(":"), timeout=10) for x in (a, b)]
for n, u in enumerate(users):
    if n % 10 and n != len(users) - 1:
        continue   # every 10th user, and the last
    email = f"{u}@example.test"
    for method, path in (("GET", f"/mail/config-v1.1.xml?emailaddress={email}"),
                         ("POST", f"/autodiscover/autodiscover.xml?u={u}"),
                         ("GET", f"/autodiscover/autodiscover.json?Email={email}&Protocol=AutodiscoverV1"),
                         ("GET", f"/mobileconfig?emailaddress={email}")):
        body = open(f"{bodies}/{u}").read() if method == "POST" else None
        got = []
        for c in conns:
            c.request(method, path, body=body, headers={"Content-Type": "text/xml"} if body else {})
            r = c.getresponse()
            got.append((r.status, r.read()))
        (sa, da), (sb, db) = got
        same = da == db or ("mobileconfig" in path and len(da) == len(db))
        if sa != 200 or sb != 200 or not same:
            sys.exit(f"{method} {path}: mailsite {sa} {len(da)} bytes, nginx {sb} {len(db)} bytes")
print("same")
PY

# ---------------------------------------------------------------- 5. wrk, the load rotating over the users
cat >"$TMP/rotate.lua" <<EOF
-- Each wrk thread walks the user list from its own offset, one user per request. The
-- requests are made once, when the thread starts, so that each request costs the client
-- only the copy of a prepared string: the client shares the two cores with the server,
-- and what it spends per request is spent in both servers' rounds alike.
local format = os.getenv("FORMAT")
local users = {}
for line in io.lines("$TMP/users.txt") do users[#users + 1] = line end
local requests = {}
local next_request = 1
local thread_no = 0
function setup(thread)
    thread:set("offset", 1 + math.floor(thread_no * #users / $WRK_THREADS))
    thread_no = thread_no + 1
end
local function body_of(u)
    local f = io.open("$TMP/www/body/" .. u, "r")
    local b = f:read("*a")
    f:close()
    return b
end
local function request_for(u)
    local email = u .. "@example.test"
    if format == "thunderbird" then
        return wrk.format("GET", "/mail/config-v1.1.xml?emailaddress=" .. email)
    elseif format == "pox" then
        return wrk.format("POST", "/autodiscover/autodiscover.xml?u=" .. u,
            { ["Content-Type"] = "text/xml" }, body_of(u))
    elseif format == "json" then
        return wrk.format("GET", "/autodiscover/autodiscover.json?Email=" .. email .. "&Protocol=AutodiscoverV1")
    else
        return wrk.format("GET", "/mobileconfig?emailaddress=" .. email)
    end
end
function init(args)
    -- This thread's walk: the users from its offset on, then from the start.
    for i = 0, #users - 1 do
        requests[i + 1] = request_for(users[(offset - 1 + i) % #users + 1])
    end
end
function request()
    local r = requests[next_request]
    next_request = next_request % #requests + 1
    return r
end
EOF
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}
TARGETS=("nginx $NGINX_ADDR" "mailsite $MAILSITE_ADDR")
for format in $FORMATS; do
    for round in $(seq 1 "$ROUNDS"); do
        for t in "${TARGETS[@]}"; do
            read -r name addr <<<"$t"
            args=(-t"$WRK_THREADS" -c"$WRK_CONNS" --latency -s "$TMP/rotate.lua" "http://$addr")
            if [ "$round" = 1 ] && [ "$WARMUP" != 0 ]; then
                FORMAT=$format run_client /dev/null wrk -d"${WARMUP}s" "${args[@]}" || true
            fi
            log "$name $format (round $round/$ROUNDS): wrk -d${DURATION}s ${args[*]}"
            out="$TMP/wrk.$name.$format.$round.txt"
            c0=$(tree_cpu "${PID_OF[$name]}")
            FORMAT=$format run_client "$out" wrk -d"${DURATION}s" "${args[@]}" || die "wrk against $name failed: $(cat "$out")"
            c1=$(tree_cpu "${PID_OF[$name]}")
            rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
            [ -n "$rps" ] || die "could not parse wrk output for $name: $(cat "$out")"
            ! grep -q "Non-2xx" "$out" || die "$name answered $format requests with errors: $(cat "$out")"
            # The server's CPU per request: what it leaves of the shared cores to wrk.
            cpu_us=$(awk -v a="$c0" -v b="$c1" '/requests in/ { printf "%.2f", ($1 > 0 ? (b - a) * 1e6 / $1 : 0) }' "$out")
            echo "$rps $out $cpu_us" >>"$TMP/runs.$name.$format"
            echo "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")" >>"$TMP/p99.$name.$format"
            kill -0 "${PID_OF[$name]}" 2>/dev/null || die "$name died during the benchmark; see its log in $TMP"
        done
    done
done

# ---------------------------------------------------------------- 6. report
echo
echo "### Autoconfig with $USERS users, the load rotating over all of them ($(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores shared with wrk, wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s, median of $ROUNDS round(s))"
echo
echo "| format | nginx req/s | nginx p50 / p99 (ms) | mailsite req/s | mailsite p50 / p99 (ms) | mailsite / nginx | mailsite p99 <= nginx's, rounds | server CPU us per request, nginx / mailsite (same run) |"
echo "|---|---:|---:|---:|---:|---:|---|---|"
for format in $FORMATS; do
    declare -A RPS=() P50=() P99=() CPU=()
    for name in nginx mailsite; do
        out=$(median_file "$TMP/runs.$name.$format")
        CPU[$name]=$(awk -v f="$out" '$2 == f { print $3 }' "$TMP/runs.$name.$format")
        RPS[$name]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
        P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
        P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    done
    ratio=$(awk -v a="${RPS[mailsite]}" -v b="${RPS[nginx]}" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
    tail_ok=$(paste "$TMP/p99.mailsite.$format" "$TMP/p99.nginx.$format" | awk '$1 <= $2 { n++ } END { printf "%d of %d", n, NR }')
    echo "| $format | ${RPS[nginx]} | ${P50[nginx]} / ${P99[nginx]} | ${RPS[mailsite]} | ${P50[mailsite]} / ${P99[mailsite]} | $ratio | $tail_ok | ${CPU[nginx]} / ${CPU[mailsite]} |"
done
echo
for format in $FORMATS; do
    printf -- '- %s: requests/s of each round: nginx %s; mailsite %s; p99 ms of each round: nginx %s; mailsite %s; server CPU us per request of each round: nginx %s; mailsite %s\n' "$format" \
        "$(round_values "$TMP/runs.nginx.$format")" "$(round_values "$TMP/runs.mailsite.$format")" \
        "$(paste -sd, "$TMP/p99.nginx.$format" | sed 's/,/, /g')" "$(paste -sd, "$TMP/p99.mailsite.$format" | sed 's/,/, /g')" \
        "$(awk '{ printf "%s%s", sep, $3; sep = ", " }' "$TMP/runs.nginx.$format")" "$(awk '{ printf "%s%s", sep, $3; sep = ", " }' "$TMP/runs.mailsite.$format")"
done
