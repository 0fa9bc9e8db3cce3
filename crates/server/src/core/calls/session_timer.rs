//! Session timers on each leg (RFC 4028).
//!
//! Each leg negotiates its own interval and refresher. Where we are the refresher we send an
//! UPDATE at half the interval; where the device is, a refresh must arrive before the interval
//! runs out (less min(32 s, interval/3), §10), or the call is torn down on both legs.

use std::time::{Duration, Instant};

use sambung_sip::{HeaderName, Method, Request, Response, SipStr, text};

use super::{CallId, Purpose, Side};
use crate::core::{Core, Now, insert};

/// The timer of one leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LegTimer {
    /// Seconds.
    pub interval: u32,
    /// True when we send the refreshes on this leg.
    pub we_refresh: bool,
    /// When to refresh (we refresh) or when the session expires (the device refreshes).
    pub due: Instant,
}

impl LegTimer {
    pub(super) fn new(interval: u32, we_refresh: bool, now: Instant) -> LegTimer {
        let mut t = LegTimer { interval, we_refresh, due: now };
        t.restart(now);
        t
    }

    /// A refresh happened at `now` (§10).
    pub(super) fn restart(&mut self, now: Instant) {
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

impl Core {
    /// RFC 4028 §8.1 for the caller's INVITE: an interval below our Min-SE gets 422.
    pub(super) fn session_too_small(&self, request: &Request) -> Option<Response> {
        let (delta, _) = session_expires(&request.headers)?;
        (delta < self.session.min_se).then(|| {
            let mut r = request.reply(422, "Session Interval Too Small");
            insert(&mut r, HeaderName::MinSe, SipStr::from(self.session.min_se.to_string()));
            r
        })
    }

    /// Our request headers for the callee's leg (§7.1): we offer to refresh.
    pub(super) fn add_session_request_headers(&self, request: &mut Request) {
        request
            .headers
            .push(HeaderName::SessionExpires, SipStr::from(format!("{};refresher=uac", self.session.expires)));
        request.headers.push(HeaderName::MinSe, SipStr::from(self.session.min_se.to_string()));
    }

    /// The A leg's timer, and the headers of our 2xx to the caller (§9).
    pub(super) fn answer_session(&self, invite: &Request, response: &mut Response, now: Instant) -> LegTimer {
        let (asked, refresher) = session_expires(&invite.headers).unwrap_or((self.session.expires, None));
        let interval = asked.max(self.session.min_se);
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
    pub(super) fn b_session(&self, response: &Response, now: Instant) -> Option<LegTimer> {
        let (interval, refresher) = session_expires(&response.headers)?;
        Some(LegTimer::new(interval, refresher.as_deref() != Some("uas"), now))
    }

    /// A refresh arrived on `side` (a re-INVITE or UPDATE): its timer starts again.
    pub(super) fn refreshed(&mut self, id: CallId, side: Side, now: Instant) {
        if let Some(t) = self.calls.calls.get_mut(&id).and_then(|c| c.timers[side as usize].as_mut()) {
            t.restart(now);
        }
    }

    /// Sends due refreshes and ends calls whose session expired.
    pub(in crate::core) fn run_session_timers(&mut self, now: Now) {
        let mut refresh = Vec::new();
        let mut expired = Vec::new();
        for (id, call) in &mut self.calls.calls {
            if call.ended.is_some() {
                continue;
            }
            for side in [Side::A, Side::B] {
                let Some(t) = call.timers[side as usize].as_mut().filter(|t| t.due <= now.instant) else { continue };
                if t.we_refresh {
                    t.restart(now.instant);
                    refresh.push((*id, side));
                } else {
                    expired.push(*id);
                }
            }
        }
        for (id, side) in refresh {
            self.send_refresh(now, id, side);
        }
        for id in expired {
            tracing::info!(call = id, "session expired without refresh");
            self.end_call_both(now, id);
        }
    }

    /// An UPDATE without a body refreshes the session (§7.4).
    fn send_refresh(&mut self, now: Now, id: CallId, side: Side) {
        let interval = self.calls.calls.get(&id).and_then(|c| c.timers[side as usize]).map_or(0, |t| t.interval);
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        let Some(peer) = call.peer(side).cloned() else { return };
        let Some(dialog) = call.dialog_mut(side) else { return };
        let mut update = dialog.create_request(Method::Update);
        update.headers.push(HeaderName::SessionExpires, SipStr::from(format!("{interval};refresher=uac")));
        update.headers.push(HeaderName::Supported, SipStr::from_static("timer"));
        self.push_our_via(&mut update, &peer);
        if let Ok(key) = self.transactions.send_request(update, peer, now.instant) {
            self.calls.by_client.insert(key, (id, Purpose::Refresh(side)));
        }
    }

    /// An UPDATE with no body from a device is a pure refresh: answered here, not relayed.
    pub(super) fn answer_refresh(
        &mut self,
        now: Now,
        id: CallId,
        side: Side,
        key: sambung_sip::transaction::TxKey,
        request: &Request,
    ) {
        self.refreshed(id, side, now.instant);
        let mut response = request.reply(200, "OK");
        if let Some(t) = self.calls.calls.get(&id).and_then(|c| c.timers[side as usize]) {
            let who = if t.we_refresh { "uas" } else { "uac" };
            insert(&mut response, HeaderName::SessionExpires, SipStr::from(format!("{};refresher={who}", t.interval)));
        }
        let contact = self.calls.calls.get(&id).and_then(|c| c.peer(side).cloned()).map(|p| self.contact_for(&p));
        if let Some(contact) = contact {
            insert(&mut response, HeaderName::Contact, contact);
        }
        self.respond(key, response, now);
    }
}
