//! snapd's UC20 seed layout on the boot partition: `snaps/`, and `systems/<label>/` with the
//! model and the assertions that vouch for it and for every seeded snap.

use std::fs;

use anyhow::{Context, Result};
use coreforge_assertions::{Assertion, Model, Timestamp};

use super::resolve::SeedSnap;
use super::trust::Trust;
use crate::image::{Source, Tree};
use crate::store::Store;

/// A seed snap's bytes, read once: what is hashed is what the seed holds.
pub(super) struct ReadSnap {
    bytes: Vec<u8>,
    /// SHA3-384, unpadded base64url (snap-revision's `snap-sha3-384`).
    digest: String,
}

/// Reads and hashes every snap of `snaps`, in order, the files side by side on the cores.
pub(super) fn read_snaps(snaps: &[SeedSnap]) -> Result<Vec<ReadSnap>> {
    std::thread::scope(|scope| {
        let jobs: Vec<_> = snaps
            .iter()
            .map(|s| {
                scope.spawn(move || -> Result<ReadSnap> {
                    let bytes = fs::read(&s.path)
                        .with_context(|| format!("cannot read {}", s.path.display()))?;
                    let digest = coreforge_assertions::sha3_384(&bytes);
                    Ok(ReadSnap { bytes, digest })
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .map_err(|_| anyhow::anyhow!("reading a snap panicked"))?
            })
            .collect()
    })
}

/// Writes the seed into the boot file system's tree: each snap's bytes as read and hashed
/// ([`read_snaps`], in the order of `snaps`), vouched for by the store's verified assertions.
pub(super) fn write_seed(
    boot: &mut Tree,
    label: &str,
    trust: &mut Trust,
    model: &Model,
    snaps: &[SeedSnap],
    read: Vec<ReadSnap>,
    store: &dyn Store,
) -> Result<()> {
    let system = format!("systems/{label}");
    boot.dir("snaps");
    boot.file(
        &format!("{system}/model"),
        Source::Bytes(trust.model_bytes.clone()),
    );

    let mut model_etc = Vec::new();
    for a in &trust.brand_chain {
        append(&mut model_etc, a);
    }
    boot.file(
        &format!("{system}/assertions/model-etc"),
        Source::Bytes(model_etc),
    );

    let mut snap_assertions = Vec::new();
    let mut written: Vec<Assertion> = Vec::new();
    for (s, read) in snaps.iter().zip(read) {
        let size = read.bytes.len() as u64;
        if let Some(r) = &s.resolved {
            for a in trust.vouch(model, s, r, store, &read.digest, size)? {
                if !written.iter().any(|w| w.encode() == a.encode()) {
                    append(&mut snap_assertions, &a);
                    written.push(a);
                }
            }
        }
        boot.file(
            &format!("snaps/{}", s.file_name()),
            Source::Bytes(read.bytes),
        );
    }
    boot.file(
        &format!("{system}/assertions/snaps"),
        Source::Bytes(snap_assertions),
    );
    Ok(())
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
}
