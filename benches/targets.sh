#!/usr/bin/env bash
# Issue 10's four targets, side by side in one run on this machine:
#   1. verifying a model chain of snapd's RSA-4096 keys: under 1 ms (in process);
#   2. build-image of the pi3 arm64 image against genimage on the same layout: ratio <= 1.0;
#   3. `coreforge flash` of that image (with its bmap, verifying) to a loop device: at least 3x
#      faster than `dd bs=4M conv=fsync`, and no slower than `bmaptool copy`;
#   4. the cross-built agent (aarch64, stripped): at most 2 MiB.
# Usage: benches/targets.sh [RUNS]   (default 5; as root, for the loop device)
# Runs assertions/benches/verify.rs, benches/build-image.sh and benches/flash.sh, then prints
# one table. Exits 0 when a target is missed (the row says MISSED).
set -euo pipefail
export LC_ALL=C
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

echo "== 1. RSA-4096 model chain (cargo bench, in process)"
cargo bench --quiet -p coreforge-assertions --bench verify -- --only verify_model_rsa4096_chain \
    | tee "$log/rsa"
rsa_us=$(awk -F'\t' '$1 == "verify_model_rsa4096_chain" { print $2 }' "$log/rsa")

echo "== 2. build-image against genimage ($runs rounds)"
COREFORGE_BENCH_KEEP=1 benches/build-image.sh "$runs" | tee "$log/build"
kept=$(sed -n 's/^kept //p' "$log/build")
[ -d "$kept" ] || { echo "error: build-image.sh kept no directory" >&2; exit 1; }
trap 'rm -rf "$log" "$kept"' EXIT
build_ms=$(awk -F'|' '/coreforge build-image -c beta/ { gsub(/ /, "", $3); print $3 }' "$log/build")
gen_ms=$(awk -F'|' '/genimage, same layout/ { gsub(/ /, "", $3); print $3 }' "$log/build")

echo "== 3. flash of the same image with its bmap ($runs rounds)"
(cd "$kept" && COREFORGE_KEYS=$kept/keys TMPDIR=$kept/tmp "$root/target/release/coreforge" \
    build-image -c beta --store store -o flash.img --bmap flash.bmap pi3.model 2>/dev/null)
benches/flash.sh "$kept/flash.img" "$kept/flash.bmap" "$runs" | tee "$log/flash"
flash_time() { awk -v t="$1" '$1 == t { print $2 }' "$log/flash"; }
dd_s=$(flash_time dd)
bmap_s=$(flash_time bmaptool)
cf_s=$(flash_time coreforge)

echo "== 4. the agent"
agent=$(cross/build-agent.sh aarch64 | tail -n 1)
agent_b=$(stat -c %s "$agent")

verdict() { awk -v ok="$1" 'BEGIN { print ok ? "met" : "MISSED" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "== issue 10's targets ($runs rounds; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "| target | measured | verdict |"
echo "| --- | --- | --- |"
echo "| RSA-4096 model chain < 1 ms | ${rsa_us} µs | $(verdict "$(awk -v u="$rsa_us" 'BEGIN { print (u < 1000) }')") |"
echo "| build-image / genimage <= 1.0 | ${build_ms} ms / ${gen_ms} ms = $(ratio "$build_ms" "$gen_ms") | $(verdict "$(awk -v a="$build_ms" -v b="$gen_ms" 'BEGIN { print (a <= b) }')") |"
echo "| dd / coreforge flash >= 3 | ${dd_s} s / ${cf_s} s = $(ratio "$dd_s" "$cf_s") | $(verdict "$(awk -v a="$dd_s" -v b="$cf_s" 'BEGIN { print (a >= 3 * b) }')") |"
echo "| coreforge flash <= bmaptool copy | ${cf_s} s vs ${bmap_s} s | $(verdict "$(awk -v a="$cf_s" -v b="$bmap_s" 'BEGIN { print (a <= b) }')") |"
echo "| agent (aarch64) <= 2 MiB | ${agent_b} B | $(verdict "$((agent_b <= 2097152))") |"
