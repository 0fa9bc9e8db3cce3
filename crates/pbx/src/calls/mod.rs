//! Calls through the back-to-back user agent (RFC 3261 §13–§15, RFC 7092).
//!
//! A call has an A leg (the caller's INVITE, answered by us as UAS) and a B leg (our INVITE to
//! the callee, sent as UAC to every registered device at once, or an application of the server).
//! Provisional answers pass from B to A; the first 2xx wins and the other forks are cancelled;
//! CANCEL, BYE and in-dialog requests (re-INVITE, UPDATE, INFO ...) are carried across. Each leg
//! is its own dialog with its own Call-ID, tags and CSeq space, so neither side learns the
//! other's addresses. Media is anchored in a session of the media runtime (see [`media`]).
//!
//! Each [`Call`] owns its state ([`State`]: opening its media, ringing, answered, ending) and
//! gets, for each input, only the shared context ([`Ctx`]) and the read-only environment it
//! routes with ([`CallEnv`]). [`Calls`] is only the table: it finds the call an input is for,
//! and forgets a call once it is over.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use sambung_sip::transaction::{Peer, TxKey};
use sambung_sip::{HeaderName, Request, Response, SipStr};
use tracing::{debug, info, trace, warn};

mod app_leg;
mod call;
mod connect;
mod dialog;
mod forks;
mod group;
mod keys;
mod media;
pub(crate) mod outside;
mod picture;
mod prack;
mod recording;
pub(crate) mod replaces;
mod route;
mod session_timer;
mod setup;
mod transfer;

pub use media::MediaFailure;

use crate::apps::{App, AppEnd, AppRequest};
use crate::config::{LocalDomains, PbxConfig};
use crate::events::Event;
use crate::guard::fraud::Fraud;
use crate::media::MediaEvent;
use crate::pbx::Ctx;
use crate::registrar::{Account, Accounts, Location};
use crate::shard::{Locked, Shard};
use call::{Call, State};

/// A call's number within this server (also its media session's).
pub type CallId = u64;

/// Which leg of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg: we are its UAS.
    A,
    /// The callee's leg: we are its UAC.
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// What a client transaction of a call is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The INVITE to device (or outside URI) `fork` of the call.
    Fork(usize),
    /// A request carried across to leg `to`: its answer goes back on `server`.
    Relay { server: TxKey, to: Side, invite: bool },
    /// A BYE we send (the call is already over for us).
    Bye,
    /// A PRACK for a reliable provisional response (RFC 3262).
    Prack,
    /// A session refresh we sent on a leg (RFC 4028).
    Refresh(Side),
    /// A REFER sending the caller to call someone back (from the mailbox menu).
    Refer,
    /// Our REFER of a transfer (an operator or a phone asked for it).
    Transfer,
    /// A NOTIFY telling a phone how the transfer it asked for goes.
    Notify,
    /// An INFO of our own (a keyframe request): its answer changes nothing.
    Info,
}

/// A destination the toll-fraud limits refuse.
#[derive(Debug)]
struct Refusal {
    limit: crate::guard::FraudLimit,
    destination: String,
}

/// Who an authenticated caller's INVITE goes to: an account (by username, extension or one
/// of its numbers), a number out through the trunks, or an outside URI (when the
/// Request-URI names another domain); `Dialled` leaves it to the user part (404 when it
/// names nobody).
fn callee_of(env: &CallEnv<'_>, request: &Request, local: bool) -> Result<setup::Callee, Refusal> {
    use crate::guard::FraudLimit;
    let Some(sip) = request.uri.as_sip() else { return Ok(setup::Callee::Dialled) };
    if !local {
        let uri = request.uri.clone();
        if !crate::guard::fraud::uri_allowed(&env.config.guard.fraud, &uri) {
            return Err(Refusal { limit: FraudLimit::Destination, destination: uri.to_string() });
        }
        let party = outside::outside_party(&uri.to_string(), "");
        return Ok(setup::Callee::Outside(Box::new(outside::OutsideRoute::to_uri(uri)), party));
    }
    let Some(user) = sip.user_unescaped() else { return Ok(setup::Callee::Dialled) };
    if env.accounts.by_user_part(&user).is_some() {
        return Ok(setup::Callee::Dialled);
    }
    if let Some(group) = env.config.groups.find(&user) {
        return Ok(group_callee(env, group));
    }
    if let Some(menu) = env.config.menus.find(&user) {
        return Ok(menu_callee(menu));
    }
    if let Some(slot) = crate::menus::parking_slot(env.config.parking, &user) {
        let app = App::Parking { slot: slot.clone(), parker: None };
        return Ok(setup::Callee::Service(app, outside::outside_party(&slot, "")));
    }
    let trunks = &env.config.trunks;
    let Some(number) = trunks.plan.read(&user) else { return Ok(setup::Callee::Dialled) };
    if !number.emergency
        && let Some(account) = env.accounts.by_number(&number.digits)
    {
        return Ok(setup::Callee::Account(account.clone()));
    }
    if let Some(group) = number_group(env, &number.digits).filter(|_| !number.emergency) {
        return Ok(group);
    }
    if !number.emergency && !number_allowed(env, &number.digits) {
        return Err(Refusal { limit: FraudLimit::Destination, destination: number.digits });
    }
    let party = outside::outside_party(&number.digits, "");
    match outside::OutsideRoute::to_number(number, trunks) {
        Some(route) => Ok(setup::Callee::Outside(Box::new(route), party)),
        None => Ok(setup::Callee::Dialled),
    }
}

/// A call to ring group `group`.
fn group_callee(env: &CallEnv<'_>, group: usize) -> setup::Callee {
    let name = &env.config.groups.groups[group].name;
    let ring = group::GroupRing::start(env, group);
    setup::Callee::Group(Box::new(ring), outside::outside_party(name, ""))
}

/// A call answered by the auto-attendant's menu (or the call queue) `menu`.
fn menu_callee(menu: &crate::menus::Menu) -> setup::Callee {
    setup::Callee::Service(menu.app(), outside::outside_party(&menu.name, ""))
}

/// A call to a phone number (E.164) of the service that rings a group or reaches a menu
/// rather than an account (numbers name either by its name), if it does.
fn number_group(env: &CallEnv<'_>, number: &str) -> Option<setup::Callee> {
    let name = env.accounts.group_of_number(number)?;
    match env.config.groups.find(name) {
        Some(group) => Some(group_callee(env, group)),
        None => env.config.menus.find(name).map(menu_callee),
    }
}

/// True when the toll-fraud destinations (`[fraud] outside`) allow calling `number` (E.164).
fn number_allowed(env: &CallEnv<'_>, number: &str) -> bool {
    crate::guard::fraud::number_allowed(&env.config.guard.fraud, number)
}

/// What a call reads to route: the accounts, where their devices are, the settings and our
/// own domains.
#[derive(Debug)]
pub(crate) struct CallEnv<'a> {
    pub accounts: &'a Accounts,
    pub location: &'a Location,
    pub config: &'a PbxConfig,
    pub local: &'a LocalDomains,
    /// Accounts' presence: who is in a call.
    pub subscriptions: &'a crate::subscriptions::Subscriptions,
    /// Where each round-robin group starts next (shared by the shards).
    pub turns: &'a Locked<crate::groups::Turns>,
}

/// Every call in progress. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Calls {
    /// The next call's number: numbers step by the shard count from the shard's index, so
    /// that a call's number (which is also its media session's) names its shard.
    next: CallId,
    shard: Shard,
    calls: HashMap<CallId, Call>,
    /// The caller's INVITE server transaction, for CANCEL and for a 2xx never acknowledged.
    by_invite: HashMap<TxKey, CallId>,
    /// Each call's earliest timer, in order: the driver asks for the next one after every
    /// input, so it must not cost a walk over every call.
    deadlines: BTreeSet<(Instant, CallId)>,
    deadline_of: HashMap<CallId, Instant>,
    /// Each caller's calls, for the toll-fraud limits: shared by every shard.
    fraud: Locked<Fraud>,
    /// Every answered call's dialogs, for INVITEs with Replaces: shared by every shard.
    replaceable: replaces::Replaceable,
    /// The calls each source address has not seen answered yet (its unfinished INVITEs),
    /// pruned lazily.
    unanswered: HashMap<std::net::IpAddr, Vec<CallId>>,
}

impl Calls {
    pub(crate) fn new(shard: Shard, fraud: Locked<Fraud>, replaceable: replaces::Replaceable) -> Calls {
        Calls {
            next: shard.index as CallId,
            shard,
            calls: HashMap::new(),
            by_invite: HashMap::new(),
            deadlines: BTreeSet::new(),
            deadline_of: HashMap::new(),
            fraud,
            replaceable,
            unanswered: HashMap::new(),
        }
    }

    /// How many calls are in progress.
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Entries of every map of the calls, in all (0 with no call in progress).
    pub(crate) fn retained(&self) -> usize {
        self.calls.len()
            + self.by_invite.len()
            + self.deadlines.len()
            + self.deadline_of.len()
            + self.unanswered.len()
            + self.fraud.lock().retained()
    }

    /// The earliest timer of any call.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// An INVITE outside any dialog from an authenticated `caller` (RFC 3261 §13.3.1);
    /// `service` is the application a service code named; `local`: its Request-URI names
    /// this server (else it goes out to that URI).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_invite(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        caller: Arc<Account>,
        key: TxKey,
        request: Request,
        from: Peer,
        service: Option<App>,
        local: bool,
    ) {
        let id = self.next;
        let account = caller.id;
        let chosen = match service {
            Some(_) => Ok(setup::Callee::Dialled),
            None => callee_of(env, &request, local),
        };
        let chosen = match chosen {
            Ok(chosen) => chosen,
            Err(refusal) => {
                let (status, reason) = refusal.limit.status();
                warn!(
                    username = caller.username,
                    destination = refusal.destination,
                    "toll-fraud limit: destination not allowed"
                );
                ctx.out.event(Event::FraudRefused {
                    account_id: account,
                    username: caller.username.clone(),
                    limit: refusal.limit,
                    destination: Some(refusal.destination),
                });
                return ctx.respond(key, request.reply(status, reason));
            }
        };
        // An emergency call always goes out: no limit of the caller's or its source's applies.
        let emergency = matches!(&chosen, setup::Callee::Outside(route, _) if route.is_emergency());
        if !emergency && !self.unanswered_below_limit(env, from.addr.ip()) {
            debug!(remote = %from.addr, "too many unanswered calls from this address");
            let mut busy = request.reply(503, "Service Unavailable");
            crate::sip::insert(&mut busy, HeaderName::from("Retry-After"), SipStr::from("5"));
            return ctx.respond(key, busy);
        }
        if !emergency && let Err(limit) = self.fraud.lock().place(&env.config.guard.fraud, account, ctx.now.instant) {
            let (status, reason) = limit.status();
            warn!(username = caller.username, limit = limit.as_str(), remote = %from.addr, "toll-fraud limit: call refused");
            ctx.out.event(Event::FraudRefused {
                account_id: account,
                username: caller.username.clone(),
                limit,
                destination: None,
            });
            return ctx.respond(key, request.reply(status, reason));
        }
        if emergency {
            warn!(username = caller.username, dialled = %request.uri, "emergency call");
        }
        let counted = !emergency;
        // An INVITE with Replaces (RFC 3891) takes over the call on the other side of a dialog
        // of ours: that dialog must be one of an answered call.
        let replacing = match request.headers.get(HeaderName::from("Replaces")) {
            None => None,
            Some(value) => match replaces::parse(value).and_then(|d| self.replaceable.lock().get(&d).cloned()) {
                Some(other) => Some(other),
                None => {
                    if counted {
                        self.fraud.lock().ended(account);
                    }
                    return ctx.respond(key, request.reply(481, "Call/Transaction Does Not Exist"));
                }
            },
        };
        match Call::start(ctx, env, id, caller, key, request, from, service, replacing, chosen) {
            Some(mut call) => {
                call.counted = counted;
                self.admit(ctx, env, id, key, call, !emergency);
            }
            None if counted => self.fraud.lock().ended(account),
            None => {}
        }
    }

    /// A carrier's INVITE (trunk `trunk` by its source address): to the account its number is
    /// assigned to, or that it names in one of our domains; `404` otherwise.
    pub(crate) fn on_trunk_invite(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        trunk: usize,
        key: TxKey,
        request: Request,
        from: Peer,
    ) {
        let id = self.next;
        let name = env.config.trunks.trunks.get(trunk).map_or("", |t| t.name.as_str());
        let numbers = outside::dialled_number(&request, &env.config.trunks);
        // A number of ours; else, from a peer that calls our users by name (a SIP domain
        // peering with this one), the account the Request-URI names in one of our domains.
        let by_name = || {
            let sip = request.uri.as_sip()?;
            if !env.local.contains_address(&sip.host, sip.port) {
                return None;
            }
            env.accounts.by_user_part(&sip.user_unescaped()?)
        };
        // The first number that is ours: an account's, or a ring group's.
        let ours = numbers.iter().find_map(|n| {
            let account = env.accounts.by_number(n).filter(|a| !a.disabled).cloned().map(setup::Callee::Account);
            account.or_else(|| number_group(env, n))
        });
        let by_name = || by_name().filter(|a| !a.disabled).cloned().map(setup::Callee::Account);
        let Some(chosen) = ours.or_else(by_name) else {
            info!(trunk = name, dialled = %request.uri, "carrier's call for no number of ours");
            return ctx.respond(key, request.reply(404, "Not Found"));
        };
        let from_header = request.from();
        // The caller as the carrier says: its number (read by the dial plan), or its user part
        // when that is a plain name (a peering domain's user); anything else is anonymous.
        let plain = |user: &str| {
            !user.is_empty()
                && user.len() <= 64
                && user.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+*#".contains(&b))
        };
        let caller_number = from_header
            .as_ref()
            .and_then(|f| f.uri.as_sip().and_then(|s| s.user_unescaped()).map(|u| u.into_owned()))
            .map(|user| env.config.trunks.plan.read(&user).map_or(user, |n| n.digits))
            .filter(|user| plain(user))
            .unwrap_or_else(|| "anonymous".to_owned());
        let display: String = from_header
            .as_ref()
            .and_then(|f| f.display_name().map(|d| d.into_owned()))
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let callee = match &chosen {
            setup::Callee::Account(account) | setup::Callee::Group(_, account) | setup::Callee::Service(_, account) => {
                account.username.clone()
            }
            _ => String::new(),
        };
        info!(trunk = name, caller = caller_number, callee, "call from a carrier");
        let caller = outside::outside_party(&caller_number, &display);
        if let Some(call) = Call::start(ctx, env, id, caller, key, request, from, None, None, chosen) {
            self.admit(ctx, env, id, key, call, false);
        }
    }

    /// Takes a new call into the table.
    fn admit(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, id: CallId, key: TxKey, call: Call, per_source: bool) {
        self.next += self.shard.count as CallId;
        if per_source && env.config.guard.max_unanswered_per_source > 0 {
            self.unanswered.entry(crate::guard::source_key(call.a.peer.addr.ip())).or_default().push(id);
        }
        self.by_invite.insert(key, id);
        self.calls.insert(id, call);
        self.settle(ctx, id);
    }

    /// A lookup for call `id`'s way out finished.
    pub(crate) fn on_resolved(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        id: CallId,
        result: Result<Vec<sambung_dns::Target>, String>,
    ) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.on_resolved(ctx, env, result);
        }
        self.settle(ctx, id);
    }

    /// True when `source` may start one more call: its calls still opening or ringing are
    /// fewer than the limit. Only that source's list is walked (at most the limit long).
    fn unanswered_below_limit(&mut self, env: &CallEnv<'_>, source: std::net::IpAddr) -> bool {
        // Each shard takes its part of a source's calls (Call-IDs spread them evenly), so the
        // limit is split between the shards: together they never allow more.
        let limit = (env.config.guard.max_unanswered_per_source as usize).div_ceil(self.shard.count);
        if limit == 0 || env.config.guard.trusted.iter().any(|net| net.contains(source)) {
            return true;
        }
        let source = crate::guard::source_key(source);
        let Some(ids) = self.unanswered.get_mut(&source) else { return true };
        let calls = &self.calls;
        ids.retain(|id| calls.get(id).is_some_and(|c| matches!(c.state, State::Opening { .. } | State::Ringing(_))));
        if ids.is_empty() {
            self.unanswered.remove(&source);
            return true;
        }
        ids.len() < limit
    }

    /// A response to a call's client transaction.
    pub(crate) fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        id: CallId,
        purpose: Purpose,
        key: TxKey,
        response: Response,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return trace!(call = id, status = response.status, "response for a call that is gone");
        };
        call.on_response(ctx, env, purpose, key, response);
        self.settle(ctx, id);
    }

    /// A request inside one of a call's dialogs.
    pub(crate) fn on_dialog_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        id: CallId,
        side: Side,
        key: TxKey,
        request: Request,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return ctx.respond(key, request.reply(481, "Call/Transaction Does Not Exist"));
        };
        call.on_dialog_request(ctx, env, side, key, request);
        self.settle(ctx, id);
    }

    /// The caller's CANCEL for INVITE `invite` (RFC 3261 §9.2); false when the INVITE is not a
    /// call's.
    pub(crate) fn on_cancel(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, invite: TxKey) -> bool {
        let Some(&id) = self.by_invite.get(&invite) else { return false };
        if let Some(call) = self.calls.get_mut(&id) {
            call.on_cancel(ctx, env);
        }
        self.settle(ctx, id);
        true
    }

    /// The ACK for a 2xx we sent to a caller.
    pub(crate) fn on_ack(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, request: &Request) {
        let Some(id) = sambung_sip::dialog::DialogId::of_request(request)
            .and_then(|d| ctx.sip.dialogs.get(&(d.call_id, d.local_tag)).copied())
            .and_then(|owner| match owner {
                crate::sip::DialogOwner::Call(id, _) => Some(id),
                crate::sip::DialogOwner::Subscription | crate::sip::DialogOwner::Originate(_) => None,
            })
        else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.on_ack(ctx, env, request);
        }
        self.settle(ctx, id);
    }

    /// Our 2xx to the caller was never acknowledged (RFC 3261 §13.3.1.4: the UAS sends BYE).
    pub(crate) fn on_no_ack(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, invite: TxKey) {
        let Some(&id) = self.by_invite.get(&invite) else { return };
        if let Some(call) = self.calls.get_mut(&id) {
            call.end_both(ctx, env);
        }
        self.settle(ctx, id);
    }

    /// The media runtime answered.
    pub(crate) fn on_media_event(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, event: MediaEvent) {
        let id = match &event {
            MediaEvent::Opened { session, .. } | MediaEvent::Failed { session, .. } => *session,
        };
        match self.calls.get_mut(&id) {
            Some(call) => call.on_media_event(ctx, env, event),
            // The call ended while its session was opening: the session goes too.
            None if matches!(event, MediaEvent::Opened { .. }) => {
                ctx.out.media(crate::media::MediaCommand::Close { session: id });
            }
            None => {}
        }
        self.settle(ctx, id);
    }

    /// An application is done with call `id`.
    pub(crate) fn on_app_ended(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, id: CallId, end: AppEnd) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.on_app_ended(ctx, env, end);
        }
        self.settle(ctx, id);
    }

    /// The application answering call `id` asks that its caller be connected to `target`.
    pub(crate) fn on_app_connect(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, id: CallId, target: &str) {
        match self.calls.get_mut(&id) {
            Some(call) => call.on_app_connect(ctx, env, target),
            None => ctx.out.app(AppRequest::ConnectFailed { call: id, status: 481 }),
        }
        self.settle(ctx, id);
    }

    /// The application of call `partner` picks up call `id` if it still rings.
    pub(crate) fn on_pickup(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, id: CallId, partner: CallId) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.pick_up(ctx, env, partner);
        }
        self.settle(ctx, id);
    }

    /// Records call `id` from now on at an operator's request; false when this shard has no such
    /// call or it cannot be recorded.
    pub(crate) fn record_call(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, id: CallId) -> bool {
        let Some(call) = self.calls.get_mut(&id) else { return false };
        let started = call.start_recording(ctx, env, env.config.record_notice);
        self.settle(ctx, id);
        started
    }

    /// Ends call `id` at an operator's request; false when this shard has no such call.
    pub(crate) fn end_by_operator(&mut self, ctx: &mut Ctx<'_>, id: CallId) -> bool {
        let Some(call) = self.calls.get_mut(&id) else { return false };
        call.end_by_operator(ctx);
        self.settle(ctx, id);
        true
    }

    /// Sends the party on `side` of call `id` to `target` at an operator's request; false when
    /// this shard has no such call.
    pub(crate) fn transfer_by_operator(&mut self, ctx: &mut Ctx<'_>, id: CallId, side: Side, target: String) -> bool {
        let Some(call) = self.calls.get_mut(&id) else { return false };
        call.transfer_by_operator(ctx, side, target);
        self.settle(ctx, id);
        true
    }

    /// The relay wants a keyframe of the phone on `side` of call `id` by SIP INFO.
    pub(crate) fn keyframe_wanted(&mut self, ctx: &mut Ctx<'_>, id: CallId, side: Side, stream: usize) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.ask_keyframe_by_info(ctx, side, stream);
        }
    }

    /// Fires the timers that are due: ring timeouts, reliable provisionals, session timers.
    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        let now = ctx.now.instant;
        let due: Vec<CallId> = self.deadlines.iter().take_while(|(at, _)| *at <= now).map(|(_, id)| *id).collect();
        for id in due {
            if let Some(call) = self.calls.get_mut(&id) {
                call.on_timeout(ctx, env);
            }
            self.settle(ctx, id);
        }
    }

    /// After anything happened to call `id`: forgets it once it is over and nothing of it is
    /// pending, else files its next timer.
    fn settle(&mut self, ctx: &mut Ctx<'_>, id: CallId) {
        // The call's dialogs are in the shared table while it is answered.
        if let Some(call) = self.calls.get_mut(&id) {
            match (call.is_answered(), call.listed.is_some()) {
                (true, false) => {
                    if let Some(pairs) = call.replaceable_dialogs() {
                        let mut table = self.replaceable.lock();
                        call.listed = Some([pairs[0].0.clone(), pairs[1].0.clone()]);
                        for (dialog, other) in pairs {
                            table.insert(dialog, other);
                        }
                    }
                }
                (false, true) => {
                    if let Some(listed) = call.listed.take() {
                        let mut table = self.replaceable.lock();
                        for dialog in listed {
                            table.remove(&dialog);
                        }
                    }
                }
                _ => {}
            }
        }
        if self.calls.get(&id).is_some_and(|c| matches!(c.state, State::Ending) && c.settled()) {
            if let Some(call) = self.calls.remove(&id) {
                self.by_invite.remove(&call.a.key);
                if call.counted {
                    self.fraud.lock().ended(call.caller.id);
                }
                let source = crate::guard::source_key(call.a.peer.addr.ip());
                if let Some(ids) = self.unanswered.get_mut(&source) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        self.unanswered.remove(&source);
                    }
                }
            }
            ctx.sip.forget_call(id);
        }
        let deadline = self.calls.get(&id).and_then(Call::deadline);
        if self.deadline_of.get(&id).copied() != deadline {
            if let Some(old) = self.deadline_of.remove(&id) {
                self.deadlines.remove(&(old, id));
            }
            if let Some(at) = deadline {
                self.deadlines.insert((at, id));
                self.deadline_of.insert(id, at);
            }
        }
    }
}
