//! The transaction layer: matching, timers and the queues the driver drains.

use super::build::cancel_for;
use super::client::{ClientInvite, ClientNonInvite, Followup};
use super::keys::{AckKey, ClientMatch, MergeKey, ServerMatch, matching_method, to_tag_of_request};
use super::server::{AckOutcome, ServerInvite, ServerNonInvite};
use super::{Config, Peer, Transmit, TxError, TxEvent, TxKey, TxState};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Every transaction of one SIP element (RFC 3261 §17): see the [module docs](super).
#[derive(Debug)]
pub struct TransactionLayer {
    config: Config,
    next_key: u64,
    /// Boxed: an entry is almost a kilobyte, and a map of them inline would carry its spare
    /// capacity and move every entry when it grows (at a registrar's rates Timer J keeps a
    /// few hundred thousand completed transactions).
    txs: HashMap<TxKey, Box<Entry>>,
    /// Completed non-INVITE server transactions (§17.2.2): all they do until Timer J is answer
    /// a retransmitted request with the final response again, so only that is kept, by the
    /// request's key, instead of the whole transaction. At a registrar's rates Timer J (64*T1
    /// over UDP) keeps hundreds of thousands of them.
    completed: HashMap<ServerMatch, Completed>,
    /// When each completed transaction ends, in order (Timer J is the same for all).
    completed_ends: VecDeque<(Instant, ServerMatch, TxKey)>,
    clients: HashMap<ClientMatch, TxKey>,
    servers: HashMap<ServerMatch, TxKey>,
    merge: HashMap<MergeKey, TxKey>,
    acks: HashMap<AckKey, TxKey>,
    timers: BTreeSet<(Instant, TxKey)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

/// One transaction and the index entries that lead to it.
/// What a completed non-INVITE server transaction keeps (see `TransactionLayer::completed`).
#[derive(Debug)]
struct Completed {
    key: TxKey,
    response: Bytes,
    peer: Peer,
    /// For RFC 2543 matching (§17.2.3).
    request_to_tag: Option<crate::SipStr>,
    /// Its request's key for §8.2.2.2: a copy of it arriving by another path is still merged.
    merge: Option<MergeKey>,
}

#[derive(Debug)]
struct Entry {
    peer: Peer,
    machine: Machine,
    deadline: Option<Instant>,
    client: Option<ClientMatch>,
    server: Option<ServerMatch>,
    merge: Option<MergeKey>,
    ack: Option<AckKey>,
}

#[derive(Debug)]
#[allow(clippy::enum_variant_names)] // the RFC's names
enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

impl Machine {
    fn state(&self) -> Option<TxState> {
        match self {
            Machine::ClientInvite(m) => m.state(),
            Machine::ClientNonInvite(m) => m.state(),
            Machine::ServerInvite(m) => m.state(),
            Machine::ServerNonInvite(m) => m.state(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Machine::ClientInvite(m) => m.deadline(),
            Machine::ClientNonInvite(m) => m.deadline(),
            Machine::ServerInvite(m) => m.deadline(),
            Machine::ServerNonInvite(m) => m.deadline(),
        }
    }

    fn request(&self) -> Option<&Request> {
        match self {
            Machine::ClientInvite(m) => Some(m.request()),
            Machine::ClientNonInvite(m) => Some(m.request()),
            Machine::ServerInvite(m) => Some(m.request()),
            Machine::ServerNonInvite(m) => m.request(),
        }
    }

    /// The To tag a request must carry to match this server transaction by the RFC 2543 rules
    /// (§17.2.3): the INVITE's for a retransmission, the final response's for an ACK.
    fn rfc2543_to_tag(&self, ack: bool) -> Option<&crate::SipStr> {
        match self {
            Machine::ServerInvite(m) if ack => m.final_to_tag(),
            Machine::ServerInvite(m) => m.request_to_tag(),
            Machine::ServerNonInvite(m) => m.request_to_tag(),
            _ => None,
        }
    }
}

/// What a transaction writes to: the layer's queues, seen from one transaction.
#[derive(Debug)]
pub(crate) struct Out<'a> {
    pub(crate) config: &'a Config,
    pub(crate) key: TxKey,
    peer: &'a Peer,
    transmits: &'a mut VecDeque<Transmit>,
    events: &'a mut VecDeque<TxEvent>,
}

impl Out<'_> {
    /// Sends to the transaction's peer.
    pub(crate) fn send(&mut self, bytes: &Bytes) {
        let to = self.peer.clone();
        self.transmits.push_back(Transmit { to, bytes: bytes.clone(), key: Some(self.key) });
    }

    pub(crate) fn send_to(&mut self, to: &Peer, bytes: &Bytes, key: Option<TxKey>) {
        self.transmits.push_back(Transmit { to: to.clone(), bytes: bytes.clone(), key });
    }

    pub(crate) fn event(&mut self, event: TxEvent) {
        self.events.push_back(event);
    }

    pub(crate) fn reliable(&self) -> bool {
        self.peer.is_reliable()
    }

    /// `now + d`, saturating far in the future instead of overflowing.
    pub(crate) fn after(&self, now: Instant, d: Duration) -> Instant {
        after(now, d)
    }
}

fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(1 << 30))).unwrap_or(now)
}

/// A retransmission timer (A, E, G, and the §13.3.1.4 2xx timer): when it fires next and the
/// interval it was set with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub(crate) at: Instant,
    pub(crate) interval: Duration,
}

impl Retransmit {
    pub(crate) fn start(now: Instant, t1: Duration) -> Retransmit {
        // Never zero: a timer that is due again as soon as it fired would spin the driver.
        let t1 = t1.max(Duration::from_millis(1));
        Retransmit { at: after(now, t1), interval: t1 }
    }

    /// The timer after it fired at `now`: the interval doubles, capped at `cap` if given.
    pub(crate) fn next(self, now: Instant, cap: Option<Duration>) -> Retransmit {
        let doubled = self.interval.saturating_mul(2);
        let interval = cap.map_or(doubled, |c| doubled.min(c)).max(Duration::from_millis(1));
        Retransmit { at: after(now, interval), interval }
    }
}

impl TransactionLayer {
    pub fn new(config: Config) -> TransactionLayer {
        TransactionLayer {
            config,
            next_key: 0,
            txs: HashMap::new(),
            completed: HashMap::new(),
            completed_ends: VecDeque::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            merge: HashMap::new(),
            acks: HashMap::new(),
            timers: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A message from the network, already parsed, and the peer it came from.
    ///
    /// Requests have `received`/`rport` stamped on their top Via (§18.2.1, RFC 3581) and are
    /// matched to server transactions (§17.2.3), responses to client transactions (§17.1.3).
    /// Returns what the message means for the TU, if anything; everything else the message
    /// causes (transmissions, side events) waits in the queues.
    pub fn handle_message(&mut self, message: Message, from: Peer, now: Instant) -> Option<TxEvent> {
        match message {
            Message::Request(request) => self.handle_request(request, from, now),
            Message::Response(response) => self.handle_response(response, from, now),
        }
    }

    fn handle_response(&mut self, response: Response, from: Peer, now: Instant) -> Option<TxEvent> {
        // §18.1.2: a response that matches no transaction is dropped.
        let key = *self.clients.get(&ClientMatch::of_response(&response)?)?;
        let provisional = response.status < 200;
        let pending_cancel = match &mut self.txs.get_mut(&key)?.machine {
            Machine::ClientInvite(m) => m.take_pending_cancel(),
            _ => None,
        };
        let event = self
            .with(key, |m, out| match m {
                Machine::ClientInvite(m) => m.on_response(response, from, now, out),
                Machine::ClientNonInvite(m) => m.on_response(response, from, now, out),
                _ => None,
            })
            .flatten();
        if let Some(cancel) = pending_cancel {
            // §9.1: the CANCEL waited for a provisional response; a final one makes it moot.
            if !provisional || self.start_cancel(key, cancel, now).is_err() {
                self.events.push_back(TxEvent::Terminated { key: cancel });
            }
        }
        event
    }

    fn handle_request(&mut self, mut request: Request, from: Peer, now: Instant) -> Option<TxEvent> {
        request.stamp_via(from.addr);
        let is_ack = request.method == Method::Ack;
        let matcher = ServerMatch::of(&request, matching_method(&request.method))?;
        let existing = self.find_server(&matcher, &request, is_ack);
        if is_ack {
            return self.handle_ack(request, existing, from, now);
        }
        if let Some(key) = existing {
            self.with(key, |m, out| match m {
                Machine::ServerInvite(m) => m.on_retransmission(out),
                Machine::ServerNonInvite(m) => m.on_retransmission(out),
                _ => {}
            });
            return None;
        }
        if self.answer_completed(&matcher, &request) {
            return None;
        }

        // A new server transaction: its keys are copied out of the message, which a completed
        // transaction no longer keeps.
        let matcher = matcher.detached();
        let merge_key = MergeKey::of(&request).map(MergeKey::detached);
        let merged_with = merge_key.as_ref().and_then(|k| self.merge.get(k)).copied();
        let cancelled = (request.method == Method::Cancel).then(|| self.find_cancelled(&request)).flatten();
        let key = self.alloc();
        let mut entry = Entry {
            peer: from.clone(),
            machine: Machine::ServerNonInvite(ServerNonInvite::start(request.clone())),
            deadline: None,
            client: None,
            server: Some(matcher.clone()),
            merge: if merged_with.is_none() { merge_key.clone() } else { None },
            ack: None,
        };
        if request.method == Method::Invite {
            let mut out = Out {
                config: &self.config,
                key,
                peer: &from,
                transmits: &mut self.transmits,
                events: &mut self.events,
            };
            entry.machine = Machine::ServerInvite(ServerInvite::start(request.clone(), now, &mut out));
        }
        self.servers.insert(matcher, key);
        if let (Some(k), None) = (merge_key, merged_with) {
            self.merge.insert(k, key);
        }
        self.txs.insert(key, Box::new(entry));
        self.settle(key);
        Some(match (merged_with, request.method == Method::Cancel) {
            (Some(original), _) => TxEvent::Merged { key, request, from, original },
            (None, true) => TxEvent::Cancel { key, request, from, invite: cancelled },
            (None, false) => TxEvent::Request { key, request, from },
        })
    }

    /// A retransmitted request of a completed non-INVITE server transaction gets the final
    /// response again (§17.2.2); true when `request` was one.
    fn answer_completed(&mut self, matcher: &ServerMatch, request: &Request) -> bool {
        let Some(done) = self.completed.get(matcher) else { return false };
        if matcher.is_rfc2543() && done.request_to_tag != to_tag_of_request(request) {
            return false;
        }
        self.transmits.push_back(Transmit { to: done.peer.clone(), bytes: done.response.clone(), key: None });
        true
    }

    /// §17.2.3: the server transaction `request` belongs to, if any.
    fn find_server(&self, matcher: &ServerMatch, request: &Request, ack: bool) -> Option<TxKey> {
        let key = *self.servers.get(matcher)?;
        if matcher.is_rfc2543() {
            let entry = self.txs.get(&key)?;
            if entry.machine.rfc2543_to_tag(ack) != to_tag_of_request(request).as_ref() {
                return None;
            }
        }
        Some(key)
    }

    fn handle_ack(&mut self, request: Request, existing: Option<TxKey>, from: Peer, now: Instant) -> Option<TxEvent> {
        // The INVITE transaction by branch (the ACK for a non-2xx, §17.1.1.3), else the 2xx
        // the ACK acknowledges (§13.2.2.4).
        let key = existing
            .filter(|k| matches!(self.txs.get(k).map(|e| &e.machine), Some(Machine::ServerInvite(_))))
            .or_else(|| self.acks.get(&AckKey::of_ack(&request)?).copied());
        let outcome = match key {
            Some(key) => self.with(key, |m, out| match m {
                Machine::ServerInvite(m) => m.on_ack(now, out),
                _ => AckOutcome::ToTu,
            }),
            None => None,
        };
        match outcome {
            Some(AckOutcome::Absorbed) => None,
            // An ACK for a 2xx: a transaction of its own for the TU (§17.1.1.3, RFC 6026).
            Some(AckOutcome::ToTu) | None => Some(TxEvent::Ack { request, from }),
        }
    }

    /// The INVITE server transaction a CANCEL targets (§9.2: the §17.2.3 rules without the
    /// method).
    pub fn find_cancelled(&self, cancel: &Request) -> Option<TxKey> {
        let matcher = ServerMatch::of(cancel, Method::Invite)?;
        let key = self.find_server(&matcher, cancel, false)?;
        matches!(self.txs.get(&key)?.machine, Machine::ServerInvite(_)).then_some(key)
    }

    /// Starts a client transaction for `request` (§17.1) and sends it to `to`. The caller has
    /// put the top Via with a fresh branch (see [`super::new_branch`], [`super::push_via`]).
    pub fn send_request(&mut self, request: Request, to: Peer, now: Instant) -> Result<TxKey, TxError> {
        if request.method == Method::Ack {
            return Err(TxError::Ack);
        }
        let matcher = self.check_client(&request)?;
        let key = self.alloc();
        self.insert_client(key, matcher, request, to, now);
        Ok(key)
    }

    fn check_client(&self, request: &Request) -> Result<ClientMatch, TxError> {
        let matcher = ClientMatch::of_request(request).ok_or(TxError::NoBranch)?;
        request.cseq().ok_or(TxError::Missing("CSeq"))?;
        if self.clients.contains_key(&matcher) {
            return Err(TxError::DuplicateBranch);
        }
        Ok(matcher)
    }

    fn insert_client(&mut self, key: TxKey, matcher: ClientMatch, request: Request, to: Peer, now: Instant) {
        let mut out =
            Out { config: &self.config, key, peer: &to, transmits: &mut self.transmits, events: &mut self.events };
        let machine = if request.method == Method::Invite {
            Machine::ClientInvite(ClientInvite::start(request, now, &mut out))
        } else {
            Machine::ClientNonInvite(ClientNonInvite::start(request, now, &mut out))
        };
        self.clients.insert(matcher.clone(), key);
        let entry =
            Entry { peer: to, machine, deadline: None, client: Some(matcher), server: None, merge: None, ack: None };
        self.txs.insert(key, Box::new(entry));
        self.settle(key);
    }

    /// Cancels the INVITE client transaction `key` (§9.1) and returns the CANCEL's client
    /// transaction. Before any provisional response the CANCEL waits for one (its key is
    /// returned at once); a final response before that ends it with
    /// [`TxEvent::Terminated`] and nothing sent. Once a CANCEL went out, the INVITE
    /// transaction ends with a Timer B timeout if no final response comes within 64*T1.
    pub fn cancel(&mut self, key: TxKey, now: Instant) -> Result<TxKey, TxError> {
        let entry = self.txs.get_mut(&key).ok_or(TxError::UnknownTransaction)?;
        let Machine::ClientInvite(m) = &mut entry.machine else { return Err(TxError::NotInviteClient) };
        match m.state() {
            Some(TxState::Calling) => {
                let cancel = TxKey(self.next_key);
                match m.hold_cancel(cancel) {
                    Ok(()) => {
                        self.next_key += 1;
                        Ok(cancel)
                    }
                    Err(waiting) => Ok(waiting),
                }
            }
            Some(TxState::Proceeding) => {
                let matcher = ClientMatch::of_request(&cancel_for(m.request())).ok_or(TxError::NoBranch)?;
                if let Some(&sent) = self.clients.get(&matcher) {
                    return Ok(sent);
                }
                let cancel = self.alloc();
                self.start_cancel(key, cancel, now)?;
                Ok(cancel)
            }
            _ => Err(TxError::AlreadyFinal),
        }
    }

    fn start_cancel(&mut self, invite: TxKey, cancel: TxKey, now: Instant) -> Result<(), TxError> {
        let entry = self.txs.get(&invite).ok_or(TxError::UnknownTransaction)?;
        let request = entry.machine.request().ok_or(TxError::UnknownTransaction)?;
        let (request, peer) = (cancel_for(request), entry.peer.clone());
        let matcher = self.check_client(&request)?;
        self.with(invite, |m, out| {
            if let Machine::ClientInvite(m) = m {
                m.cancel_sent(now, out)
            }
        });
        self.insert_client(cancel, matcher, request, peer, now);
        Ok(())
    }

    /// Sends the TU's ACK for a 2xx to the INVITE of client transaction `key` (§13.2.2.4).
    /// While the transaction waits in the Accepted state (RFC 6026 §7.2) it re-sends this ACK
    /// for every retransmission of that 2xx (the one with the ACK's To tag).
    pub fn send_ack(&mut self, key: TxKey, ack: Request, to: Peer) {
        let bytes = ack.to_bytes();
        if let Some(Machine::ClientInvite(m)) = self.txs.get_mut(&key).map(|e| &mut e.machine) {
            m.remember_ack(to_tag_of_request(&ack), bytes.clone(), to.clone());
        }
        self.transmits.push_back(Transmit { to, bytes, key: None });
    }

    /// Sends a message outside any transaction (a stateless answer, §8.2.6 / §16.11).
    pub fn send_stateless(&mut self, message: &Message, to: Peer) {
        self.transmits.push_back(Transmit { to, bytes: message.to_bytes(), key: None });
    }

    /// The TU's response for server transaction `key` (§17.2.1, §17.2.2). A 2xx to INVITE is
    /// retransmitted until its ACK comes when [`Config::retransmit_2xx`] is set.
    pub fn respond(&mut self, key: TxKey, response: Response, now: Instant) -> Result<(), TxError> {
        if !(100..=699).contains(&response.status) {
            return Err(TxError::BadStatus);
        }
        let entry = self.txs.get(&key).ok_or(TxError::UnknownTransaction)?;
        // Only a UA core that repeats its 2xx waits for (and absorbs repeats of) the ACK; a
        // proxy forwards every ACK, so they all reach its TU.
        let ack_key = match entry.machine {
            Machine::ServerInvite(_) if response.is_success() && self.config.retransmit_2xx => {
                AckKey::of_2xx(&response)
            }
            Machine::ServerInvite(_) | Machine::ServerNonInvite(_) => None,
            _ => return Err(TxError::NotServer),
        };
        self.with(key, |m, out| match m {
            Machine::ServerInvite(m) => m.respond(response, now, out),
            Machine::ServerNonInvite(m) => m.respond(response, now, out),
            _ => Err(TxError::NotServer),
        })
        .unwrap_or(Err(TxError::UnknownTransaction))?;
        if let (Some(ack_key), Some(entry)) = (ack_key, self.txs.get_mut(&key)) {
            remove_if(&mut self.acks, entry.ack.replace(ack_key.clone()), key);
            self.acks.insert(ack_key, key);
        }
        Ok(())
    }

    /// The driver could not deliver for transaction `key` (§17.1.4, §17.2.4): the transaction
    /// ends and the TU hears of it.
    pub fn handle_transport_error(&mut self, key: TxKey, _now: Instant) {
        if !self.txs.contains_key(&key) {
            return;
        }
        self.events.push_back(TxEvent::TransportError { key });
        let followup = self.with(key, |m, _| match m {
            Machine::ClientInvite(m) => m.fail(),
            Machine::ClientNonInvite(m) => {
                m.fail();
                None
            }
            Machine::ServerInvite(m) => {
                m.fail();
                None
            }
            Machine::ServerNonInvite(m) => {
                m.fail();
                None
            }
        });
        if let Some(Some(Followup::DropCancel(cancel))) = followup {
            self.events.push_back(TxEvent::Terminated { key: cancel });
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.completed_ends.front()
            && *at <= now
        {
            let Some((_, matcher, key)) = self.completed_ends.pop_front() else { break };
            if self.completed.get(&matcher).is_some_and(|done| done.key == key)
                && let Some(done) = self.completed.remove(&matcher)
            {
                remove_if(&mut self.merge, done.merge, key);
            }
            self.events.push_back(TxEvent::Terminated { key });
        }
        let due: Vec<TxKey> = self.timers.iter().take_while(|(at, _)| *at <= now).map(|&(_, k)| k).collect();
        for key in due {
            let followup = self
                .with(key, |m, out| match m {
                    Machine::ClientInvite(m) => m.on_timeout(now, out),
                    Machine::ClientNonInvite(m) => {
                        m.on_timeout(now, out);
                        None
                    }
                    Machine::ServerInvite(m) => {
                        m.on_timeout(now, out);
                        None
                    }
                    Machine::ServerNonInvite(m) => {
                        m.on_timeout(now);
                        None
                    }
                })
                .flatten();
            match followup {
                Some(Followup::SendCancel) => {
                    if let Ok(cancel) = self.cancel(key, now) {
                        self.events.push_back(TxEvent::Expired { key, cancel });
                    }
                }
                Some(Followup::DropCancel(cancel)) => self.events.push_back(TxEvent::Terminated { key: cancel }),
                None => {}
            }
        }
    }

    /// The earliest timer; call [`TransactionLayer::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let completed = self.completed_ends.front().map(|&(at, _, _)| at);
        self.timers.first().map(|&(at, _)| at).into_iter().chain(completed).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// The state of a live transaction.
    pub fn state(&self, key: TxKey) -> Option<TxState> {
        self.txs.get(&key)?.machine.state()
    }

    /// The request of a live transaction: the one sent (client) or received (server); a
    /// non-INVITE server transaction forgets it once it has sent its final response.
    pub fn request(&self, key: TxKey) -> Option<&Request> {
        self.txs.get(&key)?.machine.request()
    }

    /// Our client transactions to `transport` at `addr` that have heard nothing back yet, for
    /// a driver that learned the address cannot be reached (a stream connection that could not
    /// be made): each is then given [`TransactionLayer::handle_transport_error`]. One that got
    /// any response went over some other connection that works.
    pub fn clients_to(&self, transport: &crate::Transport, addr: std::net::SocketAddr) -> Vec<TxKey> {
        let mut keys: Vec<TxKey> = self
            .txs
            .iter()
            .filter(|(_, e)| e.client.is_some() && e.peer.addr == addr && &e.peer.transport == transport)
            .filter(|(_, e)| matches!(e.machine.state(), Some(TxState::Calling | TxState::Trying)))
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// The peer of a live transaction.
    pub fn peer(&self, key: TxKey) -> Option<&Peer> {
        Some(&self.txs.get(&key)?.peer)
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Entries of every index and queue the layer keeps, in all: with no transaction alive
    /// and nothing queued it is 0, so a test can tell that nothing was left behind.
    pub fn retained(&self) -> usize {
        self.txs.len()
            + self.clients.len()
            + self.servers.len()
            + self.merge.len()
            + self.acks.len()
            + self.timers.len()
            + self.completed.len()
            + self.completed_ends.len()
            + self.transmits.len()
            + self.events.len()
    }

    fn alloc(&mut self) -> TxKey {
        let key = TxKey(self.next_key);
        self.next_key += 1;
        key
    }

    /// Runs `f` on transaction `key` with its output, then brings its timer and existence up
    /// to date.
    fn with<R>(&mut self, key: TxKey, f: impl FnOnce(&mut Machine, &mut Out<'_>) -> R) -> Option<R> {
        let entry = self.txs.get_mut(&key)?;
        let mut out = Out {
            config: &self.config,
            key,
            peer: &entry.peer,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        let result = f(&mut entry.machine, &mut out);
        self.settle(key);
        Some(result)
    }

    /// Re-files the timer of `key`, or removes it when it has terminated.
    fn settle(&mut self, key: TxKey) {
        let Some(entry) = self.txs.get_mut(&key) else { return };
        let deadline = entry.machine.deadline();
        if deadline != entry.deadline {
            if let Some(old) = entry.deadline {
                self.timers.remove(&(old, key));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, key));
            }
            entry.deadline = deadline;
        }
        if let Machine::ServerNonInvite(m) = &entry.machine
            && let Some((response, end)) = m.completed()
            && let Some(matcher) = entry.server.clone()
        {
            // Completed: from now on only its response and key are kept, until Timer J.
            let done = Completed {
                key,
                response: response.clone(),
                peer: entry.peer.clone(),
                request_to_tag: m.request_to_tag().cloned(),
                merge: entry.merge.clone(),
            };
            if let Some(old) = self.completed.insert(matcher.clone(), done) {
                remove_if(&mut self.merge, old.merge, old.key);
            }
            self.completed_ends.push_back((end, matcher, key));
            let Some(entry) = self.txs.remove(&key) else { return };
            if let Some(at) = entry.deadline {
                self.timers.remove(&(at, key));
            }
            remove_if(&mut self.servers, entry.server, key);
            return;
        }
        if entry.machine.state().is_some() {
            return;
        }
        let Some(entry) = self.txs.remove(&key) else { return };
        if let Some(at) = entry.deadline {
            self.timers.remove(&(at, key));
        }
        remove_if(&mut self.clients, entry.client, key);
        remove_if(&mut self.servers, entry.server, key);
        remove_if(&mut self.merge, entry.merge, key);
        remove_if(&mut self.acks, entry.ack, key);
        self.events.push_back(TxEvent::Terminated { key });
    }
}

fn remove_if<K: std::hash::Hash + Eq>(map: &mut HashMap<K, TxKey>, k: Option<K>, key: TxKey) {
    if let Some(k) = k
        && map.get(&k) == Some(&key)
    {
        map.remove(&k);
    }
}
