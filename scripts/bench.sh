#!/usr/bin/env bash
# `make bench` / `make bench-full`: run ccached-bench (ccached vs FILE, KEYRING,
# MEMORY and a raw Unix-socket round trip, through libkrb5), the end-to-end
# figures with the MIT tools (scripts/bench-e2e.sh), and plot retrieve latency
# against N.
#
#   scripts/bench.sh --profile quick|full --bin BINDIR [--publish] [--no-e2e]
#
# BINDIR is the release build's bin directory (ccached and ccached-bench; ccachectl
# too when it is built). Results go to bench-results/ (not committed):
#   latest.jsonl   the benchmark's JSON lines (the e2e lines are appended)
#   latest.txt     the table it printed
#   latency.png    retrieve p50 vs N, log-log, per cache type
# --publish also copies the plot to Docs/performance-latency.png for the docs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}

usage() {
    echo "usage: $PROG --profile quick|full --bin BINDIR [--publish] [--no-e2e]" >&2
    exit 2
}

PROFILE=quick
BIN=
PUBLISH=false
E2E=true
while [ $# -gt 0 ]; do
    case $1 in
        --profile) PROFILE=${2:-}; shift 2 ;;
        --bin) BIN=${2:-}; shift 2 ;;
        --publish) PUBLISH=true; shift ;;
        --no-e2e) E2E=false; shift ;;
        *) usage ;;
    esac
done
case $PROFILE in quick | full) ;; *) usage ;; esac
[ -n "$BIN" ] || usage
[ -x "$BIN/ccached-bench" ] || { echo "$PROG: no ccached-bench in $BIN (swift build -c release)" >&2; exit 1; }
[ -x "$BIN/ccached" ] || { echo "$PROG: no ccached in $BIN (swift build -c release)" >&2; exit 1; }

OUT=$ROOT/bench-results
mkdir -p "$OUT"

if pgrep -f swift-build >/dev/null 2>&1; then
    echo "$PROG: note: a swift build is running; timings taken now are noisy" >&2
fi

"$BIN/ccached-bench" run --profile "$PROFILE" --bin "$BIN" --json "$OUT/latest.jsonl" | tee "$OUT/latest.txt"

if $E2E; then
    # Quick: 3 runs (a few seconds); full: 9.
    runs=3
    [ "$PROFILE" = full ] && runs=9
    echo
    "$ROOT/scripts/bench-e2e.sh" --bin "$BIN" --runs "$runs" --json "$OUT/latest.jsonl" | tee -a "$OUT/latest.txt"
fi

echo
"$ROOT/scripts/bench-plot.sh" "$OUT/latest.jsonl" "$OUT/latency.png"
if $PUBLISH; then
    cp "$OUT/latency.png" "$ROOT/Docs/performance-latency.png"
    echo "$PROG: copied the plot to Docs/performance-latency.png"
fi
