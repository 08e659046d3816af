//! The trust database: trusted roots, other known assertions, and verification
//! of an assertion by its chain of account-keys down to a trusted root.

use crate::assertion::Assertion;
use crate::error::VerifyError;
use crate::time::Timestamp;
use crate::typed::{Account, AccountKey, Model};

/// Chains already verified during one [`TrustDb::verify`], by the assertion's bytes: a
/// chain shares its keys and accounts, and each signature needs checking once.
type Memo = std::collections::HashMap<Vec<u8>, Vec<String>>;

/// Longest chain of account-keys followed before giving up (loops, abuse).
pub const MAX_CHAIN: usize = 8;

/// Proof that an assertion verified against a [`TrustDb`]. Only
/// [`TrustDb::verify`] creates one, so code that takes a `Verified` cannot be
/// handed unverified data by mistake.
#[derive(Debug, Clone)]
pub struct Verified {
    assertion: Assertion,
    signer: String,
    chain: Vec<String>,
}

impl Verified {
    /// The verified assertion.
    pub fn assertion(&self) -> &Assertion {
        &self.assertion
    }

    /// Consumes the proof, giving back the assertion.
    pub fn into_assertion(self) -> Assertion {
        self.assertion
    }

    /// The account that signed it.
    pub fn signer(&self) -> &str {
        &self.signer
    }

    /// Key ids from the signing key down to the trusted root that anchors it.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }
}

/// Trusted roots plus the assertions known so far (accounts, account-keys, ...).
#[derive(Debug, Default, Clone)]
pub struct TrustDb {
    trusted: Vec<Assertion>,
    known: Vec<Assertion>,
}

impl TrustDb {
    /// An empty database: nothing verifies until a root is trusted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trusted root: an `account-key` (usually self-signed) or the
    /// `account` that owns it. Trusted assertions are taken as given.
    pub fn add_trusted(&mut self, a: Assertion) {
        self.trusted.push(a);
    }

    /// Adds an assertion that may take part in chains (it is verified when used).
    pub fn add(&mut self, a: Assertion) {
        self.known.push(a);
    }

    /// Every assertion in the database, trusted ones first.
    pub fn assertions(&self) -> impl Iterator<Item = &Assertion> {
        self.trusted.iter().chain(self.known.iter())
    }

    /// Finds the first assertion of `type_name` whose primary key equals `key`.
    pub fn find(&self, type_name: &str, key: &[&str]) -> Option<&Assertion> {
        self.assertions()
            .find(|a| a.type_name() == type_name && a.primary_key() == key)
    }

    /// Verifies `a`: its signing key is known and owned by its authority,
    /// valid at its time, the signature matches, and the key chains to a
    /// trusted root; a model must be signed by its brand and its brand
    /// account must be known.
    pub fn verify(&self, a: &Assertion) -> Result<Verified, VerifyError> {
        if a.type_name() == "model" {
            let brand = a.header_str("brand-id").unwrap_or_default();
            if a.authority_id() != brand {
                return Err(VerifyError::BrandMismatch {
                    authority: a.authority_id().to_owned(),
                    brand: brand.to_owned(),
                });
            }
            Model::from_assertion(a)?;
        }
        let mut memo = Memo::default();
        let chain = self.verify_link(a, 0, &mut memo)?;
        self.check_accounts(a, &mut memo)?;
        Ok(Verified {
            assertion: a.clone(),
            signer: a.authority_id().to_owned(),
            chain,
        })
    }

    fn verify_link(
        &self,
        a: &Assertion,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<Vec<String>, VerifyError> {
        if depth > MAX_CHAIN {
            return Err(VerifyError::ChainTooLong(MAX_CHAIN));
        }
        if let Some(chain) = memo.get(a.encode()) {
            return Ok(chain.clone());
        }
        let chain = self.verify_link_uncached(a, depth, memo)?;
        memo.insert(a.encode().to_vec(), chain.clone());
        Ok(chain)
    }

    fn verify_link_uncached(
        &self,
        a: &Assertion,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<Vec<String>, VerifyError> {
        let key_id = a.sign_key_id();
        // Self-signed requests carry their own key in the body.
        let (key, trusted) = if !a.kind().has_authority {
            let req = crate::typed::AccountKeyRequest::from_assertion(a)?;
            check_signature(a, &req.public_key)?;
            return Ok(vec![key_id.to_owned()]);
        } else {
            self.find_key(a)?
        };
        let at = a.time().unwrap_or_else(Timestamp::now);
        if !key.is_valid_at(at) {
            return Err(VerifyError::KeyNotValidAtTime {
                key_id: key_id.to_owned(),
                authority: a.authority_id().to_owned(),
                at: at.to_string(),
                since: key.since.to_string(),
                until: key
                    .until
                    .map_or_else(|| "forever".to_owned(), |u| u.to_string()),
            });
        }
        check_signature(a, &key.public_key)?;
        let mut chain = vec![key_id.to_owned()];
        if !trusted {
            let key_assertion = self
                .assertions()
                .find(|k| k.type_name() == "account-key" && k.primary_key() == [key_id])
                .ok_or_else(|| VerifyError::UnknownKey {
                    key_id: key_id.to_owned(),
                    authority: a.authority_id().to_owned(),
                })?;
            let rest = self
                .verify_link(key_assertion, depth + 1, memo)
                .map_err(|e| match e {
                    VerifyError::ChainTooLong(n) => VerifyError::ChainTooLong(n),
                    other => VerifyError::Chain {
                        what: format!("account-key {key_id:?} of {:?}", key.account_id),
                        source: Box::new(other),
                    },
                })?;
            self.check_accounts(key_assertion, memo)?;
            chain.extend(rest);
        }
        Ok(chain)
    }

    /// The account-key that signed `a`, and whether it is a trusted root.
    fn find_key(&self, a: &Assertion) -> Result<(AccountKey, bool), VerifyError> {
        let key_id = a.sign_key_id();
        let trusted_ids = self.trusted.len();
        let found = self
            .assertions()
            .enumerate()
            .find(|(_, k)| k.type_name() == "account-key" && k.primary_key() == [key_id]);
        let Some((index, k)) = found else {
            return Err(VerifyError::UnknownKey {
                key_id: key_id.to_owned(),
                authority: a.authority_id().to_owned(),
            });
        };
        let key = AccountKey::from_assertion(k)?;
        if key.account_id != a.authority_id() {
            return Err(VerifyError::KeyNotOwnedByAuthority {
                key_id: key_id.to_owned(),
                owner: key.account_id,
                authority: a.authority_id().to_owned(),
            });
        }
        Ok((key, index < trusted_ids))
    }

    /// Accounts referred to by `a` must be known: the owner of an account-key, a model's brand.
    fn check_accounts(&self, a: &Assertion, memo: &mut Memo) -> Result<(), VerifyError> {
        let account = match a.type_name() {
            "account-key" => a.header_str("account-id"),
            "model" => a.header_str("brand-id"),
            _ => None,
        };
        let Some(account) = account else {
            return Ok(());
        };
        let known = self.find("account", &[account]).is_some_and(|acc| {
            Account::from_assertion(acc).is_ok()
                && (self.is_trusted(acc) || self.verify_link(acc, 1, memo).is_ok())
        });
        if known {
            Ok(())
        } else {
            Err(VerifyError::MissingAccount {
                what: format!("{} {:?}", a.type_name(), a.primary_key().join("/")),
                account: account.to_owned(),
            })
        }
    }

    fn is_trusted(&self, a: &Assertion) -> bool {
        self.trusted.iter().any(|t| t.encode() == a.encode())
    }
}

fn check_signature(a: &Assertion, key: &crate::keys::PublicKey) -> Result<(), VerifyError> {
    let sig = a
        .signature_bytes()
        .map_err(|e| VerifyError::BadSignature(e.to_string()))?;
    key.verify(a.signed_content(), &sig)
        .map_err(|e| VerifyError::BadSignature(e.to_string()))
}
