#!/usr/bin/env bash
# Fuzzes the assertion decoder for people (not run in CI):
#   fuzz/run.sh [SECONDS]      (default 300)
# Installs cargo-fuzz if missing, seeds the corpus from snapd's vectors
# (../shared/vectors/snapd, read in place, never committed here) and the kept
# regression inputs, then runs the `decode` target. Crashes land in
# fuzz/artifacts/decode/: copy each into assertions/tests/fuzz-regressions/.
# There is no nightly toolchain here: RUSTC_BOOTSTRAP=1 lets stable rustc take
# the sanitizer flags cargo-fuzz passes. The decoder is safe Rust, so what
# we hunt is panics; AddressSanitizer (FUZZ_SANITIZER=address) would slow the
# RSA checks of every decoded model to a few runs a second, so it is off by default;
# so is comparison tracing, which made the RSA arithmetic 5x slower (the
# dictionary, decode.dict, gives the fuzzer the format's tokens instead).
set -euo pipefail

seconds=${1:-300}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
vectors=$root/../shared/vectors/snapd

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Seeds are rebuilt on every run; libFuzzer adds what it finds to corpus/decode.
seeds=$here/seeds/decode
corpus=$here/corpus/decode
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
echo "seeds: $(find "$seeds" -type f | wc -l) files in $seeds"

cd "$here"
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" --no-trace-compares decode "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -max_len=16384 -dict="$here/decode.dict" -print_final_stats=1
