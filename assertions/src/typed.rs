//! Typed views of the assertion types coreforge uses, with snapd's checks.

use std::collections::BTreeMap;

use crate::assertion::{check_key_id, not_empty_string, parse_int, Assertion};
use crate::error::HeaderError;
use crate::headers::HeaderValue;
use crate::keys::PublicKey;
use crate::time::Timestamp;

/// Runs the checks of the assertion's type (called while decoding).
pub(crate) fn check(a: &Assertion) -> Result<(), HeaderError> {
    match a.type_name() {
        "account" => Account::from_assertion(a).map(drop),
        "account-key" => AccountKey::from_assertion(a).map(drop),
        "account-key-request" => AccountKeyRequest::from_assertion(a).map(drop),
        "model" => Model::from_assertion(a).map(drop),
        "snap-declaration" => SnapDeclaration::from_assertion(a).map(drop),
        "snap-revision" => SnapRevision::from_assertion(a).map(drop),
        "system-user" => SystemUser::from_assertion(a).map(drop),
        "serial" => Serial::from_assertion(a).map(drop),
        "store" => Store::from_assertion(a).map(drop),
        _ => Ok(()),
    }
}

fn expect_type(a: &Assertion, name: &str) -> Result<(), HeaderError> {
    if a.type_name() == name {
        Ok(())
    } else {
        Err(HeaderError::invalid(
            "type",
            format!("expected a {name} assertion, got {}", a.type_name()),
        ))
    }
}

fn string(a: &Assertion, name: &str) -> Result<String, HeaderError> {
    not_empty_string(a.headers(), name).map(str::to_owned)
}

fn optional_string(a: &Assertion, name: &str) -> Result<Option<String>, HeaderError> {
    match a.header(name) {
        None => Ok(None),
        Some(HeaderValue::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(HeaderError::WrongKind {
            name: name.to_owned(),
            expected: "a string",
        }),
    }
}

fn date(a: &Assertion, name: &str) -> Result<Timestamp, HeaderError> {
    let s = not_empty_string(a.headers(), name)?;
    Timestamp::parse(s)
        .ok_or_else(|| HeaderError::invalid(name, format!("{s:?} is not an RFC 3339 date")))
}

fn optional_date(a: &Assertion, name: &str) -> Result<Option<Timestamp>, HeaderError> {
    match a.header(name) {
        None => Ok(None),
        Some(_) => date(a, name).map(Some),
    }
}

fn int(a: &Assertion, name: &str) -> Result<u64, HeaderError> {
    let v = a
        .header(name)
        .ok_or_else(|| HeaderError::Missing(name.to_owned()))?;
    parse_int(name, v)
}

fn string_list(a: &Assertion, name: &str) -> Result<Vec<String>, HeaderError> {
    list_of_strings(name, a.header(name))
}

fn list_of_strings(name: &str, v: Option<&HeaderValue>) -> Result<Vec<String>, HeaderError> {
    match v {
        None => Ok(Vec::new()),
        Some(HeaderValue::List(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| HeaderError::WrongKind {
                        name: name.to_owned(),
                        expected: "a list of strings",
                    })
            })
            .collect(),
        Some(_) => Err(HeaderError::WrongKind {
            name: name.to_owned(),
            expected: "a list of strings",
        }),
    }
}

fn optional_bool(a: &Assertion, name: &str) -> Result<bool, HeaderError> {
    match optional_string(a, name)?.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(HeaderError::invalid(
            name,
            format!("{other:?} is not \"true\" or \"false\""),
        )),
    }
}

fn key_body(a: &Assertion) -> Result<PublicKey, HeaderError> {
    PublicKey::decode(a.body())
        .map_err(|e| HeaderError::invalid("body", format!("cannot decode public key: {e}")))
}

fn check_validity(since: Timestamp, until: Option<Timestamp>) -> Result<(), HeaderError> {
    match until {
        Some(u) if u <= since => Err(HeaderError::invalid(
            "until",
            "'until' time cannot be before 'since' time",
        )),
        _ => Ok(()),
    }
}

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

/// One entry of a UC20+ model's `snaps` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSnap {
    /// Snap name.
    pub name: String,
    /// Store snap id (may be absent in dangerous models).
    pub id: Option<String>,
    /// `gadget`, `kernel`, `base`, `snapd`, `core` or `app`.
    pub snap_type: String,
    /// Channel the snap is taken from by default.
    pub default_channel: String,
    /// `required` or `optional`.
    pub presence: String,
}

/// A device model: what a device of a brand is made of.
#[derive(Clone, Debug)]
pub struct Model {
    /// Always `16` today.
    pub series: String,
    /// The brand's account id (also the signer).
    pub brand_id: String,
    /// The model name.
    pub model: String,
    /// Whether it is a classic (non-Core) model.
    pub classic: bool,
    /// Debian-style architecture (`arm64`, `armhf`, `amd64`).
    pub architecture: Option<String>,
    /// The base snap (absent for series-16 Core 16 models, which use `core`).
    pub base: Option<String>,
    /// The gadget snap name, with `=track` removed.
    pub gadget: Option<String>,
    /// The gadget's `=track`, if given.
    pub gadget_track: Option<String>,
    /// The kernel snap name, with `=track` removed.
    pub kernel: Option<String>,
    /// The kernel's `=track`, if given.
    pub kernel_track: Option<String>,
    /// Extra snaps every device gets (series-16 form).
    pub required_snaps: Vec<String>,
    /// The UC20+ `snaps` list (empty for the older form).
    pub snaps: Vec<ModelSnap>,
    /// `secured`, `signed` or `dangerous` (UC20+), else absent.
    pub grade: Option<String>,
    /// Optional brand store id.
    pub store: Option<String>,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Accounts allowed to sign serials: the brand, then `serial-authority`.
    pub serial_authority: Vec<String>,
    /// Accounts allowed to sign system-users for it (`system-user-authority`).
    pub system_user_authority: Authorities,
    /// When it was asserted.
    pub timestamp: Timestamp,
}

/// Who may sign an assertion on a model's behalf, as snapd's model headers say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authorities {
    /// `*`: any account.
    Any,
    /// These accounts (the brand always first).
    Accounts(Vec<String>),
}

impl Authorities {
    /// Whether `account` is one of them.
    pub fn allows(&self, account: &str) -> bool {
        match self {
            Authorities::Any => true,
            Authorities::Accounts(list) => list.iter().any(|a| a == account),
        }
    }
}

impl std::fmt::Display for Authorities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorities::Any => f.write_str("any account"),
            Authorities::Accounts(list) => {
                let quoted: Vec<String> = list.iter().map(|a| format!("{a:?}")).collect();
                f.write_str(&quoted.join(", "))
            }
        }
    }
}

/// snapd's `checkOptionalAuthority`: absent means the brand alone; a list gets the brand
/// added in front; `*` (where accepted) means anyone.
fn optional_authority(
    a: &Assertion,
    name: &str,
    brand: &str,
    wildcard: bool,
) -> Result<Authorities, HeaderError> {
    let wrong = || {
        HeaderError::invalid(
            name,
            if wildcard {
                "must be '*' or a list of account ids"
            } else {
                "must be a list of account ids"
            },
        )
    };
    match a.header(name) {
        None => Ok(Authorities::Accounts(vec![brand.to_owned()])),
        Some(HeaderValue::String(s)) if wildcard && s == "*" => Ok(Authorities::Any),
        Some(HeaderValue::String(_)) => Err(wrong()),
        Some(v @ HeaderValue::List(_)) => {
            let list = list_of_strings(name, Some(v)).map_err(|_| wrong())?;
            if !list.iter().all(|id| valid_account_id(id)) {
                return Err(wrong());
            }
            let mut ids = vec![brand.to_owned()];
            ids.extend(list.into_iter().filter(|id| id != brand));
            Ok(Authorities::Accounts(ids))
        }
        Some(_) => Err(wrong()),
    }
}

/// snapd's `validAccountID`: `^(?:[a-z0-9A-Z]{32}|[-a-z0-9]{2,28})$`.
pub(crate) fn valid_account_id(id: &str) -> bool {
    let b = id.as_bytes();
    (b.len() == 32 && b.iter().all(u8::is_ascii_alphanumeric))
        || ((2..=28).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-'))
}

fn valid_model_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !s.contains("--")
}

fn valid_snap_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=40).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.iter().any(u8::is_ascii_lowercase)
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn name_and_track(header: &str, v: &str) -> Result<(String, Option<String>), HeaderError> {
    let (name, track) = match v.split_once('=') {
        Some((n, t)) => (n, Some(t.to_owned())),
        None => (v, None),
    };
    if !valid_snap_name(name) {
        return Err(HeaderError::invalid(
            header,
            format!("{name:?} is not a valid snap name"),
        ));
    }
    if let Some(t) = &track {
        if t.is_empty() || t.contains('/') {
            return Err(HeaderError::invalid(
                header,
                format!("{v:?}: the track after '=' must be a plain track name"),
            ));
        }
    }
    Ok((name.to_owned(), track))
}

impl Model {
    /// Reads and checks a `model` assertion with snapd's rules.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "model")?;
        let brand_id = string(a, "brand-id")?;
        let authority = a.authority_id();
        if authority != brand_id {
            return Err(HeaderError::Authority(format!(
                "authority-id and brand-id must match, model assertions are expected to be signed by the brand: {authority:?} != {brand_id:?}"
            )));
        }
        let model = string(a, "model")?;
        if !valid_model_name(&model) {
            return Err(HeaderError::invalid(
                "model",
                format!("{model:?} is not a valid model name"),
            ));
        }
        let classic = optional_bool(a, "classic")?;
        let architecture = optional_string(a, "architecture")?;
        if !classic && architecture.as_deref().is_none_or(str::is_empty) {
            return Err(HeaderError::Missing("architecture".into()));
        }
        let base = optional_string(a, "base")?;
        let snaps = match a.header("snaps") {
            None => Vec::new(),
            Some(v) => model_snaps(v)?,
        };
        let mut grade = optional_string(a, "grade")?;
        let (mut gadget, mut gadget_track, mut kernel, mut kernel_track) = (None, None, None, None);
        let mut required_snaps = Vec::new();
        if snaps.is_empty() {
            if grade.is_some() {
                return Err(HeaderError::invalid(
                    "grade",
                    "only valid together with the \"snaps\" header",
                ));
            }
            for (header, name, track) in [
                ("gadget", &mut gadget, &mut gadget_track),
                ("kernel", &mut kernel, &mut kernel_track),
            ] {
                match optional_string(a, header)? {
                    Some(v) => {
                        let (n, t) = name_and_track(header, &v)?;
                        *name = Some(n);
                        *track = t;
                    }
                    None if !classic => return Err(HeaderError::Missing(header.into())),
                    None => {}
                }
            }
            required_snaps = string_list(a, "required-snaps")?;
            for s in &required_snaps {
                if !valid_snap_name(s) {
                    return Err(HeaderError::invalid(
                        "required-snaps",
                        format!("{s:?} is not a valid snap name"),
                    ));
                }
            }
        } else {
            for h in ["gadget", "kernel", "required-snaps"] {
                if a.header(h).is_some() {
                    return Err(HeaderError::invalid(
                        h,
                        "cannot be given once using the extended \"snaps\" header",
                    ));
                }
            }
            if base.is_none() {
                return Err(HeaderError::Missing("base".into()));
            }
            let g = grade.get_or_insert_with(|| "signed".into());
            if !["secured", "signed", "dangerous"].contains(&g.as_str()) {
                return Err(HeaderError::invalid(
                    "grade",
                    format!("{g:?} is not secured, signed or dangerous"),
                ));
            }
            let dangerous = g == "dangerous";
            for s in &snaps {
                if s.id.is_none() && !dangerous {
                    return Err(HeaderError::invalid(
                        "snaps",
                        format!(
                            "snap {:?}: \"id\" is mandatory unless grade is dangerous",
                            s.name
                        ),
                    ));
                }
            }
            for kind in ["gadget", "kernel"] {
                let n = snaps.iter().filter(|s| s.snap_type == kind).count();
                if n > 1 || (n == 0 && !classic) {
                    return Err(HeaderError::invalid(
                        "snaps",
                        format!("exactly one {kind} snap is required, found {n}"),
                    ));
                }
            }
            gadget = snaps
                .iter()
                .find(|s| s.snap_type == "gadget")
                .map(|s| s.name.clone());
            kernel = snaps
                .iter()
                .find(|s| s.snap_type == "kernel")
                .map(|s| s.name.clone());
        }
        if let Some(b) = &base {
            if !valid_snap_name(b) {
                return Err(HeaderError::invalid(
                    "base",
                    format!("{b:?} is not a valid snap name"),
                ));
            }
        }
        let serial_authority = match optional_authority(a, "serial-authority", &brand_id, false)? {
            Authorities::Accounts(list) => list,
            Authorities::Any => vec![brand_id.clone()],
        };
        let system_user_authority =
            optional_authority(a, "system-user-authority", &brand_id, true)?;
        Ok(Model {
            series: string(a, "series")?,
            brand_id,
            model,
            classic,
            architecture,
            base,
            gadget,
            gadget_track,
            kernel,
            kernel_track,
            required_snaps,
            snaps,
            grade,
            store: optional_string(a, "store")?,
            display_name: optional_string(a, "display-name")?,
            serial_authority,
            system_user_authority,
            timestamp: date(a, "timestamp")?,
        })
    }

    /// The snap that provides the root filesystem: `base`, or `core` for Core 16 models.
    pub fn base_or_core(&self) -> &str {
        self.base.as_deref().unwrap_or("core")
    }
}

fn model_snaps(v: &HeaderValue) -> Result<Vec<ModelSnap>, HeaderError> {
    let items = v.as_list().ok_or(HeaderError::WrongKind {
        name: "snaps".into(),
        expected: "a list of maps",
    })?;
    let mut out: Vec<ModelSnap> = Vec::new();
    for item in items {
        let m: &BTreeMap<String, HeaderValue> = item.as_map().ok_or(HeaderError::WrongKind {
            name: "snaps".into(),
            expected: "a list of maps",
        })?;
        let get = |k: &str| -> Result<Option<String>, HeaderError> {
            match m.get(k) {
                None => Ok(None),
                Some(HeaderValue::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(HeaderError::invalid(
                    "snaps",
                    format!("\"{k}\" of a snap must be a string"),
                )),
            }
        };
        let name =
            get("name")?.ok_or_else(|| HeaderError::invalid("snaps", "a snap has no \"name\""))?;
        if !valid_snap_name(&name) {
            return Err(HeaderError::invalid(
                "snaps",
                format!("{name:?} is not a valid snap name"),
            ));
        }
        if out.iter().any(|s| s.name == name) {
            return Err(HeaderError::invalid(
                "snaps",
                format!("snap {name:?} is listed twice"),
            ));
        }
        let snap_type = get("type")?.unwrap_or_else(|| "app".into());
        if !["app", "gadget", "kernel", "base", "core", "snapd"].contains(&snap_type.as_str()) {
            return Err(HeaderError::invalid(
                "snaps",
                format!("snap {name:?}: unknown type {snap_type:?}"),
            ));
        }
        let presence = get("presence")?.unwrap_or_else(|| "required".into());
        if !["required", "optional"].contains(&presence.as_str()) {
            return Err(HeaderError::invalid(
                "snaps",
                format!("snap {name:?}: presence must be required or optional"),
            ));
        }
        out.push(ModelSnap {
            id: get("id")?,
            default_channel: get("default-channel")?.unwrap_or_else(|| "latest/stable".into()),
            snap_type,
            presence,
            name,
        });
    }
    Ok(out)
}

/// A snap-declaration: binds a snap id to its name and publisher.
#[derive(Clone, Debug)]
pub struct SnapDeclaration {
    /// Series, `16`.
    pub series: String,
    /// The store's id of the snap.
    pub snap_id: String,
    /// The snap's name.
    pub snap_name: String,
    /// The publisher's account id.
    pub publisher_id: String,
    /// Accounts other than the store allowed to sign revisions of it (`revision-authority`).
    pub revision_authority: Vec<RevisionAuthority>,
    /// When it was asserted.
    pub timestamp: Timestamp,
}

/// One `revision-authority` entry of a snap-declaration: an account that may sign
/// snap-revisions of the snap with one of the given provenances, within a revision range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionAuthority {
    /// The account.
    pub account_id: String,
    /// The provenances it may sign (never empty).
    pub provenance: Vec<String>,
    /// Lowest revision it may sign (1 when not given).
    pub min_revision: u64,
    /// Highest revision it may sign, if limited.
    pub max_revision: Option<u64>,
}

impl RevisionAuthority {
    /// Why `rev` is outside this entry, or `None` if the entry allows it (snapd's
    /// `RevisionAuthority.Check` without device scope).
    pub fn refuses(&self, rev: &SnapRevision, authority: &str) -> Option<String> {
        if !self.provenance.contains(&rev.provenance) {
            return Some(format!(
                "provenance {:?} is not among {:?}",
                rev.provenance, self.provenance
            ));
        }
        if authority != self.account_id {
            return Some(format!("the entry is for {:?}", self.account_id));
        }
        if rev.snap_revision < self.min_revision {
            return Some(format!(
                "revision {} is less than min-revision {}",
                rev.snap_revision, self.min_revision
            ));
        }
        match self.max_revision {
            Some(max) if rev.snap_revision > max => Some(format!(
                "revision {} is greater than max-revision {max}",
                rev.snap_revision
            )),
            _ => None,
        }
    }
}

/// snapd's `naming.ValidProvenance`: `^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$`.
fn valid_provenance(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !s.contains("--")
}

/// The provenance snapd gives revisions that do not name one.
pub const DEFAULT_PROVENANCE: &str = "global-upload";

fn revision_authorities(v: &HeaderValue) -> Result<Vec<RevisionAuthority>, HeaderError> {
    let bad = |reason: &str| HeaderError::invalid("revision-authority", reason);
    let items = v
        .as_list()
        .ok_or_else(|| bad("stanza must be a list of maps"))?;
    if items.is_empty() {
        return Err(bad("stanza cannot be empty"));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let m = item
            .as_map()
            .ok_or_else(|| bad("stanza must be a list of maps"))?;
        let account_id = match m.get("account-id") {
            Some(HeaderValue::String(s)) if valid_account_id(s) => s.clone(),
            _ => return Err(bad("\"account-id\" must be a valid account id")),
        };
        let provenance = list_of_strings("revision-authority", m.get("provenance"))?;
        if provenance.is_empty() {
            return Err(bad("provenance in revision authority cannot be empty"));
        }
        if let Some(p) = provenance.iter().find(|p| !valid_provenance(p)) {
            return Err(bad(&format!("invalid provenance {p:?}")));
        }
        let revision = |name: &str| -> Result<Option<u64>, HeaderError> {
            match m.get(name) {
                None => Ok(None),
                Some(v) => {
                    let n = parse_int(name, v)?;
                    if n == 0 {
                        return Err(bad(&format!("{name} must be >= 1")));
                    }
                    Ok(Some(n))
                }
            }
        };
        let min_revision = revision("min-revision")?.unwrap_or(1);
        let max_revision = revision("max-revision")?;
        if max_revision.is_some_and(|max| max < min_revision) {
            return Err(bad(
                "optional max-revision cannot be less than min-revision",
            ));
        }
        out.push(RevisionAuthority {
            account_id,
            provenance,
            min_revision,
            max_revision,
        });
    }
    Ok(out)
}

impl SnapDeclaration {
    /// Reads and checks a `snap-declaration` assertion.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "snap-declaration")?;
        Ok(SnapDeclaration {
            series: string(a, "series")?,
            snap_id: string(a, "snap-id")?,
            snap_name: string(a, "snap-name")?,
            publisher_id: string(a, "publisher-id")?,
            revision_authority: match a.header("revision-authority") {
                None => Vec::new(),
                Some(v) => revision_authorities(v)?,
            },
            timestamp: date(a, "timestamp")?,
        })
    }
}

/// A snap-revision: the identity (SHA3-384 and size) of one revision of a snap.
#[derive(Clone, Debug)]
pub struct SnapRevision {
    /// Unpadded base64url SHA3-384 of the snap file.
    pub snap_sha3_384: String,
    /// The snap's id.
    pub snap_id: String,
    /// Size of the snap file in bytes.
    pub snap_size: u64,
    /// The revision number (> 0).
    pub snap_revision: u64,
    /// The uploader's account id.
    pub developer_id: String,
    /// Where the revision comes from (`global-upload` unless given).
    pub provenance: String,
    /// When it was asserted.
    pub timestamp: Timestamp,
}

impl SnapRevision {
    /// Reads and checks a `snap-revision` assertion.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "snap-revision")?;
        let snap_sha3_384 = string(a, "snap-sha3-384")?;
        check_key_id("snap-sha3-384", &snap_sha3_384)?;
        let snap_revision = int(a, "snap-revision")?;
        if snap_revision == 0 {
            return Err(HeaderError::invalid(
                "snap-revision",
                "must be greater than 0",
            ));
        }
        Ok(SnapRevision {
            snap_sha3_384,
            snap_id: string(a, "snap-id")?,
            snap_size: int(a, "snap-size")?,
            snap_revision,
            developer_id: string(a, "developer-id")?,
            provenance: match optional_string(a, "provenance")? {
                None => DEFAULT_PROVENANCE.to_owned(),
                Some(p) if valid_provenance(&p) => p,
                Some(p) => {
                    return Err(HeaderError::invalid(
                        "provenance",
                        format!("{p:?} is not a valid provenance"),
                    ))
                }
            },
            timestamp: date(a, "timestamp")?,
        })
    }
}

/// A system-user: an account the brand (or an account its model names in
/// `system-user-authority`) lets devices of its models create, as snapd's
/// `auto-import.assert` does.
#[derive(Clone, Debug)]
pub struct SystemUser {
    /// The brand.
    pub brand_id: String,
    /// The user's e-mail.
    pub email: String,
    /// Series it applies to.
    pub series: Vec<String>,
    /// Models it applies to (empty: any model of the brand, for at most a year).
    pub models: Vec<String>,
    /// Device serials it applies to (empty: any).
    pub serials: Vec<String>,
    /// The person's name, if given.
    pub name: Option<String>,
    /// The login name.
    pub username: String,
    /// Optional crypt(3) password hash (`$6$...` or newer).
    pub password: Option<String>,
    /// Whether the password must be changed at first login.
    pub force_password_change: bool,
    /// Authorized SSH keys.
    pub ssh_keys: Vec<String>,
    /// Start of validity.
    pub since: Timestamp,
    /// End of validity (exclusive).
    pub until: Timestamp,
}

/// snapd's `validSystemUserUsernames`: `^[a-z0-9][-a-z0-9._]*$` (at most 32 bytes, as
/// `useradd` takes).
fn valid_system_username(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_')
        })
}

/// snapd's `checkHashedPassword`: `$id$[rounds=N$]salt$hash` with id >= 6.
fn check_hashed_password(pw: &str) -> Result<(), HeaderError> {
    let bad = |reason: String| HeaderError::invalid("password", reason);
    let parts: Vec<&str> = pw.splitn(5, '$').collect();
    let (id, rounds, salt, hash) = match parts.as_slice() {
        ["", id, rounds, salt, hash] if rounds.starts_with("rounds=") => {
            (*id, Some(*rounds), *salt, *hash)
        }
        ["", id, salt, hash] if !salt.starts_with("rounds=") => (*id, None, *salt, *hash),
        _ => {
            return Err(bad(
                "hashed password must be of the form \"$integer-id$salt$hash\", see crypt(3)"
                    .into(),
            ))
        }
    };
    match id.parse::<u32>() {
        Ok(n) if n >= 6 => {}
        Ok(_) => return Err(bad("only $id$ values of 6 (sha512crypt) or higher".into())),
        Err(_) => return Err(bad(format!("must start with \"$integer-id$\", got {id:?}"))),
    }
    if let Some(r) = rounds {
        match r["rounds=".len()..].parse::<u64>() {
            Ok(n) if (5000..=999_999_999).contains(&n) => {}
            _ => return Err(bad(format!("rounds parameter out of bounds: {r}"))),
        }
    }
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/')
    };
    if !ok(salt) {
        return Err(bad(format!("invalid chars in salt {salt:?}")));
    }
    if !ok(hash) {
        return Err(bad(format!("invalid chars in hash {hash:?}")));
    }
    Ok(())
}

/// A plain `local@domain` address: what RFC 5322 allows in an `addr-spec` without
/// quoting or comments.
fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atext = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&c);
    !local.is_empty()
        && !domain.is_empty()
        && local.bytes().all(atext)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

impl SystemUser {
    /// Reads and checks a `system-user` assertion with snapd's rules.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "system-user")?;
        let email = string(a, "email")?;
        if !valid_email(&email) {
            return Err(HeaderError::invalid(
                "email",
                format!("{email:?} is not an RFC 5322 e-mail address"),
            ));
        }
        let models = string_list(a, "models")?;
        let serials = string_list(a, "serials")?;
        if !serials.is_empty() && models.len() != 1 {
            return Err(HeaderError::invalid(
                "serials",
                "in the presence of the \"serials\" header \"models\" must specify exactly one model",
            ));
        }
        let username = string(a, "username")?;
        if !valid_system_username(&username) {
            return Err(HeaderError::invalid(
                "username",
                format!(
                    "{username:?} is not a valid user name (^[a-z0-9][-a-z0-9._]*$, at most 32)"
                ),
            ));
        }
        let password = optional_string(a, "password")?.filter(|p| !p.is_empty());
        if let Some(p) = &password {
            check_hashed_password(p)?;
        }
        let force_password_change = optional_bool(a, "force-password-change")?;
        if force_password_change && password.is_none() {
            return Err(HeaderError::invalid(
                "force-password-change",
                "cannot be used with an empty \"password\"",
            ));
        }
        let since = date(a, "since")?;
        let until = date(a, "until")?;
        if until < since {
            return Err(HeaderError::invalid(
                "until",
                "'until' time cannot be before 'since' time",
            ));
        }
        if models.is_empty() && until.unix() > since.unix() + 366 * 86_400 {
            return Err(HeaderError::invalid(
                "until",
                "'until' time cannot be more than 365 days in the future when no models are specified",
            ));
        }
        Ok(SystemUser {
            brand_id: string(a, "brand-id")?,
            email,
            series: string_list(a, "series")?,
            models,
            serials,
            name: optional_string(a, "name")?,
            username,
            password,
            force_password_change,
            ssh_keys: string_list(a, "ssh-keys")?,
            since,
            until,
        })
    }

    /// Whether it is valid at `t`: `since <= t < until`.
    pub fn is_valid_at(&self, t: Timestamp) -> bool {
        self.since <= t && t < self.until
    }

    /// Why this system-user, signed by `authority`, may not create an account on a device
    /// of `model` (with serial `serial`, if known) at time `now`; `None` if it may. These
    /// are the checks snapd makes before it creates a user from `auto-import.assert`.
    pub fn refuses(
        &self,
        authority: &str,
        model: &Model,
        serial: Option<&str>,
        now: Timestamp,
    ) -> Option<String> {
        if self.brand_id != model.brand_id {
            return Some(format!(
                "it is for brand {:?}, this device is of brand {:?}",
                self.brand_id, model.brand_id
            ));
        }
        if !model.system_user_authority.allows(authority) {
            return Some(format!(
                "it is signed by {authority:?}, and the model allows system-users signed by {} only",
                model.system_user_authority
            ));
        }
        if !self.series.is_empty() && !self.series.contains(&model.series) {
            return Some(format!(
                "it is for series {:?}, this device is series {:?}",
                self.series, model.series
            ));
        }
        if !self.models.is_empty() && !self.models.contains(&model.model) {
            return Some(format!(
                "it is for models {:?}, this device is model {:?}",
                self.models, model.model
            ));
        }
        if !self.serials.is_empty() {
            match serial {
                Some(s) if self.serials.iter().any(|x| x == s) => {}
                Some(s) => {
                    return Some(format!(
                        "it is for serials {:?}, this device is serial {s:?}",
                        self.serials
                    ))
                }
                None => {
                    return Some(format!(
                        "it is for serials {:?}, and this device has no serial yet",
                        self.serials
                    ))
                }
            }
        }
        if !self.is_valid_at(now) {
            return Some(format!(
                "it is valid from {} until {}, and the time is {now}",
                self.since, self.until
            ));
        }
        None
    }
}

/// A store: a store's id, its operator, and where it is.
#[derive(Clone, Debug)]
pub struct Store {
    /// The store id.
    pub store: String,
    /// The account that operates it.
    pub operator_id: String,
    /// When it was asserted.
    pub timestamp: Timestamp,
}

impl Store {
    /// Reads and checks a `store` assertion.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "store")?;
        Ok(Store {
            store: string(a, "store")?,
            operator_id: string(a, "operator-id")?,
            timestamp: date(a, "timestamp")?,
        })
    }
}

/// A serial: a device's identity and its device key, signed by the serial authority.
#[derive(Clone, Debug)]
pub struct Serial {
    /// The brand.
    pub brand_id: String,
    /// The model.
    pub model: String,
    /// The device serial.
    pub serial: String,
    /// The device's public key.
    pub device_key: PublicKey,
    /// When it was asserted.
    pub timestamp: Timestamp,
}

impl Serial {
    /// Reads and checks a `serial` assertion; `device-key-sha3-384` must match `device-key`.
    pub fn from_assertion(a: &Assertion) -> Result<Self, HeaderError> {
        expect_type(a, "serial")?;
        let encoded = string(a, "device-key")?;
        let device_key = PublicKey::decode(encoded.as_bytes()).map_err(|e| {
            HeaderError::invalid("device-key", format!("cannot decode public key: {e}"))
        })?;
        let id = string(a, "device-key-sha3-384")?;
        if device_key.id() != id {
            return Err(HeaderError::invalid(
                "device-key-sha3-384",
                "does not match the device-key",
            ));
        }
        Ok(Serial {
            brand_id: string(a, "brand-id")?,
            model: string(a, "model")?,
            serial: string(a, "serial")?,
            device_key,
            timestamp: date(a, "timestamp")?,
        })
    }
}
