//! SIP over TLS (RFC 3261 §26.2, RFC 5630) and the server certificate.
//!
//! rustls with the aws-lc-rs provider. Without a configured certificate, a self-signed one is
//! generated with rcgen into `<data_dir>/tls/` on first start and reused afterwards.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info};

use super::TransportKind;
use super::stream::{self, Peer, StreamContext};
use super::tcp::accept_loop;
use crate::config::Config;
use crate::shutdown::Shutdown;

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors while loading or generating the certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Pem { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("unusable certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's certificate, ready for SIP over TLS and for HTTPS (secure WebSocket).
#[derive(Debug, Clone)]
pub struct TlsConfigs {
    /// For SIP over TLS.
    pub sip: Arc<ServerConfig>,
    /// For WSS: the same certificate, ALPN `http/1.1`.
    pub https: Arc<ServerConfig>,
    /// The certificate file in use.
    pub certificate: PathBuf,
}

/// Where a generated certificate lives.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Loads the configured certificate, or the generated one (generating it if needed).
pub fn load(config: &Config) -> Result<TlsConfigs, TlsError> {
    let (cert_path, key_path) = match (&config.tls.certificate, &config.tls.private_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => {
            let (cert, key) = generated_paths(&config.data_dir);
            if !cert.exists() || !key.exists() {
                generate(&config.domains, &cert, &key)?;
            }
            (cert, key)
        }
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Pem { path: cert_path.clone(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|source| TlsError::Pem { path: key_path, source })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let sip = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    let mut https = sip.clone();
    https.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConfigs { sip: Arc::new(sip), https: Arc::new(https), certificate: cert_path })
}

/// Generates a self-signed certificate for the configured domains and `localhost`.
fn generate(domains: &[String], cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let mut names: Vec<String> = domains.to_vec();
    names.extend(["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()]);
    let certified = rcgen::generate_simple_self_signed(names)?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.to_owned(), source })?;
    }
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem())
        .map_err(|source| TlsError::Write { path: cert_path.to_owned(), source })?;
    info!(certificate = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .map_err(|source| TlsError::Write { path: path.to_owned(), source })
}

/// Runs the server side of a TLS handshake, giving up after [`HANDSHAKE_TIMEOUT`] or on shutdown.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    shutdown: &mut Shutdown,
) -> Option<TlsStream<TcpStream>> {
    let handshake = tokio::select! {
        _ = shutdown.wait() => return None,
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => handshake,
    };
    match handshake {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            debug!(%remote, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            debug!(%remote, "TLS handshake timed out");
            None
        }
    }
}

/// Serves SIP over TLS on `listener`: handshake, then the same framing as TCP.
pub async fn serve(listener: TcpListener, config: Arc<ServerConfig>, ctx: StreamContext, limit: Arc<Semaphore>) {
    let acceptor = TlsAcceptor::from(config);
    let shutdown = ctx.shutdown.clone();
    let gate = ctx.gate.clone();
    accept_loop(listener, TransportKind::Tls, limit, gate, shutdown, move |conn| {
        let acceptor = acceptor.clone();
        let mut ctx = ctx.clone();
        tokio::spawn(async move {
            let peer = Peer { transport: TransportKind::Tls, local: conn.local, remote: conn.remote };
            if let Some(tls) = handshake(&acceptor, conn.stream, peer.remote, &mut ctx.shutdown).await {
                stream::run(tls, peer, ctx, conn.permit).await;
            }
        });
    })
    .await;
}
