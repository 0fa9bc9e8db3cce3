//! The applications that answer calls themselves: voicemail, the mailbox menu, confirmations.
//!
//! Call control decides that a call goes to an application: it answers the caller, turns the B
//! leg of the call's media session into the application ([`sambung_pbx::MediaCommand::AttachApp`],
//! whose audio the runtime hands over with [`Apps::attach`]) and asks for it
//! ([`sambung_pbx::AppRequest::Start`]). [`Apps::handle`] then starts one task per call, which
//! runs the application on that audio and reports how it ended ([`Event::AppEnded`]). Keys by
//! SIP INFO and the caller's hang-up reach the task over channels; RFC 4733 keys come with the
//! audio, straight from the media session.
//!
//! The applications ([`voicemail`], [`mailbox`], confirmations) are written against [`CallIo`]:
//! play prompts, wait for keys, record. [`media::Session`] is the real one, paced by the media
//! session's 20 ms frames; the tests drive the same flows with scripted keys and recordings.
//!
//! ```text
//!  call control ──Start/Key/Stop──▶ Apps::handle ──spawn──▶ call task ◀── PCM, keys ──▶ media session (B leg)
//!       ▲                                                      │
//!       └──────────────── AppEnded / Mailbox ──────────────────┘  (+ store, mail queue, VoicemailLeft)
//! ```

pub mod attendant;
#[cfg(test)]
mod attendant_tests;
pub mod bridge;
pub mod mailbox;
pub mod media;
pub mod pin;
pub mod prompts;
pub mod queue;
#[cfg(test)]
mod tests;
pub mod voicemail;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sambung_pbx::{App, AppEnd, AppRequest, Caller, Confirmation, MailboxCounts};
use sambung_store::Store;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::events::Publisher;
use crate::transport::Event;
use media::AppAudio;
use prompts::Prompt;

/// Keys waiting for a call's task; more are dropped (nobody types that fast).
const KEY_QUEUE: usize = 64;

/// Something to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audio<'a> {
    Prompt(Prompt),
    /// A whole WAV file (a recorded greeting or message).
    Wav(&'a [u8]),
    /// The tone before a recording.
    Beep,
}

/// How playing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Played {
    Done,
    /// A key was pressed (playing was interruptible); it is still waiting to be read.
    Key(char),
    Hangup,
}

/// How connecting the caller elsewhere ended, for the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connect {
    /// The application's part is over: the caller talks to the target (or hung up).
    Over,
    /// The target could not take the call (`486` busy, `480` unavailable or no answer, `404`
    /// no such target ...): the application has the caller again.
    Failed(u16),
}

/// What waiting for a key gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Key(char),
    Timeout,
    Hangup,
}

/// Why a recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordEnd {
    /// One of the stop keys.
    Key(char),
    /// The longest recording allowed.
    MaxLength,
    /// The caller hung up (what was recorded is kept).
    Hangup,
}

/// A finished recording.
#[derive(Clone, PartialEq)]
pub struct Recording {
    /// A complete 16-bit mono WAV file at the call's rate.
    pub wav: Vec<u8>,
    pub duration: Duration,
    /// Nothing above the silence threshold ([`sambung_media::wav::WavRecorder::is_silent`]).
    pub silent: bool,
    pub ended_by: RecordEnd,
}

impl Recording {
    /// Nothing recorded.
    pub fn failed(ended_by: RecordEnd) -> Recording {
        Recording { wav: Vec::new(), duration: Duration::ZERO, silent: true, ended_by }
    }
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("wav_bytes", &self.wav.len())
            .field("duration", &self.duration)
            .field("silent", &self.silent)
            .field("ended_by", &self.ended_by)
            .finish()
    }
}

/// What an application does with its call: the interface the applications are written
/// against, so that their flows can be tested without RTP.
pub trait CallIo: Send {
    /// Plays `audio` in order. When `interruptible`, a key pressed (or typed ahead) stops it,
    /// and the key stays to be read by [`Self::wait_key`].
    fn play(&mut self, audio: &[Audio<'_>], interruptible: bool) -> impl Future<Output = Played> + Send;

    /// The next key (typed-ahead keys first), waiting at most `timeout`.
    fn wait_key(&mut self, timeout: Duration) -> impl Future<Output = Wait> + Send;

    /// Records what the caller says until one of `stop_keys`, `max`, or the hang-up.
    fn record(&mut self, max: Duration, stop_keys: &[char]) -> impl Future<Output = Recording> + Send;

    /// Asks call control to connect the caller to `target` ([`sambung_pbx::Input::AppConnect`]),
    /// the caller hearing the ringing tone meanwhile.
    fn connect(&mut self, target: &str) -> impl Future<Output = Connect> + Send;

    /// Says `frame` (20 ms at [`Self::rate`]) and gives what the caller said meanwhile;
    /// `None` once the caller hung up. For calls bridged inside the server.
    fn exchange(&mut self, frame: &[i16]) -> impl Future<Output = Option<Vec<i16>>> + Send;

    /// The PCM rate of the call's audio.
    fn rate(&self) -> u32;

    /// Forgets the keys typed ahead.
    fn clear_keys(&mut self);

    /// The time, in Unix seconds.
    fn unix_now(&self) -> i64;
}

/// What reading a number gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Digits {
    /// Digits ended by `#`, by the length limit, or by a pause after at least one digit.
    Entered(String),
    /// No key at all within the timeout.
    Timeout,
    /// `*`: the caller gave up on this entry.
    Cancelled,
    Hangup,
}

/// How long a caller may pause between keys.
pub const KEY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads digits up to `#` (not included), at most `max_len` of them; other keys are ignored,
/// `*` cancels. `timeout` is the longest pause allowed before each key.
pub async fn read_digits(io: &mut impl CallIo, max_len: usize, timeout: Duration) -> Digits {
    let mut digits = String::new();
    loop {
        match io.wait_key(timeout).await {
            Wait::Key('#') => return Digits::Entered(digits),
            Wait::Key('*') => return Digits::Cancelled,
            Wait::Key(key) if key.is_ascii_digit() => {
                digits.push(key);
                if digits.len() >= max_len {
                    return Digits::Entered(digits);
                }
            }
            Wait::Key(_) => {}
            Wait::Timeout if digits.is_empty() => return Digits::Timeout,
            Wait::Timeout => return Digits::Entered(digits),
            Wait::Hangup => return Digits::Hangup,
        }
    }
}

/// What the applications' tasks share: the store, the limits, the way back to call control
/// and the domain events.
#[derive(Clone, Debug)]
pub struct Context {
    pub store: Store,
    pub events: mpsc::Sender<Event>,
    /// The domain events (a voicemail left).
    pub publisher: Publisher,
    pub mail_wake: Arc<Notify>,
    /// Longest voicemail message.
    pub max_message: Duration,
    /// Longest greeting.
    pub max_greeting: Duration,
    /// An SMTP server is configured: voicemail is mailed.
    pub email: bool,
    /// Wrong PINs across calls.
    pub pins: pin::PinGuard,
    /// The auto-attendant's menus.
    pub menus: Arc<attendant::Menus>,
    /// The call queues, shared by every shard.
    pub queues: queue::Queues,
    /// Who is in which call (for pickup); `None` in tests without it.
    pub hub: Option<crate::presence::Hub>,
    /// Calls bridged inside the server, and the parking slots in use: shared by every shard.
    pub patchbay: bridge::Patchbay,
    pub parking: bridge::ParkingLot,
    /// `[parking] timeout_seconds`.
    pub parking_timeout: Duration,
}

impl Context {
    /// Tells call control a mailbox's counts, read from the store.
    pub async fn mailbox_changed(&self, account_id: i64) {
        match self.store.voicemail_counts(account_id).await {
            Ok((new, saved)) => {
                let counts = MailboxCounts { new, saved };
                let _ = self.events.send(Event::Mailbox { account_id, counts }).await;
            }
            Err(error) => warn!(account_id, %error, "cannot count the mailbox's messages"),
        }
    }
}

/// A running call's task, as [`Apps`] reaches it.
#[derive(Debug)]
struct CallHandle {
    keys: mpsc::Sender<char>,
    stop: oneshot::Sender<()>,
    /// [`AppRequest::ConnectFailed`]'s status.
    connect_failed: mpsc::Sender<u16>,
}

/// The applications: one task per call. See the [module docs](self).
#[derive(Debug)]
pub struct Apps {
    context: Context,
    calls: HashMap<u64, CallHandle>,
    /// Media of calls whose application has not started yet.
    attached: HashMap<u64, AppAudio>,
}

impl Apps {
    /// The applications of another shard's calls: the same store, limits and PIN lockouts.
    pub fn for_shard(&self) -> Apps {
        Apps { context: self.context.clone(), calls: HashMap::new(), attached: HashMap::new() }
    }

    /// The applications on `store`, reporting to call control through `events` and to the
    /// domain events through `publisher`; `mail_wake` is notified when a voicemail email is
    /// queued.
    pub fn new(
        store: Store,
        config: &Config,
        events: mpsc::Sender<Event>,
        mail_wake: Arc<Notify>,
        publisher: Publisher,
        queues: queue::Queues,
    ) -> Apps {
        let voicemail = &config.voicemail;
        let context = Context {
            store,
            events,
            publisher,
            mail_wake,
            max_message: Duration::from_secs(u64::from(voicemail.max_message_seconds)),
            max_greeting: Duration::from_secs(u64::from(voicemail.max_greeting_seconds)),
            email: config.email.server.is_some(),
            pins: pin::PinGuard::new(
                config.guard.pin_failures,
                Duration::from_secs(config.guard.auth_window_seconds),
                Duration::from_secs(config.guard.lockout_seconds),
            ),
            menus: Arc::new(config.menus()),
            queues,
            hub: None,
            patchbay: bridge::Patchbay::default(),
            parking: bridge::ParkingLot::default(),
            parking_timeout: Duration::from_secs(u64::from(config.parking.timeout_seconds)),
        };
        Apps { context, calls: HashMap::new(), attached: HashMap::new() }
    }

    /// Pickup finds ringing calls in `hub`.
    pub fn with_hub(mut self, hub: crate::presence::Hub) -> Apps {
        self.context.hub = Some(hub);
        self
    }

    /// The media of call `call`'s application: its [`AppRequest::Start`] comes next.
    pub fn attach(&mut self, call: u64, audio: AppAudio) {
        self.attached.insert(call, audio);
    }

    /// Takes one request of call control. Never blocks: a new call gets its own task (this must
    /// run inside a tokio runtime), keys and the hang-up are passed to it.
    pub fn handle(&mut self, request: AppRequest) {
        // The tasks that ended have dropped their receivers.
        self.calls.retain(|_, call| !call.keys.is_closed());
        match request {
            AppRequest::Start { call, app, caller, rate } => {
                if self.calls.contains_key(&call) {
                    warn!(call, "application already running for this call");
                    return;
                }
                let Some(audio) = self.attached.remove(&call) else {
                    warn!(call, "no media for the application: the call ends");
                    let events = self.context.events.clone();
                    tokio::spawn(async move { events.send(Event::AppEnded { call, end: AppEnd::Hangup }).await });
                    return;
                };
                if audio.rate() != rate {
                    debug!(call, rate, media = audio.rate(), "the application runs at its media's rate");
                }
                let (keys, keys_rx) = mpsc::channel(KEY_QUEUE);
                let (stop, stop_rx) = oneshot::channel();
                let (connect_failed, failed) = mpsc::channel(1);
                self.calls.insert(call, CallHandle { keys, stop, connect_failed });
                let link = media::Link { call, events: self.context.events.clone(), failed };
                let session = media::Session::new(audio, keys_rx, stop_rx, link);
                tokio::spawn(run_call(self.context.clone(), call, app, caller, session));
            }
            AppRequest::Key { call, key } => {
                if let Some(handle) = self.calls.get(&call)
                    && handle.keys.try_send(key).is_err()
                {
                    debug!(call, key = %key, "key dropped");
                }
            }
            AppRequest::Stop { call } => {
                self.attached.remove(&call);
                if let Some(handle) = self.calls.remove(&call) {
                    let _ = handle.stop.send(());
                }
            }
            AppRequest::ConnectFailed { call, status } => {
                if let Some(handle) = self.calls.get(&call)
                    && handle.connect_failed.try_send(status).is_err()
                {
                    debug!(call, status, "connect failure not delivered");
                }
            }
        }
    }

    /// Calls running.
    pub fn len(&self) -> usize {
        self.calls.values().filter(|call| !call.keys.is_closed()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One call: run the application, report the end.
async fn run_call(context: Context, call: u64, app: App, caller: Caller, mut session: media::Session) {
    info!(call, ?app, rate = session.rate(), "application answering");
    let end = match app {
        App::Voicemail { account_id, name } => voicemail::run(&context, &mut session, account_id, &name, &caller).await,
        App::Mailbox { account_id } => mailbox::run(&context, &mut session, account_id).await,
        App::Confirm(confirmation) => confirm(&mut session, confirmation).await,
        App::Attendant { menu } => attendant::run(&context, &mut session, &menu, &caller).await,
        App::Queue { queue } => queue::run(&context, &mut session, &queue, call, &caller).await,
        App::Agent { login } => queue::login(&context, &mut session, &caller, login).await,
        App::Pickup { accounts } => bridge::pickup(&context, &mut session, call, &accounts).await,
        App::Parking { slot, parker } => bridge::parking(&context, &mut session, call, &slot, parker.as_deref()).await,
        App::Bridge { partner } => {
            bridge::bridge(&context.patchbay, &mut session, call, partner).await;
            AppEnd::Hangup
        }
    };
    debug!(call, ?end, "application done");
    // Stopped by call control: the call has moved on (hung up, or connected elsewhere, or
    // another application took it), and nothing is to be reported.
    if !session.stopped() {
        let _ = context.events.send(Event::AppEnded { call, end }).await;
    }
}

/// Says what a feature code did, then hangs up.
pub async fn confirm(io: &mut impl CallIo, confirmation: Confirmation) -> AppEnd {
    let prompt = match confirmation {
        Confirmation::ForwardOn => Prompt::ForwardOn,
        Confirmation::ForwardOff => Prompt::ForwardOff,
        Confirmation::DndOn => Prompt::DndOn,
        Confirmation::DndOff => Prompt::DndOff,
        Confirmation::Invalid => Prompt::InvalidCode,
    };
    io.play(&[Audio::Prompt(prompt)], false).await;
    AppEnd::Hangup
}

/// `seconds` since the Unix epoch as a UTC date and time, `YYYY-MM-DD HH:MM:SS UTC`: the
/// proleptic Gregorian calendar, days to civil date as in H. Hinnant's `civil_from_days`.
pub fn utc_date_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let time = seconds.rem_euclid(86_400);
    // Shift the epoch to 0000-03-01, so that leap days end each 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", time / 3600, time % 3600 / 60, time % 60)
}
