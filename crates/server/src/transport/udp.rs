//! SIP over UDP (RFC 3261 §18): one socket per configured address and a receive loop.
//!
//! Each datagram is one message. Datagrams are received into one large buffer and split off
//! without copying, so the steady state allocates only when a buffer is used up.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
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
    // One buffer received into; each datagram is copied out into an allocation of its own size.
    // Carving datagrams out of a shared block instead would let whatever outlives its message (a
    // call's INVITE, a completed transaction's keys) keep the whole block.
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, remote) = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    // ICMP errors (port unreachable) surface here on some systems; keep going.
                    debug!(%local, error = %e, "UDP receive error");
                    continue;
                }
            },
        };
        let datagram = &buf[..len];
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
        let bytes = Bytes::copy_from_slice(datagram);
        let inbound = Inbound { transport: TransportKind::Udp, local, remote, conn: None, account: None, bytes };
        if events.send(Event::Inbound(inbound)).await.is_err() {
            break;
        }
    }
    debug!(%local, "UDP listener stopped");
}
