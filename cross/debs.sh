# shellcheck shell=bash
# Sourced, not run: fetches pinned Debian packages of any architecture (arm64, armhf, all)
# without installing them and without adding a foreign dpkg architecture. A private apt
# configuration (state, cache and sources list under $DEBS_APTDIR) reads the arm64/armhf
# Packages indexes of one suite. Used by cross/fetch-kernels.sh and board-support/snaps/build.sh.
#
#   DEBS_MIRROR, DEBS_SUITE   where to look (default: Debian bookworm)
#   DEBS_APTDIR               the private apt tree (default: ${COREFORGE_CACHE:-$HOME/.cache/coreforge}/apt)
#
#   debs_apt CMD ARGS...              apt-get/apt-cache with the private configuration
#   debs_field PKG[:ARCH][=VER] FIELD a field of the package's index entry (empty if unknown)
#   debs_fetch PKG ARCH VERSION SHA256 [PINS_HINT]
#                                     downloads the .deb once, checks its SHA-256, prints its path
#   debs_elf_closure DEST LIBDIR... -- ELF...
#                                     copies to DEST the shared libraries the ELF files load,
#                                     closed over NEEDED, from the unpacked packages' LIBDIRs

DEBS_MIRROR="${DEBS_MIRROR:-http://deb.debian.org/debian}"
DEBS_SUITE="${DEBS_SUITE:-bookworm}"
DEBS_APTDIR="${DEBS_APTDIR:-${COREFORGE_CACHE:-$HOME/.cache/coreforge}/apt}"
# non-free-firmware holds raspi-firmware; main everything else.
DEBS_COMPONENTS="main non-free-firmware"

# apt with a private state, cache and sources list: arm64 + armhf indexes of the suite only.
debs_apt() {
    local d="$DEBS_APTDIR"
    mkdir -p "$d/lists/partial" "$d/archives/partial" "$d/etc/sources.list.d" \
        "$d/etc/preferences.d" "$d/etc/apt.conf.d"
    [ -f "$d/status" ] || : >"$d/status"
    echo "deb [arch=arm64,armhf signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBS_MIRROR $DEBS_SUITE $DEBS_COMPONENTS" \
        >"$d/etc/sources.list"
    local cmd="$1"
    shift
    "$cmd" -q \
        -o Dir::State="$d" -o Dir::State::Lists="$d/lists" -o Dir::State::status="$d/status" \
        -o Dir::Cache="$d" -o Dir::Cache::Archives="$d/archives" \
        -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts="$d/etc/sources.list.d" \
        -o Dir::Etc::Parts="$d/etc/apt.conf.d" -o Dir::Etc::PreferencesParts="$d/etc/preferences.d" \
        -o Dir::Etc::Preferences="$d/etc/preferences" \
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Architectures::=armhf \
        -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false \
        -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false \
        -o APT::Sandbox::User="$(id -un)" \
        "$@"
}

# Field $2 of package $1 ("name:arch=version", "name:arch" or "name") from the private index.
debs_field() {
    debs_apt apt-cache show "$1" 2>/dev/null | sed -n "s/^$2: //p" | head -1
}

# apt-cache's spelling of a package at an architecture: arch-all packages have no ":all".
debs_spec() {
    local pkg="$1" arch="$2" version="$3"
    if [ "$arch" = all ]; then echo "$pkg=$version"; else echo "$pkg:$arch=$version"; fi
}

# Downloads PKG ARCH VERSION into the private archive unless a copy with SHA256 is there;
# prints the .deb's path. Fails naming PINS_HINT (what to run) when the mirror dropped it.
debs_fetch() {
    local pkg="$1" arch="$2" version="$3" sha="$4" hint="${5:-update the pins}"
    # apt-get download writes an epoch's colon as %3a.
    local deb="$DEBS_APTDIR/archives/${pkg}_${version//:/%3a}_${arch}.deb"
    if [ -f "$deb" ] && echo "$sha  $deb" | sha256sum -c --quiet - >/dev/null 2>&1; then
        echo "$deb"
        return 0
    fi
    local spec
    spec="$(debs_spec "$pkg" "$arch" "$version")"
    if [ -z "$(debs_field "$spec" SHA256)" ]; then
        debs_apt apt-get update >&2
    fi
    if [ -z "$(debs_field "$spec" SHA256)" ]; then
        echo "debs: $pkg $version ($arch) is no longer on $DEBS_MIRROR $DEBS_SUITE; $hint" >&2
        return 1
    fi
    (cd "$DEBS_APTDIR/archives" && debs_apt apt-get download "$spec") >&2
    if ! echo "$sha  $deb" | sha256sum -c --quiet - >&2; then
        echo "debs: $deb does not match its pinned SHA-256 ($sha); $hint" >&2
        return 1
    fi
    echo "$deb"
}

# Copies into the folder $1 every shared library the ELF files after "--" load, closed over
# their NEEDED entries, each found in the first of the folders between $1 and "--" (unpacked
# packages' lib/<triplet> folders) that has it. Fails naming the first library none has.
debs_elf_closure() {
    local dest="$1" lib found seen=" " libdirs=() queue=()
    shift
    while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
        libdirs+=("$1")
        shift
    done
    shift
    queue=("$@")
    mkdir -p "$dest"
    while [ "${#queue[@]}" -gt 0 ]; do
        for lib in $(readelf -d "${queue[0]}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            case "$seen" in *" $lib "*) continue ;; esac
            seen+="$lib "
            found="$(find "${libdirs[@]}" -maxdepth 1 -name "$lib" | head -1)"
            [ -n "$found" ] || {
                echo "debs: ${queue[0]##*/} needs $lib, which none of ${libdirs[*]} has" >&2
                return 1
            }
            cp -L "$found" "$dest/$lib"
            queue+=("$dest/$lib")
        done
        queue=("${queue[@]:1}")
    done
}
