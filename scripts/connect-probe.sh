#!/usr/bin/env bash
# The connection cost of ccached builds side by side: for each BINDIR (a directory holding
# ccached), start `ccached --socket` in a temporary directory and run `ccached-bench connect`
# (connect, REQUESTS GET_DEFAULT_CACHE, close; 2,000 times) against it; the builds take turns for
# ROUNDS rounds, unpinned and then with client and daemon on one CPU (--pin CPU). With
# `perf stat` available, also the daemon's CPU time and context switches per connection. With
# --heimdal DIR (as root), Heimdal's kcm takes its turn too: from the host if installed, else from
# the tree scripts/bench-deps.sh unpacked in DIR, in a private mount namespace with its own /run
# (its socket path is compiled in), as scripts/bench-e2e.sh runs it. --peers DIR: Heimdal's kcm
# and sssd-kcm (200 connections per cell: it takes milliseconds each). As root, each BINDIR that
# holds ccached-door also takes a turn through the door (door:BINDIR): the door on the standard
# path of a private /run, the client reaching it there and being handed to root's per-user daemon,
# which a first connection (not timed) starts. That row's counters are the door's and its
# daemon's together.
#
#   scripts/connect-probe.sh [--bench FILE] [--rounds N] [--requests N] [--pin CPU]
#                            [--heimdal DIR | --peers DIR] BINDIR [BINDIR ...]
#
# FILE is the ccached-bench executable (default .build/bench/release/ccached-bench, where make
# bench builds it from Benchmarks/).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
REQUESTS=1
PIN=$(($(nproc) - 1))
HEIMDAL=
SSSD=
BENCH=$ROOT/.build/bench/release/ccached-bench
USAGE="usage: $0 [--bench FILE] [--rounds N] [--requests N] [--pin CPU] [--heimdal DIR | --peers DIR] BINDIR [BINDIR ...]"
while [ $# -gt 0 ]; do
    case $1 in
        --heimdal) HEIMDAL=$2; shift 2 ;;
        --peers) HEIMDAL=$2; SSSD=$2; shift 2 ;;
        --bench) BENCH=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --requests) REQUESTS=$2; shift 2 ;;
        --pin) PIN=$2; shift 2 ;;
        -*) echo "$USAGE" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "$USAGE" >&2; exit 2; }
[ -x "$BENCH" ] || { echo "connect-probe.sh: no $BENCH (make bench builds it from Benchmarks/)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# start_server BINDIR|heimdal|sssd-kcm PREFIX...: starts the server (PREFIX, e.g. taskset -c 1, in
# front); sets SOCKET and DAEMON (the server's own pid: unshare and sh exec into the peer).
start_server() {
    local what=$1; shift
    if [ "${what#door:}" != "$what" ]; then
        local bin=${what#door:} dir=$WORK/door
        mkdir -p "$dir/run"
        "$@" unshare -m --propagation private /bin/sh -c \
            "set -e; mount --bind $dir/run /run; exec $bin/ccached-door --ccached $bin/ccached --log-level warning" \
            2>/dev/null &
        DAEMON=$!
        SOCKET=$dir/run/.heim_org.h5l.kcm-socket
    elif [ "$what" = heimdal ]; then
        local dir=$WORK/heimdal overlay=
        mkdir -p "$dir/run"
        [ -x /usr/sbin/kcm ] || overlay="mount -t overlay overlay -o lowerdir=$HEIMDAL/usr:/usr /usr;"
        "$@" unshare -m --propagation private /bin/sh -c \
            "set -e; $overlay mount --bind $dir/run /run; exec /usr/sbin/kcm" 2>/dev/null &
        DAEMON=$!
        SOCKET=$dir/run/.heim_org.h5l.kcm-socket
    elif [ "$what" = sssd-kcm ]; then
        # As scripts/bench-e2e.sh runs it: its own /run and /var, root's uid, no domains.
        local dir=$WORK/sssd overlay=
        mkdir -p "$dir/run" "$dir/var/lib/sss/"{db,secrets,pipes/private,pubconf,mc} "$dir/var/log/sssd"
        [ -x /usr/libexec/sssd/sssd_kcm ] || overlay="mount -t overlay overlay -o lowerdir=$SSSD/usr:/usr /usr;"
        printf '[sssd]\nservices = kcm\ndomains =\n\n[kcm]\nsocket_path = /run/.heim_org.h5l.kcm-socket\nresponder_idle_timeout = 0\n' \
            >"$dir/sssd.conf"
        chmod 600 "$dir/sssd.conf"
        "$@" unshare -m --propagation private /bin/sh -c \
            "set -e; $overlay mount --bind $dir/run /run; mount --bind $dir/var /var
/usr/sbin/sssd -c $dir/sssd.conf --genconf-section=kcm --logger=stderr
exec /usr/libexec/sssd/sssd_kcm --uid 0 --gid 0 --logger=stderr" 2>/dev/null &
        DAEMON=$!
        SOCKET=$dir/run/.heim_org.h5l.kcm-socket
    else
        SOCKET=$WORK/kcm.sock
        "$@" "$what/ccached" --socket "$SOCKET" --idle-timeout 0 --log-target stderr 2>/dev/null &
        DAEMON=$!
    fi
    for _ in $(seq 300); do [ -S "$SOCKET" ] && break; sleep 0.01; done
    [ -S "$SOCKET" ] || { echo "connect-probe.sh: $what did not create its socket" >&2; exit 1; }
}

# probe BINDIR|heimdal PREFIX...: one server, one measurement; PREFIX runs both.
probe() {
    local bin=$1; shift
    start_server "$bin" "$@"
    local socket=$SOCKET daemon=$DAEMON
    local counters=""
    if command -v perf >/dev/null; then
        perf stat -x, -e task-clock,context-switches -p "$daemon" -o "$WORK/stat" &
        local perfpid=$!
        sleep 0.1
    fi
    if [ "${bin#door:}" != "$bin" ]; then
        # The door starts the daemon on the first connection: not part of the figures.
        "$@" "$BENCH" connect "$socket" --connections 20 --requests 1 >/dev/null
    fi
    local figures connections=2000
    [ "$bin" = sssd-kcm ] && connections=200
    figures=$("$@" "$BENCH" connect "$socket" --connections "$connections" --requests "$REQUESTS")
    if [ -n "${perfpid:-}" ]; then
        kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
        counters=$(awk -F, '/task-clock/ {cpu=$1} /context-switches/ {cs=$1}
            END {printf "daemon CPU %.1f µs, %.1f switches per connection", cpu*1000/n, cs/n}' n="$connections" "$WORK/stat")
        unset perfpid
    fi
    local ns
    ns=$(readlink "/proc/$daemon/ns/mnt" 2>/dev/null || true)
    kill "$daemon"; wait "$daemon" 2>/dev/null || true
    if [ "${bin#door:}" != "$bin" ]; then
        # The daemon the door started: the ccached in the door's mount namespace, by pid.
        for pid in $(pgrep -x ccached || true); do
            [ -n "$ns" ] && [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] && kill "$pid" 2>/dev/null
        done
        sleep 0.2
        rm -rf "$WORK/door"
    fi
    rm -f "$socket"
    [ "$bin" = sssd-kcm ] && rm -rf "$WORK/sssd"
    sleep 0.2
    echo "$figures   $counters"
}

SERVERS=()
for bin in "$@"; do
    # Absolute: the door runs from another directory's view (a private /run) and takes absolute paths.
    bin=$(cd "$bin" && pwd) || exit 2
    SERVERS+=("$bin")
    if [ -x "$bin/ccached-door" ]; then
        if [ "$(id -u)" -eq 0 ]; then
            SERVERS+=("door:$bin")
        else
            echo "connect-probe.sh: the door skipped: it runs as root" >&2
        fi
    fi
done
if [ -n "$HEIMDAL" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "connect-probe.sh: Heimdal kcm skipped: a private mount namespace needs root" >&2
    elif [ ! -x /usr/sbin/kcm ] && [ ! -x "$HEIMDAL/usr/sbin/kcm" ]; then
        echo "connect-probe.sh: Heimdal kcm skipped: neither installed nor unpacked in $HEIMDAL (scripts/bench-deps.sh)" >&2
    else
        SERVERS+=(heimdal)
    fi
fi
if [ -n "$SSSD" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "connect-probe.sh: sssd-kcm skipped: a private mount namespace needs root" >&2
    elif [ ! -x /usr/libexec/sssd/sssd_kcm ] && [ ! -x "$SSSD/usr/libexec/sssd/sssd_kcm" ]; then
        echo "connect-probe.sh: sssd-kcm skipped: neither installed nor unpacked in $SSSD (scripts/bench-deps.sh)" >&2
    else
        SERVERS+=(sssd-kcm)
    fi
fi
echo "connect + $REQUESTS request(s) + close, 2,000 connections per cell (sssd-kcm 200); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for placement in unpinned pinned; do
    for round in $(seq "$ROUNDS"); do
        for bin in "${SERVERS[@]}"; do
            if [ "$placement" = pinned ]; then prefix=(taskset -c "$PIN"); else prefix=(env); fi
            row=$(probe "$bin" "${prefix[@]}")
            printf '%-9s round %d  %-40s %s\n' "$placement" "$round" "$bin" "$row"
            printf '%s %s %s\n' "$placement" "$bin" "$(awk '{print $2}' <<<"$row")" >>"$WORK/p50"
        done
    done
done
# The median of the rounds' p50 per server, and the door's ratios (the door's row against the
# direct row of the same build, and against Heimdal's kcm).
python3 - "$WORK/p50" <<'PY'
import statistics, sys
p50 = {}
for line in open(sys.argv[1]):
    placement, server, value = line.split()
    p50.setdefault((placement, server), []).append(float(value))
print("median of the rounds' p50 (µs; lowest–highest round):")
for (placement, server), values in p50.items():
    line = f"  {placement:<9} {server:<48} {statistics.median(values):8.1f}  ({min(values):.1f}–{max(values):.1f})"
    if server.startswith("door:"):
        door = statistics.median(values)
        direct = p50.get((placement, server[5:]))
        heimdal = p50.get((placement, "heimdal"))
        sssd = p50.get((placement, "sssd-kcm"))
        if direct: line += f"   door ÷ direct {door / statistics.median(direct):.2f}×"
        if heimdal: line += f", door ÷ Heimdal kcm {door / statistics.median(heimdal):.2f}×"
        if sssd: line += f", door ÷ sssd-kcm {door / statistics.median(sssd):.3f}×"
    print(line)
PY
