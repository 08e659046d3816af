//! The store's metadata in PostgreSQL: what `store.db` holds, for a store that several
//! `store serve` processes share (behind a load balancer, the blobs and assertions on a
//! shared folder). The directory names its database in `DIR/database` (mode 0600: the URL
//! may carry a password). Writers take turns with a session advisory lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use postgres::{Client, NoTls};

use super::accounts::Person;
use super::meta::{SCHEMA, SCHEMA_VERSION};
use super::state::{RevisionEntry, SnapEntry, State, FORMAT};
use super::StoreError;

/// The advisory lock key of a store's writers ("cfst").
const WRITERS: i64 = 0x6366_7374;

/// A connection to a store's PostgreSQL database.
pub struct PgDb {
    /// `None` only once dropped.
    client: Mutex<Option<Client>>,
    /// The URL, to give the connection back to the idle ones.
    url: String,
    /// The URL without its password, for messages.
    shown: String,
}

/// Connections no [`PgDb`] uses now, by URL, kept for the next (a server opens the store
/// for every request; a new connection costs more than the request).
fn idle() -> std::sync::MutexGuard<'static, std::collections::HashMap<String, Vec<Client>>> {
    static IDLE: std::sync::OnceLock<Mutex<std::collections::HashMap<String, Vec<Client>>>> =
        std::sync::OnceLock::new();
    IDLE.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Idle connections kept per database.
const KEEP_IDLE: usize = 16;

impl Drop for PgDb {
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(c) = client.filter(|c| !c.is_closed()) {
            let mut idle = idle();
            let kept = idle.entry(self.url.clone()).or_default();
            if kept.len() < KEEP_IDLE {
                kept.push(c);
            }
        }
    }
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb").field("url", &self.shown).finish()
    }
}

/// Holds the writers' advisory lock while it lives (its own connection: closing it is
/// the unlock, even if the process dies).
pub struct PgLock(#[allow(dead_code)] Client);

impl std::fmt::Debug for PgLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgLock")
    }
}

/// `url` with any password replaced by `***`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url
            .split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***"
                } else {
                    kv
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl PgDb {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            url: self.shown.clone(),
            reason: e.to_string(),
        }
    }

    /// A connection: an idle one of this process if there is one, else a new one.
    fn connect(url: &str) -> Result<PgDb, StoreError> {
        let shown = redacted(url);
        let pooled = idle()
            .get_mut(url)
            .and_then(Vec::pop)
            .filter(|c| !c.is_closed());
        let client = match pooled {
            Some(c) => c,
            None => Client::connect(url, NoTls).map_err(|e| StoreError::Database {
                url: shown.clone(),
                reason: e.to_string(),
            })?,
        };
        Ok(PgDb {
            client: Mutex::new(Some(client)),
            url: url.to_owned(),
            shown,
        })
    }

    /// Runs `f` on the connection.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let client = guard
            .as_mut()
            .ok_or_else(|| self.err("the connection is closed"))?;
        f(client).map_err(|e| self.err(e))
    }

    /// Creates the tables of a new store in the database at `url` (which must hold none).
    pub fn create(url: &str, state: &State) -> Result<PgDb, StoreError> {
        let db = PgDb::connect(url)?;
        {
            db.with(|client| {
                let mut tx = client.transaction()?;
                tx.batch_execute(SCHEMA)?;
                let taken: Option<String> = tx
                    .query_opt("SELECT value FROM meta WHERE key = 'schema'", &[])?
                    .map(|r| r.get(0));
                if taken.is_some() {
                    return Ok(());
                }
                for (k, v) in [
                    ("schema", SCHEMA_VERSION),
                    ("authority-id", state.authority_id.as_str()),
                    ("key-id", state.key_id.as_str()),
                ] {
                    tx.execute("INSERT INTO meta (key, value) VALUES ($1, $2)", &[&k, &v])?;
                }
                tx.commit()
            })?;
        }
        let key_id = db.meta("key-id")?;
        if key_id.as_deref() != Some(state.key_id.as_str()) {
            return Err(
                db.err("it holds another store already; give an empty database to `store init`")
            );
        }
        Ok(db)
    }

    /// Opens the database of an existing store.
    pub fn open(url: &str) -> Result<PgDb, StoreError> {
        let db = PgDb::connect(url)?;
        match db.meta("schema")?.as_deref() {
            Some(SCHEMA_VERSION) => Ok(db),
            Some(other) => Err(db.err(format!(
                "schema {other} is not {SCHEMA_VERSION}: made by another coreforge version"
            ))),
            None => Err(db.err("it holds no store (create one with `store init --database`)")),
        }
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|client| {
            let has_meta: bool = client
                .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])?
                .get(0);
            if !has_meta {
                return Ok(None);
            }
            client
                .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                .map(|r| r.map(|r| r.get(0)))
        })
    }

    /// Takes the writers' lock on a connection of its own.
    pub fn lock(url: &str) -> Result<PgLock, StoreError> {
        let err = |e: postgres::Error| StoreError::Database {
            url: redacted(url),
            reason: e.to_string(),
        };
        let mut client = Client::connect(url, NoTls).map_err(err)?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&WRITERS])
            .map_err(err)?;
        Ok(PgLock(client))
    }

    /// Everything about the store's snaps, read in one transaction.
    pub fn load(&self) -> Result<State, StoreError> {
        self.with(|client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let meta = |tx: &mut postgres::Transaction<'_>,
                        key: &str|
             -> Result<String, postgres::Error> {
                tx.query_one("SELECT value FROM meta WHERE key = $1", &[&key])
                    .map(|r| r.get(0))
            };
            let mut state = State {
                format: FORMAT,
                authority_id: meta(&mut tx, "authority-id")?,
                key_id: meta(&mut tx, "key-id")?,
                snaps: BTreeMap::new(),
            };
            for r in tx.query("SELECT name, snap_id, publisher_id FROM snaps", &[])? {
                state.snaps.insert(
                    r.get(0),
                    SnapEntry {
                        snap_id: r.get(1),
                        publisher_id: r.get(2),
                        revisions: BTreeMap::new(),
                        channels: BTreeMap::new(),
                    },
                );
            }
            for r in tx.query(
                "SELECT name, revision, file, sha3_384, size, info FROM revisions",
                &[],
            )? {
                let name: String = r.get(0);
                let info: String = r.get(5);
                let Ok(info) = serde_json::from_str(&info) else {
                    continue;
                };
                if let Some(entry) = state.snaps.get_mut(&name) {
                    entry.revisions.insert(
                        r.get::<_, i64>(1) as u64,
                        RevisionEntry {
                            file: r.get(2),
                            sha3_384: r.get(3),
                            size: r.get::<_, i64>(4) as u64,
                            info,
                        },
                    );
                }
            }
            for r in tx.query("SELECT name, channel, arch, revision FROM channels", &[])? {
                let name: String = r.get(0);
                if let Some(entry) = state.snaps.get_mut(&name) {
                    entry
                        .channels
                        .entry(r.get(1))
                        .or_default()
                        .insert(r.get(2), r.get::<_, i64>(3) as u64);
                }
            }
            tx.commit()?;
            Ok(state)
        })
    }

    /// Writes one snap's entry (its revisions and channels as given) in one transaction.
    pub fn save_snap(&self, name: &str, e: &SnapEntry) -> Result<(), StoreError> {
        self.with(|client| {
            let mut tx = client.transaction()?;
            tx.execute(
                "INSERT INTO snaps (name, snap_id, publisher_id) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET publisher_id = $3",
                &[&name, &e.snap_id, &e.publisher_id],
            )?;
            for (revision, r) in &e.revisions {
                let info = serde_json::to_string(&r.info).unwrap_or_default();
                tx.execute(
                    "INSERT INTO revisions (name, revision, file, sha3_384, size, info)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &name,
                        &(*revision as i64),
                        &r.file,
                        &r.sha3_384,
                        &(r.size as i64),
                        &info,
                    ],
                )?;
            }
            tx.execute("DELETE FROM channels WHERE name = $1", &[&name])?;
            for (channel, archs) in &e.channels {
                for (arch, revision) in archs {
                    tx.execute(
                        "INSERT INTO channels (name, channel, arch, revision) VALUES ($1, $2, $3, $4)",
                        &[&name, channel, arch, &(*revision as i64)],
                    )?;
                }
            }
            tx.commit()
        })
    }

    /// The account of `email` (lower case).
    pub fn account(&self, email: &str) -> Result<Option<Person>, StoreError> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT username, ssh_keys, openid, password FROM accounts WHERE email = $1",
                &[&email],
            )
        })?;
        row.map(|r| person(&r)).transpose().map_err(|e| self.err(e))
    }

    /// The e-mail address of the account with this username, if any.
    pub fn email_of(&self, username: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT email FROM accounts WHERE username = $1",
                &[&username],
            )
            .map(|r| r.map(|r| r.get(0)))
        })
    }

    /// Adds or replaces the account of `email`.
    pub fn save_account(&self, email: &str, p: &Person) -> Result<(), StoreError> {
        let keys = serde_json::to_string(&p.ssh_keys).map_err(|e| self.err(e))?;
        self.with(|c| {
            c.execute(
                "INSERT INTO accounts (email, username, ssh_keys, openid, password)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (email) DO UPDATE SET username = $2, ssh_keys = $3,
                     openid = $4, password = $5",
                &[&email, &p.username, &keys, &p.openid, &p.password],
            )
            .map(drop)
        })
    }

    /// Records a token (by its digest) given to `email`.
    pub fn add_token(&self, email: &str, digest: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens (digest, email) VALUES ($1, $2)",
                &[&digest, &email],
            )
            .map(drop)
        })
    }

    /// The account a token (by its digest) was given to.
    pub fn account_for_token(&self, digest: &str) -> Result<Option<Person>, StoreError> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT a.username, a.ssh_keys, a.openid, a.password
                 FROM tokens t JOIN accounts a ON a.email = t.email WHERE t.digest = $1",
                &[&digest],
            )
        })?;
        row.map(|r| person(&r)).transpose().map_err(|e| self.err(e))
    }
}

fn person(r: &postgres::Row) -> Result<Person, serde_json::Error> {
    let keys: String = r.get(1);
    Ok(Person {
        username: r.get(0),
        ssh_keys: serde_json::from_str(&keys)?,
        openid: r.get(2),
        password: r.get(3),
    })
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted("postgres://store:s3cret@db.example:5432/store"),
            "postgres://store:***@db.example:5432/store"
        );
        assert_eq!(
            redacted("host=/run/pg user=store password=s3cret dbname=store"),
            "host=/run/pg user=store password=*** dbname=store"
        );
        assert_eq!(
            redacted("postgres://store@db/store"),
            "postgres://store@db/store"
        );
    }
}
