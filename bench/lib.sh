#!/usr/bin/env bash
# bench/lib.sh - what the benchmark scripts share: logging, installing missing packages,
# a temp dir, and stopping every daemon and load generator they started, by PID, on exit.
# Sourced by the scripts right after they set BENCH (their name); they set TMP (their
# temp dir) afterwards, which cleanup removes unless the run failed or KEEP_TMP=1.

log() { printf '[%s-bench] %s\n' "$BENCH" "$*" >&2; }
die() { printf '[%s-bench] ERROR: %s\n' "$BENCH" "$*" >&2; exit 1; }

apt_install() {  # apt_install PKG... ; retries once after 'apt-get update'
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; } \
        || die "apt-get install $* failed"
}

PIDS=()            # every daemon we start, stopped in reverse order on exit
declare -A PID_OF  # server name -> PID

CLIENT_PID=        # the load generator currently running, if any

cleanup() {
    local rc=$? i pid
    trap - EXIT INT TERM
    if [ -n "$CLIENT_PID" ]; then kill -TERM "$CLIENT_PID" 2>/dev/null || true; wait "$CLIENT_PID" 2>/dev/null || true; fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done   # <= 5 s
        kill -0 "$pid" 2>/dev/null && { log "PID $pid ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
        wait "$pid" 2>/dev/null || true
    done
    # keep the evidence on failure (not on Ctrl-C/SIGTERM) or on request
    if [ -z "${TMP:-}" ]; then
        :
    elif [ "${KEEP_TMP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; }; then
        log "temp dir kept: $TMP (logs: *.log)"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_client OUT CMD...: run a load generator in the background and wait for it, so that
# SIGINT/SIGTERM to this script interrupt the wait at once (a foreground child would delay
# the traps until it finished) and cleanup can stop it.
run_client() {
    local out=$1 rc=0
    shift
    "$@" >"$out" 2>&1 &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=
    return "$rc"
}

# wait_dns NAME PID IP: poll (0.1 s apart, bounded ~15 s) until IP:PORT answers maila A with NOERROR.
