//! Helpers shared by the CLI's integration tests (each test file uses some of them).
#![allow(dead_code)]

pub mod world;

use std::process::Output;

use base64::Engine;
use sha3::{Digest, Sha3_384};

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Unpadded base64url of SHA3-384: a snap's `snap-sha3-384`.
pub fn sha3_b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha3_384::digest(bytes))
}

/// `coreforge store serve STORE` on a free port of 127.0.0.1, with a certificate for that
/// address made here (its PEM in `cert.pem` beside `key.pem` in `tls_dir`); stopped when
/// dropped.
#[derive(Debug)]
pub struct StoreServer {
    child: std::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The certificate to trust (`SSL_CERT_FILE`, `curl --cacert`).
    pub cert: std::path::PathBuf,
}

impl StoreServer {
    pub fn start(store: &std::path::Path, tls_dir: &std::path::Path) -> StoreServer {
        use std::io::BufRead as _;
        let cert = tls_dir.join("cert.pem");
        let key = tls_dir.join("key.pem");
        if !cert.exists() {
            std::fs::create_dir_all(tls_dir).unwrap();
            let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
            std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
            std::fs::write(&cert, made.cert.pem()).unwrap();
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coreforge"))
            .arg("store")
            .arg("serve")
            .arg(store)
            .args(["--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit_once("https://")
            .and_then(|(_, a)| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no address in the server's first line {line:?}"));
        StoreServer { child, addr, cert }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
