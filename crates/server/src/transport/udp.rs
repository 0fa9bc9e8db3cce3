//! SIP over UDP (RFC 3261 §18): one socket per configured address and a receive loop.
//!
//! Each datagram is one message. Datagrams are received into one large buffer and split off
//! without copying, so the steady state allocates only when a buffer is used up.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::{Event, Events, Inbound, TransportKind};
use crate::guard::SharedGate;
use crate::shutdown::Shutdown;

/// Socket buffer sizes asked of the kernel (it may grant less, see `net.core.rmem_max`).
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// Datagrams share receive buffers of this size.
const RECV_BUFFER: usize = 16 * MAX_DATAGRAM;

/// Binds a UDP socket with large buffers; IPv6 sockets are IPv6-only, so `0.0.0.0` and `[::]`
/// can both be configured.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        warn!(%addr, error = %e, "cannot set UDP receive buffer size");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        warn!(%addr, error = %e, "cannot set UDP send buffer size");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Receives datagrams on `socket` and hands them to the core until shutdown.
pub async fn serve(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    events: Events,
    gate: SharedGate,
    max_message_size: usize,
    mut shutdown: Shutdown,
) {
    let mut buf = BytesMut::with_capacity(RECV_BUFFER);
    loop {
        // Keep room for a whole datagram; reuses the buffer once earlier messages are dropped.
        if buf.capacity() < MAX_DATAGRAM {
            buf.reserve(RECV_BUFFER);
        }
        let remote = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            received = socket.recv_buf_from(&mut buf) => match received {
                Ok((_, remote)) => remote,
                Err(e) => {
                    // ICMP errors (port unreachable) surface here on some systems; keep going.
                    debug!(%local, error = %e, "UDP receive error");
                    buf.clear();
                    continue;
                }
            },
        };
        let datagram = buf.split();
        // Before anything else is looked at: banned and flooding sources are dropped here.
        if !gate.admit(remote.ip()) {
            continue;
        }
        if datagram.len() > max_message_size {
            debug!(%local, %remote, size = datagram.len(), "oversized datagram dropped");
            continue;
        }
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0)) {
            // Keep-alive padding some phones send over UDP (RFC 5626 §3.5.1 uses STUN instead).
            continue;
        }
        let inbound = Inbound { transport: TransportKind::Udp, local, remote, conn: None, bytes: datagram.freeze() };
        if events.send(Event::Inbound(inbound)).await.is_err() {
            break;
        }
    }
    debug!(%local, "UDP listener stopped");
}
