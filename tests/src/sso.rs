//! A local HTTPS server that speaks the SSO key API the agent asks for a store account's
//! keys: `GET /api/v2/keys/<e-mail>` answers `{"username": ..., "ssh_keys": [...]}` for a
//! known account and 404 otherwise. Its certificate comes from a test CA made here (write
//! it with [`SsoServer::write_ca`] and pass it to `build-image --tls-roots`); it names the
//! host's loopback both as the host sees it (127.0.0.1) and as a QEMU guest with user
//! networking does (10.0.2.2), so one server serves host-side checks and guests.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The host's loopback as a QEMU guest with user networking reaches it.
pub const GUEST_HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// One store account the server knows.
#[derive(Debug, Clone)]
pub struct SsoAccount {
    /// The e-mail a person types.
    pub email: String,
    /// The account name the answer carries (becomes the device's user).
    pub username: String,
    /// Its registered public keys, one OpenSSH line each (may be empty).
    pub ssh_keys: Vec<String>,
}

/// One request the server received (successful TLS handshake and a request line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRequest {
    /// The HTTP method.
    pub method: String,
    /// The path as sent (still percent-encoded).
    pub path: String,
    /// The e-mail the path asks for, percent-decoded, when it is a key lookup.
    pub email: Option<String>,
    /// The status the server answered.
    pub status: u16,
}

/// The running server; it stops accepting when dropped (its thread ends with the process).
#[derive(Debug)]
pub struct SsoServer {
    port: u16,
    ca_pem: String,
    requests: Arc<Mutex<Vec<SsoRequest>>>,
}

impl SsoServer {
    /// Makes a CA and a server certificate and starts serving `accounts` on 127.0.0.1
    /// (any free port; all addresses of the host's loopback as the guest sees it).
    pub fn start(accounts: Vec<SsoAccount>) -> anyhow::Result<SsoServer> {
        let (ca_pem, config) = tls_config()?;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the SSO test server")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Shared {
            accounts,
            requests: requests.clone(),
            config: Arc::new(config),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || {
                    // A client that gives up half way (or fails the handshake) is its problem.
                    let _ = state.serve(stream);
                });
            }
        });
        Ok(SsoServer {
            port,
            ca_pem,
            requests,
        })
    }

    /// The port on the host's loopback.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL a QEMU guest with user networking uses (for `build-image --sso-url`).
    pub fn guest_url(&self) -> String {
        format!("https://{GUEST_HOST_ADDR}:{}", self.port)
    }

    /// The URL on the host itself.
    pub fn host_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The test CA's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA certificate to `path` (for `build-image --tls-roots`).
    pub fn write_ca(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, &self.ca_pem).with_context(|| format!("writing {}", path.display()))
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<SsoRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The lookups so far for `email`.
    pub fn lookups_of(&self, email: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.email.as_deref() == Some(email))
            .count()
    }
}

#[derive(Debug)]
struct Shared {
    accounts: Vec<SsoAccount>,
    requests: Arc<Mutex<Vec<SsoRequest>>>,
    config: Arc<rustls::ServerConfig>,
}

impl Shared {
    /// Answers one connection: one request, then close.
    fn serve(&self, stream: TcpStream) -> anyhow::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        let conn = rustls::ServerConnection::new(self.config.clone())?;
        let mut tls = rustls::StreamOwned::new(conn, stream);
        let mut reader = BufReader::new(&mut tls);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        // Headers up to the blank line; the API has no request bodies.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
                break;
            }
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        let email = path
            .strip_prefix("/api/v2/keys/")
            .map(|e| percent_decode(e.split('?').next().unwrap_or(e)));
        let (status, body) = self.answer(&method, email.as_deref());
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(SsoRequest {
                method,
                path,
                email,
                status,
            });
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes())?;
        tls.write_all(body.as_bytes())?;
        tls.flush()?;
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);
        Ok(())
    }

    /// The status and JSON body for a request.
    fn answer(&self, method: &str, email: Option<&str>) -> (u16, String) {
        if method != "GET" {
            return (405, r#"{"message": "only GET"}"#.to_string());
        }
        let found = email.and_then(|e| {
            self.accounts
                .iter()
                .find(|a| a.email.eq_ignore_ascii_case(e))
        });
        match found {
            Some(a) => (
                200,
                serde_json::json!({"username": a.username, "ssh_keys": a.ssh_keys}).to_string(),
            ),
            None => (
                404,
                serde_json::json!({"code": "ACCOUNT_NOT_FOUND", "message": "No such account"})
                    .to_string(),
            ),
        }
    }
}

/// `%40` and friends back to bytes (lossy UTF-8).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A test CA and a server certificate it signed for the host's loopback as the host and a
/// QEMU guest reach it (127.0.0.1, 10.0.2.2), valid from the epoch (a guest whose clock was
/// never set still accepts it). The SSO fixture serves with it, and so can `coreforge store
/// serve` ([`TestCa::write`]).
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate (PEM): what clients trust.
    pub ca_pem: String,
    /// The server's chain (PEM): its certificate, then the CA's.
    pub chain_pem: String,
    /// The server's private key (PKCS#8 PEM).
    pub key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl TestCa {
    /// Makes a CA and the server certificate.
    pub fn new() -> anyhow::Result<TestCa> {
        let not_before = rcgen::date_time_ymd(1970, 1, 1);
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "coreforge test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = not_before;
        let ca_cert = ca.self_signed(&ca_key)?;

        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(Vec::<String>::new())?;
        leaf.distinguished_name
            .push(DnType::CommonName, "coreforge test server");
        leaf.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(GUEST_HOST_ADDR)),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.not_before = not_before;
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
        Ok(TestCa {
            ca_pem: ca_cert.pem(),
            chain_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone(), ca_cert.der().clone()],
            key_der: key.serialize_der(),
        })
    }

    /// Writes `ca.pem`, `cert.pem` (the chain) and `key.pem` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca.pem"), &self.ca_pem)?;
        std::fs::write(dir.join("cert.pem"), &self.chain_pem)?;
        std::fs::write(dir.join("key.pem"), &self.key_pem)?;
        Ok(())
    }

    /// A rustls server configuration with the certificate.
    pub fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .map_err(|e| anyhow!("the test server certificate: {e}"))
    }
}

/// A fresh CA (PEM) and a server configuration with a certificate it signed.
fn tls_config() -> anyhow::Result<(String, rustls::ServerConfig)> {
    let ca = TestCa::new()?;
    Ok((ca.ca_pem.clone(), ca.server_config()?))
}

/// Parses the certificates of a PEM bundle (for clients in tests).
pub fn pem_certificates(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("PEM certificates: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4nWyF0O9pM9fSs4oHbvrd5zqJnlb+3cJSUTFhx8R3Z alice@laptop";

    fn server() -> SsoServer {
        SsoServer::start(vec![
            SsoAccount {
                email: "alice@example.com".into(),
                username: "alice".into(),
                ssh_keys: vec![KEY.into()],
            },
            SsoAccount {
                email: "nokeys@example.com".into(),
                username: "nokeys".into(),
                ssh_keys: vec![],
            },
        ])
        .unwrap()
    }

    /// A GET over rustls trusting `roots`; returns the status and body.
    fn get(port: u16, path: &str, roots: &str) -> anyhow::Result<(u16, String)> {
        let mut store = rustls::RootCertStore::empty();
        for cert in pem_certificates(roots)? {
            store.add(cert)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
        let sock = TcpStream::connect(("127.0.0.1", port))?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?;
        let mut reply = String::new();
        tls.read_to_string(&mut reply)?;
        let status = reply
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("no status in {reply:?}"))?;
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok((status, body.to_string()))
    }

    #[test]
    fn known_accounts_get_their_keys_and_the_request_is_recorded() {
        let s = server();
        let (status, body) = get(s.port(), "/api/v2/keys/alice%40example.com", s.ca_pem()).unwrap();
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["username"], "alice");
        assert_eq!(json["ssh_keys"], serde_json::json!([KEY]));
        assert_eq!(s.lookups_of("alice@example.com"), 1);
        assert_eq!(
            s.requests()[0],
            SsoRequest {
                method: "GET".into(),
                path: "/api/v2/keys/alice%40example.com".into(),
                email: Some("alice@example.com".into()),
                status: 200,
            }
        );
    }

    #[test]
    fn an_account_without_keys_gets_an_empty_list() {
        let s = server();
        let (status, body) = get(s.port(), "/api/v2/keys/nokeys@example.com", s.ca_pem()).unwrap();
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["ssh_keys"], serde_json::json!([]));
    }

    #[test]
    fn unknown_accounts_are_404() {
        let s = server();
        let (status, _) = get(s.port(), "/api/v2/keys/bob@example.com", s.ca_pem()).unwrap();
        assert_eq!(status, 404);
        assert_eq!(s.requests()[0].status, 404);
        assert_eq!(s.lookups_of("alice@example.com"), 0);
    }

    #[test]
    fn a_client_trusting_another_ca_refuses_the_server() {
        let s = server();
        let other = server();
        let err = get(s.port(), "/api/v2/keys/alice@example.com", other.ca_pem()).unwrap_err();
        assert!(format!("{err:#}").contains("certificate"), "{err:#}");
        assert!(s.requests().is_empty(), "{:?}", s.requests());
    }

    #[test]
    fn urls_name_the_host_as_guest_and_host_see_it() {
        let s = server();
        assert_eq!(s.guest_url(), format!("https://10.0.2.2:{}", s.port()));
        assert_eq!(s.host_url(), format!("https://127.0.0.1:{}", s.port()));
        assert!(s.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn percent_decoding_leaves_bad_escapes_alone() {
        assert_eq!(percent_decode("a%40b.c"), "a@b.c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
