#!/usr/bin/env bash
# Installs everything coreforge's builds and tests need on a Debian bookworm machine
# (the cross toolchain, QEMU, image tools), then fetches the pinned kernels.
# Idempotent and fast when everything is already there. Runs as root (as CI does),
# or uses sudo when not root. Adds no foreign dpkg architecture.
set -euo pipefail

# Packages from the release itself. Ask the boot-infrastructure owner to add more here.
PACKAGES=(
    rustc-web cargo-web rust-web-src            # Rust 1.96 for the cross builds (build-std)
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross # linker + static glibc, aarch64
    gcc-arm-linux-gnueabihf libc6-dev-armhf-cross # linker + static glibc, armhf
    squashfs-tools e2fsprogs dosfstools mtools genimage # filesystems and images
    gnupg snapd openssh-client                  # snapd/gpg interop tests, ssh keys
    xz-utils zstd file                          # (de)compression, ELF checks
    fdisk                                       # sfdisk: makes and checks the GPT disks the agent grows in its tests
    kmod                                        # depmod/modprobe: the initramfs-tools hook and its test
    iproute2 dnsmasq-base                       # agent net tests: namespaces + veth, a real DHCP server
    dropbear-bin                                # dropbearkey: checks the agent's SSH host key files
    ca-certificates                             # build-image's default TLS roots for the device
    bmap-tools                                  # bmaptool: the flash tests check build-image's bmaps with it
    tesseract-ocr                               # OCR of QEMU screen dumps: the framebuffer tests read tty1
    postgresql curl openssl                     # store serve: a PostgreSQL-backed store in its tests, curl and openssl as clients
    wrk nginx-light                             # benches/store-serve.sh: assertion requests per second, nginx as the download floor
    mmdebstrap arch-test binfmt-support         # the Debian base snap `core` (board-support/snaps/build.sh, as root): mmdebstrap
                                                # needs arch-test for foreign arches; update-binfmts for a qemu without binfmt.d files
)
# Packages taken from bookworm-backports (QEMU 10: raspi3b/raspi2b and virt as the tests use them).
BACKPORTS_PACKAGES=(qemu-system-arm qemu-user qemu-utils) # qemu-utils: qemu-img for `coreforge boot` overlays
# qemu-user-static: the binfmt_misc entries (its qemu-user-binfmt) that let mmdebstrap run the
# core snap's arm64/armhf maintainer scripts; bookworm's 7.2 one conflicts with qemu-user 10.
BACKPORTS_PACKAGES+=(qemu-user-static qemu-user-binfmt)
BACKPORTS_LIST=/etc/apt/sources.list.d/backports.list

here="$(cd "$(dirname "$0")" && pwd)"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive

# shellcheck disable=SC1091 # the running system's file
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"

# True when every named package is installed.
all_installed() {
    local p status
    for p in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
        [ "$status" = "install ok installed" ] || return 1
    done
}

# True when the installed QEMU is new enough (the tests need 10.x machines and options).
qemu_new_enough() {
    command -v qemu-system-aarch64 >/dev/null 2>&1 || return 1
    local major
    major="$(qemu-system-aarch64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')"
    [ -n "$major" ] && [ "$major" -ge 10 ]
}

apt_updated=0
# `apt-get update` that tolerates a broken index (a stale security or foreign-arch index
# on the mirror must not stop the set-up: the packages we need come from the main suites).
apt_update() {
    [ "$apt_updated" = 1 ] && return 0
    if ! "${SUDO[@]}" apt-get update -q; then
        echo "setup: apt-get update reported errors; continuing with the indexes that did download" >&2
    fi
    apt_updated=1
}

backports=()
if [ "$codename" = bookworm ]; then
    backports=(-t bookworm-backports)
    if ! grep -qs '^deb .*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        && ! grep -qs 'bookworm-backports' /etc/apt/sources.list.d/*.sources 2>/dev/null; then
        echo "deb http://deb.debian.org/debian bookworm-backports main" | "${SUDO[@]}" tee "$BACKPORTS_LIST" >/dev/null
        apt_updated=0
    fi
fi

if ! all_installed "${PACKAGES[@]}"; then
    apt_update
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
fi
if ! all_installed "${BACKPORTS_PACKAGES[@]}" || ! qemu_new_enough; then
    apt_update
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${backports[@]}" "${BACKPORTS_PACKAGES[@]}"
fi
qemu_new_enough || { echo "setup: QEMU >= 10 is needed (bookworm-backports); found: $(qemu-system-aarch64 --version | head -1)" >&2; exit 1; }

"$here/fetch-kernels.sh"
echo "setup: done"
