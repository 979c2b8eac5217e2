# shellcheck shell=bash
# Sourced by the checks that boot a container and install the packages (package-test.sh,
# login-routing-check.sh): their call, the PASS/FAIL tally and the helpers each of them needs.
# The sourcing script sets PROG, BOOTED, STATE, LOG and CHECK_NAME (as the last lines say it) first.

# booted_check_args "$@": exits 0 (SKIPPED, loudly) when not root and 2 on a wrong call; sets
# DEB_DIR and DEB_CCACHED, DEB_PAM: the one ccached_*.deb and libpam-ccached_*.deb in it.
booted_check_args() {
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
# finish: the duration, where the logs are and "N passed, M failed"; exits 1 on any failure. A
# script that prints more first defines before_finish.
finish() {
    if declare -F before_finish >/dev/null; then before_finish; fi
    echo "$CHECK_NAME took $(($(date +%s) - started)) s; logs in $LOG"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] || exit 1
    exit 0
}
