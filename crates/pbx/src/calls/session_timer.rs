//! Session timers on each leg (RFC 4028).
//!
//! Each leg negotiates its own interval and refresher. Where we are the refresher we send an
//! UPDATE at half the interval; where the device is, a refresh must arrive before the interval
//! runs out (less min(32 s, interval/3), §10), or the call is torn down on both legs.

use std::time::{Duration, Instant};

use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Method, Request, Response, SipStr, text};

use super::call::{Call, State};
use super::{Purpose, Side};
use crate::config::PbxConfig;
use crate::pbx::Ctx;
use crate::sip::{Owner, insert};

/// The timer of one leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LegTimer {
    /// Seconds.
    pub interval: u32,
    /// True when we send the refreshes on this leg.
    pub we_refresh: bool,
    /// When to refresh (we refresh) or when the session expires (the device refreshes).
    pub due: Instant,
}

impl LegTimer {
    pub(crate) fn new(interval: u32, we_refresh: bool, now: Instant) -> LegTimer {
        let mut t = LegTimer { interval, we_refresh, due: now };
        t.restart(now);
        t
    }

    /// A refresh happened at `now` (§10).
    pub(crate) fn restart(&mut self, now: Instant) {
        let secs = u64::from(self.interval);
        self.due = if self.we_refresh {
            now + Duration::from_secs(secs / 2)
        } else {
            now + Duration::from_secs(secs - (secs / 3).min(32))
        };
    }
}

/// `Session-Expires: delta[;refresher=uac|uas]` (RFC 4028 §4).
pub(super) fn session_expires(headers: &sambung_sip::Headers) -> Option<(u32, Option<String>)> {
    let value = headers.get(HeaderName::SessionExpires)?;
    let mut parts = value.split(';');
    let delta = text::trim_lws(parts.next()?).parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        text::trim_lws(k).eq_ignore_ascii_case("refresher").then(|| text::trim_lws(v).to_ascii_lowercase())
    });
    Some((delta, refresher))
}

fn supports_timer(headers: &sambung_sip::Headers) -> bool {
    headers
        .values(HeaderName::Supported)
        .chain(headers.values(HeaderName::Require))
        .any(|t| t.eq_ignore_ascii_case("timer"))
}

/// RFC 4028 §8.1 for the caller's INVITE: an interval below our Min-SE gets 422.
pub(super) fn too_small(config: &PbxConfig, request: &Request) -> Option<Response> {
    let (delta, _) = session_expires(&request.headers)?;
    (delta < config.min_se).then(|| {
        let mut r = request.reply(422, "Session Interval Too Small");
        insert(&mut r, HeaderName::MinSe, SipStr::from(config.min_se.to_string()));
        r
    })
}

/// Our request headers for the callee's leg (§7.1): we offer to refresh.
pub(super) fn add_request_headers(config: &PbxConfig, request: &mut Request) {
    request.headers.push(HeaderName::SessionExpires, SipStr::from(format!("{};refresher=uac", config.session_expires)));
    request.headers.push(HeaderName::MinSe, SipStr::from(config.min_se.to_string()));
}

/// The A leg's timer, and the headers of our 2xx to the caller (§9).
pub(super) fn answer(config: &PbxConfig, invite: &Request, response: &mut Response, now: Instant) -> LegTimer {
    let (asked, refresher) = session_expires(&invite.headers).unwrap_or((config.session_expires, None));
    let interval = asked.max(config.min_se);
    let caller_supports = supports_timer(&invite.headers);
    // The caller refreshes when it can and did not hand the job to us.
    let we_refresh = !caller_supports || refresher.as_deref() == Some("uas");
    let who = if we_refresh { "uas" } else { "uac" };
    insert(response, HeaderName::SessionExpires, SipStr::from(format!("{interval};refresher={who}")));
    if caller_supports {
        insert(response, HeaderName::Require, SipStr::from_static("timer"));
    }
    LegTimer::new(interval, we_refresh, now)
}

/// The B leg's timer from the callee's 2xx (§7.2); none when it did not take part.
pub(super) fn b_leg(response: &Response, now: Instant) -> Option<LegTimer> {
    let (interval, refresher) = session_expires(&response.headers)?;
    Some(LegTimer::new(interval, refresher.as_deref() != Some("uas"), now))
}

impl Call {
    fn timer_mut(&mut self, side: Side) -> Option<&mut LegTimer> {
        // The caller's side, answered by an application, keeps its timer while connected on.
        if let (Some(connecting), Side::A) = (&mut self.connecting, side) {
            return connecting.timers[side.index()].as_mut();
        }
        match &mut self.state {
            State::Answered(answered) => answered.timers[side.index()].as_mut(),
            _ => None,
        }
    }

    /// A refresh arrived on `side` (a re-INVITE or UPDATE): its timer starts again.
    pub(super) fn refreshed(&mut self, side: Side, now: Instant) {
        if let Some(t) = self.timer_mut(side) {
            t.restart(now);
        }
    }

    /// Sends due refreshes, or ends the call when a session expired.
    pub(super) fn run_session_timers(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now.instant;
        for side in [Side::A, Side::B] {
            let Some(t) = self.timer_mut(side).filter(|t| t.due <= now) else { continue };
            if t.we_refresh {
                t.restart(now);
                let interval = t.interval;
                self.send_refresh(ctx, side, interval);
            } else {
                tracing::info!(call = self.id, "session expired without refresh");
                return self.end_both_sides(ctx);
            }
        }
    }

    /// An UPDATE without a body refreshes the session (§7.4).
    fn send_refresh(&mut self, ctx: &mut Ctx<'_>, side: Side, interval: u32) {
        let id = self.id;
        let Some((peer, dialog)) = self.leg_mut(side) else { return };
        let mut update = dialog.create_request(Method::Update);
        update.headers.push(HeaderName::SessionExpires, SipStr::from(format!("{interval};refresher=uac")));
        update.headers.push(HeaderName::Supported, SipStr::from_static("timer"));
        let _ =
            ctx.sip.send_request(update, peer, Owner::Call(id, Purpose::Refresh(side)), ctx.random, ctx.now.instant);
    }

    /// An UPDATE (or re-INVITE) with no body from a device is a pure refresh: answered here,
    /// not relayed.
    pub(super) fn answer_refresh(&mut self, ctx: &mut Ctx<'_>, side: Side, key: TxKey, request: &Request) {
        self.refreshed(side, ctx.now.instant);
        let mut response = request.reply(200, "OK");
        if let Some(t) = self.timer_mut(side) {
            let who = if t.we_refresh { "uas" } else { "uac" };
            insert(&mut response, HeaderName::SessionExpires, SipStr::from(format!("{};refresher={who}", t.interval)));
        }
        if let Some(peer) = self.peer(side) {
            insert(&mut response, HeaderName::Contact, ctx.sip.contact_for(peer));
        }
        ctx.respond(key, response);
    }
}
