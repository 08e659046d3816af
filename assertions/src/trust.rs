//! The trust database: trusted roots, other known assertions, and verification of an
//! assertion by its chain of account-keys down to a trusted root, with snapd's rules of
//! who may sign what (see [`Rule`]) and of key lifetime.
//!
//! Lookups follow snapd's database: a trusted assertion wins over any other with the same
//! primary key, and of several revisions of one assertion the highest that verifies wins,
//! so a revoked key (a later account-key revision with `until`) stays revoked when an
//! older revision is supplied beside it.

use crate::assertion::Assertion;
use crate::error::{Rule, VerifyError};
use crate::time::Timestamp;
use crate::typed::{
    Account, AccountKey, AccountKeyRequest, Model, Serial, SnapDeclaration, SnapRevision, Store,
    SystemUser, DEFAULT_PROVENANCE,
};

/// Chains already verified during one [`TrustDb::verify`], by the assertion's bytes: a
/// chain shares its keys and accounts, and each signature needs checking once.
type Memo = std::collections::HashMap<Vec<u8>, Vec<String>>;

/// Longest chain of account-keys followed before giving up (loops, abuse).
pub const MAX_CHAIN: usize = 8;

/// The series whose snap-declarations snap-revisions refer to (snapd's `release.Series`).
const SERIES: &str = "16";

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

/// What the database takes the current time to be when it checks that signing keys
/// have not expired (snapd's `SetEarliestTime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Clock {
    /// The system's clock (the host).
    #[default]
    System,
    /// Some time at or after this one (a device whose clock may be behind: the later of
    /// its RTC and the image's build time).
    AtLeast(Timestamp),
}

/// Trusted roots plus the assertions known so far (accounts, account-keys, ...).
#[derive(Debug, Default, Clone)]
pub struct TrustDb {
    trusted: Vec<Assertion>,
    known: Vec<Assertion>,
    clock: Clock,
}

impl TrustDb {
    /// An empty database: nothing verifies until a root is trusted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trusted root: an `account-key` (usually self-signed) or the
    /// `account` that owns it. Trusted assertions are taken as given, and their
    /// accounts are the trusted authorities that may sign accounts, account-keys,
    /// snap-declarations, stores and snap-revisions.
    pub fn add_trusted(&mut self, a: Assertion) {
        self.trusted.push(a);
    }

    /// Adds an assertion that may take part in chains (it is verified when used).
    pub fn add(&mut self, a: Assertion) {
        self.known.push(a);
    }

    /// Checks key expiry as if the current time were `t` or later, instead of the system
    /// clock: a key must not have expired by `t`. A device sets the later of its clock and
    /// the image's build time, so a clock reset to 1970 cannot resurrect a revoked key.
    pub fn set_earliest_time(&mut self, t: Timestamp) {
        self.clock = Clock::AtLeast(t);
    }

    /// Every assertion in the database, trusted ones first.
    pub fn assertions(&self) -> impl Iterator<Item = &Assertion> {
        self.trusted.iter().chain(self.known.iter())
    }

    /// The assertion of `type_name` whose primary key equals `key`: the trusted one if
    /// there is one, else the highest revision (not verified; see [`TrustDb::verify`]).
    pub fn find(&self, type_name: &str, key: &[&str]) -> Option<&Assertion> {
        let matches = |a: &&Assertion| a.type_name() == type_name && a.primary_key() == key;
        self.trusted.iter().find(matches).or_else(|| {
            self.known
                .iter()
                .filter(matches)
                .max_by_key(|a| a.revision())
        })
    }

    /// The current assertion of `type_name` with primary key `key`, verified: the trusted
    /// one, else the highest revision that verifies. `Ok(None)` if there is none at all;
    /// the highest revision's error if none verifies.
    pub fn find_verified(
        &self,
        type_name: &str,
        key: &[&str],
    ) -> Result<Option<Verified>, VerifyError> {
        let mut memo = Memo::default();
        Ok(self
            .current(type_name, key, 0, &mut memo)?
            .map(|(a, chain)| Verified {
                signer: a.authority_id().to_owned(),
                assertion: a.clone(),
                chain,
            }))
    }

    /// Verifies `a`: its type has an authority rule and its signer is one the rule allows;
    /// its signing key is known, owned by its authority, not expired, and valid at the
    /// assertion's time; the signature matches; the key chains to a trusted root; and the
    /// accounts and declarations it refers to are known and verify.
    pub fn verify(&self, a: &Assertion) -> Result<Verified, VerifyError> {
        let mut memo = Memo::default();
        let chain = self.check(a, 0, &mut memo)?;
        Ok(Verified {
            assertion: a.clone(),
            signer: a.authority_id().to_owned(),
            chain,
        })
    }

    /// Whether `account` is a directly trusted authority: it owns a trusted root.
    pub fn is_trusted_account(&self, account: &str) -> bool {
        !account.is_empty()
            && self.trusted.iter().any(|t| match t.type_name() {
                "account" | "account-key" => t.header_str("account-id") == Some(account),
                _ => false,
            })
    }

    /// The trusted authorities, for messages.
    fn trusted_accounts(&self) -> String {
        let mut ids: Vec<&str> = self
            .trusted
            .iter()
            .filter_map(|t| t.header_str("account-id"))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return "none: no roots are trusted".into();
        }
        let quoted: Vec<String> = ids.iter().map(|id| format!("{id:?}")).collect();
        quoted.join(", ")
    }

    fn is_trusted(&self, a: &Assertion) -> bool {
        self.trusted.iter().any(|t| t.encode() == a.encode())
    }

    fn check(
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
        let chain = self.check_uncached(a, depth, memo)?;
        memo.insert(a.encode().to_vec(), chain.clone());
        Ok(chain)
    }

    fn check_uncached(
        &self,
        a: &Assertion,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<Vec<String>, VerifyError> {
        let key_id = a.sign_key_id();
        if a.type_name() == "account-key-request" {
            // Self-signed: the key is in the body.
            let req = AccountKeyRequest::from_assertion(a)?;
            check_signature(a, &req.public_key)?;
            return Ok(vec![key_id.to_owned()]);
        }
        if !has_rule(a.type_name()) {
            return Err(VerifyError::NoRule(a.type_name().to_owned()));
        }
        let (key, rest) = self.signing_key(a, depth, memo)?;
        if key.account_id != a.authority_id() {
            return Err(VerifyError::KeyNotOwnedByAuthority {
                key_id: key_id.to_owned(),
                owner: key.account_id,
                authority: a.authority_id().to_owned(),
            });
        }
        self.check_not_expired(a, &key)?;
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
        self.check_rule(a, depth, memo)?;
        let mut chain = vec![key_id.to_owned()];
        chain.extend(rest);
        Ok(chain)
    }

    /// The account-key that signed `a` and the chain below it (empty for a trusted key).
    fn signing_key(
        &self,
        a: &Assertion,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<(AccountKey, Vec<String>), VerifyError> {
        let key_id = a.sign_key_id();
        let found = self
            .current("account-key", &[key_id], depth + 1, memo)
            .map_err(|e| match e {
                VerifyError::ChainTooLong(n) => VerifyError::ChainTooLong(n),
                other => VerifyError::Chain {
                    what: format!("account-key {key_id:?} that signed {}", describe(a)),
                    source: Box::new(other),
                },
            })?;
        let Some((k, chain)) = found else {
            return Err(VerifyError::UnknownKey {
                key_id: key_id.to_owned(),
                authority: a.authority_id().to_owned(),
            });
        };
        let key = AccountKey::from_assertion(k)?;
        let rest = if self.is_trusted(k) {
            Vec::new()
        } else {
            chain
        };
        Ok((key, rest))
    }

    /// The trusted assertion with this primary key, else the highest revision that
    /// verifies, with its chain.
    fn current(
        &self,
        type_name: &str,
        key: &[&str],
        depth: usize,
        memo: &mut Memo,
    ) -> Result<Option<(&Assertion, Vec<String>)>, VerifyError> {
        let matches = |a: &&Assertion| a.type_name() == type_name && a.primary_key() == key;
        if let Some(t) = self.trusted.iter().find(matches) {
            return Ok(Some((t, Vec::new())));
        }
        let mut candidates: Vec<&Assertion> = self.known.iter().filter(matches).collect();
        // Highest revision first; the stable sort keeps the input order among equals.
        candidates.sort_by_key(|c| std::cmp::Reverse(c.revision()));
        let mut first_error = None;
        for c in candidates {
            match self.check(c, depth, memo) {
                Ok(chain) => return Ok(Some((c, chain))),
                Err(e) => {
                    if matches!(e, VerifyError::ChainTooLong(_)) {
                        return Err(e);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// snapd's `CheckSigningKeyIsNotExpired`.
    fn check_not_expired(&self, a: &Assertion, key: &AccountKey) -> Result<(), VerifyError> {
        let (ok, when) = match self.clock {
            Clock::System => {
                let now = Timestamp::now();
                (key.is_valid_at(now), format!("current time is {now}"))
            }
            Clock::AtLeast(t) => (
                key.until.is_none_or(|u| t < u),
                format!("the time is at least {t} (the later of the clock and the build time)"),
            ),
        };
        if ok {
            return Ok(());
        }
        Err(VerifyError::KeyExpired {
            key_id: a.sign_key_id().to_owned(),
            authority: a.authority_id().to_owned(),
            when,
            validity: match key.until {
                Some(u) => format!("during [{}, {u})", key.since),
                None => format!("from {}", key.since),
            },
        })
    }

    /// The authority rule of `a`'s type, and the assertions it needs beside it.
    fn check_rule(&self, a: &Assertion, depth: usize, memo: &mut Memo) -> Result<(), VerifyError> {
        let authority = a.authority_id();
        match a.type_name() {
            "account" => {
                let acc = Account::from_assertion(a)?;
                self.require_trusted(a, &format!("account {:?}", acc.account_id))
            }
            "account-key" => {
                let key = AccountKey::from_assertion(a)?;
                let what = format!("account-key {:?} of {:?}", key.key_id(), key.account_id);
                self.require_trusted(a, &what)?;
                self.require_account(&what, &key.account_id, depth, memo)
            }
            "snap-declaration" => {
                let decl = SnapDeclaration::from_assertion(a)?;
                let what = format!(
                    "snap-declaration of {:?} (id {:?})",
                    decl.snap_name, decl.snap_id
                );
                self.require_trusted(a, &what)?;
                self.require_account(&what, &decl.publisher_id, depth, memo)
            }
            "store" => {
                let store = Store::from_assertion(a)?;
                let what = format!("store {:?}", store.store);
                self.require_trusted(a, &what)?;
                self.require_account(&what, &store.operator_id, depth, memo)
            }
            "snap-revision" => self.check_snap_revision(a, depth, memo),
            "model" => {
                let model = Model::from_assertion(a)?;
                let what = format!("model {}/{}", model.brand_id, model.model);
                if authority != model.brand_id {
                    return Err(VerifyError::NotAuthorized {
                        what,
                        authority: authority.to_owned(),
                        rule: Rule::Brand,
                        allowed: format!("{:?}", model.brand_id),
                    });
                }
                self.require_account(&what, &model.brand_id, depth, memo)
            }
            "serial" => {
                let serial = Serial::from_assertion(a)?;
                if authority == serial.brand_id {
                    return Ok(());
                }
                let what = format!(
                    "serial {:?} of {}/{}",
                    serial.serial, serial.brand_id, serial.model
                );
                let model = self.current(
                    "model",
                    &[SERIES, &serial.brand_id, &serial.model],
                    depth + 1,
                    memo,
                )?;
                let allowed = match model {
                    Some((m, _)) => Model::from_assertion(m)?.serial_authority,
                    None => vec![serial.brand_id.clone()],
                };
                if allowed.iter().any(|id| id == authority) {
                    Ok(())
                } else {
                    Err(VerifyError::NotAuthorized {
                        what,
                        authority: authority.to_owned(),
                        rule: Rule::SerialAuthority,
                        allowed: quoted(&allowed),
                    })
                }
            }
            "system-user" => {
                let user = SystemUser::from_assertion(a)?;
                if authority == user.brand_id {
                    return Ok(());
                }
                // Another account: only if a model of the brand names it (which model the
                // user is for is checked where it is used, with `SystemUser::refuses`).
                let mut allowed = vec![format!("{:?}", user.brand_id)];
                for m in self.assertions().filter(|m| m.type_name() == "model") {
                    let Ok(model) = Model::from_assertion(m) else {
                        continue;
                    };
                    if model.brand_id != user.brand_id
                        || (!user.models.is_empty() && !user.models.contains(&model.model))
                    {
                        continue;
                    }
                    if model.system_user_authority.allows(authority)
                        && self.check(m, depth + 1, memo).is_ok()
                    {
                        return Ok(());
                    }
                    allowed.push(format!(
                        "model {}: {}",
                        model.model, model.system_user_authority
                    ));
                }
                Err(VerifyError::NotAuthorized {
                    what: format!(
                        "system-user {:?} of brand {:?}",
                        user.username, user.brand_id
                    ),
                    authority: authority.to_owned(),
                    rule: Rule::SystemUserAuthority,
                    allowed: allowed.join("; "),
                })
            }
            other => Err(VerifyError::NoRule(other.to_owned())),
        }
    }

    /// snapd's `SnapRevision.checkConsistency`.
    fn check_snap_revision(
        &self,
        a: &Assertion,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<(), VerifyError> {
        let rev = SnapRevision::from_assertion(a)?;
        let authority = a.authority_id();
        let what = format!(
            "snap-revision {} of snap id {:?}",
            rev.snap_revision, rev.snap_id
        );
        let delegated = rev.provenance != DEFAULT_PROVENANCE;
        if !delegated && !self.is_trusted_account(authority) {
            return Err(VerifyError::NotAuthorized {
                what,
                authority: authority.to_owned(),
                rule: Rule::RevisionAuthority,
                allowed: format!(
                    "the trusted authorities {} (a revision with provenance global-upload cannot be delegated)",
                    self.trusted_accounts()
                ),
            });
        }
        self.require_account(&what, &rev.developer_id, depth, memo)?;
        let Some((decl, _)) =
            self.current("snap-declaration", &[SERIES, &rev.snap_id], depth + 1, memo)?
        else {
            return Err(VerifyError::Missing {
                what,
                needed: format!("the snap-declaration of snap id {:?}", rev.snap_id),
            });
        };
        if !delegated {
            return Ok(());
        }
        let decl = SnapDeclaration::from_assertion(decl)?;
        let mut reasons = Vec::new();
        for ra in &decl.revision_authority {
            match ra.refuses(&rev, authority) {
                None => return Ok(()),
                Some(why) => reasons.push(format!("{:?}: {why}", ra.account_id)),
            }
        }
        Err(VerifyError::NotAuthorized {
            what: format!("{what} with provenance {:?}", rev.provenance),
            authority: authority.to_owned(),
            rule: Rule::RevisionAuthority,
            allowed: if reasons.is_empty() {
                format!(
                    "the declaration of {:?} names no revision-authority",
                    decl.snap_name
                )
            } else {
                format!(
                    "revision-authority entries that do not match: {}",
                    reasons.join("; ")
                )
            },
        })
    }

    fn require_trusted(&self, a: &Assertion, what: &str) -> Result<(), VerifyError> {
        if self.is_trusted_account(a.authority_id()) {
            return Ok(());
        }
        Err(VerifyError::NotAuthorized {
            what: what.to_owned(),
            authority: a.authority_id().to_owned(),
            rule: Rule::TrustedAuthority,
            allowed: self.trusted_accounts(),
        })
    }

    /// The account `id` must be known and verify (trusted accounts are taken as given).
    fn require_account(
        &self,
        what: &str,
        id: &str,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<(), VerifyError> {
        match self.current("account", &[id], depth + 1, memo) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(VerifyError::MissingAccount {
                what: what.to_owned(),
                account: id.to_owned(),
            }),
            Err(VerifyError::ChainTooLong(n)) => Err(VerifyError::ChainTooLong(n)),
            Err(e) => Err(VerifyError::Chain {
                what: format!("account {id:?} that {what} refers to"),
                source: Box::new(e),
            }),
        }
    }
}

/// The types coreforge has authority rules for (snapd's consistency checks).
fn has_rule(type_name: &str) -> bool {
    matches!(
        type_name,
        "account"
            | "account-key"
            | "account-key-request"
            | "snap-declaration"
            | "snap-revision"
            | "store"
            | "model"
            | "serial"
            | "system-user"
    )
}

/// `type "primary/key"`, for messages.
fn describe(a: &Assertion) -> String {
    format!("{} {:?}", a.type_name(), a.primary_key().join("/"))
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("{id:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_signature(a: &Assertion, key: &crate::keys::PublicKey) -> Result<(), VerifyError> {
    let sig = a
        .signature_bytes()
        .map_err(|e| VerifyError::BadSignature(e.to_string()))?;
    key.verify(a.signed_content(), &sig)
        .map_err(|e| VerifyError::BadSignature(e.to_string()))
}
