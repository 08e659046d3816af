//! The seed's snaps: every file under `snaps/` must be the very revision the store
//! asserted (size and SHA3-384), named as its declaration names it, and every snap the
//! model needs must be there, for the architecture of the running kernel.
//!
//! Runs after the model verified, on the read-only boot partition, before anything is
//! trusted or written. The snaps are hashed in parallel, one thread per core, since
//! hashing hundreds of MiB is most of the work.
//!
//! Each snap file is opened once. The open files come back in the [`VerifiedSeed`], so the
//! base that is mounted is read through the very descriptor that was hashed, with no second
//! look-up by name.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use coreforge_assertions::{Model, SnapDeclaration, SnapRevision, TrustDb, VerifyError};
use sha3::{Digest, Sha3_384};

use crate::model::printable;

/// Bytes read at a time while hashing: large reads keep an SD card streaming.
const CHUNK: usize = 128 << 10;

/// What a verified seed holds, for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// How many snap files were checked.
    pub snaps: usize,
    /// The model's gadget snap.
    pub gadget: String,
    /// The model's kernel snap.
    pub kernel: String,
    /// The model's base (or `core`).
    pub base: String,
    /// How long the check took.
    pub took: Duration,
}

impl Summary {
    /// The line printed once the seed verified.
    pub fn line(&self) -> String {
        format!(
            "seed verified: {} snaps (gadget {}, kernel {}, base {}) in {} ms",
            self.snaps,
            printable(&self.gadget),
            printable(&self.kernel),
            printable(&self.base),
            self.took.as_millis()
        )
    }
}

/// A seeded snap file, open read-only: for an asserted snap, the very descriptor whose
/// bytes were hashed and matched its snap-revision; for an unasserted snap of a dangerous
/// model, the descriptor opened when the seed was listed. Never opened again by name.
#[derive(Debug)]
pub struct SeedSnap {
    name: String,
    revision: String,
    path: PathBuf,
    file: File,
}

impl SeedSnap {
    /// The snap's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its revision as the file name gives it (checked against the snap-revision for an
    /// asserted snap): digits, or `x<N>` for an unasserted one, as snapd names them.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Where it was opened (for messages only: never open it again by this path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// A snap as [`verify`] would hand it over (tests of what comes after).
    #[cfg(test)]
    pub fn for_tests(name: &str, revision: &str, path: &Path, file: File) -> SeedSnap {
        SeedSnap {
            name: name.into(),
            revision: revision.into(),
            path: path.into(),
            file,
        }
    }
}

/// A seed whose snaps all checked out, with their open files. Only [`verify`] makes one.
#[derive(Debug)]
pub struct VerifiedSeed {
    summary: Summary,
    base: SeedSnap,
    others: BTreeMap<String, SeedSnap>,
}

impl VerifiedSeed {
    /// What it holds, for the console.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The model's base snap (`core` for a model without a base).
    pub fn base(&self) -> &SeedSnap {
        &self.base
    }

    /// Every other seeded snap, by name.
    pub fn others(&self) -> &BTreeMap<String, SeedSnap> {
        &self.others
    }
}

/// The outcome of a seed check that found nothing wrong.
#[derive(Debug)]
pub enum Outcome {
    /// The seed has no `snaps/` folder (test disks with only a model).
    NoSnaps,
    /// Every snap checked out.
    Verified(VerifiedSeed),
}

/// Why the seed's snaps cannot be trusted; each says what was wrong.
#[derive(Debug)]
pub enum Failure {
    /// A folder or file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A file under `snaps/` is not named `<name>_<revision>.snap`.
    BadName {
        /// The file name.
        file: String,
    },
    /// Two files are the same snap.
    Twice {
        /// The snap name.
        name: String,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// An unasserted snap (`_x<N>`) in a model whose grade is not dangerous.
    Unasserted {
        /// The file name.
        file: String,
        /// The model's grade.
        grade: String,
    },
    /// No snap-revision has the file's SHA3-384.
    NoRevision {
        /// The file name.
        file: String,
        /// The file's SHA3-384, unpadded base64url.
        digest: String,
    },
    /// The file's content differs from the revision it is named after.
    Tampered {
        /// The file name.
        file: String,
        /// The file's SHA3-384.
        digest: String,
        /// The asserted SHA3-384.
        asserted: String,
    },
    /// The file's size differs from its snap-revision's.
    Size {
        /// The file name.
        file: String,
        /// The file's size.
        size: u64,
        /// The asserted size.
        asserted: u64,
    },
    /// The file name's revision differs from its snap-revision's.
    Revision {
        /// The file name.
        file: String,
        /// The asserted revision.
        asserted: u64,
    },
    /// A snap-revision or snap-declaration does not verify, or is malformed.
    Unverified {
        /// The file name.
        file: String,
        /// `snap-revision` or `snap-declaration`.
        what: &'static str,
        /// Why (boxed: large, and this is the rare path).
        error: Box<VerifyError>,
    },
    /// No snap-declaration for the revision's snap-id.
    NoDeclaration {
        /// The file name.
        file: String,
        /// The snap-id.
        snap_id: String,
    },
    /// The revision's snap-id is not its declaration's.
    DeclarationId {
        /// The file name.
        file: String,
        /// The revision's snap-id.
        revision: String,
        /// The declaration's snap-id.
        declared: String,
    },
    /// The model names the snap with another snap-id than the store's assertions.
    ModelId {
        /// The file name.
        file: String,
        /// The snap name.
        name: String,
        /// The id the model gives it.
        model: String,
        /// The snap-id of its declaration and revision.
        store: String,
    },
    /// The declaration names another snap than the file.
    Name {
        /// The file name.
        file: String,
        /// The name declared for the snap-id.
        declared: String,
    },
    /// A snap the model needs is not in `snaps/`.
    Missing {
        /// `gadget`, `kernel`, `base` or `required`.
        role: &'static str,
        /// The snap name.
        name: String,
    },
    /// The model is for another architecture than the running kernel.
    Architecture {
        /// The model's architecture.
        model: String,
        /// The kernel's machine (uname).
        machine: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Read { path, error } => {
                write!(f, "seed file {} cannot be read: {error}", path.display())
            }
            Failure::BadName { file } => write!(
                f,
                "seed snap snaps/{} is not named <name>_<revision>.snap",
                printable(file)
            ),
            Failure::Twice {
                name,
                first,
                second,
            } => write!(
                f,
                "seed holds snap {} twice: snaps/{} and snaps/{}",
                printable(name),
                printable(first),
                printable(second)
            ),
            Failure::Unasserted { file, grade } => write!(
                f,
                "seed snap snaps/{} has no store assertions, which only a dangerous model \
                 allows (this model's grade: {})",
                printable(file),
                printable(grade)
            ),
            Failure::NoRevision { file, digest } => write!(
                f,
                "seed snap snaps/{}: no snap-revision in assertions/snaps has its SHA3-384 {digest}",
                printable(file)
            ),
            Failure::Tampered {
                file,
                digest,
                asserted,
            } => write!(
                f,
                "seed snap snaps/{} differs from the store's revision: SHA3-384 {digest}, \
                 asserted {}",
                printable(file),
                printable(asserted)
            ),
            Failure::Size {
                file,
                size,
                asserted,
            } => write!(
                f,
                "seed snap snaps/{} is {size} bytes, its snap-revision says {asserted}",
                printable(file)
            ),
            Failure::Revision { file, asserted } => write!(
                f,
                "seed snap snaps/{} is the store's revision {asserted} of the snap, not the \
                 revision its name says",
                printable(file)
            ),
            Failure::Unverified { file, what, error } => write!(
                f,
                "seed snap snaps/{}: its {what} does not verify: {error}",
                printable(file)
            ),
            Failure::NoDeclaration { file, snap_id } => write!(
                f,
                "seed snap snaps/{}: no snap-declaration in assertions/snaps for snap-id {}",
                printable(file),
                printable(snap_id)
            ),
            Failure::DeclarationId {
                file,
                revision,
                declared,
            } => write!(
                f,
                "seed snap snaps/{}: its snap-revision is for snap-id {} but its \
                 snap-declaration is for snap-id {}",
                printable(file),
                printable(revision),
                printable(declared)
            ),
            Failure::ModelId {
                file,
                name,
                model,
                store,
            } => write!(
                f,
                "seed snap snaps/{}: the model names snap {} with id {}, but the store's \
                 snap-declaration and snap-revision are for snap-id {}",
                printable(file),
                printable(name),
                printable(model),
                printable(store)
            ),
            Failure::Name { file, declared } => write!(
                f,
                "seed snap snaps/{}: the store declares its snap-id as snap {}",
                printable(file),
                printable(declared)
            ),
            Failure::Missing { role, name } => write!(
                f,
                "seed lacks the model's {role} snap {} (no snaps/{}_*.snap)",
                printable(name),
                printable(name)
            ),
            Failure::Architecture { model, machine } => write!(
                f,
                "seed is for architecture {} but this kernel runs on {}",
                printable(model),
                printable(machine)
            ),
        }
    }
}

impl Failure {
    /// What the person at the device can do about it.
    pub fn todo(&self) -> &'static str {
        match self {
            Failure::Read { .. } => {
                "check the boot partition for file system errors, then press Enter"
            }
            Failure::Architecture { .. } => {
                "write the image built for this board's architecture, then press Enter"
            }
            _ => {
                "the seed was changed or damaged after it was built: write the image made by \
                 `coreforge build-image` again, then press Enter"
            }
        }
    }
}

/// A file under `snaps/`, by its name, open.
#[derive(Debug)]
struct SnapFile {
    file: String,
    name: String,
    /// `None` for an unasserted `_x<N>` file.
    revision: Option<u64>,
    path: PathBuf,
    /// Opened once, when the folder was listed; hashed and handed over through this.
    open: File,
}

/// Checks the snaps under `<seed>/snaps` against `db` (the seed's trust database, see
/// `model::trust_db`) and `model` (verified already), on a kernel whose uname machine is
/// `machine`. A seed with no `snaps/` folder is not checked at all. The verified seed keeps
/// every snap file open, as it was hashed.
pub fn verify(seed: &Path, db: &TrustDb, model: &Model, machine: &str) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let Some(files) = list(&seed.join("snaps"))? else {
        return Ok(Outcome::NoSnaps);
    };
    if let Some(arch) = &model.architecture {
        if debian_arch(machine) != Some(arch.as_str()) {
            return Err(Failure::Architecture {
                model: arch.clone(),
                machine: machine.to_owned(),
            });
        }
    }
    for (role, name) in needed(model) {
        if !files.iter().any(|f| f.name == name) {
            return Err(Failure::Missing { role, name });
        }
    }
    let dangerous = model.grade.as_deref() == Some("dangerous");
    for f in &files {
        if f.revision.is_none() && !dangerous {
            return Err(Failure::Unasserted {
                file: f.file.clone(),
                grade: model.grade.clone().unwrap_or_else(|| "none".into()),
            });
        }
    }
    let asserted: Vec<&SnapFile> = files.iter().filter(|f| f.revision.is_some()).collect();
    let open: Vec<&File> = asserted.iter().map(|f| &f.open).collect();
    let hashing = Instant::now();
    let hashes = hash_all(&open);
    let bytes: u64 = hashes.iter().flatten().map(|(_, size)| size).sum();
    log::debug!(
        "seed: hashed {} snaps, {bytes} bytes, in {} ms on {} threads",
        open.len(),
        hashing.elapsed().as_millis(),
        workers(open.len())
    );
    for (f, hashed) in asserted.iter().zip(hashes) {
        let (digest, size) = hashed.map_err(|error| Failure::Read {
            path: f.path.clone(),
            error,
        })?;
        check(f, &digest, size, db, model)?;
    }
    let summary = Summary {
        snaps: files.len(),
        gadget: model.gadget.clone().unwrap_or_else(|| "none".into()),
        kernel: model.kernel.clone().unwrap_or_else(|| "none".into()),
        base: model.base_or_core().to_owned(),
        took: started.elapsed(),
    };
    let mut base = None;
    let mut others = BTreeMap::new();
    for f in files {
        let revision = match f.revision {
            Some(r) => r.to_string(),
            None => revision_text(&f.file).to_owned(),
        };
        let snap = SeedSnap {
            name: f.name,
            revision,
            path: f.path,
            file: f.open,
        };
        if snap.name == summary.base {
            base = Some(snap);
        } else {
            others.insert(snap.name.clone(), snap);
        }
    }
    // Checked above with the other snaps the model needs.
    let Some(base) = base else {
        return Err(Failure::Missing {
            role: "base",
            name: summary.base,
        });
    };
    Ok(Outcome::Verified(VerifiedSeed {
        summary,
        base,
        others,
    }))
}

/// One asserted file against the store's assertions: revision by digest, its declaration,
/// size, the snap-ids of revision, declaration and model, the declaration's name, and the
/// revision number.
fn check(
    f: &SnapFile,
    digest: &str,
    size: u64,
    db: &TrustDb,
    model: &Model,
) -> Result<(), Failure> {
    let series = model.series.as_str();
    let unverified = |what, error| Failure::Unverified {
        file: f.file.clone(),
        what,
        error: Box::new(error),
    };
    // What is missing first (the revision would not verify without its declaration, but
    // "no declaration" says more), then whether what is there verifies.
    let Some(found) = db.find("snap-revision", &[digest]) else {
        return Err(tampered(f, digest, db, series));
    };
    let rev =
        SnapRevision::from_assertion(found).map_err(|e| unverified("snap-revision", e.into()))?;
    let no_declaration = |snap_id: String| Failure::NoDeclaration {
        file: f.file.clone(),
        snap_id,
    };
    if db
        .find("snap-declaration", &[series, &rev.snap_id])
        .is_none()
    {
        return Err(no_declaration(rev.snap_id));
    }
    let verified = db
        .find_verified("snap-revision", &[digest])
        .map_err(|e| unverified("snap-revision", e))?
        .ok_or_else(|| tampered(f, digest, db, series))?;
    let rev = SnapRevision::from_assertion(verified.assertion())
        .map_err(|e| unverified("snap-revision", e.into()))?;
    if rev.snap_size != size {
        return Err(Failure::Size {
            file: f.file.clone(),
            size,
            asserted: rev.snap_size,
        });
    }
    let Some(verified) = db
        .find_verified("snap-declaration", &[series, &rev.snap_id])
        .map_err(|e| unverified("snap-declaration", e))?
    else {
        return Err(no_declaration(rev.snap_id));
    };
    let decl = SnapDeclaration::from_assertion(verified.assertion())
        .map_err(|e| unverified("snap-declaration", e.into()))?;
    if decl.snap_id != rev.snap_id {
        return Err(Failure::DeclarationId {
            file: f.file.clone(),
            revision: rev.snap_id,
            declared: decl.snap_id,
        });
    }
    if decl.snap_name != f.name {
        return Err(Failure::Name {
            file: f.file.clone(),
            declared: decl.snap_name,
        });
    }
    let model_id = model
        .snaps
        .iter()
        .find(|s| s.name == f.name)
        .and_then(|s| s.id.as_ref());
    if let Some(id) = model_id.filter(|id| **id != decl.snap_id) {
        return Err(Failure::ModelId {
            file: f.file.clone(),
            name: f.name.clone(),
            model: id.clone(),
            store: decl.snap_id,
        });
    }
    if Some(rev.snap_revision) != f.revision {
        return Err(Failure::Revision {
            file: f.file.clone(),
            asserted: rev.snap_revision,
        });
    }
    Ok(())
}
/// The error for a digest no revision has: if some revision of the same name and number
/// is asserted, the file was changed; else nothing in the seed vouches for it.
fn tampered(f: &SnapFile, digest: &str, db: &TrustDb, series: &str) -> Failure {
    let same = db
        .assertions()
        .filter(|a| a.type_name() == "snap-revision")
        .filter_map(|a| SnapRevision::from_assertion(a).ok())
        .find(|r| {
            Some(r.snap_revision) == f.revision
                && db
                    .find("snap-declaration", &[series, &r.snap_id])
                    .and_then(|d| SnapDeclaration::from_assertion(d).ok())
                    .is_some_and(|d| d.snap_name == f.name)
        });
    match same {
        Some(r) => Failure::Tampered {
            file: f.file.clone(),
            digest: digest.to_owned(),
            asserted: r.snap_sha3_384,
        },
        None => Failure::NoRevision {
            file: f.file.clone(),
            digest: digest.to_owned(),
        },
    }
}

/// The `*.snap` files in `dir` by name, each opened once (read-only), `None` if there is
/// no such folder.
fn list(dir: &Path) -> Result<Option<Vec<SnapFile>>, Failure> {
    let failed = |error| Failure::Read {
        path: dir.to_path_buf(),
        error,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let mut by_name: BTreeMap<String, SnapFile> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(failed)?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some((name, revision)) = parse_name(&file) else {
            return Err(Failure::BadName { file });
        };
        if let Some(first) = by_name.get(&name) {
            let (first, second) = if first.file < file {
                (first.file.clone(), file)
            } else {
                (file, first.file.clone())
            };
            return Err(Failure::Twice {
                name,
                first,
                second,
            });
        }
        let path = entry.path();
        let open = open_snap(&path).map_err(|error| Failure::Read {
            path: path.clone(),
            error,
        })?;
        by_name.insert(
            name.clone(),
            SnapFile {
                file,
                name,
                revision,
                path,
                open,
            },
        );
    }
    Ok(Some(by_name.into_values().collect()))
}

/// Opens a snap file read-only; it must be a regular file.
fn open_snap(path: &Path) -> io::Result<File> {
    let file = File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// `<name>_<revision>.snap` or the unasserted `<name>_x<N>.snap` (revision `None`).
fn parse_name(file: &str) -> Option<(String, Option<u64>)> {
    let (name, rev) = file.strip_suffix(".snap")?.rsplit_once('_')?;
    if name.is_empty() {
        return None;
    }
    let revision = match rev.strip_prefix('x') {
        Some(local) => {
            local.parse::<u64>().ok()?;
            None
        }
        None => Some(rev.parse::<u64>().ok().filter(|r| *r > 0)?),
    };
    Some((name.to_owned(), revision))
}

/// The revision part of a file name [`parse_name`] accepted: `x1` of `name_x1.snap`.
fn revision_text(file: &str) -> &str {
    file.trim_end_matches(".snap")
        .rsplit_once('_')
        .map_or("", |(_, rev)| rev)
}

/// The snaps the model cannot do without, with their role.
fn needed(model: &Model) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    if let Some(g) = &model.gadget {
        out.push(("gadget", g.clone()));
    }
    if let Some(k) = &model.kernel {
        out.push(("kernel", k.clone()));
    }
    out.push(("base", model.base_or_core().to_owned()));
    let required = model.required_snaps.iter().cloned().chain(
        model
            .snaps
            .iter()
            .filter(|s| s.presence == "required")
            .map(|s| s.name.clone()),
    );
    for name in required {
        if !out.iter().any(|(_, n)| *n == name) {
            out.push(("required", name));
        }
    }
    out
}

/// The Debian architecture a kernel's uname machine runs.
pub fn debian_arch(machine: &str) -> Option<&'static str> {
    Some(match machine {
        "aarch64" | "aarch64_be" | "arm64" => "arm64",
        "armv7l" | "armv8l" | "armv7" => "armhf",
        "x86_64" => "amd64",
        "i386" | "i486" | "i586" | "i686" => "i386",
        "riscv64" => "riscv64",
        "ppc64le" => "ppc64el",
        "s390x" => "s390x",
        _ => return None,
    })
}

/// SHA3-384 (unpadded base64url, as snap-revisions write it) and size of each open file,
/// in order; one thread per core, each taking whole files from a shared queue. The queue
/// holds the largest files first, so that a big kernel snap does not start last and
/// leave the other cores idle while it is hashed alone.
fn hash_all(files: &[&File]) -> Vec<io::Result<(String, u64)>> {
    let threads = workers(files.len());
    let mut queue: Vec<usize> = (0..files.len()).collect();
    queue.sort_by_cached_key(|&i| std::cmp::Reverse(files[i].metadata().map_or(0, |m| m.len())));
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, io::Result<(String, u64)>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        let Some(&i) = queue.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return mine;
                        };
                        mine.push((i, hash_file(files[i], &mut buf)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec![(usize::MAX, Err(io::Error::other("hashing failed")))])
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    let mut out: Vec<io::Result<(String, u64)>> = Vec::with_capacity(files.len());
    let mut done = done.into_iter().peekable();
    for i in 0..files.len() {
        match done.next_if(|(j, _)| *j == i) {
            Some((_, r)) => out.push(r),
            None => out.push(Err(io::Error::other("not hashed"))),
        }
    }
    out
}

/// Hashing threads for `files` files: one per core, no more than there are files.
fn workers(files: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files)
        .max(1)
}

/// Streams `file` through SHA3-384 from its start, by offset (the descriptor's own position
/// is left alone: it is shared with whoever holds the file next).
fn hash_file(file: &File, buf: &mut [u8]) -> io::Result<(String, u64)> {
    let mut hasher = Sha3_384::new();
    let mut size = 0u64;
    loop {
        let n = match file.read_at(buf, size) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((URL_SAFE_NO_PAD.encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests;
