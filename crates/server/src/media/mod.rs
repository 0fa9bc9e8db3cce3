//! The RTP/RTCP relay: the B2BUA anchors each call's media on a pair of ports per leg and
//! forwards packets between the legs without looking inside them.
//!
//! The core owns a [`MediaRelay`] (a cheap handle to a shared port pool) and, for each relayed
//! call, a [`RelaySession`]:
//!
//! ```text
//!   endpoint A ── RTP ─▶ [A's port]  ┐              ┌ [B's port] ── RTP ─▶ endpoint B
//!              ◀─ RTP ── [A's port]  ├ session task ┤ [B's port] ◀─ RTP ──
//!               (RTCP the same way on the odd ports A+1 and B+1)
//! ```
//!
//! 1. [`MediaRelay::allocate`] binds two port pairs per media stream (RFC 3550 §11: RTP on an
//!    even port, RTCP on the next odd one) and starts the session's task;
//! 2. the core sends each leg the other leg's SDP rewritten with the relay's address and this
//!    leg's ports ([`RelaySession::sdp_for`], or
//!    [`sambung_media::offer_answer::rewrite_for_relay`] with [`RelaySession::leg_ports`]);
//! 3. [`RelaySession::set_peers_from_sdp`] (or [`RelaySession::set_peer`]) tells the relay what
//!    each leg's own SDP and signalling source say; the relay sends there until the leg's first
//!    packet, then latches to the packet's source if its IP is allowed (symmetric RTP,
//!    [`sambung_media::latch`]);
//! 4. dropping the session (or [`RelaySession::release`]) stops the task and returns the ports.
//!
//! # Design
//!
//! What happens to each packet is decided by a [`sambung_media::session::MediaSession`] (sans-IO:
//! legs, a router, SRTP per leg, DTMF, transcoding, application legs and mixes); this module owns
//! the sockets, the clock and the tasks. A session here has two RTP legs, A and B, paired; leg B
//! can be handed to an application inside the server ([`RelaySession::attach_app`], [`app_port`]).
//!
//! One tokio task per session serves all its sockets (both legs, RTP and RTCP, every stream)
//! and owns its `MediaSession`. A leg's outgoing destination is learnt from packets arriving on
//! that leg's own sockets, and used when forwarding the other leg's packets: with one task the
//! latching state stays task-local, without locks or messages between tasks, and a session
//! costs one task instead of two or four. A session's sockets never need more than one core: an
//! audio call is 100 packets per second each way.
//!
//! The task waits for any of its sockets to be readable (or for the session's next 20 ms tick,
//! when it has one), then drains each ready socket in batches: `recvmmsg` (up to 32 datagrams,
//! and several more per buffer with UDP GRO) into a buffer shared by all sessions on the worker
//! thread. A plain stream is forwarded out of the other leg's socket with the session's latches
//! only, coalescing equal-sized datagrams to one destination into one UDP GSO send; the others
//! go through [`sambung_media::session::MediaSession::receive`] one by one. The batching comes
//! from the `quinn-udp` crate (its unsafe code stays there); nothing is allocated per packet.
//! `examples/relay_bench.rs` measures it; `docs/media.md` has the figures.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use crate::config::MediaConfig;

mod app;
mod forward;
mod music;
mod ports;
mod process;
mod quality;
pub mod record;
mod session;
#[cfg(test)]
mod tests;
mod webrtc;

pub use app::{APP_CHANNEL, AppAudio, AppPort, app_port};
pub use music::{Music, MusicError};
use ports::PortPool;
pub use quality::LegQuality;
pub use sambung_media::session::{LegConfig, MAX_STREAMS, Peer, StreamConfig};
pub use session::{ChannelStats, KeyEvent, KeySink, KeyframeSink, Leg, LegStats, RelaySession, SessionStats};

/// Socket buffer sizes asked of the kernel for each relay socket (it may grant less).
pub const SOCKET_BUFFER: usize = 512 * 1024;

/// Errors of the relay.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("invalid RTP port range {min}-{max}: it must hold at least one even/odd pair above 0")]
    InvalidRange { min: u16, max: u16 },
    #[error("no free RTP port pair in {min}-{max}")]
    PortsExhausted { min: u16, max: u16 },
    #[error("a session relays 1 to {MAX_STREAMS} media streams, not {0}")]
    Streams(usize),
    #[error("no media stream {0} in this session")]
    NoSuchStream(usize),
    #[error("the relay session has stopped")]
    Stopped,
    #[error("cannot open RTP socket on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Session(#[from] sambung_media::session::SessionError),
}

/// The relay's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// The lowest port of the range (rounded up to even).
    pub port_min: u16,
    /// The highest port of the range: the last pair's RTCP port is at most this.
    pub port_max: u16,
    /// [`SOCKET_BUFFER`] unless changed.
    pub socket_buffer: usize,
}

impl RelayConfig {
    pub fn new(port_min: u16, port_max: u16) -> RelayConfig {
        RelayConfig { port_min, port_max, socket_buffer: SOCKET_BUFFER }
    }
}

impl From<&MediaConfig> for RelayConfig {
    fn from(config: &MediaConfig) -> RelayConfig {
        RelayConfig::new(config.rtp_port_min, config.rtp_port_max)
    }
}

/// The relay: a handle to the port pool that allocates [`RelaySession`]s. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaRelay {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: RelayConfig,
    pool: Arc<Mutex<PortPool>>,
    runtime: Handle,
    sessions: Arc<AtomicUsize>,
    keys: Mutex<Option<KeySink>>,
    keyframes: Mutex<Option<KeyframeSink>>,
    music: Mutex<Option<Music>>,
    totals: Arc<session::Totals>,
    identity: Mutex<Option<Arc<sambung_media::webrtc::WebRtcIdentity>>>,
}

impl MediaRelay {
    /// A relay over `config`'s port range whose session tasks run on `runtime`.
    pub fn new(config: RelayConfig, runtime: Handle) -> Result<MediaRelay, MediaError> {
        let pool = PortPool::new(config.port_min, config.port_max)?;
        let shared = Shared {
            config,
            pool: Arc::new(Mutex::new(pool)),
            runtime,
            sessions: Arc::new(AtomicUsize::new(0)),
            keys: Mutex::new(None),
            keyframes: Mutex::new(None),
            music: Mutex::new(None),
            totals: Arc::default(),
            identity: Mutex::new(None),
        };
        Ok(MediaRelay { shared: Arc::new(shared) })
    }

    /// Binds `streams` port pairs per leg on `local_ip` (the address written into the SDP,
    /// or the wildcard) and starts relaying between them. `call` names the session in logs.
    pub fn allocate(&self, call: &str, streams: usize, local_ip: IpAddr) -> Result<RelaySession, MediaError> {
        if streams == 0 || streams > MAX_STREAMS {
            return Err(MediaError::Streams(streams));
        }
        let shared = &self.shared;
        let _runtime = shared.runtime.enter();
        let (lease, sockets) = ports::bind_pairs(&shared.pool, &shared.config, local_ip, 2 * streams)?;
        let keys = shared.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let keyframes = shared.keyframes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let music = shared.music.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let identity = shared.identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let (runtime, active, totals) = (&shared.runtime, shared.sessions.clone(), shared.totals.clone());
        let sinks = (keyframes, music);
        session::start(call, streams, local_ip, lease, sockets, runtime, active, keys, sinks, totals, identity)
    }

    /// What a held party hears from the sessions allocated from now on.
    pub fn set_music(&self, music: Music) {
        *self.shared.music.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(music);
    }

    /// Where the sessions allocated from now on ask for keyframes by signalling.
    pub fn set_keyframe_sink(&self, sink: KeyframeSink) {
        *self.shared.keyframes.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }

    /// Where the sessions allocated from now on report DTMF key presses.
    pub fn set_key_sink(&self, sink: KeySink) {
        *self.shared.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }

    /// The DTLS identity the sessions allocated from now on give their WebRTC legs.
    pub fn set_webrtc_identity(&self, identity: Arc<sambung_media::webrtc::WebRtcIdentity>) {
        *self.shared.identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(identity);
    }

    /// Port pairs free now.
    pub fn available_pairs(&self) -> usize {
        ports::lock(&self.shared.pool).available()
    }

    /// Port pairs in the configured range.
    pub fn capacity_pairs(&self) -> usize {
        ports::lock(&self.shared.pool).capacity()
    }

    /// Sessions whose task is running.
    pub fn active_sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::Relaxed)
    }

    /// What every session relayed since the relay started: RTP, then RTCP.
    pub fn totals(&self) -> (ChannelStats, ChannelStats) {
        self.shared.totals.read()
    }

    /// The relay's settings.
    pub fn config(&self) -> RelayConfig {
        self.shared.config
    }
}
