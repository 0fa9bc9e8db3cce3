//! Adaptive jitter buffer for received RTP audio.
//!
//! Packets go in as they arrive ([`JitterBuffer::push`]); the media engine takes them out in
//! order, one packet's worth of audio at a time, when it needs audio ([`JitterBuffer::pop`]).
//! Between the two, the buffer holds each packet for a *playout delay* long enough to absorb the
//! variation in network transit (jitter) and to put reordered packets back in order.
//!
//! The delay adapts:
//! - it is the 99th percentile of recent transit-time deviations (how much later than the fastest
//!   recent packet each packet came), held up by a decaying peak, between
//!   [`JitterConfig::min_delay`] and [`JitterConfig::max_delay`];
//! - it grows at once when a packet comes later than the delay allows: while the packet is awaited
//!   the engine conceals ([`Playout::Lost`] with no `next`) and the stream is played that much later;
//!   when the awaited packets turn out to be lost, their audio is left out until the delay is back
//!   at the target;
//! - it shrinks only in silence: at a gap in the timestamps (DTX, the start of a talk spurt, RTP
//!   marker bit) the next talk spurt starts earlier; a stream that never pauses (G.711 without
//!   voice activity detection) drops one frame at most every 2 seconds while the delay stays more
//!   than a frame above the target.
//!
//! Packets are keyed by extended (wrap-free) sequence number and timestamp. Packets that come after
//! their turn, duplicates and packets that do not fit are counted ([`JitterStats`]) and dropped. A
//! large jump in sequence number or in timestamp against arrival time (the sender restarted, or a
//! new SSRC came in) resets the buffer once a second packet confirms the new numbering (RFC 3550
//! §A.1). The buffer holds at most [`JitterConfig::capacity`] packets in slots whose payload buffers
//! are reused: once they have grown to the stream's packet size, nothing is allocated per packet.
//!
//! # Driving it from the media engine
//!
//! The engine keeps a FIFO of decoded PCM and, every 20 ms, pops until the FIFO holds a tick's
//! worth. Packets may carry 10 to 60 ms of audio; the buffer learns the duration from timestamps.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sambung_media::codec::{self, CodecKind};
//! use sambung_media::jitter::{JitterBuffer, JitterConfig, Playout};
//!
//! let kind = CodecKind::Pcmu;
//! let mut buffer = JitterBuffer::new(JitterConfig::new(kind.rtp_clock_rate()));
//! let mut decoder = codec::decoder(kind).unwrap();
//! let tick = kind.frame_samples(20); // PCM samples the engine plays per 20 ms tick
//! let mut fifo: Vec<i16> = Vec::new(); // decoded PCM not played yet
//! let mut played = Vec::new();
//! let start = Instant::now();
//!
//! for n in 0u16..20 {
//!     let now = start + Duration::from_millis(20 * u64::from(n));
//!     // The socket side pushes each RTP packet of the leg as it arrives (here: one every 20 ms) ...
//!     buffer.push(now, 4000 + n, 160 * u32::from(n), n == 0, &[0x80; 160]);
//!
//!     // ... and the 20 ms tick pulls until it has a tick's worth of audio.
//!     while fifo.len() < tick {
//!         // PCM samples at the codec's rate for `duration` RTP timestamp units.
//!         let samples = |duration: u32| duration as usize * kind.sample_rate() as usize / kind.rtp_clock_rate() as usize;
//!         match buffer.pop(now) {
//!             Some(Playout::Packet { payload, duration, .. }) => {
//!                 if decoder.decode(payload, &mut fifo).is_err() {
//!                     decoder.conceal(samples(duration), &mut fifo).unwrap();
//!                 }
//!             }
//!             // Lost, and the following packet is here: Opus rebuilds the loss from its FEC.
//!             Some(Playout::Lost { duration, next: Some(next) }) => {
//!                 decoder.recover(next, samples(duration), &mut fifo).unwrap();
//!             }
//!             // Lost, or late and awaited: conceal.
//!             Some(Playout::Lost { duration, next: None }) => {
//!                 decoder.conceal(samples(duration), &mut fifo).unwrap();
//!             }
//!             // Nothing is due (before the start, in a silence gap): silence or comfort noise.
//!             None => fifo.resize(tick, 0),
//!         }
//!     }
//!     // One tick of PCM: resample to 48 kHz, then to the other leg's encoder or into the mixer.
//!     played.extend(fifo.drain(..tick));
//! }
//! // Playout started once the initial delay (40 ms) had passed: 2 ticks of silence, then audio.
//! assert!(played[..2 * tick].iter().all(|&s| s == 0));
//! assert!(played[2 * tick..].iter().all(|&s| s != 0));
//! assert_eq!(buffer.stats().lost, 0);
//! ```

mod estimate;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crate::rtp::RtpPacket;
use crate::rtp::stats::{MAX_DROPOUT, MAX_MISORDER};
use estimate::{BaseTransit, DeviationHistogram, PeakHold};

/// The percentile of transit deviations that the target delay covers.
const QUANTILE: f64 = 0.99;
/// Longest packet duration believed when learning it from timestamps (Opus allows 120 ms).
const MAX_FRAME_MS: i64 = 120;
/// A stream that never pauses drops a frame to shrink the delay only after the delay has been
/// more than a frame (plus this margin) above the target for [`SKIP_PATIENCE_US`].
const SKIP_MARGIN_US: i64 = 10_000;
const SKIP_PATIENCE_US: i64 = 2_000_000;
/// A packet whose transit differs from the recent fastest by more than this (or 4 × the maximum
/// delay, if larger) breaks the timeline: a new timestamp origin, confirmed by a second packet.
const RESTART_SKEW_US: i64 = 2_000_000;
/// Sequence numbers remembered behind the playout point to tell duplicates from late packets.
const HISTORY: i64 = 64;

/// Settings of a [`JitterBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the stream (8000 for G.711 and G.722, 48000 for Opus).
    pub clock_rate: u32,
    /// The delay never goes below this.
    pub min_delay: Duration,
    /// The delay never goes above this; packets later than it are dropped.
    pub max_delay: Duration,
    /// The delay before any jitter has been measured; it decays towards what the network needs.
    pub initial_delay: Duration,
    /// Most packets held at once.
    pub capacity: usize,
}

impl JitterConfig {
    /// Defaults for a stream at `clock_rate`: 20 to 200 ms, starting at 40 ms, 64 packets.
    pub fn new(clock_rate: u32) -> JitterConfig {
        JitterConfig {
            clock_rate,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            initial_delay: Duration::from_millis(40),
            capacity: 64,
        }
    }

    /// For audio an application inside the server hears (voicemail records it, a menu listens
    /// for speech): 120 to 400 ms, starting at 160 ms. Nobody talks back to it in real time, so
    /// a longer delay costs nothing, and it rides out what the real-time defaults conceal: a
    /// busy machine that runs the session or the sender late by 50 to 100 ms. Measured with the
    /// voicemail test (baresip leaving a message, PESQ of the recording against the speech) and
    /// three busy loops on the two cores: 3.20 and 3.22 with [`Self::new`], 3.91 (as on an idle
    /// machine) with these.
    pub fn latency_tolerant(clock_rate: u32) -> JitterConfig {
        JitterConfig {
            clock_rate,
            min_delay: Duration::from_millis(120),
            max_delay: Duration::from_millis(400),
            initial_delay: Duration::from_millis(160),
            capacity: 64,
        }
    }
}

/// What to play next, from [`JitterBuffer::pop`].
///
/// Durations are in RTP timestamp units: the PCM sample count at the codec's rate is
/// `duration * sample_rate / clock_rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Decode this packet.
    Packet {
        payload: &'a [u8],
        /// Its RTP sequence number.
        seq: u16,
        /// Its RTP timestamp.
        timestamp: u32,
        /// Its RTP marker bit (start of a talk spurt).
        marker: bool,
        /// The audio it carries, as learned from the stream's timestamps.
        duration: u32,
    },
    /// No packet for this stretch of audio: conceal `duration` (the packet is lost, or it is late
    /// and the delay grows while it is awaited). When the packet after the lost one is already
    /// here, `next` is its payload: Opus rebuilds the lost audio from its in-band FEC
    /// ([`crate::codec::Decoder::recover`]), and `next` itself comes as the next [`Playout::Packet`].
    Lost { duration: u32, next: Option<&'a [u8]> },
}

impl Playout<'_> {
    /// The audio it stands for, in RTP timestamp units.
    pub fn duration(&self) -> u32 {
        match *self {
            Playout::Packet { duration, .. } | Playout::Lost { duration, .. } => duration,
        }
    }
}

/// Counters and the current delay of a [`JitterBuffer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub received: u64,
    /// Packets given out to decode.
    pub played: u64,
    /// Packets whose turn came while they were missing (reported as [`Playout::Lost`], or skipped
    /// over after a silence or an overflow).
    pub lost: u64,
    /// Packets that came after their turn (or later than the maximum delay) and were dropped; one
    /// whose turn passed while it was missing was counted in `lost` then.
    pub late: u64,
    /// Packets received twice; the copies were dropped.
    pub duplicates: u64,
    /// Packets dropped because the buffer was full (the engine did not pop).
    pub overflow: u64,
    /// Frames concealed while a late packet was awaited: each one made the delay a frame longer.
    pub stretched: u64,
    /// Frames dropped to shrink the delay of a stream that never pauses.
    pub skipped: u64,
    /// Resets: sender restarts, new SSRCs, [`JitterBuffer::reset`] calls.
    pub resets: u64,
    /// Packets that looked like a restart that no second packet confirmed.
    pub discarded: u64,
    /// Packets held now.
    pub buffered: usize,
    /// How long after its earliest possible arrival audio is played now.
    pub delay: Duration,
    /// The delay the buffer is steering towards.
    pub target_delay: Duration,
    /// RFC 3550 §6.4.1 interarrival jitter.
    pub jitter: Duration,
}

#[derive(Debug, Default)]
struct Slot {
    filled: bool,
    /// Extended sequence number and timestamp.
    seq: i64,
    ts: i64,
    raw_seq: u16,
    raw_ts: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// The packet with the highest sequence number so far: the reference for extending numbers.
#[derive(Clone, Copy, Debug)]
struct Reference {
    raw_seq: u16,
    seq: i64,
    raw_ts: u32,
    ts: i64,
}

#[derive(Clone, Copy, Debug)]
struct Probation {
    seq: u16,
    ts: u32,
    marker: bool,
    arrival: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing played yet: waiting until the first packet has been held for the target delay.
    Idle,
    /// Playing a talk spurt: each pop gives the next sequence number.
    Playing,
    /// The packets stopped coming for longer than the maximum delay: the next one starts anew.
    Dry,
}

/// An adaptive jitter buffer for one RTP audio stream. See the [module docs](self).
#[derive(Debug)]
pub struct JitterBuffer {
    rate: i64,
    min_us: i64,
    max_us: i64,

    slots: Box<[Slot]>,
    buffered: usize,
    epoch: Option<Instant>,
    last_now: i64,
    reference: Option<Reference>,
    ssrc: Option<u32>,

    phase: Phase,
    /// The next sequence number to play (while idle: the lowest one held).
    next_seq: i64,
    /// The timestamp where the audio played so far ends.
    next_ts: i64,
    /// Local time (µs since `epoch`) minus timestamp (µs) of the audio being played.
    play_offset: i64,
    /// Bit `n` set: sequence number `next_seq - 1 - n` was received before its turn passed.
    history: u64,
    /// Packet duration in timestamp units, learned from consecutive packets.
    frame: i64,
    frame_learned: bool,
    frame_candidate: i64,
    excess_since: Option<i64>,

    base: BaseTransit,
    histogram: DeviationHistogram,
    peak: PeakHold,
    jitter_us: f64,
    last_transit: Option<i64>,

    probation: Option<Probation>,
    probation_payload: Vec<u8>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for one stream. Out-of-range settings are brought into range: a clock rate of at
    /// least 1, a capacity of 4 to 4096 packets, `min_delay ≤ initial_delay ≤ max_delay`.
    pub fn new(config: JitterConfig) -> JitterBuffer {
        let rate = i64::from(config.clock_rate.max(1));
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4).min(i64::MAX / 4);
        let min_us = micros(config.min_delay);
        let max_us = micros(config.max_delay).max(min_us);
        let initial_us = micros(config.initial_delay).clamp(min_us, max_us);
        let capacity = config.capacity.clamp(4, 4096);
        JitterBuffer {
            rate,
            min_us,
            max_us,
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            buffered: 0,
            epoch: None,
            last_now: 0,
            reference: None,
            ssrc: None,
            phase: Phase::Idle,
            next_seq: 0,
            next_ts: 0,
            play_offset: 0,
            history: 0,
            frame: (rate / 50).max(1),
            frame_learned: false,
            frame_candidate: 0,
            excess_since: None,
            base: BaseTransit::new(),
            histogram: DeviationHistogram::new(max_us),
            peak: PeakHold::new(initial_us, 0),
            jitter_us: 0.0,
            last_transit: None,
            probation: None,
            probation_payload: Vec::new(),
            stats: JitterStats::default(),
        }
    }

    /// Takes in one received packet of the stream, `now` being its arrival time.
    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) {
        let now = self.clock(now);
        self.stats.received += 1;
        let Some(reference) = self.reference else {
            self.begin(seq, timestamp);
            self.accept(now, 0, 0, (seq, timestamp, marker), payload);
            return;
        };
        let ext_seq = reference.seq + i64::from(seq.wrapping_sub(reference.raw_seq) as i16);
        let ext_ts = reference.ts + i64::from(timestamp.wrapping_sub(reference.raw_ts) as i32);
        let jump = ext_seq - reference.seq;
        let transit = now - self.ts_us(ext_ts);
        let skew_limit = RESTART_SKEW_US.max(4 * self.max_us);
        let skewed = self.base.get().is_some_and(|base| (transit - base).abs() > skew_limit);
        if jump > i64::from(MAX_DROPOUT) || jump < -i64::from(MAX_MISORDER) || skewed {
            self.on_discontinuity(now, (seq, timestamp, marker), payload);
            return;
        }
        if self.probation.take().is_some() {
            self.stats.discarded += 1;
        }
        self.accept(now, ext_seq, ext_ts, (seq, timestamp, marker), payload);
    }

    /// [`Self::push`] for a parsed packet; a new SSRC resets the buffer at once.
    pub fn push_rtp(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        if self.ssrc.is_some_and(|ssrc| ssrc != packet.ssrc()) {
            self.reset();
        }
        self.ssrc = Some(packet.ssrc());
        self.push(now, packet.sequence(), packet.timestamp(), packet.marker(), packet.payload());
    }

    /// What to play next, when the engine needs audio at `now`; `None` when nothing is due yet
    /// (before the start, or in a silence gap): the engine plays silence or comfort noise for
    /// the rest of its tick and asks again at the next one.
    pub fn pop(&mut self, now: Instant) -> Option<Playout<'_>> {
        let now = self.clock(now);
        match self.phase {
            Phase::Idle | Phase::Dry => self.start_talkspurt(now),
            Phase::Playing => self.continue_playing(now),
        }
    }

    /// Forgets the stream (packets held, numbering, playout point) but keeps what it learned
    /// about the network and the counters. For a new source on the same leg.
    pub fn reset(&mut self) {
        for slot in self.slots.iter_mut() {
            slot.filled = false;
        }
        self.buffered = 0;
        self.reference = None;
        self.ssrc = None;
        self.phase = Phase::Idle;
        self.history = 0;
        self.frame_learned = false;
        self.excess_since = None;
        self.base = BaseTransit::new();
        self.last_transit = None;
        self.probation = None;
        self.stats.resets += 1;
    }

    /// Counters and delays.
    pub fn stats(&self) -> JitterStats {
        let target = self.target_at(self.last_now);
        let delay = match (self.phase, self.base.get()) {
            (Phase::Playing, Some(base)) => (self.play_offset - base).max(0),
            _ => target,
        };
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        JitterStats {
            buffered: self.buffered,
            delay: micros(delay),
            target_delay: micros(target),
            jitter: micros(self.jitter_us as i64),
            ..self.stats
        }
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.buffered
    }

    /// True when no packet is held.
    pub fn is_empty(&self) -> bool {
        self.buffered == 0
    }

    /// The packet duration learned from the stream, in RTP timestamp units (20 ms until learned).
    pub fn frame_duration(&self) -> u32 {
        u32::try_from(self.frame).unwrap_or(u32::MAX)
    }

    fn clock(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        let us = i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX / 4);
        self.last_now = self.last_now.max(us);
        us
    }

    /// Timestamp units to microseconds.
    fn ts_us(&self, units: i64) -> i64 {
        (i128::from(units) * 1_000_000 / i128::from(self.rate)) as i64
    }

    fn index(&self, seq: i64) -> usize {
        seq.rem_euclid(self.slots.len() as i64) as usize
    }

    fn capacity(&self) -> i64 {
        self.slots.len() as i64
    }

    /// The target delay at `now`, µs.
    fn target_at(&self, now: i64) -> i64 {
        let headroom = self.histogram.bin_width_us();
        let percentile = self.histogram.quantile(QUANTILE).map_or(0, |q| q + headroom);
        percentile.max(self.peak.get(now)).clamp(self.min_us, self.max_us)
    }

    /// Starts numbering a new stream at this packet.
    fn begin(&mut self, seq: u16, timestamp: u32) {
        self.reference = Some(Reference { raw_seq: seq, seq: 0, raw_ts: timestamp, ts: 0 });
        self.phase = Phase::Idle;
        self.next_seq = 0;
    }

    /// A packet far off the stream's numbering: a restart once the next packet follows it.
    fn on_discontinuity(&mut self, now: i64, (seq, timestamp, marker): (u16, u32, bool), payload: &[u8]) {
        if let Some(first) = self.probation.take() {
            let step = timestamp.wrapping_sub(first.ts);
            if seq == first.seq.wrapping_add(1) && i64::from(step) <= self.rate {
                let ssrc = self.ssrc;
                self.reset();
                self.ssrc = ssrc;
                self.begin(first.seq, first.ts);
                let held = std::mem::take(&mut self.probation_payload);
                self.accept(first.arrival, 0, 0, (first.seq, first.ts, first.marker), &held);
                self.probation_payload = held;
                self.accept(now, 1, i64::from(step), (seq, timestamp, marker), payload);
                return;
            }
            self.stats.discarded += 1;
        }
        self.probation = Some(Probation { seq, ts: timestamp, marker, arrival: now });
        self.probation_payload.clear();
        self.probation_payload.extend_from_slice(payload);
    }

    /// Files a packet of the current stream under its extended numbers.
    fn accept(&mut self, now: i64, seq: i64, ts: i64, (raw_seq, raw_ts, marker): (u16, u32, bool), payload: &[u8]) {
        if let Some(reference) = self.reference
            && seq > reference.seq
        {
            if seq == reference.seq + 1 && !marker {
                self.learn_frame(ts - reference.ts);
            }
            self.reference = Some(Reference { raw_seq, seq, raw_ts, ts });
        }
        let capacity = self.capacity();
        if self.phase == Phase::Idle && self.buffered == 0 {
            self.next_seq = seq;
        }
        if seq < self.next_seq {
            let newest = self.reference.map_or(seq, |r| r.seq);
            if self.phase == Phase::Idle && seq > newest - capacity {
                // Reordered before playout started: the lowest packet held moves down.
                self.next_seq = seq;
            } else {
                let age = self.next_seq - 1 - seq;
                if age < HISTORY {
                    if self.history >> age & 1 == 1 {
                        self.stats.duplicates += 1;
                        return;
                    }
                    self.history |= 1 << age;
                }
                self.stats.late += 1;
                self.observe(now, ts);
                return;
            }
        }
        if seq >= self.next_seq + capacity {
            self.make_room(seq - capacity + 1);
        }
        let index = self.index(seq);
        let slot = &mut self.slots[index];
        if slot.filled {
            debug_assert_eq!(slot.seq, seq, "one sequence number per slot inside the window");
            self.stats.duplicates += 1;
            return;
        }
        slot.filled = true;
        slot.seq = seq;
        slot.ts = ts;
        slot.raw_seq = raw_seq;
        slot.raw_ts = raw_ts;
        slot.marker = marker;
        slot.payload.clear();
        slot.payload.extend_from_slice(payload);
        self.buffered += 1;
        self.observe(now, ts);
    }

    /// Learns the packet duration from two consecutive packets; a new value must be seen twice
    /// in a row to replace a learned one.
    fn learn_frame(&mut self, step: i64) {
        if step <= 0 || step > self.rate * MAX_FRAME_MS / 1000 {
            return;
        }
        if !self.frame_learned || step == self.frame_candidate {
            self.frame = step;
            self.frame_learned = true;
        }
        self.frame_candidate = step;
    }

    /// Feeds a packet's transit time to the delay estimate.
    fn observe(&mut self, now: i64, ts: i64) {
        let transit = now - self.ts_us(ts);
        if let Some(last) = self.last_transit {
            let difference = (transit - last).abs() as f64;
            self.jitter_us += (difference - self.jitter_us) / 16.0;
        }
        self.last_transit = Some(transit);
        self.base.update(now, transit);
        let deviation = transit - self.base.get().unwrap_or(transit);
        if deviation > self.max_us {
            // An outlier that no allowed delay would have saved: it must not raise the delay.
            return;
        }
        self.histogram.add(deviation);
        // Later than the target: the delay grows at once instead of waiting for the percentile.
        let wanted = deviation + self.histogram.bin_width_us();
        if wanted > self.target_at(now) {
            self.peak.raise(wanted, now);
        }
    }

    /// Moves the window's lower end up to `floor`, dropping what is below it.
    fn make_room(&mut self, floor: i64) {
        let count = floor - self.next_seq;
        let mut dropped = 0;
        for seq in self.next_seq..self.next_seq + count.min(self.capacity()) {
            let index = self.index(seq);
            let slot = &mut self.slots[index];
            let held = slot.filled;
            if held {
                slot.filled = false;
                self.buffered -= 1;
                dropped += 1;
            }
            self.history = self.history << 1 | u64::from(held);
        }
        if count > self.capacity() {
            self.history = 0;
        }
        self.stats.overflow += dropped;
        if self.phase != Phase::Idle {
            self.stats.lost += u64::try_from(count).unwrap_or(0) - dropped;
            self.next_ts += count * self.frame;
        }
        self.next_seq = floor;
    }

    /// The lowest sequence number held from `from` on.
    fn first_held_from(&self, from: i64) -> Option<i64> {
        if self.buffered == 0 {
            return None;
        }
        (from.max(self.next_seq)..self.next_seq + self.capacity()).find(|&seq| {
            let slot = &self.slots[self.index(seq)];
            slot.filled && slot.seq == seq
        })
    }

    /// Moves the playout point over missing packets up to `seq`.
    fn skip_missing_to(&mut self, seq: i64) {
        while self.next_seq < seq {
            if self.phase == Phase::Dry {
                self.stats.lost += 1;
            }
            self.history <<= 1;
            self.next_seq += 1;
        }
    }

    /// Idle or dry: the first packet held plays once it has waited for the target delay.
    fn start_talkspurt(&mut self, now: i64) -> Option<Playout<'_>> {
        let base = self.base.get()?;
        let target = self.target_at(now);
        loop {
            let seq = self.first_held_from(self.next_seq)?;
            let ts_us = self.ts_us(self.slots[self.index(seq)].ts);
            if now > ts_us + base + self.max_us {
                // Too late to play at all: starting with it would exceed the maximum delay.
                self.skip_missing_to(seq);
                let index = self.index(seq);
                self.slots[index].filled = false;
                self.buffered -= 1;
                self.stats.late += 1;
                self.history = self.history << 1 | 1;
                self.next_seq += 1;
                continue;
            }
            if now < ts_us + base + target {
                return None;
            }
            self.skip_missing_to(seq);
            self.phase = Phase::Playing;
            self.play_offset = now - ts_us;
            self.excess_since = None;
            return Some(self.take_packet(seq));
        }
    }

    fn continue_playing(&mut self, now: i64) -> Option<Playout<'_>> {
        let base = self.base.get()?;
        let target = self.target_at(now);
        let frame_us = self.ts_us(self.frame);
        loop {
            let here = self.slots[self.index(self.next_seq)].filled;
            // Where the next packet's audio starts: its own timestamp, or one estimated from the
            // first packet held after it.
            let upcoming = if here {
                Some(self.slots[self.index(self.next_seq)].ts)
            } else {
                self.first_held_from(self.next_seq + 1)
                    .map(|seq| self.slots[self.index(seq)].ts - (seq - self.next_seq) * self.frame)
            };
            let Some(upcoming) = upcoming else {
                // Nothing held: the packet is late, or the sender paused. Conceal while waiting for
                // it, up to the maximum delay; then wait for the next talk spurt.
                if self.play_offset - base + frame_us <= self.max_us {
                    return Some(self.stretch(frame_us));
                }
                self.phase = Phase::Dry;
                return None;
            };
            if upcoming - self.next_ts > self.frame / 2 {
                // A silence gap (DTX, end of a talk spurt): the next spurt is due after the target
                // delay, which shrinks or grows the delay here without cutting audio.
                let upcoming_us = self.ts_us(upcoming);
                if now < upcoming_us + base + target {
                    return None;
                }
                self.play_offset = now - upcoming_us;
                self.next_ts = upcoming;
                self.excess_since = None;
            }
            let delay = self.play_offset - base;
            if here {
                self.shrink_if_needed(now, delay - target, frame_us);
                return Some(self.take_packet(self.next_seq));
            }
            if delay < target && delay + frame_us <= self.max_us {
                // Below the target: wait for the missing packet rather than give it up.
                return Some(self.stretch(frame_us));
            }
            if delay - target < frame_us {
                return Some(self.take_lost());
            }
            // Lost, and the delay is a frame or more above the target (it grew while this very
            // burst was awaited): leaving the lost audio out shrinks it without cutting speech.
            self.history <<= 1;
            self.next_seq += 1;
            self.next_ts += self.frame;
            self.play_offset -= frame_us;
            self.stats.lost += 1;
        }
    }

    /// Drops the next packet when the delay has been well above the target for a while and the
    /// stream gives no silence to shrink it in.
    fn shrink_if_needed(&mut self, now: i64, excess: i64, frame_us: i64) {
        if excess <= frame_us + SKIP_MARGIN_US {
            self.excess_since = None;
            return;
        }
        let since = *self.excess_since.get_or_insert(now);
        let current = &self.slots[self.index(self.next_seq)];
        let following = &self.slots[self.index(self.next_seq + 1)];
        let contiguous =
            following.filled && following.seq == current.seq + 1 && following.ts == current.ts + self.frame;
        if now - since < SKIP_PATIENCE_US || !contiguous {
            return;
        }
        let index = self.index(self.next_seq);
        self.slots[index].filled = false;
        self.buffered -= 1;
        self.history = self.history << 1 | 1;
        self.next_seq += 1;
        self.next_ts += self.frame;
        self.play_offset -= frame_us;
        self.stats.skipped += 1;
        self.excess_since = None;
    }

    fn stretch(&mut self, frame_us: i64) -> Playout<'_> {
        self.play_offset += frame_us;
        self.stats.stretched += 1;
        Playout::Lost { duration: self.frame_duration(), next: None }
    }

    fn take_lost(&mut self) -> Playout<'_> {
        self.history <<= 1;
        self.next_seq += 1;
        self.next_ts += self.frame;
        self.stats.lost += 1;
        let duration = self.frame_duration();
        let following = &self.slots[self.index(self.next_seq)];
        let next = (following.filled && following.seq == self.next_seq).then_some(following.payload.as_slice());
        Playout::Lost { duration, next }
    }

    fn take_packet(&mut self, seq: i64) -> Playout<'_> {
        let index = self.index(seq);
        let duration = self.frame_duration();
        self.slots[index].filled = false;
        self.buffered -= 1;
        self.history = self.history << 1 | 1;
        self.next_seq = seq + 1;
        self.next_ts = self.slots[index].ts + self.frame;
        self.stats.played += 1;
        let slot = &self.slots[index];
        Playout::Packet {
            payload: &slot.payload,
            seq: slot.raw_seq,
            timestamp: slot.raw_ts,
            marker: slot.marker,
            duration,
        }
    }
}
