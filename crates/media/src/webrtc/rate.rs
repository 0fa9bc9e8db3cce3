//! How much video a browser may send toward a phone: the loss-based part of Google Congestion
//! Control (draft-ietf-rmcat-gcc-02 §6), driven by what the phone itself reports. A phone that
//! loses what it is sent says so in its RTCP receiver reports (the fraction lost, RFC 3550
//! §6.4.1); the estimate falls with heavy loss, holds with some, and creeps up without, never
//! above the phone's own cap (`b=AS`/`b=TIAS`). The leg tells the browser by REMB.

/// Where the estimate starts, and the most it allows, when the phone set no cap, bits per
/// second: what browsers aim a single 720p VP8 stream at.
pub const START_BITRATE: u64 = 2_000_000;
/// The estimate never falls below this, bits per second (a low-resolution picture still moves).
pub const MIN_BITRATE: u64 = 50_000;

/// The estimate of one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossBasedRate {
    estimate: u64,
    cap: Option<u64>,
}

impl LossBasedRate {
    /// An estimate under `cap` (the phone's own limit, if it set one), starting there.
    pub fn new(cap: Option<u64>) -> LossBasedRate {
        let estimate = cap.unwrap_or(START_BITRATE).max(MIN_BITRATE);
        LossBasedRate { estimate, cap }
    }

    /// The estimate now, bits per second.
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    /// A receiver report's fraction lost (RFC 3550: the fraction of 256) since the last one:
    /// over 10 % the estimate falls by half the loss, under 2 % it rises by 5 %, between the
    /// two it holds (GCC §6). Returns the new estimate.
    pub fn on_report(&mut self, fraction_lost: u8) -> u64 {
        let lost = f64::from(fraction_lost) / 256.0;
        let estimate = self.estimate as f64;
        let next = if lost > 0.10 {
            estimate * (1.0 - 0.5 * lost)
        } else if lost < 0.02 {
            estimate * 1.05
        } else {
            estimate
        };
        let ceiling = self.cap.unwrap_or(START_BITRATE);
        self.estimate = (next.round() as u64).clamp(MIN_BITRATE, ceiling.max(MIN_BITRATE));
        self.estimate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fraction of 256 that RTCP carries for `percent` lost.
    fn lost(percent: f64) -> u8 {
        (percent / 100.0 * 256.0).round() as u8
    }

    #[test]
    fn heavy_loss_brings_the_rate_down_and_none_lets_it_climb_back_to_the_cap() {
        let mut rate = LossBasedRate::new(Some(1_000_000));
        assert_eq!(rate.estimate(), 1_000_000);
        // 30 % lost: down by 15 % a report.
        let after = rate.on_report(lost(30.0));
        assert!((845_000..=855_000).contains(&after), "{after}");
        for _ in 0..2 {
            rate.on_report(lost(30.0));
        }
        assert!((605_000..=625_000).contains(&rate.estimate()), "{}", rate.estimate());
        // 5 % lost: held.
        let held = rate.estimate();
        assert_eq!(rate.on_report(lost(5.0)), held);
        // None lost: up by 5 % a report, never above the cap.
        assert!((638_000..=650_000).contains(&rate.on_report(0)), "{}", rate.estimate());
        for _ in 0..30 {
            rate.on_report(0);
        }
        assert_eq!(rate.estimate(), 1_000_000);
    }

    #[test]
    fn the_rate_has_a_floor_and_starts_high_without_a_cap() {
        let mut rate = LossBasedRate::new(None);
        assert_eq!(rate.estimate(), START_BITRATE);
        assert_eq!(rate.on_report(0), START_BITRATE, "no cap: at most the start");
        for _ in 0..100 {
            rate.on_report(255);
        }
        assert_eq!(rate.estimate(), MIN_BITRATE);
        // A cap below the floor still leaves the floor.
        assert_eq!(LossBasedRate::new(Some(10_000)).estimate(), MIN_BITRATE);
    }
}
