#!/usr/bin/env bash
# The kernel as the router, measured (issue 21, item 2): connect + one KCM NOOP + close through
# (a) ccached-door, (b) the BPF rewrite of kcm-route, (c) directly to the daemon, in one run,
# alternating rounds; and the program's cost on a connect it does not rewrite.
#
#   contrib/bpf/bench-kernel-route.sh [--bin DIR] [--bench FILE] [--rounds N] [--connects N]
#
# Root only. As scripts/bench-door.sh: a private mount namespace with a temporary /run, a door
# started there, `ccached-bench door` as the client. The benchmark's shell moves into a cgroup of
# its own (/sys/fs/cgroup[/unified]/ccached-kernel-route-bench.PID), and kcm-route is attached
# there only, never to the host's root cgroup. Each round runs the probe three times:
#   plain  no program attached:            "direct" and "door" are (c) and (a)
#   miss   program attached, no route:     "door" is (a) plus the program's miss
#   hit    program attached, a route to the daemon for this shell's (cgroup, uid, namespace, root):
#          "door" is (b); "direct" there is (c) plus the program's no-match (another path)
# and, with MIT's tools and a test KDC (scripts/testkdc.sh), `kvno` of 100 cached services (warm)
# with the client's default KCM path (/var/run/...: MIT's default) through the door, through the
# kernel route, and directly (kcm_socket = the daemon's socket). Prints one line per round and the
# medians of the rounds with min–max; ratios are taken within one probe (same moment), then medianed.
# Last, root's daemon is stopped with a route in place, then without: a connect + NOOP to the
# door's path fails with the route (the kernel has no way back to the door) and is answered by a
# daemon the door starts without it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=$top/.build/release
bench=$top/.build/bench/release/ccached-bench
rounds=5
connects=1000
kvno=yes
while [ $# -gt 0 ]; do
    case $1 in
        --no-kvno) kvno=no; shift ;;
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --bench) bench=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --connects) connects=$2; shift 2 ;;
        *) echo "usage: $0 [--bin DIR] [--bench FILE] [--rounds N] [--connects N]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-kernel-route: needs root; not run" >&2; exit 1; }
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "bench-kernel-route: $bin/$program is missing" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "bench-kernel-route: $bench is missing (make bench-build builds it from Benchmarks/)" >&2; exit 1; }
if [ -z "${CCACHED_KROUTE_BENCH_INSIDE:-}" ]; then
    exec unshare --mount --propagation private env CCACHED_KROUTE_BENCH_INSIDE=1 "$0" --bin "$bin" \
        --bench "$bench" --rounds "$rounds" --connects "$connects" $([ $kvno = no ] && echo --no-kvno)
fi
command -v kvno >/dev/null || kvno=no

T=$(mktemp -d /tmp/ccached-kroute-bench.XXXXXX)
make -s -C "$here" OUT="$T" >/dev/null
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then unified=/sys/fs/cgroup; else unified=/sys/fs/cgroup/unified; fi
cg=$unified/ccached-kernel-route-bench.$$
outer=$(sed -n 's/^0:://p' /proc/self/cgroup)
door=
cleanup() {
    [ -n "$door" ] && kill "$door" 2>/dev/null
    [ -f "$T/kdc/kdc.env" ] && "$top/scripts/testkdc.sh" stop "$T/kdc" >/dev/null 2>&1
    local ns pid
    ns=$(readlink /proc/self/ns/mnt)
    for pid in $(pgrep -x ccached); do
        [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] && kill "$pid" 2>/dev/null
    done
    sleep 0.2
    # Back to where this shell came from, so the test cgroup can go.
    echo $$ > "$unified$outer/cgroup.procs" 2>/dev/null || echo $$ > "$unified/cgroup.procs" 2>/dev/null || true
    rmdir "$cg" 2>/dev/null || true
    umount -l /run 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
mkdir "$cg"
echo $$ > "$cg/cgroup.procs"
mkdir "$T/run"
mount --bind "$T/run" /run
"$bin/ccached-door" --ccached "$bin/ccached" --log-level warning 2>"$T/door.log" &
door=$!
for _ in $(seq 1 200); do [ -S /run/.heim_org.h5l.kcm-socket ] && break; sleep 0.05; done
kcm=/run/.heim_org.h5l.kcm-socket
daemon=/run/ccached/0/ccached/user/.heim_org.h5l.kcm-socket

probe() {  # prints "direct door" medians in microseconds
    "$bench" door --direct "$daemon" --door "$kcm" --connects "$connects" --requests 100 |
        sed -n 's/^door-bench connect_direct_us=\([^ ]*\) connect_door_us=\([^ ]*\) .*/\1 \2/p'
}
# with_program none|route COMMAND...: runs COMMAND with kcm-route attached to this shell's cgroup,
# with a route to the daemon for this shell's (cgroup, uid 0, mount namespace, root) or none; checks
# the program's counters afterwards (every connect to the door's path rewritten, or none).
with_program() {
    local mode=$1 line
    shift
    coproc LOADER { "$T/kcm-route" "$T/kcm-route.bpf.o" "$cg" "$kcm" "/var$kcm" 2>&1; }
    read -r line <&"${LOADER[0]}"
    [ "$line" = ready ] || { echo "kcm-route: $line" >&2; exit 1; }
    if [ "$mode" = route ]; then
        echo "add $cg 0 $$ $daemon" >&"${LOADER[1]}"
        read -r line <&"${LOADER[0]}"
        [ "$line" = ok ] || { echo "kcm-route add: $line" >&2; exit 1; }
    fi
    "$@"
    echo stats >&"${LOADER[1]}"
    read -r line <&"${LOADER[0]}"
    eval "exec ${LOADER[1]}>&-"
    wait "$LOADER_PID"
    read -r _ _ seen _ rewritten <<<"$line"
    if [ "$mode" = route ] && [ "$rewritten" != "$seen" ]; then
        echo "kcm-route: only $rewritten of $seen connects to the door's path were rewritten" >&2
        exit 1
    elif [ "$mode" = none ] && [ "$rewritten" != 0 ]; then
        echo "kcm-route: $rewritten connects rewritten without a route" >&2
        exit 1
    fi
}
kvno_warm() {  # $1: a krb5.conf; the median of 5 runs of one kvno of the 100 services (warm), ms
    local t0 t1 run
    for run in 1 2 3 4 5; do
        t0=${EPOCHREALTIME/./}
        KRB5_CONFIG="$1:$KRB5_REALM_CONF" KRB5CCNAME=KCM:0:kroute kvno -q "${services[@]}" >/dev/null
        t1=${EPOCHREALTIME/./}
        echo $(((t1 - t0) / 1000)).$(printf '%03d' $(((t1 - t0) % 1000)))
    done | sort -g | sed -n 3p
}
probe >/dev/null  # starts root's daemon through the door, warms up
if [ $kvno = yes ]; then
    "$top/scripts/testkdc.sh" start "$T/kdc" --services 100 >"$T/kdc.log" 2>&1 ||
        { cat "$T/kdc.log" >&2; exit 1; }
    # shellcheck disable=SC1091
    . "$T/kdc/kdc.env"
    services=()
    for i in $(seq 1 100); do services+=("svc$i/localhost"); done
    : > "$T/door.conf"  # MIT's default: /var/run/.heim_org.h5l.kcm-socket, the door
    printf '[libdefaults]\n    kcm_socket = %s\n' "$daemon" > "$T/direct.conf"
    printf 'pw-alice\n' | KRB5_CONFIG="$T/door.conf:$KRB5_REALM_CONF" KRB5CCNAME=KCM:0:kroute kinit alice >/dev/null
    KRB5_CONFIG="$T/door.conf:$KRB5_REALM_CONF" KRB5CCNAME=KCM:0:kroute kvno -q "${services[@]}" >/dev/null
fi
printf '%5s  %-19s %-19s %-22s' round "plain: direct door" "miss: direct door" "hit: direct kernel"
[ $kvno = yes ] && printf '  kvno x100 warm ms (median of 5): door kernel direct'
echo "   (us: medians of $connects connects)"
: > "$T/results"
for round in $(seq 1 "$rounds"); do
    read -r pd pr < <(probe)
    read -r md mr < <(with_program none probe)
    read -r hd hr < <(with_program route probe)
    kd=- kk=- kc=-
    if [ $kvno = yes ]; then
        kd=$(kvno_warm "$T/door.conf")
        kk=$(with_program route kvno_warm "$T/door.conf")
        kc=$(kvno_warm "$T/direct.conf")
    fi
    printf '%5d  %8s %8s   %8s %8s   %8s %8s' "$round" "$pd" "$pr" "$md" "$mr" "$hd" "$hr"
    [ $kvno = yes ] && printf '       %8s %8s %8s' "$kd" "$kk" "$kc"
    echo
    echo "$pd $pr $md $mr $hd $hr $kd $kk $kc" \
        "$(awk -v a="$pr" -v b="$pd" 'BEGIN {printf "%.2f", a / b}')" \
        "$(awk -v a="$hr" -v b="$hd" 'BEGIN {printf "%.2f", a / b}')" \
        "$(awk -v a="$kd" -v b="$kc" 'BEGIN {if (b + 0 > 0) printf "%.2f", a / b; else printf "-"}')" \
        "$(awk -v a="$kk" -v b="$kc" 'BEGIN {if (b + 0 > 0) printf "%.2f", a / b; else printf "-"}')" >> "$T/results"
done
summary() {  # column → "median (min–max)"
    cut -d' ' -f"$1" "$T/results" | sort -g | awk '{v[NR]=$1} END {printf "%s (%s–%s)", v[int((NR+1)/2)], v[1], v[NR]}'
}
echo "medians of $rounds rounds (min–max), connect + NOOP + close, us:"
echo "  (c)  direct, no program:                    $(summary 1)"
echo "  (a)  through the door, no program:          $(summary 2)"
echo "  (a') through the door, the program misses:  $(summary 4)"
echo "  (b)  kernel route (the program rewrites):   $(summary 6)"
echo "  (c') direct, program attached, no match:    $(summary 5)"
echo "  door / direct, same probe:                  $(summary 10)"
echo "  kernel route / direct, same probe:          $(summary 11)"
if [ $kvno = yes ]; then
    echo "kvno of 100 cached services, ms:"
    echo "  through the door:                           $(summary 7)"
    echo "  kernel route:                               $(summary 8)"
    echo "  direct:                                     $(summary 9)"
    echo "  door / direct, same round:                  $(summary 12)"
    echo "  kernel route / direct, same round:          $(summary 13)"
fi
# What a route does when its daemon ends (idle exit, ccachectl stop, a crash): the kernel has no
# way back to the door. Root's daemon is stopped with the route in place, then without it.
connect_once() {  # connect to the door's path, one KCM NOOP (version 2.0, opcode 0), its reply
    python3 -c 'import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
try:
    s.connect(sys.argv[1])
    s.sendall(struct.pack(">IBBH", 4, 2, 0, 0))
    reply = s.recv(64)
    print("answered (status %d)" % struct.unpack(">i", reply[4:8])[0] if len(reply) >= 8 else "no answer")
except OSError as e:
    print("failed:", e.strerror)' "$kcm"
}
stop_daemon() {
    local ns pid
    ns=$(readlink /proc/self/ns/mnt)
    for pid in $(pgrep -x ccached); do
        [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] && kill "$pid" 2>/dev/null
    done
    for _ in $(seq 1 100); do [ -S "$daemon" ] || break; sleep 0.02; done
}
stop_daemon
echo "root's daemon stopped; a connect to the door's path:"
echo "  with the route in place: $(with_program route connect_once)"
echo "  without it (the door):   $(connect_once)$( [ -S "$daemon" ] && echo ': the door started a new daemon')"

