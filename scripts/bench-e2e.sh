#!/usr/bin/env bash
# End-to-end figures for Docs/performance.md: the stock MIT tools against a
# throwaway KDC on 127.0.0.1 (scripts/testkdc.sh), with their tickets in ccached
# (KCM), through ccached-door (DOOR: what users run, as root only), Heimdal's kcm, sssd-kcm, a
# FILE cache and a KEYRING cache, in one run. The door runs in a private mount namespace with
# its own /run, as the peers do, and starts root's per-user daemon there. The
# two peers run in private mount namespaces (their socket and database paths are
# compiled in) from the tree scripts/bench-deps.sh unpacks, or from the host when
# installed; a missing one is skipped with a message. For each type and each run:
#
#   kinit alice                    (AS exchange, cache initialised and stored)
#   kvno svc1 … svc100             (fresh TGT: 100 TGS exchanges, 100 stores)
#   kvno svc1 … svc100             (again: all 100 found in the cache)
#   klist                          (101 tickets)
#   kdestroy
#
# and prints the median wall time of each step over the runs (types take turns run
# by run), with the lowest and highest, in milliseconds, and the end-to-end targets.
#
#   scripts/bench-e2e.sh --bin BINDIR [--peers DIR] [--runs N] [--json FILE] [--pin-cpu CPU|none]
#
# BINDIR holds ccached. --json appends one JSON line per (type, step). Unpinned by
# default, as users run; --pin-cpu CPU puts the tools, the KDC and every server on
# one CPU. Everything lives in a temporary directory that is removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}
SERVICES=100

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# ---- one measurement sequence (run as a sub-process, under `keyctl session` for KEYRING) ----
if [ "${1:-}" = --measure ]; then
    type=$1 && type=$2
    principals=()
    for ((i = 1; i <= SERVICES; i++)); do principals+=("svc$i/localhost"); done
    now() { echo "${EPOCHREALTIME/./}"; }
    ms() { echo $((($2 - $1) / 1000)).$(printf '%03d' $((($2 - $1) % 1000))); }
    kdestroy -q 2>/dev/null || true
    t0=$(now)
    printf 'pw-alice\n' | kinit alice >/dev/null
    t1=$(now)
    kvno -q "${principals[@]}" >/dev/null
    t2=$(now)
    kvno -q "${principals[@]}" >/dev/null
    t3=$(now)
    listing=$(klist)
    t4=$(now)
    kdestroy
    t5=$(now)
    tickets=$(grep -c '@CCACHED.TEST$' <<<"$listing" || true)
    [ "$tickets" -ge $((SERVICES + 1)) ] || {
        echo "$PROG: $type: klist listed $tickets tickets, expected $((SERVICES + 1))" >&2
        exit 1
    }
    echo "kinit=$(ms "$t0" "$t1") kvno_fresh=$(ms "$t1" "$t2") kvno_cached=$(ms "$t2" "$t3") klist=$(ms "$t3" "$t4") kdestroy=$(ms "$t4" "$t5")"
    exit 0
fi

BIN=
RUNS=5
JSON=
PIN=none
PEERS=$ROOT/.build/peers/root
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BIN=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --json) JSON=$2; shift 2 ;;
        --pin-cpu) PIN=$2; shift 2 ;;
        --peers) PEERS=$2; shift 2 ;;
        *) echo "usage: $PROG --bin BINDIR [--peers DIR] [--runs N] [--json FILE] [--pin-cpu CPU|none]" >&2; exit 2 ;;
    esac
done
[ -n "$BIN" ] && [ -x "$BIN/ccached" ] || die "no ccached in '${BIN:-}' (give --bin BINDIR)"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive number"
for tool in kinit kvno klist kdestroy keyctl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done

if [ "$PIN" = last ]; then PIN=$(($(nproc) - 1)); fi
if [ "$PIN" != none ]; then
    # This shell, and so the KDC, ccached and every tool started from it.
    taskset -cp "$PIN" $$ >/dev/null || die "cannot pin to CPU $PIN"
fi

TMP=$(mktemp -d /tmp/ccached-bench-e2e.XXXXXX)
DAEMON_PID=
PEER_PIDS=()
DOOR_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    if [ -n "$DOOR_PID" ]; then
        # The daemon the door started: the ccached in the door's mount namespace, by pid.
        local ns pid
        ns=$(readlink "/proc/$DOOR_PID/ns/mnt" 2>/dev/null || true)
        kill "$DOOR_PID" 2>/dev/null && wait "$DOOR_PID" 2>/dev/null || true
        for pid in $(pgrep -x ccached || true); do
            [ -n "$ns" ] && [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] && kill "$pid" 2>/dev/null
        done
    fi
    for pid in "${PEER_PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    "$ROOT/scripts/testkdc.sh" stop "$TMP/kdc" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "$PROG: starting a test KDC with $SERVICES services" >&2
"$ROOT/scripts/testkdc.sh" start "$TMP/kdc" --services "$SERVICES" >"$TMP/kdc.log" 2>&1 ||
    { cat "$TMP/kdc.log" >&2; die "the test KDC did not start"; }
# shellcheck disable=SC1091
. "$TMP/kdc/kdc.env"

SOCKET=$TMP/kcm/socket
"$BIN/ccached" --socket "$SOCKET" 2>"$TMP/ccached.log" &
DAEMON_PID=$!
for ((i = 0; i < 250; i++)); do
    [ -S "$SOCKET" ] && break
    sleep 0.02
done
[ -S "$SOCKET" ] || die "ccached did not create $SOCKET"
cat >"$TMP/kcm.conf" <<CONF
[libdefaults]
    kcm_socket = $SOCKET
CONF

# ---- the peers: each in a private mount namespace with a fresh /run (and /var for sssd) ----
# Prints why a peer cannot run, or nothing.
peer_refusal() {
    local binary=$1 package=$2
    [ "$(id -u)" -eq 0 ] || { echo "a private mount namespace (unshare -m) needs root"; return; }
    [ -x "$binary" ] || [ -x "$PEERS$binary" ] ||
        echo "$package is neither installed nor unpacked in $PEERS (run scripts/bench-deps.sh)"
}
# start_peer KIND: starts it under $TMP/KIND; the pid is the daemon's (unshare and sh exec).
start_peer() {
    local kind=$1 dir=$TMP/$1 binary overlay=
    mkdir -p "$dir/run" "$dir/var/lib/sss/"{db,secrets,pipes/private,pubconf,mc} "$dir/var/log/sssd"
    if [ "$kind" = HEIMDAL ]; then binary=/usr/sbin/kcm; else binary=/usr/libexec/sssd/sssd_kcm; fi
    [ -x "$binary" ] || overlay="mount -t overlay overlay -o lowerdir=$PEERS/usr:/usr /usr"
    local script="set -e; $overlay
mount --bind $dir/run /run"
    if [ "$kind" = HEIMDAL ]; then
        script+="
exec $binary"
    else
        printf '[sssd]\nservices = kcm\ndomains =\n\n[kcm]\nsocket_path = /run/.heim_org.h5l.kcm-socket\nresponder_idle_timeout = 0\n' \
            >"$dir/sssd.conf"
        chmod 600 "$dir/sssd.conf"
        script+="
mount --bind $dir/var /var
/usr/sbin/sssd -c $dir/sssd.conf --genconf-section=kcm --logger=stderr
exec $binary --uid 0 --gid 0 --logger=stderr"
    fi
    unshare -m --propagation private /bin/sh -c "$script" 2>>"$TMP/$kind.log" &
    PEER_PIDS+=($!)
    await_socket "$kind" "$kind"
}

# start_door: ccached-door on the standard path of a private /run under $TMP/DOOR; the clients
# reach it through that socket (kcm_socket), and it routes them (root: the per-user daemon).
start_door() {
    local dir=$TMP/DOOR
    mkdir -p "$dir/run"
    unshare -m --propagation private /bin/sh -c "set -e; mount --bind $dir/run /run
exec $BIN/ccached-door --ccached $BIN/ccached --log-level warning" 2>>"$TMP/DOOR.log" &
    DOOR_PID=$!
    await_socket DOOR ccached-door
}

# await_socket KIND NAME: waits up to 10 s for the KCM socket of the private /run under $TMP/KIND
# (NAME's log in $TMP/KIND.log if it never comes), then points $TMP/KIND.conf (kcm_socket) at it.
await_socket() {
    local kind=$1 name=$2 socket=$TMP/$1/run/.heim_org.h5l.kcm-socket i
    for ((i = 0; i < 500; i++)); do
        [ -S "$socket" ] && break
        sleep 0.02
    done
    [ -S "$socket" ] || { cat "$TMP/$kind.log" >&2; die "$name did not create its socket"; }
    printf '[libdefaults]\n    kcm_socket = %s\n' "$socket" >"$TMP/$kind.conf"
}

measure() {
    local type=$1
    # sssd-kcm accepts only cache names that start with the caller's uid: the same for all three.
    case $type in
        KCM)
            KRB5_CONFIG="$TMP/kcm.conf:$KRB5_REALM_CONF" KRB5CCNAME="KCM:$(id -u):e2e" "$0" --measure KCM ;;
        DOOR | HEIMDAL | SSSD)
            KRB5_CONFIG="$TMP/$type.conf:$KRB5_REALM_CONF" KRB5CCNAME="KCM:$(id -u):e2e" "$0" --measure "$type" ;;
        FILE)
            KRB5_CONFIG="$KRB5_REALM_CONF" KRB5CCNAME="FILE:$TMP/cc.file" "$0" --measure FILE ;;
        KEYRING)
            # A fresh session keyring per run, gone when the run ends.
            # keyctl announces the keyring it joined on standard error; keep everything else.
            { KRB5_CONFIG="$KRB5_REALM_CONF" KRB5CCNAME=KEYRING:session:e2e \
                keyctl session ccached-bench-e2e "$0" --measure KEYRING 2>&1 1>&3 3>&- |
                grep -v '^Joined session keyring' >&2 || true; } 3>&1 ;;
    esac
}

types=()
if [ "$(id -u)" -ne 0 ]; then
    echo "skipped DOOR: ccached-door runs as root" >&2
elif [ ! -x "$BIN/ccached-door" ]; then
    echo "skipped DOOR: no $BIN/ccached-door" >&2
else
    start_door
    types+=(DOOR)
fi
types+=(KCM)
for peer in HEIMDAL:/usr/sbin/kcm:heimdal-kcm SSSD:/usr/libexec/sssd/sssd_kcm:sssd-kcm; do
    IFS=: read -r kind binary package <<<"$peer"
    reason=$(peer_refusal "$binary" "$package")
    if [ -n "$reason" ]; then echo "skipped $kind: $reason" >&2; continue; fi
    start_peer "$kind"
    types+=("$kind")
done
types+=(FILE)
if keyctl session - true >/dev/null 2>&1; then types+=(KEYRING); else echo "skipped KEYRING: the kernel refuses a session keyring" >&2; fi

for type in "${types[@]}"; do
    measure "$type" >/dev/null # warm-up: page cache, KDC database
done
# Types take turns run by run, so that a slow moment of the machine falls on all of them.
for ((run = 1; run <= RUNS; run++)); do
    for type in "${types[@]}"; do
        echo "$type $(measure "$type")" >>"$TMP/times"
    done
done

python3 - "$TMP/times" "$RUNS" "$PIN" "${JSON:-}" <<'PY'
import json, statistics, sys
times, runs, pin, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
steps = ["kinit", "kvno_fresh", "kvno_cached", "klist", "kdestroy"]
titles = {"kinit": "kinit", "kvno_fresh": "kvno ×100, fresh TGT", "kvno_cached": "kvno ×100, cached",
          "klist": "klist (101 tickets)", "kdestroy": "kdestroy"}
samples = {}
for line in open(times):
    type_, *pairs = line.split()
    for pair in pairs:
        key, value = pair.split("=")
        samples.setdefault((type_, key), []).append(float(value))
names = {"DOOR": "ccached via the door", "KCM": "ccached direct", "HEIMDAL": "Heimdal kcm", "SSSD": "sssd-kcm"}
types = [t for t in ("DOOR", "KCM", "HEIMDAL", "SSSD", "FILE", "KEYRING") if (t, "kinit") in samples]
print(f"End-to-end with the MIT tools and a test KDC: median (low–high) of {runs} runs, ms"
      + (f" (all on CPU {pin})" if pin != "none" else " (unpinned)"))
print(f"{'step':<24}" + "".join(f"{names.get(t, t):>24}" for t in types))
lines = []
for step in steps:
    row = f"{titles[step]:<24}"
    for t in types:
        values = samples[(t, step)]
        median = statistics.median(values)
        row += f"{f'{median:.1f} ({min(values):.1f}–{max(values):.1f})':>24}"
        lines.append({"record": "e2e", "type": t, "step": step, "runs": len(values),
                      "median_ms": round(median, 3), "min_ms": min(values), "max_ms": max(values),
                      "pinned_cpu": None if pin == "none" else int(pin)})
    print(row)
def med(t, step):
    values = samples.get((t, step))
    return statistics.median(values) if values else None
if med("DOOR", "kinit") is not None:
    print("Through the door, medians: ÷ ccached direct" + (", ÷ Heimdal kcm" if med("HEIMDAL", "kinit") else ""))
    for step in steps:
        row = f"  {titles[step]:<24}{med('DOOR', step) / med('KCM', step):>6.2f}×"
        if med("HEIMDAL", step):
            row += f"{med('DOOR', step) / med('HEIMDAL', step):>8.2f}×"
        print(row)
print("End-to-end targets")
checks = []
if med("HEIMDAL", "kvno_cached") is not None:
    r = med("KCM", "kvno_cached") / med("HEIMDAL", "kvno_cached")
    checks.append(("kvno ×100 cached ≤ 0.9× Heimdal kcm", f"{r:.2f}×", "0.90×", r <= 0.9))
else:
    checks.append(("kvno ×100 cached ≤ 0.9× Heimdal kcm", "Heimdal kcm not run", "0.90×", None))
for name, step, limit in (("kvno ×100 cached through the door ≤ 1.2× Heimdal kcm", "kvno_cached", 1.2),
                          ("kinit through the door ≤ Heimdal kcm", "kinit", 1.0)):
    if med("DOOR", step) is not None and med("HEIMDAL", step) is not None:
        r = med("DOOR", step) / med("HEIMDAL", step)
        checks.append((name, f"{r:.2f}×", f"{limit:.2f}×", r <= limit))
    else:
        checks.append((name, "the door or Heimdal kcm not run", f"{limit:.2f}×", None))
r = med("KCM", "klist") / med("FILE", "klist")
checks.append(("klist of 101 tickets ≤ FILE", f"{r:.2f}×", "1.00×", r <= 1.0))
for name, measured, limit, holds in checks:
    verdict = "n/a" if holds is None else ("holds" if holds else "MISSED")
    print(f"  [{verdict:<6}] {name}: {measured} (limit {limit})")
    lines.append({"record": "target", "name": "e2e: " + name, "measured": measured, "limit": limit, "holds": holds})
if out:
    with open(out, "a") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
PY
