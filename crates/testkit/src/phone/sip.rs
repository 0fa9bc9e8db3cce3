//! The phone's SIP: the requests it sends, the credentials it adds when challenged, and what
//! it does with what the transaction layer hands it (RFC 3261 §8, §12–§15, RFC 3428).

use std::time::Instant;

use bytes::Bytes;
use sambung_media::negotiate::{EventFormat, telephone_events};
use sambung_media::offer_answer::remote_media;
use sambung_media::sdp::SessionDescription;
use sambung_sip::dialog::Dialog;
use sambung_sip::digest::{self, Challenge};
use sambung_sip::transaction::{TxEvent, TxKey, new_branch, push_via};
use sambung_sip::{HeaderName, Headers, Host, Method, Request, Response, SipStr, Transport, Uri, Via};

use super::{Call, Phone, PhoneEvent, Sent};

/// The telephone-event payload type of the phone's offers.
const EVENT_PT: u8 = 101;

impl Phone {
    fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.config.user, self.config.sip)
    }

    fn aor(&self) -> String {
        format!("sip:{}@{}", self.config.user, self.config.domain)
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.next_u64())
    }

    /// A request outside any dialog, without Via (see [`Self::send`]).
    fn request(&mut self, method: Method, uri: &str, to: &str, call_id: &str, cseq: u32) -> Request {
        let mut headers = Headers::new();
        headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
        headers.push(HeaderName::To, SipStr::from(format!("<{to}>")));
        let tag = self.token();
        let from = format!("\"{}\" <{}>;tag={tag}", self.config.user, self.aor());
        headers.push(HeaderName::From, SipStr::from(from));
        headers.push(HeaderName::CallId, SipStr::from(call_id.to_owned()));
        headers.push(HeaderName::CSeq, SipStr::from(format!("{cseq} {method}")));
        headers.push(HeaderName::UserAgent, SipStr::from_static("sambung-testkit phone"));
        headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
        let uri = Uri::parse(uri).expect("the phone writes valid URIs");
        Request { method, uri, headers, body: Bytes::new() }
    }

    /// Puts a fresh Via on `request` and starts its client transaction toward the server.
    fn send(&mut self, now: Instant, mut request: Request, purpose: Sent) -> Option<TxKey> {
        request.headers.remove(HeaderName::Via);
        let branch = new_branch(&self.rng.bytes::<8>());
        let mut via = Via::new(Transport::Udp, Host::from(self.config.sip.ip()), Some(self.config.sip.port()), &branch);
        via.params.set("rport", None);
        push_via(&mut request, via);
        let key = self.layer.send_request(request, self.server.clone(), now).ok()?;
        self.sent.insert(key, purpose);
        Some(key)
    }

    pub(super) fn send_register(&mut self, now: Instant) {
        self.reg_cseq += 1;
        let domain = format!("sip:{}", self.config.domain);
        let (aor, call_id) = (self.aor(), self.reg_call_id.clone());
        let mut request = self.request(Method::Register, &domain, &aor, &call_id, self.reg_cseq);
        request.headers.push(HeaderName::Contact, SipStr::from(self.contact()));
        request.headers.push(HeaderName::Expires, SipStr::from_static("3600"));
        self.send(now, request, Sent::Register { authed: false });
    }

    pub(super) fn send_invite(&mut self, now: Instant, user: &str) {
        if !matches!(self.call, Call::Idle) {
            return;
        }
        let uri = format!("sip:{user}@{}", self.config.domain);
        let call_id = format!("{}@{}", self.token(), self.config.sip.ip());
        let mut request = self.request(Method::Invite, &uri, &uri, &call_id, 1);
        request.headers.push(HeaderName::Contact, SipStr::from(self.contact()));
        let offer = self.description(self.config.telephone_event.then_some(EVENT_PT));
        request.set_body("application/sdp", Bytes::from(offer));
        let invite = Box::new(request.clone());
        if let Some(key) = self.send(now, request, Sent::Invite { authed: false }) {
            self.call = Call::Calling { key, invite, ringing: false, cancelled: false };
        }
    }

    pub(super) fn send_text(&mut self, now: Instant, user: &str, text: &str) {
        let uri = format!("sip:{user}@{}", self.config.domain);
        let call_id = format!("{}@{}", self.token(), self.config.sip.ip());
        let mut request = self.request(Method::Message, &uri, &uri, &call_id, 1);
        request.set_body("text/plain", Bytes::from(text.to_owned()));
        self.send(now, request, Sent::Message { authed: false });
    }

    pub(super) fn send_ringing(&mut self, now: Instant) {
        let Call::Incoming { key, invite, ringing } = &mut self.call else { return };
        let mut response = invite.reply(180, "Ringing");
        response
            .headers
            .push(HeaderName::Contact, SipStr::from(format!("<sip:{}@{}>", self.config.user, self.config.sip)));
        let key = *key;
        *ringing = true;
        let _ = self.layer.respond(key, response, now);
    }

    pub(super) fn send_answer(&mut self, now: Instant) {
        let Call::Incoming { key, invite, .. } = std::mem::take(&mut self.call) else { return };
        let offer = SessionDescription::parse(&invite.body).ok();
        let media = offer.as_ref().and_then(|sdp| Some((sdp, sdp.media.first()?)));
        let pcmu = media.is_some_and(|(_, m)| m.formats.iter().any(|f| f == "0"));
        let remote = media.and_then(|(sdp, m)| remote_media(sdp, m));
        let (Some((_, m)), Some(remote), true) = (media, remote, pcmu) else {
            let _ = self.layer.respond(key, invite.reply(488, "Not Acceptable Here"), now);
            return self.event(now, PhoneEvent::CallFailed(488));
        };
        let events = self.config.telephone_event.then(|| pick_event(&telephone_events(m))).flatten();
        let mut response = invite.reply(200, "OK");
        response.headers.push(HeaderName::Contact, SipStr::from(self.contact()));
        response.set_body("application/sdp", Bytes::from(self.description(events.map(|e| e.payload_type))));
        let dialog = Dialog::new_uas(&invite, &response).ok();
        let _ = self.layer.respond(key, response, now);
        self.start_media(now, remote.rtp, events);
        if let Some(dialog) = dialog {
            self.call = Call::Answered { dialog: Box::new(dialog) };
        }
    }

    pub(super) fn send_hang_up(&mut self, now: Instant) {
        match std::mem::take(&mut self.call) {
            Call::Idle => {}
            Call::Calling { key, invite, ringing, .. } => {
                if let Ok(cancel) = self.layer.cancel(key, now) {
                    self.sent.insert(cancel, Sent::Cancel);
                }
                self.call = Call::Calling { key, invite, ringing, cancelled: true };
            }
            Call::Incoming { key, invite, .. } => {
                let _ = self.layer.respond(key, invite.reply(603, "Decline"), now);
                self.event(now, PhoneEvent::HungUp { by_peer: false });
            }
            Call::Answered { mut dialog } | Call::Connected { mut dialog } => {
                let bye = dialog.create_request(Method::Bye);
                self.send(now, bye, Sent::Bye);
                self.stop_media();
                self.event(now, PhoneEvent::HungUp { by_peer: false });
            }
        }
    }

    /// A description of the phone's media: PCMU, and telephone-event as `events`.
    fn description(&mut self, events: Option<u8>) -> String {
        let (ip, port) = (self.config.rtp.ip(), self.config.rtp.port());
        let session = self.rng.next_u64() % 1_000_000_000;
        let mut sdp = format!(
            "v=0\r\no={} {session} {session} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n",
            self.config.user
        );
        match events {
            Some(pt) => sdp.push_str(&format!(
                "m=audio {port} RTP/AVP 0 {pt}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:{pt} telephone-event/8000\r\n\
                 a=fmtp:{pt} 0-15\r\n"
            )),
            None => sdp.push_str(&format!("m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")),
        }
        sdp.push_str("a=ptime:20\r\na=sendrecv\r\n");
        sdp
    }

    /// What the transaction layer tells the phone.
    pub(super) fn on_tx_event(&mut self, now: Instant, event: TxEvent) {
        match event {
            TxEvent::Request { key, request, .. } => {
                self.requests.push(request.clone());
                self.on_request(now, key, request);
            }
            TxEvent::Cancel { key, request, invite, .. } => {
                self.requests.push(request.clone());
                let _ = self.layer.respond(key, request.reply(200, "OK"), now);
                if let Call::Incoming { key: ringing, invite: original, .. } = &self.call
                    && Some(*ringing) == invite
                {
                    let terminated = original.reply(487, "Request Terminated");
                    let ringing = *ringing;
                    self.call = Call::Idle;
                    let _ = self.layer.respond(ringing, terminated, now);
                    self.event(now, PhoneEvent::Cancelled);
                }
            }
            TxEvent::Ack { request, .. } => {
                self.requests.push(request);
                if let Call::Answered { dialog } = std::mem::take(&mut self.call) {
                    self.call = Call::Connected { dialog };
                    self.event(now, PhoneEvent::Connected);
                }
            }
            TxEvent::Response { key, response, .. } | TxEvent::Timeout { key, response, .. } => {
                self.on_response(now, key, response);
            }
            TxEvent::NoAck { .. } => {
                if matches!(self.call, Call::Answered { .. }) {
                    self.call = Call::Idle;
                    self.stop_media();
                    self.event(now, PhoneEvent::HungUp { by_peer: true });
                }
            }
            TxEvent::Terminated { key } => {
                self.sent.remove(&key);
            }
            _ => {}
        }
    }

    fn on_request(&mut self, now: Instant, key: TxKey, request: Request) {
        let in_dialog = request.to().is_some_and(|to| to.tag().is_some());
        let response = match request.method {
            Method::Invite if !in_dialog => {
                if !matches!(self.call, Call::Idle) {
                    request.reply(486, "Busy Here")
                } else {
                    let from = request.from().map(|f| f.uri.to_string()).unwrap_or_default();
                    self.call = Call::Incoming { key, invite: Box::new(request), ringing: false };
                    self.event(now, PhoneEvent::Incoming { from });
                    if self.config.auto_ring {
                        self.send_ringing(now);
                    }
                    return;
                }
            }
            Method::Invite => {
                // A re-offer (a session refresh): the same media, described again.
                let events = self.config.telephone_event.then_some(EVENT_PT);
                let mut ok = request.reply(200, "OK");
                ok.headers.push(HeaderName::Contact, SipStr::from(self.contact()));
                ok.set_body("application/sdp", Bytes::from(self.description(events)));
                ok
            }
            Method::Bye => {
                let ours = match &self.call {
                    Call::Answered { dialog } | Call::Connected { dialog } => {
                        request.call_id() == Some(&*dialog.id().call_id)
                    }
                    _ => false,
                };
                if !ours {
                    request.reply(481, "Call/Transaction Does Not Exist")
                } else {
                    self.call = Call::Idle;
                    self.stop_media();
                    self.event(now, PhoneEvent::HungUp { by_peer: true });
                    request.reply(200, "OK")
                }
            }
            Method::Message => {
                let from = request.from().map(|f| f.uri.to_string()).unwrap_or_default();
                let body = String::from_utf8_lossy(&request.body).into_owned();
                self.event(now, PhoneEvent::MessageReceived { from, body });
                request.reply(200, "OK")
            }
            Method::Options | Method::Info | Method::Update | Method::Notify => request.reply(200, "OK"),
            _ => request.reply(501, "Not Implemented"),
        };
        let _ = self.layer.respond(key, response, now);
    }

    fn on_response(&mut self, now: Instant, key: TxKey, response: Response) {
        let Some(purpose) = self.sent.get(&key).cloned() else { return };
        let status = response.status;
        if (status == 401 || status == 407) && self.retry_with_credentials(now, key, &purpose, &response) {
            return;
        }
        match purpose {
            Sent::Register { .. } if status >= 200 => {
                self.registered = (200..300).contains(&status);
                let event = if self.registered { PhoneEvent::Registered } else { PhoneEvent::RegisterFailed(status) };
                self.event(now, event);
            }
            Sent::Message { .. } if status >= 200 => self.event(now, PhoneEvent::MessageSent(status)),
            Sent::Invite { .. } => self.on_invite_response(now, key, response),
            _ => {}
        }
    }

    /// A 401 or 407: the same request again with credentials, unless they were already sent.
    fn retry_with_credentials(&mut self, now: Instant, key: TxKey, purpose: &Sent, response: &Response) -> bool {
        let retry = match purpose {
            Sent::Register { authed: false } => Sent::Register { authed: true },
            Sent::Invite { authed: false } => Sent::Invite { authed: true },
            Sent::Message { authed: false } => Sent::Message { authed: true },
            _ => return false,
        };
        let (challenge_header, credentials_header) = match response.status {
            401 => (HeaderName::WwwAuthenticate, HeaderName::Authorization),
            _ => (HeaderName::ProxyAuthenticate, HeaderName::ProxyAuthorization),
        };
        let Some(challenge) = response.headers.get(challenge_header).and_then(|c| Challenge::parse(c).ok()) else {
            return false;
        };
        let Some(mut request) = self.layer.request(key).cloned() else { return false };
        let uri = request.uri.to_string();
        let cnonce = self.token();
        let method = request.method.as_str().to_owned();
        let credentials =
            digest::respond(&challenge, &method, &uri, &self.config.user, &self.config.password, &cnonce, 1);
        let Some(cseq) = request.cseq() else { return false };
        let seq = cseq.seq + 1;
        if request.method == Method::Register {
            self.reg_cseq = seq;
        }
        request.headers.set(HeaderName::CSeq, SipStr::from(format!("{seq} {method}")));
        request.headers.remove(HeaderName::Authorization);
        request.headers.remove(HeaderName::ProxyAuthorization);
        request.headers.push(credentials_header, SipStr::from(credentials.to_string()));
        let invite = (request.method == Method::Invite).then(|| request.clone());
        let Some(new_key) = self.send(now, request, retry) else { return false };
        if let (Some(mut invite), Call::Calling { key: calling, invite: kept, cancelled, .. }) =
            (invite, &mut self.call)
            && *calling == key
        {
            if *cancelled {
                // Hung up meanwhile: the retry is cancelled as soon as it can be.
                if let Ok(cancel) = self.layer.cancel(new_key, now) {
                    self.sent.insert(cancel, Sent::Cancel);
                }
            }
            invite.headers.remove(HeaderName::Via);
            *calling = new_key;
            **kept = invite;
        }
        true
    }

    fn on_invite_response(&mut self, now: Instant, key: TxKey, response: Response) {
        let status = response.status;
        let Call::Calling { key: calling, invite, ringing, cancelled } = &mut self.call else {
            // An answer to a call we are done with (a 2xx crossing our CANCEL): ACK and BYE it.
            if response.is_success() {
                self.ack_and_bye(now, key, &response);
            }
            return;
        };
        if *calling != key {
            return;
        }
        if status < 200 {
            if (status == 180 || status == 183) && !*ringing {
                *ringing = true;
                self.event(now, PhoneEvent::Ringing);
            }
            return;
        }
        if !response.is_success() {
            self.call = Call::Idle;
            return self.event(now, PhoneEvent::CallFailed(status));
        }
        let cancelled = *cancelled;
        let Some(request) = self.layer.request(key).cloned().or_else(|| Some((**invite).clone())) else { return };
        let Ok(mut dialog) = Dialog::new_uac(&request, &response) else { return };
        self.send_ack(key, &mut dialog);
        if cancelled {
            let bye = dialog.create_request(Method::Bye);
            self.send(now, bye, Sent::Bye);
            self.call = Call::Idle;
            return;
        }
        let answer = SessionDescription::parse(&response.body).ok();
        let remote = answer.as_ref().and_then(|sdp| Some((sdp, sdp.media.first()?)));
        if let Some((sdp, media)) = remote
            && let Some(rtp) = remote_media(sdp, media)
        {
            let events = self.config.telephone_event.then(|| pick_event(&telephone_events(media))).flatten();
            self.start_media(now, rtp.rtp, events);
        }
        self.call = Call::Connected { dialog: Box::new(dialog) };
        self.event(now, PhoneEvent::Answered);
    }

    fn send_ack(&mut self, key: TxKey, dialog: &mut Dialog) {
        let mut ack = dialog.create_request(Method::Ack);
        let branch = new_branch(&self.rng.bytes::<8>());
        let via = Via::new(Transport::Udp, Host::from(self.config.sip.ip()), Some(self.config.sip.port()), &branch);
        push_via(&mut ack, via);
        self.layer.send_ack(key, ack, self.server.clone());
    }

    fn ack_and_bye(&mut self, now: Instant, key: TxKey, response: &Response) {
        let Some(request) = self.layer.request(key).cloned() else { return };
        let Ok(mut dialog) = Dialog::new_uac(&request, response) else { return };
        self.send_ack(key, &mut dialog);
        let bye = dialog.create_request(Method::Bye);
        self.send(now, bye, Sent::Bye);
    }
}

/// The telephone-event to use: the 8 kHz one.
fn pick_event(events: &[EventFormat]) -> Option<EventFormat> {
    events.iter().find(|e| e.clock_rate == 8000).copied()
}
