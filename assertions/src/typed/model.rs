//! Models: what a device of a brand is made of, with snapd's checks.

use std::collections::BTreeMap;

use crate::assertion::Assertion;
use crate::error::HeaderError;
use crate::headers::HeaderValue;
use crate::time::Timestamp;

use super::{
    date, expect_type, list_of_strings, optional_bool, optional_string, string, string_list,
};

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

/// snapd's snap-name rule: 2-40 of `[a-z0-9-]`, at least one letter, no leading, trailing
/// or doubled `-`. Shared by the model's snaps, `snap.yaml` (host) and `/snap/<name>` (device).
pub fn valid_snap_name(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=40).contains(&b.len())
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
