//! The one door in ([`Input`]) and the one door out ([`Output`]) of call control.
//!
//! The driver feeds every input with the time it happened ([`Now`]) through
//! [`crate::Pbx::handle_input`], then drains [`crate::Pbx::poll_output`] until it returns
//! [`Output::Timeout`], the instant at which it must call again with [`Input::Timeout`] if
//! nothing else arrived.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use sambung_sip::{FrameError, Transport};

use crate::apps::{AppEnd, AppRequest, MailboxCounts};
use crate::events::Event;
use crate::media::{MediaCommand, MediaEvent};
use crate::messages::StoredMessage;
use crate::registrar::{Accounts, Binding};

/// The time of an input, read by the driver: monotonic for timers, Unix seconds for nonces,
/// expiries and records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub unix_secs: u64,
}

/// One received SIP message (or a stream's remainder that could not be framed), as bytes.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub transport: Transport,
    /// The address of our socket (for wildcard UDP sockets, the wildcard address).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The stream connection it came on (the driver's connection number); `None` for UDP.
    pub conn: Option<u64>,
    /// The account the connection is signed in as, when the driver authenticated it (the web
    /// app's SIP WebSocket, opened with the app's session): requests on it need no digest.
    pub account: Option<i64>,
    pub bytes: Bytes,
}

/// Bytes to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
    /// The UDP socket to send from, when it matters (answers leave from the socket the request
    /// came to); `None` for any socket of the address family.
    pub local: Option<SocketAddr>,
    pub remote: SocketAddr,
    /// The stream connection to send on, when known; otherwise one to `remote` is looked up.
    pub conn: Option<u64>,
    pub bytes: Bytes,
    /// Close the connection once the bytes are written (after an unrecoverable framing error).
    pub close: bool,
}

/// What happens to call control.
#[derive(Debug)]
pub enum Input {
    /// A SIP message arrived.
    Message(Inbound),
    /// A stream connection can no longer be framed (RFC 3261 §18.3): the inbound's bytes hold
    /// what was buffered. It is answered if it can be, and the connection closed.
    FramingError(Inbound, FrameError),
    /// A stream connection closed: what was kept about it (its local address) goes.
    Disconnected { conn: u64 },
    /// No connection could be made to `remote` over `transport` (refused, timed out, a TLS
    /// certificate that does not match): our requests waiting for it fail at once, as a
    /// transport error (RFC 3261 §17.1.4), so that the next address is tried.
    Unreachable { transport: Transport, remote: SocketAddr },
    /// Nothing arrived: the timers due by now fire.
    Timeout,
    /// The account table: at start, and whenever the store says the accounts changed.
    Accounts(Accounts),
    /// A lookup asked for by [`Output::Resolve`] finished: the addresses in the order to try
    /// them (RFC 3263), or why there are none.
    Resolved { lookup: Lookup, result: Result<Vec<sambung_dns::Target>, String> },
    /// Bindings persisted before a restart; the expired ones are dropped (and unbound).
    Bindings(Vec<Binding>),
    /// Message counts of mailboxes: every mailbox at start, one when it changes. Subscribed
    /// devices are told (RFC 3842).
    Mailboxes(Vec<(i64, MailboxCounts)>),
    /// Presence of accounts (devices, calls, do-not-disturb): every known one at start, then
    /// each change. Devices subscribed to `presence` or `dialog` of them are told.
    Presence(Vec<(i64, crate::presence::Presence)>),
    /// The store's answer to a [`StoreWrite`] that asked for one.
    Store(StoreReply),
    /// An account's device is signed out (from the web app): its binding goes, as if it had
    /// unregistered. `device` is the binding's key (its instance and reg-id, else its contact).
    Unregister { account_id: i64, device: String },
    /// An operator ends a call in progress (through the API): the call's shard takes it.
    EndCall { call: u64 },
    /// An operator sends the party on `side` of call `call` to `target` (a blind transfer by
    /// REFER, through the API): the call's shard takes it.
    TransferCall { call: u64, side: crate::Side, target: String },
    /// Click-to-call (through the API): every registered device of account `account_id` rings;
    /// the one that answers is asked to call `target` (a user, extension or number of this
    /// service, or a SIP URI). `id` names the attempt in [`crate::Event::OriginateEnded`] and
    /// picks its shard as a call's number does ([`crate::Pbx::shard_of_call`]).
    Originate { id: u64, account_id: i64, target: String },
    /// A text message stored by someone else than call control (the web app, for its signed-in
    /// sender): delivered to the recipient's devices like one that came by SIP.
    Deliver { message: StoredMessage, from_account: i64 },
    /// The media runtime's answer to a [`MediaCommand`].
    Media(MediaEvent),
    /// The relay wants a keyframe of the phone on `side` of call `call`, stream `stream`,
    /// which takes no RTCP keyframe requests: it is asked by SIP INFO (RFC 5168).
    KeyframeWanted { call: u64, side: crate::Side, stream: usize },
    /// An application is done with its call.
    AppEnded { call: u64, end: AppEnd },
    /// An application asks that its caller be connected to `target` (a username, extension,
    /// group, number or SIP URI of [`crate::Target::parse`], or `voicemail:USER`) while it goes
    /// on playing; see [`AppRequest::ConnectFailed`].
    AppConnect { call: u64, target: String },
    /// The application of call `partner` picks up call `call`, which rings: if it still does,
    /// its caller is answered with [`crate::App::Bridge`] and bridged with `partner`.
    PickUp { call: u64, partner: u64 },
    /// Record call `call` from now on (an operator asks, through the API).
    RecordCall { call: u64 },
    /// The bans (address, until in Unix seconds) and account lockouts (username, until) kept
    /// in the store: at start, and when an operator changed them. They replace those known.
    Guard { bans: Vec<(std::net::IpAddr, Option<u64>)>, lockouts: Vec<(String, u64)> },
}

/// What call control asks of the outside, in order.
#[derive(Debug)]
pub enum Output {
    /// Send a SIP message.
    Transmit(Transmit),
    /// A command for the media runtime.
    Media(MediaCommand),
    /// A request for the applications (voicemail, mailbox menu, confirmations).
    App(AppRequest),
    /// A change for the store to make durable, in order.
    Store(StoreWrite),
    /// Look up where a SIP server is (RFC 3263); the answer comes as [`Input::Resolved`], to
    /// the shard that asked ([`Lookup::shard`]).
    Resolve { lookup: Lookup, query: sambung_dns::Query },
    /// Something happened (see [`Event`]): for call records, logs, the API, the guard.
    Event(Event),
    /// Nothing more for now; call again with [`Input::Timeout`] at this instant (`None`: no
    /// timer is running) unless another input comes first.
    Timeout(Option<Instant>),
}

/// Who waits for a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A call's next hop (an outside URI, or a trunk's server for a call).
    Call(u64),
    /// A trunk's server, for its registration (the first shard's).
    Trunk(usize),
}

impl Lookup {
    /// The shard of `count` that asked.
    pub fn shard(self, count: usize) -> usize {
        match self {
            Lookup::Call(call) => crate::Pbx::shard_of_call(call, count),
            Lookup::Trunk(_) => 0,
        }
    }
}

/// A change the store makes durable.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreWrite {
    /// A binding added, or refreshed with something besides its expiry changed: durable at
    /// once.
    Bind(Box<Binding>),
    /// A binding refreshed with only its expiry (and the REGISTER's Call-ID and CSeq)
    /// changed: may be made durable within a bounded delay, coalesced with the device's later
    /// refreshes, and must be by a clean shutdown. A later `Bind` or `Unbind` of the same
    /// binding supersedes it.
    Refresh(Box<Binding>),
    /// A binding removed (by `Contact: *`, expires=0, expiry or a new contact of the same
    /// device): its contact URI.
    Unbind { account_id: i64, contact: String },
    /// A text message to keep; the store answers [`StoreReply::MessageStored`] under `ticket`.
    StoreMessage {
        ticket: u64,
        from_uri: String,
        from_account: Option<i64>,
        to_account: i64,
        content_type: String,
        body: Bytes,
        created_at: u64,
    },
    /// A device took a message.
    Delivered { message_id: i64, device: String, at: u64 },
    /// The messages no device of the account has had yet, for `device`, which just came
    /// online: the store answers [`StoreReply::Undelivered`].
    FetchPending { account_id: i64, device: String },
    /// A feature code changed an account's call settings.
    Routing { account_id: i64, change: RoutingChange },
    /// An account is locked until `until` (Unix seconds).
    Lockout { username: String, until: u64 },
    /// A source is banned until `until` (Unix seconds; `None`: until lifted by hand).
    Ban { source: std::net::IpAddr, until: Option<u64>, reason: String },
}

/// What the store answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreReply {
    /// A text message was stored under `id` (`None`: it could not be).
    MessageStored { ticket: u64, id: Option<i64> },
    /// Messages a device has not had yet.
    Undelivered { account_id: i64, device: String, messages: Vec<StoredMessage> },
}

/// A change of call settings made from a phone (feature codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutingChange {
    /// Forward every call to this local username, or stop.
    ForwardAlways(Option<String>),
    /// Do-not-disturb on or off.
    Dnd(bool),
}

/// The outputs waiting to be polled, in order.
#[derive(Debug, Default)]
pub(crate) struct Outputs(std::collections::VecDeque<Output>);

impl Outputs {
    pub(crate) fn media(&mut self, command: MediaCommand) {
        self.0.push_back(Output::Media(command));
    }

    pub(crate) fn app(&mut self, request: AppRequest) {
        self.0.push_back(Output::App(request));
    }

    pub(crate) fn store(&mut self, write: StoreWrite) {
        self.0.push_back(Output::Store(write));
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.0.push_back(Output::Event(event));
    }

    pub(crate) fn resolve(&mut self, lookup: Lookup, query: sambung_dns::Query) {
        self.0.push_back(Output::Resolve { lookup, query });
    }

    pub(crate) fn transmit(&mut self, transmit: Transmit) {
        self.0.push_back(Output::Transmit(transmit));
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        self.0.pop_front()
    }
}
