//! `coreforge store serve` for the end-to-end tests: a store directory served over HTTPS
//! with a [`TestCa`] certificate, reached by the host at 127.0.0.1 and by QEMU guests with
//! user networking at 10.0.2.2 (both named in the certificate).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, Context};

use crate::sso::{TestCa, GUEST_HOST_ADDR};

/// The running server; stopped when dropped.
#[derive(Debug)]
pub struct ServedStore {
    child: Child,
    port: u16,
    /// The CA certificate clients trust (`SSL_CERT_FILE`, `build-image --tls-roots`).
    pub ca: PathBuf,
}

impl ServedStore {
    /// Serves `store` with `coreforge` on a free port of 127.0.0.1 with the certificate in
    /// `tls_dir` (`ca.pem`, `cert.pem`, `key.pem`), made there first if there is none: servers
    /// started with one `tls_dir` share a CA.
    pub fn start(coreforge: &Path, store: &Path, tls_dir: &Path) -> anyhow::Result<ServedStore> {
        if !tls_dir.join("cert.pem").exists() {
            TestCa::new()?.write(tls_dir)?;
        }
        let mut child = Command::new(coreforge)
            .arg("store")
            .arg("serve")
            .arg(store)
            .args(["--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(tls_dir.join("cert.pem"))
            .arg("--tls-key")
            .arg(tls_dir.join("key.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} store serve", coreforge.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .trim()
            .trim_end_matches('/')
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| anyhow!("store serve said {line:?}, not where it listens"))?;
        Ok(ServedStore {
            child,
            port,
            ca: tls_dir.join("ca.pem"),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        (std::net::Ipv4Addr::LOCALHOST, self.port).into()
    }

    /// The URL for the host.
    pub fn host_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The URL for a QEMU guest with user networking.
    pub fn guest_url(&self) -> String {
        format!("https://{GUEST_HOST_ADDR}:{}", self.port)
    }
}

impl Drop for ServedStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
