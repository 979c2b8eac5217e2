#!/usr/bin/env bash
# Renewal beside the request path (issue 13), part of `make bench`:
#
#   scripts/bench-renewal.sh --bin DIR [--bench FILE] [--requests N] [--daemons N]
#
# 1. Request latency while a renewal talks to a KDC that does not answer: a test KDC is stopped
#    with SIGSTOP (a KDC that takes ~27 s to time out, the slowest a KDC can be), `ccachectl renew`
#    runs against it, and meanwhile one client sends N GET_DEFAULT_CACHE requests on one connection.
#    The same N requests are timed before, with nothing renewing. Prints p50/p99 of both and their
#    ratio: a renewal in progress must not delay other requests.
# 2. Idle private memory per daemon with renewal on: N daemons each holding a renewable TGT, after
#    renewal's worker has run, Private_Dirty from /proc/PID/smaps_rollup (several daemons, so the
#    shared runtime pages are not charged to one). Target: at most 2 MiB each.
# 3. How soon a watcher hears of a change: `ccachectl watch --json` runs while the client stores
#    20 new service tickets (kvno svc1/localhost … svc20/localhost, 0.1 s apart), and each event's
#    arrival is timed against the moment its kvno returned.
# DIR holds ccached and ccachectl (a release build); FILE is ccached-bench, which times the requests
# (default .build/bench/release/ccached-bench, built from Benchmarks/). Nothing outside a temporary
# directory changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=
bench=$(dirname "$here")/.build/bench/release/ccached-bench
requests=5000
daemons=6
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --bench) bench=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --daemons) daemons=$2; shift 2 ;;
        *) echo "usage: $0 --bin DIR [--bench FILE] [--requests N] [--daemons N]" >&2; exit 2 ;;
    esac
done
[ -x "$bin/ccached" ] && [ -x "$bin/ccachectl" ] || { echo "bench-renewal: no ccached/ccachectl in '$bin'" >&2; exit 2; }
[ -x "$bench" ] || { echo "bench-renewal: no $bench (make bench builds it from Benchmarks/)" >&2; exit 2; }

work=$(mktemp -d /tmp/ccached-bench-renewal.XXXXXX)
pids=()
cleanup() {
    [ -f "$work/kdc/kdc.env" ] && kill -CONT "$(sed -n 's/^KDC_PID=//p' "$work/kdc/kdc.env")" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    "$here/testkdc.sh" stop "$work/kdc" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
"$here/testkdc.sh" start "$work/kdc" --services 20 >/dev/null
# shellcheck disable=SC1091
. "$work/kdc/kdc.env"

# One daemon's environment: its socket and the realm's krb5.conf, nothing of the host's.
start_daemon() {
    local name=$1
    mkdir -p "$work/$name" && chmod 700 "$work/$name"
    printf '[libdefaults]\n    default_ccache_name = KCM:\n    kcm_socket = %s\n' "$work/$name/kcm.sock" >"$work/$name/krb5.conf"
    KRB5_CONFIG="$work/$name/krb5.conf:$KRB5_REALM_CONF" "$bin/ccached" --socket "$work/$name/kcm.sock" \
        --idle-timeout 0 --log-level warning 2>>"$work/$name/log" &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$work/$name/kcm.sock" ] && return 0; sleep 0.05; done
    echo "bench-renewal: ccached did not start" >&2
    exit 1
}
in_daemon() {
    local name=$1; shift
    env KRB5_CONFIG="$work/$name/krb5.conf:$KRB5_REALM_CONF" CCACHED_SOCKET="$work/$name/kcm.sock" KRB5CCNAME=KCM: "$@"
}

latency() {
    "$bench" latency --socket "$1" --requests "$requests"
}

start_daemon r
echo pw-alice | in_daemon r kinit -l 10m -r 1h alice >/dev/null
read -r idle50 idle99 < <(latency "$work/r/kcm.sock")
kill -STOP "$KDC_PID"
in_daemon r "$bin/ccachectl" renew >/dev/null 2>&1 &
renewing=$!
sleep 0.5
read -r busy50 busy99 < <(latency "$work/r/kcm.sock")
still=no
kill -0 "$renewing" 2>/dev/null && still=yes
kill -CONT "$KDC_PID"
wait "$renewing" || true
echo "== renewal in progress against a KDC that does not answer ($requests GET_DEFAULT_CACHE, one connection)"
printf '   idle:               p50 %8s us   p99 %8s us\n' "$idle50" "$idle99"
printf '   during the renewal: p50 %8s us   p99 %8s us   (renewal still waiting on the KDC at the end: %s)\n' \
    "$busy50" "$busy99" "$still"
if [ "$still" != yes ]; then
    echo "bench-renewal: the renewal ended before the timed requests did, so they did not run beside it" >&2
    exit 1
fi
python3 -c "
i50,i99,b50,b99=$idle50,$idle99,$busy50,$busy99
print(f'   ratio during/idle:  p50 {b50/i50:.2f}x   p99 {b99/i99:.2f}x   target: p99 within noise of idle (<= 2x): ' + ('holds' if b99 <= 2*i99 else 'MISSED'))
"

echo "== how soon ccachectl watch hears of a change (20 × kvno, one event each)"
python3 - "$bin/ccachectl" "$work/r/kcm.sock" "$work/r/krb5.conf:$KRB5_REALM_CONF" <<'PY'
import os, subprocess, sys, threading, time
ctl, sock, conf = sys.argv[1:4]
env = dict(os.environ, CCACHED_SOCKET=sock, KRB5_CONFIG=conf, KRB5CCNAME="KCM:")
watch = subprocess.Popen([ctl, "watch", "--json"], env=env, stdout=subprocess.PIPE, text=True, bufsize=1)
arrivals = []
def read():
    for line in watch.stdout:
        arrivals.append(time.monotonic())
threading.Thread(target=read, daemon=True).start()
time.sleep(0.5)
done = []
for i in range(1, 21):
    subprocess.run(["kvno", "-q", f"svc{i}/localhost"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done.append(time.monotonic())
    time.sleep(0.1)
time.sleep(0.5)
watch.terminate()
# Each kvno stores one new ticket, one event; pair each kvno with the first event after it.
lags = []
for finished in done:
    later = [a for a in arrivals if a >= finished - 0.05]
    if later:
        lags.append(max(0.0, later[0] - finished) * 1000)
print(f"   events: {len(arrivals)} for {len(done)} kvno; lag after kvno returned: "
      f"median {sorted(lags)[len(lags)//2]:.1f} ms, max {max(lags):.1f} ms; target within 1 s: "
      + ("holds" if lags and max(lags) < 1000 else "MISSED"))
PY

for n in $(seq "$daemons"); do
    start_daemon "m$n"
    echo pw-alice | in_daemon "m$n" kinit -l 10m -r 1h alice >/dev/null
    in_daemon "m$n" "$bin/ccachectl" renew >/dev/null 2>&1 || true
done
sleep 1
echo "== idle private memory with renewal on ($daemons daemons, each renewed once)"
worst=0
for pid in "${pids[@]:1}"; do
    kib=$(awk '/^Private_Dirty:/ {print $2}' "/proc/$pid/smaps_rollup")
    printf '   pid %-8s Private_Dirty %6s KiB\n' "$pid" "$kib"
    [ "$kib" -gt "$worst" ] && worst=$kib
done
printf '   largest %s KiB; target <= 2048 KiB: %s\n' "$worst" "$([ "$worst" -le 2048 ] && echo holds || echo MISSED)"
