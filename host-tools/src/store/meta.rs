//! Where a store's metadata lives: SQLite in `DIR/store.db` (the default), or PostgreSQL
//! named by `DIR/database` (a store shared by several servers). Both hold the same tables
//! and answer the same questions.

use super::accounts::Person;
use super::db::Db;
use super::pg::PgDb;
use super::state::{SnapEntry, State};
use super::StoreError;

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
