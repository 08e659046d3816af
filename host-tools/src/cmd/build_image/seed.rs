//! snapd's UC20 seed layout on the boot partition: `snaps/`, and `systems/<label>/` with the
//! model and the assertions that vouch for it and for every seeded snap.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use anyhow::{Context, Result};
use coreforge_assertions::{Assertion, Model, Timestamp};

use super::resolve::SeedSnap;
use super::trust::Trust;
use crate::store::Store;

/// Writes the seed into the staged boot file system: each snap copied (and hashed while
/// copied) and vouched for by the store's verified assertions.
pub(super) fn write_seed(
    boot: &Path,
    label: &str,
    trust: &mut Trust,
    model: &Model,
    snaps: &[SeedSnap],
    store: &dyn Store,
) -> Result<()> {
    let system = boot.join("systems").join(label);
    let assertions = system.join("assertions");
    fs::create_dir_all(&assertions)?;
    fs::create_dir_all(boot.join("snaps"))?;
    fs::write(system.join("model"), &trust.model_bytes)?;

    let mut model_etc = Vec::new();
    for a in &trust.brand_chain {
        append(&mut model_etc, a);
    }
    fs::write(assertions.join("model-etc"), model_etc)?;

    let mut snap_assertions = Vec::new();
    let mut written: Vec<Assertion> = Vec::new();
    for s in snaps {
        let dest = boot.join("snaps").join(s.file_name());
        let (digest, size) = copy_hashing(&s.path, &dest)
            .with_context(|| format!("cannot copy {} into the seed", s.path.display()))?;
        if let Some(r) = &s.resolved {
            for a in trust.vouch(model, s, r, store, &digest, size)? {
                if !written.iter().any(|w| w.encode() == a.encode()) {
                    append(&mut snap_assertions, &a);
                    written.push(a);
                }
            }
        }
    }
    fs::write(assertions.join("snaps"), snap_assertions)?;
    Ok(())
}

/// Copies `from` to `to`, returning the SHA3-384 (unpadded base64url) and size of the
/// bytes written: what is checked is what the seed holds.
fn copy_hashing(from: &Path, to: &Path) -> io::Result<(String, u64)> {
    crate::snap::digest_copy(File::open(from)?, File::create(to)?)
}

/// Appends `a` to an assertion stream (snapd separates them with a blank line).
pub(super) fn append(stream: &mut Vec<u8>, a: &Assertion) {
    if !stream.is_empty() {
        stream.extend_from_slice(b"\n\n");
    }
    stream.extend_from_slice(a.encode());
}

/// The seed's system label: the build date.
pub(super) fn seed_label(built: Timestamp) -> String {
    built.to_string()[..10].replace('-', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_labels_follow_the_build_time() {
        assert_eq!(seed_label(Timestamp::from_unix(1_764_028_800)), "20251125");
    }

    #[test]
    fn copies_hash_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"snap bytes").unwrap();
        let (digest, size) = copy_hashing(&a, &b).unwrap();
        assert_eq!(size, 10);
        assert_eq!(digest, coreforge_assertions::sha3_384(b"snap bytes"));
        assert_eq!(fs::read(&b).unwrap(), b"snap bytes");
    }
}
