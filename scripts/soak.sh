#!/usr/bin/env bash
# Soak benchmark (not a test): a million mixed KCM requests from several clients against one
# ccached, its RSS and Private_Dirty sampled between phases (`ccached-bench soak`). Reports the
# growth after warm-up; Docs/security.md has the figures.
#
#   scripts/soak.sh [--bin DIR] [--bench FILE] [--requests N] [--clients N] [--phases N]
#
# DIR holds ccached (default: the release build, else the debug build); FILE is ccached-bench
# (default .build/bench/release/ccached-bench: make bench builds it from Benchmarks/). The daemon
# runs with its default limits on a socket in a private temporary directory and is stopped at the
# end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=
BENCH=$ROOT/.build/bench/release/ccached-bench
EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BIN=${2:?}; shift 2 ;;
        --bench) BENCH=${2:?}; shift 2 ;;
        --requests|--clients|--phases|--warmup-phases) EXTRA+=("$1" "${2:?}"); shift 2 ;;
        *) echo "usage: ${0##*/} [--bin DIR] [--bench FILE] [--requests N] [--clients N] [--phases N] [--warmup-phases N]" >&2; exit 2 ;;
    esac
done
if [ -z "$BIN" ]; then
    for candidate in "$ROOT/.build/release" "$ROOT/.build/debug"; do
        [ -x "$candidate/ccached" ] && { BIN=$candidate; break; }
    done
fi
[ -x "$BIN/ccached" ] || { echo "soak: no ccached in ${BIN:-.build/release or .build/debug} (swift build)" >&2; exit 2; }
[ -x "$BENCH" ] || { echo "soak: no $BENCH (make bench builds it from Benchmarks/)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/ccached-soak.XXXXXX)
SOCKET=$WORK/run/kcm.sock
cleanup() {
    [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/ccached" --socket "$SOCKET" --idle-timeout 0 --log-level warning 2>"$WORK/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$SOCKET" ] && break; sleep 0.1; done
[ -S "$SOCKET" ] || { echo "soak: ccached did not start:" >&2; cat "$WORK/daemon.log" >&2; exit 1; }

echo "soak: $BIN/ccached (pid $DAEMON), $(nproc) CPUs, $(uname -r)"
"$BENCH" soak --socket "$SOCKET" --pid "$DAEMON" "${EXTRA[@]}"
kill -0 "$DAEMON" || { echo "soak: ccached died" >&2; cat "$WORK/daemon.log" >&2; exit 1; }
