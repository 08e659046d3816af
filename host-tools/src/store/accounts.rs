//! The store's people: `DIR/accounts.json`, one entry per e-mail address, with the
//! username devices create for them (also their account id as publishers), their SSH keys,
//! an argon2id password hash, and the SHA-256 of each login token given out (a copy of the
//! directory holds no token that works).

use std::collections::BTreeMap;
use std::fs;
use std::io;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::files::{self, io_err, SECRET_MODE};
use super::local::valid_account_id;
use super::{LocalStore, StoreError};

const ACCOUNTS: &str = "accounts.json";
const FORMAT: u32 = 1;

/// All accounts.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Accounts {
    format: u32,
    /// By e-mail address, lower case.
    accounts: BTreeMap<String, Person>,
}

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Person {
    /// The name a device gives the account's user; also its account id.
    pub username: String,
    /// OpenSSH public key lines.
    pub ssh_keys: Vec<String>,
    /// A stable opaque id, as Ubuntu SSO's `openid_identifier`.
    pub openid: String,
    /// argon2id PHC string; `None`: no login until a password is set.
    #[serde(default)]
    password: Option<String>,
    /// SHA-256 (hex) of each token given out at login.
    #[serde(default)]
    tokens: Vec<String>,
}

/// A login token for a store account (`Authorization: Bearer TOKEN`).
pub type Token = String;

fn token_digest(token: &str) -> String {
    crate::image::bmap::hex(&Sha256::digest(token.as_bytes()))
}

/// E-mail addresses as Ubuntu SSO takes them: one `@`, no spaces or slashes, at most 254
/// bytes; compared in lower case.
fn normalize_email(email: &str) -> Result<String, StoreError> {
    let ok = email.len() <= 254
        && email.matches('@').count() == 1
        && !email.starts_with('@')
        && !email.ends_with('@')
        && email
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '\\' | '"' | '<' | '>'));
    if ok {
        Ok(email.to_ascii_lowercase())
    } else {
        Err(StoreError::BadEmail(email.to_owned()))
    }
}

impl LocalStore {
    fn load_accounts(&self) -> Result<Accounts, StoreError> {
        let path = self.dir.join(ACCOUNTS);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Accounts {
                format: FORMAT,
                ..Accounts::default()
            }),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    fn save_accounts(&self, accounts: &Accounts) -> Result<(), StoreError> {
        let path = self.dir.join(ACCOUNTS);
        let json = serde_json::to_vec_pretty(accounts).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Password hashes and token digests: readable by the store's owner only.
        files::write(&path, &json, SECRET_MODE)
    }

    /// Adds an account (or replaces its username, keys and password). Each SSH key must be
    /// an OpenSSH public key line.
    pub fn add_account(
        &self,
        email: &str,
        username: &str,
        ssh_keys: &[String],
        password: Option<&str>,
    ) -> Result<Person, StoreError> {
        let email = normalize_email(email)?;
        if !valid_account_id(username) {
            return Err(StoreError::BadAccountId(username.to_owned()));
        }
        for key in ssh_keys {
            ssh_key::PublicKey::from_openssh(key.trim()).map_err(|e| StoreError::BadSshKey {
                key: key.chars().take(40).collect(),
                reason: e.to_string(),
            })?;
        }
        let _lock = self.lock()?;
        let mut all = self.load_accounts()?;
        if let Some((other, _)) = all
            .accounts
            .iter()
            .find(|(e, p)| **e != email && p.username == username)
        {
            return Err(StoreError::UsernameTaken {
                username: username.to_owned(),
                email: other.clone(),
            });
        }
        let password = match password {
            Some(p) => Some(
                Argon2::default()
                    .hash_password(p.as_bytes(), &SaltString::generate(&mut OsRng))
                    .map_err(|e| StoreError::Sign {
                        what: "the password".into(),
                        reason: e.to_string(),
                    })?
                    .to_string(),
            ),
            None => None,
        };
        let previous = all.accounts.get(&email).cloned();
        let person = Person {
            username: username.to_owned(),
            ssh_keys: ssh_keys.iter().map(|k| k.trim().to_owned()).collect(),
            openid: previous
                .as_ref()
                .map(|p| p.openid.clone())
                .unwrap_or_else(|| {
                    let mut id = [0u8; 6];
                    rand_core::OsRng.fill_bytes(&mut id);
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
                }),
            password: password.or_else(|| previous.as_ref().and_then(|p| p.password.clone())),
            tokens: previous.map(|p| p.tokens).unwrap_or_default(),
        };
        all.accounts.insert(email, person.clone());
        self.save_accounts(&all)?;
        Ok(person)
    }

    /// The account of `email`, if any.
    pub fn account_by_email(&self, email: &str) -> Result<Option<Person>, StoreError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        Ok(self.load_accounts()?.accounts.remove(&email))
    }

    /// Checks `email` and `password` and gives out a new token.
    pub fn login(&self, email: &str, password: &str) -> Result<(Person, Token), StoreError> {
        let _lock = self.lock()?;
        let mut all = self.load_accounts()?;
        let key = normalize_email(email).map_err(|_| StoreError::BadLogin)?;
        let person = all.accounts.get_mut(&key).ok_or(StoreError::BadLogin)?;
        let hash = person.password.as_deref().ok_or(StoreError::BadLogin)?;
        let parsed = PasswordHash::new(hash).map_err(|e| StoreError::Corrupt {
            path: self.dir.join(ACCOUNTS),
            reason: format!("the password hash of {key}: {e}"),
        })?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|_| StoreError::BadLogin)?;
        let mut raw = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        person.tokens.push(token_digest(&token));
        let person = person.clone();
        self.save_accounts(&all)?;
        Ok((person, token))
    }

    /// The account a token was given to.
    pub fn account_for_token(&self, token: &str) -> Result<Option<Person>, StoreError> {
        let digest = token_digest(token);
        Ok(self
            .load_accounts()?
            .accounts
            .into_values()
            .find(|p| p.tokens.contains(&digest)))
    }
}
