#!/usr/bin/env bash
# The first connection of a new login session through ccached-door under a real systemd: the unit
# path installed hosts run (--daemon-start auto: the daemon a transient unit in user-UID.slice,
# started by systemd-run), in a booted Debian 12 container as door-booted-check.sh boots it
# (../shared/design/REAL-SYSTEMD.md). Issue 21's target: ≤ 15 ms. Run by hand (root, ~1 min once
# the container's tree is built):
#
#   scripts/bench-first-connection-booted.sh [--bin DIR] [--bench FILE] [--sessions N] [--strace FILE]
#
# DIR: a release build with ccached and ccached-door (make release). Each sample is a new
# `su - u1` login (a logind session of class user, as a terminal login makes it) whose first and
# only KCM client — `ccached-bench connect --connections 1` (FILE, default
# .build/bench/release/ccached-bench, bound in with its Swift runtime) — times connect, one
# GET_DEFAULT_CACHE and its reply: the door's routing, `systemd-run` and the unit's start to READY=1
# and the hand-off included. The first connection also activates the door (socket activation) and
# is shown apart. Prints each sample, median, p90, min, max in milliseconds; the last line is
# machine-readable:
#   first-connection-booted sessions=N median_ms=… p90_ms=… min_ms=… max_ms=… door_first_ms=…
# With --strace FILE, one more login is traced (strace -f -ttt on the door, from the host) into FILE.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=$repo/.build/release
bench=$repo/.build/bench/release/ccached-bench
sessions=20
trace=
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --bench) bench=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        --strace) trace=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        *) echo "usage: $0 [--bin DIR] [--bench FILE] [--sessions N] [--strace FILE]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-first-connection-booted: needs root; NOT RUN" >&2; exit 1; }
for tool in mmdebstrap systemd-nspawn nsenter; do
    command -v "$tool" >/dev/null ||
        { echo "bench-first-connection-booted: $tool missing (apt-get install systemd-container mmdebstrap)" >&2; exit 1; }
done
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "bench-first-connection-booted: $bin/$program is missing (make release)" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "bench-first-connection-booted: $bench is missing (make bench-build)" >&2; exit 1; }
bench_runtime=$(readelf -d "$bench" | sed -n 's/.*RUNPATH.*\[\([^:]*\).*/\1/p')
bench_binds=(--bind-ro="$(cd "$(dirname "$bench")" && pwd -P):/opt/bench")
[ -n "$bench_runtime" ] && bench_binds+=(--bind-ro="$bench_runtime")
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
# shellcheck source=scripts/door-container-lib.sh
. "$here/door-container-lib.sh"
trap door_container_finish EXIT
door_container_boot first-booted "$bin" "${bench_binds[@]}" || exit 1
c systemctl daemon-reload
c systemctl enable --now ccached-door.socket >/dev/null 2>&1
c sh -c "id u1 >/dev/null 2>&1 || useradd -m u1"
# One login: its first connection's microseconds (and the login's end waits for nothing).
login() {
    local out
    out=$(c sh -c "XDG_SESSION_CLASS=user su - u1 -c '/opt/bench/$(basename "$bench") connect /run/.heim_org.h5l.kcm-socket --connections 1 --requests 1'" 2>&1)
    # "p50 X  p90 …  µs": one connection, so p50 is its time.
    awk '$1 == "p50" { printf "%d", $2 }' <<<"$out" | grep . || echo "$out"
}
door_first=$(login)
[[ $door_first =~ ^[0-9]+$ ]] || { echo "bench-first-connection-booted: the first login failed: $door_first" >&2; exit 1; }
samples=()
for _ in $(seq 1 "$sessions"); do
    us=$(login)
    [[ $us =~ ^[0-9]+$ ]] || { echo "bench-first-connection-booted: a login failed: $us" >&2; exit 1; }
    samples+=("$(awk -v us="$us" 'BEGIN { printf "%.2f", us / 1000 }')")
    sleep 0.2
done
units=$(c journalctl --no-pager -b -q -u 'ccached-1000-*' -g 'Started ' | wc -l)
door_first_ms=$(awk -v us="$door_first" 'BEGIN { printf "%.2f", us / 1000 }')
echo "first connection of a new login session through ccached-door under systemd (unit path), ms:"
echo "  the door's first (socket activation): $door_first_ms; then $sessions logins: ${samples[*]}"
echo "  ($units units ccached-1000-*.service started)"
printf '%s\n' "${samples[@]}" | summarize_ms first-connection-booted "$door_first_ms"
# Where the time goes, from the journal's receive times (-o short-unix): systemd's "Starting" of
# each unit (the door has routed and systemd-run has asked), the daemon's "listening" (systemd set
# up the unit's sandbox and the daemon started), systemd's "Started" (READY=1 arrived), and the
# door's "started the session daemon" (systemd-run returned).
for unit in $(c journalctl --no-pager -b -q -o cat -g 'Starting ccached-1000-' | sed -n 's/^Starting \(ccached-1000-[^ ]*\.service\).*/\1/p'); do
    key=${unit#ccached-1000-}
    key=${key%.service}
    starting=$(c journalctl --no-pager -b -q -o short-unix -u "$unit" -g '^Starting ' | head -1 | cut -d' ' -f1)
    listening=$(c journalctl --no-pager -b -q -o short-unix -u "$unit" -g '^listening$' | head -1 | cut -d' ' -f1)
    started=$(c journalctl --no-pager -b -q -o short-unix -u "$unit" -g '^Started ' | head -1 | cut -d' ' -f1)
    door=$(c journalctl --no-pager -b -q -o short-unix -u ccached-door.service -g "started the session daemon at /run/user/1000/ccached/$key/" | head -1 | cut -d' ' -f1)
    [ -n "$starting" ] && [ -n "$listening" ] && [ -n "$started" ] && [ -n "$door" ] &&
        echo "$starting $listening $started $door"
done | sort -u | tail -n "$sessions" | awk '
    function median(a, n,    i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { n++; sandbox[n] = ($2 - $1) * 1000; ready[n] = ($3 - $2) * 1000; back[n] = ($4 - $3) * 1000 }
    END {
        if (n == 0) { print "  (no breakdown: the journal lines were not found)"; exit }
        printf "  medians over %d units (journal receive times): systemd \"Starting\" -> daemon \"listening\" %.2f ms (the unit'"'"'s sandbox, exec, daemon start);", n, median(sandbox, n)
        printf " -> \"Started\" (READY=1) %.2f ms; -> the door'"'"'s \"started\" (systemd-run returned) %.2f ms; the rest of each sample is the door'"'"'s routing, systemd-run'"'"'s own start and its D-Bus call, and the hand-off\n", median(ready, n), median(back, n)
    }'
if [ -n "$trace" ]; then
    door=$(c systemctl show -P MainPID ccached-door.service)
    # The door's pid as the host sees it: the process whose innermost pid is $door in the container.
    host_door=
    for pid in $(pgrep -x ccached-door); do
        [ "$(readlink "/proc/$pid/ns/pid")" = "$(readlink "/proc/$init/ns/pid")" ] || continue
        [ "$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status")" = "$door" ] && host_door=$pid
    done
    if [ -n "$host_door" ]; then
        strace -f -ttt -s 200 -o "$trace" -p "$host_door" &
        tracer=$!
        sleep 1
        echo "traced login: $(login) µs (strace -f on the door: $trace)"
        sleep 0.5
        kill "$tracer"
        wait "$tracer" 2>/dev/null
        c journalctl --no-pager -b -o short-precise -n 30 >"$trace.journal"
    else
        echo "bench-first-connection-booted: the door's pid not found on the host; no trace" >&2
    fi
fi
