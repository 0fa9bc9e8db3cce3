//! The server's own applications in the simulated world (`sambung_testkit::sim`): scripted
//! phones, call control and its media sessions on a seeded network with loss, duplicates and
//! reordering, on the virtual clock, with the real voicemail and mailbox menu on an in-memory
//! store. Alice leaves bob a message, ending it with `#` on her keypad (RFC 4733); bob then dials
//! `*97` and presses `1` to hear it.
//!
//! The applications are the server's (`sambung_server::apps`), async on a tokio runtime of their
//! own; the world stands still while they work: each 20 ms frame their media leg hears is handed
//! to them, and the world waits for the frame they say back before it moves on, as the media
//! session's pacing makes them do in the server. Runs are therefore as deterministic as the
//! world itself.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use sambung_pbx::registrar::Routing;
use sambung_pbx::{AppRequest, Event, Input};
use sambung_server::apps::Apps;
use sambung_server::config::Config;
use sambung_server::events::{EventBus, Shared};
use sambung_server::transport::Event as ServerEvent;
use sambung_store::{NewAccount, OpenMode, Store};
use sambung_testkit::audio::{rms_dbfs, tone_level_dbfs, zero_crossing_frequency};
use sambung_testkit::phone::{PhoneEvent, RATE};
use sambung_testkit::sim::{AppIo, AppStart, Application, World};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const ALICE_HZ: f64 = 500.0;
const BOB_HZ: f64 = 800.0;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The server's applications, reached from the world's (single-threaded) loop.
struct Server {
    runtime: Runtime,
    apps: Apps,
    /// What the applications tell call control (mailbox counts, their end).
    reports: mpsc::Receiver<ServerEvent>,
    /// The domain events the applications publish.
    published: mpsc::UnboundedReceiver<Shared>,
    store: Store,
}

/// One call's application as the world sees it: a bridge to the server's application task.
struct Bridge {
    call: u64,
    server: Rc<RefCell<Server>>,
    heard: Option<mpsc::Sender<Vec<i16>>>,
    played: mpsc::Receiver<Vec<i16>>,
    keys: mpsc::Sender<char>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("call", &self.call).finish()
    }
}

impl Bridge {
    fn start(server: &Rc<RefCell<Server>>, start: &AppStart) -> Bridge {
        let (port, audio) = sambung_server::media::app_port(start.rate);
        let (heard, played, keys) = port.into_parts();
        let mut s = server.borrow_mut();
        let _guard = s.runtime.enter();
        s.apps.attach(start.call, audio);
        s.apps.handle(AppRequest::Start {
            call: start.call,
            app: start.app.clone(),
            caller: start.caller.clone(),
            rate: start.rate,
        });
        drop(s);
        Bridge { call: start.call, server: server.clone(), heard: Some(heard), played, keys }
    }

    /// What the application reported since: to call control, or as the world's events.
    fn collect(&mut self, io: &mut AppIo) {
        let mut server = self.server.borrow_mut();
        while let Ok(report) = server.reports.try_recv() {
            match report {
                ServerEvent::Mailbox { account_id, counts } => io.input(Input::Mailboxes(vec![(account_id, counts)])),
                ServerEvent::AppEnded { call, end } if call == self.call => io.end(end),
                other => panic!("unexpected report from the applications: {other:?}"),
            }
        }
        while let Ok(event) = server.published.try_recv() {
            io.event((*event).clone());
        }
    }
}

impl Application for Bridge {
    fn on_audio(&mut self, heard: &[i16], io: &mut AppIo) {
        let Some(to_app) = &self.heard else { return };
        let server = self.server.clone();
        let server = server.borrow();
        // One frame in; then the frame it says, or its end (with what it did before).
        let said = server.runtime.block_on(async {
            if to_app.send(heard.to_vec()).await.is_err() {
                return None;
            }
            tokio::time::timeout(Duration::from_secs(10), self.played.recv()).await.ok().flatten()
        });
        drop(server);
        match said {
            Some(frame) => io.play(&frame),
            None => {
                // The application is done: wait for its report.
                let server = self.server.clone();
                let mut s = server.borrow_mut();
                let Server { runtime, reports, .. } = &mut *s;
                let ended = runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.ok().flatten()
                });
                drop(s);
                match ended {
                    Some(ServerEvent::AppEnded { end, .. }) => io.end(end),
                    Some(ServerEvent::Mailbox { account_id, counts }) => {
                        io.input(Input::Mailboxes(vec![(account_id, counts)]))
                    }
                    other => panic!("the application of call {} stopped without ending it: {other:?}", self.call),
                }
                self.heard = None;
            }
        }
        self.collect(io);
    }

    fn on_key(&mut self, key: char, _io: &mut AppIo) {
        let server = self.server.borrow();
        server.runtime.block_on(async {
            let _ = self.keys.send(key).await;
        });
    }

    fn on_stop(&mut self) {
        let mut server = self.server.borrow_mut();
        let _guard = server.runtime.enter();
        server.apps.handle(AppRequest::Stop { call: self.call });
        self.heard = None;
    }
}

/// The world with alice and bob, and the server's applications on an in-memory store holding
/// the same accounts.
fn world(seed: u64) -> (World, Rc<RefCell<Server>>, i64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store = runtime.block_on(async {
        let store = Store::open_with("sqlite::memory:", OpenMode { create_if_missing: true, max_connections: 1 })
            .await
            .unwrap();
        for name in ["alice", "bob"] {
            store.create_account(NewAccount::new(name, "a-long-secret-password", "example.com")).await.unwrap();
        }
        store
    });
    let (tx, reports) = mpsc::channel(100);
    let mut bus = EventBus::new();
    let published = bus.subscribe();
    let apps = {
        let _guard = runtime.enter();
        let queues = sambung_server::apps::queue::Queues::default();
        Apps::new(store.clone(), &Config::default(), tx, Arc::new(tokio::sync::Notify::new()), bus.publisher(), queues)
    };
    let server = Rc::new(RefCell::new(Server { runtime, apps, reports, published, store }));
    let mut world = World::new(seed, World::lossy_network());
    world.add_user("alice", ALICE_HZ, Routing::default());
    let bob = world.add_user("bob", BOB_HZ, Routing::default());
    let bridge = server.clone();
    world.on_app(move |start| Some(Box::new(Bridge::start(&bridge, start)) as Box<dyn Application>));
    (world, server, bob)
}

/// Runs futures on the applications' runtime (its store belongs there).
struct Rt(Rc<RefCell<Server>>);

impl Rt {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0.borrow().runtime.block_on(future)
    }
}

/// The stretches of `heard` (0.5 s each) where a tone of `hz` stands out.
fn tone_windows(heard: &[i16], hz: f64) -> usize {
    let window = RATE as usize / 2;
    heard
        .chunks(window)
        .filter(|w| w.len() == window)
        .filter(|w| tone_level_dbfs(w, RATE, hz) > -40.0 && (zero_crossing_frequency(w, RATE) - hz).abs() < hz * 0.05)
        .count()
}

#[test]
fn voicemail_left_by_keypad_then_heard_from_the_mailbox() {
    for seed in [3, 4] {
        let (mut world, server, bob) = world(seed);
        world.act("alice", |phone, now| phone.register(now));
        assert!(world.run_until(secs(30), |w| w.phone("alice").is_registered()));

        // bob is offline: alice reaches his voicemail.
        world.act("alice", |phone, now| phone.call(now, "bob"));
        assert!(world.run_until(secs(30), |w| w.phone("alice").saw(|e| *e == PhoneEvent::Answered)), "{world:?}");
        world.phone_mut("alice").set_muted(true);
        // The greeting ("The person at 1 0 0 2 is not available ..."); she listens a little,
        // then skips the rest with a key, as the greeting allows, and the tone comes.
        world.run_for(secs(3));
        let greeting = world.phone("alice").heard().to_vec();
        assert!(rms_dbfs(&greeting) > -40.0, "alice heard the greeting: {} dBFS", rms_dbfs(&greeting));
        assert!(world.act("alice", |phone, now| phone.press_key(now, '1')));
        let before_beep = world.phone("alice").heard().len();
        world.run_for(secs(1));
        let beep = tone_level_dbfs(&world.phone("alice").heard()[before_beep..], RATE, 1000.0);
        assert!(beep > -30.0, "alice heard the tone before the recording: {beep:.1} dBFS at 1 kHz");
        // Her message: 3 s of her tone, then `#` on her keypad.
        world.phone_mut("alice").set_muted(false);
        world.run_for(secs(3));
        world.phone_mut("alice").set_muted(true);
        assert!(world.act("alice", |phone, now| phone.press_key(now, '#')));
        assert!(world.run_until(secs(20), |w| w.phone("alice").saw(|e| *e == PhoneEvent::HungUp { by_peer: true })));
        world.run_for(secs(1));

        // The message is in bob's mailbox, with alice's voice in it.
        let store = server.borrow().store.clone();
        let rt = Rt(server.clone());
        let messages = rt.block_on(store.voicemails(bob, None)).unwrap();
        assert_eq!(
            messages.len(),
            1,
            "seed {seed}: {:#?}\napps: {:?}",
            world.events(),
            world
                .apps()
                .values()
                .map(|a| (a.call, a.ticks, a.keys.clone(), a.ended.clone(), a.played))
                .collect::<Vec<_>>()
        );
        assert!((2500..4500).contains(&messages[0].duration_ms), "{} ms", messages[0].duration_ms);
        let wav = rt.block_on(store.voicemail_audio(messages[0].id)).unwrap().unwrap();
        let mut player = sambung_media::wav::WavPlayer::new(std::io::Cursor::new(wav.as_slice()), RATE).unwrap();
        let mut recorded = Vec::new();
        while let Some(frame) = player.next_frame().unwrap() {
            recorded.extend_from_slice(frame);
        }
        assert!(tone_windows(&recorded, ALICE_HZ) >= 4, "the message holds alice's 3 s of tone");
        let events: Vec<Event> = world.events().iter().map(|(_, e)| e.clone()).collect();
        assert!(
            events.iter().any(|e| matches!(e, Event::VoicemailLeft { account_id, .. } if *account_id == bob)),
            "{events:?}"
        );
        assert!(
            events.iter().any(|e| matches!(e, Event::CallEnded(r) if r.callee_device.as_deref() == Some("voicemail"))),
            "{events:?}"
        );

        // bob comes online and dials his mailbox: `1` plays the new message.
        world.act("bob", |phone, now| phone.register(now));
        assert!(world.run_until(secs(30), |w| w.phone("bob").is_registered()));
        world.phone_mut("bob").set_muted(true);
        world.act("bob", |phone, now| phone.call(now, "*97"));
        assert!(world.run_until(secs(30), |w| w.phone("bob").saw(|e| *e == PhoneEvent::Answered)), "{world:?}");
        world.run_for(secs(2));
        let before = world.phone("bob").heard().len();
        assert!(world.act("bob", |phone, now| phone.press_key(now, '1')));
        let heard_it = |w: &World| tone_windows(&w.phone("bob").heard()[before..], ALICE_HZ) >= 4;
        assert!(world.run_until(secs(40), heard_it), "bob heard alice's message through the menu (seed {seed})");
        // The message plays to its end (and is then no longer new).
        world.run_for(secs(3));
        world.act("bob", |phone, now| phone.hang_up(now));
        assert!(world.run_until(secs(10), |w| w.phone("bob").is_idle()));
        world.run_for(secs(1));
        // The message was heard: no longer new.
        let counts = rt.block_on(store.voicemail_counts(bob)).unwrap();
        assert_eq!(counts, (0, 1), "heard messages are saved");
        assert!(world.apps().values().all(|app| !app.running()));
    }
}
