//! Tests of the applications: the flows on a scripted caller against an in-memory SQLite store,
//! and one whole call on the audio a media session gives an application.

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use sambung_media::wav::WavRecorder;
use sambung_store::{NewAccount, OpenMode, Store, VoicemailState};
use tokio::sync::{Notify, mpsc};

use super::prompts::{self, Prompt};
use super::*;
use sambung_pbx::Caller;

/// What the scripted caller does, in order.
#[derive(Clone, Debug)]
pub(super) enum Step {
    /// A key pressed after what is playing.
    Key(char),
    /// A key pressed while the next interruptible prompt plays: stops it, then is read.
    Barge(char),
    /// No key within the timeout.
    Pause,
    Hangup,
    /// Speaks (a tone) or stays silent for `seconds` while recorded; the recording ends by `end`.
    Say {
        seconds: f64,
        loud: bool,
        end: RecordEnd,
    },
    /// The target of a connection answers (the application's part is over).
    Answered,
    /// The target of a connection cannot take the call, with this status.
    Refused(u16),
}

/// What the caller heard.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Heard {
    Prompt(Prompt),
    Wav(Vec<u8>),
    Beep,
}

/// A [`CallIo`] that follows a script instead of RTP. A [`Step::Barge`] interrupts an
/// interruptible prompt (its first item counts as heard) and is then read as a key; the end of
/// the script is a hang-up.
#[derive(Debug)]
pub(super) struct Script {
    steps: VecDeque<Step>,
    heard: Vec<Heard>,
    recordings: usize,
    pub(super) now: i64,
    /// The targets the application asked to connect to, in order.
    pub(super) connects: Vec<String>,
}

const NOW: i64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

impl Script {
    pub(super) fn new(steps: impl IntoIterator<Item = Step>) -> Script {
        Script { steps: steps.into_iter().collect(), heard: Vec::new(), recordings: 0, now: NOW, connects: Vec::new() }
    }

    pub(super) fn prompts(&self) -> Vec<Prompt> {
        self.heard
            .iter()
            .filter_map(|h| match h {
                Heard::Prompt(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    fn log(&mut self, audio: &Audio<'_>) {
        self.heard.push(match audio {
            Audio::Prompt(p) => Heard::Prompt(*p),
            Audio::Wav(wav) => Heard::Wav(wav.to_vec()),
            Audio::Beep => Heard::Beep,
        });
    }
}

/// A real WAV file at 8 kHz: a 440 Hz tone at -12 dBFS, or digital silence.
fn wav(seconds: f64, loud: bool) -> (Vec<u8>, Duration, bool) {
    let mut file = Vec::new();
    let mut recorder = WavRecorder::new(Cursor::new(&mut file), 8000).unwrap();
    let samples: Vec<i16> = (0..(seconds * 8000.0) as usize)
        .map(|n| if loud { (8000.0 * (std::f64::consts::TAU * 440.0 * n as f64 / 8000.0).sin()) as i16 } else { 0 })
        .collect();
    recorder.write(&samples).unwrap();
    let summary = recorder.finalize().unwrap();
    (file, summary.duration, summary.silent)
}

impl CallIo for Script {
    async fn play(&mut self, audio: &[Audio<'_>], interruptible: bool) -> Played {
        match self.steps.front() {
            Some(Step::Hangup) => {
                self.steps.pop_front();
                return Played::Hangup;
            }
            Some(&Step::Barge(key)) if interruptible => {
                if let Some(first) = audio.first() {
                    self.log(first);
                }
                self.steps[0] = Step::Key(key);
                return Played::Key(key);
            }
            _ => {}
        }
        for item in audio {
            self.log(item);
        }
        Played::Done
    }

    async fn wait_key(&mut self, _timeout: Duration) -> Wait {
        match self.steps.pop_front() {
            Some(Step::Key(key)) => Wait::Key(key),
            Some(Step::Pause) => Wait::Timeout,
            Some(Step::Hangup) | None => Wait::Hangup,
            Some(Step::Barge(key)) => Wait::Key(key),
            Some(step @ (Step::Say { .. } | Step::Answered | Step::Refused(_))) => {
                panic!("the script says {step:?} where a key is read")
            }
        }
    }

    async fn record(&mut self, max: Duration, _stop_keys: &[char]) -> Recording {
        match self.steps.pop_front() {
            Some(Step::Say { seconds, loud, end }) => {
                let (seconds, end) = if seconds > max.as_secs_f64() {
                    (max.as_secs_f64(), RecordEnd::MaxLength)
                } else {
                    (seconds, end)
                };
                self.recordings += 1;
                let (wav, duration, silent) = wav(seconds, loud);
                Recording { wav, duration, silent, ended_by: end }
            }
            Some(Step::Hangup) | None => Recording::failed(RecordEnd::Hangup),
            Some(step) => panic!("the script says {step:?} where a recording is made"),
        }
    }

    async fn connect(&mut self, target: &str) -> Connect {
        self.connects.push(target.to_owned());
        match self.steps.pop_front() {
            Some(Step::Answered) => Connect::Over,
            Some(Step::Refused(status)) => Connect::Failed(status),
            Some(Step::Hangup) | None => Connect::Over,
            Some(step) => panic!("the script says {step:?} where a connection is made"),
        }
    }

    async fn exchange(&mut self, _frame: &[i16]) -> Option<Vec<i16>> {
        // A scripted caller is never bridged: it has hung up.
        None
    }

    fn rate(&self) -> u32 {
        8000
    }

    fn clear_keys(&mut self) {}

    fn unix_now(&self) -> i64 {
        self.now
    }
}

pub(super) struct World {
    pub(super) context: Context,
    events: mpsc::Receiver<Event>,
    /// The domain events the applications published.
    published: mpsc::UnboundedReceiver<crate::events::Shared>,
    alice: sambung_store::Account,
    pub(super) bob: sambung_store::Account,
    carol: sambung_store::Account,
}

impl World {
    pub(super) async fn new() -> World {
        let store = Store::open_with("sqlite::memory:", OpenMode { create_if_missing: true, max_connections: 1 })
            .await
            .unwrap();
        let account = |name: &str, extension: &str| {
            NewAccount::new(name, "a-long-secret-password", "example.com")
                .extension(extension)
                .email(format!("{name}@example.com"))
        };
        let alice = store.create_account(account("alice", "201").display_name("Alice Liddell")).await.unwrap();
        let bob = store.create_account(account("bob", "202")).await.unwrap();
        let carol = store.create_account(account("carol", "203")).await.unwrap();
        let (tx, events) = mpsc::channel(100);
        let mut bus = crate::events::EventBus::new();
        let published = bus.subscribe();
        let context = Context {
            store,
            events: tx,
            publisher: bus.publisher(),
            mail_wake: Arc::new(Notify::new()),
            max_message: Duration::from_secs(180),
            max_greeting: Duration::from_secs(60),
            email: true,
            pins: pin::PinGuard::new(3, Duration::from_secs(600), Duration::from_secs(900)),
            menus: Arc::new(attendant::Menus::default()),
            queues: queue::Queues::default(),
            hub: None,
            patchbay: bridge::Patchbay::default(),
            parking: bridge::ParkingLot::default(),
            parking_timeout: Duration::from_secs(120),
        };
        World { context, events, published, alice, bob, carol }
    }

    /// The applications on this world's store, reporting through `tx`.
    fn apps(&self, tx: mpsc::Sender<Event>) -> Apps {
        Apps::new(
            self.context.store.clone(),
            &Config::default(),
            tx,
            Arc::new(Notify::new()),
            self.context.publisher.clone(),
            queue::Queues::default(),
        )
    }

    pub(super) fn alice_calling(&self) -> Caller {
        Caller {
            account_id: self.alice.id,
            username: "alice".into(),
            display: "Alice Liddell".into(),
            uri: "sip:alice@example.com".into(),
            extension: Some("201".into()),
        }
    }

    /// The mailbox counts the core was told, in order.
    fn counts(&mut self) -> Vec<(i64, u32, u32)> {
        let mut counts = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let Event::Mailbox { account_id, counts: c } = event {
                counts.push((account_id, c.new, c.saved));
            }
        }
        counts
    }

    /// Leaves a message of `seconds` for `account_id` from alice, at `at`.
    async fn leave(&self, account_id: i64, seconds: f64, at: i64) -> i64 {
        let (audio, duration, _) = wav(seconds, true);
        let message = self
            .context
            .store
            .store_voicemail(sambung_store::NewVoicemail {
                account_id,
                caller_uri: "sip:alice@example.com".into(),
                caller_name: "Alice Liddell".into(),
                caller_number: Some("201".into()),
                created_at: at,
                duration_ms: duration.as_millis() as i64,
                audio,
            })
            .await
            .unwrap();
        message.id
    }
}

fn spelled(text: &str) -> Vec<Prompt> {
    prompts::spell(text)
}

#[tokio::test]
async fn voicemail_stores_the_message_with_its_metadata_and_mails_it() {
    let mut world = World::new().await;
    let caller = world.alice_calling();
    let mut script = Script::new([Step::Say { seconds: 4.5, loud: true, end: RecordEnd::Key('#') }]);
    let end = voicemail::run(&world.context, &mut script, world.bob.id, "202", &caller).await;
    assert_eq!(end, AppEnd::Hangup);

    let mut greeting = vec![Prompt::GreetingIntro];
    greeting.extend(spelled("202"));
    greeting.extend([Prompt::GreetingUnavailable, Prompt::MessageRecorded]);
    assert_eq!(script.prompts(), greeting);
    assert!(script.heard.contains(&Heard::Beep));

    let messages = world.context.store.voicemails(world.bob.id, None).await.unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(
        (message.caller_uri.as_str(), message.caller_name.as_str(), message.caller_number.as_deref()),
        ("sip:alice@example.com", "Alice Liddell", Some("201"))
    );
    assert_eq!((message.created_at, message.duration_ms, message.state), (NOW, 4500, VoicemailState::New));
    let audio = world.context.store.voicemail_audio(message.id).await.unwrap().unwrap();
    assert_eq!(&audio[..4], b"RIFF");
    assert_eq!(audio.len(), 44 + 4500 * 16);
    assert_eq!(world.counts(), [(world.bob.id, 1, 0)]);

    // The email: to bob's own address (no voicemail address set), the recording attached.
    let mails = world.context.store.due_mail(NOW + 1, 10).await.unwrap();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, "bob@example.com");
    assert_eq!(mail.subject, "Voicemail from Alice Liddell (201)");
    assert!(mail.body.contains("Received: 2023-11-14 22:13:20 UTC"), "{}", mail.body);
    assert!(mail.body.contains("Duration: 0:04") && mail.body.contains("sip:alice@example.com"), "{}", mail.body);
    let (name, kind, bytes) = mail.attachment.as_ref().unwrap();
    assert_eq!((name.as_str(), kind.as_str()), (format!("voicemail-{}.wav", message.id).as_str(), "audio/wav"));
    assert_eq!(bytes, &audio);
    // The mail task was woken.
    tokio::time::timeout(Duration::from_secs(1), world.context.mail_wake.notified()).await.unwrap();
}

#[tokio::test]
async fn voicemail_mail_follows_the_settings() {
    let mut world = World::new().await;
    let caller = world.alice_calling();
    let store = world.context.store.clone();
    let mut settings = store.call_settings(world.bob.id).await.unwrap();
    settings.voicemail_email = Some("bob.voicemail@example.org".into());
    settings.voicemail_attach = false;
    store.set_call_settings(world.bob.id, &settings).await.unwrap();
    let mut script = Script::new([Step::Say { seconds: 2.0, loud: true, end: RecordEnd::Hangup }]);
    voicemail::run(&world.context, &mut script, world.bob.id, "202", &caller).await;
    // Hung up: stored all the same, nothing more said.
    assert_eq!(script.prompts().last(), Some(&Prompt::GreetingUnavailable));
    let mails = store.due_mail(NOW, 10).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!((mails[0].to.as_str(), mails[0].attachment.is_none()), ("bob.voicemail@example.org", true));
    assert_eq!(world.counts(), [(world.bob.id, 1, 0)]);

    // No SMTP server configured: the message is kept, no mail queued.
    world.context.email = false;
    let mut script = Script::new([Step::Say { seconds: 2.0, loud: true, end: RecordEnd::Key('#') }]);
    voicemail::run(&world.context, &mut script, world.bob.id, "202", &caller).await;
    assert_eq!(store.voicemail_counts(world.bob.id).await.unwrap(), (2, 0));
    assert_eq!(store.due_mail(NOW, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn voicemail_drops_silence_and_hang_ups_at_the_tone() {
    let mut world = World::new().await;
    let caller = world.alice_calling();
    for (seconds, loud, end) in
        [(20.0, false, RecordEnd::Key('#')), (0.6, true, RecordEnd::Key('#')), (30.0, false, RecordEnd::Hangup)]
    {
        let mut script = Script::new([Step::Say { seconds, loud, end }]);
        voicemail::run(&world.context, &mut script, world.bob.id, "202", &caller).await;
        if end != RecordEnd::Hangup {
            assert_eq!(script.prompts().last(), Some(&Prompt::Goodbye), "nothing was recorded: no 'message recorded'");
        }
    }
    assert!(world.context.store.voicemails(world.bob.id, None).await.unwrap().is_empty());
    assert!(world.counts().is_empty());
    assert!(world.context.store.due_mail(NOW, 10).await.unwrap().is_empty());

    // The longest message is cut at the limit and kept.
    world.context.max_message = Duration::from_secs(5);
    let mut script = Script::new([Step::Say { seconds: 60.0, loud: true, end: RecordEnd::Hangup }]);
    voicemail::run(&world.context, &mut script, world.bob.id, "202", &caller).await;
    assert_eq!(script.prompts().last(), Some(&Prompt::MessageRecorded));
    let messages = world.context.store.voicemails(world.bob.id, None).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.duration_ms).collect::<Vec<_>>(), [5000]);

    // Hanging up during the greeting records nothing.
    let mut script = Script::new([Step::Hangup]);
    assert_eq!(voicemail::run(&world.context, &mut script, world.bob.id, "202", &caller).await, AppEnd::Hangup);
    assert_eq!(script.recordings, 0);
}

#[tokio::test]
async fn voicemail_plays_the_recorded_greeting() {
    let world = World::new().await;
    let (greeting, _, _) = wav(1.5, true);
    world.context.store.set_greeting(world.bob.id, Some(&greeting)).await.unwrap();
    let mut script = Script::new([Step::Say { seconds: 3.0, loud: true, end: RecordEnd::Key('#') }]);
    voicemail::run(&world.context, &mut script, world.bob.id, "202", &world.alice_calling()).await;
    assert_eq!(script.heard[..2], [Heard::Wav(greeting), Heard::Beep]);

    // A damaged greeting gives way to the default one.
    world.context.store.set_greeting(world.bob.id, Some(b"RIFF\0\0\0\0WAVEjunk")).await.unwrap();
    let mut script = Script::new([Step::Say { seconds: 3.0, loud: true, end: RecordEnd::Key('#') }]);
    voicemail::run(&world.context, &mut script, world.bob.id, "202", &world.alice_calling()).await;
    assert_eq!(script.prompts()[0], Prompt::GreetingIntro);
}

#[tokio::test]
async fn mailbox_plays_saves_deletes_and_forwards_and_changes_the_pin() {
    let mut world = World::new().await;
    let store = world.context.store.clone();
    let first = world.leave(world.bob.id, 1.0, NOW - 100).await;
    let second = world.leave(world.bob.id, 2.0, NOW - 50).await;
    let first_audio = store.voicemail_audio(first).await.unwrap().unwrap();

    use Step::Key;
    let mut script = Script::new([
        Key('1'),         // new messages: the first plays to its end (heard: saved)
        Key('9'),         // save it: "message saved", on to the second
        Step::Barge('7'), // pressed while the second plays: delete it
        Key('2'),         // saved messages: the first again
        Key('8'),         // forward it ...
        Key('2'),
        Key('0'),
        Key('3'),
        Key('#'), // ... to 203 (carol)
        Key('*'), // main menu
        Key('4'), // new PIN
        Key('4'),
        Key('3'),
        Key('2'),
        Key('1'),
        Key('#'),
        Key('4'), // a PIN too short
        Key('1'),
        Key('2'),
        Key('#'),
        Key('*'), // goodbye
    ]);
    let end = mailbox::run(&world.context, &mut script, Some(world.bob.id)).await;
    assert_eq!(end, AppEnd::Hangup);

    let mut expected = vec![Prompt::YouHave, Prompt::Digit2, Prompt::NewMessages, Prompt::And, Prompt::Digit0];
    expected.extend([Prompt::SavedMessages, Prompt::MainMenu]);
    expected.extend([Prompt::Message, Prompt::Digit1, Prompt::From, Prompt::Digit2, Prompt::Digit0, Prompt::Digit1]);
    expected.extend([Prompt::MessageMenu, Prompt::MessageSaved]);
    expected.push(Prompt::Message); // the second, interrupted
    expected.extend([Prompt::MessageMenu, Prompt::MessageDeleted, Prompt::NoMoreMessages, Prompt::MainMenu]);
    expected.extend([Prompt::Message, Prompt::Digit1, Prompt::From, Prompt::Digit2, Prompt::Digit0, Prompt::Digit1]);
    expected.extend([Prompt::MessageMenu, Prompt::ForwardTo, Prompt::MessageForwarded, Prompt::MessageMenu]);
    expected.extend([Prompt::MainMenu, Prompt::NewPin, Prompt::PinChanged, Prompt::MainMenu]);
    expected.extend([Prompt::NewPin, Prompt::InvalidPin, Prompt::MainMenu, Prompt::Goodbye]);
    assert_eq!(script.prompts(), expected);
    // The first message's recording was played, twice.
    assert_eq!(script.heard.iter().filter(|h| **h == Heard::Wav(first_audio.clone())).count(), 2);

    let left = store.voicemails(world.bob.id, None).await.unwrap();
    assert_eq!(left.iter().map(|m| (m.id, m.state)).collect::<Vec<_>>(), [(first, VoicemailState::Saved)]);
    assert!(store.voicemail_audio(second).await.unwrap().is_none());
    let forwarded = store.voicemails(world.carol.id, None).await.unwrap();
    assert_eq!(forwarded.len(), 1);
    assert_eq!((forwarded[0].state, forwarded[0].caller_number.as_deref()), (VoicemailState::New, Some("201")));
    assert_eq!(store.voicemail_audio(forwarded[0].id).await.unwrap().unwrap(), first_audio);
    assert!(store.verify_voicemail_pin(world.bob.id, "4321").await.unwrap());
    // Each change of counts reached the core: heard, (saved again: no change), deleted, forwarded.
    let (bob, carol) = (world.bob.id, world.carol.id);
    assert_eq!(world.counts(), [(bob, 1, 1), (bob, 0, 1), (carol, 1, 0)]);
}

#[tokio::test]
async fn mailbox_calls_back_and_reports_unknown_mailboxes() {
    let world = World::new().await;
    world.leave(world.bob.id, 1.0, NOW).await;
    use Step::Key;
    let mut script = Script::new([Key('1'), Key('8'), Key('9'), Key('9'), Key('#'), Key('5')]);
    let end = mailbox::run(&world.context, &mut script, Some(world.bob.id)).await;
    assert_eq!(end, AppEnd::CallBack { target: "sip:alice@example.com".into() });
    let prompts = script.prompts();
    assert!(prompts.ends_with(&[Prompt::ForwardTo, Prompt::UnknownMailbox, Prompt::MessageMenu, Prompt::CallingBack]));
}

#[tokio::test]
async fn mailbox_login_by_number_and_pin() {
    let world = World::new().await;
    let store = &world.context.store;
    store.set_voicemail_pin(world.bob.id, "2468").await.unwrap();
    use Step::Key;
    let typed = |text: &str| text.chars().map(Key).collect::<Vec<_>>();

    // Extension and PIN, after one wrong PIN; then "no messages" and goodbye.
    let mut steps = typed("202#1111#");
    steps.extend(typed("202#2468#*"));
    let mut script = Script::new(steps);
    assert_eq!(mailbox::run(&world.context, &mut script, None).await, AppEnd::Hangup);
    assert_eq!(
        script.prompts(),
        [
            Prompt::MailboxNumber,
            Prompt::EnterPin,
            Prompt::LoginIncorrect,
            Prompt::MailboxNumber,
            Prompt::EnterPin,
            Prompt::NoMessages,
            Prompt::MainMenu,
            Prompt::Goodbye
        ]
    );

    // Three wrong tries (an unknown mailbox, a wrong PIN, an account without a PIN) end the call.
    let mut steps = typed("999#2468#");
    steps.extend(typed("202#8642#"));
    steps.extend(typed("203#2468#"));
    steps.extend(typed("1"));
    let mut script = Script::new(steps);
    assert_eq!(mailbox::run(&world.context, &mut script, None).await, AppEnd::Hangup);
    let prompts = script.prompts();
    assert_eq!(prompts.iter().filter(|p| **p == Prompt::LoginIncorrect).count(), 3);
    assert_eq!(prompts.last(), Some(&Prompt::TooManyAttempts));
    assert!(!prompts.contains(&Prompt::MainMenu));
}

#[tokio::test]
async fn wrong_pins_across_calls_lock_the_mailbox_even_for_the_right_pin() {
    let mut world = World::new().await;
    let store = world.context.store.clone();
    store.set_voicemail_pin(world.bob.id, "2468").await.unwrap();
    use Step::Key;
    let typed = |text: &str| text.chars().map(Key).collect::<Vec<_>>();
    // Two calls: two wrong PINs, then a third in another call. The limit is 3.
    for wrong in [vec!["202#1111#", "202#2222#"], vec!["202#3333#"]] {
        let mut steps = Vec::new();
        for attempt in wrong {
            steps.extend(typed(attempt));
        }
        let mut script = Script::new(steps);
        assert_eq!(mailbox::run(&world.context, &mut script, None).await, AppEnd::Hangup);
        assert!(!script.prompts().contains(&Prompt::MainMenu));
    }
    let until = store.lockout_until(sambung_store::LockoutKind::Pin, &world.bob.id.to_string()).await.unwrap();
    assert!(until.is_some(), "the lockout is stored");
    let bob = world.bob.id;
    assert!(std::iter::from_fn(|| world.published.try_recv().ok()).any(|e| matches!(
        *e,
        sambung_pbx::Event::VoicemailPinLocked { account_id, failures: 3, .. } if account_id == bob
    )));
    // Locked: the right PIN gets what a wrong one gets.
    let mut script = Script::new(typed("202#2468#"));
    assert_eq!(mailbox::run(&world.context, &mut script, None).await, AppEnd::Hangup);
    let prompts = script.prompts();
    assert_eq!(prompts[..3], [Prompt::MailboxNumber, Prompt::EnterPin, Prompt::LoginIncorrect]);
    assert!(!prompts.contains(&Prompt::MainMenu));
    // Lifted (as `sambung ban unlock` would for an account; here the row goes): it opens.
    store.remove_lockout(sambung_store::LockoutKind::Pin, &world.bob.id.to_string()).await.unwrap();
    let mut script = Script::new(typed("202#2468#*"));
    assert_eq!(mailbox::run(&world.context, &mut script, None).await, AppEnd::Hangup);
    assert!(script.prompts().contains(&Prompt::MainMenu));
}

#[tokio::test]
async fn mailbox_greeting_and_pauses() {
    let world = World::new().await;
    use Step::{Key, Pause, Say};
    // Record a greeting; then two pauses in a row end the call.
    let mut script = Script::new([
        Key('3'),
        Say { seconds: 2.5, loud: true, end: RecordEnd::Key('#') },
        Pause,
        Key('x'),
        Pause,
        Pause,
    ]);
    assert_eq!(mailbox::run(&world.context, &mut script, Some(world.bob.id)).await, AppEnd::Hangup);
    let prompts = script.prompts();
    assert_eq!(
        prompts[1..],
        [
            Prompt::MainMenu,
            Prompt::RecordGreeting,
            Prompt::GreetingSaved,
            Prompt::MainMenu,
            Prompt::MainMenu,
            Prompt::InvalidOption,
            Prompt::MainMenu,
            Prompt::MainMenu,
            Prompt::Goodbye
        ]
    );
    let greeting = world.context.store.greeting(world.bob.id).await.unwrap().unwrap();
    assert_eq!(greeting.len(), 44 + 2500 * 16);

    // A silent greeting is not kept.
    let mut script = Script::new([Key('3'), Say { seconds: 3.0, loud: false, end: RecordEnd::Key('#') }]);
    mailbox::run(&world.context, &mut script, Some(world.bob.id)).await;
    assert_eq!(world.context.store.greeting(world.bob.id).await.unwrap().unwrap(), greeting);
}

#[tokio::test]
async fn confirmations_say_what_the_code_did() {
    for (confirmation, prompt) in [
        (Confirmation::ForwardOn, Prompt::ForwardOn),
        (Confirmation::ForwardOff, Prompt::ForwardOff),
        (Confirmation::DndOn, Prompt::DndOn),
        (Confirmation::DndOff, Prompt::DndOff),
        (Confirmation::Invalid, Prompt::InvalidCode),
    ] {
        let mut script = Script::new([]);
        assert_eq!(confirm(&mut script, confirmation).await, AppEnd::Hangup);
        assert_eq!(script.prompts(), [prompt]);
    }
}

#[tokio::test]
async fn digits_end_at_pound_length_or_pause() {
    use Step::{Hangup, Key, Pause};
    let cases: [(Vec<Step>, Digits); 6] = [
        (vec![Key('1'), Key('2'), Key('#')], Digits::Entered("12".into())),
        (vec![Key('1'), Key('A'), Key('2'), Key('3')], Digits::Entered("123".into())),
        (vec![Key('1'), Pause], Digits::Entered("1".into())),
        (vec![Pause], Digits::Timeout),
        (vec![Key('1'), Key('*')], Digits::Cancelled),
        (vec![Key('1'), Hangup], Digits::Hangup),
    ];
    for (steps, expected) in cases {
        let mut script = Script::new(steps);
        assert_eq!(read_digits(&mut script, 3, KEY_TIMEOUT).await, expected);
    }
}

#[test]
fn utc_dates() {
    assert_eq!(utc_date_time(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc_date_time(-1), "1969-12-31 23:59:59 UTC");
    assert_eq!(utc_date_time(951_782_400), "2000-02-29 00:00:00 UTC");
    assert_eq!(utc_date_time(951_868_800), "2000-03-01 00:00:00 UTC");
    assert_eq!(utc_date_time(NOW), "2023-11-14 22:13:20 UTC");
    assert_eq!(utc_date_time(4_107_542_400), "2100-03-01 00:00:00 UTC");
    assert_eq!(utc_date_time(253_402_300_799), "9999-12-31 23:59:59 UTC");
    // Day by day over four centuries, the date advances as the calendar says.
    let mut previous = (1969, 12, 31);
    for day in 0..146_097i64 {
        let text = utc_date_time(day * 86_400);
        let (y, m, d): (i64, i64, i64) =
            (text[0..4].parse().unwrap(), text[5..7].parse().unwrap(), text[8..10].parse().unwrap());
        let days_in = |y: i64, m: i64| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (py, pm, pd) = previous;
        let expected = if pd < days_in(py, pm) {
            (py, pm, pd + 1)
        } else if pm < 12 {
            (py, pm + 1, 1)
        } else {
            (py + 1, 1, 1)
        };
        assert_eq!((y, m, d), expected, "day {day}");
        previous = (y, m, d);
    }
}

/// The RMS level of `pcm` in dBFS (a full-scale sine at 0).
fn level_dbfs(pcm: &[i16]) -> f64 {
    let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt();
    20.0 * (rms * std::f64::consts::SQRT_2 / 32767.0).max(1e-9).log10()
}

/// A whole voicemail call on the audio a media session gives the application: the test plays
/// the media session (one frame of the caller's audio per tick, the application's frame back),
/// hears the greeting, skips it with a key sent by SIP INFO, speaks a prompt after the tone and
/// ends with `#` read from RTP; the message is stored at 8 kHz, call control hears of the new
/// counts, and the domain events of a voicemail left.
#[tokio::test]
async fn a_call_on_its_media_is_greeted_recorded_and_stored() {
    use sambung_media::wav::WavPlayer;

    let mut world = World::new().await;
    let (tx, mut events) = mpsc::channel(100);
    let mut apps = world.apps(tx);
    let (port, audio) = crate::media::app_port(8000);
    let crate::media::AppPort { heard: heard_tx, mut played, keys: rtp_keys, .. } = port;
    apps.attach(7, audio);
    apps.handle(AppRequest::Start {
        call: 7,
        app: App::Voicemail { account_id: world.bob.id, name: "202".into() },
        caller: world.alice_calling(),
        rate: 8000,
    });
    assert_eq!(apps.len(), 1);

    let mut speech = Vec::new();
    let mut player = WavPlayer::new(Cursor::new(Prompt::EnterPin.wav()), 8000).unwrap();
    while let Some(frame) = player.next_frame().unwrap() {
        speech.push(frame.to_vec());
    }
    let speech_len = Duration::from_millis(20 * speech.len() as u64);

    // The media session's side, tick by tick: 1.5 s of greeting, a key, 0.5 s, the speech,
    // 0.3 s, `#`.
    let skip_at = 75;
    let speak_at = skip_at + 25;
    let pound_at = speak_at + speech.len() + 15;
    let silence = vec![0i16; 160];
    let mut greeting = Vec::new();
    let mut tick = 0usize;
    let mut reported = Vec::new();
    while !reported.iter().any(|e| matches!(e, Event::AppEnded { .. })) {
        assert!(tick < pound_at + 500, "the application did not end the call");
        let frame =
            if tick >= speak_at && tick < speak_at + speech.len() { &speech[tick - speak_at] } else { &silence };
        if heard_tx.send(frame.clone()).await.is_err() {
            break;
        }
        // One frame back for each one heard.
        match tokio::time::timeout(Duration::from_secs(5), played.recv()).await {
            Ok(Some(frame)) => {
                assert_eq!(frame.len(), 160, "20 ms at 8 kHz");
                if tick < skip_at {
                    greeting.extend_from_slice(&frame);
                }
            }
            Ok(None) => break,
            Err(_) => panic!("the application stopped answering at tick {tick}"),
        }
        if tick == skip_at {
            apps.handle(AppRequest::Key { call: 7, key: '1' });
        } else if tick == pound_at {
            rtp_keys.send('#').await.unwrap();
        }
        while let Ok(event) = events.try_recv() {
            reported.push(event);
        }
        tick += 1;
    }
    while let Ok(event) = tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        let Some(event) = event else { break };
        let done = matches!(event, Event::AppEnded { .. });
        reported.push(event);
        if done {
            break;
        }
    }
    // The greeting was sound, not silence.
    assert!(level_dbfs(&greeting) > -35.0, "greeting at {} dBFS", level_dbfs(&greeting));

    // The message: stored once, with the speech in it, at 8 kHz; call control heard of it.
    let counts: Vec<_> = reported
        .iter()
        .filter_map(|e| match e {
            Event::Mailbox { account_id, counts } => Some((*account_id, counts.new, counts.saved)),
            _ => None,
        })
        .collect();
    assert_eq!(counts, [(world.bob.id, 1, 0)]);
    assert!(matches!(reported.last(), Some(Event::AppEnded { call: 7, end: AppEnd::Hangup })));
    let messages = world.context.store.voicemails(world.bob.id, None).await.unwrap();
    assert_eq!(messages.len(), 1);
    let duration = Duration::from_millis(messages[0].duration_ms as u64);
    assert!(
        duration > speech_len && duration < speech_len + Duration::from_millis(1500),
        "{duration:?} for {speech_len:?}"
    );
    let audio = world.context.store.voicemail_audio(messages[0].id).await.unwrap().unwrap();
    let mut stored = WavPlayer::new(Cursor::new(audio.as_slice()), 8000).unwrap();
    assert_eq!(stored.format().sample_rate, 8000);
    let mut samples = Vec::new();
    while let Some(frame) = stored.next_frame().unwrap() {
        samples.extend_from_slice(frame);
    }
    let original: Vec<i16> = speech.concat();
    let (stored_level, original_level) = (level_dbfs(&samples), level_dbfs(&original));
    // The speech fills most of the recording: its level is within a few dB of the original's.
    assert!((stored_level - original_level).abs() < 4.0, "stored {stored_level} dBFS, sent {original_level} dBFS");
    let left = world.published.try_recv().expect("a voicemail-left event");
    assert!(
        matches!(&*left, sambung_pbx::Event::VoicemailLeft { account_id, message_id, .. }
            if *account_id == world.bob.id && *message_id == messages[0].id),
        "{left:?}"
    );
    apps.handle(AppRequest::Stop { call: 7 });
    assert!(apps.is_empty());
}

#[tokio::test]
async fn an_application_without_media_ends_its_call() {
    let world = World::new().await;
    let (tx, mut events) = mpsc::channel(100);
    let mut apps = world.apps(tx);
    apps.handle(AppRequest::Start {
        call: 9,
        app: App::Mailbox { account_id: None },
        caller: world.alice_calling(),
        rate: 8000,
    });
    let ended = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap();
    assert!(matches!(ended, Some(Event::AppEnded { call: 9, end: AppEnd::Hangup })), "{ended:?}");
}
