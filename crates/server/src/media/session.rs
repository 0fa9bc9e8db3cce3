//! One relayed call: its handle ([`RelaySession`]), what it is told ([`Peer`], [`StreamConfig`],
//! an application to connect) and what it counts ([`SessionStats`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sambung_media::negotiate::Negotiated;
use sambung_media::offer_answer::rewrite_for_relay;
use sambung_media::sdp::SessionDescription;
use sambung_media::session::{LegConfig, LegKind, MediaSession, Peer, Router, StreamConfig};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::MediaError;
use super::app::AppPort;
use super::forward::Relay;
use super::ports::{BoundSocket, PortLease};
use super::quality::LegQuality;

/// One side of a relayed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The caller's side, by convention.
    A,
    /// The callee's side.
    B,
}

impl Leg {
    /// The leg's place in [`SessionStats::legs`] and in the session task.
    pub fn index(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }

    /// The leg packets from this one are forwarded to.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}

impl fmt::Display for Leg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Leg::A => "A",
            Leg::B => "B",
        })
    }
}

/// A DTMF key pressed on a leg (RFC 4733 event, or SIP INFO read by the core).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    /// The session's name (`call-<id>`).
    pub call: Arc<str>,
    pub leg: Leg,
    pub key: char,
    /// How long the key was held, in milliseconds.
    pub duration_ms: u32,
}

/// What the handle tells the task.
#[derive(Debug)]
pub(super) enum Command {
    SetPeer {
        leg: Leg,
        stream: usize,
        peer: Peer,
    },
    /// The clock rates of the payload types `leg` sends on its first stream (from its SDP).
    Clocks {
        leg: Leg,
        clocks: Vec<(u8, u32)>,
    },
    Configure {
        stream: usize,
        legs: Vec<(Leg, LegConfig)>,
    },
    AttachApp {
        port: Box<AppPort>,
        format: Box<Negotiated>,
    },
    DetachApp,
    /// `leg`'s peer put the call on hold: `leg` hears music, in `format` (its own codec).
    Hold {
        leg: Leg,
        format: Box<Negotiated>,
    },
    /// The call is taken off hold: the legs hear each other again.
    Resume,
    /// Record the call: legs A and B speak `formats` (their codecs), decoded and written to
    /// `sink`.
    Record {
        formats: Box<[Negotiated; 2]>,
        sink: super::record::RecordSink,
        notice: bool,
    },
    /// A keyframe is wanted of `leg` on its video streams (its peer asked by signalling).
    Keyframe {
        leg: Leg,
    },
    /// `leg` becomes a browser's: a WebRTC leg speaking `plan` with `remote`.
    WebRtc {
        leg: Leg,
        plan: Box<sambung_media::webrtc::WebRtcPlan>,
        remote: Box<sambung_media::webrtc::RemoteWebRtc>,
    },
}

/// Where sessions report key events.
#[derive(Clone)]
pub struct KeySink(Arc<dyn Fn(KeyEvent) + Send + Sync>);

impl KeySink {
    pub fn new(sink: impl Fn(KeyEvent) + Send + Sync + 'static) -> KeySink {
        KeySink(Arc::new(sink))
    }

    pub fn send(&self, event: KeyEvent) {
        (self.0)(event);
    }
}

impl fmt::Debug for KeySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySink")
    }
}

/// Where sessions ask for a keyframe by signalling: a video phone that takes no RTCP keyframe
/// requests ([`LegConfig::rtcp_feedback`] unset) is sent a SIP INFO by call control. Called with
/// the session's name (as [`super::MediaRelay::allocate`] was given it), the leg and the stream.
#[derive(Clone)]
pub struct KeyframeSink(Arc<KeyframeFn>);

/// What a [`KeyframeSink`] calls: the session's name, the leg, the stream.
type KeyframeFn = dyn Fn(&str, Leg, usize) + Send + Sync;

impl KeyframeSink {
    pub fn new(sink: impl Fn(&str, Leg, usize) + Send + Sync + 'static) -> KeyframeSink {
        KeyframeSink(Arc::new(sink))
    }

    pub fn send(&self, call: &str, leg: Leg, stream: usize) {
        (self.0)(call, leg, stream);
    }
}

impl fmt::Debug for KeyframeSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyframeSink")
    }
}

/// Packet counters of one leg's RTP or RTCP port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Received from the leg's endpoint (latched or allowed source).
    pub received_packets: u64,
    pub received_bytes: u64,
    /// Sent to the leg's endpoint (forwarded from the other leg).
    pub sent_packets: u64,
    pub sent_bytes: u64,
    /// Received from a source the leg may not latch to, and dropped.
    pub rejected_packets: u64,
    /// Received from the leg's endpoint but not forwarded: the other leg had no destination
    /// yet (or is on hold at 0.0.0.0), or its socket's buffer was full.
    pub dropped_packets: u64,
}

/// Counters of one leg, all streams together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegStats {
    pub rtp: ChannelStats,
    pub rtcp: ChannelStats,
}

/// Counters of a session, for call records and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// One entry per RTP leg: [`Leg::A`] then [`Leg::B`].
    pub legs: Vec<LegStats>,
}

const NO_CHANNEL: ChannelStats = ChannelStats {
    received_packets: 0,
    received_bytes: 0,
    sent_packets: 0,
    sent_bytes: 0,
    rejected_packets: 0,
    dropped_packets: 0,
};
static NO_LEG: LegStats = LegStats { rtp: NO_CHANNEL, rtcp: NO_CHANNEL };

impl SessionStats {
    pub fn leg(&self, leg: Leg) -> &LegStats {
        self.legs.get(leg.index()).unwrap_or(&NO_LEG)
    }
}

/// The counters the task adds to and the handle reads: `[leg][rtp, rtcp][counter]`, and the
/// relay's totals over every session, which each batch adds to as well.
#[derive(Debug, Default)]
pub(super) struct Counters(Vec<[[AtomicU64; 6]; 2]>, Arc<Totals>, std::sync::Mutex<[LegQuality; 2]>);

/// Every session's counters added up, since the relay started: `[rtp, rtcp][counter]`.
#[derive(Debug, Default)]
pub struct Totals([[AtomicU64; 6]; 2]);

impl Totals {
    /// The RTP and the RTCP totals.
    pub fn read(&self) -> (ChannelStats, ChannelStats) {
        (channel(&self.0[0]), channel(&self.0[1]))
    }
}

fn channel(c: &[AtomicU64; 6]) -> ChannelStats {
    let v = |i: usize| c[i].load(Ordering::Relaxed);
    ChannelStats {
        received_packets: v(RECEIVED),
        received_bytes: v(RECEIVED_BYTES),
        sent_packets: v(SENT),
        sent_bytes: v(SENT_BYTES),
        rejected_packets: v(REJECTED),
        dropped_packets: v(DROPPED),
    }
}

/// Counter indexes.
pub(super) const RECEIVED: usize = 0;
pub(super) const RECEIVED_BYTES: usize = 1;
pub(super) const SENT: usize = 2;
pub(super) const SENT_BYTES: usize = 3;
pub(super) const REJECTED: usize = 4;
pub(super) const DROPPED: usize = 5;

impl Counters {
    /// Counters for `legs` RTP legs.
    pub(super) fn new(legs: usize, totals: Arc<Totals>) -> Counters {
        Counters((0..legs).map(|_| Default::default()).collect(), totals, std::sync::Mutex::default())
    }

    /// Adds a batch's deltas: one atomic add per non-zero counter.
    pub(super) fn add(&self, leg: usize, kind: usize, deltas: &[u64; 6]) {
        let Some(counters) = self.0.get(leg).and_then(|l| l.get(kind)) else { return };
        for ((counter, total), &delta) in counters.iter().zip(&self.1.0[kind]).zip(deltas) {
            if delta != 0 {
                counter.fetch_add(delta, Ordering::Relaxed);
                total.fetch_add(delta, Ordering::Relaxed);
            }
        }
    }

    /// Sets what the legs' audio looked like so far (the task does, about once a second and
    /// when it ends).
    pub(super) fn set_quality(&self, quality: [LegQuality; 2]) {
        *self.2.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = quality;
    }

    fn quality(&self) -> [LegQuality; 2] {
        *self.2.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> SessionStats {
        SessionStats { legs: self.0.iter().map(|l| LegStats { rtp: channel(&l[0]), rtcp: channel(&l[1]) }).collect() }
    }
}

/// A relayed call: its ports, and the handle to its task. Dropping it stops the relay and
/// returns the ports to the pool (once the task has closed the sockets).
#[derive(Debug)]
pub struct RelaySession {
    call: Arc<str>,
    local_ip: IpAddr,
    /// RTP ports of leg A then leg B, one per stream.
    ports: [Vec<u16>; 2],
    commands: Option<mpsc::UnboundedSender<Command>>,
    task: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// Starts the task of a new session: two RTP legs, A and B, paired.
/// `sockets[stream * 2 + leg]` is a leg's (RTP, RTCP) pair.
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    call: &str,
    streams: usize,
    local_ip: IpAddr,
    lease: PortLease,
    sockets: Vec<[BoundSocket; 2]>,
    runtime: &Handle,
    active: Arc<AtomicUsize>,
    keys: Option<KeySink>,
    (keyframes, music): (Option<KeyframeSink>, Option<super::Music>),
    totals: Arc<Totals>,
    identity: Option<Arc<sambung_media::webrtc::WebRtcIdentity>>,
) -> Result<RelaySession, MediaError> {
    let call: Arc<str> = Arc::from(call);
    let mut session = MediaSession::new(streams, rand::random(), tokio::time::Instant::now().into_std())?;
    let a = session.add_leg(LegKind::Rtp)?;
    let b = session.add_leg(LegKind::Rtp)?;
    session.set_router(Router::Pair(a, b))?;
    let mut ports = [Vec::with_capacity(streams), Vec::with_capacity(streams)];
    for (i, &port) in lease.ports.iter().enumerate() {
        ports[i % 2].push(port);
    }
    let counters = Arc::new(Counters::new(2, totals));
    let (commands, receiver) = mpsc::unbounded_channel();
    active.fetch_add(1, Ordering::Relaxed);
    let finish = Finish { _lease: lease, active };
    let sinks = (keys, keyframes);
    let mut relay =
        Relay::new(call.clone(), session, [a, b], sockets, receiver, counters.clone(), finish, sinks, identity);
    relay.music_source = music;
    let task = runtime.spawn(relay.run());
    Ok(RelaySession { call, local_ip, ports, commands: Some(commands), task: Some(task), counters })
}

/// Held by the task after its sockets: when the task ends (or the runtime drops it), the
/// sockets close first, then the ports go back to the pool and the session stops counting as
/// active.
#[derive(Debug)]
pub(super) struct Finish {
    _lease: PortLease,
    active: Arc<AtomicUsize>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RelaySession {
    /// The call this session relays, as given to [`super::MediaRelay::allocate`].
    pub fn call(&self) -> &str {
        &self.call
    }

    /// The address the ports are bound on.
    pub fn local_ip(&self) -> IpAddr {
        self.local_ip
    }

    /// The number of media streams.
    pub fn streams(&self) -> usize {
        self.ports[0].len()
    }

    /// `leg`'s RTP ports, one per stream (RTCP on each + 1): what the SDP sent to that leg's
    /// endpoint names ([`sambung_media::offer_answer::rewrite_for_relay`]).
    pub fn leg_ports(&self, leg: Leg) -> &[u16] {
        &self.ports[leg.index()]
    }

    /// Sets how `stream` is handled from now on (keys, codecs, events: [`StreamConfig`]): the
    /// same as [`Self::configure_leg`] for both legs.
    pub fn configure(&self, stream: usize, config: StreamConfig) -> Result<(), MediaError> {
        let [a, b] = config.into_legs();
        self.configure_legs(stream, vec![(Leg::A, a), (Leg::B, b)])
    }

    /// Asks `leg` for a keyframe on its video streams: its peer asked for one by signalling (a
    /// SIP INFO `picture_fast_update`). A browser is asked by RTCP PLI, a phone as it takes it.
    pub fn request_keyframe(&self, leg: Leg) -> Result<(), MediaError> {
        self.command(Command::Keyframe { leg })
    }

    /// Sets how `leg`'s `stream` is handled from now on ([`LegConfig`]).
    pub fn configure_leg(&self, leg: Leg, stream: usize, config: LegConfig) -> Result<(), MediaError> {
        self.configure_legs(stream, vec![(leg, config)])
    }

    fn configure_legs(&self, stream: usize, legs: Vec<(Leg, LegConfig)>) -> Result<(), MediaError> {
        if stream >= self.streams() {
            return Err(MediaError::NoSuchStream(stream));
        }
        self.command(Command::Configure { stream, legs })
    }

    /// Hands leg B to an application inside the server: from now on it hears what leg A says
    /// on stream 0 (decoded from `format`, leg A's codec, under leg A's keys), one frame per 20 ms
    /// on `port`, and what it plays is sent to leg A encoded as `format`. Leg A's keys (RFC 4733)
    /// reach the application too. B's sockets stay open but are not listened to.
    pub fn attach_app(&self, port: AppPort, format: Negotiated) -> Result<(), MediaError> {
        self.command(Command::AttachApp { port: Box::new(port), format: Box::new(format) })
    }

    /// Hands `leg` to a browser: from now on its first RTP socket carries a WebRTC leg (ICE,
    /// DTLS-SRTP, RTCP, everything bundled) speaking `plan` with the browser `remote` describes.
    pub fn attach_webrtc(
        &self,
        leg: Leg,
        plan: sambung_media::webrtc::WebRtcPlan,
        remote: sambung_media::webrtc::RemoteWebRtc,
    ) -> Result<(), MediaError> {
        self.command(Command::WebRtc { leg, plan: Box::new(plan), remote: Box::new(remote) })
    }

    /// `leg` is put on hold by the other: it hears the music on hold ([`super::Music`]) in
    /// `format`, its own codec, instead of the other leg (which sends nothing anyway).
    pub fn hold(&self, leg: Leg, format: Negotiated) -> Result<(), MediaError> {
        self.command(Command::Hold { leg, format: Box::new(format) })
    }

    /// Off hold: the legs hear each other again.
    pub fn resume(&self) -> Result<(), MediaError> {
        self.command(Command::Resume)
    }

    /// Records the call to `sink`; legs A and B speak `formats`.
    pub fn record(
        &self,
        formats: [Negotiated; 2],
        sink: super::record::RecordSink,
        notice: bool,
    ) -> Result<(), MediaError> {
        self.command(Command::Record { formats: Box::new(formats), sink, notice })
    }

    /// Gives leg B back to its device: relaying again.
    pub fn detach_app(&self) -> Result<(), MediaError> {
        self.command(Command::DetachApp)
    }

    fn command(&self, command: Command) -> Result<(), MediaError> {
        let commands = self.commands.as_ref().ok_or(MediaError::Stopped)?;
        commands.send(command).map_err(|_| MediaError::Stopped)
    }

    /// Tells the relay where `leg` receives `stream` and where its signalling comes from (after
    /// each offer or answer from that leg). Packets are sent there until the leg's own packets
    /// show where it really is.
    pub fn set_peer(&self, leg: Leg, stream: usize, peer: Peer) -> Result<(), MediaError> {
        if stream >= self.streams() {
            return Err(MediaError::NoSuchStream(stream));
        }
        self.command(Command::SetPeer { leg, stream, peer })
    }

    /// The description to send to `leg`'s endpoint: `sdp` (the other leg's offer or answer)
    /// with `address` (the relay's address as the endpoint reaches it) and `leg`'s ports
    /// ([`rewrite_for_relay`]). Streams beyond this session's are declined.
    pub fn sdp_for(&self, leg: Leg, sdp: &SessionDescription, address: IpAddr) -> SessionDescription {
        rewrite_for_relay(sdp, address, self.leg_ports(leg))
    }

    /// Takes `sdp`, an offer or answer from `leg`'s endpoint, and the IP its SIP message came
    /// from as that leg's peer for every stream ([`Peer::from_sdp`]). Streams beyond this
    /// session's are ignored.
    pub fn set_peers_from_sdp(
        &self,
        leg: Leg,
        sdp: &SessionDescription,
        signalling_ip: Option<IpAddr>,
    ) -> Result<(), MediaError> {
        for (stream, media) in sdp.media.iter().enumerate().take(self.streams()) {
            self.set_peer(leg, stream, Peer::from_sdp(sdp, media, signalling_ip))?;
        }
        if let Some(media) = sdp.media.first() {
            let clocks = media.codecs().iter().map(|c| (c.payload_type, c.clock_rate)).collect();
            self.command(Command::Clocks { leg, clocks })?;
        }
        Ok(())
    }

    /// The counters so far.
    pub fn stats(&self) -> SessionStats {
        self.counters.read()
    }

    /// Stops the relay and waits until its sockets are closed and its ports back in the pool;
    /// returns the final counters.
    pub async fn release(self) -> SessionStats {
        self.release_with_quality().await.0
    }

    /// [`RelaySession::release`], with what each leg's audio looked like (A, then B).
    pub async fn release_with_quality(mut self) -> (SessionStats, [LegQuality; 2]) {
        self.commands = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        (self.counters.read(), self.counters.quality())
    }

    /// What each leg's audio looked like so far (A, then B), as of the last second.
    pub fn quality(&self) -> [LegQuality; 2] {
        self.counters.quality()
    }
}

impl Drop for RelaySession {
    fn drop(&mut self) {
        // Closing the command channel ends the task, which then frees the ports.
        self.commands = None;
    }
}
