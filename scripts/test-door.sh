#!/usr/bin/env bash
# End-to-end tests of ccached-door (issue 11) with the stock MIT tools, a real KDC and real daemons.
#
#   scripts/test-door.sh [--bin DIR] [--heimdal ROOT] [--demo]
#
# --demo builds the same world but, instead of the checks, shows a stock ksu, sudo and (with
# --heimdal) a Heimdal klist finding the session's tickets through the door (make demo-door).
#
# DIR holds ccached and ccached-door (default .build/debug). ROOT is Debian 12's Heimdal 7.8 client
# tools and libraries unpacked with dpkg -x (scripts/fetch-heimdal.sh; heimdal-clients conflicts
# with krb5-user, so it is never installed); without it the Heimdal checks say SKIPPED, NOT RUN.
#
# Needs root: it builds a private world and changes nothing on the host. It re-executes itself
# under `unshare -m -u` (private mounts, own hostname), then in that namespace binds a temporary
# directory over /run, a system-style krb5.conf (default_ccache_name = KCM:, nothing else of ours)
# over /etc/krb5.conf, copies of /etc/passwd, /etc/group and /etc/shadow with three test users over
# the originals, and the KDC's host/localhost keytab over /etc/krb5.keytab (for ksu). The tools run
# with neither KRB5_CONFIG nor KRB5CCNAME, so only the standard socket /run/.heim_org.h5l.kcm-socket
# can lead them to a daemon. Everything lives in one temporary directory, removed at the end; the
# KDC and every daemon started are stopped. The last line is "N passed, M failed".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=$repo/.build/debug
heimdal=
demo=
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --heimdal) heimdal=$(cd "$2" && pwd); shift 2 ;;
        --demo) demo=1; shift ;;
        *) echo "usage: $0 [--bin DIR] [--heimdal ROOT]" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "test-door: SKIPPED, NOT RUN: these tests need root (users, mount namespace, setuid ksu)." >&2
    echo "0 passed, 0 failed (all skipped: not root)"
    exit 0
fi
for tool in kinit klist kvno kdestroy ksu sudo unshare setpriv systemd-socket-activate python3; do
    command -v "$tool" >/dev/null || { echo "test-door: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "test-door: $bin/$program is missing (swift build)" >&2; exit 1; }
done

if [ -z "${CCACHED_DOOR_TEST_INSIDE:-}" ]; then
    exec unshare --mount --uts --propagation private env CCACHED_DOOR_TEST_INSIDE=1 "$0" --bin "$bin" \
        ${heimdal:+--heimdal "$heimdal"} ${demo:+--demo}
fi

# ---- inside the private namespace from here on ----
hostname localhost
T=$(mktemp -d /tmp/ccached-door-test.XXXXXX)
chmod 0755 "$T"
door_pid=
# The pids of the ccached daemons started in this test: in this mount namespace, socket under /run.
our_daemons() {
    local ns pid
    ns=$(readlink /proc/self/ns/mnt)
    for pid in $(pgrep -x ccached); do
        [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--socket /run/" && echo "$pid"
    done
}
cleanup() {
    [ -n "$door_pid" ] && kill "$door_pid" 2>/dev/null
    # The daemons the door started: ccached processes in this mount namespace, by pid.
    for pid in $(our_daemons); do kill "$pid" 2>/dev/null; done
    "$here/testkdc.sh" stop "$T/kdc" >/dev/null 2>&1
    umount -l /run /etc/krb5.conf /etc/passwd /etc/group /etc/shadow /etc/krb5.keytab 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

passed=0
failed=0
known=()
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/       /'
}
# A check of something issue 11 asks for that is not built yet: shown loudly, never counted as a pass.
known_failure() {
    known+=("$1")
    echo "KNOWN FAILURE (not built yet) - $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/       /'
}
# check NAME COMMAND...: passes when the command succeeds.
check() {
    local name=$1
    shift
    local output
    if output=$("$@" 2>&1); then pass "$name"; else fail "$name" "$output"; fi
}

"$here/testkdc.sh" start "$T/kdc" >"$T/kdc-start.log" 2>&1 || { cat "$T/kdc-start.log"; exit 1; }

# The world: /run, krb5.conf, users, host keytab.
mkdir -p "$T/run" "$T/home" "$T/sync"
chmod 0755 "$T/run" "$T/home"
chmod 1777 "$T/sync"
mount --bind "$T/run" /run
sed 's/^\[libdefaults\]$/[libdefaults]\n    default_ccache_name = KCM:\n    default_cc_type = KCM/' "$T/kdc/krb5.conf" >"$T/krb5.conf"
touch /etc/krb5.conf /etc/krb5.keytab 2>/dev/null
mount --bind "$T/krb5.conf" /etc/krb5.conf
cp "$T/kdc/services.keytab" "$T/krb5.keytab" && chmod 0600 "$T/krb5.keytab"
mount --bind "$T/krb5.keytab" /etc/krb5.keytab
cp /etc/passwd "$T/passwd"
cp /etc/group "$T/group"
cp /etc/shadow "$T/shadow"
for entry in alice:20001 bob:20002 carol:20003; do
    name=${entry%%:*}
    uid=${entry##*:}
    echo "$name:x:$uid:$uid::$T/home/$name:/bin/sh" >>"$T/passwd"
    echo "$name:x:$uid:" >>"$T/group"
    echo "$name:*:19000:0:99999:7:::" >>"$T/shadow"
    mkdir -p "$T/home/$name"
done
mount --bind "$T/passwd" /etc/passwd
mount --bind "$T/group" /etc/group
mount --bind "$T/shadow" /etc/shadow
for name in alice bob carol; do chown "$name:$name" "$T/home/$name"; done
# ksu: bob lets alice in.
echo "alice@CCACHED.TEST" >"$T/home/bob/.k5login"
chown bob:bob "$T/home/bob/.k5login"

start_door() {
    "$bin/ccached-door" --ccached "$bin/ccached" --log-level debug "$@" >>"$T/door.log" 2>&1 &
    door_pid=$!
    for _ in $(seq 1 200); do
        [ -S /run/.heim_org.h5l.kcm-socket ] && return 0
        kill -0 "$door_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "ccached-door did not come up:"
    cat "$T/door.log"
    return 1
}

# as USER CMD...: runs CMD as USER with a login-like clean environment and no session of its own
# (the test's audit session is unset).
as() {
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$user" --init-groups \
        env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$T/home/$user" USER="$user" LOGNAME="$user" "$@"
}
# in_session USER SCRIPT: a new kernel audit session, made the way pam_loginuid does (a root process
# writes the uid to /proc/self/loginuid), then the script runs as USER inside it.
in_session() {
    local user=$1 script=$2
    # echo is the shell's builtin: the shell itself writes its loginuid, then execs.
    sh -c 'echo "$(id -u "$1")" >/proc/self/loginuid && shift && exec "$@"' sh "$user" \
        setpriv --reuid="$user" --regid="$user" --init-groups \
        env -i PATH=/usr/bin:/bin HOME="$T/home/$user" USER="$user" LOGNAME="$user" SYNC="$T/sync" \
        sh -c "$script"
}
kinit_as() { echo "pw-$2" | as "$1" kinit "$2" >/dev/null; }
daemons_of() { pgrep -u "$1" -x ccached | wc -l; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# A raw KCM helper: NOOP round trips on one connection, garbage, huge frames, churn, and peers that
# exit before they are routed.
cat >"$T/kcm.py" <<'PY'
import os, socket, struct, sys, time
PATH = "/run/.heim_org.h5l.kcm-socket"
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(PATH)
    return s
def noop(s):
    body = b"\x02\x00\x00\x00"          # version 2.0, opcode 0 (NOOP)
    s.sendall(struct.pack(">I", len(body)) + body)
    head = b""
    while len(head) < 8:
        chunk = s.recv(8 - len(head))
        if not chunk: raise EOFError("connection closed")
        head += chunk
    length = struct.unpack(">I", head[:4])[0]
    rest = b""
    while len(rest) < length:
        chunk = s.recv(length - len(rest))
        if not chunk: raise EOFError("connection closed")
        rest += chunk
    return struct.unpack(">i", rest[:4])[0]
mode = sys.argv[1]
if mode == "hold":                       # noop, then wait for a file, then noop again
    s = connect()
    print("first", noop(s), flush=True)
    while not os.path.exists(sys.argv[2]): time.sleep(0.05)
    print("second", noop(s), flush=True)
elif mode == "garbage":
    for size in (1, 7, 100, 4096):
        s = connect(); s.sendall(os.urandom(size)); s.close()
    s = connect(); s.sendall(b"\xff" * 4 + os.urandom(64)); s.close()
elif mode == "huge":                      # 16 MiB and 17 MiB frames of junk
    for size in (16 << 20, 17 << 20):
        s = connect()
        try:
            s.sendall(struct.pack(">I", size) + b"\x02\x00\x00\x00" + b"\0" * (size - 4))
            s.recv(64)
        except OSError:
            pass
        s.close()
elif mode == "churn":
    for _ in range(int(sys.argv[2])):
        s = connect(); s.close()
elif mode == "vanish":                    # children that connect and exit at once
    pids = []
    for _ in range(int(sys.argv[2])):
        pid = os.fork()
        if pid == 0:
            try: connect()
            finally: os._exit(0)
        pids.append(pid)
    for pid in pids: os.waitpid(pid, 0)
elif mode == "noop":
    print(noop(connect()))
elif mode == "uuids":                     # the caches' UUIDs, names and credentials' UUIDs; the default
    s = connect()
    def call(opcode, args=b""):
        body = struct.pack(">BBH", 2, 0, opcode) + args
        s.sendall(struct.pack(">I", len(body)) + body)
        def read(n):
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk: raise EOFError("connection closed")
                data += chunk
            return data
        length = struct.unpack(">I", read(8)[:4])[0]
        rest = read(length)
        return struct.unpack(">i", rest[:4])[0], rest[4:]
    status, caches = call(18)            # GET_CACHE_UUID_LIST
    for i in range(0, len(caches), 16):
        uuid = caches[i:i + 16]
        _, name = call(19, uuid)         # GET_CACHE_BY_UUID
        _, creds = call(9, name)         # GET_CRED_UUID_LIST (the name, NUL-terminated)
        print(uuid.hex(), name.rstrip(b"\0").decode(), [creds[j:j + 16].hex() for j in range(0, len(creds), 16)])
    print("default", call(20)[1].rstrip(b"\0").decode())  # GET_DEFAULT_CACHE
PY
chmod 0755 "$T/kcm.py"

start_door || exit 1

if [ -n "$demo" ]; then
    # show USER COMMAND...: prints the command as USER would type it, then runs it like `as`.
    show() {
        local user=$1
        shift
        printf '\n\033[1m%s$ %s\033[0m\n' "$user" "$*"
        as "$user" "$@" 2>&1
    }
    echo "A private world: /run, /etc/krb5.conf (only default_ccache_name = KCM: and default_cc_type = KCM"
    echo "added to the realm's settings), users alice, bob, carol, and ccached-door on"
    echo "/run/.heim_org.h5l.kcm-socket. Nobody has KRB5_CONFIG or KRB5CCNAME."
    printf '\n\033[1malice$ kinit alice\033[0m   (password pw-alice)\n'
    echo pw-alice | as alice kinit alice
    show alice klist
    printf '\n\033[1malice$ ksu bob -e /usr/bin/klist\033[0m   (setuid root; bob\047s ~/.k5login lets alice in)\n'
    as alice ksu bob -e /usr/bin/klist </dev/null 2>&1
    echo pw-bob | as bob kinit bob >/dev/null
    printf '\n\033[1mroot# sudo -u bob klist\033[0m   (sudo\047s default environment policy)\n'
    env -u KRB5CCNAME -u KRB5_CONFIG sudo -u bob klist 2>&1
    if [ -n "$heimdal" ]; then
        printf '\n\033[1malice$ klist\033[0m   (Heimdal 7.8: heimtools klist)\n'
        setpriv --reuid=alice --regid=alice --init-groups env -i PATH=/usr/bin:/bin \
            LD_LIBRARY_PATH="$heimdal/usr/lib/x86_64-linux-gnu" "$heimdal/usr/bin/heimtools" klist 2>&1
    else
        echo; echo "(Heimdal: not shown; make demo-door unpacks it with scripts/fetch-heimdal.sh)"
    fi
    printf '\n\033[1mThe daemons the door started\033[0m\n'
    for pid in $(our_daemons); do ps -o user=,pid=,args= -p "$pid"; done
    exit 0
fi

# --- 1. the door refuses to start over a live server
out=$("$bin/ccached-door" --ccached "$bin/ccached" 2>&1)
status=$?
if [ $status -ne 0 ] && grep -q "already answers on /run/.heim_org.h5l.kcm-socket" <<<"$out"; then
    pass "a second door refuses to start while a server answers on the standard path"
else
    fail "a second door refuses to start while a server answers on the standard path" "exit $status: $out"
fi
mode=$(stat -c %a /run/.heim_org.h5l.kcm-socket)
[ "$mode" = 666 ] && pass "the standard socket is mode 0666" || fail "the standard socket is mode 0666" "mode $mode"

# --- 2. stock MIT tools, no session: alice's per-user daemon
kinit_as alice alice
out=$(as alice klist 2>&1)
if grep -q "Default principal: alice@CCACHED.TEST" <<<"$out"; then
    pass "kinit + klist through the door with only default_ccache_name = KCM: (no KRB5_CONFIG, no KRB5CCNAME)"
else
    fail "kinit + klist through the door with only default_ccache_name = KCM:" "$out"$'\n'"$(cat "$T/door.log")"
fi
check "kvno through the door" as alice kvno host/localhost@CCACHED.TEST
out=$(as alice klist 2>&1)
grep -q "host/localhost@CCACHED.TEST" <<<"$out" && pass "the service ticket is in alice's cache" ||
    fail "the service ticket is in alice's cache" "$out"
alice_user_socket=/run/ccached/20001/ccached/user/.heim_org.h5l.kcm-socket
if [ -S "$alice_user_socket" ] && [ -S "$alice_user_socket.handoff" ] &&
    [ "$(stat -c '%U %a' /run/ccached/20001)" = "alice 700" ] && [ "$(stat -c '%U %a' /run/ccached)" = "root 755" ]; then
    pass "no /run/user/N: the door made /run/ccached/N (root 0755 / alice 0700); daemon and hand-off sockets in ccached/user/"
else
    fail "runtime base /run/ccached/N and the per-user daemon's sockets" "$(ls -laR /run/ccached 2>&1)"
fi

# --- 3. the daemon the door started: privilege drop, clean environment, no stray descriptors
dpid=$(pgrep -u 20001 -x ccached | head -1)
if [ -n "$dpid" ]; then
    ids=$(awk '/^Uid:|^Gid:/ {print $2, $3, $4, $5}' "/proc/$dpid/status" | tr '\n' ' ')
    groups=$(awk '/^Groups:/ {$1=""; print}' "/proc/$dpid/status" | xargs)
    if [ "$ids" = "20001 20001 20001 20001 20001 20001 20001 20001 " ] && [ "$groups" = 20001 ]; then
        pass "alice's daemon runs with every uid and gid 20001 and groups [20001]"
    else
        fail "alice's daemon's ids" "ids: $ids groups: $groups"
    fi
    envs=$(tr '\0' '\n' <"/proc/$dpid/environ" | cut -d= -f1 | sort | xargs)
    [ "$envs" = "HOME LOGNAME PATH USER" ] && pass "alice's daemon got a clean environment (HOME LOGNAME PATH USER)" ||
        fail "alice's daemon's environment" "$envs"
    # setsid in the first child, then the second fork: a new session, and not its leader (so it
    # can never acquire a controlling terminal).
    sid=$(sed 's/.*) //' "/proc/$dpid/stat" | awk '{print $4}')
    door_sid=$(sed 's/.*) //' "/proc/$door_pid/stat" | awk '{print $4}')
    [ "$sid" != "$door_sid" ] && [ "$sid" != "$dpid" ] && pass "alice's daemon runs in a new session (setsid, then fork)" ||
        fail "setsid" "daemon sid $sid pid $dpid, door sid $door_sid"
    # What the daemon holds: /dev/null on 0-2, its state file, its epoll and signalfd, and sockets;
    # the only listening sockets are its own two (the door's listener, a pipe or a file of the
    # door's would show here). How many connections are open at this moment does not matter.
    fd_kinds=$(for fd in /proc/$dpid/fd/*; do readlink "$fd"; done |
        sed -E 's/^socket:\[[0-9]+\]$/socket/; s/^anon_inode:\[?(eventpoll|signalfd|eventfd)\]?$/\1/' | sort -u | xargs)
    # (ss names a socket by the path it was bound to: the temporary name before its link.)
    listening=$(ss -xlpH 2>/dev/null | grep "pid=$dpid," | awk '{print $5}' | sed -E 's/\.[0-9]+\.new$//' | sort | xargs)
    expected_listening=$(printf '%s\n' "$alice_user_socket" "$alice_user_socket.handoff" | sort | xargs)
    if [ "$fd_kinds" = "/dev/null /memfd:ccached-state (deleted) eventpoll signalfd socket" ] &&
        [ "$listening" = "$expected_listening" ]; then
        pass "alice's daemon inherited no descriptors of the door (only its own kinds; listening on its two sockets)"
    else
        fail "alice's daemon's descriptors" "kinds: $fd_kinds; listening: $listening
$(ls -l "/proc/$dpid/fd")"
    fi
else
    fail "a daemon runs as alice" "$(ps -eo pid,uid,args | grep ccached)"
fi

# --- 4. two audit sessions of alice that logind does not know (jobs, as Debian's cron makes them):
# two job daemons, neither sees the other's tickets, and each ends when its job's last process does
in_session alice 'echo pw-carol | kinit carol >/dev/null || exit 1
    touch "$SYNC/a1"; while [ ! -e "$SYNC/b1" ]; do sleep 0.05; done
    klist >"$SYNC/A.out" 2>&1' &
session_a=$!
in_session alice 'while [ ! -e "$SYNC/a1" ]; do sleep 0.05; done
    if klist >"$SYNC/B0.out" 2>&1; then echo saw >"$SYNC/B0.status"; fi
    echo pw-bob | kinit bob >/dev/null; klist >"$SYNC/B.out" 2>&1; touch "$SYNC/b0"
    while [ ! -e "$SYNC/counted" ]; do sleep 0.05; done; touch "$SYNC/b1"' &
session_b=$!
for _ in $(seq 1 400); do [ -e "$T/sync/b0" ] && break; sleep 0.05; done
# Counted while both jobs still run: each has its daemon, keyed job-<audit session>.
sessions=$(ls -d /run/ccached/20001/ccached/job-* 2>/dev/null | wc -l)
daemons_during=$(daemons_of 20001)
touch "$T/sync/counted"
wait $session_a $session_b
if grep -q "Default principal: carol@" "$T/sync/A.out" && ! grep -q "bob@" "$T/sync/A.out" &&
    grep -q "Default principal: bob@" "$T/sync/B.out" && ! grep -q "carol@" "$T/sync/B.out" &&
    [ ! -e "$T/sync/B0.status" ]; then
    pass "two jobs (audit sessions logind does not know) of alice have separate caches and never see each other's tickets"
else
    fail "two jobs of alice" "A: $(cat "$T/sync/A.out")"$'\n'"B0: $(cat "$T/sync/B0.out")"$'\n'"B: $(cat "$T/sync/B.out")"
fi
[ "$sessions" -eq 2 ] && [ "$daemons_during" -eq 3 ] &&
    pass "while both jobs run, alice has three daemons: one per job (job-N) and the per-user one" ||
    fail "alice's daemons per job" "$sessions job directories / $daemons_during daemons"
# Each job daemon checks every 10 s whether a process of its audit session is left.
for _ in $(seq 1 60); do [ "$(daemons_of 20001)" -eq 1 ] && break; sleep 0.5; done
left=$(for d in /run/ccached/20001/ccached/job-*; do [ -S "$d/.heim_org.h5l.kcm-socket" ] && echo "$d"; done)
[ "$(daemons_of 20001)" -eq 1 ] && [ -z "$left" ] &&
    pass "each job's daemon wiped its tickets and exited after the job's last process, leaving no socket" ||
    fail "job daemons after the jobs ended" "$(daemons_of 20001) daemons; sockets left: $left"
# --- 4b. a user cannot make the door start daemons without end (issue 24, item 1): with
# --max-daemons-per-user 2, a third job of alice is refused with a line that says why.
kill "$door_pid"
wait "$door_pid" 2>/dev/null
start_door --max-daemons-per-user 2 || exit 1
cap_jobs=()
for n in 1 2 3; do
    in_session alice "echo pw-carol | kinit carol >/dev/null 2>&1 && touch \"\$SYNC/cap$n\"; touch \"\$SYNC/capdone$n\"
        while [ ! -e \"\$SYNC/capend\" ]; do sleep 0.05; done" &
    cap_jobs+=($!)
    for _ in $(seq 1 400); do [ -e "$T/sync/capdone$n" ] && break; sleep 0.05; done
done
capped=$(daemons_of 20001)
touch "$T/sync/capend"
wait "${cap_jobs[@]}"
if [ -e "$T/sync/cap1" ] && [ -e "$T/sync/cap2" ] && [ ! -e "$T/sync/cap3" ] &&
    grep -q "uid 20001 already has 2 session daemons" "$T/door.log"; then
    pass "--max-daemons-per-user 2: a third job of alice gets no daemon, and the log says why ($capped daemons)"
else
    fail "the per-user daemon cap" "cap files: $(ls "$T/sync" | grep cap | xargs); $capped daemons"$'\n'"$(grep -i 'daemons' "$T/door.log" | tail -3)"
fi
kill "$door_pid"
wait "$door_pid" 2>/dev/null
start_door || exit 1
# The capped jobs' daemons end with their jobs (checked every 10 s); later counts assume they have.
for _ in $(seq 1 60); do [ "$(daemons_of 20001)" -eq 1 ] && break; sleep 0.5; done

out=$(as alice klist 2>&1)
grep -q "Default principal: alice@" <<<"$out" && ! grep -qE "carol@|bob@" <<<"$out" &&
    pass "alice without a session still sees only her per-user cache" || fail "alice's per-user cache" "$out"

# --- 5. another uid gets its own daemon and nothing of alice's
out=$(as bob klist 2>&1)
if ! grep -q "alice@" <<<"$out" && grep -qiE "no credentials cache|not found" <<<"$out"; then
    pass "bob sees no cache before his own kinit"
else
    fail "bob sees no cache before his own kinit" "$out"
fi
kinit_as bob bob
out=$(as bob klist 2>&1)
grep -q "Default principal: bob@" <<<"$out" && [ "$(daemons_of 20002)" -eq 1 ] &&
    pass "bob's kinit lands in bob's own daemon" || fail "bob's own daemon" "$out"

# --- 6. sudo -u bob klist (sudo's default environment policy) finds bob's tickets
out=$(env -u KRB5CCNAME -u KRB5_CONFIG sudo -u bob klist 2>&1)
grep -q "Default principal: bob@" <<<"$out" && pass "sudo -u bob klist finds bob's tickets" ||
    fail "sudo -u bob klist" "$out"

# The same from a root shell inside alice's audit session (alice ran sudo -i): that session is
# alice's, not bob's, so bob's klist is routed to bob's per-user daemon, where his tickets are.
out=$(sh -c 'echo 20001 >/proc/self/loginuid && exec env -u KRB5CCNAME -u KRB5_CONFIG sudo -u bob klist' 2>&1)
grep -q "Default principal: bob@" <<<"$out" && [ ! -e /run/ccached/20002/ccached/job-* ] &&
    pass "sudo -u bob klist inside alice's audit session reaches bob's per-user daemon (not a job of his)" ||
    fail "sudo -u bob inside alice's session" "$out"$'\n'"$(ls /run/ccached/20002/ccached)"

# --- 7. ksu (setuid root) reads the invoking user's tickets through the door
out=$(as alice ksu bob -e /usr/bin/klist 2>&1 </dev/null)
if grep -q "Authenticated alice@CCACHED.TEST" <<<"$out" && grep -q "Default principal: alice@CCACHED.TEST" <<<"$out"; then
    pass "ksu bob, run by alice, authenticates with alice's tickets read through the door"
else
    fail "ksu bob run by alice" "$out"
fi

# --- 7b. Heimdal 7.8's tools through the door, sharing alice's caches with MIT
# klist.heimdal is a link to heimtools, which picks the command from argv[0]'s name: call it directly.
if [ -z "$heimdal" ]; then
    echo "Heimdal checks: SKIPPED, NOT RUN (no --heimdal ROOT; see scripts/fetch-heimdal.sh)"
else
    out=$(setpriv --reuid=alice --regid=alice --init-groups env -i PATH=/usr/bin:/bin \
        LD_LIBRARY_PATH="$heimdal/usr/lib/x86_64-linux-gnu" "$heimdal/usr/bin/heimtools" klist 2>&1)
    grep -q "Principal: alice@CCACHED.TEST" <<<"$out" &&
        pass "Heimdal klist (KRB5CCNAME unset, default_cc_type = KCM) shows the ticket MIT's kinit stored" ||
        fail "Heimdal klist sees MIT's ticket" "$out"
    out=$(setpriv --reuid=alice --regid=alice --init-groups env -i PATH=/usr/bin:/bin \
        LD_LIBRARY_PATH="$heimdal/usr/lib/x86_64-linux-gnu" "$heimdal/usr/bin/kgetcred" HTTP/localhost@CCACHED.TEST 2>&1)
    mit=$(as alice klist 2>&1)
    grep -q "HTTP/localhost@CCACHED.TEST" <<<"$mit" &&
        pass "Heimdal kgetcred's service ticket shows in MIT klist" || fail "Heimdal kgetcred, then MIT klist" "$out"$'\n'"$mit"
    out=$(echo pw-carol | setpriv --reuid=carol --regid=carol --init-groups env -i PATH=/usr/bin:/bin \
        LD_LIBRARY_PATH="$heimdal/usr/lib/x86_64-linux-gnu" "$heimdal/usr/bin/kinit.heimdal" --password-file=STDIN carol 2>&1)
    mit=$(as carol klist 2>&1)
    grep -q "Default principal: carol@CCACHED.TEST" <<<"$mit" &&
        pass "Heimdal kinit lands in carol's daemon; MIT klist sees it" || fail "Heimdal kinit, then MIT klist" "$out"$'\n'"$mit"
    out=$(setpriv --reuid=carol --regid=carol --init-groups env -i PATH=/usr/bin:/bin KRB5CCNAME=KCM: \
        LD_LIBRARY_PATH="$heimdal/usr/lib/x86_64-linux-gnu" "$heimdal/usr/bin/heimtools" klist 2>&1)
    grep -q "Principal: carol@CCACHED.TEST" <<<"$out" &&
        pass "Heimdal klist with KRB5CCNAME=KCM: finds carol's default cache" ||
        known_failure "Heimdal klist with KRB5CCNAME=KCM: needs the daemon to answer the empty name '' as the default cache (issue 11 item 5)" "$out"
    out=$(setpriv --reuid=carol --regid=carol --init-groups env -i PATH=/usr/bin:/bin \
        LD_LIBRARY_PATH="$heimdal/usr/lib/x86_64-linux-gnu" "$heimdal/usr/bin/kdestroy.heimdal" 2>&1)
    mit=$(as carol klist 2>&1)
    ! grep -q "carol@" <<<"$mit" && grep -qE "not found|No credentials" <<<"$mit" &&
        pass "Heimdal kdestroy empties carol's cache for MIT too" || fail "Heimdal kdestroy, then MIT klist" "$out"$'\n'"$mit"
fi

# --- 8. a process in its own mount namespace that sees only the bind-mounted standard socket
: >"$T/door-socket"
mount --bind /run/.heim_org.h5l.kcm-socket "$T/door-socket"
out=$(unshare --mount --propagation private sh -c '
    mount -t tmpfs tmpfs /run && : >/run/.heim_org.h5l.kcm-socket &&
    mount --bind "$1" /run/.heim_org.h5l.kcm-socket && ls -A /run && shift &&
    exec "$@"' sh "$T/door-socket" \
    setpriv --reuid=alice --regid=alice --init-groups env -i PATH=/usr/bin:/bin klist 2>&1)
umount "$T/door-socket"
if [ "$(head -1 <<<"$out")" = ".heim_org.h5l.kcm-socket" ] && grep -q "Default principal: alice@" <<<"$out"; then
    pass "a mount namespace with only the standard socket (toolbox/flatpak) reaches alice's daemon"
else
    fail "a mount namespace with only the standard socket" "$out"
fi

# --- 9. concurrent first connections of one session start exactly one daemon
klists=()
for _ in $(seq 1 20); do
    as carol klist >/dev/null 2>&1 &
    klists+=($!)
done
wait "${klists[@]}"
[ "$(daemons_of 20003)" -eq 1 ] && pass "20 concurrent first connections of carol start exactly one daemon" ||
    fail "concurrent first connections" "$(daemons_of 20003) daemons for carol"$'\n'"$(grep -i carol "$T/door.log" | tail)"

# --- 10. hostile clients through the door (as carol): memory flat, routing continues, alice unaffected
as carol python3 "$T/kcm.py" churn 200 || true
before=$(rss_kib "$door_pid")
as carol python3 "$T/kcm.py" garbage
as carol python3 "$T/kcm.py" huge
as carol python3 "$T/kcm.py" churn 3000
as carol python3 "$T/kcm.py" vanish 300
sleep 1
after=$(rss_kib "$door_pid")
growth=$((after - before))
if [ "$growth" -lt 8192 ]; then
    pass "door memory flat under garbage, 16 MiB frames, 3000 connects, 300 vanishing peers (RSS $before -> $after KiB)"
else
    fail "door memory under hostile clients" "RSS $before -> $after KiB"
fi
kill -0 "$door_pid" 2>/dev/null && pass "the door survived the hostile clients" || fail "the door survived"
out=$(as alice klist 2>&1)
grep -q "Default principal: alice@" <<<"$out" && ! grep -qE "carol@|bob@" <<<"$out" &&
    pass "after the hostile clients the door still routes alice to her own tickets" || fail "routing after hostile clients" "$out"
[ "$(daemons_of 20003)" -eq 1 ] && [ "$(daemons_of 20001)" -eq 1 ] &&
    pass "the hostile clients reached only carol's one daemon (alice keeps only her per-user one: her jobs ended)" ||
    fail "daemon counts after hostile clients" "carol $(daemons_of 20003), alice $(daemons_of 20001)"

# --- 10b. a link in place of a session's hand-off socket never leads the door anywhere (issue 24,
# item 5): alice makes her next job's directory herself, with a link to the door's own
# socket where the hand-off socket belongs. Connecting through it would make the door route itself
# as a root peer (to root's daemon, started for it if need be); the door must refuse without
# connecting.
root_daemons() { for pid in $(our_daemons); do [ "$(stat -c %u "/proc/$pid")" = 0 ] && echo "$pid"; done | wc -l; }
roots_before=$(root_daemons)
in_session alice 'd=/run/ccached/20001/ccached/job-$(cat /proc/self/sessionid)
    mkdir -p "$d" && ln -s /run/.heim_org.h5l.kcm-socket "$d/.heim_org.h5l.kcm-socket.handoff" &&
    klist >"$SYNC/link.out" 2>&1; echo "$d" >"$SYNC/link.dir"' || true
if grep -q "it is a symbolic link, which the door never follows" "$T/door.log" &&
    ! grep -q "peer_pid=$door_pid " "$T/door.log" && [ "$(root_daemons)" = "$roots_before" ]; then
    pass "a link to the door's socket in place of alice's hand-off socket is refused; the door never routes itself"
else
    fail "a link in place of alice's hand-off socket" \
        "root daemons $roots_before -> $(root_daemons)"$'\n'"$(grep -E "symbolic link|peer_pid=$door_pid " "$T/door.log" | tail -5)"
fi
rm -rf "$(cat "$T/sync/link.dir" 2>/dev/null)"

# --- 11. root is routed like anyone else: root's own daemon
out=$(env -i PATH=/usr/bin:/bin klist 2>&1)
if ! grep -qE "alice@|bob@|carol@" <<<"$out" && [ -S /run/ccached/0/ccached/user/.heim_org.h5l.kcm-socket ]; then
    pass "root's klist goes to root's own daemon (/run/ccached/0), seeing no user's tickets"
else
    fail "root's own daemon" "$out"
fi

# --- 12. the daemon's hand-off socket: root only, one connected Unix stream socket per 'H'
handoff=/run/ccached/20001/ccached/user/.heim_org.h5l.kcm-socket.handoff
cat >"$T/handoff.py" <<'PY'
import os, socket, sys
path, case = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(path)
def answer():
    try:
        return s.recv(1) or b"EOF"
    except ConnectionResetError:
        return b"EOF"
if case == "pipe":                        # not a socket
    r, w = os.pipe(); socket.send_fds(s, [b"H"], [r]); print(answer())
elif case == "listener":                  # a socket, but listening, not connected
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); l.bind(""); l.listen()
    socket.send_fds(s, [b"H"], [l.fileno()]); print(answer())
elif case == "two":                       # two descriptors in one message
    a, b = socket.socketpair(); socket.send_fds(s, [b"H"], [a.fileno(), b.fileno()]); print(answer())
elif case == "none":                      # the byte without a descriptor
    s.sendall(b"H"); print(answer())
elif case == "byte":                      # a wrong byte: the daemon hangs up
    a, b = socket.socketpair(); socket.send_fds(s, [b"X"], [a.fileno()]); print(answer())
elif case == "plain":                     # a non-root peer is hung up on, unanswered
    try:
        s.sendall(b"H")
    except BrokenPipeError:
        pass
    print(answer())
PY
for case in pipe listener two none; do
    out=$(python3 "$T/handoff.py" "$handoff" "$case" 2>&1)
    [ "$out" = "b'R'" ] && pass "hand-off of $case is refused ('R')" || fail "hand-off of $case is refused" "$out"
done
out=$(python3 "$T/handoff.py" "$handoff" byte 2>&1)
[ "$out" = "b'EOF'" ] && pass "a hand-off message with a byte other than 'H' ends the hand-off connection" ||
    fail "a wrong hand-off byte" "$out"
out=$(as alice python3 "$T/handoff.py" "$handoff" plain 2>&1)
[ "$out" = "b'EOF'" ] && pass "the daemon's own user (not root) is refused on the hand-off socket" ||
    fail "a non-root hand-off peer" "$out"
[ "$(stat -c %a "$handoff")" = 600 ] && pass "the hand-off socket is 0600" || fail "hand-off socket mode" "$(stat -c %a "$handoff")"

# --- 13. kill -9 of the door: handed-off connections keep working; socket activation restarts it
rm -f "$T/sync/go"
as alice python3 "$T/kcm.py" hold "$T/sync/go" >"$T/hold.out" 2>&1 &
holder=$!
for _ in $(seq 1 200); do grep -q first "$T/hold.out" && break; sleep 0.05; done
kill -9 "$door_pid"
{ wait "$door_pid"; } 2>/dev/null
door_pid=
touch "$T/sync/go"
wait "$holder"
if grep -q "first 0" "$T/hold.out" && grep -q "second 0" "$T/hold.out"; then
    pass "a connection handed off before kill -9 of the door keeps working"
else
    fail "a connection handed off before kill -9" "$(cat "$T/hold.out")"
fi
rm -f /run/.heim_org.h5l.kcm-socket
(umask 0 && exec systemd-socket-activate -l /run/.heim_org.h5l.kcm-socket \
    "$bin/ccached-door" --ccached "$bin/ccached" --log-level debug >>"$T/door.log" 2>&1) &
door_pid=$!
for _ in $(seq 1 200); do [ -S /run/.heim_org.h5l.kcm-socket ] && break; sleep 0.05; done
# systemd-socket-activate creates the socket 0755 whatever the umask; the real unit says SocketMode=0666.
chmod 0666 /run/.heim_org.h5l.kcm-socket
out=$(as alice klist 2>&1)
grep -q "Default principal: alice@" <<<"$out" && grep -q "routing /run/.heim_org.h5l.kcm-socket" "$T/door.log" &&
    pass "after kill -9, the next connection activates a new door (systemd-socket-activate) and works" ||
    fail "socket-activated door after kill -9" "$out"$'\n'"$(tail -5 "$T/door.log")"

# --- 14. a daemon that exits while the door keeps a hand-off connection to it: the next client
# gets a new daemon (the kept connection is found dead, never used twice)
old_daemon=
for pid in $(our_daemons); do
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--socket /run/ccached/20002/ccached/user/" && old_daemon=$pid
done
as bob klist >/dev/null 2>&1   # leaves a kept hand-off connection to bob's daemon in the door
kill "$old_daemon" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$old_daemon" 2>/dev/null || break; sleep 0.05; done
out=$(as bob klist 2>&1)
if [ -n "$old_daemon" ] && ! kill -0 "$old_daemon" 2>/dev/null && grep -qE "not found|No credentials" <<<"$out" &&
    [ "$(daemons_of 20002)" -eq 1 ]; then
    pass "after bob's daemon exits, his next klist reaches a new daemon (empty: the old one's tickets were wiped)"
else
    fail "a new daemon after the old one exited" "old $old_daemon, now $(daemons_of 20002) daemon(s): $out"
fi

# --- 15. kdestroy through the door
check "kdestroy through the door" as alice kdestroy
out=$(as alice klist 2>&1)
grep -qE "Credentials cache 'KCM:20001' not found|No credentials cache found" <<<"$out" && ! grep -q "alice@" <<<"$out" &&
    pass "kdestroy removed alice's cache" || fail "kdestroy removed alice's cache" "$out"

# --- 16. the door's forked child holds nothing of the door's once its user could signal it (issue
# 24, item 7). A second door on its own socket runs under strace, which holds every process it
# follows for 1.5 s right after setresuid returns: the moment the child first runs as the user
# (who may then SIGSTOP it). Then only /dev/null on 0-2, the ready pipe and the session's state file
# (a memfd, issue 22: the daemon gets it as --state-fd 4) may be open, and every catchable signal
# must be blocked.
if ! command -v strace >/dev/null; then
    echo "the door's child after setresuid: SKIPPED, NOT RUN (no strace)"
else
    traced_socket=/run/door-traced.sock
    # -I1: SIGTERM ends strace (detaching everything it follows) even while it waits.
    strace -I1 -f -qq -o /dev/null -e trace=setresuid -e inject=setresuid:delay_exit=1500000 \
        "$bin/ccached-door" --socket "$traced_socket" --ccached "$bin/ccached" --log-level debug \
        >>"$T/door-traced.log" 2>&1 &
    tracer=$!
    for _ in $(seq 1 400); do [ -S "$traced_socket" ] && break; sleep 0.05; done
    chmod 0666 "$traced_socket" 2>/dev/null
    cat >"$T/noop-at.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(struct.pack(">I", 4) + b"\x02\x00\x00\x00")
print("answered" if len(s.recv(8)) > 0 else "closed")
PY
    # A new audit session of carol: no daemon yet, so the door starts one.
    in_session carol "python3 $T/noop-at.py $traced_socket >\"\$SYNC/traced.out\" 2>&1" &
    client=$!
    child=
    for _ in $(seq 1 500); do
        for pid in $(pgrep -u 20003); do
            [ "$(awk '/^TracerPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = "$tracer" ] || continue
            [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$bin/ccached-door")" ] && child=$pid
        done
        [ -n "$child" ] && break
        sleep 0.02
    done
    if [ -z "$child" ]; then
        fail "the door's child right after setresuid (not seen)" "$(tail -5 "$T/door-traced.log")"
    else
        fds=$(ls "/proc/$child/fd" | sort -n | xargs)
        nulls=$(for fd in 0 1 2; do readlink "/proc/$child/fd/$fd"; done | sort -u | xargs)
        ready=$(readlink "/proc/$child/fd/3")
        state=$(readlink "/proc/$child/fd/4")
        blocked=$(awk '/^SigBlk:/ {print $2}' "/proc/$child/status")
        all_blocked=yes
        for sig in 1 2 3 10 12 13 14 15 17 18 20 21 22; do
            [ $(((0x$blocked >> (sig - 1)) & 1)) -eq 1 ] || all_blocked="no (signal $sig)"
        done
        if [ "$fds" = "0 1 2 3 4" ] && [ "$nulls" = /dev/null ] && [[ $ready == pipe:* ]] &&
            [[ $state == /memfd:ccached-state* ]] && [ "$all_blocked" = yes ]; then
            pass "the door's child, running as carol before exec, holds only /dev/null, the ready pipe and its state file, all signals blocked"
        else
            fail "the door's child right after setresuid holds nothing of the door's" \
                "fds: $(ls -l "/proc/$child/fd" 2>&1 | tail -n +2)"$'\n'"SigBlk $blocked: $all_blocked"
        fi
    fi
    wait "$client"
    grep -q answered "$T/sync/traced.out" && pass "the traced door's daemon then started and answered" ||
        fail "the traced door's daemon" "$(cat "$T/sync/traced.out")"$'\n'"$(tail -5 "$T/door-traced.log")"
    traced_door=$(pgrep -P "$tracer" -x ccached-door)
    kill "$tracer" 2>/dev/null
    wait "$tracer" 2>/dev/null
    [ -n "$traced_door" ] && kill "$traced_door" 2>/dev/null
    rm -f "$traced_socket"
fi

# --- 16b. the door keeps each session daemon's state file (issue 22, item 2): a daemon killed with
# SIGKILL is restarted with it and loses nothing; the same after a door restart; after a normal end
# nobody holds it. carol's per-user daemon, three caches (one of them not the default, config entries,
# a renewable TGT, a service ticket).
carol_daemon() {
    local pid
    for pid in $(our_daemons); do
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--socket /run/ccached/20003/ccached/user/" && echo "$pid"
    done
}
# The inodes of the state files (memfd:ccached-state) process PID holds.
state_inodes() {
    local link
    for link in /proc/"$1"/fd/*; do
        [[ "$(readlink "$link" 2>/dev/null)" == /memfd:ccached-state* ]] && stat -L -c %i "$link" 2>/dev/null
    done
}
# Every process on the machine that holds the state file with inode $1.
holders_of() {
    local link
    for link in /proc/[0-9]*/fd/*; do
        [[ "$(readlink "$link" 2>/dev/null)" == /memfd:ccached-state* ]] || continue
        [ "$(stat -L -c %i "$link" 2>/dev/null)" = "$1" ] && echo "${link%/fd/*}"
    done | sort -u
}
carol_view() {
    as carol klist -A -C 2>&1
    as carol python3 "$T/kcm.py" uuids 2>&1
}
kill_carol() {
    local pid=$1
    kill -9 "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
}
as carol kdestroy -A >/dev/null 2>&1
echo pw-carol | as carol kinit -r 2h carol >/dev/null
echo pw-bob | as carol kinit -c KCM:20003:second bob >/dev/null
echo pw-alice | as carol kinit -c KCM:20003:third alice >/dev/null
as carol kvno -c KCM:20003:second host/localhost@CCACHED.TEST >/dev/null
as carol kswitch -c KCM:20003:second
before=$(carol_view)
first=$(carol_daemon)
if [ -n "$first" ] && [ "$(grep -c '^Ticket cache:' <<<"$before")" -eq 3 ] && grep -q "^default 20003:second$" <<<"$before"; then
    kill_carol "$first"
    after=$(carol_view)
    second=$(carol_daemon)
    if [ "$after" = "$before" ] && [ -n "$second" ] && [ "$second" != "$first" ] &&
        grep -q "ended without wiping its state file" "$T/door.log"; then
        pass "SIGKILL of carol's daemon: the next klist -A reaches a new daemon with the same 3 caches, credentials, UUIDs and default"
    else
        fail "carol's caches after SIGKILL of her daemon ($first, now ${second:-none})" \
            "before:"$'\n'"$before"$'\n'"after:"$'\n'"$after"$'\n'"$(grep -iE 'state file|carol|20003' "$T/door.log" | tail -5)"
    fi
    # A door restart: the new door asks the running daemon for its state file at the first hand-off.
    kill "$door_pid"
    wait "$door_pid" 2>/dev/null
    rm -f /run/.heim_org.h5l.kcm-socket   # a socket-activated door leaves its socket behind
    start_door || exit 1
    restarted=$(as carol klist 2>&1)
    kill_carol "$second"
    after=$(carol_view)
    third=$(carol_daemon)
    if [ "$after" = "$before" ] && [ -n "$third" ] && [ "$third" != "$second" ] &&
        grep -q "holding the state file of the running session daemon at /run/ccached/20003/" "$T/door.log"; then
        pass "after a door restart, SIGKILL of carol's daemon again loses nothing (the door got the file back from the daemon)"
    else
        fail "carol's caches after a door restart and a SIGKILL" \
            "door: $(grep -iE "state file|stopping|routing" "$T/door.log")"$'\n'"klist after the restart:"$'\n'"$restarted"$'\n'"before:"$'\n'"$before"$'\n'"after:"$'\n'"$after"$'\n'"$(grep -iE 'state file|20003' "$T/door.log" | tail -40)"
    fi
    # The daemon stays non-dumpable (its /proc files belong to root).
    [ -n "$third" ] && [ "$(stat -c %u "/proc/$third/environ")" = 0 ] &&
        pass "the restarted daemon is not dumpable" || fail "the restarted daemon is not dumpable" "$(ls -ln "/proc/$third/environ")"
    # A normal end (SIGTERM is what ccachectl stop and logout come to): the daemon wipes the file and
    # the door closes its descriptor within its 2 s sweep; nobody holds the memfd any more.
    inode=$(state_inodes "$third" | head -1)
    held_by_door=$(state_inodes "$door_pid" | grep -cx "$inode")
    as carol "$bin/ccachectl" stop >/dev/null 2>&1 || kill "$third"
    for _ in $(seq 1 100); do kill -0 "$third" 2>/dev/null || break; sleep 0.05; done
    for _ in $(seq 1 60); do [ -z "$(holders_of "$inode")" ] && break; sleep 0.1; done
    holders=$(holders_of "$inode")
    if [ -n "$inode" ] && [ "$held_by_door" -eq 1 ] && ! kill -0 "$third" 2>/dev/null && [ -z "$holders" ]; then
        pass "after carol's daemon ended normally, no process holds its state file (the door held it before)"
    else
        fail "the state file after a normal end" "inode ${inode:-none}, door held it: $held_by_door, holders: $holders"
    fi
else
    fail "carol's three caches through the door" "daemon ${first:-none}"$'\n'"$before"
fi

# --- 17. pam_ccached on a host the door serves: the login gets KRB5CCNAME=KCM: and nothing that names
# a session's socket (the routing rule and the door agree on the daemon), and logout detaches from the
# daemon the login attached to (remembered by the module, never exported).
harness=$repo/.build/pam/pam_harness
if [ ! -x "$harness" ] || [ ! -f "$repo/.build/pam/pam_ccached.so" ]; then
    echo "pam_ccached through the door: SKIPPED, NOT RUN (no .build/pam: run 'make pam')"
else
    mkdir -p "$T/pam.d"
    echo "session optional $repo/.build/pam/pam_ccached.so ccachectl=$bin/ccachectl debug" >"$T/pam.d/ccached-test"
    mkfifo "$T/pam.in"
    "$harness" ccached-test bob "$T/pam.d" >"$T/pam.out" 2>"$T/pam.err" <"$T/pam.in" &
    harness_pid=$!
    exec 9>"$T/pam.in"
    for _ in $(seq 1 200); do grep -q "^--- PAM environment after open" "$T/pam.out" && break; sleep 0.05; done
    opened=$(sed -n '/^--- PAM environment after open/,/^---/p' "$T/pam.out")
    kinit_as bob bob
    out=$(as bob klist 2>&1)
    exec 9>&-
    wait "$harness_pid"
    if grep -qx "KRB5CCNAME=KCM:" <<<"$opened" && ! grep -qE "^(CCACHED_SOCKET|KRB5_CONFIG|HEIM_IPC_DIR)=" <<<"$opened" &&
        grep -q "Default principal: bob@" <<<"$out"; then
        pass "pam_ccached with the door: the login exports only KRB5CCNAME=KCM:, and bob's kinit and klist work"
    else
        fail "pam_ccached with the door" "$opened"$'\n'"$out"$'\n'"$(tail -5 "$T/pam.err")"
    fi
    if grep -q "the session of user bob uses /run/ccached/20002/ccached/user/" "$T/pam.err" &&
        grep -q "pam_close_session: Success" "$T/pam.out" "$T/pam.err" &&
        [ ! -S /run/ccached/20002/ccached/user/.heim_org.h5l.kcm-socket ]; then
        pass "pam_ccached remembered the daemon it attached to and its logout detached from it (the last: wiped)"
    else
        fail "pam_ccached's logout through the door" "$(grep -iE 'uses|detach|close' "$T/pam.err" "$T/pam.out" | tail -6)"
    fi
fi

[ ${#known[@]} -gt 0 ] && printf 'known failures, not counted as passes: %s\n' "${known[@]}"
echo "$passed passed, $failed failed${known:+ (${#known[@]} known failure(s) listed above)}"
[ "$failed" -eq 0 ]
