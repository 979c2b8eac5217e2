#!/usr/bin/env bash
# A booted Debian 12 container with a real systemd (PID 1 of its own), logind, journald and user
# managers, for tests that need them (this machine's PID 1 is not systemd). Root only.
#
#   scripts/booted-system.sh rootfs              build (once) the cached base tree; print its path
#   scripts/booted-system.sh boot STATE          copy the base to STATE/root (clean every time) and
#                                                boot it; returns once the system is up and prints
#                                                the pid (host's view) of the container's systemd
#   scripts/booted-system.sh run STATE CMD...    run CMD as root inside (all its namespaces); exit
#                                                status is CMD's
#   scripts/booted-system.sh stop STATE          power it off (kill after 30 s), remove STATE/root
#
# STATE is a directory of the caller's (created if missing). boot writes STATE/nspawn.pid (the
# systemd-nspawn process), STATE/init.pid (the container's systemd, the target of `run`) and
# STATE/console.log; STATE/root is the container's / while it runs: copy files in there, or read
# its files from there. The base is `.build/rootfs-<hash>` (hash of the package list), made by
# mmdebstrap (~20 s the first time) from Debian's mirrors; the container itself has no network
# (--private-network: only its own loopback), so every package a test needs at run time must be
# in the list: BOOTED_EXTRA_PACKAGES="pkg1 pkg2" adds some (and gives another cached base).
# krb5-kdc and krb5-admin-server are installed but disabled (tests run their own KDC,
# scripts/testkdc.sh). Needs mmdebstrap and systemd-container (scripts/install-deps.sh).
#
# Example:
#   scripts/booted-system.sh boot /tmp/sys && scripts/booted-system.sh run /tmp/sys systemctl is-system-running
#   scripts/booted-system.sh stop /tmp/sys
set -euo pipefail

PROG=${0##*/}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES=(systemd systemd-sysv dbus libpam-systemd libpam-runtime krb5-user krb5-kdc krb5-admin-server
    sudo procps psmisc util-linux passwd python3 libstdc++6 libgcc-s1 libkrb5-3 libsystemd0 libpam0g
    ${BOOTED_EXTRA_PACKAGES:-})

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it runs mmdebstrap, systemd-nspawn and nsenter)"
}

base_path() {
    local hash
    hash=$(printf '%s\n' "${PACKAGES[@]}" | sort -u | sha256sum | cut -c1-12)
    echo "$ROOT_DIR/.build/rootfs-$hash"
}

cmd_rootfs() {
    need_root
    local base include
    base=$(base_path)
    if [ -e "$base/.complete" ]; then
        echo "$base"
        return 0
    fi
    command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: run scripts/install-deps.sh"
    rm -rf "$base" "$base.tmp"
    mkdir -p "$(dirname "$base")"
    include=$(printf '%s,' "${PACKAGES[@]}")
    echo "$PROG: building $base (mmdebstrap bookworm, ${#PACKAGES[@]} packages)" >&2
    # The KDC packages' services would fail at boot without a database: the tests start their own.
    # A fixed machine-id-less tree: systemd makes one at each boot.
    mmdebstrap --quiet --variant=apt --include="${include%,}" \
        --customize-hook='chroot "$1" systemctl disable krb5-kdc.service krb5-admin-server.service' \
        --customize-hook='rm -f "$1/etc/machine-id" "$1/var/lib/dbus/machine-id"; touch "$1/etc/machine-id"' \
        --customize-hook='echo booted-test > "$1/etc/hostname"' \
        bookworm "$base.tmp" >&2 || die "mmdebstrap failed (is Debian's mirror reachable?)"
    touch "$base.tmp/.complete"
    mv "$base.tmp" "$base"
    echo "$base"
}

# The cgroup directory of STATE's container, under each writable hierarchy of this host's
# (cgroup v1 "systemd" and the v2 "unified" one of a hybrid layout, or the v2 root).
cgroup_dirs() {
    local name base
    name=booted-$(printf '%s' "$1" | sha256sum | cut -c1-12)
    for base in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        [ -w "$base/cgroup.procs" ] && echo "$base/$name"
    done
    if [ -z "$(ls -d /sys/fs/cgroup/systemd /sys/fs/cgroup/unified 2>/dev/null)" ] &&
        [ -w /sys/fs/cgroup/cgroup.procs ]; then
        echo "/sys/fs/cgroup/$name"
    fi
}

# Moves the calling shell into STATE's cgroup directories (best effort: nspawn still works, and
# tests still pass alone, without them).
cgroup_enter() {
    local dir
    for dir in $(cgroup_dirs "$1"); do
        mkdir -p "$dir" 2>/dev/null && echo "$BASHPID" >"$dir/cgroup.procs" 2>/dev/null || true
    done
}

# Removes STATE's cgroup directories (empty once the container is gone; children first).
cgroup_remove() {
    local dir
    for dir in $(cgroup_dirs "$1"); do
        [ -d "$dir" ] || continue
        find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

init_pid() {
    local state=$1 pid
    [ -s "$state/init.pid" ] || die "$state is not booted (no $state/init.pid): run '$PROG boot $state'"
    pid=$(cat "$state/init.pid")
    [ -d "/proc/$pid" ] || die "the container of $state is gone (init pid $pid)"
    echo "$pid"
}

cmd_boot() {
    need_root
    local state=$1 base nspawn init="" status="" i
    command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing: run scripts/install-deps.sh"
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    [ ! -s "$state/nspawn.pid" ] || ! kill -0 "$(cat "$state/nspawn.pid")" 2>/dev/null ||
        die "$state is already booted (pid $(cat "$state/nspawn.pid")); stop it first"
    base=$(cmd_rootfs)
    rm -rf "$state/root"
    cp -a --reflink=auto "$base" "$state/root"
    rm -f "$state/init.pid" "$state/nspawn.pid"
    # --register=no --keep-unit: there is no host systemd to register with. --private-network: the
    # container's services listen on its own loopback, never on the host's addresses.
    # --capability=CAP_IPC_LOCK: without it nspawn leaves that capability out of the container's
    # bounding set and its seccomp filter then refuses mlock() to every process inside, root or
    # not (EPERM whatever RLIMIT_MEMLOCK says), which a real system never does; with it, the
    # daemons lock their secrets as they would on a real system, under the unit's RLIMIT_MEMLOCK.
    # --capability=CAP_AUDIT_CONTROL: pam_loginuid then gives each login, cron and at job and user
    # manager an audit session of its own (/proc/PID/sessionid), and logind's session id is the
    # login's audit session id, as on a real host; without it logind invents ids (c1, c2, ...).
    # The container's cgroups go under a directory of its own in each writable hierarchy (see
    # cgroup_dir): with no systemd on the host, containers started side by side would otherwise
    # share one tree and their systemds would manage each other's slices.
    (
        cgroup_enter "$state"
        exec setsid systemd-nspawn --quiet --boot --directory="$state/root" --register=no --keep-unit \
            --private-network --capability=CAP_IPC_LOCK,CAP_AUDIT_CONTROL --machine=booted-test \
            </dev/null >"$state/console.log" 2>&1
    ) &
    nspawn=$!
    echo "$nspawn" >"$state/nspawn.pid"
    for i in $(seq 1 300); do
        kill -0 "$nspawn" 2>/dev/null || die "systemd-nspawn exited while booting; see $state/console.log"
        init=$(pgrep -P "$nspawn" | head -n1 || true)
        if [ -n "$init" ]; then
            status=$(nsenter -t "$init" -a systemctl is-system-running 2>/dev/null || true)
            case "$status" in
            running | degraded) break ;;
            esac
        fi
        sleep 0.2
    done
    case "$status" in
    running | degraded) ;;
    *) die "the container did not finish booting within 60 s (state '$status'); see $state/console.log" ;;
    esac
    echo "$init" >"$state/init.pid"
    echo "$PROG: booted $state/root: systemd pid $init, $status" >&2
    echo "$init"
}

cmd_run() {
    need_root
    local state=$1 init
    shift
    [ $# -gt 0 ] || usage
    init=$(init_pid "$state")
    # A clean environment: the host's (KRB5_CONFIG, CCACHED_*, XDG_*) must not leak inside.
    exec nsenter -t "$init" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8 "$@"
}

cmd_stop() {
    need_root
    local state=$1 nspawn="" init="" i
    [ -s "$state/nspawn.pid" ] && nspawn=$(cat "$state/nspawn.pid")
    [ -s "$state/init.pid" ] && init=$(cat "$state/init.pid")
    if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
        if [ -n "$init" ] && [ -d "/proc/$init" ]; then
            nsenter -t "$init" -a systemctl poweroff >/dev/null 2>&1 || true
        fi
        for i in $(seq 1 150); do
            kill -0 "$nspawn" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$nspawn" 2>/dev/null; then
            echo "$PROG: the container did not power off within 30 s; killing it" >&2
            kill -KILL "$nspawn" 2>/dev/null || true
            sleep 1
        fi
    fi
    rm -f "$state/nspawn.pid" "$state/init.pid"
    rm -rf "$state/root"
    cgroup_remove "$(cd "$state" 2>/dev/null && pwd || echo "$state")"
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
rootfs) [ $# -eq 0 ] || usage; cmd_rootfs ;;
boot) [ $# -eq 1 ] || usage; cmd_boot "$1" ;;
run) [ $# -ge 2 ] || usage; cmd_run "$@" ;;
stop) [ $# -eq 1 ] || usage; cmd_stop "$1" ;;
*) usage ;;
esac
