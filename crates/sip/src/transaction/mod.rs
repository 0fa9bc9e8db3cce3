//! Transactions (RFC 3261 §17, with RFC 6026 for 2xx responses to INVITE).
//!
//! [`TransactionLayer`] holds every client and server transaction of one SIP element. It is
//! sans-IO in the manner of quinn-proto and str0m: messages come in through
//! [`TransactionLayer::handle_message`], time through [`TransactionLayer::handle_timeout`], and
//! what must be sent, told or waited for leaves through [`TransactionLayer::poll_transmit`],
//! [`TransactionLayer::poll_event`] and [`TransactionLayer::poll_timeout`]. The layer never reads
//! a clock, never sleeps and never spawns: every input carries `now`.
//!
//! What the layer does by itself:
//! - retransmits requests (Timers A and E) and final responses (Timer G) on unreliable
//!   transports, and 2xx responses to INVITE until their ACK arrives (§13.3.1.4; switch off with
//!   [`Config::retransmit_2xx`] in a proxy);
//! - absorbs retransmitted requests and responses, answering a retransmitted request with the
//!   last response (§17.2.1, §17.2.2);
//! - builds and sends the ACK for a non-2xx final response to INVITE (§17.1.1.3), and re-sends
//!   the TU's ACK for a 2xx whenever that 2xx is retransmitted (RFC 6026 §7.2, see
//!   [`TransactionLayer::send_ack`]);
//! - sends `100 Trying` for an INVITE the TU has not answered within [`Config::trying_delay`]
//!   (200 ms by default, §17.2.1);
//! - reports timeouts (Timer B, F → a locally made 408; H and L → the ACK never came), matches
//!   a CANCEL to the INVITE it cancels (§9.2) and flags merged requests (§8.2.2.2).
//!
//! # Run loop
//!
//! ```
//! use bytes::Bytes;
//! use sambung_sip::transaction::{Config, Peer, TransactionLayer, TxEvent};
//! use sambung_sip::{Message, Transport};
//! use std::time::Duration;
//!
//! let mut layer = TransactionLayer::new(Config::default());
//! let peer = Peer { transport: Transport::Udp, addr: "192.0.2.1:5060".parse().unwrap(), flow: None };
//! // The driver's clock (tokio's in the server, a virtual one here): the layer never reads one.
//! let now = sambung_testkit::Clock::new().now();
//!
//! // A datagram arrives ...
//! let datagram = Bytes::from_static(
//!     b"OPTIONS sip:sambung.example SIP/2.0\r\n\
//!       Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
//!       Max-Forwards: 70\r\n\
//!       To: <sip:sambung.example>\r\n\
//!       From: <sip:alice@example.com>;tag=1928301774\r\n\
//!       Call-ID: a84b4c76e66710\r\n\
//!       CSeq: 63104 OPTIONS\r\n\
//!       Content-Length: 0\r\n\r\n",
//! );
//! let message = Message::parse(datagram).unwrap();
//! // ... the layer makes a server transaction and hands the request to the TU ...
//! let Some(TxEvent::Request { key, request, .. }) = layer.handle_message(message, peer, now) else { panic!() };
//! // ... which answers through the transaction.
//! layer.respond(key, request.reply(200, "OK"), now).unwrap();
//! let transmit = layer.poll_transmit().unwrap();
//! assert!(transmit.bytes.starts_with(b"SIP/2.0 200 OK\r\n"));
//!
//! // The driver sleeps until the next deadline, then hands the time in: Timer J (64*T1 on UDP)
//! // ends the transaction.
//! let deadline = layer.poll_timeout().unwrap();
//! assert_eq!(deadline - now, Duration::from_secs(32));
//! layer.handle_timeout(deadline);
//! assert!(matches!(layer.poll_event(), Some(TxEvent::Terminated { .. })));
//! assert!(layer.is_empty());
//! ```

mod build;
mod client;
mod keys;
mod layer;
mod server;

pub use build::{ack_for, cancel_for, new_branch, push_via};
pub use layer::TransactionLayer;

use crate::message::{Request, Response};
use crate::typed::Transport;
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;

/// Where a message goes or came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    /// The remote address (for a request received over UDP, its source address: responses go
    /// back there, RFC 3581 §4).
    pub addr: SocketAddr,
    /// The stream connection the message belongs to, for stream transports: the driver maps it
    /// to its connection table (RFC 3261 §18.2.2: responses go back over the same connection).
    pub flow: Option<u64>,
}

impl Peer {
    /// True when the transport itself delivers reliably, so the transactions retransmit
    /// nothing and their wait timers (D, I, J, K) are zero (§17.1.1.2, §17.1.2.2, §17.2.1,
    /// §17.2.2).
    pub fn is_reliable(&self) -> bool {
        self.transport.is_reliable()
    }
}

/// Bytes to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Peer,
    pub bytes: Bytes,
    /// The transaction that sends them; `None` for stateless sends and ACKs for 2xx. A driver
    /// that cannot deliver reports it with [`TransactionLayer::handle_transport_error`].
    pub key: Option<TxKey>,
}

/// Names one transaction inside a [`TransactionLayer`]. Keys are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxKey(pub(crate) u64);

impl TxKey {
    /// A number unique within its layer, for logs.
    pub fn id(self) -> u64 {
        self.0
    }
}

/// Timer values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate: first retransmission interval (500 ms).
    pub t1: Duration,
    /// Cap on non-INVITE request and INVITE response retransmission intervals (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s): Timers I and K.
    pub t4: Duration,
    /// Timer D on unreliable transports (at least 32 s).
    pub timer_d: Duration,
    /// Timer C of a proxy (§16.6 item 11, §16.8: more than 3 min), reset by every provisional
    /// response. `None` (the default) for a user agent.
    pub timer_c: Option<Duration>,
    /// How long a server INVITE transaction waits for the TU's first response before sending
    /// `100 Trying` itself (§17.2.1); `Some(ZERO)` sends it at once, `None` never.
    pub trying_delay: Option<Duration>,
    /// Retransmit a 2xx to INVITE until its ACK arrives (§13.3.1.4, RFC 6026 §7.1): what a
    /// user agent core must do. A proxy sets it to `false`: the 2xx is the UAS's to repeat.
    pub retransmit_2xx: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            timer_c: None,
            trying_delay: Some(Duration::from_millis(200)),
            retransmit_2xx: true,
        }
    }
}

impl Config {
    /// 64*T1: Timers B, F, H, J, L and M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// The timers of RFC 3261 §17 (Table 4) and RFC 6026.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmission.
    A,
    /// INVITE transaction timeout; also the §9.1 wait for a final response after CANCEL.
    B,
    /// Proxy INVITE timeout (§16.6).
    C,
    /// Wait for response retransmissions (client INVITE).
    D,
    /// Non-INVITE request retransmission.
    E,
    /// Non-INVITE transaction timeout.
    F,
    /// INVITE response retransmission.
    G,
    /// Wait for ACK receipt.
    H,
    /// Wait for ACK retransmissions.
    I,
    /// Wait for non-INVITE request retransmissions.
    J,
    /// Wait for non-INVITE response retransmissions.
    K,
    /// Wait for INVITE retransmissions after a 2xx (RFC 6026); with [`Config::retransmit_2xx`]
    /// also the end of 2xx retransmission (§13.3.1.4).
    L,
    /// Wait for 2xx retransmissions (RFC 6026).
    M,
}

/// The RFC state of a live transaction (terminated transactions are gone from the layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

/// What the layer tells the TU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxEvent {
    /// A request that made a new server transaction: answer it with
    /// [`TransactionLayer::respond`]. Retransmissions and ACKs for non-2xx never show up here.
    Request { key: TxKey, request: Request, from: Peer },
    /// A CANCEL in its own server transaction `key` (§9.2). `invite` is the INVITE server
    /// transaction it targets, in whatever state: the TU answers the CANCEL with 200 and, when
    /// the INVITE has no final response yet, the INVITE with 487. With `invite == None` the
    /// CANCEL gets 481.
    Cancel { key: TxKey, request: Request, from: Peer, invite: Option<TxKey> },
    /// A request without To tag whose From tag, Call-ID and CSeq match the ongoing server
    /// transaction `original`, but that came by another path (§8.2.2.2): a UAS answers
    /// `482 Loop Detected` on `key`.
    Merged { key: TxKey, request: Request, from: Peer, original: TxKey },
    /// An ACK for a 2xx response: a request of its own, for the dialog (§13.3.1.4, §17.2.3,
    /// RFC 6026). Repeated ACKs for a 2xx the layer still tracks are absorbed.
    Ack { request: Request, from: Peer },
    /// A response for client transaction `key`: provisional ones and the first final one
    /// (retransmitted finals are absorbed), or a 2xx to INVITE from another fork.
    Response { key: TxKey, response: Response, from: Peer },
    /// Timer B or F (or C before any provisional response) fired: the peer never answered.
    /// `response` is a locally made 408 for the TU to treat as received (§8.1.3.1).
    Timeout { key: TxKey, timer: Timer, response: Response },
    /// A server INVITE transaction gave up waiting for the ACK: Timer H after a non-2xx
    /// (§17.2.1), or Timer L after a 2xx it retransmitted (§13.3.1.4: the TU should send BYE).
    NoAck { key: TxKey, timer: Timer },
    /// Timer C fired after a provisional response: the layer sent a CANCEL (transaction
    /// `cancel`), as §16.8 asks of a proxy.
    Expired { key: TxKey, cancel: TxKey },
    /// The driver reported a transport failure (§17.1.4, §17.2.4); the TU treats it as a 503.
    TransportError { key: TxKey },
    /// The transaction is gone.
    Terminated { key: TxKey },
}

/// A TU call the layer refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no such transaction")]
    UnknownTransaction,
    #[error("not a server transaction")]
    NotServer,
    #[error("not an INVITE client transaction")]
    NotInviteClient,
    #[error("the transaction already has a final response")]
    AlreadyFinal,
    #[error("status code outside 100-699")]
    BadStatus,
    #[error("the request has no Via with a branch")]
    NoBranch,
    #[error("the request lacks {0}")]
    Missing(&'static str),
    #[error("ACK is not sent through a transaction")]
    Ack,
    #[error("a client transaction with this branch and method already exists")]
    DuplicateBranch,
}
