//! Reliable provisional responses toward the caller (RFC 3262), when its INVITE requires them.
//!
//! Each provisional answer we pass to such a caller carries `Require: 100rel` and an `RSeq`, is
//! retransmitted (T1 doubling, RFC 3262 §3) until the caller's PRACK names it, and waits behind
//! the previous one until that one is acknowledged. With no PRACK within 64*T1 the INVITE is
//! refused with 5xx, as §3 asks.

use std::time::{Duration, Instant};

use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Request, Response, SipStr, text};

use super::call::{Call, State};
use crate::pbx::Ctx;
use crate::sip::{DialogKey, insert};

/// T1 of RFC 3261, which RFC 3262 §3 reuses.
const T1: Duration = Duration::from_millis(500);

/// The reliable provisional response in flight, and the next one waiting for it.
#[derive(Debug)]
pub(crate) struct Reliable {
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
    pub(crate) fn new(first_rseq: u32) -> Reliable {
        Reliable { next_rseq: first_rseq.clamp(1, 1 << 30), pending: None, queued: None }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.resend_at.min(p.give_up_at))
    }
}

/// True when the caller's INVITE requires reliable provisional responses.
pub(super) fn requires_100rel(request: &Request) -> bool {
    request.headers.values(HeaderName::Require).any(|t| t.eq_ignore_ascii_case("100rel"))
}

impl Call {
    /// Sends `response` (101-199) to the caller, reliably when the caller asked.
    pub(super) fn send_provisional(&mut self, ctx: &mut Ctx<'_>, response: Response) {
        let a_key = self.a.key;
        let Some(reliable) = self.a.reliable.as_mut() else { return ctx.respond(a_key, response) };
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
        let now = ctx.now.instant;
        reliable.pending = Some(InFlight {
            response: response.clone(),
            rseq,
            resend_at: now + T1,
            interval: T1,
            give_up_at: now + 64 * T1,
        });
        ctx.respond(a_key, response);
    }

    /// The caller's PRACK (§4): acknowledges the provisional with the RSeq in its RAck.
    pub(super) fn on_prack(&mut self, ctx: &mut Ctx<'_>, key: TxKey, request: &Request) {
        let rseq = request
            .headers
            .get(HeaderName::RAck)
            .and_then(|v| text::trim_lws(v).split_whitespace().next().and_then(|n| n.parse::<u32>().ok()));
        let Some(reliable) = self.a.reliable.as_mut() else {
            return ctx.respond(key, request.reply(200, "OK"));
        };
        let matches = reliable.pending.as_ref().is_some_and(|p| Some(p.rseq) == rseq);
        if !matches {
            // §4: a PRACK that matches no unacknowledged reliable provisional gets 481.
            return ctx.respond(key, request.reply(481, "No Such Provisional Response"));
        }
        reliable.pending = None;
        let queued = reliable.queued.take();
        ctx.respond(key, request.reply(200, "OK"));
        if let Some(next) = queued {
            self.send_provisional(ctx, next);
        }
    }

    /// Retransmits a due reliable provisional; refuses the INVITE of a caller that never
    /// acknowledged one.
    pub(super) fn run_reliable_provisionals(&mut self, ctx: &mut Ctx<'_>) {
        if !matches!(self.state, State::Ringing(_) | State::Opening { .. }) {
            return;
        }
        let now = ctx.now.instant;
        let Some(p) = self.a.reliable.as_mut().and_then(|r| r.pending.as_mut()) else { return };
        if p.give_up_at <= now {
            return self.fail(ctx, 504, "Provisional Response Not Acknowledged", "system");
        }
        if p.resend_at <= now {
            p.interval *= 2;
            p.resend_at = now + p.interval;
            let response = p.response.clone();
            ctx.respond(self.a.key, response);
        }
    }
}

/// Where a request inside the caller's early dialog goes (PRACK, BYE, UPDATE before the
/// answer): registered when the call starts, under the To tag every answer to it carries.
pub(super) fn early_dialog_key(request: &Request) -> Option<DialogKey> {
    let call_id = request.headers.get(HeaderName::CallId)?.clone();
    Some((call_id, SipStr::from(request.local_tag())))
}
