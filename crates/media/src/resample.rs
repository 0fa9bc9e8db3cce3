//! Streaming sample rate conversion between the engine's rates: 8000, 16000 and 48000 Hz.
//!
//! Every conversion is by a whole ratio (2, 3 or 6), done by a polyphase FIR filter: a
//! Kaiser-windowed sinc with its cut-off at half the lower rate, a transition band of a tenth
//! of the lower rate on either side (so 3.6 kHz passes and 4.4 kHz is stopped at 8 kHz), about
//! 65 dB of stop-band attenuation, and a delay of 21 samples at the lower rate (2.6 ms at
//! 8 kHz, 1.3 ms at 16 kHz). The filter keeps its history between calls, so frames of any
//! size join without a click: feeding a signal in pieces gives exactly what one call gives.
//!
//! ```
//! use sambung_media::resample::Resampler;
//!
//! let mut up = Resampler::new(8000, 48_000).unwrap();
//! let mut out = Vec::new();
//! up.process(&[0; 160], &mut out); // 20 ms
//! assert_eq!(out.len(), 960);
//! assert_eq!(up.delay_samples(), 126);
//! ```

/// Samples of delay at the lower rate; the filter spans twice as many, plus one.
const HALF_SPAN: usize = 21;
/// Kaiser window shape for about 65 dB of stop-band attenuation.
const KAISER_BETA: f64 = 6.2;

/// A conversion this module does not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no conversion from {from} Hz to {to} Hz (8000, 16000 and 48000 Hz only)")]
pub struct ResampleError {
    pub from: u32,
    pub to: u32,
}

/// Converts one stream of mono 16-bit PCM from one rate to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    stage: Stage,
}

#[derive(Debug, Clone)]
enum Stage {
    Identity,
    Up(Interpolator),
    Down(Decimator),
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz, each one of 8000, 16000 and 48000.
    pub fn new(from: u32, to: u32) -> Result<Resampler, ResampleError> {
        const RATES: [u32; 3] = [8000, 16_000, 48_000];
        if !RATES.contains(&from) || !RATES.contains(&to) {
            return Err(ResampleError { from, to });
        }
        let stage = match from.cmp(&to) {
            std::cmp::Ordering::Equal => Stage::Identity,
            std::cmp::Ordering::Less => Stage::Up(Interpolator::new((to / from) as usize)),
            std::cmp::Ordering::Greater => Stage::Down(Decimator::new((from / to) as usize)),
        };
        Ok(Resampler { from, to, stage })
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// The output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Converts `input` and appends the result to `out`: `input.len() * to / from` samples
    /// when that is whole (as it is for any whole number of milliseconds). Going down, a
    /// piece that is not a multiple of the ratio gives one sample more or less, evened out
    /// by the next pieces.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match &mut self.stage {
            Stage::Identity => out.extend_from_slice(input),
            Stage::Up(stage) => stage.process(input, out),
            Stage::Down(stage) => stage.process(input, out),
        }
    }

    /// How many samples, at the output rate, the conversion delays the signal by.
    pub fn delay_samples(&self) -> usize {
        match &self.stage {
            Stage::Identity => 0,
            Stage::Up(stage) => HALF_SPAN * stage.ratio,
            Stage::Down(_) => HALF_SPAN,
        }
    }

    /// Forgets the signal so far, as at the start of a new stream.
    pub fn reset(&mut self) {
        match &mut self.stage {
            Stage::Identity => {}
            Stage::Up(stage) => stage.history.iter_mut().for_each(|s| *s = 0.0),
            Stage::Down(stage) => {
                stage.history.iter_mut().for_each(|s| *s = 0.0);
                stage.phase = 0;
            }
        }
    }
}

/// The low-pass filter for a conversion by `ratio`, at the higher rate, with a length of
/// `taps_per_phase * ratio` (its last taps zero) and a gain of 1 at 0 Hz.
fn lowpass(ratio: usize, taps_per_phase: usize) -> Vec<f64> {
    let taps = 2 * HALF_SPAN * ratio + 1;
    let centre = (HALF_SPAN * ratio) as f64;
    let cutoff = 0.5 / ratio as f64;
    let i0_beta = bessel_i0(KAISER_BETA);
    let mut h: Vec<f64> = (0..taps)
        .map(|n| {
            let t = n as f64 - centre;
            let sinc = if t == 0.0 {
                1.0
            } else {
                let x = std::f64::consts::PI * 2.0 * cutoff * t;
                x.sin() / x
            };
            let r = t / centre;
            let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            2.0 * cutoff * sinc * window
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|c| *c /= sum);
    h.resize(taps_per_phase * ratio, 0.0);
    h
}

/// The modified Bessel function of the first kind, order 0, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Taps of each polyphase branch: the filter's 2·21·ratio + 1 taps, padded.
const TAPS_PER_PHASE: usize = 2 * HALF_SPAN + 1;

/// Raises the rate by `ratio`: each input sample gives `ratio` outputs, one per branch.
#[derive(Debug, Clone)]
struct Interpolator {
    ratio: usize,
    /// Branch `p` makes output `n·ratio + p` from the last [`TAPS_PER_PHASE`] inputs, oldest
    /// first.
    branches: Vec<[f32; TAPS_PER_PHASE]>,
    /// The last `TAPS_PER_PHASE - 1` inputs, then the current call's.
    history: Vec<f32>,
    /// Each branch's outputs for the current call.
    sums: Vec<f32>,
}

impl Interpolator {
    fn new(ratio: usize) -> Interpolator {
        let h = lowpass(ratio, TAPS_PER_PHASE);
        let branches = (0..ratio)
            .map(|p| {
                let mut branch = [0.0; TAPS_PER_PHASE];
                for (j, c) in branch.iter_mut().rev().enumerate() {
                    // Zero stuffing leaves one input in `ratio`: restore the level.
                    *c = (h[j * ratio + p] * ratio as f64) as f32;
                }
                branch
            })
            .collect();
        Interpolator { ratio, branches, history: vec![0.0; TAPS_PER_PHASE - 1], sums: Vec::new() }
    }

    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let n = input.len();
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        // Branch by branch and tap by tap over the whole block: long runs the compiler can
        // vectorise. Each output still sums its taps in the same order, whatever the block.
        self.sums.clear();
        self.sums.resize(n * self.ratio, 0.0);
        for (branch, sums) in self.branches.iter().zip(self.sums.chunks_exact_mut(n.max(1))) {
            for (j, &c) in branch.iter().enumerate() {
                for (sum, &x) in sums.iter_mut().zip(&self.history[j..j + n]) {
                    *sum += c * x;
                }
            }
        }
        out.reserve(n * self.ratio);
        for k in 0..n {
            out.extend((0..self.ratio).map(|p| to_i16(self.sums[p * n + k])));
        }
        self.history.drain(..n);
    }
}

/// Lowers the rate by `ratio`: one output for every `ratio` inputs.
#[derive(Debug, Clone)]
struct Decimator {
    ratio: usize,
    /// The filter, reversed: the coefficient of the newest input last.
    taps: Vec<f32>,
    /// The last `taps.len() - 1` inputs, then the current call's.
    history: Vec<f32>,
    /// Inputs since the last output, modulo `ratio`: an output is due when it is 0.
    phase: usize,
    /// Every `ratio`-th input of the current call, from one offset.
    stream: Vec<f32>,
    /// The current call's outputs.
    sums: Vec<f32>,
}

impl Decimator {
    fn new(ratio: usize) -> Decimator {
        let taps: Vec<f32> = lowpass(ratio, TAPS_PER_PHASE).iter().rev().map(|&c| c as f32).collect();
        let history = vec![0.0; taps.len() - 1];
        Decimator { ratio, taps, history, phase: 0, stream: Vec::new(), sums: Vec::new() }
    }

    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let n = input.len();
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        // Output k sums taps[i] * history[first + k * ratio + i]. Split by i modulo the
        // ratio, each part is a plain convolution of every ratio-th input, which runs over
        // the whole block in long vectorisable loops.
        let first = (self.ratio - self.phase) % self.ratio;
        let count = if first < n { (n - 1 - first) / self.ratio + 1 } else { 0 };
        self.sums.clear();
        self.sums.resize(count, 0.0);
        if count > 0 {
            for q in 0..self.ratio {
                self.stream.clear();
                self.stream.extend(
                    self.history[first + q..].iter().step_by(self.ratio).take(count + TAPS_PER_PHASE - 1).copied(),
                );
                for j in 0..TAPS_PER_PHASE {
                    let c = self.taps[j * self.ratio + q];
                    for (sum, &x) in self.sums.iter_mut().zip(&self.stream[j..j + count]) {
                        *sum += c * x;
                    }
                }
            }
        }
        out.extend(self.sums.iter().map(|&v| to_i16(v)));
        self.phase = (self.phase + n) % self.ratio;
        self.history.drain(..n);
    }
}

fn to_i16(v: f32) -> i16 {
    // `as` saturates.
    (v + 0.5f32.copysign(v)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [u32; 3] = [8000, 16_000, 48_000];

    fn sine(freq: f64, rate: u32, samples: usize, delay: f64) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                (10_000.0 * (2.0 * std::f64::consts::PI * freq * (n as f64 / f64::from(rate) - delay)).sin()) as i16
            })
            .collect()
    }

    fn run(resampler: &mut Resampler, input: &[i16], frame: usize) -> Vec<i16> {
        let mut out = Vec::new();
        for piece in input.chunks(frame) {
            resampler.process(piece, &mut out);
        }
        out
    }

    /// Power of `x` relative to a full 10 000 amplitude sine, in dB.
    fn level_db(x: &[i16]) -> f64 {
        let power = x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64;
        10.0 * (power.max(1e-3) / (10_000.0f64.powi(2) / 2.0)).log10()
    }

    fn snr_db(reference: &[i16], x: &[i16]) -> f64 {
        let signal: f64 = reference.iter().map(|&s| f64::from(s).powi(2)).sum();
        let noise: f64 = reference.iter().zip(x).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
        10.0 * (signal / noise.max(1e-9)).log10()
    }

    #[test]
    fn output_lengths_are_exact() {
        for from in RATES {
            for to in RATES {
                let mut resampler = Resampler::new(from, to).unwrap();
                assert_eq!((resampler.from_rate(), resampler.to_rate()), (from, to));
                let mut total_in = 0;
                let mut out = Vec::new();
                for ms in [10, 20, 30, 40, 60, 20] {
                    let input = vec![0; (from / 1000 * ms) as usize];
                    let before = out.len();
                    resampler.process(&input, &mut out);
                    assert_eq!(out.len() - before, (to / 1000 * ms) as usize, "{from} -> {to}, {ms} ms");
                    total_in += input.len();
                }
                assert_eq!(out.len() as u64, total_in as u64 * u64::from(to) / u64::from(from));
            }
        }
    }

    #[test]
    fn pieces_of_any_size_give_what_one_call_gives() {
        let input = sine(440.0, 48_000, 4800, 0.0);
        for (from, to) in
            [(48_000, 8000), (8000, 48_000), (16_000, 48_000), (48_000, 16_000), (8000, 16_000), (16_000, 8000)]
        {
            let input = &input[..(from / 100) as usize * 10];
            let whole = run(&mut Resampler::new(from, to).unwrap(), input, input.len());
            for frame in [1, 7, 160, 333] {
                let pieces = run(&mut Resampler::new(from, to).unwrap(), input, frame);
                assert_eq!(pieces, whole, "{from} -> {to} in pieces of {frame}");
            }
        }
    }

    #[test]
    fn unsupported_rates_are_refused() {
        assert_eq!(Resampler::new(44_100, 48_000).unwrap_err(), ResampleError { from: 44_100, to: 48_000 });
        assert!(Resampler::new(8000, 24_000).is_err());
        assert!(Resampler::new(0, 8000).is_err());
    }

    #[test]
    fn identity_copies() {
        let mut resampler = Resampler::new(16_000, 16_000).unwrap();
        let input = sine(1000.0, 16_000, 320, 0.0);
        assert_eq!(run(&mut resampler, &input, 320), input);
        assert_eq!(resampler.delay_samples(), 0);
    }

    #[test]
    fn tone_survives_a_round_trip() {
        for (low, high, freq) in
            [(8000, 48_000, 1000.0), (16_000, 48_000, 1000.0), (8000, 16_000, 1000.0), (16_000, 48_000, 6000.0)]
        {
            let mut up = Resampler::new(low, high).unwrap();
            let mut down = Resampler::new(high, low).unwrap();
            let input = sine(freq, low, low as usize, 0.0);
            let mut round_trip = Vec::new();
            for frame in input.chunks(low as usize / 50) {
                let mut mid = Vec::new();
                up.process(frame, &mut mid);
                down.process(&mid, &mut round_trip);
            }
            // The round trip delays by the sum of both delays, counted at the lower rate.
            let delay = up.delay_samples() * low as usize / high as usize + down.delay_samples();
            assert_eq!(delay, 42);
            let snr = snr_db(&input[..input.len() - delay], &round_trip[delay..]);
            assert!(snr > 55.0, "{low} <-> {high} at {freq} Hz: {snr:.1} dB");
        }
    }

    #[test]
    fn conversions_keep_the_passband_and_delay_as_told() {
        for (from, to, freq) in [
            (8000, 48_000, 3000.0),
            (48_000, 8000, 3400.0),
            (16_000, 48_000, 7000.0),
            (48_000, 16_000, 300.0),
            (16_000, 8000, 1000.0),
            (8000, 16_000, 3500.0),
        ] {
            let mut resampler = Resampler::new(from, to).unwrap();
            let output = run(&mut resampler, &sine(freq, from, from as usize, 0.0), (from / 50) as usize);
            let delay = resampler.delay_samples() as f64 / f64::from(to);
            let expected = sine(freq, to, to as usize, delay);
            let skip = to as usize / 20;
            let snr = snr_db(&expected[skip..], &output[skip..]);
            assert!(snr > 50.0, "{from} -> {to} at {freq} Hz: {snr:.1} dB");
        }
    }

    #[test]
    fn going_down_removes_what_the_lower_rate_cannot_carry() {
        for (from, to, freqs) in [
            (48_000, 8000, &[4400.0, 6000.0, 7000.0, 10_000.0, 15_000.0, 23_000.0][..]),
            (48_000, 16_000, &[8800.0, 10_000.0, 14_000.0, 20_000.0][..]),
            (16_000, 8000, &[4400.0, 5000.0, 6000.0, 7900.0][..]),
        ] {
            for &freq in freqs {
                let mut resampler = Resampler::new(from, to).unwrap();
                let output = run(&mut resampler, &sine(freq, from, from as usize, 0.0), (from / 50) as usize);
                let level = level_db(&output[to as usize / 20..]);
                assert!(level < -60.0, "{from} -> {to}: {freq} Hz left at {level:.1} dB");
            }
        }
    }

    #[test]
    fn going_up_leaves_no_images() {
        for (from, to, freq) in
            [(8000, 48_000, 1000.0), (8000, 48_000, 3000.0), (16_000, 48_000, 5000.0), (8000, 16_000, 2000.0)]
        {
            let mut resampler = Resampler::new(from, to).unwrap();
            let output = run(&mut resampler, &sine(freq, from, from as usize, 0.0), (from / 50) as usize);
            // Everything above the input's band is an image: filter the tone out by
            // comparing with the ideal delayed tone.
            let delay = resampler.delay_samples() as f64 / f64::from(to);
            let expected = sine(freq, to, to as usize, delay);
            let skip = to as usize / 20;
            let residue: Vec<i16> = output[skip..].iter().zip(&expected[skip..]).map(|(&a, &b)| a - b).collect();
            let level = level_db(&residue);
            assert!(level < -55.0, "{from} -> {to}: images and error of {freq} Hz at {level:.1} dB");
        }
    }

    #[test]
    fn reset_forgets_the_past() {
        let input = sine(1000.0, 8000, 800, 0.0);
        let mut resampler = Resampler::new(8000, 48_000).unwrap();
        let first = run(&mut resampler, &input, 160);
        resampler.reset();
        assert_eq!(run(&mut resampler, &input, 160), first);
        let mut resampler = Resampler::new(48_000, 8000).unwrap();
        resampler.process(&[1000; 7], &mut Vec::new());
        resampler.reset();
        assert_eq!(run(&mut resampler, &first, 960), run(&mut Resampler::new(48_000, 8000).unwrap(), &first, 960));
    }

    #[test]
    fn full_scale_saturates_instead_of_wrapping() {
        let square: Vec<i16> = (0..960).map(|n| if n % 96 < 48 { i16::MAX } else { i16::MIN }).collect();
        let mut resampler = Resampler::new(48_000, 8000).unwrap();
        let output = run(&mut resampler, &square, 960);
        // The filter's ringing overshoots full scale; it must clip, never flip sign.
        for (n, &s) in output.iter().enumerate().skip(30) {
            let phase = (n * 6 + 96 - 126 % 96) % 96;
            if (8..40).contains(&phase) {
                assert!(s > 0, "sample {n}: {s}");
            }
        }
    }
}
