//! A call's start and its routing: the caller's INVITE, the media session, ringing each target
//! in turn (forwarding, voicemail), and the B-leg INVITEs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sambung_sip::transaction::{Peer, TxKey};
use sambung_sip::{HeaderName, Method, Request, SipStr, Uri};
use tracing::{debug, info, warn};

use super::call::{ALeg, Call, Fork, Media, Ringing, State};
use super::media::{CallMedia, LegTransport, MediaFailure};
use super::prack::{self, Reliable};
use super::route::{self, Cause, Hop, Resolved, Step};
use super::session_timer;
use super::{CallEnv, CallId, Purpose, Side};
use crate::apps::App;
use crate::events::Event;
use crate::guard::FraudLimit;
use crate::media::MediaCommand;
use crate::pbx::Ctx;
use crate::registrar::{Account, Target};
use crate::sip::{DialogOwner, Owner, host_of};

impl Call {
    /// A new call for an authenticated caller's INVITE, or `None` when the INVITE was refused
    /// at once (then it is answered here).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        id: CallId,
        caller: Arc<Account>,
        key: TxKey,
        request: Request,
        from: Peer,
        mut service: Option<App>,
        replacing: Option<super::replaces::OtherLeg>,
        chosen: Callee,
    ) -> Option<Call> {
        // §16.3 item 3, §16.6 item 3: the B leg carries one hop less; none left is a loop.
        let hops = request.max_forwards().unwrap_or(70);
        if hops <= 1 {
            ctx.respond(key, request.reply(483, "Too Many Hops"));
            return None;
        }
        let dialled = match &request.uri {
            Uri::Sip(uri) => uri.user_unescaped().map(|u| u.into_owned()),
            Uri::Other { .. } => None,
        };
        let mut group = None;
        // The callee is a party standing for a group or menu: its hop is the dialled URI.
        let stand_in = matches!(chosen, Callee::Group(..) | Callee::Service(..));
        let (callee, outside) = match chosen {
            Callee::Account(account) => (Some(account), None),
            Callee::Outside(route, party) => (Some(party), Some(route)),
            Callee::Group(ring, party) => {
                group = Some(ring);
                (Some(party), None)
            }
            Callee::Service(app, party) => {
                service = Some(app);
                (Some(party), None)
            }
            Callee::Dialled => match &service {
                Some(_) => (Some(caller.clone()), None),
                None => (dialled.as_deref().and_then(|user| env.accounts.by_user_part(user).cloned()), None),
            },
        };
        let Some(callee) = callee.filter(|c| !c.disabled) else {
            ctx.respond(key, request.reply(404, "Not Found"));
            return None;
        };
        if let Some(too_small) = session_timer::too_small(env.config, &request) {
            ctx.respond(key, too_small);
            return None;
        }
        // The caller's offer is checked before anything is allocated for it.
        let offer = if request.body.is_empty() {
            None
        } else {
            match super::media::check_offer(&request.body, LegTransport::of(&from), env.config.allow_plain_rtp) {
                Ok(offer) => Some(offer),
                Err(failure) => {
                    debug!(call = id, %failure, "offer refused");
                    let (status, reason) = failure.status();
                    ctx.respond(key, request.reply(status, reason));
                    return None;
                }
            }
        };
        ctx.respond(key, request.reply(100, "Trying"));

        let first_hop = match &outside {
            // Out of the service (or to a group): the dialled URI as it was dialled.
            Some(_) => Hop { uri: request.uri.to_string(), account: None, cause: None },
            None if stand_in => Hop { uri: request.uri.to_string(), account: None, cause: None },
            None => Hop {
                uri: format!("sip:{}@{}", callee.username, request_host(&request)),
                account: Some(callee.id),
                cause: None,
            },
        };
        let reliable = prack::requires_100rel(&request).then(|| Reliable::new(ctx.random.u32() >> 2));
        let mut call = Call {
            id,
            caller: caller.clone(),
            callee: callee.clone(),
            dialled: service.as_ref().and(dialled),
            a: ALeg {
                key,
                late_offer: request.body.is_empty(),
                device: device_name(&request, &from),
                invite: request,
                peer: from,
                reliable,
            },
            b_call_id: SipStr::from(ctx.random.call_id()),
            b_tag: ctx.random.token(8),
            target: callee.clone(),
            history: vec![first_hop],
            hops: hops - 1,
            forks: Vec::new(),
            media: Media::None,
            started: ctx.now.unix_secs,
            state: State::Opening { service: None },
            transfer: None,
            replacing,
            replaces: None,
            listed: None,
            outside,
            counted: false,
            group,
            held: None,
            connecting: None,
            plain_ring: false,
            recording: false,
        };
        info!(call = id, caller = caller.username, callee = callee.username, "call");
        ctx.out.event(Event::CallStarted {
            call: id,
            call_id: call.a.invite.call_id().unwrap_or_default().to_owned(),
            caller: caller.username.clone(),
            callee: call.dialled.clone().unwrap_or_else(|| callee.username.clone()),
            caller_id: caller.id,
            callee_id: callee.id,
            at: ctx.now.unix_secs,
        });
        // The caller's early dialog: PRACK, or a BYE before the answer, finds the call here.
        if let Some(early) = prack::early_dialog_key(&call.a.invite) {
            ctx.sip.add_dialog(early, DialogOwner::Call(id, Side::A));
        }
        match offer {
            Some(offer) => {
                // The offer names the relay's ports: routing waits for them.
                call.state = State::Opening { service };
                call.open_media(ctx, env, offer.media.len());
            }
            None => call.route(ctx, env, service),
        }
        Some(call)
    }

    /// Asks the media runtime for the call's session.
    pub(super) fn open_media(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, streams: usize) {
        if !matches!(self.media, Media::None) {
            return;
        }
        let address = env.config.media_address.unwrap_or_else(|| ctx.sip.media_ip(&self.a.peer));
        let streams = streams.clamp(1, super::media::MAX_STREAMS);
        self.media = Media::Opening { queued: Vec::new() };
        ctx.out.media(MediaCommand::Open { session: self.id, streams, address });
    }

    /// The session is open: the caller's offer is taken, then the call is routed, and the
    /// descriptions that waited are handled.
    pub(super) fn media_opened(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, ports: [Vec<u16>; 2]) {
        let Media::Opening { queued } = std::mem::replace(&mut self.media, Media::None) else {
            // Not asked for (a repeated answer): the session is not ours to keep.
            return ctx.out.media(MediaCommand::Close { session: self.id });
        };
        let ip = env.config.media_address.unwrap_or_else(|| ctx.sip.media_ip(&self.a.peer));
        let config = env.config;
        let fingerprint = config.webrtc_fingerprint.clone();
        let mut media = CallMedia::new(self.id, ip, ports, config.allow_plain_rtp, &config.codecs, fingerprint);
        if self.is_over() {
            self.media = Media::Open(Box::new(media));
            return ctx.out.media(MediaCommand::Close { session: self.id });
        }
        if let State::Opening { service } = &mut self.state {
            let service = service.take();
            let body = self.a.invite.body.clone();
            match media.take(ctx, Side::A, &body, LegTransport::of(&self.a.peer), super::media::Role::Offer) {
                Ok(offer) => media.b_offer = Some(offer),
                Err(failure) => {
                    self.media = Media::Open(Box::new(media));
                    let (status, reason) = failure.status();
                    return self.fail(ctx, status, reason, "system");
                }
            }
            self.media = Media::Open(Box::new(media));
            self.route(ctx, env, service);
        } else {
            self.media = Media::Open(Box::new(media));
        }
        for (fork, response) in queued {
            self.on_fork_response(ctx, env, fork, response);
        }
    }

    /// The session could not be opened: the call cannot be anchored.
    pub(super) fn media_failed(&mut self, ctx: &mut Ctx<'_>, reason: &str) {
        debug!(call = self.id, reason, "no media session");
        self.media = Media::None;
        let (status, reason) = MediaFailure::Relay(reason.to_owned()).status();
        if self.is_answered() {
            self.end_both_sides(ctx);
        } else {
            self.fail(ctx, status, reason, "system");
        }
    }

    /// Routes the call: to the application a service code named, else to the callee.
    fn route(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, service: Option<App>) {
        match service {
            Some(app) => self.start_app(ctx, env, app, (480, "Temporarily Unavailable", "system")),
            None if self.outside.is_some() => self.ring_outside(ctx, env),
            None if self.group.is_some() => self.ring_group(ctx, env),
            None => {
                let online = !env.location.bindings(self.callee.id).is_empty();
                let step = route::first_step(&self.callee.routing, online);
                self.proceed(ctx, env, step, "system");
            }
        }
    }

    /// Takes the next step (see [`route`]); a failure is charged to `side`.
    pub(super) fn proceed(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, step: Step, side: &'static str) {
        match step {
            Step::Ring => self.ring_target(ctx, env),
            Step::Forward(target, cause) => self.forward(ctx, env, target, cause),
            Step::Voicemail(status, reason) => {
                let account = self.target.clone();
                let name = account.extension.clone().unwrap_or_else(|| account.username.clone());
                info!(call = self.id, mailbox = account.username, "to voicemail");
                let app = App::Voicemail { account_id: account.id, name };
                self.start_app(ctx, env, app, (status, reason, side));
            }
            Step::Fail(status, reason) => self.fail(ctx, status, reason, side),
        }
    }

    /// Starts ringing a new target for `ring_for` (`outside`: an outside URI, whose failure ends
    /// the call; `no_answer_step`: the deadline leads on rather than failing). Later forks get
    /// a B-leg identity of their own, so that a device rung again (or a proxy on the way) does
    /// not take them for a merged request (RFC 3261 §8.2.2.2). The devices of the previous
    /// target stop ringing.
    pub(super) fn start_ringing(&mut self, ctx: &mut Ctx<'_>, ring_for: Duration, outside: bool, no_answer_step: bool) {
        if !self.forks.is_empty() {
            self.b_call_id = SipStr::from(ctx.random.call_id());
            self.b_tag = ctx.random.token(8);
        }
        if let State::Ringing(ringing) = &self.state {
            for key in self.pending_forks(ringing.stage) {
                ctx.sip.cancel(key, ctx.now.instant);
            }
        }
        self.state = State::Ringing(Ringing {
            stage: self.forks.len(),
            deadline: ctx.now.instant + ring_for,
            outside,
            no_answer_step,
            alerting: false,
        });
    }

    /// Rings every registered device of the call's target account.
    fn ring_target(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        if let Some(other) = self.replacing.clone() {
            return self.ring_replaced(ctx, env, other);
        }
        let target = self.target.clone();
        if env.location.bindings(target.id).is_empty() {
            return self.proceed(ctx, env, route::offline_step(&target.routing), "system");
        }
        let can_answer = self.media_mut().is_some_and(|m| m.b_offer.is_some());
        let no_answer_step = route::has_no_answer_step(&target.routing, can_answer);
        let ring_for = if no_answer_step {
            Duration::from_secs(u64::from(target.routing.no_answer_secs)).min(env.config.ring_timeout)
        } else {
            env.config.ring_timeout
        };
        self.start_ringing(ctx, ring_for, false, no_answer_step);
        let (sent, refused_media) = self.ring_devices(ctx, env, &target);
        debug!(call = self.id, account = target.username, devices = sent, "ringing");
        if sent == 0 {
            if refused_media {
                let (status, reason) = MediaFailure::PlainRtp.status();
                return self.fail(ctx, status, reason, "system");
            }
            self.proceed(ctx, env, route::offline_step(&target.routing), "system");
        }
    }

    /// Rings every registered device of `account`: how many INVITEs went out, and whether a
    /// device was passed over because it would need plain RTP where it is not allowed.
    pub(super) fn ring_devices(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, account: &Account) -> (usize, bool) {
        let (mut sent, mut refused_media) = (0, false);
        for binding in env.location.bindings(account.id) {
            let peer = binding.target();
            let Some(body) = self.b_body(ctx, &peer, &binding.uri) else {
                refused_media = true;
                continue;
            };
            let rung = Rung { device: binding.uri.to_string(), account: Some(account.id) };
            if self.send_fork(ctx, env, &binding.uri, &peer, body, rung) {
                sent += 1;
            }
        }
        (sent, refused_media)
    }

    /// The body of a new B-leg INVITE toward `peer`: the caller's offer as that leg gets it,
    /// none for a late offer. `None` when the device would need plain RTP where it is not
    /// allowed.
    pub(super) fn b_body(&mut self, ctx: &mut Ctx<'_>, peer: &Peer, uri: &Uri) -> Option<Option<Bytes>> {
        let id = self.id;
        let Some(media) = self.media_mut() else { return Some(None) };
        let Some(offer) = media.b_offer.clone() else { return Some(None) };
        match media.for_device(ctx, &offer, peer) {
            Some(body) => Some(Some(body)),
            None => {
                debug!(call = id, device = %uri, "not rung: it would need plain RTP");
                None
            }
        }
    }

    /// Rings the one device whose call this one takes over (RFC 3891), with `Replaces` naming
    /// our dialog with it: it answers in place of that call and hangs that one up.
    fn ring_replaced(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, other: super::replaces::OtherLeg) {
        self.start_ringing(ctx, env.config.ring_timeout, false, false);
        let Some(body) = self.b_body(ctx, &other.peer, &other.target) else {
            let (status, reason) = MediaFailure::PlainRtp.status();
            return self.fail(ctx, status, reason, "system");
        };
        info!(call = self.id, device = %other.target, "taking over a call (Replaces)");
        let rung = Rung { device: other.target.to_string(), account: other.account };
        if !self.send_fork(ctx, env, &other.target.clone(), &other.peer.clone(), body, rung) {
            self.fail(ctx, 480, "Temporarily Unavailable", "system");
        }
    }

    /// Sends one B-leg INVITE to what `rung` names and records it as a fork; false if it could
    /// not be sent.
    pub(super) fn send_fork(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        uri: &Uri,
        peer: &Peer,
        body: Option<Bytes>,
        rung: Rung,
    ) -> bool {
        let Rung { device, account } = rung;
        let mut invite = self.b_invite(ctx, env, uri, peer, body);
        if let Some(other) = &self.replacing {
            let value = super::replaces::header_for(&other.dialog);
            invite.headers.push(HeaderName::from("Replaces"), SipStr::from(value));
        }
        let owner = Owner::Call(self.id, Purpose::Fork(self.forks.len()));
        match ctx.sip.send_request(invite.clone(), peer.clone(), owner, ctx.random, ctx.now.instant) {
            Ok(key) => {
                // The transaction layer added our Via: the fork keeps the request as sent.
                let invite = ctx.sip.transactions.request(key).cloned().unwrap_or(invite);
                self.forks.push(Fork { key, peer: peer.clone(), invite, device, account, status: None });
                true
            }
            Err(error) => {
                debug!(call = self.id, %error, "fork not sent");
                false
            }
        }
    }

    /// Forwards the call to `target` for `cause`: stops what rings now, then rings the target.
    pub(super) fn forward(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, target: Target, cause: Cause) {
        let resolved = resolve(env, &target);
        if self.history.len() > route::MAX_DIVERSIONS {
            info!(call = self.id, %target, "too many forwards: loop");
            return self.fail(ctx, 482, "Loop Detected", "system");
        }
        let host = request_host(&self.a.invite);
        let hop = match &resolved {
            Resolved::Account(account) => {
                Hop { uri: format!("sip:{}@{host}", account.username), account: Some(account.id), cause: Some(cause) }
            }
            Resolved::Outside(uri) if !crate::guard::fraud::uri_allowed(&env.config.guard.fraud, uri) => {
                let limit = FraudLimit::Destination;
                let destination = uri.to_string();
                warn!(
                    call = self.id,
                    username = self.target.username,
                    destination,
                    limit = limit.as_str(),
                    "toll-fraud limit: outside destination not allowed"
                );
                ctx.out.event(Event::FraudRefused {
                    account_id: self.target.id,
                    username: self.target.username.clone(),
                    limit,
                    destination: Some(destination),
                });
                let (status, reason) = limit.status();
                return self.fail(ctx, status, reason, "system");
            }
            Resolved::Number(number) if !number.emergency && !super::number_allowed(env, &number.digits) => {
                let limit = FraudLimit::Destination;
                warn!(
                    call = self.id,
                    username = self.target.username,
                    destination = number.digits,
                    limit = limit.as_str(),
                    "toll-fraud limit: number not allowed"
                );
                ctx.out.event(Event::FraudRefused {
                    account_id: self.target.id,
                    username: self.target.username.clone(),
                    limit,
                    destination: Some(number.digits.clone()),
                });
                let (status, reason) = limit.status();
                return self.fail(ctx, status, reason, "system");
            }
            Resolved::Outside(uri) => Hop { uri: uri.to_string(), account: None, cause: Some(cause) },
            Resolved::Number(number) => {
                Hop { uri: format!("tel:{}", number.digits), account: None, cause: Some(cause) }
            }
            Resolved::Group(group) => {
                let name = &env.config.groups.groups[*group].name;
                Hop { uri: format!("sip:{name}@{host}"), account: None, cause: Some(cause) }
            }
            Resolved::Invalid(why) if self.connecting.is_some() => {
                info!(call = self.id, %target, why, "no such target to connect to");
                return self.fail(ctx, 404, "Not Found", "system");
            }
            Resolved::Invalid(why) => {
                // The target's own next step stands in: its voicemail, else unavailable.
                info!(call = self.id, %target, why, "forwarding target unreachable");
                let step = if self.target.routing.voicemail {
                    Step::Voicemail(480, "Temporarily Unavailable")
                } else {
                    Step::Fail(480, "Temporarily Unavailable")
                };
                return self.proceed(ctx, env, step, "system");
            }
        };
        let seen = self.history.iter().any(|h| match (h.account, hop.account) {
            (Some(a), Some(b)) => a == b,
            _ => h.uri.eq_ignore_ascii_case(&hop.uri),
        });
        if seen {
            info!(call = self.id, %target, "forwarding loop stopped");
            return self.fail(ctx, 482, "Loop Detected", "system");
        }
        info!(call = self.id, %target, cause = cause.code(), "forwarded");
        self.history.push(hop);
        match resolved {
            Resolved::Account(account) => {
                let online = !env.location.bindings(account.id).is_empty();
                let step = route::first_step(&account.routing, online);
                self.target = account;
                self.proceed(ctx, env, step, "system");
            }
            Resolved::Outside(uri) => {
                self.outside = Some(Box::new(super::outside::OutsideRoute::to_uri(uri)));
                self.ring_outside(ctx, env);
            }
            Resolved::Number(number) => {
                let route = super::outside::OutsideRoute::to_number(number, &env.config.trunks);
                match route {
                    Some(route) => {
                        self.outside = Some(Box::new(route));
                        self.ring_outside(ctx, env);
                    }
                    None => self.fail(ctx, 480, "Temporarily Unavailable", "system"),
                }
            }
            Resolved::Group(group) => {
                let name = env.config.groups.groups[group].name.clone();
                self.target = super::outside::outside_party(&name, "");
                self.group = Some(Box::new(super::group::GroupRing::start(env, group)));
                self.ring_group(ctx, env);
            }
            Resolved::Invalid(_) => {}
        }
    }

    /// Our INVITE to one device (or outside URI) of the call's current target (our Via is
    /// added when it is sent).
    fn b_invite(&self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, uri: &Uri, peer: &Peer, body: Option<Bytes>) -> Request {
        let a = &self.a.invite;
        // Our domain as the caller addressed it; for a call out of the service, our own (the
        // Request-URI names the other domain, whose identity is not ours to use).
        let domain = match &self.outside {
            Some(_) => env.config.domains.first().cloned().unwrap_or_else(|| env.config.realm.clone()),
            None => request_host(a),
        };
        let display = a.from().and_then(|f| f.display_name().map(|d| d.into_owned())).unwrap_or_default();
        let display: String = display.chars().filter(|c| !c.is_control()).collect();
        // An outside caller's user part came from the network: escaped again as it is written.
        let user = crate::trunks::escape_user(&self.caller.username);
        let from = if display.is_empty() {
            format!("<sip:{user}@{domain}>;tag={}", self.b_tag)
        } else {
            format!("{} <sip:{user}@{domain}>;tag={}", sambung_sip::text::quote(&display), self.b_tag)
        };
        let mut headers = sambung_sip::Headers::new();
        headers.push(HeaderName::MaxForwards, SipStr::from(self.hops.to_string()));
        headers.push(HeaderName::From, SipStr::from(from));
        // The dialled callee stays in To, as retargeting leaves it (RFC 7044 §1).
        headers.push(HeaderName::To, SipStr::from(format!("<{}>", self.history[0].uri)));
        headers.push(HeaderName::CallId, self.b_call_id.clone());
        headers.push(HeaderName::CSeq, SipStr::from_static("1 INVITE"));
        headers.push(HeaderName::Contact, ctx.sip.contact_for(peer));
        headers.push(HeaderName::Allow, ctx.sip.capabilities.allow.clone());
        headers.push(HeaderName::Supported, SipStr::from_static("replaces, timer, 100rel, histinfo"));
        for name in [HeaderName::Subject, HeaderName::AlertInfo, HeaderName::Priority] {
            if let Some(v) = a.headers.get(name.clone()) {
                headers.push(name, v.clone());
            }
        }
        if self.history.len() > 1 {
            headers.push(HeaderName::from("History-Info"), SipStr::from(route::history_info(&self.history)));
            for diversion in route::diversions(&self.history) {
                headers.push(HeaderName::from("Diversion"), SipStr::from(diversion));
            }
        }
        let mut invite = Request { method: Method::Invite, uri: uri.clone(), headers, body: Bytes::new() };
        session_timer::add_request_headers(env.config, &mut invite);
        if let Some(body) = body {
            let content_type = a.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
            invite.set_body(content_type, body);
        }
        self.trunk_headers(ctx, env, &mut invite);
        invite
    }
}

/// Which account or address a forwarding target names.
fn resolve(env: &CallEnv<'_>, target: &Target) -> Resolved {
    let local = |user: &str| {
        if let Some(account) = env.accounts.by_user_part(user) {
            return if account.disabled {
                Resolved::Invalid("no such account")
            } else {
                Resolved::Account(account.clone())
            };
        }
        if let Some(group) = env.config.groups.find(user) {
            return Resolved::Group(group);
        }
        // A phone number: one of ours (an account's or a group's), else out through the
        // carriers.
        let Some(number) = env.config.trunks.plan.read(user).filter(|n| !n.emergency) else {
            return Resolved::Invalid("no such account");
        };
        let group = env.accounts.group_of_number(&number.digits).and_then(|g| env.config.groups.find(g));
        match (env.accounts.by_number(&number.digits), group) {
            (Some(account), _) if !account.disabled => Resolved::Account(account.clone()),
            (_, Some(group)) => Resolved::Group(group),
            _ if !env.config.trunks.is_empty() => Resolved::Number(number),
            _ => Resolved::Invalid("no such account, and no trunk for numbers"),
        }
    };
    match target {
        Target::Local(user) => local(user),
        Target::Uri(uri) => {
            // A URI naming this server (a domain of ours, or our address and port) is a
            // local account; another port, even on this host, is some other device.
            let ours = uri.as_sip().is_some_and(|sip| env.local.contains_address(&sip.host, sip.port));
            match (ours, uri.as_sip().and_then(|s| s.user_unescaped())) {
                (true, Some(user)) => local(&user),
                _ if crate::trunks::query_of(uri).is_some() => Resolved::Outside(uri.clone()),
                _ => Resolved::Invalid("a URI we cannot reach (scheme or transport)"),
            }
        }
    }
}

/// The host the caller addressed (our domain as the caller knows it), for the AORs we write.
pub(super) fn request_host(request: &Request) -> String {
    host_of(&request.uri)
}

/// How the caller's device shows in the call record: its User-Agent and address.
fn device_name(request: &Request, from: &Peer) -> String {
    match request.headers.get(HeaderName::UserAgent) {
        Some(ua) => format!("{ua} ({})", from.addr),
        None => from.addr.to_string(),
    }
}

/// What a fork rings: a device (its contact) of an account, or an outside URI.
pub(super) struct Rung {
    /// For the call record: the device's contact, or the outside URI.
    pub device: String,
    /// The device's account; `None` for an outside URI.
    pub account: Option<i64>,
}

/// Who a new call goes to.
#[derive(Debug)]
pub(crate) enum Callee {
    /// What the Request-URI's user part names: an account's username or extension (or the
    /// caller, for a service code).
    Dialled,
    /// This account (a number of the service, reached from a carrier or dialled).
    Account(Arc<Account>),
    /// Out of the service, by this route, to this party.
    Outside(Box<super::outside::OutsideRoute>, Arc<Account>),
    /// A ring group (the party stands for the group).
    Group(Box<super::group::GroupRing>, Arc<Account>),
    /// An application answers (the auto-attendant's menu; the party stands for it).
    Service(App, Arc<Account>),
}
