//! Per-source reception statistics: sequence-number extension and source validation
//! (RFC 3550 §A.1), cumulative and interval loss (§A.3) and interarrival jitter (§A.8).

use super::RtpPacket;

/// RFC 3550 §A.1: a jump of this many sequence numbers or more ahead is not accepted at once.
pub const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 §A.1: packets up to this many behind are taken as reordered or duplicated.
pub const MAX_MISORDER: u16 = 100;
/// RFC 3550 §A.1: packets in sequence needed before a new source is valid.
pub const MIN_SEQUENTIAL: u8 = 2;

const SEQ_MOD: u64 = 1 << 16;

/// Sequence state of one source (RFC 3550 §A.1 `source`), without the jitter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SequenceTracker {
    started: bool,
    max_seq: u16,
    /// Shifted count of sequence-number wraps (`cycles` in §A.1, in units of 2^16).
    cycles: u64,
    base_seq: u64,
    /// The sequence number after a large jump; a packet with it confirms a restart.
    bad_seq: Option<u16>,
    probation: u8,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
}

impl SequenceTracker {
    /// A tracker for a source not heard yet.
    pub fn new() -> SequenceTracker {
        SequenceTracker::default()
    }

    fn init(&mut self, seq: u16) {
        self.base_seq = u64::from(seq);
        self.max_seq = seq;
        self.bad_seq = None;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Feeds one packet's sequence number (RFC 3550 §A.1 `update_seq`). Returns the extended
    /// sequence number when the packet counts (source valid, not a wild jump), `None` while the
    /// source is on probation or after a jump that a second packet has not confirmed yet.
    pub fn update(&mut self, seq: u16) -> Option<u64> {
        if !self.started {
            self.started = true;
            self.init(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init(seq);
                    self.received += 1;
                    return Some(self.extended(seq));
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return None;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
        } else if u64::from(udelta) <= SEQ_MOD - u64::from(MAX_MISORDER) {
            if self.bad_seq == Some(seq) {
                // Two sequential packets after a jump: the sender restarted (§A.1).
                self.init(seq);
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                return None;
            }
        }
        // Otherwise duplicate or reordered: counted, max_seq unchanged.
        self.received += 1;
        Some(self.extended(seq))
    }

    /// Extends `seq` relative to the highest sequence number seen (a late packet from before
    /// the last wrap belongs to the previous cycle).
    fn extended(&self, seq: u16) -> u64 {
        let cycles = if seq > self.max_seq && seq.wrapping_sub(self.max_seq) >= MAX_DROPOUT {
            self.cycles.saturating_sub(SEQ_MOD)
        } else {
            self.cycles
        };
        cycles + u64::from(seq)
    }

    /// True once the source has passed probation.
    pub fn is_valid(&self) -> bool {
        self.started && self.probation == 0
    }

    /// The extended highest sequence number received (RFC 3550 §6.4.1).
    pub fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// Packets expected since the source became valid (RFC 3550 §A.3).
    pub fn expected(&self) -> u64 {
        if !self.is_valid() {
            return 0;
        }
        (self.extended_max() + 1).saturating_sub(self.base_seq)
    }

    /// Packets counted, duplicates included (RFC 3550 §A.3).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Cumulative number of packets lost, clamped to the 24-bit signed field of a report
    /// block; negative when duplicates outnumber losses (RFC 3550 §6.4.1, §A.3).
    pub fn cumulative_lost(&self) -> i32 {
        let lost = self.expected() as i64 - self.received as i64;
        lost.clamp(-0x80_0000, 0x7F_FFFF) as i32
    }

    /// The fraction lost since the previous call, as an 8-bit fixed-point number (RFC 3550
    /// §A.3); 0 when packets were duplicated rather than lost.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let interval_expected = expected.saturating_sub(self.expected_prior);
        let interval_received = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost = interval_expected.saturating_sub(interval_received);
        if interval_expected == 0 || lost == 0 { 0 } else { ((lost << 8) / interval_expected).min(255) as u8 }
    }
}

/// The figures of one reception report block (RFC 3550 §6.4.1), without LSR/DLSR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceptionReport {
    pub fraction_lost: u8,
    /// 24-bit signed.
    pub cumulative_lost: i32,
    /// Low 32 bits of the extended highest sequence number.
    pub extended_highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
}

/// Reception statistics of one source: sequence tracking and interarrival jitter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceptionStats {
    seq: SequenceTracker,
    /// Relative transit time of the previous packet, if any (RFC 3550 §A.8).
    transit: Option<u32>,
    /// Jitter scaled by 16 (the integer form of §A.8).
    jitter16: u32,
}

impl ReceptionStats {
    /// Statistics for a source not heard yet.
    pub fn new() -> ReceptionStats {
        ReceptionStats::default()
    }

    /// Feeds a received packet with its arrival time in the payload's RTP clock units.
    /// Returns its extended sequence number when it counts (see [`SequenceTracker::update`]).
    pub fn on_packet(&mut self, packet: &RtpPacket<'_>, arrival: u32) -> Option<u64> {
        self.on_header(packet.sequence(), packet.timestamp(), arrival)
    }

    /// [`ReceptionStats::on_packet`] from the sequence number and timestamp alone.
    pub fn on_header(&mut self, sequence: u16, timestamp: u32, arrival: u32) -> Option<u64> {
        let extended = self.seq.update(sequence)?;
        // RFC 3550 §A.8: J += (|D| - J) / 16, computed as J16 += |D| - J16 / 16 (rounded).
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(previous) = self.transit {
            let d = (transit.wrapping_sub(previous) as i32).unsigned_abs();
            self.jitter16 = self.jitter16.saturating_add(d).saturating_sub((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
        Some(extended)
    }

    /// The sequence state.
    pub fn sequence(&self) -> &SequenceTracker {
        &self.seq
    }

    /// Interarrival jitter in timestamp units (RFC 3550 §6.4.1).
    pub fn jitter(&self) -> u32 {
        self.jitter16 >> 4
    }

    /// The figures for the next report block; resets the interval of the fraction lost.
    pub fn report(&mut self) -> ReceptionReport {
        ReceptionReport {
            fraction_lost: self.seq.take_fraction_lost(),
            cumulative_lost: self.seq.cumulative_lost(),
            extended_highest_seq: self.seq.extended_max() as u32,
            jitter: self.jitter(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_from(start: u16) -> SequenceTracker {
        let mut t = SequenceTracker::new();
        assert_eq!(t.update(start), None, "first packet is on probation");
        assert_eq!(t.update(start.wrapping_add(1)), Some(u64::from(start.wrapping_add(1))));
        t
    }

    #[test]
    fn probation_restarts_on_a_gap() {
        let mut t = SequenceTracker::new();
        assert_eq!(t.update(10), None);
        assert_eq!(t.update(12), None);
        assert!(!t.is_valid());
        assert_eq!(t.update(13), Some(13));
        assert!(t.is_valid());
        assert_eq!((t.expected(), t.received()), (1, 1));
    }

    #[test]
    fn extends_across_the_wrap_and_places_late_packets() {
        let mut t = valid_from(65534);
        assert_eq!(t.update(0), Some(65536));
        assert_eq!(t.update(1), Some(65537));
        assert_eq!(t.update(65533), Some(65533), "late packet from the previous cycle");
        assert_eq!(t.extended_max(), 65537);
    }

    #[test]
    fn counts_loss_and_fraction_lost() {
        let mut t = valid_from(100); // base 101
        for seq in [102, 104, 105, 108] {
            assert!(t.update(seq).is_some());
        }
        // Expected 101..=108 = 8, received 5.
        assert_eq!((t.expected(), t.received(), t.cumulative_lost()), (8, 5, 3));
        assert_eq!(t.take_fraction_lost(), (3 * 256 / 8) as u8);
        assert_eq!(t.take_fraction_lost(), 0, "nothing new in this interval");
        t.update(108); // a duplicate
        assert_eq!(t.cumulative_lost(), 2);
        assert_eq!(t.take_fraction_lost(), 0);
    }

    #[test]
    fn a_wild_jump_needs_confirmation() {
        let mut t = valid_from(1000);
        assert_eq!(t.update(40000), None);
        assert_eq!(t.update(1002), Some(1002), "old stream goes on");
        assert_eq!(t.update(50000), None);
        assert_eq!(t.update(50001), Some(50001), "second in sequence: restart");
        assert_eq!((t.expected(), t.received()), (1, 1));
    }

    #[test]
    fn jitter_follows_a8() {
        let mut s = ReceptionStats::new();
        // 20 ms packets at 8 kHz: timestamps +160, arrivals alternate 150 and 170 apart.
        let mut arrival = 1000u32;
        for i in 0..200u16 {
            s.on_header(i, u32::from(i) * 160, arrival);
            arrival += if i % 2 == 0 { 150 } else { 170 };
        }
        // |D| is 10 every time after the first packets, so J converges to 10.
        assert!((9..=10).contains(&s.jitter()), "jitter {}", s.jitter());
        let r = s.report();
        assert_eq!((r.cumulative_lost, r.fraction_lost, r.extended_highest_seq), (0, 0, 199));
    }
}
