#!/usr/bin/env bash
# Fetches Debian's arm64 and armhf kernels pinned in cross/kernels.env and unpacks them,
# without installing them and without adding a foreign dpkg architecture (cross/debs.sh: a
# private apt configuration reads the arm64/armhf Packages indexes of the suite).
#
#   cross/fetch-kernels.sh            fetch the pinned kernels once (a stamp makes reruns instant)
#   cross/fetch-kernels.sh --update   pin the suite's current kernel in cross/kernels.env, then fetch
#
# Result, per arch (arm64, armhf), in ${COREFORGE_CACHE:-$HOME/.cache/coreforge}/kernels/<arch>/:
#   vmlinuz   the kernel as packaged          Image   arm64 only: the uncompressed kernel (raspi3b)
#   dtbs/     device trees (the package's usr/lib/linux-image-<release>/)
#   modules/  lib/modules/<release>/          release the kernel release string (uname -r)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
pins="$here/kernels.env"
cache="${COREFORGE_CACHE:-$HOME/.cache/coreforge}"
aptdir="$cache/apt"
update=0
[ "${1:-}" = "--update" ] && update=1

# shellcheck source=kernels.env
. "$pins"

# shellcheck disable=SC2034 # read by debs.sh
DEBS_MIRROR="$KERNEL_MIRROR" DEBS_SUITE="$KERNEL_SUITE" DEBS_APTDIR="$aptdir"
# shellcheck source=debs.sh
. "$here/debs.sh"

if [ "$update" = 1 ]; then
    debs_apt apt-get update
    abi="$(debs_apt apt-cache depends linux-image-arm64 | sed -n 's/^ *Depends: linux-image-\(.*\)-arm64$/\1/p' | head -1)"
    [ -n "$abi" ] || { echo "fetch-kernels: cannot resolve linux-image-arm64 in $KERNEL_SUITE" >&2; exit 1; }
    arm64_pkg="linux-image-$abi-arm64-unsigned"
    armhf_pkg="linux-image-$abi-armmp"
    version="$(debs_field "$arm64_pkg:arm64" Version)"
    cat >"$pins" <<PINS
# Debian kernels used by coreforge's QEMU tests; written by cross/fetch-kernels.sh --update.
KERNEL_MIRROR=$KERNEL_MIRROR
KERNEL_SUITE=$KERNEL_SUITE
KERNEL_VERSION=$version
KERNEL_ARM64_PACKAGE=$arm64_pkg
KERNEL_ARM64_SHA256=$(debs_field "$arm64_pkg:arm64=$version" SHA256)
KERNEL_ARMHF_PACKAGE=$armhf_pkg
KERNEL_ARMHF_SHA256=$(debs_field "$armhf_pkg:armhf=$version" SHA256)
PINS
    echo "fetch-kernels: pinned $version in $pins"
    # shellcheck source=kernels.env
    . "$pins"
fi

# Fetches and unpacks one arch's kernel, unless its stamp says it is already there.
fetch() {
    local arch="$1" pkg="$2" sha="$3"
    local dest="$cache/kernels/$arch"
    local stamp="$dest/.stamp"
    local want="$pkg $KERNEL_VERSION $sha"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    local deb
    deb="$(debs_fetch "$pkg" "$arch" "$KERNEL_VERSION" "$sha" \
        "run cross/fetch-kernels.sh --update and commit cross/kernels.env")"
    rm -rf "$dest"
    mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest/root"
    local release
    release="$(basename "$(ls -d "$dest"/root/lib/modules/*)")"
    echo "$release" >"$dest/release"
    cp "$dest/root/boot/vmlinuz-$release" "$dest/vmlinuz"
    ln -s "root/usr/lib/linux-image-$release" "$dest/dtbs"
    ln -s "root/lib/modules/$release" "$dest/modules"
    if [ "$arch" = arm64 ]; then
        # raspi3b loads only an uncompressed Image; Debian ships it either plain (EFI stub) or gzipped.
        if [ "$(head -c2 "$dest/vmlinuz" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
            gzip -dc "$dest/vmlinuz" >"$dest/Image"
        else
            cp "$dest/vmlinuz" "$dest/Image"
        fi
    fi
    echo "$want" >"$stamp"
    echo "fetch-kernels: $arch kernel $release ($KERNEL_VERSION) in $dest"
}

fetch arm64 "$KERNEL_ARM64_PACKAGE" "$KERNEL_ARM64_SHA256"
fetch armhf "$KERNEL_ARMHF_PACKAGE" "$KERNEL_ARMHF_SHA256"
