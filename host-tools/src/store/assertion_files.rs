//! The assertions a store signed, as files: `DIR/assertions/TYPE/KEY.assert`, named by the
//! last part of their primary key (ids hold no '/' and start with no '.').

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use coreforge_assertions::Assertion;

use super::files::{self, io_err, PUBLIC_MODE};
use super::StoreError;

/// The folder of the assertions.
pub(super) const ASSERTIONS: &str = "assertions";

/// The stored assertion of `type_name` whose primary key is `key` (every part, in order) in
/// the store in `dir`, if any; parts are checked as names before any file is looked for. No
/// need to open the store's database: the assertions are files.
pub fn find_assertion_in(
    dir: &Path,
    type_name: &str,
    key: &[&str],
) -> Result<Option<Assertion>, StoreError> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.'))
    };
    let Some(last) = key.last() else {
        return Ok(None);
    };
    if !name_ok(type_name) || !key.iter().all(|k| name_ok(k)) {
        return Ok(None);
    }
    let path = assertion_path_in(dir, type_name, last);
    let found = match fs::read(&path) {
        Ok(bytes) => Some(decode_one(&path, &bytes)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    Ok(found.filter(|a| a.type_name() == type_name && a.primary_key() == key))
}

pub(super) fn assertion_path_in(dir: &Path, type_name: &str, key: &str) -> PathBuf {
    dir.join(ASSERTIONS)
        .join(type_name)
        .join(format!("{key}.assert"))
}

/// Saves `a` under its type and last primary-key header (ids: no '/' or '.').
pub(super) fn save_assertion_in(dir: &Path, a: &Assertion) -> Result<(), StoreError> {
    let key = a
        .primary_key()
        .last()
        .copied()
        .unwrap_or_default()
        .to_owned();
    let path = assertion_path_in(dir, a.type_name(), &key);
    if let Some(parent) = path.parent() {
        files::ensure_dir(parent)?;
    }
    files::write(&path, a.encode(), PUBLIC_MODE)
}

pub(super) fn decode_one(path: &Path, bytes: &[u8]) -> Result<Assertion, StoreError> {
    Assertion::decode(bytes.strip_suffix(b"\n").unwrap_or(bytes)).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
