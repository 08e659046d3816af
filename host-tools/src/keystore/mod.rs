//! The host key store: one passphrase-protected file per signing key, and imports of
//! keys made by GnuPG or OpenSSH.
//!
//! Each key is `<dir>/<name>.key`, a small JSON document holding the public key in clear
//! (so listing needs no passphrase) and the private key sealed with argon2id and
//! XChaCha20-Poly1305. Files are 0600 in a 0700 directory and written atomically.

mod fsio;
mod import;
mod sealed;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use coreforge_assertions::{Assertion, PrivateKey, PublicKey};

#[allow(unused_imports)]
// the module's whole import API, though the CLI needs only one entry point
pub use import::{import_openpgp_armored, import_openssh, import_private_key, ImportError};
pub use sealed::KdfParams;

use fsio::Place;
use sealed::{KeyFile, OpenError};

/// Longest key name accepted.
const MAX_NAME_LEN: usize = 64;
/// Key file suffix.
const SUFFIX: &str = ".key";
/// Suffix of the file holding a key's account-key and account assertions.
const CHAIN_SUFFIX: &str = ".chain";

/// What went wrong in the key store; each message names the key or file involved.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The name cannot be a key name.
    #[error("invalid key name {0:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")]
    BadName(String),
    /// `create` would replace a key.
    #[error("a key named {name:?} already exists ({}); choose another name or remove that file first", path.display())]
    Exists {
        /// The key name.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// No such key.
    #[error("no key named {name:?} in {} (see `coreforge keys`)", dir.display())]
    NotFound {
        /// The key name.
        name: String,
        /// The store directory.
        dir: PathBuf,
    },
    /// The passphrase does not open the key.
    #[error("wrong passphrase for key {0:?}")]
    WrongPassphrase(String),
    /// The account id is not one snapd accepts.
    #[error("invalid account id {0:?}: snapd account ids are 2-28 characters of a-z, 0-9 and '-', or 32 letters and digits")]
    BadAccount(String),
    /// A key file is damaged or from an unknown version.
    #[error("key file {} is unusable: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "write", "list").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `chain` was asked for a key that has none.
    #[error("key {name:?} has no stored chain ({} is missing): save its account-key and account assertions there", path.display())]
    NoChain {
        /// The key name.
        name: String,
        /// Where the chain would be.
        path: PathBuf,
    },
    /// The chain file does not hold assertions.
    #[error("chain of key {name:?} is not a list of assertions: {reason}")]
    BadChain {
        /// The key name.
        name: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// No environment variable says where keys live.
    #[error("cannot find a key directory: set COREFORGE_KEYS, XDG_DATA_HOME or HOME")]
    NoKeyDir,
    /// The path exists but is not a directory.
    #[error("key store {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Sealing the key failed (bad KDF parameters).
    #[error("cannot protect key {name:?}: {reason}")]
    Seal {
        /// The key name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// A key in the store, as listed without its passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's name in the store.
    pub name: String,
    /// snapd's id of the public key (`sign-key-sha3-384`).
    pub key_id: String,
    /// The public key.
    pub public_key: PublicKey,
    /// The account the key signs for, when known (default `authority-id`).
    pub account: Option<String>,
}

/// A directory of signing keys.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    kdf: KdfParams,
}

/// Whether `name` is a valid key name (`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, at most 64 bytes).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// snapd's account-id rule: `^(?:[a-z0-9A-Z]{32}|[-a-z0-9]{2,28})$`.
fn valid_account(id: &str) -> bool {
    (id.len() == 32 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        || ((2..=28).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

/// The key directory from these environment values (see [`KeyStore::default_dir`]).
fn default_dir_from(get: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, StoreError> {
    let set = |k: &str| get(k).filter(|v| !v.is_empty());
    if let Some(d) = set("COREFORGE_KEYS") {
        return Ok(PathBuf::from(d));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(d) = set("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(d.join("coreforge/keys"));
    }
    match set("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/coreforge/keys")),
        None => Err(StoreError::NoKeyDir),
    }
}

impl KeyStore {
    /// `$COREFORGE_KEYS`, else `$XDG_DATA_HOME/coreforge/keys`, else `~/.local/share/coreforge/keys`.
    pub fn default_dir() -> Result<PathBuf, StoreError> {
        default_dir_from(|k| std::env::var_os(k))
    }

    /// Opens the store in `dir`; the directory is created (mode 0700) on the first `create`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<KeyStore, StoreError> {
        let dir = dir.into();
        match fs::metadata(&dir) {
            Ok(m) if !m.is_dir() => return Err(StoreError::NotADirectory(dir)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    action: "open",
                    path: dir,
                    source,
                })
            }
        }
        Ok(KeyStore {
            dir,
            kdf: KdfParams::default(),
        })
    }

    /// Uses other argon2id costs for keys created from now on (tests keep them cheap).
    #[cfg(test)]
    pub fn with_kdf_params(mut self, kdf: KdfParams) -> KeyStore {
        self.kdf = kdf;
        self
    }

    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::BadName(name.to_string()));
        }
        Ok(self.dir.join(format!("{name}{SUFFIX}")))
    }

    /// Fails unless `name` is valid and no key has it yet (check before asking for passphrases).
    pub fn check_new_name(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(_) => Err(StoreError::Exists {
                name: name.to_string(),
                path,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                action: "check",
                path,
                source,
            }),
        }
    }

    /// Stores `key` under `name`, sealed with `passphrase`; never replaces an existing key.
    pub fn create(
        &self,
        name: &str,
        key: &PrivateKey,
        passphrase: &str,
    ) -> Result<StoredKey, StoreError> {
        let path = self.path(name)?;
        self.check_new_name(name)?;
        let public = key.public_key();
        let kdf = if passphrase.is_empty() {
            KdfParams::UNPROTECTED
        } else {
            self.kdf
        };
        let file = KeyFile::seal(name, &public, &key.to_secret_bytes(), passphrase, kdf).map_err(
            |reason| StoreError::Seal {
                name: name.to_string(),
                reason,
            },
        )?;
        fsio::ensure_dir(&self.dir).map_err(|source| StoreError::Io {
            action: "create directory",
            path: self.dir.clone(),
            source,
        })?;
        self.write(name, &path, &file, Place::New)?;
        Ok(StoredKey {
            name: name.to_string(),
            key_id: public.id(),
            public_key: public,
            account: None,
        })
    }

    fn write(
        &self,
        name: &str,
        path: &Path,
        file: &KeyFile,
        place: Place,
    ) -> Result<(), StoreError> {
        let mut json = serde_json::to_vec_pretty(file).map_err(|e| StoreError::Seal {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        fsio::write_file(path, &json, place).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                StoreError::Exists {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                }
            } else {
                StoreError::Io {
                    action: "write",
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }

    fn load(&self, name: &str) -> Result<(PathBuf, KeyFile, PublicKey), StoreError> {
        let path = self.path(name)?;
        let bytes = fs::read(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::NotFound {
                    name: name.to_string(),
                    dir: self.dir.clone(),
                }
            } else {
                StoreError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let (file, public) = KeyFile::parse(&bytes).map_err(|reason| StoreError::Corrupt {
            path: path.clone(),
            reason,
        })?;
        if file.name != name {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("it holds key {:?}, not {name:?}", file.name),
            });
        }
        Ok((path, file, public))
    }

    fn stored(file: KeyFile, public: PublicKey) -> StoredKey {
        StoredKey {
            name: file.name,
            key_id: public.id(),
            public_key: public,
            account: file.account_id,
        }
    }

    /// All keys, sorted by name; needs no passphrase.
    pub fn list(&self) -> Result<Vec<StoredKey>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    action: "list",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Io {
                action: "list",
                path: self.dir.clone(),
                source,
            })?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            // Temp files start with '.', so they are not valid names and are skipped here.
            if !valid_name(name) {
                continue;
            }
            let (_, file, public) = self.load(name)?;
            keys.push(Self::stored(file, public));
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// The public key of `name`.
    pub fn public_key(&self, name: &str) -> Result<PublicKey, StoreError> {
        Ok(self.load(name)?.2)
    }

    /// The account `name` signs for, if set.
    pub fn account(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.load(name)?.1.account_id)
    }

    /// Decrypts the private key of `name`.
    pub fn unlock(&self, name: &str, passphrase: &str) -> Result<PrivateKey, StoreError> {
        let (path, file, public) = self.load(name)?;
        let secret = file.open(passphrase).map_err(|e| match e {
            OpenError::WrongPassphrase => StoreError::WrongPassphrase(name.to_string()),
            OpenError::Corrupt(reason) => StoreError::Corrupt {
                path: path.clone(),
                reason,
            },
        })?;
        let key = PrivateKey::from_secret_bytes(&secret).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if key.public_key() != public {
            return Err(StoreError::Corrupt {
                path,
                reason: "the private key does not match the public key".into(),
            });
        }
        Ok(key)
    }

    /// Records the account `name` signs for (the default `authority-id` when signing).
    pub fn set_account(&self, name: &str, account_id: &str) -> Result<(), StoreError> {
        if !valid_account(account_id) {
            return Err(StoreError::BadAccount(account_id.to_string()));
        }
        let (path, mut file, _) = self.load(name)?;
        file.account_id = Some(account_id.to_string());
        self.write(name, &path, &file, Place::Replace)
    }

    /// The assertions stored beside key `name` (its account-key and account), for `sign --chain`.
    pub fn chain(&self, name: &str) -> Result<Vec<Assertion>, StoreError> {
        self.load(name)?;
        let path = self.dir.join(format!("{name}{CHAIN_SUFFIX}"));
        let bytes = fs::read(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::NoChain {
                    name: name.to_string(),
                    path: path.clone(),
                }
            } else {
                StoreError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        Assertion::decode_all(&bytes).map_err(|e| StoreError::BadChain {
            name: name.to_string(),
            reason: e.to_string(),
        })
    }

    /// Stores `assertions` (encoded, as `chain` reads them) beside key `name`, replacing any.
    pub fn set_chain(&self, name: &str, assertions: &[u8]) -> Result<(), StoreError> {
        self.load(name)?;
        Assertion::decode_all(assertions).map_err(|e| StoreError::BadChain {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let path = self.dir.join(format!("{name}{CHAIN_SUFFIX}"));
        fsio::write_file(&path, assertions, Place::Replace).map_err(|source| StoreError::Io {
            action: "write",
            path,
            source,
        })
    }
}

#[cfg(test)]
mod tests;
