//! Voicemail with real parts, against the built `sambung`:
//!
//! - alice (baresip, a real softphone) calls bob, who has no device online: the voicemail
//!   answers with its greeting and a beep, alice speaks, then hangs up. The message is stored
//!   with caller, time and duration; bob's SIPp phone, subscribed to message-summary
//!   (RFC 3842), gets `Voice-Message: 0/0` at once and `1/0` when the message is stored; a real
//!   SMTP server (aiosmtpd, tests/tools/smtp-sink) receives the email, whose attachment decodes to
//!   alice's speech (PESQ against what she said). After a restart the message is still there.
//! - bob (baresip) dials *97 and drives his mailbox with RFC 4733 keys: 1 plays the new message,
//!   9 saves it; the store then shows it saved. A feature code (*78, do-not-disturb) from the same
//!   phone survives a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::clients::{
    Baresip, BaresipConfig, Cleanup, Sipp, User, fail_with_logs, pesq, quit, require_tool, server_config,
    server_dir_with_users, server_rtp_range, set_call_settings, silence_wav, speech_wav, start_registered, wav_seconds,
};
use common::smtp::Sink;
use common::{Server, free_port, temp_dir};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User { name: "bob", password: "Builder-Can-42", extension: Some("1002") };

/// The lowest PESQ (narrowband) accepted for the emailed recording against what alice said.
///
/// Measured on this 2-core machine, December 2026, since the voicemail records inside the server
/// (the media session decodes alice's RTP for the application; no loopback socket, no SRTP, no
/// timer of its own): 13 runs, 3.91 each time, idle (6 runs), with two busy loops on the two
/// cores (3) and with six (load average 7, 4). There is no direct baseline (the server itself
/// records). The floor is 0.11 under that; it fails a recording that loses one 20 ms frame in
/// 50 (about 3.06 on a sentence of this kind through G.711) or a single 60 ms gap (about 3.49).
///
/// Before (the application's own loopback SRTP socket), 15 runs under load average 4.5-12 had a
/// tail down to 2.89, which kept the floor at 2.75; that tail is gone with the socket.
const MIN_PESQ: f64 = 3.8;

const MESSAGE: &str = "Hi Bob, this is Alice. Please call me back about the meeting tomorrow.";

fn store_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("data").join("sambung.db").display())
}

/// Runs `f` on the server's database (it may be running).
fn with_store<T>(dir: &Path, f: impl AsyncFnOnce(&sambung_store::Store, i64) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let store = sambung_store::Store::open(&store_url(dir)).await.expect("open the test database");
        let bob = store.account_by_username("bob").await.expect("read bob").expect("bob exists").id;
        let out = f(&store, bob).await;
        store.close().await;
        out
    })
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done()
}

/// The keys in the server log's `key pressed` lines (RFC 4733 events the relay got), in order.
fn keys_logged(log: &str) -> String {
    log.lines()
        .filter(|line| line.contains("key pressed"))
        .filter_map(|line| line.split("key=").nth(1)?.chars().next())
        .collect()
}

#[test]
fn voicemail_left_by_baresip_lights_the_lamp_is_emailed_and_survives_a_restart() {
    require_tool("baresip", "baresip");
    require_tool("sipp", "sip-tester");
    let work = temp_dir("voicemail");
    let _cleanup = Cleanup(work.clone());
    let sink = Sink::start("voicemail", 0, &[]);
    let extra = format!(
        "{}\n[email]\nserver = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nretry_seconds = 1\n",
        server_config(server_rtp_range()),
        sink.port
    );
    let dir = server_dir_with_users(&extra, &[ALICE, BOB]);
    set_call_settings(&dir, "bob", |s| {
        s.voicemail_email = Some("bob@example.test".into());
        s.voicemail_attach = true;
    });
    let mut server = Server::start_in(dir.clone(), &extra);

    // bob's desk phone watches the lamp (it subscribes but never registers: bob is offline)
    let mwi = Sipp::new("subscribe_mwi.xml", free_port())
        .to(&server)
        .service(BOB.name)
        .auth(BOB.name, BOB.password)
        .timeout(Duration::from_secs(120))
        .spawn();
    if !wait_until(Duration::from_secs(20), || server.log().contains("message-summary subscription")) {
        let mwi = mwi.wait();
        panic!("bob's phone did not subscribe:\n{}\n{}", mwi.describe(), common::clients::tail(&server.log(), 4000));
    }

    // alice speaks after the greeting (which lasts about 12 s), then hangs up
    let reference = speech_wav(&work, "reference", MESSAGE, 0.3, 0.3);
    let says = speech_wav(&work, "alice-says", MESSAGE, 16.0, 1.0);
    let mut config = BaresipConfig::new(ALICE.name, ALICE.password, &server, &says);
    config.commands.push(format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
    let mut alice = start_registered(&work.join("alice"), config, &server);
    if !alice.wait_for(Duration::from_secs(20), |log| log.contains("Call established")) {
        fail_with_logs("the voicemail did not answer alice within 20 s", &[&alice], &server);
    }
    // baresip hangs up by itself when its microphone file ends (../shared/interop/BARESIP.md):
    // wait for that, allowing the file's length and 20 s more.
    let spoken = Duration::from_secs_f64(wav_seconds(&says));
    if !alice.wait_for(spoken + Duration::from_secs(20), |log| log.contains(" terminated (duration")) {
        fail_with_logs(
            &format!("alice's call did not end within {:.0} s of being answered", spoken.as_secs_f64() + 20.0),
            &[&alice],
            &server,
        );
    }
    quit(&mut alice);
    // what alice heard: the greeting (speech, not silence)
    if let Some(heard) = alice.recorded("-dec.wav").last() {
        assert!(common::clients::wav_rms(heard) > 100.0, "alice heard no greeting");
    }

    let mwi = mwi.wait();
    mwi.assert_success("bob's phone getting the message-waiting NOTIFYs", &server);

    let messages = with_store(&dir, async |store, bob| store.voicemails(bob, None).await.expect("list"));
    assert_eq!(messages.len(), 1, "one message for bob: {messages:?}\n{}", common::clients::tail(&server.log(), 6000));
    let message = &messages[0];
    assert_eq!(message.state, sambung_store::VoicemailState::New);
    assert!(message.caller_uri.contains("alice"), "{message:?}");
    let spoken = wav_seconds(&reference);
    assert!(
        (message.duration_ms as f64) > spoken * 1000.0 && (message.duration_ms as f64) < 30_000.0,
        "the recording lasts {} ms for {spoken:.1} s of speech",
        message.duration_ms
    );
    let recorded = with_store(&dir, async |store, _| store.voicemail_audio(message.id).await.expect("audio"))
        .expect("the message has audio");

    // the email, its attachment the recording, which is alice's speech
    let mail = sink.wait_for(1).remove(0);
    assert_eq!(mail.rcpt_tos, ["bob@example.test"]);
    assert!(mail.subject.to_lowercase().contains("alice"), "subject: {}", mail.subject);
    let attachment = mail.attachments.first().expect("the recording is attached");
    assert_eq!(attachment.content_type, "audio/wav");
    assert_eq!(attachment.data, recorded, "the attachment is the stored recording");
    let attached = work.join("attached.wav");
    std::fs::write(&attached, &attachment.data).unwrap();
    let score = pesq(&reference, &attached, "nb");
    assert!(score >= MIN_PESQ, "the emailed recording must be alice's speech: PESQ {score:.2} < {MIN_PESQ}");
    println!("voicemail PESQ (nb) of the emailed recording: {score:.2}");

    // a restart loses nothing
    server.terminate(Duration::from_secs(10));
    let server = Server::start_owning(dir.clone(), &extra);
    let after = with_store(&dir, async |store, bob| store.voicemails(bob, None).await.expect("list"));
    assert_eq!(after, messages, "the message survives a restart");
    drop(server);
}

#[test]
fn mailbox_menu_by_rfc4733_keys_and_a_feature_code_that_survives_a_restart() {
    require_tool("baresip", "baresip");
    let work = temp_dir("mailbox");
    let _cleanup = Cleanup(work.clone());
    let extra = server_config(server_rtp_range());
    let dir = server_dir_with_users(&extra, &[ALICE, BOB]);
    // a message waiting for bob
    let speech = speech_wav(&work, "message", MESSAGE, 0.3, 0.3);
    let audio = std::fs::read(&speech).unwrap();
    with_store(&dir, async |store, bob| {
        let new = sambung_store::NewVoicemail {
            account_id: bob,
            caller_uri: "sip:alice@127.0.0.1".into(),
            caller_name: "alice".into(),
            caller_number: None,
            created_at: 1_790_000_000,
            duration_ms: 4000,
            audio,
        };
        store.store_voicemail(new).await.expect("store a message")
    });
    let mut server = Server::start_in(dir.clone(), &extra);

    let silence = silence_wav(&work, 60.0);
    let ctrl_port = free_port();
    let mut config = BaresipConfig::new(BOB.name, BOB.password, &server, &silence);
    config.ctrl_port = Some(ctrl_port);
    config.commands.push(format!("/dial sip:*97@127.0.0.1:{}", server.ports.udp));
    let mut bob = start_registered(&work.join("bob"), config, &server);
    if !bob.wait_for(Duration::from_secs(20), |log| log.contains("Call established")) {
        fail_with_logs("the mailbox did not answer *97 within 20 s", &[&bob], &server);
    }
    // The mailbox takes keys once it is open (a key stops a prompt and is kept for the menu).
    if !wait_until(Duration::from_secs(20), || server.log().contains("mailbox opened")) {
        fail_with_logs("the mailbox did not open within 20 s of the call", &[&bob], &server);
    }
    let counts = |dir: &Path| with_store(dir, async |store, bob| store.voicemail_counts(bob).await.expect("counts"));
    // 1: the new message plays (its introduction, then the recording).
    bob.send_dtmf("1");
    if !wait_until(Duration::from_secs(10), || keys_logged(&server.log()) == "1") {
        fail_with_logs("the server did not get key 1 within 10 s", &[&bob], &server);
    }
    assert_eq!(counts(&dir), (1, 0), "the message is still new while it plays");
    // 9 while it plays: saved at once. Playing a message to its end saves it too, so the key
    // must save it sooner than the recording (about 4 s, after its introduction) could end.
    bob.send_dtmf("9");
    let pressed = Instant::now();
    let limit = Duration::from_secs_f64(wav_seconds(&speech));
    let ok = wait_until(limit, || counts(&dir) == (0, 1));
    bob.command("/hangup");
    quit(&mut bob);
    if !ok {
        fail_with_logs(
            &format!(
                "key 9 did not save the message within {limit:?} (counts {:?} after {:?}; keys the server got: {:?})",
                counts(&dir),
                pressed.elapsed(),
                keys_logged(&server.log())
            ),
            &[&bob],
            &server,
        );
    }

    // *78 from the phone: do-not-disturb on, kept across a restart
    let mut config = BaresipConfig::new(BOB.name, BOB.password, &server, &silence);
    config.commands.push(format!("/dial sip:*78@127.0.0.1:{}", server.ports.udp));
    let mut bob = Baresip::start(&work.join("bob-dnd"), config);
    let dnd = |dir: &Path| with_store(dir, async |store, bob| store.call_settings(bob).await.expect("settings").dnd);
    let ok = wait_until(Duration::from_secs(20), || dnd(&dir));
    quit(&mut bob);
    if !ok {
        fail_with_logs("*78 did not turn do-not-disturb on", &[&bob], &server);
    }
    server.terminate(Duration::from_secs(10));
    let _server = Server::start_owning(dir.clone(), &extra);
    assert!(dnd(&dir), "do-not-disturb survives a restart");
    assert_eq!(counts(&dir), (0, 1), "the saved message survives a restart");
}
