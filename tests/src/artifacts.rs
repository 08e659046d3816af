//! The programs a test boot runs as PID 1, and the initramfs around them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use coreforge_assertions::{sha3_384, Assertion, DevicePin, Model, Timestamp};
use coreforge_boards::{Arch, Board};
use coreforge_initramfs::{Compression, Initramfs, InitramfsBuilder, DEVICE_PIN};

use crate::Kernel;

/// What `/init` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    /// The real agent with the board's modules and the trusted roots.
    Agent,
    /// `tests/trivial-init/init.c`: prints one line and powers off (timing baseline).
    Trivial,
}

/// The static agent for `arch`, built by `cross/build-agent.sh all` once per test process
/// (cargo makes later runs cheap).
pub fn agent_binary(arch: Arch) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<BTreeMap<String, PathBuf>, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| build_agents().map_err(|e| format!("{e:#}")));
    let paths = built.as_ref().map_err(|e| anyhow!("{e}"))?;
    paths
        .get(arch.rust_target())
        .cloned()
        .ok_or_else(|| anyhow!("cross/build-agent.sh printed no {arch} binary"))
}

fn build_agents() -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let script = crate::workspace_root().join("cross/build-agent.sh");
    let out = Command::new(&script)
        .arg("all")
        // The outer cargo's jobserver and flags are not for the cross build.
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}); run cross/setup.sh if the toolchain is missing:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut paths = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = PathBuf::from(line.trim());
        for arch in Arch::ALL {
            if line.contains(arch.rust_target()) {
                paths.insert(arch.rust_target().to_string(), path.clone());
            }
        }
    }
    Ok(paths)
}

/// The trivial init for `arch`, compiled with the cross gcc (static) once per test process.
pub fn trivial_init(arch: Arch) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let build = |a: Arch| compile_trivial_init(a).map_err(|e| format!("{e:#}"));
        Ok((build(Arch::Arm64)?, build(Arch::Armhf)?))
    });
    let (arm64, armhf) = built.as_ref().map_err(|e| anyhow!("{e}"))?;
    Ok(match arch {
        Arch::Arm64 => arm64.clone(),
        Arch::Armhf => armhf.clone(),
    })
}

fn compile_trivial_init(arch: Arch) -> anyhow::Result<PathBuf> {
    let source = crate::workspace_root().join("tests/trivial-init/init.c");
    let out = crate::scratch_dir("trivial-init")?.join(format!("init-{arch}"));
    let gcc = match arch {
        Arch::Arm64 => "aarch64-linux-gnu-gcc",
        Arch::Armhf => "arm-linux-gnueabihf-gcc",
    };
    let result = Command::new(gcc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg(&source)
        .output()
        .with_context(|| {
            format!("running {gcc}: run cross/setup.sh to install the cross compilers")
        })?;
    if !result.status.success() {
        bail!(
            "{gcc} failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(out)
}

/// The seed label of the test model disks (`Boot::with_model_disk`).
pub const TEST_LABEL: &str = "20250101";

/// The device pin of a test initramfs: the test model under [`TEST_LABEL`], as
/// `coreforge build-image` would write it.
pub fn test_pin() -> anyhow::Result<DevicePin> {
    let bytes = crate::test_model()?;
    let model = Model::from_assertion(&Assertion::decode(&bytes)?)?;
    Ok(DevicePin {
        brand_id: model.brand_id,
        model: model.model,
        grade: model.grade,
        model_sha3_384: sha3_384(&bytes),
        seed_label: TEST_LABEL.into(),
        build_time: Timestamp::from_unix(1_735_689_600), // 2025-01-01
        preseed_sha3_384: None,
    })
}

/// Builds the initramfs for booting `board` with `init` into `out` (zstd).
pub fn initramfs(
    board: &Board,
    kernel: &Kernel,
    init: InitKind,
    out: &Path,
) -> anyhow::Result<Initramfs> {
    let builder = match init {
        InitKind::Agent => InitramfsBuilder::from_agent_file(&agent_binary(board.arch)?)?
            .modules(&kernel.modules_dir(), board.modules)?
            .trusted(&crate::trusted_roots())?
            .file(DEVICE_PIN, test_pin()?.encode().into_bytes(), 0o644),
        InitKind::Trivial => InitramfsBuilder::from_agent_file(&trivial_init(board.arch)?)?,
    };
    builder
        .mtime(0)
        .write(out, Compression::Zstd)
        .with_context(|| format!("writing {}", out.display()))
}
