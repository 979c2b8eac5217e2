#!/usr/bin/env bash
# `make bench` / `make bench-full`: run ccached-bench (ccached beside Heimdal's kcm,
# sssd-kcm, the replay bound, FILE, KEYRING, MEMORY and a raw Unix-socket round
# trip, through libkrb5) unpinned, then again pinned to one CPU (the floor), the
# end-to-end figures with the MIT tools (scripts/bench-e2e.sh), and plot retrieve
# latency against N.
#
#   scripts/bench.sh --profile quick|full --bin BINDIR [--bench FILE] [--peers DIR]
#                    [--rounds R] [--publish] [--no-e2e] [--no-pinned]
#
# BINDIR is the release build's bin directory (ccached; ccachectl too when it is
# built). FILE is the ccached-bench executable, built from the Benchmarks/ package
# (default: .build/bench/release/ccached-bench, where make bench builds it). DIR is
# where scripts/bench-deps.sh unpacked the peers
# (default .build/peers/root); a peer that is missing is skipped with a message.
# Results go to bench-results/ (not committed):
#   latest.jsonl / latest.txt                 unpinned: JSON lines (e2e appended), table
#   latest-pinned.jsonl / latest-pinned.txt   everything on one CPU
#   latency.png, latency-pinned.png           retrieve p50 vs N, log-log, per type
# --publish also copies the plots to Docs/performance-latency*.png for the docs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}

usage() {
    echo "usage: $PROG --profile quick|full --bin BINDIR [--bench FILE] [--peers DIR] [--rounds R] [--publish] [--no-e2e] [--no-pinned]" >&2
    exit 2
}

PROFILE=quick
BIN=
BENCH=$ROOT/.build/bench/release/ccached-bench
PEERS=$ROOT/.build/peers/root
ROUNDS=3
PUBLISH=false
E2E=true
PINNED=true
while [ $# -gt 0 ]; do
    case $1 in
        --profile) PROFILE=${2:-}; shift 2 ;;
        --bin) BIN=${2:-}; shift 2 ;;
        --bench) BENCH=${2:-}; shift 2 ;;
        --peers) PEERS=${2:-}; shift 2 ;;
        --rounds) ROUNDS=${2:-}; shift 2 ;;
        --publish) PUBLISH=true; shift ;;
        --no-e2e) E2E=false; shift ;;
        --no-pinned) PINNED=false; shift ;;
        *) usage ;;
    esac
done
case $PROFILE in quick | full) ;; *) usage ;; esac
[ -n "$BIN" ] || usage
[ -x "$BENCH" ] || { echo "$PROG: no $BENCH (make bench builds it from Benchmarks/)" >&2; exit 1; }
[ -x "$BIN/ccached" ] || { echo "$PROG: no ccached in $BIN (swift build -c release)" >&2; exit 1; }

OUT=$ROOT/bench-results
mkdir -p "$OUT"

if pgrep -f swift-build >/dev/null 2>&1; then
    echo "$PROG: note: a swift build is running; timings taken now are noisy" >&2
fi

echo "== unpinned (as users run) =="
"$BENCH" run --profile "$PROFILE" --bin "$BIN" --peers "$PEERS" --rounds "$ROUNDS" \
    --json "$OUT/latest.jsonl" | tee "$OUT/latest.txt"

if $E2E; then
    # Quick: 3 runs (a minute, sssd-kcm being slow); full: 9.
    runs=3
    [ "$PROFILE" = full ] && runs=9
    echo
    "$ROOT/scripts/bench-e2e.sh" --bin "$BIN" --peers "$PEERS" --runs "$runs" --pin-cpu none \
        --json "$OUT/latest.jsonl" | tee -a "$OUT/latest.txt"
fi

if $PINNED; then
    echo
    echo "== pinned: client, servers and echo on one CPU (the floor: no cross-CPU wake-ups) =="
    # Latencies only: the concurrency measurement uses every CPU in both profiles anyway.
    "$BENCH" run --profile "$PROFILE" --bin "$BIN" --peers "$PEERS" --rounds "$ROUNDS" \
        --pin-cpu last --no-concurrency --json "$OUT/latest-pinned.jsonl" | tee "$OUT/latest-pinned.txt"
fi

echo
"$ROOT/scripts/bench-plot.sh" "$OUT/latest.jsonl" "$OUT/latency.png"
$PINNED && "$ROOT/scripts/bench-plot.sh" "$OUT/latest-pinned.jsonl" "$OUT/latency-pinned.png"
if $PUBLISH; then
    cp "$OUT/latency.png" "$ROOT/Docs/performance-latency.png"
    $PINNED && cp "$OUT/latency-pinned.png" "$ROOT/Docs/performance-latency-pinned.png"
    echo "$PROG: copied the plots to Docs/"
fi
