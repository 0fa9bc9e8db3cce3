//! The media of one application call: the application's side of the B leg of the call's
//! media session, inside the server.
//!
//! The media session decodes what the caller sends (in the caller's own codec, SRTP removed)
//! into 20 ms frames of PCM at the application's rate, one per tick, and encodes the frames the
//! application plays back to the caller ([`AppAudio`], from [`crate::media::app_port`]). [`Session`] paces the application by
//! those frames and gives it the [`CallIo`] it is written against: play, record, keys. Keys come
//! from the media session (RFC 4733, read from the caller's RTP) and from call control (SIP INFO,
//! [`sambung_pbx::AppRequest::Key`]).

use std::collections::VecDeque;
use std::io::Cursor;
use std::time::Duration;

use sambung_media::tone::{Tone, ToneGenerator};
use sambung_media::wav::{WavPlayer, WavRecorder};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{Audio, CallIo, Connect, Played, RecordEnd, Recording, Wait};
pub use crate::media::AppAudio;
use crate::transport::Event;

/// The 20 ms step of the audio.
pub const TICK: Duration = Duration::from_millis(20);

/// What is being played.
enum Source<'a> {
    Wav(Box<WavPlayer<Cursor<&'a [u8]>>>),
    Tone(ToneGenerator),
}

impl Source<'_> {
    /// Fills `frame` with the next 20 ms; false once the source is over (`frame` is silence
    /// then, or the last bit of the sound padded with silence).
    fn fill(&mut self, frame: &mut [i16]) -> bool {
        match self {
            Source::Wav(player) => match player.next_frame() {
                Ok(Some(samples)) => {
                    let len = samples.len().min(frame.len());
                    frame[..len].copy_from_slice(&samples[..len]);
                    frame[len..].fill(0);
                    true
                }
                Ok(None) => {
                    frame.fill(0);
                    false
                }
                Err(error) => {
                    debug!(%error, "prompt unreadable from here on");
                    frame.fill(0);
                    false
                }
            },
            Source::Tone(tone) => tone.fill(frame),
        }
    }
}

/// The call's media and keys, paced by the media session's frames: the [`CallIo`] of a real
/// call.
#[derive(Debug)]
pub struct Session {
    audio: AppAudio,
    /// Keys by SIP INFO, from call control.
    info_keys: mpsc::Receiver<char>,
    keys_open: [bool; 2],
    stop: oneshot::Receiver<()>,
    /// Keys pressed and not read yet (type-ahead).
    keys: VecDeque<char>,
    hung_up: bool,
    /// What the caller said in the latest tick.
    heard: Vec<i16>,
    frame: Vec<i16>,
    /// Ticks of silence still to send before the first sound: the answer is sent when the
    /// application starts, and the caller's phone needs a moment to start playing, or the
    /// first words of the first prompt are lost.
    lead_in: u32,
    /// The way to call control, to connect the caller elsewhere.
    link: Link,
    /// The status of a connection call control could not make, not yet read.
    connect_failed: Option<u16>,
}

/// How an application's call reaches call control to connect its caller
/// ([`sambung_pbx::Input::AppConnect`]) and hears that it failed
/// ([`sambung_pbx::AppRequest::ConnectFailed`]).
#[derive(Debug)]
pub struct Link {
    pub call: u64,
    pub events: mpsc::Sender<Event>,
    pub failed: mpsc::Receiver<u16>,
}

/// How long the application waits, sending silence, before it first plays something.
const LEAD_IN: Duration = Duration::from_millis(400);

impl Session {
    /// Runs on `audio`; `info_keys` brings the keys call control read from SIP INFO, `stop`
    /// fires (or is dropped) when the caller hangs up.
    pub fn new(audio: AppAudio, info_keys: mpsc::Receiver<char>, stop: oneshot::Receiver<()>, link: Link) -> Session {
        let frame_len = audio.frame_len();
        Session {
            audio,
            info_keys,
            keys_open: [true, true],
            stop,
            keys: VecDeque::new(),
            hung_up: false,
            heard: vec![0; frame_len],
            frame: vec![0; frame_len],
            lead_in: (LEAD_IN.as_millis() / TICK.as_millis()) as u32,
            link,
            connect_failed: None,
        }
    }

    /// True once call control stopped the application (the caller hung up, or was connected).
    pub fn stopped(&self) -> bool {
        self.hung_up
    }

    /// Waits for the next tick (the media session's next frame), taking in keys meanwhile.
    /// False once the caller hung up.
    async fn tick(&mut self) -> bool {
        let Session { audio, info_keys, keys_open, stop, keys, hung_up, heard, link, connect_failed, .. } = self;
        loop {
            if *hung_up {
                return false;
            }
            tokio::select! {
                frame = audio.heard.recv() => match frame {
                    Some(frame) => {
                        heard.clear();
                        heard.extend_from_slice(&frame);
                        heard.resize(audio.frame_len(), 0);
                        return true;
                    }
                    // The media session is gone: so is the call.
                    None => *hung_up = true,
                },
                key = audio.keys.recv(), if keys_open[0] => match key {
                    Some(key) => keys.push_back(key),
                    None => keys_open[0] = false,
                },
                key = info_keys.recv(), if keys_open[1] => match key {
                    Some(key) => keys.push_back(key),
                    None => keys_open[1] = false,
                },
                status = link.failed.recv(), if connect_failed.is_none() => match status {
                    Some(status) => *connect_failed = Some(status),
                    None => *hung_up = true,
                },
                // A Stop, or the applications are gone (shutdown): either way the call is over.
                _ = &mut *stop => *hung_up = true,
            }
        }
    }

    /// Says the next 20 ms: from `source` when given (false once it is over), else silence.
    /// What the caller said in the same 20 ms is returned when `hear`.
    fn exchange(&mut self, source: Option<&mut Source<'_>>, hear: bool) -> (bool, Option<&[i16]>) {
        let playing = match source {
            Some(source) => source.fill(&mut self.frame),
            None => {
                self.frame.fill(0);
                false
            }
        };
        if let Err(error) = self.audio.played.try_send(self.frame.clone()) {
            debug!(%error, "a frame of the application's audio was dropped");
        }
        (playing, hear.then_some(self.heard.as_slice()))
    }

    fn source<'a>(&self, audio: &Audio<'a>) -> Option<Source<'a>> {
        let rate = self.audio.rate();
        let wav = match audio {
            Audio::Prompt(prompt) => prompt.wav(),
            Audio::Wav(bytes) => bytes,
            Audio::Beep => {
                return ToneGenerator::new(Tone::Beep, rate)
                    .map(Source::Tone)
                    .inspect_err(|error| warn!(%error, "cannot make the beep"))
                    .ok();
            }
        };
        WavPlayer::new(Cursor::new(wav), rate)
            .map(|player| Source::Wav(Box::new(player)))
            .inspect_err(|error| warn!(%error, "unplayable WAV"))
            .ok()
    }
}

impl CallIo for Session {
    async fn play(&mut self, audio: &[Audio<'_>], interruptible: bool) -> Played {
        while self.lead_in > 0 {
            self.lead_in -= 1;
            if !self.tick().await {
                return Played::Hangup;
            }
            self.exchange(None, false);
        }
        for item in audio {
            let Some(mut source) = self.source(item) else { continue };
            loop {
                if interruptible && let Some(&key) = self.keys.front() {
                    return Played::Key(key);
                }
                if !self.tick().await {
                    return Played::Hangup;
                }
                if !self.exchange(Some(&mut source), false).0 {
                    break;
                }
            }
        }
        Played::Done
    }

    async fn wait_key(&mut self, timeout: Duration) -> Wait {
        let ticks = timeout.as_millis().div_ceil(TICK.as_millis()).max(1);
        for _ in 0..ticks {
            if let Some(key) = self.keys.pop_front() {
                return Wait::Key(key);
            }
            if !self.tick().await {
                return Wait::Hangup;
            }
            self.exchange(None, false);
        }
        match self.keys.pop_front() {
            Some(key) => Wait::Key(key),
            None => Wait::Timeout,
        }
    }

    async fn record(&mut self, max: Duration, stop_keys: &[char]) -> Recording {
        let rate = self.audio.rate();
        let mut file = Vec::new();
        let mut recorder = match WavRecorder::new(Cursor::new(&mut file), rate) {
            Ok(recorder) => recorder,
            Err(error) => {
                warn!(%error, "cannot record");
                return Recording::failed(RecordEnd::MaxLength);
            }
        };
        let frames = max.as_millis().div_ceil(TICK.as_millis());
        let mut recorded = 0u128;
        let ended_by = loop {
            if let Some(key) = self.keys.pop_front()
                && stop_keys.contains(&key)
            {
                break RecordEnd::Key(key);
            }
            if recorded >= frames {
                break RecordEnd::MaxLength;
            }
            if !self.tick().await {
                break RecordEnd::Hangup;
            }
            let (_, heard) = self.exchange(None, true);
            if let Some(heard) = heard
                && let Err(error) = recorder.write(heard)
            {
                warn!(%error, "recording stopped");
                break RecordEnd::MaxLength;
            }
            recorded += 1;
        };
        match recorder.finalize() {
            Ok(summary) => Recording { wav: file, duration: summary.duration, silent: summary.silent, ended_by },
            Err(error) => {
                warn!(%error, "cannot finish the recording");
                Recording::failed(ended_by)
            }
        }
    }

    async fn connect(&mut self, target: &str) -> Connect {
        self.connect_failed = None;
        let request = Event::AppConnect { call: self.link.call, target: target.to_owned() };
        if self.link.events.send(request).await.is_err() {
            return Connect::Over;
        }
        // The caller hears the ringing tone until call control says how it went: a Stop (the
        // caller talks to the target now, or hung up), or the target's failure.
        let mut ringing = ToneGenerator::new(Tone::Ringback, self.audio.rate()).ok().map(Source::Tone);
        loop {
            if let Some(status) = self.connect_failed.take() {
                self.keys.clear();
                return Connect::Failed(status);
            }
            if !self.tick().await {
                return Connect::Over;
            }
            self.exchange(ringing.as_mut(), false);
        }
    }

    async fn exchange(&mut self, frame: &[i16]) -> Option<Vec<i16>> {
        if !self.tick().await {
            return None;
        }
        let len = frame.len().min(self.frame.len());
        self.frame[..len].copy_from_slice(&frame[..len]);
        self.frame[len..].fill(0);
        if let Err(error) = self.audio.played.try_send(self.frame.clone()) {
            debug!(%error, "a bridged frame was dropped");
        }
        Some(self.heard.clone())
    }

    fn rate(&self) -> u32 {
        self.audio.rate()
    }

    fn clear_keys(&mut self) {
        self.keys.clear();
    }

    fn unix_now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}
