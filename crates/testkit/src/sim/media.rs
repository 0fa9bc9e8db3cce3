//! The simulated media runtime: one [`MediaSession`] per call, as call control asks for them,
//! with ports on the server's address.
//!
//! Each [`MediaCommand::Open`] makes a session with two RTP legs, A then B, relayed to each
//! other ([`Router::Pair`]), and allocates each leg an RTP port per stream (RTCP on the next
//! port). Datagrams to those ports are fed to the session on the right [`Channel`]; what it
//! forwards or makes itself leaves from the port of the channel it names.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use sambung_media::session::{Channel, Kind, LegId, LegKind, MediaSession, Receive, Router, SessionEvent};
use sambung_pbx::{MediaCommand, MediaEvent, SessionId, Side};

/// The first port handed out.
const FIRST_PORT: u16 = 20_000;

/// What happened to the datagrams the runtime took, and to the packets it sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// [`Receive::Forward`]: relayed to the other leg.
    pub forwarded: u64,
    /// [`Receive::NoDestination`]: the other leg had nowhere to send yet.
    pub no_destination: u64,
    /// [`Receive::Consumed`]: taken by an application leg, a transcoder or a mix.
    pub consumed: u64,
    /// [`Receive::Dropped`].
    pub dropped: u64,
    /// [`Receive::Rejected`]: a source the leg may not latch to.
    pub rejected: u64,
    /// Datagrams to a port no session has.
    pub unknown_port: u64,
    /// Packets the sessions made themselves (an application's audio, transcoded audio).
    pub made: u64,
}

/// One call's session and what the runtime knows of it.
#[derive(Debug)]
pub struct SimSession {
    pub session: MediaSession,
    /// Leg A, then leg B.
    pub legs: [LegId; 2],
    /// The RTP port of each stream on leg A, then on leg B.
    pub ports: [Vec<u16>; 2],
    /// Leg B is an application.
    pub app: bool,
    /// Keys read from each leg's telephone-events: (side, key).
    pub keys: Vec<(Side, char)>,
}

impl SimSession {
    fn side(&self, leg: LegId) -> Option<Side> {
        match self.legs.iter().position(|&l| l == leg)? {
            0 => Some(Side::A),
            _ => Some(Side::B),
        }
    }

    fn leg(&self, side: Side) -> LegId {
        match side {
            Side::A => self.legs[0],
            Side::B => self.legs[1],
        }
    }

    /// The port a channel's datagrams leave from.
    fn port(&self, channel: Channel) -> Option<u16> {
        let side = self.legs.iter().position(|&l| l == channel.leg)?;
        let rtp = *self.ports[side].get(channel.stream)?;
        Some(if channel.kind == Kind::Rtcp { rtp + 1 } else { rtp })
    }
}

/// The simulated media runtime. See the [module docs](self).
#[derive(Debug)]
pub struct MediaRuntime {
    ip: IpAddr,
    seed: u64,
    next_port: u16,
    sessions: BTreeMap<SessionId, SimSession>,
    ports: BTreeMap<u16, (SessionId, Channel)>,
    opened: Vec<SessionId>,
    closed: Vec<SessionId>,
    stats: MediaStats,
    buf: Vec<u8>,
}

impl MediaRuntime {
    /// A runtime whose ports are on `ip`; `seed` seeds every session.
    pub fn new(ip: IpAddr, seed: u64) -> MediaRuntime {
        MediaRuntime {
            ip,
            seed,
            next_port: FIRST_PORT,
            sessions: BTreeMap::new(),
            ports: BTreeMap::new(),
            opened: Vec::new(),
            closed: Vec::new(),
            stats: MediaStats::default(),
            buf: Vec::with_capacity(1500),
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The sessions open now.
    pub fn sessions(&self) -> &BTreeMap<SessionId, SimSession> {
        &self.sessions
    }

    /// Sessions opened, in order.
    pub fn opened(&self) -> &[SessionId] {
        &self.opened
    }

    /// Sessions closed by call control, in order.
    pub fn closed(&self) -> &[SessionId] {
        &self.closed
    }

    pub fn stats(&self) -> MediaStats {
        self.stats
    }

    /// Carries out a command; the answer call control waits for, if any.
    pub fn command(&mut self, now: Instant, command: MediaCommand) -> Option<MediaEvent> {
        match command {
            MediaCommand::Open { session, streams, .. } => Some(self.open(now, session, streams)),
            MediaCommand::SetPeer { session, side, stream, peer } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    let leg = s.leg(side);
                    let _ = s.session.set_peer(leg, stream, peer);
                }
                None
            }
            MediaCommand::Configure { session, stream, legs } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    let [a, b] = *legs;
                    let _ = s.session.configure(s.legs[0], stream, a);
                    let _ = s.session.configure(s.legs[1], stream, b);
                }
                None
            }
            MediaCommand::AttachApp { session, format, rate } => {
                if let Some(s) = self.sessions.get_mut(&session)
                    && s.session.set_leg_kind(s.legs[1], LegKind::App { format, rate }).is_ok()
                {
                    s.app = true;
                }
                None
            }
            MediaCommand::DetachApp { session } => {
                if let Some(s) = self.sessions.get_mut(&session)
                    && s.session.set_leg_kind(s.legs[1], LegKind::Rtp).is_ok()
                {
                    s.app = false;
                }
                None
            }
            // The simulated phones speak plain RTP or SDES-SRTP: no browser legs to run (the
            // server's relay runs them over real sockets; see its tests).
            // The simulated relay plays no music on hold: a held leg hears nothing, as before.
            MediaCommand::WebRtc { .. }
            | MediaCommand::Keyframe { .. }
            | MediaCommand::Hold { .. }
            | MediaCommand::Resume { .. }
            | MediaCommand::Record { .. } => None,
            MediaCommand::Close { session } => {
                if self.sessions.remove(&session).is_some() {
                    self.ports.retain(|_, (s, _)| *s != session);
                    self.closed.push(session);
                }
                None
            }
        }
    }

    fn open(&mut self, now: Instant, id: SessionId, streams: usize) -> MediaEvent {
        let failed = |reason: String| MediaEvent::Failed { session: id, reason };
        let seed = self.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut session = match MediaSession::new(streams, seed, now) {
            Ok(session) => session,
            Err(error) => return failed(error.to_string()),
        };
        let (Ok(a), Ok(b)) = (session.add_leg(LegKind::Rtp), session.add_leg(LegKind::Rtp)) else {
            return failed("no legs".into());
        };
        if let Err(error) = session.set_router(Router::Pair(a, b)) {
            return failed(error.to_string());
        }
        let needed = 2 * 2 * streams as u32;
        if u32::from(self.next_port) + needed > u32::from(u16::MAX) {
            return failed("no free RTP port pair".into());
        }
        let mut ports: [Vec<u16>; 2] = [Vec::new(), Vec::new()];
        for (side, leg) in [a, b].into_iter().enumerate() {
            for stream in 0..streams {
                let port = self.next_port;
                self.next_port += 2;
                self.ports.insert(port, (id, Channel::rtp(leg, stream)));
                self.ports.insert(port + 1, (id, Channel::rtcp(leg, stream)));
                ports[side].push(port);
            }
        }
        let sim = SimSession { session, legs: [a, b], ports: ports.clone(), app: false, keys: Vec::new() };
        self.sessions.insert(id, sim);
        self.opened.push(id);
        MediaEvent::Opened { session: id, ports: Box::new(ports) }
    }

    /// A datagram from `from` reached `to` (one of the runtime's ports): what to send goes to
    /// `out` as (from, to, payload).
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        payload: &[u8],
        out: &mut Vec<(SocketAddr, SocketAddr, Bytes)>,
    ) {
        let Some(&(id, channel)) = self.ports.get(&to.port()).filter(|_| to.ip() == self.ip) else {
            self.stats.unknown_port += 1;
            return;
        };
        let Some(sim) = self.sessions.get_mut(&id) else { return };
        self.buf.clear();
        self.buf.extend_from_slice(payload);
        match sim.session.receive(now, channel, from, &mut self.buf) {
            Receive::Forward { to: channel, destination } => {
                self.stats.forwarded += 1;
                if let Some(port) = sim.port(channel) {
                    out.push((SocketAddr::new(self.ip, port), destination, Bytes::copy_from_slice(&self.buf)));
                }
            }
            Receive::NoDestination => self.stats.no_destination += 1,
            Receive::Consumed => self.stats.consumed += 1,
            Receive::Dropped => self.stats.dropped += 1,
            Receive::Rejected => self.stats.rejected += 1,
        }
        self.drain(id, out);
    }

    /// Plays one frame into call `session`'s application leg.
    pub fn app_play(&mut self, session: SessionId, frame: &[i16]) -> bool {
        let Some(sim) = self.sessions.get_mut(&session).filter(|s| s.app) else { return false };
        sim.session.app_play(sim.legs[1], frame).is_ok()
    }

    /// When a session next needs the clock.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions.values().filter_map(|s| s.session.poll_timeout()).min()
    }

    /// Runs the sessions' ticks due by `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<(SocketAddr, SocketAddr, Bytes)>) {
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.session.poll_timeout().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(sim) = self.sessions.get_mut(&id) {
                sim.session.handle_timeout(now);
            }
            self.drain(id, out);
        }
    }

    /// What session `id` made itself, into `out`.
    fn drain(&mut self, id: SessionId, out: &mut Vec<(SocketAddr, SocketAddr, Bytes)>) {
        let Some(sim) = self.sessions.get_mut(&id) else { return };
        while let Some(transmit) = sim.session.poll_transmit(&mut self.buf) {
            self.stats.made += 1;
            if let Some(port) = sim.port(transmit.to) {
                out.push((SocketAddr::new(self.ip, port), transmit.destination, Bytes::copy_from_slice(&self.buf)));
            }
        }
    }

    /// The sessions' events since last asked, by session: keys are also kept per session.
    pub fn poll_events(&mut self) -> Vec<(SessionId, Option<Side>, SessionEvent)> {
        let mut events = Vec::new();
        for (id, sim) in &mut self.sessions {
            while let Some(event) = sim.session.poll_event() {
                let side = match &event {
                    SessionEvent::Key { leg, .. } | SessionEvent::AppAudio { leg, .. } => sim.side(*leg),
                    SessionEvent::Latched { at, .. } => sim.side(at.leg),
                    // The simulated relay records nothing.
                    SessionEvent::Tapped { .. } => None,
                };
                if let (SessionEvent::Key { key, .. }, Some(side)) = (&event, side) {
                    sim.keys.push((side, *key));
                }
                events.push((*id, side, event));
            }
        }
        events
    }
}
