#!/usr/bin/env bash
# ccached-door's system units under a real systemd: a booted Debian 12 container (systemd-nspawn),
# as ../shared/design/REAL-SYSTEMD.md describes. Run by `make test` (make test-door-booted).
#
#   scripts/door-booted-check.sh [--bin DIR]     (DIR: a release build with ccached, ccached-door)
#
# Root. Builds the root file system once under .build/door-rootfs (mmdebstrap, ~4 min), binds the
# binaries, the Swift runtime and the door's units in read-only, boots with a private network, and
# checks: socket activation on /run/.heim_org.h5l.kcm-socket (0666); two `su - u1` logins are two
# logind sessions with two daemons under /run/user/1000, started with --login-session; the logout
# of one wipes only its daemon; the other keeps its tickets until its own logout; both daemons lock
# their credential memory. Last line:
# "N passed, M failed". The container is powered off at the end.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=$repo/.build/release
[ "${1:-}" = --bin ] && bin=$(cd "$2" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "door-booted-check: needs root; NOT RUN" >&2; exit 1; }
for tool in mmdebstrap systemd-nspawn nsenter; do
    command -v "$tool" >/dev/null || { echo "door-booted-check: $tool missing (apt-get install systemd-container mmdebstrap)" >&2; exit 1; }
done
runtime=$(readelf -d "$bin/ccached-door" | sed -n 's/.*RUNPATH.*\[\([^:]*\).*/\1/p')
rootfs=$repo/.build/door-rootfs
if [ ! -x "$rootfs/usr/sbin/krb5kdc" ]; then
    rm -rf "$rootfs"
    mmdebstrap --variant=apt --include=systemd,systemd-sysv,dbus,libpam-systemd,krb5-user,krb5-kdc,krb5-admin-server,procps,python3,util-linux,passwd,login \
        bookworm "$rootfs" >/dev/null || { echo "door-booted-check: mmdebstrap failed" >&2; exit 1; }
fi
work=$(mktemp -d /tmp/door-booted.XXXXXX)
sed 's#/usr/local/bin/ccached-door#/opt/ccached/ccached-door#' "$repo/systemd/ccached-door.service" >"$work/ccached-door.service"
cp "$repo/systemd/ccached-door.socket" "$work/"
binds=(--bind-ro="$bin:/opt/ccached" --bind-ro="$repo/scripts:/opt/ccached-scripts"
    --bind-ro="$work/ccached-door.service:/etc/systemd/system/ccached-door.service"
    --bind-ro="$work/ccached-door.socket:/etc/systemd/system/ccached-door.socket")
[ -n "$runtime" ] && binds+=(--bind-ro="$runtime")
# --capability=CAP_IPC_LOCK: without it nspawn's seccomp filter refuses mlock() to everything in the
# container (EPERM), which no real system does; see scripts/booted-system.sh.
systemd-nspawn -q -b -D "$rootfs" --register=no --keep-unit --private-network --capability=CAP_IPC_LOCK --volatile=overlay "${binds[@]}" >"$work/nspawn.log" 2>&1 &
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
    rm -rf "$work"
}
trap finish EXIT
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/       /'; }

c systemctl daemon-reload
c systemctl enable --now ccached-door.socket >/dev/null 2>&1
[ "$(c stat -c %a /run/.heim_org.h5l.kcm-socket 2>/dev/null)" = 666 ] &&
    pass "ccached-door.socket listens on /run/.heim_org.h5l.kcm-socket, 0666" || fail "the door's socket" "$(c systemctl status ccached-door.socket --no-pager)"
c /opt/ccached-scripts/testkdc.sh start /root/kdc >/dev/null || fail "the test KDC"
c sh -c 'sed "s/^\[libdefaults\]$/[libdefaults]\n    default_ccache_name = KCM:/" /root/kdc/krb5.conf >/etc/krb5.conf'
c sh -c "id u1 >/dev/null 2>&1 || useradd -m u1"
c sh -c 'su - u1 -c "echo pw-alice | kinit alice >/dev/null; touch /tmp/a1; while [ ! -e /tmp/b1 ]; do sleep 0.2; done; klist"' >"$work/A.out" 2>&1 &
session_a=$!
for _ in $(seq 1 100); do c test -e /tmp/a1 && break; sleep 0.2; done
c sh -c 'su - u1 -c "klist; echo pw-bob | kinit bob >/dev/null; klist; loginctl list-sessions --no-legend | wc -l; ps -o args= -C ccached; for p in \$(pgrep -u u1 -x ccached); do grep VmLck /proc/\$p/status; done"' >"$work/B.out" 2>&1
sleep 2
after_b=$(c ps -o args= -C ccached)
c touch /tmp/b1
wait "$session_a"
sleep 2
after_a=$(c ps -o args= -C ccached)

[ "$(c systemctl is-active ccached-door.service)" = active ] &&
    pass "the first connection activated ccached-door.service" || fail "socket activation"
grep -q "Default principal: bob@" "$work/B.out" && grep -q "not found" "$work/B.out" && ! grep -q alice@ "$work/B.out" &&
    pass "the second su - u1 session starts empty and keeps its own tickets" || fail "session B" "$(cat "$work/B.out")"
[ "$(grep -c -- '--socket /run/user/1000/ccached/c[0-9]*/.heim_org.h5l.kcm-socket --ready-fd 3 --login-session c' "$work/B.out")" -eq 2 ] &&
    pass "two logind sessions, two daemons under /run/user/1000, each with --login-session" ||
    fail "two daemons for two logind sessions" "$(cat "$work/B.out")"
[ "$(grep -c -- '--login-session' <<<"$after_b")" -eq 1 ] &&
    pass "logout of the second session wiped and stopped only its daemon" || fail "after the second logout" "$after_b"
grep -q "Default principal: alice@" "$work/A.out" && ! grep -q bob@ "$work/A.out" &&
    pass "the first session still has its tickets after the other's logout" || fail "session A" "$(cat "$work/A.out")"
# Both daemons hold a ticket by now, so each has locked its credential memory (VmLck), and none said
# it could not (the warning ProcessSetup logs when mlock fails).
locked=$(grep -c 'VmLck:[[:space:]]*[1-9]' "$work/B.out")
daemon_log=$(c journalctl --no-pager -b _COMM=ccached)
refused=$(grep 'cannot lock more credential memory' <<<"$daemon_log")
[ "$locked" -eq 2 ] && grep -q listening <<<"$daemon_log" && [ -z "$refused" ] &&
    pass "both session daemons keep their tickets in locked memory" ||
    fail "locked credential memory ($locked of 2 daemons with VmLck > 0)" "$(grep VmLck "$work/B.out"; echo "${refused:-journal of ccached: $(wc -l <<<"$daemon_log") lines}")"
[ -z "$after_a" ] && pass "the last logout stopped the last daemon" || fail "after the last logout" "$after_a"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
