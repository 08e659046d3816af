//! Every board's initramfs, as `build-image` makes it (the agent, the board's module closure
//! from the pinned Debian kernel, zstd), stays within its 4 MiB budget: it is loaded by the
//! firmware or QEMU before anything runs, and every module added to a board's list costs here.
//! The agent in each image is the real one, cross-built by `cross/build-agent.sh` (cargo
//! makes the build cheap once another test or `cross/demo.sh` has run it), and its stripped
//! size is checked against its own 2 MiB budget (agent/README.md). Needs the pinned kernels
//! (cross/fetch-kernels.sh) and the cross toolchain (cross/setup.sh); fails, never skips,
//! without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use coreforge_boards::{Arch, Board};
use coreforge_initramfs::{Compression, InitramfsBuilder};

/// The initramfs budget (compressed, as written to the boot partition).
const BUDGET: usize = 4 << 20;
/// The agent's own size budget (stripped, with TLS and HTTP): 2,097,152 bytes.
const AGENT_BUDGET: u64 = 2 << 20;
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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("board-support is inside the workspace")
        .to_path_buf()
}

/// The stripped, static agent `cross/build-agent.sh all` builds for `arch` (run once per
/// test process).
fn agent(arch: Arch) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let script = workspace_root().join("cross/build-agent.sh");
        let out = Command::new(&script)
            .arg("all")
            // The outer cargo's jobserver and target folder are not for the cross build.
            .env_remove("CARGO_MAKEFLAGS")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}); run cross/setup.sh if the toolchain is missing:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| PathBuf::from(l.trim()))
            .collect()
    });
    built
        .iter()
        .find(|p| p.to_string_lossy().contains(arch.rust_target()))
        .unwrap_or_else(|| panic!("cross/build-agent.sh printed no {arch} binary: {built:?}"))
        .clone()
}

/// True when the ELF file has no `.symtab` section (what `strip` removes).
fn is_stripped(elf: &[u8]) -> bool {
    let class64 = elf.get(4) == Some(&2);
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |n, &x| (n << 8) | u64::from(x));
    let field = |at: usize, len: usize| le(&elf[at..at + len]) as usize;
    let (shoff, shentsize, shnum) = if class64 {
        (field(0x28, 8), field(0x3a, 2), field(0x3c, 2))
    } else {
        (field(0x20, 4), field(0x2e, 2), field(0x30, 2))
    };
    (0..shnum).all(|i| {
        let type_at = shoff + i * shentsize + 4;
        // SHT_SYMTAB = 2
        elf.get(type_at..type_at + 4).map(le) != Some(2)
    })
}

#[test]
fn the_cross_built_agent_is_stripped_and_within_its_2_mib_budget() {
    for arch in Arch::ALL {
        let path = agent(arch);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.starts_with(b"\x7fELF"),
            "{}: not an ELF",
            path.display()
        );
        assert!(
            is_stripped(&bytes),
            "{}: has a symbol table; the `agent` profile strips",
            path.display()
        );
        let len = bytes.len() as u64;
        eprintln!("{arch}: {} is {len} bytes", path.display());
        assert!(
            len <= AGENT_BUDGET,
            "{arch}: the agent is {len} bytes, {} over its {AGENT_BUDGET}-byte budget",
            len - AGENT_BUDGET
        );
    }
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
        let agent = agent(board.arch);
        let image = InitramfsBuilder::from_agent_file(&agent)
            .unwrap()
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
