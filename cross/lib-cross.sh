# Shared by the static device builds (cross/build-agent.sh, cross/build-snap.sh), sourced:
# Debian's rustc-web with build-std (rustup has no aarch64/armhf std here, so std is rebuilt
# from rust-web-src), a scrubbed environment, and a check that each binary is a static ELF
# for its target. Artifacts go to target/cross (kept apart from the host toolchain's target/
# so the two compilers never share fingerprints).

cross_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cross_root="$(dirname "$cross_here")"

# cross_targets USAGE WHICH: the Rust targets for WHICH (aarch64|arm64, armhf|armv7, all) in
# cross_target_list; prints USAGE and exits 2 for anything else.
cross_targets() {
    case "$2" in
        aarch64 | arm64) cross_target_list=(aarch64-unknown-linux-gnu) ;;
        armhf | armv7) cross_target_list=(armv7-unknown-linux-gnueabihf) ;;
        all) cross_target_list=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf) ;;
        *)
            echo "$1" >&2
            exit 2
            ;;
    esac
}

# cross_toolchain NAME: Debian's toolchain and nothing from the caller's Rust environment;
# NAME prefixes the error when the toolchain is missing.
cross_toolchain() {
    local tool
    for tool in /usr/bin/cargo /usr/bin/rustc; do
        [ -x "$tool" ] || { echo "$1: $tool missing; run cross/setup.sh" >&2; exit 1; }
    done

    # Debian's toolchain first: ~/.cargo/bin's rustc (rustup) has no std for these targets.
    export PATH="/usr/bin:$PATH"
    export RUSTC=/usr/bin/rustc
    export RUSTC_BOOTSTRAP=1
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTC_WRAPPER
    cross_target_dir="${COREFORGE_CROSS_TARGET_DIR:-$cross_root/target/cross}"
    # ring (rustls' crypto provider) compiles C and assembly with the `cc` crate: name the Debian
    # cross compilers for each target explicitly rather than rely on cc's guess of the prefix.
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
    export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
}

# cross_build NAME PACKAGE PROFILE BINARY TARGET: builds PACKAGE's BINARY with the cargo
# PROFILE for TARGET, checks it is a static ELF for TARGET and prints its path.
cross_build() {
    local name="$1" package="$2" profile="$3" binary="$4" target="$5"
    # No unwind tables for Rust code (the profiles have panic = "abort": nothing ever unwinds,
    # and a panic hook needs none). This drops most of .eh_frame: -196,608 bytes on aarch64 with
    # TLS, which brings the agent under its 2 MiB budget. Cargo appends these flags to the
    # target's rustflags in cargo-config.toml. 4 KiB segment alignment: the default 64 KiB
    # pads the file by up to 64 KiB between its two segments, for nothing on the kernels we
    # boot (Debian's arm64 and armmp kernels use 4 KiB pages). No source locations in panic
    # messages (-Zlocation-detail=none): -61,440 bytes on aarch64; the agent never panics by
    # design, and its panic hook still prints the message.
    /usr/bin/cargo build --quiet --manifest-path "$cross_root/Cargo.toml" -p "$package" \
        --config "$cross_here/cargo-config.toml" \
        --config "target.$target.rustflags = [\"-C\", \"force-unwind-tables=no\", \"-C\", \"link-arg=-Wl,-z,max-page-size=4096\", \"-Zlocation-detail=none\"]" \
        --profile "$profile" --target "$target" \
        --target-dir "$cross_target_dir" -Zbuild-std=std,panic_abort \
        -Zbuild-std-features=optimize_for_size >&2
    local bin="$cross_target_dir/$target/$profile/$binary" want info
    case "$target" in
        aarch64-*) want="ARM aarch64" ;;
        armv7-*) want="ARM, EABI5" ;;
    esac
    info="$(file -b "$bin")"
    case "$info" in
        *"$want"*"statically linked"*) ;;
        *)
            echo "$name: $bin is not a static $target ELF: $info" >&2
            exit 1
            ;;
    esac
    echo "$bin"
}
