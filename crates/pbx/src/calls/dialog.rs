//! A call inside its dialogs: requests carried from one leg to the other (re-INVITE, UPDATE,
//! INFO ...) and their answers, the caller's CANCEL and ACK, hanging up, and the end of a call
//! with its record.

use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Method, Request, Response};
use tracing::{debug, info};

use super::call::{BSide, Call, Media, State};
use super::forks::{body_of, is_sdp, is_sdp_type, sdp_of};
use super::media::{LegTransport, MediaFailure, Role, is_secure};
use super::{CallEnv, Purpose, Side, keys, picture, route};
use crate::apps::AppRequest;
use crate::events::{CallRecord, Event};
use crate::media::{MediaCommand, MediaEvent};
use crate::pbx::Ctx;
use crate::sip::{Owner, insert};

impl Call {
    /// A response to one of the call's client transactions.
    pub(super) fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        purpose: Purpose,
        key: TxKey,
        response: Response,
    ) {
        match purpose {
            Purpose::Fork(fork) => self.on_fork_response(ctx, env, fork, response),
            Purpose::Relay { server, to, invite } => self.on_relay_response(ctx, key, server, to, invite, response),
            Purpose::Refresh(_) if matches!(response.status, 408 | 481) => {
                // RFC 4028 §10: the refresh failed because the session is gone on that side.
                self.end_both_sides(ctx);
            }
            Purpose::Refer if response.status >= 200 => {
                // The caller's phone took the transfer (or refused it): our leg ends.
                debug!(call = self.id, status = response.status, "call-back transfer answered");
                self.hang_up(ctx, Side::A, "system");
            }
            Purpose::Transfer => self.on_transfer_response(ctx, &response),
            Purpose::Bye | Purpose::Prack | Purpose::Refresh(_) | Purpose::Refer | Purpose::Notify | Purpose::Info => {}
        }
    }

    /// The media runtime answered the call's request for a session.
    pub(super) fn on_media_event(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, event: MediaEvent) {
        match event {
            MediaEvent::Opened { ports, .. } => self.media_opened(ctx, env, *ports),
            MediaEvent::Failed { reason, .. } => self.media_failed(ctx, &reason),
        }
    }

    /// A request inside one of the call's dialogs (or the caller's early dialog).
    pub(super) fn on_dialog_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        side: Side,
        key: TxKey,
        request: Request,
    ) {
        if let Some(dialog) = self.dialog_mut(side)
            && let Err(error) = dialog.handle_request(&request)
        {
            return ctx.respond(key, request.reply(error.status(), ""));
        }
        if self.transfer_request(ctx, side, key, &request) {
            return;
        }
        match request.method {
            Method::Bye => {
                ctx.respond(key, request.reply(200, "OK"));
                self.transfer_on_bye(ctx, side);
                let by = if side == Side::A { "caller" } else { "callee" };
                if self.is_answered() {
                    self.hang_up(ctx, side.other(), by);
                } else if !self.is_over() {
                    // RFC 3261 §15: the caller may end its early dialog with BYE.
                    self.fail(ctx, 487, "Request Terminated", by);
                }
            }
            Method::Prack => self.on_prack(ctx, key, &request),
            // RFC 4028 §7.4: an UPDATE without an offer only refreshes this leg's session.
            Method::Update if request.body.is_empty() => self.answer_refresh(ctx, side, key, &request),
            _ if self.has_app() => self.app_call_request(ctx, env, side, key, &request),
            // A phone asks for a keyframe of a browser: the relay asks it by RTCP. Between
            // two phones the INFO is carried across as it is.
            Method::Info if picture::is_picture_update(&request) && self.other_is_browser(side) => {
                ctx.respond(key, request.reply(200, "OK"));
                debug!(call = self.id, ?side, "keyframe asked by the phone (SIP INFO)");
                ctx.out.media(MediaCommand::Keyframe { session: self.id, side: side.other() });
            }
            Method::Info if keys::info_key(&request).is_some() => {
                if let Some((pressed, duration_ms)) = keys::info_key(&request) {
                    info!(call = self.id, ?side, key = %pressed, duration_ms, "key pressed (INFO)");
                }
                self.relay(ctx, side, key, request)
            }
            // We are the back-to-back agent: a transfer is ours to carry out (RFC 5589 §6).
            Method::Refer => self.transfer_by_phone(ctx, env, side, key, &request),
            Method::Invite | Method::Update => {
                self.refreshed(side, ctx.now.instant);
                self.relay(ctx, side, key, request)
            }
            _ => self.relay(ctx, side, key, request),
        }
    }

    /// Carries a request from one leg to the other (re-INVITE, UPDATE, INFO, MESSAGE ...).
    fn relay(&mut self, ctx: &mut Ctx<'_>, from: Side, server: TxKey, request: Request) {
        let to = from.other();
        // Only INVITE and UPDATE carry offers, PRACK an answer; other bodies (INFO's DTMF,
        // MESSAGE, NOTIFY) pass as they are.
        let role = match request.method {
            Method::Invite | Method::Update => Some(Role::Offer),
            Method::Prack => Some(Role::Answer { provisional: false }),
            _ => None,
        };
        let sdp = is_sdp(request.headers.get(HeaderName::ContentType));
        let offer = role == Some(Role::Offer) && sdp;
        let body = match role {
            Some(role) if !request.body.is_empty() && sdp => {
                let transport = self.peer(from).map_or(LegTransport::unknown(), LegTransport::of);
                let to_secure = self.peer(to).is_some_and(is_secure);
                let anchored = match self.media_mut() {
                    Some(media) => media.relay(ctx, from, &request.body, transport, role, to_secure),
                    None => Err(MediaFailure::NoOffer),
                };
                match anchored {
                    Ok(body) => Some(body),
                    Err(failure) => {
                        self.reject_offer(from, offer);
                        let (status, reason) = failure.status();
                        return ctx.respond(server, request.reply(status, reason));
                    }
                }
            }
            _ => (!request.body.is_empty()).then(|| request.body.clone()),
        };
        let id = self.id;
        let Some((peer, dialog)) = self.leg_mut(to) else {
            self.reject_offer(from, offer);
            return ctx.respond(server, request.reply(491, "Request Pending"));
        };
        let mut out = dialog.create_request(request.method.clone());
        // Session-Expires is not carried across: each leg has its own timer (RFC 4028).
        for name in [HeaderName::Event, HeaderName::from("Info-Package")] {
            if let Some(v) = request.headers.get(name.clone()) {
                out.headers.push(name, v.clone());
            }
        }
        if let Some(body) = body {
            let content_type = request.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
            out.set_body(content_type, body);
        }
        let invite = request.method == Method::Invite;
        let owner = Owner::Call(id, Purpose::Relay { server, to, invite });
        if ctx.sip.send_request(out, peer, owner, ctx.random, ctx.now.instant).is_err() {
            self.reject_offer(from, offer);
            ctx.respond(server, request.reply(500, "Server Internal Error"));
        }
    }

    /// An offer from one side to `to` was accepted: when it holds `to` (every audio stream
    /// `sendonly` or `inactive`, RFC 3264 §8.4), `to` hears the music on hold; when its sender
    /// was holding `to` and no longer does, the music stops.
    fn hold_changed(&mut self, ctx: &mut Ctx<'_>, to: Side, offer: &bytes::Bytes) {
        let Some(holds) = holds(offer) else { return };
        match (holds, self.held) {
            (true, None) => {
                let Some(format) = self.media_mut().and_then(|m| m.own_format(to)) else { return };
                info!(call = self.id, held = ?to, "on hold");
                self.held = Some(to);
                ctx.out.media(MediaCommand::Hold { session: self.id, side: to, format });
            }
            (false, Some(held)) if held == to => {
                info!(call = self.id, "off hold");
                self.held = None;
                ctx.out.media(MediaCommand::Resume { session: self.id });
            }
            _ => {}
        }
    }

    /// An offer from `offerer` went nowhere: the session stays as before it.
    pub(super) fn reject_offer(&mut self, offerer: Side, offer: bool) {
        if offer && let Some(media) = self.media_mut() {
            media.reject(offerer);
        }
    }

    /// The answer of the leg a request was carried to goes back to where it came from.
    fn on_relay_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: TxKey,
        server: TxKey,
        to: Side,
        invite: bool,
        response: Response,
    ) {
        if response.status == 100 {
            return;
        }
        let Some(request) = ctx.sip.transactions.request(server).cloned() else { return };
        let mut out = request.reply(response.status, &response.reason);
        let offered = matches!(request.method, Method::Invite | Method::Update)
            && !request.body.is_empty()
            && is_sdp(request.headers.get(HeaderName::ContentType));
        if response.status >= 300 {
            // The offer was refused: the session stays as it was (RFC 3264 §8).
            self.reject_offer(to.other(), offered);
        }
        let role = if offered { Role::Answer { provisional: response.status < 200 } } else { Role::Offer };
        let carries_sdp = matches!(request.method, Method::Invite | Method::Update | Method::Prack);
        if let Some((content_type, body)) = sdp_of(&response).filter(|_| carries_sdp && response.status < 300) {
            let transport = self.peer(to).map_or(LegTransport::unknown(), LegTransport::of);
            let origin_secure = self.peer(to.other()).is_some_and(is_secure);
            let id = self.id;
            match self.media_mut().map(|m| m.relay(ctx, to, &body, transport, role, origin_secure)) {
                Some(Ok(body)) => out.set_body(content_type, body),
                Some(Err(failure)) => debug!(call = id, %failure, "answer to a re-offer not anchored"),
                None => debug!(call = id, "answer to a re-offer in a call without media"),
            }
        } else if let Some((content_type, body)) = body_of(&response).filter(|(t, _)| !is_sdp_type(t)) {
            out.set_body(content_type, body);
        }
        if offered && response.is_success() {
            self.hold_changed(ctx, to, &request.body);
        }
        if invite && response.is_success() {
            // The re-INVITE's 2xx is ACKed on its leg by us (§13.2.2.4); the originator ACKs
            // ours on the other leg.
            if let Some((peer, dialog)) = self.leg_mut(to) {
                let _ = dialog.handle_response(&response);
                let ack = dialog.create_request(Method::Ack);
                ctx.sip.send_ack(key, ack, peer, ctx.random);
            }
            if let Some(origin) = ctx.sip.transactions.peer(server).cloned() {
                insert(&mut out, HeaderName::Contact, ctx.sip.contact_for(&origin));
            }
        }
        ctx.respond(server, out);
    }

    /// The caller's CANCEL (RFC 3261 §9.2): the forks cancelled, 487 for the INVITE.
    pub(super) fn on_cancel(&mut self, ctx: &mut Ctx<'_>, _env: &CallEnv<'_>) {
        // Being connected, the caller's INVITE was answered long ago: too late to cancel.
        if !self.is_answered() && !self.is_over() && self.connecting.is_none() {
            self.fail(ctx, 487, "Request Terminated", "caller");
        }
    }

    /// The ACK for our 2xx to the caller. With a late offer it carries the answer, which the
    /// callee is still waiting for in our ACK.
    pub(super) fn on_ack(&mut self, ctx: &mut Ctx<'_>, _env: &CallEnv<'_>, request: &Request) {
        if !self.a.late_offer {
            return;
        }
        let State::Answered(answered) = &self.state else { return };
        let BSide::Device { fork, .. } = &answered.b else { return };
        let fork = *fork;
        self.a.late_offer = false;
        let (fork_key, b_secure) = (self.forks[fork].key, is_secure(&self.forks[fork].peer));
        let transport = LegTransport::of(&self.a.peer);
        let answer = Role::Answer { provisional: false };
        let body = match self.media_mut() {
            Some(media) if !request.body.is_empty() => {
                media.relay(ctx, Side::A, &request.body, transport, answer, b_secure).ok()
            }
            _ => None,
        };
        let Some((peer, dialog)) = self.leg_mut(Side::B) else { return };
        let mut ack = dialog.create_request(Method::Ack);
        if let Some(body) = body {
            let content_type = request.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
            ack.set_body(content_type, body);
        }
        ctx.sip.send_ack(fork_key, ack, peer, ctx.random);
    }

    /// Fires the call's due timers: the ring timeout, reliable provisionals, session timers.
    pub(super) fn on_timeout(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        self.run_reliable_provisionals(ctx);
        if let State::Ringing(ringing) = &self.state
            && ringing.deadline <= ctx.now.instant
        {
            // Nobody answered in time: the caller hears 480 (RFC 3261 §13.3.1.1 leaves the
            // choice), or the target's no-answer step is taken.
            if ringing.no_answer_step && self.group.is_some() {
                // A member's turn is over.
                self.group_next(ctx, env);
            } else if ringing.no_answer_step {
                let step = route::no_answer_step(&self.target.routing);
                self.proceed(ctx, env, step, "system");
            } else {
                self.fail(ctx, 480, "No Answer", "system");
            }
        }
        self.run_session_timers(ctx);
        self.run_transfer_timer(ctx);
    }

    /// Ends an answered call: BYE to `side`, the record written.
    pub(super) fn hang_up(&mut self, ctx: &mut Ctx<'_>, side: Side, by: &'static str) {
        if self.is_over() {
            return;
        }
        self.bye(ctx, side);
        self.end(ctx, 200, "OK", by);
    }

    /// Ends an answered call from the server's side: BYE on both legs (a session expired, the
    /// caller never acknowledged our 2xx ...).
    pub(super) fn end_both_sides(&mut self, ctx: &mut Ctx<'_>) {
        if self.is_over() {
            return;
        }
        self.bye(ctx, Side::A);
        self.bye(ctx, Side::B);
        self.end(ctx, 200, "OK", "system");
    }

    /// A transfer succeeded: BYE on both legs, recorded as ended by the server.
    pub(super) fn end_transferred(&mut self, ctx: &mut Ctx<'_>) {
        if self.is_over() {
            return;
        }
        self.bye(ctx, Side::A);
        self.bye(ctx, Side::B);
        self.end(ctx, 200, "Transferred", "system");
    }

    /// An operator ends the call (through the API): BYE on both legs once answered; before
    /// that, the caller gets 480 and the ringing devices are cancelled.
    pub(super) fn end_by_operator(&mut self, ctx: &mut Ctx<'_>) {
        if self.is_over() {
            return;
        }
        if self.restore_answered(ctx) || self.is_answered() {
            self.end_both_sides(ctx);
        } else {
            self.fail(ctx, 480, "Ended by the operator", "system");
        }
    }

    /// [`Self::end_both_sides`], for the table.
    pub(super) fn end_both(&mut self, ctx: &mut Ctx<'_>, _env: &CallEnv<'_>) {
        self.end_both_sides(ctx);
    }

    fn bye(&mut self, ctx: &mut Ctx<'_>, side: Side) {
        let id = self.id;
        if let Some((peer, dialog)) = self.leg_mut(side) {
            let bye = dialog.create_request(Method::Bye);
            let _ = ctx.sip.send_request(bye, peer, Owner::Call(id, Purpose::Bye), ctx.random, ctx.now.instant);
        }
    }

    /// The call failed before anyone answered: the caller gets `status`.
    pub(super) fn fail(&mut self, ctx: &mut Ctx<'_>, status: u16, reason: &str, side: &'static str) {
        if self.is_over() {
            return;
        }
        if self.connecting.is_some() {
            // The caller was answered: the application has it back, unless it hung up.
            if side == "caller" {
                self.restore_answered(ctx);
                return self.end(ctx, 200, "OK", side);
            }
            self.connect_failed(ctx, status, reason);
            return;
        }
        for key in self.pending_forks(0) {
            ctx.sip.cancel(key, ctx.now.instant);
        }
        let response = self.a_response(ctx, status, reason, None);
        ctx.respond(self.a.key, response);
        self.end(ctx, status, reason, side);
    }

    /// The call is over: its record, its media closed, its application stopped.
    fn end(&mut self, ctx: &mut Ctx<'_>, status: u16, reason: &str, side: &'static str) {
        // A call being connected ends as the answered call it is.
        self.restore_answered(ctx);
        if let Some(transfer) = self.transfer.take() {
            // Whoever asked for the transfer hears how it ended.
            ctx.out.event(Event::TransferEnded {
                call: self.id,
                target: transfer.target,
                status: 487,
                reason: "The call ended before the transfer was reported".to_owned(),
            });
        }
        let (answered_at, callee_device, answered_by) = match &self.state {
            State::Answered(answered) => match &answered.b {
                BSide::Device { fork, .. } => {
                    let fork = &self.forks[*fork];
                    // A local device rings for the target of the moment.
                    let by = fork.account.map(|_| self.target.username.clone());
                    (Some(answered.at), Some(fork.device.clone()), by)
                }
                BSide::App(app) => (Some(answered.at), Some(app.name.to_owned()), Some(app.name.to_owned())),
            },
            _ => (None, None, None),
        };
        let forwards = self
            .history
            .iter()
            .skip(1)
            .map(|hop| {
                // A local account by its username (its AOR's user part), anyone else by URI.
                let to = match hop.account {
                    Some(_) => hop
                        .uri
                        .strip_prefix("sip:")
                        .and_then(|rest| rest.split_once('@'))
                        .map_or_else(|| hop.uri.clone(), |(user, _)| user.to_owned()),
                    None => hop.uri.clone(),
                };
                (to, hop.cause.map_or("unconditional", route::Cause::diversion))
            })
            .collect();
        if let Some(app) = self.app_mut()
            && !app.ended
        {
            ctx.out.app(AppRequest::Stop { call: self.id });
        }
        if !matches!(std::mem::replace(&mut self.media, Media::None), Media::None) {
            ctx.out.media(MediaCommand::Close { session: self.id });
        }
        let duration = answered_at.map_or(0, |a| ctx.now.unix_secs.saturating_sub(a));
        info!(call = self.id, status, by = side, duration, "call ended");
        ctx.out.event(Event::CallEnded(CallRecord {
            call: self.id,
            call_id: self.a.invite.call_id().unwrap_or_default().to_owned(),
            caller: self.caller.username.clone(),
            callee: self.dialled.clone().unwrap_or_else(|| self.callee.username.clone()),
            caller_device: Some(self.a.device.clone()),
            callee_device,
            started_at: self.started,
            answered_at,
            ended_at: ctx.now.unix_secs,
            duration_secs: duration,
            cause_code: status,
            cause_reason: reason.to_owned(),
            hangup_side: side,
            answered_by,
            forwards,
        }));
        self.state = State::Ending;
    }
}

/// Whether an offer puts the call on hold: `Some(true)` when every audio stream it keeps is
/// `sendonly` or `inactive`, `Some(false)` when one sends and receives (or only receives);
/// `None` without an audio stream (or not SDP).
fn holds(offer: &bytes::Bytes) -> Option<bool> {
    use sambung_media::sdp::{Direction, MediaType};
    let sdp = sambung_media::SessionDescription::parse(offer).ok()?;
    let directions: Vec<Direction> =
        sdp.media.iter().filter(|m| m.media == MediaType::Audio && m.port != 0).map(|m| sdp.direction_for(m)).collect();
    if directions.is_empty() {
        return None;
    }
    Some(directions.iter().all(|d| matches!(d, Direction::SendOnly | Direction::Inactive)))
}

#[cfg(test)]
mod hold_tests {
    use super::holds;

    fn offer(direction: &str) -> bytes::Bytes {
        bytes::Bytes::from(format!(
            "v=0\r\no=x 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n{direction}"
        ))
    }

    #[test]
    fn hold_is_read_from_the_directions() {
        assert_eq!(holds(&offer("a=sendonly\r\n")), Some(true));
        assert_eq!(holds(&offer("a=inactive\r\n")), Some(true));
        assert_eq!(holds(&offer("a=sendrecv\r\n")), Some(false));
        assert_eq!(holds(&offer("")), Some(false));
        assert_eq!(holds(&offer("a=recvonly\r\n")), Some(false));
        assert_eq!(holds(&bytes::Bytes::from_static(b"not sdp")), None);
    }
}
