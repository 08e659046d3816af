#!/usr/bin/env bash
# Writes one image to a loop device with `dd bs=4M conv=fsync`, `bmaptool copy` and
# `coreforge flash` (both of the latter with the same bmap, verifying what they write),
# interleaved, page cache dropped before each; prints each one's median wall time. Also
# times reading only the bmap's ranges of the image, cold, to /dev/null ("read"): every tool
# pays that, so it bounds how much faster than dd writing fewer bytes can make a tool.
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
# The bmap's ranges, as "first last" block numbers.
ranges=$(sed -n 's:.*<Range[^>]*> *\([0-9-]*\) *</Range>.*:\1:p' "$bmap" | awk -F- '{ print $1, ($2 == "" ? $1 : $2) }')
[ -n "$ranges" ] || { echo "error: no ranges in $bmap" >&2; exit 1; }
read_mapped() {
    local first last
    while read -r first last; do
        dd if="$image" of=/dev/null bs=4096 skip="$first" count=$((last - first + 1)) status=none
    done <<< "$ranges"
}
for _ in $(seq "$runs"); do
    time_one read read_mapped
    time_one dd dd if="$image" of="$dev" bs=4M conv=fsync status=none
    time_one bmaptool bmaptool -q copy --bmap "$bmap" "$image" "$dev"
    time_one coreforge "$cf" flash --bmap "$bmap" "$image" "$dev"
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "image $(stat -c %s "$image") bytes, $runs runs, median seconds:"
for t in read dd bmaptool coreforge; do
    printf '%-10s %s\n' "$t" "$(echo "${times[$t]}" | median)"
done
