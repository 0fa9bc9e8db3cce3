//! A scripted phone: a SIP user agent over UDP on the in-memory network, with an RTP side
//! that plays a tone of its own and records what it hears.
//!
//! It speaks through every request to one server (an outbound proxy), with
//! [`sambung_sip`]'s transaction layer, so it survives loss as a real phone does: requests are
//! retransmitted, duplicate responses absorbed, the 2xx it sends repeated until its ACK comes.
//! What it can do: REGISTER and INVITE and MESSAGE with digest credentials (answering 401 and
//! 407), ring (180) and answer (200 with an SDP answer) when told, ACK, BYE, CANCEL, take BYE,
//! CANCEL and MESSAGE. Offers and answers are PCMU with an optional telephone-event, so keys
//! go as RFC 4733 events.
//!
//! Like every core of Sambung it is sans-IO: datagrams in ([`Phone::handle_datagram`]), time
//! in ([`Phone::handle_timeout`] at [`Phone::poll_timeout`]), datagrams out
//! ([`Phone::poll_transmit`]). The simulated world (`crate::sim`) drives it.

mod rtp;
mod sip;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use sambung_sip::dialog::Dialog;
use sambung_sip::transaction::{Config, Peer, TransactionLayer, TxKey};
use sambung_sip::{Message, Request, Transport};

pub use rtp::{FRAME, FRAME_SAMPLES, RATE, RtpStats};

use crate::audio::Sine;
use crate::rng::Rng;
use rtp::PhoneMedia;

/// How a phone is set up.
#[derive(Clone, Debug)]
pub struct PhoneConfig {
    /// The account's username.
    pub user: String,
    pub password: String,
    /// The SIP domain the account is in (the host of every URI it dials).
    pub domain: String,
    /// The phone's SIP address.
    pub sip: SocketAddr,
    /// The phone's RTP address (RTCP would be on the next port).
    pub rtp: SocketAddr,
    /// Where every request goes.
    pub server: SocketAddr,
    /// The phone's tone, in Hz.
    pub tone_hz: f64,
    /// Its peak amplitude (of 32767).
    pub amplitude: i16,
    /// Offer and accept telephone-event (RFC 4733), payload type 101 in offers.
    pub telephone_event: bool,
    /// Ring (180) as soon as an INVITE comes; otherwise only when told ([`Phone::ring`]).
    pub auto_ring: bool,
    /// Seeds tags, branches, Call-IDs and RTP numbering.
    pub seed: u64,
}

impl PhoneConfig {
    /// `user` at `ip` (SIP on port 5060, RTP on 40000), password `<user>-secret`, a 440 Hz
    /// tone at −12 dBFS peak, telephone-event on, ringing at once.
    pub fn new(user: &str, ip: IpAddr, server: SocketAddr, domain: &str) -> PhoneConfig {
        PhoneConfig {
            user: user.to_owned(),
            password: format!("{user}-secret"),
            domain: domain.to_owned(),
            sip: SocketAddr::new(ip, 5060),
            rtp: SocketAddr::new(ip, 40_000),
            server,
            tone_hz: 440.0,
            amplitude: 8000,
            telephone_event: true,
            auto_ring: true,
            seed: user.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)),
        }
    }
}

/// What happened to a phone, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneEvent {
    /// A REGISTER was answered 2xx.
    Registered,
    /// A REGISTER failed with this status (after credentials, if asked for).
    RegisterFailed(u16),
    /// Our call rings (the first 180 or 183).
    Ringing,
    /// Our call was answered (2xx); the ACK went out and the media started.
    Answered,
    /// Our call failed with this status (487 after our CANCEL).
    CallFailed(u16),
    /// An INVITE came in from `from` (its From URI).
    Incoming { from: String },
    /// The incoming call was cancelled before we answered.
    Cancelled,
    /// The ACK for our 2xx came: the incoming call is connected.
    Connected,
    /// The call is over: the other side's BYE (`by_peer`), or ours.
    HungUp { by_peer: bool },
    /// Our MESSAGE got this final status (after credentials, if asked for).
    MessageSent(u16),
    /// A MESSAGE came in.
    MessageReceived { from: String, body: String },
}

/// What a client transaction of ours is for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sent {
    Register { authed: bool },
    Invite { authed: bool },
    Message { authed: bool },
    Bye,
    Cancel,
}

/// The phone's one call.
#[derive(Debug, Default)]
enum Call {
    #[default]
    Idle,
    /// Our INVITE is out (`key`, the latest one, with credentials or not).
    Calling { key: TxKey, invite: Box<Request>, ringing: bool, cancelled: bool },
    /// An INVITE came in on server transaction `key`.
    Incoming { key: TxKey, invite: Box<Request>, ringing: bool },
    /// We answered and wait for the ACK.
    Answered { dialog: Box<Dialog> },
    /// The call is up.
    Connected { dialog: Box<Dialog> },
}

/// A scripted phone. See the [module docs](self).
#[derive(Debug)]
pub struct Phone {
    config: PhoneConfig,
    layer: TransactionLayer,
    rng: Rng,
    server: Peer,
    sent: BTreeMap<TxKey, Sent>,
    call: Call,
    media: Option<PhoneMedia>,
    /// Where the media of the latest call went.
    media_peer: Option<SocketAddr>,
    tone: Sine,
    muted: bool,
    registered: bool,
    reg_call_id: String,
    reg_cseq: u32,
    events: Vec<(Instant, PhoneEvent)>,
    requests: Vec<Request>,
    heard: Vec<i16>,
    rtp_stats: RtpStats,
    out: Vec<(SocketAddr, SocketAddr, Bytes)>,
    queue: VecDeque<(SocketAddr, SocketAddr, Bytes)>,
}

impl Phone {
    pub fn new(config: PhoneConfig) -> Phone {
        let mut rng = Rng::new(config.seed);
        let reg_call_id = format!("reg-{}-{}", config.user, rng.next_u64() % 1_000_000);
        Phone {
            layer: TransactionLayer::new(Config::default()),
            server: Peer { transport: Transport::Udp, addr: config.server, flow: None },
            sent: BTreeMap::new(),
            call: Call::Idle,
            media: None,
            media_peer: None,
            tone: Sine::new(config.tone_hz, config.amplitude, RATE),
            muted: false,
            registered: false,
            reg_call_id,
            reg_cseq: 0,
            events: Vec::new(),
            requests: Vec::new(),
            heard: Vec::new(),
            rtp_stats: RtpStats::default(),
            out: Vec::new(),
            queue: VecDeque::new(),
            rng,
            config,
        }
    }

    pub fn config(&self) -> &PhoneConfig {
        &self.config
    }

    pub fn user(&self) -> &str {
        &self.config.user
    }

    /// True when `addr` is one of the phone's (SIP or RTP).
    pub fn owns(&self, addr: SocketAddr) -> bool {
        addr == self.config.sip || addr == self.config.rtp
    }

    // ---- what the test tells it to do ----

    /// Sends a REGISTER for one hour.
    pub fn register(&mut self, now: Instant) {
        self.send_register(now);
        self.flush();
    }

    /// Calls `user` of the domain.
    pub fn call(&mut self, now: Instant, user: &str) {
        self.send_invite(now, user);
        self.flush();
    }

    /// Rings (180) for an incoming call; again if it already rings (RFC 3261 §13.3.1.1 lets a
    /// UAS repeat its provisional answer, which UDP may have lost).
    pub fn ring(&mut self, now: Instant) {
        self.send_ringing(now);
        self.flush();
    }

    /// Answers the incoming call (200 with an SDP answer) and starts the media.
    pub fn answer(&mut self, now: Instant) {
        self.send_answer(now);
        self.flush();
    }

    /// Hangs up: BYE in a call, CANCEL while ours rings, 603 to an incoming one.
    pub fn hang_up(&mut self, now: Instant) {
        self.send_hang_up(now);
        self.flush();
    }

    /// Sends a text MESSAGE to `user` of the domain.
    pub fn send_message(&mut self, now: Instant, user: &str, text: &str) {
        self.send_text(now, user, text);
        self.flush();
    }

    /// Presses `key` (RFC 4733 events, audio paused meanwhile); false when the call has no
    /// media or no telephone-event.
    pub fn press_key(&mut self, now: Instant, key: char) -> bool {
        self.media.as_mut().is_some_and(|m| m.press(key, now))
    }

    /// Stops (or resumes) saying the tone; the RTP stream pauses meanwhile.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    // ---- what the test reads ----

    /// What happened, in order, with when.
    pub fn events(&self) -> &[(Instant, PhoneEvent)] {
        &self.events
    }

    /// True when an event matching `f` happened.
    pub fn saw(&self, f: impl Fn(&PhoneEvent) -> bool) -> bool {
        self.events.iter().any(|(_, e)| f(e))
    }

    /// Every new request that reached the phone (not retransmissions), in order.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// Requests received with this method.
    pub fn requests_of(&self, method: &str) -> impl Iterator<Item = &Request> {
        self.requests.iter().filter(move |r| r.method.as_str() == method)
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// An incoming call rings here.
    pub fn is_ringing(&self) -> bool {
        matches!(self.call, Call::Incoming { ringing: true, .. })
    }

    /// A call is up (answered, or ours answered).
    pub fn in_call(&self) -> bool {
        matches!(self.call, Call::Connected { .. } | Call::Answered { .. })
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.call, Call::Idle)
    }

    /// The call has media running.
    pub fn has_media(&self) -> bool {
        self.media.is_some()
    }

    /// Where the phone sends (or sent) the media of its latest call: the address its peer's
    /// description named.
    pub fn media_peer(&self) -> Option<SocketAddr> {
        self.media_peer
    }

    /// A key's events are still going out.
    pub fn pressing_key(&self) -> bool {
        self.media.as_ref().is_some_and(PhoneMedia::pressing)
    }

    /// Everything the phone played since it was made, at [`RATE`], one frame per 20 ms of
    /// media (silence where nothing was due).
    pub fn heard(&self) -> &[i16] {
        &self.heard
    }

    /// RTP counters of every call so far.
    pub fn rtp_stats(&self) -> RtpStats {
        match &self.media {
            Some(media) => add(self.rtp_stats, media.stats),
            None => self.rtp_stats,
        }
    }

    /// The phone's own tone.
    pub fn tone(&self) -> &Sine {
        &self.tone
    }

    // ---- the run loop ----

    /// A datagram for the phone arrived (SIP on its SIP address, RTP on its RTP address).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, payload: Bytes) {
        if to == self.config.rtp {
            if let Some(media) = &mut self.media {
                media.receive(now, &payload);
            }
            return;
        }
        if to != self.config.sip {
            return;
        }
        let Ok(message) = Message::parse(payload) else { return };
        let peer = Peer { transport: Transport::Udp, addr: from, flow: None };
        if let Some(event) = self.layer.handle_message(message, peer, now) {
            self.on_tx_event(now, event);
        }
        self.drain(now);
        self.flush();
    }

    /// The phone's timers due by `now` fire: retransmissions, the media's 20 ms.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.drain(now);
        if let Some(media) = &mut self.media {
            let tone = (!self.muted).then_some(&mut self.tone);
            media.tick(now, tone, &mut self.heard, &mut self.out);
        }
        self.flush();
    }

    /// When [`Self::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let media = self.media.as_ref().map(PhoneMedia::next_tick);
        [self.layer.poll_timeout(), media].into_iter().flatten().min()
    }

    /// The next datagram to send: from, to, payload.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, SocketAddr, Bytes)> {
        self.flush();
        self.queue.pop_front()
    }

    // ---- plumbing ----

    fn event(&mut self, now: Instant, event: PhoneEvent) {
        self.events.push((now, event));
    }

    /// Moves the transaction layer's events to the phone and its transmits to the queue.
    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            self.on_tx_event(now, event);
        }
    }

    fn flush(&mut self) {
        while let Some(transmit) = self.layer.poll_transmit() {
            self.queue.push_back((self.config.sip, transmit.to.addr, transmit.bytes));
        }
        self.queue.extend(self.out.drain(..));
    }

    fn start_media(&mut self, now: Instant, remote: SocketAddr, events: Option<sambung_media::negotiate::EventFormat>) {
        self.stop_media();
        self.media_peer = Some(remote);
        self.media = Some(PhoneMedia::new(self.config.rtp, remote, events, &mut self.rng, now));
    }

    fn stop_media(&mut self) {
        if let Some(media) = self.media.take() {
            self.rtp_stats = add(self.rtp_stats, media.stats);
        }
    }
}

fn add(a: RtpStats, b: RtpStats) -> RtpStats {
    RtpStats {
        sent: a.sent + b.sent,
        events_sent: a.events_sent + b.events_sent,
        received: a.received + b.received,
        frames_heard: a.frames_heard + b.frames_heard,
    }
}
