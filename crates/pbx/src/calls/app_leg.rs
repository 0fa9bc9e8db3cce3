//! Calls answered by an application (voicemail, the mailbox menu, feature-code confirmations):
//! the B leg of the call's media session becomes the application, inside the server.

use sambung_sip::dialog::Dialog;
use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Method, Request};
use tracing::{debug, info};

use super::call::{Answered, AppLeg, BSide, Call, State};
use super::media::{InProcessAnswer, LegTransport, is_secure};
use super::{CallEnv, Purpose, Side, keys, session_timer};
use crate::apps::{App, AppEnd, AppRequest};
use crate::events::Event;
use crate::media::MediaCommand;
use crate::pbx::Ctx;
use crate::sip::{DialogOwner, Owner, insert};

impl Call {
    /// Hands the call to `app`, which answers the caller at once with the caller's own codec.
    /// Without an offer to answer (a late-offer INVITE) the call fails as `fallback` says
    /// (status, reason, side).
    pub(super) fn start_app(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        app: App,
        fallback: (u16, &'static str, &'static str),
    ) {
        if self.connecting.is_some() {
            // The caller was answered by another application, connecting it: this one takes over.
            return self.swap_app(ctx, app);
        }
        // The devices of the current target stop ringing.
        if let State::Ringing(ringing) = &self.state {
            for key in self.pending_forks(ringing.stage) {
                ctx.sip.cancel(key, ctx.now.instant);
            }
        }
        let a_secure = is_secure(&self.a.peer);
        let answered = self.media_mut().map(|media| media.answer_in_process(ctx, a_secure));
        let answer = match answered {
            Some(Ok(answer)) => answer,
            Some(Err(failure)) => {
                debug!(call = self.id, %failure, "the application cannot answer");
                let (status, reason, side) = fallback;
                return self.fail(ctx, status, reason, side);
            }
            None => {
                debug!(call = self.id, "no offer for the application");
                let (status, reason, side) = fallback;
                return self.fail(ctx, status, reason, side);
            }
        };
        let name = app.name();
        let caller = self.app_caller();
        ctx.out.media(MediaCommand::AttachApp { session: self.id, format: answer.format.clone(), rate: answer.rate });
        ctx.out.app(AppRequest::Start { call: self.id, app, caller, rate: answer.rate });
        let mut a = self.a_response(ctx, 200, "OK", Some(("application/sdp".to_owned(), answer.to_a)));
        let a_timer = session_timer::answer(env.config, &self.a.invite, &mut a, ctx.now.instant);
        let a_dialog = Dialog::new_uas(&self.a.invite, &a).ok();
        ctx.respond(self.a.key, a);
        if let Some(d) = &a_dialog {
            ctx.sip.add_dialog((d.id().call_id.clone(), d.id().local_tag.clone()), DialogOwner::Call(self.id, Side::A));
        }
        info!(call = self.id, app = name, "answered by the server");
        ctx.out.event(Event::CallAnswered {
            call: self.id,
            by: name.to_owned(),
            account_id: None,
            at: ctx.now.unix_secs,
        });
        self.state = State::Answered(Box::new(Answered {
            at: ctx.now.unix_secs,
            a_dialog,
            b: BSide::App(AppLeg {
                name,
                ended: false,
                answer: answer.answer,
                format: answer.format,
                rate: answer.rate,
            }),
            timers: [Some(a_timer), None],
        }));
    }

    /// The application is done: the caller's leg is hung up, or transferred to call back.
    pub(super) fn on_app_ended(&mut self, ctx: &mut Ctx<'_>, _env: &CallEnv<'_>, end: AppEnd) {
        let Some(app) = self.app_mut() else { return };
        app.ended = true;
        match end {
            AppEnd::Hangup => self.hang_up(ctx, Side::A, "callee"),
            AppEnd::CallBack { target } => {
                // A blind transfer (RFC 3515): the caller's phone calls the target itself, and
                // our leg ends once the phone has taken the REFER.
                let id = self.id;
                let Some((peer, dialog)) = self.leg_mut(Side::A) else { return self.hang_up(ctx, Side::A, "callee") };
                let refer = crate::refer::request(ctx, dialog, &peer, &target, None);
                match ctx.sip.send_request(refer, peer, Owner::Call(id, Purpose::Refer), ctx.random, ctx.now.instant) {
                    Ok(_) => info!(call = id, %target, "call back: REFER sent"),
                    Err(_) => self.hang_up(ctx, Side::A, "callee"),
                }
            }
        }
    }

    /// A request inside an application's call: keys from INFO, the transfer's NOTIFYs and
    /// OPTIONS are answered here; a re-offer is answered with the application's description.
    pub(super) fn app_call_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        _env: &CallEnv<'_>,
        side: Side,
        key: TxKey,
        request: &Request,
    ) {
        let response = match request.method {
            Method::Info => {
                if let Some((pressed, duration_ms)) = keys::info_key(request) {
                    info!(call = self.id, ?side, key = %pressed, duration_ms, "key pressed (INFO)");
                    if side == Side::A && self.app_mut().is_some_and(|a| !a.ended) {
                        ctx.out.app(AppRequest::Key { call: self.id, key: pressed });
                    }
                }
                request.reply(200, "OK")
            }
            Method::Notify | Method::Options => request.reply(200, "OK"),
            Method::Invite if !request.body.is_empty() => return self.app_reoffer(ctx, key, request),
            // RFC 4028: a re-INVITE without an offer refreshes the session.
            Method::Invite => return self.answer_refresh(ctx, side, key, request),
            Method::Update => request.reply(488, "Not Acceptable Here"),
            _ => request.reply(405, "Method Not Allowed"),
        };
        ctx.respond(key, response);
    }

    /// A re-INVITE with a new offer from the caller (a session refresh, hold): the application
    /// keeps its media, so its description answers again.
    fn app_reoffer(&mut self, ctx: &mut Ctx<'_>, key: TxKey, request: &Request) {
        if self.connecting.is_some() {
            // Leg B's offer to the target is outstanding (RFC 3261 §14.1).
            let mut pending = request.reply(491, "Request Pending");
            insert(&mut pending, HeaderName::from("Retry-After"), sambung_sip::SipStr::from("2"));
            return ctx.respond(key, pending);
        }
        let transport = LegTransport::of(&self.a.peer);
        let a_secure = is_secure(&self.a.peer);
        let Some(answer) = self.app_mut().map(|a| a.answer.clone()) else {
            return ctx.respond(key, request.reply(488, "Not Acceptable Here"));
        };
        let body = match self.media_mut() {
            Some(media) => media.reanswer_in_process(ctx, &request.body, transport, &answer, a_secure),
            None => Err(super::MediaFailure::NoOffer),
        };
        let response = match body {
            Ok(body) => {
                self.refreshed(Side::A, ctx.now.instant);
                let mut response = request.reply(200, "OK");
                insert(&mut response, HeaderName::Contact, ctx.sip.contact_for(&self.a.peer));
                response.set_body("application/sdp", body);
                response
            }
            Err(failure) => {
                self.reject_offer(Side::A, true);
                let (status, reason) = failure.status();
                request.reply(status, reason)
            }
        };
        ctx.respond(key, response);
    }

    /// The application of call `partner` picks this call up: while it still rings, its caller
    /// is answered by the bridge to `partner` and the ringing devices stop.
    pub(super) fn pick_up(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, partner: u64) {
        let ringing = matches!(self.state, State::Ringing(_)) && self.connecting.is_none() && self.transfer.is_none();
        let can_answer = self.media_mut().is_some_and(|m| m.can_answer_in_process());
        if !ringing || !can_answer {
            return debug!(call = self.id, partner, "nothing to pick up");
        }
        info!(call = self.id, partner, "picked up");
        self.group = None;
        self.start_app(ctx, env, App::Bridge { partner }, (480, "Temporarily Unavailable", "system"));
    }

    /// The phone on leg B handed the caller to a service (a blind transfer, by REFER, to a
    /// parking slot, a queue or a menu): the REFER is accepted and reported done, leg B is hung
    /// up and becomes the service's application, and the caller stays where it is, in this call.
    pub(super) fn transfer_to_app(&mut self, ctx: &mut Ctx<'_>, key: TxKey, request: &Request, app: App) {
        let State::Answered(answered) = &self.state else {
            return ctx.respond(key, request.reply(409, "The call is not answered"));
        };
        let BSide::Device { dialog, .. } = &answered.b else {
            return ctx.respond(key, request.reply(488, "That party is not a phone"));
        };
        let b_key = (dialog.id().call_id.clone(), dialog.id().local_tag.clone());
        let in_process = match self.media_mut().map(|media| media.b_to_app()) {
            Some(Ok(answer)) => answer,
            _ => return ctx.respond(key, request.reply(488, "The call cannot be handed to the service")),
        };
        let mut accepted = request.reply(202, "Accepted");
        if let Some(peer) = self.peer(Side::B) {
            insert(&mut accepted, HeaderName::Contact, ctx.sip.contact_for(peer));
        }
        ctx.respond(key, accepted);
        // RFC 3515 §2.4.5: the transfer is done at once; then the phone's leg is hung up.
        let id = request.cseq().map_or(0, |c| c.seq);
        let (call, name) = (self.id, app.name());
        if let Some((peer, dialog)) = self.leg_mut(Side::B) {
            let mut notify = dialog.create_request(Method::Notify);
            notify.headers.push(HeaderName::Event, sambung_sip::SipStr::from(format!("refer;id={id}")));
            notify.headers.push(
                HeaderName::from("Subscription-State"),
                sambung_sip::SipStr::from_static("terminated;reason=noresource"),
            );
            notify.set_body("message/sipfrag;version=2.0", bytes::Bytes::from_static(b"SIP/2.0 200 OK\r\n"));
            let _ = ctx.sip.send_request(
                notify,
                peer.clone(),
                Owner::Call(call, Purpose::Notify),
                ctx.random,
                ctx.now.instant,
            );
            let bye = dialog.create_request(Method::Bye);
            let _ = ctx.sip.send_request(bye, peer, Owner::Call(call, Purpose::Bye), ctx.random, ctx.now.instant);
        }
        ctx.sip.remove_dialog(&b_key);
        info!(call = self.id, app = name, "leg B handed the caller to a service");
        let InProcessAnswer { format, rate, answer, .. } = in_process;
        ctx.out.media(MediaCommand::AttachApp { session: self.id, format: format.clone(), rate });
        ctx.out.app(AppRequest::Start { call: self.id, app, caller: self.app_caller(), rate });
        if let State::Answered(answered) = &mut self.state {
            answered.b = BSide::App(AppLeg { name, ended: false, answer, format, rate });
            answered.timers[1] = None;
        }
        self.held = None;
        ctx.out.event(Event::CallAnswered {
            call: self.id,
            by: name.to_owned(),
            account_id: None,
            at: ctx.now.unix_secs,
        });
    }
}
