//! Registering with carriers (RFC 3261 §10 as a client): one binding per trunk that asks for
//! it, answered challenges (digest, RFC 3261 §22.2), refreshed before it expires, retried
//! after a failure, with each change of state told as [`Event::TrunkRegistration`].
//!
//! The first shard does it all. The carrier's server is found with RFC 3263 (a host name goes
//! out as a lookup, an IP literal is used as it is); on a failure the next address is tried.

use std::time::{Duration, Instant};

use sambung_sip::digest::{self, Challenge};
use sambung_sip::transaction::{Peer, TxKey};
use sambung_sip::{HeaderName, Method, NameAddr, Request, Response, SipStr, Uri};
use tracing::{debug, info, warn};

use super::{TrunkConfig, Trunks};
use crate::events::Event;
use crate::io::Lookup;
use crate::pbx::Ctx;
use crate::sip::Owner;

/// How long after a failed registration it is tried again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The shortest refresh interval, whatever the carrier grants.
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// Where one trunk's registration is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrunkState {
    /// Not registered yet (the first REGISTER is on its way or its server is being looked up).
    Registering,
    /// Registered until this Unix second.
    Registered { until: u64 },
    /// The last try failed for this reason; the next is at the retry time.
    Failed { reason: String },
}

impl TrunkState {
    pub fn as_str(&self) -> &'static str {
        match self {
            TrunkState::Registering => "registering",
            TrunkState::Registered { .. } => "registered",
            TrunkState::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug)]
struct Registration {
    trunk: usize,
    call_id: SipStr,
    from_tag: String,
    cseq: u32,
    /// The lifetime asked for: the configured one, or more when the carrier asked for more
    /// (423 Interval Too Brief).
    expires: u32,
    /// The carrier's addresses, in the order to try; empty until looked up.
    targets: Vec<Peer>,
    target: usize,
    /// The REGISTER in flight, and whether it already answers a challenge.
    pending: Option<(TxKey, Request)>,
    answered_challenge: bool,
    looking_up: bool,
    /// When the next REGISTER goes.
    next_at: Option<Instant>,
    state: TrunkState,
}

/// How often the server names of trunks that do not register are looked up again, to know
/// where their calls come from.
const RELOOKUP: Duration = Duration::from_secs(300);

/// Every trunk's registration (on the first shard only), and the lookups of the other trunks'
/// servers by name (whose addresses are where their calls come from).
#[derive(Debug, Default)]
pub(crate) struct Registrations {
    regs: Vec<Registration>,
    /// Trunks that do not register, named by host: when to look them up next.
    lookups: Vec<(usize, Instant)>,
}

impl Registrations {
    /// Registrations for the trunks that ask for one, the first REGISTER due at once.
    pub(crate) fn start(trunks: &Trunks, ctx: &mut Ctx<'_>) -> Registrations {
        let regs = trunks
            .trunks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.register && t.username.is_some() && t.password.is_some())
            .map(|(trunk, config)| Registration {
                trunk,
                expires: config.register_expires,
                call_id: SipStr::from(ctx.random.call_id()),
                from_tag: ctx.random.token(8),
                cseq: 0,
                targets: Vec::new(),
                target: 0,
                pending: None,
                answered_challenge: false,
                looking_up: false,
                next_at: Some(ctx.now.instant),
                state: TrunkState::Registering,
            })
            .collect::<Vec<_>>();
        let lookups = (0..trunks.trunks.len())
            .filter(|i| !regs.iter().any(|r| r.trunk == *i))
            .filter(|i| super::literal_peers(&trunks.trunks[*i].proxy).is_none())
            .map(|i| (i, ctx.now.instant))
            .collect();
        Registrations { regs, lookups }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.regs.iter().filter_map(|r| r.next_at).chain(self.lookups.iter().map(|(_, at)| *at)).min()
    }

    /// Sends the REGISTERs that are due.
    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>, trunks: &Trunks) {
        let now = ctx.now.instant;
        for (trunk, at) in &mut self.lookups {
            if *at <= now {
                *at = now + RELOOKUP;
                if let Some(query) = super::query_of(&trunks.trunks[*trunk].proxy) {
                    ctx.out.resolve(Lookup::Trunk(*trunk), query);
                }
            }
        }
        for reg in &mut self.regs {
            if reg.next_at.is_some_and(|at| at <= now) && reg.pending.is_none() {
                reg.next_at = None;
                // A lookup whose answer never came is asked again.
                reg.looking_up = false;
                reg.answered_challenge = false;
                reg.send(ctx, &trunks.trunks[reg.trunk], None);
            }
        }
    }

    /// The carrier's addresses were looked up.
    pub(crate) fn on_resolved(
        &mut self,
        ctx: &mut Ctx<'_>,
        trunks: &Trunks,
        trunk: usize,
        targets: Result<Vec<Peer>, String>,
    ) {
        let Some(reg) = self.regs.iter_mut().find(|r| r.trunk == trunk) else { return };
        if !reg.looking_up {
            return;
        }
        reg.looking_up = false;
        reg.next_at = None;
        match targets {
            Ok(targets) if !targets.is_empty() => {
                reg.targets = targets;
                reg.target = 0;
                reg.send(ctx, &trunks.trunks[trunk], None);
            }
            Ok(_) => {
                reg.failed(ctx, &trunks.trunks[trunk], "no address for the carrier's server".to_owned(), RETRY_AFTER)
            }
            Err(error) => reg.failed(ctx, &trunks.trunks[trunk], format!("lookup failed: {error}"), RETRY_AFTER),
        }
    }

    /// A response to a REGISTER of trunk `trunk`.
    pub(crate) fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        trunks: &Trunks,
        trunk: usize,
        key: TxKey,
        response: &Response,
    ) {
        let Some(reg) = self.regs.iter_mut().find(|r| r.trunk == trunk) else { return };
        if response.status < 200 || reg.pending.as_ref().is_none_or(|(k, _)| *k != key) {
            return;
        }
        let Some((_, request)) = reg.pending.take() else { return };
        let config = &trunks.trunks[trunk];
        match response.status {
            200..=299 => {
                let asked = reg_expires(&request).unwrap_or(reg.expires);
                let granted = granted_expires(response, &request).unwrap_or(asked);
                if granted == 0 {
                    return reg.failed(ctx, config, "the carrier granted no time".to_owned(), RETRY_AFTER);
                }
                let until = ctx.now.unix_secs + u64::from(granted);
                // Refreshed halfway through.
                let refresh = Duration::from_secs(u64::from(granted) / 2).max(MIN_REFRESH);
                reg.next_at = Some(ctx.now.instant + refresh);
                let fresh = !matches!(reg.state, TrunkState::Registered { .. });
                reg.state = TrunkState::Registered { until };
                if fresh {
                    info!(trunk = config.name, expires = granted, "registered with the carrier");
                } else {
                    debug!(trunk = config.name, expires = granted, "registration refreshed");
                }
                ctx.out.event(Event::TrunkRegistration {
                    trunk: config.name.clone(),
                    state: reg.state.clone(),
                    at: ctx.now.unix_secs,
                });
            }
            401 | 407 if !reg.answered_challenge => {
                let name =
                    if response.status == 401 { HeaderName::WwwAuthenticate } else { HeaderName::ProxyAuthenticate };
                let challenge = response.headers.values(name).find_map(|v| Challenge::parse(v).ok());
                match challenge {
                    Some(challenge) => {
                        reg.answered_challenge = true;
                        let header = if response.status == 401 {
                            HeaderName::Authorization
                        } else {
                            HeaderName::ProxyAuthorization
                        };
                        let credentials = answer(&challenge, config, "REGISTER", &request.uri.to_string(), ctx);
                        reg.send(ctx, config, Some((header, credentials)));
                    }
                    None => reg.failed(ctx, config, "a challenge we cannot answer".to_owned(), RETRY_AFTER),
                }
            }
            401 | 403 | 407 => {
                reg.failed(ctx, config, format!("credentials refused ({})", response.status), RETRY_AFTER)
            }
            // RFC 3261 §10.2.8: ask again at once for at least what the carrier wants.
            423 => {
                let min = response.headers.get(HeaderName::MinExpires).and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > reg.expires => {
                        debug!(trunk = config.name, min, "the carrier wants a longer registration");
                        reg.expires = min;
                        reg.answered_challenge = false;
                        reg.send(ctx, config, None);
                    }
                    _ => reg.failed(ctx, config, "423 without a longer Min-Expires".to_owned(), RETRY_AFTER),
                }
            }
            status => {
                let reason = format!("{status} {}", response.reason);
                // Another address of the carrier's may do better (RFC 3263 §4.3).
                if reg.target + 1 < reg.targets.len() && (status == 408 || status >= 500) {
                    reg.target += 1;
                    debug!(trunk = config.name, reason, "registration failed here; next address");
                    reg.send(ctx, config, None);
                } else {
                    let retry = response
                        .headers
                        .get(HeaderName::RetryAfter)
                        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
                        .map_or(RETRY_AFTER, |s| Duration::from_secs(s.clamp(5, 3600)));
                    reg.targets.clear();
                    reg.failed(ctx, config, reason, retry);
                }
            }
        }
    }

    /// Each trunk's state, by trunk index.
    pub(crate) fn states(&self) -> impl Iterator<Item = (usize, &TrunkState)> {
        self.regs.iter().map(|r| (r.trunk, &r.state))
    }
}

/// Credentials answering `challenge` for `method` to `uri`, with the trunk's secret.
pub(crate) fn answer(challenge: &Challenge, trunk: &TrunkConfig, method: &str, uri: &str, ctx: &mut Ctx<'_>) -> SipStr {
    let user = trunk.auth_user().unwrap_or_default();
    let password = trunk.password.as_deref().unwrap_or_default();
    let cnonce = ctx.random.token(8);
    SipStr::from(digest::respond(challenge, method, uri, user, password, &cnonce, 1).to_string())
}

impl Registration {
    /// Sends the next REGISTER (looking the carrier up first when needed).
    fn send(&mut self, ctx: &mut Ctx<'_>, config: &TrunkConfig, credentials: Option<(HeaderName, SipStr)>) {
        if self.targets.is_empty() {
            match super::literal_peers(&config.proxy) {
                Some(peers) => self.targets = peers,
                None => {
                    let Some(query) = super::query_of(&config.proxy) else {
                        return self.failed(ctx, config, "the proxy is no SIP URI".to_owned(), RETRY_AFTER * 10);
                    };
                    if !self.looking_up {
                        self.looking_up = true;
                        ctx.out.resolve(Lookup::Trunk(self.trunk), query);
                        // Should its answer be lost, the registration is tried again anyway.
                        self.next_at = Some(ctx.now.instant + RETRY_AFTER);
                    }
                    return;
                }
            }
        }
        let Some(peer) = self.targets.get(self.target.min(self.targets.len() - 1)).cloned() else { return };
        self.cseq += 1;
        let domain = config.domain();
        let user = config.username.as_deref().unwrap_or_default();
        let Ok(uri) = Uri::parse(&format!(
            "{}:{domain}",
            if config.proxy.as_sip().is_some_and(|s| s.secure) { "sips" } else { "sip" }
        )) else {
            return self.failed(ctx, config, format!("bad domain {domain}"), RETRY_AFTER * 10);
        };
        let aor = format!("<sip:{user}@{domain}>");
        let mut headers = sambung_sip::Headers::new();
        headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
        headers.push(HeaderName::From, SipStr::from(format!("{aor};tag={}", self.from_tag)));
        headers.push(HeaderName::To, SipStr::from(aor));
        headers.push(HeaderName::CallId, self.call_id.clone());
        headers.push(HeaderName::CSeq, SipStr::from(format!("{} REGISTER", self.cseq)));
        headers.push(HeaderName::Contact, ctx.sip.contact_as(&peer, &super::escape_user(user)));
        headers.push(HeaderName::Expires, SipStr::from(self.expires.to_string()));
        headers.push(HeaderName::UserAgent, SipStr::from_static(crate::sip::SERVER));
        if let Some((name, value)) = credentials {
            headers.push(name, value);
        }
        let request = Request { method: Method::Register, uri, headers, body: bytes::Bytes::new() };
        let owner = Owner::Trunk(self.trunk);
        match ctx.sip.send_request(request, peer, owner, ctx.random, ctx.now.instant) {
            Ok(key) => {
                let sent = ctx.sip.transactions.request(key).cloned();
                self.pending = sent.map(|r| (key, r));
            }
            Err(error) => self.failed(ctx, config, format!("not sent: {error}"), RETRY_AFTER),
        }
    }

    fn failed(&mut self, ctx: &mut Ctx<'_>, config: &TrunkConfig, reason: String, retry: Duration) {
        warn!(trunk = config.name, reason, retry_secs = retry.as_secs(), "registration with the carrier failed");
        self.pending = None;
        self.target = 0;
        self.next_at = Some(ctx.now.instant + retry);
        self.state = TrunkState::Failed { reason };
        ctx.out.event(Event::TrunkRegistration {
            trunk: config.name.clone(),
            state: self.state.clone(),
            at: ctx.now.unix_secs,
        });
    }
}

/// The Expires a REGISTER asked for.
fn reg_expires(request: &Request) -> Option<u32> {
    request.headers.get(HeaderName::Expires).and_then(|v| v.trim().parse().ok())
}

/// What a 2xx to our REGISTER granted: the `expires` of our own Contact in it (RFC 3261
/// §10.2.4), found by its user, host and port (carriers' servers rewrite the rest), or of the
/// only Contact there is; else its Expires header.
fn granted_expires(response: &Response, request: &Request) -> Option<u32> {
    let key = |contact: &NameAddr| {
        let sip = contact.uri.as_sip()?;
        Some((sip.user_unescaped()?.into_owned(), sip.host.as_str().to_ascii_lowercase(), sip.port.unwrap_or(5060)))
    };
    let ours = request.contacts().next().and_then(|c| key(&c));
    let contacts: Vec<NameAddr> = response.contacts().collect();
    let mine = match contacts.as_slice() {
        [only] => Some(only),
        all => all.iter().find(|c| ours.is_some() && key(c) == ours),
    };
    mine.and_then(|c| c.params.value("expires")?.trim().parse().ok())
        .or_else(|| response.headers.get(HeaderName::Expires).and_then(|v| v.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_of(bytes: bytes::Bytes) -> Request {
        match sambung_sip::Message::parse(bytes).unwrap() {
            sambung_sip::Message::Request(r) => r,
            sambung_sip::Message::Response(_) => panic!("not a request"),
        }
    }

    fn response_of(bytes: bytes::Bytes) -> Response {
        match sambung_sip::Message::parse(bytes).unwrap() {
            sambung_sip::Message::Response(r) => r,
            sambung_sip::Message::Request(_) => panic!("not a response"),
        }
    }

    #[test]
    fn granted_time_is_our_contacts() {
        let request = request_of(bytes::Bytes::from_static(
            b"REGISTER sip:carrier SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@carrier>;tag=1\r\nTo: <sip:a@carrier>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@127.0.0.1:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
        ));
        let response = response_of(bytes::Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@carrier>;tag=1\r\nTo: <sip:a@carrier>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:other@192.0.2.1>;expires=3000, <sip:a@127.0.0.1:5060>;expires=120\r\nExpires: 900\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(granted_expires(&response, &request), Some(120));
        assert_eq!(reg_expires(&request), Some(600));
        // A carrier that rewrote our Contact's parameters, alone in its answer.
        let rewritten = response_of(bytes::Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@carrier>;tag=1\r\nTo: <sip:a@carrier>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@127.0.0.1;transport=udp>;expires=60;q=1\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(granted_expires(&rewritten, &request), Some(60));
    }
}
