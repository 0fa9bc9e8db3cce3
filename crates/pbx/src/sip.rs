//! The SIP side of call control, as every feature sees it: the transaction layer (RFC 3261
//! §17), our Via and Contact, and the tables that route what comes back to its owner.
//!
//! A feature that sends a request names its [`Owner`]; the response comes back to that owner
//! by table, never offered to each feature in turn. A feature that creates a dialog registers
//! it in [`Sip::dialogs`]; requests inside it reach the owner the same way.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use sambung_sip::transaction::{self, Peer, TransactionLayer, TxError, TxKey};
use sambung_sip::{Header, HeaderName, Host, Request, RequestPolicy, Response, SipStr, Transport, Via};
use tracing::debug;

use crate::calls::{CallId, Purpose, Side};
use crate::config::{PbxConfig, advertised_host};
use crate::io::{Inbound, Outputs, Transmit};
use crate::random::Random;

/// The `Server` and `User-Agent` value (RFC 3261 §20.35).
pub const SERVER: &str = concat!("Sambung/", env!("CARGO_PKG_VERSION"));

/// Who a client transaction of ours belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A call, for this purpose.
    Call(CallId, Purpose),
    /// A MESSAGE delivering a stored text message.
    Message,
    /// A NOTIFY of a message-summary subscription.
    Notify,
    /// A click-to-call attempt, for this purpose.
    Originate(u64, crate::originate::Purpose),
    /// The registration with trunk `n` (its index in the configuration).
    Trunk(usize),
}

/// A dialog's key within this server: its Call-ID and our tag.
pub(crate) type DialogKey = (SipStr, SipStr);

/// Who a dialog belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DialogOwner {
    /// One leg of a call.
    Call(CallId, Side),
    /// A message-summary subscription.
    Subscription,
    /// The answering device's leg of a click-to-call attempt.
    Originate(u64),
}

/// Header values sent with every OPTIONS answer, built once.
#[derive(Debug)]
pub(crate) struct Capabilities {
    pub allow: SipStr,
    pub accept: SipStr,
    pub supported: SipStr,
    pub server: SipStr,
}

/// The transaction layer and what goes with it. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Sip {
    pub transactions: TransactionLayer,
    pub policy: RequestPolicy,
    pub capabilities: Capabilities,
    /// The address written into Via and Contact when a socket is bound to a wildcard.
    advertise: Host,
    /// Local UDP socket addresses seen so far; a UDP peer's `flow` is an index into it, so
    /// answers leave from the socket the request came to.
    udp_locals: Vec<SocketAddr>,
    /// The local address of each stream connection (by flow).
    stream_locals: HashMap<u64, SocketAddr>,
    /// Stream flows signed in as an account by the driver (the web app's SIP WebSocket).
    signed_in: HashMap<u64, i64>,
    /// Our client transactions, by owner.
    owners: HashMap<TxKey, Owner>,
    /// Dialogs we take part in, by owner.
    pub dialogs: HashMap<DialogKey, DialogOwner>,
    /// The client transactions and dialogs of each call, so that forgetting a call costs what
    /// the call had, not a walk over every call's.
    of_call: HashMap<CallId, (Vec<TxKey>, Vec<DialogKey>)>,
}

impl Sip {
    pub(crate) fn new(config: &PbxConfig) -> Sip {
        // Option tags of extensions the server implements; GRUU (RFC 5627) is not among them.
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
        Sip {
            transactions: TransactionLayer::new(transaction::Config::default()),
            policy,
            capabilities,
            advertise: advertised_host(config),
            // Every shard numbers the listening addresses alike, so that a flow recorded by one
            // shard (a registration's) names the same socket in another (a call to it): a shard
            // that had received nothing on UDP wrote the default port 5060 in its Contact.
            udp_locals: config.listen.iter().fold(Vec::new(), |mut locals, addr| {
                if !locals.contains(addr) {
                    locals.push(*addr);
                }
                locals
            }),
            stream_locals: HashMap::new(),
            signed_in: HashMap::new(),
            owners: HashMap::new(),
            dialogs: HashMap::new(),
            of_call: HashMap::new(),
        }
    }

    /// The transaction layer's view of where a message came from.
    pub(crate) fn peer_of(&mut self, inbound: &Inbound) -> Peer {
        let flow = match inbound.conn {
            Some(conn) => {
                self.stream_locals.entry(conn).or_insert(inbound.local);
                if let Some(account) = inbound.account {
                    self.signed_in.insert(conn, account);
                }
                conn
            }
            None => match self.udp_locals.iter().position(|a| *a == inbound.local) {
                Some(i) => i as u64,
                None => {
                    self.udp_locals.push(inbound.local);
                    (self.udp_locals.len() - 1) as u64
                }
            },
        };
        Peer { transport: inbound.transport.clone(), addr: inbound.remote, flow: Some(flow) }
    }

    /// A stream connection closed: its flow is forgotten.
    pub(crate) fn disconnected(&mut self, conn: u64) {
        self.stream_locals.remove(&conn);
        self.signed_in.remove(&conn);
    }

    /// The account stream connection `conn` is signed in as, if it is one of the web app's.
    pub(crate) fn signed_in_account(&self, conn: u64) -> Option<i64> {
        self.signed_in.get(&conn).copied()
    }

    /// The account a stream flow is signed in as (the web app's SIP WebSocket).
    pub(crate) fn signed_in(&self, peer: &Peer) -> Option<i64> {
        if !matches!(peer.transport, Transport::Ws | Transport::Wss) {
            return None;
        }
        self.signed_in.get(&peer.flow?).copied()
    }

    /// What the transaction layer wants sent, as the driver sends it.
    pub(crate) fn drain_transmits(&mut self, out: &mut Outputs) {
        while let Some(transmit) = self.transactions.poll_transmit() {
            let Peer { transport, addr, flow } = transmit.to;
            let (local, conn) = match transport {
                Transport::Udp => (flow.and_then(|i| self.udp_locals.get(i as usize).copied()), None),
                _ => (None, flow),
            };
            out.transmit(Transmit { transport, local, remote: addr, conn, bytes: transmit.bytes, close: false });
        }
    }

    /// Our address toward `peer`, for Via and Contact: the socket's own address, or the
    /// advertised one when the socket is bound to a wildcard.
    pub(crate) fn local_address(&self, peer: &Peer) -> (Host, u16) {
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

    /// The address written into SDP for media toward `peer` when no media address is set: our
    /// signalling address toward it.
    pub(crate) fn media_ip(&self, peer: &Peer) -> std::net::IpAddr {
        self.local_address(peer).0.ip().unwrap_or(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Our Contact toward `peer`.
    pub(crate) fn contact_for(&self, peer: &Peer) -> SipStr {
        self.contact_as(peer, "sambung")
    }

    /// Our Contact toward `peer` with `user` (escaped) as its user part: a carrier's calls to
    /// a registration's Contact name the trunk's account.
    pub(crate) fn contact_as(&self, peer: &Peer, user: &str) -> SipStr {
        let (host, port) = self.local_address(peer);
        let transport = match peer.transport {
            Transport::Udp => String::new(),
            ref t => format!(";transport={}", t.as_str().to_ascii_lowercase()),
        };
        SipStr::from(format!("<sip:{user}@{host}:{port}{transport}>"))
    }

    /// Our Via on a request we send to `peer` (RFC 3261 §8.1.1.7), with `rport` (RFC 3581).
    pub(crate) fn push_our_via(&self, request: &mut Request, peer: &Peer, random: &mut Random) {
        let (host, port) = self.local_address(peer);
        let mut via = Via::new(peer.transport.clone(), host, Some(port), &transaction::new_branch(&random.branch()));
        via.params.set("rport", None);
        transaction::push_via(request, via);
    }

    /// Sends `response` through its server transaction, with our Server header.
    pub(crate) fn respond(&mut self, key: TxKey, mut response: Response, now: Instant) {
        insert(&mut response, HeaderName::Server, self.capabilities.server.clone());
        if let Err(error) = self.transactions.respond(key, response, now) {
            debug!(%error, "response not sent");
        }
    }

    /// Sends `request` to `peer` in a new client transaction owned by `owner` (our Via is
    /// added here).
    pub(crate) fn send_request(
        &mut self,
        mut request: Request,
        peer: Peer,
        owner: Owner,
        random: &mut Random,
        now: Instant,
    ) -> Result<TxKey, TxError> {
        self.push_our_via(&mut request, &peer, random);
        let key = self.transactions.send_request(request, peer, now)?;
        if let Owner::Call(id, _) = owner {
            self.of_call.entry(id).or_default().0.push(key);
        }
        self.owners.insert(key, owner);
        Ok(key)
    }

    /// Records a dialog we take part in.
    pub(crate) fn add_dialog(&mut self, key: DialogKey, owner: DialogOwner) {
        if let DialogOwner::Call(id, _) = owner {
            self.of_call.entry(id).or_default().1.push(key.clone());
        }
        self.dialogs.insert(key, owner);
    }

    /// Forgets a dialog we no longer take part in (its requests are answered 481).
    pub(crate) fn remove_dialog(&mut self, key: &DialogKey) {
        self.dialogs.remove(key);
    }

    /// Sends the ACK of a 2xx to our INVITE `key` (RFC 3261 §13.2.2.4; our Via is added here).
    pub(crate) fn send_ack(&mut self, key: TxKey, mut ack: Request, peer: Peer, random: &mut Random) {
        self.push_our_via(&mut ack, &peer, random);
        self.transactions.send_ack(key, ack, peer);
    }

    /// Cancels our INVITE `key` (RFC 3261 §9.1); nothing happens when it is already answered.
    pub(crate) fn cancel(&mut self, key: TxKey, now: Instant) {
        let _ = self.transactions.cancel(key, now);
    }

    /// The owner of client transaction `key`; forgotten once a final response came.
    pub(crate) fn owner(&mut self, key: TxKey, status: u16) -> Option<Owner> {
        if status >= 200 { self.owners.remove(&key) } else { self.owners.get(&key).copied() }
    }

    /// Forgets the client transactions and dialogs of call `id`, which is gone; only its BYEs
    /// stay (their answers need nothing).
    pub(crate) fn forget_call(&mut self, id: CallId) {
        let Some((transactions, dialogs)) = self.of_call.remove(&id) else { return };
        for key in transactions {
            if matches!(self.owners.get(&key), Some(Owner::Call(call, purpose)) if *call == id && *purpose != Purpose::Bye)
            {
                self.owners.remove(&key);
            }
        }
        for key in dialogs {
            if matches!(self.dialogs.get(&key), Some(DialogOwner::Call(call, _)) if *call == id) {
                self.dialogs.remove(&key);
            }
        }
    }

    /// How many client transactions, dialogs and calls are indexed (for tests of what a
    /// call leaves behind).
    pub(crate) fn footprint(&self) -> (usize, usize, usize) {
        (self.owners.len(), self.dialogs.len(), self.of_call.len())
    }

    /// Is the transaction still an INVITE without a final answer? (RFC 3261 §9.2)
    pub(crate) fn proceeding(&self, key: TxKey) -> bool {
        self.transactions.state(key).is_some_and(|s| s == transaction::TxState::Proceeding)
    }

    /// The answers to OPTIONS (RFC 3261 §11.2): what this server supports.
    pub(crate) fn options(&self, request: &Request) -> Response {
        let mut response = request.reply(200, "OK");
        let caps = &self.capabilities;
        insert(&mut response, HeaderName::Allow, caps.allow.clone());
        insert(&mut response, HeaderName::Accept, caps.accept.clone());
        insert(&mut response, HeaderName::Supported, caps.supported.clone());
        response
    }
}

/// Adds a header line before the closing Content-Length that `reply` puts last.
pub(crate) fn insert(response: &mut Response, name: HeaderName, value: SipStr) {
    let lines = &mut response.headers.0;
    let at = match lines.last() {
        Some(last) if last.name == HeaderName::ContentLength => lines.len() - 1,
        _ => lines.len(),
    };
    lines.insert(at, Header { name, value });
}

/// The host part of a SIP URI with its port (`example.com`, `127.0.0.1:5060`), for the
/// addresses of record the server writes.
pub(crate) fn host_of(uri: &sambung_sip::Uri) -> String {
    match uri {
        sambung_sip::Uri::Sip(uri) => match uri.port {
            Some(port) => format!("{}:{port}", uri.host.as_str()),
            None => uri.host.as_str().to_owned(),
        },
        sambung_sip::Uri::Other { .. } => "localhost".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    /// A flow one shard recorded names the same socket in another shard that has received
    /// nothing yet: the Contact it writes carries the right port.
    #[test]
    fn shards_number_the_udp_sockets_alike() {
        let first: SocketAddr = "127.0.0.1:15060".parse().unwrap();
        let second: SocketAddr = "127.0.0.1:15070".parse().unwrap();
        let config = PbxConfig { listen: vec![first, second], ..PbxConfig::default() };
        let (mut registering, calling) = (Sip::new(&config), Sip::new(&config));
        let inbound = Inbound {
            transport: Transport::Udp,
            remote: "127.0.0.1:40000".parse().unwrap(),
            local: second,
            conn: None,
            account: None,
            bytes: bytes::Bytes::new(),
        };
        let peer = registering.peer_of(&inbound);
        assert_eq!(calling.local_address(&peer), (Host::from(second.ip()), second.port()));
        assert_eq!(calling.contact_for(&peer).to_string(), "<sip:sambung@127.0.0.1:15070>");
    }
}
