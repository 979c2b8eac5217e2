#!/usr/bin/env bash
# Unpacks Debian 12's Heimdal 7.8 client tools and libraries into DIR/root, for the door's tests:
#
#   scripts/fetch-heimdal.sh DIR
#
# heimdal-clients conflicts with krb5-user (MIT), so it is never installed: apt-get download fetches
# the packages and dpkg -x unpacks them; the tests run DIR/root/usr/bin/* with
# LD_LIBRARY_PATH=DIR/root/usr/lib/x86_64-linux-gnu. Does nothing when DIR/root is complete.
set -euo pipefail
dir=${1:?usage: $0 DIR}
packages=(heimdal-clients libasn1-8-heimdal libgssapi3-heimdal libhcrypto5-heimdal libhdb9-heimdal
    libheimntlm0-heimdal libhx509-5-heimdal libkadm5clnt7-heimdal libkadm5srv8-heimdal libkafs0-heimdal
    libkrb5-26-heimdal libotp0-heimdal libroken19-heimdal libsl0-heimdal libheimbase1-heimdal libwind0-heimdal)
[ -x "$dir/root/usr/bin/heimtools" ] && [ -e "$dir/root/.complete" ] && exit 0
mkdir -p "$dir/debs" "$dir/root"
cd "$dir/debs"
apt-get download -q "${packages[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get download -q "${packages[@]}" >/dev/null
}
for deb in ./*.deb; do dpkg -x "$deb" ../root; done
touch ../root/.complete
