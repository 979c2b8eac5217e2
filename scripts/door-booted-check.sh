#!/usr/bin/env bash
# ccached-door's system units under a real systemd: a booted Debian 12 container (systemd-nspawn),
# as ../shared/design/REAL-SYSTEMD.md describes. Run by `make test` (make test-door-booted).
#
#   scripts/door-booted-check.sh [--bin DIR]     (DIR: a release build with ccached, ccached-door)
#
# Root. Builds the root file system once under .build/door-rootfs (mmdebstrap, ~4 min), binds the
# binaries, the Swift runtime and the door's units in read-only, boots with a private network and
# audit sessions on (CAP_AUDIT_CONTROL, as on a real host), and checks: socket activation on
# /run/.heim_org.h5l.kcm-socket (0666); two `su - u1` logins are two logind sessions with two
# daemons under /run/user/1000, each a unit ccached-1000-N.service in user-1000.slice started with
# --login-session N; a door-started daemon renews a ticket from the KDC (its unit has network);
# the rule's other rows (a user service, a root helper acting for the user, a job); a door restart
# leaves the daemons and their tickets and no "left-over process"; a daemon killed with SIGKILL is
# followed by a new unit the door hands its state file (--state-from-door), with the same klist -A
# -C, before and after a door restart (issue 22); the logout of one login wipes only its daemon, the
# last logout leaves no daemon and no state file in the door; both daemons lock their credential
# memory. Last line:
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
# shellcheck source=scripts/door-container-lib.sh
. "$here/door-container-lib.sh"
trap door_container_finish EXIT
door_container_boot door-booted "$bin" --bind-ro="$repo/scripts:/opt/ccached-scripts" || exit 1
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
# Logins of class user, as a terminal login makes them: a `su -c` without a terminal would be a
# session of class background (a job, by the routing rule), so each su sets XDG_SESSION_CLASS, which
# pam_systemd reads. (su runs no pam_loginuid: these sessions' ids are logind's own, cN.)
# Login A: holds alice's renewable ticket until told to log out.
c sh -c 'XDG_SESSION_CLASS=user su - u1 -c "echo pw-alice | kinit -l 2m -r 10m alice >/dev/null; touch /tmp/a1; while [ ! -e /tmp/b1 ]; do sleep 0.2; done; klist; /opt/ccached/ccachectl renew; /opt/ccached/ccachectl where; while [ ! -e /tmp/a-out ]; do sleep 0.2; done"' >"$work/A.out" 2>&1 &
session_a=$!
for _ in $(seq 1 100); do c test -e /tmp/a1 && break; sleep 0.2; done
c sh -c 'XDG_SESSION_CLASS=user su - u1 -c "klist; echo pw-bob | kinit bob >/dev/null; klist; loginctl list-sessions --no-legend | wc -l; ps -o args= -C ccached; for p in \$(pgrep -u u1 -x ccached); do grep VmLck /proc/\$p/status; cat /proc/\$p/cgroup; done"' >"$work/B.out" 2>&1
sleep 2
after_b=$(c ps -o args= -C ccached)
c touch /tmp/b1
for _ in $(seq 1 100); do grep -q "ends:" "$work/A.out" && break; sleep 0.2; done

[ "$(c systemctl is-active ccached-door.service)" = active ] &&
    pass "the first connection activated ccached-door.service" || fail "socket activation"
grep -q "Default principal: bob@" "$work/B.out" && grep -q "not found" "$work/B.out" && ! grep -q alice@ "$work/B.out" &&
    pass "the second su - u1 session starts empty and keeps its own tickets" || fail "session B" "$(cat "$work/B.out")"
[ "$(grep -cE -- '--socket /run/user/1000/ccached/(c?[0-9]+)/.heim_org.h5l.kcm-socket --login-session c?[0-9]+' "$work/B.out")" -eq 2 ] &&
    pass "two logind sessions, two daemons under /run/user/1000, each with --login-session" ||
    fail "two daemons for two logind sessions" "$(cat "$work/B.out")"
[ "$(grep -cE '^0::/user.slice/user-1000.slice/ccached-1000-c?[0-9]+.service$' "$work/B.out")" -eq 2 ] &&
    pass "each daemon the door started is a unit ccached-1000-N.service in user-1000.slice, not in the door's cgroup" ||
    fail "the daemons' cgroups" "$(grep -E '^0::' "$work/B.out")"
[ "$(grep -c -- '--login-session' <<<"$after_b")" -eq 1 ] &&
    pass "logout of the second session wiped and stopped only its daemon" || fail "after the second logout" "$after_b"
grep -q "Default principal: alice@" "$work/A.out" && ! grep -q bob@ "$work/A.out" &&
    pass "the first session still has its tickets after the other's logout" || fail "session A" "$(cat "$work/A.out")"
# The daemon renews from inside its unit: it reaches the KDC (the door's own sandbox has no network).
grep -qE "renewed 1 ticket" "$work/A.out" &&
    pass "a daemon the door started renews a ticket from the KDC (ccachectl renew)" ||
    fail "renewal in a door-started daemon" "$(cat "$work/A.out"; c journalctl --no-pager -b _COMM=ccached | tail -5)"
grep -qE "^daemon: +c?[0-9]+ \(rule 1: its own login\)" "$work/A.out" && grep -q "door: .*reaches this daemon" "$work/A.out" &&
    pass "ccachectl where: the login's own daemon by rule 1, the same one the standard socket reaches" ||
    fail "ccachectl where" "$(cat "$work/A.out")"
# Both daemons hold a ticket by now, so each has locked its credential memory (VmLck), and none said
# it could not (the warning ProcessSetup logs when mlock fails).
locked=$(grep -c 'VmLck:[[:space:]]*[1-9]' "$work/B.out")
daemon_log=$(c journalctl --no-pager -b _COMM=ccached)
refused=$(grep 'cannot lock more credential memory' <<<"$daemon_log")
[ "$locked" -eq 2 ] && grep -q listening <<<"$daemon_log" && [ -z "$refused" ] &&
    pass "both session daemons keep their tickets in locked memory" ||
    fail "locked credential memory ($locked of 2 daemons with VmLck > 0)" "$(grep VmLck "$work/B.out"; echo "${refused:-journal of ccached: $(wc -l <<<"$daemon_log") lines}")"

# --- the rule's row 3: processes outside the login, with login A live
out=$(c systemd-run -q --wait -P setpriv --reuid=u1 --regid=u1 --init-groups klist 2>&1)
grep -q "Default principal: alice@" <<<"$out" &&
    pass "a root helper acting for u1 (systemd-run setpriv --reuid, the rpc.gssd case) sees login A's tickets" ||
    fail "the rpc.gssd case" "$out"
out=$(c systemd-run -q -M u1@ --user --wait -P klist 2>&1)
grep -q "Default principal: alice@" <<<"$out" &&
    pass "a user service (systemd-run --user) sees login A's tickets" || fail "a user service" "$out"
# --- row 2: a job (an audit session logind does not know, as Debian's cron makes one)
out=$(c sh -c 'echo 1000 >/proc/self/loginuid && exec setpriv --reuid=u1 --regid=u1 --init-groups env -i PATH=/usr/bin:/bin sh -c "echo pw-carol | kinit carol >/dev/null; klist; ls /run/user/1000/ccached"' 2>&1)
grep -q "Default principal: carol@" <<<"$out" && grep -q "^job-[0-9]" <<<"$out" &&
    pass "a job gets a daemon of its own (job-N) with its own tickets" || fail "a job's daemon" "$out"
a_now=$(c systemd-run -q --wait -P setpriv --reuid=u1 --regid=u1 --init-groups klist 2>&1)
grep -q "Default principal: alice@" <<<"$a_now" &&
    pass "the job's kinit did not change login A's default principal" || fail "login A after the job" "$a_now"
for _ in $(seq 1 40); do [ -z "$(c sh -c 'ps -o args= -u u1 -C ccached | grep -- --audit-session')" ] && break; sleep 0.5; done
[ -z "$(c sh -c 'ps -o args= -u u1 -C ccached | grep -- --audit-session')" ] &&
    pass "the job's daemon ended after the job's last process" ||
    fail "the job's daemon" "$(c ps -o pid,args= -u u1 -C ccached)"

# --- issue 22: the door keeps each daemon's state file. Login A's daemon (a unit) killed with SIGKILL:
# the next client through the door gets a new unit, handed the file over the hand-off socket
# (--state-from-door), with the same caches.
klist_a() { c systemd-run -q --wait -P setpriv --reuid=u1 --regid=u1 --init-groups klist -A -C 2>&1; }
daemon_a() {
    c sh -c 'for p in $(pgrep -u u1 -x ccached); do tr "\0" " " </proc/$p/cmdline | grep -q -- "--login-session" && echo $p; done' | head -1
}
kill_a() {
    c kill -9 "$1"
    for _ in $(seq 1 50); do c kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
}
before_kill=$(klist_a)
pid_a=$(daemon_a)
kill_a "$pid_a"
after_kill=$(klist_a)
new_a=$(daemon_a)
if grep -q "Default principal: alice@" <<<"$before_kill" && [ "$after_kill" = "$before_kill" ] && [ -n "$new_a" ] &&
    [ "$new_a" != "$pid_a" ] && c sh -c "tr '\\0' ' ' </proc/$new_a/cmdline" | grep -q -- --state-from-door; then
    pass "SIGKILL of login A's daemon: the door starts a new unit with its state file (--state-from-door), same klist -A -C"
else
    fail "login A after SIGKILL of its daemon ($pid_a, now ${new_a:-none})" \
        "before:"$'\n'"$before_kill"$'\n'"after:"$'\n'"$after_kill"$'\n'"$(c journalctl --no-pager -b -u ccached-door.service | tail -8; c journalctl --no-pager -b _COMM=ccached | grep -iE 'state|restored' | tail -5)"
fi

# --- a door restart leaves the daemons, their tickets and their connections alone
c systemctl restart ccached-door.service
out=$(c systemd-run -q --wait -P setpriv --reuid=u1 --regid=u1 --init-groups klist 2>&1)
leftover=$(c journalctl --no-pager -b -u ccached-door.service | grep -i "left-over process")
grep -q "Default principal: alice@" <<<"$out" && [ -z "$leftover" ] &&
    pass "systemctl restart ccached-door: login A's tickets kept, no 'left-over process' warning" ||
    fail "door restart" "$out"$'\n'"$leftover"
# ... and the new door got login A's state file back from the daemon (at that first hand-off): a
# SIGKILL now loses nothing either.
pid_a=$(daemon_a)
kill_a "$pid_a"
after_kill=$(klist_a)
[ "$after_kill" = "$before_kill" ] &&
    c journalctl --no-pager -b -u ccached-door.service | grep -q "holding the state file of the running session daemon" &&
    pass "after a door restart, SIGKILL of login A's daemon loses nothing (the door asked the daemon for its file)" ||
    fail "login A after a door restart and a SIGKILL" \
        "$after_kill"$'\n'"$(c journalctl --no-pager -b -u ccached-door.service | tail -8)"

c touch /tmp/a-out
wait "$session_a"
for _ in $(seq 1 40); do [ -z "$(c ps -o args= -u u1 -C ccached)" ] && break; sleep 0.5; done
after_a=$(c ps -o args= -u u1 -C ccached)
[ -z "$after_a" ] && pass "the last logout stopped the last daemon of u1" || fail "after the last logout" "$after_a"
# The daemon wiped its state file at logout, and the door closed its descriptor (checked every 2 s).
door_main=$(c systemctl show -P MainPID ccached-door.service)
for _ in $(seq 1 30); do
    held=$(c sh -c "ls -l /proc/$door_main/fd 2>/dev/null | grep -c memfd:ccached-state")
    [ "$held" -eq 0 ] && break
    sleep 0.2
done
[ "$held" -eq 0 ] && pass "after the last logout the door holds no state file" ||
    fail "the door's state files after the last logout" "$(c ls -l "/proc/$door_main/fd")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
