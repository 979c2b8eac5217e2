#!/usr/bin/env bash
# Idle memory of ccached daemons running side by side (issue 22's target: still ≤ 2 MiB private
# per daemon with 40 running). Starts N daemons of DIR/ccached, each on its own socket in a fresh
# directory, optionally gives each one ticket (--kinit: a throwaway test KDC, scripts/testkdc.sh,
# and MIT kinit through the daemon's socket), waits, then reads each one's
# /proc/PID/smaps_rollup: private (Private_Clean + Private_Dirty), Pss, Pss_Shmem (the state
# file's pages) and Locked. Prints the median and the largest; stops its daemons (by pid).
# A measurement, not a test: it asserts nothing.
#
#   scripts/idle-memory.sh --bin DIR [--daemons N] [--kinit] [--settle SECONDS] [-- CCACHED_ARGS...]
#
# Example: scripts/idle-memory.sh --bin .build/release --kinit
#          scripts/idle-memory.sh --bin .build/release -- --no-state
set -uo pipefail

PROG=${0##*/}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
BIN=
COUNT=40
KINIT=no
SETTLE=2
EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --daemons) COUNT=$2; shift 2 ;;
    --kinit) KINIT=yes; shift ;;
    --settle) SETTLE=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[ -x "$BIN/ccached" ] || { echo "$PROG: no executable $BIN/ccached" >&2; exit 2; }

WORK=$(mktemp -d /tmp/ccached-idle-memory.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    [ "$KINIT" = yes ] && "$ROOT_DIR/scripts/testkdc.sh" stop "$WORK/kdc" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$KINIT" = yes ]; then
    "$ROOT_DIR/scripts/testkdc.sh" start "$WORK/kdc" >"$WORK/kdc.log" 2>&1 ||
        { echo "$PROG: the test KDC did not start; see $WORK/kdc.log" >&2; exit 1; }
fi

for ((i = 0; i < COUNT; i++)); do
    mkdir -p "$WORK/d$i"
    "$BIN/ccached" --socket "$WORK/d$i/socket" "${EXTRA[@]}" >/dev/null 2>>"$WORK/ccached.log" &
    PIDS+=($!)
done
for ((i = 0; i < COUNT; i++)); do
    for ((t = 0; t < 100; t++)); do [ -S "$WORK/d$i/socket" ] && break; sleep 0.05; done
    [ -S "$WORK/d$i/socket" ] || { echo "$PROG: daemon $i has no socket; see $WORK/ccached.log" >&2; exit 1; }
    if [ "$KINIT" = yes ]; then
        printf '[libdefaults]\n    kcm_socket = %s\n' "$WORK/d$i/socket" >"$WORK/d$i/krb5.conf"
        echo pw-alice | KRB5_CONFIG="$WORK/d$i/krb5.conf:$WORK/kdc/krb5.conf" KRB5CCNAME=KCM: \
            kinit alice >/dev/null 2>>"$WORK/kinit.log" ||
            { echo "$PROG: kinit through daemon $i failed: $(tail -n 2 "$WORK/kinit.log")" >&2; exit 1; }
    fi
done
sleep "$SETTLE"

# kB figures of one daemon: private pss pss_shmem locked
for pid in "${PIDS[@]}"; do
    awk '/^Private_Clean:|^Private_Dirty:/ { priv += $2 } /^Pss:/ { pss = $2 } /^Pss_Shmem:/ { shm = $2 }
        /^Locked:/ { lck = $2 } END { print priv, pss, shm, lck }' "/proc/$pid/smaps_rollup"
done >"$WORK/figures"
[ "$(wc -l <"$WORK/figures")" -eq "$COUNT" ] || { echo "$PROG: a daemon ended early" >&2; exit 1; }

summary() { # column name
    sort -n -k"$1","$1" "$WORK/figures" | awk -v c="$1" -v name="$2" '{ v[NR] = $c } END {
        printf "  %-10s median %6.0f kB, largest %6.0f kB\n", name, v[int((NR + 1) / 2)], v[NR] }'
}
echo "$COUNT daemons of $BIN/ccached${EXTRA[*]:+ ${EXTRA[*]}} (tickets: $KINIT), idle ${SETTLE} s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
summary 1 private
summary 2 Pss
summary 3 Pss_Shmem
summary 4 Locked
