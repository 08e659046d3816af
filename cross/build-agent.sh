#!/usr/bin/env bash
# Builds the static coreforge-agent for the device architectures with Debian's rustc-web
# (rustup has no aarch64/armhf std here, so std is rebuilt from rust-web-src: build-std).
#
#   cross/build-agent.sh [aarch64|armhf|all]     (default: all)
#
# Prints one line per target: the path of the stripped, static binary. Artifacts go to
# target/cross (kept apart from the host toolchain's target/ so the two compilers never
# share fingerprints). The build itself is cross/lib-cross.sh's, shared with build-snap.sh.
set -euo pipefail

. "$(cd "$(dirname "$0")" && pwd)/lib-cross.sh"

cross_targets "usage: $0 [aarch64|armhf|all]" "${1:-all}"
cross_toolchain build-agent
for target in "${cross_target_list[@]}"; do
    cross_build build-agent coreforge-agent agent coreforge-agent "$target"
done
