//! The store's metadata in SQLite, `DIR/store.db`: snaps, revisions, channels, accounts and
//! login tokens, changed in transactions (WAL: readers never wait for a writer, writers
//! take turns). The assertions the store signed stay files (`DIR/assertions/`), and so do
//! the snaps (`DIR/blobs/<snap-sha3-384>.snap`); this holds what points at them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::accounts::Person;
use super::meta::{SCHEMA, SCHEMA_VERSION};
use super::state::{RevisionEntry, SnapEntry, State, FORMAT};
use super::StoreError;

/// An open store database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl Db {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn connect(path: &Path) -> Result<Db, StoreError> {
        let conn = Connection::open(path).map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let db = Db {
            conn,
            path: path.to_owned(),
        };
        db.conn
            .busy_timeout(Duration::from_secs(30))
            .map_err(|e| db.err(e))?;
        db.conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| db.conn.pragma_update(None, "foreign_keys", "ON"))
            .and_then(|()| db.conn.pragma_update(None, "synchronous", "FULL"))
            .map_err(|e| db.err(e))?;
        Ok(db)
    }

    /// Creates the database for a new store, with everything `state` holds.
    pub fn create(path: &Path, state: &State) -> Result<Db, StoreError> {
        let mut db = Db::connect(path)?;
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let result = (|| {
            tx.execute_batch(SCHEMA)?;
            for (k, v) in [
                ("schema", SCHEMA_VERSION),
                ("authority-id", &state.authority_id),
                ("key-id", &state.key_id),
            ] {
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            for (name, entry) in &state.snaps {
                write_snap(&tx, name, entry)?;
            }
            tx.commit()
        })();
        result.map_err(|e| db.err(e))?;
        Ok(db)
    }

    /// Opens the database of an existing store.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let db = Db::connect(path)?;
        let schema: Option<String> = db
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| db.err(e))?;
        match schema.as_deref() {
            Some(SCHEMA_VERSION) => Ok(db),
            Some(other) => Err(db.err(format!(
                "schema {other} is not {SCHEMA_VERSION}: made by another coreforge version"
            ))),
            None => Err(db.err("it holds no store")),
        }
    }

    /// Everything about the store's snaps, read in one transaction.
    pub fn load(&self) -> Result<State, StoreError> {
        let read = || -> rusqlite::Result<State> {
            let tx = self.conn.unchecked_transaction()?;
            let meta = |key: &str| -> rusqlite::Result<String> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            };
            let mut state = State {
                format: FORMAT,
                authority_id: meta("authority-id")?,
                key_id: meta("key-id")?,
                snaps: BTreeMap::new(),
            };
            let mut snaps = tx.prepare("SELECT name, snap_id, publisher_id FROM snaps")?;
            for row in
                snaps.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
            {
                let (name, snap_id, publisher_id) = row?;
                state.snaps.insert(
                    name,
                    SnapEntry {
                        snap_id,
                        publisher_id,
                        revisions: BTreeMap::new(),
                        channels: BTreeMap::new(),
                    },
                );
            }
            let mut revisions =
                tx.prepare("SELECT name, revision, file, sha3_384, size, info FROM revisions")?;
            for row in revisions.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })? {
                let (name, revision, file, sha3_384, size, info) = row?;
                let info = serde_json::from_str(&info).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        5,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?;
                if let Some(entry) = state.snaps.get_mut(&name) {
                    entry.revisions.insert(
                        revision as u64,
                        RevisionEntry {
                            file,
                            sha3_384,
                            size: size as u64,
                            info,
                        },
                    );
                }
            }
            let mut channels = tx.prepare("SELECT name, channel, arch, revision FROM channels")?;
            for row in channels.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })? {
                let (name, channel, arch, revision) = row?;
                if let Some(entry) = state.snaps.get_mut(&name) {
                    entry
                        .channels
                        .entry(channel)
                        .or_default()
                        .insert(arch, revision as u64);
                }
            }
            Ok(state)
        };
        read().map_err(|e| self.err(e))
    }

    /// Writes one snap's entry (its revisions and channels as given) in one transaction.
    pub fn save_snap(&mut self, name: &str, entry: &SnapEntry) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        write_snap(&tx, name, entry)
            .and_then(|()| tx.commit())
            .map_err(|e| StoreError::Corrupt {
                path,
                reason: e.to_string(),
            })
    }

    /// The account of `email` (lower case).
    pub fn account(&self, email: &str) -> Result<Option<Person>, StoreError> {
        self.conn
            .query_row(
                "SELECT username, ssh_keys, openid, password FROM accounts WHERE email = ?1",
                [email],
                person,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The e-mail address of the account with this username, if any.
    pub fn email_of(&self, username: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT email FROM accounts WHERE username = ?1",
                [username],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Adds or replaces the account of `email`.
    pub fn save_account(&self, email: &str, p: &Person) -> Result<(), StoreError> {
        let keys = serde_json::to_string(&p.ssh_keys).map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "INSERT INTO accounts (email, username, ssh_keys, openid, password)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (email) DO UPDATE SET username = ?2, ssh_keys = ?3,
                     openid = ?4, password = ?5",
                params![email, p.username, keys, p.openid, p.password],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Records a token (by its digest) given to `email`.
    pub fn add_token(&self, email: &str, digest: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO tokens (digest, email) VALUES (?1, ?2)",
                params![digest, email],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The account a token (by its digest) was given to.
    pub fn account_for_token(&self, digest: &str) -> Result<Option<Person>, StoreError> {
        self.conn
            .query_row(
                "SELECT a.username, a.ssh_keys, a.openid, a.password
                 FROM tokens t JOIN accounts a ON a.email = t.email WHERE t.digest = ?1",
                [digest],
                person,
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

fn person(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    let keys: String = r.get(1)?;
    Ok(Person {
        username: r.get(0)?,
        ssh_keys: serde_json::from_str(&keys).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?,
        openid: r.get(2)?,
        password: r.get(3)?,
    })
}

/// One snap's rows: the snap, its revisions (added, never changed), its channels (replaced).
fn write_snap(tx: &rusqlite::Transaction<'_>, name: &str, e: &SnapEntry) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO snaps (name, snap_id, publisher_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET publisher_id = ?3",
        params![name, e.snap_id, e.publisher_id],
    )?;
    for (revision, r) in &e.revisions {
        let info = serde_json::to_string(&r.info)
            .map_err(|err| rusqlite::Error::ToSqlConversionFailure(err.into()))?;
        tx.execute(
            "INSERT OR IGNORE INTO revisions (name, revision, file, sha3_384, size, info)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                *revision as i64,
                r.file,
                r.sha3_384,
                r.size as i64,
                info
            ],
        )?;
    }
    tx.execute("DELETE FROM channels WHERE name = ?1", [name])?;
    for (channel, archs) in &e.channels {
        for (arch, revision) in archs {
            tx.execute(
                "INSERT INTO channels (name, channel, arch, revision) VALUES (?1, ?2, ?3, ?4)",
                params![name, channel, arch, *revision as i64],
            )?;
        }
    }
    Ok(())
}
