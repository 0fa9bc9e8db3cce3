//! Stream listeners: the accept loop shared by TCP, TLS, WS and WSS, and SIP over TCP
//! (RFC 3261 §18).
//!
//! The loop enforces the connection limit: a connection beyond it is closed as soon as it is
//! accepted (the mini-redis shape, with `try_acquire` instead of waiting, so that a flood
//! cannot queue up in the backlog).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, trace, warn};

use super::TransportKind;
use super::stream::{self, Peer, StreamContext};
use crate::guard::SharedGate;
use crate::shutdown::Shutdown;

/// Binds a listening socket. IPv6 listeners are IPv6-only, so `0.0.0.0` and `[::]` can both
/// be configured.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// One accepted connection, holding its slot under the connection limit.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TcpStream,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub permit: Slot,
}

/// A connection's place under the server's connection limit and under its source's cap in the
/// gate; both are given back when it is dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    gate: SharedGate,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.closed(self.source);
    }
}

/// Accepts connections until shutdown, refusing those beyond `limit`, and hands each to
/// `on_accept` (which spawns its task).
pub async fn accept_loop<F>(
    listener: TcpListener,
    transport: TransportKind,
    limit: Arc<Semaphore>,
    gate: SharedGate,
    mut shutdown: Shutdown,
    mut on_accept: F,
) where
    F: FnMut(Accepted),
{
    let listen = listener.local_addr().ok();
    loop {
        let (stream, remote) = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    warn!(%transport, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // A banned source, or one holding its share of connections, is closed at once.
        if !gate.connect(remote.ip()) {
            trace!(%transport, %remote, "connection refused by the guard");
            drop(stream);
            continue;
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            gate.closed(remote.ip());
            debug!(%transport, %remote, "connection limit reached; connection refused");
            drop(stream);
            continue;
        };
        let permit = Slot { _permit: permit, gate: gate.clone(), source: remote.ip() };
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else { continue };
        on_accept(Accepted { stream, local, remote, permit });
    }
    debug!(%transport, listen = ?listen, "listener stopped");
}

/// Serves SIP over plain TCP on `listener`.
pub async fn serve(listener: TcpListener, ctx: StreamContext, limit: Arc<Semaphore>) {
    let shutdown = ctx.shutdown.clone();
    let gate = ctx.gate.clone();
    accept_loop(listener, TransportKind::Tcp, limit, gate, shutdown, move |conn| {
        let peer = Peer { transport: TransportKind::Tcp, local: conn.local, remote: conn.remote };
        tokio::spawn(stream::run(conn.stream, peer, ctx.clone(), conn.permit));
    })
    .await;
}
