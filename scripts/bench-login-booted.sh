#!/usr/bin/env bash
# What pam_ccached adds to a login, and what a login's first KCM connection costs, with the
# packages installed under a real systemd: the booted Debian 12 container of the login checks
# (scripts/booted-system.sh, audit sessions on), the built packages installed with apt-get, nothing
# configured by hand. Issue 21's target for a new session's first connection is 15 ms, daemon start
# included; on an installed host an interactive login's daemon starts in pam_ccached, so the start
# is part of the login. Run by hand (root, ~2 min once the container's tree is cached):
#
#   scripts/bench-login-booted.sh [--logins N] DEB_DIR
#
# Two phases of N rounds each (after one round that is not counted: it starts user@1000.service):
#   on:  libpam-ccached enabled (the package's default): pam_ccached starts the session's daemon in
#        open_session, so its first connection finds the daemon running;
#   off: libpam-ccached disabled (pam-auth-update --disable ccached): ccached-door starts the daemon
#        at the first connection, as for every session without the module (cron jobs: the module
#        is for interactive sessions only).
# A round is two new `su - u1` logins (logind sessions of class user): one that runs `true` (the
# login alone: PAM, the shell, the logout; timed from fork to exit) and one whose command is a Python
# probe timing its first connection to the door (connect, GET_DEFAULT_CACHE, the reply; the
# probe's own start is not in the figure). Prints the samples and, per phase, median, p90 and range
# in milliseconds; pam_ccached's cost per login is the difference of the login medians. The last
# lines are machine-readable:
#   login-booted pam=on|off rounds=N login_ms=… login_p90_ms=… first_connection_ms=… first_p90_ms=…
set -uo pipefail

logins=15
if [ "${1:-}" = --logins ]; then
    logins=$2
    shift 2
fi
# shellcheck disable=SC2034 # booted-check-lib.sh reads it
CHECK_NAME="login bench"
# shellcheck source=scripts/booted-check-lib.sh
. "$(dirname "$0")/booted-check-lib.sh" || exit 2
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
booted_check_args login-bench "$@"
[[ $logins =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --logins takes a positive number" >&2; exit 2; }

trap '"$BOOTED" stop "$STATE" >/dev/null 2>&1 || true' EXIT
mkdir -p "$LOG"
export BOOTED_EXTRA_PACKAGES="$LOGIN_BASE_PACKAGES"
"$BOOTED" boot "$STATE" >"$LOG/boot.txt" 2>&1 || { echo "$PROG: the container did not boot (see $LOG/boot.txt)" >&2; exit 1; }
mkdir -p "$ROOT/root/pkg" "$ROOT/usr/local/lib/bench"
cp "$DEB_CCACHED" "$DEB_PAM" "$ROOT/root/pkg/"
install_debs
inside useradd -m -s /bin/bash u1
# The probe: one connection to the door's socket as a client makes it, timed from connect to the
# whole reply; prints microseconds, or the failure.
cat >"$ROOT/usr/local/lib/bench/first.py" <<'EOF'
import socket, struct, sys, time
t0 = time.perf_counter_ns()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/run/.heim_org.h5l.kcm-socket")
s.sendall(struct.pack(">IBBH", 4, 2, 0, 20))  # GET_DEFAULT_CACHE: version 2.0, opcode 20
head = b""
while len(head) < 4:
    part = s.recv(4 - len(head))
    if not part:
        sys.exit("closed before the reply")
    head += part
(length,) = struct.unpack(">I", head)
body = b""
while len(body) < length:
    part = s.recv(length - len(body))
    if not part:
        sys.exit("closed inside the reply")
    body += part
t1 = time.perf_counter_ns()
status = struct.unpack(">i", body[:4])[0] if length >= 4 else None
if status != 0:
    sys.exit("status %s" % status)
print((t1 - t0) // 1000)
EOF

# timed_login CMD: the microseconds of one `su - u1 -c CMD` (fork to exit), a space, and CMD's
# output; or "failed: …".
# shellcheck disable=SC2016 # expanded by the inner bash
timed_login() {
    inside bash -c 't0=$(date +%s%N)
        out=$(XDG_SESSION_CLASS=user su - u1 -c "$1" 2>&1)
        rc=$?; t1=$(date +%s%N)
        [ $rc -eq 0 ] || { echo "failed: $out"; exit 1; }
        echo $(( (t1 - t0) / 1000 )) $out' _ "$1"
}
# phase NAME: the uncounted round, then N rounds; prints the samples and the summary.
phase() {
    local name=$1 line login_ms=() first_ms=() i s
    timed_login true >/dev/null
    sleep 0.5
    for ((i = 0; i < logins; i++)); do
        line=$(timed_login true)
        [[ $line =~ ^[0-9]+$ ]] || { echo "$PROG: a login failed: $line" >&2; exit 1; }
        login_ms+=("$(awk -v us="$line" 'BEGIN { printf "%.1f", us / 1000 }')")
        # The login's end (pam_ccached stops its daemon; logind removes the session) before the next.
        sleep 0.5
        line=$(timed_login "python3 /usr/local/lib/bench/first.py")
        [[ $line =~ ^[0-9]+\ [0-9]+$ ]] || { echo "$PROG: a login failed: $line" >&2; exit 1; }
        first_ms+=("$(awk -v us="${line#* }" 'BEGIN { printf "%.2f", us / 1000 }')")
        sleep 0.5
    done
    echo "pam_ccached $name: su - u1 -c true (ms): ${login_ms[*]}"
    echo "  first connections in su - u1 logins (ms): ${first_ms[*]}"
    read -r -a s <<<"$(printf '%s\n' "${login_ms[@]}" | ms_stats)"
    local login_median=${s[1]} login_p90=${s[2]}
    echo "  login: median ${s[1]}, p90 ${s[2]} (${s[3]}–${s[4]})"
    read -r -a s <<<"$(printf '%s\n' "${first_ms[@]}" | ms_stats)"
    echo "  first connection: median ${s[1]}, p90 ${s[2]} (${s[3]}–${s[4]})"
    results+=("login-booted pam=$name rounds=$logins login_ms=$login_median login_p90_ms=$login_p90 first_connection_ms=${s[1]} first_p90_ms=${s[2]}")
}

results=()
inside systemctl is-active --quiet ccached-door.socket || { echo "$PROG: ccached-door.socket is not active after the install" >&2; exit 1; }
inside grep -q pam_ccached /etc/pam.d/common-session || { echo "$PROG: the install did not enable pam_ccached" >&2; exit 1; }
phase on
inside pam-auth-update --package --disable ccached >/dev/null 2>&1
inside grep -q pam_ccached /etc/pam.d/common-session && { echo "$PROG: pam_ccached still enabled" >&2; exit 1; }
phase off
units=$(inside journalctl --no-pager -b -q -o cat -g '^Started ccached-1000-' | wc -l)
echo "($units units ccached-1000-*.service started by systemd in all; logs in $LOG)"
printf '%s\n' "${results[@]}"
