//! The SHA3-384 of seed snap files, remembered between builds: hashing the seed is most of a
//! build's work, and build after build seeds the same unchanged files.
//!
//! A digest is remembered for a file by what the kernel says of it: device, inode, size,
//! modification and change time ([`FileId`]). Writing to a file, truncating it, replacing it
//! or setting its times back all give it a new change time, which no one but the system's
//! clock sets; so a file with the same [`FileId`] still holds the bytes that were hashed.
//! Only files left alone for [`SETTLED`] before they were read are remembered (or read from
//! an open handle instead of memory, see seed.rs): a file changed within the same tick of the
//! clock as the change before would otherwise keep its change time.
//!
//! The memo lives in build-image's cache beside the unpacked gadget and kernel trees, which a
//! build trusts as much. Entries are small files named `<device>-<inode>`; the most recently
//! used [`KEEP`] are kept.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a file must have been left alone before its digest is remembered.
pub(super) const SETTLED: Duration = Duration::from_secs(2);

/// How many digests the memo keeps.
const KEEP: usize = 64;

/// What identifies a file's content as long as it is not changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    pub(super) fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the file was last changed at least `SETTLED` before `now`.
    pub(super) fn settled(&self, now: SystemTime) -> bool {
        let Ok(since) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let changed = Duration::new(
            u64::try_from(self.ctime.0).unwrap_or(u64::MAX),
            u32::try_from(self.ctime.1).unwrap_or(0),
        );
        changed.checked_add(SETTLED).is_some_and(|c| c <= since)
    }

    fn line(&self, digest: &str) -> String {
        format!(
            "{} {} {}.{:09} {}.{:09} {digest}\n",
            self.ino, self.size, self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1
        )
    }
}

/// The remembered digests under `CACHE/digests/`.
#[derive(Debug)]
pub(super) struct Memo {
    dir: PathBuf,
}

impl Memo {
    pub(super) fn new(cache: &Path) -> Memo {
        Memo {
            dir: cache.join("digests"),
        }
    }

    fn entry(&self, id: &FileId) -> PathBuf {
        self.dir.join(format!("{}-{}", id.dev, id.ino))
    }

    /// The digest remembered for the file `id` names, if it has not changed since.
    pub(super) fn get(&self, id: &FileId) -> Option<String> {
        let path = self.entry(id);
        let text = fs::read_to_string(&path).ok()?;
        let digest = text.trim_end().rsplit_once(' ')?.1;
        (text == id.line(digest)).then(|| {
            super::unpack::touch(&path);
            digest.to_string()
        })
    }

    /// Remembers `digest` for the file `id` names, if it had settled by `read_at` (when it
    /// was opened to be read). Failures are ignored: the memo only saves time.
    pub(super) fn put(&self, id: &FileId, digest: &str, read_at: SystemTime) {
        if !id.settled(read_at) {
            return;
        }
        let path = self.entry(id);
        let tmp = self
            .dir
            .join(format!(".{}-{}.{}", id.dev, id.ino, std::process::id()));
        let stored = fs::create_dir_all(&self.dir)
            .and_then(|()| fs::write(&tmp, id.line(digest)))
            .and_then(|()| fs::rename(&tmp, &path));
        if stored.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        super::unpack::prune(&self.dir, Some(&path), KEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn id(path: &Path) -> FileId {
        FileId::of(&fs::metadata(path).unwrap())
    }

    /// A memo in a fresh cache, and a file `a.snap` there holding `bytes`.
    fn memo_and_file(bytes: &[u8]) -> (tempfile::TempDir, Memo, PathBuf) {
        let cache = tempfile::tempdir().unwrap();
        let memo = Memo::new(cache.path());
        let file = cache.path().join("a.snap");
        fs::write(&file, bytes).unwrap();
        (cache, memo, file)
    }

    #[test]
    fn a_digest_is_remembered_until_the_file_changes() {
        let (cache, memo, file) = memo_and_file(b"snap bytes");
        let later = SystemTime::now() + SETTLED;
        let first = id(&file);
        memo.put(&first, "digest-a", later);
        assert_eq!(memo.get(&first).as_deref(), Some("digest-a"));
        assert_eq!(memo.get(&id(&file)).as_deref(), Some("digest-a"));

        // The same size, and the modification time set back: the change time still differs.
        std::thread::sleep(Duration::from_millis(20));
        let mtime = fs::metadata(&file).unwrap().modified().unwrap();
        let mut f = fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.write_all(b"SNAP").unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        let changed = id(&file);
        assert_eq!((changed.size, changed.mtime), (first.size, first.mtime));
        assert_eq!(memo.get(&changed), None, "a changed file kept its digest");

        // Replaced by another file at the same path: another inode, or at least another
        // change time.
        fs::write(cache.path().join("b.snap"), b"snap bytes").unwrap();
        fs::rename(cache.path().join("b.snap"), &file).unwrap();
        assert_eq!(memo.get(&id(&file)), None);
    }

    #[test]
    fn files_changed_just_now_are_not_remembered() {
        let (_cache, memo, file) = memo_and_file(b"fresh");
        let fresh = id(&file);
        assert!(!fresh.settled(SystemTime::now()));
        assert!(fresh.settled(SystemTime::now() + SETTLED));
        memo.put(&fresh, "digest", SystemTime::now());
        assert_eq!(memo.get(&fresh), None);
    }

    #[test]
    fn a_damaged_entry_is_no_digest() {
        let (_cache, memo, file) = memo_and_file(b"x");
        let id = id(&file);
        memo.put(&id, "digest", SystemTime::now() + SETTLED);
        let entry = memo.entry(&id);
        for text in ["", "garbage", "1 2 3 digest\n"] {
            fs::write(&entry, text).unwrap();
            assert_eq!(memo.get(&id), None, "{text:?}");
        }
    }
}
