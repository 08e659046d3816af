//! Shared helpers for the integration tests: the pinned kernels, the cross-built agent,
//! initramfs and test-disk assembly, and QEMU runs with a captured serial console.
//!
//! Everything the boots need comes from `cross/setup.sh`; when something is missing the
//! helpers fail with a message saying so, never skip.

mod artifacts;
mod console;
mod disk;
pub mod flows;
pub mod image;
mod kernel;
mod qemu;
pub mod screen;
pub mod serial;
pub mod ssh;
pub mod sso;
pub mod store;
mod text;

pub use artifacts::{agent_binary, initramfs, trivial_init, InitKind};
pub use console::unexpected_errors;
pub use disk::{make_boot_disk, DISK_SIZE};
pub use kernel::Kernel;
pub use qemu::{Boot, Prepared, Qemu};
pub use text::{agent_const, agent_text};

use std::path::PathBuf;

/// The workspace root (tests read `../shared/vectors` relative to it).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Where fetched kernels live (`COREFORGE_CACHE`, else `~/.cache/coreforge`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COREFORGE_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/coreforge")
}

/// Scratch space for one test's files, under the workspace target dir (kept after a
/// failure for inspection; overwritten by the next run).
pub fn scratch_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = workspace_root().join("target/coreforge-tests").join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The snapd model the boot disks carry, read in place from the shared vectors.
pub fn test_model() -> anyhow::Result<Vec<u8>> {
    let path = workspace_root().join("../shared/vectors/snapd/models/developer1-pc.model");
    std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

/// The seed's `assertions/model-etc` for [`test_model`]: the chain from developer1's key to
/// the testrootorg root in [`trusted_roots`] (store key, brand account, brand key), one
/// blank line between assertions as the image builder writes it.
pub fn test_model_etc() -> anyhow::Result<Vec<u8>> {
    let vectors = workspace_root().join("../shared/vectors/snapd");
    let mut out = Vec::new();
    for f in [
        "roots/testrootorg-store.account-key",
        "developer1.account",
        "developer1.account-key",
    ] {
        let path = vectors.join(f);
        if !out.is_empty() {
            out.extend_from_slice(b"\n\n");
        }
        out.extend(
            std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        );
    }
    Ok(out)
}

/// A header's value in an assertion's text (`brand-id`, `model`), for building expected lines.
pub fn header_value(assertion: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(assertion);
    let prefix = format!("{name}: ");
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

/// The trusted root assertions put in every test initramfs.
pub fn trusted_roots() -> Vec<PathBuf> {
    let roots = workspace_root().join("../shared/vectors/snapd/roots");
    [
        "canonical-root.account-key",
        "canonical.account",
        "testrootorg-root.account-key",
        "testrootorg.account",
    ]
    .iter()
    .map(|f| roots.join(f))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_come_from_the_header_block_only() {
        let text = b"type: model\nbrand-id: b1\nmodel: m1\n\nmodel: not-a-header\n\nSIG";
        assert_eq!(header_value(text, "brand-id").as_deref(), Some("b1"));
        assert_eq!(header_value(text, "model").as_deref(), Some("m1"));
        assert_eq!(header_value(text, "series"), None);
    }

    #[test]
    fn the_shared_model_has_brand_and_model() {
        let model = test_model().unwrap();
        assert!(header_value(&model, "brand-id").is_some());
        assert!(header_value(&model, "model").is_some());
    }
}
