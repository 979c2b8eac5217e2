#!/usr/bin/env bash
# An upgrade moves every running daemon and the door to the new binary, and loses nothing (issue
# 22, item 3). A booted Debian 12 container (scripts/booted-system.sh, the same cached base as
# scripts/login-routing-check.sh) with a test KDC (scripts/testkdc.sh) and two users: the built
# packages are installed, alice and bob each log in over ssh (pam_krb5) and kinit, a client in
# alice's login runs klist in a loop, and then:
#   - `apt-get install` of the same packages with a newer version (the built .debs, unpacked and
#     repacked with "+upgrade1" appended to the version: the files are new, so each running daemon
#     runs "/usr/bin/ccached (deleted)" until it moves): every daemon keeps its pid and runs the
#     new /usr/bin/ccached, every ticket is still listed, the klist loop saw no error;
#   - `systemctl restart ccached-door.service`: a new door process, the same socket (systemd's,
#     ccached-door.socket holds it), the same daemons and tickets, no klist error.
# Root only; `make test-upgrade` (part of `make test`) runs it.
#
#   scripts/upgrade-booted-check.sh DEB_DIR
#
# One PASS/FAIL line per check; the last line is "N passed, M failed"; exit 1 on a failure.
set -uo pipefail

PROG=${0##*/}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
BOOTED="$ROOT_DIR/scripts/booted-system.sh"
# The packages of login-routing-check.sh: the same cached base tree.
BASE_PACKAGES="openssh-server sshpass libpam-krb5 cron at tmux dbus-user-session"

if [ "$(id -u)" -ne 0 ]; then
    echo "$PROG: SKIPPED — NOT RUN: needs root (it boots a container); nothing was checked" >&2
    exit 0
fi
[ $# -eq 1 ] || { echo "usage: $PROG DEB_DIR" >&2; exit 2; }
DEB_DIR=$(cd "$1" && pwd)
shopt -s nullglob
debs=("$DEB_DIR"/ccached_*.deb "$DEB_DIR"/libpam-ccached_*.deb)
shopt -u nullglob
[ "${#debs[@]}" -eq 2 ] ||
    { echo "$PROG: need one ccached_*.deb and one libpam-ccached_*.deb in $DEB_DIR (make deb)" >&2; exit 2; }

STATE="$ROOT_DIR/.build/upgrade-check"
ROOT="$STATE/root"
LOG="$STATE/log"
RT="$ROOT/var/tmp/rt"
passed=0
failed=0
started=$(date +%s)
declare -A LOGIN_PID=()

cleanup() {
    local name
    for name in "${!LOGIN_PID[@]}"; do kill "${LOGIN_PID[$name]}" 2>/dev/null; done
    if [ "${UPGRADE_CHECK_KEEP:-0}" != 1 ]; then
        [ -d "$RT" ] && { rm -rf "$LOG/rt"; cp -a "$RT" "$LOG/rt" 2>/dev/null; }
        inside journalctl --no-pager -o short-precise >"$LOG/journal.txt" 2>&1
        "$BOOTED" stop "$STATE" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() {
    echo "FAIL: $1"
    shift
    [ $# -eq 0 ] || printf '      %s\n' "$@" | head -n 30
    failed=$((failed + 1))
}
verdict() {
    local name=$1 detail=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$detail"; fi
}
inside() { "$BOOTED" run "$STATE" "$@"; }
wait_for() {
    local limit=$(($1 * 5)) i
    shift
    for ((i = 0; i < limit; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
finish() {
    echo "upgrade check took $(($(date +%s) - started)) s; logs in $LOG"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] || exit 1
    exit 0
}

# ---- logins driven by an agent (as in login-routing-check.sh) -------------------------------------
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o PreferredAuthentications=password -o PubkeyAuthentication=no -o GSSAPIAuthentication=no)

login_ssh() {
    local name=$1 user=$2 password=$3
    rm -rf "$RT/$name"
    inside sshpass -p "$password" ssh "${SSH_OPTS[@]}" "$user@127.0.0.1" /usr/local/lib/rt/agent "$name" \
        >"$LOG/login-$name.txt" 2>&1 &
    LOGIN_PID[$name]=$!
    wait_for 30 test -e "$RT/$name/ready"
}

in_login() {
    local name=$1 script=$2 n
    n=$(find "$RT/$name" -maxdepth 1 -name 'cmd.*' ! -name '*.tmp' | wc -l)
    printf '%s\n' "$script" >"$RT/$name/cmd.$n.tmp"
    chmod 0644 "$RT/$name/cmd.$n.tmp"
    mv "$RT/$name/cmd.$n.tmp" "$RT/$name/cmd.$n"
    if ! wait_for 90 test -e "$RT/$name/rc.$n"; then
        echo "(no answer from login $name within 90 s)"
        return 124
    fi
    cat "$RT/$name/out.$n"
    return "$(cat "$RT/$name/rc.$n")"
}

install_helpers() {
    local d="$ROOT/usr/local/lib/rt"
    mkdir -p "$d" "$RT"
    chmod 1777 "$RT"
    cat >"$d/agent" <<'EOF'
#!/bin/bash
# Runs the scripts the test drops into /var/tmp/rt/NAME, in this login's environment.
d=/var/tmp/rt/$1
mkdir -p "$d"
touch "$d/ready"
n=0
while :; do
    if [ -e "$d/cmd.$n" ]; then
        bash "$d/cmd.$n" >"$d/out.$n" 2>&1 </dev/null
        echo $? >"$d/rc.$n.tmp"
        mv "$d/rc.$n.tmp" "$d/rc.$n"
        n=$((n + 1))
        continue
    fi
    [ -e "$d/exit" ] && exit 0
    sleep 0.1
done
EOF
    # klist-loop DIR: klist until DIR/stop exists, in turn with the login's environment and with
    # none (env -i: the standard KCM socket, so through ccached-door); counts the runs in DIR/runs
    # and writes every failure (its output) to DIR/errors.
    cat >"$d/klist-loop" <<'EOF'
#!/bin/bash
d=$1
mkdir -p "$d"
rm -f "$d/stop" "$d/errors"
: >"$d/errors"
runs=0
while [ ! -e "$d/stop" ]; do
    if [ $((runs % 2)) = 0 ]; then out=$(klist 2>&1); else out=$(env -i PATH=/usr/bin:/bin klist 2>&1); fi
    if [ $? != 0 ] || ! grep -q "Default principal: " <<<"$out"; then
        printf '%s run %d: %s\n' "$(date +%T.%N)" "$runs" "$out" >>"$d/errors"
    fi
    runs=$((runs + 1))
    echo "$runs" >"$d/runs"
done
touch "$d/done"
EOF
    # daemons: each running ccached as "PID UID EXE".
    cat >"$d/daemons" <<'EOF'
#!/bin/bash
for pid in $(pgrep -x ccached); do
    echo "$pid $(stat -c %u /proc/$pid) $(readlink /proc/$pid/exe)"
done | sort -n
EOF
    chmod 0755 "$d"/*
}

# loop_start NAME: a klist loop in login NAME, in the background of the login.
loop_start() {
    in_login "$1" "setsid /usr/local/lib/rt/klist-loop /var/tmp/rt/$1/loop >/dev/null 2>&1 & sleep 0.5" >/dev/null
}
# loop_stop NAME: stops it; prints "RUNS ERRORS".
loop_stop() {
    local d="$RT/$1/loop"
    touch "$d/stop"
    wait_for 20 test -e "$d/done"
    echo "$(cat "$d/runs" 2>/dev/null || echo 0) $(wc -l <"$d/errors" 2>/dev/null || echo '?')"
}

# ---- the newer packages: the built ones, repacked with a bumped version ---------------------------
rm -rf "$STATE"
mkdir -p "$STATE" "$LOG" "$STATE/old" "$STATE/new"
cp "${debs[@]}" "$STATE/old/"
for deb in "${debs[@]}"; do
    unpacked="$STATE/unpacked"
    rm -rf "$unpacked"
    dpkg-deb -R "$deb" "$unpacked"
    sed -i -e 's/^\(Version: .*\)$/\1+upgrade1/' \
        -e 's/^\(Depends: .*ccached (= [^)]*\))/\1+upgrade1)/' "$unpacked/DEBIAN/control"
    dpkg-deb --root-owner-group -b "$unpacked" "$STATE/new/" >/dev/null || { echo "$PROG: dpkg-deb -b failed" >&2; exit 1; }
done
rm -rf "$STATE/unpacked"
old_version=$(dpkg-deb -f "$STATE/old/"ccached_*.deb Version)
new_version=$(dpkg-deb -f "$STATE/new/"ccached_*.deb Version)
echo "$PROG: upgrading $old_version -> $new_version"

# ---- the container, the KDC, the users, the old packages ------------------------------------------
export BOOTED_EXTRA_PACKAGES="$BASE_PACKAGES"
if ! "$BOOTED" boot "$STATE" >"$LOG/boot.txt" 2>&1; then
    fail "the container boots" "$(tail -n 5 "$LOG/boot.txt")"
    finish
fi
mkdir -p "$ROOT/root/pkg"
cp -a "$STATE/old" "$STATE/new" "$ROOT/root/pkg/"
install -m 0755 "$ROOT_DIR/scripts/testkdc.sh" "$ROOT/root/pkg/testkdc.sh"
install_helpers
if inside bash -c 'set -e
        /root/pkg/testkdc.sh start /root/kdc >/root/kdc.log 2>&1
        install -m 0644 /root/kdc/krb5.conf /etc/krb5.conf
        for u in alice bob; do useradd -m -s /bin/bash "$u"; done' >"$LOG/kdc.txt" 2>&1; then
    pass "the container boots; a test KDC on its loopback; users alice and bob"
else
    fail "a test KDC and the users" "$(tail -n 5 "$LOG/kdc.txt")"
    finish
fi
if inside bash -c 'cd /root/pkg/old && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ./ccached_*.deb ./libpam-ccached_*.deb' >"$LOG/install.txt" 2>&1; then
    pass "apt-get install ccached $old_version"
else
    fail "apt-get install ccached $old_version" "$(tail -n 8 "$LOG/install.txt")"
    finish
fi

# ---- two logins with tickets ----------------------------------------------------------------------
ok=yes
login_ssh a1 alice pw-alice || ok=no
login_ssh b1 bob pw-bob || ok=no
a_kinit=$(in_login a1 'echo pw-alice | kinit -r 1d alice >/dev/null && kvno host/localhost >/dev/null && klist') || ok=no
b_kinit=$(in_login b1 'echo pw-bob | kinit bob >/dev/null && klist') || ok=no
verdict "two ssh logins (alice, bob) each kinit against the KDC" "$a_kinit / $b_kinit" \
    bash -c '[ "$0" = yes ] && grep -q "Default principal: alice@" <<<"$1" && grep -q "host/localhost@" <<<"$1" &&
        grep -q "Default principal: bob@" <<<"$2"' "$ok" "$a_kinit" "$b_kinit"
daemons_before=$(inside /usr/local/lib/rt/daemons)
echo "$daemons_before" >"$LOG/daemons-before.txt"
count=$(grep -c . <<<"$daemons_before")
verdict "two daemons or more run /usr/bin/ccached ($count)" "$daemons_before" \
    bash -c '[ "$(grep -c " /usr/bin/ccached$" <<<"$0")" -ge 2 ]' "$daemons_before"

# every_daemon_moved BEFORE: the same pids run, each now the installed /usr/bin/ccached (its inode).
every_daemon_moved() {
    local before=$1 now pid rest inode
    inode=$(stat -c %i "$ROOT/usr/bin/ccached")
    now=$(inside /usr/local/lib/rt/daemons)
    [ "$(cut -d' ' -f1-2 <<<"$now")" = "$(cut -d' ' -f1-2 <<<"$before")" ] || return 1
    while read -r pid rest; do
        [ "${rest#* }" = /usr/bin/ccached ] || return 1
        [ "$(inside stat -L -c %i "/proc/$pid/exe")" = "$inode" ] || return 1
    done <<<"$now"
}

tickets_still_listed() {
    local a b
    a=$(in_login a1 'klist') && b=$(in_login b1 'klist') || return 1
    grep -q "Default principal: alice@" <<<"$a" && grep -q "host/localhost@" <<<"$a" &&
        grep -q "Default principal: bob@" <<<"$b"
}

# ---- the upgrade ----------------------------------------------------------------------------------
loop_start a1
inside journalctl --no-pager -o cat >"$LOG/journal-before-upgrade.txt" 2>&1
if inside bash -c 'cd /root/pkg/new && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ./ccached_*.deb ./libpam-ccached_*.deb' >"$LOG/upgrade.txt" 2>&1; then
    pass "apt-get install ccached $new_version over $old_version, with both logins holding tickets"
else
    fail "apt-get install ccached $new_version" "$(tail -n 8 "$LOG/upgrade.txt")"
fi
verdict "every daemon keeps its pid and runs the new /usr/bin/ccached (not \"(deleted)\")" \
    "$(inside /usr/local/lib/rt/daemons)" wait_for 15 every_daemon_moved "$daemons_before"
sleep 1
result=$(loop_stop a1)
verdict "a klist loop in alice's login ran through the upgrade without an error (runs, errors: $result)" \
    "$(head -n 5 "$RT/a1/loop/errors" 2>/dev/null)" bash -c 'set -- $0; [ "$1" -gt 0 ] && [ "$2" = 0 ]' "$result"
verdict "every ticket is still listed after the upgrade" "$(in_login a1 klist; in_login b1 klist)" tickets_still_listed
reexecs=$(inside journalctl --no-pager -o cat | grep -c 're-executed: serving')
verdict "the journal shows each daemon re-executed ($reexecs)" \
    "$(inside journalctl --no-pager -o cat | grep -iE 're-execut|restored|not re-executing' | tail -n 8)" \
    test "$reexecs" -ge "$count"
door_exe=$(inside bash -c 'readlink /proc/$(systemctl show -P MainPID ccached-door.service)/exe' 2>&1)
verdict "the door runs the new binary ($door_exe)" "$door_exe" test "$door_exe" = /usr/bin/ccached-door

# ---- a door restart -------------------------------------------------------------------------------
door_before=$(inside systemctl show -P MainPID ccached-door.service)
daemons_after=$(inside /usr/local/lib/rt/daemons)
loop_start a1
inside systemctl restart ccached-door.service >"$LOG/door-restart.txt" 2>&1
sleep 2
door_after=$(inside systemctl show -P MainPID ccached-door.service)
result=$(loop_stop a1)
socket_state=$(inside systemctl is-active ccached-door.socket 2>&1)
verdict "systemctl restart ccached-door.service: a new door ($door_before -> $door_after), ccached-door.socket $socket_state" \
    "$(inside systemctl status --no-pager ccached-door.socket ccached-door.service 2>&1 | head -n 20)" \
    bash -c '[ "$0" != "$1" ] && [ "$1" != 0 ] && [ "$2" = active ]' "$door_before" "$door_after" "$socket_state"
verdict "a klist loop in alice's login ran through the door restart without an error (runs, errors: $result)" \
    "$(head -n 5 "$RT/a1/loop/errors" 2>/dev/null)" bash -c 'set -- $0; [ "$1" -gt 0 ] && [ "$2" = 0 ]' "$result"
verdict "the door restart left every daemon (same pids) and every ticket" \
    "$(inside /usr/local/lib/rt/daemons)" \
    bash -c '[ "$(cut -d" " -f1-2 <<<"$0")" = "$(cut -d" " -f1-2 <<<"$1")" ]' "$daemons_after" "$(inside /usr/local/lib/rt/daemons)"
verdict "every ticket is still listed after the door restart" "$(in_login a1 klist; in_login b1 klist)" tickets_still_listed
leftover=$(inside journalctl --no-pager -o cat 2>&1 | grep -iE 'left-over process|Stopping ccached-[0-9]')
verdict "nothing stopped a daemon (no 'Stopping ccached-UID-…' or 'left-over process' in the journal)" "$leftover" \
    test -z "$leftover"
finish
