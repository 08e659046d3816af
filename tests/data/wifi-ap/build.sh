#!/usr/bin/env bash
# Builds the tree of the test-only snap wifi-ap for arm64 (tests/tests/wifi.rs packs it with
# `coreforge pack`) and prints its path: the committed tree/ plus Debian's hostapd and iw with
# exactly the shared libraries they load (closed over NEEDED by cross/debs.sh's
# debs_elf_closure) and the dynamic loader, and busybox-static (udhcpd, nc). The packages are
# pinned in packages.env and board-support/snaps/packages.env, fetched by cross/debs.sh and
# unpacked, never installed. Cached in ${COREFORGE_CACHE:-$HOME/.cache/coreforge}/wifi-ap/.
#
#   tests/data/wifi-ap/build.sh [arm64]
set -euo pipefail
shopt -s inherit_errexit

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="${COREFORGE_CACHE:-$HOME/.cache/coreforge}"
arch="${1:-arm64}"
[ "$arch" = arm64 ] || { echo "wifi-ap/build.sh: arm64 only (the test runs on virt arm64)" >&2; exit 2; }
t=aarch64-linux-gnu
work="$cache/wifi-ap/$arch"
hint="update tests/data/wifi-ap/packages.env (or board-support/snaps/packages.env)"

# shellcheck source=cross/kernels.env
. "$root/cross/kernels.env"
# shellcheck disable=SC2034 # read by debs.sh
DEBS_MIRROR="$KERNEL_MIRROR" DEBS_SUITE="$KERNEL_SUITE"
# shellcheck source=cross/debs.sh
. "$root/cross/debs.sh"
# shellcheck source=board-support/snaps/packages.env
. "$root/board-support/snaps/packages.env"
# shellcheck source=tests/data/wifi-ap/packages.env
. "$here/packages.env"

DEBS=(hostapd iw libnl-3-200 libnl-genl-3-200 libnl-route-3-200 libssl3 libc6 busybox-static)

# The pin of package $1, field $2 (VERSION/SHA256); busybox-static's is BUSYBOX_.
pin() {
    local var="${1^^}"
    var="${var//-/_}"
    [ "$1" = busybox-static ] && var=BUSYBOX
    var="${var}_${arch^^}_$2"
    [ -n "${!var:-}" ] || { echo "wifi-ap/build.sh: no $var; $hint" >&2; return 1; }
    echo "${!var}"
}

mkdir -p "$work"
exec 9>"$work/.lock"
flock 9
tree="$work/tree"
rm -rf "$tree"
mkdir -p "$tree/usr/sbin" "$tree/lib/$t"
cp -a "$here/tree/." "$tree/"
libdirs=()
for pkg in "${DEBS[@]}"; do
    sha="$(pin "$pkg" SHA256)"
    dest="$work/debs/$pkg"
    if [ "$(cat "$dest.sha256" 2>/dev/null)" != "$sha" ]; then
        deb="$(debs_fetch "$pkg" "$arch" "$(pin "$pkg" VERSION)" "$sha" "$hint")"
        rm -rf "$dest"
        mkdir -p "$dest"
        dpkg-deb -x "$deb" "$dest"
        echo "$sha" >"$dest.sha256"
    fi
    install -D -m 0644 "$dest/usr/share/doc/$pkg/copyright" "$tree/usr/share/doc/$pkg/copyright"
    for lib in "$dest/lib/$t" "$dest/usr/lib/$t"; do [ -d "$lib" ] && libdirs+=("$lib"); done
done
install -m 0755 "$work/debs/hostapd/usr/sbin/hostapd" "$tree/usr/sbin/hostapd"
iw="$(find "$work/debs/iw" -path '*bin/iw' -type f | head -n 1)"
install -m 0755 "$iw" "$tree/usr/sbin/iw"
install -m 0755 "$work/debs/busybox-static/bin/busybox" "$tree/bin/busybox"
debs_elf_closure "$tree/lib/$t" "${libdirs[@]}" -- "$tree/usr/sbin/hostapd" "$tree/usr/sbin/iw"
cp -L "$work/debs/libc6/lib/$t/ld-linux-aarch64.so.1" "$tree/lib/$t/" 2>/dev/null ||
    cp -L "$work/debs/libc6/usr/lib/$t/ld-linux-aarch64.so.1" "$tree/lib/$t/"
echo "$tree"
