#!/usr/bin/env bash
# The first connection of a new login session through ccached-door under a real systemd: the unit
# path installed hosts run (--daemon-start auto: the daemon a transient unit in user-UID.slice,
# started by systemd-run), in a booted Debian 12 container as door-booted-check.sh boots it
# (../shared/design/REAL-SYSTEMD.md). Issue 21's target: ≤ 15 ms. Run by hand (root, ~1 min once
# the container's tree is built):
#
#   scripts/bench-first-connection-booted.sh [--bin DIR] [--sessions N] [--strace FILE]
#
# DIR: a release build with ccached and ccached-door (make release). Each sample is a new
# `su - u1` login (a logind session of class user, as a terminal login makes it) whose first and
# only KCM client — a few lines of Python, started before the clock starts — times connect, one
# GET_DEFAULT_CACHE and its reply: the door's routing, `systemd-run` and the unit's start to READY=1
# and the hand-off included. The first connection also activates the door (socket activation) and
# is shown apart. Prints each sample, median, p90, min, max in milliseconds; the last line is
# machine-readable:
#   first-connection-booted sessions=N median_ms=… p90_ms=… min_ms=… max_ms=… door_first_ms=…
# With --strace FILE, one more login is traced (strace -f -ttt on the door, from the host) into FILE.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=$repo/.build/release
sessions=20
trace=
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        --strace) trace=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        *) echo "usage: $0 [--bin DIR] [--sessions N] [--strace FILE]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-first-connection-booted: needs root; NOT RUN" >&2; exit 1; }
for tool in mmdebstrap systemd-nspawn nsenter; do
    command -v "$tool" >/dev/null ||
        { echo "bench-first-connection-booted: $tool missing (apt-get install systemd-container mmdebstrap)" >&2; exit 1; }
done
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "bench-first-connection-booted: $bin/$program is missing (make release)" >&2; exit 1; }
done
runtime=$(readelf -d "$bin/ccached-door" | sed -n 's/.*RUNPATH.*\[\([^:]*\).*/\1/p')
# The same tree as door-booted-check.sh (built there, or here the same way).
rootfs=$repo/.build/door-rootfs-2
if [ ! -x "$rootfs/usr/sbin/krb5kdc" ]; then
    rm -rf "$rootfs"
    mmdebstrap --variant=apt --include=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,krb5-user,krb5-kdc,krb5-admin-server,procps,python3,util-linux,passwd,login \
        bookworm "$rootfs" >/dev/null || { echo "bench-first-connection-booted: mmdebstrap failed" >&2; exit 1; }
fi
work=$(mktemp -d /tmp/first-booted.XXXXXX)
sed 's#/usr/local/bin/ccached-door#/opt/ccached/ccached-door#' "$repo/systemd/ccached-door.service" >"$work/ccached-door.service"
cp "$repo/systemd/ccached-door.socket" "$work/"
# The client: connect, GET_DEFAULT_CACHE (KCM 2.0, opcode 20), the reply, close; microseconds.
cat >"$work/first.py" <<'EOF'
import socket, struct, time
request = struct.pack(">IBBH", 4, 2, 0, 20)
start = time.perf_counter_ns()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/run/.heim_org.h5l.kcm-socket")
s.sendall(request)
header = b""
while len(header) < 4:
    chunk = s.recv(4 - len(header))
    if not chunk:
        raise SystemExit("the door closed the connection")
    header += chunk
length = struct.unpack(">I", header)[0]
body = b""
while len(body) < length:
    chunk = s.recv(length - len(body))
    if not chunk:
        raise SystemExit("short reply")
    body += chunk
s.close()
print((time.perf_counter_ns() - start) // 1000)
EOF
chmod 0755 "$work"
chmod 0644 "$work/first.py"
binds=(--bind-ro="$bin:/opt/ccached" --bind-ro="$work:/opt/first"
    --bind-ro="$work/ccached-door.service:/etc/systemd/system/ccached-door.service"
    --bind-ro="$work/ccached-door.socket:/etc/systemd/system/ccached-door.socket")
[ -n "$runtime" ] && binds+=(--bind-ro="$runtime")
# A cgroup of its own, audit sessions and mlock as on a host: see door-booted-check.sh.
cgroup_name=first-booted-$$
(
    for hierarchy in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
        [ -w "$hierarchy/cgroup.procs" ] || continue
        mkdir -p "$hierarchy/$cgroup_name" && echo "$BASHPID" >"$hierarchy/$cgroup_name/cgroup.procs" 2>/dev/null
    done
    exec systemd-nspawn -q -b -D "$rootfs" --register=no --keep-unit --private-network \
        --capability=CAP_IPC_LOCK,CAP_AUDIT_CONTROL --volatile=overlay "${binds[@]}"
) >"$work/nspawn.log" 2>&1 &
nspawn=$!
init=
for _ in $(seq 1 90); do
    init=$(pgrep -P "$nspawn" | head -1)
    [ -n "$init" ] && nsenter -t "$init" -a systemctl is-system-running 2>/dev/null | grep -qE "running|degraded" && break
    sleep 1
done
c() { nsenter -t "$init" -a "$@"; }
finish() {
    [ -n "$init" ] && c systemctl poweroff >/dev/null 2>&1
    wait "$nspawn" 2>/dev/null
    for hierarchy in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
        [ -d "$hierarchy/$cgroup_name" ] && find "$hierarchy/$cgroup_name" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -rf "$work"
}
trap finish EXIT
c systemctl daemon-reload
c systemctl enable --now ccached-door.socket >/dev/null 2>&1
c sh -c "id u1 >/dev/null 2>&1 || useradd -m u1"
# One login: its first connection's microseconds (and the login's end waits for nothing).
login() { c sh -c 'XDG_SESSION_CLASS=user su - u1 -c "python3 /opt/first/first.py"' 2>&1; }
door_first=$(login)
[[ $door_first =~ ^[0-9]+$ ]] || { echo "bench-first-connection-booted: the first login failed: $door_first" >&2; exit 1; }
samples=()
for _ in $(seq 1 "$sessions"); do
    us=$(login)
    [[ $us =~ ^[0-9]+$ ]] || { echo "bench-first-connection-booted: a login failed: $us" >&2; exit 1; }
    samples+=("$(awk -v us="$us" 'BEGIN { printf "%.2f", us / 1000 }')")
    sleep 0.2
done
units=$(c journalctl --no-pager -b -q -u 'ccached-1000-*' -g 'Started ' | wc -l)
door_first_ms=$(awk -v us="$door_first" 'BEGIN { printf "%.2f", us / 1000 }')
echo "first connection of a new login session through ccached-door under systemd (unit path), ms:"
echo "  the door's first (socket activation): $door_first_ms; then $sessions logins: ${samples[*]}"
echo "  ($units units ccached-1000-*.service started)"
printf '%s\n' "${samples[@]}" | sort -n | awk -v door_first="$door_first_ms" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
    { v[NR] = $1 }
    END {
        n = NR
        median = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        p90 = v[int(0.9 * n + 0.999999)]
        printf "  median %.2f  p90 %.2f  min %.2f  max %.2f (load average %s; target ≤ 15 ms)\n", median, p90, v[1], v[n], load
        printf "first-connection-booted sessions=%d median_ms=%.2f p90_ms=%.2f min_ms=%.2f max_ms=%.2f door_first_ms=%s\n",
            n, median, p90, v[1], v[n], door_first
    }'
# Where the time goes, from the journal's receive times (-o short-unix): systemd's "Starting" of
# each unit (the door has routed and systemd-run has asked), the daemon's "listening" (systemd set
# up the unit's sandbox and the daemon started), systemd's "Started" (READY=1 arrived), and the
# door's "started the session daemon" (systemd-run returned).
for unit in $(c journalctl --no-pager -b -q -o cat -g 'Starting ccached-1000-' | sed -n 's/^Starting \(ccached-1000-[^ ]*\.service\).*/\1/p'); do
    key=${unit#ccached-1000-}
    key=${key%.service}
    starting=$(c journalctl --no-pager -b -q -o short-unix -u "$unit" -g '^Starting ' | head -1 | cut -d' ' -f1)
    listening=$(c journalctl --no-pager -b -q -o short-unix -u "$unit" -g '^listening$' | head -1 | cut -d' ' -f1)
    started=$(c journalctl --no-pager -b -q -o short-unix -u "$unit" -g '^Started ' | head -1 | cut -d' ' -f1)
    door=$(c journalctl --no-pager -b -q -o short-unix -u ccached-door.service -g "started the session daemon at /run/user/1000/ccached/$key/" | head -1 | cut -d' ' -f1)
    [ -n "$starting" ] && [ -n "$listening" ] && [ -n "$started" ] && [ -n "$door" ] &&
        echo "$starting $listening $started $door"
done | sort -u | tail -n "$sessions" | awk '
    function median(a, n,    i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { n++; sandbox[n] = ($2 - $1) * 1000; ready[n] = ($3 - $2) * 1000; back[n] = ($4 - $3) * 1000 }
    END {
        if (n == 0) { print "  (no breakdown: the journal lines were not found)"; exit }
        printf "  medians over %d units (journal receive times): systemd \"Starting\" -> daemon \"listening\" %.2f ms (the unit'"'"'s sandbox, exec, daemon start);", n, median(sandbox, n)
        printf " -> \"Started\" (READY=1) %.2f ms; -> the door'"'"'s \"started\" (systemd-run returned) %.2f ms; the rest of each sample is the door'"'"'s routing, systemd-run'"'"'s own start and its D-Bus call, and the hand-off\n", median(ready, n), median(back, n)
    }'
if [ -n "$trace" ]; then
    door=$(c systemctl show -P MainPID ccached-door.service)
    # The door's pid as the host sees it: the process whose innermost pid is $door in the container.
    host_door=
    for pid in $(pgrep -x ccached-door); do
        [ "$(readlink "/proc/$pid/ns/pid")" = "$(readlink "/proc/$init/ns/pid")" ] || continue
        [ "$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status")" = "$door" ] && host_door=$pid
    done
    if [ -n "$host_door" ]; then
        strace -f -ttt -s 200 -o "$trace" -p "$host_door" &
        tracer=$!
        sleep 1
        echo "traced login: $(login) µs (strace -f on the door: $trace)"
        sleep 0.5
        kill "$tracer"
        wait "$tracer" 2>/dev/null
        c journalctl --no-pager -b -o short-precise -n 30 >"$trace.journal"
    else
        echo "bench-first-connection-booted: the door's pid not found on the host; no trace" >&2
    fi
fi
