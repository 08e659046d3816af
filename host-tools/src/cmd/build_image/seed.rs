//! snapd's UC20 seed layout on the boot partition: `snaps/`, and `systems/<label>/` with the
//! model and the assertions that vouch for it and for every seeded snap.

use std::fs;
use std::sync::{mpsc, Arc};

use anyhow::{Context, Result};
use coreforge_assertions::{Assertion, Model, Timestamp};

use super::resolve::SeedSnap;
use super::trust::Trust;
use crate::image::{Source, Tree};
use crate::store::Store;

/// Reads every snap of `snaps`, in order, the files side by side: each is read once, and
/// those bytes are both what the image holds and what is hashed, on a thread of its own as
/// soon as it is read (see [`Hashing`]).
pub(super) fn read_snaps(snaps: &[SeedSnap]) -> Result<(Vec<Arc<Vec<u8>>>, Hashing)> {
    let (tx, results) = mpsc::channel();
    let pending = snaps.iter().filter(|s| s.resolved.is_some()).count();
    let read = std::thread::scope(|scope| {
        let jobs: Vec<_> = snaps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let tx = tx.clone();
                scope.spawn(move || -> Result<Arc<Vec<u8>>> {
                    let bytes = Arc::new(
                        fs::read(&s.path)
                            .with_context(|| format!("cannot read {}", s.path.display()))?,
                    );
                    if s.resolved.is_some() {
                        let bytes = Arc::clone(&bytes);
                        std::thread::spawn(move || {
                            let _ = tx.send((i, coreforge_assertions::sha3_384(&bytes)));
                        });
                    }
                    Ok(bytes)
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .map_err(|_| anyhow::anyhow!("reading a snap panicked"))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok((read, Hashing { results, pending }))
}

/// The SHA3-384 of every seed snap the store vouches for, computed on threads of their own
/// while the image is made (hashing the largest snap is the longest single step of a build),
/// and compared with the digest the store recorded at upload, which the assertions were
/// checked against, before the image is kept ([`Hashing::check`]).
pub(super) struct Hashing {
    results: mpsc::Receiver<(usize, String)>,
    pending: usize,
}

impl Hashing {
    /// Waits for every hash; fails naming each snap whose bytes are not what the store
    /// recorded (a store file changed or damaged after its upload).
    pub(super) fn check(&self, snaps: &[SeedSnap]) -> std::result::Result<(), String> {
        let mut wrong = Vec::new();
        for _ in 0..self.pending {
            let (i, digest) = self
                .results
                .recv()
                .map_err(|_| "hashing the seed snaps stopped unexpectedly".to_string())?;
            let s = &snaps[i];
            if let Some(r) = s.resolved.as_ref().filter(|r| r.sha3_384 != digest) {
                wrong.push(format!(
                    "{} revision {} ({}): its SHA3-384 is {digest}, the store recorded {} at upload",
                    s.name,
                    r.revision,
                    s.path.display(),
                    r.sha3_384
                ));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the store's snap files are not what it vouches for: {}; the store is damaged \
                 or was changed by hand (upload the snaps again); nothing was written",
                wrong.join("; ")
            ))
        }
    }
}

/// Writes the seed into the boot file system's tree: each snap's bytes as read
/// ([`read_snaps`], in the order of `snaps`), vouched for by the store's verified assertions
/// for the digest the store recorded ([`Hashing`] checks the bytes against it).
pub(super) fn write_seed(
    boot: &mut Tree,
    label: &str,
    trust: &mut Trust,
    model: &Model,
    snaps: &[SeedSnap],
    read: Vec<Arc<Vec<u8>>>,
    store: &dyn Store,
) -> Result<()> {
    let system = format!("systems/{label}");
    boot.dir("snaps");
    boot.file(
        &format!("{system}/model"),
        Source::bytes(trust.model_bytes.clone()),
    );

    let mut model_etc = Vec::new();
    for a in &trust.brand_chain {
        append(&mut model_etc, a);
    }
    boot.file(
        &format!("{system}/assertions/model-etc"),
        Source::bytes(model_etc),
    );

    let mut snap_assertions = Vec::new();
    let mut written: Vec<Assertion> = Vec::new();
    for (s, bytes) in snaps.iter().zip(read) {
        let size = bytes.len() as u64;
        if let Some(r) = &s.resolved {
            for a in trust.vouch(model, s, r, store, &r.sha3_384, size)? {
                if !written.iter().any(|w| w.encode() == a.encode()) {
                    append(&mut snap_assertions, &a);
                    written.push(a);
                }
            }
        }
        boot.file(&format!("snaps/{}", s.file_name()), Source::Bytes(bytes));
    }
    boot.file(
        &format!("{system}/assertions/snaps"),
        Source::bytes(snap_assertions),
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
