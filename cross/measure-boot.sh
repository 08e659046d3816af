#!/usr/bin/env bash
# Measures the agent against its budget and prints a table: stripped size per arch,
# initramfs size per board (zstd and gzip), time from QEMU's start to the agent's first
# line versus a trivial static init on qemu-virt arm64 (same kernel, medians), and the
# agent's peak memory. Not a test: numbers depend on the machine.
#
#   cross/measure-boot.sh [REPETITIONS]     (default 5)
#
# Needs cross/setup.sh to have run. Run it on an otherwise idle machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
exec cargo run --quiet -p coreforge-tests --example measure_boot -- "${1:-5}"
