//! Click-to-call (calls started through the API): the server rings every registered device of
//! a person; the first that answers is asked, by REFER (RFC 3515), to call the destination
//! itself, so the call that follows is the person's own call, routed, authenticated, limited
//! and recorded like any other, and a phone shows it as its own (RFC 5359 §2.4 "third party
//! call control" by REFER, which RFC 3725 §5 points to).
//!
//! The INVITE to the devices carries no offer (RFC 3725 flow I): the answering device offers
//! in its 2xx, and the ACK answers with every stream inactive on the discard port (RFC 3264
//! §6), so nothing flows on this short leg. Once the REFER is accepted, its NOTIFYs (RFC 3515
//! §2.4.5, `message/sipfrag`) tell how the device's own call goes; the leg is hung up when that
//! call is answered or has failed, or when the device never says (a bounded wait). Every
//! attempt ends with [`Event::OriginateEnded`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sambung_media::sdp::{Attribute, MediaDescription, SessionDescription};
use sambung_sip::dialog::Dialog;
use sambung_sip::transaction::{Peer, TxKey};
use sambung_sip::{HeaderName, Method, Request, Response, SipStr, Uri};
use tracing::{debug, info};

use crate::events::Event;
use crate::pbx::Ctx;
use crate::refer::{self, Progress};
use crate::registrar::{Account, Accounts, Location};
use crate::sip::{DialogKey, DialogOwner, Owner, insert};

/// What a client transaction of an origination is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The INVITE to device `n` of the person.
    Fork(usize),
    /// The REFER asking the answering device to call the destination.
    Refer,
    /// A BYE (the attempt is over for us).
    Bye,
}

/// One attempt.
#[derive(Debug)]
struct Origination {
    account: Arc<Account>,
    /// What the device is asked to call, as the API gave it.
    target: String,
    call_id: SipStr,
    tag: String,
    forks: Vec<Fork>,
    state: State,
    deadline: Instant,
    /// The answering device's dialog, registered with the SIP tables until the attempt goes.
    dialog: Option<DialogKey>,
}

#[derive(Debug)]
struct Fork {
    key: TxKey,
    peer: Peer,
    invite: Request,
    status: Option<u16>,
}

#[derive(Debug)]
enum State {
    /// The person's devices ring.
    Ringing,
    /// A device answered; the REFER is out (`accepted` once the device took it).
    Referring { fork: usize, dialog: Box<Dialog>, accepted: bool },
    /// Over: only unanswered forks (a late 2xx is acknowledged and hung up) keep it.
    Over,
}

/// Every origination in progress on this shard.
#[derive(Debug, Default)]
pub(crate) struct Originations {
    list: HashMap<u64, Origination>,
}

impl Originations {
    /// How many attempts are in progress.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The earliest timer of any attempt.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.list.values().filter(|o| !matches!(o.state, State::Over)).map(|o| o.deadline).min()
    }

    /// Starts attempt `id`: rings every registered device of account `account_id`, which then
    /// calls `target` (a user, an extension, a number, or a SIP URI).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        &mut self,
        ctx: &mut Ctx<'_>,
        accounts: &Accounts,
        location: &Location,
        ring_for: Duration,
        id: u64,
        account_id: i64,
        target: String,
    ) {
        let Some(account) = accounts.by_id(account_id).filter(|a| !a.disabled).cloned() else {
            return ended(ctx, id, (account_id, ""), &target, 404, "No such account");
        };
        if self.list.contains_key(&id) {
            return debug!(id, "origination already in progress");
        }
        let mut attempt = Origination {
            account,
            target,
            call_id: SipStr::from(ctx.random.call_id()),
            tag: ctx.random.token(8),
            forks: Vec::new(),
            state: State::Ringing,
            deadline: ctx.now.instant + ring_for,
            dialog: None,
        };
        for binding in location.bindings(account_id) {
            let peer = binding.target();
            let invite = attempt.invite(ctx, &binding.aor, &binding.uri, &peer);
            let owner = Owner::Originate(id, Purpose::Fork(attempt.forks.len()));
            match ctx.sip.send_request(invite.clone(), peer.clone(), owner, ctx.random, ctx.now.instant) {
                Ok(key) => {
                    let invite = ctx.sip.transactions.request(key).cloned().unwrap_or(invite);
                    attempt.forks.push(Fork { key, peer, invite, status: None });
                }
                Err(error) => debug!(id, %error, "origination fork not sent"),
            }
        }
        if attempt.forks.is_empty() {
            return ended(
                ctx,
                id,
                (account_id, &attempt.account.username),
                &attempt.target,
                480,
                "No device registered",
            );
        }
        info!(
            id,
            username = attempt.account.username,
            target = attempt.target,
            devices = attempt.forks.len(),
            "click-to-call: ringing"
        );
        self.list.insert(id, attempt);
    }

    /// A response to one of attempt `id`'s requests.
    pub(crate) fn on_response(&mut self, ctx: &mut Ctx<'_>, id: u64, purpose: Purpose, response: &Response) {
        let Some(attempt) = self.list.get_mut(&id) else { return };
        match purpose {
            Purpose::Fork(fork) => attempt.on_fork_response(ctx, id, fork, response),
            Purpose::Refer => attempt.on_refer_response(ctx, id, response),
            Purpose::Bye => {}
        }
        self.settle(ctx, id);
    }

    /// A request inside attempt `id`'s dialog: the REFER's NOTIFYs, a re-INVITE (the device
    /// holds this leg while it calls), a BYE.
    pub(crate) fn on_request(&mut self, ctx: &mut Ctx<'_>, id: u64, key: TxKey, request: &Request) {
        let Some(attempt) = self.list.get_mut(&id) else {
            return ctx.respond(key, request.reply(481, "Call/Transaction Does Not Exist"));
        };
        attempt.on_request(ctx, id, key, request);
        self.settle(ctx, id);
    }

    /// Fires the timers that are due: devices that rang too long, a REFER never reported on.
    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now.instant;
        let due: Vec<u64> = self
            .list
            .iter()
            .filter(|(_, o)| !matches!(o.state, State::Over) && o.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(attempt) = self.list.get_mut(&id) {
                match attempt.state {
                    State::Ringing => attempt.finish(ctx, id, 408, "No answer"),
                    _ => attempt.finish(ctx, id, 408, "The device did not report on the call"),
                }
            }
            self.settle(ctx, id);
        }
    }

    /// Forgets attempt `id` once it is over and every fork has its final answer.
    fn settle(&mut self, ctx: &mut Ctx<'_>, id: u64) {
        let done = self
            .list
            .get(&id)
            .is_some_and(|o| matches!(o.state, State::Over) && o.forks.iter().all(|f| f.status.is_some()));
        if done
            && let Some(attempt) = self.list.remove(&id)
            && let Some(dialog) = attempt.dialog
        {
            ctx.sip.dialogs.remove(&dialog);
        }
    }
}

impl Origination {
    /// Our INVITE to one device: from the server (the person sees who asked), without an offer.
    fn invite(&self, ctx: &mut Ctx<'_>, aor: &str, uri: &Uri, peer: &Peer) -> Request {
        let mut headers = sambung_sip::Headers::new();
        headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
        let (host, port) = ctx.sip.local_address(peer);
        let display = sambung_sip::text::quote(&format!("Call {}", self.target));
        headers.push(HeaderName::From, SipStr::from(format!("{display} <sip:sambung@{host}:{port}>;tag={}", self.tag)));
        headers.push(HeaderName::To, SipStr::from(format!("<{aor}>")));
        headers.push(HeaderName::CallId, self.call_id.clone());
        headers.push(HeaderName::CSeq, SipStr::from_static("1 INVITE"));
        headers.push(HeaderName::Contact, ctx.sip.contact_for(peer));
        headers.push(HeaderName::Allow, ctx.sip.capabilities.allow.clone());
        headers.push(HeaderName::Subject, SipStr::from(format!("Call {}", self.target)));
        Request { method: Method::Invite, uri: uri.clone(), headers, body: Bytes::new() }
    }

    fn on_fork_response(&mut self, ctx: &mut Ctx<'_>, id: u64, fork: usize, response: &Response) {
        let status = response.status;
        if status < 200 || fork >= self.forks.len() {
            return;
        }
        self.forks[fork].status = Some(status);
        let (key, peer) = (self.forks[fork].key, self.forks[fork].peer.clone());
        if status >= 300 {
            if matches!(self.state, State::Ringing) && self.forks.iter().all(|f| f.status.is_some()) {
                let (status, reason) = match status {
                    486 | 600 => (486, "Busy"),
                    603 => (603, "Declined"),
                    _ => (480, "No device answered"),
                };
                self.finish(ctx, id, status, reason);
            }
            return;
        }
        let Ok(mut dialog) = Dialog::new_uac(&self.forks[fork].invite, response) else {
            return debug!(id, "2xx without what a dialog needs");
        };
        let mut ack = dialog.create_request(Method::Ack);
        let answer = inactive_answer(ctx, &peer, &response.body);
        if let Some(answer) = &answer {
            ack.set_body("application/sdp", answer.clone());
        }
        ctx.sip.send_ack(key, ack, peer.clone(), ctx.random);
        if !matches!(self.state, State::Ringing) || answer.is_none() {
            // Another device answered first, or the answer cannot be answered: hung up.
            debug!(id, fork, "device answered too late, or without an offer we can answer");
            let bye = dialog.create_request(Method::Bye);
            let _ = ctx.sip.send_request(bye, peer, Owner::Originate(id, Purpose::Bye), ctx.random, ctx.now.instant);
            if matches!(self.state, State::Ringing) && self.forks.iter().all(|f| f.status.is_some()) {
                self.finish(ctx, id, 488, "The device's offer could not be answered");
            }
            return;
        }
        for (i, other) in self.forks.iter().enumerate() {
            if i != fork && other.status.is_none() {
                ctx.sip.cancel(other.key, ctx.now.instant);
            }
        }
        let dialog_id = dialog.id();
        let dialog_key: DialogKey = (dialog_id.call_id.clone(), dialog_id.local_tag.clone());
        ctx.sip.add_dialog(dialog_key.clone(), DialogOwner::Originate(id));
        self.dialog = Some(dialog_key);
        let target = refer::target_uri(ctx, &peer, &self.target);
        let refer = refer::request(ctx, &mut dialog, &peer, &target, Some(&self.account.username));
        info!(id, fork, target = self.target, "click-to-call: answered, REFER sent");
        match ctx.sip.send_request(
            refer,
            peer.clone(),
            Owner::Originate(id, Purpose::Refer),
            ctx.random,
            ctx.now.instant,
        ) {
            Ok(_) => {
                self.deadline = ctx.now.instant + refer::REFER_WAIT;
                self.state = State::Referring { fork, dialog: Box::new(dialog), accepted: false };
            }
            Err(_) => {
                self.state = State::Referring { fork, dialog: Box::new(dialog), accepted: false };
                self.finish(ctx, id, 503, "The REFER could not be sent");
            }
        }
    }

    fn on_refer_response(&mut self, ctx: &mut Ctx<'_>, id: u64, response: &Response) {
        let State::Referring { accepted, .. } = &mut self.state else { return };
        match response.status {
            200..=299 => *accepted = true,
            300.. => {
                let reason = format!("The device refused to call: {} {}", response.status, response.reason);
                self.finish(ctx, id, response.status, &reason);
            }
            _ => {}
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, id: u64, key: TxKey, request: &Request) {
        let State::Referring { dialog, .. } = &mut self.state else {
            return ctx.respond(key, request.reply(481, "Call/Transaction Does Not Exist"));
        };
        if let Err(error) = dialog.handle_request(request) {
            return ctx.respond(key, request.reply(error.status(), ""));
        }
        match request.method {
            Method::Notify => {
                ctx.respond(key, request.reply(200, "OK"));
                let progress = refer::progress(request);
                debug!(id, ?progress, "click-to-call: NOTIFY");
                match progress {
                    Some(Progress::Answered(status)) => self.finish(ctx, id, status, "Connected"),
                    Some(Progress::Failed(status)) => {
                        self.finish(ctx, id, status, &format!("The call failed: {status}"));
                    }
                    Some(Progress::Ended) => self.finish(ctx, id, 487, "The device ended the transfer"),
                    Some(Progress::Pending) | None => {}
                }
            }
            Method::Invite => {
                // The device holds this leg while it calls: the answer stays inactive.
                let peer = request_peer(self);
                let mut ok = request.reply(200, "OK");
                match peer.as_ref().and_then(|peer| inactive_answer(ctx, peer, &request.body).map(|b| (peer, b))) {
                    Some((peer, body)) => {
                        insert(&mut ok, HeaderName::Contact, ctx.sip.contact_for(peer));
                        ok.set_body("application/sdp", body);
                        ctx.respond(key, ok);
                    }
                    None => ctx.respond(key, request.reply(488, "Not Acceptable Here")),
                }
            }
            Method::Bye => {
                ctx.respond(key, request.reply(200, "OK"));
                // The device ended this leg itself: it has taken the call over (RFC 5589 §6.1
                // lets the transferee end it), or gave up before it took the REFER.
                let accepted = matches!(self.state, State::Referring { accepted: true, .. });
                self.state = State::Over;
                if accepted {
                    ended(
                        ctx,
                        id,
                        (self.account.id, &self.account.username),
                        &self.target,
                        200,
                        "Handed to the device",
                    );
                } else {
                    ended(
                        ctx,
                        id,
                        (self.account.id, &self.account.username),
                        &self.target,
                        487,
                        "Hung up before calling",
                    );
                }
            }
            Method::Ack => {}
            Method::Options | Method::Info => ctx.respond(key, request.reply(200, "OK")),
            _ => ctx.respond(key, request.reply(405, "Method Not Allowed")),
        }
    }

    /// The attempt is over with `status`: ringing devices stop, an answered one is hung up.
    fn finish(&mut self, ctx: &mut Ctx<'_>, id: u64, status: u16, reason: &str) {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Ringing => {
                for fork in self.forks.iter().filter(|f| f.status.is_none()) {
                    ctx.sip.cancel(fork.key, ctx.now.instant);
                }
            }
            State::Referring { fork, mut dialog, .. } => {
                let bye = dialog.create_request(Method::Bye);
                let peer = self.forks[fork].peer.clone();
                let _ =
                    ctx.sip.send_request(bye, peer, Owner::Originate(id, Purpose::Bye), ctx.random, ctx.now.instant);
            }
            State::Over => return,
        }
        info!(id, status, reason, "click-to-call over");
        ended(ctx, id, (self.account.id, &self.account.username), &self.target, status, reason);
    }
}

/// The peer of the answering device.
fn request_peer(attempt: &Origination) -> Option<Peer> {
    match &attempt.state {
        State::Referring { fork, .. } => attempt.forks.get(*fork).map(|f| f.peer.clone()),
        _ => None,
    }
}

fn ended(ctx: &mut Ctx<'_>, id: u64, account: (i64, &str), target: &str, status: u16, reason: &str) {
    let (account_id, username) = account;
    ctx.out.event(Event::OriginateEnded {
        id,
        account_id,
        username: username.to_owned(),
        target: target.to_owned(),
        status,
        reason: reason.to_owned(),
    });
}

/// The answer to a device's offer with nothing flowing (RFC 3264 §6): each RTP stream with
/// its first codec, `inactive`, on the discard port (SDES-SRTP ones with a key of ours, RFC 4568
/// §5.1.2); other streams declined with port 0. `None` without an offer we can read.
fn inactive_answer(ctx: &mut Ctx<'_>, peer: &Peer, offer: &[u8]) -> Option<Bytes> {
    let offer = SessionDescription::parse(offer).ok()?;
    let ip = ctx.sip.media_ip(peer);
    let mut media = Vec::with_capacity(offer.media.len());
    for offered in &offer.media {
        let codec = offered.codecs().into_iter().find(|c| !c.is_auxiliary());
        let mut answered = match codec {
            Some(codec) => {
                let mut m = MediaDescription::new(
                    offered.media.clone(),
                    9,
                    offered.proto.clone(),
                    vec![codec.payload_type.to_string()],
                );
                m.attributes.push(codec.to_rtpmap());
                m.attributes.push(Attribute::property("inactive"));
                m
            }
            None => MediaDescription::new(offered.media.clone(), 0, offered.proto.clone(), offered.formats.clone()),
        };
        if answered.port != 0 && offered.proto.is_secure() {
            let mut key = [0u8; sambung_media::srtp::MasterKey::LEN];
            ctx.random.fill(&mut key);
            match sambung_media::sdes::answer_media(offered, &key) {
                Ok(answer) => answered.attributes.push(answer.local.to_attribute()),
                // DTLS-SRTP or an unusable key: declined.
                Err(_) => {
                    answered =
                        MediaDescription::new(offered.media.clone(), 0, offered.proto.clone(), offered.formats.clone())
                }
            }
        }
        media.push(answered);
    }
    if media.is_empty() {
        return None;
    }
    let session = SessionDescription::ours(ip, ctx.random.u32().to_string(), media);
    Some(Bytes::from(session.to_bytes()))
}
