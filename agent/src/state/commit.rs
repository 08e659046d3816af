//! The first-boot commit: every file of the new configuration is written into
//! `system-data.new/` and fsynced, the record last; then one rename makes it `system-data/`
//! and an fsync of the partition's root makes the rename durable. The rename is the moment
//! the device becomes configured; before it, the next boot deletes the staging directory.

use super::accounts::{self, AccountError, BaseFiles};
use super::read::{read_bounded, MAX_ACCOUNT_FILE};
use super::record::{self, Record};
use super::{HostKey, HOST_KEY, OPENSSH_HOST_KEY, RECORD, STAGING, SYSTEM_DATA};
use crate::setup::{Os, OsFile, Setup};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Why the configuration could not be committed. The device stays unconfigured.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// `system-data/` already exists.
    #[error("the device is already configured ({0} exists); remove it to set the device up again")]
    AlreadyConfigured(PathBuf),
    /// The user name is not one the OS accepts.
    #[error("the user name {0:?} is not valid: use up to 32 lower-case letters, digits, '-' and '_', starting with a letter")]
    BadUserName(String),
    /// The account has no SSH keys: it could never log in.
    #[error("the account {0:?} has no SSH keys; give at least one key so you can log in")]
    NoKeys(String),
    /// A key would span several lines of `authorized_keys`.
    #[error("an SSH key for {0:?} contains a line break; paste each key on one line")]
    KeyLineBreak(String),
    /// A network interface name outside `[A-Za-z0-9_.-]{1,15}` (it would reach the shell
    /// busybox ifup runs `pre-up` lines with).
    #[error("the network interface name {0:?} is not valid: use 1-15 letters, digits, '_', '.' or '-' (for example eth0)")]
    BadInterface(String),
    /// An OS file's path would leave the OS's root.
    #[error("the OS file path {0} must be relative and must not contain '..'")]
    BadOsPath(PathBuf),
    /// The base snap's account files could not be read.
    #[error("cannot read the base snap's {path}: {source}; check that the base snap is mounted and complete")]
    ReadBase {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The account does not fit the base's account files.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Writing the new state failed; nothing was committed.
    #[error("cannot write {path}: {source}; nothing was changed: check the writable partition (full or read-only?) and try again")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A simulated power cut (tests only).
    #[cfg(test)]
    #[error("simulated power cut")]
    PowerCut,
}

/// What a successful commit created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The record written to `var/lib/coreforge/console-conf.json`.
    pub record: Record,
    /// The new account's uid.
    pub uid: u32,
    /// The gid of its own group.
    pub gid: u32,
}

/// Commits `setup`'s account, the host key (in the form of `os`, the base's OS) and
/// `os_files` (network configuration and the like, root-owned) to the `writable` partition
/// mounted at `data`, starting from the account files of the base snap mounted at
/// `base_root`.
pub fn commit(
    data: &Path,
    base_root: &Path,
    os: Os,
    setup: &Setup,
    host_key: &HostKey,
    os_files: &[OsFile],
) -> Result<Committed, CommitError> {
    let now = record::now_secs();
    commit_steps(
        data,
        base_root,
        os,
        setup,
        host_key,
        os_files,
        now,
        &mut Steps::default(),
    )
}

/// Counts the commit's steps; in tests it can stop the commit before step `stop_at`, as a
/// power cut would.
#[derive(Debug, Default)]
pub(super) struct Steps {
    /// Steps completed.
    pub(super) done: usize,
    /// Fail with [`CommitError::PowerCut`] instead of doing this step.
    #[cfg(test)]
    pub(super) stop_at: Option<usize>,
}

impl Steps {
    /// Called before each step that changes the disk.
    fn next(&mut self) -> Result<(), CommitError> {
        #[cfg(test)]
        if self.stop_at == Some(self.done) {
            return Err(CommitError::PowerCut);
        }
        self.done += 1;
        Ok(())
    }
}

/// [`commit`] at time `now` (seconds since 1970), counting steps in `steps`.
// commit()'s arguments, plus the clock and the step counter the power-cut tests drive.
#[allow(clippy::too_many_arguments)]
pub(super) fn commit_steps(
    data: &Path,
    base_root: &Path,
    os: Os,
    setup: &Setup,
    host_key: &HostKey,
    os_files: &[OsFile],
    now: u64,
    steps: &mut Steps,
) -> Result<Committed, CommitError> {
    let account = &setup.account;
    let user = account.username.as_str();
    check_input(setup, os_files)?;
    let system = data.join(SYSTEM_DATA);
    if fs::symlink_metadata(&system).is_ok() {
        return Err(CommitError::AlreadyConfigured(system));
    }
    let base = read_base(base_root)?;
    let files = accounts::add_account(
        &base,
        user,
        setup.account.password.as_deref(),
        record::days_if_clock_set(now),
    )?;
    let (uid, gid) = (files.uid, files.gid);
    let authorized_keys: String = account
        .keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .map(|k| format!("{k}\n"))
        .collect();
    let record = Record {
        user: user.to_string(),
        uid,
        source: account.source.clone(),
        time: record::rfc3339(now),
        host_key: host_key.fingerprint(),
    };

    // A leftover from an earlier attempt in this boot (state() removes those of earlier boots).
    let staging = data.join(STAGING);
    if fs::symlink_metadata(&staging).is_ok() {
        steps.next()?;
        fs::remove_dir_all(&staging).map_err(|e| write_error(&staging, e))?;
    }
    let mut stage = Stage {
        root: staging.clone(),
        dirs: Vec::new(),
        steps,
    };
    // The upper directory's root becomes the OS's `/`: root-owned 0755 like the base's.
    stage.dir(Path::new(""), 0o755, ROOT)?;
    let (shadow_mode, shadow_owner) = match files.shadow_gid {
        // Debian: root:shadow 0640, so that members of `shadow` (e.g. unix_chkpwd) can read it.
        Some(shadow_gid) => (0o640, (0, shadow_gid)),
        None => (0o600, ROOT),
    };
    stage.file("etc/passwd", files.passwd.as_bytes(), 0o644, ROOT)?;
    stage.file("etc/group", files.group.as_bytes(), 0o644, ROOT)?;
    stage.file(
        "etc/shadow",
        files.shadow.as_bytes(),
        shadow_mode,
        shadow_owner,
    )?;
    if let Some(gshadow) = &files.gshadow {
        stage.file("etc/gshadow", gshadow.as_bytes(), shadow_mode, shadow_owner)?;
    }
    // sudo reads it as root only: root:root 0750 as Debian's sudo package ships it, not
    // the 0755 a parent directory gets by default; the file itself 0440. Name and text are
    // snapd's (`snap create-user`); user names here need none of its escaping.
    stage.dir(Path::new(SUDOERS_D), 0o750, ROOT)?;
    stage.file(
        &format!("{SUDOERS_D}/create-user-{user}"),
        format!(
            "\n# Created by snap create-user\n\n# User rules for {user}\n{user} ALL=(ALL) NOPASSWD:ALL\n"
        )
        .as_bytes(),
        0o440,
        ROOT,
    )?;
    // The host key console-conf showed, where the base's SSH server reads it.
    match os {
        Os::Systemd => {
            let comment = "root@coreforge";
            stage.file(OPENSSH_HOST_KEY, &host_key.to_openssh(comment), 0o600, ROOT)?;
            stage.file(
                &format!("{OPENSSH_HOST_KEY}.pub"),
                host_key.public_openssh_file(comment).as_bytes(),
                0o644,
                ROOT,
            )?;
        }
        Os::Busybox => stage.file(HOST_KEY, &host_key.to_dropbear(), 0o600, ROOT)?,
    }
    let home = format!("home/{user}");
    stage.dir(Path::new(&home), 0o750, (uid, gid))?;
    stage.dir(Path::new(&format!("{home}/.ssh")), 0o700, (uid, gid))?;
    stage.file(
        &format!("{home}/.ssh/authorized_keys"),
        authorized_keys.as_bytes(),
        0o600,
        (uid, gid),
    )?;
    for file in os_files {
        match &file.link {
            Some(target) => stage.link_at(&file.path, target)?,
            None => stage.file_at(&file.path, &file.contents, file.mode, ROOT)?,
        }
    }
    stage.sync_dirs()?;
    // Last inside the staging directory: a record means every file before it is complete.
    stage.file(RECORD, &record.to_json(), 0o644, ROOT)?;
    stage.sync_dirs()?;

    // The commit point. The two debug lines bound the window in which a power cut may
    // leave either state (the power-cut test cuts on them): before the first, the device
    // stays unconfigured; after the second, it is configured.
    stage.steps.next()?;
    log::debug!("{COMMIT_START}");
    fs::rename(&staging, &system).map_err(|e| write_error(&system, e))?;
    stage.steps.next()?;
    sync_dir(data).map_err(|e| write_error(data, e))?;
    log::debug!("{COMMIT_DONE}");
    Ok(Committed { record, uid, gid })
}

/// Printed (debug) just before the rename of `system-data.new` to `system-data`.
pub const COMMIT_START: &str = "commit: renaming system-data.new to system-data";
/// Printed (debug) once the rename is durable (the partition's root fsynced).
pub const COMMIT_DONE: &str = "commit: system-data is in place and synced";

/// sudo's drop-in directory.
const SUDOERS_D: &str = "etc/sudoers.d";

/// uid and gid of root.
const ROOT: (u32, u32) = (0, 0);

/// The staging directory being written.
struct Stage<'a> {
    root: PathBuf,
    /// Directories written to since the last [`Stage::sync_dirs`], in creation order.
    dirs: Vec<PathBuf>,
    steps: &'a mut Steps,
}

impl Stage<'_> {
    /// Creates directory `rel` (and root-owned 0755 parents) with `mode`, owned by `owner`.
    fn dir(&mut self, rel: &Path, mode: u32, owner: (u32, u32)) -> Result<(), CommitError> {
        let path = self.root.join(rel);
        if let Some(parent) = rel.parent() {
            if !parent.as_os_str().is_empty() && !self.root.join(parent).is_dir() {
                self.dir(parent, 0o755, ROOT)?;
            }
        }
        self.steps.next()?;
        fs::create_dir(&path)
            .and_then(|()| set_owner_mode(&path, mode, owner))
            .map_err(|e| write_error(&path, e))?;
        if !rel.as_os_str().is_empty() {
            // Its parent gained an entry.
            self.note_changed(self.root.join(rel.parent().unwrap_or(Path::new(""))));
        }
        self.note_changed(path);
        Ok(())
    }

    /// Writes file `rel` (a plain relative path of this module's own).
    fn file(
        &mut self,
        rel: &str,
        contents: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(), CommitError> {
        self.file_at(Path::new(rel), contents, mode, owner)
    }

    /// Writes and fsyncs file `rel` with `mode`, owned by `owner`, creating its parents.
    fn file_at(
        &mut self,
        rel: &Path,
        contents: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(), CommitError> {
        self.parent_of(rel)?;
        let path = self.root.join(rel);
        self.steps.next()?;
        write_file(&path, contents, mode, owner).map_err(|e| write_error(&path, e))
    }

    /// Creates `rel`'s parent directories (root-owned 0755) as needed; the parent gains an
    /// entry, so it is fsynced.
    fn parent_of(&mut self, rel: &Path) -> Result<(), CommitError> {
        if let Some(parent) = rel.parent() {
            if !parent.as_os_str().is_empty() && !self.root.join(parent).is_dir() {
                self.dir(parent, 0o755, ROOT)?;
            }
            self.note_changed(self.root.join(parent));
        }
        Ok(())
    }

    /// Makes `rel` a symbolic link to `target` (root-owned, like every link), creating its
    /// parents.
    fn link_at(&mut self, rel: &Path, target: &Path) -> Result<(), CommitError> {
        self.parent_of(rel)?;
        let path = self.root.join(rel);
        self.steps.next()?;
        std::os::unix::fs::symlink(target, &path).map_err(|e| write_error(&path, e))
    }

    /// Remembers that `dir`'s entries changed, so it is fsynced.
    fn note_changed(&mut self, dir: PathBuf) {
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }

    /// Fsyncs every directory changed since the last call, deepest first, then the staging root.
    fn sync_dirs(&mut self) -> Result<(), CommitError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            self.steps.next()?;
            sync_dir(&dir).map_err(|e| write_error(&dir, e))?;
        }
        Ok(())
    }
}

/// Creates `path` (it must not exist), writes `contents`, sets owner and mode, fsyncs.
fn write_file(path: &Path, contents: &[u8], mode: u32, owner: (u32, u32)) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    // Owner first: chown clears set-id bits, and the mode must not depend on the umask.
    rustix::fs::fchown(&file, Some(uid(owner.0)), Some(gid(owner.1)))?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

/// Sets a directory's owner and mode (not subject to the umask, unlike `mkdir`'s mode).
fn set_owner_mode(path: &Path, mode: u32, owner: (u32, u32)) -> io::Result<()> {
    rustix::fs::chown(path, Some(uid(owner.0)), Some(gid(owner.1)))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn uid(n: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(n)
}

fn gid(n: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(n)
}

/// Fsyncs a directory, making the creation, removal or renaming of its entries durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_error(path: &Path, source: io::Error) -> CommitError {
    CommitError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The base snap's account files; `etc/passwd` and `etc/group` must exist.
fn read_base(base_root: &Path) -> Result<BaseFiles, CommitError> {
    let read = |name: &str| -> Result<Option<String>, CommitError> {
        let path = base_root.join(name);
        let bytes = match read_bounded(&path, "account file", MAX_ACCOUNT_FILE) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CommitError::ReadBase {
                    source: io::Error::new(e.kind(), e),
                    path,
                })
            }
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| CommitError::ReadBase {
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })
    };
    let required = |name: &str| {
        read(name)?.ok_or_else(|| CommitError::ReadBase {
            path: base_root.join(name),
            source: io::ErrorKind::NotFound.into(),
        })
    };
    let optional = read;
    Ok(BaseFiles {
        passwd: required("etc/passwd")?,
        group: required("etc/group")?,
        shadow: optional("etc/shadow")?,
        gshadow: optional("etc/gshadow")?,
    })
}

/// Refuses what would make a broken or unsafe configuration, before anything is written.
fn check_input(setup: &Setup, os_files: &[OsFile]) -> Result<(), CommitError> {
    let account = &setup.account;
    let user = account.username.as_str();
    let valid_user = (1..=32).contains(&user.len())
        && user.starts_with(|c: char| c.is_ascii_lowercase())
        && user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_user {
        return Err(CommitError::BadUserName(user.to_string()));
    }
    if account.keys.iter().all(|k| k.trim().is_empty()) {
        return Err(CommitError::NoKeys(user.to_string()));
    }
    if account.keys.iter().any(|k| k.trim().contains(['\n', '\r'])) {
        return Err(CommitError::KeyLineBreak(user.to_string()));
    }
    let wifi = setup.wifi.as_ref().map(|w| w.interface.as_str());
    for name in setup.network.interface().into_iter().chain(wifi) {
        if !coreforge_preseed::valid_interface(name) {
            return Err(CommitError::BadInterface(name.to_string()));
        }
    }
    for file in os_files {
        let plain = file.path.components().count() > 0
            && file
                .path
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(CommitError::BadOsPath(file.path.clone()));
        }
    }
    Ok(())
}
