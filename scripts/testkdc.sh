#!/usr/bin/env bash
# A throwaway MIT Kerberos KDC on 127.0.0.1, living entirely in one directory.
#
#   scripts/testkdc.sh start DIR [--services N]
#   scripts/testkdc.sh stop DIR
#
# start creates realm CCACHED.TEST in DIR (database, stash, kdc.conf, client
# krb5.conf, keytab), runs krb5kdc in the background on a free loopback port,
# checks that a real kinit works, and writes DIR/kdc.env:
#
#   REALM=CCACHED.TEST
#   KDC_PORT=<port>
#   KDC_PID=<pid>
#   KRB5_REALM_CONF=DIR/krb5.conf
#   KRB5_KDC_PROFILE=DIR/kdc.conf
#   SERVICES_KEYTAB=DIR/services.keytab
#
# Principals: alice, bob, carol (passwords pw-alice, pw-bob, pw-carol;
# renewable up to 7 days), host/localhost and HTTP/localhost (random keys,
# exported to DIR/services.keytab), and with --services N also svc1/localhost
# ... svcN/localhost (random keys, not exported).
#
# DIR/krb5.conf deliberately sets neither default_ccache_name nor kcm_socket,
# so that a file listed before it in KRB5_CONFIG can choose the cache.
#
# stop kills the KDC recorded in DIR/kdc.pid (TERM, then KILL after 5 s). It is
# fine to call it when the KDC is already gone. It leaves DIR in place.
set -euo pipefail

REALM=CCACHED.TEST
PROG=${0##*/}

usage() {
    echo "usage: $PROG start DIR [--services N]" >&2
    echo "       $PROG stop DIR" >&2
    exit 2
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# Locate an admin tool that lives in /usr/sbin, even when that is not on PATH.
find_tool() {
    local name=$1 dir
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    for dir in /usr/sbin /sbin /usr/local/sbin; do
        if [ -x "$dir/$name" ]; then
            echo "$dir/$name"
            return 0
        fi
    done
    die "cannot find $name (install krb5-kdc and krb5-admin-server: scripts/install-deps.sh)"
}

# True if PID is a live (non-zombie) process.
alive() {
    local pid=$1 state
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A zombie still answers kill -0; treat it as gone.
    if [ -r "/proc/$pid/stat" ]; then
        state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || true
        [ "$state" != Z ] || return 1
    fi
    return 0
}

# True if PID is alive and is the krb5kdc serving DIR (guards against a
# recycled pid, including one now used by another directory's KDC).
is_our_kdc() {
    local pid=$1 dir=$2 comm
    alive "$pid" || return 1
    if [ -r "/proc/$pid/comm" ]; then
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
        [ "$comm" = krb5kdc ] || return 1
    fi
    if [ -r "/proc/$pid/environ" ]; then
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
            grep -Fqx "KRB5_KDC_PROFILE=$dir/kdc.conf" || return 1
    fi
    return 0
}

# Port reservation, run as a bash coproc. It picks a TCP+UDP port on
# 127.0.0.1 that nothing is bound to, prints it, and keeps it claimed until
# its stdin closes or it is killed. The claim is an abstract unix socket
# named after the port: binding one is atomic and exclusive, so two
# concurrent starts can never both pick the same port, and it vanishes with
# the process (no lock file to clean up). This matters because krb5kdc binds
# with SO_REUSEPORT/SO_REUSEADDR: a second KDC on a port already in use does
# NOT fail, it silently shares the port and steals half the requests.
# Ports come from 10000-29999, below Linux's ephemeral range, so outgoing
# client sockets never take them.
PORT_RESERVER='
import random, socket, sys
claim = None
for _ in range(1000):
    port = random.randint(10000, 29999)
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind("\0ccached-testkdc-port-%d" % port)
    except OSError:
        lock.close()
        continue
    free = True
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        probe = socket.socket(socket.AF_INET, kind)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            free = False
        finally:
            probe.close()
    if free:
        claim = lock
        break
    lock.close()
if claim is None:
    sys.exit("no free port found on 127.0.0.1")
print(port, flush=True)
try:
    sys.stdin.read()
except BaseException:
    pass
'

reserve_port() {
    coproc RESERVER { exec python3 -c "$PORT_RESERVER"; }
    RESERVER_PID_SAVED=$RESERVER_PID
    if ! read -r -t 10 PORT <&"${RESERVER[0]}" || [ -z "$PORT" ]; then
        release_port
        die "could not find a free port on 127.0.0.1"
    fi
}

release_port() {
    if [ -n "${RESERVER_PID_SAVED:-}" ]; then
        # SIGKILL, not SIGTERM: a caller may have started us with SIGTERM
        # ignored (Swift programs commonly set SIG_IGN to use a dispatch
        # signal source), and ignored signals are inherited across exec.
        kill -KILL "$RESERVER_PID_SAVED" 2>/dev/null || true
        wait "$RESERVER_PID_SAVED" 2>/dev/null || true
        RESERVER_PID_SAVED=
    fi
}

# Exec argv[1:] with no signals blocked. A program started from a Swift
# test (Foundation.Process called on a dispatch worker thread) inherits that
# thread's mask, in which SIGTERM, SIGINT, SIGHUP... are blocked; exec keeps
# the mask, so krb5kdc would never see our SIGTERM. Python's own SIG_IGN for
# SIGPIPE and SIGXFSZ is undone as well.
CLEAN_EXEC='
import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
for sig in (signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(sig, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
'

write_configs() {
    local dir=$1 port=$2

    cat >"$dir/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$port
    kdc_tcp_listen = 127.0.0.1:$port

[realms]
    $REALM = {
        database_name = $dir/principal
        key_stash_file = $dir/stash
        acl_file = $dir/kadm5.acl
        admin_keytab = FILE:$dir/kadm5.keytab
        max_life = 10h
        max_renewable_life = 7d
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }

[plugins]
    # SPAKE needs spake_preauth_groups; without it the KDC logs a scary but
    # harmless "(Error): preauth spake failed to initialize" at startup.
    kdcpreauth = {
        disable = spake
    }

[logging]
    kdc = FILE:$dir/kdc.log
    admin_server = FILE:$dir/kadmin.log
    default = FILE:$dir/krb5.log
EOF

    cat >"$dir/krb5.conf" <<EOF
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    forwardable = true
    renew_lifetime = 7d

[realms]
    $REALM = {
        kdc = 127.0.0.1:$port
    }

[domain_realm]
    localhost = $REALM
EOF
}

# Start krb5kdc and wait until it accepts TCP connections on PORT.
# Returns 0 when up, 1 if the process died, 2 on timeout.
launch_kdc() {
    local dir=$1 port=$2 i
    : >"$dir/kdc.log"
    # stdin/stdout/stderr are detached and every other inherited descriptor
    # is closed, so that callers capturing our output (e.g. with $(...)) or
    # waiting on a pipe do not hang until the KDC exits.
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then
                eval "exec $fd>&-" 2>/dev/null || true
            fi
        done
        exec python3 -c "$CLEAN_EXEC" "$KRB5KDC" -n -r "$REALM"
    ) </dev/null >"$dir/kdc.stdout" 2>&1 &
    KDC_PID=$!
    echo "$KDC_PID" >"$dir/kdc.pid"
    for ((i = 0; i < 200; i++)); do
        if ! alive "$KDC_PID"; then
            wait "$KDC_PID" 2>/dev/null || true
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 2
}

show_logs() {
    local dir=$1 f
    for f in kdc.log kdc.stdout; do
        if [ -s "$dir/$f" ]; then
            echo "---- $dir/$f ----" >&2
            tail -n 40 "$dir/$f" >&2
        fi
    done
}

stop_pid() {
    local pid=$1 dir=$2 i
    is_our_kdc "$pid" "$dir" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    echo "$PROG: warning: KDC pid $pid did not exit" >&2
}

cmd_start() {
    local dir=$1 services=$2

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)

    if [ -f "$dir/kdc.pid" ] && is_our_kdc "$(cat "$dir/kdc.pid" 2>/dev/null || true)" "$dir"; then
        die "a KDC is already running for $dir (pid $(cat "$dir/kdc.pid")); stop it first"
    fi
    # Leftovers of an earlier run in the same directory are ours to replace.
    rm -f "$dir"/principal "$dir"/principal.* "$dir"/stash "$dir"/kdc.conf \
        "$dir"/krb5.conf "$dir"/kdc.env "$dir"/kdc.pid "$dir"/services.keytab \
        "$dir"/kadm5.acl "$dir"/probe.ccache "$dir"/kdc.log "$dir"/kdc.stdout \
        "$dir"/kadmin.log "$dir"/krb5.log "$dir"/kadmin.out "$dir"/kdb5_util.out \
        "$dir"/probe.out

    KRB5KDC=$(find_tool krb5kdc)
    local kdb5_util kadmin_local
    kdb5_util=$(find_tool kdb5_util)
    kadmin_local=$(find_tool kadmin.local)
    local tool
    for tool in kinit klist python3; do
        command -v "$tool" >/dev/null 2>&1 || die "cannot find $tool (run scripts/install-deps.sh)"
    done

    export KRB5_CONFIG="$dir/krb5.conf"
    export KRB5_KDC_PROFILE="$dir/kdc.conf"
    unset KRB5CCNAME KRB5_KTNAME KRB5_CLIENT_KTNAME

    # If anything below fails, do not leave a KDC running.
    KDC_PID=
    KDC_DIR=$dir
    trap 'release_port; if [ -n "${KDC_PID:-}" ]; then stop_pid "$KDC_PID" "$KDC_DIR"; rm -f "$KDC_DIR/kdc.pid"; fi' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    local port
    reserve_port
    port=$PORT
    write_configs "$dir" "$port"
    : >"$dir/kadm5.acl"

    # The master password only protects the stash; nobody needs to know it.
    local master
    master=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    if ! "$kdb5_util" -r "$REALM" -P "$master" create -s >"$dir/kdb5_util.out" 2>&1; then
        cat "$dir/kdb5_util.out" >&2
        die "kdb5_util create failed"
    fi
    rm -f "$dir/kdb5_util.out"

    # One kadmin.local process for all principals: starting it once per
    # principal costs tens of milliseconds each.
    {
        echo "modprinc -maxlife 10h -maxrenewlife 7d krbtgt/$REALM@$REALM"
        local user
        for user in alice bob carol; do
            echo "addprinc -pw pw-$user -maxlife 10h -maxrenewlife 7d $user"
        done
        echo "addprinc -randkey -maxrenewlife 7d host/localhost"
        echo "addprinc -randkey -maxrenewlife 7d HTTP/localhost"
        local i
        for ((i = 1; i <= services; i++)); do
            echo "addprinc -randkey -maxrenewlife 7d svc$i/localhost"
        done
        echo "ktadd -k \"$dir/services.keytab\" -norandkey host/localhost HTTP/localhost"
    } | "$kadmin_local" -r "$REALM" >"$dir/kadmin.out" 2>&1 || {
        cat "$dir/kadmin.out" >&2
        die "kadmin.local failed"
    }
    # kadmin.local carries on after a failed command and still exits 0, so
    # count what it reports to have done instead of trusting its status.
    local created modified want=$((5 + services))
    created=$(grep -c '^Principal ".*" created\.$' "$dir/kadmin.out" || true)
    modified=$(grep -c "^Principal \"krbtgt/$REALM@$REALM\" modified\.\$" "$dir/kadmin.out" || true)
    if [ "$created" -ne "$want" ] || [ "$modified" -ne 1 ]; then
        cat "$dir/kadmin.out" >&2
        die "kadmin.local created $created of $want principals (krbtgt modified: $modified)"
    fi
    local kt
    kt=$(klist -k "FILE:$dir/services.keytab" 2>/dev/null || true)
    case "$kt" in
        *"host/localhost@$REALM"*"HTTP/localhost@$REALM"*) ;;
        *)
            cat "$dir/kadmin.out" >&2
            die "kadmin.local did not export host/localhost and HTTP/localhost to $dir/services.keytab"
            ;;
    esac
    rm -f "$dir/kadmin.out"

    local rc=0
    launch_kdc "$dir" "$port" || rc=$?
    case "$rc" in
        0) ;;
        1)
            KDC_PID=
            show_logs "$dir"
            die "krb5kdc exited during startup"
            ;;
        *)
            show_logs "$dir"
            die "KDC did not come up on 127.0.0.1:$port within 10 s"
            ;;
    esac
    # The KDC holds the port now; nobody else can pick it.
    release_port

    # Real end-to-end check: MIT kinit reads the password from stdin when
    # stdin is not a terminal.
    if ! printf 'pw-alice\n' | KRB5CCNAME="FILE:$dir/probe.ccache" kinit alice \
            >"$dir/probe.out" 2>&1; then
        cat "$dir/probe.out" >&2
        show_logs "$dir"
        die "KDC is listening on 127.0.0.1:$port but kinit alice failed"
    fi
    rm -f "$dir/probe.ccache" "$dir/probe.out"

    cat >"$dir/kdc.env" <<EOF
REALM=$REALM
KDC_PORT=$port
KDC_PID=$KDC_PID
KRB5_REALM_CONF=$dir/krb5.conf
KRB5_KDC_PROFILE=$dir/kdc.conf
SERVICES_KEYTAB=$dir/services.keytab
EOF

    trap - EXIT INT TERM HUP
    echo "KDC for $REALM on 127.0.0.1:$port ($dir)"
}

cmd_stop() {
    local dir=$1 pid
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    [ -f "$dir/kdc.pid" ] || return 0
    pid=$(cat "$dir/kdc.pid" 2>/dev/null || true)
    case "$pid" in
        '' | *[!0-9]*) rm -f "$dir/kdc.pid"; return 0 ;;
    esac
    stop_pid "$pid" "$dir"
    rm -f "$dir/kdc.pid"
}

[ $# -ge 2 ] || usage
action=$1
target=$2
shift 2

case "$action" in
    start)
        nservices=0
        while [ $# -gt 0 ]; do
            case "$1" in
                --services)
                    [ $# -ge 2 ] || usage
                    nservices=$2
                    shift 2
                    ;;
                --services=*)
                    nservices=${1#--services=}
                    shift
                    ;;
                *) usage ;;
            esac
        done
        case "$nservices" in
            '' | *[!0-9]*) die "--services wants a non-negative integer, got '$nservices'" ;;
        esac
        cmd_start "$target" "$((10#$nservices))"
        ;;
    stop)
        [ $# -eq 0 ] || usage
        cmd_stop "$target"
        ;;
    *)
        usage
        ;;
esac
