# shellcheck shell=bash
# Sourced by the checks that boot a container and install the packages (package-test.sh,
# login-routing-check.sh, upgrade-booted-check.sh): their call, the PASS/FAIL tally and the
# helpers each of them needs.
# The sourcing script sets CHECK_NAME first, then calls booted_check_args NAME "$@".

PROG=${0##*/}
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOOTED="$ROOT_DIR/scripts/booted-system.sh"
# The packages the login checks add to the base tree (the same list: one cached tree for both).
LOGIN_BASE_PACKAGES="openssh-server sshpass libpam-krb5 cron at tmux dbus-user-session"

# booted_check_args NAME "$@": exits 0 (SKIPPED, loudly) when not root and 2 on a wrong call; sets
# DEB_DIR and DEB_CCACHED, DEB_PAM: the one ccached_*.deb and libpam-ccached_*.deb in it; and the
# check's paths: STATE (.build/NAME), ROOT (the container's tree, seen from the host), LOG, and RT
# (the login agents' directories, seen from the host).
booted_check_args() {
    STATE="$ROOT_DIR/.build/$1"
    ROOT="$STATE/root"
    LOG="$STATE/log"
    RT="$ROOT/var/tmp/rt"
    shift
    if [ "$(id -u)" -ne 0 ]; then
        echo "$PROG: SKIPPED — NOT RUN: needs root (it boots a container); nothing was checked" >&2
        exit 0
    fi
    [ $# -eq 1 ] || { echo "usage: $PROG DEB_DIR" >&2; exit 2; }
    DEB_DIR=$(cd "$1" && pwd)
    local ccached pam
    shopt -s nullglob
    ccached=("$DEB_DIR"/ccached_*.deb)
    pam=("$DEB_DIR"/libpam-ccached_*.deb)
    shopt -u nullglob
    [ "${#ccached[@]}" -eq 1 ] && [ "${#pam[@]}" -eq 1 ] ||
        { echo "$PROG: need exactly one ccached_*.deb and one libpam-ccached_*.deb in $DEB_DIR (make deb)" >&2; exit 2; }
    DEB_CCACHED=${ccached[0]}
    DEB_PAM=${pam[0]}
}

passed=0
failed=0
started=$(date +%s)

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
# fail NAME [DETAIL...]: FAIL, with the details (the observation) indented, 30 lines at most.
fail() {
    echo "FAIL: $1"
    shift
    [ $# -eq 0 ] || printf '      %s\n' "$@" | head -n 30
    failed=$((failed + 1))
}
# check NAME CMD...: PASS when CMD succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# verdict NAME DETAIL CMD...: PASS when CMD succeeds, else FAIL with DETAIL (the observation).
verdict() {
    local name=$1 detail=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$detail"; fi
}
# inside CMD...: run CMD as root in the container.
inside() { "$BOOTED" run "$STATE" "$@"; }
# wait_for SECONDS CMD...: until CMD succeeds (polling, not a timing assertion).
wait_for() {
    local limit=$(($1 * 5)) i
    shift
    for ((i = 0; i < limit; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
# install_debs: apt-get install of the packages in the container's /root/pkg; PASS, or FAIL with
# the end of apt's output, and finish.
install_debs() {
    local name="apt-get install ./ccached_*.deb ./libpam-ccached_*.deb"
    if inside bash -c 'cd /root/pkg && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ./ccached_*.deb ./libpam-ccached_*.deb' >"$LOG/install.txt" 2>&1; then
        pass "$name"
    else
        fail "$name" "$(tail -n 8 "$LOG/install.txt")"
        finish
    fi
}
# finish: the duration, where the logs are and "N passed, M failed"; exits 1 on any failure. A
# script that prints more first defines before_finish.
finish() {
    if declare -F before_finish >/dev/null; then before_finish; fi
    echo "$CHECK_NAME took $(($(date +%s) - started)) s; logs in $LOG"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] || exit 1
    exit 0
}

# ---- logins driven by an agent (login-routing-check.sh, upgrade-booted-check.sh) -----------------
# A login runs /usr/local/lib/rt/agent NAME as its command: the agent runs each script the test
# drops into /var/tmp/rt/NAME (cmd.N -> out.N, rc.N) in the login's own environment, until told
# to exit. So a login can live across several steps, as a real one does.
declare -A LOGIN_PID=()
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o PreferredAuthentications=password -o PubkeyAuthentication=no -o GSSAPIAuthentication=no)

# login_ssh NAME USER PASSWORD: an ssh password login to 127.0.0.1 (pam_krb5 gets the TGT).
login_ssh() {
    local name=$1 user=$2 password=$3
    rm -rf "$RT/$name"
    inside sshpass -p "$password" ssh "${SSH_OPTS[@]}" "$user@127.0.0.1" /usr/local/lib/rt/agent "$name" \
        >"$LOG/login-$name.txt" 2>&1 &
    LOGIN_PID[$name]=$!
    wait_for 30 test -e "$RT/$name/ready"
}

# in_login NAME SCRIPT: runs SCRIPT (bash) in the login; prints its output; its exit status.
# (Often called in $(...), a subshell: the next number is the count of scripts already there.)
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

# install_agent: makes $RT (1777) and puts the agent in the container's /usr/local/lib/rt.
install_agent() {
    local d="$ROOT/usr/local/lib/rt"
    mkdir -p "$d" "$RT"
    chmod 1777 "$RT"
    cat >"$d/agent" <<'EOF'
#!/bin/bash
# Runs the scripts the test drops into /var/tmp/rt/NAME, in this login's environment.
d=/var/tmp/rt/$1
mkdir -p "$d"
env | sort >"$d/env"
cat /proc/self/sessionid >"$d/audit-session" 2>/dev/null
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
    chmod 0755 "$d/agent"
}
