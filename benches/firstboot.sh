#!/usr/bin/env bash
# First-boot targets of issue 5, measured under QEMU virt arm64 (not a test: the numbers
# depend on the machine; run it on an otherwise idle machine):
#   - seed verification throughput of the agent against busybox `sha3sum -a 384` hashing the
#     same seeded bytes on the same emulated CPU in the same QEMU run (-smp 1 and -smp 2);
#   - time from QEMU start to "Press Enter to configure" with a ~100 MB seed, against the
#     trivial init's first line (same kernel);
#   - the agent's stripped size (aarch64), against its 2 MiB budget.
# See benches/README.md for the method and the last results.
#
#   benches/firstboot.sh [REPETITIONS]     (default 3)
#
# Needs cross/setup.sh to have run (kernels, cross toolchain, QEMU, mtools, e2fsprogs,
# openssh-client); builds the agent, the board snaps and coreforge as the tests do.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
reps="${1:-3}"

agent="$(cross/build-agent.sh aarch64 | tail -n 1)"
size="$(stat -c %s "$agent")"
echo "| agent aarch64, stripped (with TLS and HTTP) | $size B ($(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') MiB) | target ≤ 2 MiB |"
echo
exec cargo run --quiet -p coreforge-tests --example firstboot_bench -- "$reps"
