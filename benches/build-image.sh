#!/usr/bin/env bash
# `coreforge build-image` of a pi3 arm64 image against its floors, on this machine, in one run:
#   (1) cp: copying the finished image to a new file (the same bytes; target: build <= 3x cp)
#   (2) genimage: the same MBR layout (FAT32 system-boot, ext4 writable, same sizes and
#       offsets) from the same staged file trees (target: build-image faster)
# plus the build's phases, read from outside (its progress lines on a pseudo-terminal).
# Usage: benches/build-image.sh [RUNS]   (default 5 rounds, after one warm-up round)
# Needs genimage, mtools, dosfstools, e2fsprogs, squashfs-tools and the cross toolchain
# (cross/setup.sh installs them). Exits 0 when a target is missed (it prints MISSED); non-zero
# only when something could not be measured. COREFORGE_BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail
export LC_ALL=C

runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

for tool in cargo genimage mkdosfs mcopy mdir mtype mke2fs e2fsck debugfs unsquashfs script od awk; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (cross/setup.sh installs it)" >&2; exit 1; }
done

echo "== building coreforge (release), the aarch64 agent and the arm64 board snaps"
cargo build --release --quiet -p coreforge
cf=$root/target/release/coreforge
cross/build-agent.sh aarch64 >/dev/null
board-support/snaps/build.sh arm64 >/dev/null 2>&1 ||
    { echo "error: board-support/snaps/build.sh arm64 failed; run it to see why" >&2; exit 1; }
snaps=${COREFORGE_CACHE:-$HOME/.cache/coreforge}/snaps

work=$(mktemp -d)
if [ "${COREFORGE_BENCH_KEEP:-}" = 1 ]; then
    trap 'echo "kept $work"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
# Every temp file of every tool on the same file system as the images.
export TMPDIR=$work/tmp
mkdir "$TMPDIR" "$work/times"
cd "$work"

echo "== a key, a local store with pi3, pi2-kernel and core in beta, a signed pi3 model"
export COREFORGE_KEYS=$work/keys
echo "bench passphrase" > passphrase
"$cf" create-key default --account acme --passphrase-file passphrase >/dev/null
"$cf" store init store >/dev/null
"$cf" register-key default --store store >/dev/null
for name in pi3 pi2-kernel core; do
    file=$(ls "$snaps/${name}_"*"_arm64.snap")
    rev=$("$cf" store upload store "$file" | awk '{ print $2 }')
    "$cf" store release store "$name" "$rev" beta >/dev/null
done
cat > pi3-model.json <<EOF
{
    "type": "model",
    "authority-id": "acme",
    "series": "16",
    "brand-id": "acme",
    "model": "pi3",
    "architecture": "arm64",
    "gadget": "pi3",
    "kernel": "pi2-kernel",
    "timestamp": "2026-01-01T00:00:00+00:00"
}
EOF
"$cf" sign -k default --update-timestamp --passphrase-file passphrase pi3-model.json > pi3.model

build() { "$cf" build-image -c beta --store store -o "$1" "${@:2}" pi3.model; }

echo "== one build with --workdir, for the staged trees genimage gets"
build reference.img --workdir staged 2>/dev/null
# partition N: "TYPE START SIZE" (hex type, bytes) from the image's MBR.
partition() {
    local at=$((446 + 16 * ($2 - 1)))
    echo "$(od -An -t x1 -j $((at + 4)) -N 1 "$1" | tr -d ' ')" \
        "$(od -An -t u4 -j $((at + 8)) -N 8 "$1" | awk '{ print $1 * 512, $2 * 512 }')"
}
read -r boot_type boot_start boot_size < <(partition reference.img 1)
read -r data_type data_start data_size < <(partition reference.img 2)
image_size=$(stat -c %s reference.img)
# build-image stages the file system of gadget structure N in staged/fsN; the pi3 gadget has
# system-boot (structure 0) then writable (structure 1), both partitions, in that order.
if [ "$boot_type $data_type" != "0c 83" ] || [ ! -d staged/fs0/snaps ] || [ ! -d staged/fs1 ] ||
    [ "$(partition reference.img 3)" != "00 0 0" ]; then
    echo "error: reference.img is not the expected pi3 layout (0c system-boot in staged/fs0, 83 writable in staged/fs1)" >&2
    exit 1
fi

# The same layout for genimage 16: FAT32 with 4-sector clusters like ours, ext4 made by
# mke2fs -d (genext2fs is not installed) with our block and inode sizes.
cat > genimage.cfg <<EOF
image boot.vfat {
	vfat {
		label = "system-boot"
		extraargs = "-F 32 -s 4"
	}
	srcpath = "$work/staged/fs0"
	size = $boot_size
	temporary = true
}

image writable.ext4 {
	ext4 {
		label = "writable"
		use-mke2fs = true
		extraargs = "-b 4096 -I 256"
	}
	srcpath = "$work/staged/fs1"
	size = $data_size
	temporary = true
}

image pi3.img {
	hdimage {
		partition-table-type = "mbr"
	}
	partition system-boot {
		partition-type = 0x0C
		image = "boot.vfat"
		offset = $boot_start
		size = $boot_size
	}
	partition writable {
		partition-type = 0x83
		image = "writable.ext4"
		offset = $data_start
		size = $data_size
	}
}
EOF
mkdir genimage-root genimage-input
genimage_run() {
    genimage --rootpath genimage-root --tmppath genimage-tmp --inputpath genimage-input \
        --outputpath genimage-out --config genimage.cfg
}
genimage_run 2>genimage.log ||
    { echo "error: genimage failed:" >&2; cat genimage.log >&2; exit 1; }
for n in 1 2 3 4; do
    [ "$(partition genimage-out/pi3.img $n)" = "$(partition reference.img $n)" ] ||
        { echo "error: genimage's partition $n differs from ours: $(partition genimage-out/pi3.img $n)" >&2; exit 1; }
done
[ "$(stat -c %s genimage-out/pi3.img)" = "$image_size" ] ||
    { echo "error: genimage's image is $(stat -c %s genimage-out/pi3.img) bytes, ours $image_size" >&2; exit 1; }
# The same files in both FATs (names and sizes, recursively).
fat_listing() {
    MTOOLS_SKIP_CHECK=1 mdir -/ -b -i "$1@@$boot_start" :: | sort | while read -r f; do
        echo "$f $(MTOOLS_SKIP_CHECK=1 mtype -i "$1@@$boot_start" "$f" 2>/dev/null | wc -c)"
    done
}
ours=$(fat_listing reference.img)
if [ "$(fat_listing genimage-out/pi3.img)" != "$ours" ] || [ "$(echo "$ours" | wc -l)" -lt 10 ]; then
    echo "error: genimage's system-boot holds other files than ours:" >&2
    diff <(echo "$ours") <(fat_listing genimage-out/pi3.img) >&2
    exit 1
fi

# sample NAME CMD...: runs CMD once, appends its wall time in ms to NAME's samples. Each run
# starts after a sync, so that no run pays for the write-back of the one before.
sample() {
    local name=$1 t TIMEFORMAT=%3R
    shift
    sync
    t=$({ time "$@" >/dev/null 2>"$work/stderr"; } 2>&1) ||
        { echo "error: $* failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    awk -v t="$t" 'BEGIN { printf "%.1f\n", t * 1000 }' >> "times/$name"
}
# phases: one build on a pseudo-terminal, where it prints "build-image: STEP" lines; each
# step's time is from its line to the next (the last one to the process's end).
phases() {
    local line
    sync
    echo "$EPOCHREALTIME (starting the process)" > phases.log
    script -qfec "$cf build-image -c beta --store store -o phases.img pi3.model" /dev/null |
        while IFS= read -r line; do
            line=${line%$'\r'}
            case "$line" in *build-image:*) echo "$EPOCHREALTIME ${line#*build-image: }" ;; esac
        done >> phases.log
    echo "$EPOCHREALTIME end" >> phases.log
    awk -v run="$run" 'NR > 1 { printf "%s\t%s\t%.1f\n", run, step, ($1 - prev) * 1000 }
        { prev = $1; $1 = ""; step = substr($0, 2) }' phases.log >> times/phases
}
median() {
    tail -n +2 "times/$1" | sort -n |
        awk '{ a[NR] = $1 } END { printf "%.1f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
minimum() { tail -n +2 "times/$1" | sort -n | head -1; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# Interleaved, one of each per round (round 0 a warm-up, left out), so that all see the
# same machine load. Outputs are removed before each run: every tool writes a new file.
kernel_snap=$("$cf" store resolve store pi2-kernel -c beta -a arm64 | awk '{ print $3 }')
echo "== $runs rounds (+1 warm-up): build-image, cp, cp --sparse=never, genimage, build-image phases, unsquashfs"
for ((run = 0; run <= runs; run++)); do
    rm -f build.img copy.img copy-full.img
    sample build build build.img
    # GNU cp copies holes as holes (like our sparse image) and would share blocks on a
    # file system with reflinks: --reflink=never makes it copy the bytes.
    sample cp cp --reflink=never build.img copy.img
    # Every byte of the image, holes written out as zeros: the floor for a non-sparse image.
    sample cp_full cp --reflink=never --sparse=never build.img copy-full.img
    rm -rf genimage-out genimage-tmp
    sample genimage genimage_run
    phases
    # What build-image runs to unpack the kernel snap (xz squashfs), on its own.
    rm -rf unsquashed
    sample unsquashfs unsquashfs -f -no-xattrs -quiet -no-progress -d unsquashed "$kernel_snap"
done
cmp -s build.img reference.img || echo "note: build-image's output differs between runs (no SOURCE_DATE_EPOCH)"

build_med=$(median build)
build_min=$(minimum build)
cp_med=$(median cp)
cp_full_med=$(median cp_full)
gen_med=$(median genimage)
r_cp=$(calc "$build_med / $cp_med" 1)
r_cp_full=$(calc "$build_med / $cp_full_med" 1)
r_gen=$(calc "$build_med / $gen_med" 2)
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "met" : "MISSED" }'; }
allocated=$(du -k build.img | awk '{ print $1 }')

echo
echo "== build-image phases (median ms of $runs runs on a pseudo-terminal, from its progress lines)"
awk -F'\t' '$1 > 0 && !seen[$2]++ { print $2 }' times/phases | while IFS= read -r step; do
    awk -F'\t' -v s="$step" '$1 > 0 && $2 == s { print $3 }' times/phases | sort -n |
        awk -v s="$step" '{ a[NR] = $1 } END { printf "%-35s %8.1f\n", s, (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
done
awk -F'\t' '$1 > 0 { t[$1] += $3 } END { for (r in t) print t[r] }' times/phases | sort -n |
    awk '{ a[NR] = $1 } END { printf "%-35s %8.1f\n", "total on the pseudo-terminal", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
printf '%-35s %8s\n' "unsquashfs of the kernel snap alone" "$(median unsquashfs)"
echo "(\"resolving snaps\" includes unpacking the gadget and kernel snaps; \"writing the image\" the FAT, mke2fs, debugfs and fsync)"

cat <<EOF

== results ($runs rounds; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ))
image: $image_size bytes ($((image_size >> 20)) MiB), $((allocated >> 10)) MiB allocated (sparse); system-boot $((boot_size >> 20)) MiB FAT32 at $boot_start, writable $((data_size >> 20)) MiB ext4 at $data_start
EOF
echo
row() { printf '| %-46s | %9s | %9s | %18s | %-14s |\n' "$@"; }
row measurement "median ms" "min ms" "build-image / this" target
row "$(printf -- '-%.0s' {1..46})" --------- --------- ------------------ --------------
row "coreforge build-image -c beta (pi3 arm64)" "$build_med" "$build_min" 1 ""
row "cp of the image (holes kept)" "$cp_med" "$(minimum cp)" "${r_cp}x" "<=3x: $(verdict "$r_cp" 3)"
row "cp --sparse=never of the image (every byte)" "$cp_full_med" "$(minimum cp_full)" "${r_cp_full}x" "<=3x: $(verdict "$r_cp_full" 3)"
row "genimage, same layout from the staged trees" "$gen_med" "$(minimum genimage)" "${r_gen}x" "<1x: $(verdict "$r_gen" 0.999)"
cat <<EOF

genimage gets the staged trees ready made; build-image also verifies the model, unpacks the
gadget and kernel snaps, writes the seed and builds the initramfs (see the phases above).
EOF
