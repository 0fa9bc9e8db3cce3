//! Packet indices and replay protection: the SRTP index estimate of RFC 3711 §3.3.1 and
//! Appendix A, and the sliding replay window of §3.3.2.

use super::SrtpError;

/// How many indices behind the highest one the window remembers (RFC 3711 §3.3.2 asks for at
/// least 64).
pub const REPLAY_WINDOW: u64 = 128;

/// The indices a receiver has accepted: the highest, and a bit for each of the
/// [`REPLAY_WINDOW`] indices at and below it (bit `k` stands for `highest - k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ReplayWindow {
    highest: u64,
    seen: u128,
}

impl ReplayWindow {
    /// A window that has seen only `index`.
    pub(super) fn starting_at(index: u64) -> ReplayWindow {
        ReplayWindow { highest: index, seen: 1 }
    }

    pub(super) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether a packet with `index` may still be accepted (RFC 3711 §3.3.2): ahead of the
    /// window, or inside it and not seen yet.
    pub(super) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW {
            Err(SrtpError::TooOld)
        } else if self.seen >> behind & 1 == 1 {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `index` as received, after its packet was authenticated.
    pub(super) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= REPLAY_WINDOW { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.highest = index;
        } else if self.highest - index < REPLAY_WINDOW {
            self.seen |= 1 << (self.highest - index);
        }
    }
}

/// The 48-bit index of a packet with sequence number `seq`, from the highest index seen so far
/// (RFC 3711 Appendix A): the rollover counter `v` is the highest one's, one less when `seq` is
/// far above `s_l` (a late packet from before the wrap), or one more when it is far below (the
/// sequence number wrapped). Before the first rollover a "late packet from before the wrap"
/// cannot exist, and the packet is taken as ahead. The result may reach 2^48 when the
/// rollover counter is exhausted; callers refuse such indices.
pub(super) fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 { roc.saturating_sub(1) } else { roc }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    v << 16 | u64::from(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_the_sequence_across_a_wrap() {
        // Appendix A: s_l just below the wrap, a packet just after it belongs to ROC + 1.
        assert_eq!(estimate_index(0xFFFE, 0x0001), 0x1_0001);
        // And a late packet from before the wrap, once past it, to ROC - 1.
        assert_eq!(estimate_index(0x1_0002, 0xFFFD), 0xFFFD);
        // Neighbours on the same side stay in the same ROC.
        assert_eq!(estimate_index(0x5_1000, 0x0FFF), 0x5_0FFF);
        assert_eq!(estimate_index(0x5_1000, 0x1001), 0x5_1001);
        assert_eq!(estimate_index(0x5_9000, 0x9001), 0x5_9001);
        assert_eq!(estimate_index(0x5_9000, 0x8FFF), 0x5_8FFF);
        // Exactly 2^15 apart is still the same ROC, one more is the next or previous.
        assert_eq!(estimate_index(0x5_9000, 0x1000), 0x5_1000);
        assert_eq!(estimate_index(0x5_9000, 0x0FFF), 0x6_0FFF);
        assert_eq!(estimate_index(0x5_1000, 0x9000), 0x5_9000);
        assert_eq!(estimate_index(0x5_1000, 0x9001), 0x4_9001);
    }

    #[test]
    fn before_the_first_rollover_a_far_packet_is_ahead() {
        assert_eq!(estimate_index(100, 65000), 65000);
    }

    #[test]
    fn window_rejects_repeats_and_old_indices() {
        let mut w = ReplayWindow::starting_at(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(1001), Ok(()));
        assert_eq!(w.check(999), Ok(()));
        w.accept(999);
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        w.accept(1010);
        assert_eq!(w.highest(), 1010);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        assert_eq!(w.check(998), Ok(()));
        // The oldest index the window still covers, and the first one it no longer does.
        assert_eq!(w.check(1010 - 127), Ok(()));
        assert_eq!(w.check(1010 - 128), Err(SrtpError::TooOld));
        // A jump beyond the window forgets everything behind it.
        w.accept(5000);
        assert_eq!(w.check(4999), Ok(()));
        assert_eq!(w.check(5000), Err(SrtpError::Replayed));
        assert_eq!(w.check(1010), Err(SrtpError::TooOld));
    }

    #[test]
    fn window_slides_bit_by_bit() {
        let mut w = ReplayWindow::starting_at(0);
        for i in 1..300 {
            assert_eq!(w.check(i), Ok(()));
            w.accept(i);
            assert_eq!(w.check(i), Err(SrtpError::Replayed));
            if i >= 127 {
                assert_eq!(w.check(i - 127), Err(SrtpError::Replayed));
            }
            if i >= 128 {
                assert_eq!(w.check(i - 128), Err(SrtpError::TooOld));
            }
        }
    }
}
