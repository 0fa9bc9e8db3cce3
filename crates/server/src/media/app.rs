//! An application inside the server connected to a relay session as one of its legs
//! ([`super::RelaySession::attach_app`]): 20 ms frames of PCM each way and the keys the caller
//! presses, over bounded channels, instead of RTP over a socket of its own.
//!
//! ```text
//!   caller ── RTP/SRTP ─▶ [A's port] ─ session task ─ heard: Vec<i16> ─▶ AppAudio (the application)
//!          ◀─ RTP/SRTP ── [A's port] ─             ◀─ played: Vec<i16> ─
//!                                                  ─ keys: char ───────▶
//! ```

use tokio::sync::mpsc;

/// Frames waiting in each direction: enough to ride out a late wake-up, small enough that
/// playback does not lag.
pub const APP_CHANNEL: usize = 8;

/// Keys waiting for the application.
const KEY_CHANNEL: usize = 32;

/// The session's side of an application's connection (see [`app_port`]).
#[derive(Debug)]
pub struct AppPort {
    pub(super) rate: u32,
    pub(crate) heard: mpsc::Sender<Vec<i16>>,
    pub(crate) played: mpsc::Receiver<Vec<i16>>,
    pub(crate) keys: mpsc::Sender<char>,
}

impl AppPort {
    /// The application's PCM rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The channels, for a driver of its own (the simulated world of the tests): the frames
    /// the application hears, the frames it says, the keys it gets.
    pub fn into_parts(self) -> (mpsc::Sender<Vec<i16>>, mpsc::Receiver<Vec<i16>>, mpsc::Sender<char>) {
        (self.heard, self.played, self.keys)
    }
}

/// The application's side: what it hears, what it plays, the keys it gets.
#[derive(Debug)]
pub struct AppAudio {
    rate: u32,
    /// One frame of [`Self::frame_len`] samples every 20 ms: what the other leg says (silence
    /// in its pauses).
    pub heard: mpsc::Receiver<Vec<i16>>,
    /// Frames of [`Self::frame_len`] samples to say, one per 20 ms; a full channel means the
    /// application is ahead of the session's clock.
    pub played: mpsc::Sender<Vec<i16>>,
    /// DTMF keys read from the other leg's RFC 4733 events.
    pub keys: mpsc::Receiver<char>,
}

impl AppAudio {
    /// The PCM rate, as given to [`app_port`].
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples in one 20 ms frame.
    pub fn frame_len(&self) -> usize {
        (self.rate / 50) as usize
    }
}

/// A connection for an application whose PCM runs at `rate` (8000 or 16000 Hz; 48000 too):
/// the session's side, to give to [`super::RelaySession::attach_app`], and the application's.
pub fn app_port(rate: u32) -> (AppPort, AppAudio) {
    let (heard_tx, heard_rx) = mpsc::channel(APP_CHANNEL);
    let (played_tx, played_rx) = mpsc::channel(APP_CHANNEL);
    let (keys_tx, keys_rx) = mpsc::channel(KEY_CHANNEL);
    (
        AppPort { rate, heard: heard_tx, played: played_rx, keys: keys_tx },
        AppAudio { rate, heard: heard_rx, played: played_tx, keys: keys_rx },
    )
}
