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
#     ccached-door.socket holds it), the same daemons and tickets, no klist error;
#   - nothing of a ticket reaches a disk or a core: no regular file under / (but /proc, /sys, /dev;
#     /dev/shm included) holds a session key of either login's TGT or service ticket (the keys
#     reach a root scanner through a FIFO only; it must first find a planted key and decoy); each
#     daemon and the door are non-dumpable (with controls) with core limit 0;
#   - after bob logs out, his daemons end and no process holds their memory files (/proc/*/fd).
# Root only; `make test-upgrade` (part of `make test`) runs it.
#
#   scripts/upgrade-booted-check.sh DEB_DIR
#
# One PASS/FAIL line per check; the last line is "N passed, M failed"; exit 1 on a failure.
set -uo pipefail

CHECK_NAME="upgrade check"
# shellcheck source=scripts/booted-check-lib.sh
. "$(dirname "$0")/booted-check-lib.sh" || exit 2
booted_check_args upgrade-check "$@"
debs=("$DEB_CCACHED" "$DEB_PAM")

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

install_helpers() {
    local d="$ROOT/usr/local/lib/rt"
    install_agent
    # klist-loop DIR: klist until DIR/stop exists, in turn with the login's environment and with
    # none (env -i: the standard KCM socket, so through ccached-door); counts the runs in DIR/runs
    # and writes every failure (its output) to DIR/errors.
    cat >"$d/klist-loop" <<'EOF'
#!/bin/bash
d=$1
mkdir -p "$d"
# A "done" or "runs" of an earlier loop in DIR would end the next loop_stop's wait at once.
rm -f "$d/stop" "$d/errors" "$d/done" "$d/runs"
: >"$d/errors"
runs=0
while [ ! -e "$d/stop" ]; do
    if [ $((runs % 2)) = 0 ]; then out=$(klist 2>&1); else out=$(env -i PATH=/usr/bin:/bin klist 2>&1); fi
    if [ $? != 0 ] || ! grep -q "Default principal: " <<<"$out"; then
        printf '%s run %d: %s\n' "$(date +%T.%N)" "$runs" "$out" >>"$d/errors"
    fi
    runs=$((runs + 1))
    echo "$runs" >"$d/runs.new" && mv "$d/runs.new" "$d/runs"
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
    # sessionkeys (run in a login): the session key of every credential of the login's caches, in
    # hex, for a pipe only (see "nothing of a ticket reaches a disk" below). MIT klist -K shows
    # keytab keys only, so libkrb5 through ctypes.
    cat >"$d/sessionkeys" <<'EOF'
#!/usr/bin/python3
# Prints the session key of every credential in every cache of this user's collection (the login's
# KCM daemon), one hex line each; nothing else. The keys are meant for a pipe.
import ctypes, ctypes.util, sys

k5 = ctypes.CDLL(ctypes.util.find_library("krb5") or "libkrb5.so.3")

class Data(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_int32), ("length", ctypes.c_uint32), ("data", ctypes.c_void_p)]

class Keyblock(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_int32), ("enctype", ctypes.c_int32), ("length", ctypes.c_uint32),
                ("contents", ctypes.c_void_p)]

class Times(ctypes.Structure):
    _fields_ = [("authtime", ctypes.c_int32), ("starttime", ctypes.c_int32), ("endtime", ctypes.c_int32),
                ("renew_till", ctypes.c_int32)]

class Creds(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_int32), ("client", ctypes.c_void_p), ("server", ctypes.c_void_p),
                ("keyblock", Keyblock), ("times", Times), ("is_skey", ctypes.c_ubyte),
                ("ticket_flags", ctypes.c_int32), ("addresses", ctypes.c_void_p), ("ticket", Data),
                ("second_ticket", Data), ("authdata", ctypes.c_void_p)]

def check(code, what):
    if code != 0:
        sys.exit(f"sessionkeys: {what} failed ({code})")

ctx = ctypes.c_void_p()
check(k5.krb5_init_context(ctypes.byref(ctx)), "krb5_init_context")
col = ctypes.c_void_p()
check(k5.krb5_cccol_cursor_new(ctx, ctypes.byref(col)), "krb5_cccol_cursor_new")
count = 0
while True:
    cache = ctypes.c_void_p()
    check(k5.krb5_cccol_cursor_next(ctx, col, ctypes.byref(cache)), "krb5_cccol_cursor_next")
    if not cache.value:
        break
    cursor = ctypes.c_void_p()
    check(k5.krb5_cc_start_seq_get(ctx, cache, ctypes.byref(cursor)), "krb5_cc_start_seq_get")
    creds = Creds()
    while k5.krb5_cc_next_cred(ctx, cache, ctypes.byref(cursor), ctypes.byref(creds)) == 0:
        kb = creds.keyblock
        if kb.length > 0 and kb.contents:
            print(ctypes.string_at(kb.contents, kb.length).hex())
            count += 1
        k5.krb5_free_cred_contents(ctx, ctypes.byref(creds))
    k5.krb5_cc_end_seq_get(ctx, cache, ctypes.byref(cursor))
    k5.krb5_cc_close(ctx, cache)
sys.exit(0 if count else 1)
EOF
    cat >"$d/keyscan" <<'EOF'
#!/usr/bin/python3
# keyscan FIFO WRITERS: reads hex session keys from FIFO (lines, WRITERS "END-OF-KEYS" markers),
# keeps them in this process's memory only, and looks for each key's raw bytes in every regular
# file under / except /proc, /sys and /dev (but /dev/shm is scanned). Controls first: one real key
# is written to a file on /run (a tmpfs: no disk block ever holds it) and a random 32-byte decoy
# to a file under /var/lib (on the disk); the scan must find both, which are then removed.
# Prints counts and the paths that hold a key, never a key. Exit 0: keys read, both controls
# found, no other file holds a key, nothing unreadable; 1 otherwise.
import os, stat, sys

fifo, writers = sys.argv[1], int(sys.argv[2])
keys, ends = [], 0
while ends < writers:
    with open(fifo) as f:
        for line in f:
            line = line.strip()
            if line == "END-OF-KEYS":
                ends += 1
            elif line:
                try:
                    keys.append(bytes.fromhex(line))
                except ValueError:
                    print("keyscan: a line that is not hex from the FIFO")
keys = sorted(set(keys))
print(f"keys: {len(keys)} (bytes each: {sorted(set(len(k) for k in keys))})")
if not keys or min(len(k) for k in keys) < 16:
    print("keyscan: no keys, or a key under 16 bytes: nothing to scan for")
    sys.exit(1)

decoy = os.urandom(32)
control = "/run/ccached-keyscan-control"
decoy_path = "/var/lib/ccached-keyscan-decoy"
for path, data in ((control, b"control:" + keys[0] + b"\n"), (decoy_path, b"decoy:" + decoy + b"\n")):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)
needles = keys + [decoy]
overlap = max(len(k) for k in needles) - 1

hits, errors, files, total = [], [], 0, 0

def scan(path):
    global files, total
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    except OSError as e:
        errors.append(f"{path}: {e.strerror}")
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return
        files += 1
        total += st.st_size
        # read(), not mmap: a file another process truncates meanwhile must not SIGBUS the scan.
        found, tail = set(), b""
        while True:
            chunk = os.read(fd, 8 << 20)
            if not chunk:
                break
            window = tail + chunk
            found.update(i for i, k in enumerate(needles) if window.find(k) != -1)
            tail = window[-(overlap):]
        if found:
            hits.append((path, sorted(found)))
    except OSError as e:
        errors.append(f"{path}: {e}")
    finally:
        os.close(fd)

def walk(top, skip):
    for root, dirs, names in os.walk(top, onerror=lambda e: errors.append(f"{e.filename}: {e.strerror}")):
        if root == "/":
            dirs[:] = [d for d in dirs if d not in skip]
        for name in names:
            p = os.path.join(root, name)
            try:
                if stat.S_ISREG(os.lstat(p).st_mode):
                    scan(p)
            except FileNotFoundError:
                pass

try:
    walk("/", {"proc", "sys", "dev"})
    walk("/dev/shm", set())
finally:
    os.unlink(control)
    os.unlink(decoy_path)

control_found = any(p == control and 0 in f for p, f in hits)
decoy_found = any(p == decoy_path and len(keys) in f for p, f in hits)
others = [(p, f) for p, f in hits if p not in (control, decoy_path)]
print(f"scanned: {files} files, {total // (1024 * 1024)} MiB; control (a real key on /run) found: "
      f"{'yes' if control_found else 'NO'}; decoy (random bytes under /var/lib) found: {'yes' if decoy_found else 'NO'}")
for p, f in others:
    print(f"holds a key: {p} (key {', '.join(str(i + 1) for i in f)} of {len(keys)})")
for e in errors[:20]:
    print(f"unreadable: {e}")
print(f"files holding a key: {len(others)}; unreadable: {len(errors)}")
sys.exit(0 if control_found and decoy_found and not others and not errors else 1)
EOF
    # memfds: every open descriptor of a ccached state file, as "PID FD DEV:INODE COMM" (the memory
    # file's identity is its inode on the kernel's internal shmem mount, not its name).
    cat >"$d/memfds" <<'EOF'
#!/bin/bash
for link in /proc/[0-9]*/fd/*; do
    target=$(readlink "$link" 2>/dev/null) || continue
    case $target in
    /memfd:ccached*)
        pid=${link#/proc/}
        pid=${pid%%/*}
        echo "$pid ${link##*/} $(stat -L -c %D:%i "$link" 2>/dev/null) $(cat /proc/$pid/comm 2>/dev/null)"
        ;;
    esac
done
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
export BOOTED_EXTRA_PACKAGES="$LOGIN_BASE_PACKAGES"
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
b_kinit=$(in_login b1 'echo pw-bob | kinit bob >/dev/null && kvno host/localhost >/dev/null && klist') || ok=no
verdict "two ssh logins (alice, bob) each kinit against the KDC and get a service ticket" "$a_kinit / $b_kinit" \
    bash -c '[ "$0" = yes ] && grep -q "Default principal: alice@" <<<"$1" && grep -q "host/localhost@" <<<"$1" &&
        grep -q "Default principal: bob@" <<<"$2" && grep -q "host/localhost@" <<<"$2"' "$ok" "$a_kinit" "$b_kinit"
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
        grep -q "Default principal: bob@" <<<"$b" && grep -q "host/localhost@" <<<"$b"
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
# ---- nothing of a ticket reaches a disk or a core; the memory file ends with the login -------------
# Every session key of both logins (their TGTs and service tickets) goes from the login through a
# FIFO (a pipe: nothing on disk) into a root scanner that keeps them in its memory only, and no
# regular file under / but /proc, /sys and /dev (/dev/shm included: it holds files) may hold one:
# /run, /tmp, /var/tmp, the journal, the KDC's directory, everything. The scanner shows it can
# find first: a real key planted on /run and random bytes planted under /var/lib (keyscan above).
inside bash -c 'rm -f /var/tmp/rt/keys.fifo && mkfifo -m 0622 /var/tmp/rt/keys.fifo'
inside /usr/local/lib/rt/keyscan /var/tmp/rt/keys.fifo 2 >"$LOG/keyscan.txt" 2>&1 &
scan_pid=$!
ok=yes
for name in a1 b1; do
    in_login "$name" '/usr/local/lib/rt/sessionkeys >/var/tmp/rt/keys.fifo; rc=$?
        echo END-OF-KEYS >/var/tmp/rt/keys.fifo; exit $rc' >>"$LOG/sessionkeys.txt" 2>&1 || ok=no
done
# A login that never wrote its end marker would leave the scanner waiting.
[ "$ok" = yes ] || inside timeout 5 bash -c 'echo END-OF-KEYS >/var/tmp/rt/keys.fifo; echo END-OF-KEYS >/var/tmp/rt/keys.fifo'
wait "$scan_pid"
scan_rc=$?
keys=$(sed -n 's/^keys: \([0-9]*\).*/\1/p' "$LOG/keyscan.txt")
verdict "no file under / (but /proc, /sys, /dev) holds a session key of either login (${keys:-0} keys; $(
    grep -m1 '^scanned:' "$LOG/keyscan.txt" | sed 's/;.*//'))" \
    "$(cat "$LOG/sessionkeys.txt" "$LOG/keyscan.txt")" \
    bash -c '[ "$0" = yes ] && [ "$1" = 0 ] && [ "${2:-0}" -ge 4 ]' "$ok" "$scan_rc" "$keys"

# Non-dumpable: a process's /proc/PID files belong to root when it is not dumpable (the kernel's
# rule), so a daemon of a user with a root-owned /proc/PID/environ is not; the login's own agent
# (same user, dumpable) is the control. The door runs as root, where that rule shows nothing; but
# root without CAP_SYS_PTRACE may open /proc/PID/mem (PTRACE_MODE_ATTACH) of a root process whose
# capabilities are a subset of its own only when that process is dumpable. Controls, started with
# that same bounding set: a root `sleep` (dumpable: opens) and a root python3 that made itself
# non-dumpable (refused). (/proc/PID/environ is PTRACE_MODE_READ: readable either way here.)
dumpable_report=$(inside bash -c 'while read -r pid uid _; do
        [ "$uid" != 0 ] || continue
        agent=$(pgrep -u "$uid" -f /usr/local/lib/rt/agent | head -n 1)
        echo "daemon $pid uid $uid environ-owner $(stat -c %u /proc/$pid/environ) control-agent ${agent:-none} environ-owner $(stat -c %u /proc/${agent:-0}/environ 2>/dev/null || echo none) core-limit $(awk "/^Max core file size/ {print \$5 \"/\" \$6}" /proc/$pid/limits)"
    done <<<"$1"
    door=$(systemctl show -P MainPID ccached-door.service)
    setpriv --bounding-set -sys_ptrace sleep 30 &
    dumpable=$!
    setpriv --bounding-set -sys_ptrace python3 -c "import ctypes, time
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
time.sleep(30)" &
    undumpable=$!
    sleep 0.5
    probe() { setpriv --bounding-set -sys_ptrace bash -c "exec 3</proc/$1/mem" 2>/dev/null && echo opens || echo refused; }
    echo "door $door mem-without-CAP_SYS_PTRACE $(probe "$door") dumpable-control $(probe $dumpable) undumpable-control $(probe $undumpable) core-limit $(awk "/^Max core file size/ {print \$5 \"/\" \$6}" /proc/$door/limits)"
    kill $dumpable $undumpable' _ "$(inside /usr/local/lib/rt/daemons)" 2>&1)
echo "$dumpable_report" >"$LOG/dumpable.txt"
verdict "every user's daemon is non-dumpable (/proc/PID/environ root's; its login's agent, the control, the user's) with core limit 0" \
    "$dumpable_report" bash -c 'n=0
        while read -r what pid _ uid _ owner _ agent _ agent_owner _ core; do
            [ "$what" = daemon ] || continue
            [ "$owner" = 0 ] && [ "$agent_owner" = "$uid" ] && [ "$core" = 0/0 ] || exit 1
            n=$((n + 1))
        done <<<"$0"
        [ "$n" -ge 2 ]' "$dumpable_report"
verdict "the door is non-dumpable (its /proc/PID/mem refused to root without CAP_SYS_PTRACE, as a non-dumpable control's; a dumpable control's opens) with core limit 0" \
    "$dumpable_report" bash -c 'grep -Eq "^door [0-9]+ mem-without-CAP_SYS_PTRACE refused dumpable-control opens undumpable-control refused core-limit 0/0$" <<<"$0"' \
    "$dumpable_report"

# After logout the memory file is gone: bob's daemons hold their state files (the identity of a
# memfd is its inode), bob logs out, his daemons end, and then (the door's sweep included) no
# process in the container holds any of those files (every /proc/*/fd link); alice's daemon still
# holds hers (the scan sees them).
bob_daemons=$(inside pgrep -u bob -x ccached | xargs)
alice_daemons=$(inside pgrep -u alice -x ccached | xargs)
holders_before=$(inside /usr/local/lib/rt/memfds)
echo "$holders_before" >"$LOG/memfds-before-logout.txt"
bob_files=$(awk -v pids=" $bob_daemons " 'index(pids, " " $1 " ") { print $3 }' <<<"$holders_before" | sort -u | xargs)
verdict "before bob's logout his daemons ($bob_daemons) hold their memory files (${bob_files:-none})" \
    "$holders_before" test -n "$bob_files"
touch "$RT/b1/exit"
verdict "bob's daemons end after his logout" "$(inside ps -o pid=,args= -u bob 2>&1)" \
    wait_for 60 bash -c "[ -z \"\$('$BOOTED' run '$STATE' pgrep -u bob -x ccached)\" ]"
# The door holds each door-started daemon's file too, and lets go of a wiped one at its next sweep
# (every 2 s, Docs/state.md): wait up to 10 s for the last holder to go.
for _ in $(seq 1 50); do
    holders_after=$(inside /usr/local/lib/rt/memfds)
    held=no
    for f in $bob_files; do awk -v f="$f" '$3 == f { found = 1 } END { exit !found }' <<<"$holders_after" && held=yes; done
    [ "$held" = no ] && break
    sleep 0.2
done
echo "$holders_after" >"$LOG/memfds-after-logout.txt"
verdict "after bob's logout no process holds his memory files; alice's daemons ($alice_daemons) still hold theirs" \
    "$holders_after" bash -c 'for f in $1; do awk -v f="$f" "\$3 == f { found = 1 } END { exit !found }" <<<"$0" && exit 1; done
        awk -v pids=" $2 " "index(pids, \" \" \$1 \" \") { found = 1 } END { exit !found }" <<<"$0"' \
    "$holders_after" "$bob_files" "$alice_daemons"
finish
