//! Calls through the back-to-back user agent (RFC 3261 §13–§15, RFC 7092).
//!
//! A call has an A leg (the caller's INVITE, answered by us as UAS) and a B leg (our INVITE to
//! the callee, sent as UAC to every registered device at once). Provisional answers pass from
//! B to A; the first 2xx wins and the other forks are cancelled; CANCEL, BYE and in-dialog
//! requests (re-INVITE, UPDATE, INFO ...) are carried across. Each leg is its own dialog with
//! its own Call-ID, tags and CSeq space, so neither side learns the other's addresses.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use sambung_sip::dialog::{Dialog, DialogId};
use sambung_sip::transaction::{self, Peer, TxKey};
use sambung_sip::{HeaderName, Method, Request, Response, SipStr, Transport, Uri, Via};
use tracing::{debug, info};

mod app_leg;
mod keys;
mod media;
mod prack;
mod route;
mod session_timer;

pub use app_leg::{DND_OFF, DND_ON, FORWARD_OFF, FORWARD_ON, OWN_MAILBOX};
pub use keys::{CallKey, KeySource};
use media::{CallMedia, LegTransport, MediaFailure, Role, is_secure};
use session_timer::LegTimer;

use super::apps::{App, AppRequest};
use super::{Core, Now, Persist, insert};
use crate::registrar::{Account, AuthOutcome, Binding, Challenger, Target};
use route::{Cause, Hop, Resolved, Step};

/// A call's number within this server.
pub type CallId = u64;

/// Which leg of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller's leg: we are its UAS.
    A,
    /// The callee's leg: we are its UAC.
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What a client transaction of ours is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// The INVITE to device `fork` of the callee.
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
}

/// One device of the callee being rung.
#[derive(Debug)]
struct Fork {
    key: TxKey,
    peer: Peer,
    invite: Request,
    device: String,
    /// The final status, once there is one (408 for a timeout).
    status: Option<u16>,
}

/// Why and by whom a call ended, for the call record.
#[derive(Clone, Debug)]
struct Ending {
    status: u16,
    reason: String,
    side: &'static str,
}

#[derive(Debug)]
struct Call {
    caller: Arc<Account>,
    callee: Arc<Account>,
    caller_device: String,
    a_key: TxKey,
    a_invite: Request,
    a_peer: Peer,
    a_dialog: Option<Dialog>,
    /// The caller's INVITE carried no offer: the offer comes in the 2xx, the answer in the
    /// caller's ACK, which we then carry to the callee (RFC 3264 §2).
    late_offer: bool,
    b_call_id: SipStr,
    b_tag: String,
    forks: Vec<Fork>,
    winner: Option<usize>,
    b_dialog: Option<Dialog>,
    /// Unix seconds.
    started: u64,
    answered: Option<u64>,
    ring_deadline: std::time::Instant,
    ended: Option<Ending>,
    /// Session timers of the A and B legs (RFC 4028), once answered.
    timers: [Option<LegTimer>; 2],
    /// The relay session anchoring the call's media.
    media: Option<CallMedia>,
    /// Reliable provisional responses, when the caller requires them (RFC 3262).
    reliable: Option<prack::Reliable>,
    /// The account whose devices ring now: the callee, or where the call was forwarded.
    target: Arc<Account>,
    /// Every target so far, the dialled callee first (History-Info, Diversion, loops).
    history: Vec<Hop>,
    /// Forks before this index rang an earlier target: their answers come too late.
    stage: usize,
    /// The current target is an outside URI: its failure ends the call.
    outside: bool,
    /// The ring deadline leads to no-answer forwarding or voicemail rather than a failure.
    no_answer_step: bool,
    /// The caller's offer as the B side gets it (relay address, B ports), for each target.
    b_offer: Option<sambung_media::sdp::SessionDescription>,
    /// Max-Forwards of the B legs.
    hops: u32,
    /// The application answering the call instead of a device.
    app: Option<AppLeg>,
    /// What the caller dialled, for the call record, when it names no account (`*97`).
    dialled: Option<String>,
}

/// An application on the B side of a call.
#[derive(Debug)]
struct AppLeg {
    /// For the call record: `voicemail`, `mailbox`, `feature code`.
    name: &'static str,
    answered: bool,
    /// The application said it is done: no Stop is sent.
    ended: bool,
    /// What the caller hears when the application cannot answer (status, reason, side).
    fallback: (u16, &'static str, &'static str),
    /// The application's SDP answer, given again to re-offers.
    answer: Option<Bytes>,
}

impl Call {
    fn peer(&self, side: Side) -> Option<&Peer> {
        match side {
            Side::A => Some(&self.a_peer),
            Side::B => self.winner.map(|i| &self.forks[i].peer),
        }
    }

    /// Starts ringing a new target: later forks get a B-leg identity of their own, so that a
    /// device rung again (or a proxy on the way) does not take them for a merged request
    /// (RFC 3261 §8.2.2.2).
    fn new_stage(&mut self) {
        if !self.forks.is_empty() {
            self.b_call_id = SipStr::from(token(16));
            self.b_tag = token(8);
        }
        self.stage = self.forks.len();
    }

    /// Answered by a device or an application.
    fn is_answered(&self) -> bool {
        self.winner.is_some() || self.app.as_ref().is_some_and(|a| a.answered)
    }

    fn dialog_mut(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::A => self.a_dialog.as_mut(),
            Side::B => self.b_dialog.as_mut(),
        }
    }
}

/// Every call in progress and the indexes that find them.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    next: CallId,
    calls: HashMap<CallId, Call>,
    /// The caller's INVITE server transaction.
    by_invite: HashMap<TxKey, CallId>,
    /// Our client transactions.
    by_client: HashMap<TxKey, (CallId, Purpose)>,
    /// Each leg's dialog, by Call-ID and our tag.
    by_dialog: HashMap<(SipStr, SipStr), (CallId, Side)>,
    /// Keys pressed, for the applications ([`Core::poll_key`]).
    keys: std::collections::VecDeque<CallKey>,
}

impl Calls {
    /// The earliest ring timeout.
    pub(crate) fn next_deadline(&self) -> Option<std::time::Instant> {
        let ring = self
            .calls
            .values()
            .filter(|c| c.winner.is_none() && c.ended.is_none() && c.app.is_none())
            .flat_map(|c| std::iter::once(c.ring_deadline).chain(c.reliable.as_ref().and_then(|r| r.deadline())));
        let timers =
            self.calls.values().filter(|c| c.ended.is_none()).flat_map(|c| c.timers.iter().flatten().map(|t| t.due));
        ring.chain(timers).min()
    }

    /// How many calls are in progress.
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }
}

/// Random bytes for tags, Call-IDs and branches.
pub(super) fn token(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    sambung_sip::text::to_hex(&random)
}

impl Core {
    /// An INVITE outside any dialog: a new call (RFC 3261 §13.3.1).
    pub(super) fn on_invite(&mut self, now: Now, key: TxKey, request: Request, from: Peer) {
        let caller = match self.auth.authenticate(&request, &self.accounts, Challenger::Proxy, now.unix_secs) {
            AuthOutcome::Authenticated(account) => account,
            AuthOutcome::Challenge(challenge) => return self.respond(key, challenge, now),
        };
        // §16.3 item 3, §16.6 item 3: the B leg carries one hop less; none left is a loop.
        let hops = request.max_forwards().unwrap_or(70);
        if hops <= 1 {
            return self.respond(key, request.reply(483, "Too Many Hops"), now);
        }
        let dialled = match &request.uri {
            Uri::Sip(uri) => uri.user_unescaped().map(|u| u.into_owned()),
            Uri::Other { .. } => None,
        };
        let service = dialled.as_deref().and_then(|user| self.service_code(now, &caller, user));
        let callee = match &service {
            Some(_) => Some(caller.clone()),
            None => dialled.as_deref().and_then(|user| self.accounts.by_user_part(user).cloned()),
        };
        let Some(callee) = callee.filter(|c| !c.disabled) else {
            return self.respond(key, request.reply(404, "Not Found"), now);
        };
        if let Some(too_small) = self.session_too_small(&request) {
            return self.respond(key, too_small, now);
        }
        self.respond(key, request.reply(100, "Trying"), now);

        let id = self.calls.next;
        self.calls.next += 1;
        let callee_aor = format!("sip:{}@{}", callee.username, request_host(&request));
        let mut call = Call {
            caller: caller.clone(),
            callee: callee.clone(),
            caller_device: device_name(&request, &from),
            a_key: key,
            late_offer: request.body.is_empty(),
            a_invite: request,
            a_peer: from,
            a_dialog: None,
            b_call_id: SipStr::from(token(16)),
            b_tag: token(8),
            forks: Vec::new(),
            winner: None,
            b_dialog: None,
            started: now.unix_secs,
            answered: None,
            ring_deadline: now.instant + self.ring_timeout,
            ended: None,
            timers: [None, None],
            media: None,
            reliable: None,
            target: callee.clone(),
            history: vec![Hop { uri: callee_aor, account: Some(callee.id), cause: None }],
            stage: 0,
            outside: false,
            no_answer_step: false,
            b_offer: None,
            hops: hops - 1,
            app: None,
            dialled: service.as_ref().and(dialled),
        };
        if prack::requires_100rel(&call.a_invite) {
            call.reliable = Some(prack::Reliable::new(rand::random::<u32>() >> 2));
        }
        info!(call = id, caller = caller.username, callee = callee.username, "call");
        if !call.a_invite.body.is_empty() {
            let body = call.a_invite.body.clone();
            let transport = LegTransport::of(&call.a_peer);
            match self.take_sdp(&mut call, id, Side::A, &body, transport, Role::Offer) {
                Ok(offer) => call.b_offer = offer,
                Err(failure) => {
                    debug!(call = id, %failure, "offer refused");
                    let (status, reason) = failure.status();
                    return self.respond(key, call.a_invite.reply(status, reason), now);
                }
            }
        }
        self.calls.by_invite.insert(key, id);
        // The caller's early dialog: PRACK, or a BYE before the answer, finds the call here.
        if let Some(early) = Core::early_dialog_key(&call.a_invite) {
            self.calls.by_dialog.insert(early, (id, prack::EARLY_SIDE));
        }
        self.calls.calls.insert(id, call);
        match service {
            Some(app) => self.start_app(now, id, app, (480, "Temporarily Unavailable", "system")),
            None => {
                let online = !self.registrar.location.bindings(callee.id).is_empty();
                self.proceed(now, id, route::first_step(&callee.routing, online), "system");
            }
        }
    }

    /// Takes the next step of call `id` (see [`route`]); a failure is charged to `side`.
    fn proceed(&mut self, now: Now, id: CallId, step: Step, side: &'static str) {
        match step {
            Step::Ring => self.ring_target(now, id),
            Step::Forward(target, cause) => self.forward(now, id, target, cause),
            Step::Voicemail(status, reason) => {
                let Some(call) = self.calls.calls.get(&id) else { return };
                let account = call.target.clone();
                let name = account.extension.clone().unwrap_or_else(|| account.username.clone());
                info!(call = id, mailbox = account.username, "to voicemail");
                self.start_app(now, id, App::Voicemail { account_id: account.id, name }, (status, reason, side));
            }
            Step::Fail(status, reason) => self.fail_call(now, id, status, reason, side),
        }
    }

    /// Rings every registered device of the call's target account.
    fn ring_target(&mut self, now: Now, id: CallId) {
        let Some(call) = self.calls.calls.get(&id) else { return };
        let target = call.target.clone();
        let bindings: Vec<Binding> = self.registrar.location.bindings(target.id).to_vec();
        if bindings.is_empty() {
            return self.proceed(now, id, route::offline_step(&target.routing), "system");
        }
        let can_answer = call.b_offer.is_some() && call.media.is_some();
        let no_answer_step = route::has_no_answer_step(&target.routing, can_answer);
        let ring_for = if no_answer_step {
            std::time::Duration::from_secs(u64::from(target.routing.no_answer_secs)).min(self.ring_timeout)
        } else {
            self.ring_timeout
        };
        let mut refused_media = false;
        let mut sent = 0;
        let Some(mut call) = self.calls.calls.remove(&id) else { return };
        call.new_stage();
        call.outside = false;
        call.no_answer_step = no_answer_step;
        call.ring_deadline = now.instant + ring_for;
        for binding in &bindings {
            let peer = binding.target();
            let Some(body) = self.b_body(&mut call, id, &peer, &binding.uri) else {
                refused_media = true;
                continue;
            };
            if self.send_fork(now, &mut call, id, &binding.uri, &peer, body.as_ref(), binding.uri.to_string()) {
                sent += 1;
            }
        }
        self.calls.calls.insert(id, call);
        debug!(call = id, account = target.username, devices = sent, "ringing");
        if sent == 0 {
            if refused_media {
                let (status, reason) = MediaFailure::PlainRtp.status();
                return self.fail_call(now, id, status, reason, "system");
            }
            self.proceed(now, id, route::offline_step(&target.routing), "system");
        }
    }

    /// The body of a new B-leg INVITE toward `peer`: the caller's offer as that leg gets it, the
    /// caller's body unchanged without a relay, none for a late offer. `None` when the device
    /// would need plain RTP where it is not allowed.
    fn b_body(&self, call: &mut Call, id: CallId, peer: &Peer, uri: &Uri) -> Option<Option<Bytes>> {
        match (&call.b_offer, call.media.as_mut()) {
            (Some(offer), Some(media)) => match media.for_leg(Side::B, offer, is_secure(peer)) {
                Some(body) => Some(Some(body)),
                None => {
                    debug!(call = id, device = %uri, "not rung: it would need plain RTP");
                    None
                }
            },
            _ => Some((!call.a_invite.body.is_empty()).then(|| call.a_invite.body.clone())),
        }
    }

    /// Sends one B-leg INVITE of `call` and records it as a fork; false if it could not be sent.
    #[allow(clippy::too_many_arguments)]
    fn send_fork(
        &mut self,
        now: Now,
        call: &mut Call,
        id: CallId,
        uri: &Uri,
        peer: &Peer,
        body: Option<&Bytes>,
        device: String,
    ) -> bool {
        let invite = self.b_invite(call, uri, peer, body);
        match self.transactions.send_request(invite.clone(), peer.clone(), now.instant) {
            Ok(fork_key) => {
                self.calls.by_client.insert(fork_key, (id, Purpose::Fork(call.forks.len())));
                call.forks.push(Fork { key: fork_key, peer: peer.clone(), invite, device, status: None });
                true
            }
            Err(error) => {
                debug!(call = id, %error, "fork not sent");
                false
            }
        }
    }

    /// Forwards call `id` to `target` for `cause`: stops what rings now, then rings the target.
    fn forward(&mut self, now: Now, id: CallId, target: Target, cause: Cause) {
        let resolved = self.resolve(&target);
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if call.history.len() > route::MAX_DIVERSIONS {
            info!(call = id, %target, "too many forwards: loop");
            return self.fail_call(now, id, 482, "Loop Detected", "system");
        }
        let host = request_host(&call.a_invite);
        let hop = match &resolved {
            Resolved::Account(account) => {
                Hop { uri: format!("sip:{}@{host}", account.username), account: Some(account.id), cause: Some(cause) }
            }
            Resolved::Outside(outside) => Hop { uri: outside.0.to_string(), account: None, cause: Some(cause) },
            Resolved::Invalid(why) => {
                // The target's own next step stands in: its voicemail, else unavailable.
                info!(call = id, %target, why, "forwarding target unreachable");
                let step = if call.target.routing.voicemail {
                    Step::Voicemail(480, "Temporarily Unavailable")
                } else {
                    Step::Fail(480, "Temporarily Unavailable")
                };
                return self.proceed(now, id, step, "system");
            }
        };
        let seen = call.history.iter().any(|h| match (h.account, hop.account) {
            (Some(a), Some(b)) => a == b,
            _ => h.uri.eq_ignore_ascii_case(&hop.uri),
        });
        if seen {
            info!(call = id, %target, "forwarding loop stopped");
            return self.fail_call(now, id, 482, "Loop Detected", "system");
        }
        info!(call = id, %target, cause = cause.code(), "forwarded");
        // No-answer forwarding: the first devices stop ringing before the target rings.
        let pending: Vec<TxKey> =
            call.forks[call.stage..].iter().filter(|f| f.status.is_none()).map(|f| f.key).collect();
        call.stage = call.forks.len();
        call.history.push(hop);
        for key in pending {
            let _ = self.transactions.cancel(key, now.instant);
        }
        match resolved {
            Resolved::Account(account) => {
                let online = !self.registrar.location.bindings(account.id).is_empty();
                let step = route::first_step(&account.routing, online);
                if let Some(call) = self.calls.calls.get_mut(&id) {
                    call.target = account;
                }
                self.proceed(now, id, step, "system");
            }
            Resolved::Outside(outside) => self.ring_outside(now, id, &outside.0, &outside.1),
            Resolved::Invalid(_) => {}
        }
    }

    /// Which account or address a forwarding target names.
    fn resolve(&self, target: &Target) -> Resolved {
        let local = |user: &str| match self.accounts.by_user_part(user) {
            Some(account) if !account.disabled => Resolved::Account(account.clone()),
            _ => Resolved::Invalid("no such account"),
        };
        match target {
            Target::Local(user) => local(user),
            Target::Uri(uri) => {
                // A URI naming this server (a domain of ours, or our address and port) is a
                // local account; another port, even on this host, is some other device.
                let ours = uri.as_sip().is_some_and(|sip| self.local.contains_address(&sip.host, sip.port));
                match (ours, uri.as_sip().and_then(|s| s.user_unescaped())) {
                    (true, Some(user)) => local(&user),
                    _ => match route::outside_peer(uri) {
                        Some(peer) => Resolved::Outside(Box::new((uri.clone(), peer))),
                        None => Resolved::Invalid("needs DNS or a stream transport, not supported yet"),
                    },
                }
            }
        }
    }

    /// Rings an outside SIP URI (over UDP).
    fn ring_outside(&mut self, now: Now, id: CallId, uri: &Uri, peer: &Peer) {
        let Some(mut call) = self.calls.calls.remove(&id) else { return };
        call.new_stage();
        call.outside = true;
        call.no_answer_step = false;
        call.ring_deadline = now.instant + self.ring_timeout;
        let sent = match self.b_body(&mut call, id, peer, uri) {
            Some(body) => self.send_fork(now, &mut call, id, uri, peer, body.as_ref(), uri.to_string()),
            None => false,
        };
        self.calls.calls.insert(id, call);
        if !sent {
            self.fail_call(now, id, 480, "Temporarily Unavailable", "system");
        }
    }

    /// Our INVITE to one device (or outside URI) of the call's current target.
    fn b_invite(&self, call: &Call, uri: &Uri, peer: &Peer, body: Option<&Bytes>) -> Request {
        let a = &call.a_invite;
        let domain = request_host(a);
        let display = a.from().and_then(|f| f.display_name().map(|d| d.into_owned())).unwrap_or_default();
        let from = if display.is_empty() {
            format!("<sip:{}@{domain}>;tag={}", call.caller.username, call.b_tag)
        } else {
            format!("{} <sip:{}@{domain}>;tag={}", sambung_sip::text::quote(&display), call.caller.username, call.b_tag)
        };
        let mut headers = sambung_sip::Headers::new();
        headers.push(HeaderName::MaxForwards, SipStr::from(call.hops.to_string()));
        headers.push(HeaderName::From, SipStr::from(from));
        // The dialled callee stays in To, as retargeting leaves it (RFC 7044 §1).
        headers.push(HeaderName::To, SipStr::from(format!("<{}>", call.history[0].uri)));
        headers.push(HeaderName::CallId, call.b_call_id.clone());
        headers.push(HeaderName::CSeq, SipStr::from_static("1 INVITE"));
        headers.push(HeaderName::Contact, self.contact_for(peer));
        headers.push(HeaderName::Allow, self.capabilities.allow.clone());
        headers.push(HeaderName::Supported, SipStr::from_static("replaces, timer, 100rel, histinfo"));
        for name in [HeaderName::Subject, HeaderName::AlertInfo, HeaderName::Priority] {
            if let Some(v) = a.headers.get(name.clone()) {
                headers.push(name, v.clone());
            }
        }
        if call.history.len() > 1 {
            headers.push(HeaderName::from("History-Info"), SipStr::from(route::history_info(&call.history)));
            for diversion in route::diversions(&call.history) {
                headers.push(HeaderName::from("Diversion"), SipStr::from(diversion));
            }
        }
        let mut invite = Request { method: Method::Invite, uri: uri.clone(), headers, body: Bytes::new() };
        self.add_session_request_headers(&mut invite);
        if let Some(body) = body {
            let content_type = a.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
            invite.set_body(content_type, body.clone());
        }
        self.push_our_via(&mut invite, peer);
        invite
    }

    /// Our Via on a request we send to `peer` (RFC 3261 §8.1.1.7), with `rport` (RFC 3581).
    pub(super) fn push_our_via(&self, request: &mut Request, peer: &Peer) {
        let (host, port) = self.local_address(peer);
        let mut via =
            Via::new(peer.transport.clone(), host, Some(port), &transaction::new_branch(&rand::random::<[u8; 12]>()));
        via.params.set("rport", None);
        transaction::push_via(request, via);
    }

    /// Our Contact toward `peer`.
    pub(super) fn contact_for(&self, peer: &Peer) -> SipStr {
        let (host, port) = self.local_address(peer);
        let transport = match peer.transport {
            Transport::Udp => String::new(),
            ref t => format!(";transport={}", t.as_str().to_ascii_lowercase()),
        };
        SipStr::from(format!("<sip:sambung@{host}:{port}{transport}>"))
    }

    /// A response we pass to the caller: status and reason of the callee's, our dialog's
    /// headers (RFC 3261 §8.2.6 via `reply`, the A leg's To tag), our Contact, the body.
    fn a_response(&self, call: &Call, status: u16, reason: &str, body: Option<(&str, Bytes)>) -> Response {
        let mut response = call.a_invite.reply(status, reason);
        if status > 100 && status < 300 {
            insert(&mut response, HeaderName::Contact, self.contact_for(&call.a_peer));
        }
        if let Some((content_type, body)) = body.filter(|(_, b)| !b.is_empty()) {
            response.set_body(content_type, body);
        }
        response
    }

    /// A response to one of our client transactions that belongs to a call.
    pub(super) fn on_call_response(&mut self, now: Now, key: TxKey, response: Response) -> bool {
        let Some(&(id, purpose)) = self.calls.by_client.get(&key) else { return false };
        if response.status >= 200 {
            self.calls.by_client.remove(&key);
        }
        match purpose {
            Purpose::Fork(fork) => self.on_fork_response(now, id, fork, response),
            Purpose::Relay { server, to, invite } => self.on_relay_response(now, id, key, server, to, invite, response),
            Purpose::Refresh(_) if matches!(response.status, 408 | 481) => {
                // §10: the refresh failed because the session is gone on that side.
                self.end_call_both(now, id);
            }
            Purpose::Refer if response.status >= 200 => {
                // The caller's phone took the transfer (or refused it): our leg ends.
                debug!(call = id, status = response.status, "call-back transfer answered");
                self.hang_up(now, id, Side::A, "system");
            }
            Purpose::Bye | Purpose::Prack | Purpose::Refresh(_) | Purpose::Refer => {}
        }
        true
    }

    fn on_fork_response(&mut self, now: Now, id: CallId, fork: usize, response: Response) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        let status = response.status;
        if status == 100 {
            return;
        }
        if status < 200 {
            if call.winner.is_some() || call.ended.is_some() || call.app.is_some() || fork < call.stage {
                return;
            }
            self.prack_if_reliable(now, id, fork, &response);
            let transport = fork_transport(self.calls.calls.get(&id), fork);
            // Early media (RFC 3960): the 183's answer is anchored like the 2xx's.
            let role = match self.calls.calls.get(&id) {
                Some(call) if call.late_offer => Role::Offer,
                _ => Role::Answer { provisional: true },
            };
            let body = sdp_of(&response).and_then(|(content_type, body)| {
                self.media_for(id, Side::B, &body, transport, role).ok().map(|b| (content_type, b))
            });
            let Some(call) = self.calls.calls.get(&id) else { return };
            let a = self.a_response(call, status, &response.reason, body);
            self.send_provisional(now, id, a);
            return;
        }
        if status < 300 {
            return self.on_fork_answered(now, id, fork, response);
        }
        call.forks[fork].status = Some(status);
        if call.winner.is_some() || call.ended.is_some() || call.app.is_some() || fork < call.stage {
            return;
        }
        if call.forks[call.stage..].iter().all(|f| f.status.is_some()) {
            let (status, reason) = best_failure(&call.forks[call.stage..], &response);
            let step = if call.outside {
                None
            } else {
                let routing = &call.target.routing;
                match status {
                    486 | 600 | 603 => Some(route::busy_step(routing, status, &reason)),
                    408 | 480 | 503 => Some(route::offline_step(routing)),
                    _ => None,
                }
            };
            match step {
                Some(step) => self.proceed(now, id, step, "callee"),
                None => self.fail_call(now, id, status, &reason, "callee"),
            }
        }
    }

    /// RFC 3262 §4: a reliable provisional answer gets its PRACK.
    fn prack_if_reliable(&mut self, now: Now, id: CallId, fork: usize, response: &Response) {
        let requires_100rel = response.headers.values(HeaderName::Require).any(|t| t.eq_ignore_ascii_case("100rel"));
        let Some(rseq) = response.headers.get(HeaderName::RSeq).filter(|_| requires_100rel) else { return };
        let Some(call) = self.calls.calls.get(&id) else { return };
        let invite = &call.forks[fork].invite;
        let Ok(mut early) = Dialog::new_uac(invite, response) else { return };
        let peer = call.forks[fork].peer.clone();
        let mut prack = early.create_request(Method::Prack);
        prack.headers.push(HeaderName::RAck, SipStr::from(format!("{} 1 INVITE", sambung_sip::text::trim_lws(rseq))));
        self.push_our_via(&mut prack, &peer);
        if let Ok(key) = self.transactions.send_request(prack, peer, now.instant) {
            self.calls.by_client.insert(key, (id, Purpose::Prack));
        }
    }

    fn on_fork_answered(&mut self, now: Now, id: CallId, fork: usize, response: Response) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        call.forks[fork].status = Some(response.status);
        let fork_key = call.forks[fork].key;
        let peer = call.forks[fork].peer.clone();
        let Ok(mut b_dialog) = Dialog::new_uac(&call.forks[fork].invite, &response) else {
            debug!(call = id, "2xx without what a dialog needs");
            return;
        };
        if call.winner.is_some() || call.ended.is_some() || call.app.is_some() || fork < call.stage {
            // Another device answered too, or one that was cancelled when the call moved on
            // (or the caller gave up): §13.2.2.4, ACK then BYE.
            let mut ack = b_dialog.create_request(Method::Ack);
            self.push_our_via(&mut ack, &peer);
            self.transactions.send_ack(fork_key, ack, peer.clone());
            let mut bye = b_dialog.create_request(Method::Bye);
            self.push_our_via(&mut bye, &peer);
            if let Ok(key) = self.transactions.send_request(bye, peer, now.instant) {
                self.calls.by_client.insert(key, (id, Purpose::Bye));
            }
            return;
        }
        call.winner = Some(fork);
        call.answered = Some(now.unix_secs);
        let ack = (!call.late_offer).then(|| b_dialog.create_request(Method::Ack));
        let b_id = b_dialog.id().clone();
        call.b_dialog = Some(b_dialog);
        // §16.7 item 10 in spirit: the other devices stop ringing.
        let others: Vec<TxKey> = call
            .forks
            .iter()
            .enumerate()
            .filter(|(i, f)| *i != fork && f.status.is_none())
            .map(|(_, f)| f.key)
            .collect();
        if let Some(mut ack) = ack {
            self.push_our_via(&mut ack, &peer);
            self.transactions.send_ack(fork_key, ack, peer.clone());
        }
        for key in others {
            let _ = self.transactions.cancel(key, now.instant);
        }
        let b_timer = self.b_session(&response, now.instant);
        let role = match self.calls.calls.get(&id) {
            Some(call) if call.late_offer => Role::Offer,
            _ => Role::Answer { provisional: false },
        };
        let body = match sdp_of(&response) {
            Some((content_type, body)) => {
                match self.media_for(id, Side::B, &body, fork_transport(self.calls.calls.get(&id), fork), role) {
                    Ok(body) => Some((content_type, body)),
                    Err(failure) => {
                        debug!(call = id, %failure, "answer refused");
                        let (status, reason) = failure.status();
                        if let Some(call) = self.calls.calls.get(&id) {
                            let refused = self.a_response(call, status, reason, None);
                            let a_key = call.a_key;
                            self.respond(a_key, refused, now);
                        }
                        return self.hang_up(now, id, Side::B, "system");
                    }
                }
            }
            None => None,
        };
        let Some(call) = self.calls.calls.get(&id) else { return };
        let mut a = self.a_response(call, response.status, &response.reason, body);
        let a_timer = self.answer_session(&call.a_invite, &mut a, now.instant);
        let a_dialog = Dialog::new_uas(&call.a_invite, &a).ok();
        let a_key = call.a_key;
        info!(call = id, device = call.forks[fork].device, "answered");
        self.respond(a_key, a, now);
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if let Some(d) = &a_dialog {
            self.calls.by_dialog.insert((d.id().call_id.clone(), d.id().local_tag.clone()), (id, Side::A));
        }
        call.a_dialog = a_dialog;
        call.timers = [Some(a_timer), b_timer];
        self.calls.by_dialog.insert((b_id.call_id, b_id.local_tag), (id, Side::B));
    }

    /// The call failed before anyone answered: the caller gets `status`.
    fn fail_call(&mut self, now: Now, id: CallId, status: u16, reason: &str, side: &'static str) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        call.ended = Some(Ending { status, reason: reason.to_owned(), side });
        let pending: Vec<TxKey> = call.forks.iter().filter(|f| f.status.is_none()).map(|f| f.key).collect();
        for key in pending {
            let _ = self.transactions.cancel(key, now.instant);
        }
        let Some(call) = self.calls.calls.get(&id) else { return };
        let response = self.a_response(call, status, reason, None);
        let a_key = call.a_key;
        self.respond(a_key, response, now);
        self.finish(now, id);
    }

    /// The caller's CANCEL (RFC 3261 §9.2): 200 for the CANCEL, the forks cancelled, 487 for
    /// the INVITE. Returns false when the INVITE is not a call's.
    pub(super) fn on_call_cancel(&mut self, now: Now, invite: TxKey) -> bool {
        let Some(&id) = self.calls.by_invite.get(&invite) else { return false };
        if self.calls.calls.get(&id).is_some_and(|c| !c.is_answered() && c.ended.is_none()) {
            self.fail_call(now, id, 487, "Request Terminated", "caller");
        }
        true
    }

    /// The ACK for our 2xx to the caller. With a late offer it carries the answer, which the
    /// callee is still waiting for in our ACK.
    pub(super) fn on_call_ack(&mut self, request: &Request) {
        let Some(id) = DialogId::of_request(request).and_then(|d| self.calls.by_dialog.get(&(d.call_id, d.local_tag)))
        else {
            return;
        };
        let (id, _) = *id;
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if !call.late_offer {
            return;
        }
        call.late_offer = false;
        let Some(fork) = call.winner else { return };
        let (fork_key, peer) = (call.forks[fork].key, call.forks[fork].peer.clone());
        let transport = LegTransport::of(&call.a_peer);
        let body = if request.body.is_empty() {
            None
        } else {
            self.media_for(id, Side::A, &request.body, transport, Role::Answer { provisional: false }).ok()
        };
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        let Some(dialog) = call.b_dialog.as_mut() else { return };
        let mut ack = dialog.create_request(Method::Ack);
        if let Some(body) = body {
            let content_type = request.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
            ack.set_body(content_type, body);
        }
        self.push_our_via(&mut ack, &peer);
        self.transactions.send_ack(fork_key, ack, peer);
    }

    /// A request inside one of the calls' dialogs. Hands the request back (`Some`) when it
    /// names no call, for the generic answers (481).
    pub(super) fn on_call_request(&mut self, now: Now, key: TxKey, request: Request) -> Option<Request> {
        let Some(dialog_id) = DialogId::of_request(&request) else { return Some(request) };
        let Some(&(id, side)) = self.calls.by_dialog.get(&(dialog_id.call_id, dialog_id.local_tag)) else {
            return Some(request);
        };
        let Some(call) = self.calls.calls.get_mut(&id) else { return Some(request) };
        if let Some(dialog) = call.dialog_mut(side)
            && let Err(error) = dialog.handle_request(&request)
        {
            let response = request.reply(error.status(), "");
            self.respond(key, response, now);
            return None;
        }
        match request.method {
            Method::Bye => {
                self.respond(key, request.reply(200, "OK"), now);
                let hangup = if side == Side::A { "caller" } else { "callee" };
                let answered = self.calls.calls.get(&id).is_some_and(Call::is_answered);
                if answered {
                    self.hang_up(now, id, side.other(), hangup);
                } else {
                    // RFC 3261 §15: the caller may end its early dialog with BYE.
                    self.fail_call(now, id, 487, "Request Terminated", hangup);
                }
            }
            Method::Prack => self.on_prack(now, id, key, &request),
            // RFC 4028 §7.4: an UPDATE without an offer only refreshes this leg's session.
            Method::Update if request.body.is_empty() => self.answer_refresh(now, id, side, key, &request),
            _ if self.calls.calls.get(&id).is_some_and(|c| c.app.is_some()) => {
                self.app_call_request(now, id, side, key, &request)
            }
            Method::Info if keys::info_key(&request).is_some() => {
                if let Some((pressed, duration)) = keys::info_key(&request) {
                    self.key_pressed(id, side, pressed, duration, KeySource::Info);
                }
                self.relay(now, id, side, key, request)
            }
            Method::Invite | Method::Update => {
                self.refreshed(id, side, now.instant);
                self.relay(now, id, side, key, request)
            }
            _ => self.relay(now, id, side, key, request),
        }
        None
    }

    /// Carries a request from one leg to the other (re-INVITE, UPDATE, INFO, MESSAGE ...).
    fn relay(&mut self, now: Now, id: CallId, from_side: Side, server: TxKey, request: Request) {
        let to_side = from_side.other();
        // Only INVITE and UPDATE carry offers, PRACK an answer; other bodies (INFO's DTMF,
        // MESSAGE, NOTIFY) pass as they are.
        let role = match request.method {
            Method::Invite | Method::Update => Some(Role::Offer),
            Method::Prack => Some(Role::Answer { provisional: false }),
            _ => None,
        };
        let offer = role == Some(Role::Offer) && is_sdp(request.headers.get(HeaderName::ContentType));
        let body = match role {
            Some(role) if !request.body.is_empty() && is_sdp(request.headers.get(HeaderName::ContentType)) => {
                let from = self.calls.calls.get(&id).and_then(|c| c.peer(from_side)).map(LegTransport::of);
                match self.media_for(id, from_side, &request.body, from.unwrap_or(LegTransport::unknown()), role) {
                    Ok(body) => Some(body),
                    Err(failure) => {
                        self.reject_offer(id, from_side, offer);
                        let (status, reason) = failure.status();
                        return self.respond(server, request.reply(status, reason), now);
                    }
                }
            }
            _ => (!request.body.is_empty()).then(|| request.body.clone()),
        };
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        let (Some(peer), true) = (call.peer(to_side).cloned(), call.dialog_mut(to_side).is_some()) else {
            self.reject_offer(id, from_side, offer);
            return self.respond(server, request.reply(491, "Request Pending"), now);
        };
        let Some(dialog) = call.dialog_mut(to_side) else { return };
        let mut out = dialog.create_request(request.method.clone());
        // Session-Expires is not carried across: each leg has its own timer (RFC 4028).
        for name in [HeaderName::Event, HeaderName::from("Info-Package")] {
            if let Some(v) = request.headers.get(name.clone()) {
                out.headers.push(name, v.clone());
            }
        }
        if let Some(body) = body {
            let content_type = request.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
            out.set_body(content_type, body);
        }
        self.push_our_via(&mut out, &peer);
        let invite = request.method == Method::Invite;
        match self.transactions.send_request(out, peer, now.instant) {
            Ok(key) => {
                self.calls.by_client.insert(key, (id, Purpose::Relay { server, to: to_side, invite }));
            }
            Err(_) => {
                self.reject_offer(id, from_side, offer);
                self.respond(server, request.reply(500, "Server Internal Error"), now)
            }
        }
    }

    /// An offer from `offerer` went nowhere: the session stays as before it.
    fn reject_offer(&mut self, id: CallId, offerer: Side, offer: bool) {
        if offer && let Some(media) = self.calls.calls.get_mut(&id).and_then(|c| c.media.as_mut()) {
            media.reject(offerer);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_relay_response(
        &mut self,
        now: Now,
        id: CallId,
        key: TxKey,
        server: TxKey,
        to: Side,
        invite: bool,
        response: Response,
    ) {
        if response.status == 100 {
            return;
        }
        let Some(request) = self.transactions.request(server).cloned() else { return };
        let mut out = request.reply(response.status, &response.reason);
        let offered = matches!(request.method, Method::Invite | Method::Update)
            && !request.body.is_empty()
            && is_sdp(request.headers.get(HeaderName::ContentType));
        if response.status >= 300 {
            // The offer was refused: the session stays as it was (RFC 3264 §8).
            self.reject_offer(id, to.other(), offered);
        }
        let role = if offered { Role::Answer { provisional: response.status < 200 } } else { Role::Offer };
        let carries_sdp = matches!(request.method, Method::Invite | Method::Update | Method::Prack);
        if let Some((content_type, body)) = sdp_of(&response).filter(|_| carries_sdp && response.status < 300) {
            let transport = self.calls.calls.get(&id).and_then(|c| c.peer(to)).map(LegTransport::of);
            match self.media_for(id, to, &body, transport.unwrap_or(LegTransport::unknown()), role) {
                Ok(body) => out.set_body(content_type, body),
                Err(failure) => debug!(call = id, %failure, "answer to a re-offer not anchored"),
            }
        } else if let Some((content_type, body)) = body_of(&response).filter(|(t, _)| !is_sdp_type(t)) {
            out.set_body(content_type, body);
        }
        if invite && response.is_success() {
            // The re-INVITE's 2xx is ACKed on its leg by us (§13.2.2.4); the originator ACKs
            // ours on the other leg.
            if let Some(call) = self.calls.calls.get_mut(&id)
                && let (Some(peer), Some(dialog)) = (call.peer(to).cloned(), call.dialog_mut(to))
            {
                let _ = dialog.handle_response(&response);
                let mut ack = dialog.create_request(Method::Ack);
                self.push_our_via(&mut ack, &peer);
                self.transactions.send_ack(key, ack, peer);
            }
            if let Some(origin) = self.transactions.peer(server).cloned() {
                insert(&mut out, HeaderName::Contact, self.contact_for(&origin));
            }
        }
        self.respond(server, out, now);
    }

    /// Ends an answered call: BYE to `side`, the call record written.
    fn hang_up(&mut self, now: Now, id: CallId, side: Side, by: &'static str) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if call.ended.is_some() {
            return;
        }
        call.ended = Some(Ending { status: 200, reason: "OK".into(), side: by });
        if let (Some(peer), Some(dialog)) = (call.peer(side).cloned(), call.dialog_mut(side)) {
            let mut bye = dialog.create_request(Method::Bye);
            self.push_our_via(&mut bye, &peer);
            if let Ok(key) = self.transactions.send_request(bye, peer, now.instant) {
                self.calls.by_client.insert(key, (id, Purpose::Bye));
            }
        }
        self.finish(now, id);
    }

    /// Ends an answered call from the server's side: BYE on both legs (a session expired, the
    /// caller never acknowledged our 2xx ...).
    pub(super) fn end_call_both(&mut self, now: Now, id: CallId) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if call.ended.is_some() {
            return;
        }
        call.ended = Some(Ending { status: 200, reason: "OK".into(), side: "system" });
        for side in [Side::A, Side::B] {
            let Some(call) = self.calls.calls.get_mut(&id) else { return };
            let (Some(peer), Some(dialog)) = (call.peer(side).cloned(), call.dialog_mut(side)) else { continue };
            let mut bye = dialog.create_request(Method::Bye);
            self.push_our_via(&mut bye, &peer);
            if let Ok(key) = self.transactions.send_request(bye, peer, now.instant) {
                self.calls.by_client.insert(key, (id, Purpose::Bye));
            }
        }
        self.finish(now, id);
    }

    /// Our 2xx to the caller was never acknowledged (RFC 3261 §13.3.1.4: the UAS sends BYE).
    pub(super) fn on_no_ack(&mut self, now: Now, invite: TxKey) {
        if let Some(&id) = self.calls.by_invite.get(&invite) {
            self.end_call_both(now, id);
        }
    }

    /// Nobody answered in time: the caller hears 480 (RFC 3261 §13.3.1.1 leaves the choice).
    pub(super) fn expire_rings(&mut self, now: Now) {
        let due: Vec<CallId> = self
            .calls
            .calls
            .iter()
            .filter(|(_, c)| {
                c.winner.is_none() && c.ended.is_none() && c.app.is_none() && c.ring_deadline <= now.instant
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(call) = self.calls.calls.get(&id) else { continue };
            if call.no_answer_step {
                let step = route::no_answer_step(&call.target.routing);
                self.proceed(now, id, step, "system");
            } else {
                self.fail_call(now, id, 480, "No Answer", "system");
            }
        }
    }

    /// Removes the call and writes its record.
    fn finish(&mut self, now: Now, id: CallId) {
        let Some(call) = self.calls.calls.remove(&id) else { return };
        self.calls.by_invite.remove(&call.a_key);
        self.calls.by_client.retain(|_, (c, purpose)| *c != id || *purpose == Purpose::Bye);
        self.calls.by_dialog.retain(|_, (c, _)| *c != id);
        let ending = call.ended.clone().unwrap_or(Ending { status: 200, reason: "OK".into(), side: "system" });
        let callee_device =
            call.winner.map(|i| call.forks[i].device.clone()).or_else(|| call.app.as_ref().map(|a| a.name.to_owned()));
        if call.app.as_ref().is_some_and(|a| !a.ended) {
            self.app_requests.push_back(AppRequest::Stop { call: id });
        }
        let duration = call.answered.map_or(0, |a| now.unix_secs.saturating_sub(a));
        info!(call = id, status = ending.status, by = ending.side, duration, "call ended");
        self.persist.push_back(Persist::Cdr(CallRecord {
            call_id: call.a_invite.call_id().unwrap_or_default().to_owned(),
            caller: call.caller.username.clone(),
            callee: call.dialled.clone().unwrap_or_else(|| call.callee.username.clone()),
            caller_device: Some(call.caller_device),
            callee_device,
            started_at: call.started,
            answered_at: call.answered,
            ended_at: now.unix_secs,
            duration_secs: duration,
            cause_code: ending.status,
            cause_reason: ending.reason,
            hangup_side: ending.side,
        }));
    }
}

/// A finished call, for the store (issue: call records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub caller_device: Option<String>,
    pub callee_device: Option<String>,
    pub started_at: u64,
    pub answered_at: Option<u64>,
    pub ended_at: u64,
    pub duration_secs: u64,
    /// The final status of the call: 200 for an answered call, else what the caller heard.
    pub cause_code: u16,
    pub cause_reason: String,
    /// `caller`, `callee` or `system`.
    pub hangup_side: &'static str,
}

impl Core {
    /// Takes a description from `from` in call `id` and returns it as the other leg gets it
    /// (see [`CallMedia`]). Allocates the call's relay on the first description. Without a
    /// relay (unit tests of signalling) the body passes unchanged.
    fn media_for(
        &mut self,
        id: CallId,
        from: Side,
        body: &Bytes,
        transport: LegTransport,
        role: Role,
    ) -> Result<Bytes, MediaFailure> {
        let Some(mut call) = self.calls.calls.remove(&id) else { return Ok(body.clone()) };
        let result = self.take_sdp(&mut call, id, from, body, transport, role);
        let to = from.other();
        let secure = call.peer(to).is_some_and(is_secure);
        let out = match result {
            Ok(Some(sdp)) => match call.media.as_mut().and_then(|m| m.for_leg(to, &sdp, secure)) {
                Some(body) => Ok(body),
                None => Err(MediaFailure::PlainRtp),
            },
            Ok(None) => Ok(body.clone()),
            Err(failure) => Err(failure),
        };
        self.calls.calls.insert(id, call);
        out
    }

    /// [`CallMedia::take`] for `call`, creating its media first if needed; `None` without a
    /// relay.
    fn take_sdp(
        &mut self,
        call: &mut Call,
        id: CallId,
        from: Side,
        body: &Bytes,
        transport: LegTransport,
        role: Role,
    ) -> Result<Option<sambung_media::sdp::SessionDescription>, MediaFailure> {
        let Some(relay) = self.media.as_ref() else { return Ok(None) };
        if call.media.is_none() {
            let sdp =
                sambung_media::sdp::SessionDescription::parse(body).map_err(|e| MediaFailure::BadSdp(e.to_string()))?;
            let ip = self.media_ip(&call.a_peer);
            call.media =
                Some(CallMedia::new(relay, &format!("call-{id}"), ip, &sdp, self.allow_plain_rtp, &self.codecs)?);
        }
        let Some(media) = call.media.as_mut() else { return Ok(None) };
        media.take(from, body, transport, role).map(Some)
    }
}

fn fork_transport(call: Option<&Call>, fork: usize) -> LegTransport {
    call.and_then(|c| c.forks.get(fork)).map_or(LegTransport::unknown(), |f| LegTransport::of(&f.peer))
}

/// The best final answer when every device failed (RFC 3261 §16.7 item 6, simplified): a
/// 6xx wins, then busy, then a real refusal, and 480 when nobody answered at all.
fn best_failure(forks: &[Fork], last: &Response) -> (u16, String) {
    let statuses: Vec<u16> = forks.iter().filter_map(|f| f.status).collect();
    if let Some(s) = statuses.iter().copied().find(|s| *s >= 600) {
        return (s, sambung_sip::reason_phrase(s).to_owned());
    }
    if statuses.contains(&486) {
        return (486, "Busy Here".to_owned());
    }
    if let Some(s) = statuses.iter().copied().find(|s| !matches!(s, 408 | 480 | 487 | 503)) {
        let reason = if s == last.status { last.reason.to_string() } else { sambung_sip::reason_phrase(s).to_owned() };
        return (s, reason);
    }
    (480, "Temporarily Unavailable".to_owned())
}

/// True for a Content-Type naming SDP (none at all is taken as SDP, as RFC 3261 §20.15 allows
/// only with a body of the default type).
fn is_sdp(content_type: Option<&SipStr>) -> bool {
    content_type.is_none_or(|t| is_sdp_type(t))
}

/// The response's body when it is SDP.
fn sdp_of(response: &Response) -> Option<(&str, Bytes)> {
    body_of(response).filter(|(content_type, _)| is_sdp_type(content_type))
}

fn is_sdp_type(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/sdp")
}

fn body_of(response: &Response) -> Option<(&str, Bytes)> {
    if response.body.is_empty() {
        return None;
    }
    let content_type = response.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
    Some((content_type, response.body.clone()))
}

/// The host the caller addressed (our domain as the caller knows it), for the AORs we write.
pub(super) fn request_host(request: &Request) -> String {
    super::host_of(&request.uri)
}

/// How the caller's device shows in the call record: its User-Agent and address.
fn device_name(request: &Request, from: &Peer) -> String {
    match request.headers.get(HeaderName::UserAgent) {
        Some(ua) => format!("{ua} ({})", from.addr),
        None => from.addr.to_string(),
    }
}
