//! Outgoing stream connections (TCP and TLS) to servers of other domains and to carriers
//! (RFC 3261 §18.1.1): made when call control sends to an address with no connection yet,
//! then kept and reused like an accepted one, with the same framing, keep-alives (RFC 5626
//! §4.4.1: a double CRLF is answered) and idle timeout ([`super::stream`]).
//!
//! A TLS server's certificate is checked against the domain the SIP URI named (RFC 5922 §4),
//! which the lookup that found the address recorded in [`TlsNames`]; an address reached
//! without a lookup (an IP literal) is checked against the address itself. Trusted roots: the
//! system's, and `[tls] trusted_ca` if set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tracing::{debug, warn};

use super::stream::{self, Peer, StreamContext};
use super::{CONN_QUEUE, ConnCommand, TransportKind};

/// A keep-alive ping on our connections between 80 and 100 % of 120 s (RFC 5626 §4.4.1).
fn keepalive() -> Duration {
    Duration::from_secs(rand::random_range(96..=120))
}

/// Longest a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The name each TLS address must prove, as lookups found them. Shared by the resolver, which
/// writes, and every shard's dialer, which reads.
#[derive(Clone, Debug, Default)]
pub struct TlsNames(Arc<Mutex<HashMap<SocketAddr, String>>>);

impl TlsNames {
    pub fn insert(&self, addr: SocketAddr, name: String) {
        if let Ok(mut names) = self.0.lock() {
            names.insert(addr, name);
        }
    }

    fn get(&self, addr: SocketAddr) -> Option<String> {
        self.0.lock().ok()?.get(&addr).cloned()
    }
}

/// Errors while building the TLS client settings.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot read the trusted CA file {0}: {1}")]
    Ca(String, rustls::pki_types::pem::Error),
    #[error("TLS client settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS client settings: the system's roots and the operator's extra CA file.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, DialError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    debug!(roots = added, "system root certificates");
    if let Some(path) = extra_ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<_, _>>())
            .map_err(|e| DialError::Ca(path.display().to_string(), e))?;
        roots.add_parsable_certificates(certs);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens outgoing connections for one shard's sender. It holds call control's queues only
/// weakly, so that they close at shutdown.
#[derive(Clone, Debug)]
pub struct Dialer {
    events: super::WeakEvents,
    gate: crate::guard::SharedGate,
    max_message_size: usize,
    idle_timeout: Duration,
    shutdown: crate::shutdown::WeakShutdown,
    tls: Arc<ClientConfig>,
    names: TlsNames,
    /// The shard whose sender dials: it hears of a failure.
    shard: usize,
}

impl Dialer {
    /// A dialer whose connections behave like those `ctx` serves.
    pub fn new(ctx: &StreamContext, tls: Arc<ClientConfig>, names: TlsNames) -> Dialer {
        Dialer {
            events: ctx.events.downgrade(),
            gate: ctx.gate.clone(),
            max_message_size: ctx.max_message_size,
            idle_timeout: ctx.idle_timeout,
            shutdown: ctx.shutdown.downgrade(),
            tls,
            names,
            shard: 0,
        }
    }

    /// The dialer of shard `shard`.
    pub fn for_shard(&self, shard: usize) -> Dialer {
        Dialer { shard, ..self.clone() }
    }

    /// Starts connecting to `remote` over `transport` (TCP or TLS): the returned queue takes
    /// what to send at once; it is written when the connection is up, which call control
    /// learns as [`super::Event::Connected`] like any other connection.
    pub fn dial(&self, transport: TransportKind, remote: SocketAddr) -> mpsc::Sender<ConnCommand> {
        let (tx, rx) = mpsc::channel(CONN_QUEUE);
        // After shutdown began nothing is dialled: the queue closes at once.
        let (Some(events), Some(shutdown)) = (self.events.upgrade(), self.shutdown.upgrade()) else { return tx };
        let ctx = StreamContext {
            events,
            gate: self.gate.clone(),
            max_message_size: self.max_message_size,
            idle_timeout: self.idle_timeout,
            shutdown,
        };
        let (tls, names, shard) = (self.tls.clone(), self.names.clone(), self.shard);
        let queue = tx.clone();
        tokio::spawn(async move {
            let events = ctx.events.clone();
            let mut shutdown = ctx.shutdown.clone();
            let connect = connect(ctx, tls, names, transport, remote, queue, rx);
            let connected = tokio::select! {
                connected = tokio::time::timeout(CONNECT_TIMEOUT, connect) => match connected {
                    Ok(connected) => connected,
                    Err(_) => {
                        debug!(%transport, %remote, "outgoing connection timed out");
                        false
                    }
                },
                () = shutdown.wait() => return,
            };
            if !connected {
                let _ = events.send(super::Event::Unreachable { shard, transport, remote }).await;
            }
        });
        tx
    }
}

async fn connect(
    ctx: StreamContext,
    tls: Arc<ClientConfig>,
    names: TlsNames,
    transport: TransportKind,
    remote: SocketAddr,
    tx: mpsc::Sender<ConnCommand>,
    rx: mpsc::Receiver<ConnCommand>,
) -> bool {
    let tcp = match TcpStream::connect(remote).await {
        Ok(tcp) => tcp,
        Err(error) => {
            debug!(%transport, %remote, %error, "outgoing connection failed");
            return false;
        }
    };
    let _ = tcp.set_nodelay(true);
    let Ok(local) = tcp.local_addr() else { return false };
    let peer = Peer { transport, local, remote };
    debug!(%transport, %remote, "outgoing connection opened");
    match transport {
        TransportKind::Tcp => {
            tokio::spawn(stream::run_with(tcp, peer, ctx, None, (tx, rx), Some(keepalive())));
            true
        }
        TransportKind::Tls => {
            let name = names.get(remote).unwrap_or_else(|| remote.ip().to_string());
            let Ok(server_name) = ServerName::try_from(name.clone()) else {
                warn!(%remote, name, "no usable TLS server name");
                return false;
            };
            match TlsConnector::from(tls).connect(server_name, tcp).await {
                Ok(tls) => {
                    tokio::spawn(stream::run_with(tls, peer, ctx, None, (tx, rx), Some(keepalive())));
                    true
                }
                Err(error) => {
                    warn!(%remote, name, %error, "TLS handshake with a server failed");
                    false
                }
            }
        }
        // Outgoing WebSocket connections are not made (browsers connect to us).
        TransportKind::Udp | TransportKind::Ws | TransportKind::Wss => false,
    }
}
