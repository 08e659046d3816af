//! The seed's model: find it, decode it, and verify it against the trusted roots that the
//! initramfs carries, with the account and key assertions the seed holds beside it.
//!
//! Decoding and verification are `coreforge-assertions`'; this module only decides which
//! files take part and how each failure is explained on the console. Keys are checked at
//! each assertion's own timestamp, so a device clock stuck at 1970 does not matter.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use coreforge_assertions::{Assertion, DecodeError, Model, TrustDb, Verified, VerifyError};

/// Where the initramfs keeps the trusted roots (`coreforge-initramfs`'s `.trusted(...)`).
pub const TRUSTED_DIR: &str = "/etc/coreforge/trusted";

/// Largest assertion file read: a model is at most a few KiB, but `assertions/snaps` holds
/// every declaration and revision of the seed. Anything larger is not a seed of ours.
pub const MAX_FILE: u64 = 16 << 20;

/// The seed's model, decoded and checked with snapd's rules, not yet verified.
#[derive(Debug, Clone)]
pub struct SeedModel {
    /// The `systems/<label>` folder it came from.
    pub system: PathBuf,
    /// The assertion as read.
    pub assertion: Assertion,
    /// Its typed headers.
    pub model: Model,
}

/// Why the model could not be read or verified; each says what was wrong and what to do.
#[derive(Debug)]
pub enum Failure {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The model file is not one well-formed model assertion.
    MalformedModel {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// A seed file of assertions does not decode.
    MalformedSeed {
        /// The file.
        path: PathBuf,
        /// Why.
        error: DecodeError,
    },
    /// A trusted root file in the initramfs does not decode.
    MalformedRoot {
        /// The file.
        path: PathBuf,
        /// Why.
        error: DecodeError,
    },
    /// The initramfs carries no trusted roots at all.
    NoRoots {
        /// The model's brand-id.
        brand: String,
        /// The model's name.
        model: String,
    },
    /// The model does not chain to the trusted roots, or its signature is wrong.
    Unverified {
        /// The model's brand-id.
        brand: String,
        /// The model's name.
        model: String,
        /// Why (boxed: it is large and this is the rare path).
        error: Box<VerifyError>,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Failure::MalformedModel { path, error } => {
                write!(f, "malformed model assertion {}: {error}", path.display())
            }
            Failure::MalformedSeed { path, error } => {
                write!(f, "malformed assertions in {}: {error}", path.display())
            }
            Failure::MalformedRoot { path, error } => write!(
                f,
                "malformed trusted root {} in the initramfs: {error}",
                path.display()
            ),
            Failure::NoRoots { brand, model } => write!(
                f,
                "model {}/{} does not verify: no trusted roots in the initramfs \
                 ({TRUSTED_DIR} has no *.assertion files)",
                printable(brand),
                printable(model)
            ),
            Failure::Unverified {
                brand,
                model,
                error,
            } => write!(
                f,
                "model {}/{} does not verify: {error}",
                printable(brand),
                printable(model)
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
            Failure::MalformedModel { .. } => {
                "rebuild the image with a model signed by `coreforge sign`, then press Enter"
            }
            Failure::MalformedSeed { .. } => {
                "rebuild the image with `coreforge build-image`, then press Enter"
            }
            Failure::MalformedRoot { .. } | Failure::NoRoots { .. } => {
                "rebuild the image with `coreforge build-image`, which puts the store's \
                 root keys in the initramfs, then reboot"
            }
            Failure::Unverified { .. } => {
                "rebuild the image with a model signed by a key registered in the store \
                 this image trusts, then press Enter"
            }
        }
    }
}

/// The first `systems/<label>` under `seed` holding a `model`, by label in byte order.
pub fn find(seed: &Path) -> io::Result<Option<PathBuf>> {
    let systems = seed.join("systems");
    let mut labels: Vec<_> = match fs::read_dir(&systems) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    labels.sort();
    Ok(labels
        .into_iter()
        .map(|label| systems.join(label))
        .find(|dir| dir.join("model").is_file()))
}

/// Reads and decodes `<system>/model`: exactly one assertion, of type model.
pub fn read(system: &Path) -> Result<SeedModel, Failure> {
    let path = system.join("model");
    let bytes = read_file(&path)?.unwrap_or_default();
    let malformed = |error: String| Failure::MalformedModel {
        path: path.clone(),
        error,
    };
    let mut all = Assertion::decode_all(&bytes).map_err(|e| malformed(e.to_string()))?;
    let assertion = match (all.pop(), all.is_empty()) {
        (Some(a), true) if a.type_name() == "model" => a,
        (Some(a), true) => {
            return Err(malformed(format!(
                "it holds a {} assertion, not a model",
                a.type_name()
            )))
        }
        (None, _) => return Err(malformed("the file is empty".into())),
        (Some(_), false) => {
            return Err(malformed(format!(
                "it holds {} assertions, not one model",
                all.len() + 1
            )))
        }
    };
    let model = Model::from_assertion(&assertion).map_err(|e| malformed(e.to_string()))?;
    Ok(SeedModel {
        system: system.to_path_buf(),
        assertion,
        model,
    })
}

/// Verifies `seed` against every `*.assertion` in `trusted_dir` (the roots) plus the seed's
/// `assertions/model-etc` and `assertions/snaps` (either may be absent). The agent itself
/// builds the database once with [`trust_db`] and shares it with the snaps' check.
#[cfg(test)]
pub fn verify(seed: &SeedModel, trusted_dir: &Path) -> Result<Verified, Failure> {
    verify_in(&trust_db(seed, trusted_dir)?, seed)
}

/// The trust database of a seed: every `*.assertion` in `trusted_dir` as roots, plus the
/// seed's `assertions/model-etc` and `assertions/snaps` (either may be absent). Built once
/// and shared by the model's and the snaps' verification.
pub fn trust_db(seed: &SeedModel, trusted_dir: &Path) -> Result<TrustDb, Failure> {
    let mut db = TrustDb::new();
    let roots = read_roots(trusted_dir)?;
    if roots.is_empty() {
        return Err(Failure::NoRoots {
            brand: seed.model.brand_id.clone(),
            model: seed.model.model.clone(),
        });
    }
    for root in roots {
        db.add_trusted(root);
    }
    for name in ["model-etc", "snaps"] {
        let path = seed.system.join("assertions").join(name);
        let Some(bytes) = read_file(&path)? else {
            continue;
        };
        let all = Assertion::decode_all(&bytes)
            .map_err(|error| Failure::MalformedSeed { path, error })?;
        for a in all {
            db.add(a);
        }
    }
    Ok(db)
}

/// Verifies the seed's model in `db` (see [`trust_db`]).
pub fn verify_in(db: &TrustDb, seed: &SeedModel) -> Result<Verified, Failure> {
    db.verify(&seed.assertion)
        .map_err(|error| Failure::Unverified {
            brand: seed.model.brand_id.clone(),
            model: seed.model.model.clone(),
            error: Box::new(error),
        })
}

/// The line printed once the model verified.
pub fn verified_line(v: &Verified, model: &Model) -> String {
    format!(
        "model verified: brand={} model={} signed by {} (key {})",
        printable(&model.brand_id),
        printable(&model.model),
        printable(v.signer()),
        printable(v.assertion().sign_key_id())
    )
}

/// Every assertion in the `*.assertion` files of `dir`, files in name order; a missing
/// folder holds none.
fn read_roots(dir: &Path) -> Result<Vec<Assertion>, Failure> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "assertion"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(Failure::Read {
                path: dir.to_path_buf(),
                error,
            })
        }
    };
    files.sort();
    let mut roots = Vec::new();
    for path in files {
        let bytes = read_file(&path)?.unwrap_or_default();
        let all = Assertion::decode_all(&bytes)
            .map_err(|error| Failure::MalformedRoot { path, error })?;
        roots.extend(all);
    }
    Ok(roots)
}

/// The bytes of `path`, `None` if it does not exist; at most [`MAX_FILE`].
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    let failed = |error| Failure::Read {
        path: path.to_path_buf(),
        error,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(failed(io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        ))));
    }
    Ok(Some(bytes))
}

/// `s` if it is plain printable ASCII, else escaped: header values reach the consoles, and
/// a brand-id is not restricted to characters that are safe on a terminal.
pub fn printable(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        s.to_owned()
    } else {
        s.escape_default().to_string()
    }
}

#[cfg(test)]
mod tests;
