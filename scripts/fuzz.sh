#!/usr/bin/env bash
# `make fuzz`: run the libFuzzer target (Fuzz/, built with -sanitize=fuzzer,address) for a while and
# fail if it found anything.
#
#   scripts/fuzz.sh --bin PATH --seconds N [--out DIR] [-- extra libFuzzer flags]
#
# The committed seeds (Fuzz/corpus/) are read, never written: what the run learns goes to
# DIR/corpus-work (kept between runs, so later runs start further on) and crashing inputs to
# DIR/artifacts. DIR defaults to .build/fuzz, so `make clean` removes both.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}

usage() {
    echo "usage: $PROG --bin PATH --seconds N [--out DIR] [-- libFuzzer flags]" >&2
    exit 2
}

BIN=
SECONDS_TO_RUN=
OUT=$ROOT/.build/fuzz
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BIN=${2:?}; shift 2 ;;
        --seconds) SECONDS_TO_RUN=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
[ -n "$BIN" ] && [ -n "$SECONDS_TO_RUN" ] || usage
[ -x "$BIN" ] || { echo "$PROG: no fuzz target at $BIN (make fuzz builds it)" >&2; exit 2; }

WORK=$OUT/corpus-work
ARTIFACTS=$OUT/artifacts
mkdir -p "$WORK" "$ARTIFACTS"
STARTED=$OUT/.run-started
touch "$STARTED"

# SWIFT_BACKTRACE: Swift's own crash backtracer would take the crash before libFuzzer could save
# the input (and was seen to hang doing so); libFuzzer and ASan print the stack themselves.
# SWIFT_DETERMINISTIC_HASHING: dictionary order and the store's server index depend on Swift's
# per-process hash seed; a fixed seed makes a saved input replay the same way.
# Leak detection stays on (libFuzzer's default with ASan): every input gets a store of its own, so
# anything still allocated after it (a retain cycle in the store, say) is a finding. The Swift
# runtime's own caches were not reported as leaks in the runs measured here; a planted leak was.
export SWIFT_BACKTRACE=enable=no
export SWIFT_DETERMINISTIC_HASHING=1

FLAGS=(
    -max_total_time="$SECONDS_TO_RUN"
    -timeout=10
    -rss_limit_mb=2048
    # A 64 KiB request and a little more: room for the oversized path under the 64 KiB limit.
    -max_len=69632
    -print_final_stats=1
    -artifact_prefix="$ARTIFACTS/"
)

echo "$PROG: fuzzing for $SECONDS_TO_RUN s; seeds $ROOT/Fuzz/corpus, new inputs $WORK, crashes $ARTIFACTS"
status=0
"$BIN" "${FLAGS[@]}" "$@" "$WORK" "$ROOT/Fuzz/corpus" || status=$?

if [ "$status" -ne 0 ]; then
    echo
    echo "$PROG: the fuzz target failed (exit status $status). Inputs it saved in this run:"
    find "$ARTIFACTS" -type f -newer "$STARTED" -printf '    %p\n'
    echo "Replay one (CCACHED_FUZZ_TRACE=1 prints each frame's outcome; xxd shows its bytes):"
    echo "    SWIFT_BACKTRACE=enable=no SWIFT_DETERMINISTIC_HASHING=1 CCACHED_FUZZ_TRACE=1 $BIN FILE"
    echo "Then turn it into a unit test (Tests/KCMTests or Tests/CCacheDaemonTests) before fixing it."
    exit 1
fi
echo "$PROG: no crash in $SECONDS_TO_RUN s (stat::number_of_executed_units above is the number of inputs run)"
