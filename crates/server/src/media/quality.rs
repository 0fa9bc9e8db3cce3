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
    /// The mean round trip between the relay and the device, from RTCP, when measured.
    pub rtt_ms: Option<f64>,
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
        LegQuality { packets, lost, jitter_ms, payload_type: self.payload_type, rtt_ms: None }
    }
}

/// Round trips between the relay and each leg's device from RTCP (RFC 3550 §6.4.1): a sender
/// report from one leg is remembered as the relay passes it on; when the other leg's report
/// block names it (LSR) with its delay since (DLSR), the round trip from the relay to that leg
/// is the time since the relay passed it on, less that delay. Only plain RTCP can be read.
#[derive(Debug, Default)]
pub(super) struct RoundTrips {
    /// Per leg: the middle 32 bits of the NTP time of its last sender reports, and when they
    /// passed.
    reports: [Vec<(u32, Instant)>; 2],
    /// Per leg: the round trips measured, summed, and how many.
    sum_ms: [f64; 2],
    count: [u32; 2],
}

/// Sender reports remembered per leg (one every few seconds is usual).
const REMEMBERED_REPORTS: usize = 8;

impl RoundTrips {
    /// Takes an RTCP datagram from `leg` (0 or 1) at `now`.
    pub(super) fn on_rtcp(&mut self, leg: usize, datagram: &[u8], now: Instant) {
        let Some(other) = [1usize, 0].get(leg).copied() else { return };
        let mut rest = datagram;
        while rest.len() >= 8 {
            let (first, kind) = (rest[0], rest[1]);
            let words = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let length = (words + 1) * 4;
            if first >> 6 != 2 || length > rest.len() {
                return;
            }
            let packet = &rest[..length];
            let count = usize::from(first & 0x1f);
            let blocks_at = match kind {
                200 if packet.len() >= 28 => {
                    let ntp_middle = u32::from_be_bytes([packet[10], packet[11], packet[12], packet[13]]);
                    let reports = &mut self.reports[leg];
                    if reports.len() >= REMEMBERED_REPORTS {
                        reports.remove(0);
                    }
                    reports.push((ntp_middle, now));
                    Some(28)
                }
                201 => Some(8),
                _ => None,
            };
            if let Some(at) = blocks_at {
                for block in packet.get(at..).unwrap_or_default().chunks_exact(24).take(count) {
                    let lsr = u32::from_be_bytes([block[16], block[17], block[18], block[19]]);
                    let dlsr = u32::from_be_bytes([block[20], block[21], block[22], block[23]]);
                    if lsr == 0 {
                        continue;
                    }
                    let Some(&(_, passed)) = self.reports[other].iter().find(|(ntp, _)| *ntp == lsr) else { continue };
                    let since = now.saturating_duration_since(passed).as_secs_f64() * 1000.0;
                    let rtt = since - f64::from(dlsr) * 1000.0 / 65536.0;
                    if (0.0..10_000.0).contains(&rtt) {
                        self.sum_ms[leg] += rtt;
                        self.count[leg] += 1;
                    }
                }
            }
            rest = &rest[length..];
        }
    }

    /// The mean round trip between the relay and leg `leg`'s device, when measured.
    pub(super) fn mean_ms(&self, leg: usize) -> Option<f64> {
        let count = *self.count.get(leg)?;
        (count > 0).then(|| self.sum_ms[leg] / f64::from(count))
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

    fn sender_report(ntp_middle: u32) -> Vec<u8> {
        let mut p = vec![0x80, 200, 0, 6];
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&(ntp_middle >> 16).to_be_bytes());
        p.extend_from_slice(&(ntp_middle << 16).to_be_bytes());
        p.extend_from_slice(&[0; 12]);
        p
    }

    fn receiver_report(lsr: u32, dlsr: u32) -> Vec<u8> {
        let mut p = vec![0x81, 201, 0, 7];
        p.extend_from_slice(&[0, 0, 0, 2]);
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3]);
        p.extend_from_slice(&lsr.to_be_bytes());
        p.extend_from_slice(&dlsr.to_be_bytes());
        p
    }

    #[test]
    fn round_trips_from_reports_passing_through() {
        let start = Instant::now();
        let mut rtt = RoundTrips::default();
        // leg A's device sends a sender report; leg B's answers 250 ms later, having held it
        // 200 ms (DLSR in 1/65536 s): the relay-to-B round trip is 50 ms.
        rtt.on_rtcp(0, &sender_report(0x1234_5678), start);
        let mut compound = receiver_report(0x1234_5678, 200 * 65536 / 1000);
        compound.extend_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 2]); // an SDES after it
        rtt.on_rtcp(1, &compound, start + Duration::from_millis(250));
        let b = rtt.mean_ms(1).expect("measured");
        assert!((b - 50.0).abs() < 0.1, "{b}");
        assert_eq!(rtt.mean_ms(0), None);
        // An unknown LSR, a zero LSR, or a broken packet change nothing.
        rtt.on_rtcp(1, &receiver_report(0x9999_0000, 0), start + Duration::from_millis(300));
        rtt.on_rtcp(1, &receiver_report(0, 0), start + Duration::from_millis(300));
        rtt.on_rtcp(1, &[0x81, 201, 0, 40, 1, 2], start);
        assert_eq!(rtt.count, [0, 1]);
    }
}
