//! The transport layer: sockets and connections, and the messages they exchange with the core.
//!
//! Each listener runs its own tasks. Received SIP messages travel to the core as
//! [`Event::Inbound`]; answers come back as [`Outbound`], which [`Sender`] delivers without
//! waiting: over the same connection for stream transports (RFC 3261 §18.2.2), from the same
//! socket to the source address for UDP (RFC 3581 §4).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub mod dial;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod ws;

/// The transports Sambung speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
    /// WebSocket, RFC 7118.
    Ws,
    /// Secure WebSocket, RFC 7118.
    Wss,
}

impl TransportKind {
    /// The name used in Via headers and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }
}

impl TransportKind {
    /// The transport as SIP names it, for call control.
    pub fn sip(self) -> sambung_sip::Transport {
        match self {
            TransportKind::Udp => sambung_sip::Transport::Udp,
            TransportKind::Tcp => sambung_sip::Transport::Tcp,
            TransportKind::Tls => sambung_sip::Transport::Tls,
            TransportKind::Ws => sambung_sip::Transport::Ws,
            TransportKind::Wss => sambung_sip::Transport::Wss,
        }
    }

    /// The transport a SIP name stands for; `None` for one the server does not speak.
    pub fn from_sip(transport: &sambung_sip::Transport) -> Option<TransportKind> {
        Some(match transport {
            sambung_sip::Transport::Udp => TransportKind::Udp,
            sambung_sip::Transport::Tcp => TransportKind::Tcp,
            sambung_sip::Transport::Tls => TransportKind::Tls,
            sambung_sip::Transport::Ws => TransportKind::Ws,
            sambung_sip::Transport::Wss => TransportKind::Wss,
            _ => return None,
        })
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one stream connection for its whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// A process-unique id.
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (the transaction layer's `flow`).
    pub fn raw(self) -> u64 {
        self.0
    }

    /// The id a number from [`ConnId::raw`] stands for.
    pub fn from_raw(raw: u64) -> ConnId {
        ConnId(raw)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// One received SIP message (or a stream's unframeable remainder), as bytes.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub transport: TransportKind,
    /// The address of our socket (for wildcard UDP sockets, the wildcard address).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The connection it came on; `None` for UDP.
    pub conn: Option<ConnId>,
    /// The account the connection is signed in as: a web app's SIP WebSocket, opened with
    /// the app's session.
    pub account: Option<i64>,
    pub bytes: Bytes,
}

impl Inbound {
    /// The message as call control takes it.
    pub fn to_pbx(self) -> sambung_pbx::Inbound {
        sambung_pbx::Inbound {
            transport: self.transport.sip(),
            local: self.local,
            remote: self.remote,
            conn: self.conn.map(ConnId::raw),
            account: self.account,
            bytes: self.bytes,
        }
    }
}

/// Bytes call control wants sent.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub transport: TransportKind,
    /// The socket to send from (UDP) or the connection's local address.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The connection to send on, when known; otherwise one is looked up by remote address.
    pub conn: Option<ConnId>,
    pub bytes: Bytes,
    /// Close the connection once the bytes are written (after an unrecoverable framing error).
    pub close: bool,
}

impl Outbound {
    /// What call control wants sent, as the transports send it; `None` for a transport the
    /// server does not speak.
    pub fn from_pbx(transmit: sambung_pbx::Transmit) -> Option<Outbound> {
        let unspecified = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0));
        Some(Outbound {
            transport: TransportKind::from_sip(&transmit.transport)?,
            local: transmit.local.unwrap_or(unspecified),
            remote: transmit.remote,
            conn: transmit.conn.map(ConnId::from_raw),
            bytes: transmit.bytes,
            close: transmit.close,
        })
    }
}

/// What a connection task is told to do.
#[derive(Debug)]
pub enum ConnCommand {
    /// Write these bytes (one SIP message, or a keep-alive).
    Send(Bytes),
    /// Close the connection (after writing what was queued before).
    Close,
}

/// What the transports, the store and the applications tell the call-control task.
#[derive(Clone, Debug)]
pub enum Event {
    /// A SIP message arrived.
    Inbound(Inbound),
    /// A stream connection can no longer be framed (RFC 3261 §18.3): `inbound.bytes` holds what
    /// was buffered. It may be answered; the connection is then closed.
    FramingError(Inbound, sambung_sip::FrameError),
    /// A stream connection opened; `tx` reaches its task.
    Connected(Connection),
    /// A stream connection closed.
    Disconnected(ConnId),
    /// An outgoing connection shard `shard` asked for could not be made ([`dial`]): it fails
    /// its requests waiting for it.
    Unreachable { shard: usize, transport: TransportKind, remote: SocketAddr },
    /// The accounts changed in the store: the new table.
    Accounts(sambung_pbx::registrar::Accounts),
    /// The store's answer to a write that asked for one.
    Store(sambung_pbx::StoreReply),
    /// An application is done with call `call`.
    AppEnded { call: u64, end: sambung_pbx::AppEnd },
    /// The application answering call `call` asks that its caller be connected to `target`.
    AppConnect { call: u64, target: String },
    /// The application of call `partner` picks up call `call`, which rings.
    PickUp { call: u64, partner: u64 },
    /// Record call `call` from now on (through the API).
    RecordCall { call: u64 },
    /// A mailbox's message counts changed (a message was left, heard, saved or deleted).
    Mailbox { account_id: i64, counts: sambung_pbx::MailboxCounts },
    /// The gate banned a flooding source (it already drops what the source sends): call
    /// control's task takes the gate's new bans to store and announce them.
    Flooded,
    /// The bans and lockouts in the store changed (`sambung ban`): the whole lists.
    Guard(crate::persist::GuardLists),
    /// The web app signs a device out: call control drops its binding.
    Unregister { account_id: i64, device: String },
    /// An operator ends a call through the API: the call's shard takes it.
    EndCall { call: u64 },
    /// The relay wants a keyframe of a phone that takes them only by SIP INFO: the call's
    /// shard sends it.
    KeyframeWanted { call: u64, side: sambung_pbx::Side, stream: usize },
    /// A transfer asked for through the API: the call's shard takes it.
    TransferCall { call: u64, side: sambung_pbx::Side, target: String },
    /// Click-to-call through the API: the attempt's shard (by `id`, as a call's) takes it.
    Originate { id: u64, account_id: i64, target: String },
    /// A text message the web app stored: call control delivers it to the recipient's devices.
    Deliver { message: sambung_pbx::StoredMessage, from_account: i64 },
    /// Accounts' presence changed ([`crate::presence`]).
    Presence(Vec<(i64, sambung_pbx::presence::Presence)>),
    /// A DNS lookup call control asked for finished ([`crate::resolver`]).
    Resolved { lookup: sambung_pbx::Lookup, result: Result<Vec<sambung_dns::Target>, String> },
}

/// The queue was closed: call control has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

/// The way into call control: one queue per shard ([`sambung_pbx::shard`]). A message goes to
/// the shard its Call-ID names; what every shard must know (connections, accounts, mailboxes)
/// to each; an application's or the store's answer to the shard that asked. Cheap to clone;
/// the queues close once every clone is gone.
#[derive(Clone, Debug)]
pub struct Events {
    shards: Arc<[mpsc::Sender<Event>]>,
}

/// An [`Events`] that does not keep the queues open.
#[derive(Clone, Debug)]
pub struct WeakEvents {
    shards: Arc<[mpsc::WeakSender<Event>]>,
}

impl WeakEvents {
    pub fn upgrade(&self) -> Option<Events> {
        let shards: Option<Vec<_>> = self.shards.iter().map(mpsc::WeakSender::upgrade).collect();
        Some(Events { shards: shards?.into() })
    }
}

impl Events {
    /// Queues of `capacity` events each, one per shard, and their receiving ends.
    pub fn channels(shards: usize, capacity: usize) -> (Events, Vec<mpsc::Receiver<Event>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards.max(1)).map(|_| mpsc::channel(capacity)).unzip();
        (Events { shards: senders.into() }, receivers)
    }

    pub fn downgrade(&self) -> WeakEvents {
        WeakEvents { shards: self.shards.iter().map(mpsc::Sender::downgrade).collect::<Vec<_>>().into() }
    }

    /// How many shards there are.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The shard an event is for; `None`: every shard.
    fn route(&self, event: &Event) -> Option<usize> {
        let count = self.shards.len();
        match event {
            Event::Inbound(inbound) | Event::FramingError(inbound, _) => {
                Some(sambung_pbx::shard_of(&inbound.bytes, count))
            }
            Event::AppEnded { call, .. }
            | Event::AppConnect { call, .. }
            | Event::PickUp { call, .. }
            | Event::RecordCall { call }
            | Event::EndCall { call }
            | Event::KeyframeWanted { call, .. }
            | Event::TransferCall { call, .. }
            | Event::Originate { id: call, .. } => Some(sambung_pbx::Pbx::shard_of_call(*call, count)),
            Event::Resolved { lookup, .. } => Some(lookup.shard(count)),
            Event::Unreachable { shard, .. } => Some(*shard % count),
            // Messages are shared by the shards: any one takes the store's answers. The
            // guard's lists and the gate's bans are shared too.
            Event::Store(_) | Event::Flooded | Event::Guard(_) | Event::Deliver { .. } | Event::Unregister { .. } => {
                Some(0)
            }
            Event::Connected(_)
            | Event::Disconnected(_)
            | Event::Accounts(_)
            | Event::Mailbox { .. }
            | Event::Presence(_) => None,
        }
    }

    /// Queues `event` for the shard (or shards) it is for, waiting while a queue is full.
    pub async fn send(&self, event: Event) -> Result<(), Closed> {
        match self.route(&event) {
            Some(shard) => self.shards[shard].send(event).await.map_err(|_| Closed),
            None => {
                let (last, others) = self.shards.split_last().ok_or(Closed)?;
                for shard in others {
                    shard.send(event.clone()).await.map_err(|_| Closed)?;
                }
                last.send(event).await.map_err(|_| Closed)
            }
        }
    }

    /// Queues `event` if there is room at once (only for events of one shard).
    pub fn try_send(&self, event: Event) -> Result<(), Closed> {
        let shard = self.route(&event).unwrap_or(0);
        self.shards[shard].try_send(event).map_err(|_| Closed)
    }
}

/// A live stream connection, as the connection table keeps it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnId,
    pub transport: TransportKind,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub tx: mpsc::Sender<ConnCommand>,
}

/// How many commands may wait for one connection before it counts as stuck.
pub const CONN_QUEUE: usize = 64;

/// Why an [`Outbound`] could not be handed to a socket.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("no UDP socket bound to {0}")]
    NoSocket(SocketAddr),
    #[error("no {0} connection to {1}")]
    NoConnection(TransportKind, SocketAddr),
    #[error("connection {0} is not keeping up; message dropped")]
    Congested(ConnId),
    #[error("UDP send to {0} failed: {1}")]
    Udp(SocketAddr, std::io::ErrorKind),
}

/// Delivers [`Outbound`] messages: the UDP sockets and the table of live connections, keyed by
/// [`ConnId`] and by remote address for reuse (RFC 3261 §18.1.1, RFC 5923 in spirit).
///
/// Owned by the core task alone, so it needs no lock; sending never waits.
#[derive(Debug, Default)]
pub struct Sender {
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    conns: HashMap<ConnId, Connection>,
    by_remote: HashMap<(TransportKind, SocketAddr), ConnId>,
    /// Opens TCP and TLS connections to addresses we have none with ([`dial`]).
    dialer: Option<dial::Dialer>,
    /// Connections being opened, with their queues.
    dialing: HashMap<(TransportKind, SocketAddr), mpsc::Sender<ConnCommand>>,
}

impl Sender {
    /// A sender over these UDP sockets and no connections yet.
    pub fn new(udp: Vec<(SocketAddr, Arc<UdpSocket>)>) -> Sender {
        Sender { udp, ..Sender::default() }
    }

    /// Opens connections where there is none (to other domains' servers, carriers).
    pub fn with_dialer(mut self, dialer: dial::Dialer) -> Sender {
        self.dialer = Some(dialer);
        self
    }

    /// Records a new connection; the newest connection to a remote address is the one reused.
    pub fn connected(&mut self, conn: Connection) {
        self.dialing.remove(&(conn.transport, conn.remote));
        self.by_remote.insert((conn.transport, conn.remote), conn.id);
        self.conns.insert(conn.id, conn);
    }

    /// Forgets a closed connection.
    pub fn disconnected(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            let key = (conn.transport, conn.remote);
            if self.by_remote.get(&key) == Some(&id) {
                self.by_remote.remove(&key);
            }
        }
    }

    /// Number of live stream connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Hands `out` to its socket or connection without waiting.
    pub fn send(&mut self, out: Outbound) -> Result<(), SendError> {
        if out.transport == TransportKind::Udp {
            let socket = self
                .udp
                .iter()
                .find(|(addr, _)| *addr == out.local)
                .or_else(|| self.udp.iter().find(|(addr, _)| addr.is_ipv4() == out.remote.is_ipv4()))
                .map(|(_, s)| s)
                .ok_or(SendError::NoSocket(out.local))?;
            return match socket.try_send_to(&out.bytes, out.remote) {
                Ok(_) => Ok(()),
                Err(e) => Err(SendError::Udp(out.remote, e.kind())),
            };
        }
        let conn = out
            .conn
            .and_then(|id| self.conns.get(&id))
            .or_else(|| self.by_remote.get(&(out.transport, out.remote)).and_then(|id| self.conns.get(id)));
        let Some(conn) = conn else { return self.dial(out) };
        if !out.bytes.is_empty() {
            conn.tx.try_send(ConnCommand::Send(out.bytes)).map_err(|_| SendError::Congested(conn.id))?;
        }
        if out.close {
            // With a full queue the connection still ends: after a framing error its task
            // closes by itself shortly.
            let _ = conn.tx.try_send(ConnCommand::Close);
        }
        Ok(())
    }
}

impl Sender {
    /// A request to an address with no connection: over a new one (TCP, TLS), queued until
    /// it is up. A reply (its connection gone) is not: the peer must connect again.
    fn dial(&mut self, out: Outbound) -> Result<(), SendError> {
        let key = (out.transport, out.remote);
        let none = SendError::NoConnection(out.transport, out.remote);
        let Some(dialer) = &self.dialer else { return Err(none) };
        if out.conn.is_some() || !matches!(out.transport, TransportKind::Tcp | TransportKind::Tls) || out.close {
            return Err(none);
        }
        for _ in 0..2 {
            let queue = self.dialing.entry(key).or_insert_with(|| dialer.dial(out.transport, out.remote));
            match queue.try_send(ConnCommand::Send(out.bytes.clone())) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => return Err(none),
                // The last try to connect failed: try again.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.dialing.remove(&key);
                }
            }
        }
        Err(none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(transport: TransportKind, remote: &str, queue: usize) -> (Connection, mpsc::Receiver<ConnCommand>) {
        let (tx, rx) = mpsc::channel(queue);
        let conn = Connection {
            id: ConnId::next(),
            transport,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: remote.parse().unwrap(),
            tx,
        };
        (conn, rx)
    }

    fn out(transport: TransportKind, remote: &str, conn: Option<ConnId>, close: bool) -> Outbound {
        Outbound {
            transport,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: remote.parse().unwrap(),
            conn,
            bytes: Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"),
            close,
        }
    }

    #[test]
    fn answers_go_to_their_connection_or_one_to_the_same_peer() {
        let mut sender = Sender::default();
        let (a, mut rx_a) = conn(TransportKind::Tcp, "192.0.2.1:4000", 4);
        let a_id = a.id;
        sender.connected(a);
        sender.send(out(TransportKind::Tcp, "192.0.2.1:4000", Some(a_id), false)).unwrap();
        assert!(matches!(rx_a.try_recv(), Ok(ConnCommand::Send(_))));
        // No connection id (a request the core originates): found by remote address.
        sender.send(out(TransportKind::Tcp, "192.0.2.1:4000", None, true)).unwrap();
        assert!(matches!(rx_a.try_recv(), Ok(ConnCommand::Send(_))));
        assert!(matches!(rx_a.try_recv(), Ok(ConnCommand::Close)));
        // Same address, other transport: not the same connection.
        assert_eq!(
            sender.send(out(TransportKind::Tls, "192.0.2.1:4000", None, false)),
            Err(SendError::NoConnection(TransportKind::Tls, "192.0.2.1:4000".parse().unwrap()))
        );
        sender.disconnected(a_id);
        assert_eq!(sender.connections(), 0);
        assert!(sender.send(out(TransportKind::Tcp, "192.0.2.1:4000", Some(a_id), false)).is_err());
    }

    #[test]
    fn a_stuck_connection_loses_messages_instead_of_blocking() {
        let mut sender = Sender::default();
        let (a, _rx) = conn(TransportKind::Ws, "192.0.2.2:4000", 1);
        let id = a.id;
        sender.connected(a);
        sender.send(out(TransportKind::Ws, "192.0.2.2:4000", Some(id), false)).unwrap();
        assert_eq!(
            sender.send(out(TransportKind::Ws, "192.0.2.2:4000", Some(id), false)),
            Err(SendError::Congested(id))
        );
    }

    #[test]
    fn udp_without_a_socket_is_an_error() {
        let mut sender = Sender::default();
        assert!(matches!(
            sender.send(out(TransportKind::Udp, "192.0.2.3:5060", None, false)),
            Err(SendError::NoSocket(_))
        ));
    }
}
