//! `coreforge store serve DIR`: a store over HTTPS, speaking the part of snapd's store API
//! its clients use (`snap download`, image builders):
//!
//! ```text
//! POST /v2/snaps/refresh                     install and download actions (api.rs)
//! GET  /v2/snaps/info/NAME                   the channel map
//! GET  /v2/assertions/TYPE/KEY...            application/x.ubuntu.assertion
//! GET  /download/SNAPID_REV.snap             the snap file, with Range
//! ```
//!
//! and, for the store's accounts, logins, SSH keys, key registration, uploads and releases
//! (publish.rs).
//!
//! Limits: request headers are read within [`Limits::header_timeout`] and may take
//! [`Limits::max_header_bytes`]; bodies at most [`Limits::max_body_bytes`], read within
//! [`Limits::body_timeout`]; a TLS handshake gets [`Limits::handshake_timeout`]. A client
//! that goes over is cut off; the others are not held up by it.

mod api;
mod publish;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::store::{LocalStore, StoreError};

pub use api::router;

/// How much a client may send, and how slowly.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to send a request's headers (also the idle time between requests).
    pub header_timeout: Duration,
    /// Bytes of request line and headers.
    pub max_header_bytes: usize,
    /// Bytes of a request body.
    pub max_body_bytes: usize,
    /// Time to send a request body.
    pub body_timeout: Duration,
    /// Bytes of an uploaded snap.
    pub max_upload_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 << 10,
            max_body_bytes: 1 << 20,
            body_timeout: Duration::from_secs(30),
            max_upload_bytes: 4 << 30,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The directory holds no usable store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The certificate or key file could not be read or used.
    #[error("cannot use the TLS {what} {path}: {reason}; give PEM files (a certificate chain, server first, and its private key)")]
    Tls {
        /// Certificate or key.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {source}; is another server there?")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the server's threads: {0}")]
    Runtime(std::io::Error),
}

/// The TLS configuration from a PEM certificate chain and private key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServeError> {
    let tls_err = |what, path: &Path, reason: String| ServeError::Tls {
        what,
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_err("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls_err("certificate", cert, "no CERTIFICATE in it".into()));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err("key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("certificate", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| tls_err("key", key, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves the store in `dir` on `listener` until the process ends; calls `ready` with the
/// bound address once it accepts connections.
pub fn serve(
    dir: &Path,
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    limits: Limits,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    // Fail now, not at the first request, when the directory holds no store.
    LocalStore::open(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServeError::Listen { addr, source })?;
        ready(bound);
        accept_loop(listener, TlsAcceptor::from(Arc::new(tls)), dir, limits).await;
        Ok(())
    })
}

async fn accept_loop(listener: TcpListener, tls: TlsAcceptor, dir: &Path, limits: Limits) {
    let app = router(dir.to_owned(), &limits);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, the clients will come back.
                eprintln!("store serve: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, app, limits) = (tls.clone(), app.clone(), limits.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(limits.handshake_timeout, tls.accept(tcp)).await
            {
                Ok(Ok(stream)) => stream,
                // A client that does not finish the handshake in time, or fails it, is
                // just dropped; say so for whoever runs the server.
                Ok(Err(e)) => return eprintln!("store serve: TLS with {peer} failed: {e}"),
                Err(_) => return eprintln!("store serve: TLS with {peer} timed out"),
            };
            let service = TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                // Twice the header limit: headers a little over it are read whole and refused
                // by `bounded_headers` with a 431 the client gets to read. hyper's own refusal,
                // beyond this, closes with the client's bytes unread, and the client may see
                // only a reset.
                .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(8192));
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                if !e.is_incomplete_message() {
                    eprintln!("store serve: connection with {peer}: {e}");
                }
            }
        });
    }
}
