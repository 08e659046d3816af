//! The seed's model: the one the device was built for, decoded and verified against the
//! trusted roots that the initramfs carries, with the account and key assertions the
//! initramfs and the seed hold beside them.
//!
//! The initramfs says what the device is ([`PIN_PATH`], a [`DevicePin`] written by
//! `coreforge build-image`): the seed label, and the model's brand, name, grade and
//! SHA3-384. Only that label is opened, and only that very model file is accepted; other
//! labels on the card are named in a warning and otherwise ignored.
//!
//! Decoding and verification are `coreforge-assertions`'; this module only decides which
//! files take part and how each failure is explained on the console. Keys are checked at
//! each assertion's own timestamp and must not have expired by the later of the device's
//! clock and the image's build time, so a clock stuck at 1970 cannot revive a revoked key.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use coreforge_assertions::{
    sha3_384, Assertion, DecodeError, DevicePin, Model, PinError, Timestamp, TrustDb, Verified,
    VerifyError, MAX_PIN_SIZE,
};

/// Where the initramfs says what this device is (`coreforge build-image` writes it).
pub const PIN_PATH: &str = "/etc/coreforge/device";

/// Where the initramfs keeps the trusted roots (`coreforge-initramfs`'s `.trusted(...)`).
pub const TRUSTED_DIR: &str = "/etc/coreforge/trusted";

/// Where the initramfs keeps the store's account and account-key assertions as they were
/// at build time (not trusted: verified when used), so that a key revoked since the seed's
/// assertions were written stays revoked on the device.
pub const KNOWN_DIR: &str = "/etc/coreforge/known";

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

/// The model of the pinned seed label, and what else the card holds under `systems/`.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The model, the very file the pin names (not yet verified: see [`verify_in`]).
    pub model: SeedModel,
    /// The other entries of `systems/`, by name in byte order, as read from the card (escape
    /// them with [`printable`] before printing: [`Pinned::warning`] does).
    pub others: Vec<String>,
}

impl Pinned {
    /// The warning naming the other seed labels on the card, if there are any.
    pub fn warning(&self) -> Option<String> {
        if self.others.is_empty() {
            return None;
        }
        Some(format!(
            "ignoring other seed labels on the card: {}",
            list(&self.others)
        ))
    }
}

/// What a model is, as the pin or the card's model file says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The brand-id.
    pub brand_id: String,
    /// The model name.
    pub model: String,
    /// The grade, if it has one.
    pub grade: Option<String>,
}

impl Identity {
    fn of_pin(pin: &DevicePin) -> Identity {
        Identity {
            brand_id: pin.brand_id.clone(),
            model: pin.model.clone(),
            grade: pin.grade.clone(),
        }
    }

    fn of_model(model: &Model) -> Identity {
        Identity {
            brand_id: model.brand_id.clone(),
            model: model.model.clone(),
            grade: model.grade.clone(),
        }
    }
}

impl Identity {
    /// `brand/model (grade G, SHA3-384 D)`, escaped for the console.
    fn describe(&self, sha3_384: &str) -> String {
        format!(
            "{}/{} (grade {}, SHA3-384 {})",
            printable(&self.brand_id),
            printable(&self.model),
            self.grade
                .as_deref()
                .map_or_else(|| "none".into(), printable),
            printable(sha3_384)
        )
    }
}

/// The model the device was built for, and the other one the card holds.
#[derive(Debug)]
pub struct OtherModel {
    /// The pinned label, whose model was read.
    pub label: String,
    /// What the device is.
    pub device: Identity,
    /// The SHA3-384 the device was built with.
    pub device_sha3_384: String,
    /// What the card's model file says, `None` if it is not a model.
    pub card: Option<Identity>,
    /// The SHA3-384 of the card's model file.
    pub card_sha3_384: String,
}

/// What is wrong with the initramfs's device pin.
#[derive(Debug)]
pub enum PinProblem {
    /// There is none.
    Missing,
    /// It cannot be read.
    Unreadable(io::Error),
    /// It is not a pin.
    Malformed(PinError),
}

impl fmt::Display for PinProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinProblem::Missing => write!(f, "it is missing"),
            PinProblem::Unreadable(e) => write!(f, "it cannot be read: {e}"),
            PinProblem::Malformed(e) => write!(f, "it is malformed: {e}"),
        }
    }
}

/// Why the model could not be read or verified; each says what was wrong and what to do.
#[derive(Debug)]
pub enum Failure {
    /// The initramfs does not say what the device is.
    Pin {
        /// The pin file.
        path: PathBuf,
        /// What is wrong with it.
        problem: PinProblem,
    },
    /// The card has no model in the seed label the device was built with.
    NoLabel {
        /// The pinned label.
        label: String,
        /// The labels the card holds instead.
        others: Vec<String>,
    },
    /// The card's model is not the one the device was built for (boxed: it is large).
    OtherModel(Box<OtherModel>),
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
    /// A file of the store's known assertions in the initramfs does not decode.
    MalformedKnown {
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
            Failure::Pin { path, problem } => write!(
                f,
                "this initramfs was not made by `coreforge build-image`: it does not say which \
                 model this device is ({} holds that, and {problem})",
                path.display()
            ),
            Failure::NoLabel { label, others } => write!(
                f,
                "the card has no seed label {} (no systems/{}/model), the one this device was \
                 built with; seed labels on the card: {}",
                printable(label),
                printable(label),
                if others.is_empty() {
                    "none".into()
                } else {
                    list(others)
                }
            ),
            Failure::OtherModel(other) => {
                let OtherModel {
                    label,
                    device,
                    device_sha3_384,
                    card,
                    card_sha3_384,
                } = &**other;
                write!(
                    f,
                    "refusing the model on the card: this device is {}, but the card's \
                     systems/{}/model is ",
                    device.describe(device_sha3_384),
                    printable(label)
                )?;
                match card {
                    Some(card) if card == device => {
                        write!(f, "another model of that name: ")?;
                        f.write_str(&card.describe(card_sha3_384))
                    }
                    Some(card) => f.write_str(&card.describe(card_sha3_384)),
                    None => write!(
                        f,
                        "not a model assertion (SHA3-384 {})",
                        printable(card_sha3_384)
                    ),
                }
            }
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
            Failure::MalformedKnown { path, error } => write!(
                f,
                "malformed store assertions {} in the initramfs: {error}",
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
            Failure::Pin { .. } => {
                "rebuild the image with `coreforge build-image`, which records in the initramfs \
                 the model this device boots, then reboot"
            }
            Failure::NoLabel { .. } | Failure::OtherModel(_) => {
                "this device boots only the model its image was built for: write that image \
                 (made by `coreforge build-image`) to the card, then press Enter"
            }
            Failure::Read { .. } => {
                "check the boot partition for file system errors, then press Enter"
            }
            Failure::MalformedModel { .. } => {
                "rebuild the image with a model signed by `coreforge sign`, then press Enter"
            }
            Failure::MalformedSeed { .. } => {
                "rebuild the image with `coreforge build-image`, then press Enter"
            }
            Failure::MalformedRoot { .. }
            | Failure::MalformedKnown { .. }
            | Failure::NoRoots { .. } => {
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

/// Reads the device pin at `path` (at most [`MAX_PIN_SIZE`] bytes are read).
pub fn read_pin(path: &Path) -> Result<DevicePin, Failure> {
    let failed = |problem| Failure::Pin {
        path: path.to_path_buf(),
        problem,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(failed(PinProblem::Missing)),
        Err(e) => return Err(failed(PinProblem::Unreadable(e))),
    };
    let mut bytes = Vec::new();
    // One byte more than allowed, so that a larger file is refused as such by the parser.
    file.take(MAX_PIN_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(PinProblem::Unreadable(e)))?;
    DevicePin::parse(&bytes).map_err(|e| failed(PinProblem::Malformed(e)))
}

/// Opens the model the device was built for: `<seed>/systems/<pin.seed_label>/model`, and
/// nothing else under `systems/`. Its bytes' SHA3-384 must be the pin's, and its brand,
/// model and grade the pin's; any other model is refused, naming both.
pub fn open(seed: &Path, pin: &DevicePin) -> Result<Pinned, Failure> {
    let systems = seed.join("systems");
    let others = other_labels(&systems, &pin.seed_label)?;
    // The pin's label passed snapd's label rule (no `/`, no `..`): it is one folder.
    let system = systems.join(&pin.seed_label);
    let path = system.join("model");
    let Some(bytes) = read_file(&path)? else {
        return Err(Failure::NoLabel {
            label: pin.seed_label.clone(),
            others,
        });
    };
    let digest = sha3_384(&bytes);
    let device = Identity::of_pin(pin);
    let decoded = decode(&system, &bytes);
    let other = |card: Option<Identity>| {
        Failure::OtherModel(Box::new(OtherModel {
            label: pin.seed_label.clone(),
            device: device.clone(),
            device_sha3_384: pin.model_sha3_384.clone(),
            card,
            card_sha3_384: digest.clone(),
        }))
    };
    if digest != pin.model_sha3_384 {
        return Err(other(
            decoded.ok().map(|found| Identity::of_model(&found.model)),
        ));
    }
    let found = decoded?;
    let card = Identity::of_model(&found.model);
    if card != device {
        return Err(other(Some(card)));
    }
    Ok(Pinned {
        model: found,
        others,
    })
}

/// The entries of `systems` other than `label`, sorted; none if there is no such folder.
fn other_labels(systems: &Path, label: &str) -> Result<Vec<String>, Failure> {
    let failed = |error| Failure::Read {
        path: systems.to_path_buf(),
        error,
    };
    let entries = match fs::read_dir(systems) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed(e)),
    };
    let mut others = Vec::new();
    for entry in entries {
        let name = entry.map_err(failed)?.file_name();
        if name != label {
            others.push(name.to_string_lossy().into_owned());
        }
    }
    others.sort();
    Ok(others)
}

/// Decodes the bytes of `<system>/model`: exactly one assertion, of type model.
fn decode(system: &Path, bytes: &[u8]) -> Result<SeedModel, Failure> {
    let path = system.join("model");
    let malformed = |error: String| Failure::MalformedModel {
        path: path.clone(),
        error,
    };
    let mut all = Assertion::decode_all(bytes).map_err(|e| malformed(e.to_string()))?;
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

/// Where the trust database's assertions come from besides the seed: the initramfs's
/// folders.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The trusted roots' folder ([`TRUSTED_DIR`]).
    pub trusted: &'a Path,
    /// The store's known accounts and account-keys ([`KNOWN_DIR`]).
    pub known: &'a Path,
}

impl Sources<'static> {
    /// The initramfs's own folders.
    pub fn initramfs() -> Sources<'static> {
        Sources {
            trusted: Path::new(TRUSTED_DIR),
            known: Path::new(KNOWN_DIR),
        }
    }
}

/// The trust database of a seed: every `*.assertion` in `sources.trusted` as roots, then
/// those in `sources.known` (the store's accounts and keys at build time), then the seed's
/// `assertions/model-etc` and `assertions/snaps` (any of these may be absent). Keys must not
/// have expired by `earliest` (the later of the clock and the image's build time, see
/// `clock::at_least`). Built once and shared by the model's and the snaps' verification.
pub fn trust_db(
    seed: &SeedModel,
    sources: Sources<'_>,
    earliest: Timestamp,
) -> Result<TrustDb, Failure> {
    let mut db = TrustDb::new();
    db.set_earliest_time(earliest);
    let roots = read_dir_assertions(sources.trusted, |path, error| Failure::MalformedRoot {
        path,
        error,
    })?;
    if roots.is_empty() {
        return Err(Failure::NoRoots {
            brand: seed.model.brand_id.clone(),
            model: seed.model.model.clone(),
        });
    }
    for root in roots {
        db.add_trusted(root);
    }
    let known = read_dir_assertions(sources.known, |path, error| Failure::MalformedKnown {
        path,
        error,
    })?;
    for a in known {
        db.add(a);
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
/// folder holds none. `malformed` makes the error for a file that does not decode.
fn read_dir_assertions(
    dir: &Path,
    malformed: impl Fn(PathBuf, DecodeError) -> Failure,
) -> Result<Vec<Assertion>, Failure> {
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
    let mut out = Vec::new();
    for path in files {
        let bytes = read_file(&path)?.unwrap_or_default();
        let all = Assertion::decode_all(&bytes).map_err(|error| malformed(path, error))?;
        out.extend(all);
    }
    Ok(out)
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

/// Names read from the card, escaped and joined for one line.
fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| printable(n))
        .collect::<Vec<_>>()
        .join(", ")
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
