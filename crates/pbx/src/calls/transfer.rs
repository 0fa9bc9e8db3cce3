//! Blind transfers. An operator asks for one through the API, or a phone in the call sends us a
//! REFER (RFC 3515) naming someone else: we are the back-to-back agent, so the REFER is never
//! carried across as it is. Either way the party that stays is asked, by a REFER of our own in
//! its dialog with us, to call the target itself; once that REFER's NOTIFY says the call was
//! answered (RFC 3515 §2.4.5, a `message/sipfrag`), both legs of this call are hung up and the
//! party talks on in its new call. A refusal or a failed call leaves this call as it was. A
//! phone that asked is told how it goes by NOTIFYs of its own REFER's implicit subscription.
//! Every transfer ends with [`Event::TransferEnded`].

use std::time::Instant;

use sambung_sip::NameAddr;
use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Method, Request, Response, SipStr};
use tracing::{debug, info};

use super::call::{Call, State};
use super::{CallEnv, Purpose, Side};
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
    /// The phone that asked for it by REFER, when one did.
    pub referrer: Option<Referrer>,
}

/// A phone's REFER that started a transfer: its implicit subscription (RFC 3515 §2.4.4) is
/// kept informed by NOTIFYs in its dialog.
#[derive(Debug)]
pub(crate) struct Referrer {
    pub side: Side,
    /// The REFER's CSeq number: the subscription's `id` (RFC 3515 §2.4.6).
    pub id: u32,
}

impl Call {
    /// An operator asks that the party on `side` be sent to `target`.
    pub(super) fn transfer_by_operator(&mut self, ctx: &mut Ctx<'_>, side: Side, target: String) {
        if let Err((status, reason)) = self.start_transfer(ctx, side, target.clone(), None) {
            self.transfer_ended(ctx, &target, status, reason);
        }
    }

    /// The phone on `side` sent a REFER in its dialog with us: the other party is to be sent
    /// to its Refer-To. Answered 202 and followed by NOTIFYs when the transfer starts; a REFER
    /// that cannot be acted on is refused and the call goes on as it was.
    pub(super) fn transfer_by_phone(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        side: Side,
        key: TxKey,
        request: &Request,
    ) {
        let (target, replaces) = match refer_target(env, request) {
            Ok(target) => target,
            Err((status, reason)) => {
                info!(call = self.id, ?side, status, reason, "REFER from a phone refused");
                return ctx.respond(key, request.reply(status, reason));
            }
        };
        // The callee's phone hands the caller to a service of ours (a parking slot, a queue, a
        // menu): the server takes the caller over itself, nothing is asked of the caller's phone
        // (a carrier's call could not be referred anyway).
        // A caller on hold (its phone only listens) is referred as before: the service would
        // neither hear it nor be heard.
        if side == Side::B && replaces.is_none() && self.transfer.is_none() && self.held.is_none() {
            let parker = self.target.username.clone();
            let service = match crate::menus::parking_slot(env.config.parking, &target) {
                Some(slot) => Some(crate::apps::App::Parking { slot, parker: Some(parker) }),
                None => env.config.menus.find(&target).map(crate::menus::Menu::app),
            };
            if let Some(app) = service {
                return self.transfer_to_app(ctx, key, request, app);
            }
        }
        let id = request.cseq().map_or(0, |c| c.seq);
        let referrer = Referrer { side, id };
        self.replaces = replaces;
        match self.start_transfer(ctx, side.other(), target.clone(), Some(referrer)) {
            Ok(()) => {
                let mut accepted = request.reply(202, "Accepted");
                if let Some(peer) = self.peer(side) {
                    crate::sip::insert(&mut accepted, HeaderName::Contact, ctx.sip.contact_for(peer));
                }
                ctx.respond(key, accepted);
                info!(call = self.id, ?side, target, "transfer asked for by the phone (REFER)");
                // RFC 3515 §2.4.4: the first NOTIFY follows the 202 at once.
                self.notify_referrer(ctx, 100, "Trying", false);
            }
            Err((status, reason)) => {
                let status = if status == 409 { 491 } else { status };
                ctx.respond(key, request.reply(status, reason));
                self.transfer_ended(ctx, &target, status, reason);
            }
        }
    }

    /// Sends the REFER asking the party on `side` to call `target`.
    fn start_transfer(
        &mut self,
        ctx: &mut Ctx<'_>,
        side: Side,
        target: String,
        referrer: Option<Referrer>,
    ) -> Result<(), (u16, &'static str)> {
        let replaces = self.replaces.take();
        if !self.is_answered() {
            return Err((409, "The call is not answered"));
        } else if self.transfer.is_some() {
            return Err((409, "A transfer is already under way"));
        } else if self.peer(side).is_none() {
            return Err((488, "That party is not a phone"));
        }
        let id = self.id;
        // The other party asks for it (RFC 3892): the one who is left out.
        let referred_by = match side {
            Side::A => self.target.username.clone(),
            Side::B => self.caller.username.clone(),
        };
        let Some((peer, dialog)) = self.leg_mut(side) else { return Err((488, "That party is not a phone")) };
        let mut refer_to = refer::target_uri(ctx, &peer, &target);
        // An attended transfer: the party is to take over the call the Replaces names (ours
        // with the referrer), which we find again when its INVITE comes (RFC 3891).
        if let Some(replaces) = replaces {
            refer_to = format!("{refer_to}?Replaces={replaces}");
        }
        let refer = refer::request(ctx, dialog, &peer, &refer_to, Some(&referred_by));
        match ctx.sip.send_request(refer, peer, Owner::Call(id, Purpose::Transfer), ctx.random, ctx.now.instant) {
            Ok(_) => {
                info!(call = id, ?side, target, "transfer: REFER sent");
                let deadline = ctx.now.instant + REFER_WAIT;
                self.transfer = Some(Transfer { side, target, accepted: false, deadline, referrer });
                Ok(())
            }
            Err(_) => Err((503, "The REFER could not be sent")),
        }
    }

    /// Tells the phone that asked for the transfer under way how it goes (RFC 3515 §2.4.5):
    /// a NOTIFY whose `message/sipfrag` is the status line of the transferred party's call.
    fn notify_referrer(&mut self, ctx: &mut Ctx<'_>, status: u16, reason: &str, last: bool) {
        let Some(referrer) = self.transfer.as_ref().and_then(|t| t.referrer.as_ref()) else { return };
        let (side, event) = (referrer.side, format!("refer;id={}", referrer.id));
        self.notify_phone(ctx, side, &event, status, reason, last);
    }

    fn notify_phone(&mut self, ctx: &mut Ctx<'_>, side: Side, event: &str, status: u16, reason: &str, last: bool) {
        let id = self.id;
        let Some((peer, dialog)) = self.leg_mut(side) else { return };
        let mut notify = dialog.create_request(Method::Notify);
        notify.headers.push(HeaderName::Event, SipStr::from(event.to_owned()));
        let state = if last { "terminated;reason=noresource" } else { "active;expires=120" };
        notify.headers.push(HeaderName::from("Subscription-State"), SipStr::from(state));
        // NOTIFY refreshes the target (RFC 6665 §4.1.2.1): the dialog wrote our Contact.
        let reason = if reason.is_empty() { "Unknown" } else { reason };
        notify.set_body("message/sipfrag;version=2.0", format!("SIP/2.0 {status} {reason}\r\n").into_bytes().into());
        let owner = Owner::Call(id, Purpose::Notify);
        if ctx.sip.send_request(notify, peer, owner, ctx.random, ctx.now.instant).is_err() {
            debug!(call = id, ?side, "transfer: NOTIFY to the referrer could not be sent");
        }
    }

    /// The phone's answer to the REFER.
    pub(super) fn on_transfer_response(&mut self, ctx: &mut Ctx<'_>, response: &Response) {
        let Some(transfer) = self.transfer.as_mut() else { return };
        match response.status {
            200..=299 => transfer.accepted = true,
            300.. => {
                let reason = format!("The phone refused the transfer: {} {}", response.status, response.reason);
                self.finish_transfer(ctx, response.status, &response.reason, &reason);
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
        match progress {
            Progress::Pending => {}
            Progress::Answered(status) => {
                self.finish_transfer(ctx, status, "OK", "Connected");
                self.transferred(ctx);
            }
            Progress::Failed(status) => {
                self.finish_transfer(ctx, status, sipfrag_reason(request), &format!("The call failed: {status}"));
            }
            Progress::Ended => self.finish_transfer(ctx, 487, "Request Terminated", "The phone ended the transfer"),
        }
        true
    }

    /// The transfer was never reported on in time: given up, the call stays.
    pub(super) fn run_transfer_timer(&mut self, ctx: &mut Ctx<'_>) {
        if self.transfer.as_ref().is_some_and(|t| t.deadline <= ctx.now.instant) {
            self.finish_transfer(ctx, 408, "Request Timeout", "The phone did not report on the transfer");
        }
    }

    /// The referred party hung up this call itself while its transfer was accepted: it took
    /// the call over (RFC 5589 §6.1 lets it).
    pub(super) fn transfer_on_bye(&mut self, ctx: &mut Ctx<'_>, side: Side) {
        if self.transfer.as_ref().is_some_and(|t| t.side == side && t.accepted) {
            self.finish_transfer(ctx, 200, "OK", "Handed to the phone");
        }
    }

    /// The transfer under way is over with `status` (and `sip_reason` for the referrer's
    /// sipfrag): the phone that asked is told, the event sent.
    fn finish_transfer(&mut self, ctx: &mut Ctx<'_>, status: u16, sip_reason: &str, reason: &str) {
        self.notify_referrer(ctx, status, sip_reason, true);
        if let Some(transfer) = self.transfer.take() {
            self.transfer_ended(ctx, &transfer.target, status, reason);
        }
    }

    /// Both legs end: the referred party talks on in its own new call.
    fn transferred(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.state, State::Answered(_)) {
            self.end_transferred(ctx);
        }
    }

    fn transfer_ended(&self, ctx: &mut Ctx<'_>, target: &str, status: u16, reason: &str) {
        info!(call = self.id, target, status, reason, "transfer over");
        ctx.out.event(Event::TransferEnded {
            call: self.id,
            target: target.to_owned(),
            status,
            reason: reason.to_owned(),
        });
    }
}

/// The target of a phone's REFER: the user part when its Refer-To names this server (so the
/// party is sent to our address as its own phone reaches us), else the URI as it is; and the
/// `Replaces` it carries (still escaped), which asks for an attended transfer. One Refer-To is
/// required (RFC 3515 §2.4.1).
fn refer_target(env: &CallEnv<'_>, request: &Request) -> Result<(String, Option<String>), (u16, &'static str)> {
    let mut values = request.headers.get_all(HeaderName::from("Refer-To"));
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err((400, "One Refer-To is required"));
    };
    let refer_to = NameAddr::parse(value).map_err(|_| (400, "Bad Refer-To"))?;
    let Some(sip) = refer_to.uri.as_sip() else { return Err((416, "Unsupported URI Scheme")) };
    let replaces = sip.headers.as_deref().and_then(|headers| {
        headers.split('&').find_map(|h| {
            let (name, value) = h.split_once('=')?;
            name.eq_ignore_ascii_case("replaces").then(|| value.to_owned())
        })
    });
    if let Some(value) = &replaces
        && super::replaces::parse(&super::replaces::unescape(value)).is_none()
    {
        return Err((400, "Bad Replaces in Refer-To"));
    }
    if env.local.contains_address(&sip.host, sip.port)
        && let Some(user) = sip.user_unescaped()
    {
        return Ok((user.into_owned(), replaces));
    }
    let mut bare = sip.clone();
    bare.headers = None;
    Ok((sambung_sip::Uri::Sip(bare).to_string(), replaces))
}

/// The reason phrase of a NOTIFY's sipfrag status line.
fn sipfrag_reason(notify: &Request) -> &str {
    let text = std::str::from_utf8(&notify.body).unwrap_or("");
    let line = text.lines().next().unwrap_or("").trim();
    let mut parts = line.splitn(3, ' ');
    parts.nth(2).unwrap_or("").trim()
}
