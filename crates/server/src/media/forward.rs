//! The session task: waits on every socket of a session, receives in batches and forwards each
//! leg's packets out of the other leg's socket of the same kind (RTP or RTCP) and stream.
//!
//! Receiving uses `recvmmsg` (and UDP GRO) through `quinn-udp` into one buffer per worker
//! thread, borrowed only while a batch is handled, never across an `await`; so memory grows with
//! threads, not sessions. Sending coalesces consecutive datagrams of equal size into one UDP GSO
//! `sendmsg` (an RTP stream's packets usually have one size), and forwards a GRO buffer whole
//! with its segment size. Sends never wait: a full socket buffer drops the packet, as a router
//! would, rather than delay the other streams.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef};
use sambung_media::latch::{Latch, Verdict};
use tokio::io::Interest;
use tokio::sync::mpsc;
use tracing::debug;

use super::ports::BoundSocket;
use super::process::{Inbound, StreamProc};
use super::session::{
    Counters, DROPPED, Finish, KeySink, Leg, Peer, RECEIVED, RECEIVED_BYTES, REJECTED, SENT, SENT_BYTES, StreamConfig,
};

/// The transcoders' step.
const TICK: Duration = Duration::from_millis(20);

/// Room for one receive: a datagram, or up to 64 KiB of GRO-coalesced datagrams.
const SLOT: usize = 64 * 1024;

/// Largest payload of one GSO send (the sum of its datagrams stays under the IP limit).
const MAX_GSO_BYTES: usize = 60_000;

/// Batches read from one socket before the session's other sockets get their turn.
const BATCHES_PER_TURN: usize = 8;

/// What the handle tells the task.
#[derive(Debug)]
pub(super) enum Command {
    SetPeer { leg: Leg, stream: usize, peer: Peer },
    Configure { stream: usize, config: Box<StreamConfig> },
}

/// One socket of the session and the latch of the endpoint it faces.
#[derive(Debug)]
struct Channel {
    socket: BoundSocket,
    latch: Latch,
}

/// The state of a session task. Channel `i` is stream `i / 4`, leg `(i / 2) % 2`, RTP when
/// `i` is even and RTCP when odd; its partner on the other leg is `i ^ 2`.
#[derive(Debug)]
pub(super) struct Relay {
    call: Arc<str>,
    channels: Vec<Channel>,
    commands: mpsc::UnboundedReceiver<Command>,
    counters: Arc<Counters>,
    /// Per stream: what is done to its packets besides relaying.
    streams: Vec<StreamProc>,
    keys: Option<KeySink>,
    /// Packets of streams off the fast path are handled here, one at a time.
    scratch: Vec<u8>,
    /// Runs while some stream is transcoded.
    ticker: Option<tokio::time::Interval>,
    /// Dropped after the channels: returns the ports once the sockets are closed.
    _finish: Finish,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::new());
}

/// Receive slots, their metadata and the GSO send buffer of one worker thread.
struct Buffers {
    data: Box<[u8]>,
    meta: [RecvMeta; BATCH_SIZE],
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

impl Relay {
    pub(super) fn new(
        call: Arc<str>,
        sockets: Vec<[BoundSocket; 2]>,
        commands: mpsc::UnboundedReceiver<Command>,
        counters: Arc<Counters>,
        finish: Finish,
        keys: Option<KeySink>,
    ) -> Relay {
        let streams = (0..sockets.len() / 2).map(|_| StreamProc::default()).collect();
        let channels = sockets.into_iter().flatten().map(|socket| Channel { socket, latch: Latch::new() }).collect();
        Relay {
            call,
            channels,
            commands,
            counters,
            streams,
            keys,
            scratch: Vec::with_capacity(2048),
            ticker: None,
            _finish: finish,
        }
    }

    /// Runs until the session handle is dropped.
    pub(super) async fn run(mut self) {
        while let Some((ready, tick)) = poll_fn(|cx| self.poll_ready(cx)).await {
            if tick {
                self.tick();
            }
            BUFFERS.with_borrow_mut(|buffers| {
                for i in 0..self.channels.len() {
                    if ready & (1 << i) != 0 {
                        self.drain(i, buffers);
                    }
                }
            });
        }
        debug!(call = %self.call, "media relay stopped");
    }

    /// Applies pending commands; ready with the set of readable channels, or `None` once the
    /// handle is gone.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Option<(u64, bool)>> {
        loop {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(command)) => self.apply(command),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        let mut ready = 0u64;
        for (i, channel) in self.channels.iter().enumerate() {
            if channel.socket.socket.poll_recv_ready(cx).is_ready() {
                ready |= 1 << i;
            }
        }
        let tick = self.ticker.as_mut().is_some_and(|t| t.poll_tick(cx).is_ready());
        if ready == 0 && !tick { Poll::Pending } else { Poll::Ready(Some((ready, tick))) }
    }

    /// Runs the transcoders' 20 ms step and sends what they produce.
    fn tick(&mut self) {
        let now = Instant::now();
        for (stream, proc) in self.streams.iter_mut().enumerate() {
            if !proc.ticks() {
                continue;
            }
            let channels = &self.channels;
            let counters = &self.counters;
            proc.tick(now, &mut |leg: Leg, packet: &[u8]| {
                let out = stream * 4 + leg.index() * 2;
                let Some(destination) = channels[out].latch.destination() else { return };
                let (packets, bytes) = send_one(&channels[out].socket, destination, packet);
                counters.add(leg.index(), 0, &[0, 0, packets, bytes, 0, 0]);
            });
        }
    }

    fn apply(&mut self, command: Command) {
        let (leg, stream, peer) = match command {
            Command::SetPeer { leg, stream, peer } => (leg, stream, peer),
            Command::Configure { stream, config } => {
                if let Some(proc) = self.streams.get_mut(stream) {
                    *proc = StreamProc::new(&self.call, &config, std::mem::take(proc));
                    debug!(call = %self.call, stream, transcode = config.transcode, "media stream configured");
                }
                let ticks = self.streams.iter().any(StreamProc::ticks);
                if ticks && self.ticker.is_none() {
                    let mut ticker = tokio::time::interval(TICK);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    self.ticker = Some(ticker);
                } else if !ticks {
                    self.ticker = None;
                }
                return;
            }
        };
        let rtcp = peer.rtcp.or(peer.rtp.map(|rtp| SocketAddr::new(rtp.ip(), rtp.port().saturating_add(1))));
        let base = stream * 4 + leg.index() * 2;
        if let [rtp_channel, rtcp_channel] = &mut self.channels[base..base + 2] {
            rtp_channel.latch.set_peer(peer.rtp, peer.signalling_ip);
            rtcp_channel.latch.set_peer(rtcp, peer.signalling_ip);
        }
        let signalling = peer.signalling_ip;
        debug!(call = %self.call, %leg, stream, rtp = ?peer.rtp, ?rtcp, ?signalling, "media peer set");
    }

    /// Reads and forwards what channel `i` has received, a few batches at most.
    ///
    /// A batch with fewer slots filled than asked for means the socket's queue was empty during
    /// the call: its readiness is cleared then and there (by reporting `WouldBlock` to tokio)
    /// instead of with one more, empty, `recvmmsg`. Every datagram that arrives later raises a
    /// new edge-triggered readiness event, and tokio ignores a clear that an event overtook, so
    /// nothing is left waiting; at one packet per wake-up, this saves a third of the system
    /// calls.
    fn drain(&mut self, i: usize, buffers: &mut Buffers) {
        for _ in 0..BATCHES_PER_TURN {
            let socket = &self.channels[i].socket;
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

    /// Forwards the `filled` buffers just received on channel `i` to its partner's endpoint.
    fn forward(&mut self, i: usize, filled: usize, buffers: &mut Buffers) {
        if !self.streams[i / 4].is_plain() {
            return self.forward_each(i, filled, buffers);
        }
        let out = i ^ 2;
        let (leg, kind) = ((i >> 1) & 1, i & 1);
        let mut inbound = [0u64; 6];
        let mut outbound = [0u64; 6];
        let destination = self.channels[out].latch.destination();
        let Buffers { data, meta, send } = buffers;
        let mut run = Run::default();
        for (k, meta) in meta[..filled].iter().enumerate() {
            let count = datagrams(meta);
            match self.channels[i].latch.on_packet(meta.addr) {
                Verdict::Reject => {
                    inbound[REJECTED] += count;
                    continue;
                }
                Verdict::Latched { previous } => {
                    debug!(call = %self.call, channel = i, source = %meta.addr, ?previous, "media latched");
                }
                Verdict::Accept => {}
            }
            inbound[RECEIVED] += count;
            inbound[RECEIVED_BYTES] += meta.len as u64;
            let Some(destination) = destination else {
                inbound[DROPPED] += count;
                continue;
            };
            let contents = data.get(k * SLOT..k * SLOT + meta.len).unwrap_or_default();
            let socket = &self.channels[out].socket;
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
            run.flush(&self.channels[out].socket, destination, send, &mut inbound, &mut outbound);
        }
        self.counters.add(leg, kind, &inbound);
        self.counters.add(leg ^ 1, kind, &outbound);
    }
}

impl Relay {
    /// Handles the `filled` buffers just received on channel `i` one datagram at a time,
    /// through the stream's processing ([`StreamProc::inbound`]).
    fn forward_each(&mut self, i: usize, filled: usize, buffers: &mut Buffers) {
        let out = i ^ 2;
        let (stream, leg, kind) = (i / 4, (i >> 1) & 1, i & 1);
        let from = if leg == 0 { Leg::A } else { Leg::B };
        let mut inbound = [0u64; 6];
        let mut outbound = [0u64; 6];
        let destination = self.channels[out].latch.destination();
        let now = Instant::now();
        // With SRTP, a new source is latched to only once one of its packets authenticates: an
        // allowed IP (a NAT shared with others) is not enough to move the leg's media.
        let authenticated_only = self.streams[stream].authenticates(from);
        for (k, meta) in buffers.meta[..filled].iter().enumerate() {
            let mut latch_on_success = false;
            if authenticated_only {
                let latch = &self.channels[i].latch;
                let source = SocketAddr::new(meta.addr.ip().to_canonical(), meta.addr.port());
                if latch.latched() != Some(source) && latch.latched() != Some(meta.addr) {
                    if !latch.allows(meta.addr.ip()) {
                        inbound[REJECTED] += datagrams(meta);
                        continue;
                    }
                    latch_on_success = true;
                }
            } else {
                match self.channels[i].latch.on_packet(meta.addr) {
                    Verdict::Reject => {
                        inbound[REJECTED] += datagrams(meta);
                        continue;
                    }
                    Verdict::Latched { previous } => {
                        debug!(call = %self.call, channel = i, source = %meta.addr, ?previous, "media latched");
                    }
                    Verdict::Accept => {}
                }
            }
            let contents = buffers.data.get(k * SLOT..k * SLOT + meta.len).unwrap_or_default();
            let stride = if meta.stride == 0 { meta.len.max(1) } else { meta.stride };
            for datagram in contents.chunks(stride) {
                inbound[RECEIVED] += 1;
                inbound[RECEIVED_BYTES] += datagram.len() as u64;
                self.scratch.clear();
                self.scratch.extend_from_slice(datagram);
                let verdict = self.streams[stream].inbound(
                    now,
                    &self.call,
                    from,
                    kind == 1,
                    &mut self.scratch,
                    self.keys.as_ref(),
                );
                if latch_on_success && verdict != Inbound::Dropped {
                    latch_on_success = false;
                    if let Verdict::Latched { previous } = self.channels[i].latch.on_packet(meta.addr) {
                        debug!(call = %self.call, channel = i, source = %meta.addr, ?previous, "media latched (authenticated)");
                    }
                }
                match (verdict, destination) {
                    (Inbound::Forward, Some(destination)) => {
                        let (packets, bytes) = send_one(&self.channels[out].socket, destination, &self.scratch);
                        outbound[SENT] += packets;
                        outbound[SENT_BYTES] += bytes;
                        inbound[DROPPED] += 1 - packets;
                    }
                    (Inbound::Forward, None) | (Inbound::Dropped, _) => inbound[DROPPED] += 1,
                    (Inbound::Consumed, _) => {}
                }
            }
        }
        self.counters.add(leg, kind, &inbound);
        self.counters.add(leg ^ 1, kind, &outbound);
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
fn send_one(socket: &BoundSocket, destination: SocketAddr, contents: &[u8]) -> (u64, u64) {
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
