//! Accounts, their keys, and requests to register a key.

use crate::assertion::{check_key_id, Assertion};
use crate::error::HeaderError;
use crate::keys::PublicKey;
use crate::time::Timestamp;

use super::{check_validity, date, expect_type, key_body, optional_date, optional_string, string};

/// An account: who someone is to the store.
#[derive(Clone, Debug)]
pub struct Account {
    /// The account id.
    pub account_id: String,
    /// The name shown to people.
    pub display_name: String,
    /// `unproven`, `starred` or `verified`.
    pub validation: String,
    /// The optional store username.
    pub username: Option<String>,
    /// When it was asserted.
    pub timestamp: Timestamp,
}

impl Account {
    /// Reads and checks an `account` assertion.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "account")?;
        let mut validation = string(a, "validation")?;
        if validation == "certified" {
            validation = "verified".into();
        }
        Ok(Account {
            account_id: string(a, "account-id")?,
            display_name: string(a, "display-name")?,
            validation,
            username: optional_string(a, "username")?,
            timestamp: date(a, "timestamp")?,
        })
    }
}

/// An account-key: a public key of an account, valid from `since` until `until`.
#[derive(Clone, Debug)]
pub struct AccountKey {
    /// The account the key belongs to.
    pub account_id: String,
    /// The key's name within the account.
    pub name: String,
    /// Start of validity.
    pub since: Timestamp,
    /// End of validity (exclusive), if any.
    pub until: Option<Timestamp>,
    /// The key itself (from the body).
    pub public_key: PublicKey,
}

impl AccountKey {
    /// Reads and checks an `account-key` assertion; the key id must match the body.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "account-key")?;
        let (since, until, public_key) = key_and_validity(a)?;
        Ok(AccountKey {
            account_id: string(a, "account-id")?,
            name: string(a, "name")?,
            since,
            until,
            public_key,
        })
    }

    /// The key id (`public-key-sha3-384`).
    pub fn key_id(&self) -> String {
        self.public_key.id()
    }

    /// Whether the key may sign at time `t`: `since <= t < until`.
    pub fn is_valid_at(&self, t: Timestamp) -> bool {
        self.since <= t && self.until.is_none_or(|u| t < u)
    }
}

fn key_and_validity(
    a: &Assertion,
) -> Result<(Timestamp, Option<Timestamp>, PublicKey), HeaderError> {
    let id = string(a, "public-key-sha3-384")?;
    check_key_id("public-key-sha3-384", &id)?;
    let since = date(a, "since")?;
    let until = optional_date(a, "until")?;
    check_validity(since, until)?;
    let key = key_body(a)?;
    if key.id() != id {
        return Err(HeaderError::invalid(
            "public-key-sha3-384",
            "public key does not match provided key id",
        ));
    }
    Ok((since, until, key))
}

/// A request, self-signed by a new key, to register it for an account.
#[derive(Clone, Debug)]
pub struct AccountKeyRequest {
    /// The account the key is for.
    pub account_id: String,
    /// The key's name.
    pub name: String,
    /// Start of validity.
    pub since: Timestamp,
    /// End of validity, if any.
    pub until: Option<Timestamp>,
    /// The key (from the body).
    pub public_key: PublicKey,
}

impl AccountKeyRequest {
    /// Reads and checks an `account-key-request` assertion.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "account-key-request")?;
        let (since, until, public_key) = key_and_validity(a)?;
        if a.sign_key_id() != public_key.id() {
            return Err(HeaderError::invalid(
                "sign-key-sha3-384",
                "account-key-request must be signed by the key it requests",
            ));
        }
        Ok(AccountKeyRequest {
            account_id: string(a, "account-id")?,
            name: string(a, "name")?,
            since,
            until,
            public_key,
        })
    }
}
