#!/usr/bin/env bash
# The first connection of a new session through ccached-door, the session daemon's start included
# (issue 21: target ≤ 15 ms): the door's fork path, as hosts without systemd as PID 1 run it.
#
#   scripts/bench-first-connection.sh [--bin DIR] [--bench FILE] [--sessions N]
#
# Root only (the door is root). Runs in a private mount namespace with a temporary directory bound
# over /run, as bench-door.sh does: nothing on the host changes. One door serves N fresh sessions:
# each client first writes /proc/self/loginuid, which gives it a new audit session that logind does
# not know, so the door routes it to a job daemon of its own (job-N) that does not run yet; the
# client (`ccached-bench connect --connections 1`: connect, one KCM request, close) times the whole
# connection, the routing, the daemon's start to READY and the hand-off included. The first sample
# is the door's own first connection (its libraries and NSS not warm yet), shown apart; the
# figures are over the others. The sessions' daemons are stopped by pid at the end (they would end
# on their own 10 s after their session). Prints each sample, then median, p90, min and max in
# milliseconds and the machine's load; the last line is machine-readable:
#   first-connection sessions=N median_ms=… p90_ms=… min_ms=… max_ms=… door_first_ms=…
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$here")/.build/release
bench=$(dirname "$here")/.build/bench/release/ccached-bench
sessions=20
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --bench) bench=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        *) echo "usage: $0 [--bin DIR] [--bench FILE] [--sessions N]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-first-connection: needs root (ccached-door runs as root); not run" >&2; exit 1; }
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "bench-first-connection: $bin/$program is missing (make release)" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "bench-first-connection: $bench is missing (make bench-build)" >&2; exit 1; }
[ -w /proc/self/loginuid ] || {
    echo "bench-first-connection: /proc/self/loginuid is not writable (no audit support): not run" >&2
    exit 1
}
if [ -z "${CCACHED_FIRST_BENCH_INSIDE:-}" ]; then
    exec unshare --mount --propagation private env CCACHED_FIRST_BENCH_INSIDE=1 "$0" --bin "$bin" \
        --bench "$bench" --sessions "$sessions"
fi

T=$(mktemp -d /tmp/ccached-first-bench.XXXXXX)
door=
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
# The sessions' daemons, which the door started, go with it.
trap 'stop_private_door "$door" "$T"' EXIT
mkdir "$T/run"
mount --bind "$T/run" /run
# --daemon-start fork: what hosts without systemd run (the unit path: bench-first-connection-booted.sh).
"$bin/ccached-door" --ccached "$bin/ccached" --daemon-start fork --log-level warning \
    --max-daemons-per-user $((sessions + 16)) 2>"$T/door.log" &
door=$!
socket=/run/.heim_org.h5l.kcm-socket
for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done
[ -S "$socket" ] || { echo "bench-first-connection: the door did not listen" >&2; cat "$T/door.log" >&2; exit 1; }

samples=()
for i in $(seq 0 "$sessions"); do
    # A new audit session (loginuid written), then the one timed connection of it.
    line=$(sh -c 'echo 0 >/proc/self/loginuid && exec "$0" connect "$1" --connections 1 --requests 1' \
        "$bench" "$socket") || { echo "bench-first-connection: session $i failed" >&2; cat "$T/door.log" >&2; exit 1; }
    us=$(awk '{print $2}' <<<"$line")
    ms=$(awk -v us="$us" 'BEGIN { printf "%.2f", us / 1000 }')
    if [ "$i" -eq 0 ]; then door_first=$ms; else samples+=("$ms"); fi
    # Let the new daemon settle, as sessions do not start back to back.
    sleep 0.1
done
echo "first connection of a new session through ccached-door (fork path, daemon start included), ms:"
echo "  the door's first: $door_first; then $sessions sessions: ${samples[*]}"
printf '%s\n' "${samples[@]}" | summarize_ms first-connection "$door_first"
