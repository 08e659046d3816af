//! Writes the initramfs that embeds the agent: a reproducible `newc` cpio holding the agent
//! as `/init`, a `/dev/console` node, the board's kernel modules with their dependency
//! closure and load order, and the trusted root assertions — built without root.
//!
//! ```
//! use coreforge_initramfs::{Compression, InitramfsBuilder};
//! let agent = b"\x7fELF...".to_vec(); // the static agent binary
//! let image = InitramfsBuilder::new(agent).mtime(0).build(Compression::Gzip).unwrap();
//! assert_eq!(&image.bytes[..2], [0x1f, 0x8b]);
//! ```
//!
//! Layout inside the archive:
//! - `/init` — the agent (0755); `/dev/console` — character device 5:1
//! - `/lib/modules/<name>.ko` — uncompressed modules; `/etc/coreforge/modules.load` lists
//!   their paths one per line, dependencies first, in the order the agent loads them
//! - `/etc/coreforge/trusted/<name>.assertion` — the trusted roots
//! - `/etc/coreforge/known/<name>.assertion` — the store's current accounts and account-keys
//! - `/etc/coreforge/device` — what the device is: model, seed label, build time, preseed digest
//! - `/etc/coreforge/sso-url` — the store's login service for identity look-ups (one line)
//! - `/etc/coreforge/tls-roots.pem` — the roots of trust for the agent's HTTPS (a PEM bundle)
//! - empty `/proc /sys /run /tmp /mnt` mount points
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod compress;
mod cpio;
mod error;
mod modinfo;
mod modules;

use std::path::Path;

pub use compress::Compression;
pub use cpio::Archive;
pub use error::Error;
pub use modinfo::{normalize_name, parse as parse_modinfo, ModInfo};
pub use modules::{Module, ModuleIndex};

/// Where the agent finds its module list.
pub const MODULES_LOAD: &str = "/etc/coreforge/modules.load";
/// Where modules go.
pub const MODULES_DIR: &str = "/lib/modules";
/// Where the trusted root assertions go.
pub const TRUSTED_DIR: &str = "/etc/coreforge/trusted";
/// What the device is (the model and seed label it boots): `coreforge_assertions::DevicePin`.
pub const DEVICE_PIN: &str = "/etc/coreforge/device";
/// The store's current accounts and account-keys at build time (`*.assertion`), known but
/// not trusted: they keep a key revoked at the store revoked on the device.
pub const KNOWN_DIR: &str = "/etc/coreforge/known";
/// Where the SSO URL goes: one line, the base of `<sso-url>/api/v2/keys/<e-mail>`.
pub const SSO_URL: &str = "/etc/coreforge/sso-url";
/// Where the TLS roots go: PEM certificates the agent trusts for HTTPS.
pub const TLS_ROOTS: &str = "/etc/coreforge/tls-roots.pem";
/// The SSO URL of the real service, used when an image does not name another.
pub const DEFAULT_SSO_URL: &str = "https://login.ubuntu.com";

/// Empty directories every initramfs has (mount points and scratch space).
const DIRS: [&str; 9] = [
    "dev",
    "proc",
    "sys",
    "run",
    "tmp",
    "mnt",
    "etc/coreforge/trusted",
    "lib/modules",
    "root",
];

/// Collects what goes into one initramfs.
#[derive(Debug, Clone)]
pub struct InitramfsBuilder {
    archive: Archive,
    agent_is_elf: bool,
    modules: Vec<Module>,
    mtime: u32,
}

/// A built initramfs.
#[derive(Debug, Clone)]
pub struct Initramfs {
    /// The compressed archive, ready to write next to the kernel.
    pub bytes: Vec<u8>,
    /// Size of the archive before compression.
    pub uncompressed_len: usize,
    /// Module names in load order (the lines of modules.load without path and `.ko`).
    pub modules: Vec<String>,
}

/// `SOURCE_DATE_EPOCH` when set to a valid time that fits the cpio field, else `None`.
pub fn source_date_epoch() -> Option<u32> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

impl InitramfsBuilder {
    /// Starts an initramfs whose `/init` is `agent`. Every entry's mtime is
    /// `SOURCE_DATE_EPOCH` when set, else 0 (see [`InitramfsBuilder::mtime`]).
    pub fn new(agent: Vec<u8>) -> Self {
        let mut archive = Archive::new();
        for dir in DIRS {
            archive.dir(dir, 0o755);
        }
        archive.dir("tmp", 0o1777);
        archive.char_dev("dev/console", 5, 1, 0o600);
        let agent_is_elf = agent.starts_with(b"\x7fELF");
        archive.file("init", agent, 0o755);
        Self {
            archive,
            agent_is_elf,
            modules: Vec::new(),
            mtime: source_date_epoch().unwrap_or(0),
        }
    }

    /// Starts from an agent binary on disk; it must be an ELF executable.
    pub fn from_agent_file(path: &Path) -> Result<Self, Error> {
        let agent = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let builder = Self::new(agent);
        if !builder.agent_is_elf {
            return Err(Error::AgentNotElf {
                path: path.to_path_buf(),
            });
        }
        Ok(builder)
    }

    /// Sets the mtime stamped on every entry.
    pub fn mtime(mut self, mtime: u32) -> Self {
        self.mtime = mtime;
        self
    }

    /// Adds the modules `names` and their dependencies from `modules_dir`
    /// (a kernel's `lib/modules/<release>/`). May be called again; each module goes in once.
    pub fn modules<S: AsRef<str>>(
        mut self,
        modules_dir: &Path,
        names: &[S],
    ) -> Result<Self, Error> {
        let index = ModuleIndex::scan(modules_dir)?;
        for module in index.resolve(names)? {
            if !self.modules.iter().any(|m| m.name == module.name) {
                self.modules.push(module);
            }
        }
        Ok(self)
    }

    /// Adds trusted root assertion files, as `/etc/coreforge/trusted/<file stem>.assertion`.
    pub fn trusted<P: AsRef<Path>>(mut self, files: &[P]) -> Result<Self, Error> {
        for file in files {
            let file = file.as_ref();
            let data = std::fs::read(file).map_err(|e| Error::io(file, e))?;
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = format!("{TRUSTED_DIR}/{stem}.assertion");
            if self.archive.contains(&path) {
                return Err(Error::DuplicateTrusted {
                    name: format!("{stem}.assertion"),
                });
            }
            self.archive.file(&path, data, 0o644);
        }
        Ok(self)
    }

    /// Sets the SSO URL the agent looks store accounts up at (written as [`SSO_URL`]).
    pub fn sso_url(self, url: &str) -> Self {
        self.file(SSO_URL, format!("{}\n", url.trim_end()).into_bytes(), 0o644)
    }

    /// Sets the PEM bundle of TLS roots the agent trusts (written as [`TLS_ROOTS`]); the caller
    /// has checked that every certificate parses.
    pub fn tls_roots(self, pem: Vec<u8>) -> Self {
        self.file(TLS_ROOTS, pem, 0o644)
    }

    /// Adds any other file (e.g. a test's configuration).
    pub fn file(mut self, path: &str, data: Vec<u8>, perm: u32) -> Self {
        self.archive.file(path, data, perm);
        self
    }

    /// Writes the archive and compresses it.
    pub fn build(self, compression: Compression) -> Result<Initramfs, Error> {
        let (archive, mtime, modules) = self.with_modules();
        let raw = archive.to_bytes(mtime);
        let uncompressed_len = raw.len();
        Ok(Initramfs {
            bytes: compression.apply(raw)?,
            uncompressed_len,
            modules,
        })
    }

    /// As [`InitramfsBuilder::build`], but in two parts, one compressed archive after the
    /// other, which the kernel unpacks in turn (as it unpacks early microcode before an
    /// initramfs): first what every image of the same agent and kernel modules shares (`/init`,
    /// the modules and their load list, `/dev/console`, the mount points, all stamped mtime 0),
    /// compressed once and kept under `cache` by the SHA-256 of its bytes; then the rest
    /// (trust, the device, the SSO settings). A cached part is used only if it decompresses
    /// to exactly those bytes; the cache is only ever a saving.
    pub fn build_cached(self, compression: Compression, cache: &Path) -> Result<Initramfs, Error> {
        let (mut archive, mtime, modules) = self.with_modules();
        let shared = archive.split_off(|path| {
            path == "init"
                || path == "dev/console"
                || path == MODULES_LOAD.trim_start_matches('/')
                || path.starts_with(MODULES_DIR.trim_start_matches('/'))
                || path == "tmp"
                || DIRS.contains(&path)
        });
        let shared = shared.to_bytes(0);
        let rest = archive.to_bytes(mtime);
        let uncompressed_len = shared.len() + rest.len();
        let mut bytes = cached_compression(compression, shared, cache)?;
        bytes.extend(compression.apply(rest)?);
        Ok(Initramfs {
            bytes,
            uncompressed_len,
            modules,
        })
    }

    /// The archive with the modules and their load list added, the mtime, the module names.
    fn with_modules(self) -> (Archive, u32, Vec<String>) {
        let mut archive = self.archive;
        let mut load = String::new();
        for m in &self.modules {
            let path = format!("{MODULES_DIR}/{}.ko", m.name);
            load.push_str(&path);
            load.push('\n');
            archive.file(&path, m.data.clone(), 0o644);
        }
        archive.file(MODULES_LOAD, load.into_bytes(), 0o644);
        let names = self.modules.into_iter().map(|m| m.name).collect();
        (archive, self.mtime, names)
    }

    /// Builds and writes the initramfs to `out` (through a temporary file renamed into place).
    pub fn write(self, out: &Path, compression: Compression) -> Result<Initramfs, Error> {
        let image = self.build(compression)?;
        let tmp = out.with_extension("partial");
        std::fs::write(&tmp, &image.bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
        Ok(image)
    }
}

/// `raw` compressed, from `cache` when it holds a copy that decompresses to `raw`; a fresh
/// compression is stored there (through a temp file renamed into place; failures to store
/// are ignored).
fn cached_compression(
    compression: Compression,
    raw: Vec<u8>,
    cache: &Path,
) -> Result<Vec<u8>, Error> {
    use sha2::{Digest, Sha256};
    let key: String = Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = cache.join(format!("{key}.{compression:?}").to_lowercase());
    if let Ok(stored) = std::fs::read(&path) {
        if compression.undo(&stored).is_ok_and(|back| back == raw) {
            return Ok(stored);
        }
    }
    let bytes = compression.apply(raw)?;
    let tmp = path.with_extension(format!("partial{}", std::process::id()));
    let stored = std::fs::create_dir_all(cache)
        .and_then(|()| std::fs::write(&tmp, &bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if stored.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
