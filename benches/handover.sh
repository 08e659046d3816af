#!/usr/bin/env bash
# Issue 12's hand-over target, measured under QEMU (not a test: the numbers depend on the
# machine; run it on an otherwise idle machine): from the agent's "handing over to
# /sbin/init" to the Debian OS's login prompt on the serial console, on virt arm64 (target
# at most 15 s) and raspi3b (reported), first boot (preseeded) and later boots.
# See benches/README.md for the method and the last results.
#
#   benches/handover.sh [REPETITIONS [MACHINE...]]     (default 3; virt, raspi3b or both)
#
# Needs cross/setup.sh to have run and root (the Debian base's build); builds the agent,
# the board snaps and coreforge as the tests do.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
exec cargo run --quiet -p coreforge-tests --example handover_bench -- "${1:-3}" "${@:2}"
