//! The session task: waits on every socket of a session, receives in batches and hands each
//! datagram to the session's [`MediaSession`], which says where it goes.
//!
//! Receiving uses `recvmmsg` (and UDP GRO) through `quinn-udp` into one buffer per worker
//! thread, borrowed only while a batch is handled, never across an `await`; so memory grows with
//! threads, not sessions. A plain stream (a pair of RTP legs, no SRTP, no DTMF to read, no
//! transcoding: [`MediaSession::is_plain`]) stays on a fast path that uses only the session's
//! latches ([`MediaSession::latch_mut`], [`MediaSession::partner`],
//! [`MediaSession::destination`]): it coalesces consecutive datagrams of equal size into one
//! UDP GSO `sendmsg` (an RTP stream's packets usually have one size), and forwards a GRO
//! buffer whole with its segment size. Other streams go through [`MediaSession::receive`] one
//! datagram at a time (`process.rs`). Sends never wait: a full socket buffer drops the packet,
//! as a router would, rather than delay the other streams.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef};
use sambung_media::latch::Verdict;
use sambung_media::session::{Channel, Kind, LegId, MediaSession};
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tracing::debug;

use super::app::AppPort;
use super::ports::BoundSocket;
use super::quality::{LegQuality, PUBLISH_EVERY, Receiver, RoundTrips};
use super::session::{
    Command, Counters, DROPPED, Finish, KeySink, KeyframeSink, RECEIVED, RECEIVED_BYTES, REJECTED, SENT, SENT_BYTES,
};

/// Room for one receive: a datagram, or up to 64 KiB of GRO-coalesced datagrams.
pub(super) const SLOT: usize = 64 * 1024;

/// Largest payload of one GSO send (the sum of its datagrams stays under the IP limit).
const MAX_GSO_BYTES: usize = 60_000;

/// Batches read from one socket before the session's other sockets get their turn.
const BATCHES_PER_TURN: usize = 8;

/// One socket of the session: the channel it carries, and the RTP leg whose counters it adds
/// to (0 for A, 1 for B).
#[derive(Debug)]
pub(super) struct Socket {
    pub(super) socket: BoundSocket,
    pub(super) channel: Channel,
    pub(super) leg: usize,
    /// False while its leg is handed to an application: nothing is read from it.
    pub(super) listen: bool,
    /// The socket this one's packets go out of while its stream is plain (the fast path),
    /// from the session's hooks; refreshed whenever a command changes the session.
    pub(super) fast: Option<usize>,
}

/// The state of a session task.
#[derive(Debug)]
pub(super) struct Relay {
    pub(super) call: Arc<str>,
    /// Leg `l`'s socket for stream `s`, RTP or RTCP, is at `(l * streams + s) * 2 + kind`.
    pub(super) sockets: Vec<Socket>,
    /// The RTP legs with sockets: A, then B.
    pub(super) legs: [LegId; 2],
    pub(super) streams: usize,
    pub(super) session: MediaSession,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) counters: Arc<Counters>,
    pub(super) keys: Option<KeySink>,
    /// Where keyframes are asked of phones by signalling.
    pub(super) keyframes: Option<KeyframeSink>,
    /// The application that leg B is handed to, if any.
    pub(super) app: Option<Box<AppPort>>,
    /// What a held leg hears ([`super::Music`]), when the server has music on hold.
    pub(super) music_source: Option<super::Music>,
    /// The music playing to a held leg: its application leg and where in the music it is.
    pub(super) music: Option<(LegId, usize)>,
    /// The call's recording, while it is recorded (its legs mixed, not relayed).
    pub(super) recording: Option<super::record::Recording>,
    /// The notice that the call is recorded, playing: its application leg in the mix and where
    /// in the notice it is.
    pub(super) notice: Option<(LegId, usize)>,
    /// The browsers legs A and B are handed to, if any (see `webrtc.rs`).
    pub(super) webrtc: [Option<Box<sambung_media::webrtc::WebRtcLeg>>; 2],
    /// The server's DTLS identity, for WebRTC legs.
    pub(super) identity: Option<Arc<sambung_media::webrtc::WebRtcIdentity>>,
    /// The SSRC each leg last sent on each stream (`[leg][stream]`), for the keyframe
    /// requests we send it on a browser's behalf.
    pub(super) sources: [Vec<Option<u32>>; 2],
    /// When a keyframe was last asked of each leg's stream (`[leg][stream]`): at most one
    /// request per [`super::webrtc::KEYFRAME_EVERY`].
    pub(super) keyframe_asked: [Vec<Option<std::time::Instant>>; 2],
    /// Datagrams off the fast path are handled here, one at a time.
    pub(super) scratch: Vec<u8>,
    /// What the session made, on its way out.
    pub(super) out: Vec<u8>,
    /// The sockets found readable in one wake-up.
    ready: Vec<usize>,
    /// Something besides the fast path ran (a command, a tick, a datagram handled one at a
    /// time): the session may have output to send and a new clock. The fast path touches
    /// neither, so a wake-up that only forwarded plain packets skips looking.
    pub(super) busy: bool,
    /// Wakes the task when the session's clock is due ([`MediaSession::poll_timeout`]).
    timer: Pin<Box<Sleep>>,
    deadline: Option<Instant>,
    /// Reception figures of legs A and B (their first stream's RTP).
    pub(super) receivers: [Receiver; 2],
    /// Round trips to legs A and B, from their first stream's RTCP.
    pub(super) round_trips: RoundTrips,
    /// When the figures were last copied to the counters.
    published: Instant,
    /// Dropped after the sockets: returns the ports once the sockets are closed.
    _finish: Finish,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::new());
}

/// Receive slots, their metadata and the GSO send buffer of one worker thread.
pub(super) struct Buffers {
    pub(super) data: Box<[u8]>,
    pub(super) meta: [RecvMeta; BATCH_SIZE],
    send: Vec<u8>,
}

impl Buffers {
    fn new() -> Buffers {
        Buffers {
            data: vec![0; SLOT * BATCH_SIZE].into_boxed_slice(),
            meta: [RecvMeta::default(); BATCH_SIZE],
            send: Vec::with_capacity(MAX_GSO_BYTES),
        }
    }

    /// One `recvmmsg`: how many slots were filled.
    fn recv(&mut self, socket: &BoundSocket) -> io::Result<usize> {
        let mut chunks = self.data.chunks_mut(SLOT);
        let mut slots: [IoSliceMut<'_>; BATCH_SIZE] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        socket.state.recv(UdpSockRef::from(&socket.socket), &mut slots, &mut self.meta)
    }
}

/// The number of datagrams in a received buffer (several with GRO).
fn datagrams(meta: &RecvMeta) -> u64 {
    match meta.stride {
        0 => 1,
        stride => meta.len.div_ceil(stride).max(1) as u64,
    }
}

/// RTP's counters, or RTCP's.
pub(super) fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Rtp => 0,
        Kind::Rtcp => 1,
    }
}

impl Relay {
    /// The task of a session of `streams` streams between RTP legs `legs` (A, B) of `session`;
    /// `sockets[stream * 2 + leg]` is a leg's (RTP, RTCP) pair.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        call: Arc<str>,
        session: MediaSession,
        legs: [LegId; 2],
        sockets: Vec<[BoundSocket; 2]>,
        commands: mpsc::UnboundedReceiver<Command>,
        counters: Arc<Counters>,
        finish: Finish,
        (keys, keyframes): (Option<KeySink>, Option<KeyframeSink>),
        identity: Option<Arc<sambung_media::webrtc::WebRtcIdentity>>,
    ) -> Relay {
        let streams = sockets.len() / 2;
        let mut by_leg: [Vec<Socket>; 2] = [Vec::new(), Vec::new()];
        for (i, pair) in sockets.into_iter().enumerate() {
            let (stream, leg) = (i / 2, i % 2);
            for (socket, kind) in pair.into_iter().zip([Kind::Rtp, Kind::Rtcp]) {
                let channel = Channel { leg: legs[leg], stream, kind };
                by_leg[leg].push(Socket { socket, channel, leg, listen: true, fast: None });
            }
        }
        let [a, b] = by_leg;
        let mut relay = Relay {
            call,
            sockets: a.into_iter().chain(b).collect(),
            legs,
            streams,
            session,
            commands,
            counters,
            keys,
            keyframes,
            app: None,
            music_source: None,
            music: None,
            recording: None,
            notice: None,
            webrtc: [None, None],
            identity,
            sources: [vec![None; streams], vec![None; streams]],
            keyframe_asked: [vec![None; streams], vec![None; streams]],
            scratch: Vec::with_capacity(2048),
            out: Vec::with_capacity(2048),
            ready: Vec::with_capacity(4 * streams),
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            deadline: None,
            receivers: [Receiver::new(std::time::Instant::now()), Receiver::new(std::time::Instant::now())],
            round_trips: RoundTrips::default(),
            published: Instant::now(),
            busy: true,
            _finish: finish,
        };
        relay.refresh_routes();
        relay
    }

    /// Finds, for each socket, where its packets go on the fast path: out of the partner's
    /// socket while the stream is plain ([`MediaSession::is_plain`], [`MediaSession::partner`]).
    pub(super) fn refresh_routes(&mut self) {
        for i in 0..self.sockets.len() {
            let channel = self.sockets[i].channel;
            // A browser's leg is never plain: its packets pass through its WebRTC leg.
            let webrtc = self.webrtc.iter().any(Option::is_some);
            let plain = self.session.is_plain(channel.stream) && !webrtc;
            let to = if plain { self.session.partner(channel) } else { None };
            self.sockets[i].fast = to.and_then(|to| self.socket_of(to));
        }
    }

    /// The socket of `channel`, if it is one of an RTP leg with sockets.
    pub(super) fn socket_of(&self, channel: Channel) -> Option<usize> {
        let leg = self.legs.iter().position(|&l| l == channel.leg)?;
        (channel.stream < self.streams).then(|| (leg * self.streams + channel.stream) * 2 + kind_index(channel.kind))
    }

    /// Runs until the session handle is dropped.
    pub(super) async fn run(mut self) {
        while poll_fn(|cx| self.poll_ready(cx)).await {
            if let Some(due) = self.deadline {
                let now = Instant::now();
                if due <= now {
                    self.tick(now.into_std());
                    self.busy = true;
                }
            }
            BUFFERS.with_borrow_mut(|buffers| {
                for k in 0..self.ready.len() {
                    let i = self.ready[k];
                    self.drain(i, buffers);
                }
            });
            if std::mem::take(&mut self.busy) {
                self.pump();
                self.arm_timer();
            }
            let now = Instant::now();
            if now.saturating_duration_since(self.published) >= PUBLISH_EVERY {
                self.published = now;
                self.publish_quality();
            }
        }
        self.publish_quality();
        debug!(call = %self.call, "media relay stopped");
    }

    fn publish_quality(&self) {
        let leg = |i: usize| LegQuality { rtt_ms: self.round_trips.mean_ms(i), ..self.receivers[i].quality() };
        self.counters.set_quality([leg(0), leg(1)]);
    }

    /// Applies pending commands; ready with the readable sockets in `ready` (or the clock due),
    /// false once the handle is gone.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut commanded = false;
        loop {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(command)) => {
                    self.apply(command);
                    commanded = true;
                }
                Poll::Ready(None) => return Poll::Ready(false),
                Poll::Pending => break,
            }
        }
        if commanded {
            // What a command changed is sent and scheduled before the sockets are read.
            self.pump();
            self.arm_timer();
        }
        self.ready.clear();
        for (i, socket) in self.sockets.iter().enumerate() {
            if socket.listen && socket.socket.socket.poll_recv_ready(cx).is_ready() {
                self.ready.push(i);
            }
        }
        let due = self.deadline.is_some() && self.timer.as_mut().poll(cx).is_ready();
        if self.ready.is_empty() && !due { Poll::Pending } else { Poll::Ready(true) }
    }

    /// Sets the timer to the session's next tick.
    fn arm_timer(&mut self) {
        let next = match (self.session.poll_timeout(), self.webrtc_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(Instant::from_std);
        if next != self.deadline {
            if let Some(at) = next {
                self.timer.as_mut().reset(at);
            }
            self.deadline = next;
        }
    }

    /// Reads and forwards what socket `i` has received, a few batches at most.
    ///
    /// A batch with fewer slots filled than asked for means the socket's queue was empty during
    /// the call: its readiness is cleared then and there (by reporting `WouldBlock` to tokio)
    /// instead of with one more, empty, `recvmmsg`. Every datagram that arrives later raises a
    /// new edge-triggered readiness event, and tokio ignores a clear that an event overtook, so
    /// nothing is left waiting; at one packet per wake-up, this saves a third of the system
    /// calls.
    fn drain(&mut self, i: usize, buffers: &mut Buffers) {
        for _ in 0..BATCHES_PER_TURN {
            let socket = &self.sockets[i].socket;
            let mut filled = 0;
            let result = socket.socket.try_io(Interest::READABLE, || {
                filled = buffers.recv(socket)?;
                if filled < BATCH_SIZE { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
            });
            if filled > 0 {
                self.forward(i, filled, buffers);
            }
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => debug!(call = %self.call, error = %e, "RTP receive error"),
            }
        }
    }

    /// Forwards the `filled` buffers just received on socket `i` to its partner's endpoint, in
    /// batches when the stream is plain; else one by one through the session.
    fn forward(&mut self, i: usize, filled: usize, buffers: &mut Buffers) {
        if self.webrtc[self.sockets[i].leg.min(1)].is_some() {
            return self.webrtc_receive(i, filled, buffers);
        }
        let Some(out) = self.sockets[i].fast else {
            return self.forward_each(i, filled, buffers);
        };
        let (channel, to) = (self.sockets[i].channel, self.sockets[out].channel);
        let (leg, kind, out_leg) = (self.sockets[i].leg, kind_index(channel.kind), self.sockets[out].leg);
        let mut inbound = [0u64; 6];
        let mut outbound = [0u64; 6];
        let destination = self.session.destination(to);
        let now = std::time::Instant::now();
        let mut receiver = (kind == 0 && channel.stream == 0).then(|| &mut self.receivers[leg.min(1)]);
        let mut round_trips = (kind == 1 && channel.stream == 0).then_some(&mut self.round_trips);
        let Some(latch) = self.session.latch_mut(channel) else { return };
        let socket = &self.sockets[out].socket;
        let Buffers { data, meta, send } = buffers;
        let mut run = Run::default();
        for (k, meta) in meta[..filled].iter().enumerate() {
            let count = datagrams(meta);
            match latch.on_packet(meta.addr) {
                Verdict::Reject => {
                    inbound[REJECTED] += count;
                    continue;
                }
                Verdict::Latched { previous } => {
                    debug!(call = %self.call, ?channel, source = %meta.addr, ?previous, "media latched");
                }
                Verdict::Accept => {}
            }
            inbound[RECEIVED] += count;
            inbound[RECEIVED_BYTES] += meta.len as u64;
            if let Some(receiver) = receiver.as_deref_mut() {
                let contents = data.get(k * SLOT..k * SLOT + meta.len).unwrap_or_default();
                let stride = if meta.stride == 0 { meta.len.max(1) } else { meta.stride };
                for datagram in contents.chunks(stride) {
                    receiver.on_datagram(datagram, now);
                }
            } else if let Some(round_trips) = round_trips.as_deref_mut() {
                let contents = data.get(k * SLOT..k * SLOT + meta.len).unwrap_or_default();
                let stride = if meta.stride == 0 { meta.len.max(1) } else { meta.stride };
                for datagram in contents.chunks(stride) {
                    round_trips.on_rtcp(leg, datagram, now);
                }
            }
            let Some(destination) = destination else {
                inbound[DROPPED] += count;
                continue;
            };
            let contents = data.get(k * SLOT..k * SLOT + meta.len).unwrap_or_default();
            let stride = if meta.stride == 0 { meta.len } else { meta.stride };
            if stride < meta.len {
                // A GRO buffer: forward it whole, with the same segment size.
                run.flush(socket, destination, send, &mut inbound, &mut outbound);
                let (packets, bytes) = send_datagrams(socket, destination, contents, stride);
                outbound[SENT] += packets;
                outbound[SENT_BYTES] += bytes;
                inbound[DROPPED] += count.saturating_sub(packets);
                continue;
            }
            let max_segments = socket.state.max_gso_segments().max(1);
            if run.count > 0
                && (meta.len != run.segment
                    || meta.len == 0
                    || run.count >= max_segments
                    || send.len() + meta.len > MAX_GSO_BYTES)
            {
                run.flush(socket, destination, send, &mut inbound, &mut outbound);
            }
            run.segment = meta.len;
            run.count += 1;
            send.extend_from_slice(contents);
        }
        if let Some(destination) = destination {
            run.flush(socket, destination, send, &mut inbound, &mut outbound);
        }
        self.counters.add(leg, kind, &inbound);
        self.counters.add(out_leg, kind, &outbound);
    }
}

/// Datagrams of equal size waiting in the send buffer for one GSO send.
#[derive(Default)]
struct Run {
    segment: usize,
    count: usize,
}

impl Run {
    fn flush(
        &mut self,
        socket: &BoundSocket,
        destination: SocketAddr,
        send: &mut Vec<u8>,
        inbound: &mut [u64; 6],
        outbound: &mut [u64; 6],
    ) {
        if self.count == 0 {
            return;
        }
        let (packets, bytes) = if self.count == 1 {
            send_one(socket, destination, send)
        } else {
            send_datagrams(socket, destination, send, self.segment)
        };
        outbound[SENT] += packets;
        outbound[SENT_BYTES] += bytes;
        inbound[DROPPED] += (self.count as u64).saturating_sub(packets);
        send.clear();
        *self = Run::default();
    }
}

/// Sends one datagram; `(1, len)` when it left.
pub(super) fn send_one(socket: &BoundSocket, destination: SocketAddr, contents: &[u8]) -> (u64, u64) {
    let transmit = Transmit { destination, ecn: None, contents, segment_size: None, src_ip: None };
    match socket.state.try_send(UdpSockRef::from(&socket.socket), &transmit) {
        Ok(()) => (1, contents.len() as u64),
        Err(_) => (0, 0),
    }
}

/// Sends `contents`, datagrams of `segment` bytes each (the last may be shorter), with as few
/// GSO sends as the socket allows, one by one if the device refuses GSO. Returns the datagrams
/// and bytes that left.
fn send_datagrams(socket: &BoundSocket, destination: SocketAddr, contents: &[u8], segment: usize) -> (u64, u64) {
    let segment = segment.max(1);
    let per_send = socket.state.max_gso_segments().max(1);
    let mut sent = (0, 0);
    for chunk in contents.chunks(segment * per_send) {
        let count = chunk.len().div_ceil(segment);
        if count == 1 {
            let (packets, bytes) = send_one(socket, destination, chunk);
            sent = (sent.0 + packets, sent.1 + bytes);
            continue;
        }
        let transmit = Transmit { destination, ecn: None, contents: chunk, segment_size: Some(segment), src_ip: None };
        match socket.state.try_send(UdpSockRef::from(&socket.socket), &transmit) {
            Ok(()) => sent = (sent.0 + count as u64, sent.1 + chunk.len() as u64),
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                // The device refused GSO (quinn-udp turns it off for the socket): one by one.
                for datagram in chunk.chunks(segment) {
                    let (packets, bytes) = send_one(socket, destination, datagram);
                    sent = (sent.0 + packets, sent.1 + bytes);
                }
            }
            Err(_) => {}
        }
    }
    sent
}
