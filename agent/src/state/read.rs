//! Reading the device's files from the card with a bound known before anything is
//! allocated: a damaged or hostile `writable` (or base snap) cannot make PID 1 allocate
//! what the file claims, nor block on a FIFO or a device node in place of a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The configuration record: a user name, a key source and a fingerprint, a few hundred
/// bytes as written.
pub const MAX_RECORD: u64 = 16 * 1024;
/// Each of the base snap's `etc/passwd`, `etc/group`, `etc/shadow`, `etc/gshadow`.
pub const MAX_ACCOUNT_FILE: u64 = 1024 * 1024;

/// Why a file of the device's state could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file is larger than any this kind of file can be.
    #[error("{path} is larger than {limit} bytes, the most a {what} can be: it is damaged or was not written by coreforge")]
    TooLarge {
        /// What the file is, e.g. `configuration record`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Something other than a regular file (a directory, a FIFO, a device node).
    #[error("{path} is not a regular file, which a {what} must be")]
    NotAFile {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Opening or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl ReadError {
    /// The I/O error's kind (`NotFound` for a missing file), `InvalidData` for the others.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            ReadError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        }
    }
}

/// Reads `path`, a `what`, refusing it unless it is a regular file of at most `limit` bytes.
/// The size is checked before any allocation, and the read itself stops after `limit + 1`
/// bytes, so a file that grows meanwhile is refused too.
pub fn read_bounded(path: &Path, what: &'static str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore it).
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            what,
            path: path.to_owned(),
        });
    }
    let too_large = || ReadError::TooLarge {
        what,
        path: path.to_owned(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    // One allocation of the size known to be within the limit (and one byte to see more).
    let capacity = usize::try_from(meta.len().saturating_add(1)).map_err(|_| too_large())?;
    let mut bytes = Vec::with_capacity(capacity);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cf-agent-read-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        let dir = scratch("limit");
        let path = dir.join("f");
        fs::write(&path, vec![b'x'; 100]).unwrap();
        assert_eq!(read_bounded(&path, "test file", 100).unwrap().len(), 100);
        let err = read_bounded(&path, "test file", 99).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 99, ref path, .. } if path.ends_with("f")),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("f is larger than 99 bytes"), "{text}");
        assert!(text.contains("the most a test file can be"), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_sparse_giant_before_reading_it() {
        let dir = scratch("sparse");
        let path = dir.join("huge");
        // 1 TiB that occupies no space: reading it whole would exhaust memory.
        fs::File::create(&path).unwrap().set_len(1 << 40).unwrap();
        let err = read_bounded(&path, "configuration record", MAX_RECORD).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_without_blocking() {
        let dir = scratch("special");
        let err = read_bounded(&dir, "configuration record", MAX_RECORD).unwrap_err();
        assert!(matches!(err, ReadError::NotAFile { .. }), "{err:?}");
        let fifo = dir.join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let err = read_bounded(&fifo, "configuration record", MAX_RECORD).unwrap_err();
        assert!(matches!(err, ReadError::NotAFile { .. }), "{err:?}");
        // /dev/zero never ends: refused as a device, not read until memory runs out.
        let err = read_bounded(Path::new("/dev/zero"), "SSH host key", 1024).unwrap_err();
        assert!(matches!(err, ReadError::NotAFile { .. }), "{err:?}");
        let err = read_bounded(&dir.join("absent"), "SSH host key", 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("absent"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
