//! What the callee's devices answer to our INVITEs: ringing and early media pass to the
//! caller, the first 2xx wins and the others are cancelled, and when every device has failed
//! the target's settings decide the next step.

use bytes::Bytes;
use sambung_sip::dialog::Dialog;
use sambung_sip::{HeaderName, Method, Response, SipStr};
use tracing::{debug, info};

use super::call::{Answered, BSide, Call, Fork, Media, State};
use super::media::{LegTransport, Role, is_secure};
use super::route;
use super::session_timer;
use super::{CallEnv, Purpose, Side};
use crate::events::Event;
use crate::pbx::Ctx;
use crate::sip::{DialogOwner, Owner, insert};

impl Call {
    /// The answer of fork `fork` (a device or an outside URI).
    pub(super) fn on_fork_response(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, fork: usize, response: Response) {
        let status = response.status;
        if status == 100 || fork >= self.forks.len() {
            return;
        }
        let Some(response) = self.wait_for_media(ctx, env, fork, response) else { return };
        if (200..300).contains(&status) {
            return self.on_fork_answered(ctx, env, fork, response);
        }
        if status >= 300 {
            self.forks[fork].status = Some(status);
        }
        let State::Ringing(ringing) = &mut self.state else { return };
        if fork < ringing.stage {
            // An earlier target's device: the call has moved on.
            return;
        }
        if status < 200 {
            let alerted = !std::mem::replace(&mut ringing.alerting, true);
            if alerted {
                ctx.out.event(Event::CallRinging {
                    call: self.id,
                    target: self.target.username.clone(),
                    target_id: self.target.id,
                });
            }
            self.prack_if_reliable(ctx, fork, &response);
            if self.connecting.is_some() {
                // The caller was answered by the application, which plays the ringing tone.
                return;
            }
            // Early media (RFC 3960): the 18x's description is anchored like the 2xx's.
            let role = if self.a.late_offer { Role::Offer } else { Role::Answer { provisional: true } };
            let body = self.relay_description(ctx, Side::B, &response, fork, role).and_then(Result::ok);
            let a = self.a_response(ctx, status, &response.reason, body);
            return self.send_provisional(ctx, a);
        }
        let stage = ringing.stage;
        let outside = ringing.outside;
        if self.forks[stage..].iter().any(|f| f.status.is_none()) {
            return;
        }
        if outside && self.outside.is_some() {
            return self.on_outside_failure(ctx, env, fork, &response);
        }
        if !outside && self.group.is_some() {
            // The member (or members) rung did not take it: the group moves on.
            return self.group_next(ctx, env);
        }
        let (status, reason) = best_failure(&self.forks[stage..], &response);
        let step = if outside || self.plain_ring {
            None
        } else {
            let routing = &self.target.routing;
            match status {
                486 | 600 | 603 => Some(route::busy_step(routing, status, &reason)),
                408 | 480 | 503 => Some(route::offline_step(routing)),
                _ => None,
            }
        };
        match step {
            Some(step) => self.proceed(ctx, env, step, "callee"),
            None => self.fail(ctx, status, &reason, "callee"),
        }
    }

    /// A late offer's first description comes from a device: the response waits for the media
    /// session, and is handed back once it can be handled (`None` while it waits).
    fn wait_for_media(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &CallEnv<'_>,
        fork: usize,
        response: Response,
    ) -> Option<Response> {
        let relevant = matches!(&self.state, State::Ringing(r) if fork >= r.stage) && response.status < 300;
        let streams = match sdp_of(&response) {
            Some((_, body)) if relevant => sambung_media::SessionDescription::parse(&body).ok().map(|d| d.media.len()),
            _ => None,
        };
        match (&mut self.media, streams) {
            (Media::Opening { queued }, Some(_)) => {
                queued.push((fork, response));
                None
            }
            (Media::None, Some(streams)) => {
                self.open_media(ctx, env, streams);
                if let Media::Opening { queued } = &mut self.media {
                    queued.push((fork, response));
                }
                None
            }
            _ => Some(response),
        }
    }

    /// RFC 3262 §4: a reliable provisional answer gets its PRACK.
    fn prack_if_reliable(&mut self, ctx: &mut Ctx<'_>, fork: usize, response: &Response) {
        let requires_100rel = response.headers.values(HeaderName::Require).any(|t| t.eq_ignore_ascii_case("100rel"));
        let Some(rseq) = response.headers.get(HeaderName::RSeq).filter(|_| requires_100rel) else { return };
        let Fork { invite, peer, .. } = &self.forks[fork];
        let Ok(mut early) = Dialog::new_uac(invite, response) else { return };
        let mut prack = early.create_request(Method::Prack);
        prack.headers.push(HeaderName::RAck, SipStr::from(format!("{} 1 INVITE", sambung_sip::text::trim_lws(rseq))));
        let owner = Owner::Call(self.id, Purpose::Prack);
        let _ = ctx.sip.send_request(prack, peer.clone(), owner, ctx.random, ctx.now.instant);
    }

    /// A device answered: the first answer of the current target wins the call; any other is
    /// acknowledged and hung up (§13.2.2.4).
    fn on_fork_answered(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, fork: usize, response: Response) {
        self.forks[fork].status = Some(response.status);
        let (fork_key, peer) = (self.forks[fork].key, self.forks[fork].peer.clone());
        let Ok(mut b_dialog) = Dialog::new_uac(&self.forks[fork].invite, &response) else {
            return debug!(call = self.id, "2xx without what a dialog needs");
        };
        let wins = matches!(&self.state, State::Ringing(r) if fork >= r.stage);
        if !wins {
            // Another device answered too, or one that was cancelled when the call moved on
            // (or the caller gave up).
            let ack = b_dialog.create_request(Method::Ack);
            ctx.sip.send_ack(fork_key, ack, peer.clone(), ctx.random);
            let bye = b_dialog.create_request(Method::Bye);
            let _ = ctx.sip.send_request(bye, peer, Owner::Call(self.id, Purpose::Bye), ctx.random, ctx.now.instant);
            return;
        }
        if !self.a.late_offer {
            let ack = b_dialog.create_request(Method::Ack);
            ctx.sip.send_ack(fork_key, ack, peer.clone(), ctx.random);
        }
        // §16.7 item 10 in spirit: the other devices stop ringing.
        for (i, other) in self.forks.iter().enumerate() {
            if i != fork && other.status.is_none() {
                ctx.sip.cancel(other.key, ctx.now.instant);
            }
        }
        if self.connecting.is_some() {
            self.connect_answered(ctx, fork, &response, b_dialog);
            return self.record_if_wanted(ctx, env);
        }
        let b_timer = session_timer::b_leg(&response, ctx.now.instant);
        let role = if self.a.late_offer { Role::Offer } else { Role::Answer { provisional: false } };
        let body = match self.relay_description(ctx, Side::B, &response, fork, role) {
            Some(Ok(body)) => Some(body),
            Some(Err(failure)) => {
                debug!(call = self.id, %failure, "answer refused");
                let (status, reason) = failure.status();
                let bye = b_dialog.create_request(Method::Bye);
                let _ =
                    ctx.sip.send_request(bye, peer, Owner::Call(self.id, Purpose::Bye), ctx.random, ctx.now.instant);
                return self.fail(ctx, status, reason, "system");
            }
            None => None,
        };
        let mut a = self.a_response(ctx, response.status, &response.reason, body);
        let a_timer = session_timer::answer(env.config, &self.a.invite, &mut a, ctx.now.instant);
        let a_dialog = Dialog::new_uas(&self.a.invite, &a).ok();
        info!(call = self.id, device = self.forks[fork].device, "answered");
        ctx.respond(self.a.key, a);
        if let Some(d) = &a_dialog {
            ctx.sip.add_dialog((d.id().call_id.clone(), d.id().local_tag.clone()), DialogOwner::Call(self.id, Side::A));
        }
        let b_id = b_dialog.id();
        ctx.sip.add_dialog((b_id.call_id.clone(), b_id.local_tag.clone()), DialogOwner::Call(self.id, Side::B));
        ctx.out.event(Event::CallAnswered {
            call: self.id,
            by: self.forks[fork].device.clone(),
            account_id: self.forks[fork].account,
            at: ctx.now.unix_secs,
        });
        self.state = State::Answered(Box::new(Answered {
            at: ctx.now.unix_secs,
            a_dialog,
            b: BSide::Device { fork, dialog: Box::new(b_dialog) },
            timers: [Some(a_timer), b_timer],
        }));
        self.record_if_wanted(ctx, env);
    }

    /// The description a device's response carries, anchored and as the caller gets it:
    /// `None` without one (or without media), else the result of anchoring it.
    pub(super) fn relay_description(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: Side,
        response: &Response,
        fork: usize,
        role: Role,
    ) -> Option<Result<(String, Bytes), super::MediaFailure>> {
        let (content_type, body) = sdp_of(response)?;
        let transport = LegTransport::of(&self.forks[fork].peer);
        let a_secure = is_secure(&self.a.peer);
        let media = self.media_mut()?;
        Some(media.relay(ctx, from, &body, transport, role, a_secure).map(|body| (content_type.to_owned(), body)))
    }

    /// A response we pass to the caller: status and reason of the callee's, our dialog's
    /// headers (RFC 3261 §8.2.6 via `reply`, the A leg's To tag), our Contact, the body.
    pub(super) fn a_response(
        &self,
        ctx: &Ctx<'_>,
        status: u16,
        reason: &str,
        body: Option<(String, Bytes)>,
    ) -> Response {
        let mut response = self.a.invite.reply(status, reason);
        if status > 100 && status < 300 {
            insert(&mut response, HeaderName::Contact, ctx.sip.contact_for(&self.a.peer));
        }
        if let Some((content_type, body)) = body.filter(|(_, b)| !b.is_empty()) {
            response.set_body(&content_type, body);
        }
        response
    }
}

/// The best final answer when every device failed (RFC 3261 §16.7 item 6, simplified): a
/// 6xx wins, then busy, then a real refusal, and 480 when nobody answered at all.
fn best_failure(forks: &[Fork], last: &Response) -> (u16, String) {
    let statuses: Vec<u16> = forks.iter().filter_map(|f| f.status).collect();
    if let Some(s) = statuses.iter().copied().find(|s| *s >= 600) {
        return (s, sambung_sip::reason_phrase(s).to_owned());
    }
    if statuses.contains(&486) {
        return (486, "Busy Here".to_owned());
    }
    if let Some(s) = statuses.iter().copied().find(|s| !matches!(s, 408 | 480 | 487 | 503)) {
        let reason = if s == last.status { last.reason.to_string() } else { sambung_sip::reason_phrase(s).to_owned() };
        return (s, reason);
    }
    (480, "Temporarily Unavailable".to_owned())
}

/// True for a Content-Type naming SDP (none at all is taken as SDP, as RFC 3261 §20.15 allows
/// only with a body of the default type).
pub(super) fn is_sdp(content_type: Option<&SipStr>) -> bool {
    content_type.is_none_or(|t| is_sdp_type(t))
}

/// The response's body when it is SDP.
pub(super) fn sdp_of(response: &Response) -> Option<(&str, Bytes)> {
    body_of(response).filter(|(content_type, _)| is_sdp_type(content_type))
}

pub(super) fn is_sdp_type(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/sdp")
}

pub(super) fn body_of(response: &Response) -> Option<(&str, Bytes)> {
    if response.body.is_empty() {
        return None;
    }
    let content_type = response.headers.get(HeaderName::ContentType).map_or("application/sdp", |v| v);
    Some((content_type, response.body.clone()))
}
