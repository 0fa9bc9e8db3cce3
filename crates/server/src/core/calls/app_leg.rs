//! Calls answered by an application (voicemail, the mailbox menu, feature-code confirmations):
//! the B side of the call's relay session goes to the application's RTP socket instead of a
//! device (see [`crate::core::apps`]).

use bytes::Bytes;
use sambung_sip::dialog::Dialog;
use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Method, Request, SipStr};
use tracing::{debug, info};

use super::media::{LegTransport, Role};
use super::{AppLeg, CallId, Core, Now, Purpose, Side};
use crate::core::apps::{App, AppEnd, AppRequest, Caller, Confirmation};
use crate::core::{Persist, RoutingChange, insert};
use crate::registrar::{Account, Target};

/// `*97`: one's own mailbox, from one's own device.
pub const OWN_MAILBOX: &str = "*97";
/// `*72<target>`: forward every call to the target; `*73`: stop.
pub const FORWARD_ON: &str = "*72";
pub const FORWARD_OFF: &str = "*73";
/// `*78`: do-not-disturb on; `*79`: off.
pub const DND_ON: &str = "*78";
pub const DND_OFF: &str = "*79";

impl Core {
    /// The application a dialled number names, if it is a service code: the mailbox numbers
    /// and feature codes. A feature code's change is made here (and queued for the store).
    pub(super) fn service_code(&mut self, _now: Now, caller: &Account, dialled: &str) -> Option<App> {
        if dialled == OWN_MAILBOX {
            return Some(App::Mailbox { account_id: Some(caller.id) });
        }
        if !self.access_number.is_empty() && dialled == self.access_number {
            return Some(App::Mailbox { account_id: None });
        }
        let mut routing = caller.routing.clone();
        let (change, confirmation) = if let Some(target) = dialled.strip_prefix(FORWARD_ON) {
            // The target is a local number or username; `*72` alone, or one that names no
            // account (or the caller), changes nothing.
            match self.accounts.by_user_part(target).filter(|a| !target.is_empty() && a.id != caller.id) {
                Some(account) => {
                    routing.forward_always = Some(Target::Local(account.username.clone()));
                    (Some(RoutingChange::ForwardAlways(Some(account.username.clone()))), Confirmation::ForwardOn)
                }
                None => (None, Confirmation::Invalid),
            }
        } else if dialled == FORWARD_OFF {
            routing.forward_always = None;
            (Some(RoutingChange::ForwardAlways(None)), Confirmation::ForwardOff)
        } else if dialled == DND_ON {
            routing.dnd = true;
            (Some(RoutingChange::Dnd(true)), Confirmation::DndOn)
        } else if dialled == DND_OFF {
            routing.dnd = false;
            (Some(RoutingChange::Dnd(false)), Confirmation::DndOff)
        } else if dialled.starts_with('*') && self.accounts.by_user_part(dialled).is_none() {
            (None, Confirmation::Invalid)
        } else {
            return None;
        };
        if let Some(change) = change {
            info!(account = caller.username, ?change, "feature code");
            self.accounts.set_routing(caller.id, routing);
            self.persist.push_back(Persist::Routing { account_id: caller.id, change });
        }
        Some(App::Confirm(confirmation))
    }

    /// Hands call `id` to `app`: the caller's offer goes to the application's side. Without
    /// one to answer, the call fails as `fallback` says (status, reason, side).
    pub(super) fn start_app(&mut self, now: Now, id: CallId, app: App, fallback: (u16, &'static str, &'static str)) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        // SRTP toward the application too: it runs SDES like any secure device.
        let offer = match (&call.b_offer, call.media.as_mut()) {
            (Some(offer), Some(media)) => media.for_leg(Side::B, offer, true),
            _ => None,
        };
        let Some(offer) = offer else {
            // Without a relay or an offer (a late-offer INVITE) there is nothing to answer.
            debug!(call = id, "no offer for the application");
            let (status, reason, side) = fallback;
            return self.fail_call(now, id, status, reason, side);
        };
        let pending: Vec<TxKey> =
            call.forks[call.stage..].iter().filter(|f| f.status.is_none()).map(|f| f.key).collect();
        call.stage = call.forks.len();
        let name = match app {
            App::Voicemail { .. } => "voicemail",
            App::Mailbox { .. } => "mailbox",
            App::Confirm(_) => "feature code",
        };
        call.app = Some(AppLeg { name, answered: false, ended: false, fallback, answer: None });
        let display = call.a_invite.from().and_then(|f| f.display_name().map(|d| d.into_owned()));
        let caller = Caller {
            account_id: call.caller.id,
            username: call.caller.username.clone(),
            display: display.filter(|d| !d.is_empty()).unwrap_or_else(|| call.caller.display_name.clone()),
            uri: format!("sip:{}@{}", call.caller.username, super::request_host(&call.a_invite)),
            extension: call.caller.extension.clone(),
        };
        for key in pending {
            let _ = self.transactions.cancel(key, now.instant);
        }
        self.app_requests.push_back(AppRequest::Start { call: id, app, caller, offer });
    }

    /// The application's answer: the caller gets its 200 with the answer as the A leg sees it.
    pub(crate) fn on_app_answered(&mut self, now: Now, id: CallId, sdp: Option<Bytes>) {
        let Some(call) = self.calls.calls.get(&id) else {
            // The caller gave up meanwhile.
            return self.app_requests.push_back(AppRequest::Stop { call: id });
        };
        if call.ended.is_some() || call.app.as_ref().is_none_or(|a| a.answered) {
            return;
        }
        let (status, reason, side) = call.app.as_ref().map_or((500, "Server Internal Error", "system"), |a| a.fallback);
        let Some(sdp) = sdp else {
            return self.fail_call(now, id, status, reason, side);
        };
        let ip = sambung_media::sdp::SessionDescription::parse(&sdp)
            .ok()
            .and_then(|d| d.connection.map(|c| c.address))
            .and_then(|a| a.parse().ok())
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        let transport = LegTransport { secure: true, signalling_ip: ip };
        let body = match self.media_for(id, Side::B, &sdp, transport, Role::Answer { provisional: false }) {
            Ok(body) => body,
            Err(failure) => {
                debug!(call = id, %failure, "application answer refused");
                return self.fail_call(now, id, status, reason, side);
            }
        };
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if let Some(app) = call.app.as_mut() {
            app.answered = true;
            app.answer = Some(sdp);
        }
        call.answered = Some(now.unix_secs);
        let Some(call) = self.calls.calls.get(&id) else { return };
        let mut a = self.a_response(call, 200, "OK", Some(("application/sdp", body)));
        let a_timer = self.answer_session(&call.a_invite, &mut a, now.instant);
        let a_dialog = Dialog::new_uas(&call.a_invite, &a).ok();
        let a_key = call.a_key;
        self.respond(a_key, a, now);
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if let Some(d) = &a_dialog {
            self.calls.by_dialog.insert((d.id().call_id.clone(), d.id().local_tag.clone()), (id, Side::A));
        }
        call.a_dialog = a_dialog;
        call.timers = [Some(a_timer), None];
        info!(call = id, app = call.app.as_ref().map_or("", |a| a.name), "answered by the server");
    }

    /// The application is done: the caller's leg is hung up, or transferred to call back.
    pub(crate) fn on_app_ended(&mut self, now: Now, id: CallId, end: AppEnd) {
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        if let Some(app) = call.app.as_mut() {
            app.ended = true;
        }
        if !call.is_answered() {
            return self.fail_call(now, id, 480, "Temporarily Unavailable", "system");
        }
        match end {
            AppEnd::Hangup => self.hang_up(now, id, Side::A, "callee"),
            AppEnd::CallBack { target } => {
                // A blind transfer (RFC 3515): the caller's phone calls the target itself, and
                // our leg ends once the phone has taken the REFER.
                let Some(call) = self.calls.calls.get_mut(&id) else { return };
                let peer = call.a_peer.clone();
                let Some(dialog) = call.a_dialog.as_mut() else { return self.hang_up(now, id, Side::A, "callee") };
                let mut refer = dialog.create_request(Method::Refer);
                refer.headers.push(HeaderName::from("Refer-To"), SipStr::from(format!("<{target}>")));
                // RFC 3515 §2.4.1: a REFER carries the referrer's Contact.
                refer.headers.push(HeaderName::Contact, self.contact_for(&peer));
                self.push_our_via(&mut refer, &peer);
                match self.transactions.send_request(refer, peer, now.instant) {
                    Ok(key) => {
                        info!(call = id, %target, "call back: REFER sent");
                        self.calls.by_client.insert(key, (id, Purpose::Refer));
                    }
                    Err(_) => self.hang_up(now, id, Side::A, "callee"),
                }
            }
        }
    }

    /// A re-INVITE with a new offer from the caller (a session refresh, hold): the application
    /// keeps its media, so its answer is given again through the call's offer/answer state.
    fn app_reoffer(&mut self, now: Now, id: CallId, key: TxKey, request: &Request) {
        let transport = self.calls.calls.get(&id).map_or(LegTransport::unknown(), |c| LegTransport::of(&c.a_peer));
        let answer = self.calls.calls.get(&id).and_then(|c| c.app.as_ref()).and_then(|a| a.answer.clone());
        let Some(answer) = answer else {
            return self.respond(key, request.reply(488, "Not Acceptable Here"), now);
        };
        let offered = self.media_for(id, Side::A, &request.body, transport, Role::Offer);
        let app_transport = LegTransport { secure: true, signalling_ip: std::net::Ipv4Addr::LOCALHOST.into() };
        let body = offered
            .and_then(|_| self.media_for(id, Side::B, &answer, app_transport, Role::Answer { provisional: false }));
        let response = match body {
            Ok(body) => {
                self.refreshed(id, Side::A, now.instant);
                let mut response = request.reply(200, "OK");
                if let Some(call) = self.calls.calls.get(&id) {
                    insert(&mut response, HeaderName::Contact, self.contact_for(&call.a_peer));
                }
                response.set_body("application/sdp", body);
                response
            }
            Err(failure) => {
                self.reject_offer(id, Side::A, true);
                let (status, reason) = failure.status();
                request.reply(status, reason)
            }
        };
        self.respond(key, response, now);
    }

    /// A request inside an application's call: keys from INFO, the transfer's NOTIFYs and
    /// OPTIONS are answered here; a new offer is refused (the application keeps its media).
    pub(super) fn app_call_request(&mut self, now: Now, id: CallId, side: Side, key: TxKey, request: &Request) {
        let response = match request.method {
            Method::Info => {
                if let Some((pressed, duration)) = super::keys::info_key(request) {
                    self.key_pressed(id, side, pressed, duration, super::KeySource::Info);
                }
                request.reply(200, "OK")
            }
            Method::Notify | Method::Options => request.reply(200, "OK"),
            Method::Invite if !request.body.is_empty() => return self.app_reoffer(now, id, key, request),
            Method::Invite => {
                // RFC 4028: a re-INVITE without an offer refreshes the session.
                return self.answer_refresh(now, id, side, key, request);
            }
            Method::Update => request.reply(488, "Not Acceptable Here"),
            _ => request.reply(405, "Method Not Allowed"),
        };
        self.respond(key, response, now);
    }
}
