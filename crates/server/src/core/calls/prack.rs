//! Reliable provisional responses toward the caller (RFC 3262), when its INVITE requires them.
//!
//! Each provisional answer we pass to such a caller carries `Require: 100rel` and an `RSeq`, is
//! retransmitted (T1 doubling, RFC 3262 §3) until the caller's PRACK names it, and waits behind
//! the previous one until that one is acknowledged. With no PRACK within 64*T1 the INVITE is
//! refused with 5xx, as §3 asks.

use std::time::{Duration, Instant};

use sambung_sip::{HeaderName, Request, Response, SipStr, text};

use super::{CallId, Side};
use crate::core::{Core, Now, insert};

/// T1 of RFC 3261, which RFC 3262 §3 reuses.
const T1: Duration = Duration::from_millis(500);

/// The reliable provisional response in flight, and the next one waiting for it.
#[derive(Debug)]
pub(super) struct Reliable {
    next_rseq: u32,
    pending: Option<InFlight>,
    queued: Option<Response>,
}

#[derive(Debug)]
struct InFlight {
    response: Response,
    rseq: u32,
    resend_at: Instant,
    interval: Duration,
    give_up_at: Instant,
}

impl Reliable {
    /// A caller that requires 100rel; `first_rseq` is random (RFC 3262 §3: 1 to 2^31 - 1).
    pub(super) fn new(first_rseq: u32) -> Reliable {
        Reliable { next_rseq: first_rseq.clamp(1, 1 << 30), pending: None, queued: None }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.resend_at.min(p.give_up_at))
    }
}

/// True when the caller's INVITE requires reliable provisional responses.
pub(super) fn requires_100rel(request: &Request) -> bool {
    request.headers.values(HeaderName::Require).any(|t| t.eq_ignore_ascii_case("100rel"))
}

impl Core {
    /// Sends `response` (101-199) to the caller of call `id`, reliably when the caller asked.
    pub(super) fn send_provisional(&mut self, now: Now, id: CallId, response: Response) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        let a_key = call.a_key;
        let Some(reliable) = call.reliable.as_mut() else { return self.respond(a_key, response, now) };
        if reliable.pending.is_some() {
            // §3: one unacknowledged reliable provisional at a time; the newest waits.
            reliable.queued = Some(response);
            return;
        }
        let rseq = reliable.next_rseq;
        reliable.next_rseq = reliable.next_rseq.wrapping_add(1);
        let mut response = response;
        insert(&mut response, HeaderName::Require, SipStr::from_static("100rel"));
        insert(&mut response, HeaderName::RSeq, SipStr::from(rseq.to_string()));
        reliable.pending = Some(InFlight {
            response: response.clone(),
            rseq,
            resend_at: now.instant + T1,
            interval: T1,
            give_up_at: now.instant + 64 * T1,
        });
        self.respond(a_key, response, now);
    }

    /// The caller's PRACK (§4): acknowledges the provisional with the RSeq in its RAck.
    pub(super) fn on_prack(&mut self, now: Now, id: CallId, key: sambung_sip::transaction::TxKey, request: &Request) {
        let rseq = request
            .headers
            .get(HeaderName::RAck)
            .and_then(|v| text::trim_lws(v).split_whitespace().next().and_then(|n| n.parse::<u32>().ok()));
        let Some(reliable) = self.calls.calls.get_mut(&id).and_then(|c| c.reliable.as_mut()) else {
            return self.respond(key, request.reply(200, "OK"), now);
        };
        let matches = reliable.pending.as_ref().is_some_and(|p| Some(p.rseq) == rseq);
        if !matches {
            // §4: a PRACK that matches no unacknowledged reliable provisional gets 481.
            return self.respond(key, request.reply(481, "No Such Provisional Response"), now);
        }
        reliable.pending = None;
        let queued = reliable.queued.take();
        self.respond(key, request.reply(200, "OK"), now);
        if let Some(next) = queued {
            self.send_provisional(now, id, next);
        }
    }

    /// Retransmits due reliable provisionals; refuses the INVITE of a caller that never
    /// acknowledged one.
    pub(in crate::core) fn run_reliable_provisionals(&mut self, now: Now) {
        let mut resend = Vec::new();
        let mut give_up = Vec::new();
        for (id, call) in &mut self.calls.calls {
            if call.winner.is_some() || call.ended.is_some() {
                continue;
            }
            let Some(p) = call.reliable.as_mut().and_then(|r| r.pending.as_mut()) else { continue };
            if p.give_up_at <= now.instant {
                give_up.push(*id);
            } else if p.resend_at <= now.instant {
                p.interval *= 2;
                p.resend_at = now.instant + p.interval;
                resend.push((call.a_key, p.response.clone()));
            }
        }
        for (key, response) in resend {
            self.respond(key, response, now);
        }
        for id in give_up {
            self.fail_call(now, id, 504, "Provisional Response Not Acknowledged", "system");
        }
    }

    /// Where a request inside the caller's early dialog goes (PRACK, BYE, UPDATE before the
    /// answer): registered when the call starts, under the To tag every answer to it carries.
    pub(super) fn early_dialog_key(request: &Request) -> Option<(SipStr, SipStr)> {
        let call_id = request.headers.get(HeaderName::CallId)?.clone();
        Some((call_id, SipStr::from(request.local_tag())))
    }
}

/// Which side an early-dialog request came from: always the caller.
pub(super) const EARLY_SIDE: Side = Side::A;
