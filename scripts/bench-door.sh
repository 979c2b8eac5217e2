#!/usr/bin/env bash
# Connect-plus-first-reply through ccached-door against a direct connection to the same daemon,
# and the per-request latency on a connection once it is handed off (it must be the direct one).
#
#   scripts/bench-door.sh [--bin DIR] [--connects N] [--requests N]
#
# Root only (the door is root). Runs in a private mount namespace with a temporary directory bound
# over /run, so the host's /run (and any real door or sssd-kcm) is untouched. The client is one
# Python process doing blocking connect / KCM NOOP / close, identical for both paths: its own cost
# is in both figures, so the ratio understates the door's share slightly. Prints medians and p90
# in microseconds and the ratios; the last line is machine-readable:
#   door-bench connect_direct_us=… connect_door_us=… connect_ratio=… request_direct_us=… request_door_us=… request_ratio=…
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$here")/.build/release
connects=2000
requests=20000
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --connects) connects=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        *) echo "usage: $0 [--bin DIR] [--connects N] [--requests N]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-door: needs root (ccached-door runs as root); not run" >&2; exit 1; }
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "bench-door: $bin/$program is missing (swift build -c release)" >&2; exit 1; }
done
if [ -z "${CCACHED_DOOR_BENCH_INSIDE:-}" ]; then
    exec unshare --mount --propagation private env CCACHED_DOOR_BENCH_INSIDE=1 "$0" --bin "$bin" \
        --connects "$connects" --requests "$requests"
fi

T=$(mktemp -d /tmp/ccached-door-bench.XXXXXX)
door=
cleanup() {
    [ -n "$door" ] && kill "$door" 2>/dev/null
    # Root's daemon, which the door started: the ccached in this mount namespace, by pid.
    local ns pid
    ns=$(readlink /proc/self/ns/mnt)
    for pid in $(pgrep -x ccached); do
        [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] && kill "$pid" 2>/dev/null
    done
    umount -l /run 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
mkdir "$T/run"
mount --bind "$T/run" /run
"$bin/ccached-door" --ccached "$bin/ccached" --log-level warning 2>"$T/door.log" &
door=$!
for _ in $(seq 1 200); do [ -S /run/.heim_org.h5l.kcm-socket ] && break; sleep 0.05; done

python3 - "$connects" "$requests" <<'PY'
import socket, statistics, struct, sys, time
DOOR = "/run/.heim_org.h5l.kcm-socket"
DIRECT = "/run/ccached/0/ccached/user/.heim_org.h5l.kcm-socket"
NOOP = struct.pack(">I", 4) + b"\x02\x00\x00\x00"
def reply(s):
    data = b""
    while len(data) < 8:
        data += s.recv(8 - len(data)) or (_ for _ in ()).throw(EOFError())
    length = struct.unpack(">I", data[:4])[0]
    rest = b""
    while len(rest) < length:
        rest += s.recv(length - len(rest)) or (_ for _ in ()).throw(EOFError())
    assert struct.unpack(">i", rest[:4])[0] == 0, "NOOP failed"
def connect_once(path):
    start = time.perf_counter_ns()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(NOOP)
    reply(s)
    elapsed = time.perf_counter_ns() - start
    s.close()
    return elapsed / 1000
def requests_on(path, n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(NOOP); reply(s)          # the hand-off happens before the first reply
    times = []
    for _ in range(n):
        start = time.perf_counter_ns()
        s.sendall(NOOP); reply(s)
        times.append((time.perf_counter_ns() - start) / 1000)
    s.close()
    return times
connects, requests = int(sys.argv[1]), int(sys.argv[2])
connect_once(DOOR)                     # starts root's daemon through the door
for _ in range(50): connect_once(DOOR); connect_once(DIRECT)   # warm up
direct, door = [], []
for _ in range(connects):              # interleaved, so machine noise hits both alike
    direct.append(connect_once(DIRECT))
    door.append(connect_once(DOOR))
rd = requests_on(DIRECT, requests)
rr = requests_on(DOOR, requests)
def p(values, q): return sorted(values)[int(q * (len(values) - 1))]
def show(name, values): print(f"{name:42s} median {statistics.median(values):8.1f} us   p90 {p(values, 0.9):8.1f} us")
show(f"connect + first NOOP reply, direct (n={connects})", direct)
show(f"connect + first NOOP reply, via the door", door)
show(f"NOOP on an open connection, direct (n={requests})", rd)
show(f"NOOP on a handed-off connection", rr)
cd, cr = statistics.median(direct), statistics.median(door)
qd, qr = statistics.median(rd), statistics.median(rr)
print(f"connect ratio door/direct {cr / cd:.2f}; per-request ratio after the hand-off {qr / qd:.2f}")
print(f"door-bench connect_direct_us={cd:.1f} connect_door_us={cr:.1f} connect_ratio={cr / cd:.2f} "
      f"request_direct_us={qd:.1f} request_door_us={qr:.1f} request_ratio={qr / qd:.2f}")
PY
