#!/usr/bin/env bash
# Builds coreforge's board snaps from the source trees beside this script and pinned Debian
# packages, packs them into ${COREFORGE_CACHE:-$HOME/.cache/coreforge}/snaps/ as
# <name>_<version>_<arch>.snap and prints their paths, one per line:
#   pi2-kernel (kernel)  Debian's kernel (cross/kernels.env): kernel.img, dtbs/, the boards' boot modules
#   pi3        (gadget)  meta/gadget.yaml, config.txt, cmdline.txt, Debian's raspi-firmware
#   qemu-virt  (gadget)  meta/gadget.yaml, cmdline.txt
#   core       (os)      Debian bookworm (mmdebstrap --variant=minbase) with systemd, udev,
#                        openssh-server, sudo, iproute2, wpasupplicant, kmod, ca-certificates,
#                        systemd-networkd/-resolved/-timesyncd; every package pinned
#   core-busybox (os, named core) the test fixture: Debian's busybox-static with its applet
#                        links, /sbin/init, a small /etc, Debian's dropbear server with its
#                        libraries and the dynamic loader; built to core-busybox_<ver>_<arch>.snap
#
#   board-support/snaps/build.sh [arm64|armhf|all]   build (default: all); a snap is rebuilt only
#                                                   when one of its inputs changed
#   board-support/snaps/build.sh --update            pin the suite's current raspi-firmware,
#                                                   busybox-static and dropbear's packages and
#                                                   the core snap's whole package set in
#                                                   packages.env, then build all
#
# Reproducible: the same inputs give the same bytes (owners root, every time SOURCE_DATE_EPOCH,
# default 0). Needs no foreign dpkg architecture (cross/debs.sh); needs qemu-user to list the
# foreign busybox's applets. The core snap needs root, mmdebstrap and qemu-user's binfmt_misc
# entries (cross/setup.sh): it runs the packages' maintainer scripts in a foreign chroot.
# Generated trees are kept in the cache's snaps/build/.
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

# Packs the snap directory $1 into the file $2 with `coreforge pack` (reproducible: every time
# SOURCE_DATE_EPOCH or 0; root-owned, but for the Debian base, which keeps the owners and
# groups its packages gave, as snapd packs bases). The one place that knows the packer;
# `packer_id` names it for the cache keys.
pack() {
    local dir="$1" file="$2" compression=xz owners=root
    # Every image build unpacks the kernel snap: lzo unpacks its 33 MB kernel.img about ten
    # times faster than xz (snapd accepts both).
    case "$(basename "$file")" in pi2-kernel_*) compression=lzo ;; esac
    # The busybox base is the tests' fixture, built by whoever runs them: root's whatever the
    # builder. The Debian base is built as root by mmdebstrap: /etc/shadow stays group shadow.
    case "$(basename "$file")" in core_*) owners=keep ;; esac
    # The dev profile: `cargo test` builds it anyway, and mksquashfs does the work.
    (cd "$root" && cargo run -q -p coreforge -- pack --compression "$compression" \
        --owners "$owners" "$dir" -o "$file") >/dev/null
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
# The core snap carries the device-side snap tool once cross/build-snap.sh exists (add_snap_tool).
core_inputs=()
[ -e "$root/cross/build-snap.sh" ] && core_inputs+=(cross/build-snap.sh)
[ -e "$root/snap-tools" ] && core_inputs+=(snap-tools)

# A digest of everything snap $1 for arch $2 is built from; more words may follow.
inputs_key() {
    local name="$1"
    shift
    local paths=("${common_inputs[@]}" "board-support/snaps/$name")
    [ "$name" = pi2-kernel ] && paths+=("${kernel_inputs[@]}")
    [ "$name" = core ] && paths+=("${core_inputs[@]}")
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
    # modprobe's and udev's indexes (modules.dep, modules.alias, ...) of exactly these modules,
    # with the kernel's list of built-in ones: the OS loads the Wi-Fi modules on demand.
    cp "$k/modules/modules.builtin" "$k/modules/modules.builtin.modinfo" "$k/modules/modules.order" \
        "$dir/modules/$release/"
    depmod_tree "$dir/modules" "$release"
    render "$here/pi2-kernel/meta/snap.yaml.in" "$dir/meta/snap.yaml" \
        VERSION="$KERNEL_VERSION" ARCH="$arch" RELEASE="$release" \
        PACKAGE="$(pkg_of_arch KERNEL "$arch")"
}

# Runs the host's depmod on the modules tree $1 (<release>/kernel/...) for release $2; depmod
# wants <base>/lib/modules/<release>, so a throwaway base links there.
depmod_tree() {
    local modules="$1" release="$2" base="$work/depmod"
    command -v depmod >/dev/null || [ -x /usr/sbin/depmod ] || {
        say "depmod not found: install kmod (cross/setup.sh)"
        return 1
    }
    rm -rf "$base"
    mkdir -p "$base/lib"
    ln -s "$modules" "$base/lib/modules"
    PATH="$PATH:/usr/sbin:/sbin" depmod -b "$base" "$release"
    rm -rf "$base"
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

# The busybox base (snap core-busybox, named core in its snap.yaml): the tests' fixture.
populate_core_busybox() {
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
    render "$here/core-busybox/meta/snap.yaml.in" "$dir/meta/snap.yaml" VERSION="$version" ARCH="$arch" \
        DROPBEAR="$(pin DROPBEAR_BIN "$arch" VERSION)"
}

# The core-busybox snap's version: busybox-static's without its epoch (no ':' in file names).
core_busybox_version() {
    local v="BUSYBOX_${1^^}_VERSION"
    echo "${!v#*:}"
}

# The Debian packages the core-busybox snap's dropbear comes from: the server and every library in
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

# Adds Debian's dropbear server (dropbear, dropbearkey) to the snap tree $1 for arch $2 with
# exactly the shared libraries it loads, closed over NEEDED (debs_elf_closure), and the dynamic
# loader; each package's copyright goes to usr/share/doc/<pkg>/. Unpacked, never installed.
add_dropbear() {
    local dir="$1" arch="$2" pkg var src t lib found libdirs=()
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
    debs_elf_closure "$dir/lib/$t" "${libdirs[@]}" -- "$dir/usr/sbin/dropbear" "$dir/usr/bin/dropbearkey" || {
        say "dropbear ($arch) needs a library none of ${DROPBEAR_DEBS[*]} ships"
        return 1
    }
    lib="$(loader "$arch")"
    found="$(find "${libdirs[@]}" -maxdepth 1 -name "$lib" | head -1)"
    [ -n "$found" ] || { say "libc6 ($arch) has no $lib"; return 1; }
    cp -L "$found" "$dir/lib/$t/$lib"
    ln -s "$t/$lib" "$dir/lib/$lib"
}

# The Debian base, snap `core` (type os): bookworm with its updates and security suites from
# cross/kernels.env's mirror, installed by mmdebstrap --variant=minbase (Essential and required
# packages, apt) plus CORE_INCLUDE with their dependencies, no Recommends; merged /usr set up
# the debootstrap way, with usr-is-merged (usrmerge would bring perl, 55 MB). packages.env pins
# every package of the result (CORE_<ARCH>_PACKAGES, pkg=version); the build installs exactly
# those and checks that it did.
CORE_INCLUDE=(
    systemd-sysv udev                              # systemd as /sbin/init
    systemd-resolved systemd-timesyncd             # DNS for networkd's leases; the clock (a Pi has no RTC)
    openssh-server sudo passwd login               # logins: SSH keys, sudo, the console
    iproute2 wpasupplicant kmod ca-certificates    # networks, Wi-Fi, modules, TLS roots
)
CORE_SUITES=("$KERNEL_SUITE" "$KERNEL_SUITE-updates" "$KERNEL_SUITE-security")
# No documentation, manual pages or translations in the base (the copyright files stay).
CORE_DPKG_OPTS=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
)

# The apt sources of the core snap, one per suite (security from the mirror's debian-security).
core_sources() {
    local suite
    for suite in "${CORE_SUITES[@]}"; do
        case "$suite" in
            *-security) echo "deb ${DEBS_MIRROR%/debian}/debian-security $suite main" ;;
            *) echo "deb $DEBS_MIRROR $suite main" ;;
        esac
    done
}

# The core snap's pinned packages for arch $1, pkg=version, one per line (empty when unset).
core_pins() {
    local var="CORE_${1^^}_PACKAGES"
    printf '%s\n' ${!var:-} # word splitting: one pin per word
}

# The core snap's version: the suite and the day its pins were taken (packages.env's
# CORE_PINNED, YYYYMMDD).
core_version() { echo "$KERNEL_SUITE-${CORE_PINNED:-unpinned}"; }

# Lets the kernel run arch $1's binaries (mmdebstrap runs the packages' maintainer scripts in
# the foreign chroot): binfmt_misc mounted, qemu-user's entry registered and enabled.
ensure_binfmt() {
    local bm=/proc/sys/fs/binfmt_misc q
    case "$1" in arm64) q=qemu-aarch64 ;; armhf) q=qemu-arm ;; esac
    if [ ! -e "$bm/register" ]; then
        mount -t binfmt_misc binfmt_misc "$bm" || {
            say "cannot mount binfmt_misc at $bm (the core snap is built as root)"
            return 1
        }
    fi
    if [ ! -e "$bm/$q" ]; then
        if [ -f "/usr/lib/binfmt.d/$q.conf" ]; then
            # qemu-user-binfmt (bookworm-backports) ships systemd-binfmt's files only.
            grep -v '^[#;]' "/usr/lib/binfmt.d/$q.conf" >"$bm/register"
        else
            update-binfmts --enable "$q" # bookworm's qemu-user-static, through binfmt-support
        fi
    fi
    [ "$(head -1 "$bm/$q" 2>/dev/null)" = enabled ] || echo 1 >"$bm/$q"
    [ "$(head -1 "$bm/$q" 2>/dev/null)" = enabled ] || {
        say "no binfmt_misc entry $q: install qemu-user-static from bookworm-backports (cross/setup.sh)"
        return 1
    }
}

# The device-side `snap` tool (snap-tools/, cross-built by cross/build-snap.sh): installed as
# /usr/bin/snap in the base tree $1 for arch $2, and as systemd's generator that mounts the
# seeded snaps and writes their units at boot (snapd's snapd-generator). A no-op, with a
# note, while that script does not exist.
add_snap_tool() {
    local dir="$1" arch="$2" target bin
    [ -x "$root/cross/build-snap.sh" ] || {
        say "no cross/build-snap.sh yet: the core snap has no /usr/bin/snap"
        return 0
    }
    case "$arch" in arm64) target=aarch64 ;; armhf) target=armv7 ;; esac
    bin="$("$root/cross/build-snap.sh" "$target" | tail -1)"
    [ -f "$bin" ] || { say "cross/build-snap.sh $target printed no binary: '$bin'"; return 1; }
    install -m 0755 "$bin" "$dir/usr/bin/snap"
    mkdir -p "$dir/usr/lib/systemd/system-generators"
    ln -sf /usr/bin/snap "$dir/usr/lib/systemd/system-generators/snapd-generator"
}

# Units the packages enable that have no work on an image-based device: apt's daily update
# and upgrade and dpkg's database backup (the base is read-only; snaps are how it changes),
# e2scrub (it needs LVM snapshots), and the D-Bus wpa_supplicant (Wi-Fi is the per-interface
# wpa_supplicant@IFACE the agent enables). Each costs boot time on a small CPU.
CORE_UNITS_OFF=(apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
    e2scrub_all.timer e2scrub_reap.service wpa_supplicant.service)

# Runs mmdebstrap for the core snap of arch $1 into the new directory $2, overlaying the
# committed tree $3; with pins when $4 is "pinned".
core_mmdebstrap() {
    local arch="$1" rootfs="$2" overlay="$3" mode="$4" include sources=() log="$2.log"
    include="$(printf '%s,' "${CORE_INCLUDE[@]}")"
    [ "$mode" = pinned ] && include+="$(core_pins "$arch" | tr '\n' ',')"
    mapfile -t sources < <(core_sources)
    rm -rf "$rootfs"
    # The hooks run with the chroot's /proc, /sys and /dev mounted, before mmdebstrap's cleanup
    # (apt lists and caches, logs, ldconfig's aux-cache, machine-id emptied, /run and /tmp):
    # the committed files, networkd enabled, CORE_UNITS_OFF disabled, resolved's stub as
    # resolv.conf, the packages' host keys removed, and sshd's check of its configuration with
    # only the ed25519 key the agent will write (a throwaway one, removed again).
    if ! SOURCE_DATE_EPOCH="$epoch" mmdebstrap --mode=root --variant=minbase \
        --architectures="$arch" --include="${include%,}" "${CORE_DPKG_OPTS[@]}" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --customize-hook="sync-in '$overlay' /" \
        --customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
        --customize-hook="chroot \"\$1\" systemctl disable ${CORE_UNITS_OFF[*]}" \
        --customize-hook='ln -sfn ../run/systemd/resolve/stub-resolv.conf "$1/etc/resolv.conf"' \
        --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
        --customize-hook='chroot "$1" ssh-keygen -q -t ed25519 -N "" -C check -f /etc/ssh/ssh_host_ed25519_key' \
        --customize-hook='mkdir -p "$1/run/sshd" && chroot "$1" /usr/sbin/sshd -t' \
        --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
        "$KERNEL_SUITE" "$rootfs" "${sources[@]}" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        say "mmdebstrap for core ($arch) failed (log: $log); if a pinned version left the" \
            "archive, $update_hint"
        return 1
    fi
}

# The packages installed in the tree $1, pkg=version, sorted.
installed_packages() {
    dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${db:Status-Abbrev}${Package}=${Version}\n' \
        | sed -n 's/^ii *//p' | LC_ALL=C sort
}

populate_core() {
    local dir="$1" arch="$2" version="$3" rootfs="$work/core-$arch.rootfs" got want
    [ "$(id -u)" = 0 ] || { say "the core snap is built as root (mmdebstrap --mode=root)"; return 1; }
    ensure_binfmt "$arch"
    want="$(core_pins "$arch" | LC_ALL=C sort)"
    [ -n "$want" ] || { say "no CORE_${arch^^}_PACKAGES in $pins; $update_hint"; return 1; }
    chmod 0440 "$dir/etc/sudoers.d/"*
    core_mmdebstrap "$arch" "$rootfs" "$dir" pinned
    got="$(installed_packages "$rootfs")"
    if [ "$got" != "$want" ]; then
        { diff <(echo "$want") <(echo "$got") || true; } | sed -n 's/^[<>]/  &/p' | head -n 40 >&2
        say "core ($arch): installed packages (>) differ from the pins (<); $update_hint"
        return 1
    fi
    finish_core "$rootfs" "$arch"
    render "$here/core/meta/snap.yaml.in" "$rootfs/meta/snap.yaml" VERSION="$version" ARCH="$arch" \
        SUITES="${CORE_SUITES[*]}" PACKAGES="$(echo "$want" | wc -l)"
    rm -rf "$dir"
    mv "$rootfs" "$dir"
}

# What mmdebstrap leaves that a device must not share or that differs between runs; the
# mount points and the folders the base needs.
finish_core() {
    local rootfs="$1" arch="$2"
    rm -f "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
        "$rootfs"/etc/ssh/ssh_host_* "$rootfs/var/cache/ldconfig/aux-cache" "$rootfs.log"
    find "$rootfs/var/log" -type f -delete
    # dpkg's path-exclude leaves the folders and the symlinks of what it left out.
    find "$rootfs/usr/share/doc" -mindepth 3 ! -type d -delete # examples/*/debian/copyright too
    find "$rootfs/usr/share/doc" -mindepth 2 ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" "$rootfs/usr/share/man" "$rootfs/usr/share/locale" \
        -mindepth 1 -depth -type d -empty -delete 2>/dev/null || true
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
    mkdir -p "$rootfs/var/lib/apt/lists/partial" "$rootfs/var/cache/apt/archives/partial"
    : >"$rootfs/etc/machine-id"
    rm -f "$rootfs/var/lib/dbus/machine-id"
    mkdir -p "$rootfs/snap"
    add_snap_tool "$rootfs" "$arch"
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
    if [ "$name" = core ]; then
        # dpkg's modes stand (setuid sudo and passwd, 1777 /tmp); the committed files first.
        normalize_modes "$dir"
        "populate_${name//-/_}" "$dir" "$arch" "$version"
    else
        "populate_${name//-/_}" "$dir" "$arch" "$version"
        normalize_modes "$dir"
        [ -d "$dir/tmp" ] && chmod 1777 "$dir/tmp"
        [ -f "$dir/etc/shadow" ] && chmod 0600 "$dir/etc/shadow"
    fi
    rm -f "$stamp" "$out/${name}_"*"_${arch}.snap"
    pack "$dir" "$file"
    echo "$key" >"$stamp"
    say "built $name ($arch): $(stat -c %s "$file") bytes in $(($(date +%s) - t0)) s"
    echo "$file"
}

# Rewrites packages.env with the suite's current versions and SHA-256 sums.
update_pins() {
    debs_apt apt-get update >&2
    local fw pkg var arch v core_pins=()
    # The core snap: whatever an unpinned mmdebstrap installs today, per arch (minutes each).
    for arch in arm64 armhf; do
        local tmp="$work/core-$arch.update" overlay="$work/core-$arch.overlay"
        [ "$(id -u)" = 0 ] || { say "pinning the core snap needs root (mmdebstrap --mode=root)"; return 1; }
        ensure_binfmt "$arch"
        rm -rf "$overlay"
        mkdir -p "$overlay"
        copy_source core "$arch" "$overlay"
        say "resolving the core snap's packages for $arch (mmdebstrap, a few minutes)"
        core_mmdebstrap "$arch" "$tmp" "$overlay" unpinned
        core_pins+=("$(installed_packages "$tmp")")
        rm -rf "$tmp" "$tmp.log" "$overlay"
    done
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
        echo "# The core snap's every package, as installed by an unpinned build on CORE_PINNED (UTC)."
        echo "CORE_PINNED=$(date -u +%Y%m%d)"
        echo "CORE_ARM64_PACKAGES=\"
${core_pins[0]}
\""
        echo "CORE_ARMHF_PACKAGES=\"
${core_pins[1]}
\""
    } >"$pins.new"
    mv "$pins.new" "$pins"
    say "pinned raspi-firmware $fw, busybox-static and dropbear's packages, the core snap's packages in $pins"
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
    build pi2-kernel "$arch" "$KERNEL_VERSION"
    build pi3 "$arch" "1.0+fw${RASPI_FIRMWARE_VERSION%%+*}"
    build qemu-virt "$arch" "1.0"
    build core-busybox "$arch" "$(core_busybox_version "$arch")"
    build core "$arch" "$(core_version)"
done
