#!/usr/bin/env bash
# Plot retrieve p50 latency against the number of stored credentials, one line per
# cache type plus the raw socket floor, log-log, from ccached-bench's JSON lines.
#
#   scripts/bench-plot.sh RESULTS.jsonl OUTPUT.png
#
# python3 (standard library only) turns the JSON lines into gnuplot data; gnuplot
# (Debian's gnuplot-nox, installed by scripts/install-deps.sh) draws the PNG.
set -euo pipefail

PROG=${0##*/}
[ $# -eq 2 ] || { echo "usage: $PROG RESULTS.jsonl OUTPUT.png" >&2; exit 2; }
RESULTS=$1
OUTPUT=$2
[ -r "$RESULTS" ] || { echo "$PROG: cannot read $RESULTS" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "$PROG: gnuplot is not installed (scripts/install-deps.sh)" >&2; exit 1; }

DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT

# One file per cache type: "N p50_us" rows, sorted by N; plus the floor and a title line.
python3 - "$RESULTS" "$DATA" <<'PY'
import json, sys
results, out = sys.argv[1], sys.argv[2]
series, floor, machine = {}, None, {}
with open(results) as lines:
    for line in lines:
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        kind = record.get("record")
        if kind == "phase" and record.get("phase") == "retrieve" and record.get("p50_us") is not None:
            series.setdefault(record["type"], []).append((record["n"], record["p50_us"]))
        elif kind == "floor":
            floor = record.get("p50_us")
        elif kind == "machine":
            machine = record
for name in ("KCM", "FILE", "KEYRING", "MEMORY"):
    with open(f"{out}/{name}.dat", "w") as data:
        for n, p50 in sorted(series.get(name, [])):
            data.write(f"{n} {p50}\n")
ns = sorted({n for points in series.values() for n, _ in points})
with open(f"{out}/floor.dat", "w") as data:
    if floor is not None and ns:
        data.write(f"{ns[0]} {floor}\n{ns[-1]} {floor}\n")
with open(f"{out}/title.txt", "w") as title:
    title.write("krb5_cc_retrieve_cred p50 vs stored credentials ({} CPUs, {}, profile {})".format(
        machine.get("processors", "?"), machine.get("cpu_model", "?"), machine.get("profile", "?")))
PY

gnuplot <<GP
set terminal pngcairo size 1000,640 font "DejaVu Sans,11"
set output "$OUTPUT"
set title "$(cat "$DATA/title.txt")" noenhanced
set logscale xy
set xlabel "credentials in the cache (N)"
set ylabel "p50 latency per retrieve (µs)"
set format y "%g"
set format x "%g"
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set key top left
set xrange [*:*]
plot "$DATA/KCM.dat" using 1:2 with linespoints lw 2 pt 7 title "KCM (ccached)", \
     "$DATA/FILE.dat" using 1:2 with linespoints lw 2 pt 5 title "FILE", \
     "$DATA/KEYRING.dat" using 1:2 with linespoints lw 2 pt 9 title "KEYRING", \
     "$DATA/MEMORY.dat" using 1:2 with linespoints lw 2 pt 11 title "MEMORY (in-process)", \
     "$DATA/floor.dat" using 1:2 with lines dt 2 lw 2 lc rgb "#555555" title "floor: raw Unix-socket round trip"
GP
echo "$PROG: wrote $OUTPUT"
