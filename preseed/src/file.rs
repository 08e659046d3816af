//! `console-conf.json`, the preseed file: parsed and validated in one pass over a JSON value, so
//! every refusal names the field (`network.address`) and says what was expected.
//!
//! ```json
//! {"network": {"interface": "eth0", "method": "dhcp"},
//!  "wifi": {"interface": "wlan0", "ssid": "home", "passphrase": "correct horse"},
//!  "identity": "alice@example.com"}
//! ```
//!
//! `network` is `{"interface", "method": "dhcp"}`, `{"interface", "method": "static", "address":
//! "A.B.C.D/N", "gateway"?, "dns"?: [...]}` or `{"method": "none"}`; `wifi` is optional, with
//! exactly one of `passphrase` (8-63 printable ASCII) or `psk` (64 hex digits); `identity` is a
//! store e-mail, `gh:USER`, `lp:USER` or `{"username", "ssh-keys": [...]}`. Unknown fields are
//! refused everywhere: a misspelt optional field must not be silently ignored on a device no
//! one is watching. Network and Wi-Fi values go through the same validating constructors as the
//! console's (`Network::dhcp`, `Network::new_static`, `Wifi::new`).

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::{Network, NetworkError, Wifi, WifiError};

/// The preseed file's name at the root of the boot partition.
pub const PRESEED_FILE: &str = "console-conf.json";

/// Largest preseed file accepted (a few dozen SSH keys fit many times over).
pub const MAX_PRESEED_LEN: usize = 256 * 1024;

/// A validated preseed file: everything console-conf would have asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preseed {
    /// How the OS brings up its wired network.
    pub network: Network,
    /// A Wi-Fi network for the OS, if given.
    pub wifi: Option<Wifi>,
    /// Where the account and its SSH keys come from.
    pub identity: Identity,
}

/// Where the account's name and SSH keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A store account, looked up by e-mail at `<sso-url>/api/v2/keys/<e-mail>`.
    Store(String),
    /// A GitHub user (`gh:USER`): keys from `https://github.com/USER.keys`.
    GitHub(String),
    /// A Launchpad user (`lp:USER`): keys from `https://launchpad.net/~USER/+sshkeys`.
    Launchpad(String),
    /// An account name and its public keys given directly (not yet parsed by `ssh-key`).
    Keys {
        /// Login name to create.
        username: String,
        /// Public keys in `authorized_keys` form.
        ssh_keys: Vec<String>,
    },
}

/// Why a preseed file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreseedError {
    /// The file is larger than [`MAX_PRESEED_LEN`].
    #[error("the preseed file is {0} bytes; at most {MAX_PRESEED_LEN} are accepted")]
    TooLarge(usize),
    /// The file is not JSON.
    #[error("the preseed file is not valid JSON: {0}")]
    Syntax(String),
    /// A required field is absent.
    #[error("{field}: missing; expected {expected}")]
    Missing {
        /// Dotted path of the field, e.g. `network.method`.
        field: String,
        /// What should be there.
        expected: &'static str,
    },
    /// A field this schema does not know (misspelt, or from a newer format).
    #[error("{field}: unknown field; allowed here: {allowed}")]
    Unknown {
        /// Dotted path of the field.
        field: String,
        /// The fields allowed in that object.
        allowed: &'static str,
    },
    /// The network's values were refused by [`Network`]'s constructors.
    #[error("{field}: {source}")]
    Network {
        /// Dotted path of the field, e.g. `network.gateway`.
        field: &'static str,
        /// The constructor's reason.
        source: NetworkError,
    },
    /// The Wi-Fi values were refused by [`Wifi::new`].
    #[error("{field}: {source}")]
    Wifi {
        /// Dotted path of the field, e.g. `wifi.passphrase`.
        field: &'static str,
        /// The constructor's reason.
        source: WifiError,
    },
    /// A field is present but its value is wrong.
    #[error("{field}: expected {expected}, got {got}")]
    Invalid {
        /// Dotted path of the field, e.g. `wifi.psk` or `identity.ssh-keys[1]`.
        field: String,
        /// What should be there.
        expected: &'static str,
        /// What was there (a short rendering of the value).
        got: String,
    },
}

impl Preseed {
    /// Parses and validates a preseed file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Preseed, PreseedError> {
        if bytes.len() > MAX_PRESEED_LEN {
            return Err(PreseedError::TooLarge(bytes.len()));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| PreseedError::Syntax(e.to_string()))?;
        let top = Obj::new(
            &value,
            "the preseed file",
            "an object with \"network\", \"identity\" and optionally \"wifi\"",
        )?;
        top.only(&["network", "wifi", "identity"], "network, wifi, identity")?;
        let network = network(top.required("network", "an object with \"method\"")?)?;
        let wifi = match top.optional("wifi") {
            Some(v) => Some(wifi(v)?),
            None => None,
        };
        let identity = identity(top.required(
            "identity",
            "an e-mail, \"gh:USER\", \"lp:USER\" or {\"username\", \"ssh-keys\"}",
        )?)?;
        Ok(Preseed {
            network,
            wifi,
            identity,
        })
    }
}

impl FromStr for Identity {
    type Err = PreseedError;

    /// Parses the string forms a person types: `alice@example.com`, `gh:alice`, `lp:alice`.
    fn from_str(s: &str) -> Result<Identity, PreseedError> {
        identity_source(s, "identity")
    }
}

impl fmt::Display for Identity {
    /// Says where keys come from, for the login details (`store account alice@example.com`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Store(email) => write!(f, "store account {email}"),
            Identity::GitHub(user) => write!(f, "GitHub user {user}"),
            Identity::Launchpad(user) => write!(f, "Launchpad user {user}"),
            Identity::Keys { username, ssh_keys } => {
                write!(f, "{} key(s) given for {username}", ssh_keys.len())
            }
        }
    }
}

/// Whether `name` is an account name the agent creates: a lower-case letter, then up to 31
/// lower-case letters, digits, `-` or `_` (Debian's default NAME_REGEX, without `$`).
pub fn is_valid_username(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 32
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

/// A JSON object being read, with the dotted path that names it in errors.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: &'a str, expected: &'static str) -> Result<Self, PreseedError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(invalid(path, expected, other)),
        }
    }

    /// Refuses every key not in `allowed`.
    fn only(&self, allowed: &[&str], list: &'static str) -> Result<(), PreseedError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(PreseedError::Unknown {
                field: self.field(key),
                allowed: list,
            }),
            None => Ok(()),
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path == "the preseed file" {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn optional(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn required(&self, key: &str, expected: &'static str) -> Result<&'a Value, PreseedError> {
        self.map.get(key).ok_or_else(|| PreseedError::Missing {
            field: self.field(key),
            expected,
        })
    }

    fn string(&self, key: &str, expected: &'static str) -> Result<&'a str, PreseedError> {
        match self.required(key, expected)? {
            Value::String(s) => Ok(s),
            other => Err(invalid(&self.field(key), expected, other)),
        }
    }
}

fn invalid(field: &str, expected: &'static str, got: &Value) -> PreseedError {
    PreseedError::Invalid {
        field: field.to_string(),
        expected,
        got: show(got),
    }
}

fn invalid_str(field: &str, expected: &'static str, got: &str) -> PreseedError {
    invalid(field, expected, &Value::String(got.to_string()))
}

/// A short rendering of a bad value: strings quoted, objects and lists by kind only (they may be
/// large, and a secret may sit inside).
fn show(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!(
                "{:?}... ({} characters)",
                s.chars().take(40).collect::<String>(),
                s.chars().count()
            )
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

const INTERFACE: &str = "an interface name like \"eth0\"";
const ADDRESS: &str = "an IPv4 address with a prefix length, like \"192.168.1.10/24\"";
const GATEWAY: &str = "an IPv4 address like \"192.168.1.1\"";
const DNS: &str = "a list of IPv4 addresses, like [\"192.168.1.1\"]";
const DNS_ITEM: &str = "an IPv4 address, like \"192.168.1.1\"";

fn network(value: &Value) -> Result<Network, PreseedError> {
    let obj = Obj::new(value, "network", "an object with \"method\"")?;
    let method = obj.string("method", "\"dhcp\", \"static\" or \"none\"")?;
    let network = match method {
        "dhcp" => {
            obj.only(&["method", "interface"], "method, interface")?;
            Network::dhcp(obj.string("interface", INTERFACE)?)
        }
        "static" => {
            obj.only(
                &["method", "interface", "address", "gateway", "dns"],
                "method, interface, address, gateway, dns",
            )?;
            let interface = obj.string("interface", INTERFACE)?;
            let address = obj.string("address", ADDRESS)?;
            let gateway = match obj.optional("gateway") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(other) => return Err(invalid("network.gateway", GATEWAY, other)),
            };
            let dns = dns_list(obj.optional("dns"))?;
            Network::new_static(interface, address, gateway, &dns)
        }
        "none" => {
            obj.only(&["method"], "method (with \"none\")")?;
            Ok(Network::None)
        }
        other => {
            return Err(invalid_str(
                "network.method",
                "\"dhcp\", \"static\" or \"none\"",
                other,
            ))
        }
    };
    network.map_err(|source| PreseedError::Network {
        field: network_field(&source),
        source,
    })
}

fn dns_list(value: Option<&Value>) -> Result<Vec<&str>, PreseedError> {
    let items = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(invalid("network.dns", DNS, other)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.as_str()),
            other => Err(invalid(&format!("network.dns[{i}]"), DNS_ITEM, other)),
        })
        .collect()
}

/// Which field of `network` a constructor's refusal is about.
fn network_field(error: &NetworkError) -> &'static str {
    match error {
        NetworkError::Interface(_) => "network.interface",
        NetworkError::Gateway(_)
        | NetworkError::GatewayOutside { .. }
        | NetworkError::GatewayIsSelf(_) => "network.gateway",
        NetworkError::Dns(_) | NetworkError::TooManyDns(_) => "network.dns",
        _ => "network.address",
    }
}

const SSID: &str = "a network name of 1-32 bytes";
const PASSPHRASE: &str = "a WPA2 passphrase of 8-63 printable ASCII characters";
const PSK: &str = "a WPA2 PSK of exactly 64 hex digits";

fn wifi(value: &Value) -> Result<Wifi, PreseedError> {
    let obj = Obj::new(
        value,
        "wifi",
        "an object with \"interface\", \"ssid\" and \"passphrase\" or \"psk\"",
    )?;
    obj.only(
        &["interface", "ssid", "passphrase", "psk"],
        "interface, ssid, passphrase, psk",
    )?;
    let interface = obj.string("interface", INTERFACE)?;
    let ssid = obj.string("ssid", SSID)?;
    // The console takes either form in one field; the file says which one it means, so a
    // 64-character passphrase or a short "psk" is a mistake to report, not to reinterpret.
    let (key, secret) = match (obj.optional("passphrase"), obj.optional("psk")) {
        (Some(_), Some(_)) => {
            return Err(PreseedError::Invalid {
                field: "wifi".into(),
                expected: "either \"passphrase\" or \"psk\", not both",
                got: "both".into(),
            })
        }
        (None, None) => {
            return Err(PreseedError::Missing {
                field: "wifi.passphrase".into(),
                expected:
                    "a passphrase of 8-63 printable ASCII characters, or \"psk\" with 64 hex digits",
            })
        }
        (Some(_), None) => {
            let p = obj.string("passphrase", PASSPHRASE)?;
            if p.len() == 64 {
                return Err(PreseedError::Wifi {
                    field: "wifi.passphrase",
                    source: WifiError::SecretLength(64),
                });
            }
            ("wifi.passphrase", p)
        }
        (None, Some(_)) => {
            let hex = obj.string("psk", PSK)?;
            if hex.len() != 64 {
                return Err(PreseedError::Invalid {
                    field: "wifi.psk".into(),
                    expected: PSK,
                    // Never echo a secret back: say only how long it was.
                    got: format!("{} characters", hex.chars().count()),
                });
            }
            ("wifi.psk", hex)
        }
    };
    Wifi::new(interface, ssid, secret).map_err(|source| PreseedError::Wifi {
        field: match source {
            WifiError::Interface(_) => "wifi.interface",
            WifiError::SsidLength(_) => "wifi.ssid",
            _ => key,
        },
        source,
    })
}

const IDENTITY: &str =
    "a store account e-mail, \"gh:USER\", \"lp:USER\" or {\"username\", \"ssh-keys\"}";
const USERNAME: &str =
    "an account name: a lower-case letter, then up to 31 lower-case letters, digits, '-' or '_'";
const SSH_KEYS: &str = "a non-empty list of public keys, like [\"ssh-ed25519 AAAA... comment\"]";
const SSH_KEY: &str = "one public key on one line: \"TYPE BASE64 [COMMENT]\"";

fn identity(value: &Value) -> Result<Identity, PreseedError> {
    match value {
        Value::String(s) => identity_source(s, "identity"),
        Value::Object(_) => {
            let obj = Obj::new(value, "identity", IDENTITY)?;
            obj.only(&["username", "ssh-keys"], "username, ssh-keys")?;
            let username = obj.string("username", USERNAME)?;
            if !is_valid_username(username) {
                return Err(invalid_str("identity.username", USERNAME, username));
            }
            let keys = match obj.required("ssh-keys", SSH_KEYS)? {
                Value::Array(items) if !items.is_empty() => items,
                other => return Err(invalid("identity.ssh-keys", SSH_KEYS, other)),
            };
            let mut ssh_keys = Vec::with_capacity(keys.len());
            for (i, item) in keys.iter().enumerate() {
                let field = format!("identity.ssh-keys[{i}]");
                match item {
                    Value::String(k) if looks_like_key(k) => ssh_keys.push(k.trim().to_string()),
                    other => return Err(invalid(&field, SSH_KEY, other)),
                }
            }
            Ok(Identity::Keys {
                username: username.to_string(),
                ssh_keys,
            })
        }
        other => Err(invalid("identity", IDENTITY, other)),
    }
}

/// A cheap shape check; the full parse with `ssh-key` is the caller's (host and agent both do it).
fn looks_like_key(k: &str) -> bool {
    let k = k.trim();
    !k.contains(['\n', '\r']) && k.split_ascii_whitespace().count() >= 2
}

const EMAIL: &str = "an e-mail address like \"alice@example.com\"";
const GH_USER: &str = "\"gh:USER\" with a GitHub user name (letters, digits, '-'; 1-39)";
const LP_USER: &str =
    "\"lp:USER\" with a Launchpad user name (lower-case letters, digits, '+', '-', '.'; 1-32)";

fn identity_source(s: &str, field: &str) -> Result<Identity, PreseedError> {
    if let Some(user) = s.strip_prefix("gh:") {
        let ok = !user.is_empty()
            && user.len() <= 39
            && !user.starts_with('-')
            && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        return if ok {
            Ok(Identity::GitHub(user.to_string()))
        } else {
            Err(invalid_str(field, GH_USER, s))
        };
    }
    if let Some(user) = s.strip_prefix("lp:") {
        let mut bytes = user.bytes();
        let ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
            && user.len() <= 32
            && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'+' | b'-' | b'.'));
        return if ok {
            Ok(Identity::Launchpad(user.to_string()))
        } else {
            Err(invalid_str(field, LP_USER, s))
        };
    }
    if is_email(s) {
        Ok(Identity::Store(s.to_string()))
    } else if s.contains('@') {
        Err(invalid_str(field, EMAIL, s))
    } else {
        Err(invalid_str(field, IDENTITY, s))
    }
}

/// One `@` between a non-empty local part and a dotted domain; no spaces, no `/` (the address is
/// put in a URL path), nothing a URL would need escaped beyond `+`.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b));
    let domain_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests;
