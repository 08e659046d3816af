#!/usr/bin/env bash
# Builds coreforge's board snaps from the source trees beside this script and pinned Debian
# packages, packs them into ${COREFORGE_CACHE:-$HOME/.cache/coreforge}/snaps/ as
# <name>_<version>_<arch>.snap and prints their paths, one per line:
#   pi2-kernel (kernel)  Debian's kernel (cross/kernels.env): kernel.img, dtbs/, the boards' boot modules
#   pi3        (gadget)  meta/gadget.yaml, config.txt, cmdline.txt, Debian's raspi-firmware
#   qemu-virt  (gadget)  meta/gadget.yaml, cmdline.txt
#   core       (os)      Debian's busybox-static with its applet links, /sbin/init, a small /etc,
#                        Debian's dropbear server with its libraries and the dynamic loader
#
#   board-support/snaps/build.sh [arm64|armhf|all]   build (default: all); a snap is rebuilt only
#                                                   when one of its inputs changed
#   board-support/snaps/build.sh --update            pin the suite's current raspi-firmware,
#                                                   busybox-static and dropbear's packages in
#                                                   packages.env, then build all
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
    # busybox ifup runs run-parts on these and fails when one is missing; the overlay keeps
    # them when writable adds its own etc/network/interfaces.
    mkdir -p "$dir"/etc/network/if-{pre-up,up,down,post-down}.d "$dir/etc/dropbear"
    ln -s ../run "$dir/var/run" # ifup's state, udhcpc's and dropbear's pid files
    add_dropbear "$dir" "$arch"
    render "$here/core/meta/snap.yaml.in" "$dir/meta/snap.yaml" VERSION="$version" ARCH="$arch" \
        DROPBEAR="$(pin DROPBEAR_BIN "$arch" VERSION)"
}

# The Debian packages the core snap's dropbear comes from: the server and every library in
# its NEEDED closure (with the dynamic loader, in libc6). Pinned in packages.env as
# <PKG>_<ARCH>_VERSION/_SHA256, the package name upper-cased with '-' as '_'.
DROPBEAR_DEBS=(dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g)

# The pin variable of package $1 (upper-cased already) for arch $2, field $3 (VERSION/SHA256).
pin() {
    local var="${1}_${2^^}_${3}"
    [ -n "${!var:-}" ] || { say "no $var in $pins; $update_hint"; return 1; }
    echo "${!var}"
}

# The Debian multiarch triplet and the dynamic loader's name (the ELF's PT_INTERP, in /lib).
triplet() { case "$1" in arm64) echo aarch64-linux-gnu ;; armhf) echo arm-linux-gnueabihf ;; esac; }
loader() { case "$1" in arm64) echo ld-linux-aarch64.so.1 ;; armhf) echo ld-linux-armhf.so.3 ;; esac; }

# The NEEDED entries of ELF file $1.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# Adds Debian's dropbear server (dropbear, dropbearkey) to the snap tree $1 for arch $2 with
# exactly the shared libraries it loads, closed over NEEDED, and the dynamic loader; each
# package's copyright goes to usr/share/doc/<pkg>/. Unpacked, never installed.
add_dropbear() {
    local dir="$1" arch="$2" pkg var src t lib found queue=() seen=" " libdirs=()
    t="$(triplet "$arch")"
    for pkg in "${DROPBEAR_DEBS[@]}"; do
        var="${pkg^^}"
        var="${var//-/_}"
        src="$(unpacked "$pkg" "$arch" "$(pin "$var" "$arch" VERSION)" "$(pin "$var" "$arch" SHA256)")"
        install -D -m 0644 "$src/usr/share/doc/$pkg/copyright" "$dir/usr/share/doc/$pkg/copyright"
        [ "$pkg" = dropbear-bin ] && {
            install -m 0755 "$src/usr/sbin/dropbear" "$dir/usr/sbin/dropbear"
            install -m 0755 "$src/usr/bin/dropbearkey" "$dir/usr/bin/dropbearkey"
        }
        for lib in "$src/lib/$t" "$src/usr/lib/$t"; do [ -d "$lib" ] && libdirs+=("$lib"); done
    done
    mkdir -p "$dir/lib/$t"
    queue=("$dir/usr/sbin/dropbear" "$dir/usr/bin/dropbearkey")
    while [ "${#queue[@]}" -gt 0 ]; do
        for lib in $(needed "${queue[0]}"); do
            case "$seen" in *" $lib "*) continue ;; esac
            seen+="$lib "
            found="$(find "${libdirs[@]}" -maxdepth 1 -name "$lib" | head -1)"
            [ -n "$found" ] || { say "dropbear ($arch) needs $lib, which none of ${DROPBEAR_DEBS[*]} ships"; return 1; }
            cp -L "$found" "$dir/lib/$t/$lib"
            queue+=("$dir/lib/$t/$lib")
        done
        queue=("${queue[@]:1}")
    done
    lib="$(loader "$arch")"
    found="$(find "${libdirs[@]}" -maxdepth 1 -name "$lib" | head -1)"
    [ -n "$found" ] || { say "libc6 ($arch) has no $lib"; return 1; }
    cp -L "$found" "$dir/lib/$t/$lib"
    ln -s "$t/$lib" "$dir/lib/$lib"
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
    [ -f "$dir/etc/shadow" ] && chmod 0600 "$dir/etc/shadow"
    rm -f "$stamp" "$out/${name}_"*"_${arch}.snap"
    pack "$dir" "$file"
    echo "$key" >"$stamp"
    say "built $name ($arch): $(stat -c %s "$file") bytes in $(($(date +%s) - t0)) s"
    echo "$file"
}

# Rewrites packages.env with the suite's current versions and SHA-256 sums.
update_pins() {
    debs_apt apt-get update >&2
    local fw pkg var arch v
    fw="$(debs_field raspi-firmware Version)"
    [ -n "$fw" ] || { say "no raspi-firmware in $DEBS_MIRROR $DEBS_SUITE"; return 1; }
    {
        echo "# Debian packages in the board snaps (suite and mirror: cross/kernels.env's); written by"
        echo "# board-support/snaps/build.sh --update. The kernel itself is pinned in cross/kernels.env."
        echo "RASPI_FIRMWARE_VERSION=$fw"
        echo "RASPI_FIRMWARE_SHA256=$(debs_field "raspi-firmware=$fw" SHA256)"
        # busybox-static keeps its historical BUSYBOX_ prefix.
        for pkg in busybox-static "${DROPBEAR_DEBS[@]}"; do
            var="${pkg^^}"
            var="${var//-/_}"
            [ "$pkg" = busybox-static ] && var=BUSYBOX
            for arch in arm64 armhf; do
                v="$(debs_field "$pkg:$arch" Version)"
                [ -n "$v" ] || { say "no $pkg for $arch in $DEBS_MIRROR $DEBS_SUITE"; return 1; }
                echo "${var}_${arch^^}_VERSION=$v"
                echo "${var}_${arch^^}_SHA256=$(debs_field "$pkg:$arch=$v" SHA256)"
            done
        done
    } >"$pins.new"
    mv "$pins.new" "$pins"
    say "pinned raspi-firmware $fw, busybox-static and dropbear's packages in $pins"
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
