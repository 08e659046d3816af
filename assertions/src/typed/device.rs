//! What a device is given: system-users (accounts it may create), serials, stores.

use crate::assertion::Assertion;
use crate::error::HeaderError;
use crate::keys::PublicKey;
use crate::time::Timestamp;

use super::{date, expect_type, optional_bool, optional_string, string, string_list, Model};

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
