//! Typed views of the assertion types coreforge uses, with snapd's checks: accounts and
//! keys (`account.rs`), models (`model.rs`), snaps (`snap.rs`), and what a device is
//! given (`device.rs`: system-users, serials, stores).

mod account;
mod device;
mod model;
mod snap;

pub use account::{Account, AccountKey, AccountKeyRequest};
pub use device::{Serial, Store, SystemUser};
pub(crate) use model::valid_account_id;
pub use model::{valid_snap_name, Authorities, Model, ModelSnap};
pub use snap::{RevisionAuthority, SnapDeclaration, SnapRevision, DEFAULT_PROVENANCE};

use crate::assertion::{not_empty_string, parse_int, Assertion};
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

pub(super) fn expect_type(a: &Assertion, name: &str) -> Result<(), HeaderError> {
    if a.type_name() == name {
        Ok(())
    } else {
        Err(HeaderError::invalid(
            "type",
            format!("expected a {name} assertion, got {}", a.type_name()),
        ))
    }
}

pub(super) fn string(a: &Assertion, name: &str) -> Result<String, HeaderError> {
    not_empty_string(a.headers(), name).map(str::to_owned)
}

pub(super) fn optional_string(a: &Assertion, name: &str) -> Result<Option<String>, HeaderError> {
    match a.header(name) {
        None => Ok(None),
        Some(HeaderValue::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(HeaderError::WrongKind {
            name: name.to_owned(),
            expected: "a string",
        }),
    }
}

pub(super) fn date(a: &Assertion, name: &str) -> Result<Timestamp, HeaderError> {
    let s = not_empty_string(a.headers(), name)?;
    Timestamp::parse(s)
        .ok_or_else(|| HeaderError::invalid(name, format!("{s:?} is not an RFC 3339 date")))
}

pub(super) fn optional_date(a: &Assertion, name: &str) -> Result<Option<Timestamp>, HeaderError> {
    match a.header(name) {
        None => Ok(None),
        Some(_) => date(a, name).map(Some),
    }
}

pub(super) fn int(a: &Assertion, name: &str) -> Result<u64, HeaderError> {
    let v = a
        .header(name)
        .ok_or_else(|| HeaderError::Missing(name.to_owned()))?;
    parse_int(name, v)
}

pub(super) fn string_list(a: &Assertion, name: &str) -> Result<Vec<String>, HeaderError> {
    list_of_strings(name, a.header(name))
}

pub(super) fn list_of_strings(
    name: &str,
    v: Option<&HeaderValue>,
) -> Result<Vec<String>, HeaderError> {
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

pub(super) fn optional_bool(a: &Assertion, name: &str) -> Result<bool, HeaderError> {
    match optional_string(a, name)?.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(HeaderError::invalid(
            name,
            format!("{other:?} is not \"true\" or \"false\""),
        )),
    }
}

pub(super) fn key_body(a: &Assertion) -> Result<PublicKey, HeaderError> {
    PublicKey::decode(a.body())
        .map_err(|e| HeaderError::invalid("body", format!("cannot decode public key: {e}")))
}

pub(super) fn check_validity(
    since: Timestamp,
    until: Option<Timestamp>,
) -> Result<(), HeaderError> {
    match until {
        Some(u) if u <= since => Err(HeaderError::invalid(
            "until",
            "'until' time cannot be before 'since' time",
        )),
        _ => Ok(()),
    }
}
