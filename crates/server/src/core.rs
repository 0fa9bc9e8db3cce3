//! The SIP core: turns received bytes into the bytes to send back.
//!
//! Sans-IO in the manner of quinn-proto and str0m: the core owns the SIP state, never touches a
//! socket and never reads the clock. The runtime feeds it with [`Core::handle_inbound`] (and
//! [`Core::handle_framing_error`]) and drains [`Core::poll_transmit`].
//!
//! Every well-formed message goes through the transaction layer (`sambung_sip::transaction`,
//! RFC 3261 §17): retransmitted requests get the last answer again, answers to INVITE are
//! retransmitted on UDP until the ACK comes (Timer G), CANCEL finds its INVITE (§9.2) and merged
//! requests are refused (§8.2.2.2). The runtime drives the timers through
//! [`Core::poll_timeout`] and [`Core::handle_timeout`]. Malformed requests are answered
//! statelessly, as the parser says.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use sambung_sip::Transport;
use sambung_sip::digest::NonceManager;
use sambung_sip::transaction::{self, Peer, TransactionLayer, Transmit, TxEvent, TxKey};
use sambung_sip::{
    FrameError, HeaderName, Host, Message, Method, ParseError, Request, RequestPolicy, Response, SipStr, Uri,
};
use tracing::{debug, trace};

mod apps;
mod calls;
mod messages;
mod mwi;

pub use apps::{App, AppEnd, AppRequest, Caller, Confirmation, MailboxCounts};
pub use calls::{CallKey, CallRecord, KeySource, Side};
pub use calls::{DND_OFF, DND_ON, FORWARD_OFF, FORWARD_ON, OWN_MAILBOX};
pub use messages::StoredMessage;

use crate::config::Config;
use crate::registrar::{self, Accounts, AuthOutcome, Authenticator, Binding, Challenger, Registrar};
use crate::transport::{ConnId, Inbound, Outbound, TransportKind};

/// The `Server` header value (RFC 3261 §20.35).
pub const SERVER: &str = concat!("Sambung/", env!("CARGO_PKG_VERSION"));

/// How long a digest nonce stays fresh, in seconds (RFC 7616 §3.3, §5.4: keep it short).
pub const NONCE_LIFETIME_SECS: u64 = 300;

/// The time of an input, passed in by the driver: monotonic for timers, Unix seconds for nonces.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub instant: Instant,
    pub unix_secs: u64,
}

/// Which hosts are this server's (RFC 3261 §16.4: "the domain(s) the element is responsible for").
#[derive(Clone, Debug, Default)]
pub struct LocalDomains {
    /// Configured domain names, lower-case.
    names: Vec<String>,
    /// Addresses the server listens on explicitly.
    ips: Vec<IpAddr>,
    /// Listening on 0.0.0.0 / [::]: without enumerating interfaces any IP literal of that
    /// family may be ours, so it is taken as ours (no relaying is ever done for it).
    any_v4: bool,
    any_v6: bool,
    /// The ports the server listens on (any transport).
    ports: Vec<u16>,
}

impl LocalDomains {
    pub fn from_config(config: &Config) -> LocalDomains {
        let mut local = LocalDomains {
            names: config.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            ..LocalDomains::default()
        };
        for addr in config.listen.all() {
            local.ports.push(addr.port());
            match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => local.any_v4 = true,
                ip if ip.is_unspecified() => local.any_v6 = true,
                ip => local.ips.push(ip),
            }
        }
        local
    }

    /// True when a URI's `host` and `port` name this server: the host is ours and the port is
    /// one we listen on (or none, the default).
    pub fn contains_address(&self, host: &Host, port: Option<u16>) -> bool {
        // A wildcard listener makes every IP possibly ours for requests that reach us, but a
        // target we are asked to call is ours only when it names us for sure.
        let ours = match host.ip() {
            Some(ip) => ip.is_loopback() || self.ips.contains(&ip),
            None => self.names.iter().any(|n| n.eq_ignore_ascii_case(host.as_str())),
        };
        ours && port.is_none_or(|p| self.ports.contains(&p))
    }

    /// True when `host` names this server: a configured domain, a listening address, the
    /// address the message arrived on, or a loopback address.
    pub fn contains(&self, host: &Host, arrived_on: IpAddr) -> bool {
        match host.ip() {
            Some(ip) => {
                ip == arrived_on
                    || ip.is_loopback()
                    || self.ips.contains(&ip)
                    || (ip.is_ipv4() && self.any_v4)
                    || (ip.is_ipv6() && self.any_v6)
            }
            None => self.names.iter().any(|n| n.eq_ignore_ascii_case(host.as_str())),
        }
    }
}

/// Header values sent with every OPTIONS answer, built once.
#[derive(Debug)]
struct Capabilities {
    allow: SipStr,
    accept: SipStr,
    supported: SipStr,
    server: SipStr,
}

/// The SIP core of one server.
#[derive(Debug)]
pub struct Core {
    policy: RequestPolicy,
    capabilities: Capabilities,
    local: LocalDomains,
    auth: Authenticator,
    accounts: Accounts,
    registrar: Registrar,
    transactions: TransactionLayer,
    calls: calls::Calls,
    messaging: messages::Messaging,
    ring_timeout: std::time::Duration,
    session: SessionTimers,
    /// The address written into Via and Contact when a socket is bound to a wildcard.
    advertise: Host,
    /// The RTP relay of the calls (none in signalling-only unit tests).
    media: Option<crate::media::MediaRelay>,
    /// `[media] address`: written into SDP, and where the relay binds.
    media_address: Option<IpAddr>,
    /// `[media] allow_plain_rtp`: legs may use RTP without SRTP.
    allow_plain_rtp: bool,
    /// `[media] codecs`: what calls may be transcoded to, in order of preference.
    codecs: Vec<sambung_media::codec::CodecKind>,
    /// The local address of each stream connection (by flow).
    stream_locals: std::collections::HashMap<u64, SocketAddr>,
    /// Changes for the store task to persist, in order.
    persist: VecDeque<Persist>,
    /// The time of the latest input, to turn Unix-second deadlines into instants.
    last_now: Option<Now>,
    /// Local UDP socket addresses seen so far; a UDP peer's `flow` is an index into it, so
    /// answers leave from the socket the request came to.
    udp_locals: Vec<SocketAddr>,
    transmit: VecDeque<Outbound>,
    /// Requests for the applications (voicemail, mailbox menu), in order.
    app_requests: VecDeque<AppRequest>,
    /// Message counts of each mailbox, for message-waiting (RFC 3842).
    mailboxes: std::collections::HashMap<i64, MailboxCounts>,
    /// Subscriptions to message-summary.
    subscriptions: mwi::Subscriptions,
    /// `[voicemail] access_number`: reaches any mailbox with its PIN.
    access_number: String,
}

impl Core {
    /// A core for `config`; `secret` keys the digest nonces (keep it across restarts).
    pub fn new(config: &Config, secret: &[u8]) -> Core {
        // Option tags of extensions the server implements or will before it answers calls;
        // GRUU (RFC 5627) is not among them yet.
        let policy = RequestPolicy {
            supported: vec!["path", "outbound", "replaces", "timer", "100rel"],
            ..RequestPolicy::default()
        };
        let capabilities = Capabilities {
            allow: SipStr::from(policy.allow_header()),
            accept: SipStr::from(policy.accept_header()),
            supported: SipStr::from(policy.supported_header()),
            server: SipStr::from_static(SERVER),
        };
        Core {
            policy,
            capabilities,
            local: LocalDomains::from_config(config),
            auth: Authenticator::new(
                config.realm().to_owned(),
                NonceManager::new(secret, NONCE_LIFETIME_SECS).with_counter_seed(rand::random()),
            )
            .with_algorithms(config.registrar.digest_algorithms.iter().filter_map(|a| a.parse().ok()).collect()),
            accounts: Accounts::default(),
            registrar: Registrar::new(registrar::RegistrarConfig {
                min_expires: config.registrar.min_expires,
                max_expires: config.registrar.max_expires,
                default_expires: config.registrar.default_expires,
            }),
            persist: VecDeque::new(),
            last_now: None,
            calls: calls::Calls::default(),
            messaging: messages::Messaging::default(),
            ring_timeout: config.calls.ring_timeout(),
            session: SessionTimers { expires: config.calls.session_expires, min_se: config.calls.min_se },
            advertise: advertised_host(config),
            media: None,
            media_address: config.media.address,
            allow_plain_rtp: config.media.allow_plain_rtp,
            codecs: config.media.codec_preferences(),
            stream_locals: std::collections::HashMap::new(),
            transactions: TransactionLayer::new(transaction::Config::default()),
            udp_locals: Vec::new(),
            transmit: VecDeque::with_capacity(64),
            app_requests: VecDeque::new(),
            mailboxes: std::collections::HashMap::new(),
            subscriptions: mwi::Subscriptions::default(),
            access_number: config.voicemail.access_number.clone(),
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Outbound> {
        self.transmit.pop_front()
    }

    /// Replaces the account table (at start, and whenever the store says accounts changed).
    pub fn set_accounts(&mut self, accounts: Accounts) {
        self.accounts = accounts;
    }

    /// Restores bindings persisted before a restart; expired ones are dropped (and unbound in
    /// the store).
    pub fn restore_bindings(&mut self, bindings: Vec<Binding>, now: Now) {
        for binding in bindings {
            self.registrar.location.upsert(binding);
        }
        self.expire_bindings(now);
    }

    /// How many calls are in progress (ringing or answered).
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }

    /// The next change for the store task to persist.
    pub fn poll_persist(&mut self) -> Option<Persist> {
        self.persist.pop_front()
    }

    /// When the core next needs [`Core::handle_timeout`]: the earliest transaction timer or
    /// binding expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self
            .registrar
            .location
            .next_expiry()
            .zip(self.last_now)
            .map(|(at, now)| now.instant + std::time::Duration::from_secs(at.saturating_sub(now.unix_secs)));
        [self.transactions.poll_timeout(), expiry, self.calls.next_deadline(), self.subscriptions.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires the timers that are due (retransmissions, Timers B to K, binding expiry).
    pub fn handle_timeout(&mut self, now: Now) {
        self.last_now = Some(now);
        self.transactions.handle_timeout(now.instant);
        self.expire_bindings(now);
        self.expire_rings(now);
        self.expire_subscriptions(now);
        self.run_session_timers(now);
        self.run_reliable_provisionals(now);
        self.drain(now, None);
    }

    fn expire_bindings(&mut self, now: Now) {
        for gone in self.registrar.location.expire(now.unix_secs) {
            debug!(aor = gone.aor, contact = %gone.uri, "binding expired");
            self.persist.push_back(Persist::Unbind { account_id: gone.account_id, contact: gone.uri.to_string() });
        }
    }

    /// Handles one received message (RFC 3261 §18.2.1, §8.2).
    pub fn handle_inbound(&mut self, now: Now, inbound: Inbound) {
        self.last_now = Some(now);
        let message = match Message::parse(inbound.bytes.clone()) {
            Ok(message) => message,
            Err(error) => {
                self.malformed(&inbound, &error);
                return;
            }
        };
        let peer = self.peer_of(&inbound);
        // RFC 3261 §18.1.2: a response that matches no client transaction is dropped there.
        if let Some(event) = self.transactions.handle_message(message, peer, now.instant) {
            self.on_event(now, event, Some(inbound.local.ip()));
        }
        self.drain(now, Some(inbound.local.ip()));
    }

    /// What a transaction event asks of the core, the transaction user (RFC 3261 §17, §8.2).
    fn on_event(&mut self, now: Now, event: TxEvent, arrived_on: Option<IpAddr>) {
        match event {
            TxEvent::Request { key, request, from } => {
                let in_dialog = request.to().is_some_and(|to| to.tag().is_some());
                let arrived_on = arrived_on.unwrap_or(Ipv4Addr::UNSPECIFIED.into());
                if !in_dialog && self.policy.check(&request).is_ok() && self.is_local(&request, arrived_on) {
                    match request.method {
                        Method::Invite => return self.on_invite(now, key, request, from),
                        Method::Message => return self.on_message(now, key, request),
                        Method::Subscribe => return self.on_subscribe(now, key, request),
                        _ => {}
                    }
                }
                let request = if in_dialog {
                    match self.on_call_request(now, key, request) {
                        Some(request) if self.on_subscription_request(now, key, &request) => return,
                        Some(request) => request,
                        None => return,
                    }
                } else {
                    request
                };
                if let Some(response) = self.answer(now, &request, &from, arrived_on) {
                    debug!(
                        method = request.method.as_str(),
                        status = response.status,
                        remote = %from.addr,
                        transport = %from.transport,
                        "answered"
                    );
                    self.respond(key, response, now);
                }
            }
            TxEvent::Cancel { key, request, invite, .. } => {
                // §9.2: 200 to a CANCEL that matches, then 487 to the INVITE if it is still
                // unanswered; 481 when nothing matches.
                let Some(invite) = invite else {
                    return self.respond(key, request.reply(481, "Call/Transaction Does Not Exist"), now);
                };
                self.respond(key, request.reply(200, "OK"), now);
                if self.on_call_cancel(now, invite) {
                    return;
                }
                let unanswered = self.transactions.state(invite).is_some_and(|s| s == transaction::TxState::Proceeding);
                if let Some(original) = self.transactions.request(invite).filter(|_| unanswered) {
                    let terminated = original.reply(487, "Request Terminated");
                    self.respond(invite, terminated, now);
                }
            }
            TxEvent::Merged { key, request, .. } => {
                // §8.2.2.2: the same request reached us twice by different paths.
                self.respond(key, request.reply(482, "Loop Detected"), now);
            }
            TxEvent::Ack { request, from } => {
                trace!(call_id = request.call_id(), remote = %from.addr, "ACK for a 2xx");
                self.on_call_ack(&request);
            }
            TxEvent::Response { key, response, .. } | TxEvent::Timeout { key, response, .. } => {
                if !self.on_message_response(now, key, response.status)
                    && !self.on_notify_response(key, response.status)
                    && !self.on_call_response(now, key, response)
                {
                    trace!(?key, "response for no call");
                }
            }
            TxEvent::NoAck { key, .. } => self.on_no_ack(now, key),
            TxEvent::TransportError { key } => {
                if !self.on_message_response(now, key, 503)
                    && !self.on_notify_response(key, 503)
                    && let Some(request) = self.transactions.request(key).cloned()
                {
                    let failed = request.reply(503, "Service Unavailable");
                    self.on_call_response(now, key, failed);
                }
            }
            other => trace!(?other, "transaction event"),
        }
    }

    /// Our address toward `peer`, for Via and Contact: the socket's own address, or the
    /// advertised one when the socket is bound to a wildcard.
    fn local_address(&self, peer: &Peer) -> (Host, u16) {
        let local = match peer.transport {
            Transport::Udp => peer.flow.and_then(|i| self.udp_locals.get(i as usize).copied()),
            _ => peer.flow.and_then(|f| self.stream_locals.get(&f).copied()),
        };
        match local {
            Some(addr) if !addr.ip().is_unspecified() => (Host::from(addr.ip()), addr.port()),
            Some(addr) => (self.advertise.clone(), addr.port()),
            None => (self.advertise.clone(), peer.transport.default_port()),
        }
    }

    /// Sends `response` through its server transaction.
    fn respond(&mut self, key: TxKey, mut response: Response, now: Now) {
        insert(&mut response, HeaderName::Server, self.capabilities.server.clone());
        if let Err(error) = self.transactions.respond(key, response, now.instant) {
            debug!(%error, "response not sent");
        }
    }

    /// Moves the transaction layer's output into the core's queues.
    fn drain(&mut self, now: Now, arrived_on: Option<IpAddr>) {
        while let Some(event) = self.transactions.poll_event() {
            self.on_event(now, event, arrived_on);
        }
        while let Some(transmit) = self.transactions.poll_transmit() {
            let out = self.outbound_of(transmit);
            self.transmit.push_back(out);
        }
    }

    /// The transaction layer's view of where a message came from.
    fn peer_of(&mut self, inbound: &Inbound) -> Peer {
        let transport = match inbound.transport {
            TransportKind::Udp => Transport::Udp,
            TransportKind::Tcp => Transport::Tcp,
            TransportKind::Tls => Transport::Tls,
            TransportKind::Ws => Transport::Ws,
            TransportKind::Wss => Transport::Wss,
        };
        let flow = match inbound.conn {
            Some(conn) => {
                self.stream_locals.entry(conn.raw()).or_insert(inbound.local);
                conn.raw()
            }
            None => match self.udp_locals.iter().position(|a| *a == inbound.local) {
                Some(i) => i as u64,
                None => {
                    self.udp_locals.push(inbound.local);
                    (self.udp_locals.len() - 1) as u64
                }
            },
        };
        Peer { transport, addr: inbound.remote, flow: Some(flow) }
    }

    fn outbound_of(&self, transmit: Transmit) -> Outbound {
        let Peer { transport, addr, flow } = transmit.to;
        let (transport, local, conn) = match transport {
            Transport::Tcp => (TransportKind::Tcp, None, flow.map(ConnId::from_raw)),
            Transport::Tls => (TransportKind::Tls, None, flow.map(ConnId::from_raw)),
            Transport::Ws => (TransportKind::Ws, None, flow.map(ConnId::from_raw)),
            Transport::Wss => (TransportKind::Wss, None, flow.map(ConnId::from_raw)),
            _ => (TransportKind::Udp, flow.and_then(|i| self.udp_locals.get(i as usize).copied()), None),
        };
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        Outbound {
            transport,
            local: local.unwrap_or(unspecified),
            remote: addr,
            conn,
            bytes: transmit.bytes,
            close: false,
        }
    }

    /// Answers a stream that could not be framed (RFC 3261 §18.3, RFC 4475 §3.1.2.3, §3.3.9),
    /// then has its connection closed.
    pub fn handle_framing_error(&mut self, inbound: Inbound, error: FrameError) {
        let reason = match error {
            FrameError::TooLarge => "Message Too Large",
            FrameError::BadContentLength => "Bad Content-Length",
            FrameError::MultipleContentLength => "Multiple Content-Length Headers",
        };
        let response = match Message::parse(inbound.bytes.clone()) {
            Ok(Message::Request(request)) => Some(request.reply(error.status(), reason)),
            Ok(Message::Response(_)) => None,
            Err(e) => e.error_response().map(|mut r| {
                r.status = error.status();
                r.reason = SipStr::from_static(reason);
                r
            }),
        };
        debug!(remote = %inbound.remote, %error, answered = response.is_some(), "closing unframeable stream");
        match response {
            Some(response) => self.send(&inbound, response, true),
            None => self.transmit.push_back(outbound(&inbound, Bytes::new(), true)),
        }
    }

    /// RFC 3261 §8.2, §16.3 item 3, §12.2.2: the answers of this first core, which has no
    /// accounts, registrar or calls yet.
    fn answer(&mut self, now: Now, request: &Request, from: &Peer, arrived_on: IpAddr) -> Option<Response> {
        if request.method == Method::Ack {
            // §17.2.1: an ACK is never answered.
            return None;
        }
        if let Err(rejection) = self.policy.check(request) {
            return Some(rejection.response(request));
        }
        let local = self.is_local(request, arrived_on);
        if !local && request.max_forwards() == Some(0) {
            return Some(request.reply(483, "Too Many Hops"));
        }
        let response = match request.method {
            Method::Options if local => self.options(request),
            Method::Register if local => self.register(now, request, from),
            _ if !local => request.reply(403, "Relaying Denied"),
            // §12.2.2: a request inside a dialog we do not have.
            _ if request.to().is_some_and(|to| to.tag().is_some()) => {
                request.reply(481, "Call/Transaction Does Not Exist")
            }
            _ => request.reply(404, "Not Found"),
        };
        Some(response)
    }

    /// RFC 3261 §11.2: what this server supports.
    fn options(&self, request: &Request) -> Response {
        let mut response = request.reply(200, "OK");
        let caps = &self.capabilities;
        insert(&mut response, HeaderName::Allow, caps.allow.clone());
        insert(&mut response, HeaderName::Accept, caps.accept.clone());
        insert(&mut response, HeaderName::Supported, caps.supported.clone());
        response
    }

    /// True when the Request-URI names this server's domain (tel: and the other accepted
    /// schemes are routed here, never relayed).
    fn is_local(&self, request: &Request, arrived_on: IpAddr) -> bool {
        match &request.uri {
            Uri::Sip(uri) => self.local.contains(&uri.host, arrived_on),
            Uri::Other { .. } => true,
        }
    }

    /// RFC 3261 §10.3: authenticate, then bind.
    fn register(&mut self, now: Now, request: &Request, from: &Peer) -> Response {
        let account = match self.auth.authenticate(request, &self.accounts, Challenger::Registrar, now.unix_secs) {
            AuthOutcome::Authenticated(account) => account,
            AuthOutcome::Challenge(challenge) => return challenge,
        };
        let (response, changes) = self.registrar.register(request, &account, &self.accounts, from, now.unix_secs);
        for binding in changes.removed {
            self.persist
                .push_back(Persist::Unbind { account_id: binding.account_id, contact: binding.uri.to_string() });
        }
        let refreshed: Vec<String> = changes.upserted.iter().map(Binding::key).collect();
        for binding in changes.upserted {
            self.persist.push_back(Persist::Bind(binding));
        }
        // RFC 3428 store and forward: a device that comes online gets what is waiting.
        self.catch_up(now, account.id, changes.new_devices, refreshed);
        response
    }

    /// A malformed message: answer a request as the parser says, drop anything else.
    fn malformed(&mut self, inbound: &Inbound, error: &ParseError) {
        match error.error_response() {
            Some(response) => {
                debug!(remote = %inbound.remote, transport = %inbound.transport, %error, status = response.status, "malformed request");
                self.send(inbound, response, false);
            }
            None => {
                debug!(remote = %inbound.remote, transport = %inbound.transport, %error, "malformed message dropped")
            }
        }
    }

    /// Queues `response` back the way its request came (RFC 3261 §18.2.2, RFC 3581 §4).
    fn send(&mut self, inbound: &Inbound, mut response: Response, close: bool) {
        insert(&mut response, HeaderName::Server, self.capabilities.server.clone());
        let bytes = Message::Response(response).to_bytes();
        self.transmit.push_back(outbound(inbound, bytes, close));
    }
}

/// The host written into Via and Contact when a socket listens on a wildcard address: the
/// configured media address, else the first specific listening address, else the first domain.
fn advertised_host(config: &Config) -> Host {
    if let Some(ip) = config.media.address {
        return Host::from(ip);
    }
    if let Some(addr) = config.listen.all().find(|a| !a.ip().is_unspecified()) {
        return Host::from(addr.ip());
    }
    match config.domains.first() {
        Some(domain) => Host::from(domain.as_str()),
        None => Host::from(IpAddr::from(Ipv4Addr::LOCALHOST)),
    }
}

/// Session timer settings (RFC 4028), seconds.
#[derive(Clone, Copy, Debug)]
struct SessionTimers {
    expires: u32,
    min_se: u32,
}

/// A change the store task makes durable.
#[derive(Clone, Debug, PartialEq)]
pub enum Persist {
    /// A binding added or refreshed.
    Bind(Binding),
    /// A binding removed (by `Contact: *`, expires=0, expiry or a new contact of the same
    /// device): its contact URI.
    Unbind { account_id: i64, contact: String },
    /// A call ended: its record.
    Cdr(CallRecord),
    /// A text message to keep; the store answers with its id under `ticket`.
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
    /// online: the store answers with them.
    FetchPending { account_id: i64, device: String },
    /// A feature code changed an account's call settings.
    Routing { account_id: i64, change: RoutingChange },
}

/// A change of call settings made from a phone (feature codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutingChange {
    /// Forward every call to this local username, or stop.
    ForwardAlways(Option<String>),
    /// Do-not-disturb on or off.
    Dnd(bool),
}

fn outbound(inbound: &Inbound, bytes: Bytes, close: bool) -> Outbound {
    Outbound {
        transport: inbound.transport,
        local: inbound.local,
        remote: inbound.remote,
        conn: inbound.conn,
        bytes,
        close,
    }
}

/// The host part of a SIP URI with its port (`example.com`, `127.0.0.1:5060`), for the
/// addresses of record the server writes.
pub(crate) fn host_of(uri: &Uri) -> String {
    match uri {
        Uri::Sip(uri) => match uri.port {
            Some(port) => format!("{}:{port}", uri.host.as_str()),
            None => uri.host.as_str().to_owned(),
        },
        Uri::Other { .. } => "localhost".to_owned(),
    }
}

/// Adds a header line before the closing Content-Length that `reply` puts last.
pub(crate) fn insert(response: &mut Response, name: HeaderName, value: SipStr) {
    let lines = &mut response.headers.0;
    let at = match lines.last() {
        Some(last) if last.name == HeaderName::ContentLength => lines.len() - 1,
        _ => lines.len(),
    };
    lines.insert(at, sambung_sip::Header { name, value });
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_calls;
#[cfg(test)]
mod tests_routing;
