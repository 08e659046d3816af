//! A store in a local directory, standing in for the snap store:
//!
//! ```text
//! DIR/store.db                       snaps, revisions, channels, accounts (SQLite, db.rs)
//! DIR/store.key                      the store's Ed25519 signing key, mode 0600
//! DIR/root.assertions                the root account-key and account devices trust
//! DIR/assertions/TYPE/KEY.assert     every assertion the store signed
//! DIR/blobs/SHA3-384.snap            the uploaded snaps, by their snap-sha3-384
//! ```
//!
//! The signing key is not passphrase protected: a local store is for building and
//! testing images, and whoever can write DIR can replace its snaps anyway. Keep a
//! store whose root you ship to real devices somewhere only you can read.
//!
//! Writers take turns (`DIR/store.lock`, and SQLite's transactions); readers see each
//! change whole. A store made by an older coreforge (`DIR/store.json`) is moved into
//! `store.db` when first opened.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use coreforge_assertions::{sign, Assertion, HeaderValue, PrivateKey, Timestamp, TrustDb};
use rand_core::RngCore;

use super::assertion_files::{assertion_path_in, decode_one, save_assertion_in, ASSERTIONS};
use super::channel::{Channel, DEFAULT_TRACK};
use super::db::Db;
use super::dir::{database_url, migrate, take_lock, Held, StoreLock, DATABASE, DB, STATE};
use super::files::{self, io_err, PUBLIC_MODE, SECRET_MODE};
use super::meta::Meta;
use super::pg::PgDb;
use super::state::{RevisionEntry, SnapEntry, State, FORMAT};
use super::{ResolvedSnap, Store, StoreError};
use crate::snap::{self, ARCHITECTURES};

/// The store's account id unless `store init --authority-id` says otherwise.
pub const DEFAULT_AUTHORITY: &str = "coreforge-store";

const KEY: &str = "store.key";
const ROOTS: &str = "root.assertions";
const BLOBS: &str = "blobs";
/// Name of the store's own account-key.
const ROOT_KEY_NAME: &str = "root";
/// Series of every snap-declaration (the only one snapd has).
const SERIES: &str = "16";

/// The kind of key a store signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKey {
    /// Ed25519: small and fast; coreforge's agent and host tools verify it, snapd does not.
    Ed25519,
    /// RSA-4096, as snapd's stores sign: what snapd itself (`snap download`, `snap ack`)
    /// can decode.
    #[value(name = "rsa-4096")]
    Rsa4096,
}

/// A store in a directory.
#[derive(Debug)]
pub struct LocalStore {
    pub(super) dir: PathBuf,
    pub(super) state: State,
    pub(super) db: Meta,
    /// The writers' lock, when opened with [`LocalStore::open_locked`].
    lock: Option<Held>,
}

/// The outcome of [`LocalStore::upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The snap name.
    pub name: String,
    /// Its revision in the store.
    pub revision: u64,
    /// The snap's id.
    pub snap_id: String,
    /// False when the same file had been uploaded before (its revision is reused).
    pub new: bool,
}

/// One channel a revision was released to, by [`LocalStore::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The channel.
    pub channel: Channel,
    /// The architectures the revision now serves there (`all` for every one).
    pub architectures: Vec<String>,
}

/// snapd's account-id rule: `^(?:[a-z0-9A-Z]{32}|[-a-z0-9]{2,28})$`.
pub fn valid_account_id(id: &str) -> bool {
    (id.len() == 32 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        || ((2..=28).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

/// snapd's account-key name rule: `^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$`.
pub(super) fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && name.bytes().any(|c| c.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// 32 random letters and digits, the shape of the snap store's snap ids.
fn new_snap_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(32);
    let mut buf = [0u8; 64];
    while out.len() < 32 {
        rand_core::OsRng.fill_bytes(&mut buf);
        // Rejection sampling keeps every character equally likely.
        for b in buf.iter().filter(|b| usize::from(**b) < 62 * 4) {
            if out.len() < 32 {
                out.push(char::from(ALPHABET[usize::from(*b) % 62]));
            }
        }
    }
    out
}

pub(super) fn h(name: &str, value: impl Into<HeaderValue>) -> (String, HeaderValue) {
    (name.to_owned(), value.into())
}

/// The headers of the `account-key` by which `authority` says `public` is `account`'s key
/// `name`, valid from `since` (the public key itself is the body).
pub(super) fn account_key_headers(
    authority: &str,
    account: &str,
    name: &str,
    public: &coreforge_assertions::PublicKey,
    since: Timestamp,
) -> Vec<(String, HeaderValue)> {
    vec![
        h("type", "account-key"),
        h("authority-id", authority),
        h("account-id", account),
        h("name", name),
        h("public-key-sha3-384", public.id()),
        h("since", since.to_string()),
    ]
}

/// The headers of the `account` `id`, as `authority` vouches for it (`validation`:
/// `verified` or `unproven`).
pub(super) fn account_headers(
    authority: &str,
    id: &str,
    validation: &str,
    timestamp: Timestamp,
) -> Vec<(String, HeaderValue)> {
    vec![
        h("type", "account"),
        h("authority-id", authority),
        h("account-id", id),
        h("display-name", id),
        h("validation", validation),
        h("timestamp", timestamp.to_string()),
    ]
}

/// `latest/stable` as `stable`, the way `snap info` shows channels of the default track.
fn short_channel(full: &str) -> &str {
    full.strip_prefix(DEFAULT_TRACK)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(full)
}

impl LocalStore {
    /// Creates a store in `dir` (made if missing): a new key, its self-signed root
    /// account-key and the account `authority_id`, written to `DIR/root.assertions`. The key
    /// is of the `kind` given.
    pub fn init(
        dir: &Path,
        authority_id: &str,
        kind: StoreKey,
        database: Option<&str>,
    ) -> Result<LocalStore, StoreError> {
        if !valid_account_id(authority_id) {
            return Err(StoreError::BadAccountId(authority_id.to_owned()));
        }
        if dir.join(DB).exists() || dir.join(STATE).exists() || dir.join(DATABASE).exists() {
            return Err(StoreError::AlreadyAStore(dir.to_path_buf()));
        }
        for sub in [ASSERTIONS, BLOBS] {
            files::ensure_dir(&dir.join(sub))?;
        }
        let key =
            match kind {
                StoreKey::Ed25519 => PrivateKey::generate_ed25519(&mut rand_core::OsRng),
                StoreKey::Rsa4096 => PrivateKey::generate_rsa(&mut rand_core::OsRng, 4096)
                    .map_err(|e| StoreError::Sign {
                        what: "the store's key".into(),
                        reason: e.to_string(),
                    })?,
            };
        let public = key.public_key();
        files::write(&dir.join(KEY), &key.to_secret_bytes(), SECRET_MODE)?;
        let state = State {
            format: FORMAT,
            authority_id: authority_id.to_owned(),
            key_id: public.id(),
            snaps: BTreeMap::new(),
        };
        let now = Timestamp::from_unix(Timestamp::now().unix());
        let root_key = sign_as(
            &key,
            account_key_headers(authority_id, authority_id, ROOT_KEY_NAME, &public, now),
            Some(public.encode().as_bytes()),
        )?;
        let account = sign_as(
            &key,
            account_headers(authority_id, authority_id, "verified", now),
            None,
        )?;
        let mut roots = root_key.encode().to_vec();
        roots.extend_from_slice(b"\n\n");
        roots.extend_from_slice(account.encode());
        roots.push(b'\n');
        save_assertion_in(dir, &root_key)?;
        save_assertion_in(dir, &account)?;
        files::write(&dir.join(ROOTS), &roots, PUBLIC_MODE)?;
        // The database last: until it holds the schema the directory is not a store.
        let db = match database {
            Some(url) => {
                let db = PgDb::create(url, &state)?;
                // The URL may hold a password: for the store's owner only.
                files::write(
                    &dir.join(DATABASE),
                    format!("{url}\n").as_bytes(),
                    SECRET_MODE,
                )?;
                Meta::Postgres(Box::new(db))
            }
            None => Meta::Sqlite(Db::create(&dir.join(DB), &state)?),
        };
        let store = LocalStore {
            dir: dir.to_path_buf(),
            lock: None,
            state,
            db,
        };
        Ok(store)
    }

    /// Opens the store in `dir` for changes: waits for the writers' lock, then reads it, and
    /// holds the lock until dropped. Two writers (processes, or requests of `store serve`)
    /// change the store one after the other, each seeing what the other wrote.
    pub fn open_locked(dir: &Path) -> Result<LocalStore, StoreError> {
        if !dir.join(DB).exists() && !dir.join(STATE).exists() && !dir.join(DATABASE).exists() {
            return Err(StoreError::NotAStore(dir.to_path_buf()));
        }
        let StoreLock(lock) = take_lock(dir)?;
        let mut store = LocalStore::open(dir)?;
        store.lock = lock;
        Ok(store)
    }

    /// The writers' lock, unless this store holds it already.
    pub(super) fn lock(&self) -> Result<StoreLock, StoreError> {
        if self.lock.is_some() {
            return Ok(StoreLock(None));
        }
        take_lock(&self.dir)
    }

    /// Opens the store in `dir` (moving an older store's `store.json` into `store.db`).
    pub fn open(dir: &Path) -> Result<LocalStore, StoreError> {
        let db = match database_url(dir)? {
            Some(url) => Meta::Postgres(Box::new(PgDb::open(&url)?)),
            None => {
                let db_path = dir.join(DB);
                if !db_path.exists() {
                    if !dir.join(STATE).exists() {
                        return Err(StoreError::NotAStore(dir.to_path_buf()));
                    }
                    migrate(dir)?;
                }
                Meta::Sqlite(Db::open(&db_path)?)
            }
        };
        let state = db.load()?;
        Ok(LocalStore {
            dir: dir.to_path_buf(),
            state,
            db,
            lock: None,
        })
    }

    /// The store's account id.
    pub fn authority_id(&self) -> &str {
        &self.state.authority_id
    }

    /// The id of the store's signing key.
    pub fn key_id(&self) -> &str {
        &self.state.key_id
    }

    /// The snap of this name.
    pub fn snap(&self, name: &str) -> Result<&SnapEntry, StoreError> {
        self.entry(name)
    }

    /// The snap of this id, with its name.
    pub fn snap_by_id(&self, snap_id: &str) -> Option<(&str, &SnapEntry)> {
        self.state
            .snaps
            .iter()
            .find(|(_, e)| e.snap_id == snap_id)
            .map(|(n, e)| (n.as_str(), e))
    }

    /// Where a revision's file is.
    pub fn revision_path(&self, revision: &RevisionEntry) -> PathBuf {
        self.dir.join(&revision.file)
    }

    /// The account assertion of `id`.
    pub fn account_of(&self, id: &str) -> Result<Assertion, StoreError> {
        self.account(id)
    }

    /// Where the root assertions are.
    pub fn roots_path(&self) -> PathBuf {
        self.dir.join(ROOTS)
    }

    /// Adds the snap file as the next revision of its name (or finds the revision that
    /// has the same bytes), signing its snap-declaration on first upload and its
    /// snap-revision. The publisher is the store's account unless `publisher` is given.
    pub fn upload(&mut self, file: &Path, publisher: Option<&str>) -> Result<Upload, StoreError> {
        let info = snap::read_info(file)?;
        let (sha3_384, size) = snap::digest(file)?;
        let entry = match self.state.snaps.get(&info.name) {
            Some(e) => {
                if let Some(p) = publisher.filter(|p| *p != e.publisher_id) {
                    return Err(StoreError::OtherPublisher {
                        name: info.name.clone(),
                        publisher: p.to_owned(),
                        existing: e.publisher_id.clone(),
                    });
                }
                e.clone()
            }
            None => self.declare(&info.name, publisher)?,
        };
        if let Some((rev, _)) = entry.revisions.iter().find(|(_, r)| r.sha3_384 == sha3_384) {
            return Ok(Upload {
                name: info.name,
                revision: *rev,
                snap_id: entry.snap_id,
                new: false,
            });
        }
        let revision = entry.revisions.keys().next_back().map_or(1, |r| r + 1);
        // Named by content: the same bytes are one blob, and a blob's name says what it holds.
        let rel = format!("{BLOBS}/{sha3_384}.snap");
        files::ensure_dir(&self.dir.join(BLOBS))?;
        files::copy(file, &self.dir.join(&rel))?;
        let key = self.key()?;
        let now = Timestamp::now();
        let assertion = self.sign_with(
            &key,
            vec![
                h("type", "snap-revision"),
                h("authority-id", self.authority_id()),
                h("snap-sha3-384", sha3_384.as_str()),
                h("snap-id", entry.snap_id.as_str()),
                h("snap-size", size.to_string()),
                h("snap-revision", revision.to_string()),
                h("developer-id", entry.publisher_id.as_str()),
                h("timestamp", now.to_string()),
            ],
            None,
        )?;
        self.save_assertion(&assertion)?;
        let mut entry = entry;
        entry.revisions.insert(
            revision,
            RevisionEntry {
                file: rel,
                sha3_384,
                size,
                info: info.clone(),
            },
        );
        let snap_id = entry.snap_id.clone();
        self.db.save_snap(&info.name, &entry)?;
        self.state.snaps.insert(info.name.clone(), entry);
        Ok(Upload {
            name: info.name,
            revision,
            snap_id,
            new: true,
        })
    }

    /// A new snap id and signed snap-declaration for `name` (saved; the index is not).
    fn declare(&self, name: &str, publisher: Option<&str>) -> Result<SnapEntry, StoreError> {
        let publisher = publisher.unwrap_or(self.authority_id()).to_owned();
        if !valid_account_id(&publisher) {
            return Err(StoreError::BadAccountId(publisher));
        }
        let key = self.key()?;
        if publisher != self.authority_id() {
            self.ensure_account(&key, &publisher)?;
        }
        let snap_id = new_snap_id();
        let declaration = self.sign_with(
            &key,
            vec![
                h("type", "snap-declaration"),
                h("authority-id", self.authority_id()),
                h("series", SERIES),
                h("snap-id", snap_id.as_str()),
                h("snap-name", name),
                h("publisher-id", publisher.as_str()),
                h("timestamp", Timestamp::now().to_string()),
            ],
            None,
        )?;
        self.save_assertion(&declaration)?;
        Ok(SnapEntry {
            snap_id,
            publisher_id: publisher,
            revisions: BTreeMap::new(),
            channels: BTreeMap::new(),
        })
    }

    /// Releases `revision` of `name` to every channel in `channels`, for the
    /// architectures in its snap.yaml. Nothing changes unless every channel parses.
    pub fn release(
        &mut self,
        name: &str,
        revision: u64,
        channels: &[String],
    ) -> Result<Vec<Release>, StoreError> {
        let parsed = channels
            .iter()
            .map(|c| Channel::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        let entry = self.entry(name)?;
        let archs = entry
            .revisions
            .get(&revision)
            .ok_or_else(|| StoreError::UnknownRevision {
                name: name.to_owned(),
                revision,
                known: entry.revisions.keys().map(|r| format!("r{r}")).collect(),
            })?
            .info
            .architectures
            .clone();
        let mut entry = entry.clone();
        let mut out = Vec::new();
        for channel in parsed {
            let map = entry.channels.entry(channel.to_string()).or_default();
            if archs.iter().any(|a| a == "all") {
                // The new revision serves every architecture in this channel.
                map.clear();
            }
            for a in &archs {
                map.insert(a.clone(), revision);
            }
            out.push(Release {
                channel,
                architectures: archs.clone(),
            });
        }
        self.db.save_snap(name, &entry)?;
        self.state.snaps.insert(name.to_owned(), entry);
        Ok(out)
    }

    fn entry(&self, name: &str) -> Result<&SnapEntry, StoreError> {
        self.state
            .snaps
            .get(name)
            .ok_or_else(|| StoreError::UnknownSnap {
                name: name.to_owned(),
                store: self.dir.clone(),
                known: self.state.snaps.keys().cloned().collect(),
            })
    }

    pub(super) fn key(&self) -> Result<PrivateKey, StoreError> {
        let path = self.dir.join(KEY);
        let bytes = zeroize::Zeroizing::new(fs::read(&path).map_err(io_err("read", &path))?);
        let key = PrivateKey::from_secret_bytes(&bytes).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if key.public_key().id() != self.state.key_id {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("it is not the store's key {}", self.state.key_id),
            });
        }
        Ok(key)
    }

    pub(super) fn sign_with(
        &self,
        key: &PrivateKey,
        headers: Vec<(String, HeaderValue)>,
        body: Option<&[u8]>,
    ) -> Result<Assertion, StoreError> {
        sign_as(key, headers, body)
    }

    pub(super) fn assertion_path(&self, type_name: &str, key: &str) -> PathBuf {
        assertion_path_in(&self.dir, type_name, key)
    }

    pub(super) fn save_assertion(&self, a: &Assertion) -> Result<(), StoreError> {
        save_assertion_in(&self.dir, a)
    }

    pub(super) fn load_assertion(
        &self,
        type_name: &str,
        key: &str,
    ) -> Result<Option<Assertion>, StoreError> {
        let path = self.assertion_path(type_name, key);
        match fs::read(&path) {
            Ok(bytes) => decode_one(&path, &bytes).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Every stored assertion of `type_name`, by file name.
    pub fn all_assertions(&self, type_name: &str) -> Result<Vec<Assertion>, StoreError> {
        self.load_all(type_name)
    }

    /// Every stored assertion of `type_name`, by file name.
    fn load_all(&self, type_name: &str) -> Result<Vec<Assertion>, StoreError> {
        let dir = self.dir.join(ASSERTIONS).join(type_name);
        let mut paths: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "assert"))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        paths.sort();
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            out.push(decode_one(&path, &bytes)?);
        }
        Ok(out)
    }

    pub(super) fn require_assertion(
        &self,
        type_name: &str,
        key: &str,
    ) -> Result<Assertion, StoreError> {
        self.load_assertion(type_name, key)?
            .ok_or_else(|| StoreError::Corrupt {
                path: self.assertion_path(type_name, key),
                reason: "missing".into(),
            })
    }

    /// What is released, as `CHANNEL ARCH rN` with `latest/` left out.
    fn released(entry: &SnapEntry) -> Vec<String> {
        entry
            .channels
            .iter()
            .flat_map(|(channel, archs)| {
                archs
                    .iter()
                    .map(move |(arch, rev)| format!("{} {arch} r{rev}", short_channel(channel)))
            })
            .collect()
    }
}

/// Signs an assertion with the store's key.
fn sign_as(
    key: &PrivateKey,
    headers: Vec<(String, HeaderValue)>,
    body: Option<&[u8]>,
) -> Result<Assertion, StoreError> {
    let what = headers
        .first()
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("assertion")
        .to_owned();
    sign(&headers, body, key, Timestamp::now()).map_err(|e| StoreError::Sign {
        what,
        reason: e.to_string(),
    })
}

impl Store for LocalStore {
    fn roots(&self) -> Result<Vec<Assertion>, StoreError> {
        let path = self.roots_path();
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        Assertion::decode_all(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    fn resolve(&self, name: &str, channel: &str, arch: &str) -> Result<ResolvedSnap, StoreError> {
        if arch == "all" || !ARCHITECTURES.contains(&arch) {
            return Err(StoreError::UnknownArch {
                arch: arch.to_owned(),
            });
        }
        let wanted = Channel::parse(channel)?;
        let entry = self.entry(name)?;
        let Some((revision, _)) = entry.pick(&wanted, arch) else {
            return Err(StoreError::NoRevision {
                name: name.to_owned(),
                arch: arch.to_owned(),
                channel: channel.to_owned(),
                released: Self::released(entry),
            });
        };
        let rev = entry
            .revisions
            .get(&revision)
            .ok_or_else(|| StoreError::Corrupt {
                path: self.dir.join(STATE),
                reason: format!("{name} r{revision} is released but was never uploaded"),
            })?;
        let path = self.dir.join(&rev.file);
        let size = fs::metadata(&path).map_err(io_err("open", &path))?.len();
        if size != rev.size {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("{size} bytes, but {} were uploaded", rev.size),
            });
        }
        Ok(ResolvedSnap {
            name: name.to_owned(),
            snap_id: entry.snap_id.clone(),
            revision,
            path,
            sha3_384: rev.sha3_384.clone(),
            info: rev.info.clone(),
        })
    }

    fn snap_assertions(&self, snap: &ResolvedSnap) -> Result<Vec<Assertion>, StoreError> {
        let entry = self.entry(&snap.name)?;
        let rev =
            entry
                .revisions
                .get(&snap.revision)
                .ok_or_else(|| StoreError::UnknownRevision {
                    name: snap.name.clone(),
                    revision: snap.revision,
                    known: entry.revisions.keys().map(|r| format!("r{r}")).collect(),
                })?;
        let served = vec![
            self.require_assertion("snap-declaration", &entry.snap_id)?,
            self.require_assertion("snap-revision", &rev.sha3_384)?,
        ];
        // The store checks what it serves with the same rules as its clients: a file in
        // its directory replaced by one another account signed is refused here first.
        let mut db = TrustDb::new();
        for root in self.roots()? {
            db.add_trusted(root);
        }
        for a in self
            .all_account_assertions()?
            .into_iter()
            .chain(served.clone())
        {
            db.add(a);
        }
        for (a, key) in served.iter().zip([&entry.snap_id, &rev.sha3_384]) {
            db.verify(a).map_err(|e| StoreError::Corrupt {
                path: self.assertion_path(a.type_name(), key),
                reason: format!("it does not verify against the store's roots: {e}"),
            })?;
        }
        Ok(served)
    }

    fn account_assertions(&self, account_id: &str) -> Result<Vec<Assertion>, StoreError> {
        let mut out = vec![self.account(account_id)?];
        out.extend(
            self.load_all("account-key")?
                .into_iter()
                .filter(|a| a.header_str("account-id") == Some(account_id)),
        );
        Ok(out)
    }

    fn all_account_assertions(&self) -> Result<Vec<Assertion>, StoreError> {
        let mut out = self.load_all("account")?;
        out.extend(self.load_all("account-key")?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_ids_are_32_alphanumerics() {
        let a = new_snap_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, new_snap_id());
    }

    #[test]
    fn account_and_key_names_follow_snapd() {
        for good in ["coreforge-store", "brand", "ab", &"A1".repeat(16)] {
            assert!(valid_account_id(good), "{good}");
        }
        for bad in ["a", "Brand", "a_b", &"a".repeat(29)] {
            assert!(!valid_account_id(bad), "{bad}");
        }
        for good in ["default", "my-key-2", "1a"] {
            assert!(valid_key_name(good), "{good}");
        }
        for bad in ["", "My", "a_b", "a.b", "-a", "a-", "a--b", "12"] {
            assert!(!valid_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn short_channels_drop_the_default_track() {
        assert_eq!(short_channel("latest/stable"), "stable");
        assert_eq!(short_channel("latest/beta/x"), "beta/x");
        assert_eq!(short_channel("22/stable"), "22/stable");
        assert_eq!(short_channel("latestish/stable"), "latestish/stable");
    }
}
