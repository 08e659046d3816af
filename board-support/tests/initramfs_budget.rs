//! Every board's initramfs, as `build-image` makes it (the agent, the board's module closure
//! from the pinned Debian kernel, zstd), stays within its 4 MiB budget: it is loaded by the
//! firmware or QEMU before anything runs, and every module added to a board's list costs here.
//! Needs the pinned kernels (cross/fetch-kernels.sh); the agent is stood in for by 2 MiB, its
//! size budget (agent/README.md), so the check does not wait for a cross build.

use std::path::PathBuf;

use coreforge_boards::{Arch, Board};
use coreforge_initramfs::{Compression, InitramfsBuilder};

/// The initramfs budget (compressed, as written to the boot partition).
const BUDGET: usize = 4 << 20;
/// The agent's own size budget (stripped, with TLS and HTTP).
const AGENT_BUDGET: usize = 2 << 20;
/// A generous bundle of TLS roots (Debian's ca-certificates.crt is about 220 KB).
const TLS_ROOTS_LEN: usize = 256 << 10;

fn modules_dir(arch: Arch) -> PathBuf {
    let cache = match std::env::var_os("COREFORGE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/coreforge")
        }
    };
    let dir = cache
        .join("kernels")
        .join(arch.debian_name())
        .join("modules");
    assert!(
        dir.is_dir(),
        "{}: no kernel modules; run cross/fetch-kernels.sh",
        dir.display()
    );
    dir
}

/// Bytes that compress about as badly as a stripped binary or base64 does.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn every_boards_initramfs_fits_in_4_mib() {
    for board in Board::all() {
        let mut agent = b"\x7fELF".to_vec();
        agent.extend(incompressible(AGENT_BUDGET - 4));
        let image = InitramfsBuilder::new(agent)
            .modules(&modules_dir(board.arch), board.modules)
            .unwrap()
            .tls_roots(incompressible(TLS_ROOTS_LEN))
            .build(Compression::Zstd)
            .unwrap();
        eprintln!(
            "{}: {} modules, {} bytes ({} uncompressed)",
            board.id(),
            image.modules.len(),
            image.bytes.len(),
            image.uncompressed_len
        );
        assert!(
            image.bytes.len() <= BUDGET,
            "{}: initramfs is {} bytes, over the {BUDGET}-byte budget",
            board.id(),
            image.bytes.len()
        );
    }
}

#[test]
fn virt_loads_the_framebuffer_stack() {
    for arch in Arch::ALL {
        let virt = Board::by_name("qemu-virt", arch).unwrap();
        let image = InitramfsBuilder::new(b"\x7fELF".to_vec())
            .modules(&modules_dir(arch), virt.modules)
            .unwrap()
            .build(Compression::Zstd)
            .unwrap();
        for want in [
            "virtio_pci",
            "drm",
            "drm_kms_helper",
            "virtio_gpu",
            "virtio_net",
        ] {
            assert!(
                image.modules.iter().any(|m| m.replace('-', "_") == want),
                "{arch}: {want} missing from {:?}",
                image.modules
            );
        }
    }
}
