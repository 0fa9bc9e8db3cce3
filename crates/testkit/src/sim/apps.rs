//! Applications inside the simulated server: what answers a call when call control hands it
//! to one (voicemail, the mailbox menu, confirmations).
//!
//! When call control attaches an application to a call ([`sambung_pbx::MediaCommand::AttachApp`]
//! then [`sambung_pbx::AppRequest::Start`]), the world keeps an [`AppCall`]: every 20 ms frame
//! the application leg hears (the media session's `AppAudio` events) and every key the caller
//! presses (the session's RFC 4733 key events, or SIP INFO through call control). Something
//! must answer: either an [`Application`] made by the factory given to
//! [`super::World::on_app`], called on every frame and key with an [`AppIo`] to speak and to
//! end the call through; or the test itself, reading [`AppCall`] and calling
//! [`super::World::app_play`] and [`super::World::app_end`].

use std::fmt;

use sambung_media::negotiate::Negotiated;
use sambung_pbx::{App, AppEnd, Caller, Event, Input};

/// What an application is started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppStart {
    /// The call (and its media session).
    pub call: u64,
    pub app: App,
    pub caller: Caller,
    /// The PCM rate it hears and speaks at.
    pub rate: u32,
    /// The codec the caller speaks (the session decodes and encodes it).
    pub format: Option<Negotiated>,
}

/// An application answering calls in the simulated server. Each call gets its own.
pub trait Application: fmt::Debug {
    /// Every 20 ms: the frame the application leg heard (at its rate, silence when nothing
    /// came). Frames it plays through `io` are said from the next tick on.
    fn on_audio(&mut self, heard: &[i16], io: &mut AppIo);

    /// The caller pressed a key.
    fn on_key(&mut self, key: char, io: &mut AppIo) {
        let _ = (key, io);
    }

    /// The caller hung up, or the call failed: the application stops.
    fn on_stop(&mut self) {}
}

/// What an application may do while it handles a frame or a key.
#[derive(Debug)]
pub struct AppIo {
    rate: u32,
    /// Frames heard so far (its clock: 20 ms each).
    ticks: u64,
    pub(super) play: Vec<Vec<i16>>,
    pub(super) end: Option<AppEnd>,
    pub(super) inputs: Vec<Input>,
    pub(super) events: Vec<Event>,
}

impl AppIo {
    pub(super) fn new(rate: u32, ticks: u64) -> AppIo {
        AppIo { rate, ticks, play: Vec::new(), end: None, inputs: Vec::new(), events: Vec::new() }
    }

    /// The PCM rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples in one 20 ms frame.
    pub fn frame_len(&self) -> usize {
        (self.rate / 50) as usize
    }

    /// How many frames the application has heard: its own 20 ms clock.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Says one 20 ms frame (queued by the media session; a few may wait).
    pub fn play(&mut self, frame: &[i16]) {
        self.play.push(frame.to_vec());
    }

    /// Ends the call (call control hangs up the caller, or transfers it).
    pub fn end(&mut self, end: AppEnd) {
        self.end.get_or_insert(end);
    }

    /// Tells call control something, as the server's applications do (a mailbox's new counts:
    /// [`Input::Mailboxes`]).
    pub fn input(&mut self, input: Input) {
        self.inputs.push(input);
    }

    /// Adds a domain event only the application knows ([`Event::VoicemailLeft`]).
    pub fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}

/// Makes the application of each call; `None` leaves the call to the test.
pub type AppFactory = Box<dyn FnMut(&AppStart) -> Option<Box<dyn Application>>>;

/// One call answered by an application.
#[derive(Debug)]
pub struct AppCall {
    pub call: u64,
    /// What call control asked for (`None` until [`sambung_pbx::AppRequest::Start`] came).
    pub start: Option<AppStart>,
    /// The codec and rate the media session was told to use.
    pub format: Negotiated,
    pub rate: u32,
    /// Everything the application leg heard, frame after frame.
    pub heard: Vec<i16>,
    /// Frames heard.
    pub ticks: u64,
    /// Keys the caller pressed, in order.
    pub keys: Vec<char>,
    /// Frames played into the leg.
    pub played: u64,
    /// Call control stopped it (the caller hung up).
    pub stopped: bool,
    /// How the application ended the call.
    pub ended: Option<AppEnd>,
    pub(super) handler: Option<Box<dyn Application>>,
}

impl AppCall {
    pub(super) fn new(call: u64, format: Negotiated, rate: u32) -> AppCall {
        AppCall {
            call,
            start: None,
            format,
            rate,
            heard: Vec::new(),
            ticks: 0,
            keys: Vec::new(),
            played: 0,
            stopped: false,
            ended: None,
            handler: None,
        }
    }

    /// True while the application is running: started, neither stopped nor ended.
    pub fn running(&self) -> bool {
        self.start.is_some() && !self.stopped && self.ended.is_none()
    }

    /// A frame heard: to the application, if there is one. Returns what it did.
    pub(super) fn hear(&mut self, samples: &[i16]) -> Option<AppIo> {
        self.heard.extend_from_slice(samples);
        self.ticks += 1;
        if !self.running() {
            return None;
        }
        let handler = self.handler.as_mut()?;
        let mut io = AppIo::new(self.rate, self.ticks);
        handler.on_audio(samples, &mut io);
        Some(io)
    }

    /// A key pressed: to the application, if there is one.
    pub(super) fn key(&mut self, key: char) -> Option<AppIo> {
        self.keys.push(key);
        if !self.running() {
            return None;
        }
        let handler = self.handler.as_mut()?;
        let mut io = AppIo::new(self.rate, self.ticks);
        handler.on_key(key, &mut io);
        Some(io)
    }

    pub(super) fn stop(&mut self) {
        if self.running()
            && let Some(handler) = &mut self.handler
        {
            handler.on_stop();
        }
        self.stopped = true;
    }
}
