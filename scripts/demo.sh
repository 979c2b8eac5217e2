#!/usr/bin/env bash
# `make demo`: the stock MIT Kerberos tools (kinit, klist, kvno, kswitch,
# kdestroy) keeping their tickets in the ccached daemon over KCM, against a
# throwaway KDC on 127.0.0.1. Everything lives in one temporary directory
# that is removed at the end, whether the demo succeeds or not.
#
#   CCACHED=/path/to/ccached scripts/demo.sh   (default: .build/debug/ccached)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESTKDC="$ROOT/scripts/testkdc.sh"

CCACHED=${CCACHED:-$ROOT/.build/debug/ccached}
if [ ! -f "$CCACHED" ] || [ ! -x "$CCACHED" ]; then
    echo "demo: no ccached binary at $CCACHED" >&2
    echo "demo: build it first with: make build" >&2
    exit 1
fi
CCACHED=$(cd "$(dirname "$CCACHED")" && pwd)/$(basename "$CCACHED")
CCACHECTL=$(dirname "$CCACHED")/ccachectl

header() {
    echo
    echo "==> $*"
}

fail() {
    echo >&2
    echo "demo: FAILED: $*" >&2
    if [ -n "${TMP:-}" ] && [ -s "$TMP/ccached.log" ]; then
        echo "---- last lines of the ccached log ----" >&2
        tail -n 30 "$TMP/ccached.log" >&2
    fi
    exit 1
}

# True if PID is a live process (a zombie counts as gone).
alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/stat" ]; then
        state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || true
        [ "$state" != Z ] || return 1
    fi
    return 0
}

# Seconds any one command may take; a daemon that accepts a connection but
# never answers would otherwise leave kinit waiting forever.
STEP_TIMEOUT=30

# Show a command as a user would type it, then run it (under a timeout).
# Usage: show_and_run [--input TEXT] COMMAND [ARGS...]
# --input feeds TEXT plus a newline on stdin, shown as `printf ... | COMMAND`.
# Sets SHOWN to the command as displayed and STEP_RC to its exit status.
show_and_run() {
    local input='' has_input=false
    if [ "$1" = --input ]; then
        input=$2
        has_input=true
        shift 2
    fi
    SHOWN="$*"
    if $has_input; then
        SHOWN="printf '$input\\n' | $SHOWN"
    fi
    echo "\$ $SHOWN"
    STEP_RC=0
    if $has_input; then
        printf '%s\n' "$input" | timeout --foreground -k 5 "$STEP_TIMEOUT" "$@" || STEP_RC=$?
    else
        timeout --foreground -k 5 "$STEP_TIMEOUT" "$@" </dev/null || STEP_RC=$?
    fi
    if [ "$STEP_RC" -eq 124 ] || [ "$STEP_RC" -eq 137 ]; then
        fail "'$SHOWN' did not finish within $STEP_TIMEOUT s (is ccached answering?)"
    fi
}

# Show and run a command; stop the demo if it fails.
run() {
    show_and_run "$@"
    [ "$STEP_RC" -eq 0 ] || fail "'$SHOWN' exited with status $STEP_RC"
}

# Show and run a command whose failure is expected: only report its status.
run_any() {
    show_and_run "$@"
    echo "(exit status $STEP_RC)"
}

TMP=
DAEMON_PID=
DAEMON_STATUS=

# Stop the daemon (SIGTERM, then SIGKILL after 5 s) and record its status.
stop_daemon() {
    local pid=$DAEMON_PID i
    [ -n "$pid" ] || return 0
    DAEMON_PID=
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 250; i++)); do
        alive "$pid" || break
        sleep 0.02
    done
    if alive "$pid"; then
        echo "demo: ccached did not exit within 5 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    DAEMON_STATUS=0
    wait "$pid" 2>/dev/null || DAEMON_STATUS=$?
}

cleanup() {
    local rc=$?
    set +e
    # Finish cleaning up even if the user presses Ctrl-C again.
    trap - EXIT
    trap '' INT TERM HUP
    stop_daemon
    if [ -n "$TMP" ]; then
        [ -d "$TMP/kdc" ] && "$TESTKDC" stop "$TMP/kdc"
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

TMP=$(mktemp -d /tmp/ccached-demo.XXXXXX)
SOCKET="$TMP/run/kcm.sock"

header "Starting a throwaway MIT KDC (realm CCACHED.TEST) on 127.0.0.1"
"$TESTKDC" start "$TMP/kdc" --services 3 || fail "could not start the test KDC"
KDC_PID=$(cat "$TMP/kdc/kdc.pid")

header "Starting the daemon: ccached --socket $SOCKET"
"$CCACHED" --socket "$SOCKET" </dev/null >"$TMP/ccached.log" 2>&1 &
DAEMON_PID=$!
for ((i = 0; i < 250; i++)); do
    [ -S "$SOCKET" ] && break
    alive "$DAEMON_PID" || break
    sleep 0.02
done
if ! alive "$DAEMON_PID"; then
    DAEMON_PID_DEAD=$DAEMON_PID
    DAEMON_PID=
    rc=0
    wait "$DAEMON_PID_DEAD" 2>/dev/null || rc=$?
    fail "ccached exited during startup (status $rc)"
fi
[ -S "$SOCKET" ] || fail "ccached did not create its socket $SOCKET within 5 s"
echo "ccached (pid $DAEMON_PID) is listening on $SOCKET"
# ccachectl finds this daemon through CCACHED_SOCKET, as ssh-add finds ssh-agent through SSH_AUTH_SOCK.
export CCACHED_SOCKET="$SOCKET"
if [ -f "$CCACHECTL" ] && [ -x "$CCACHECTL" ]; then
    run "$CCACHECTL" status
fi

header "Pointing the MIT Kerberos library at ccached"
cat >"$TMP/ccached-krb5.conf" <<EOF
[libdefaults]
    default_ccache_name = KCM:
    kcm_socket = $SOCKET
EOF
export KRB5_CONFIG="$TMP/ccached-krb5.conf:$TMP/kdc/krb5.conf"
unset KRB5CCNAME
echo "KRB5_CONFIG=$KRB5_CONFIG"
echo "MIT reads every file listed there; for each setting the first file that sets it wins."
echo "---- $TMP/ccached-krb5.conf ----"
cat "$TMP/ccached-krb5.conf"

header "Getting a ticket for alice (the password goes in on stdin)"
run --input pw-alice kinit alice
run klist

header "Getting service tickets; they are stored in the daemon too"
run kvno host/localhost HTTP/localhost
if [ -f "$CCACHECTL" ] && [ -x "$CCACHECTL" ]; then
    header "What the daemon holds, as ccachectl sees it"
    run "$CCACHECTL" list -v
fi

header "A second cache in the collection: bob"
run --input pw-bob kinit bob
run klist -l
if [ -f "$CCACHECTL" ] && [ -x "$CCACHECTL" ]; then
    run "$CCACHECTL" list
fi

header "Switching the default cache back to alice"
run kswitch -p alice
run klist -A

header "Destroying every cache"
run kdestroy -A
run_any klist -l
if [ "$STEP_RC" -eq 1 ]; then
    echo "(klist -l exits 1 when the collection is empty: every ticket is gone)"
else
    fail "klist -l should list nothing after kdestroy -A"
fi

header "Stopping the daemon, the KDC, and removing $TMP"
stop_daemon
echo "ccached exited with status $DAEMON_STATUS"
problems=()
[ "$DAEMON_STATUS" -eq 0 ] || problems+=("ccached exited with status $DAEMON_STATUS on SIGTERM")
if [ -e "$SOCKET" ]; then
    problems+=("ccached left its socket $SOCKET behind")
fi
"$TESTKDC" stop "$TMP/kdc"
if alive "$KDC_PID"; then
    problems+=("the KDC (pid $KDC_PID) is still running")
fi
rm -rf "$TMP"
if [ -e "$TMP" ]; then
    problems+=("$TMP could not be removed")
else
    REMOVED=$TMP
    TMP=
fi
if [ "${#problems[@]}" -ne 0 ]; then
    for p in "${problems[@]}"; do
        echo "demo: $p" >&2
    done
    exit 1
fi

header "demo finished: daemon stopped, KDC stopped, $REMOVED removed"
