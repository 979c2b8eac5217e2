#!/usr/bin/env bash
# The Debian packages on a real systemd: install, use, upgrade and purge them in a booted Debian 12
# container (scripts/booted-system.sh). Root only; `make test-package` (part of `make test`) runs it.
#
#   scripts/package-test.sh DEB_DIR
#
# DEB_DIR holds ccached_*.deb and libpam-ccached_*.deb (`make deb` leaves them in .build/deb).
# Inside the container: a throwaway MIT KDC on the container's loopback (scripts/testkdc.sh; its
# krb5.conf is the host's /etc/krb5.conf before anything is installed); the previous release's
# layout (0.1, simulated by repacking: user units enabled for every user) installed, then these
# packages over it with apt-get install ./… from the files; `su - alice` through PAM (pam_systemd:
# a real logind session) with the PAM profile the package installed; the stock kinit/klist/kvno
# through /usr/bin/ccached; logout; an upgrade under a running session; purge.
# Prints PASS/FAIL per check and ends with exactly "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

CHECK_NAME="package test"
# shellcheck source=scripts/booted-check-lib.sh
. "$(dirname "$0")/booted-check-lib.sh" || exit 2
booted_check_args package-test "$@"

cleanup() {
    "$BOOTED" stop "$STATE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# as_alice SCRIPT: a login of alice through PAM (su -), running SCRIPT in her login shell.
as_alice() { inside su - alice -c "$1"; }

rm -rf "$STATE"
mkdir -p "$STATE" "$LOG"
if ! "$BOOTED" boot "$STATE" >"$LOG/boot.txt" 2>&1; then
    fail "the container boots" "$(tail -n 5 "$LOG/boot.txt")"
    finish
fi
pass "the container boots ($(inside systemctl is-system-running || true))"

# What the packages ship, and which of those paths the system had before (/usr, /etc, ...).
paths=()
while IFS= read -r path; do paths+=("$path"); done < <(
    for deb in "$DEB_CCACHED" "$DEB_PAM"; do dpkg-deb --fsys-tarfile "$deb" | tar -t; done |
        sed -e 's#^\./#/#' -e 's#/$##' | grep -v '^\.\?$' | sort -u)
preexisting=()
for path in "${paths[@]}"; do
    if [ -e "$ROOT$path" ] || [ -L "$ROOT$path" ]; then preexisting+=("$path"); fi
done
mkdir -p "$ROOT/root/pkg" "$ROOT/usr/local/share/pkgtest"
cp "$DEB_CCACHED" "$DEB_PAM" "$ROOT/root/pkg/"
install -m 0755 "$ROOT_DIR/scripts/testkdc.sh" "$ROOT/root/pkg/testkdc.sh"

# ---- a KDC and a user (the host's krb5.conf is the KDC's, as an administrator would have it) ----
if inside bash -c '/root/pkg/testkdc.sh start /root/kdc >/root/kdc.log 2>&1 &&
        install -m 0644 /root/kdc/krb5.conf /etc/krb5.conf && useradd -m alice' \
        >"$LOG/kdc.txt" 2>&1; then
    pass "a throwaway MIT KDC runs on the container's loopback; user alice exists"
else
    fail "a throwaway MIT KDC runs on the container's loopback; user alice exists" \
        "$(tail -n 5 "$LOG/kdc.txt")" "$(tail -n 5 "$ROOT/root/kdc.log" 2>/dev/null)"
    finish
fi
uid=$(inside id -u alice)
session_before=$(sha256sum <"$ROOT/etc/pam.d/common-session")
krb5_before=$(sha256sum <"$ROOT/etc/krb5.conf")

# ---- the previous release: user units enabled for every user -------------------------------------
# 0.1 shipped ccached.socket, ccached.service, ccached-krb5-conf.service and environment.d's
# 60-ccached.conf, and its postinst enabled the first and third for every user (debhelper's
# dh_installsystemduser code). Repacked from this build with that layout and that postinst.
old="$STATE/old"
oldversion=0.1.0~packagetest
version=$(dpkg-deb -f "$DEB_CCACHED" Version)
for deb in "$DEB_CCACHED" "$DEB_PAM"; do
    rm -rf "$old/tree"
    mkdir -p "$old"
    dpkg-deb -R "$deb" "$old/tree"
    sed -i -e "s/^Version: .*/Version: $oldversion/" \
        -e "s/ccached (= $version)/ccached (= $oldversion)/" "$old/tree/DEBIAN/control"
    if [ "$deb" = "$DEB_CCACHED" ]; then
        install -D -m 0644 -t "$old/tree/usr/lib/systemd/user" \
            "$ROOT_DIR/systemd/ccached.socket" "$ROOT_DIR/systemd/ccached.service" \
            "$ROOT_DIR/systemd/ccached-krb5-conf.service"
        sed -i 's#/usr/local/bin/#/usr/bin/#g' "$old/tree/usr/lib/systemd/user/"*
        install -D -m 0644 "$ROOT_DIR/systemd/environment.d/60-ccached.conf" \
            "$old/tree/usr/lib/environment.d/60-ccached.conf"
        rm -f "$old/tree/DEBIAN/preinst" "$old/tree/DEBIAN/prerm"
        printf '%s\n' '#!/bin/sh' 'set -e' 'if [ "$1" = "configure" ]; then' \
            '    for unit in ccached.socket ccached-krb5-conf.service; do' \
            '        if deb-systemd-helper --quiet --user was-enabled "$unit"; then' \
            '            deb-systemd-helper --user enable "$unit" >/dev/null || true' \
            '        else' \
            '            deb-systemd-helper --user update-state "$unit" >/dev/null || true' \
            '        fi' \
            '    done' 'fi' 'exit 0' >"$old/tree/DEBIAN/postinst"
        printf '%s\n' '#!/bin/sh' 'set -e' 'if [ "$1" = "purge" ]; then' \
            '    deb-systemd-helper --user purge ccached.socket ccached-krb5-conf.service >/dev/null || true' \
            'fi' 'exit 0' >"$old/tree/DEBIAN/postrm"
        chmod 0755 "$old/tree/DEBIAN/postinst" "$old/tree/DEBIAN/postrm"
    fi
    dpkg-deb -b "$old/tree" "$ROOT/root/pkg/old-$(basename "$deb")" >/dev/null
done
rm -rf "$old/tree"
if inside bash -c 'cd /root/pkg && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ./old-ccached_*.deb ./old-libpam-ccached_*.deb' >"$LOG/install-old.txt" 2>&1 &&
    [ -L "$ROOT/etc/systemd/user/sockets.target.wants/ccached.socket" ]; then
    pass "the previous release's layout ($oldversion) installed: ccached.socket enabled for every user"
else
    fail "the previous release's layout ($oldversion) installed: ccached.socket enabled for every user" \
        "$(tail -n 8 "$LOG/install-old.txt")"
fi

# ---- install (an upgrade from the previous release) ----------------------------------------------
install_debs
check "/usr/bin/ccached and /usr/bin/ccachectl are installed" \
    test -x "$ROOT/usr/bin/ccached" -a -x "$ROOT/usr/bin/ccachectl"
check "the binaries need no Swift toolchain (no libswift*, no RUNPATH)" \
    bash -c "! readelf -d '$ROOT/usr/bin/ccached' '$ROOT/usr/bin/ccachectl' | grep -Eq 'libswift|RUNPATH|RPATH'"
check "pam-auth-update put 'session optional pam_ccached.so' into common-session, after pam_systemd" \
    awk '/pam_systemd\.so/ { s = NR } /^session[ \t]+optional[ \t]+pam_ccached\.so/ { c = NR }
         END { exit !(s && c > s) }' "$ROOT/etc/pam.d/common-session"
check "common-session-noninteractive (cron, systemd --user) does not get pam_ccached" \
    bash -c "! grep -q pam_ccached '$ROOT/etc/pam.d/common-session-noninteractive'"
inside dpkg-query -W -f='${Conffiles}\n' ccached >"$LOG/conffiles.txt" 2>&1
check "/etc/krb5.conf.d/ccached.conf is a conffile of ccached" \
    grep -q '^ */etc/krb5.conf.d/ccached.conf ' "$LOG/conffiles.txt"
user_units=$(find "$ROOT/etc/systemd/user" "$ROOT/usr/lib/systemd/user" "$ROOT/usr/lib/environment.d" \
    "$ROOT/var/lib/systemd/deb-systemd-user-helper-enabled" -name '*ccached*' 2>/dev/null)
check "the upgrade removed the user units, their enablement links and deb-systemd-helper's record" \
    test -z "$user_units"
[ -z "$user_units" ] || printf '      %s\n' $user_units
check "/etc/krb5.conf reads /etc/krb5.conf.d/ (the postinst's marked block at its end)" \
    bash -c "tail -n 2 '$ROOT/etc/krb5.conf' | head -n 1 | grep -qx 'includedir /etc/krb5.conf.d/'"
door=$(inside systemctl is-enabled ccached-door.socket 2>&1)/$(inside systemctl is-active ccached-door.socket 2>&1)
check "ccached-door.socket is enabled and listening ($door)" test "$door" = enabled/active
check "postinst started no daemon" bash -c "! '$BOOTED' run '$STATE' pgrep -x ccached >/dev/null"
# (This starts root's daemon through the door; it ends by itself, see the last check.)
inside klist >"$LOG/klist-default.txt" 2>&1
check "a client without any environment now uses KCM (klist: $(head -n 1 "$LOG/klist-default.txt"))" \
    grep -q 'KCM' "$LOG/klist-default.txt"

# ---- a login through PAM: the session's daemon, its journal lines, the MIT tools ---------------
cat >"$ROOT/usr/local/share/pkgtest/session.sh" <<'EOF'
#!/bin/bash
# Runs in alice's login shell (su - alice): the environment is what pam_ccached exported.
out=/var/tmp/pkgtest-session
mkdir -p "$out"
env | grep -E '^(KRB5CCNAME|KRB5_CONFIG|CCACHED_SOCKET|HEIM_IPC_DIR|XDG_SESSION_ID|XDG_RUNTIME_DIR)=' | sort >"$out/env"
ccachectl status >"$out/status-login" 2>&1
sed -n 's/^socket: *//p' "$out/status-login" >"$out/socket"
sed -n 's/^daemon: *pid \([0-9]*\),.*/\1/p' "$out/status-login" >"$out/pid"
# The daemon is not dumpable, so its own user cannot read /proc/PID/exe; argv[0] is the path
# ccachectl ran.
tr '\0' '\n' <"/proc/$(cat "$out/pid")/cmdline" | head -n1 >"$out/exe" 2>&1
echo pw-alice | kinit alice >"$out/kinit" 2>&1; echo "$?" >"$out/kinit.rc"
kvno host/localhost >"$out/kvno" 2>&1; echo "$?" >"$out/kvno.rc"
klist >"$out/klist" 2>&1; echo "$?" >"$out/klist.rc"
klist -l >"$out/klist-l" 2>&1
ccachectl status >"$out/status" 2>&1
ls /tmp/krb5cc_* >"$out/filecaches" 2>/dev/null
exit 0
EOF
chmod 0755 "$ROOT/usr/local/share/pkgtest/session.sh"
as_alice /usr/local/share/pkgtest/session.sh >"$LOG/session.txt" 2>&1
S="$ROOT/var/tmp/pkgtest-session"
sid=$(sed -n 's/^XDG_SESSION_ID=//p' "$S/env" 2>/dev/null)
socket=$(cat "$S/socket" 2>/dev/null)
pid=$(cat "$S/pid" 2>/dev/null)
check "su - alice got a logind session (XDG_SESSION_ID=$sid)" test -n "$sid"
check "pam_ccached exported KRB5CCNAME=KCM:; the session's daemon listens in /run/user/$uid/ccached/$sid/" \
    bash -c "grep -qx 'KRB5CCNAME=KCM:' '$S/env' &&
             [ '$socket' = '/run/user/$uid/ccached/$sid/.heim_org.h5l.kcm-socket' ]"
check "the session's daemon runs /usr/bin/ccached (pid ${pid:-none})" \
    bash -c "[ -n '$pid' ] && [ \"\$(cat '$S/exe')\" = /usr/bin/ccached ]"
check "stock kinit stored a TGT in the daemon" \
    bash -c "[ \"\$(cat '$S/kinit.rc')\" = 0 ] && grep -q '^Ticket cache: KCM:' '$S/klist' &&
             grep -q 'krbtgt/CCACHED.TEST@CCACHED.TEST' '$S/klist'"
check "stock kvno got a service ticket through it" \
    bash -c "[ \"\$(cat '$S/kvno.rc')\" = 0 ] && grep -q 'host/localhost@CCACHED.TEST' '$S/klist'"
check "klist -l lists the session's collection" grep -q 'alice@CCACHED.TEST' "$S/klist-l"
check "ccachectl status shows the daemon of the session" grep -q "^daemon: *pid $pid," "$S/status"
check "no FILE cache on disk" test ! -s "$S/filecaches"
# `memory: 128 KiB locked of 8 MiB`: the tickets are in locked memory; `…, 1.8 KiB not locked` if not.
holds_locked() { grep -Eq '^memory: +[1-9][0-9.]* [KMG]?i?B locked' "$1" && ! grep -q 'not locked' "$1"; }
memory_of() { sed -n 's/^memory: *\(.*[^ ]\) *RLIMIT_MEMLOCK$/\1/p' "$1"; }
check "the session's daemon holds its tickets in locked memory (ccachectl status: $(memory_of "$S/status"))" \
    holds_locked "$S/status"
for f in env kinit klist status; do sed "s/^/    $f: /" "$S/$f" 2>/dev/null; done >"$LOG/session-files.txt"

# Logout (su ended): pam_ccached wiped and stopped the daemon; logind closed the session.
# (pids and /run are the container's: look from inside.)
check "after logout the session's daemon (pid ${pid:-none}) is gone" \
    wait_for 15 bash -c "[ -n '$pid' ] && ! '$BOOTED' run '$STATE' grep -qx ccached '/proc/$pid/comm' 2>/dev/null"
check "after logout its socket is gone" \
    bash -c "[ -n '$socket' ] && ! '$BOOTED' run '$STATE' test -e '$socket'"
inside journalctl --no-pager -o short-unix SYSLOG_IDENTIFIER=ccached >"$LOG/journal-ccached.txt" 2>&1
inside journalctl --no-pager -o cat _PID="${pid:-0}" >"$LOG/journal-daemon.txt" 2>&1
check "the PAM-started daemon's lines are in the journal (journalctl _PID=$pid, SYSLOG_IDENTIFIER=ccached)" \
    bash -c "[ -s '$LOG/journal-daemon.txt' ] && ! grep -q '^-- No entries --' '$LOG/journal-daemon.txt' &&
             [ -s '$LOG/journal-ccached.txt' ] && ! grep -q '^-- No entries --' '$LOG/journal-ccached.txt'"
inside journalctl --no-pager -o cat SYSLOG_IDENTIFIER=su >"$LOG/journal-su.txt" 2>&1
check "pam_ccached logged no error in the su sessions" \
    bash -c "! grep 'pam_ccached' '$LOG/journal-su.txt' | grep -qi 'cannot'"

# ---- units ------------------------------------------------------------------------------------
inside journalctl --no-pager -o cat >"$LOG/journal-all.txt" 2>&1
check "no unit failed to spawn (no 'Failed at step' in the journal)" \
    bash -c "! grep -E 'Failed at step|status=2[0-9][0-9]/' '$LOG/journal-all.txt'"

# ---- upgrade under a running session -------------------------------------------------------------
# The next build: the same files with the version bumped (repacked in a temporary copy).
next="$STATE/next"
mkdir -p "$next"
version=$(dpkg-deb -f "$DEB_CCACHED" Version)
nextversion="$version+upgradetest1"
for deb in "$DEB_CCACHED" "$DEB_PAM"; do
    rm -rf "$next/tree"
    dpkg-deb -R "$deb" "$next/tree"
    sed -i -e "s/^Version: .*/Version: $nextversion/" \
        -e "s/ccached (= $version)/ccached (= $nextversion)/" "$next/tree/DEBIAN/control"
    dpkg-deb -b "$next/tree" "$ROOT/root/pkg/next-$(basename "$deb")" >/dev/null
done
rm -rf "$next/tree"
cat >"$ROOT/usr/local/share/pkgtest/upgrade.sh" <<'EOF'
#!/bin/bash
# A session that holds tickets while root upgrades the packages.
out=/var/tmp/pkgtest-upgrade
mkdir -p "$out"
echo pw-alice | kinit alice >"$out/kinit" 2>&1
kvno host/localhost >/dev/null 2>&1
klist >"$out/before" 2>&1
ccachectl status 2>&1 | sed -n 's/^daemon: *pid \([0-9]*\),.*/\1/p' >"$out/pid"
touch "$out/ready"
for i in $(seq 1 600); do [ -e "$out/go" ] && break; sleep 0.2; done
klist >"$out/after" 2>&1; echo "$?" >"$out/after.rc"
ccachectl status 2>&1 | sed -n 's/^daemon: *pid \([0-9]*\),.*/\1/p' >"$out/pid-after"
exit 0
EOF
chmod 0755 "$ROOT/usr/local/share/pkgtest/upgrade.sh"
as_alice /usr/local/share/pkgtest/upgrade.sh >"$LOG/upgrade-session.txt" 2>&1 &
session_job=$!
P="$ROOT/var/tmp/pkgtest-upgrade"
if wait_for 60 test -e "$P/ready"; then
    upid=$(cat "$P/pid")
    # As root: the daemon is not dumpable, its user cannot read /proc/PID/exe.
    exe_before=$(inside readlink "/proc/${upid:-0}/exe" 2>&1)
    if inside bash -c 'cd /root/pkg && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ./next-ccached_*.deb ./next-libpam-ccached_*.deb' >"$LOG/upgrade.txt" 2>&1; then
        pass "apt-get install of the next build ($nextversion) over a running session"
    else
        fail "apt-get install of the next build ($nextversion) over a running session" "$(tail -n 8 "$LOG/upgrade.txt")"
    fi
    # The postinst asks each daemon to re-execute the new binary (SIGUSR2): the same process
    # then runs /usr/bin/ccached again, not the replaced file ("/usr/bin/ccached (deleted)").
    wait_for 10 bash -c "[ \"\$('$BOOTED' run '$STATE' readlink /proc/${upid:-0}/exe)\" = /usr/bin/ccached ]"
    exe_after=$(inside readlink "/proc/${upid:-0}/exe" 2>&1)
    touch "$P/go"
    wait "$session_job"
    check "the session's daemon (pid $upid) ran on across the upgrade, on the new binary: '$exe_before' -> '$exe_after'" \
        bash -c "[ -n '$upid' ] && [ '$exe_before' = /usr/bin/ccached ] &&
                 [ '$exe_after' = /usr/bin/ccached ] && [ \"\$(cat '$P/pid-after')\" = '$upid' ]"
    check "the running session kept its tickets across the upgrade" \
        bash -c "[ \"\$(cat '$P/after.rc')\" = 0 ] && grep -q 'krbtgt/CCACHED.TEST' '$P/after' &&
                 grep -q 'host/localhost@CCACHED.TEST' '$P/after'"
    check "the upgraded version is installed" \
        bash -c "'$BOOTED' run '$STATE' dpkg-query -W -f='\${Version}' ccached | grep -qx '$nextversion'"
else
    fail "a session for the upgrade test started" "$(tail -n 5 "$LOG/upgrade-session.txt")"
    touch "$P/go"
    wait "$session_job"
fi

# ---- purge ---------------------------------------------------------------------------------------
# alice's user manager ends once her last session has.
check "no session and no process of alice left after her logouts" \
    wait_for 30 bash -c "! '$BOOTED' run '$STATE' pgrep -u alice >/dev/null"
if inside env DEBIAN_FRONTEND=noninteractive apt-get purge -y ccached libpam-ccached >"$LOG/purge.txt" 2>&1; then
    pass "apt-get purge ccached libpam-ccached"
else
    fail "apt-get purge ccached libpam-ccached" "$(tail -n 8 "$LOG/purge.txt")"
fi
check "dpkg knows neither package any more" \
    bash -c "! '$BOOTED' run '$STATE' dpkg-query -W -f='\${Status}\n' ccached libpam-ccached 2>/dev/null |
             grep -q 'installed\|config-files'"
left=()
for path in "${paths[@]}"; do
    if [[ " ${preexisting[*]} " == *" $path "* ]]; then continue; fi
    if [ -e "$ROOT$path" ] || [ -L "$ROOT$path" ]; then left+=("$path"); fi
done
if [ "${#left[@]}" -eq 0 ]; then
    pass "every one of the ${#paths[@]} packaged paths that was not there before is gone"
else
    fail "every packaged path that was not there before is gone" "${left[@]}"
fi
check "/etc/pam.d/common-session is byte-identical to before the install" \
    test "$(sha256sum <"$ROOT/etc/pam.d/common-session")" = "$session_before"
check "/etc/krb5.conf is byte-identical to before the install" \
    test "$(sha256sum <"$ROOT/etc/krb5.conf")" = "$krb5_before"
check "no user unit link left in /etc/systemd/user" \
    bash -c "! find '$ROOT/etc/systemd/user' -name 'ccached*' | grep -q ."
check "no ccached process running within a minute (not even root's, which the door started)" \
    wait_for 60 bash -c "! '$BOOTED' run '$STATE' pgrep -x ccached >/dev/null"

inside /root/pkg/testkdc.sh stop /root/kdc >/dev/null 2>&1 || true
finish
