#!/usr/bin/env bash
# The connection cost of ccached builds side by side: for each BINDIR (a directory holding
# ccached), start `ccached --socket` in a temporary directory and run scripts/connect-probe.c
# (connect, REQUESTS GET_DEFAULT_CACHE, close; 2,000 times) against it; the builds take turns for
# ROUNDS rounds, unpinned and then with client and daemon on one CPU (--pin CPU). With
# `perf stat` available, also the daemon's CPU time and context switches per connection.
#
#   scripts/connect-probe.sh [--rounds N] [--requests N] [--pin CPU] BINDIR [BINDIR ...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
REQUESTS=1
PIN=$(($(nproc) - 1))
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --requests) REQUESTS=$2; shift 2 ;;
        --pin) PIN=$2; shift 2 ;;
        -*) echo "usage: $0 [--rounds N] [--requests N] [--pin CPU] BINDIR [BINDIR ...]" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--rounds N] [--requests N] [--pin CPU] BINDIR [BINDIR ...]" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/connect-probe" "$ROOT/scripts/connect-probe.c"

# probe BINDIR PREFIX...: one daemon, one measurement; PREFIX runs both (e.g. taskset -c 1).
probe() {
    local bin=$1; shift
    local socket=$WORK/kcm.sock
    "$@" "$bin/ccached" --socket "$socket" --idle-timeout 0 --log-target stderr 2>/dev/null &
    local daemon=$!
    for _ in $(seq 200); do [ -S "$socket" ] && break; sleep 0.01; done
    local counters=""
    if command -v perf >/dev/null; then
        perf stat -x, -e task-clock,context-switches -p "$daemon" -o "$WORK/stat" &
        local perfpid=$!
        sleep 0.1
    fi
    local figures
    figures=$("$@" "$WORK/connect-probe" "$socket" 2000 "$REQUESTS")
    if [ -n "${perfpid:-}" ]; then
        kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
        counters=$(awk -F, '/task-clock/ {cpu=$1} /context-switches/ {cs=$1}
            END {printf "daemon CPU %.1f µs, %.1f switches per connection", cpu*1000/2000, cs/2000}' "$WORK/stat")
        unset perfpid
    fi
    kill "$daemon"; wait "$daemon" 2>/dev/null || true
    rm -f "$socket"
    echo "$figures   $counters"
}

echo "connect + $REQUESTS request(s) + close, 2,000 connections per cell; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for placement in unpinned pinned; do
    for round in $(seq "$ROUNDS"); do
        for bin in "$@"; do
            if [ "$placement" = pinned ]; then prefix=(taskset -c "$PIN"); else prefix=(env); fi
            printf '%-9s round %d  %-40s %s\n' "$placement" "$round" "$bin" "$(probe "$bin" "${prefix[@]}")"
        done
    done
done
