#!/usr/bin/env bash
# The main job, as a brand would do it: make a signing key, set up a local store, register
# the key, upload and release the board snaps and the brand's own snap (examples/hello) to
# beta, sign a pi3 model, build the image with `coreforge build-image -c beta --extra-snaps
# hello` (with a bmap), flash it to a file standing in for an SD card, and boot the image
# under QEMU with the serial console here. The device hands over to Debian (systemd,
# OpenSSH, sudo) with the snaps mounted and hello's daemon running.
#
#   cross/demo.sh [arm64|armhf|virt]   (default arm64: a pi3 image on QEMU raspi3b, with a USB
#                                      network, so `ssh -p 2222 USER@127.0.0.1` logs in once
#                                      console-conf has created the account; armhf boots on
#                                      raspi2b, without a network; virt: a qemu-virt arm64 image
#                                      on QEMU virt, with a network)
#
# Everything goes to ${COREFORGE_DEMO:-demo/} (ignored by git), made anew each run. The key's
# passphrase is read from demo/passphrase so the run needs no typing; on a terminal the boot
# is interactive (Ctrl-A X quits QEMU): answer console-conf on the serial console. Elsewhere it
# stops once the agent has verified the model and the seed and asks to configure. Run
# cross/setup.sh first.
set -euo pipefail

board="${1:-arm64}"
gadget=pi3 arch="$board" boot_args=()
case "$board" in
    arm64) machine=raspi3b boot_args=(--ssh-port 2222) ;;
    armhf) machine=raspi2b ;;
    virt) gadget=qemu-virt arch=arm64 machine=virt boot_args=(--ssh-port 2222) ;;
    *) echo "usage: $0 [arm64|armhf|virt]" >&2; exit 2 ;;
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
for name in "$gadget" pi2-kernel core; do
    file="$(ls "$snaps/${name}_"*"_$arch.snap")"
    rev="$("$cf" store upload store "$file" | awk '{print $2}')"
    "$cf" store release store "$name" "$rev" beta
done

step "coreforge pack examples/hello (a command app and a daemon), uploaded and released to beta"
"$cf" pack "$root/examples/hello" -o hello.snap
rev="$("$cf" store upload store hello.snap | awk '{print $2}')"
"$cf" store release store hello "$rev" beta

step "coreforge sign of $gadget-model.json, then coreforge verify"
cat >"$gadget-model.json" <<EOF
{
    "type": "model",
    "authority-id": "acme",
    "series": "16",
    "brand-id": "acme",
    "model": "$gadget",
    "architecture": "$arch",
    "gadget": "$gadget",
    "kernel": "pi2-kernel",
    "timestamp": "2026-01-01T00:00:00+00:00"
}
EOF
"$cf" sign -k default --update-timestamp "${pass[@]}" "$gadget-model.json" >"$gadget.model"
"$cf" verify --trusted store/root.assertions keys/default.chain "$gadget.model"

image="$gadget-test.img"
step "coreforge build-image -c beta --extra-snaps hello -o $image --bmap $gadget-test.bmap $gadget.model"
"$cf" build-image -c beta --store store --extra-snaps hello -o "$image" --bmap "$gadget-test.bmap" "$gadget.model"
step "coreforge flash --bmap $gadget-test.bmap $image card.img (a file standing in for /dev/sdX)"
"$cf" flash --force --bmap "$gadget-test.bmap" "$image" card.img

step "coreforge boot $image --machine $machine ${boot_args[*]}"
if [ -t 0 ] && [ -t 1 ]; then
    echo "The agent verifies the model and the seed, then asks to configure on this console:" >&2
    echo "press Enter, choose the network, then give your account: gh:YOU, lp:YOU, a store" >&2
    echo "e-mail, or paste your SSH public key. It shows the login details and boots the OS." >&2
    if [ "${#boot_args[@]}" -gt 0 ]; then
        echo "Then, from another terminal: ssh -p 2222 USER@127.0.0.1, and there: sudo passwd USER" >&2
        echo "(for a console login), snap list, snap services, hello.env" >&2
    fi
    exec "$cf" boot "$image" --machine "$machine" "${boot_args[@]}"
fi
"$cf" boot "$image" --machine "$machine" "${boot_args[@]}" --timeout 240 \
    --expect "model verified: brand=acme model=$gadget" --expect "seed verified:" \
    --expect "Press Enter to configure"
