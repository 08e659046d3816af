//! The store's people: `DIR/accounts.json`, one entry per e-mail address, with the
//! username devices create for them (also their account id as publishers), their SSH keys,
//! an argon2id password hash, and the SHA-256 of each login token given out (a copy of the
//! directory holds no token that works).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use rand_core::RngCore;
use sha2::{Digest, Sha256};

use super::local::valid_account_id;
use super::{LocalStore, StoreError};

/// One account.
#[derive(Debug, Clone)]
pub struct Person {
    /// The name a device gives the account's user; also its account id.
    pub username: String,
    /// OpenSSH public key lines.
    pub ssh_keys: Vec<String>,
    /// A stable opaque id, as Ubuntu SSO's `openid_identifier`.
    pub openid: String,
    /// argon2id PHC string; `None`: no login until a password is set.
    pub(super) password: Option<String>,
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
        if let Some(other) = self.db.email_of(username)?.filter(|e| *e != email) {
            return Err(StoreError::UsernameTaken {
                username: username.to_owned(),
                email: other,
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
        let previous = self.db.account(&email)?;
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
            password: password.or_else(|| previous.and_then(|p| p.password)),
        };
        self.db.save_account(&email, &person)?;
        Ok(person)
    }

    /// The account of `email`, if any.
    pub fn account_by_email(&self, email: &str) -> Result<Option<Person>, StoreError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        self.db.account(&email)
    }

    /// Checks `email` and `password` and gives out a new token.
    pub fn login(&self, email: &str, password: &str) -> Result<(Person, Token), StoreError> {
        let key = normalize_email(email).map_err(|_| StoreError::BadLogin)?;
        let person = self.db.account(&key)?.ok_or(StoreError::BadLogin)?;
        let hash = person.password.as_deref().ok_or(StoreError::BadLogin)?;
        let parsed = PasswordHash::new(hash).map_err(|e| StoreError::Corrupt {
            path: self.dir.join("store.db"),
            reason: format!("the password hash of {key}: {e}"),
        })?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|_| StoreError::BadLogin)?;
        let mut raw = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        self.db.add_token(&key, &token_digest(&token))?;
        Ok((person, token))
    }

    /// The account a token was given to.
    pub fn account_for_token(&self, token: &str) -> Result<Option<Person>, StoreError> {
        self.db.account_for_token(&token_digest(token))
    }
}
