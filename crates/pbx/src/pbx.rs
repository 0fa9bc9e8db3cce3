//! [`Pbx`]: the one object the driver talks to. It parses, runs the transaction layer, and hands
//! each request, response and event to the part that owns it, each part with only what it
//! needs: the registrar, calls, messages, message waiting, feature codes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use sambung_sip::digest::NonceManager;
use sambung_sip::transaction::{Peer, TxEvent, TxKey};
use sambung_sip::{HeaderName, Message, Method, Request, Response, SipStr, Uri};
use tracing::{debug, info, trace};

use crate::calls::{CallEnv, Calls};
use crate::config::{LocalDomains, PbxConfig};
use crate::events::{AuthFailure, Event, SettingsChange, Unregistration};
use crate::guard::{self, Watch};
use crate::io::{Inbound, Input, Now, Output, Outputs, StoreReply, StoreWrite};
use crate::messages::Messages;
use crate::originate::Originations;
use crate::random::Random;
use crate::registrar::{Accounts, AuthOutcome, Authenticator, Binding, Challenger, Location, Registrar};
use crate::shard::{Locked, Shard, Shared};
use crate::sip::{DialogOwner, Owner, Sip};
use crate::subscriptions::Subscriptions;
use crate::{features, registrar};

mod bad_input;
mod carriers;

/// How long a digest nonce stays fresh, in seconds (RFC 7616 §3.3, §5.4: keep it short).
pub const NONCE_LIFETIME_SECS: u64 = 300;

/// What the parts of call control share while they handle one input: the time, the SIP
/// plumbing, the output queue and the random source.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub now: Now,
    pub sip: &'a mut Sip,
    pub out: &'a mut Outputs,
    pub random: &'a mut Random,
}

impl Ctx<'_> {
    /// Sends `response` through its server transaction.
    pub(crate) fn respond(&mut self, key: TxKey, response: Response) {
        self.sip.respond(key, response, self.now.instant);
    }
}

/// See [`Pbx::footprint`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Transactions and the transaction layer's indexes and queues.
    pub transactions: usize,
    /// Our client transactions' owners.
    pub owners: usize,
    /// Dialogs (of calls and of subscriptions).
    pub dialogs: usize,
    /// Calls indexed for forgetting.
    pub call_indexes: usize,
    /// The calls' maps, with the toll-fraud counters.
    pub calls: usize,
    /// Messages waiting for the store or for a device's answer.
    pub messages: usize,
}

/// What the shards of one server share ([`crate::shard`]).
#[derive(Clone, Debug)]
struct Commons {
    location: Shared<Location>,
    watch: Locked<Watch>,
    messages: Locked<Messages>,
    fraud: Locked<guard::fraud::Fraud>,
    replaceable: crate::calls::replaces::Replaceable,
    /// The addresses each trunk's server was found at (its calls come from them).
    trunk_addresses: Shared<Vec<Vec<IpAddr>>>,
    /// Where each round-robin ring group starts next.
    turns: Locked<crate::groups::Turns>,
}

impl Commons {
    fn new(config: &PbxConfig) -> Commons {
        Commons {
            trunk_addresses: carriers::known_addresses(config),
            turns: Locked::default(),
            location: Shared::default(),
            watch: Locked::new(Watch::new(config.guard.clone())),
            messages: Locked::default(),
            fraud: Locked::default(),
            replaceable: Locked::default(),
        }
    }
}

/// Call control of one server, or of one shard of it. See the [crate docs](crate).
#[derive(Debug)]
pub struct Pbx {
    config: PbxConfig,
    local: LocalDomains,
    random: Random,
    sip: Sip,
    out: Outputs,
    auth: Authenticator,
    accounts: Accounts,
    registrar: Registrar,
    calls: Calls,
    /// Click-to-call attempts in progress.
    originations: Originations,
    /// Shared by every shard ([`crate::shard`]).
    messages: Locked<Messages>,
    subscriptions: Subscriptions,
    /// Bans, lockouts: what call control learns about abuse. Shared by every shard.
    watch: Locked<Watch>,
    shard: Shard,
    /// The time of the latest input, to turn Unix-second deadlines into instants.
    last_now: Option<Now>,
    /// Registrations with carriers (the first shard's; started at its first input).
    registrations: Option<crate::trunks::registration::Registrations>,
    /// Where each trunk's server was found: shared by every shard.
    trunk_addresses: Shared<Vec<Vec<IpAddr>>>,
    /// Where each round-robin ring group starts next: shared by every shard.
    turns: Locked<crate::groups::Turns>,
}

impl Pbx {
    /// Call control for `config`. `secret` keys the digest nonces (keep it across restarts);
    /// `seed` seeds every random value it makes (take it from the operating system).
    pub fn new(config: PbxConfig, secret: &[u8], seed: [u8; 32]) -> Pbx {
        let commons = Commons::new(&config);
        Pbx::shard(config, secret, Random::from_seed(seed), Shard::ONE, commons)
    }

    /// Call control for `config` on `count` shards (one per core), which share what they
    /// must see alike ([`crate::shard`]). Feed each the messages [`crate::shard_of`] gives it;
    /// the inputs that are not messages go to every shard, but for store and application
    /// answers, which go to [`Pbx::shard_of_call`] of their call (messages' answers: any).
    pub fn sharded(config: &PbxConfig, secret: &[u8], seed: [u8; 32], count: usize) -> Vec<Pbx> {
        let count = count.max(1);
        let commons = Commons::new(config);
        let mut seeds = Random::from_seed(seed);
        (0..count)
            .map(|index| {
                let mut seed = [0u8; 32];
                seeds.fill(&mut seed);
                let random = Random::from_seed(seed);
                Pbx::shard(config.clone(), secret, random, Shard { index, count }, commons.clone())
            })
            .collect()
    }

    fn shard(config: PbxConfig, secret: &[u8], random: Random, shard: Shard, commons: Commons) -> Pbx {
        let mut random = random.for_shard(shard.index);
        let nonces = NonceManager::new(secret, NONCE_LIFETIME_SECS)
            .with_counter_seed(random.u64())
            .with_shard(shard.index, shard.count);
        let auth = Authenticator::new(config.realm.clone(), nonces).with_algorithms(config.digest_algorithms.clone());
        let mut registrar = Registrar::new(config.registrar);
        registrar.location = commons.location;
        Pbx {
            local: LocalDomains::from_config(&config),
            sip: Sip::new(&config),
            registrar,
            subscriptions: Subscriptions::new(config.access_number.clone()),
            watch: commons.watch,
            config,
            random,
            out: Outputs::default(),
            auth,
            accounts: Accounts::default(),
            calls: Calls::new(shard, commons.fraud, commons.replaceable),
            originations: Originations::default(),
            messages: commons.messages,
            shard,
            last_now: None,
            registrations: None,
            trunk_addresses: commons.trunk_addresses,
            turns: commons.turns,
        }
    }

    /// Which shard this is.
    pub fn shard_info(&self) -> Shard {
        self.shard
    }

    /// The shard of `count` that holds call `call` (call numbers, which are also media session
    /// numbers, carry their shard).
    pub fn shard_of_call(call: u64, count: usize) -> usize {
        (call % count.max(1) as u64) as usize
    }

    /// The settings it runs with.
    pub fn config(&self) -> &PbxConfig {
        &self.config
    }

    /// How many calls are in progress (ringing, answered, or ending).
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }

    /// What this shard keeps about calls and transactions, for telling a leak from the
    /// allocator's high-water mark: every figure is 0 once no call, transaction or in-flight
    /// message is left.
    pub fn footprint(&self) -> Footprint {
        let (owners, dialogs, call_indexes) = self.sip.footprint();
        Footprint {
            transactions: self.sip.transactions.retained(),
            owners,
            dialogs,
            call_indexes,
            calls: self.calls.retained() + self.originations.len(),
            messages: self.messages.lock().retained(),
        }
    }

    /// Takes one input that happened at `now`; then drain [`Self::poll_output`].
    pub fn handle_input(&mut self, input: Input, now: Now) {
        self.last_now = Some(now);
        self.start_registrations(now);
        match input {
            Input::Message(inbound) => self.on_inbound(now, inbound),
            Input::FramingError(inbound, error) => self.on_framing_error(&inbound, error),
            Input::Disconnected { conn } => {
                // A browser's registration lives only as long as its WebSocket (RFC 7118 §5:
                // nothing else reaches it); the account's other devices stay.
                if let Some(account_id) = self.sip.signed_in_account(conn) {
                    let closed: Vec<String> = self
                        .registrar
                        .location
                        .read()
                        .bindings(account_id)
                        .iter()
                        .filter(|b| b.source.flow == Some(conn) && b.source.transport.is_reliable())
                        .map(Binding::key)
                        .collect();
                    for key in closed {
                        let gone = self.registrar.location.write().remove(account_id, &key);
                        if let Some(binding) = gone {
                            info!(account_id, device = key, "browser's connection closed: unregistered");
                            self.unbound(binding, Unregistration::FlowClosed);
                        }
                    }
                }
                self.sip.disconnected(conn)
            }
            Input::Timeout => self.on_timeout(now),
            Input::Unreachable { transport, remote } => self.on_unreachable(now, &transport, remote),
            Input::Resolved { lookup, result } => self.on_lookup(now, lookup, result),
            Input::Accounts(accounts) => self.set_accounts(accounts),
            Input::Bindings(bindings) => {
                let mut location = self.registrar.location.write();
                for binding in bindings {
                    location.upsert(binding);
                }
                drop(location);
                self.expire_bindings(now);
            }
            Input::Mailboxes(counts) => {
                for (account_id, counts) in counts {
                    let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                    self.subscriptions.mailbox_changed(&mut ctx, account_id, counts);
                }
            }
            Input::Unregister { account_id, device } => {
                let gone = self.registrar.location.write().remove(account_id, &device);
                if let Some(binding) = gone {
                    info!(account_id, device, "device signed out");
                    self.unbound(binding, Unregistration::Removed);
                }
            }
            Input::Deliver { message, from_account } => {
                let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                let location = self.registrar.location.read();
                self.messages.lock().deliver(&mut ctx, &location, &self.accounts, from_account, message);
            }
            Input::Presence(changes) => {
                for (account_id, presence) in changes {
                    let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                    self.subscriptions.presence_changed(&mut ctx, account_id, presence);
                }
            }
            Input::Store(reply) => {
                let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                match reply {
                    StoreReply::MessageStored { ticket, id } => {
                        let location = self.registrar.location.read();
                        self.messages.lock().stored(&mut ctx, &location, &self.accounts, ticket, id)
                    }
                    StoreReply::Undelivered { account_id, device, messages } => {
                        let location = self.registrar.location.read();
                        self.messages.lock().deliver_undelivered(
                            &mut ctx,
                            &location,
                            &self.accounts,
                            account_id,
                            &device,
                            messages,
                        )
                    }
                }
            }
            Input::Media(event) => {
                self.with_calls(now, |calls, ctx, env| calls.on_media_event(ctx, env, event));
            }
            Input::EndCall { call } => {
                let found = self.with_calls(now, |calls, ctx, _| calls.end_by_operator(ctx, call));
                if found {
                    info!(call, "call ended by an operator");
                }
            }
            Input::KeyframeWanted { call, side, stream } => {
                self.with_calls(now, |calls, ctx, _| calls.keyframe_wanted(ctx, call, side, stream));
            }
            Input::TransferCall { call, side, target } => {
                let found = self.with_calls(now, |calls, ctx, _| calls.transfer_by_operator(ctx, call, side, target));
                if found {
                    info!(call, ?side, "call transfer asked by an operator");
                }
            }
            Input::Originate { id, account_id, target } => {
                let location = self.registrar.location.read();
                let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                let ring_for = self.config.ring_timeout;
                self.originations.start(&mut ctx, &self.accounts, &location, ring_for, id, account_id, target);
            }
            Input::AppEnded { call, end } => {
                self.with_calls(now, |calls, ctx, env| calls.on_app_ended(ctx, env, call, end));
            }
            Input::AppConnect { call, target } => {
                self.with_calls(now, |calls, ctx, env| calls.on_app_connect(ctx, env, call, &target));
            }
            Input::RecordCall { call } => {
                self.with_calls(now, |calls, ctx, env| {
                    calls.record_call(ctx, env, call);
                });
            }
            Input::PickUp { call, partner } => {
                self.with_calls(now, |calls, ctx, env| calls.on_pickup(ctx, env, call, partner));
            }
            Input::Guard { bans, lockouts } => self.watch.lock().set_lists(&bans, lockouts),
        }
        self.drain(now, None);
    }

    /// The next output; [`Output::Timeout`] once there is nothing else.
    pub fn poll_output(&mut self) -> Output {
        self.out.pop().unwrap_or_else(|| Output::Timeout(self.next_timeout()))
    }

    /// The earliest timer: transactions, binding expiry, calls, subscriptions.
    fn next_timeout(&self) -> Option<Instant> {
        // The first shard expires the shared bindings.
        let expiry = (if self.shard.is_home() { self.registrar.location.read().next_expiry() } else { None })
            .zip(self.last_now)
            .map(|(at, now)| now.instant + Duration::from_secs(at.saturating_sub(now.unix_secs)));
        [
            self.sip.transactions.poll_timeout(),
            expiry,
            self.calls.next_deadline(),
            self.originations.next_deadline(),
            self.subscriptions.next_expiry(),
            self.watch.lock().next_deadline(),
            self.registrations.as_ref().and_then(|r| r.next_deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs `f` on the calls, with the shared context and their environment, borrowed from
    /// disjoint fields; the shared location table is read-locked meanwhile.
    fn with_calls<R>(&mut self, now: Now, f: impl FnOnce(&mut Calls, &mut Ctx<'_>, &CallEnv<'_>) -> R) -> R {
        let location = self.registrar.location.read();
        let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
        let env = CallEnv {
            accounts: &self.accounts,
            location: &location,
            config: &self.config,
            local: &self.local,
            subscriptions: &self.subscriptions,
            turns: &self.turns,
        };
        f(&mut self.calls, &mut ctx, &env)
    }

    /// Replaces the account table; accounts whose call settings changed are announced.
    fn set_accounts(&mut self, accounts: Accounts) {
        for account in accounts.iter() {
            let changed = self.accounts.by_id(account.id).is_some_and(|old| old.routing != account.routing);
            if changed {
                self.out.event(Event::SettingsChanged { account_id: account.id, change: SettingsChange::Stored });
            }
        }
        self.accounts = accounts;
    }

    fn on_timeout(&mut self, now: Now) {
        self.sip.transactions.handle_timeout(now.instant);
        self.expire_bindings(now);
        self.with_calls(now, |calls, ctx, env| calls.on_timeout(ctx, env));
        let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
        self.originations.on_timeout(&mut ctx);
        self.subscriptions.expire(&mut ctx);
        self.watch.lock().on_timeout(&mut self.out, now);
        self.registrations_due(now);
    }

    fn expire_bindings(&mut self, now: Now) {
        if !self.shard.is_home() {
            return;
        }
        let expired = self.registrar.location.write().expire(now.unix_secs);
        for gone in expired {
            debug!(aor = gone.aor, contact = %gone.uri, "binding expired");
            self.unbound(gone, Unregistration::Expired);
        }
    }

    /// A binding went away: the store forgets it, the event says why.
    fn unbound(&mut self, binding: Binding, cause: Unregistration) {
        let contact = binding.uri.to_string();
        self.out.store(StoreWrite::Unbind { account_id: binding.account_id, contact: contact.clone() });
        self.out.event(Event::Unregistered { account_id: binding.account_id, device: binding.key(), contact, cause });
    }

    /// Moves what the transaction layer produced into the parts and the output queue.
    fn drain(&mut self, now: Now, arrived_on: Option<IpAddr>) {
        while let Some(event) = self.sip.transactions.poll_event() {
            self.on_tx_event(now, event, arrived_on);
        }
        self.sip.drain_transmits(&mut self.out);
    }

    /// One received message (RFC 3261 §18.2.1, §8.2).
    fn on_inbound(&mut self, now: Now, inbound: Inbound) {
        let message = match Message::parse(inbound.bytes.clone()) {
            Ok(message) => message,
            Err(error) => return self.malformed(&inbound, &error),
        };
        // A known scanning tool gets no answer at all, and its source is banned.
        if let Message::Request(request) = &message
            && let Some(ua) = request.headers.get(HeaderName::UserAgent)
            && self.watch.lock().scanner(&mut self.out, now, inbound.remote.ip(), ua)
        {
            return debug!(remote = %inbound.remote, user_agent = %ua, "scanner dropped");
        }
        let peer = self.sip.peer_of(&inbound);
        // RFC 3261 §18.1.2: a response that matches no client transaction is dropped there.
        if let Some(event) = self.sip.transactions.handle_message(message, peer, now.instant) {
            self.on_tx_event(now, event, Some(inbound.local.ip()));
        }
        self.drain(now, Some(inbound.local.ip()));
    }

    /// What a transaction event asks of call control, the transaction user (RFC 3261 §17).
    fn on_tx_event(&mut self, now: Now, event: TxEvent, arrived_on: Option<IpAddr>) {
        match event {
            TxEvent::Request { key, request, from } => {
                let arrived_on = arrived_on.unwrap_or(Ipv4Addr::UNSPECIFIED.into());
                self.on_request(now, key, request, from, arrived_on);
            }
            TxEvent::Cancel { key, request, invite, .. } => {
                // §9.2: 200 to a CANCEL that matches, then 487 to the INVITE if it is still
                // unanswered; 481 when nothing matches.
                let Some(invite) = invite else {
                    return self.sip.respond(key, request.reply(481, "Call/Transaction Does Not Exist"), now.instant);
                };
                self.sip.respond(key, request.reply(200, "OK"), now.instant);
                if self.with_calls(now, |calls, ctx, env| calls.on_cancel(ctx, env, invite)) {
                    return;
                }
                if self.sip.proceeding(invite)
                    && let Some(original) = self.sip.transactions.request(invite)
                {
                    let terminated = original.reply(487, "Request Terminated");
                    self.sip.respond(invite, terminated, now.instant);
                }
            }
            TxEvent::Merged { key, request, .. } => {
                // §8.2.2.2: the same request reached us twice by different paths.
                self.sip.respond(key, request.reply(482, "Loop Detected"), now.instant);
            }
            TxEvent::Ack { request, from } => {
                trace!(call_id = request.call_id(), remote = %from.addr, "ACK for a 2xx");
                self.with_calls(now, |calls, ctx, env| calls.on_ack(ctx, env, &request));
            }
            TxEvent::Response { key, response, .. } | TxEvent::Timeout { key, response, .. } => {
                self.on_response(now, key, response);
            }
            TxEvent::NoAck { key, .. } => {
                self.with_calls(now, |calls, ctx, env| calls.on_no_ack(ctx, env, key));
            }
            TxEvent::TransportError { key } => {
                if let Some(request) = self.sip.transactions.request(key) {
                    let failed = request.reply(503, "Service Unavailable");
                    self.on_response(now, key, failed);
                }
            }
            other => trace!(?other, "transaction event"),
        }
    }

    /// A response to one of our requests goes to its owner.
    fn on_response(&mut self, now: Now, key: TxKey, response: Response) {
        let Some(owner) = self.sip.owner(key, response.status) else {
            return trace!(?key, status = response.status, "response for nobody");
        };
        match owner {
            Owner::Message => {
                let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                self.messages.lock().on_response(&mut ctx, key, response.status)
            }
            Owner::Notify => self.subscriptions.on_response(&mut self.sip, key, response.status),
            Owner::Call(id, purpose) => {
                self.with_calls(now, |calls, ctx, env| calls.on_response(ctx, env, id, purpose, key, response));
            }
            Owner::Originate(id, purpose) => {
                let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                self.originations.on_response(&mut ctx, id, purpose, &response);
            }
            Owner::Trunk(trunk) => self.on_registration_response(now, trunk, key, &response),
        }
    }

    /// A request that made a new server transaction.
    fn on_request(&mut self, now: Now, key: TxKey, request: Request, from: Peer, arrived_on: IpAddr) {
        let in_dialog = request.to().is_some_and(|to| to.tag().is_some());
        if in_dialog {
            // Inside a dialog (the caller's early dialog too): to its owner, else 481 (§12.2.2).
            let owner = dialog_key(&request).and_then(|d| self.sip.dialogs.get(&d).copied().map(|owner| (d, owner)));
            match owner {
                Some((_, DialogOwner::Call(id, side))) => {
                    return self
                        .with_calls(now, |calls, ctx, env| calls.on_dialog_request(ctx, env, id, side, key, request));
                }
                Some((_, DialogOwner::Originate(id))) => {
                    let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                    return self.originations.on_request(&mut ctx, id, key, &request);
                }
                Some((dialog, DialogOwner::Subscription)) => {
                    let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                    return self.subscriptions.on_request(&mut ctx, &dialog, key, &request);
                }
                None => {}
            }
        } else if self.sip.policy.check(&request).is_ok() {
            let local = self.is_local(&request, arrived_on);
            match request.method {
                // A carrier's call, known by where it comes from.
                Method::Invite if let Some(trunk) = self.trunk_of(from.addr.ip()) => {
                    return self
                        .with_calls(now, |calls, ctx, env| calls.on_trunk_invite(ctx, env, trunk, key, request, from));
                }
                // A call to another domain goes out, for an authenticated caller.
                Method::Invite => return self.on_authenticated_request(now, key, request, from, local),
                Method::Message | Method::Subscribe if local => {
                    return self.on_authenticated_request(now, key, request, from, local);
                }
                _ => {}
            }
        }
        if let Some(response) = self.answer(now, &request, &from, arrived_on) {
            debug!(
                method = request.method.as_str(),
                status = response.status,
                remote = %from.addr,
                transport = %from.transport,
                "answered"
            );
            self.sip.respond(key, response, now.instant);
        }
    }

    /// INVITE, MESSAGE and SUBSCRIBE outside a dialog: authenticated first (so that what
    /// follows tells nothing to whoever cannot), then handed to their part.
    fn on_authenticated_request(&mut self, now: Now, key: TxKey, request: Request, from: Peer, local: bool) {
        let account = match self.authenticate(now, &request, &from, Challenger::Proxy) {
            Ok(account) => account,
            Err(challenge) => return self.sip.respond(key, challenge, now.instant),
        };
        match request.method {
            Method::Invite => {
                let dialled = match &request.uri {
                    Uri::Sip(uri) => uri.user_unescaped().map(|u| u.into_owned()),
                    Uri::Other { .. } => None,
                };
                let service = dialled.as_deref().filter(|_| local).and_then(|dialled| {
                    features::service_code(&mut self.accounts, &mut self.out, &self.config, &account, dialled)
                });
                self.with_calls(now, |calls, ctx, env| {
                    calls.on_invite(ctx, env, account, key, request, from, service, local)
                });
            }
            Method::Message => {
                let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                self.messages.lock().on_message(&mut ctx, &self.accounts, &account, key, &request);
            }
            _ => {
                let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                self.subscriptions.on_subscribe(&mut ctx, &self.accounts, &account, key, &request, from);
            }
        }
    }

    /// Digest authentication; the challenge to answer with when it fails. Refused
    /// credentials (not a first request without any) become [`Event::AuthFailed`].
    fn authenticate(
        &mut self,
        now: Now,
        request: &Request,
        from: &Peer,
        challenger: Challenger,
    ) -> Result<std::sync::Arc<registrar::Account>, Response> {
        if let Some(id) = self.sip.signed_in(from) {
            // The web app's SIP WebSocket, opened with the app's session: it acts as that
            // account and as no other (a REGISTER of its own address, requests from it).
            let account = self.accounts.by_id(id).filter(|a| !a.disabled).cloned();
            let claimed = match request.method {
                Method::Register => {
                    request.to().and_then(|to| to.uri.as_sip().and_then(|u| u.user_unescaped().map(|u| u.into_owned())))
                }
                _ => request
                    .from()
                    .and_then(|from| from.uri.as_sip().and_then(|u| u.user_unescaped().map(|u| u.into_owned()))),
            };
            return match account {
                Some(account) if claimed.as_deref() == Some(account.username.as_str()) => Ok(account),
                Some(_) => Err(request.reply(403, "Not The Signed-In Account")),
                None => Err(request.reply(403, "Account Disabled")),
            };
        }
        let named = named_user(request, &self.config.access_number);
        let source = from.addr.ip();
        let watch = self.watch.clone();
        let locked = |user: &str| watch.lock().is_locked_for(user, source, now);
        let (response, failed) =
            match self.auth.authenticate(request, &self.accounts, challenger, now.unix_secs, &locked) {
                AuthOutcome::Authenticated(account) => {
                    let names =
                        [named.as_deref().unwrap_or(""), &account.username, account.extension.as_deref().unwrap_or("")];
                    if self.watch.lock().vouch(now, source, &names) {
                        self.out.event(Event::SourceVerified { source: guard::source_key(source) });
                    }
                    return Ok(account);
                }
                AuthOutcome::Challenge { response, failed } => (response, failed),
            };
        match failed {
            Some((username, reason)) => {
                debug!(username, ?reason, remote = %from.addr, "authentication failed");
                // Only guesses count: a locked account's answer tells nothing, and a bad nonce
                // after a right password is no guess.
                if matches!(reason, AuthFailure::WrongPassword | AuthFailure::UnknownUser) {
                    self.watch.lock().auth_failed(&mut self.out, now, source, &username);
                    self.watch.lock().unvouched(&mut self.out, now, source, &username);
                }
                self.out.event(Event::AuthFailed {
                    source: from.addr,
                    transport: from.transport.clone(),
                    method: request.method.as_str().to_owned(),
                    username,
                    reason,
                });
            }
            None => {
                if let Some(user) = &named {
                    self.watch.lock().unvouched(&mut self.out, now, source, user);
                }
            }
        }
        Err(response)
    }

    /// RFC 3261 §8.2, §16.3 item 3, §12.2.2: the answers that need no part.
    fn answer(&mut self, now: Now, request: &Request, from: &Peer, arrived_on: IpAddr) -> Option<Response> {
        if request.method == Method::Ack {
            // §17.2.1: an ACK is never answered.
            return None;
        }
        if let Err(rejection) = self.sip.policy.check(request) {
            return Some(rejection.response(request));
        }
        let local = self.is_local(request, arrived_on);
        if !local && request.max_forwards() == Some(0) {
            return Some(request.reply(483, "Too Many Hops"));
        }
        let response = match request.method {
            Method::Options if local => {
                if let Some(user) = named_user(request, &self.config.access_number) {
                    self.watch.lock().unvouched(&mut self.out, now, from.addr.ip(), &user);
                }
                self.sip.options(request)
            }
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
        let account = match self.authenticate(now, request, from, Challenger::Registrar) {
            Ok(account) => account,
            Err(challenge) => return challenge,
        };
        let (response, changes) = self.registrar.register(request, &account, &self.accounts, from, now.unix_secs);
        for binding in changes.removed {
            let cause = if changes.upserted.iter().any(|b| b.key() == binding.key()) {
                Unregistration::Replaced
            } else {
                Unregistration::Removed
            };
            self.unbound(binding, cause);
        }
        let refreshed: Vec<String> = changes.upserted.iter().map(Binding::key).collect();
        for binding in changes.upserted {
            if changes.new_devices.contains(&binding.key()) {
                self.out.event(Event::Registered {
                    account_id: account.id,
                    username: account.username.clone(),
                    device: binding.key(),
                    contact: binding.uri.to_string(),
                    transport: binding.source.transport.clone(),
                    source: binding.source.addr,
                    expires_at: binding.expires_at,
                    user_agent: binding.user_agent.clone(),
                });
            }
            let write =
                if changes.expiry_only.contains(&binding.key()) { StoreWrite::Refresh } else { StoreWrite::Bind };
            self.out.store(write(Box::new(binding)));
        }
        // RFC 3428 store and forward: a device that comes online gets what is waiting.
        let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
        let location = self.registrar.location.read();
        self.messages.lock().catch_up(&mut ctx, &location, &self.accounts, account.id, changes.new_devices, refreshed);
        response
    }
}

/// The key of the dialog a request belongs to: its Call-ID and our tag (the To tag).
fn dialog_key(request: &Request) -> Option<(SipStr, SipStr)> {
    let id = sambung_sip::dialog::DialogId::of_request(request)?;
    Some((id.call_id, id.local_tag))
}

/// The user a request names (REGISTER in To, the others in the Request-URI), for the guard's
/// count of names a source uses without authenticating; `None` for none, and for service codes
/// (`*97`, the voicemail access number), which are no user's.
fn named_user(request: &Request, access_number: &str) -> Option<String> {
    let to;
    let uri = match request.method {
        Method::Register => {
            to = request.to()?;
            &to.uri
        }
        _ => &request.uri,
    };
    let user = uri.as_sip()?.user_unescaped()?;
    (!user.starts_with('*') && user != access_number).then(|| user.into_owned())
}
