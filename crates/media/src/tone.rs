//! Generated tones: call progress (dial, ringback, busy, congestion), a beep, DTMF digits.
//!
//! A [`ToneGenerator`] streams a [`Tone`] at any sample rate into buffers of any size. Tones are one
//! or two sine waves switched on and off by a cadence; each burst starts at phase zero and fades
//! in and out over 2 ms so that switching does not click. The call-progress tones follow the
//! North American precise tone plan (ANSI T1.401; dial 350+440 Hz, ringback 440+480 Hz 2 s on
//! 4 s off, busy 480+620 Hz 0.5/0.5 s, reorder 480+620 Hz 0.25/0.25 s) at its levels; other
//! countries' tones (425 Hz in most of Europe, ITU-T E.180) are [`Tone::Custom`]. DTMF digits use
//! the frequency pairs of ITU-T Q.23, for phones that take no RFC 4733 events.
//!
//! ```
//! use sambung_media::tone::{Tone, ToneGenerator};
//!
//! // Ringback for a caller on G.711: 20 ms frames at 8 kHz, forever.
//! let mut ringback = ToneGenerator::new(Tone::Ringback, 8000).unwrap();
//! let mut frame = [0i16; 160];
//! assert!(ringback.fill(&mut frame));
//!
//! // The beep before a voicemail recording, at 48 kHz: a finite tone says when it is over.
//! let mut beep = ToneGenerator::new(Tone::Beep, 48_000).unwrap();
//! let mut frame = [0i16; 960];
//! let frames = std::iter::from_fn(|| beep.fill(&mut frame).then_some(())).count();
//! assert_eq!(frames, 12); // 250 ms: 12 full frames, the 13th partly filled, then done
//! ```

use std::time::Duration;

/// Sine bursts fade in and out over this long.
const RAMP: Duration = Duration::from_millis(2);
/// The phasor of each oscillator is renormalised this often, in samples.
const RENORMALISE_EVERY: u32 = 1024;
/// Highest sample rate accepted.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// ITU-T Q.23 frequencies: rows (low group) and columns (high group) of the keypad.
const DTMF_LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const DTMF_HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const DTMF_KEYS: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// A tone to generate.
#[derive(Clone, Debug, PartialEq)]
pub enum Tone {
    /// 350 + 440 Hz, continuous.
    Dial,
    /// 440 + 480 Hz, 2 s on, 4 s off: the callee's phone is ringing.
    Ringback,
    /// 480 + 620 Hz, 0.5 s on, 0.5 s off: the callee is busy.
    Busy,
    /// 480 + 620 Hz, 0.25 s on, 0.25 s off ("reorder", fast busy): no route, no circuit.
    Congestion,
    /// 1000 Hz for 250 ms, once: "record after the tone".
    Beep,
    /// A DTMF key (`0`-`9`, `*`, `#`, `A`-`D`) sounding for `on`, then `off` of silence, once.
    Dtmf { key: char, on: Duration, off: Duration },
    /// Any other tone.
    Custom(ToneSpec),
}

impl Tone {
    /// A DTMF key for 100 ms followed by 50 ms of silence, a common dialling rhythm.
    pub fn dtmf(key: char) -> Tone {
        Tone::Dtmf { key, on: Duration::from_millis(100), off: Duration::from_millis(50) }
    }

    /// What the tone is made of.
    pub fn spec(&self) -> Result<ToneSpec, ToneError> {
        let ms = Duration::from_millis;
        // ANSI T1.401 levels in dBm0, less 3.17 dB: a full-scale sine is +3.17 dBm0 (G.711).
        Ok(match self {
            Tone::Dial => ToneSpec::continuous(&[(350.0, -16.2), (440.0, -16.2)]),
            Tone::Ringback => ToneSpec::cadenced(&[(440.0, -22.2), (480.0, -22.2)], &[(ms(2000), ms(4000))], true),
            Tone::Busy => ToneSpec::cadenced(&[(480.0, -27.2), (620.0, -27.2)], &[(ms(500), ms(500))], true),
            Tone::Congestion => ToneSpec::cadenced(&[(480.0, -27.2), (620.0, -27.2)], &[(ms(250), ms(250))], true),
            Tone::Beep => ToneSpec::cadenced(&[(1000.0, -12.0)], &[(ms(250), Duration::ZERO)], false),
            Tone::Dtmf { key, on, off } => {
                let (row, column) = DTMF_KEYS
                    .iter()
                    .enumerate()
                    .find_map(|(row, keys)| keys.iter().position(|k| k == &key.to_ascii_uppercase()).map(|c| (row, c)))
                    .ok_or(ToneError::DtmfKey(*key))?;
                // The high group 2 dB above the low group ("twist"), as phones send it.
                ToneSpec::cadenced(&[(DTMF_LOW[row], -12.0), (DTMF_HIGH[column], -10.0)], &[(*on, *off)], false)
            }
            Tone::Custom(spec) => spec.clone(),
        })
    }
}

/// One to four sine waves and the cadence that switches them on and off.
#[derive(Clone, Debug, PartialEq)]
pub struct ToneSpec {
    /// Each sine wave: its frequency in Hz (below half the sample rate) and its peak level in dB
    /// relative to full scale (a full-scale sine is 0 dBFS). If the peaks add up to more than
    /// full scale, all are scaled down together.
    pub components: Vec<(f32, f32)>,
    /// `(on, off)` periods played in order; empty: on forever.
    pub cadence: Vec<(Duration, Duration)>,
    /// Starts the cadence again when it ends; otherwise the tone ends.
    pub repeat: bool,
}

impl ToneSpec {
    /// Sine waves `(Hz, dBFS)` sounding without a break.
    pub fn continuous(components: &[(f32, f32)]) -> ToneSpec {
        ToneSpec { components: components.to_vec(), cadence: Vec::new(), repeat: false }
    }

    /// Sine waves `(Hz, dBFS)` switched by a cadence of `(on, off)` periods.
    pub fn cadenced(components: &[(f32, f32)], cadence: &[(Duration, Duration)], repeat: bool) -> ToneSpec {
        ToneSpec { components: components.to_vec(), cadence: cadence.to_vec(), repeat }
    }

    /// The total length of a tone that ends; `None` for one that repeats or never stops.
    pub fn duration(&self) -> Option<Duration> {
        if self.repeat || self.cadence.is_empty() {
            return None;
        }
        Some(self.cadence.iter().map(|(on, off)| *on + *off).sum())
    }
}

/// Errors of a tone's description.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ToneError {
    #[error("no DTMF key {0:?}")]
    DtmfKey(char),
    #[error("sample rate {0} Hz is out of range (1 to {MAX_SAMPLE_RATE})")]
    SampleRate(u32),
    #[error("{frequency} Hz cannot be generated at {sample_rate} Hz")]
    Frequency { frequency: f32, sample_rate: u32 },
    #[error("level {0} dBFS is out of range (at most 0)")]
    Level(f32),
    #[error("a tone has one to four sine waves, not {0}")]
    ComponentCount(usize),
}

/// A sine oscillator: a unit phasor rotated by one step per sample.
#[derive(Clone, Copy, Debug)]
struct Oscillator {
    re: f64,
    im: f64,
    cos: f64,
    sin: f64,
    amplitude: f64,
}

impl Oscillator {
    fn restart(&mut self) {
        self.re = 1.0;
        self.im = 0.0;
    }

    fn next(&mut self) -> f64 {
        let value = self.im * self.amplitude;
        let (re, im) = (self.re * self.cos - self.im * self.sin, self.re * self.sin + self.im * self.cos);
        self.re = re;
        self.im = im;
        value
    }

    fn renormalise(&mut self) {
        let scale = 1.0 / (self.re * self.re + self.im * self.im).sqrt();
        self.re *= scale;
        self.im *= scale;
    }
}

/// Streams a [`Tone`] as 16-bit PCM. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct ToneGenerator {
    oscillators: Vec<Oscillator>,
    /// `(on, off)` in samples; empty: on forever.
    cadence: Vec<(u64, u64)>,
    repeat: bool,
    segment: usize,
    /// Samples into the current segment (or since the start, for a continuous tone).
    position: u64,
    ramp: u64,
    since_renormalise: u32,
    finished: bool,
    sample_rate: u32,
}

impl ToneGenerator {
    /// A generator of `tone` at `sample_rate` Hz.
    pub fn new(tone: Tone, sample_rate: u32) -> Result<ToneGenerator, ToneError> {
        ToneGenerator::from_spec(&tone.spec()?, sample_rate)
    }

    /// A generator of any tone described by `spec`.
    pub fn from_spec(spec: &ToneSpec, sample_rate: u32) -> Result<ToneGenerator, ToneError> {
        if sample_rate == 0 || sample_rate > MAX_SAMPLE_RATE {
            return Err(ToneError::SampleRate(sample_rate));
        }
        if spec.components.is_empty() || spec.components.len() > 4 {
            return Err(ToneError::ComponentCount(spec.components.len()));
        }
        let mut oscillators = Vec::with_capacity(spec.components.len());
        for &(frequency, level_dbfs) in &spec.components {
            if !(frequency > 0.0 && frequency < sample_rate as f32 / 2.0) {
                return Err(ToneError::Frequency { frequency, sample_rate });
            }
            if level_dbfs.is_nan() || level_dbfs > 0.0 {
                return Err(ToneError::Level(level_dbfs));
            }
            let step = std::f64::consts::TAU * f64::from(frequency) / f64::from(sample_rate);
            let amplitude = f64::from(i16::MAX) * 10f64.powf(f64::from(level_dbfs) / 20.0);
            oscillators.push(Oscillator { re: 1.0, im: 0.0, cos: step.cos(), sin: step.sin(), amplitude });
        }
        // The sum of the peaks must fit 16 bits.
        let peak: f64 = oscillators.iter().map(|o| o.amplitude).sum();
        if peak > f64::from(i16::MAX) {
            let scale = f64::from(i16::MAX) / peak;
            oscillators.iter_mut().for_each(|o| o.amplitude *= scale);
        }
        let samples = |d: Duration| (d.as_nanos() * u128::from(sample_rate) / 1_000_000_000) as u64;
        let cadence: Vec<(u64, u64)> = spec
            .cadence
            .iter()
            .map(|&(on, off)| (samples(on), samples(off)))
            .filter(|&(on, off)| on + off > 0)
            .collect();
        let finished = cadence.is_empty() && !spec.cadence.is_empty();
        Ok(ToneGenerator {
            oscillators,
            cadence,
            repeat: spec.repeat,
            segment: 0,
            position: 0,
            ramp: samples(RAMP).max(1),
            since_renormalise: 0,
            finished,
            sample_rate,
        })
    }

    /// Writes the next `out.len()` samples. Returns `false` once a tone that ends has ended (the
    /// rest of `out` is silence then, and so is every later call).
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        for sample in out.iter_mut() {
            *sample = if self.finished { 0 } else { self.next_sample() };
        }
        !self.finished
    }

    /// Whether a tone that ends has ended.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The sample rate it generates at.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Starts the tone again from its beginning.
    pub fn restart(&mut self) {
        self.segment = 0;
        self.position = 0;
        self.finished = false;
        self.oscillators.iter_mut().for_each(Oscillator::restart);
    }

    fn next_sample(&mut self) -> i16 {
        let (on, off) = self.cadence.get(self.segment).copied().unwrap_or((u64::MAX, 0));
        let value = if self.position < on {
            // Fade in over the ramp, and out over the ramp before the burst ends.
            let envelope = if self.position < self.ramp {
                self.position as f64 / self.ramp as f64
            } else if on - self.position <= self.ramp {
                (on - self.position) as f64 / self.ramp as f64
            } else {
                1.0
            };
            let sum: f64 = self.oscillators.iter_mut().map(Oscillator::next).sum();
            self.since_renormalise += 1;
            if self.since_renormalise >= RENORMALISE_EVERY {
                self.since_renormalise = 0;
                self.oscillators.iter_mut().for_each(Oscillator::renormalise);
            }
            (sum * envelope).round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
        } else {
            0
        };
        self.position += 1;
        if !self.cadence.is_empty() && self.position >= on + off {
            self.position = 0;
            self.segment += 1;
            self.oscillators.iter_mut().for_each(Oscillator::restart);
            if self.segment == self.cadence.len() {
                if self.repeat {
                    self.segment = 0;
                } else {
                    self.finished = true;
                }
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    fn generate(tone: Tone, rate: u32, seconds: f64) -> Vec<i16> {
        let mut generator = ToneGenerator::new(tone, rate).unwrap();
        let mut out = vec![0; (seconds * f64::from(rate)) as usize];
        generator.fill(&mut out);
        out
    }

    /// Amplitude of `frequency` in `samples` by the Goertzel algorithm; `hann` windows the
    /// samples first (for frequencies that do not fit the window in whole periods).
    fn amplitude(samples: &[i16], frequency: f64, rate: u32, hann: bool) -> f64 {
        let n = samples.len() as f64;
        let coefficient = 2.0 * (TAU * frequency / f64::from(rate)).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for (i, &x) in samples.iter().enumerate() {
            let w = if hann { 0.5 - 0.5 * (TAU * i as f64 / n).cos() } else { 1.0 };
            let s = f64::from(x) * w + coefficient * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let magnitude = (s1 * s1 + s2 * s2 - coefficient * s1 * s2).sqrt();
        2.0 * magnitude / (n * if hann { 0.5 } else { 1.0 })
    }

    fn full_scale(dbfs: f64) -> f64 {
        32767.0 * 10f64.powf(dbfs / 20.0)
    }

    const PROBES: [f64; 6] = [350.0, 440.0, 480.0, 620.0, 1000.0, 425.0];

    #[test]
    fn call_progress_tones_have_their_frequencies_and_levels_at_any_rate() {
        let cases: [(Tone, &[f64], f64); 5] = [
            (Tone::Dial, &[350.0, 440.0], -16.2),
            (Tone::Ringback, &[440.0, 480.0], -22.2),
            (Tone::Busy, &[480.0, 620.0], -27.2),
            (Tone::Congestion, &[480.0, 620.0], -27.2),
            (Tone::Beep, &[1000.0], -12.0),
        ];
        for rate in [8000, 16_000, 44_100, 48_000] {
            for (tone, present, dbfs) in &cases {
                let samples = generate(tone.clone(), rate, 0.25);
                // 200 ms from 10 ms in: whole periods of every probe, past the fade-in.
                let start = rate as usize / 100;
                let window = &samples[start..start + rate as usize / 5];
                for probe in PROBES {
                    let got = amplitude(window, probe, rate, false);
                    if present.contains(&probe) {
                        let want = full_scale(*dbfs);
                        assert!((got / want - 1.0).abs() < 0.02, "{tone:?} at {rate}: {probe} Hz is {got}, not {want}");
                    } else {
                        assert!(got < 5.0, "{tone:?} at {rate}: {probe} Hz is {got}");
                    }
                }
            }
        }
    }

    /// On/off state of each 10 ms of `samples`.
    fn cadence_of(samples: &[i16], rate: u32) -> Vec<bool> {
        samples.chunks(rate as usize / 100).map(|chunk| chunk.iter().any(|&s| s.unsigned_abs() > 100)).collect()
    }

    fn expected_cadence(on_ms: usize, off_ms: usize, total_ms: usize) -> Vec<bool> {
        (0..total_ms / 10).map(|i| (i * 10) % (on_ms + off_ms) < on_ms).collect()
    }

    #[test]
    fn cadences_switch_on_and_off_in_time() {
        for (tone, on, off) in [(Tone::Ringback, 2000, 4000), (Tone::Busy, 500, 500), (Tone::Congestion, 250, 250)] {
            for rate in [8000, 48_000] {
                // Streamed in 20 ms frames, as the engine does.
                let mut generator = ToneGenerator::new(tone.clone(), rate).unwrap();
                let mut samples = Vec::new();
                let mut frame = vec![0; rate as usize / 50];
                for _ in 0..(13_000 / 20) {
                    assert!(generator.fill(&mut frame));
                    samples.extend_from_slice(&frame);
                }
                assert_eq!(cadence_of(&samples, rate), expected_cadence(on, off, 13_000), "{tone:?} at {rate}");
            }
        }
        assert_eq!(cadence_of(&generate(Tone::Dial, 8000, 5.0), 8000), vec![true; 500]);
    }

    #[test]
    fn dtmf_keys_are_the_q23_pairs() {
        let keys = "123A456B789C*0#D";
        for (index, key) in keys.chars().enumerate() {
            let (low, high) = (f64::from(DTMF_LOW[index / 4]), f64::from(DTMF_HIGH[index % 4]));
            for rate in [8000, 16_000] {
                let samples = generate(Tone::dtmf(key), rate, 0.2);
                let burst = &samples[..rate as usize / 10];
                for probe in DTMF_LOW.iter().chain(&DTMF_HIGH).map(|&f| f64::from(f)) {
                    let got = amplitude(burst, probe, rate, true);
                    let want = if probe == low {
                        full_scale(-12.0)
                    } else if probe == high {
                        full_scale(-10.0)
                    } else {
                        0.0
                    };
                    assert!(
                        (got - want).abs() < 0.1 * full_scale(-12.0),
                        "key {key} at {rate}: {probe} Hz is {got}, not {want}"
                    );
                }
                // 100 ms on, 50 ms off, then nothing.
                let end = rate as usize * 15 / 100;
                assert!(samples[rate as usize / 10..].iter().all(|&s| s == 0));
                assert!(ToneGenerator::new(Tone::dtmf(key), rate).unwrap().fill(&mut vec![0; end - 1]));
                assert!(!ToneGenerator::new(Tone::dtmf(key), rate).unwrap().fill(&mut vec![0; end]));
            }
        }
        assert_eq!(Tone::dtmf('a').spec(), Tone::dtmf('A').spec());
        assert_eq!(ToneGenerator::new(Tone::dtmf('x'), 8000).unwrap_err(), ToneError::DtmfKey('x'));
    }

    #[test]
    fn a_finite_tone_ends_and_stays_silent() {
        let mut beep = ToneGenerator::new(Tone::Beep, 48_000).unwrap();
        let mut frame = [0i16; 960];
        for _ in 0..12 {
            assert!(beep.fill(&mut frame));
            assert!(frame.iter().any(|&s| s != 0));
        }
        assert!(!beep.fill(&mut frame));
        assert!(beep.is_finished());
        // 250 ms = 12 000 samples: 480 of tone in the 13th frame, then silence.
        assert!(frame[..470].iter().any(|&s| s != 0));
        assert!(frame[480..].iter().all(|&s| s == 0));
        assert!(!beep.fill(&mut frame));
        assert!(frame.iter().all(|&s| s == 0));
        beep.restart();
        assert!(beep.fill(&mut frame));
        assert_eq!(Tone::Beep.spec().unwrap().duration(), Some(Duration::from_millis(250)));
        assert_eq!(Tone::Ringback.spec().unwrap().duration(), None);
    }

    #[test]
    fn bursts_fade_in_and_out_without_a_click() {
        let samples = generate(Tone::Busy, 8000, 1.0);
        assert_eq!(samples[0], 0);
        // Within the 2 ms ramps the level stays under what the ramp allows.
        for (i, &s) in samples[..16].iter().enumerate() {
            assert!(f64::from(s.unsigned_abs()) <= 2.0 * full_scale(-27.2) * (i as f64 / 16.0) + 1.0);
        }
        let end = 4000; // 0.5 s
        for (i, &s) in samples[end - 16..end].iter().enumerate() {
            assert!(f64::from(s.unsigned_abs()) <= 2.0 * full_scale(-27.2) * ((16 - i) as f64 / 16.0) + 1.0);
        }
    }

    #[test]
    fn streaming_in_any_buffer_size_gives_the_same_samples() {
        let whole = generate(Tone::Ringback, 16_000, 7.0);
        let mut generator = ToneGenerator::new(Tone::Ringback, 16_000).unwrap();
        let mut pieces = Vec::new();
        for size in [1usize, 7, 160, 333, 1000].iter().cycle() {
            if pieces.len() >= whole.len() {
                break;
            }
            let mut buffer = vec![0; (*size).min(whole.len() - pieces.len())];
            generator.fill(&mut buffer);
            pieces.extend(buffer);
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn a_long_tone_keeps_its_level() {
        let mut generator = ToneGenerator::new(Tone::Dial, 8000).unwrap();
        let mut buffer = vec![0; 8000 * 60];
        for _ in 0..10 {
            generator.fill(&mut buffer); // ten minutes
        }
        let window = &buffer[buffer.len() - 1600..];
        for frequency in [350.0, 440.0] {
            let got = amplitude(window, frequency, 8000, false);
            assert!((got / full_scale(-16.2) - 1.0).abs() < 0.01, "{got}");
        }
    }

    #[test]
    fn custom_tones_and_bad_descriptions() {
        // A European ringing tone: 425 Hz, 1 s on, 4 s off.
        let europe = ToneSpec::cadenced(&[(425.0, -20.0)], &[(Duration::from_secs(1), Duration::from_secs(4))], true);
        let mut generator = ToneGenerator::from_spec(&europe, 8000).unwrap();
        let mut samples = vec![0; 8000 * 10];
        assert!(generator.fill(&mut samples));
        assert_eq!(cadence_of(&samples, 8000), expected_cadence(1000, 4000, 10_000));
        assert!((amplitude(&samples[800..2400], 425.0, 8000, false) / full_scale(-20.0) - 1.0).abs() < 0.02);

        // Peaks that would overflow are scaled down together.
        let loud = ToneSpec::continuous(&[(500.0, 0.0), (700.0, 0.0)]);
        let samples = {
            let mut g = ToneGenerator::from_spec(&loud, 8000).unwrap();
            let mut s = vec![0; 8000];
            g.fill(&mut s);
            s
        };
        assert!((amplitude(&samples[80..1680], 500.0, 8000, false) / full_scale(-6.02) - 1.0).abs() < 0.01);

        assert_eq!(ToneGenerator::new(Tone::Dial, 0).unwrap_err(), ToneError::SampleRate(0));
        assert_eq!(
            ToneGenerator::new(Tone::Beep, 1500).unwrap_err(),
            ToneError::Frequency { frequency: 1000.0, sample_rate: 1500 }
        );
        let bad =
            |components: &[(f32, f32)]| ToneGenerator::from_spec(&ToneSpec::continuous(components), 8000).unwrap_err();
        assert_eq!(bad(&[]), ToneError::ComponentCount(0));
        assert_eq!(bad(&[(100.0, -10.0); 5]), ToneError::ComponentCount(5));
        assert_eq!(bad(&[(100.0, 3.0)]), ToneError::Level(3.0));
        assert!(matches!(bad(&[(f32::NAN, -3.0)]), ToneError::Frequency { .. }));
        assert!(matches!(bad(&[(100.0, f32::NAN)]), ToneError::Level(_)));
        // A cadence of nothing ends at once.
        let empty = ToneSpec::cadenced(&[(100.0, -10.0)], &[(Duration::ZERO, Duration::ZERO)], true);
        assert!(ToneGenerator::from_spec(&empty, 8000).unwrap().is_finished());
    }
}
