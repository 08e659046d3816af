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
mod record;

pub use commit::commit;
pub use hostkey::HostKey;
pub use record::Record;

use std::fs;
use std::io;
use std::path::Path;

/// The OS's state, the overlay's upper directory; exists only after a complete commit.
pub const SYSTEM_DATA: &str = "system-data";
/// Where a commit in progress writes.
pub const STAGING: &str = "system-data.new";
/// The commit's record, relative to `system-data/`.
pub const RECORD: &str = "var/lib/coreforge/console-conf.json";
/// The SSH server's host key, relative to `system-data/` (dropbear's format).
pub const HOST_KEY: &str = "etc/dropbear/dropbear_ed25519_host_key";

/// Whether first-boot configuration has happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No complete commit: console-conf (or the preseed file) must run.
    Unconfigured,
    /// Configured earlier; what was created.
    Configured(Record),
}

/// The state of the `writable` partition mounted at `data`, after removing what an
/// interrupted commit left behind.
pub fn state(data: &Path) -> io::Result<State> {
    remove_staging(data)?;
    let system = data.join(SYSTEM_DATA);
    match fs::symlink_metadata(&system) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not a directory; remove it to set the device up again",
                    system.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::Unconfigured),
        Err(e) => return Err(e),
    }
    let path = system.join(RECORD);
    let bytes = fs::read(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot read the configuration record {}: {e}; remove {} to set the device up again",
                path.display(),
                system.display()
            ),
        )
    })?;
    let record = Record::from_json(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the configuration record {} is damaged: {e}; remove {} to set the device up again",
                path.display(),
                system.display()
            ),
        )
    })?;
    Ok(State::Configured(record))
}

/// The host key of a configured device, to show its fingerprint again on later boots.
pub fn load_host_key(data: &Path) -> io::Result<HostKey> {
    let path = data.join(SYSTEM_DATA).join(HOST_KEY);
    let bytes = zeroize::Zeroizing::new(fs::read(&path)?);
    HostKey::from_dropbear(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Deletes `system-data.new` if a commit was cut short, and makes the deletion durable.
fn remove_staging(data: &Path) -> io::Result<()> {
    let staging = data.join(STAGING);
    let removed = match fs::symlink_metadata(&staging) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&staging),
        Ok(_) => fs::remove_file(&staging),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot remove the interrupted commit {}: {e}; check the writable partition",
                staging.display()
            ),
        )
    })?;
    commit::sync_dir(data)
}

#[cfg(test)]
mod tests;
