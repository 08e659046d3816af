//! The store: where snaps, their revisions, channels and the assertions that vouch for
//! them come from. Today a local directory ([`LocalStore`]); the [`Store`] trait lets a
//! remote store stand in its place later.

mod accounts;
mod assertion_files;
mod channel;
mod db;
mod dir;
mod files;
mod keys;
mod local;
pub mod logins;
mod meta;
mod pg;
pub mod remote;
mod served;
mod state;

use std::io;
use std::path::{Path, PathBuf};

use coreforge_assertions::Assertion;

use crate::snap::{SnapError, SnapInfo};

pub use accounts::Person;
pub use assertion_files::find_assertion_in;
pub use channel::ChannelError;
pub use channel::{Channel, RISKS};
pub use local::{LocalStore, StoreKey, DEFAULT_AUTHORITY};
pub use state::{RevisionEntry, SnapEntry};

/// What a store gives an image builder.
pub trait Store {
    /// The assertions devices trust (root account-key + account).
    fn roots(&self) -> Result<Vec<Assertion>, StoreError>;
    /// The snap `name` for `arch` at `channel` (with fallback): file, revision, snap-id.
    fn resolve(&self, name: &str, channel: &str, arch: &str) -> Result<ResolvedSnap, StoreError>;
    /// Every assertion needed to verify a snap: its snap-declaration and snap-revision.
    fn snap_assertions(&self, snap: &ResolvedSnap) -> Result<Vec<Assertion>, StoreError>;
    /// Accounts and account-keys the store knows (for model chains).
    fn account_assertions(&self, account_id: &str) -> Result<Vec<Assertion>, StoreError>;
    /// Every account and account-key the store holds, current revisions (for devices).
    fn all_account_assertions(&self) -> Result<Vec<Assertion>, StoreError>;
}

/// One revision of a snap, picked by [`Store::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSnap {
    /// The snap name.
    pub name: String,
    /// The store's id of the snap.
    pub snap_id: String,
    /// The revision picked.
    pub revision: u64,
    /// The snap file (in the store; copy it, do not move it).
    pub path: PathBuf,
    /// The file's `snap-sha3-384` as the store recorded it at upload: a name for its
    /// contents (caches use it), not a proof; what is seeded is hashed again.
    pub sha3_384: String,
    /// Its snap.yaml.
    pub info: SnapInfo,
}

/// Opens the store named by `spec`: a directory made by `coreforge store init`, or the
/// URL of a served one (`https://...`), whose roots must come out of band (`trusted`) and
/// whose downloads are cached under `cache`.
pub fn open_store(
    spec: &str,
    trusted: Option<&Path>,
    cache: &Path,
) -> Result<Box<dyn Store>, StoreError> {
    if spec.contains("://") {
        let Some(trusted) = trusted else {
            return Err(StoreError::Unsupported(spec.to_owned()));
        };
        return Ok(Box::new(served::ServedStore::open(spec, trusted, cache)?));
    }
    Ok(Box::new(LocalStore::open(Path::new(spec))?))
}

/// What went wrong in the store; messages name what is missing and how to fix it.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// A served store was named without the roots to trust.
    #[error("store {0:?}: a served store's root assertions must come out of band: pass --trusted FILE (the root.assertions of the store's directory, given to you by its administrator)")]
    Unsupported(String),
    /// Talking to a served store failed.
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
    /// The directory holds no store.
    #[error("{} is not a coreforge store (no store.json): create one with `coreforge store init {}`", .0.display(), .0.display())]
    NotAStore(PathBuf),
    /// `init` on a directory that already holds a store.
    #[error("{} already holds a store; use it, or choose another directory", .0.display())]
    AlreadyAStore(PathBuf),
    /// No snap of that name was ever uploaded.
    #[error("snap {name:?} is not in the store {} (known: {}); upload it with `coreforge store upload`", store.display(), list_or_none(known))]
    UnknownSnap {
        /// The snap name.
        name: String,
        /// The store directory.
        store: PathBuf,
        /// Names the store has.
        known: Vec<String>,
    },
    /// The snap has no such revision.
    #[error(
        "snap {name:?} has no revision {revision} (uploaded: {})",
        list_or_none(known)
    )]
    UnknownRevision {
        /// The snap name.
        name: String,
        /// The revision asked for.
        revision: u64,
        /// Revisions uploaded, as `r1`, `r2`, ...
        known: Vec<String>,
    },
    /// Nothing released for this architecture at this channel or a more stable one.
    #[error(
        "snap {name:?} has no revision for {arch} in channel {channel:?} (released: {})",
        list_or_none(released)
    )]
    NoRevision {
        /// The snap name.
        name: String,
        /// The architecture asked for.
        arch: String,
        /// The channel asked for, as given.
        channel: String,
        /// What is released, as `CHANNEL ARCH rN`.
        released: Vec<String>,
    },
    /// An architecture snaps cannot name.
    #[error("unknown architecture {arch:?}: use one of {}", crate::snap::ARCHITECTURES[1..].join(", "))]
    UnknownArch {
        /// The architecture given.
        arch: String,
    },
    /// The channel cannot be parsed.
    #[error(transparent)]
    BadChannel(#[from] ChannelError),
    /// The store has no account with this id.
    #[error("account {account:?} is not known to the store {}: register one of its keys with `coreforge register-key NAME --store {} --account {account}`", store.display(), store.display())]
    UnknownAccount {
        /// The account id.
        account: String,
        /// The store directory.
        store: PathBuf,
    },
    /// An account id snapd would not accept.
    #[error("invalid account id {0:?}: snapd account ids are 2-28 characters of a-z, 0-9 and '-', or 32 letters and digits")]
    BadAccountId(String),
    /// An account-key name snapd would not accept.
    #[error("invalid key name {0:?} for an account-key: snapd wants lowercase letters, digits and single '-' (with at least one letter); create the key under such a name")]
    BadKeyName(String),
    /// A key's validity would start before the store's own key's.
    #[error("--since {since} is before the store's own key is valid ({store_since}): the store could not vouch for what the key signs then; give a later --since")]
    SinceBeforeStore {
        /// The start asked for.
        since: String,
        /// The store key's start.
        store_since: String,
    },
    /// No account-key with this id is registered.
    #[error(
        "no account-key {0:?} is registered with this store (see store/assertions/account-key/)"
    )]
    UnknownKey(String),
    /// The store's own root key cannot be revoked this way.
    #[error("key {0:?} is the store's own root key: devices trust it directly; make a new store instead")]
    RootKey(String),
    /// The revocation time is not after the key's start.
    #[error("key {key_id:?} is valid since {since}: --until must be later")]
    UntilBeforeSince {
        /// The key.
        key_id: String,
        /// Its start.
        since: String,
    },
    /// The key is already registered for another account.
    #[error("key {key_id} is already registered for account {owner:?}, not {account:?}")]
    KeyOfOtherAccount {
        /// The key id.
        key_id: String,
        /// Its registered owner.
        owner: String,
        /// The account asked for.
        account: String,
    },
    /// A later upload names another publisher than the first.
    #[error("snap {name:?} is published by {existing:?}, not {publisher:?}; leave out --publisher or give {existing:?}")]
    OtherPublisher {
        /// The snap name.
        name: String,
        /// The publisher asked for.
        publisher: String,
        /// The publisher of record.
        existing: String,
    },
    /// An e-mail address that is not one.
    #[error("{0:?} is not an e-mail address")]
    BadEmail(String),
    /// An SSH key that does not parse.
    #[error("SSH key {key:?}... is not an OpenSSH public key line: {reason}")]
    BadSshKey {
        /// Its start.
        key: String,
        /// Why.
        reason: String,
    },
    /// The username belongs to another account.
    #[error("username {username:?} is taken by the account {email}; choose another")]
    UsernameTaken {
        /// The username.
        username: String,
        /// Whose it is.
        email: String,
    },
    /// Wrong e-mail, password or token.
    #[error("the e-mail address and password (or the token) are not right; log in again with `coreforge login --store URL`")]
    BadLogin,
    /// The account may not change this snap.
    #[error("snap {name:?} is published by {publisher:?}; {who:?} may not change it")]
    NotPublisher {
        /// The snap.
        name: String,
        /// Its publisher.
        publisher: String,
        /// Who asked.
        who: String,
    },
    /// A snap file could not be read.
    #[error(transparent)]
    Snap(#[from] SnapError),
    /// The store's PostgreSQL database failed.
    #[error("the store's database {url}: {reason}")]
    Database {
        /// Its URL, without a password.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Signing an assertion failed.
    #[error("cannot sign {what}: {reason}")]
    Sign {
        /// The assertion being signed.
        what: String,
        /// Why.
        reason: String,
    },
    /// A file of the store is damaged or was changed by hand.
    #[error("store file {} is unusable: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests;
