//! Connecting a caller that an application answered: the auto-attendant's choice.
//!
//! The application asks ([`crate::Input::AppConnect`]) while it goes on playing to the caller
//! (a ringing tone). The caller's answered side (its dialog, its session timer, the
//! application on leg B) is set aside in [`Call::connecting`] and the call rings the target as
//! a forwarded call would ([`Call::forward`]): an account's devices and its own settings
//! (do-not-disturb, forwarding, voicemail), a ring group, a number through the carriers, a SIP
//! URI. Leg B is offered the caller's media as the application took it
//! ([`super::media::CallMedia::connect_offer`]), so the caller is never asked again: a device
//! that picks another codec is transcoded to.
//!
//! - A device answers: the application is stopped, leg B of the media session becomes the
//!   device's again (`DetachApp`) and the call is answered between the caller and the device.
//! - The target's own settings send the caller to voicemail: that application takes leg B over.
//! - Nothing can take the call (busy, no answer, no such target, refused): the caller's side is
//!   as it was and the application hears why ([`AppRequest::ConnectFailed`]).
//! - The caller hangs up meanwhile: the ringing devices are cancelled and the call ends.

use sambung_sip::Response;
use std::sync::Arc;
use std::time::Duration;

use sambung_sip::dialog::Dialog;
use tracing::{debug, info};

use super::call::{Answered, AppLeg, BSide, Call, State};
use super::media::Role;
use super::route::{Cause, Hop};
use super::{CallEnv, Purpose, Side, session_timer};
use crate::apps::{App, AppRequest, Caller};
use crate::events::Event;
use crate::media::MediaCommand;
use crate::pbx::Ctx;
use crate::registrar::{Account, Target};
use crate::sip::{DialogOwner, Owner};

/// What an application may connect its caller to.
enum ConnectTarget {
    /// An account's voicemail, by username.
    Voicemail(String),
    /// A number the caller keyed in: only an account (by extension or username) or a group of
    /// this service, never a number out through the carriers.
    Extension(String),
    /// A queue's agent, by username: only the account's devices ring, for this long, and
    /// nothing of its settings applies (no forwarding, no voicemail); busy or in do-not-disturb
    /// it is not rung at all.
    Agent(String, Duration),
    /// What the operator configured: an account, group, number or SIP URI.
    Any(Target),
}

impl ConnectTarget {
    fn parse(text: &str) -> Option<ConnectTarget> {
        let text = text.trim();
        if let Some(user) = text.strip_prefix("voicemail:") {
            let user = user.trim();
            return (!user.is_empty()).then(|| ConnectTarget::Voicemail(user.to_ascii_lowercase()));
        }
        if let Some(rest) = text.strip_prefix("agent:") {
            let (user, secs) = rest.rsplit_once(':')?;
            let secs: u64 = secs.trim().parse().ok().filter(|s| (1..=600).contains(s))?;
            let user = user.trim().to_ascii_lowercase();
            return (!user.is_empty()).then(|| ConnectTarget::Agent(user, Duration::from_secs(secs)));
        }
        if let Some(digits) = text.strip_prefix("extension:") {
            let digits = digits.trim();
            let plain = !digits.is_empty() && digits.len() <= 32 && digits.bytes().all(|b| b.is_ascii_alphanumeric());
            return plain.then(|| ConnectTarget::Extension(digits.to_owned()));
        }
        Target::parse(text).map(ConnectTarget::Any)
    }
}

impl Call {
    /// The caller as an application sees it.
    pub(super) fn app_caller(&self) -> Caller {
        let display = self.a.invite.from().and_then(|f| f.display_name().map(|d| d.into_owned()));
        Caller {
            account_id: self.caller.id,
            username: self.caller.username.clone(),
            display: display.filter(|d| !d.is_empty()).unwrap_or_else(|| self.caller.display_name.clone()),
            uri: format!("sip:{}@{}", self.caller.username, super::setup::request_host(&self.a.invite)),
            extension: self.caller.extension.clone(),
        }
    }

    /// The application answering the call asks that its caller be connected to `target`.
    pub(super) fn on_app_connect(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, target: &str) {
        let id = self.id;
        let refuse = |ctx: &mut Ctx<'_>, status: u16| ctx.out.app(AppRequest::ConnectFailed { call: id, status });
        if self.connecting.is_some() || self.transfer.is_some() {
            return refuse(ctx, 491);
        }
        let Some(app) = self.app_mut().filter(|app| !app.ended) else { return };
        let (format, answer) = (app.format.clone(), app.answer.clone());
        let Some(chosen) = ConnectTarget::parse(target) else {
            debug!(call = id, target, "the application's target is not one");
            return refuse(ctx, 404);
        };
        // A menu or queue named (or keyed in) takes the caller over.
        let service = match &chosen {
            ConnectTarget::Extension(user) | ConnectTarget::Any(Target::Local(user)) => env.config.menus.find(user),
            _ => None,
        };
        if let Some(menu) = service {
            info!(call = id, to = menu.name, "the application hands the caller on");
            return self.swap_app(ctx, menu.app());
        }
        let target = match chosen {
            ConnectTarget::Voicemail(user) => {
                let account = env.accounts.by_user_part(&user).filter(|a| !a.disabled && a.routing.voicemail).cloned();
                let Some(account) = account else { return refuse(ctx, 404) };
                let name = account.extension.clone().unwrap_or_else(|| account.username.clone());
                info!(call = id, mailbox = account.username, "the application sends the caller to voicemail");
                self.target = account.clone();
                return self.swap_app(ctx, App::Voicemail { account_id: account.id, name });
            }
            ConnectTarget::Extension(digits) => {
                let found = env.accounts.by_user_part(&digits).is_some_and(|a| !a.disabled)
                    || env.config.groups.find(&digits).is_some();
                if !found {
                    info!(call = id, extension = digits, "no such extension");
                    return refuse(ctx, 404);
                }
                Target::Local(digits)
            }
            ConnectTarget::Agent(user, ring_for) => {
                let Some(account) = env.accounts.by_username(&user).filter(|a| !a.disabled).cloned() else {
                    return refuse(ctx, 404);
                };
                if env.subscriptions.in_call(account.id) {
                    return refuse(ctx, 486);
                }
                if account.routing.dnd || env.location.bindings(account.id).is_empty() {
                    return refuse(ctx, 480);
                }
                if !self.set_aside(&format, &answer) {
                    return refuse(ctx, 488);
                }
                return self.ring_agent(ctx, env, account, ring_for);
            }
            ConnectTarget::Any(target) => target,
        };
        if !self.set_aside(&format, &answer) {
            return refuse(ctx, 488);
        }
        info!(call = id, %target, "connecting the caller");
        self.forward(ctx, env, target, Cause::Unconditional);
    }

    /// Sets the caller's answered side aside and offers leg B the caller's media, for a new
    /// target to ring; false (nothing changed) without media to offer.
    fn set_aside(&mut self, format: &sambung_media::negotiate::Negotiated, answer: &bytes::Bytes) -> bool {
        let offered = self.media_mut().map(|media| media.connect_offer(format, answer));
        if !matches!(offered, Some(Ok(()))) {
            debug!(call = self.id, "no media to offer the target");
            return false;
        }
        // Until the target rings, the call is between states: not over, not answered.
        let State::Answered(answered) = std::mem::replace(&mut self.state, State::Opening { service: None }) else {
            return false;
        };
        self.connecting = Some(answered);
        self.target = self.callee.clone();
        // Each attempt is a call of its own to the target: an earlier attempt's targets are not
        // a loop, nor is an earlier group or carrier route still in force.
        self.history.truncate(1);
        self.group = None;
        self.outside = None;
        self.plain_ring = false;
        true
    }

    /// Rings a queue's agent: the account's devices only, for `ring_for`; any failure gives
    /// the caller back to the queue.
    fn ring_agent(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, account: Arc<Account>, ring_for: Duration) {
        let host = super::setup::request_host(&self.a.invite);
        let uri = format!("sip:{}@{host}", account.username);
        self.history.push(Hop { uri, account: Some(account.id), cause: Some(Cause::Unconditional) });
        self.target = account.clone();
        self.plain_ring = true;
        self.start_ringing(ctx, ring_for, false, false);
        let (sent, _) = self.ring_devices(ctx, env, &account);
        info!(call = self.id, agent = account.username, devices = sent, "ringing the agent");
        if sent == 0 {
            return self.fail(ctx, 480, "Temporarily Unavailable", "system");
        }
        ctx.out.event(Event::CallRinging { call: self.id, target: account.username.clone(), target_id: account.id });
    }

    /// A device of the target answered a call being connected: the application stops and the
    /// caller talks to the device.
    pub(super) fn connect_answered(&mut self, ctx: &mut Ctx<'_>, fork: usize, response: &Response, b_dialog: Dialog) {
        if super::forks::sdp_of(response).is_none() {
            // The device answered the offer in a reliable provisional response, which is not
            // taken while connecting: it is hung up, and the application has the caller again.
            let mut b_dialog = b_dialog;
            let bye = b_dialog.create_request(sambung_sip::Method::Bye);
            let peer = self.forks[fork].peer.clone();
            let _ = ctx.sip.send_request(bye, peer, Owner::Call(self.id, Purpose::Bye), ctx.random, ctx.now.instant);
            self.connect_failed(ctx, 488, "No answer in the 2xx");
            return;
        }
        let Some(mut answered) = self.connecting.take() else { return };
        if let BSide::App(app) = &mut answered.b {
            app.ended = true;
        }
        ctx.out.app(AppRequest::Stop { call: self.id });
        ctx.out.media(MediaCommand::DetachApp { session: self.id });
        let b_timer = session_timer::b_leg(response, ctx.now.instant);
        let peer = self.forks[fork].peer.clone();
        let taken = self.relay_description(ctx, Side::B, response, fork, Role::Answer { provisional: false });
        if !matches!(taken, Some(Ok(_))) {
            // The device answered with nothing the caller's media can become.
            debug!(call = self.id, "the device's answer cannot be taken: the call ends");
            let mut b_dialog = b_dialog;
            let bye = b_dialog.create_request(sambung_sip::Method::Bye);
            let _ = ctx.sip.send_request(bye, peer, Owner::Call(self.id, Purpose::Bye), ctx.random, ctx.now.instant);
            self.state = State::Answered(answered);
            return self.end_both_sides(ctx);
        }
        let b_id = b_dialog.id();
        ctx.sip.add_dialog((b_id.call_id.clone(), b_id.local_tag.clone()), DialogOwner::Call(self.id, Side::B));
        info!(call = self.id, device = self.forks[fork].device, "connected");
        ctx.out.event(Event::CallAnswered {
            call: self.id,
            by: self.forks[fork].device.clone(),
            account_id: self.forks[fork].account,
            at: ctx.now.unix_secs,
        });
        let [a_timer, _] = std::mem::take(&mut answered.timers);
        self.state = State::Answered(Box::new(Answered {
            at: answered.at,
            a_dialog: answered.a_dialog.take(),
            b: BSide::Device { fork, dialog: Box::new(b_dialog) },
            timers: [a_timer, b_timer],
        }));
    }

    /// The call being connected cannot reach its target (`status`): the ringing devices are
    /// cancelled and the application has the caller again. False when the call was not being
    /// connected.
    pub(super) fn connect_failed(&mut self, ctx: &mut Ctx<'_>, status: u16, reason: &str) -> bool {
        if !self.restore_answered(ctx) {
            return false;
        }
        info!(call = self.id, status, reason, "connecting failed: back to the application");
        ctx.out.app(AppRequest::ConnectFailed { call: self.id, status });
        true
    }

    /// Puts the caller's answered side back in place (the ringing devices cancelled, leg B the
    /// application's). False when the call was not being connected.
    pub(super) fn restore_answered(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(answered) = self.connecting.take() else { return false };
        for key in self.pending_forks(0) {
            ctx.sip.cancel(key, ctx.now.instant);
        }
        if let Some(media) = self.media_mut() {
            media.back_to_app();
        }
        self.state = State::Answered(answered);
        true
    }

    /// Another application takes over the caller from the one answering (the target's
    /// voicemail): the one answering is stopped, the new one gets leg B as it was.
    pub(super) fn swap_app(&mut self, ctx: &mut Ctx<'_>, app: App) {
        self.restore_answered(ctx);
        let State::Answered(answered) = &mut self.state else { return };
        let BSide::App(old) = &answered.b else { return };
        let (format, rate, answer) = (old.format.clone(), old.rate, old.answer.clone());
        let name = app.name();
        ctx.out.app(AppRequest::Stop { call: self.id });
        ctx.out.media(MediaCommand::AttachApp { session: self.id, format: format.clone(), rate });
        ctx.out.app(AppRequest::Start { call: self.id, app, caller: self.app_caller(), rate });
        let State::Answered(answered) = &mut self.state else { return };
        answered.b = BSide::App(AppLeg { name, ended: false, answer, format, rate });
        info!(call = self.id, app = name, "another application takes the call");
        ctx.out.event(Event::CallAnswered {
            call: self.id,
            by: name.to_owned(),
            account_id: None,
            at: ctx.now.unix_secs,
        });
    }
}
