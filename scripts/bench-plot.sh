#!/usr/bin/env bash
# Plot retrieve p50 latency against the number of stored credentials, one line per
# cache type (ccached, Heimdal kcm, sssd-kcm, the replay bound, FILE, KEYRING, MEMORY)
# with the rounds' range as bars, plus the raw socket floor, log-log, from
# ccached-bench's JSON lines.
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

# One file per cache type: "N median low high" rows (median of the round p50s and the
# lowest and highest round), sorted by N; plus the floor and a title line.
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
        if kind == "cell" and record.get("phase") == "retrieve" and record.get("median_p50_us") is not None:
            series.setdefault(record["type"], []).append(
                (record["n"], record["median_p50_us"], record["low_p50_us"], record["high_p50_us"]))
        elif kind == "floor":
            floor = record.get("p50_us")
        elif kind == "machine":
            machine = record
for name in ("KCM", "HEIMDAL", "SSSD", "BOUND", "FILE", "KEYRING", "MEMORY"):
    with open(f"{out}/{name}.dat", "w") as data:
        for n, median, low, high in sorted(series.get(name, [])):
            data.write(f"{n} {median} {low} {high}\n")
        if not series.get(name):
            data.write("1 NaN NaN NaN\n")  # an empty series still plots (as nothing)
ns = sorted({point[0] for points in series.values() for point in points})
with open(f"{out}/floor.dat", "w") as data:
    if floor is not None and ns:
        data.write(f"{ns[0]} {floor}\n{ns[-1]} {floor}\n")
    else:
        data.write("1 NaN\n")
pinned = machine.get("pinned_cpu")
with open(f"{out}/title.txt", "w") as title:
    title.write("krb5_cc_retrieve_cred p50 vs stored credentials, {} ({} CPUs, {}, profile {}, {} rounds)".format(
        "unpinned" if pinned is None else f"pinned to CPU {pinned}",
        machine.get("processors", "?"), machine.get("cpu_model", "?"), machine.get("profile", "?"),
        machine.get("rounds", 1)))
PY

gnuplot <<GP
set terminal pngcairo size 1100,680 font "DejaVu Sans,11"
set output "$OUTPUT"
set title "$(cat "$DATA/title.txt")" noenhanced
set logscale xy
set xlabel "credentials in the cache (N)"
set ylabel "p50 latency per retrieve (µs); bars: lowest–highest round"
set format y "%g"
set format x "%g"
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set key outside right top
set xrange [*:*]
plot "$DATA/KCM.dat" using 1:2:3:4 with yerrorlines lw 2 pt 7 title "KCM (ccached)", \
     "$DATA/HEIMDAL.dat" using 1:2:3:4 with yerrorlines lw 2 pt 13 title "Heimdal kcm", \
     "$DATA/SSSD.dat" using 1:2:3:4 with yerrorlines lw 2 pt 15 title "sssd-kcm", \
     "$DATA/BOUND.dat" using 1:2:3:4 with yerrorlines lw 1 dt 3 pt 1 title "bound (replay)", \
     "$DATA/FILE.dat" using 1:2:3:4 with yerrorlines lw 2 pt 5 title "FILE", \
     "$DATA/KEYRING.dat" using 1:2:3:4 with yerrorlines lw 2 pt 9 title "KEYRING", \
     "$DATA/MEMORY.dat" using 1:2:3:4 with yerrorlines lw 2 pt 11 title "MEMORY (in-process)", \
     "$DATA/floor.dat" using 1:2 with lines dt 2 lw 2 lc rgb "#555555" title "floor: raw socket round trip"
GP
echo "$PROG: wrote $OUTPUT"
