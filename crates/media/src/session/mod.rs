//! A media session with any number of legs, without I/O: what the server's relay does to each
//! packet of a call, and the audio it makes itself (transcoding, applications, conferences).
//!
//! A [`MediaSession`] has a fixed number of media streams (the `m=` lines) and legs that come
//! and go. A leg is a device reached over RTP/SRTP on sockets the driver owns
//! ([`LegKind::Rtp`]: one RTP and one RTCP socket per stream), or an application inside the
//! server that hears and says 20 ms frames of PCM ([`LegKind::App`]). A [`Router`] says who
//! hears whom: a [`Router::Pair`] relays between two legs (transcoding when both have a format
//! for a stream), a [`Router::Mix`] is a conference of N legs, each hearing the others.
//!
//! The driver feeds it datagrams ([`MediaSession::receive`], processed in place), the time
//! ([`MediaSession::handle_timeout`] when [`MediaSession::poll_timeout`] is due) and the
//! applications' frames ([`MediaSession::app_play`]), and takes out what to send
//! ([`MediaSession::poll_transmit`]) and what happened ([`MediaSession::poll_event`]). Time
//! enters only as `now`; SSRCs and sequence numbers come from the seed the session is made
//! with. Plain streams (no SRTP, no DTMF to read, no transcoding) can bypass the per-packet
//! path: [`MediaSession::is_plain`], [`MediaSession::latch_mut`], [`MediaSession::partner`]
//! and [`MediaSession::destination`] give a batching driver what it needs.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//! use sambung_media::session::{Channel, LegKind, MediaSession, Peer, Receive, Router, SessionEvent};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // the driver's clock; the session never reads one
//! let mut session = MediaSession::new(1, 42, start).unwrap();
//! let alice = session.add_leg(LegKind::Rtp).unwrap();
//! let bob = session.add_leg(LegKind::Rtp).unwrap();
//! session.set_router(Router::Pair(alice, bob)).unwrap();
//! let (alice_at, bob_at): (SocketAddr, SocketAddr) = ("192.0.2.10:4000".parse().unwrap(), "198.51.100.7:5000".parse().unwrap());
//! session.set_peer(alice, 0, Peer { rtp: Some(alice_at), ..Peer::default() }).unwrap();
//! session.set_peer(bob, 0, Peer { rtp: Some(bob_at), ..Peer::default() }).unwrap();
//!
//! // The run loop. A datagram arrived on alice's RTP socket of stream 0 ...
//! let mut buf = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
//! match session.receive(start, Channel::rtp(alice, 0), alice_at, &mut buf) {
//!     // ... send `buf` from `to`'s socket.
//!     Receive::Forward { to, destination } => assert_eq!((to, destination), (Channel::rtp(bob, 0), bob_at)),
//!     other => unreachable!("{other:?}"),
//! }
//! // What the session made itself (transcoded, mixed, an application's audio) ...
//! let mut out = Vec::new();
//! while let Some(transmit) = session.poll_transmit(&mut out) {
//!     let _ = (transmit.to, transmit.destination, &out); // send `out`
//! }
//! // ... what happened ...
//! while let Some(event) = session.poll_event() {
//!     assert!(matches!(event, SessionEvent::Latched { source, .. } if source == alice_at));
//! }
//! // ... and when to call again: a plain relay never needs the clock.
//! assert_eq!(session.poll_timeout(), None);
//! # session.handle_timeout(start + Duration::from_millis(20));
//! ```
//!
//! Nothing here panics on what arrives from the network or from the driver: bad datagrams are
//! [`Receive::Dropped`] or [`Receive::Rejected`], bad calls a [`SessionError`].

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dtmf::DtmfReceiver;
use crate::endpoint::EndpointError;
use crate::latch::Latch;
use crate::negotiate::Negotiated;
use crate::srtp::SrtpContext;
use crate::transcode::Transcoder;

mod app;
mod config;
mod mix;
mod receive;
mod rng;
#[cfg(test)]
mod tests;
mod tick;

pub use config::{LegConfig, Peer, StreamConfig};

use app::AppLeg;
use mix::MixStream;
use rng::SplitMix64;

/// Most media streams (`m=` lines) in one session.
pub const MAX_STREAMS: usize = 16;

/// The stream an application leg speaks and hears on (the call's first `m=` line).
pub const APP_STREAM: usize = 0;

/// The step of transcoders, application legs and mixes.
pub const TICK: Duration = Duration::from_millis(20);

/// Most ticks run by one [`MediaSession::handle_timeout`]; a driver later than that skips the
/// rest.
pub const MAX_BURST: u32 = 10;

/// Frames an application may queue ahead of the ticks; older ones are dropped beyond it.
pub const APP_QUEUE: usize = 4;

/// Packets waiting for [`MediaSession::poll_transmit`]; the oldest are dropped beyond it.
const MAX_TRANSMITS: usize = 1024;

/// Events waiting for [`MediaSession::poll_event`]; the oldest are dropped beyond it.
const MAX_EVENTS: usize = 1024;

/// A leg of a session; never reused within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(u32);

impl LegId {
    /// The leg's number in its session (legs are numbered from 0 as they are added).
    pub fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// RTP or RTCP (RFC 3550 §11: each on its own port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Rtp,
    Rtcp,
}

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::Rtp => 0,
            Kind::Rtcp => 1,
        }
    }
}

/// One socket's worth of a leg: a stream, RTP or RTCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Channel {
    pub leg: LegId,
    pub stream: usize,
    pub kind: Kind,
}

impl Channel {
    /// `leg`'s RTP channel of `stream`.
    pub fn rtp(leg: LegId, stream: usize) -> Channel {
        Channel { leg, stream, kind: Kind::Rtp }
    }

    /// `leg`'s RTCP channel of `stream`.
    pub fn rtcp(leg: LegId, stream: usize) -> Channel {
        Channel { leg, stream, kind: Kind::Rtcp }
    }

    /// The channel of the same stream and kind on `leg`.
    pub fn on(self, leg: LegId) -> Channel {
        Channel { leg, ..self }
    }
}

/// What a leg is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegKind {
    /// A device reached over RTP/SRTP on sockets of its own: one RTP and one RTCP socket per
    /// stream, owned by the driver.
    Rtp,
    /// An application inside the server (voicemail, prompts). It hears 20 ms frames of PCM at
    /// `rate` (8000, 16000 or 48000) in [`SessionEvent::AppAudio`] and says them with
    /// [`MediaSession::app_play`]. In a [`Router::Pair`] with an RTP leg, on
    /// [`APP_STREAM`], that leg's audio is decoded as `format` and the application's is
    /// encoded as `format` (the partner's codec), under the partner's SRTP keys; in a
    /// [`Router::Mix`] it takes part with its PCM. No sockets, no latching, no RTCP.
    App { format: Negotiated, rate: u32 },
}

/// Who hears whom.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Router {
    /// Nothing goes anywhere.
    #[default]
    None,
    /// A relay between two legs: each stream's packets go to the same stream of the other leg
    /// (decrypted with the sender's key and encrypted with the receiver's), and are transcoded
    /// when both legs have a [`LegConfig::format`] for the stream.
    Pair(LegId, LegId),
    /// A conference: every leg hears the others (mixed at 48 kHz, N−1, see
    /// [`crate::mixer`]), encoded in its own [`LegConfig::format`] (required for RTP legs) as
    /// a source of its own. RTCP of mixed legs ends here.
    Mix(Vec<LegId>),
}

impl Router {
    fn contains(&self, leg: LegId) -> bool {
        match self {
            Router::None => false,
            Router::Pair(a, b) => *a == leg || *b == leg,
            Router::Mix(legs) => legs.contains(&leg),
        }
    }
}

/// What became of a received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receive {
    /// The source may not latch on that channel (RFC 7362 §4.1): not counted as received.
    Rejected,
    /// Send the buffer (now in the receiving leg's form) on `to`'s socket to `destination`.
    Forward { to: Channel, destination: SocketAddr },
    /// Routed, but the receiving channel has nowhere to send yet, or is on hold.
    NoDestination,
    /// Taken by a transcoder, an application leg or the mixer (or RTCP that ends here).
    Consumed,
    /// Refused: failed SRTP authentication or decryption, a replay, malformed, or nowhere to
    /// go (no router, a stream that cannot be transcoded, an unknown leg or stream).
    Dropped,
}

/// A packet the session made itself, to send on `to`'s socket: it is already in the receiving
/// leg's form (SRTP-protected when that leg uses SRTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Channel,
    pub destination: SocketAddr,
}

/// What happened in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A DTMF key read from `leg`'s RFC 4733 telephone-events on `stream`.
    Key { leg: LegId, stream: usize, key: char, duration_ms: u32 },
    /// What application leg `leg` heard in the last tick: one 20 ms frame at its rate,
    /// silence when nothing was due.
    AppAudio { leg: LegId, samples: Vec<i16> },
    /// Channel `at` now sends to `source`, where its packets came from (symmetric RTP).
    Latched { at: Channel, source: SocketAddr, previous: Option<SocketAddr> },
    /// What each RTP leg of a mixed stream said in the last tick, decoded: one 20 ms frame at
    /// [`crate::mixer::SAMPLE_RATE`] per leg (silence when nothing came), while a tap is set
    /// ([`MediaSession::set_tap`]). A recording is made of these.
    Tapped { stream: usize, frames: Vec<(LegId, Vec<i16>)> },
}

/// Errors of the session's calls. Datagrams never cause one: see [`Receive`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("a session has 1 to {MAX_STREAMS} media streams, not {0}")]
    Streams(usize),
    #[error("no {0} in this session")]
    NoSuchLeg(LegId),
    #[error("no media stream {0} in this session")]
    NoSuchStream(usize),
    #[error("{0} is not an application leg")]
    NotAnApp(LegId),
    #[error("{0} appears twice in the router")]
    Duplicate(LegId),
    #[error("a mix takes at most {max} legs")]
    TooManyLegs { max: usize },
    #[error("an application frame is {expected} samples (20 ms), not {got}")]
    FrameLength { expected: usize, got: usize },
    #[error("cannot make the application leg: {0}")]
    App(#[from] EndpointError),
}

/// A leg's state for one stream.
struct LegStream {
    config: LegConfig,
    srtp_in: Option<SrtpContext>,
    srtp_out: Option<SrtpContext>,
    dtmf: DtmfReceiver,
    /// RTP, then RTCP.
    latches: [Latch; 2],
}

impl fmt::Debug for LegStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegStream")
            .field("srtp_in", &self.srtp_in.is_some())
            .field("srtp_out", &self.srtp_out.is_some())
            .field("events", &self.config.events)
            .field("format", &self.config.format.as_ref().map(|f| f.audio.codec))
            .field("latches", &self.latches)
            .finish()
    }
}

impl LegStream {
    fn new() -> LegStream {
        LegStream {
            config: LegConfig::default(),
            srtp_in: None,
            srtp_out: None,
            dtmf: DtmfReceiver::new(),
            latches: [Latch::new(), Latch::new()],
        }
    }

    /// Takes `config`, keeping the SRTP contexts made from the same keys (their rollover
    /// counters and replay windows: a re-INVITE for hold must not reset them).
    fn configure(&mut self, config: LegConfig) {
        let same = |a: &Option<_>, b: &Option<_>| a.is_some() && a == b;
        if !same(&config.srtp_in, &self.config.srtp_in) {
            self.srtp_in = config.srtp_in.as_ref().map(|k| k.context());
        }
        if !same(&config.srtp_out, &self.config.srtp_out) {
            self.srtp_out = config.srtp_out.as_ref().map(|k| k.context());
        }
        self.config = config;
    }
}

#[derive(Debug)]
struct Leg {
    id: LegId,
    kind: LegKind,
    /// For [`LegKind::App`].
    app: Option<Box<AppLeg>>,
    streams: Vec<LegStream>,
}

impl Leg {
    fn is_rtp(&self) -> bool {
        self.app.is_none()
    }
}

/// What a stream needs beyond its legs' own state, derived from the router and the legs'
/// configurations.
#[derive(Debug, Default)]
struct StreamState {
    /// A pair of RTP legs whose packets pass untouched.
    plain: bool,
    transcoder: Option<Box<Transcoder>>,
    /// The legs and formats the transcoder was made for (or refused).
    transcoded: Option<(LegId, LegId, [Negotiated; 2])>,
    /// The pair needs transcoding but no transcoder could be made: its RTP cannot cross.
    refused: bool,
    mix: Option<Box<MixStream>>,
}

/// When the next tick is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schedule {
    /// Nothing ticks.
    Idle,
    /// Something started ticking: the first tick is due at once.
    Start,
    At(Instant),
}

/// A media session. See the [module docs](self).
#[derive(Debug)]
pub struct MediaSession {
    streams: Vec<StreamState>,
    legs: Vec<Leg>,
    next_leg: u32,
    router: Router,
    rng: SplitMix64,
    /// The latest `now` seen.
    now: Instant,
    schedule: Schedule,
    transmits: VecDeque<(Transmit, Vec<u8>)>,
    /// Spare packet buffers, so steady state does not allocate.
    pool: Vec<Vec<u8>>,
    events: VecDeque<SessionEvent>,
    /// Report what each leg of a mix says ([`SessionEvent::Tapped`]).
    tap: bool,
}

/// Where a leg's packets go.
#[derive(Clone, Copy, Debug)]
enum Route {
    /// Nowhere.
    None,
    /// To the leg at this index of `legs`; `first` when the sender is the pair's first leg.
    Pair {
        partner: usize,
        first: bool,
    },
    Mix,
}

impl MediaSession {
    /// A session of `streams` media streams (1 to [`MAX_STREAMS`]), no legs and no router.
    /// `seed` gives every SSRC, sequence number and timestamp the session makes; `now` is the
    /// driver's clock.
    pub fn new(streams: usize, seed: u64, now: Instant) -> Result<MediaSession, SessionError> {
        if streams == 0 || streams > MAX_STREAMS {
            return Err(SessionError::Streams(streams));
        }
        Ok(MediaSession {
            streams: (0..streams).map(|_| StreamState::default()).collect(),
            legs: Vec::new(),
            next_leg: 0,
            router: Router::None,
            rng: SplitMix64::new(seed),
            now,
            schedule: Schedule::Idle,
            transmits: VecDeque::new(),
            pool: Vec::new(),
            events: VecDeque::new(),
            tap: false,
        })
    }

    /// The number of media streams.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Adds a leg; it takes part in nothing until the router names it.
    pub fn add_leg(&mut self, kind: LegKind) -> Result<LegId, SessionError> {
        let id = LegId(self.next_leg);
        let app = self.make_app(&kind)?;
        self.next_leg = self.next_leg.wrapping_add(1);
        let streams = (0..self.streams.len()).map(|_| LegStream::new()).collect();
        self.legs.push(Leg { id, kind, app, streams });
        self.rebuild();
        Ok(id)
    }

    /// Removes a leg, and takes it out of the router (a pair without it routes nothing).
    pub fn remove_leg(&mut self, leg: LegId) -> Result<(), SessionError> {
        let index = self.index(leg)?;
        self.legs.remove(index);
        match &mut self.router {
            Router::Pair(a, b) if *a == leg || *b == leg => self.router = Router::None,
            Router::Mix(legs) => legs.retain(|&l| l != leg),
            _ => {}
        }
        self.rebuild();
        Ok(())
    }

    /// Changes what a leg is (a device leg handed to an application, say). Its per-stream
    /// configuration and latches stay; an application leg made again with the same format and
    /// rate keeps its state.
    pub fn set_leg_kind(&mut self, leg: LegId, kind: LegKind) -> Result<(), SessionError> {
        let index = self.index(leg)?;
        if self.legs[index].kind == kind {
            return Ok(());
        }
        let app = self.make_app(&kind)?;
        let leg = &mut self.legs[index];
        leg.kind = kind;
        leg.app = app;
        self.rebuild();
        Ok(())
    }

    /// What a leg is, if it is in the session.
    pub fn leg_kind(&self, leg: LegId) -> Option<&LegKind> {
        self.legs.iter().find(|l| l.id == leg).map(|l| &l.kind)
    }

    /// The legs, in the order they were added.
    pub fn legs(&self) -> impl ExactSizeIterator<Item = LegId> + '_ {
        self.legs.iter().map(|l| l.id)
    }

    /// Sets who hears whom, from now on.
    pub fn set_router(&mut self, router: Router) -> Result<(), SessionError> {
        match &router {
            Router::None => {}
            Router::Pair(a, b) => {
                self.index(*a)?;
                self.index(*b)?;
                if a == b {
                    return Err(SessionError::Duplicate(*a));
                }
            }
            Router::Mix(legs) => {
                if legs.len() > crate::mixer::MAX_PARTICIPANTS {
                    return Err(SessionError::TooManyLegs { max: crate::mixer::MAX_PARTICIPANTS });
                }
                for (i, &leg) in legs.iter().enumerate() {
                    self.index(leg)?;
                    if legs[..i].contains(&leg) {
                        return Err(SessionError::Duplicate(leg));
                    }
                }
            }
        }
        self.router = router;
        self.rebuild();
        Ok(())
    }

    /// Reports, every tick, what each RTP leg of a mixed stream said, decoded
    /// ([`SessionEvent::Tapped`]): for recording a call, whose legs are then mixed
    /// ([`Router::Mix`]) rather than relayed.
    pub fn set_tap(&mut self, on: bool) {
        self.tap = on;
    }

    /// The router in use.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Sets how `leg`'s `stream` is handled (keys, codec, events: [`LegConfig`]). The same keys
    /// keep their SRTP contexts, and the same formats keep the transcoder.
    pub fn configure(&mut self, leg: LegId, stream: usize, config: LegConfig) -> Result<(), SessionError> {
        let index = self.index(leg)?;
        let state = self.legs[index].streams.get_mut(stream).ok_or(SessionError::NoSuchStream(stream))?;
        state.configure(config);
        self.rebuild();
        Ok(())
    }

    /// Sets the configuration of several legs' `stream` at once (the two legs of a relayed
    /// call after an answer, say): the stream is worked out once, for all of them, so a change of
    /// both legs' formats makes one transcoder, not one per leg. Nothing changes on an error.
    pub fn configure_legs(
        &mut self,
        stream: usize,
        configs: impl IntoIterator<Item = (LegId, LegConfig)>,
    ) -> Result<(), SessionError> {
        if stream >= self.streams.len() {
            return Err(SessionError::NoSuchStream(stream));
        }
        let configs: Vec<(usize, LegConfig)> = configs
            .into_iter()
            .map(|(leg, config)| Ok((self.index(leg)?, config)))
            .collect::<Result<_, SessionError>>()?;
        for (index, config) in configs {
            self.legs[index].streams[stream].configure(config);
        }
        self.rebuild();
        Ok(())
    }

    /// The configuration of `leg`'s `stream`.
    pub fn config(&self, leg: LegId, stream: usize) -> Option<&LegConfig> {
        self.legs.iter().find(|l| l.id == leg)?.streams.get(stream).map(|s| &s.config)
    }

    /// Tells where `leg` receives `stream` and where its signalling comes from: the RTP and RTCP
    /// channels send there until the leg's own packets show where it really is
    /// ([`crate::latch`]); RTCP goes to [`Peer::rtcp`], else the RTP port + 1.
    pub fn set_peer(&mut self, leg: LegId, stream: usize, peer: Peer) -> Result<(), SessionError> {
        let index = self.index(leg)?;
        let state = self.legs[index].streams.get_mut(stream).ok_or(SessionError::NoSuchStream(stream))?;
        let [rtp, rtcp] = &mut state.latches;
        rtp.set_peer(peer.rtp, peer.signalling_ip);
        rtcp.set_peer(peer.rtcp_or_next(), peer.signalling_ip);
        Ok(())
    }

    /// True when `stream`'s packets pass untouched between the two RTP legs of a pair: no
    /// SRTP either way, no events to read, no transcoding. A driver may then forward them in
    /// batches with [`Self::latch_mut`], [`Self::partner`] and [`Self::destination`] instead
    /// of [`Self::receive`].
    pub fn is_plain(&self, stream: usize) -> bool {
        self.streams.get(stream).is_some_and(|s| s.plain)
    }

    /// The latch of an RTP leg's channel. A driver that judges packets with it directly (the
    /// fast path) reports latching itself: no [`SessionEvent::Latched`] comes of it.
    pub fn latch_mut(&mut self, channel: Channel) -> Option<&mut Latch> {
        let leg = self.legs.iter_mut().find(|l| l.id == channel.leg).filter(|l| l.is_rtp())?;
        leg.streams.get_mut(channel.stream).map(|s| &mut s.latches[channel.kind.index()])
    }

    /// Where an RTP leg's channel sends now, if anywhere.
    pub fn destination(&self, channel: Channel) -> Option<SocketAddr> {
        let leg = self.legs.iter().find(|l| l.id == channel.leg).filter(|l| l.is_rtp())?;
        leg.streams.get(channel.stream)?.latches[channel.kind.index()].destination()
    }

    /// The channel that `channel`'s packets are relayed to: the same stream and kind on the
    /// other RTP leg of a pair.
    pub fn partner(&self, channel: Channel) -> Option<Channel> {
        if channel.stream >= self.streams.len() {
            return None;
        }
        let Router::Pair(a, b) = self.router else { return None };
        let other = if channel.leg == a {
            b
        } else if channel.leg == b {
            a
        } else {
            return None;
        };
        let rtp = |id: LegId| self.legs.iter().any(|l| l.id == id && l.is_rtp());
        (rtp(a) && rtp(b)).then_some(channel.on(other))
    }

    /// Queues one 20 ms frame (at the leg's rate) that application leg `leg` says; it is sent
    /// at the next tick. Frames beyond [`APP_QUEUE`] push out the oldest.
    pub fn app_play(&mut self, leg: LegId, frame: &[i16]) -> Result<(), SessionError> {
        let index = self.index(leg)?;
        let app = self.legs[index].app.as_mut().ok_or(SessionError::NotAnApp(leg))?;
        app.play(frame)
    }

    /// The next packet the session made (transcoded, mixed, an application's audio): copied
    /// into `buf`, with where to send it.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (transmit, packet) = self.transmits.pop_front()?;
        buf.clear();
        buf.extend_from_slice(&packet);
        self.pool.push(packet);
        Some(transmit)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn index(&self, leg: LegId) -> Result<usize, SessionError> {
        self.legs.iter().position(|l| l.id == leg).ok_or(SessionError::NoSuchLeg(leg))
    }

    fn make_app(&mut self, kind: &LegKind) -> Result<Option<Box<AppLeg>>, SessionError> {
        match kind {
            LegKind::Rtp => Ok(None),
            LegKind::App { format, rate } => {
                let (ssrc, seed) = (self.rng.next_u32(), self.rng.next_u64());
                Ok(Some(Box::new(AppLeg::new(format, *rate, ssrc, seed)?)))
            }
        }
    }

    /// Where `leg`'s packets go under the router.
    fn route(&self, leg: LegId) -> Route {
        route_of(&self.router, &self.legs, leg)
    }

    fn push_event(&mut self, event: SessionEvent) {
        push_event(&mut self.events, event);
    }

    /// Derives each stream's state from the router and the legs: plain or not, transcoder,
    /// mix; and whether the clock is needed.
    fn rebuild(&mut self) {
        for stream in 0..self.streams.len() {
            self.rebuild_pair(stream);
            let state = &mut self.streams[stream];
            let old = state.mix.take();
            state.mix = match &self.router {
                Router::Mix(members) => mix::rebuild(old, members, &self.legs, stream, &mut self.rng),
                _ => None,
            };
        }
        let ticks = self.legs.iter().any(|l| !l.is_rtp())
            || matches!(self.router, Router::Mix(_))
            || self.streams.iter().any(|s| s.transcoder.is_some());
        self.schedule = match (ticks, self.schedule) {
            (false, _) => Schedule::Idle,
            (true, Schedule::Idle) => Schedule::Start,
            (true, schedule) => schedule,
        };
    }

    /// A pair of RTP legs on `stream`: plain, transcoded (both legs have a format) or refused.
    fn rebuild_pair(&mut self, stream: usize) {
        let state = &mut self.streams[stream];
        state.plain = false;
        state.refused = false;
        let previous = state.transcoder.take();
        let Router::Pair(a, b) = self.router else {
            state.transcoded = None;
            return;
        };
        let leg = |id: LegId| self.legs.iter().find(|l| l.id == id && l.is_rtp()).map(|l| &l.streams[stream].config);
        let (Some(first), Some(second)) = (leg(a), leg(b)) else {
            state.transcoded = None;
            return;
        };
        let (Some(fa), Some(fb)) = (&first.format, &second.format) else {
            state.transcoded = None;
            state.plain = first.is_plain() && second.is_plain();
            return;
        };
        let key = (a, b, [fa.clone(), fb.clone()]);
        if previous.is_some() && state.transcoded.as_ref() == Some(&key) {
            state.transcoder = previous;
            return;
        }
        let (ssrcs, seed) = ([self.rng.next_u32(), self.rng.next_u32()], self.rng.next_u64());
        match Transcoder::new([fa, fb], ssrcs, seed) {
            Ok(transcoder) => state.transcoder = Some(Box::new(transcoder)),
            Err(_) => state.refused = true,
        }
        state.transcoded = Some(key);
    }
}

/// Where `leg`'s packets go under `router`.
fn route_of(router: &Router, legs: &[Leg], leg: LegId) -> Route {
    match router {
        Router::Pair(a, b) if *a == leg || *b == leg => {
            let other = if *a == leg { *b } else { *a };
            match legs.iter().position(|l| l.id == other) {
                Some(partner) => Route::Pair { partner, first: *a == leg },
                None => Route::None,
            }
        }
        Router::Mix(members) if members.contains(&leg) => Route::Mix,
        _ => Route::None,
    }
}

fn push_event(events: &mut VecDeque<SessionEvent>, event: SessionEvent) {
    if events.len() >= MAX_EVENTS {
        events.pop_front();
    }
    events.push_back(event);
}

/// Two distinct elements of a slice, mutably.
fn two_mut<T>(items: &mut [T], i: usize, j: usize) -> Option<(&mut T, &mut T)> {
    if i == j || i >= items.len() || j >= items.len() {
        return None;
    }
    if i < j {
        let (low, high) = items.split_at_mut(j);
        Some((&mut low[i], &mut high[0]))
    } else {
        let (low, high) = items.split_at_mut(i);
        Some((&mut high[0], &mut low[j]))
    }
}

/// Queues packets the session made: each is copied into a pooled buffer, protected for its
/// receiver and queued, when the receiver has somewhere to send.
struct Outbox<'a> {
    transmits: &'a mut VecDeque<(Transmit, Vec<u8>)>,
    pool: &'a mut Vec<Vec<u8>>,
}

impl Outbox<'_> {
    fn send(&mut self, leg: &mut Leg, stream: usize, packet: &[u8]) {
        let Some(state) = leg.streams.get_mut(stream) else { return };
        let Some(destination) = state.latches[0].destination() else { return };
        let mut buf = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(1500));
        buf.clear();
        buf.extend_from_slice(packet);
        if let Some(srtp) = &mut state.srtp_out
            && srtp.protect_rtp(&mut buf).is_err()
        {
            self.pool.push(buf);
            return;
        }
        if self.transmits.len() >= MAX_TRANSMITS
            && let Some((_, old)) = self.transmits.pop_front()
        {
            self.pool.push(old);
        }
        self.transmits.push_back((Transmit { to: Channel::rtp(leg.id, stream), destination }, buf));
    }
}
