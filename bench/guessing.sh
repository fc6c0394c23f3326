#!/usr/bin/env bash
# bench/guessing.sh - login throttling under a password-guessing flood: 400 IMAP connections
# from one source guess one account's password as fast as the server answers, while the
# account's owner logs in from another source.
#
# Run (as root or not, from anywhere; needs only loopback). About a minute once mailsite is
# built; building it from scratch adds about 3 minutes:
#   bash bench/guessing.sh                     # builds target/release/mailsite first
#   bash bench/guessing.sh /path/to/mailsite   # explicit mailsite binary (not built)
#   FLOOD=400 DURATION=20 bash bench/guessing.sh
#
# What it does:
#   1. installs python3 if missing; builds mailsite (cargo build --release -p mailsite);
#   2. writes a site from the embedded default moved onto 127.77.0.x (its own data directory,
#      [throttle] at its defaults: block after 10 failures, for 15 minutes) and starts
#      `mailsite serve`; adds the user victim;
#   3. unloaded: the owner logs in from HONEST_IP (connect, LOGIN, LOGOUT) HONEST_LOGINS times,
#      one after the other; the latency of each login (connect to tagged OK) is recorded;
#   4. flood: FLOOD connections from GUESSER_IP each send `LOGIN victim <guess>` again and again
#      for DURATION s (a new connection after each answer the server closes); meanwhile the owner
#      logs in from HONEST_IP as in 3, in a process of its own (the flood's event loop is busy);
#   5. prints: password checks the guesser got (AUTHENTICATIONFAILED answers, each one an argon2
#      check) in total and per second after its 10th failure (target <= 1/s), the refusals it got
#      unchecked (NO [UNAVAILABLE]), and the owner's login p50/p99 unloaded and during the flood
#      (target p99 <= 100 ms).
# The server is started by this script and stopped by its PID on exit.
#
# Environment knobs:
#   FLOOD=400 DURATION=20 HONEST_LOGINS=200
#   NET=77 (the site's loopback 127.NET.0.x; GUESSER_IP=127.NET.0.66, HONEST_IP=127.NET.0.5)
set -euo pipefail

BENCH=guessing
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_args "$@"

FLOOD=${FLOOD:-400}
DURATION=${DURATION:-20}
HONEST_LOGINS=${HONEST_LOGINS:-200}
NET=${NET:-77}
GUESSER_IP=${GUESSER_IP:-127.$NET.0.66}
HONEST_IP=${HONEST_IP:-127.$NET.0.5}
IMAP_ADDR=127.$NET.0.12   # mailbox2: the default site serves the letters n-z (victim) there
IMAP_PORT=10143
PASSWORD=victim-password-1

command -v python3 >/dev/null || apt_install python3
mailsite_binary

TMP=$(mktemp -d /tmp/guessing-bench.XXXXXX)
ulimit -n 20000 2>/dev/null || true

"$MAILSITE_BIN" check-config --print-default \
    | sed -e "s/127\.0\.0\./127.$NET.0./g" -e "s|^data_dir = .*|data_dir = \"$TMP/data\"|" >"$TMP/site.toml"
"$MAILSITE_BIN" --config "$TMP/site.toml" check-config >/dev/null || die "the site configuration is not valid"

log "starting mailsite serve (site on 127.$NET.0.x)"
RUST_LOG=warn "$MAILSITE_BIN" --config "$TMP/site.toml" serve >"$TMP/serve.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 150); do
    python3 -c "import socket; socket.create_connection(('$IMAP_ADDR', $IMAP_PORT), 1).close()" 2>/dev/null && break
    kill -0 "${PIDS[0]}" 2>/dev/null || die "mailsite exited: $(tail -5 "$TMP/serve.log")"
    sleep 0.1
done
echo "$PASSWORD" | "$MAILSITE_BIN" --config "$TMP/site.toml" user add victim >/dev/null

log "flood: $FLOOD connections from $GUESSER_IP for ${DURATION}s; the owner logs in from $HONEST_IP"
# The client is a file: run_client starts it in the background, where stdin is /dev/null.
cat >"$TMP/flood.py" <<'PY'
import asyncio, sys, time

host, port, guesser, honest = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
flood, duration, logins, password = int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), sys.argv[8]

async def tagged(reader, tag):
    while True:
        line = await reader.readline()
        if not line:
            return b""
        if line.startswith(tag + b" "):
            return line

async def login(source, user, secret, tag=b"a1"):
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        await reader.readline()
        writer.write(tag + b" LOGIN " + user.encode() + b" " + secret.encode() + b"\r\n")
        await writer.drain()
        return await tagged(reader, tag), reader, writer
    except Exception:
        writer.close()
        raise

def honest_logins(count, pause):
    """The owner's logins, one after another with `pause` s between them, in a process of
    its own (blocking sockets): its latency must not include the flood's event loop."""
    import socket
    times = []
    for _ in range(count):
        start = time.monotonic()
        with socket.create_connection((host, port), 30, source_address=(honest, 0)) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"a1 LOGIN victim " + password.encode() + b"\r\n")
            while True:
                line = f.readline()
                if not line or line.startswith(b"a1 "):
                    break
            took = time.monotonic() - start
            s.sendall(b"a2 LOGOUT\r\n")
        if b" OK " not in line:
            raise SystemExit(f"the owner's login failed: {line!r}")
        times.append(took)
        time.sleep(pause)
    return times

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] * 1000

checked = []   # times of AUTHENTICATIONFAILED answers
refused = 0
other = 0

async def guesser_loop(n, stop_at):
    global refused, other
    guess = 0
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=(guesser, 0))
            await reader.readline()
            while time.monotonic() < stop_at:
                guess += 1
                tag = f"g{guess}".encode()
                writer.write(tag + f" LOGIN victim guess-{n}-{guess}\r\n".encode())
                await writer.drain()
                answer = await tagged(reader, tag)
                if not answer:
                    other += 1
                    break
                if b"AUTHENTICATIONFAILED" in answer:
                    checked.append(time.monotonic())
                elif b"UNAVAILABLE" in answer:
                    refused += 1
                else:
                    other += 1
            writer.close()
        except OSError:
            other += 1
            await asyncio.sleep(0.01)

async def main():
    import concurrent.futures
    owner = concurrent.futures.ProcessPoolExecutor(1)
    loop = asyncio.get_running_loop()
    unloaded = await loop.run_in_executor(owner, honest_logins, logins, 0)
    start = time.monotonic()
    stop_at = start + duration
    guessers = [asyncio.create_task(guesser_loop(n, stop_at)) for n in range(flood)]
    # The owner starts a second after the flood and ends a second before it does.
    await asyncio.sleep(1)
    during = await loop.run_in_executor(owner, honest_logins, logins, max(duration - 2, 1) / logins)
    await asyncio.gather(*guessers)
    checked.sort()
    after = [t for t in checked[10:]]
    tenth = checked[9] if len(checked) >= 10 else stop_at
    rate = len(after) / max(stop_at - tenth, 0.001)
    print(f"result checks_total={len(checked)} checks_after_10={len(after)} checks_per_s_after_10={rate:.2f} "
          f"seconds_to_10th={tenth - start:.2f} refused_unchecked={refused} refused_per_s={refused / duration:.0f} other={other}")
    print(f"result unloaded_p50_ms={pct(unloaded, 50):.1f} unloaded_p99_ms={pct(unloaded, 99):.1f} "
          f"flood_p50_ms={pct(during, 50):.1f} flood_p99_ms={pct(during, 99):.1f} flood_logins={len(during)}")

asyncio.run(main())
PY
run_client "$TMP/result.txt" python3 "$TMP/flood.py" "$IMAP_ADDR" "$IMAP_PORT" "$GUESSER_IP" "$HONEST_IP" \
    "$FLOOD" "$DURATION" "$HONEST_LOGINS" "$PASSWORD" || die "the flood failed: $(tail -5 "$TMP/result.txt")"

get() { grep '^result' "$TMP/result.txt" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
rate=$(get checks_per_s_after_10)
p99=$(get flood_p99_ms)
cat <<TABLE

| guessing flood: $FLOOD IMAP connections from one source, ${DURATION} s | measured | target |
|---|---|---|
| password checks the guesser got in total | $(get checks_total) | |
| checks per second after its 10th failure | $rate/s | <= 1/s |
| refused unchecked (NO [UNAVAILABLE]) | $(get refused_unchecked) ($(get refused_per_s)/s) | |
| connections closed before an answer (past the per-source cap), or failed | $(get other) | |
| owner's login from another source, unloaded: p50 / p99 | $(get unloaded_p50_ms) / $(get unloaded_p99_ms) ms | |
| owner's login during the flood: p50 / p99 ($(get flood_logins) logins) | $(get flood_p50_ms) / $p99 ms | p99 <= 100 ms |
TABLE
awk -v r="$rate" -v p="$p99" 'BEGIN { exit !(r <= 1 && p <= 100) }' \
    && log "both targets met" || log "a target was missed (see the table)"
