//! A blind transfer asked for by an operator (through the API): one party's phone is asked,
//! by REFER in its dialog with us (RFC 3515), to call someone else itself; once the REFER's
//! NOTIFY says that call was answered (RFC 3515 §2.4.5, a `message/sipfrag`), both legs of this
//! call are hung up and the party talks on in its new call. A refusal or a failed call leaves
//! this call as it was. Every request ends with [`Event::TransferEnded`].

use std::time::Instant;

use sambung_sip::transaction::TxKey;
use sambung_sip::{Method, Request, Response};
use tracing::{debug, info};

use super::call::{Call, State};
use super::{Purpose, Side};
use crate::events::Event;
use crate::pbx::Ctx;
use crate::refer::{self, Progress, REFER_WAIT};
use crate::sip::Owner;

/// A transfer under way.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The party whose phone was referred (it stays on, with the target).
    pub side: Side,
    pub target: String,
    /// The phone took the REFER (a 2xx came).
    pub accepted: bool,
    /// When an unreported transfer is given up.
    pub deadline: Instant,
}

impl Call {
    /// An operator asks that the party on `side` be sent to `target`.
    pub(super) fn transfer_by_operator(&mut self, ctx: &mut Ctx<'_>, side: Side, target: String) {
        let refusal = if !self.is_answered() {
            Some((409, "The call is not answered"))
        } else if self.transfer.is_some() {
            Some((409, "A transfer is already under way"))
        } else if self.peer(side).is_none() {
            Some((488, "That party is not a phone"))
        } else {
            None
        };
        if let Some((status, reason)) = refusal {
            return self.transfer_ended(ctx, &target, status, reason);
        }
        let id = self.id;
        // The other party asks for it (RFC 3892): the one who is left out.
        let referrer = match side {
            Side::A => self.target.username.clone(),
            Side::B => self.caller.username.clone(),
        };
        let Some((peer, dialog)) = self.leg_mut(side) else { return };
        let refer_to = refer::target_uri(ctx, &peer, &target);
        let refer = refer::request(ctx, dialog, &peer, &refer_to, Some(&referrer));
        match ctx.sip.send_request(refer, peer, Owner::Call(id, Purpose::Transfer), ctx.random, ctx.now.instant) {
            Ok(_) => {
                info!(call = id, ?side, target, "transfer: REFER sent");
                self.transfer =
                    Some(Transfer { side, target, accepted: false, deadline: ctx.now.instant + REFER_WAIT });
            }
            Err(_) => self.transfer_ended(ctx, &target, 503, "The REFER could not be sent"),
        }
    }

    /// The phone's answer to the REFER.
    pub(super) fn on_transfer_response(&mut self, ctx: &mut Ctx<'_>, response: &Response) {
        let Some(transfer) = self.transfer.as_mut() else { return };
        match response.status {
            200..=299 => transfer.accepted = true,
            300.. => {
                let target = transfer.target.clone();
                self.transfer = None;
                let reason = format!("The phone refused the transfer: {} {}", response.status, response.reason);
                self.transfer_ended(ctx, &target, response.status, &reason);
            }
            _ => {}
        }
    }

    /// A request on `side` that belongs to the transfer under way (its NOTIFYs), answered here:
    /// false when it is not one.
    pub(super) fn transfer_request(&mut self, ctx: &mut Ctx<'_>, side: Side, key: TxKey, request: &Request) -> bool {
        if self.transfer.as_ref().is_none_or(|t| t.side != side) || request.method != Method::Notify {
            return false;
        }
        let Some(progress) = refer::progress(request) else { return false };
        ctx.respond(key, request.reply(200, "OK"));
        debug!(call = self.id, ?progress, "transfer: NOTIFY");
        if progress == Progress::Pending {
            return true;
        }
        let Some(transfer) = self.transfer.take() else { return true };
        match progress {
            Progress::Answered(_) => {
                self.transfer_ended(ctx, &transfer.target, 200, "Connected");
                self.transferred(ctx);
            }
            Progress::Failed(status) => {
                self.transfer_ended(ctx, &transfer.target, status, &format!("The call failed: {status}"));
            }
            Progress::Ended | Progress::Pending => {
                self.transfer_ended(ctx, &transfer.target, 487, "The phone ended the transfer");
            }
        }
        true
    }

    /// The transfer was never reported on in time: given up, the call stays.
    pub(super) fn run_transfer_timer(&mut self, ctx: &mut Ctx<'_>) {
        if self.transfer.as_ref().is_some_and(|t| t.deadline <= ctx.now.instant)
            && let Some(transfer) = self.transfer.take()
        {
            self.transfer_ended(ctx, &transfer.target, 408, "The phone did not report on the transfer");
        }
    }

    /// The referred party hung up this call itself while its transfer was accepted: it took
    /// the call over (RFC 5589 §6.1 lets it).
    pub(super) fn transfer_on_bye(&mut self, ctx: &mut Ctx<'_>, side: Side) {
        if self.transfer.as_ref().is_some_and(|t| t.side == side && t.accepted)
            && let Some(transfer) = self.transfer.take()
        {
            self.transfer_ended(ctx, &transfer.target, 200, "Handed to the phone");
        }
    }

    /// Both legs end: the referred party talks on in its own new call.
    fn transferred(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.state, State::Answered(_)) {
            self.end_transferred(ctx);
        }
    }

    fn transfer_ended(&mut self, ctx: &mut Ctx<'_>, target: &str, status: u16, reason: &str) {
        info!(call = self.id, target, status, reason, "transfer over");
        ctx.out.event(Event::TransferEnded {
            call: self.id,
            target: target.to_owned(),
            status,
            reason: reason.to_owned(),
        });
    }
}
