//! The store's keys and accounts: registering a key for an account (signing the account
//! and its account-key), and revoking one.

use coreforge_assertions::{Assertion, HeaderValue, PrivateKey, PublicKey, Timestamp};

use super::local::{
    account_headers, account_key_headers, h, valid_account_id, valid_key_name, LocalStore,
};
use super::StoreError;

impl LocalStore {
    /// Has the store sign an `account` for `account_id` (first time only) and an
    /// `account-key` named `key_name` for `public`, valid from `since`; returns
    /// `(account-key, account)`. Registering the same key again returns what was signed.
    pub fn register_key(
        &self,
        account_id: &str,
        key_name: &str,
        public: &PublicKey,
        since: Timestamp,
    ) -> Result<(Assertion, Assertion), StoreError> {
        if !valid_account_id(account_id) {
            return Err(StoreError::BadAccountId(account_id.to_owned()));
        }
        if !valid_key_name(key_name) {
            return Err(StoreError::BadKeyName(key_name.to_owned()));
        }
        let key_id = public.id();
        let root = self.require_assertion("account-key", self.key_id())?;
        if let Some(store_since) = root.header_str("since").and_then(Timestamp::parse) {
            if since < store_since {
                return Err(StoreError::SinceBeforeStore {
                    since: since.to_string(),
                    store_since: store_since.to_string(),
                });
            }
        }
        if let Some(existing) = self.load_assertion("account-key", &key_id)? {
            let owner = existing.header_str("account-id").unwrap_or_default();
            if owner != account_id {
                return Err(StoreError::KeyOfOtherAccount {
                    key_id,
                    owner: owner.to_owned(),
                    account: account_id.to_owned(),
                });
            }
            let account = self.account(account_id)?;
            return Ok((existing, account));
        }
        let key = self.key()?;
        let account = self.ensure_account(&key, account_id)?;
        let account_key = self.sign_with(
            &key,
            account_key_headers(self.authority_id(), account_id, key_name, public, since),
            Some(public.encode().as_bytes()),
        )?;
        self.save_assertion(&account_key)?;
        Ok((account_key, account))
    }

    /// Signs the next revision of the account-key `key_id` with `until`: the key signs
    /// nothing valid from then on. Only the newest revision is kept.
    pub fn revoke_key(&self, key_id: &str, until: Timestamp) -> Result<Assertion, StoreError> {
        let current = self
            .load_assertion("account-key", key_id)?
            .ok_or_else(|| StoreError::UnknownKey(key_id.to_owned()))?;
        if current.header_str("account-id") == Some(self.authority_id()) {
            return Err(StoreError::RootKey(key_id.to_owned()));
        }
        let since = current.header_str("since").unwrap_or_default();
        if Timestamp::parse(since).is_some_and(|s| until <= s) {
            return Err(StoreError::UntilBeforeSince {
                key_id: key_id.to_owned(),
                since: since.to_owned(),
            });
        }
        let mut headers: Vec<(String, HeaderValue)> = current
            .headers()
            .iter()
            .filter(|(n, _)| {
                !matches!(
                    n.as_str(),
                    "revision" | "until" | "sign-key-sha3-384" | "body-length"
                )
            })
            .cloned()
            .collect();
        headers.push(h("revision", (current.revision() + 1).to_string()));
        headers.push(h("until", until.to_string()));
        let key = self.key()?;
        let revoked = self.sign_with(&key, headers, Some(current.body()))?;
        self.save_assertion(&revoked)?;
        Ok(revoked)
    }

    /// The signed account `id`, made now if the store has none.
    pub(super) fn ensure_account(
        &self,
        key: &PrivateKey,
        id: &str,
    ) -> Result<Assertion, StoreError> {
        if let Some(a) = self.load_assertion("account", id)? {
            return Ok(a);
        }
        let account = self.sign_with(
            key,
            account_headers(self.authority_id(), id, "unproven", Timestamp::now()),
            None,
        )?;
        self.save_assertion(&account)?;
        Ok(account)
    }

    pub(super) fn account(&self, id: &str) -> Result<Assertion, StoreError> {
        self.load_assertion("account", id)?
            .ok_or_else(|| StoreError::UnknownAccount {
                account: id.to_owned(),
                store: self.dir.clone(),
            })
    }
}
