//! WAV files: a player that turns any PCM WAV into 20 ms mono frames at the engine's rate, and a
//! recorder that writes 16-bit mono and keeps track of how loud the recording was.
//!
//! [`WavPlayer`] reads 8-, 16-, 24- and 32-bit integer or 32-bit float PCM with any number of
//! channels (mixed down to mono) from anything that is `Read + Seek`, and converts the rate with
//! [`crate::resample::Resampler`] (between 8, 16 and 48 kHz; a file at another rate can be played
//! at its own rate only). [`WavRecorder`] writes to anything that is `Write + Seek` and finalises
//! the header at the end; its levels tell voicemail whether anything was said at all.
//! A bad file is a [`WavError`], never a panic.
//!
//! ```
//! use std::io::Cursor;
//! use sambung_media::wav::{WavPlayer, WavRecorder};
//!
//! // Record one second of a 400 Hz tone at 16 kHz ...
//! let mut file = Vec::new();
//! let mut recorder = WavRecorder::new(Cursor::new(&mut file), 16_000).unwrap();
//! let tone: Vec<i16> = (0..16_000).map(|n| ((n as f32 * 0.157).sin() * 8000.0) as i16).collect();
//! recorder.write(&tone).unwrap();
//! assert!(!recorder.is_silent());
//! let summary = recorder.finalize().unwrap();
//! assert_eq!(summary.samples, 16_000);
//!
//! // ... and play it back to a G.711 leg: 20 ms frames at 8 kHz.
//! let mut player = WavPlayer::new(Cursor::new(file), 8000).unwrap();
//! let mut frames = 0;
//! while let Some(frame) = player.next_frame().unwrap() {
//!     assert_eq!(frame.len(), 160);
//!     frames += 1;
//! }
//! assert_eq!(frames, 50);
//! ```

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::resample::{ResampleError, Resampler};

/// Frames are 20 ms long.
const FRAME_MS: u32 = 20;
/// Loudness is judged over windows of this many milliseconds.
const WINDOW_MS: u32 = 20;
/// Highest sample rate a file may declare.
const MAX_SAMPLE_RATE: u32 = 384_000;

/// Errors of reading or writing a WAV file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("WAV I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed WAV file: {0}")]
    Malformed(&'static str),
    #[error("unsupported WAV encoding: {0}")]
    Unsupported(&'static str),
    #[error("cannot play a {from} Hz file at {to} Hz (conversions are between 8, 16 and 48 kHz)")]
    Rate { from: u32, to: u32 },
    #[error("sample rate {0} Hz is out of range")]
    SampleRate(u32),
    #[error("a WAV file holds at most 4 GiB of samples")]
    TooLong,
}

impl From<hound::Error> for WavError {
    fn from(error: hound::Error) -> WavError {
        match error {
            hound::Error::IoError(error) => WavError::Io(error),
            hound::Error::FormatError(reason) => WavError::Malformed(reason),
            hound::Error::TooWide => WavError::Unsupported("samples wider than 32 bits"),
            hound::Error::Unsupported => WavError::Unsupported("compressed or unknown format"),
            hound::Error::InvalidSampleFormat => WavError::Malformed("sample format differs from the header"),
            hound::Error::UnfinishedSample => WavError::Malformed("the last sample frame is incomplete"),
        }
    }
}

impl From<ResampleError> for WavError {
    fn from(error: ResampleError) -> WavError {
        WavError::Rate { from: error.from, to: error.to }
    }
}

/// How a WAV file's samples are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavFormat {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    /// IEEE float samples (otherwise signed integers; unsigned for 8 bits).
    pub float: bool,
}

/// Plays a WAV file as 20 ms mono frames at a chosen rate. See the [module docs](self).
pub struct WavPlayer<R: Read + Seek> {
    /// `None` only while [`Self::rewind`] reopens it.
    reader: Option<hound::WavReader<R>>,
    format: WavFormat,
    rate: u32,
    resampler: Option<Resampler>,
    /// Sample frames (one sample per channel) not read yet.
    remaining: u64,
    /// Output samples still to drop: the resampler's delay, so playback starts on time.
    lead_in: usize,
    /// Mono samples at the file's rate, one chunk.
    input: Vec<i16>,
    /// Samples at the output rate not given out yet.
    pending: Vec<i16>,
    /// File samples per chunk read.
    chunk_len: usize,
    /// Mono samples read from the file, and samples produced from them at the output rate.
    fed: u64,
    produced: u64,
    frame: Vec<i16>,
    frame_len: usize,
    /// The file's data ended: the resampler has been flushed into `pending`.
    drained: bool,
    /// The data chunk was shorter than its header said.
    truncated: bool,
}

impl<R: Read + Seek> WavPlayer<R> {
    /// Opens a WAV file to play at `rate` Hz.
    pub fn new(reader: R, rate: u32) -> Result<WavPlayer<R>, WavError> {
        let reader = hound::WavReader::new(reader)?;
        let spec = reader.spec();
        let format = WavFormat {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            bits_per_sample: spec.bits_per_sample,
            float: spec.sample_format == hound::SampleFormat::Float,
        };
        match (format.float, format.bits_per_sample) {
            (false, 8 | 16 | 24 | 32) | (true, 32) => {}
            (false, _) => return Err(WavError::Unsupported("integer samples other than 8, 16, 24 or 32 bits")),
            (true, _) => return Err(WavError::Unsupported("float samples other than 32 bits")),
        }
        if format.sample_rate == 0 || format.sample_rate > MAX_SAMPLE_RATE {
            return Err(WavError::SampleRate(format.sample_rate));
        }
        if rate == 0 || rate > MAX_SAMPLE_RATE {
            return Err(WavError::SampleRate(rate));
        }
        let resampler = if format.sample_rate == rate { None } else { Some(Resampler::new(format.sample_rate, rate)?) };
        let frame_len = (rate * FRAME_MS / 1000).max(1) as usize;
        let chunk_len = (format.sample_rate * FRAME_MS / 1000).max(1) as usize;
        let mut player = WavPlayer {
            remaining: u64::from(reader.duration()),
            reader: Some(reader),
            format,
            rate,
            resampler,
            lead_in: 0,
            input: Vec::with_capacity(chunk_len),
            pending: Vec::with_capacity(2 * frame_len),
            chunk_len,
            fed: 0,
            produced: 0,
            frame: Vec::with_capacity(frame_len),
            frame_len,
            drained: false,
            truncated: false,
        };
        player.lead_in = player.resampler.as_ref().map_or(0, Resampler::delay_samples);
        Ok(player)
    }

    /// How the file is stored.
    pub fn format(&self) -> WavFormat {
        self.format
    }

    /// The rate frames come at.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Samples per frame: 20 ms at [`Self::sample_rate`].
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The file's length as its header gives it.
    pub fn duration(&self) -> Duration {
        let frames = self.reader.as_ref().map_or(0, |r| u64::from(r.duration()));
        Duration::from_nanos(frames.saturating_mul(1_000_000_000) / u64::from(self.format.sample_rate))
    }

    /// True if the data ended before the length its header gives (what was there was played).
    pub fn was_truncated(&self) -> bool {
        self.truncated
    }

    /// The next 20 ms of mono audio, or `None` at the end of the file. The last frame is padded
    /// with silence.
    pub fn next_frame(&mut self) -> Result<Option<&[i16]>, WavError> {
        while self.pending.len() < self.frame_len && !self.drained {
            self.read_chunk()?;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let take = self.frame_len.min(self.pending.len());
        self.frame.clear();
        self.frame.extend(self.pending.drain(..take));
        self.frame.resize(self.frame_len, 0);
        Ok(Some(&self.frame))
    }

    /// Starts again from the beginning of the file (for music on hold that loops).
    pub fn rewind(&mut self) -> Result<(), WavError> {
        let reader = self.reader.take().ok_or(WavError::Malformed("the file could not be reopened"))?;
        let mut inner = reader.into_inner();
        inner.seek(SeekFrom::Start(0))?;
        let reader = hound::WavReader::new(inner)?;
        self.remaining = u64::from(reader.duration());
        self.reader = Some(reader);
        if let Some(resampler) = &mut self.resampler {
            resampler.reset();
            self.lead_in = resampler.delay_samples();
        }
        self.pending.clear();
        self.fed = 0;
        self.produced = 0;
        self.drained = false;
        self.truncated = false;
        Ok(())
    }

    /// Reads one chunk (20 ms at the file's rate) as mono, converts it to the output rate and
    /// appends it to `pending`; at the end of the data, flushes the resampler.
    fn read_chunk(&mut self) -> Result<(), WavError> {
        let wanted = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(self.chunk_len);
        self.input.clear();
        if wanted > 0 {
            let reader = self.reader.as_mut().ok_or(WavError::Malformed("the file could not be reopened"))?;
            let complete = read_mono(reader, self.format, wanted, &mut self.input)?;
            self.remaining -= self.input.len() as u64;
            if !complete {
                self.truncated = true;
                self.remaining = 0;
            }
        }
        self.fed += self.input.len() as u64;
        let start = self.pending.len();
        let Some(resampler) = &mut self.resampler else {
            self.pending.extend_from_slice(&self.input);
            self.drained = self.remaining == 0;
            return Ok(());
        };
        resampler.process(&self.input, &mut self.pending);
        if self.remaining == 0 {
            // The last samples are still inside the filter: push them out with silence.
            let delay = resampler.delay_samples() as u64;
            let flush = (delay * u64::from(self.format.sample_rate)).div_ceil(u64::from(self.rate)) as usize;
            resampler.process(&vec![0; flush + 1], &mut self.pending);
        }
        // The filter delays the sound: its first output samples come before the file starts.
        let lead_in = self.lead_in.min(self.pending.len() - start);
        self.pending.drain(start..start + lead_in);
        self.lead_in -= lead_in;
        self.produced += (self.pending.len() - start) as u64;
        if self.remaining == 0 {
            // Exactly the file's length at the new rate, without the flushing silence's tail.
            let target = self.fed * u64::from(self.rate) / u64::from(self.format.sample_rate);
            let excess = self.produced.saturating_sub(target).min(self.pending.len() as u64);
            self.pending.truncate(self.pending.len() - excess as usize);
            self.produced -= excess;
            self.drained = true;
        }
        Ok(())
    }
}

impl<R: Read + Seek> std::fmt::Debug for WavPlayer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavPlayer")
            .field("format", &self.format)
            .field("rate", &self.rate)
            .field("remaining", &self.remaining)
            .field("pending", &self.pending.len())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

/// Reads `frames` sample frames from `reader` and appends their channel average to `out` as
/// 16-bit samples. Returns `false` when the data ended early.
fn read_mono<R: Read>(
    reader: &mut hound::WavReader<R>,
    format: WavFormat,
    frames: usize,
    out: &mut Vec<i16>,
) -> Result<bool, WavError> {
    let channels = i64::from(format.channels.max(1));
    if format.float {
        let mut samples = reader.samples::<f32>();
        for _ in 0..frames {
            let mut sum = 0.0f64;
            for _ in 0..channels {
                match samples.next() {
                    Some(Ok(v)) if v.is_finite() => sum += f64::from(v),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return eof_or(error),
                    None => return Ok(false),
                }
            }
            out.push((sum / channels as f64 * 32768.0).round().clamp(-32768.0, 32767.0) as i16);
        }
    } else {
        let bits = u32::from(format.bits_per_sample);
        let mut samples = reader.samples::<i32>();
        for _ in 0..frames {
            let mut sum = 0i64;
            for _ in 0..channels {
                match samples.next() {
                    Some(Ok(v)) => sum += i64::from(v),
                    Some(Err(error)) => return eof_or(error),
                    None => return Ok(false),
                }
            }
            let mean = sum / channels;
            let scaled = if bits >= 16 { mean >> (bits - 16) } else { mean << (16 - bits) };
            out.push(scaled.clamp(-32768, 32767) as i16);
        }
    }
    Ok(true)
}

/// A read error: the end of the data (a truncated file, played as far as it goes) or a failure.
/// hound 3.5 reports a short read as `ErrorKind::Other` with this message.
fn eof_or(error: hound::Error) -> Result<bool, WavError> {
    match error {
        hound::Error::IoError(e)
            if e.kind() == std::io::ErrorKind::UnexpectedEof
                || (e.kind() == std::io::ErrorKind::Other && e.to_string() == "Failed to read enough bytes.") =>
        {
            Ok(false)
        }
        error => Err(error.into()),
    }
}

/// Levels of a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Levels {
    /// The loudest sample, in dB relative to full scale (−∞ for digital silence).
    pub peak_dbfs: f32,
    /// The RMS level of the whole recording in dBFS, such that a full-scale sine reads 0 (AES17).
    pub rms_dbfs: f32,
    /// How long the 20 ms windows above the silence threshold add up to.
    pub voiced: Duration,
}

/// What a finished recording holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecordingSummary {
    /// Samples written.
    pub samples: u64,
    pub duration: Duration,
    pub levels: Levels,
    /// No 20 ms window was above the silence threshold.
    pub silent: bool,
}

/// Writes 16-bit mono WAV at one rate and tracks its levels. See the [module docs](self).
pub struct WavRecorder<W: Write + Seek> {
    writer: hound::WavWriter<W>,
    sample_rate: u32,
    samples: u64,
    peak: u16,
    sum_squares: u128,
    window_len: u32,
    window_fill: u32,
    window_squares: u64,
    /// Sum of squares over a window above which it counts as voiced.
    window_threshold: u64,
    voiced_windows: u64,
}

impl<W: Write + Seek> std::fmt::Debug for WavRecorder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("sample_rate", &self.sample_rate)
            .field("samples", &self.samples)
            .field("levels", &self.levels())
            .finish_non_exhaustive()
    }
}

/// Windows below this RMS level count as silence by default: far above line and comfort noise
/// (−60 dBFS and below), far below speech (around −20 dBFS).
pub const DEFAULT_SILENCE_THRESHOLD_DBFS: f32 = -45.0;

impl<W: Write + Seek> WavRecorder<W> {
    /// Starts a 16-bit mono file at `sample_rate` Hz, writing its header at once.
    pub fn new(writer: W, sample_rate: u32) -> Result<WavRecorder<W>, WavError> {
        if sample_rate == 0 || sample_rate > MAX_SAMPLE_RATE {
            return Err(WavError::SampleRate(sample_rate));
        }
        let spec =
            hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let window_len = (sample_rate * WINDOW_MS / 1000).max(1);
        let mut recorder = WavRecorder {
            writer: hound::WavWriter::new(writer, spec)?,
            sample_rate,
            samples: 0,
            peak: 0,
            sum_squares: 0,
            window_len,
            window_fill: 0,
            window_squares: 0,
            window_threshold: 0,
            voiced_windows: 0,
        };
        recorder.set_silence_threshold(DEFAULT_SILENCE_THRESHOLD_DBFS);
        Ok(recorder)
    }

    /// Windows of 20 ms whose RMS level (dBFS, a full-scale sine reading 0) is at or below this
    /// count as silence.
    pub fn set_silence_threshold(&mut self, dbfs: f32) {
        // RMS of a full-scale sine is 32767/√2; a window's sum of squares is RMS² × length.
        let rms = f64::from(i16::MAX) / std::f64::consts::SQRT_2 * 10f64.powf(f64::from(dbfs) / 20.0);
        self.window_threshold = (rms * rms * f64::from(self.window_len)).min(u64::MAX as f64) as u64;
    }

    /// Appends samples.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), WavError> {
        if (self.samples + samples.len() as u64) * 2 > u64::from(u32::MAX) - 64 {
            return Err(WavError::TooLong);
        }
        let Ok(count) = u32::try_from(samples.len()) else { return Err(WavError::TooLong) };
        let mut batch = self.writer.get_i16_writer(count);
        for &sample in samples {
            batch.write_sample(sample);
        }
        batch.flush()?;
        for &sample in samples {
            let square = u64::from(sample.unsigned_abs()).pow(2);
            self.peak = self.peak.max(sample.unsigned_abs());
            self.sum_squares += u128::from(square);
            self.window_squares += square;
            self.window_fill += 1;
            if self.window_fill == self.window_len {
                if self.window_squares > self.window_threshold {
                    self.voiced_windows += 1;
                }
                self.window_fill = 0;
                self.window_squares = 0;
            }
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Samples written so far.
    pub fn samples_written(&self) -> u64 {
        self.samples
    }

    /// Length of the recording so far.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.samples * 1_000_000_000 / u64::from(self.sample_rate))
    }

    /// Levels so far (the window being filled is not judged yet).
    pub fn levels(&self) -> Levels {
        let db = |ratio: f64| (20.0 * ratio.log10()) as f32;
        let rms = if self.samples == 0 { 0.0 } else { (self.sum_squares as f64 / self.samples as f64).sqrt() };
        Levels {
            peak_dbfs: db(f64::from(self.peak) / f64::from(i16::MAX)),
            rms_dbfs: db(rms * std::f64::consts::SQRT_2 / f64::from(i16::MAX)),
            voiced: Duration::from_millis(self.voiced_windows * u64::from(WINDOW_MS)),
        }
    }

    /// True while no 20 ms window has been louder than the silence threshold: voicemail drops
    /// such recordings.
    pub fn is_silent(&self) -> bool {
        self.voiced_windows == 0
    }

    /// Writes the header for what has been written so far, so that the file is valid even if
    /// the process dies; recording goes on.
    pub fn flush(&mut self) -> Result<(), WavError> {
        Ok(self.writer.flush()?)
    }

    /// Finishes the file: the header gets its final lengths.
    pub fn finalize(mut self) -> Result<RecordingSummary, WavError> {
        // A partly filled last window is judged on its own.
        if self.window_fill > 0 {
            let threshold = self.window_threshold * u64::from(self.window_fill) / u64::from(self.window_len);
            if self.window_squares > threshold {
                self.voiced_windows += 1;
            }
        }
        let summary = RecordingSummary {
            samples: self.samples,
            duration: self.duration(),
            levels: self.levels(),
            silent: self.is_silent(),
        };
        self.writer.finalize()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    fn sine(rate: u32, frequency: f64, amplitude: f64, len: usize) -> Vec<i16> {
        (0..len).map(|n| (amplitude * (TAU * frequency * n as f64 / f64::from(rate)).sin()).round() as i16).collect()
    }

    /// Amplitude of `frequency` in `samples` (Goertzel; whole periods assumed).
    fn amplitude(samples: &[i16], frequency: f64, rate: u32) -> f64 {
        let coefficient = 2.0 * (TAU * frequency / f64::from(rate)).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in samples {
            let s = f64::from(x) + coefficient * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        2.0 * (s1 * s1 + s2 * s2 - coefficient * s1 * s2).sqrt() / samples.len() as f64
    }

    /// A WAV file written by hound itself, with interleaved `samples`.
    fn wav_file<S: hound::Sample + Copy>(spec: hound::WavSpec, samples: &[S]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer = hound::WavWriter::new(Cursor::new(&mut bytes), spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        bytes
    }

    fn spec(rate: u32, channels: u16, bits: u16, float: bool) -> hound::WavSpec {
        let sample_format = if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int };
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format }
    }

    fn play_all(bytes: Vec<u8>, rate: u32) -> Vec<i16> {
        let mut player = WavPlayer::new(Cursor::new(bytes), rate).unwrap();
        let mut out = Vec::new();
        let frame_len = player.frame_len();
        while let Some(frame) = player.next_frame().unwrap() {
            assert_eq!(frame.len(), frame_len);
            out.extend_from_slice(frame);
        }
        out
    }

    fn record(rate: u32, samples: &[i16]) -> (Vec<u8>, RecordingSummary) {
        let mut bytes = Vec::new();
        let mut recorder = WavRecorder::new(Cursor::new(&mut bytes), rate).unwrap();
        for piece in samples.chunks(333) {
            recorder.write(piece).unwrap();
        }
        let summary = recorder.finalize().unwrap();
        (bytes, summary)
    }

    #[test]
    fn a_recording_plays_back_sample_for_sample() {
        let samples: Vec<i16> = (0..1234).map(|n: i32| ((n * 7919) % 65_536 - 32_768) as i16).collect();
        let (bytes, summary) = record(8000, &samples);
        assert_eq!(summary.samples, 1234);
        assert_eq!(summary.duration, Duration::from_micros(154_250));
        // hound reads it back as written ...
        let reader = hound::WavReader::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(reader.spec(), spec(8000, 1, 16, false));
        assert_eq!(reader.into_samples::<i16>().map(Result::unwrap).collect::<Vec<_>>(), samples);
        // ... and so does the player, in 20 ms frames with the last one padded.
        let played = play_all(bytes, 8000);
        assert_eq!(played.len(), 8 * 160);
        assert_eq!(&played[..1234], &samples[..]);
        assert!(played[1234..].iter().all(|&s| s == 0));
    }

    #[test]
    fn stereo_is_mixed_down_and_resampled() {
        let left = sine(16_000, 1000.0, 8000.0, 16_000);
        let right = sine(16_000, 500.0, 4000.0, 16_000);
        let interleaved: Vec<i16> = left.iter().zip(&right).flat_map(|(&l, &r)| [l, r]).collect();
        let bytes = wav_file(spec(16_000, 2, 16, false), &interleaved);
        for rate in [8000, 16_000, 48_000] {
            let played = play_all(bytes.clone(), rate);
            assert_eq!(played.len(), rate as usize, "one second at {rate} Hz");
            let middle = &played[rate as usize / 4..rate as usize * 3 / 4];
            assert!((amplitude(middle, 1000.0, rate) - 4000.0).abs() < 40.0, "{rate}");
            assert!((amplitude(middle, 500.0, rate) - 2000.0).abs() < 20.0, "{rate}");
        }
        // Opposite channels cancel.
        let opposite: Vec<i16> = left.iter().flat_map(|&l| [l, -l]).collect();
        assert!(play_all(wav_file(spec(16_000, 2, 16, false), &opposite), 48_000).iter().all(|&s| s.abs() <= 1));
    }

    #[test]
    fn resampling_keeps_timing_and_length() {
        // A click at 100 ms in a 8 kHz file is at 100 ms at 48 kHz too.
        let mut click = vec![0i16; 8000];
        click[800] = 20_000;
        let played = play_all(wav_file(spec(8000, 1, 16, false), &click), 48_000);
        assert_eq!(played.len(), 48_000);
        let loudest = played.iter().enumerate().max_by_key(|(_, s)| s.unsigned_abs()).unwrap().0;
        assert!((4798..=4802).contains(&loudest), "{loudest}");
        // Down: 48 kHz to 8 kHz, a length that is not a whole number of frames.
        let tone = sine(48_000, 440.0, 10_000.0, 52_000);
        let played = play_all(wav_file(spec(48_000, 1, 16, false), &tone), 8000);
        assert_eq!(played.len(), 55 * 160); // 8666 samples, the last frame padded
        let middle = &played[2000..6000];
        assert!((amplitude(middle, 440.0, 8000) - 10_000.0).abs() < 100.0);
        // The sound goes on to the end of the file, and stops there.
        assert!(played[8600..8660].iter().any(|&s| s.abs() > 5000));
        assert!(played[8666..].iter().all(|&s| s == 0), "no tail beyond the file");
    }

    #[test]
    fn every_sample_format_is_read() {
        // 8-bit: unsigned in the file, signed by hound, scaled to 16 bits.
        let eight: Vec<i8> = vec![-128, -1, 0, 1, 127];
        assert_eq!(&play_all(wav_file(spec(8000, 1, 8, false), &eight), 8000)[..5], &[-32768, -256, 0, 256, 32512]);
        // 24-bit and 32-bit: the top 16 bits.
        let wide: Vec<i32> = vec![-8_388_608, -256, 255, 8_388_607];
        assert_eq!(&play_all(wav_file(spec(8000, 1, 24, false), &wide), 8000)[..4], &[-32768, -1, 0, 32767]);
        let widest: Vec<i32> = vec![i32::MIN, 65_536, i32::MAX];
        assert_eq!(&play_all(wav_file(spec(8000, 1, 32, false), &widest), 8000)[..3], &[-32768, 1, 32767]);
        // Float, clamped, NaN as silence.
        let float: Vec<f32> = vec![-1.0, -0.5, 0.25, 1.0, 2.0, f32::NAN];
        assert_eq!(
            &play_all(wav_file(spec(8000, 1, 32, true), &float), 8000)[..6],
            &[-32768, -16384, 8192, 32767, 32767, 0]
        );
        // Stereo 8-bit averages.
        let pair: Vec<i8> = vec![100, -100, 50, 50];
        assert_eq!(&play_all(wav_file(spec(8000, 2, 8, false), &pair), 8000)[..2], &[0, 12_800]);
    }

    #[test]
    fn other_rates_play_only_at_their_own_rate() {
        let bytes = wav_file(spec(44_100, 1, 16, false), &sine(44_100, 441.0, 1000.0, 44_100));
        assert!(matches!(
            WavPlayer::new(Cursor::new(bytes.clone()), 8000),
            Err(WavError::Rate { from: 44_100, to: 8000 })
        ));
        let player = WavPlayer::new(Cursor::new(bytes.clone()), 44_100).unwrap();
        assert_eq!(player.frame_len(), 882);
        assert_eq!(player.duration(), Duration::from_secs(1));
        assert_eq!(player.format(), WavFormat { sample_rate: 44_100, channels: 1, bits_per_sample: 16, float: false });
        assert_eq!(play_all(bytes, 44_100).len(), 44_100);
    }

    #[test]
    fn a_player_rewinds_for_looping() {
        let tone = sine(16_000, 250.0, 5000.0, 5000);
        let bytes = wav_file(spec(16_000, 1, 16, false), &tone);
        let mut player = WavPlayer::new(Cursor::new(bytes), 48_000).unwrap();
        let mut first = Vec::new();
        while let Some(frame) = player.next_frame().unwrap() {
            first.extend_from_slice(frame);
        }
        player.rewind().unwrap();
        let mut second = Vec::new();
        while let Some(frame) = player.next_frame().unwrap() {
            second.extend_from_slice(frame);
        }
        assert_eq!(first, second);
        assert_eq!(first.len(), 16 * 960);
    }

    #[test]
    fn a_truncated_file_plays_what_it_has() {
        let mut bytes = wav_file(spec(8000, 1, 16, false), &sine(8000, 400.0, 3000.0, 1000));
        bytes.truncate(bytes.len() - 1000); // 500 samples short, header unchanged
        let mut player = WavPlayer::new(Cursor::new(bytes), 8000).unwrap();
        let mut played = Vec::new();
        while let Some(frame) = player.next_frame().unwrap() {
            played.extend_from_slice(frame);
        }
        assert!(player.was_truncated());
        assert_eq!(played.len(), 4 * 160);
        assert_eq!(&played[..500], &sine(8000, 400.0, 3000.0, 500)[..]);
        assert!(played[500..].iter().all(|&s| s == 0));
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let open = |bytes: Vec<u8>| WavPlayer::new(Cursor::new(bytes), 8000).map(|_| ());
        assert!(matches!(open(Vec::new()), Err(WavError::Io(_))));
        assert!(matches!(open(b"RIFF\x24\0\0\0WAVEjunk".to_vec()), Err(WavError::Io(_) | WavError::Malformed(_))));
        assert!(matches!(open(b"not a wav file at all, no RIFF header".to_vec()), Err(WavError::Malformed(_))));
        // ADPCM (format tag 2).
        let mut adpcm = wav_file(spec(8000, 1, 16, false), &[0i16; 10]);
        adpcm[20] = 2;
        assert!(matches!(open(adpcm), Err(WavError::Unsupported(_))));
        // 16-bit samples claimed at 0 Hz.
        let mut zero_rate = wav_file(spec(8000, 1, 16, false), &[0i16; 10]);
        zero_rate[24..32].fill(0);
        assert!(matches!(open(zero_rate), Err(WavError::SampleRate(0))));
        assert!(matches!(
            WavPlayer::new(Cursor::new(wav_file(spec(8000, 1, 16, false), &[0i16; 10])), 0),
            Err(WavError::SampleRate(0))
        ));
        assert!(matches!(WavRecorder::new(Cursor::new(Vec::new()), 0), Err(WavError::SampleRate(0))));
    }

    proptest! {
        #[test]
        fn no_input_makes_the_player_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(mut player) = WavPlayer::new(Cursor::new(bytes), 8000) {
                for _ in 0..100 {
                    if !matches!(player.next_frame(), Ok(Some(_))) {
                        break;
                    }
                }
            }
        }

        #[test]
        fn damaged_headers_never_panic(flips in proptest::collection::vec((0usize..60, any::<u8>()), 1..6), rate in 0usize..3) {
            let mut bytes = wav_file(spec(16_000, 2, 16, false), &sine(16_000, 300.0, 1000.0, 2000));
            for (at, value) in flips {
                bytes[at] = value;
            }
            if let Ok(mut player) = WavPlayer::new(Cursor::new(bytes), [8000, 16_000, 48_000][rate]) {
                for _ in 0..200 {
                    if !matches!(player.next_frame(), Ok(Some(_))) {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn levels_tell_speech_from_silence() {
        // Half a second of a 1 kHz sine at −6 dBFS.
        let (_, loud) = record(8000, &sine(8000, 1000.0, 32767.0 / 2.0, 4000));
        assert!((loud.levels.peak_dbfs + 6.02).abs() < 0.1, "{loud:?}");
        assert!((loud.levels.rms_dbfs + 6.02).abs() < 0.1, "{loud:?}");
        assert_eq!(loud.levels.voiced, Duration::from_millis(500));
        assert!(!loud.silent);

        let (_, nothing) = record(8000, &vec![0; 16_000]);
        assert!(nothing.silent);
        assert_eq!(nothing.levels.peak_dbfs, f32::NEG_INFINITY);
        assert_eq!(nothing.levels.voiced, Duration::ZERO);

        // Line noise at about −60 dBFS for 5 s is silence.
        let noise: Vec<i16> =
            (0..40_000u32).map(|n| ((n.wrapping_mul(2_654_435_761) >> 16) % 65) as i16 - 32).collect();
        let (_, hiss) = record(8000, &noise);
        assert!(hiss.silent, "{hiss:?}");
        assert!(hiss.levels.rms_dbfs < -55.0);

        // 100 ms of speech-level tone in 3 s of silence is not, and is measured as 100 ms.
        let mut message = vec![0i16; 24_000];
        message[8000..8800].copy_from_slice(&sine(8000, 300.0, 3000.0, 800));
        let (_, short) = record(8000, &message);
        assert!(!short.silent);
        assert_eq!(short.levels.voiced, Duration::from_millis(100));

        // A stricter threshold makes the quiet tone silence.
        let mut recorder = WavRecorder::new(Cursor::new(Vec::new()), 8000).unwrap();
        recorder.set_silence_threshold(-10.0);
        recorder.write(&message).unwrap();
        assert!(recorder.is_silent());
        assert_eq!(recorder.samples_written(), 24_000);
        assert_eq!(recorder.duration(), Duration::from_secs(3));
    }

    #[test]
    fn a_flushed_recording_is_a_valid_file_so_far() {
        let mut bytes = Vec::new();
        {
            let mut recorder = WavRecorder::new(Cursor::new(&mut bytes), 16_000).unwrap();
            recorder.write(&[1000; 320]).unwrap();
            recorder.flush().unwrap();
            recorder.write(&[2000; 320]).unwrap();
            // Dropped without finalize: the header still says 320 samples.
            std::mem::forget(recorder);
        }
        let reader = hound::WavReader::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(reader.duration(), 320);
    }
}
