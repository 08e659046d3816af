#!/usr/bin/env bash
# The main job, as a brand would do it: make a signing key, set up a local store, register
# the key, upload and release the board snaps to beta, sign a pi3 model, build the image with
# `coreforge build-image -c beta`, and boot it under QEMU with the serial console here.
#
#   cross/demo.sh [arm64|armhf]      (default arm64: QEMU raspi3b; armhf boots on raspi2b)
#
# Everything goes to ${COREFORGE_DEMO:-demo/} (ignored by git), made anew each run. The key's
# passphrase is read from demo/passphrase so the run needs no typing; on a terminal the boot
# is interactive (Ctrl-A X quits QEMU), elsewhere it stops once the agent has verified the
# model. Run cross/setup.sh first.
set -euo pipefail

arch="${1:-arm64}"
case "$arch" in
    arm64) machine=raspi3b ;;
    armhf) machine=raspi2b ;;
    *) echo "usage: $0 [arm64|armhf]" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
demo="${COREFORGE_DEMO:-$root/demo}"

step() { printf '\n== %s\n' "$*" >&2; }

step "building the agent, the board snaps and coreforge"
"$here/build-agent.sh" all >/dev/null
"$root/board-support/snaps/build.sh" "$arch" >/dev/null
cargo build --quiet --release -p coreforge --manifest-path "$root/Cargo.toml"
cf="$root/target/release/coreforge"
snaps="${COREFORGE_CACHE:-$HOME/.cache/coreforge}/snaps"

rm -rf "$demo"
mkdir -p "$demo"
cd "$demo"
export COREFORGE_KEYS="$demo/keys"
printf 'demo passphrase\n' >passphrase
pass=(--passphrase-file passphrase)

step "coreforge create-key (Ed25519, encrypted at rest) and coreforge keys"
"$cf" create-key default --account acme "${pass[@]}" >/dev/null
"$cf" keys

step "a local store; the brand's key registered with it"
"$cf" store init store
"$cf" register-key default --store store

step "uploading the board snaps and releasing them to beta"
for name in pi3 pi2-kernel core; do
    file="$(ls "$snaps/${name}_"*"_$arch.snap")"
    rev="$("$cf" store upload store "$file" | awk '{print $2}')"
    "$cf" store release store "$name" "$rev" beta
done

step "coreforge sign of pi3-model.json, then coreforge verify"
cat >pi3-model.json <<EOF
{
    "type": "model",
    "authority-id": "acme",
    "series": "16",
    "brand-id": "acme",
    "model": "pi3",
    "architecture": "$arch",
    "gadget": "pi3",
    "kernel": "pi2-kernel",
    "timestamp": "2026-01-01T00:00:00+00:00"
}
EOF
"$cf" sign -k default --update-timestamp "${pass[@]}" pi3-model.json >pi3.model
"$cf" verify --trusted store/root.assertions keys/default.chain pi3.model

step "coreforge build-image -c beta -o pi3-test.img pi3.model"
"$cf" build-image -c beta --store store -o pi3-test.img pi3.model

step "coreforge boot pi3-test.img --machine $machine"
if [ -t 0 ] && [ -t 1 ]; then
    exec "$cf" boot pi3-test.img --machine "$machine"
fi
"$cf" boot pi3-test.img --machine "$machine" --timeout 240 \
    --expect "model verified: brand=acme model=pi3" --expect "seed verified:"
