//! How long packets must wait: the transit-time statistics behind the jitter buffer's target delay.
//!
//! Every packet's transit (local arrival time minus its RTP timestamp, both in microseconds) is
//! compared with the fastest transit seen recently, [`BaseTransit`]: the difference is how late the
//! packet was compared with a packet that met no queue on the way, its *deviation*. The target
//! delay is a high percentile of recent deviations ([`DeviationHistogram`]), held up by a decaying
//! peak that jumps at once when a packet comes later than the target ([`PeakHold`]).

/// Width of the sliding window of [`BaseTransit`]: the minimum is over the last one to two of these.
const BASE_WINDOW_US: i64 = 5_000_000;

/// The smallest transit time over the last 5 to 10 seconds: the path without queueing delay. A
/// sliding window rather than an all-time minimum so that clock drift between the sender and us,
/// or a route change, is followed.
#[derive(Clone, Copy, Debug)]
pub(super) struct BaseTransit {
    current: i64,
    previous: i64,
    started_at: Option<i64>,
}

impl BaseTransit {
    pub(super) fn new() -> BaseTransit {
        BaseTransit { current: i64::MAX, previous: i64::MAX, started_at: None }
    }

    /// Records one packet's transit at local time `now` (µs).
    pub(super) fn update(&mut self, now: i64, transit: i64) {
        match self.started_at {
            Some(start) if now - start < BASE_WINDOW_US => {}
            Some(_) => {
                self.previous = self.current;
                self.current = i64::MAX;
                self.started_at = Some(now);
            }
            None => self.started_at = Some(now),
        }
        self.current = self.current.min(transit);
    }

    /// The fastest recent transit, if any packet was seen.
    pub(super) fn get(&self) -> Option<i64> {
        let min = self.current.min(self.previous);
        (min != i64::MAX).then_some(min)
    }
}

const BINS: usize = 64;
/// Each new sample weighs 1/`FORGET` more than the one before: an effective memory of about 140
/// packets (3 seconds of 20 ms packets), and an old spread stops counting for the 99th percentile
/// after about 650 packets.
const FORGET: f64 = 0.993;
/// Weights are rescaled before they grow past this, to stay far from floating-point overflow.
const RESCALE_AT: f64 = 1e100;

/// A histogram of recent deviations with exponential forgetting, for percentiles.
///
/// Instead of multiplying every bin by the forgetting factor at each sample (O(bins)), the weight
/// of new samples grows by its inverse, and everything is scaled back down once in a long while.
#[derive(Clone, Debug)]
pub(super) struct DeviationHistogram {
    bins: [f64; BINS],
    bin_us: i64,
    weight: f64,
    total: f64,
}

impl DeviationHistogram {
    /// A histogram whose bins cover `0..=range_us` (larger deviations land in the last bin).
    pub(super) fn new(range_us: i64) -> DeviationHistogram {
        let bin_us = (range_us / BINS as i64).max(500);
        DeviationHistogram { bins: [0.0; BINS], bin_us, weight: 1.0, total: 0.0 }
    }

    pub(super) fn bin_width_us(&self) -> i64 {
        self.bin_us
    }

    pub(super) fn add(&mut self, deviation_us: i64) {
        let index = usize::try_from(deviation_us.max(0) / self.bin_us).unwrap_or(BINS - 1).min(BINS - 1);
        self.weight /= FORGET;
        self.bins[index] += self.weight;
        self.total += self.weight;
        if self.weight > RESCALE_AT {
            let scale = 1.0 / self.weight;
            for bin in &mut self.bins {
                *bin *= scale;
            }
            self.total *= scale;
            self.weight = 1.0;
        }
    }

    /// The upper edge of the bin holding the `q` quantile (0 < q ≤ 1), or `None` when empty.
    pub(super) fn quantile(&self, q: f64) -> Option<i64> {
        if self.total <= 0.0 {
            return None;
        }
        let wanted = self.total * q;
        let mut cumulative = 0.0;
        for (index, bin) in self.bins.iter().enumerate() {
            cumulative += bin;
            if cumulative >= wanted {
                return Some((index as i64 + 1) * self.bin_us);
            }
        }
        Some(BINS as i64 * self.bin_us)
    }
}

/// Half-life of the [`PeakHold`]: how fast the delay may come down after a late packet.
const PEAK_HALF_LIFE_US: f64 = 4_000_000.0;

/// A level that jumps up at once and decays exponentially with time.
#[derive(Clone, Copy, Debug)]
pub(super) struct PeakHold {
    level_us: f64,
    since: i64,
}

impl PeakHold {
    pub(super) fn new(level_us: i64, now: i64) -> PeakHold {
        PeakHold { level_us: level_us as f64, since: now }
    }

    pub(super) fn get(&self, now: i64) -> i64 {
        let elapsed = (now - self.since).max(0) as f64;
        (self.level_us * (-elapsed / PEAK_HALF_LIFE_US).exp2()) as i64
    }

    /// Raises the level to `level_us` if it is above the decayed level.
    pub(super) fn raise(&mut self, level_us: i64, now: i64) {
        if level_us > self.get(now) {
            self.level_us = level_us as f64;
            self.since = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_transit_is_the_recent_minimum_and_forgets_old_windows() {
        let mut base = BaseTransit::new();
        assert_eq!(base.get(), None);
        base.update(0, 500);
        base.update(1_000, 300);
        base.update(2_000, 900);
        assert_eq!(base.get(), Some(300));
        // A new window starts: the previous one still counts.
        base.update(BASE_WINDOW_US + 10, 700);
        assert_eq!(base.get(), Some(300));
        // Two windows on, the 300 is forgotten.
        base.update(2 * BASE_WINDOW_US + 20, 800);
        assert_eq!(base.get(), Some(700));
    }

    #[test]
    fn histogram_quantiles_follow_the_recent_samples() {
        let mut histogram = DeviationHistogram::new(64_000);
        assert_eq!(histogram.quantile(0.5), None);
        for i in 0..1000 {
            histogram.add(i % 10 * 1000); // 0..9 ms evenly
        }
        assert_eq!(histogram.quantile(0.45), Some(5000));
        assert_eq!(histogram.quantile(0.99), Some(10_000));
        // After many samples at 40 ms, the old spread no longer matters.
        for _ in 0..2000 {
            histogram.add(40_000);
        }
        assert_eq!(histogram.quantile(0.01), Some(41_000));
        // Far beyond the range: the last bin.
        histogram.add(10_000_000);
        assert!(histogram.quantile(1.0).unwrap() >= 64_000);
    }

    #[test]
    fn histogram_survives_rescaling() {
        let mut histogram = DeviationHistogram::new(64_000);
        for i in 0..200_000 {
            histogram.add(i % 4 * 1000);
        }
        assert!(histogram.total.is_finite() && histogram.weight.is_finite());
        assert_eq!(histogram.quantile(0.99), Some(4000));
    }

    #[test]
    fn peak_jumps_up_and_halves_per_half_life() {
        let mut peak = PeakHold::new(40_000, 0);
        assert_eq!(peak.get(0), 40_000);
        let half = PEAK_HALF_LIFE_US as i64;
        assert!((peak.get(half) - 20_000).abs() < 10);
        peak.raise(10_000, half); // below the decayed level: no change
        assert!((peak.get(half) - 20_000).abs() < 10);
        peak.raise(30_000, half);
        assert_eq!(peak.get(half), 30_000);
    }
}
