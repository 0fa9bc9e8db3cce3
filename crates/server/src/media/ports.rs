//! The RTP port range: even RTP port, odd RTCP port (RFC 3550 §11), handed out and returned.
//!
//! Free pairs wait in a FIFO queue, so a released pair goes to the back and is reused last:
//! late packets of an ended call rarely reach the next one. A pair that cannot be bound (some
//! other program holds a port) is put back at the end and the next one is tried.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use quinn_udp::{UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::{MediaError, RelayConfig};

/// The free pairs of the range, by RTP port.
#[derive(Debug)]
pub(super) struct PortPool {
    min: u16,
    max: u16,
    capacity: usize,
    free: VecDeque<u16>,
}

impl PortPool {
    pub(super) fn new(min: u16, max: u16) -> Result<PortPool, MediaError> {
        let first = min.checked_add(min % 2).filter(|&first| first > 0);
        let Some(first) = first.filter(|&first| u32::from(first) < u32::from(max)) else {
            return Err(MediaError::InvalidRange { min, max });
        };
        // Every even port whose odd neighbour is still in range.
        let free: VecDeque<u16> =
            (u32::from(first)..u32::from(max)).step_by(2).filter_map(|port| u16::try_from(port).ok()).collect();
        Ok(PortPool { min, max, capacity: free.len(), free })
    }

    pub(super) fn available(&self) -> usize {
        self.free.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    fn exhausted(&self) -> MediaError {
        MediaError::PortsExhausted { min: self.min, max: self.max }
    }
}

/// Locks the pool; a panic elsewhere while it was held leaves it usable (it is a plain queue).
pub(super) fn lock(pool: &Mutex<PortPool>) -> MutexGuard<'_, PortPool> {
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Pairs taken from the pool, returned when dropped. The session task holds it after its
/// sockets, so the ports are free again only once closed.
#[derive(Debug)]
pub(super) struct PortLease {
    pool: Arc<Mutex<PortPool>>,
    /// RTP ports, in allocation order.
    pub(super) ports: Vec<u16>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        lock(&self.pool).free.extend(self.ports.drain(..));
    }
}

/// A bound, non-blocking UDP socket with its batching state.
#[derive(Debug)]
pub(super) struct BoundSocket {
    pub(super) socket: UdpSocket,
    pub(super) state: UdpSocketState,
}

/// Takes `count` pairs from the pool and binds both ports of each on `ip`.
pub(super) fn bind_pairs(
    pool: &Arc<Mutex<PortPool>>,
    config: &RelayConfig,
    ip: IpAddr,
    count: usize,
) -> Result<(PortLease, Vec<[BoundSocket; 2]>), MediaError> {
    let mut lease = PortLease { pool: pool.clone(), ports: Vec::with_capacity(count) };
    let mut sockets = Vec::with_capacity(count);
    // Each free pair is tried at most once per allocation.
    let mut tries = lock(pool).available();
    while sockets.len() < count {
        let port = {
            let mut pool = lock(pool);
            match pool.free.pop_front() {
                Some(port) if tries > 0 => port,
                Some(port) => {
                    pool.free.push_front(port);
                    return Err(pool.exhausted());
                }
                None => return Err(pool.exhausted()),
            }
        };
        tries -= 1;
        match bind_pair(ip, port, config.socket_buffer) {
            Ok(pair) => {
                lease.ports.push(port);
                sockets.push(pair);
            }
            Err((addr, e)) if e.kind() == io::ErrorKind::AddrInUse => {
                debug!(%addr, "RTP port in use, trying the next pair");
                lock(pool).free.push_back(port);
            }
            Err((addr, source)) => {
                lock(pool).free.push_back(port);
                return Err(MediaError::Bind { addr, source });
            }
        }
    }
    Ok((lease, sockets))
}

fn bind_pair(ip: IpAddr, rtp: u16, buffer: usize) -> Result<[BoundSocket; 2], (SocketAddr, io::Error)> {
    let rtp_addr = SocketAddr::new(ip, rtp);
    let rtcp_addr = SocketAddr::new(ip, rtp + 1);
    let rtp = bind(rtp_addr, buffer).map_err(|e| (rtp_addr, e))?;
    let rtcp = bind(rtcp_addr, buffer).map_err(|e| (rtcp_addr, e))?;
    Ok([rtp, rtcp])
}

/// Binds one relay socket: large buffers, non-blocking, IPv6-only for IPv6 addresses, and the
/// GRO/GSO and packet-info options `quinn-udp` sets. Must run inside the tokio runtime.
fn bind(addr: SocketAddr, buffer: usize) -> io::Result<BoundSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Err(e) = socket.set_recv_buffer_size(buffer).and_then(|()| socket.set_send_buffer_size(buffer)) {
        warn!(%addr, error = %e, "cannot set RTP socket buffer sizes");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
    Ok(BoundSocket { socket, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_holds_whole_pairs() {
        let pool = PortPool::new(20_001, 20_010).unwrap();
        assert_eq!(pool.free, [20_002, 20_004, 20_006, 20_008]);
        assert_eq!(PortPool::new(20_000, 20_001).unwrap().free, [20_000]);
        assert_eq!(PortPool::new(65_534, 65_535).unwrap().free, [65_534]);
        assert!(PortPool::new(20_000, 20_000).is_err());
        assert!(PortPool::new(20_001, 20_002).is_err());
        assert!(PortPool::new(0, 100).is_err());
        assert!(PortPool::new(65_535, 65_535).is_err());
    }
}
