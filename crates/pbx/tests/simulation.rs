//! Whole calls on the virtual clock: scripted phones, call control and its media sessions on
//! one seeded network with 5 % loss, duplicates and reordering (`World::lossy_network`). Each
//! scenario runs with two seeds; one runs twice to show that a seed gives the same run.
//!
//! `SIM_SEEDS=1..200 cargo test -p sambung-pbx --test simulation` runs every scenario with
//! those seeds instead (a soak run).

use std::time::Duration;

use sambung_pbx::registrar::{Routing, Target};
use sambung_pbx::{App, AppEnd, CallRecord, Event};
use sambung_sip::HeaderName;
use sambung_testkit::audio::{Sine, rms_dbfs, tone_level_dbfs, zero_crossing_frequency};
use sambung_testkit::phone::{PhoneEvent, RATE};
use sambung_testkit::sim::{AppIo, AppStart, Application, DOMAIN, SERVER_IP, World};

const ALICE_HZ: f64 = 500.0;
const BOB_HZ: f64 = 800.0;
const CAROL_HZ: f64 = 1200.0;
const APP_HZ: f64 = 1000.0;

/// Samples in `secs` seconds at the phones' rate.
fn samples(secs: f64) -> usize {
    (secs * f64::from(RATE)) as usize
}

/// The seeds a scenario runs with: `defaults`, or the range in `SIM_SEEDS` (`first..end`).
/// Odd seeds run call control on one shard, even seeds on three (each message to the shard
/// its Call-ID names, as the server does), so every scenario runs both ways.
fn seeds(defaults: [u64; 2]) -> Vec<u64> {
    let Ok(range) = std::env::var("SIM_SEEDS") else { return defaults.to_vec() };
    let (first, end) = range.split_once("..").expect("SIM_SEEDS is first..end");
    (first.parse().expect("a seed")..end.parse().expect("a seed")).collect()
}

/// The world of a scenario run with `seed`: see [`seeds`].
fn world(seed: u64) -> World {
    let shards = if seed.is_multiple_of(2) { 3 } else { 1 };
    let world = World::sharded(seed, World::lossy_network(), World::config(), shards);
    assert_eq!(world.shards().len(), shards);
    world
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Registers `users`' phones (each answering the registrar's 401).
fn register(world: &mut World, users: &[&str]) {
    for user in users {
        world.act(user, |phone, now| phone.register(now));
    }
    assert!(world.run_until(secs(30), |w| users.iter().all(|u| w.phone(u).is_registered())), "{world:?}");
}

/// `heard` is a tone of `hz` at `level` dBFS (within 3 dB), by its zero crossings and its
/// power at that frequency, and carries nothing of `not_hz` (the listener's own tone).
fn assert_tone(heard: &[i16], hz: f64, level: f64, not_hz: f64, what: &str) {
    let measured = zero_crossing_frequency(heard, RATE);
    assert!((measured - hz).abs() < hz * 0.03, "{what}: {measured:.1} Hz, not {hz} Hz");
    let at = tone_level_dbfs(heard, RATE, hz);
    assert!((at - level).abs() < 3.0, "{what}: {at:.1} dBFS at {hz} Hz, sent at {level:.1}");
    let echo = tone_level_dbfs(heard, RATE, not_hz);
    assert!(echo < level - 30.0, "{what}: {echo:.1} dBFS of the listener's own tone");
}

fn records(world: &World) -> Vec<CallRecord> {
    world
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CallEnded(record) => Some(record.clone()),
            _ => None,
        })
        .collect()
}

/// alice (A) calls `callee`; returns once `answerer`'s phone rings.
fn call_and_ring(world: &mut World, callee: &str, answerer: &str) {
    world.act("alice", |phone, now| phone.call(now, callee));
    assert!(world.run_until(secs(60), |w| w.phone(answerer).is_ringing()), "{world:?}");
}

/// `answerer` answers alice's call; returns where each phone's recording stands once both
/// send (alice starts when the 2xx reaches her, which a loss may delay by a retransmission).
fn answer(world: &mut World, answerer: &str) -> (usize, usize) {
    world.act(answerer, |phone, now| phone.answer(now));
    let connected = |w: &World| w.phone("alice").in_call() && w.phone(answerer).saw(|e| *e == PhoneEvent::Connected);
    assert!(world.run_until(secs(30), connected), "{world:?}");
    (world.phone("alice").heard().len(), world.phone(answerer).heard().len())
}

/// The scenario of `a_call_with_audio_both_ways`: alice calls bob, 3 s of audio, alice hangs up.
fn call_with_audio(seed: u64) -> World {
    eprintln!("seed {seed}");
    let mut world = world(seed);
    world.add_user("alice", ALICE_HZ, Routing::default());
    world.add_user("bob", BOB_HZ, Routing::default());
    register(&mut world, &["alice", "bob"]);

    call_and_ring(&mut world, "bob", "bob");
    // A 180 is sent once and may be lost (RFC 3261 §17: provisional answers are not repeated);
    // bob's phone rings again, as a UAS may (§13.3.1.1), until alice hears it.
    let alice_rings = |w: &World| w.phone("alice").saw(|e| *e == PhoneEvent::Ringing);
    for _ in 0..5 {
        if world.run_until(secs(1), alice_rings) {
            break;
        }
        world.act("bob", |phone, now| phone.ring(now));
    }
    assert!(alice_rings(&world), "{:#?}", world.transcript());
    let (alice_from, bob_from) = answer(&mut world, "bob");
    world.run_for(secs(3));

    // The media is anchored: each phone was given the relay's address, never the other phone's.
    for phone in ["alice", "bob"] {
        assert_eq!(world.phone(phone).media_peer().map(|a| a.ip()), Some(SERVER_IP), "{phone}");
    }
    let invite = world.phone("bob").requests_of("INVITE").next().cloned().expect("bob's phone got an INVITE");
    assert!(String::from_utf8_lossy(&invite.body).contains(&format!("c=IN IP4 {SERVER_IP}")));
    // The call is on one shard, and the Call-ID of its leg to bob names that shard, so bob's
    // answers came back to it.
    let busy: Vec<usize> = (0..world.shards().len()).filter(|&i| world.shards()[i].calls_in_progress() > 0).collect();
    assert_eq!(busy.len(), 1, "{busy:?}");
    eprintln!("the call is on shard {} of {}", busy[0], world.shards().len());
    let b_call_id = invite.call_id().expect("a Call-ID").to_owned();
    assert!(b_call_id.ends_with(&format!("~{}", busy[0])), "{b_call_id} is not of shard {}", busy[0]);
    // Each heard the other's tone, at its level, from half a second in to the end.
    let (alice, bob) = (world.phone("alice"), world.phone("bob"));
    let heard = |from: usize, all: &[i16]| all[from + samples(0.5)..from + samples(3.0)].to_vec();
    assert_tone(&heard(alice_from, alice.heard()), BOB_HZ, bob.tone().level_dbfs(), ALICE_HZ, "alice hears bob");
    assert_tone(&heard(bob_from, bob.heard()), ALICE_HZ, alice.tone().level_dbfs(), BOB_HZ, "bob hears alice");

    world.act("alice", |phone, now| phone.hang_up(now));
    let ended =
        |w: &World| w.phone("bob").saw(|e| *e == PhoneEvent::HungUp { by_peer: true }) && !records(w).is_empty();
    assert!(world.run_until(secs(30), ended), "{world:?}");
    world.run_for(secs(1));
    world
}

#[test]
fn a_call_with_audio_both_ways() {
    for seed in seeds([1, 2]) {
        eprintln!("seed {seed}");
        let world = call_with_audio(seed);
        let [record] = records(&world).try_into().expect("one call record");
        assert_eq!((record.caller.as_str(), record.callee.as_str()), ("alice", "bob"));
        assert_eq!((record.cause_code, record.hangup_side), (200, "caller"));
        let answered = record.answered_at.expect("answered");
        assert!(answered >= record.started_at && record.ended_at >= answered);
        assert!((3..=4).contains(&record.duration_secs), "{record:?}");
        let events: Vec<&Event> = world.events().iter().map(|(_, e)| e).collect();
        assert!(
            events.iter().any(
                |e| matches!(e, Event::CallStarted { caller, callee, .. } if caller == "alice" && callee == "bob")
            )
        );
        assert!(events.iter().any(|e| matches!(e, Event::CallRinging { target, .. } if target == "bob")));
        assert!(events.iter().any(|e| matches!(e, Event::CallAnswered { call, .. } if *call == record.call)));
        assert_eq!(world.media().closed(), [record.call], "the media session was closed");
        assert!(world.media().sessions().is_empty());
        assert_eq!(world.calls_in_progress(), 0);
        let media = world.media().stats();
        assert!(media.forwarded > 250, "{media:?}");
    }
}

#[test]
fn forwarding_on_no_answer_rings_carol_after_bob() {
    for seed in seeds([3, 4]) {
        eprintln!("seed {seed}");
        let mut world = world(seed);
        world.add_user("alice", ALICE_HZ, Routing::default());
        let to_carol = Routing {
            forward_no_answer: Some(Target::Local("carol".into())),
            no_answer_secs: 4,
            voicemail: false,
            ..Routing::default()
        };
        world.add_user("bob", BOB_HZ, to_carol);
        world.add_user("carol", CAROL_HZ, Routing::default());
        register(&mut world, &["alice", "bob", "carol"]);

        call_and_ring(&mut world, "bob", "bob");
        let bob_rang = world.elapsed();
        // bob's phone rings and is never answered; carol's rings once bob's ring time is over
        assert!(world.run_until(secs(30), |w| w.phone("carol").is_ringing()), "{world:?}");
        assert!(world.elapsed() >= bob_rang + secs(3), "carol rang after {:?}", world.elapsed() - bob_rang);
        assert!(world.run_until(secs(10), |w| w.phone("bob").saw(|e| *e == PhoneEvent::Cancelled)));
        assert!(world.phone("bob").requests_of("CANCEL").count() >= 1, "bob's phone got a CANCEL");
        let invite = world.phone("carol").requests_of("INVITE").next().cloned().unwrap();
        let header = |name: &'static str| {
            invite.headers.get_all(HeaderName::from(name)).map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        };
        let history = header("History-Info");
        assert!(history.contains(&format!("sip:bob@{DOMAIN}")) && history.contains("cause=408"), "{history}");
        assert!(history.contains(&format!("sip:carol@{DOMAIN}")), "{history}");
        let diversion = header("Diversion");
        assert!(
            diversion.contains(&format!("<sip:bob@{DOMAIN}>")) && diversion.contains("reason=no-answer"),
            "{diversion}"
        );

        let (alice_from, carol_from) = answer(&mut world, "carol");
        world.run_for(secs(3));
        let (alice, carol) = (world.phone("alice"), world.phone("carol"));
        let heard = |from: usize, all: &[i16]| all[from + samples(0.5)..from + samples(3.0)].to_vec();
        assert_tone(
            &heard(alice_from, alice.heard()),
            CAROL_HZ,
            carol.tone().level_dbfs(),
            ALICE_HZ,
            "alice hears carol",
        );
        assert_tone(
            &heard(carol_from, carol.heard()),
            ALICE_HZ,
            alice.tone().level_dbfs(),
            CAROL_HZ,
            "carol hears alice",
        );
        assert!(!world.phone("bob").in_call() && world.phone("bob").media_peer().is_none(), "bob never had media");

        world.act("carol", |phone, now| phone.hang_up(now));
        assert!(world.run_until(secs(30), |w| w.phone("alice").saw(|e| *e == PhoneEvent::HungUp { by_peer: true })));
        world.run_for(secs(1));
        let [record] = records(&world).try_into().expect("one call record");
        assert_eq!((record.caller.as_str(), record.callee.as_str(), record.hangup_side), ("alice", "bob", "callee"));
        assert!(record.answered_at.is_some());
        assert_eq!(world.media().closed(), [record.call]);
    }
}

#[test]
fn a_message_to_an_offline_user_waits_in_the_store() {
    for seed in seeds([5, 6]) {
        eprintln!("seed {seed}");
        let mut world = world(seed);
        let alice_id = world.add_user("alice", ALICE_HZ, Routing::default());
        let dave_id = world.add_user("dave", BOB_HZ, Routing::default());
        register(&mut world, &["alice"]);

        world.act("alice", |phone, now| phone.send_message(now, "dave", "see you at five"));
        assert!(world.run_until(secs(30), |w| w.phone("alice").saw(|e| *e == PhoneEvent::MessageSent(202))));
        world.run_for(secs(5));
        let [kept] = world.store().pending(dave_id).try_into().expect("one message waits for dave");
        let id = kept.message.id;
        assert_eq!(&kept.message.body[..], b"see you at five");
        assert_eq!(kept.from_account, Some(alice_id));
        let stored = Event::MessageStored { message_id: id, from_account: Some(alice_id), to_account: dave_id };
        assert!(world.events().iter().any(|(_, e)| *e == stored), "{:?}", world.events());
        assert!(world.phone("dave").requests().is_empty(), "dave's phone is off");

        register(&mut world, &["dave"]);
        let got = |w: &World| {
            w.phone("dave").saw(|e| matches!(e, PhoneEvent::MessageReceived { body, .. } if body == "see you at five"))
        };
        assert!(world.run_until(secs(30), got), "{world:?}");
        let delivered = |w: &World| {
            w.events().iter().any(|(_, e)| matches!(e, Event::MessageDelivered { message_id, account_id, .. } if *message_id == id && *account_id == dave_id))
        };
        assert!(world.run_until(secs(30), delivered), "{:?}", world.events());
        assert!(world.store().pending(dave_id).is_empty());
        let took = &world.store().messages()[&id].delivered;
        assert_eq!(took.len(), 1, "one device took it once: {took:?}");
        assert!(
            world
                .phone("dave")
                .saw(|e| matches!(e, PhoneEvent::MessageReceived { from, .. } if from.starts_with("sip:alice@")))
        );
    }
}

/// A stand-in for voicemail: once it hears the caller, says a 1 kHz tone for one second, then
/// listens; `#` ends the call (and tells of the message left, as voicemail does).
#[derive(Debug)]
struct ToneThenHangUpOnHash {
    start: AppStart,
    tone: Sine,
    /// Frames of tone said so far.
    said: u32,
}

impl Application for ToneThenHangUpOnHash {
    fn on_audio(&mut self, heard: &[i16], io: &mut AppIo) {
        // The caller's phone starts its media when our answer reaches it: speak once it is heard.
        if (self.said > 0 || rms_dbfs(heard) > -50.0) && self.said < 50 {
            self.said += 1;
            let frame = self.tone.frame(io.frame_len());
            io.play(&frame);
        }
    }

    fn on_key(&mut self, key: char, io: &mut AppIo) {
        if key == '#' {
            let App::Voicemail { account_id, .. } = self.start.app else { return };
            let caller = self.start.caller.uri.clone();
            io.event(Event::VoicemailLeft { account_id, message_id: 1, caller, duration_secs: 1 });
            io.end(AppEnd::Hangup);
        }
    }
}

#[test]
fn voicemail_stand_in_hears_the_caller_and_ends_on_the_pound_key() {
    for seed in seeds([7, 8]) {
        eprintln!("seed {seed}");
        let mut world = world(seed);
        world.add_user("alice", ALICE_HZ, Routing::default());
        let bob_id = world.add_user("bob", BOB_HZ, Routing::default()); // voicemail on, never registered
        world.on_app(|start: &AppStart| {
            let tone = Sine::new(APP_HZ, 8000, start.rate);
            Some(Box::new(ToneThenHangUpOnHash { start: start.clone(), tone, said: 0 }) as Box<dyn Application>)
        });
        register(&mut world, &["alice"]);

        world.act("alice", |phone, now| phone.call(now, "bob"));
        assert!(world.run_until(secs(30), |w| w.phone("alice").saw(|e| *e == PhoneEvent::Answered)), "{world:?}");
        // where alice's recording and the application's stand when alice starts sending
        let alice_from = world.phone("alice").heard().len();
        let app_from = world.apps().values().next().map_or(0, |app| app.heard.len());
        world.run_for(secs(1));
        assert!(world.act("alice", |phone, now| phone.press_key(now, '#')), "telephone-event was negotiated");
        assert!(world.run_until(secs(1), |w| !w.phone("alice").pressing_key()));
        world.phone_mut("alice").set_muted(true);
        assert!(world.run_until(secs(30), |w| w.phone("alice").saw(|e| *e == PhoneEvent::HungUp { by_peer: true })));
        world.run_for(secs(1));

        let [(call, app)] = world.apps().iter().collect::<Vec<_>>().try_into().expect("one application call");
        let start = app.start.as_ref().expect("the application was started");
        assert!(matches!(&start.app, App::Voicemail { account_id, .. } if *account_id == bob_id), "{start:?}");
        assert_eq!(start.caller.username, "alice");
        assert_eq!(app.keys, ['#'], "the key came from the media session's RFC 4733 events");
        assert_eq!(app.ended, Some(AppEnd::Hangup));
        // the application heard alice's tone (from 0.3 s to 0.9 s after she started) ...
        let rate = app.rate as usize;
        let heard = &app.heard[app_from + rate * 3 / 10..app_from + rate * 9 / 10];
        let level = world.phone("alice").tone().level_dbfs();
        assert_tone(heard, ALICE_HZ, level, APP_HZ, "the application hears alice");
        // ... and alice heard the application's tone
        let heard = &world.phone("alice").heard()[alice_from + samples(0.3)..alice_from + samples(0.9)];
        assert_tone(heard, APP_HZ, Sine::new(APP_HZ, 8000, RATE).level_dbfs(), ALICE_HZ, "alice hears the application");

        let events: Vec<&Event> = world.events().iter().map(|(_, e)| e).collect();
        assert!(events.iter().any(|e| matches!(e, Event::CallAnswered { by, .. } if by == "voicemail")), "{events:?}");
        let left = |e: &&Event| matches!(e, Event::VoicemailLeft { account_id, caller, .. } if *account_id == bob_id && caller.starts_with("sip:alice@"));
        assert!(events.iter().any(left), "the application's own event is in the stream: {events:?}");
        let [record] = records(&world).try_into().expect("one call record");
        assert_eq!((record.call, record.hangup_side, record.cause_code), (*call, "callee", 200));
        assert_eq!(world.media().closed(), [*call]);
    }
}

#[test]
fn one_seed_gives_the_same_run() {
    let first = call_with_audio(11);
    let again = call_with_audio(11);
    assert_eq!(first.transcript(), again.transcript());
    assert_eq!(first.net_stats(), again.net_stats());
    assert_eq!(first.phone("alice").heard(), again.phone("alice").heard(), "the same audio, sample for sample");
    let other = call_with_audio(12);
    assert_ne!(first.net_stats(), other.net_stats(), "another seed, another run");
}

/// Calls leave nothing behind: once they are over and every transaction's timers ran out,
/// each shard's footprint is back to nothing, whatever the network lost, repeated or reordered
/// (a leak here grows with every call; the allocator's high-water mark does not).
#[test]
fn calls_leave_nothing_behind() {
    for seed in seeds([13, 14]) {
        eprintln!("seed {seed}");
        let mut world = world(seed);
        world.add_user("alice", ALICE_HZ, Routing::default());
        world.add_user("bob", BOB_HZ, Routing::default());
        register(&mut world, &["alice", "bob"]);
        for n in 0..6 {
            call_and_ring(&mut world, "bob", "bob");
            if n % 3 == 2 {
                // unanswered: alice gives up (CANCEL)
                world.act("alice", |phone, now| phone.hang_up(now));
            } else {
                answer(&mut world, "bob");
                world.run_for(secs(1));
                let who = if n % 2 == 0 { "alice" } else { "bob" };
                world.act(who, |phone, now| phone.hang_up(now));
            }
            let idle =
                |w: &World| !w.phone("alice").in_call() && !w.phone("bob").in_call() && w.calls_in_progress() == 0;
            assert!(world.run_until(secs(60), idle), "call {n}: {world:?}");
            world.run_for(secs(1));
        }
        assert_eq!(records(&world).len(), 6);
        // RFC 3261 timers: the last transactions are gone after 64*T1 (Timers B, F, H, J, K).
        world.run_for(secs(40));
        for (i, shard) in world.shards().iter().enumerate() {
            assert_eq!(shard.footprint(), sambung_pbx::Footprint::default(), "shard {i} of seed {seed}");
        }
    }
}
