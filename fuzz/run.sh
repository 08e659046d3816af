#!/usr/bin/env bash
# Fuzzes the assertion decoder for people (not run in CI):
#   fuzz/run.sh [SECONDS] [TARGET]   (default 300 s, target decode; or preseed: the
#                                     preseed file and system-user streams the agent reads)
# Installs cargo-fuzz if missing, seeds the corpus from snapd's vectors
# (../shared/vectors/snapd, read in place, never committed here) and the kept
# regression inputs, then runs the `decode` target. Crashes land in
# fuzz/artifacts/<target>/: copy each into assertions/tests/fuzz-regressions/.
# There is no nightly toolchain here: RUSTC_BOOTSTRAP=1 lets stable rustc take
# the sanitizer flags cargo-fuzz passes. The decoder is safe Rust, so what
# we hunt is panics; AddressSanitizer (FUZZ_SANITIZER=address) would slow the
# RSA checks of every decoded model to a few runs a second, so it is off by default;
# so is comparison tracing, which made the RSA arithmetic 5x slower (the
# dictionary, decode.dict, gives the fuzzer the format's tokens instead).
set -euo pipefail

seconds=${1:-300}
target=${2:-decode}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
vectors=$root/../shared/vectors/snapd

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Seeds are rebuilt on every run; libFuzzer adds what it finds to corpus/decode.
seeds=$here/seeds/$target
corpus=$here/corpus/$target
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus"
stream=()
while IFS= read -r f; do
    name=$(echo "${f#"$vectors"/}" | tr / _)
    cp "$f" "$seeds/$name"
    stream+=("$f")
done < <(find "$vectors" -type f ! -name '*.json' ! -name '*.md' ! -name '*.asc' | sort)
# All of them as one stream, joined the way snapd writes streams.
for f in "${stream[@]}"; do cat "$f"; printf '\n\n'; done > "$seeds/all.stream"
for f in "$root"/assertions/tests/fuzz-regressions/*; do
    [ "$(basename "$f")" = README.md ] || cp "$f" "$seeds/regression_$(basename "$f")"
done
if [ "$target" = preseed ]; then
    printf '%s' '{"network": {"interface": "eth0", "method": "dhcp"}, "identity": "gh:someone"}' > "$seeds/preseed-dhcp.json"
    printf '%s' '{"network": {"interface": "eth0", "method": "static", "address": "192.168.1.20/24", "gateway": "192.168.1.1", "dns": ["1.1.1.1"]}, "wifi": {"interface": "wlan0", "ssid": "home", "passphrase": "correct horse"}, "identity": {"username": "ops", "ssh-keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7PaMTzm4Q5o6dmwFT3NyP4o8bVPOgHVBgHK2nHwYn ops@x"]}}' > "$seeds/preseed-static-wifi.json"
fi
echo "seeds: $(find "$seeds" -type f | wc -l) files in $seeds"

cd "$here"
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" --no-trace-compares "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -max_len=16384 -dict="$here/decode.dict" -print_final_stats=1
