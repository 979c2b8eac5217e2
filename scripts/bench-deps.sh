#!/usr/bin/env bash
# The benchmark's peers: Heimdal's kcm (Debian heimdal-kcm) and sssd_kcm (sssd-kcm),
# unpacked with `dpkg -x` into .build/peers/root, NOT installed. `make bench` runs them
# from there in a private mount namespace (overlayfs lays the tree over /usr), so
# `make test` and the host never need them.
#
# Why unpacked rather than installed: heimdal-kcm would install beside krb5-user and
# libkrb5 without removing anything (apt-get -s shows only new Heimdal libraries), but
# sssd-kcm depends on sssd-common, which pulls in libpam-sss, libnss-sss and
# libpam-pwquality, whose maintainer scripts rewrite the host's PAM stack
# (pam-auth-update) and nsswitch.conf. Unpacking both keeps one mechanism and leaves
# the host's packages as they are. When a peer is already installed on the host, the
# benchmark uses the installed one and this script skips it.
#
#   scripts/bench-deps.sh [--root DIR]     (default: .build/peers)
#
# Needs apt's package lists (run `apt-get update` once) and network access to the
# Debian mirror; downloads only the packages apt would have to install.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}
DIR=$ROOT/.build/peers
while [ $# -gt 0 ]; do
    case $1 in
        --root) DIR=${2:?}; shift 2 ;;
        *) echo "usage: $PROG [--root DIR]" >&2; exit 2 ;;
    esac
done

wanted=()
[ -x /usr/sbin/kcm ] || [ -x "$DIR/root/usr/sbin/kcm" ] || wanted+=(heimdal-kcm)
{ [ -x /usr/libexec/sssd/sssd_kcm ] && [ -x /usr/sbin/sssd ]; } || [ -x "$DIR/root/usr/libexec/sssd/sssd_kcm" ] ||
    wanted+=(sssd-kcm)
if [ ${#wanted[@]} -eq 0 ]; then
    echo "$PROG: Heimdal kcm and sssd-kcm are available"
    exit 0
fi
for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null || { echo "$PROG: $tool is missing (Debian only)" >&2; exit 1; }
done

# Exactly what apt would install for these packages here (the simulation changes nothing).
if ! simulation=$(apt-get install -s --no-install-recommends "${wanted[@]}" 2>&1); then
    echo "$PROG: apt cannot resolve ${wanted[*]}:" >&2
    echo "$simulation" | tail -5 >&2
    echo "$PROG: run 'apt-get update' once, then retry" >&2
    exit 1
fi
mapfile -t packages < <(awk '/^Inst /{print $2}' <<<"$simulation")
if grep -q '^Remv ' <<<"$simulation"; then
    # Nothing is installed either way; said so that nobody installs these by hand unawares.
    echo "$PROG: note: installing ${wanted[*]} would remove:" $(awk '/^Remv /{print $2}' <<<"$simulation") >&2
fi

mkdir -p "$DIR/debs"
echo "$PROG: downloading ${#packages[@]} packages for ${wanted[*]} into $DIR/debs"
(cd "$DIR/debs" && apt-get download -q "${packages[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
for package in "${packages[@]}"; do
    ls "$DIR/debs/${package}"_*.deb >/dev/null 2>&1 || { echo "$PROG: $package did not download" >&2; exit 1; }
done

mkdir -p "$DIR/root"
for deb in "$DIR"/debs/*.deb; do
    dpkg -x "$deb" "$DIR/root"
done
# Debian 12 has a merged /usr: some packages still ship /lib/…, which is /usr/lib on the host.
if [ -d "$DIR/root/lib" ] && [ ! -L "$DIR/root/lib" ]; then
    cp -a "$DIR/root/lib/." "$DIR/root/usr/lib/"
    rm -rf "$DIR/root/lib"
fi
for binary in usr/sbin/kcm usr/libexec/sssd/sssd_kcm usr/sbin/sssd; do
    case $binary in
        usr/sbin/kcm) [ -x /usr/sbin/kcm ] && continue ;;
        *) [ -x /usr/libexec/sssd/sssd_kcm ] && [ -x /usr/sbin/sssd ] && continue ;;
    esac
    [ -x "$DIR/root/$binary" ] || { echo "$PROG: $DIR/root/$binary is missing after unpacking" >&2; exit 1; }
done
echo "$PROG: unpacked into $DIR/root"
