#!/usr/bin/env bash
# Every way people run things on a login host, with the packages installed: which ccached daemon
# each reaches and which tickets it sees. A booted Debian 12 container (scripts/booted-system.sh,
# with CAP_AUDIT_CONTROL: pam_loginuid gives every login, cron job and user manager an audit
# session as on a real host) with sshd, pam_krb5, cron, at, tmux and sudo from Debian; the built
# packages installed with apt-get from the files. Nothing is configured by hand but the test KDC
# (scripts/testkdc.sh, whose krb5.conf becomes /etc/krb5.conf before the install) and the users.
# Root only; `make test-login-routing` (part of `make test`) runs it.
#
#   scripts/login-routing-check.sh DEB_DIR
#
# Scenarios (one PASS/FAIL line each; the last line is "N passed, M failed"; exit 1 on a failure):
#   ssh password logins (pam_krb5): the login's TGT with and without the environment; two
#   logins isolated both ways; systemd-run --user and a unit of ~/.config/systemd/user; a root
#   helper taking the user's uid (setpriv, as rpc.gssd); a graphical-class session seen by the
#   user manager; a cron job every minute (kinit -k, klist); tmux across logins; su - and sudo -u
#   inside another user's login; no daemon left after logout and after loginctl terminate-user;
#   reinstall with sessions holding tickets; purge; and, in a second container, an enabled
#   sssd-kcm keeping the standard socket.
# A table (scenario, daemon reached, tickets seen) is printed before the summary and kept in
# .build/login-routing/log/table.txt.
set -uo pipefail

CHECK_NAME="login routing check"
# shellcheck source=scripts/booted-check-lib.sh
. "$(dirname "$0")/booted-check-lib.sh" || exit 2
booted_check_args login-routing "$@"
TABLE="$LOG/table.txt"

cleanup() {
    local name
    for name in "${!LOGIN_PID[@]}"; do kill "${LOGIN_PID[$name]}" 2>/dev/null; done
    # LOGIN_ROUTING_KEEP=1 leaves the container running, to look around in it afterwards.
    [ "${LOGIN_ROUTING_KEEP:-0}" = 1 ] || stop_container
}
# stop_container: keeps what the logins saw (their scripts and outputs) in the log, then powers
# the container off.
stop_container() {
    [ -d "$RT" ] && { rm -rf "$LOG/rt"; cp -a "$RT" "$LOG/rt" 2>/dev/null; }
    inside journalctl --no-pager -o short-precise >>"$LOG/journal.txt" 2>&1
    "$BOOTED" stop "$STATE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# row SCENARIO REACHED SEEN: a line of the table.
row() { printf '| %s | %s | %s |\n' "$1" "$(oneline "$2")" "$(oneline "$3")" >>"$TABLE"; }
oneline() { tr '\n' ' ' <<<"$1" | sed -e 's/  */ /g' -e 's/ $//' -e 's/|/\//g' | cut -c1-160; }
# before_finish: the table, before the summary.
before_finish() {
    if [ -s "$TABLE" ]; then
        echo
        echo "| scenario | daemon reached | tickets seen |"
        echo "|---|---|---|"
        cat "$TABLE"
        echo
    fi
}

# ---- logins driven by an agent (login_ssh, in_login and the agent: booted-check-lib.sh) ----------
# login_x11 NAME USER: a session opened the way a display manager does (pam_putenv of
# XDG_SESSION_TYPE=x11 and XDG_SESSION_CLASS=user before pam_open_session, service "login").
login_x11() {
    local name=$1 user=$2
    rm -rf "$RT/$name"
    inside /usr/local/lib/rt/dm-session "$user" /usr/local/lib/rt/agent "$name" \
        >"$LOG/login-$name.txt" 2>&1 &
    LOGIN_PID[$name]=$!
    wait_for 30 test -e "$RT/$name/ready"
}

# logout NAME: the agent exits, and with it the login.
logout() {
    local name=$1
    [ -n "${LOGIN_PID[$name]:-}" ] || return 0
    touch "$RT/$name/exit" 2>/dev/null
    wait_for 30 bash -c "! kill -0 ${LOGIN_PID[$name]} 2>/dev/null"
    kill "${LOGIN_PID[$name]}" 2>/dev/null
    wait "${LOGIN_PID[$name]}" 2>/dev/null
    unset "LOGIN_PID[$name]"
}

# What a client reached: `ccachectl where` where it exists, else the first lines of ccachectl
# status --no-start (which starts no daemon of its own).
WHERE='ccachectl where 2>/dev/null || ccachectl status --no-start 2>&1 | grep -E "^(session|socket|daemon):" | head -n 3'
# The default principal a klist output shows, or its error.
principal_of() { sed -n 's/^Default principal: //p' <<<"$1" | head -n1 | grep . || grep -m1 -E 'klist:|No ' <<<"$1" || echo '(nothing)'; }

install_helpers() {
    local d="$ROOT/usr/local/lib/rt"
    install_agent
    cat >"$d/dm-session" <<'EOF'
#!/usr/bin/python3
# A display manager's part of a login, without a display: PAM service "login" for USER, with
# XDG_SESSION_TYPE=x11 and XDG_SESSION_CLASS=user put into the PAM environment before
# pam_open_session (so pam_systemd registers a graphical session, as gdm and lightdm do); then
# COMMAND runs as USER with the PAM environment; the session closes when it exits.
import ctypes, ctypes.util, os, pwd, sys

pam = ctypes.CDLL(ctypes.util.find_library("pam"))
libc = ctypes.CDLL(None)
libc.calloc.restype = ctypes.c_void_p

class Message(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]

class Response(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_char_p), ("resp_retcode", ctypes.c_int)]

CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(Message)),
                        ctypes.POINTER(ctypes.POINTER(Response)), ctypes.c_void_p)

class Conv(ctypes.Structure):
    _fields_ = [("conv", CONV), ("appdata_ptr", ctypes.c_void_p)]

def converse(count, messages, responses, data):
    responses[0] = ctypes.cast(libc.calloc(count, ctypes.sizeof(Response)), ctypes.POINTER(Response))
    for i in range(count):
        message = messages[i].contents
        if message.msg_style in (1, 2):
            return 19  # PAM_CONV_ERR: a session module never asks
        sys.stderr.write("pam: %s\n" % (message.msg or b"").decode(errors="replace"))
    return 0

user, command = sys.argv[1], sys.argv[2:]
entry = pwd.getpwnam(user)
conv = Conv(CONV(converse), None)
handle = ctypes.c_void_p()
pam.pam_getenvlist.restype = ctypes.POINTER(ctypes.c_char_p)
if pam.pam_start(b"login", user.encode(), ctypes.byref(conv), ctypes.byref(handle)) != 0:
    sys.exit("pam_start failed")
for setting in (b"XDG_SESSION_TYPE=x11", b"XDG_SESSION_CLASS=user"):
    pam.pam_putenv(handle, setting)
status = pam.pam_open_session(handle, 0)
if status != 0:
    sys.exit("pam_open_session failed: %d" % status)
env = {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user, "SHELL": entry.pw_shell,
       "PATH": "/usr/local/bin:/usr/bin:/bin"}
listing = pam.pam_getenvlist(handle)
i = 0
while listing[i]:
    name, _, value = listing[i].decode().partition("=")
    env[name] = value
    i += 1
child = os.fork()
if child == 0:
    os.initgroups(user, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.chdir(entry.pw_dir)
    os.execve(command[0], command, env)
os.waitpid(child, 0)
pam.pam_close_session(handle, 0)
pam.pam_end(handle, 0)
EOF
    cat >"$d/count-daemons" <<'EOF'
#!/bin/bash
# count-daemons USER: "<ccached processes of USER> <live class-user logind sessions of USER>"
user=$1
daemons=$(pgrep -u "$user" -x ccached | wc -l)
logins=0
for s in $(loginctl list-sessions --no-legend 2>/dev/null | awk -v u="$user" '$3 == u { print $1 }'); do
    class=$(loginctl show-session "$s" -p Class --value 2>/dev/null)
    state=$(loginctl show-session "$s" -p State --value 2>/dev/null)
    [ "$class" = user ] && [ "$state" != closing ] && logins=$((logins + 1))
done
echo "$daemons $logins"
EOF
    cat >"$d/cronjob" <<'EOF'
#!/bin/bash
# alice's cron job: bob's TGT from a keytab, then klist; what it saw goes to /var/tmp/rt/cron.
out=/var/tmp/rt/cron
mkdir -p "$out"
n=$(date +%s)
{
    kinit -k -t "$HOME/bob.keytab" bob@CCACHED.TEST && echo "kinit: ok"
    klist
    echo "where: $({ ccachectl where 2>/dev/null || ccachectl status --no-start 2>&1 | grep -E '^(session|socket|daemon):'; } | tr '\n' ' ')"
    echo "audit session: $(cat /proc/self/sessionid)"
} >"$out/run.$n.tmp" 2>&1
mv "$out/run.$n.tmp" "$out/run.$n"
EOF
    # Stale-daemon check: every socket under /run/ccached and /run/user/*/ccached must belong to a
    # running ccached (its --socket argument), or be the door's hand-off socket of one.
    cat >"$d/stale-sockets" <<'EOF'
#!/bin/bash
live=$(for p in $(pgrep -x ccached); do tr '\0' '\n' </proc/$p/cmdline | sed -n '/^--socket$/{n;p}'; done)
find /run/ccached /run/user/*/ccached -type s 2>/dev/null | while read -r s; do
    grep -qxF "${s%.handoff}" <<<"$live" || echo "$s"
done
EOF
    chmod 0755 "$d"/*
}

# ======================================================================================== main
rm -rf "$STATE"
mkdir -p "$STATE" "$LOG"
: >"$TABLE"
export BOOTED_EXTRA_PACKAGES="$LOGIN_BASE_PACKAGES"
if ! "$BOOTED" boot "$STATE" >"$LOG/boot.txt" 2>&1; then
    fail "the container boots" "$(tail -n 5 "$LOG/boot.txt")"
    finish
fi
pass "the container boots with CAP_AUDIT_CONTROL ($(inside systemctl is-system-running || true))"

# ---- the test KDC (its krb5.conf is the host's) and the users; then a snapshot of /etc ------------
mkdir -p "$ROOT/root/pkg"
cp "$DEB_CCACHED" "$DEB_PAM" "$ROOT/root/pkg/"
install -m 0755 "$ROOT_DIR/scripts/testkdc.sh" "$ROOT/root/pkg/testkdc.sh"
install_helpers
if inside bash -c 'set -e
        /root/pkg/testkdc.sh start /root/kdc >/root/kdc.log 2>&1
        install -m 0644 /root/kdc/krb5.conf /etc/krb5.conf
        for u in alice bob carol; do useradd -m -s /bin/bash "$u"; done
        usermod -aG sudo alice
        KRB5_CONFIG=/root/kdc/krb5.conf KRB5_KDC_PROFILE=/root/kdc/kdc.conf \
            kadmin.local -q "ktadd -norandkey -k /home/alice/bob.keytab bob" >/dev/null
        chown alice: /home/alice/bob.keytab' >"$LOG/kdc.txt" 2>&1; then
    pass "a test KDC on the container's loopback; users alice, bob, carol (alice in group sudo)"
else
    fail "a test KDC and the users" "$(tail -n 5 "$LOG/kdc.txt")"
    finish
fi
ALICE=$(inside id -u alice)
BOB=$(inside id -u bob)
snapshot() {
    inside bash -c 'cd / && find etc var/lib/systemd/deb-systemd-helper-enabled var/lib/systemd/deb-systemd-user-helper-enabled var/lib/ccached \
        \( -type f -o -type l \) 2>/dev/null | LC_ALL=C sort | while read -r f; do
            if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f $(sha256sum <"$f" | cut -c1-16)"; fi
        done'
}
snapshot >"$LOG/etc-before.txt"
krb5_before=$(sha256sum <"$ROOT/etc/krb5.conf")

# ---- install -------------------------------------------------------------------------------------
install_debs
door_state=$(inside systemctl is-enabled ccached-door.socket 2>&1)/$(inside systemctl is-active ccached-door.socket 2>&1)
verdict "the install enabled and started ccached-door.socket (no sssd-kcm here): $door_state" "$door_state" \
    test "$door_state" = enabled/active
verdict "/etc/krb5.conf reads /etc/krb5.conf.d/ (the package's marked block)" "$(tail -n 6 "$ROOT/etc/krb5.conf")" \
    grep -qx 'includedir /etc/krb5.conf.d/' "$ROOT/etc/krb5.conf"
users_units=$(find "$ROOT/etc/systemd/user" "$ROOT/usr/lib/systemd/user" "$ROOT/usr/lib/environment.d" \
    -name '*ccached*' 2>/dev/null)
verdict "no user unit or environment.d snippet of ccached is installed or enabled" "$users_units" \
    test -z "$users_units"

# ---- 1. ssh password logins ----------------------------------------------------------------------
if login_ssh a1 alice pw-alice; then
    pass "ssh alice@127.0.0.1 with a password (login a1, logind session $(sed -n 's/^XDG_SESSION_ID=//p' "$RT/a1/env"))"
else
    fail "ssh alice@127.0.0.1 with a password" "$(tail -n 5 "$LOG/login-a1.txt")"
    finish
fi
sed "s/^/    /" "$RT/a1/env" >"$LOG/a1-env.txt"
a1_sid=$(sed -n 's/^XDG_SESSION_ID=//p' "$RT/a1/env")
a1_audit=$(cat "$RT/a1/audit-session" 2>/dev/null)
verdict "the login's logind session id is its audit session id ($a1_sid = $a1_audit), as on a real host" "" \
    test -n "$a1_sid" -a "$a1_sid" = "$a1_audit"
out_env=$(in_login a1 'klist')
out_clean=$(in_login a1 'env -i PATH=$PATH klist')
where_a1=$(in_login a1 "$WHERE")
row "ssh login a1 (alice): klist" "$where_a1" "$(principal_of "$out_env")"
row "ssh login a1: env -i klist" "(door)" "$(principal_of "$out_clean")"
verdict "ssh login: klist and env -i PATH=\$PATH klist both show the login's TGT (alice@)" \
    "$(printf 'klist:\n%s\nenv -i klist:\n%s' "$out_env" "$out_clean")" \
    bash -c 'grep -q "Default principal: alice@CCACHED.TEST" <<<"$1" && grep -q "Default principal: alice@CCACHED.TEST" <<<"$2"' _ "$out_env" "$out_clean"

# A second login of alice, another principal (bob via kinit); a1 then kinits carol.
login_ssh a2 alice pw-alice
in_login a2 'echo pw-bob | kinit bob >/dev/null' >/dev/null
in_login a1 'echo pw-carol | kinit carol >/dev/null' >/dev/null
a1_list=$(in_login a1 'klist -l; env -i PATH=$PATH klist -l')
a2_list=$(in_login a2 'klist -l; env -i PATH=$PATH klist -l')
row "ssh login a2 (alice, kinit bob): klist -l" "$(in_login a2 "$WHERE")" "$(grep -o '[a-z]*@CCACHED.TEST' <<<"$a2_list" | sort -u)"
row "ssh login a1 (kinit carol): klist -l" "$where_a1" "$(grep -o '[a-z]*@CCACHED.TEST' <<<"$a1_list" | sort -u)"
verdict "two concurrent logins of alice are isolated both ways (a1 never sees bob@, a2 never sees carol@)" \
    "$(printf 'a1:\n%s\na2:\n%s' "$a1_list" "$a2_list")" \
    bash -c 'grep -q carol@ <<<"$1" && ! grep -q bob@ <<<"$1" && grep -q bob@ <<<"$2" && ! grep -q carol@ <<<"$2"' _ "$a1_list" "$a2_list"
logout a2
in_login a1 'kswitch -p alice@CCACHED.TEST; kdestroy -p carol@CCACHED.TEST 2>/dev/null; true' >/dev/null

# ---- 2. the user manager, a root helper, a graphical session --------------------------------------
out=$(in_login a1 'systemd-run --user --wait -P --quiet klist 2>&1')
row "systemd-run --user klist (a1 live)" "$(in_login a1 "systemd-run --user --wait -P --quiet bash -c '$WHERE' 2>&1")" "$(principal_of "$out")"
verdict "systemd-run --user --wait -P klist sees login a1's TGT" "$out" grep -q 'Default principal: alice@' <<<"$out"
out=$(in_login a1 'mkdir -p ~/.config/systemd/user
cat >~/.config/systemd/user/rt-klist.service <<UNIT
[Service]
Type=oneshot
ExecStart=/bin/sh -c "klist >/var/tmp/rt/unit-klist.txt 2>&1"
UNIT
systemctl --user daemon-reload && systemctl --user start rt-klist.service; cat /var/tmp/rt/unit-klist.txt')
row "a unit in ~/.config/systemd/user: klist" "(user manager)" "$(principal_of "$out")"
verdict "a unit of ~/.config/systemd/user sees login a1's TGT" "$out" grep -q 'Default principal: alice@' <<<"$out"
out=$(inside systemd-run --wait -P --quiet setpriv --reuid=alice --regid=alice --init-groups klist 2>&1)
where=$(inside systemd-run --wait -P --quiet setpriv --reuid=alice --regid=alice --init-groups bash -c "$WHERE" 2>&1)
row "root helper: systemd-run setpriv --reuid=alice klist (rpc.gssd)" "$where" "$(principal_of "$out")"
verdict "a root helper taking alice's uid (systemd-run setpriv --reuid, as rpc.gssd) sees a1's TGT" "$out" \
    grep -q 'Default principal: alice@' <<<"$out"

if login_x11 x1 alice; then
    x11_id=$(sed -n 's/^XDG_SESSION_ID=//p' "$RT/x1/env")
    x11_type=$(inside loginctl show-session "$x11_id" -p Type --value 2>&1)
    display=$(inside loginctl show-user alice -p Display --value 2>&1)
    in_login x1 'echo pw-carol | kinit carol >/dev/null' >/dev/null
    xk=$(in_login x1 'klist')
    out=$(in_login a1 'systemd-run --user --wait -P --quiet klist 2>&1')
    row "graphical session x1 (type $x11_type, display session '$display'): klist" "$(in_login x1 "$WHERE")" "$(principal_of "$xk")"
    row "systemd-run --user klist (x1 and a1 live)" "(user manager)" "$(principal_of "$out")"
    verdict "with a graphical session (x11, logind's display session $display = $x11_id), the user manager sees its tickets (carol@)" \
        "$(printf 'x1 klist:\n%s\nuser manager klist:\n%s' "$xk" "$out")" \
        bash -c '[ "$3" = "$4" ] && grep -q "Default principal: carol@" <<<"$1" && grep -q "Default principal: carol@" <<<"$2"' \
        _ "$xk" "$out" "$display" "$x11_id"
    logout x1
else
    fail "a display-manager-like session of class user, type x11 (dm-session)" "$(tail -n 5 "$LOG/login-x1.txt")"
fi

# ---- 3. cron -------------------------------------------------------------------------------------
a1_before=$(in_login a1 'klist 2>/dev/null | sed -n "s/^Default principal: //p"')
inside bash -c 'echo "* * * * * /usr/local/lib/rt/cronjob" | crontab -u alice -'
cron_ok=0
# run.N appears (by mv) only once the job wrote all of it; run.N.tmp is the job still writing.
if wait_for 75 bash -c "ls '$RT/cron' 2>/dev/null | grep -qx 'run\.[0-9]*'"; then
    run="$RT/cron/$(ls "$RT/cron" | grep -x 'run\.[0-9]*' | head -n1)"
    cron_out=$(cat "$run")
    row "cron job (kinit -k bob, klist)" "$(sed -n 's/^where: //p' <<<"$cron_out")" "$(principal_of "$cron_out")"
    verdict "a cron job every minute: kinit -k -t KEYTAB and klist work in it" "$cron_out" \
        bash -c 'grep -q "kinit: ok" <<<"$1" && grep -q "Default principal: bob@" <<<"$1"' _ "$cron_out"
    cron_ok=1
else
    fail "a cron job every minute ran within 75 s" "$(inside journalctl --no-pager -u cron -n 10 2>&1)"
fi
a1_after=$(in_login a1 'klist 2>/dev/null | sed -n "s/^Default principal: //p"')
verdict "the cron job did not change login a1's default principal ($a1_before -> $a1_after)" "" \
    test -n "$a1_before" -a "$a1_before" = "$a1_after"
if [ "$cron_ok" = 1 ]; then
    # Within a minute of the job's end: as many ccached of alice as her live logins need.
    counts=""
    settled() { counts=$(inside /usr/local/lib/rt/count-daemons alice); [ "${counts% *}" = "${counts#* }" ]; }
    wait_for 60 settled
    procs=$(inside ps -o pid=,args= -u alice -C ccached 2>&1 | grep ccached)
    row "after the cron job: ccached processes / live logins of alice" "$counts" "$(oneline "$procs")"
    verdict "within a minute of the cron job's end, alice's ccached processes = her live logins ($counts)" \
        "$procs" settled
fi
inside crontab -u alice -r 2>/dev/null

# ---- 4. tmux across logins -----------------------------------------------------------------------
login_ssh t1 alice pw-alice
in_login t1 'tmux new-session -d -s rt -x 200 -y 50' >/dev/null
logout t1
login_ssh t2 alice pw-alice
in_login t2 'echo pw-bob | kinit bob >/dev/null' >/dev/null
out=$(in_login t2 'tmux send-keys -t rt "klist >/var/tmp/rt/tmux-klist.txt 2>&1; echo pw-carol | kinit carol >/var/tmp/rt/tmux-kinit.txt 2>&1; echo rc=\$? >>/var/tmp/rt/tmux-kinit.txt" Enter
for i in $(seq 1 100); do grep -q rc= /var/tmp/rt/tmux-kinit.txt 2>/dev/null && break; sleep 0.1; done
echo "--- klist in tmux"; cat /var/tmp/rt/tmux-klist.txt; echo "--- kinit in tmux"; cat /var/tmp/rt/tmux-kinit.txt
echo "--- klist in t2"; klist')
tmux_klist=$(sed -n '/^--- klist in tmux/,/^--- kinit/p' <<<"$out")
row "tmux from ended login t1, attached from t2 (kinit bob): klist" "(tmux shell)" "$(principal_of "$tmux_klist")"
verdict "tmux started in login t1, used from login t2 after t1's logout: klist shows t2's tickets (bob@), kinit works" \
    "$out" bash -c 'grep -q "Default principal: bob@" <<<"$1" && grep -q "^rc=0" <<<"$2"' _ "$tmux_klist" "$out"
in_login t2 'tmux kill-server' >/dev/null 2>&1
logout t2

# ---- 5. su - bob and sudo -u bob inside alice's login -------------------------------------------
# su reads the password from its terminal and flushes what was typed ahead (sshpass races with
# that): script(1) gives it a terminal, and the password comes once su waits for it.
cat >"$ROOT/usr/local/lib/rt/as-bob" <<EOF
#!/bin/bash
echo --- klist; klist; echo --- env -i klist; env -i PATH=\$PATH klist; echo --- where; $WHERE
EOF
chmod 0755 "$ROOT/usr/local/lib/rt/as-bob"
out=$(in_login a1 '(sleep 2; echo pw-bob) | script -qec "su - bob -c /usr/local/lib/rt/as-bob" /dev/null | tr -d "\r"')
su_env_raw=$(sed -n '/^--- klist/,/^--- env -i/p' <<<"$out")
su_clean_raw=$(sed -n '/^--- env -i/,/^--- where/p' <<<"$out")
su_env=$(grep -E '^(Ticket cache|Default principal):' <<<"$su_env_raw")
su_clean=$(grep -E '^(Ticket cache|Default principal):' <<<"$su_clean_raw")
row "su - bob in a1: klist / env -i klist" "$(sed -n '/^--- where/,$p' <<<"$out" | tail -n +2)" \
    "$(principal_of "$su_env_raw") / $(principal_of "$su_clean_raw")"
verdict "su - bob in alice's login: klist and env -i PATH=\$PATH klist show the same tickets (bob@)" "$out" \
    bash -c '[ -n "$1" ] && [ "$1" = "$2" ] && grep -q "Default principal: bob@" <<<"$1"' _ "$su_env" "$su_clean"
out=$(in_login a1 'sshpass -p pw-alice sudo -u bob klist 2>&1; echo "rc=$?"' 2>&1)
row "sudo -u bob klist in a1" "(door)" "$(principal_of "$out")"
verdict "sudo -u bob klist in alice's login reaches a KCM server of bob's" "$out" \
    bash -c '! grep -qiE "No KCM server|Permission denied|Connection refused|Connection reset" <<<"$1" &&
        grep -qE "rc=0|No credentials cache found|Credentials cache .KCM:[0-9:]*. not found" <<<"$1"' _ "$out"

# ---- 6. reinstall with a session holding tickets -------------------------------------------------
inside journalctl --no-pager -o cat >"$LOG/journal-before-reinstall.txt" 2>&1
before=$(in_login a1 'klist')
if inside bash -c 'cd /root/pkg && DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall --no-install-recommends \
        ./ccached_*.deb ./libpam-ccached_*.deb' >"$LOG/reinstall.txt" 2>&1; then
    pass "apt-get install --reinstall with login a1 holding tickets"
else
    fail "apt-get install --reinstall with login a1 holding tickets" "$(tail -n 8 "$LOG/reinstall.txt")"
fi
after=$(in_login a1 'klist; env -i PATH=$PATH klist')
verdict "login a1 kept its tickets across the reinstall" "$after" \
    bash -c 'grep -q "Default principal: alice@" <<<"$1" && [ "$(grep -c "Default principal: alice@" <<<"$2")" = 2 ]' _ "$before" "$after"
leftover=$(inside journalctl --no-pager -o cat 2>&1 | grep -i 'left-over process')
verdict "no systemd 'left-over process' warning in the journal" "$leftover" test -z "$leftover"

# ---- 7. logout, terminate-user: no daemon and no stale socket left -------------------------------
logout a1
count_of() { inside pgrep -u "$1" -x ccached | wc -l; }
verdict "after alice's last logout no ccached of hers is left within a minute" \
    "$(inside ps -o pid=,args= -u alice 2>&1)" wait_for 60 bash -c "[ \"\$('$BOOTED' run '$STATE' pgrep -u alice -x ccached | wc -l)\" = 0 ]"
login_ssh b1 bob pw-bob
in_login b1 'klist >/dev/null; env -i PATH=$PATH klist >/dev/null; systemd-run --user --wait -P --quiet klist >/dev/null 2>&1; true' >/dev/null
inside loginctl terminate-user bob >/dev/null 2>&1
logout b1
verdict "after loginctl terminate-user bob no ccached of his is left within a minute" \
    "$(inside ps -o pid=,args= -u bob 2>&1)" wait_for 60 bash -c "[ \"\$('$BOOTED' run '$STATE' pgrep -u bob -x ccached | wc -l)\" = 0 ]"
stale=$(inside /usr/local/lib/rt/stale-sockets)
verdict "nothing under /run/ccached or /run/user/UID/ccached names a dead daemon" "$stale" test -z "$stale"
row "after all logouts: ccached processes" "$(inside pgrep -a -x ccached 2>&1 | head -n 5)" "stale sockets: ${stale:-none}"

# ---- 8. purge ------------------------------------------------------------------------------------
if inside env DEBIAN_FRONTEND=noninteractive apt-get purge -y ccached libpam-ccached >"$LOG/purge.txt" 2>&1; then
    pass "apt-get purge ccached libpam-ccached"
else
    fail "apt-get purge ccached libpam-ccached" "$(tail -n 8 "$LOG/purge.txt")"
fi
verdict "purge left /etc/krb5.conf byte-identical to before the install" "$(diff <(cat "$ROOT/root/kdc/krb5.conf") "$ROOT/etc/krb5.conf")" \
    test "$(sha256sum <"$ROOT/etc/krb5.conf")" = "$krb5_before"
snapshot >"$LOG/etc-after.txt"
changed=$(diff "$LOG/etc-before.txt" "$LOG/etc-after.txt" | grep '^[<>]' | grep -vE ' etc/(ld\.so\.cache|machine-id|\.pwd\.lock|mtab) ')
verdict "purge left every file under /etc (and deb-systemd-helper's state) as before the install" "$changed" \
    test -z "$changed"
inside /root/pkg/testkdc.sh stop /root/kdc >/dev/null 2>&1
stop_container

# ---- 9. sssd-kcm enabled: installing ccached leaves it the socket ---------------------------------
export BOOTED_EXTRA_PACKAGES="$LOGIN_BASE_PACKAGES sssd-kcm"
if ! "$BOOTED" boot "$STATE" >"$LOG/boot-sssd.txt" 2>&1; then
    fail "a second container with sssd-kcm boots" "$(tail -n 5 "$LOG/boot-sssd.txt")"
    finish
fi
mkdir -p "$ROOT/root/pkg"
cp "$DEB_CCACHED" "$DEB_PAM" "$ROOT/root/pkg/"
kcm_before=$(inside systemctl is-enabled sssd-kcm.socket 2>&1)/$(inside systemctl is-active sssd-kcm.socket 2>&1)
inside bash -c 'cd /root/pkg && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ./ccached_*.deb ./libpam-ccached_*.deb' >"$LOG/install-sssd.txt" 2>&1
kcm_after=$(inside systemctl is-enabled sssd-kcm.socket 2>&1)/$(inside systemctl is-active sssd-kcm.socket 2>&1)
door_after=$(inside systemctl is-enabled ccached-door.socket 2>&1)/$(inside systemctl is-active ccached-door.socket 2>&1)
row "install with sssd-kcm enabled" "sssd-kcm.socket $kcm_before -> $kcm_after; ccached-door.socket $door_after" \
    "$(grep -c '^ccached:' "$LOG/install-sssd.txt") lines of message"
verdict "with sssd-kcm enabled ($kcm_before), installing ccached leaves it the socket ($kcm_after; door $door_after)" \
    "$(tail -n 12 "$LOG/install-sssd.txt")" \
    bash -c '[ "$1" = enabled/active ] && [ "$2" = enabled/active ] && [ "${3%/*}" != enabled ] && [ "${3#*/}" != active ]' \
    _ "$kcm_before" "$kcm_after" "$door_after"
verdict "the install says so and prints the commands to switch" "$(grep '^ccached:' "$LOG/install-sssd.txt")" \
    grep -qF 'systemctl disable --now sssd-kcm.socket sssd-kcm.service && systemctl enable --now ccached-door.socket' \
    "$LOG/install-sssd.txt"
# The switch, exactly as printed.
inside bash -c 'systemctl disable --now sssd-kcm.socket sssd-kcm.service && systemctl enable --now ccached-door.socket' \
    >"$LOG/switch-sssd.txt" 2>&1
kcm_switched=$(inside systemctl is-enabled sssd-kcm.socket 2>&1)/$(inside systemctl is-active sssd-kcm.socket 2>&1)
door_switched=$(inside systemctl is-enabled ccached-door.socket 2>&1)/$(inside systemctl is-active ccached-door.socket 2>&1)
verdict "the printed commands switch the socket to ccached (sssd-kcm.socket $kcm_switched, ccached-door.socket $door_switched)" \
    "$(cat "$LOG/switch-sssd.txt")" \
    bash -c '[ "$1" = disabled/inactive ] && [ "$2" = enabled/active ]' _ "$kcm_switched" "$door_switched"

finish
