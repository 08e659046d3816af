//! Writing key files: temp file beside the target, fsync, then link or rename into
//! place, so a failed run never leaves a half-written key.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Key files and the directory are private to their owner.
pub(super) const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// How to put the new file in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Fail with `AlreadyExists` if the target exists (atomically, via a hard link).
    New,
    /// Replace the target.
    Replace,
}

/// Creates `dir` (and parents) with mode 0700 where missing.
pub(super) fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

fn temp_path(target: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Writes `bytes` to `target` with mode 0600 through a synced temp file.
pub(super) fn write_file(target: &Path, bytes: &[u8], place: Place) -> io::Result<()> {
    let tmp = temp_path(target);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        match place {
            // link(2) refuses an existing target: no window where two creators both win.
            Place::New => fs::hard_link(&tmp, target),
            Place::Replace => fs::rename(&tmp, target),
        }
    })();
    // After a link the temp name is a second name of the new file; after a rename it is gone.
    let _ = fs::remove_file(&tmp);
    result?;
    if let Some(dir) = target.parent() {
        // Make the new directory entry durable too.
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn new_never_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("k.key");
        write_file(&target, b"first", Place::New).unwrap();
        let err = write_file(&target, b"second", Place::New).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["k.key"]);
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Only one name for the file: the temp link is gone.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(&target).unwrap().nlink(), 1);
    }

    #[test]
    fn replace_swaps_contents_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("k.key");
        write_file(&target, b"first", Place::New).unwrap();
        write_file(&target, b"second", Place::Replace).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["k.key"]);
    }

    #[test]
    fn failure_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: rename fails after the temp file was written.
        let target = dir.path().join("k.key");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"").unwrap();
        assert!(write_file(&target, b"data", Place::Replace).is_err());
        assert_eq!(names(dir.path()), ["k.key"]);
        assert!(write_file(&dir.path().join("missing/k.key"), b"d", Place::New).is_err());
    }

    #[test]
    fn ensure_dir_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("a/keys");
        ensure_dir(&keys).unwrap();
        assert_eq!(
            fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
