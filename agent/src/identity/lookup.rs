//! The look-ups: store account, GitHub, Launchpad over HTTPS, or a pasted key; each gives an
//! [`Identity`].

use std::path::Path;

use serde::Deserialize;

use super::https::{Https, Limits, Response};
use super::keys::{parse_key, parse_key_list, RejectedKey};
use super::username::{validate_username, SystemNames};
use super::{tls, IdentityError, Source};
use crate::setup::Account;

/// The real store's login service.
pub const DEFAULT_SSO_URL: &str = "https://login.ubuntu.com";
/// One line: the SSO base URL the image was built for.
pub const SSO_URL_PATH: &str = "/etc/coreforge/sso-url";
/// PEM bundle of the TLS roots the image trusts.
pub const TLS_ROOTS_PATH: &str = "/etc/coreforge/tls-roots.pem";

/// The account, and the fetched keys that were refused (shown to the person, not fatal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account to create.
    pub account: Account,
    /// Keys in the server's list that were refused, with line and reason.
    pub rejected: Vec<RejectedKey>,
}

/// Looks identities up over HTTPS.
#[derive(Debug)]
pub struct Lookup {
    https: Https,
    sso_url: String,
    github: String,
    launchpad: String,
}

/// The store's answer (other fields are ignored: the service may add some).
#[derive(Deserialize)]
struct StoreKeys {
    username: String,
    ssh_keys: Vec<String>,
}

impl Lookup {
    /// Reads the initramfs' roots bundle and SSO URL (a missing URL file means the default).
    pub fn from_files(roots: &Path, sso_url: &Path) -> Result<Self, IdentityError> {
        let config_err = |path: &Path, e: std::io::Error| IdentityError::Config {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let pem = std::fs::read(roots).map_err(|e| config_err(roots, e))?;
        let url = match std::fs::read_to_string(sso_url) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_SSO_URL.to_owned(),
            Err(e) => return Err(config_err(sso_url, e)),
        };
        Self::new(&pem, &roots.display().to_string(), &url, Limits::default())
    }

    /// A client trusting `roots_pem` (named `roots_label` in errors) asking `sso_url`.
    pub fn new(
        roots_pem: &[u8],
        roots_label: &str,
        sso_url: &str,
        limits: Limits,
    ) -> Result<Self, IdentityError> {
        let sso_url = sso_url.trim().trim_end_matches('/').to_owned();
        if !sso_url.starts_with("https://") || sso_url.len() <= "https://".len() {
            return Err(IdentityError::Config {
                path: SSO_URL_PATH.to_owned(),
                detail: format!("`{sso_url}` is not an https:// URL"),
            });
        }
        let config = tls::client_config(roots_pem, roots_label)?;
        Ok(Self {
            https: Https::new(config, limits),
            sso_url,
            github: "https://github.com".to_owned(),
            launchpad: "https://launchpad.net".to_owned(),
        })
    }

    /// Points the GitHub and Launchpad look-ups at other servers (tests).
    #[cfg(test)]
    pub(crate) fn with_bases(mut self, github: &str, launchpad: &str) -> Self {
        github.clone_into(&mut self.github);
        launchpad.clone_into(&mut self.launchpad);
        self
    }

    /// Fetches the account for a store, GitHub or Launchpad source. A pasted key has no
    /// login name: use [`pasted`] for it.
    pub fn fetch(&self, source: &Source, system: &SystemNames) -> Result<Identity, IdentityError> {
        match source {
            Source::Store { email } => self.store(email, source, system),
            Source::GitHub { user } => {
                let url = format!("{}/{user}.keys", self.github);
                self.key_list(&url, &user.to_ascii_lowercase(), source, system)
            }
            Source::Launchpad { user } => {
                let url = format!("{}/~{user}/+sshkeys", self.launchpad);
                self.key_list(&url, user, source, system)
            }
        }
    }

    fn store(
        &self,
        email: &str,
        source: &Source,
        system: &SystemNames,
    ) -> Result<Identity, IdentityError> {
        let url = format!("{}/api/v2/keys/{}", self.sso_url, percent_encode(email));
        let resp = self.get_ok(&url, source)?;
        if is_web_page(&resp) {
            return Err(bad_answer(&url, "a web page", "the key API's JSON"));
        }
        let answer: StoreKeys = serde_json::from_str(&resp.body).map_err(|e| {
            bad_answer(&url, &format!("malformed JSON ({e})"), "the key API's JSON")
        })?;
        let username = answer.username.trim().to_owned();
        self.account(
            username,
            answer.ssh_keys.iter().map(String::as_str),
            source,
            system,
        )
    }

    fn key_list(
        &self,
        url: &str,
        username: &str,
        source: &Source,
        system: &SystemNames,
    ) -> Result<Identity, IdentityError> {
        let resp = self.get_ok(url, source)?;
        if is_web_page(&resp) {
            return Err(bad_answer(url, "a web page", "a list of keys"));
        }
        self.account(username.to_owned(), resp.body.lines(), source, system)
    }

    /// GET, with 404 as "no such account" and any other non-200 as an error.
    fn get_ok(&self, url: &str, source: &Source) -> Result<Response, IdentityError> {
        let resp = self.https.get(url)?;
        match resp.status {
            200 => Ok(resp),
            404 => Err(IdentityError::NoSuchAccount(the(source))),
            status => Err(IdentityError::Status {
                url: url.to_owned(),
                status,
            }),
        }
    }

    fn account<'a>(
        &self,
        username: String,
        keys: impl IntoIterator<Item = &'a str>,
        source: &Source,
        system: &SystemNames,
    ) -> Result<Identity, IdentityError> {
        validate_username(&username, system).map_err(|e| IdentityError::UnusableRemoteName {
            source_name: the(source),
            inner: Box::new(e),
        })?;
        let (keys, rejected) = parse_key_list(keys);
        if keys.is_empty() {
            if rejected.is_empty() {
                return Err(IdentityError::NoKeys(the(source)));
            }
            let reasons: Vec<String> = rejected.iter().map(ToString::to_string).collect();
            return Err(IdentityError::NoUsableKeys {
                source_name: the(source),
                reasons: reasons.join("; "),
            });
        }
        Ok(Identity {
            account: Account {
                username,
                keys,
                source: source.describe(),
                password: None,
            },
            rejected,
        })
    }
}

/// The account for pasted keys (the console, or the preseed file's `ssh-keys`): every key must
/// parse, the first bad one refuses all.
pub fn pasted(
    username: &str,
    keys: &[String],
    system: &SystemNames,
) -> Result<Identity, IdentityError> {
    validate_username(username, system)?;
    let mut good = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let key = parse_key(key).map_err(|reason| {
            IdentityError::BadPastedKey(RejectedKey {
                line: index + 1,
                reason,
            })
        })?;
        good.push(key);
    }
    if good.is_empty() {
        return Err(IdentityError::NoPastedKeys);
    }
    Ok(Identity {
        account: Account {
            username: username.to_owned(),
            keys: good,
            source: "pasted key".to_owned(),
            password: None,
        },
        rejected: Vec::new(),
    })
}

/// "the store account alice@example.com", "GitHub user alice", for messages.
fn the(source: &Source) -> String {
    match source {
        Source::Store { .. } => format!("the {}", source.describe()),
        _ => source.describe(),
    }
}

fn bad_answer(url: &str, what: &str, expected: &'static str) -> IdentityError {
    IdentityError::BadAnswer {
        url: url.to_owned(),
        what: what.to_owned(),
        expected,
    }
}

/// HTML where data was expected: a captive portal, a login page, a wrong URL.
fn is_web_page(resp: &Response) -> bool {
    resp.content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"))
        || resp.body.trim_start().starts_with('<')
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`@` becomes `%40`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
