#!/usr/bin/env bash
# Builds the static coreforge-agent for the device architectures with Debian's rustc-web
# (rustup has no aarch64/armhf std here, so std is rebuilt from rust-web-src: build-std).
#
#   cross/build-agent.sh [aarch64|armhf|all]     (default: all)
#
# Prints one line per target: the path of the stripped, static binary. Artifacts go to
# target/cross (kept apart from the host toolchain's target/ so the two compilers never
# share fingerprints).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
which="${1:-all}"

case "$which" in
    aarch64 | arm64) targets=(aarch64-unknown-linux-gnu) ;;
    armhf | armv7) targets=(armv7-unknown-linux-gnueabihf) ;;
    all) targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf) ;;
    *)
        echo "usage: $0 [aarch64|armhf|all]" >&2
        exit 2
        ;;
esac

for tool in /usr/bin/cargo /usr/bin/rustc; do
    [ -x "$tool" ] || { echo "build-agent: $tool missing; run cross/setup.sh" >&2; exit 1; }
done

# Debian's toolchain first: ~/.cargo/bin's rustc (rustup) has no std for these targets.
export PATH="/usr/bin:$PATH"
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTC_WRAPPER
target_dir="${COREFORGE_CROSS_TARGET_DIR:-$root/target/cross}"
# ring (rustls' crypto provider) compiles C and assembly with the `cc` crate: name the Debian
# cross compilers for each target explicitly rather than rely on cc's guess of the prefix.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar

for target in "${targets[@]}"; do
    # No unwind tables for Rust code (the profile has panic = "abort": nothing ever unwinds, and
    # the panic hook needs none). This drops most of .eh_frame: -196,608 bytes on aarch64 with
    # TLS, which brings the agent under its 2 MiB budget. Cargo appends these flags to the
    # target's rustflags in cargo-config.toml. 4 KiB segment alignment: the default 64 KiB
    # pads the file by up to 64 KiB between its two segments, for nothing on the kernels we
    # boot (Debian's arm64 and armmp kernels use 4 KiB pages). No source locations in panic
    # messages (-Zlocation-detail=none): -61,440 bytes on aarch64; the agent never panics by
    # design, and its panic hook still prints the message.
    /usr/bin/cargo build --quiet --manifest-path "$root/Cargo.toml" -p coreforge-agent \
        --config "$here/cargo-config.toml" \
        --config "target.$target.rustflags = [\"-C\", \"force-unwind-tables=no\", \"-C\", \"link-arg=-Wl,-z,max-page-size=4096\", \"-Zlocation-detail=none\"]" \
        --profile agent --target "$target" \
        --target-dir "$target_dir" -Zbuild-std=std,panic_abort \
        -Zbuild-std-features=optimize_for_size >&2
    bin="$target_dir/$target/agent/coreforge-agent"
    case "$target" in
        aarch64-*) want="ARM aarch64" ;;
        armv7-*) want="ARM, EABI5" ;;
    esac
    info="$(file -b "$bin")"
    case "$info" in
        *"$want"*"statically linked"*) ;;
        *)
            echo "build-agent: $bin is not a static $target ELF: $info" >&2
            exit 1
            ;;
    esac
    echo "$bin"
done
