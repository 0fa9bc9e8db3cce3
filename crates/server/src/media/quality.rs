//! What each leg's audio looked like on arrival at the relay: packets, loss and interarrival
//! jitter of its first stream's RTP (RFC 3550 §A.1, §A.3, §A.8, from the packets' headers, which
//! SRTP leaves in clear), for call records and their quality estimate.

use std::time::{Duration, Instant};

use sambung_media::rtp::{ReceptionStats, SequenceTracker};

/// One leg's reception figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LegQuality {
    /// RTP packets received (valid, counted by RFC 3550 §A.1).
    pub packets: u64,
    /// Packets lost: expected minus received (never below 0).
    pub lost: u64,
    /// Interarrival jitter in milliseconds.
    pub jitter_ms: f64,
    /// The payload type of the last packet.
    pub payload_type: Option<u8>,
}

impl LegQuality {
    /// Loss as a percentage of the packets expected.
    pub fn loss_percent(&self) -> f64 {
        let expected = self.packets + self.lost;
        if expected == 0 { 0.0 } else { self.lost as f64 * 100.0 / expected as f64 }
    }
}

/// How often the task copies its figures to where the session's handle reads them.
pub(super) const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The reception state of one leg's first RTP stream.
#[derive(Debug)]
pub(super) struct Receiver {
    /// Every packet: received and lost.
    sequence: SequenceTracker,
    /// The jitter, over the packets of the first payload type seen (the codec's, not the
    /// telephone events' whose timestamps stand still during a key press).
    jitter: ReceptionStats,
    start: Instant,
    /// Payload type -> clock rate, from the leg's SDP (static types are known without it).
    clocks: Vec<(u8, u32)>,
    /// The payload type the jitter is computed over, and its clock rate.
    main: Option<(u8, u32)>,
    payload_type: Option<u8>,
}

impl Receiver {
    pub(super) fn new(start: Instant) -> Receiver {
        Receiver {
            sequence: SequenceTracker::new(),
            jitter: ReceptionStats::new(),
            start,
            clocks: Vec::new(),
            main: None,
            payload_type: None,
        }
    }

    pub(super) fn set_clocks(&mut self, clocks: Vec<(u8, u32)>) {
        self.clocks = clocks;
    }

    fn clock_of(&self, payload_type: u8) -> u32 {
        if let Some(&(_, rate)) = self.clocks.iter().find(|(pt, _)| *pt == payload_type) {
            return rate;
        }
        match payload_type {
            // RFC 3551 table 4: the audio types at 8 kHz (G.722's RTP clock is 8 kHz too).
            0..=5 | 7..=9 | 12 | 13 | 15 | 18 => 8000,
            6 => 16000,
            10 | 11 => 44100,
            14 | 25 | 26 | 28 | 31..=34 => 90000,
            _ => 8000,
        }
    }

    /// Takes one datagram that arrived on the leg's RTP socket at `now`.
    pub(super) fn on_datagram(&mut self, datagram: &[u8], now: Instant) {
        let [first, second, s0, s1, t0, t1, t2, t3, ..] = *datagram else { return };
        if first >> 6 != 2 || datagram.len() < 12 {
            return;
        }
        let payload_type = second & 0x7f;
        // RTCP multiplexed on the RTP port (RFC 5761): packet types 200 to 204 and the like.
        if (64..96).contains(&payload_type) {
            return;
        }
        let sequence = u16::from_be_bytes([s0, s1]);
        let _ = self.sequence.update(sequence);
        self.payload_type = Some(payload_type);
        let (main, clock) = *self.main.get_or_insert((payload_type, self.clock_of(payload_type)));
        if main == payload_type {
            let elapsed = now.saturating_duration_since(self.start);
            let arrival = (elapsed.as_secs_f64() * f64::from(clock)) as u64 as u32;
            let _ = self.jitter.on_header(sequence, u32::from_be_bytes([t0, t1, t2, t3]), arrival);
        }
    }

    pub(super) fn quality(&self) -> LegQuality {
        let packets = self.sequence.received();
        let lost = if packets == 0 { 0 } else { self.sequence.expected().saturating_sub(packets) };
        let jitter_ms = match self.main {
            Some((_, clock)) if clock > 0 => f64::from(self.jitter.jitter()) * 1000.0 / f64::from(clock),
            _ => 0.0,
        };
        LegQuality { packets, lost, jitter_ms, payload_type: self.payload_type }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, pt: u8) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    #[test]
    fn loss_and_jitter_of_a_pcmu_stream() {
        let start = Instant::now();
        let mut rx = Receiver::new(start);
        // 100 packets every 20 ms, the 50th lost, every other one 4 ms late.
        for n in 0u16..100 {
            if n == 50 {
                continue;
            }
            let late = if n % 2 == 1 { 4 } else { 0 };
            let at = start + Duration::from_millis(u64::from(n) * 20 + late);
            rx.on_datagram(&packet(1000 + n, 160 * u32::from(n), 0), at);
        }
        let q = rx.quality();
        // The first packet is the source's probation (RFC 3550 §A.1): 98 counted.
        assert_eq!((q.packets, q.lost, q.payload_type), (98, 1, Some(0)));
        assert!((q.loss_percent() - 100.0 / 99.0).abs() < 0.01, "{}", q.loss_percent());
        // |D| is 4 ms on every packet: J tends to 4 ms.
        assert!((3.0..=4.1).contains(&q.jitter_ms), "jitter {} ms", q.jitter_ms);
    }

    #[test]
    fn rtcp_and_garbage_are_not_rtp() {
        let start = Instant::now();
        let mut rx = Receiver::new(start);
        rx.on_datagram(&[0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0], start);
        rx.on_datagram(b"hello", start);
        rx.on_datagram(&[0x40; 20], start);
        assert_eq!(rx.quality(), LegQuality::default());
        let mut rx = Receiver::new(start);
        // An Opus stream on a dynamic type is timed in its own clock.
        rx.set_clocks(vec![(111, 48000)]);
        for n in 0u16..10 {
            rx.on_datagram(&packet(n, 960 * u32::from(n), 111), start + Duration::from_millis(u64::from(n) * 20));
        }
        let q = rx.quality();
        assert_eq!((q.packets, q.lost), (9, 0), "one on probation, then counted");
        assert!(q.jitter_ms < 0.5, "{}", q.jitter_ms);
    }
}
