//! snapd's UC20 seed layout on the boot partition: `snaps/`, and `systems/<label>/` with the
//! model and the assertions that vouch for it and for every seeded snap.

use std::fs;
use std::io::Read as _;
use std::sync::{mpsc, Arc};
use std::time::SystemTime;

use anyhow::{Context, Result};
use coreforge_assertions::{Assertion, Model, Timestamp};

use super::digests::{FileId, Memo};
use super::resolve::SeedSnap;
use super::trust::Trust;
use crate::image::{Source, Tree};
use crate::store::Store;

/// A seed snap as the image gets it: its bytes, or the open file they are copied from.
pub(super) struct SeedFile {
    pub source: Source,
    pub size: u64,
}

/// Opens every snap of `snaps`, in order, side by side, and starts checking their digests
/// (see [`Hashing`]). A file left alone for a while ([`digests::SETTLED`]) is copied into
/// the image from its open handle, by the kernel, and its digest is the one remembered in
/// `memo` for it, or computed from the same handle on a thread of its own. A file changed
/// just now is read whole, once: those bytes are both what the image holds and what is
/// hashed.
pub(super) fn read_snaps(
    snaps: &[SeedSnap],
    memo: Option<Memo>,
) -> Result<(Vec<SeedFile>, Hashing)> {
    let (tx, results) = mpsc::channel();
    let pending = snaps.iter().filter(|s| s.resolved.is_some()).count();
    let opened = std::thread::scope(|scope| {
        let jobs: Vec<_> = snaps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let tx = tx.clone();
                let memo = memo.as_ref();
                scope.spawn(move || open_snap(i, s, memo, tx))
            })
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .map_err(|_| anyhow::anyhow!("reading a snap panicked"))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let (files, watched) = opened.into_iter().unzip();
    Ok((
        files,
        Hashing {
            results,
            pending,
            watched,
            memo,
        },
    ))
}

/// A digest computed or remembered for snap `index`.
struct Hashed {
    index: usize,
    digest: std::io::Result<(String, u64)>,
    remembered: bool,
}

/// An open seed file whose content must not change until the image is kept.
struct Watched {
    file: Arc<fs::File>,
    id: FileId,
    opened_at: SystemTime,
}

fn open_snap(
    i: usize,
    s: &SeedSnap,
    memo: Option<&Memo>,
    tx: mpsc::Sender<Hashed>,
) -> Result<(SeedFile, Option<Watched>)> {
    let cannot_read = || format!("cannot read {}", s.path.display());
    let opened_at = SystemTime::now();
    let mut file = fs::File::open(&s.path).with_context(cannot_read)?;
    let id = FileId::of(&file.metadata().with_context(cannot_read)?);
    let asserted = s.resolved.is_some();
    if !id.settled(opened_at) {
        let mut bytes = Vec::with_capacity(id.size() as usize);
        file.read_to_end(&mut bytes).with_context(cannot_read)?;
        let bytes = Arc::new(bytes);
        if asserted {
            let bytes = Arc::clone(&bytes);
            std::thread::spawn(move || {
                let digest = coreforge_assertions::sha3_384(&bytes);
                let _ = tx.send(Hashed {
                    index: i,
                    digest: Ok((digest, bytes.len() as u64)),
                    remembered: false,
                });
            });
        }
        let size = bytes.len() as u64;
        let source = Source::Bytes(bytes);
        return Ok((SeedFile { source, size }, None));
    }
    let file = Arc::new(file);
    let seed = SeedFile {
        source: Source::Open {
            file: Arc::clone(&file),
            len: id.size(),
        },
        size: id.size(),
    };
    if !asserted {
        return Ok((seed, None));
    }
    match memo.and_then(|m| m.get(&id)) {
        Some(digest) => {
            let _ = tx.send(Hashed {
                index: i,
                digest: Ok((digest, id.size())),
                remembered: true,
            });
        }
        None => {
            let file = Arc::clone(&file);
            std::thread::spawn(move || {
                let digest = crate::snap::digest_copy(&*file, std::io::sink());
                let _ = tx.send(Hashed {
                    index: i,
                    digest,
                    remembered: false,
                });
            });
        }
    }
    let watched = Watched {
        file,
        id,
        opened_at,
    };
    Ok((seed, Some(watched)))
}

/// The SHA3-384 of every seed snap the store vouches for, computed on threads of their own
/// while the image is made (hashing the largest snap is the longest single step of a build)
/// or remembered from an earlier build, and compared with the digest the store recorded at
/// upload, which the assertions were checked against, before the image is kept
/// ([`Hashing::check`]).
pub(super) struct Hashing {
    results: mpsc::Receiver<Hashed>,
    pending: usize,
    /// The files copied from open handles, by snap.
    watched: Vec<Option<Watched>>,
    memo: Option<Memo>,
}

impl Hashing {
    /// Waits for every hash; fails naming each snap whose bytes are not what the store
    /// recorded (a store file changed or damaged after its upload), or whose file changed
    /// while the image was made.
    pub(super) fn check(&self, snaps: &[SeedSnap]) -> std::result::Result<(), String> {
        let mut wrong = Vec::new();
        for _ in 0..self.pending {
            let hashed = self
                .results
                .recv()
                .map_err(|_| "hashing the seed snaps stopped unexpectedly".to_string())?;
            let s = &snaps[hashed.index];
            let (digest, size) = hashed
                .digest
                .map_err(|e| format!("cannot read {}: {e}", s.path.display()))?;
            let watched = self.watched[hashed.index].as_ref();
            if let Some(w) = watched {
                let now = w.file.metadata().map(|m| FileId::of(&m));
                if now.as_ref().ok() != Some(&w.id) || size != w.id.size() {
                    wrong.push(format!(
                        "{} ({}) changed while the image was made",
                        s.name,
                        s.path.display()
                    ));
                    continue;
                }
            }
            if let Some(r) = s.resolved.as_ref().filter(|r| r.sha3_384 != digest) {
                wrong.push(format!(
                    "{} revision {} ({}): its SHA3-384 is {digest}, the store recorded {} at upload",
                    s.name,
                    r.revision,
                    s.path.display(),
                    r.sha3_384
                ));
            } else if let (Some(w), Some(memo), false) = (watched, &self.memo, hashed.remembered) {
                memo.put(&w.id, &digest, w.opened_at);
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

/// Writes the seed into the boot file system's tree: each snap as opened or read
/// ([`read_snaps`], in the order of `snaps`), vouched for by the store's verified assertions
/// for the digest the store recorded ([`Hashing`] checks the bytes against it).
pub(super) fn write_seed(
    boot: &mut Tree,
    label: &str,
    trust: &mut Trust,
    model: &Model,
    snaps: &[SeedSnap],
    read: Vec<SeedFile>,
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
    for (s, SeedFile { source, size }) in snaps.iter().zip(read) {
        if let Some(r) = &s.resolved {
            for a in trust.vouch(model, s, r, store, &r.sha3_384, size)? {
                if !written.iter().any(|w| w.encode() == a.encode()) {
                    append(&mut snap_assertions, &a);
                    written.push(a);
                }
            }
        }
        boot.file(&format!("snaps/{}", s.file_name()), source);
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

    fn seed_snap(path: &std::path::Path, recorded: &str) -> SeedSnap {
        let info = crate::snap::SnapInfo {
            name: "app".into(),
            version: "1".into(),
            snap_type: "app".into(),
            architectures: vec!["all".into()],
        };
        SeedSnap {
            name: "app".into(),
            path: path.to_owned(),
            info: info.clone(),
            resolved: Some(crate::store::ResolvedSnap {
                name: "app".into(),
                snap_id: "id".into(),
                revision: 1,
                path: path.to_owned(),
                sha3_384: recorded.into(),
                info,
            }),
            why: super::super::resolve::SeedRole::Extra,
        }
    }

    /// A settled file is copied from its open handle; changed in place before the image is
    /// kept (same size, same bytes hashed), it is refused, and nothing is remembered for it.
    #[test]
    fn a_settled_file_changed_while_the_image_is_made_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.snap");
        fs::write(&path, b"the snap's bytes").unwrap();
        let digest = coreforge_assertions::sha3_384(b"the snap's bytes");
        let snaps = [seed_snap(&path, &digest)];
        std::thread::sleep(super::super::digests::SETTLED + std::time::Duration::from_millis(50));
        let cache = dir.path().join("cache");

        let (files, hashing) = read_snaps(&snaps, Some(Memo::new(&cache))).unwrap();
        assert!(matches!(files[0].source, Source::Open { len: 16, .. }));
        hashing.check(&snaps).unwrap();
        assert!(
            cache.join("digests").read_dir().unwrap().count() == 1,
            "not remembered"
        );

        let (_files, hashing) = read_snaps(&snaps, Some(Memo::new(&cache))).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(16)
            .unwrap();
        let err = hashing.check(&snaps).unwrap_err();
        assert!(err.contains("changed while the image was made"), "{err}");
    }

    /// A file changed just now is read whole and hashed from those bytes.
    #[test]
    fn a_fresh_file_is_read_into_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.snap");
        fs::write(&path, b"fresh").unwrap();
        let snaps = [seed_snap(&path, "recorded")];
        let (files, hashing) = read_snaps(&snaps, None).unwrap();
        assert!(matches!(&files[0].source, Source::Bytes(b) if b.as_slice() == b"fresh"));
        let err = hashing.check(&snaps).unwrap_err();
        assert!(err.contains("the store recorded recorded"), "{err}");
    }

    #[test]
    fn seed_labels_follow_the_build_time() {
        assert_eq!(seed_label(Timestamp::from_unix(1_764_028_800)), "20251125");
    }
}
