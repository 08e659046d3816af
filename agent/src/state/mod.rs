//! The device's writable state on the `writable` partition (mounted at `/run/mnt/data`).
//!
//! `system-data/` is the OS's state (the overlay's upper directory). It exists only after a
//! complete commit, so its existence alone means "configured". A commit writes everything
//! into `system-data.new/`, fsyncs it, and renames it into place; a boot that finds a
//! leftover `system-data.new/` (a commit cut short) deletes it and starts over. After a power
//! cut at any moment the device is either unconfigured or completely configured.

mod accounts;
mod commit;
mod hostkey;
mod read;
mod record;

pub use commit::commit;
pub use hostkey::HostKey;
#[allow(unused_imports)] // the limits and the error, for callers that match on them
pub use read::{ReadError, MAX_ACCOUNT_FILE, MAX_RECORD};
pub use record::Record;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use read::read_bounded;

/// The OS's state, the overlay's upper directory; exists only after a complete commit.
pub const SYSTEM_DATA: &str = "system-data";
/// Where a commit in progress writes.
pub const STAGING: &str = "system-data.new";
/// The commit's record, relative to `system-data/`.
pub const RECORD: &str = "var/lib/coreforge/console-conf.json";
/// The SSH server's host key, relative to `system-data/` (dropbear's format).
pub const HOST_KEY: &str = "etc/dropbear/dropbear_ed25519_host_key";
/// The SSH host key for OpenSSH's sshd (the Debian base), with `.pub` beside it.
pub const OPENSSH_HOST_KEY: &str = "etc/ssh/ssh_host_ed25519_key";

/// Whether first-boot configuration has happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No complete commit: console-conf (or the preseed file) must run.
    Unconfigured,
    /// Configured earlier; what was created.
    Configured(Record),
}

/// Why the device's state on `writable` could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `system-data` is there but is not a directory.
    #[error("{0} is not a directory; remove it to set the device up again")]
    NotADirectory(PathBuf),
    /// Looking at `system-data` failed.
    #[error("cannot look at {path}: {source}; check the writable partition")]
    Look {
        /// `system-data`.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An interrupted commit's staging directory could not be removed.
    #[error("cannot remove the interrupted commit {path}: {source}; check the writable partition")]
    Staging {
        /// The staging directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The configuration record cannot be read (missing, too large, not a file).
    #[error("cannot read the configuration record: {source}; remove {system} to set the device up again")]
    ReadRecord {
        /// `system-data`.
        system: PathBuf,
        /// Why.
        source: ReadError,
    },
    /// The configuration record is not one the commit writes.
    #[error("the configuration record {path} is damaged: {reason}; remove {system} to set the device up again")]
    DamagedRecord {
        /// The record.
        path: PathBuf,
        /// `system-data`.
        system: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The state of the `writable` partition mounted at `data`, after removing what an
/// interrupted commit left behind.
pub fn state(data: &Path) -> Result<State, StateError> {
    remove_staging(data)?;
    let system = data.join(SYSTEM_DATA);
    match fs::symlink_metadata(&system) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(StateError::NotADirectory(system)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::Unconfigured),
        Err(source) => {
            return Err(StateError::Look {
                path: system,
                source,
            })
        }
    }
    let path = system.join(RECORD);
    let bytes = read_bounded(&path, "configuration record", MAX_RECORD).map_err(|source| {
        StateError::ReadRecord {
            system: system.clone(),
            source,
        }
    })?;
    let record = Record::from_json(&bytes).map_err(|e| StateError::DamagedRecord {
        path,
        system,
        reason: e.to_string(),
    })?;
    Ok(State::Configured(record))
}

/// Deletes `system-data.new` if a commit was cut short, and makes the deletion durable.
fn remove_staging(data: &Path) -> Result<(), StateError> {
    let staging = data.join(STAGING);
    let removed = match fs::symlink_metadata(&staging) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&staging),
        Ok(_) => fs::remove_file(&staging),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|source| StateError::Staging {
        path: staging,
        source,
    })?;
    commit::sync_dir(data).map_err(|source| StateError::Staging {
        path: data.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
