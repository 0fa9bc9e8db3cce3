//! Test signals and the few measurements a test makes of what a phone or an application heard:
//! a sine tone, its level, its frequency by zero crossings, and its power at one frequency
//! (Goertzel).

use std::f64::consts::TAU;

/// A phase-continuous sine tone, produced a frame at a time.
#[derive(Clone, Debug)]
pub struct Sine {
    frequency: f64,
    amplitude: f64,
    rate: u32,
    phase: f64,
}

impl Sine {
    /// A tone of `frequency` Hz and peak `amplitude` (full scale is 32767) at `rate` samples/s.
    pub fn new(frequency: f64, amplitude: i16, rate: u32) -> Sine {
        Sine { frequency, amplitude: f64::from(amplitude), rate, phase: 0.0 }
    }

    pub fn frequency(&self) -> f64 {
        self.frequency
    }

    /// The tone's RMS level in dBFS (a full-scale sine is −3 dBFS).
    pub fn level_dbfs(&self) -> f64 {
        db(self.amplitude / std::f64::consts::SQRT_2 / 32768.0)
    }

    /// Fills `out` with the next samples of the tone.
    pub fn fill(&mut self, out: &mut [i16]) {
        let step = TAU * self.frequency / f64::from(self.rate.max(1));
        for sample in out {
            *sample = (self.phase.sin() * self.amplitude).round() as i16;
            self.phase = (self.phase + step) % TAU;
        }
    }

    /// The next `n` samples.
    pub fn frame(&mut self, n: usize) -> Vec<i16> {
        let mut frame = vec![0; n];
        self.fill(&mut frame);
        frame
    }
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.max(1e-9).log10()
}

/// The RMS level of `samples` in dBFS (−180 for silence or nothing).
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return -180.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    db((sum / samples.len() as f64).sqrt() / 32768.0)
}

/// The frequency of a tone by counting its rising zero crossings (with a little hysteresis,
/// so that low-level noise around zero does not count).
pub fn zero_crossing_frequency(samples: &[i16], rate: u32) -> f64 {
    let threshold = 64;
    let mut crossings = 0u32;
    let mut first = None;
    let mut last = 0;
    let mut below = false;
    for (i, &s) in samples.iter().enumerate() {
        if s < -threshold {
            below = true;
        } else if s > threshold && below {
            below = false;
            crossings += 1;
            first.get_or_insert(i);
            last = i;
        }
    }
    match first {
        Some(first) if crossings > 1 && last > first => {
            f64::from(crossings - 1) * f64::from(rate) / (last - first) as f64
        }
        _ => 0.0,
    }
}

/// The level in dBFS of the component of `samples` at `frequency` (Goertzel): a pure tone of
/// that frequency reads as its own RMS level, other frequencies read far below it.
pub fn tone_level_dbfs(samples: &[i16], rate: u32, frequency: f64) -> f64 {
    if samples.is_empty() {
        return -180.0;
    }
    let n = samples.len() as f64;
    let coefficient = 2.0 * (TAU * frequency / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coefficient * s1 * s2).max(0.0);
    // |X(k)| = A·N/2 for a sine of peak A: the RMS is |X|·√2/N.
    db(power.sqrt() * std::f64::consts::SQRT_2 / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_measures_as_itself() {
        let mut sine = Sine::new(500.0, 8000, 8000);
        let samples = sine.frame(8000);
        assert!((rms_dbfs(&samples) - sine.level_dbfs()).abs() < 0.1);
        assert!((zero_crossing_frequency(&samples, 8000) - 500.0).abs() < 2.0);
        assert!((tone_level_dbfs(&samples, 8000, 500.0) - sine.level_dbfs()).abs() < 0.2);
        assert!(tone_level_dbfs(&samples, 8000, 800.0) < sine.level_dbfs() - 30.0);
        // frame by frame, the phase carries on
        let mut sine = Sine::new(1000.0, 8000, 8000);
        let mut joined = Vec::new();
        for _ in 0..50 {
            joined.extend(sine.frame(160));
        }
        assert!((zero_crossing_frequency(&joined, 8000) - 1000.0).abs() < 2.0);
    }

    #[test]
    fn silence_and_nothing() {
        assert_eq!(rms_dbfs(&[]), -180.0);
        assert!(rms_dbfs(&[0; 160]) < -170.0);
        assert_eq!(zero_crossing_frequency(&[0; 160], 8000), 0.0);
        assert!(tone_level_dbfs(&[0; 160], 8000, 500.0) < -170.0);
    }
}
