//! HTTPS GET for the look-ups: ureq over our own rustls connector (ring provider, the image's
//! roots, the clock floor of `tls.rs`), with timeouts, few redirects and a cap on every body.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

/// Limits of one look-up; [`Limits::default`] is what the device uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to resolve, connect and finish the TLS handshake.
    pub connect: Duration,
    /// Time for the whole exchange, redirects and body included.
    pub total: Duration,
    /// Largest body read; key lists are a few KiB.
    pub max_body: u64,
    /// Redirects followed (GitHub and Launchpad answer directly; one spare).
    pub max_redirects: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            total: Duration::from_secs(30),
            max_body: 256 * 1024,
            max_redirects: 3,
        }
    }
}

/// Why a GET failed, by what the person at the console can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server's certificate does not chain to the image's roots.
    #[error("the certificate of {host} is not signed by any root in the image's TLS roots: if this server is right, rebuild the image with `coreforge build-image --tls-roots FILE` naming its CA")]
    UnknownIssuer {
        /// Host name or address.
        host: String,
    },
    /// The certificate is for another name.
    #[error("the certificate of {host} is for another host name: check the address (or /etc/coreforge/sso-url in the image)")]
    WrongHost {
        /// Host name or address.
        host: String,
    },
    /// Expired, or not valid yet with a clock that looks right.
    #[error("the certificate of {host} is not valid at the device's time ({detail}): check the device clock, or the server's certificate")]
    Validity {
        /// Host name or address.
        host: String,
        /// rustls' words.
        detail: String,
    },
    /// Any other certificate or TLS protocol failure.
    #[error("no secure connection to {host}: {detail}: check that the address is an HTTPS server")]
    Tls {
        /// Host name or address.
        host: String,
        /// rustls' words.
        detail: String,
    },
    /// DNS found no address.
    #[error("cannot find the address of {host} ({detail}): check the network's DNS server, or paste a key instead")]
    Resolve {
        /// Host name.
        host: String,
        /// The resolver's words.
        detail: String,
    },
    /// TCP connection refused, unreachable network.
    #[error("cannot connect to {host}: {detail}: check the network connection")]
    Connect {
        /// Host name or address.
        host: String,
        /// The system's words.
        detail: String,
    },
    /// A timeout ran out.
    #[error("{host} did not answer in time ({detail}): check the network, then try again")]
    Timeout {
        /// Host name or address.
        host: String,
        /// Which step.
        detail: String,
    },
    /// Body larger than [`Limits::max_body`].
    #[error("the answer from {url} is larger than {limit} bytes, far more than a key list: check the address")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// More redirects than [`Limits::max_redirects`].
    #[error("{url} redirects too many times: check the address")]
    TooManyRedirects {
        /// The URL asked.
        url: String,
    },
    /// The body is not UTF-8 text.
    #[error("the answer from {url} is not text: check the address")]
    NotText {
        /// The URL asked.
        url: String,
    },
    /// A URL we could not even send (bad characters, http:// redirect).
    #[error("cannot fetch {url}: {detail}")]
    Request {
        /// The URL asked.
        url: String,
        /// ureq's words.
        detail: String,
    },
}

/// A response: status and text body (read within the limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: String,
}

/// An HTTPS client; one per look-up session (keeps connections for redirects).
pub struct Https {
    agent: ureq::Agent,
    limits: Limits,
}

impl fmt::Debug for Https {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Https")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Https {
    /// A client trusting `tls` (see `tls::client_config`) with these limits.
    pub fn new(tls: Arc<ClientConfig>, limits: Limits) -> Self {
        let config = ureq::Agent::config_builder()
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(limits.max_redirects)
            .timeout_connect(Some(limits.connect))
            .timeout_global(Some(limits.total))
            .max_response_header_size(32 * 1024)
            .user_agent(concat!("coreforge-agent/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = ().chain(TcpConnector::default()).chain(TlsConnector { config: tls });
        let agent = ureq::Agent::with_parts(config, connector, NamedResolver::default());
        Self { agent, limits }
    }

    /// GET `url` (https only); any status comes back as a [`Response`].
    pub fn get(&self, url: &str) -> Result<Response, FetchError> {
        let host = host_of(url);
        let mut resp = self
            .agent
            .get(url)
            .header("Accept", "application/json, text/plain")
            .call()
            .map_err(|e| classify(e, url, &host, &self.limits))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(self.limits.max_body)
            .read_to_vec()
            .map_err(|e| classify(e, url, &host, &self.limits))?;
        let body = String::from_utf8(bytes).map_err(|_| FetchError::NotText {
            url: url.to_owned(),
        })?;
        Ok(Response {
            status,
            content_type,
            body,
        })
    }
}

/// The host part of a URL, for messages.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_owned()
}

/// Turns ureq's error into what went wrong, looking through I/O errors for rustls' own.
fn classify(err: ureq::Error, url: &str, host: &str, limits: &Limits) -> FetchError {
    let host = host.to_owned();
    match err {
        ureq::Error::Rustls(e) => from_rustls(&e, host),
        ureq::Error::Io(io) => {
            if let Some(e) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return from_rustls(e, host);
            }
            if let Some(e) = io.get_ref().and_then(|i| i.downcast_ref::<ResolveFailed>()) {
                return FetchError::Resolve {
                    host,
                    detail: e.0.clone(),
                };
            }
            match io.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    FetchError::Timeout {
                        host,
                        detail: io.to_string(),
                    }
                }
                _ => FetchError::Connect {
                    host,
                    detail: io.to_string(),
                },
            }
        }
        ureq::Error::Timeout(which) => FetchError::Timeout {
            host,
            detail: format!(
                "{which}; limits {} s to connect, {} s in all",
                limits.connect.as_secs(),
                limits.total.as_secs()
            ),
        },
        ureq::Error::HostNotFound => FetchError::Resolve {
            host,
            detail: "no address".to_owned(),
        },
        ureq::Error::ConnectionFailed => FetchError::Connect {
            host,
            detail: "connection failed".to_owned(),
        },
        ureq::Error::BodyExceedsLimit(limit) => FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        },
        ureq::Error::TooManyRedirects => FetchError::TooManyRedirects {
            url: url.to_owned(),
        },
        other => FetchError::Request {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    }
}

fn from_rustls(err: &rustls::Error, host: String) -> FetchError {
    use CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            FetchError::UnknownIssuer { host }
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => FetchError::WrongHost { host },
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => FetchError::Validity {
            host,
            detail: err.to_string(),
        },
        other => FetchError::Tls {
            host,
            detail: other.to_string(),
        },
    }
}

/// A failed name look-up, told apart from connection errors (ureq gives both as I/O errors).
#[derive(Debug)]
struct ResolveFailed(String);

impl fmt::Display for ResolveFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResolveFailed {}

/// ureq's resolver (glibc's `getaddrinfo` in a thread, within the connect timeout), with its
/// failures marked as name look-up failures.
#[derive(Debug, Default)]
struct NamedResolver(DefaultResolver);

impl Resolver for NamedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.0.resolve(uri, config, timeout).map_err(|e| match e {
            ureq::Error::Io(io) => {
                ureq::Error::Io(std::io::Error::other(ResolveFailed(io.to_string())))
            }
            other => other,
        })
    }
}

/// Wraps the TCP transport of `https://` URLs in rustls with our configuration.
#[derive(Debug)]
struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Err(ureq::Error::ConnectionFailed);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        // IPv6 literals come bracketed in URLs; ServerName wants the bare address.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare)
            .map_err(|_| ureq::Error::Tls("the URL's host is not a valid TLS server name"))?
            .to_owned();
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS connection as a ureq transport (as ureq's own rustls transport).
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or(ureq::Error::Tls("output larger than the buffer"))?;
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_takes_the_authority() {
        assert_eq!(
            host_of("https://10.0.2.2:8443/api/v2/keys/a"),
            "10.0.2.2:8443"
        );
        assert_eq!(host_of("https://github.com/alice.keys"), "github.com");
        assert_eq!(host_of("https://h?x=1"), "h");
    }
}
