#!/usr/bin/env bash
# Builds the static `snap` program of the device's OS (snap-tools: snap run/list/services,
# the /snap/bin launchers and the systemd generator) with Debian's rustc-web, as
# cross/build-agent.sh builds the agent (cross/lib-cross.sh).
#
#   cross/build-snap.sh [aarch64|armv7|all]     (default: all; arm64 and armhf also work)
#
# Prints one line per target: the path of the stripped, static binary, to be installed as
# /usr/bin/snap and linked as /usr/lib/systemd/system-generators/snapd-generator.
set -euo pipefail

. "$(cd "$(dirname "$0")" && pwd)/lib-cross.sh"

cross_targets "usage: $0 [aarch64|armv7|all]" "${1:-all}"
cross_toolchain build-snap
for target in "${cross_target_list[@]}"; do
    cross_build build-snap coreforge-snap snap snap "$target"
done
