//! Snaps in the store: declarations (id, name, publisher, revision authorities) and
//! revisions (the identity of a snap file).

use crate::assertion::{check_key_id, parse_int, Assertion};
use crate::error::HeaderError;
use crate::headers::HeaderValue;
use crate::time::Timestamp;

use super::{date, expect_type, int, list_of_strings, optional_string, string, valid_account_id};

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
