//! Tests only: a local CA and an HTTPS server on 127.0.0.1 with canned answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A CA and a server certificate it signed.
pub struct Pki {
    ca: rcgen::Certificate,
    server: rcgen::Certificate,
    server_key: KeyPair,
}

/// A different number each call, so that two test CAs never share a name.
fn next_serial() -> usize {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// A (year, month, day) date.
pub type Ymd = (i32, u8, u8);

impl Pki {
    /// Server certificate for 127.0.0.1 and localhost, valid 2000-2100.
    pub fn new() -> Self {
        Self::build(&["127.0.0.1", "localhost"], (2000, 1, 1), (2100, 1, 1))
    }

    /// Server certificate for these names only.
    pub fn for_names(names: &[&str]) -> Self {
        Self::build(names, (2000, 1, 1), (2100, 1, 1))
    }

    /// Server certificate for 127.0.0.1 valid between these dates.
    pub fn with_validity(from: Ymd, until: Ymd) -> Self {
        Self::build(&["127.0.0.1"], from, until)
    }

    fn build(names: &[&str], from: Ymd, until: Ymd) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("coreforge test CA {}", next_serial()),
        );
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = date_time_ymd(1990, 1, 1);
        ca_params.not_after = date_time_ymd(2200, 1, 1);
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(until.0, until.1, until.2);
        let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
        Self {
            ca,
            server,
            server_key,
        }
    }

    /// The CA certificate.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// The CA certificate as PEM (a roots bundle).
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The server certificate.
    pub fn server_der(&self) -> CertificateDer<'static> {
        self.server.der().clone()
    }
}

/// One canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// A Location header (redirects).
    pub location: Option<String>,
}

impl Reply {
    /// 200 with this body and type.
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            content_type,
            body: body.into(),
            delay: Duration::ZERO,
            location: None,
        }
    }

    /// This status with a short text body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok("text/plain", "status")
        }
    }
}

/// An HTTPS server on 127.0.0.1 answering GETs by path; runs until the test process ends.
pub struct Server {
    /// The port it listens on.
    pub port: u16,
}

impl Server {
    /// Starts serving `route(path)` with the PKI's server certificate.
    pub fn start(pki: &Pki, route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(super::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.server_der()], key)
            .unwrap();
        let config = Arc::new(config);
        let route = Arc::new(route);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                let route = route.clone();
                std::thread::spawn(move || {
                    let Ok(conn) = ServerConnection::new(config) else {
                        return;
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                    let mut tls = StreamOwned::new(conn, stream);
                    let Some(path) = read_request(&mut tls) else {
                        return;
                    };
                    let reply = route(&path);
                    std::thread::sleep(reply.delay);
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.content_type,
                        reply.body.len()
                    );
                    if let Some(location) = &reply.location {
                        head.push_str(&format!("Location: {location}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = tls.write_all(head.as_bytes());
                    let _ = tls.write_all(&reply.body);
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        Self { port }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// Reads the request head and returns the path of a GET.
fn read_request(tls: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.split_whitespace();
    (words.next()? == "GET").then(|| words.next().map(str::to_owned))?
}
