//! Call recording: what each leg of a call says, decoded by the relay (the call's legs are mixed
//! rather than relayed while it is recorded, [`sambung_media::session::SessionEvent::Tapped`]),
//! written as a two-channel WAV file at 16 kHz: the caller (leg A) on the left, the callee
//! (leg B) on the right.
//!
//! A thread of its own writes the file, so the relay never waits on the disk. The WAV header is
//! brought up to date every second: a call that ends abruptly, or a server that stops, leaves a
//! file that plays to within a second of where it stopped.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sambung_media::resample::Resampler;
use tracing::{info, warn};

/// The directory of the data directory recordings are written to.
pub const DIR: &str = "recordings";

/// The rate the notice is played at.
pub const NOTICE_RATE: u32 = 8000;

/// "This call is recorded.", 8 kHz, decoded once.
pub(super) fn notice() -> &'static [i16] {
    static NOTICE: std::sync::OnceLock<Vec<i16>> = std::sync::OnceLock::new();
    NOTICE.get_or_init(|| {
        let wav = crate::apps::prompts::Prompt::CallRecorded.wav();
        let mut samples = Vec::new();
        if let Ok(mut player) = sambung_media::wav::WavPlayer::new(std::io::Cursor::new(wav), NOTICE_RATE) {
            while let Ok(Some(frame)) = player.next_frame() {
                samples.extend_from_slice(frame);
            }
        }
        samples
    })
}

/// The recordings' rate.
pub const RATE: u32 = 16_000;
/// Samples per channel in 20 ms.
pub const FRAME: usize = RATE as usize / 50;
/// How many frames between two header updates (one second).
const FLUSH_EVERY: u32 = 50;

/// Where the relay sends a recorded call's frames: 20 ms of both channels, interleaved.
#[derive(Debug)]
pub struct RecordSink(mpsc::Sender<Vec<i16>>);

/// The relay's side of a recording: the sink, and each leg's way down from the mix's rate.
#[derive(Debug)]
pub(super) struct Recording {
    /// What legs A and B speak: kept through later offers and answers.
    pub(super) formats: [sambung_media::negotiate::Negotiated; 2],
    sink: RecordSink,
    down: [Resampler; 2],
    scratch: [Vec<i16>; 2],
}

impl Recording {
    pub(super) fn new(sink: RecordSink, formats: [sambung_media::negotiate::Negotiated; 2]) -> Option<Recording> {
        let down = || Resampler::new(sambung_media::mixer::SAMPLE_RATE, RATE).ok();
        Some(Recording { formats, sink, down: [down()?, down()?], scratch: [Vec::new(), Vec::new()] })
    }

    /// Writes one tick: `frames` are legs A and B at the mix's rate (`None`: silence). False
    /// once the writer is gone.
    pub(super) fn write(&mut self, frames: [Option<&[i16]>; 2]) -> bool {
        const SILENCE: [i16; sambung_media::mixer::FRAME] = [0; sambung_media::mixer::FRAME];
        for (i, frame) in frames.into_iter().enumerate() {
            self.scratch[i].clear();
            self.down[i].process(frame.unwrap_or(&SILENCE), &mut self.scratch[i]);
            self.scratch[i].resize(FRAME, 0);
        }
        let mut both = Vec::with_capacity(2 * FRAME);
        for (left, right) in self.scratch[0].iter().zip(&self.scratch[1]) {
            both.push(*left);
            both.push(*right);
        }
        self.sink.0.send(both).is_ok()
    }
}

/// Starts writing a recording to `path`; the thread ends (and the file is complete) once the
/// sink is dropped.
pub fn start(path: &Path) -> std::io::Result<RecordSink> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let spec =
        hound::WavSpec { channels: 2, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut writer = hound::WavWriter::create(path, spec).map_err(std::io::Error::other)?;
    let (tx, rx) = mpsc::channel::<Vec<i16>>();
    let path: PathBuf = path.to_owned();
    std::thread::Builder::new().name("recording".into()).spawn(move || {
        let mut frames = 0u32;
        for both in rx {
            for sample in both {
                if let Err(error) = writer.write_sample(sample) {
                    warn!(path = %path.display(), %error, "recording stopped");
                    return;
                }
            }
            frames += 1;
            if frames.is_multiple_of(FLUSH_EVERY)
                && let Err(error) = writer.flush()
            {
                warn!(path = %path.display(), %error, "recording stopped");
                return;
            }
        }
        match writer.finalize() {
            Ok(()) => info!(path = %path.display(), seconds = frames / 50, "recording complete"),
            Err(error) => warn!(path = %path.display(), %error, "recording not finished"),
        }
    })?;
    Ok(RecordSink(tx))
}

/// Deletes the recordings in `dir` older than `keep_days` (0: none), and their rows in `store`,
/// at start and every hour.
pub async fn expire(store: sambung_store::Store, dir: PathBuf, keep_days: u32) {
    if keep_days == 0 {
        return;
    }
    let keep = std::time::Duration::from_secs(u64::from(keep_days) * 86_400);
    loop {
        let dir = dir.clone();
        let removed = tokio::task::spawn_blocking(move || remove_older(&dir, keep)).await.unwrap_or(0);
        if removed > 0 {
            info!(removed, keep_days, "old recordings deleted");
        }
        let before = std::time::SystemTime::now()
            .checked_sub(keep)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        if let Err(error) = store.delete_recordings_before(before).await {
            warn!(%error, "old recordings' rows not deleted");
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

/// Removes the `.wav` files of `dir` last written more than `keep` ago; how many.
fn remove_older(dir: &Path, keep: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age > keep);
        if old && path.extension().is_some_and(|e| e == "wav") && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}
