#!/usr/bin/env bash
# Connect-plus-first-reply through ccached-door against a direct connection to the same daemon,
# and the per-request latency on a connection once it is handed off (it must be the direct one).
#
#   scripts/bench-door.sh [--bin DIR] [--bench FILE] [--connects N] [--requests N]
#
# Root only (the door is root). Runs in a private mount namespace with a temporary directory bound
# over /run, so the host's /run (and any real door or sssd-kcm) is untouched. The client is
# `ccached-bench door` (FILE, default .build/bench/release/ccached-bench, built from Benchmarks/)
# doing blocking connect / KCM NOOP / close, identical for both paths: its own cost is in both
# figures, so the ratio understates the door's share slightly. Prints medians and p90
# in microseconds and the ratios; the last line is machine-readable:
#   door-bench connect_direct_us=… connect_door_us=… connect_ratio=… request_direct_us=… request_door_us=… request_ratio=…
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$here")/.build/release
bench=$(dirname "$here")/.build/bench/release/ccached-bench
connects=2000
requests=20000
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --bench) bench=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --connects) connects=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        *) echo "usage: $0 [--bin DIR] [--bench FILE] [--connects N] [--requests N]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-door: needs root (ccached-door runs as root); not run" >&2; exit 1; }
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "bench-door: $bin/$program is missing (swift build -c release)" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "bench-door: $bench is missing (make bench builds it from Benchmarks/)" >&2; exit 1; }
if [ -z "${CCACHED_DOOR_BENCH_INSIDE:-}" ]; then
    exec unshare --mount --propagation private env CCACHED_DOOR_BENCH_INSIDE=1 "$0" --bin "$bin" \
        --bench "$bench" --connects "$connects" --requests "$requests"
fi

T=$(mktemp -d /tmp/ccached-door-bench.XXXXXX)
door=
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
# Root's daemon, which the door started, goes with it.
trap 'stop_private_door "$door" "$T"' EXIT
mkdir "$T/run"
mount --bind "$T/run" /run
"$bin/ccached-door" --ccached "$bin/ccached" --log-level warning 2>"$T/door.log" &
door=$!
for _ in $(seq 1 200); do [ -S /run/.heim_org.h5l.kcm-socket ] && break; sleep 0.05; done

"$bench" door --direct /run/ccached/0/ccached/user/.heim_org.h5l.kcm-socket \
    --door /run/.heim_org.h5l.kcm-socket --connects "$connects" --requests "$requests"
