# shellcheck shell=bash
# Sourced by door-booted-check.sh and bench-first-connection-booted.sh: a booted Debian 12
# container (../shared/design/REAL-SYSTEMD.md) with a release build bound in read-only at
# /opt/ccached and ccached-door's units from systemd/ installed to run it from there.
#
#   door_container_boot NAME BIN [--bind-ro=…] ...
#
# builds the root tree once under .build/door-rootfs-2 (mmdebstrap, ~4 min), boots it with a
# private network, audit sessions and mlock as on a host (CAP_AUDIT_CONTROL, CAP_IPC_LOCK: without
# the latter nspawn's seccomp filter refuses mlock() to everything inside, which no real system
# does), in a cgroup of its own (with no systemd on the host, two containers started from one
# cgroup would manage each other's slices), and waits until its systemd is running. Sets `work`
# (a temporary directory of the caller's, removed at the end) and `init` (the container's systemd,
# as the host sees it). c CMD... runs CMD inside; door_container_finish powers the container off
# and removes its cgroup and `work`: the caller's EXIT trap calls it. Returns 1 with a message
# when the tree cannot be built.
door_container_boot() {
    local name=$1 bin=$2
    shift 2
    local repo runtime rootfs
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    runtime=$(readelf -d "$bin/ccached-door" | sed -n 's/.*RUNPATH.*\[\([^:]*\).*/\1/p')
    rootfs=$repo/.build/door-rootfs-2
    if [ ! -x "$rootfs/usr/sbin/krb5kdc" ]; then
        rm -rf "$rootfs"
        mmdebstrap --variant=apt --include=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,krb5-user,krb5-kdc,krb5-admin-server,procps,python3,util-linux,passwd,login \
            bookworm "$rootfs" >/dev/null || { echo "$name: mmdebstrap failed" >&2; return 1; }
    fi
    work=$(mktemp -d "/tmp/$name.XXXXXX")
    sed 's#/usr/local/bin/ccached-door#/opt/ccached/ccached-door#' "$repo/systemd/ccached-door.service" \
        >"$work/ccached-door.service"
    cp "$repo/systemd/ccached-door.socket" "$work/"
    local binds=(--bind-ro="$bin:/opt/ccached"
        --bind-ro="$work/ccached-door.service:/etc/systemd/system/ccached-door.service"
        --bind-ro="$work/ccached-door.socket:/etc/systemd/system/ccached-door.socket" "$@")
    [ -n "$runtime" ] && binds+=(--bind-ro="$runtime")
    door_container_cgroup=$name-$$
    (
        for hierarchy in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
            [ -w "$hierarchy/cgroup.procs" ] || continue
            mkdir -p "$hierarchy/$door_container_cgroup" &&
                echo "$BASHPID" >"$hierarchy/$door_container_cgroup/cgroup.procs" 2>/dev/null
        done
        exec systemd-nspawn -q -b -D "$rootfs" --register=no --keep-unit --private-network \
            --capability=CAP_IPC_LOCK,CAP_AUDIT_CONTROL --volatile=overlay "${binds[@]}"
    ) >"$work/nspawn.log" 2>&1 &
    door_container_nspawn=$!
    init=
    for _ in $(seq 1 90); do
        init=$(pgrep -P "$door_container_nspawn" | head -1)
        [ -n "$init" ] && nsenter -t "$init" -a systemctl is-system-running 2>/dev/null | grep -qE "running|degraded" &&
            break
        sleep 1
    done
}

c() { nsenter -t "$init" -a "$@"; }

door_container_finish() {
    [ -n "${init:-}" ] && c systemctl poweroff >/dev/null 2>&1
    [ -n "${door_container_nspawn:-}" ] && wait "$door_container_nspawn" 2>/dev/null
    for hierarchy in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
        [ -n "${door_container_cgroup:-}" ] && [ -d "$hierarchy/$door_container_cgroup" ] &&
            find "$hierarchy/$door_container_cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    [ -n "${work:-}" ] && rm -rf "$work"
}
