//! Store files are written to a temp file beside the target, synced, then renamed
//! into place, so a failed run leaves the store as it was.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Mode of the store's private key.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of every other store file.
pub const PUBLIC_MODE: u32 = 0o644;

/// Maps an I/O error on `path` to a [`StoreError::Io`].
pub fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Writes `bytes` to `target` (mode `mode`) atomically; `target`'s directory must exist.
pub fn write(target: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let tmp = temp_path(target);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err("write", target))
}

/// Copies `from` to `to` atomically (mode 0644).
pub fn copy(from: &Path, to: &Path) -> Result<(), StoreError> {
    let tmp = temp_path(to);
    let result = (|| {
        fs::copy(from, &tmp)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, to)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err("copy into", to))
}

/// Creates `dir` and its parents where missing.
pub fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))
}
