//! Packet loss concealment for waveform codecs (G.711, G.722), after ITU-T G.711 Appendix I.
//!
//! [`Plc`] watches every frame a decoder produces. When a packet is lost it estimates the pitch
//! of the last sound heard and keeps playing its last pitch period, then its last two and three
//! periods (so a long loss does not buzz), with an overlap-add wherever the period changes. The
//! sound holds for 10 ms, then fades by 20% every 10 ms, silent after 60 ms. The first good
//! frame after a loss is cross-faded with the concealment's continuation, so the seam does not
//! click. Unlike Appendix I it adds no delay: instead of overlapping the history at the start
//! of a loss, it bends the first quarter period of the continuation onto the last sample heard.
//!
//! ```
//! use sambung_media::plc::Plc;
//!
//! let mut plc = Plc::new(8000);
//! let mut frame: Vec<i16> = (0..160).map(|n| ((n % 40) as i16 - 20) * 500).collect();
//! plc.good_frame(&mut frame); // after each decoded frame
//! let mut out = Vec::new();
//! plc.conceal(160, &mut out); // for a lost one
//! assert_eq!(out.len(), 160);
//! ```

/// Shortest pitch period searched: 5 ms (200 Hz), in samples at 8 kHz.
const PITCH_MIN: usize = 40;
/// Longest pitch period searched: 15 ms (66 Hz).
const PITCH_MAX: usize = 120;
/// Length of the window whose repetition the pitch search looks for: 20 ms.
const CORR_LEN: usize = 160;
/// History kept: the correlation window plus the longest period, or three longest periods.
const HISTORY: usize = 3 * PITCH_MAX;
/// 10 ms: the step at which a loss changes its treatment.
const STEP: usize = 80;
/// Gain lost per 10 ms after the first 10 ms of a loss: silence after 60 ms.
const FADE_PER_STEP: f32 = 0.2;
/// The longest cross-fade into the first good frame after a loss: 10 ms.
const MERGE_MAX: usize = STEP;
/// The cross-fade into the first good frame grows by 4 ms for each 10 ms lost after the first.
const MERGE_GROWTH: usize = 32;

/// Conceals lost frames of one stream of mono PCM.
#[derive(Debug, Clone)]
pub struct Plc {
    /// Samples per sample at 8 kHz: every length above is scaled by it.
    scale: usize,
    /// The last samples played, good or concealed, oldest first.
    history: Vec<i16>,
    /// The loss being concealed, if the last frame played was concealed.
    loss: Option<Loss>,
}

/// State of one run of consecutive lost frames.
#[derive(Debug, Clone)]
struct Loss {
    /// The pitch period, in samples.
    period: usize,
    /// The last three periods heard before the loss.
    pitch_buf: Vec<f32>,
    /// How many of the last periods are being repeated (1 to 3).
    periods: usize,
    /// Next read position in `pitch_buf`.
    pos: usize,
    /// The read position before the last change of `periods`, while cross-fading away from it.
    fade_from: Option<(usize, usize)>,
    /// Samples of the current cross-fade done.
    fade_done: usize,
    /// Correction that joins the continuation to the last sample heard, and its samples left.
    join: f32,
    join_left: usize,
    /// Samples concealed so far in this loss.
    elapsed: usize,
}

impl Plc {
    /// A concealer for PCM at `sample_rate`, which should be a multiple of 8000 Hz (G.711 and
    /// G.722 give 8000 and 16000); other rates are treated as the multiple below.
    pub fn new(sample_rate: u32) -> Plc {
        let scale = (sample_rate / 8000).max(1) as usize;
        Plc { scale, history: vec![0; HISTORY * scale], loss: None }
    }

    /// Whether the last frame played was concealed.
    pub fn is_concealing(&self) -> bool {
        self.loss.is_some()
    }

    /// Takes a frame that was decoded from a packet, before it is played. After a loss, its
    /// beginning is cross-faded with the continuation of the concealment.
    pub fn good_frame(&mut self, frame: &mut [i16]) {
        if let Some(mut loss) = self.loss.take() {
            let s = self.scale;
            let steps = loss.elapsed.div_ceil(STEP * s).max(1);
            let len = (loss.period / 4 + MERGE_GROWTH * s * (steps - 1)).min(MERGE_MAX * s).min(frame.len());
            for (i, sample) in frame[..len].iter_mut().enumerate() {
                let concealed = loss.next_sample(s);
                let w = (i + 1) as f32 / (len + 1) as f32;
                *sample = to_i16(f32::from(*sample) * w + concealed * (1.0 - w));
            }
        }
        self.remember(frame);
    }

    /// Appends `samples` samples standing in for lost audio.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let s = self.scale;
        let mut loss = match self.loss.take() {
            Some(loss) => loss,
            None => Loss::start(&self.history, self.pitch()),
        };
        let start = out.len();
        out.extend((0..samples).map(|_| to_i16(loss.next_sample(s))));
        self.loss = Some(loss);
        let concealed = out.split_off(start);
        self.remember(&concealed);
        out.extend_from_slice(&concealed);
    }

    fn remember(&mut self, samples: &[i16]) {
        let len = self.history.len();
        if samples.len() >= len {
            self.history.copy_from_slice(&samples[samples.len() - len..]);
        } else {
            self.history.copy_within(samples.len().., 0);
            self.history[len - samples.len()..].copy_from_slice(samples);
        }
    }

    /// The pitch period of the end of the history: the lag at which the last 20 ms best
    /// repeat, by normalised cross-correlation.
    fn pitch(&self) -> usize {
        let s = self.scale;
        let x: Vec<f32> = self.history.iter().map(|&v| f32::from(v)).collect();
        let n = x.len();
        let target = &x[n - CORR_LEN * s..];
        let mut best = (PITCH_MIN * s, 0.0f32);
        for lag in PITCH_MIN * s..=PITCH_MAX * s {
            let candidate = &x[n - CORR_LEN * s - lag..n - lag];
            let energy: f32 = candidate.iter().map(|v| v * v).sum();
            if energy <= 0.0 {
                continue;
            }
            let corr: f32 = target.iter().zip(candidate).map(|(a, b)| a * b).sum();
            let score = corr / energy.sqrt();
            if score > best.1 {
                best = (lag, score);
            }
        }
        best.0
    }
}

impl Loss {
    fn start(history: &[i16], period: usize) -> Loss {
        let pitch_buf: Vec<f32> = history[history.len() - 3 * period..].iter().map(|&v| f32::from(v)).collect();
        let n = pitch_buf.len();
        // The continuation repeats the last period: its first sample follows the one a period
        // before the last sample heard. Their difference is spread over a quarter period.
        let join = pitch_buf[n - 1] - pitch_buf[n - 1 - period];
        Loss {
            period,
            pitch_buf,
            periods: 1,
            pos: n - period,
            fade_from: None,
            fade_done: 0,
            join,
            join_left: period / 4,
            elapsed: 0,
        }
    }

    /// Reads the repeated region at `pos`, advancing and wrapping it.
    fn read(&self, pos: &mut usize, periods: usize) -> f32 {
        let n = self.pitch_buf.len();
        let value = self.pitch_buf[*pos];
        *pos += 1;
        if *pos == n {
            *pos = n - periods * self.period;
        }
        value
    }

    fn next_sample(&mut self, s: usize) -> f32 {
        let step = STEP * s;
        // At 10 and 20 ms, repeat one period more, keeping the phase, and cross-fade.
        if (self.elapsed == step || self.elapsed == 2 * step) && self.periods < 3 {
            self.fade_from = Some((self.pos, self.periods));
            self.fade_done = 0;
            self.periods += 1;
            self.pos -= self.period;
        }
        let mut pos = self.pos;
        let mut value = self.read(&mut pos, self.periods);
        self.pos = pos;
        if let Some((mut old_pos, old_periods)) = self.fade_from {
            let old = self.read(&mut old_pos, old_periods);
            let len = (self.period / 4).max(1);
            self.fade_done += 1;
            let w = self.fade_done as f32 / (len + 1) as f32;
            value = old * (1.0 - w) + value * w;
            self.fade_from = (self.fade_done < len).then_some((old_pos, old_periods));
        }
        if self.join_left > 0 {
            value += self.join * self.join_left as f32 / (self.period / 4 + 1) as f32;
            self.join_left -= 1;
        }
        let gain = if self.elapsed < step {
            1.0
        } else {
            (1.0 - FADE_PER_STEP * (self.elapsed - step) as f32 / step as f32).max(0.0)
        };
        self.elapsed += 1;
        value * gain
    }
}

fn to_i16(v: f32) -> i16 {
    // `as` saturates.
    (v + 0.5f32.copysign(v)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voiced sound with a period of `period` samples: a fundamental and two harmonics.
    fn voiced(n: usize, period: f64) -> i16 {
        let phase = 2.0 * std::f64::consts::PI * n as f64 / period;
        (6000.0 * phase.sin() + 3000.0 * (2.0 * phase + 0.5).sin() + 1500.0 * (3.0 * phase + 1.0).sin()) as i16
    }

    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
        let ea: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum();
        let eb: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
        dot / (ea * eb).sqrt()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Plays `frames` good frames of the voiced sound, returning the concealer and the next
    /// sample index.
    fn warmed_up(rate: u32, frame: usize, frames: usize, period: f64) -> (Plc, usize) {
        let mut plc = Plc::new(rate);
        let mut n = 0;
        for _ in 0..frames {
            let mut pcm: Vec<i16> = (n..n + frame).map(|i| voiced(i, period)).collect();
            let before = pcm.clone();
            plc.good_frame(&mut pcm);
            assert_eq!(pcm, before, "frames without a loss pass untouched");
            n += frame;
        }
        (plc, n)
    }

    #[test]
    fn finds_the_pitch() {
        for (rate, period) in [(8000, 57.0), (8000, 100.0), (16_000, 114.0), (16_000, 200.0)] {
            let (plc, _) = warmed_up(rate, 160, 10, period);
            let found = plc.pitch() as f64;
            assert!((found - period).abs() <= 1.0, "rate {rate}: period {period} found as {found}");
        }
    }

    #[test]
    fn concealment_continues_a_periodic_sound() {
        for (rate, frame, period) in [(8000, 160, 61.3), (16_000, 320, 122.6)] {
            let (mut plc, n) = warmed_up(rate, frame, 10, period);
            let mut out = Vec::new();
            plc.conceal(frame, &mut out);
            assert_eq!(out.len(), frame);
            assert!(plc.is_concealing());
            let truth: Vec<i16> = (n..n + frame).map(|i| voiced(i, period)).collect();
            // The first 10 ms are the sound itself, at full level.
            let first = frame / 2;
            let c = correlation(&out[..first], &truth[..first]);
            assert!(c > 0.95, "rate {rate}: correlation {c}");
            let ratio = rms(&out[..first]) / rms(&truth[..first]);
            assert!((0.85..1.15).contains(&ratio), "rate {rate}: level {ratio}");
            // The rest still follows it while fading.
            let c = correlation(&out[first..], &truth[first..]);
            assert!(c > 0.8, "rate {rate}: correlation {c}");
        }
    }

    #[test]
    fn concealment_joins_the_last_sample_without_a_click() {
        let (mut plc, n) = warmed_up(8000, 160, 10, 61.3);
        let last = voiced(n - 1, 61.3);
        let mut out = Vec::new();
        plc.conceal(160, &mut out);
        // The largest step of the sound itself, between neighbouring samples.
        let max_step = (1..2000).map(|i| (voiced(i, 61.3) - voiced(i - 1, 61.3)).abs()).max().unwrap();
        assert!((out[0] - last).abs() <= max_step + max_step / 4, "{} after {last}", out[0]);
        for w in out.windows(2) {
            assert!((w[1] - w[0]).abs() <= max_step + max_step / 4, "step {:?}", w);
        }
    }

    #[test]
    fn concealment_fades_to_silence_after_60_ms() {
        let (mut plc, _) = warmed_up(8000, 160, 10, 70.0);
        let mut out = Vec::new();
        for _ in 0..5 {
            plc.conceal(160, &mut out);
        }
        let level = |ms: usize| rms(&out[ms * 8..(ms + 10) * 8]);
        let levels: Vec<f64> = (0..10).map(|i| level(i * 10)).collect();
        // Full level for 10 ms, then falling each 10 ms, then silence.
        for i in 1..6 {
            assert!(levels[i] < levels[i - 1], "{levels:?}");
        }
        assert!(levels[5] < levels[0] * 0.15, "{levels:?}");
        assert!(out[60 * 8..].iter().all(|&s| s == 0), "silent after 60 ms");
    }

    #[test]
    fn first_good_frame_is_merged_smoothly() {
        let period = 61.3;
        let (mut plc, mut n) = warmed_up(8000, 160, 10, period);
        let mut out = Vec::new();
        plc.conceal(160, &mut out);
        n += 160;
        let truth: Vec<i16> = (n..n + 160).map(|i| voiced(i, period)).collect();
        let mut frame = truth.clone();
        plc.good_frame(&mut frame);
        assert!(!plc.is_concealing());
        // The start is a blend over a quarter period plus 4 ms for the second 10 ms lost;
        // the rest of the frame is untouched.
        let merged = 61 / 4 + 32;
        assert_ne!(frame[merged - 10..merged], truth[merged - 10..merged]);
        assert_eq!(frame[merged..], truth[merged..]);
        let max_step = (1..2000).map(|i| (voiced(i, period) - voiced(i - 1, period)).abs()).max().unwrap();
        let seam = [out[159], frame[0]];
        assert!((seam[1] - seam[0]).abs() <= max_step * 2, "seam {seam:?}");
        for w in frame.windows(2) {
            assert!((w[1] - w[0]).abs() <= max_step * 2, "step {w:?}");
        }
    }

    #[test]
    fn sound_after_a_long_loss_fades_in() {
        let (mut plc, _) = warmed_up(8000, 160, 10, 70.0);
        let mut out = Vec::new();
        for _ in 0..5 {
            plc.conceal(160, &mut out);
        }
        let mut frame = vec![10_000i16; 160];
        plc.good_frame(&mut frame);
        // 10 ms of fade-in from silence.
        assert!(frame[0] < 200, "{}", frame[0]);
        assert!(frame.windows(2).take(79).all(|w| w[1] >= w[0]));
        assert_eq!(frame[80..], [10_000; 80]);
    }

    #[test]
    fn concealment_at_the_start_of_a_call_is_silence() {
        let mut plc = Plc::new(16_000);
        let mut out = vec![1];
        plc.conceal(320, &mut out);
        assert_eq!(out.len(), 321);
        assert!(out[1..].iter().all(|&s| s == 0));
    }

    #[test]
    fn odd_sizes_and_back_to_back_losses() {
        let (mut plc, n) = warmed_up(8000, 80, 20, 45.0);
        let mut out = Vec::new();
        for size in [1, 7, 33, 0, 159] {
            plc.conceal(size, &mut out);
        }
        assert_eq!(out.len(), 200);
        let truth: Vec<i16> = (n..n + 80).map(|i| voiced(i, 45.0)).collect();
        assert!(correlation(&out[..80], &truth) > 0.95);
        // A long frame replaces the whole history.
        let mut long: Vec<i16> = (0..2000).map(|i| voiced(i, 45.0)).collect();
        plc.good_frame(&mut long);
        assert_eq!(plc.history[..], long[2000 - HISTORY..]);
    }
}
