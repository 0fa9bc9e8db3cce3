//! Calls that leave the service, and calls that come in from a carrier.
//!
//! Out: to an outside SIP URI (a forwarding target, or a caller dialling another domain), or
//! to a phone number through the carriers ([`crate::trunks`]). The way out is a list of
//! *attempts* (one per trunk that serves the number, by priority; one for a URI), each sent to
//! the addresses RFC 3263 finds for its next hop in order. A timeout, a transport error or a
//! 5xx moves on to the next address, then to the next trunk; a carrier's challenge (401/407)
//! is answered once with the trunk's credentials; any other failure (busy, not found,
//! declined) is the callee's answer and ends the call.
//!
//! In: a carrier's INVITE (recognised by its source address) reaches the account its number
//! is assigned to, found in the Request-URI, then To, then the carrier's Diversion or
//! History-Info (RFC 5806, RFC 7044).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use sambung_sip::digest::Challenge;
use sambung_sip::transaction::Peer;
use sambung_sip::{HeaderName, NameAddr, Request, Response, SipStr, Uri};
use tracing::{debug, info};

use super::call::{Call, State};
use super::{CallEnv, Purpose};
use crate::io::Lookup;
use crate::pbx::Ctx;
use crate::registrar::{Account, Routing};
use crate::sip::Owner;
use crate::trunks::{self, Number, Trunks};

/// One way to try.
#[derive(Clone, Debug)]
struct Attempt {
    /// The trunk it goes through (`None`: straight to an outside URI).
    trunk: Option<usize>,
    /// The Request-URI.
    uri: Uri,
    /// What is resolved to find where to send it: the URI itself, or the trunk's server.
    next_hop: Uri,
}

/// The way out of a call. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct OutsideRoute {
    /// The phone number called through the trunks, when it is one.
    pub number: Option<Number>,
    attempts: VecDeque<Attempt>,
    current: Option<Attempt>,
    /// The current attempt's addresses not tried yet.
    peers: VecDeque<Peer>,
    looking_up: bool,
    /// The current attempt answered a challenge already.
    auth_answered: bool,
    /// The latest failure, for the caller when nothing is left to try.
    last_failure: Option<(u16, String)>,
}

impl OutsideRoute {
    /// Straight to an outside URI.
    pub(crate) fn to_uri(uri: Uri) -> OutsideRoute {
        let attempt = Attempt { trunk: None, uri: uri.clone(), next_hop: uri };
        OutsideRoute::new(None, vec![attempt])
    }

    /// Through the trunks that serve `number`, in order; `None` when no trunk serves it.
    pub(crate) fn to_number(number: Number, trunks: &Trunks) -> Option<OutsideRoute> {
        let attempts: Vec<Attempt> = trunks
            .candidates(&number)
            .into_iter()
            .filter_map(|index| {
                let trunk = &trunks.trunks[index];
                let user = trunks::escape_user(&trunk.format(&number, &trunks.plan));
                let scheme = if trunk.proxy.as_sip().is_some_and(|s| s.secure) { "sips" } else { "sip" };
                let uri = Uri::parse(&format!("{scheme}:{user}@{};user=phone", trunk.domain())).ok()?;
                Some(Attempt { trunk: Some(index), uri, next_hop: trunk.proxy.clone() })
            })
            .collect();
        (!attempts.is_empty()).then(|| OutsideRoute::new(Some(number), attempts))
    }

    fn new(number: Option<Number>, attempts: Vec<Attempt>) -> OutsideRoute {
        OutsideRoute {
            number,
            attempts: attempts.into(),
            current: None,
            peers: VecDeque::new(),
            looking_up: false,
            auth_answered: false,
            last_failure: None,
        }
    }

    /// The trunk of the attempt under way.
    pub(crate) fn trunk(&self) -> Option<usize> {
        self.current.as_ref().and_then(|a| a.trunk)
    }

    pub(crate) fn is_emergency(&self) -> bool {
        self.number.as_ref().is_some_and(|n| n.emergency)
    }

    /// What to do next.
    fn next(&mut self) -> Next {
        loop {
            if self.looking_up {
                return Next::Wait;
            }
            if let (Some(peer), Some(attempt)) = (self.peers.pop_front(), &self.current) {
                // Each address challenges on its own.
                self.auth_answered = false;
                return Next::Send(Box::new((attempt.uri.clone(), peer)));
            }
            let Some(attempt) = self.attempts.pop_front() else {
                let (status, reason) = self.last_failure.take().unwrap_or((503, "Service Unavailable".to_owned()));
                return Next::Done(status, reason);
            };
            self.auth_answered = false;
            match trunks::literal_peers(&attempt.next_hop) {
                Some(peers) => {
                    self.peers = peers.into();
                    self.current = Some(attempt);
                }
                None => match trunks::query_of(&attempt.next_hop) {
                    Some(query) => {
                        self.current = Some(attempt);
                        self.looking_up = true;
                        return Next::Lookup(query);
                    }
                    None => self.last_failure = Some((416, "Unsupported URI Scheme".to_owned())),
                },
            }
        }
    }
}

enum Next {
    Send(Box<(Uri, Peer)>),
    Lookup(sambung_dns::Query),
    Wait,
    Done(u16, String),
}

/// The party of a call who is no account of ours: an outside caller, or what an outside call
/// goes to. It has no id (0), no settings, no voicemail.
pub(crate) fn outside_party(name: &str, display_name: &str) -> Arc<Account> {
    Arc::new(Account {
        id: 0,
        username: name.to_owned(),
        display_name: display_name.to_owned(),
        extension: None,
        realm: String::new(),
        ha1_md5: String::new(),
        ha1_sha256: String::new(),
        disabled: false,
        routing: Routing { voicemail: false, ..Routing::default() },
    })
}

impl Call {
    /// Rings the next address or attempt of the way out; the call fails once none is left.
    pub(super) fn ring_outside(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        loop {
            let Some(route) = self.outside.as_mut() else { return };
            match route.next() {
                Next::Wait => return,
                Next::Lookup(query) => {
                    // The caller waits for the lookup as for ringing: the ring timeout bounds it.
                    self.ring_next(ctx, env);
                    return ctx.out.resolve(Lookup::Call(self.id), query);
                }
                Next::Done(status, reason) => {
                    info!(call = self.id, status, reason, "no way out left");
                    return self.fail(ctx, status, &reason, "callee");
                }
                Next::Send(next) => {
                    let (uri, peer) = *next;
                    self.ring_next(ctx, env);
                    let secure = self.outside_srtp(env, &peer);
                    let codecs = self.outside_codecs(env);
                    let body = match self.media_mut() {
                        Some(media) => match media.b_offer.clone() {
                            Some(offer) => {
                                let offer = restrict_codecs(offer, &codecs);
                                media.for_leg(ctx, super::Side::B, &offer, secure).map(Some)
                            }
                            None => Some(None),
                        },
                        None => Some(None),
                    };
                    let Some(body) = body else {
                        debug!(call = self.id, %uri, "not sent: it would need plain RTP");
                        self.set_outside_failure(488, "Not Acceptable Here");
                        continue;
                    };
                    let rung = super::setup::Rung { device: uri.to_string(), account: None };
                    if self.send_fork(ctx, env, &uri, &peer, body, rung) {
                        debug!(call = self.id, %uri, to = %peer.addr, transport = %peer.transport, "calling out");
                        return;
                    }
                    self.set_outside_failure(503, "Service Unavailable");
                }
            }
        }
    }

    /// The next attempt of the way out rings in a B-leg identity of its own, within the time
    /// the whole way out has: the ring timeout from its first attempt (an emergency call waits
    /// as long as the emergency service takes to answer, up to an hour).
    fn ring_next(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        let emergency = self.outside.as_ref().is_some_and(|r| r.is_emergency());
        let ring_for = if emergency { std::time::Duration::from_secs(3600) } else { env.config.ring_timeout };
        let deadline = match &self.state {
            State::Ringing(ringing) if ringing.outside => Some(ringing.deadline),
            _ => None,
        };
        self.start_ringing(ctx, ring_for, true, false);
        if let (Some(deadline), State::Ringing(ringing)) = (deadline, &mut self.state) {
            ringing.deadline = deadline;
        }
    }

    /// Media toward the way out is SRTP: the trunk asks for it, or signalling is TLS.
    fn outside_srtp(&self, env: &CallEnv<'_>, peer: &Peer) -> bool {
        let trunk = self.outside.as_ref().and_then(|r| r.trunk()).and_then(|i| env.config.trunks.trunks.get(i));
        trunk.is_some_and(|t| t.srtp) || super::media::is_secure(peer)
    }

    /// The codecs the current trunk takes (empty: any).
    fn outside_codecs(&self, env: &CallEnv<'_>) -> Vec<sambung_media::codec::CodecKind> {
        let trunk = self.outside.as_ref().and_then(|r| r.trunk()).and_then(|i| env.config.trunks.trunks.get(i));
        trunk.map(|t| t.codecs.clone()).unwrap_or_default()
    }

    fn set_outside_failure(&mut self, status: u16, reason: &str) {
        if let Some(route) = self.outside.as_mut() {
            route.last_failure = Some((status, reason.to_owned()));
        }
    }

    /// The lookup of the way out's next hop finished.
    pub(super) fn on_resolved(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        result: Result<Vec<sambung_dns::Target>, String>,
    ) {
        let Some(route) = self.outside.as_mut() else { return };
        if !route.looking_up {
            return;
        }
        route.looking_up = false;
        match result {
            Ok(targets) => route.peers = trunks::peers_of(&targets).into(),
            Err(error) => {
                debug!(call = self.id, error, "next hop not found");
                route.last_failure = Some((404, "Not Found".to_owned()));
            }
        }
        if matches!(self.state, State::Ringing(_)) {
            self.ring_outside(ctx, env);
        }
    }

    /// The way out's current fork failed finally: a challenge is answered, a timeout or 5xx
    /// moves on, anything else ends the call.
    pub(super) fn on_outside_failure(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        fork: usize,
        response: &Response,
    ) {
        let status = response.status;
        let trunk = self.outside.as_ref().and_then(|r| r.trunk()).and_then(|i| env.config.trunks.trunks.get(i));
        let answered = self.outside.as_ref().is_some_and(|r| r.auth_answered);
        if matches!(status, 401 | 407)
            && !answered
            && let Some(trunk) = trunk.filter(|t| t.password.is_some())
        {
            let name = if status == 401 { HeaderName::WwwAuthenticate } else { HeaderName::ProxyAuthenticate };
            if let Some(challenge) = response.headers.values(name).find_map(|v| Challenge::parse(v).ok()) {
                let header = if status == 401 { HeaderName::Authorization } else { HeaderName::ProxyAuthorization };
                let uri = self.forks[fork].invite.uri.to_string();
                let credentials = trunks::registration::answer(&challenge, trunk, "INVITE", &uri, ctx);
                if let Some(route) = self.outside.as_mut() {
                    route.auth_answered = true;
                }
                if self.resend_fork(ctx, fork, header, credentials) {
                    return;
                }
            }
        }
        if matches!(status, 401 | 407) {
            // A challenge we cannot answer (no credentials, or ours refused) is this trunk's
            // failure, never the caller's: a challenge is not passed on (the caller's phone
            // would take it for its own). The next trunk is tried; at the end the caller hears
            // that the service could not place the call.
            info!(call = self.id, status, "the carrier refused our credentials; trying the next");
            self.set_outside_failure(503, "Service Unavailable");
            return self.ring_outside(ctx, env);
        }
        self.set_outside_failure(status, &response.reason);
        if status == 408 || (500..600).contains(&status) {
            debug!(call = self.id, status, "way out failed here; trying the next");
            return self.ring_outside(ctx, env);
        }
        self.fail(ctx, status, response.reason.as_ref(), "callee");
    }

    /// Sends fork `fork`'s INVITE again, with `credentials` in `header` and the next CSeq, as a
    /// new fork of the same target (RFC 3261 §22.2).
    fn resend_fork(&mut self, ctx: &mut Ctx<'_>, fork: usize, header: HeaderName, credentials: SipStr) -> bool {
        let old = &self.forks[fork];
        let mut invite: Request = old.invite.clone();
        invite.headers.remove(HeaderName::Via);
        invite.headers.remove(HeaderName::Authorization);
        invite.headers.remove(HeaderName::ProxyAuthorization);
        let cseq = invite.cseq().map_or(1, |c| c.seq) + 1;
        invite.headers.set(HeaderName::CSeq, SipStr::from(format!("{cseq} INVITE")));
        invite.headers.push(header, credentials);
        let peer = old.peer.clone();
        let (device, account) = (old.device.clone(), old.account);
        let owner = Owner::Call(self.id, Purpose::Fork(self.forks.len()));
        match ctx.sip.send_request(invite.clone(), peer.clone(), owner, ctx.random, ctx.now.instant) {
            Ok(key) => {
                let invite = ctx.sip.transactions.request(key).cloned().unwrap_or(invite);
                self.forks.push(super::call::Fork { key, peer, invite, device, account, status: None });
                true
            }
            Err(error) => {
                debug!(call = self.id, %error, "challenge not answered");
                false
            }
        }
    }

    /// What a carrier sees of our INVITE: the number in its format in To, the caller's number
    /// (or anonymity, RFC 3325 §9.1) in From, P-Asserted-Identity, and for an emergency call
    /// the caller's location (RFC 6442).
    pub(super) fn trunk_headers(&self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, invite: &mut Request) {
        let Some(route) = &self.outside else { return };
        let Some(index) = route.trunk() else { return };
        let Some(trunk) = env.config.trunks.trunks.get(index) else { return };
        let plan = &env.config.trunks.plan;
        let domain = trunk.domain();
        invite.headers.set(HeaderName::To, SipStr::from(format!("<{}>", invite.uri)));
        // The caller's number: its own (the first assigned), or an outside caller's as it came.
        let own = env.accounts.numbers_of(self.caller.id).first().cloned();
        let identity = own.unwrap_or_else(|| self.caller.username.clone());
        let formatted = match plan.read(&identity).filter(|n| !n.emergency) {
            Some(number) => trunk.format(&number, plan),
            None => identity,
        };
        let user = trunks::escape_user(&formatted);
        let display = self.caller.display_name.trim();
        let private =
            self.a.invite.headers.values(HeaderName::from("Privacy")).any(|v| {
                v.split(';').any(|p| matches!(p.trim().to_ascii_lowercase().as_str(), "id" | "user" | "header"))
            });
        let asserted = if display.is_empty() {
            format!("<sip:{user}@{domain}>")
        } else {
            format!("{} <sip:{user}@{domain}>", sambung_sip::text::quote(display))
        };
        let from = if private {
            format!("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={}", self.b_tag)
        } else {
            format!("{asserted};tag={}", self.b_tag)
        };
        invite.headers.set(HeaderName::From, SipStr::from(from));
        if trunk.asserted_identity || private {
            invite.headers.push(HeaderName::from("P-Asserted-Identity"), SipStr::from(asserted));
        }
        if private {
            invite.headers.push(HeaderName::from("Privacy"), SipStr::from_static("id"));
        }
        if route.is_emergency()
            && let Some(location) = plan.location_of(&self.caller.username)
        {
            add_location(ctx, invite, location, &self.caller.username, &domain);
        }
    }
}

/// The offer with only `codecs` (in their order) and telephone events left in its audio
/// sections; unchanged when `codecs` is empty or none of them is offered (the carrier then
/// chooses, and the relay transcodes what the caller needs).
fn restrict_codecs(
    mut offer: sambung_media::SessionDescription,
    codecs: &[sambung_media::codec::CodecKind],
) -> sambung_media::SessionDescription {
    if codecs.is_empty() {
        return offer;
    }
    for media in offer.media.iter_mut().filter(|m| m.media == sambung_media::sdp::MediaType::Audio) {
        let offered = media.codecs();
        let mut keep: Vec<String> = Vec::new();
        for kind in codecs {
            let found = offered.iter().filter(|c| c.name.eq_ignore_ascii_case(kind.encoding_name()));
            keep.extend(found.map(|c| c.payload_type.to_string()));
        }
        if keep.is_empty() {
            continue;
        }
        let events = offered.iter().filter(|c| c.name.eq_ignore_ascii_case("telephone-event"));
        keep.extend(events.map(|c| c.payload_type.to_string()));
        super::media::keep_formats(media, &keep);
        // The trunk's order of preference (RFC 3264 §5.1: the offerer's order is its own).
        media.formats.sort_by_key(|f| keep.iter().position(|k| k == f));
    }
    offer
}

/// Adds the caller's civic address to an emergency INVITE: a PIDF-LO body part beside the
/// SDP (multipart/mixed), named by a `cid:` Geolocation (RFC 6442 §4.1).
fn add_location(ctx: &mut Ctx<'_>, invite: &mut Request, location: &trunks::CivicAddress, user: &str, domain: &str) {
    let token = ctx.random.token(8);
    // The host of `domain` without its port (`[2001:db8::1]:5060` keeps its brackets' content).
    let host = match domain.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => domain.split(':').next().unwrap_or(domain),
    };
    let cid = format!("{token}@{host}");
    let pidf = location.pidf_lo(&format!("pres:{user}@{host}"), user);
    let boundary = format!("sambung-{token}");
    let mut body = String::new();
    if !invite.body.is_empty() {
        let sdp_type =
            invite.headers.get(HeaderName::ContentType).map_or("application/sdp".to_owned(), |v| v.to_string());
        body.push_str(&format!("--{boundary}\r\nContent-Type: {sdp_type}\r\n\r\n"));
        body.push_str(&String::from_utf8_lossy(&invite.body));
        body.push_str("\r\n");
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Type: application/pidf+xml\r\nContent-ID: <{cid}>\r\n\r\n{pidf}\r\n--{boundary}--\r\n"
    ));
    invite.headers.push(HeaderName::from("Geolocation"), SipStr::from(format!("<cid:{cid}>")));
    invite.headers.push(HeaderName::from("Geolocation-Routing"), SipStr::from_static("yes"));
    invite.set_body(&format!("multipart/mixed;boundary={boundary}"), Bytes::from(body));
}

/// The phone number a carrier's INVITE is for: the Request-URI's user part, else To's, else
/// the first diverted-from number (Diversion, then History-Info), each read by the dial plan.
pub(crate) fn dialled_number(request: &Request, trunks: &Trunks) -> Vec<String> {
    let mut candidates: Vec<String> = Vec::new();
    let user_of = |uri: &Uri| uri.as_sip().and_then(|s| s.user_unescaped()).map(|u| u.into_owned());
    if let Some(user) = user_of(&request.uri) {
        candidates.push(user);
    }
    if let Some(to) = request.to().and_then(|to| user_of(&to.uri)) {
        candidates.push(to);
    }
    for name in [HeaderName::from("Diversion"), HeaderName::from("History-Info")] {
        for line in request.headers.get_all(name) {
            let entries = sambung_sip::text::split_commas(line).filter_map(|e| NameAddr::parse(&SipStr::from(e)).ok());
            candidates.extend(entries.filter_map(|entry| user_of(&entry.uri)));
        }
    }
    candidates
        .into_iter()
        .filter_map(|user| trunks.plan.read(&user).filter(|n| !n.emergency).map(|n| n.digits))
        .collect()
}
