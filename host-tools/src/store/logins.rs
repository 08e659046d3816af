//! Saved logins to served stores: `logins.json` in `$COREFORGE_CONFIG` (default
//! `$XDG_CONFIG_HOME/coreforge`, else `~/.config/coreforge`), mode 0600, one entry per store
//! URL with the e-mail, username and token `coreforge login` got.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::files::{self, io_err, SECRET_MODE};
use super::StoreError;

/// One saved login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Login {
    /// The e-mail address logged in with.
    pub email: String,
    /// The account's username (its account id).
    pub username: String,
    /// The token to send.
    pub token: String,
}

/// Where logins are kept.
pub fn path() -> PathBuf {
    let dir = std::env::var_os("COREFORGE_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("coreforge")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/coreforge")))
        .unwrap_or_else(|| PathBuf::from(".coreforge"));
    dir.join("logins.json")
}

fn load() -> Result<BTreeMap<String, Login>, StoreError> {
    let path = path();
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

/// Saves the login to the store at `url`, replacing any earlier one; returns the file.
pub fn save(url: &str, login: Login) -> Result<PathBuf, StoreError> {
    let path = path();
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err("create", dir))?;
    }
    let mut all = load()?;
    all.insert(url.to_owned(), login);
    let json = serde_json::to_vec_pretty(&all).map_err(|e| StoreError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    files::write(&path, &json, SECRET_MODE)?;
    Ok(path)
}

/// The login saved for the store at `url`.
pub fn get(url: &str) -> Result<Option<Login>, StoreError> {
    Ok(load()?.remove(url))
}
