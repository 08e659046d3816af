//! Where a store's metadata lives: SQLite in `DIR/store.db` (the default), or PostgreSQL
//! named by `DIR/database` (a store shared by several servers). Both hold the same tables
//! and answer the same questions.

use super::accounts::Person;
use super::db::Db;
use super::pg::PgDb;
use super::state::{SnapEntry, State};
use super::StoreError;

/// The layout version, in `meta` under `schema`.
pub const SCHEMA_VERSION: &str = "2";

/// The tables, in the SQL both databases take (SQLite reads BIGINT as INTEGER).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snaps (
    name TEXT PRIMARY KEY,
    snap_id TEXT NOT NULL UNIQUE,
    publisher_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    name TEXT NOT NULL REFERENCES snaps(name),
    revision BIGINT NOT NULL,
    file TEXT NOT NULL,
    sha3_384 TEXT NOT NULL,
    size BIGINT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (name, revision)
);
CREATE TABLE IF NOT EXISTS channels (
    name TEXT NOT NULL REFERENCES snaps(name),
    channel TEXT NOT NULL,
    arch TEXT NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (name, channel, arch)
);
CREATE TABLE IF NOT EXISTS accounts (
    email TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    ssh_keys TEXT NOT NULL,
    openid TEXT NOT NULL,
    password TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    digest TEXT PRIMARY KEY,
    email TEXT NOT NULL REFERENCES accounts(email)
);
";

/// An open metadata database.
#[derive(Debug)]
pub enum Meta {
    /// `DIR/store.db`.
    Sqlite(Db),
    /// The PostgreSQL database `DIR/database` names.
    Postgres(Box<PgDb>),
}

impl Meta {
    /// Everything about the store's snaps, read at once.
    pub fn load(&self) -> Result<State, StoreError> {
        match self {
            Meta::Sqlite(db) => db.load(),
            Meta::Postgres(db) => db.load(),
        }
    }

    /// Writes one snap's entry in one transaction.
    pub fn save_snap(&mut self, name: &str, entry: &SnapEntry) -> Result<(), StoreError> {
        match self {
            Meta::Sqlite(db) => db.save_snap(name, entry),
            Meta::Postgres(db) => db.save_snap(name, entry),
        }
    }

    /// The account of `email` (lower case).
    pub fn account(&self, email: &str) -> Result<Option<Person>, StoreError> {
        match self {
            Meta::Sqlite(db) => db.account(email),
            Meta::Postgres(db) => db.account(email),
        }
    }

    /// The e-mail address of the account with this username.
    pub fn email_of(&self, username: &str) -> Result<Option<String>, StoreError> {
        match self {
            Meta::Sqlite(db) => db.email_of(username),
            Meta::Postgres(db) => db.email_of(username),
        }
    }

    /// Adds or replaces an account.
    pub fn save_account(&self, email: &str, p: &Person) -> Result<(), StoreError> {
        match self {
            Meta::Sqlite(db) => db.save_account(email, p),
            Meta::Postgres(db) => db.save_account(email, p),
        }
    }

    /// Records a login token's digest.
    pub fn add_token(&self, email: &str, digest: &str) -> Result<(), StoreError> {
        match self {
            Meta::Sqlite(db) => db.add_token(email, digest),
            Meta::Postgres(db) => db.add_token(email, digest),
        }
    }

    /// The account a token's digest belongs to.
    pub fn account_for_token(&self, digest: &str) -> Result<Option<Person>, StoreError> {
        match self {
            Meta::Sqlite(db) => db.account_for_token(digest),
            Meta::Postgres(db) => db.account_for_token(digest),
        }
    }
}
