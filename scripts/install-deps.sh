#!/usr/bin/env bash
# Install the Debian packages ccached needs to build and to run its tests
# (MIT Kerberos KDC + client tools + headers, libsystemd headers, python3-gssapi,
# keyutils, procps, the PAM headers for pam_ccached, gnuplot for the benchmark's
# plot; debhelper, lintian, mmdebstrap and systemd-nspawn for the Debian packages and
# their test in a booted container; fish and gdb for the env --shell fish and early non-dumpable
# tests). Idempotent: prints nothing
# and exits 0 when all are present.
set -euo pipefail

packages=(
    krb5-kdc
    krb5-admin-server
    krb5-user
    libkrb5-dev
    libsystemd-dev
    python3-gssapi
    keyutils
    procps
    libpam0g-dev
    gnuplot-nox
    systemd
    util-linux
    passwd
    # make deb, make test-package: the packages and the booted container they are tested in
    debhelper
    dpkg-dev
    pkgconf
    binutils
    lintian
    mmdebstrap
    systemd-container
    # make test-door: sudo -u USER klist through the front door
    sudo
    # the env --shell fish and early non-dumpable tests
    fish
    gdb
    # make test-door: holds the door's forked child after setresuid (the spawner's descriptor check)
    strace
    # make test-door: ss, which names the daemon's listening sockets (no door descriptor inherited)
    iproute2
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root, or install them with:" >&2
    echo "    sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"

# Keep krb5-config from asking questions and from configuring a real realm.
debconf-set-selections <<'SEL'
krb5-config krb5-config/default_realm string EXAMPLE.INVALID
krb5-config krb5-config/add_servers boolean false
krb5-config krb5-config/add_servers_realm string EXAMPLE.INVALID
krb5-config krb5-config/read_conf boolean true
krb5-config krb5-config/kerberos_servers string
krb5-config krb5-config/admin_server string
krb5-admin-server krb5-admin-server/newrealm note
krb5-kdc krb5-kdc/debconf boolean false
SEL

export DEBIAN_FRONTEND=noninteractive

if ! apt-get update -q >/dev/null; then
    echo "install-deps: apt-get update failed" >&2
    exit 1
fi

# krb5-kdc / krb5-admin-server try to start their services after install;
# without a database those fail, but dpkg still records the packages as
# installed, so apt-get's exit status is what we trust.
if ! apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"; then
    echo "install-deps: apt-get install failed for: ${missing[*]}" >&2
    exit 1
fi

# Double-check: every package must now be installed.
still=()
for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        still+=("$pkg")
    fi
done
if [ "${#still[@]}" -ne 0 ]; then
    echo "install-deps: still not installed after apt-get: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: done"
