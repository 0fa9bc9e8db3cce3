//! Music on hold: what a party hears while the other holds the call.
//!
//! The music is 8 kHz mono PCM, played in a loop from where each hold starts. The server's own
//! (`crates/server/music/hold.wav`, made by `scripts/make-music.sh`) is built in; an operator
//! gives another with `[media] music_on_hold`.

use std::path::Path;
use std::sync::Arc;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// The music's rate.
pub const RATE: u32 = 8000;

/// The server's own music on hold (8 kHz, mono, 16-bit WAV).
const BUILT_IN: &[u8] = include_bytes!("../../music/hold.wav");

/// Music on hold: 8 kHz mono samples, shared by every session.
#[derive(Clone, Debug)]
pub struct Music(Arc<[i16]>);

/// Why a music file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MusicError {
    #[error("cannot read the music on hold {0}: {1}")]
    Read(String, hound::Error),
    #[error("the music on hold {0} must be an 8000 Hz mono 16-bit WAV file (it is {1} Hz, {2} channel(s), {3} bits)")]
    Format(String, u32, u16, u16),
    #[error("the music on hold {0} is shorter than 20 ms")]
    Empty(String),
}

impl Music {
    /// The server's own music.
    pub fn built_in() -> Music {
        // Made by scripts/make-music.sh in the right format; a test reads it.
        Music::from_wav("built-in", std::io::Cursor::new(BUILT_IN)).unwrap_or_else(|_| Music(Arc::from(vec![0; FRAME])))
    }

    /// The music in the WAV file at `path`.
    pub fn load(path: &Path) -> Result<Music, MusicError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| MusicError::Read(name.clone(), hound::Error::IoError(e)))?;
        Music::from_wav(&name, std::io::BufReader::new(file))
    }

    fn from_wav<R: std::io::Read>(name: &str, reader: R) -> Result<Music, MusicError> {
        let wav = hound::WavReader::new(reader).map_err(|e| MusicError::Read(name.to_owned(), e))?;
        let spec = wav.spec();
        if spec.sample_rate != RATE || spec.channels != 1 || spec.bits_per_sample != 16 {
            return Err(MusicError::Format(name.to_owned(), spec.sample_rate, spec.channels, spec.bits_per_sample));
        }
        let samples: Vec<i16> =
            wav.into_samples::<i16>().collect::<Result<_, _>>().map_err(|e| MusicError::Read(name.to_owned(), e))?;
        if samples.len() < FRAME {
            return Err(MusicError::Empty(name.to_owned()));
        }
        Ok(Music(samples.into()))
    }

    /// The 20 ms frame at `position` (in samples), wrapping around; the next position.
    pub fn frame(&self, position: usize) -> ([i16; FRAME], usize) {
        let mut frame = [0i16; FRAME];
        let len = self.0.len();
        for (i, sample) in frame.iter_mut().enumerate() {
            *sample = self.0[(position + i) % len];
        }
        (frame, (position + FRAME) % len)
    }

    /// Its samples (8 kHz).
    pub fn samples(&self) -> &[i16] {
        &self.0
    }

    /// How long it lasts, in samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_music_is_music() {
        let music = Music::from_wav("built-in", std::io::Cursor::new(BUILT_IN)).expect("the built-in file reads");
        assert!(music.len() >= 5 * RATE as usize, "at least 5 s: {}", music.len());
        // Not silence: its level is that of music, not of a hiss.
        let rms = (music.0.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / music.len() as f64).sqrt();
        assert!(rms > 1000.0, "rms {rms}");
        // Frames wrap around the end.
        let (_, next) = music.frame(music.len() - 10);
        assert_eq!(next, FRAME - 10);
    }

    #[test]
    fn other_formats_are_refused_with_a_reason() {
        let mut bytes = Vec::new();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(std::io::Cursor::new(&mut bytes), spec).unwrap();
        for _ in 0..320 {
            writer.write_sample(0i16).unwrap();
        }
        writer.finalize().unwrap();
        let error = Music::from_wav("x.wav", std::io::Cursor::new(bytes)).unwrap_err();
        assert!(error.to_string().contains("8000 Hz mono 16-bit"), "{error}");
    }
}
