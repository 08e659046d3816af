#!/usr/bin/env bash
# coreforge's trust core against snapd's tools, like for like, on this machine:
#   (a) key generation: gpg RSA-4096 `--batch --gen-key` vs `coreforge create-key`
#   (b) signing a model: `snap sign -k NAME` vs `coreforge sign -k NAME`
#   (c) verifying a model through its chain, in process (assertions/benches/verify.rs)
# Usage: benches/trust-core.sh [RUNS]   (default 10 runs per CLI measurement)
# Needs gpg and snap (snapd); cross/setup.sh installs both. See benches/README.md.
set -euo pipefail
export LC_ALL=C

runs=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
vectors=$root/../shared/vectors/snapd
cd "$root"

for tool in gpg snap cargo awk; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (cross/setup.sh installs it)" >&2; exit 1; }
done

echo "== building (release)"
cargo build --release --quiet -p coreforge
coreforge=$root/target/release/coreforge

work=$(mktemp -d)
cleanup() {
    gpgconf --homedir "$work/gnupg" --kill all 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 700 "$work/gnupg"
echo "bench passphrase" > "$work/passphrase"
# An empty passphrase: an unprotected key, like gpg's %no-protection (the like-for-like run).
: > "$work/no-passphrase"
# The model both signers sign: snapd's developer1-pc-18 with its authority.
sed 's/^{/{\n    "authority-id": "developer1",/' "$vectors/models/developer1-pc-18.model.json" > "$work/model.json"

# sample NAME CMD...: runs CMD once and appends "WALL CPU" in ms to the samples
# of NAME; CPU is the user+sys time of CMD and its children (gpg-agent, which
# does gpg's real work, is not a child: compare with snapd by wall time only).
# $run is the round number, for commands that need a fresh name.
mkdir "$work/times"
sample() {
    local name=$1 t TIMEFORMAT='%3R %3U %3S'
    shift
    t=$({ time "$@" >/dev/null 2>"$work/stderr"; } 2>&1) ||
        { echo "error: $* failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    echo "$t" | awk '{ printf "%.3f %.3f\n", $1 * 1000, ($2 + $3) * 1000 }' >> "$work/times/$name"
}
# The key store's KDF alone (assertions/benches/verify.rs): its in-process wall
# time, and the CPU time of a process that starts, reads the vectors and runs it once.
sample_kdf() {
    local t TIMEFORMAT='%3U %3S'
    t=$({ time "$verify_bench" --kdf "$kdf" --only kdf_argon2id --runs 1 >"$work/kdf.out" 2>"$work/stderr"; } 2>&1) ||
        { echo "error: the KDF bench failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    echo "$(awk '{ print $2 }' "$work/kdf.out") $t" |
        awk '{ printf "%.3f %.3f\n", $1 / 1000, ($2 + $3) * 1000 }' >> "$work/times/kdf"
}
# median NAME [COLUMN]: the median of NAME's samples (column 1 wall, 2 CPU),
# the warm-up (first) one left out.
median() {
    tail -n +2 "$work/times/$1" | awk -v c="${2:-1}" '{ print $c }' | sort -n |
        awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Arithmetic on the medians (floats).
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

gpg_gen() {
    gpg --homedir "$work/gnupg" --batch --gen-key <<EOF
Key-Type: RSA
Key-Length: 4096
Name-Real: gen-$run
%no-protection
%commit
EOF
}
coreforge_gen() {
    "$coreforge" --keys-dir "$work/keys-gen" create-key "gen-$run" --passphrase-file "$work/passphrase"
}
# snap prefers gpg1 when it is installed (it cannot read gpg2's key ring): point it at gpg.
snap_sign() {
    SNAP_GNUPG_HOME=$work/gnupg SNAP_GNUPG_CMD=$(command -v gpg) snap sign -k signer < "$work/model.json"
}
coreforge_sign() {
    "$coreforge" --keys-dir "$work/keys" sign -k signer --passphrase-file "$work/passphrase" < "$work/model.json"
}
coreforge_keys() { "$coreforge" --keys-dir "$work/keys" keys; }
# Like for like with gpg's %no-protection keys: unprotected coreforge keys.
coreforge_gen_open() {
    "$coreforge" --keys-dir "$work/keys-gen-open" create-key "gen-$run" --passphrase-file "$work/no-passphrase" 2>/dev/null
}
coreforge_sign_open() {
    "$coreforge" --keys-dir "$work/keys-open" sign -k signer --passphrase-file "$work/no-passphrase" < "$work/model.json"
}

# The signing keys (b) uses: an unprotected RSA-4096 key in gpg (what
# `snap create-key` makes, minus the prompts), an Ed25519 key in coreforge's store.
gpg --homedir "$work/gnupg" --batch --gen-key <<EOF 2>/dev/null
Key-Type: RSA
Key-Length: 4096
Name-Real: signer
%no-protection
%commit
EOF
"$coreforge" --keys-dir "$work/keys" create-key signer --account developer1 \
    --passphrase-file "$work/passphrase" >/dev/null
"$coreforge" --keys-dir "$work/keys-open" create-key signer --account developer1 \
    --passphrase-file "$work/no-passphrase" >/dev/null 2>&1
# Both signatures must be real before timing them.
snap_sign > "$work/snap.model"
coreforge_sign > "$work/cf.model"
grep -q '^sign-key-sha3-384: ' "$work/snap.model" || { echo "error: snap sign made no assertion" >&2; exit 1; }
grep -q '^sign-key-sha3-384: ' "$work/cf.model" || { echo "error: coreforge sign made no assertion" >&2; exit 1; }
# The KDF parameters the key file records (memory KiB, passes, lanes).
kdf=$(for field in memory-kib iterations parallelism; do
    grep -o "\"$field\": *[0-9]*" "$work/keys/signer.key" | grep -o '[0-9]*$'
done | paste -sd,)
verify_bench=$(cargo bench -q -p coreforge-assertions --bench verify --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -1)
[ -x "$verify_bench" ] || { echo "error: cannot find the built assertions/benches/verify.rs" >&2; exit 1; }

# Interleaved, one run of each per round, so that all see the same machine load.
echo "== (a) key generation and (b) signing, $runs rounds (+1 warm-up)"
for ((run = 0; run <= runs; run++)); do
    sample gpg_keygen gpg_gen
    sample cf_create coreforge_gen
    sample snap_sign snap_sign
    sample cf_sign coreforge_sign
    sample cf_create_open coreforge_gen_open
    sample cf_sign_open coreforge_sign_open
    sample cf_baseline coreforge_keys
    sample_kdf
done
gpg_keygen=$(median gpg_keygen)
cf_create=$(median cf_create)
snap_sign_ms=$(median snap_sign)
cf_sign=$(median cf_sign)
cf_create_open=$(median cf_create_open)
cf_sign_open=$(median cf_sign_open)
kdf_ms=$(median kdf)
cf_create_cpu=$(median cf_create 2)
cf_sign_cpu=$(median cf_sign 2)
cf_baseline_cpu=$(median cf_baseline 2)
kdf_cpu=$(median kdf 2)

echo "== (c) in process: verification, key generation, signing, the key store's KDF"
bench_out=$("$verify_bench" 2>"$work/stderr") ||
    { echo "error: the in-process bench failed:" >&2; cat "$work/stderr" >&2; exit 1; }
echo "$bench_out"
in_process() { echo "$bench_out" | awk -v n="$1" '$1 == n { print $2 }'; }
verify_rsa=$(in_process verify_model_rsa4096_chain)
verify_ed=$(in_process verify_model_ed25519_chain)
sig_rsa=$(in_process one_signature_rsa4096)
sig_ed=$(in_process one_signature_ed25519)
keygen_us=$(in_process keygen_ed25519)
sign_us=$(in_process sign_model_json_ed25519)

# Ratios: how many times faster ours is (>1 means faster).
ratio() { calc "$1 / $2" 1; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "met" : "MISSED" }'; }
below() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "met" : "MISSED" }'; }
# Without the KDF: CPU time of the CLI minus that of a process running one KDF
# (both pay a process start), which the load of other work hardly moves.
cf_create_nokdf=$(calc "$cf_create_cpu - $kdf_cpu + $cf_baseline_cpu")
cf_sign_nokdf=$(calc "$cf_sign_cpu - $kdf_cpu + $cf_baseline_cpu")
r_gen_cli=$(ratio "$gpg_keygen" "$cf_create")
r_gen_nokdf=$(ratio "$gpg_keygen" "$cf_create_nokdf")
r_gen_core=$(ratio "$gpg_keygen" "$(calc "$keygen_us / 1000" 4)")
r_sign_cli=$(ratio "$snap_sign_ms" "$cf_sign")
r_gen_open=$(ratio "$gpg_keygen" "$cf_create_open")
r_sign_open=$(ratio "$snap_sign_ms" "$cf_sign_open")
r_sign_nokdf=$(ratio "$snap_sign_ms" "$cf_sign_nokdf")
r_sign_core=$(ratio "$snap_sign_ms" "$(calc "$sign_us / 1000" 4)")

echo
echo "== spread of the CLI runs and the KDF (ms; the load of other work on the machine shows here)"
for name in gpg_keygen cf_create cf_create_open snap_sign cf_sign cf_sign_open cf_baseline kdf; do
    tail -n +2 "$work/times/$name" | sort -n |
        awk -v n="$name" '{ a[NR] = $1; c[NR] = $2 } END {
            m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            printf "%-12s wall min %9.2f  median %9.2f  max %9.2f\n", n, a[1], m, a[NR] }'
done

cat <<EOF

== results (medians; $runs CLI runs each; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ))
Argon2id KDF of the key store ($kdf KiB,passes,lanes): $kdf_ms ms wall per unlock or create ($kdf_cpu ms CPU in a process of its own)
coreforge CPU time: create-key $cf_create_cpu ms, sign $cf_sign_cpu ms, process baseline (\`coreforge keys\`, no KDF) $cf_baseline_cpu ms
"CLI minus KDF" is CLI CPU time - KDF process CPU time + baseline CPU time; other rows are wall times.

| measurement                              | snapd side       | coreforge                 | ours faster by | target       |
|------------------------------------------|------------------|---------------------------|----------------|--------------|
| (a) key generation, CLI, both unprotected (like for like) | gpg $gpg_keygen ms | create-key $cf_create_open ms | ${r_gen_open}x | >=100x: $(verdict "$r_gen_open" 100) |
| (a) key generation, CLI, ours protected  | gpg $gpg_keygen ms | create-key $cf_create ms  | ${r_gen_cli}x | (KDF cost) |
| (a) key generation, CLI minus KDF        | gpg $gpg_keygen ms | $cf_create_nokdf ms       | ${r_gen_nokdf}x | >=100x: $(verdict "$r_gen_nokdf" 100) |
| (a) key generation, in process           | gpg $gpg_keygen ms | $keygen_us µs             | ${r_gen_core}x | |
| (b) sign a model, CLI, both unprotected (like for like) | snap sign $snap_sign_ms ms | sign $cf_sign_open ms | ${r_sign_open}x | >=10x: $(verdict "$r_sign_open" 10) |
| (b) sign a model, CLI, ours protected    | snap sign $snap_sign_ms ms | sign $cf_sign ms | ${r_sign_cli}x | (KDF cost) |
| (b) sign a model, CLI minus KDF          | snap sign $snap_sign_ms ms | $cf_sign_nokdf ms | ${r_sign_nokdf}x | >=10x: $(verdict "$r_sign_nokdf" 10) |
| (b) sign a model, in process (JSON in)   | snap sign $snap_sign_ms ms | $sign_us µs      | ${r_sign_core}x | |
| (c) verify model chain, RSA-4096 (snapd vectors) | - | $verify_rsa µs | - | <1000 µs: $(below "$verify_rsa" 1000) |
| (c) verify model chain, Ed25519          | -                | $verify_ed µs             | -              | <1000 µs: $(below "$verify_ed" 1000) |
| (c) one signature check, RSA-4096 / Ed25519 | -             | $sig_rsa / $sig_ed µs     | -              | |
EOF
