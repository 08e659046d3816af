//! A store reached over HTTPS (`coreforge store serve`), from the publisher's side: login,
//! key registration, uploads and releases. TLS roots are the system's
//! (`/etc/ssl/certs/ca-certificates.crt`) or those in `SSL_CERT_FILE`, as Go programs
//! such as snapd take them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};

/// The system's CA bundle on Debian.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The largest answer read (JSON; uploads go the other way).
const MAX_ANSWER: u64 = 16 << 20;

/// What went wrong talking to a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The URL is not an https URL.
    #[error("{0:?} is not a store URL: give https://HOST[:PORT]")]
    NotHttps(String),
    /// The TLS roots could not be read.
    #[error("cannot read TLS roots from {path}: {reason}; set SSL_CERT_FILE to a PEM bundle that holds the store's CA")]
    Roots {
        /// The bundle.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The request did not get an answer.
    #[error("cannot reach the store at {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The store refused the login or token.
    #[error("the store at {store} did not accept {what}: {message}; log in with `coreforge login --store {store}`")]
    Unauthorized {
        /// The store.
        store: String,
        /// The password or the saved token.
        what: &'static str,
        /// What it said.
        message: String,
    },
    /// The store answered with an error.
    #[error("the store at {url} answered {status}: {message}")]
    Refused {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Its error-list messages.
        message: String,
    },
    /// The answer is not what the API says.
    #[error("the store at {url} answered something unexpected: {reason}")]
    BadAnswer {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A local file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether `spec` names a store by URL rather than by directory.
pub fn is_url(spec: &str) -> bool {
    spec.starts_with("https://") || spec.starts_with("http://")
}

/// A store's HTTPS API.
#[derive(Debug)]
pub struct Remote {
    base: String,
    agent: ureq::Agent,
}

/// The roots to trust: `SSL_CERT_FILE` if set, else the system bundle.
fn roots() -> Result<RootCerts, RemoteError> {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_ROOTS));
    let err = |reason: String| RemoteError::Roots {
        path: path.clone(),
        reason,
    };
    let pem = fs::read(&path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            certs.push(c.to_owned());
        }
    }
    if certs.is_empty() {
        return Err(err("no certificate in it".into()));
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

impl Remote {
    /// A client of the store at `url` (`https://HOST[:PORT]`, path ignored).
    pub fn new(url: &str) -> Result<Remote, RemoteError> {
        let Some(rest) = url.strip_prefix("https://") else {
            return Err(RemoteError::NotHttps(url.to_owned()));
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(RemoteError::NotHttps(url.to_owned()));
        }
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots()?)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("coreforge/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Remote {
            base: format!("https://{host}"),
            agent,
        })
    }

    /// The store's URL (`https://HOST[:PORT]`): the key its logins are saved under.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Reads an answer: its JSON on 2xx, else the error it carries.
    fn answer(
        &self,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &'static str,
    ) -> Result<Value, RemoteError> {
        let mut resp = result.map_err(|e| RemoteError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| RemoteError::Unreachable {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = || {
            value["error-list"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|e| e["message"].as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| text.chars().take(200).collect())
        };
        match status {
            200..=299 => Ok(value),
            401 => Err(RemoteError::Unauthorized {
                store: self.base.clone(),
                what,
                message: message(),
            }),
            _ => Err(RemoteError::Refused {
                url: url.to_owned(),
                status,
                message: message(),
            }),
        }
    }

    fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, RemoteError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.post(&url).content_type("application/json");
        if let Some(t) = token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        let result = request.send(body.to_string());
        self.answer(
            &url,
            result,
            if token.is_some() {
                "the saved token"
            } else {
                "the e-mail address and password"
            },
        )
    }

    fn string(&self, v: &Value, field: &str) -> Result<String, RemoteError> {
        v[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| RemoteError::BadAnswer {
                url: self.base.clone(),
                reason: format!("no {field:?} in {v}"),
            })
    }

    /// GETs `path` (`/v2/...`) with `accept`: the status and the body (up to `MAX_ANSWER`).
    pub fn get(&self, path: &str, accept: &str) -> Result<(u16, Vec<u8>), RemoteError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: ureq::Error| RemoteError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let mut resp = self
            .agent
            .get(&url)
            .header("Accept", accept)
            .header("Snap-Device-Series", "16")
            .call()
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(unreachable)?;
        Ok((status, body))
    }

    /// POSTs a refresh request as snapd does (`Snap-Device-Architecture: arch`): its JSON.
    pub fn refresh(&self, arch: &str, body: &Value) -> Result<Value, RemoteError> {
        let url = format!("{}/v2/snaps/refresh", self.base);
        let result = self
            .agent
            .post(&url)
            .content_type("application/json")
            .header("Snap-Device-Architecture", arch)
            .header("Snap-Device-Series", "16")
            .send(body.to_string());
        self.answer(&url, result, "the request")
    }

    /// Downloads `url` (it must be on this store), handing the body to `copy` (which writes
    /// and hashes it); returns what `copy` returns.
    pub fn download<T>(
        &self,
        url: &str,
        copy: impl FnOnce(&mut dyn std::io::Read) -> std::io::Result<T>,
    ) -> Result<T, RemoteError> {
        if !url.starts_with(&format!("{}/", self.base)) {
            return Err(RemoteError::BadAnswer {
                url: self.base.clone(),
                reason: format!("the download URL {url} is not on this store"),
            });
        }
        let unreachable = |reason: String| RemoteError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        let mut resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(RemoteError::Refused {
                url: url.to_owned(),
                status,
                message: "the download failed".into(),
            });
        }
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        copy(&mut reader).map_err(|e| unreachable(e.to_string()))
    }

    /// Logs in: (username, token).
    pub fn login(&self, email: &str, password: &str) -> Result<(String, String), RemoteError> {
        let v = self.post_json(
            "/api/v2/tokens",
            None,
            &json!({"email": email, "password": password}),
        )?;
        Ok((self.string(&v, "username")?, self.string(&v, "token")?))
    }

    /// Sends a self-signed account-key-request (snapcraft's `register-key`): the signed
    /// (account-key, account) texts.
    pub fn register_key(
        &self,
        token: &str,
        request: &str,
    ) -> Result<(String, String), RemoteError> {
        let v = self.post_json(
            "/dev/api/account/account-key",
            Some(token),
            &json!({"account_key_request": request}),
        )?;
        Ok((self.string(&v, "account_key")?, self.string(&v, "account")?))
    }

    /// Uploads a snap file: (name, revision, whether it is a new revision).
    pub fn upload(&self, token: &str, file: &Path) -> Result<(String, u64, bool), RemoteError> {
        let url = format!("{}/dev/api/snaps/upload", self.base);
        let f = fs::File::open(file).map_err(|source| RemoteError::File {
            path: file.to_owned(),
            source,
        })?;
        let result = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .content_type("application/octet-stream")
            .send(ureq::SendBody::from_reader(&mut &f));
        let v = self.answer(&url, result, "the saved token")?;
        let revision = v["revision"]
            .as_u64()
            .ok_or_else(|| RemoteError::BadAnswer {
                url: url.clone(),
                reason: format!("no revision in {v}"),
            })?;
        Ok((
            self.string(&v, "name")?,
            revision,
            v["new"].as_bool().unwrap_or(true),
        ))
    }

    /// Releases a revision to channels: (channel, architectures) for each.
    pub fn release(
        &self,
        token: &str,
        name: &str,
        revision: u64,
        channels: &[String],
    ) -> Result<Vec<(String, Vec<String>)>, RemoteError> {
        let v = self.post_json(
            &format!("/dev/api/snaps/{name}/releases"),
            Some(token),
            &json!({"revision": revision, "channels": channels}),
        )?;
        let released = v["released"].as_array().cloned().unwrap_or_default();
        Ok(released
            .iter()
            .map(|r| {
                let archs = r["architectures"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (r["channel"].as_str().unwrap_or_default().to_owned(), archs)
            })
            .collect())
    }
}
