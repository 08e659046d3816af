#!/usr/bin/env bash
# Writes one image to a loop device with `dd bs=4M conv=fsync`, `bmaptool copy` and
# `coreforge flash` (both of the latter with the same bmap, verifying what they write),
# interleaved, page cache dropped before each; prints each one's median wall time.
#   benches/flash.sh IMAGE BMAP [RUNS]     (as root: losetup, drop_caches)
# The image and bmap come from `coreforge build-image ... --bmap FILE`.
set -euo pipefail
image=$1 bmap=$2 runs=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cf=$root/target/release/coreforge
cargo build --quiet --release -p coreforge --manifest-path "$root/Cargo.toml"
card=$(mktemp /var/tmp/coreforge-card.XXXXXX)
trap 'losetup -d "$dev" 2>/dev/null || true; rm -f "$card"' EXIT
truncate -s $(( $(stat -c %s "$image") + (64 << 20) )) "$card"
dev=$(losetup --find --show "$card")
declare -A times
time_one() { # name command...
    sync; echo 3 > /proc/sys/vm/drop_caches
    local start end
    start=$(date +%s.%N)
    "${@:2}" >/dev/null 2>&1
    end=$(date +%s.%N)
    times[$1]+="$(echo "$end - $start" | bc) "
}
for _ in $(seq "$runs"); do
    time_one dd dd if="$image" of="$dev" bs=4M conv=fsync status=none
    time_one bmaptool bmaptool -q copy --bmap "$bmap" "$image" "$dev"
    time_one coreforge "$cf" flash --bmap "$bmap" "$image" "$dev"
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "image $(stat -c %s "$image") bytes, $runs runs, median seconds:"
for t in dd bmaptool coreforge; do
    printf '%-10s %s\n' "$t" "$(echo "${times[$t]}" | median)"
done
