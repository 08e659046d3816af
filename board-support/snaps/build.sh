#!/usr/bin/env bash
# Builds coreforge's board snaps from the source trees beside this script and pinned Debian
# packages, packs them into ${COREFORGE_CACHE:-$HOME/.cache/coreforge}/snaps/ as
# <name>_<version>_<arch>.snap and prints their paths, one per line:
#   pi2-kernel (kernel)  Debian's kernel (cross/kernels.env): kernel.img, dtbs/, the boards' boot modules
#   pi3        (gadget)  meta/gadget.yaml, config.txt, cmdline.txt, Debian's raspi-firmware
#   qemu-virt  (gadget)  meta/gadget.yaml, cmdline.txt
#   core       (os)      Debian's busybox-static with its applet links, /sbin/init, a small /etc
#
#   board-support/snaps/build.sh [arm64|armhf|all]   build (default: all); a snap is rebuilt only
#                                                   when one of its inputs changed
#   board-support/snaps/build.sh --update            pin the suite's current raspi-firmware and
#                                                   busybox-static in packages.env, then build all
#
# Reproducible: the same inputs give the same bytes (owners root, every time SOURCE_DATE_EPOCH,
# default 0). Needs no root and no foreign dpkg architecture (cross/debs.sh); needs qemu-user to
# list the foreign busybox's applets. Generated trees are kept in the cache's snaps/build/.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the build too

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${COREFORGE_CACHE:-$HOME/.cache/coreforge}"
out="$cache/snaps"
work="$out/build"
pins="$here/packages.env"
epoch="${SOURCE_DATE_EPOCH:-0}"
update_hint="run board-support/snaps/build.sh --update and commit board-support/snaps/packages.env"

# shellcheck source=cross/kernels.env
. "$root/cross/kernels.env"
# shellcheck disable=SC2034 # read by debs.sh
DEBS_MIRROR="$KERNEL_MIRROR" DEBS_SUITE="$KERNEL_SUITE"
# shellcheck source=cross/debs.sh
. "$root/cross/debs.sh"

say() { echo "build.sh: $*" >&2; }

# Packs the snap directory $1 into the file $2 with `coreforge pack` (reproducible: root-owned,
# every time SOURCE_DATE_EPOCH or 0). The one place that knows the packer; `packer_id` names
# it for the cache keys.
pack() {
    local dir="$1" file="$2" compression=xz
    # Every image build unpacks the kernel snap: lzo unpacks its 33 MB kernel.img about ten
    # times faster than xz (snapd accepts both).
    case "$(basename "$file")" in pi2-kernel_*) compression=lzo ;; esac
    # The dev profile: `cargo test` builds it anyway, and mksquashfs does the work.
    (cd "$root" && cargo run -q -p coreforge -- pack --compression "$compression" "$dir" -o "$file") >/dev/null
    chmod 0644 "$file"
}
packer_id() {
    tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - \
        host-tools/src/snap host-tools/src/cmd/pack.rs | sha256sum | cut -c1-64
}

# The files every snap's build depends on, plus the snap's own source tree.
common_inputs=(board-support/snaps/build.sh board-support/snaps/packages.env cross/debs.sh cross/kernels.env)
# The kernel snap's modules and device trees come from the board table, through snap-inputs.
kernel_inputs=(board-support/src board-support/snaps/snap_inputs.rs initramfs-hook/src)

# A digest of everything snap $1 for arch $2 is built from; more words may follow.
inputs_key() {
    local name="$1"
    shift
    local paths=("${common_inputs[@]}" "board-support/snaps/$name")
    [ "$name" = pi2-kernel ] && paths+=("${kernel_inputs[@]}")
    {
        printf '%s\n' "$name" "$@" "epoch=$epoch" "packer=$(packer_id)"
        tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "${paths[@]}" | sha256sum
    } | sha256sum | cut -c1-64
}

# The modules or device trees the boards need (see snap_inputs.rs).
snap_inputs() {
    # The dev profile: `cargo test` has built the example already.
    (cd "$root" && cargo run -q -p coreforge-boards --example snap-inputs -- "$@")
}

# Unpacks a pinned package once; prints the directory.
unpacked() {
    local pkg="$1" arch="$2" version="$3" sha="$4"
    local deb dest="$work/debs/${pkg}_${arch}"
    if [ "$(cat "$dest.sha256" 2>/dev/null)" != "$sha" ]; then
        deb="$(debs_fetch "$pkg" "$arch" "$version" "$sha" "$update_hint")"
        rm -rf "$dest"
        mkdir -p "$dest"
        dpkg-deb -x "$deb" "$dest"
        echo "$sha" >"$dest.sha256"
    fi
    echo "$dest"
}

# Copies snap $1's source tree for arch $2 into $3: the common files, then arch/<arch>/ over them.
copy_source() {
    local src="$here/$1" arch="$2" dir="$3"
    tar -C "$src" --exclude=./arch --exclude='*.in' -cf - . | tar -C "$dir" -xf -
    if [ -d "$src/arch/$arch" ]; then
        tar -C "$src/arch/$arch" -cf - . | tar -C "$dir" -xf -
    fi
}

# Writes $2 from the template $1, replacing each @KEY@ given as KEY=VALUE.
render() {
    local template="$1" dest="$2" expr=() kv
    shift 2
    for kv in "$@"; do
        expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
    done
    sed "${expr[@]}" "$template" >"$dest"
    if grep -q '@[A-Z]*@' "$dest"; then
        say "$dest: template placeholder left unfilled: $(grep -o '@[A-Z]*@' "$dest" | head -1)"
        return 1
    fi
}

# Modes from the owner's x bit only, so the checkout's umask does not change the snap's bytes.
normalize_modes() {
    find "$1" -type d -exec chmod 0755 {} +
    find "$1" -type f -perm -u+x -exec chmod 0755 {} +
    find "$1" -type f ! -perm -u+x -exec chmod 0644 {} +
}

populate_pi2_kernel() {
    local dir="$1" arch="$2" release rel list
    local k="$cache/kernels/$arch"
    release="$(cat "$k/release")"
    if [ "$arch" = arm64 ]; then
        cp "$k/Image" "$dir/kernel.img" # raspi3b (and a real Pi's firmware) want the plain Image
    else
        cp "$k/vmlinuz" "$dir/kernel.img"
    fi
    mkdir -p "$dir/dtbs"
    list="$(snap_inputs dtbs "$arch")"
    # Flat: the Pi firmware loads device_tree= from the boot partition's top folder.
    for rel in $list; do cp "$k/dtbs/$rel" "$dir/dtbs/"; done
    list="$(snap_inputs modules "$arch" "$k/modules")"
    for rel in $list; do install -D -m 0644 "$k/modules/$rel" "$dir/modules/$release/$rel"; done
    render "$here/pi2-kernel/meta/snap.yaml.in" "$dir/meta/snap.yaml" \
        VERSION="$KERNEL_VERSION" ARCH="$arch" RELEASE="$release" \
        PACKAGE="$(pkg_of_arch KERNEL "$arch")"
}

# The value of ${PREFIX}_${ARCH}_PACKAGE from the pins.
pkg_of_arch() {
    local var="${1}_${2^^}_PACKAGE"
    echo "${!var}"
}

# The Pi 3's firmware: the boot ROM's bootcode.bin, the GPU firmware and its memory split
# file, plus the cut-down pair for gpu_mem=16; not the Pi 4 (start4*) or camera/debug ones.
PI3_FIRMWARE=(bootcode.bin start.elf fixup.dat start_cd.elf fixup_cd.dat)

populate_pi3() {
    local dir="$1" arch="$2" version="$3" fw f
    fw="$(unpacked raspi-firmware all "$RASPI_FIRMWARE_VERSION" "$RASPI_FIRMWARE_SHA256")"
    for f in "${PI3_FIRMWARE[@]}"; do cp "$fw/usr/lib/raspi-firmware/$f" "$dir/boot-assets/"; done
    cp "$fw/usr/share/doc/raspi-firmware/copyright" "$dir/boot-assets/LICENCE.raspi-firmware"
    render "$here/pi3/meta/snap.yaml.in" "$dir/meta/snap.yaml" \
        VERSION="$version" ARCH="$arch" FIRMWARE="$RASPI_FIRMWARE_VERSION"
}

populate_qemu_virt() {
    local dir="$1" arch="$2" version="$3"
    render "$here/qemu-virt/meta/snap.yaml.in" "$dir/meta/snap.yaml" VERSION="$version" ARCH="$arch"
}

populate_core() {
    local dir="$1" arch="$2" version="$3" bb applet target qemu
    local v="BUSYBOX_${arch^^}_VERSION" s="BUSYBOX_${arch^^}_SHA256"
    bb="$(unpacked busybox-static "$arch" "${!v}" "${!s}")"
    mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,lib,dev,proc,sys,run,tmp,mnt,root,home,var,boot,writable}
    mkdir -p "$dir/usr/share/doc/busybox-static"
    install -m 0755 "$bb/bin/busybox" "$dir/bin/busybox"
    cp "$bb/usr/share/doc/busybox-static/copyright" "$dir/usr/share/doc/busybox-static/"
    case "$arch" in arm64) qemu="qemu-aarch64" ;; armhf) qemu="qemu-arm" ;; esac
    command -v "$qemu" >/dev/null || {
        say "$qemu not found: install qemu-user (cross/setup.sh) to list busybox's applets"
        return 1
    }
    # Relative links (bin/ls -> ../bin/busybox), so they resolve wherever the snap is mounted.
    local applets
    applets="$("$qemu" "$dir/bin/busybox" --list-full \
        | awk '{ up = ""; for (i = gsub("/", "/"); i > 0; i--) up = up "../"; print $0, up "bin/busybox" }')"
    while read -r applet target; do
        [ -e "$dir/$applet" ] || [ -L "$dir/$applet" ] || ln -s "$target" "$dir/$applet"
    done <<<"$applets"
    [ -L "$dir/sbin/init" ] || { say "busybox ${!v} ($arch) has no init applet"; return 1; }
    render "$here/core/meta/snap.yaml.in" "$dir/meta/snap.yaml" VERSION="$version" ARCH="$arch"
}

# Builds snap $1 (version $3) for arch $2 unless the cached one has the same inputs; prints its path.
build() {
    local name="$1" arch="$2" version="$3"
    local file="$out/${name}_${version}_${arch}.snap" stamp="$out/.inputs/${name}_${arch}" key t0
    key="$(inputs_key "$name" "$arch" "$version")"
    if [ -f "$file" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
        say "$name ($arch) is up to date"
        echo "$file"
        return 0
    fi
    t0="$(date +%s)"
    local dir="$work/$name-$arch"
    rm -rf "$dir"
    mkdir -p "$dir/meta" "$out/.inputs"
    copy_source "$name" "$arch" "$dir"
    "populate_${name//-/_}" "$dir" "$arch" "$version"
    normalize_modes "$dir"
    [ -d "$dir/tmp" ] && chmod 1777 "$dir/tmp"
    rm -f "$stamp" "$out/${name}_"*"_${arch}.snap"
    pack "$dir" "$file"
    echo "$key" >"$stamp"
    say "built $name ($arch): $(stat -c %s "$file") bytes in $(($(date +%s) - t0)) s"
    echo "$file"
}

# Rewrites packages.env with the suite's current versions and SHA-256 sums.
update_pins() {
    debs_apt apt-get update >&2
    local fw a64 ahf
    fw="$(debs_field raspi-firmware Version)"
    a64="$(debs_field busybox-static:arm64 Version)"
    ahf="$(debs_field busybox-static:armhf Version)"
    if [ -z "$fw" ] || [ -z "$a64" ] || [ -z "$ahf" ]; then
        say "cannot find raspi-firmware and busybox-static for arm64 and armhf in $DEBS_MIRROR $DEBS_SUITE"
        return 1
    fi
    cat >"$pins" <<PINS
# Debian packages in the board snaps (suite and mirror: cross/kernels.env's); written by
# board-support/snaps/build.sh --update. The kernel itself is pinned in cross/kernels.env.
RASPI_FIRMWARE_VERSION=$fw
RASPI_FIRMWARE_SHA256=$(debs_field "raspi-firmware=$fw" SHA256)
BUSYBOX_ARM64_VERSION=$a64
BUSYBOX_ARM64_SHA256=$(debs_field "busybox-static:arm64=$a64" SHA256)
BUSYBOX_ARMHF_VERSION=$ahf
BUSYBOX_ARMHF_SHA256=$(debs_field "busybox-static:armhf=$ahf" SHA256)
PINS
    say "pinned raspi-firmware $fw, busybox-static $a64 (arm64) $ahf (armhf) in $pins"
}

case "${1:-all}" in
    arm64 | armhf) arches=("$1") ;;
    all) arches=(arm64 armhf) ;;
    --update)
        update_pins
        arches=(arm64 armhf)
        ;;
    *)
        echo "usage: board-support/snaps/build.sh [arm64|armhf|all|--update]" >&2
        exit 2
        ;;
esac
# shellcheck source=board-support/snaps/packages.env
. "$pins"

# One build at a time per cache: tests and people may run this concurrently, and two runs
# would remove and write the same files.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
"$root/cross/fetch-kernels.sh" >&2
for arch in "${arches[@]}"; do
    v="BUSYBOX_${arch^^}_VERSION"
    build pi2-kernel "$arch" "$KERNEL_VERSION"
    build pi3 "$arch" "1.0+fw${RASPI_FIRMWARE_VERSION%%+*}"
    build qemu-virt "$arch" "1.0"
    build core "$arch" "${!v#*:}" # the version without its epoch: no ':' in file names
done
