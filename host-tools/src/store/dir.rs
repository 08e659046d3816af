//! What is where in a store's directory beyond its files: which database holds the
//! metadata (`store.db`, or PostgreSQL named by `database`), the writers' lock, and moving an
//! older store's `store.json` into `store.db`.

use std::fs;
use std::io;
use std::path::Path;

use super::db::Db;
use super::files::io_err;
use super::pg::{PgDb, PgLock};
use super::state::{State, FORMAT};
use super::StoreError;

/// The index of a store made by an older coreforge.
pub(super) const STATE: &str = "store.json";
/// The SQLite database.
pub(super) const DB: &str = "store.db";
/// The PostgreSQL URL, when the metadata is kept there.
pub(super) const DATABASE: &str = "database";
/// The writers' lock file.
const LOCK: &str = "store.lock";

/// The writers' lock: `DIR/store.lock`, or PostgreSQL's advisory lock.
#[derive(Debug)]
pub(super) enum Held {
    File(#[allow(dead_code)] fs::File),
    Postgres(#[allow(dead_code)] Box<PgLock>),
}

/// Holds the writers' lock until dropped (or nothing, when the store holds it already).
#[derive(Debug)]
pub struct StoreLock(#[allow(dead_code)] pub(super) Option<Held>);

/// Moves a store made by an older coreforge (`store.json`) into `store.db`, under the
/// writers' lock; `store.json` is kept as `store.json.migrated`.
pub(super) fn migrate(dir: &Path) -> Result<(), StoreError> {
    let _lock = take_lock(dir)?;
    if dir.join(DB).exists() {
        return Ok(()); // another process did it meanwhile
    }
    let path = dir.join(STATE);
    let bytes = fs::read(&path).map_err(io_err("read", &path))?;
    let state: State = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if state.format != FORMAT {
        return Err(StoreError::Corrupt {
            path,
            reason: format!(
                "format {} is not {FORMAT}: made by another coreforge version",
                state.format
            ),
        });
    }
    let new = dir.join(format!("{DB}.new"));
    let _ = fs::remove_file(&new);
    drop(Db::create(&new, &state)?);
    fs::rename(&new, dir.join(DB)).map_err(io_err("rename", &new))?;
    fs::rename(&path, dir.join(format!("{STATE}.migrated"))).map_err(io_err("rename", &path))
}

/// The PostgreSQL URL in `DIR/database`, if the store keeps its metadata there.
pub(super) fn database_url(dir: &Path) -> Result<Option<String>, StoreError> {
    let path = dir.join(DATABASE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

/// Waits for and takes the writers' lock: PostgreSQL's advisory lock for a store kept
/// there, else the exclusive lock on `DIR/store.lock`.
pub(super) fn take_lock(dir: &Path) -> Result<StoreLock, StoreError> {
    if let Some(url) = database_url(dir)? {
        return Ok(StoreLock(Some(Held::Postgres(Box::new(PgDb::lock(&url)?)))));
    }
    let path = dir.join(LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err("lock", &path)(e.into()))?;
    Ok(StoreLock(Some(Held::File(file))))
}
