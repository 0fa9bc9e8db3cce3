//! baresip (Debian `baresip` 1.0), a real softphone, against the built `sambung`: two instances
//! register as alice and bob, alice calls bob and both speak (espeak-ng speech through aufile,
//! PCMU); what each one heard is recorded (sndfile), must not be silence, and must score with
//! ITU-T P.862 (../shared/tools/pesq-score, narrowband) as well as the same speech does with no
//! server in between (see [`MIN_PESQ`]). The RTP must come from the server's relay. Text messages reach
//! a registered device, and a message for a device that is offline is stored and delivered once
//! when it registers. Video (VP8) between two baresips goes through the relay too.
//!
//! Each instance has its own configuration directory, listens on 127.0.0.1 only, and is driven
//! through its standard input (stdio module): see common/clients.rs and
//! ../shared/interop/BARESIP.md.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::clients::{
    Baresip, BaresipConfig, Cleanup, User, fail_with_logs, pesq, quit, server_config, server_rtp_range,
    server_with_users, silence_wav, speech_wav, start_registered, strip_ansi, wav_rms, wav_seconds,
};
use common::{Server, temp_dir};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User::new("bob", "Builder-Can-42");
const CAROL: User<'static> = User::new("carol", "Sings-In-Tune-19");

/// What alice says: about five seconds.
const ALICE_SPEECH: &str =
    "The quick brown fox jumps over the lazy dog. Sambung carries this sentence from Alice to Bob.";
/// What bob says: shorter, so that it is over before alice hangs up.
const BOB_SPEECH: &str = "Hello Alice, this is Bob.";

/// The lowest PESQ (narrowband, PCMU) accepted for either direction of the relayed call.
///
/// Measured on this 2-core machine with other builds running (load average 4.5-12), December
/// 2026: through the server, 28 scores (14 calls, both directions), every one 4.06 or 4.07; the
/// same speech in a direct baresip-to-baresip call (`baseline_direct_call_without_a_server`), 16
/// scores from 4.06 to 4.08. The relay changes nothing measurable and the spread is 0.01, so the
/// floor is the lowest score less 0.06 (six times the spread). What it catches, measured on
/// this sentence through G.711 with frames blanked: one 60 ms gap scores 3.49, one lost 20 ms
/// frame a second 3.06.
const MIN_PESQ: f64 = 4.0;

fn server() -> (Server, (u16, u16)) {
    let rtp = server_rtp_range();
    (server_with_users(&server_config(rtp), &[ALICE, BOB, CAROL]), rtp)
}

fn config(user: &User<'_>, server: &Server, audio: &Path) -> BaresipConfig {
    BaresipConfig::new(user.name, user.password, server, audio)
}

/// The port in the log line `stream: incoming rtp for 'audio' established, receiving from
/// 127.0.0.1:PORT`.
fn rtp_source(phone: &Baresip) -> Option<u16> {
    let log = strip_ansi(&phone.log());
    let line = log.lines().find(|l| l.contains("incoming rtp for 'audio' established"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

#[test]
fn call_between_two_baresips_carries_speech_both_ways() {
    let (server, rtp) = server();
    let dir = temp_dir("baresip-call");
    let _cleanup = Cleanup(dir.clone());
    // alice's microphone: her sentence, then silence; she hangs up when it ends.
    let alice_says = speech_wav(&dir, "alice-says", ALICE_SPEECH, 0.5, 1.5);
    // bob's microphone: his short sentence, then silence lasting past alice's hang-up. PESQ
    // compares what alice heard with his sentence and a short tail only.
    let bob_reference = speech_wav(&dir, "bob-reference", BOB_SPEECH, 0.5, 0.5);
    let bob_says = speech_wav(&dir, "bob-says", BOB_SPEECH, 0.5, (wav_seconds(&alice_says) + 5.0) as f32);
    assert!(wav_seconds(&alice_says) > 4.0 && wav_seconds(&bob_reference) + 1.0 < wav_seconds(&alice_says));

    let mut bob = start_registered(&dir.join("bob"), config(&BOB, &server, &bob_says), &server);
    let mut alice_config = config(&ALICE, &server, &alice_says);
    alice_config.commands.push(format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
    let mut alice = Baresip::start(&dir.join("alice"), alice_config);

    let established = |log: &str| log.contains("Call established");
    if !alice.wait_for(Duration::from_secs(20), established) || !bob.wait_for(Duration::from_secs(5), established) {
        fail_with_logs("the call was not established within 20 s", &[&alice, &bob], &server);
    }
    let started = Instant::now();
    let ended = |log: &str| log.contains(" terminated (duration");
    if !alice.wait_for(Duration::from_secs(30), ended) || !bob.wait_for(Duration::from_secs(5), ended) {
        fail_with_logs("the call did not end within 30 s of being established", &[&alice, &bob], &server);
    }
    let duration = started.elapsed();
    quit(&mut alice);
    quit(&mut bob);

    // Signalling: the offer bob got; media: where each phone's RTP came from.
    let invite = bob.trace().into_iter().find(|m| m.received && m.method() == "INVITE" && m.status().is_none());
    let offer = invite.as_ref().and_then(|m| m.sdp_audio());
    let sources = [("alice", rtp_source(&alice)), ("bob", rtp_source(&bob))];
    println!("offer to bob: {offer:?}; RTP sources: {sources:?}; relay ports {rtp:?}");

    // What each one heard.
    let mut heard_levels = Vec::new();
    let mut scores = Vec::new();
    for (listener, speaker, reference) in [(&bob, "alice", &alice_says), (&alice, "bob", &bob_reference)] {
        let heard = listener.recorded("-dec.wav");
        let Some(heard) = heard.last() else {
            fail_with_logs(&format!("{} recorded nothing (sndfile)", listener.config.user), &[&alice, &bob], &server)
        };
        let (rms, reference_rms) = (wav_rms(heard), wav_rms(reference));
        println!(
            "{} heard {:.1} s of {speaker}'s speech: RMS {rms:.0} (what {speaker} sent: {reference_rms:.0})",
            listener.config.user,
            wav_seconds(heard)
        );
        heard_levels.push((listener.config.user.clone(), rms, reference_rms));
        if rms >= reference_rms * 0.2 {
            let score = pesq(reference, heard, "nb");
            println!(
                "PESQ (nb, PCMU) {speaker} -> {} through Sambung: {score:.2} (without a server: 4.06-4.08)",
                listener.config.user
            );
            scores.push((speaker, score));
        }
    }
    println!("call lasted {:.1} s", duration.as_secs_f64());

    let in_range = |port: u16| (rtp.0..=rtp.1).contains(&port);
    match &offer {
        Some((address, port)) if address == "127.0.0.1" && in_range(*port) => {}
        _ => fail_with_logs(
            &format!("the INVITE to bob must offer the relay (127.0.0.1, a port in {rtp:?}); got {offer:?}"),
            &[&alice, &bob],
            &server,
        ),
    }
    for (user, source) in sources {
        if !source.is_some_and(in_range) {
            fail_with_logs(
                &format!("{user}'s RTP must come from the relay (a port in {rtp:?}); it came from port {source:?}"),
                &[&alice, &bob],
                &server,
            );
        }
    }
    for (user, rms, reference_rms) in heard_levels {
        assert!(
            rms >= reference_rms * 0.2,
            "{user} heard (near) silence: RMS {rms:.0} against {reference_rms:.0} sent"
        );
    }
    for (speaker, score) in scores {
        assert!(score >= MIN_PESQ, "{speaker}'s speech scored PESQ {score:.2} < {MIN_PESQ} after the server");
    }

    // The call's record carries the relay's figures of each side's audio: both sent seconds
    // of PCMU over loopback, nothing lost. The round trip needs a sender report answered
    // within the call (baresip sends one every few seconds): printed, not required.
    let url = format!("sqlite://{}", server.dir.join("data").join("sambung.db").display());
    let legs = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let store = sambung_store::Store::open(&url).await.expect("the test database");
        let mut legs = Vec::new();
        for _ in 0..100 {
            let cdr = store.list_cdrs(1).await.expect("records").pop().expect("the call's record");
            legs = store.cdr_legs(&[cdr.id]).await.expect("legs");
            if legs.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await;
        legs
    });
    println!("the call's media figures: {legs:?}");
    assert_eq!(legs.len(), 2, "both sides' figures are recorded: {legs:?}");
    for leg in &legs {
        assert!(leg.packets > 150 && leg.lost == 0 && leg.jitter_us < 20_000, "{leg:?}");
    }
}

/// The baseline for [`MIN_PESQ`]: the same speech and codec in a call between the two
/// baresips with no server in between (../shared/interop/BARESIP.md). A measurement, run by
/// hand: `cargo test -p sambung-server --test baresip -- --ignored --nocapture baseline`.
#[test]
#[ignore = "a measurement for the PESQ floor, run by hand"]
fn baseline_direct_call_without_a_server() {
    let dir = temp_dir("baresip-baseline");
    let _cleanup = Cleanup(dir.clone());
    let alice_says = speech_wav(&dir, "alice-says", ALICE_SPEECH, 0.5, 1.5);
    let bob_reference = speech_wav(&dir, "bob-reference", BOB_SPEECH, 0.5, 0.5);
    let bob_says = speech_wav(&dir, "bob-says", BOB_SPEECH, 0.5, (wav_seconds(&alice_says) + 5.0) as f32);
    let (alice, bob) = common::clients::direct_call(&dir, &alice_says, &bob_says, |_| {});
    for (listener, speaker, reference) in [(&bob, "alice", &alice_says), (&alice, "bob", &bob_reference)] {
        let heard = listener.recorded("-dec.wav");
        let heard = heard.last().expect("a recording");
        let score = pesq(reference, heard, "nb");
        println!("PESQ (nb, PCMU) {speaker} -> {} with no server: {score:.2}", listener.config.user);
    }
}

/// A blind transfer by a phone (RFC 3515, RFC 5589 §6): alice calls bob, bob's baresip sends
/// `/transfer` to carol. The server, the back-to-back agent, takes bob's REFER itself: it
/// answers 202, asks alice's phone by a REFER of its own (with a Refer-To: the REFER must never
/// reach alice without one) to call carol, tells bob how it goes by NOTIFY, and ends the first
/// call once carol has answered. Carol hears alice's speech.
/// Video between two SIP phones goes through the relay too: alice's and bob's baresips, each
/// with VP8 from its fake camera, call through Sambung; each decodes the other's 352x288 video,
/// and the video each receives comes from the relay's ports.
#[test]
fn video_between_two_baresips_goes_through_the_relay() {
    let (server, rtp) = server();
    let dir = temp_dir("baresip-video");
    let _cleanup = Cleanup(dir.clone());
    let silence = silence_wav(&dir, 30.0);
    let phone = |user: &User<'_>| {
        let mut config = config(user, &server, &silence);
        config.video = true;
        config
    };
    let mut bob = start_registered(&dir.join("bob"), phone(&BOB), &server);
    let mut alice = start_registered(&dir.join("alice"), phone(&ALICE), &server);
    alice.command(&format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
    let decoding = |log: &str| strip_ansi(log).contains("video: receiving with resolution 352 x 288");
    if !alice.wait_for(Duration::from_secs(20), decoding) || !bob.wait_for(Duration::from_secs(10), decoding) {
        fail_with_logs("the two baresips did not decode each other's video within 20 s", &[&alice, &bob], &server);
    }
    alice.command("/hangup");
    quit(&mut alice);
    quit(&mut bob);
    // Where each one's video came from: `incoming rtp for 'video' established, receiving from
    // 127.0.0.1:PORT`, a port of the relay.
    let video_source = |phone: &Baresip| -> Option<u16> {
        let log = strip_ansi(&phone.log());
        let line = log.lines().find(|l| l.contains("incoming rtp for 'video' established"))?;
        line.rsplit(':').next()?.trim().parse().ok()
    };
    let sources = [video_source(&alice), video_source(&bob)];
    println!("video sources: alice {:?}, bob {:?}; relay ports {rtp:?}", sources[0], sources[1]);
    for (who, source) in ["alice", "bob"].into_iter().zip(sources) {
        assert!(
            source.is_some_and(|port| (rtp.0..=rtp.1).contains(&port)),
            "{who}'s video must come from the relay's ports {rtp:?}, not {source:?}"
        );
    }
}

#[test]
fn blind_transfer_by_a_phone_sends_the_caller_on() {
    let (server, _) = server();
    let dir = temp_dir("baresip-transfer");
    let _cleanup = Cleanup(dir.clone());
    let alice_says = speech_wav(&dir, "alice-says", ALICE_SPEECH, 0.5, 1.5);
    let silence = silence_wav(&dir, 40.0);
    let mut bob = start_registered(&dir.join("bob"), config(&BOB, &server, &silence), &server);
    let mut carol = start_registered(&dir.join("carol"), config(&CAROL, &server, &silence), &server);
    // alice's first call (to bob) hears silence until the transfer; each of her calls plays
    // the file from the start, so the call with carol carries her whole sentence.
    let mut alice_config = config(&ALICE, &server, &alice_says);
    alice_config.commands.push(format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
    let mut alice = Baresip::start(&dir.join("alice"), alice_config);

    let established = |log: &str| log.contains("Call established");
    if !bob.wait_for(Duration::from_secs(20), established) {
        fail_with_logs("alice's call to bob was not established within 20 s", &[&alice, &bob, &carol], &server);
    }
    bob.command(&format!("/transfer sip:carol@127.0.0.1:{}", server.ports.udp));
    if !carol.wait_for(Duration::from_secs(20), established) {
        fail_with_logs("the transferred call did not reach carol within 20 s", &[&alice, &bob, &carol], &server);
    }
    // bob's call is over once carol answered: he hangs up on the NOTIFY of 200, or the
    // server does (whichever BYE comes first).
    let port = bob.config.sip_port;
    let bye = |log: &str| common::clients::sip_trace(log, port).iter().any(|m| m.method() == "BYE");
    if !bob.wait_for(Duration::from_secs(10), bye) {
        fail_with_logs("bob's call did not end after the transfer", &[&alice, &bob, &carol], &server);
    }
    let ended = |log: &str| log.contains(" terminated (duration");
    // alice's sentence plays out in her call with carol, then she hangs up.
    if !carol.wait_for(Duration::from_secs(30), ended) {
        fail_with_logs("alice's call with carol did not end within 30 s", &[&alice, &bob, &carol], &server);
    }
    quit(&mut alice);
    quit(&mut bob);
    quit(&mut carol);

    // bob's REFER was taken by the server (202) and followed by NOTIFYs ending in 200.
    let bob_trace = bob.trace();
    let refer_status =
        bob_trace.iter().find(|m| m.received && m.method() == "REFER" && m.status().is_some()).and_then(|m| m.status());
    let notified: Vec<String> = bob_trace
        .iter()
        .filter(|m| m.received && m.method() == "NOTIFY" && m.status().is_none())
        .map(|m| m.body().lines().next().unwrap_or_default().trim().to_owned())
        .collect();
    // alice got a REFER from the server naming carol.
    let alice_refer = alice.trace().into_iter().find(|m| m.received && m.method() == "REFER" && m.status().is_none());
    let refer_to = alice_refer.as_ref().and_then(|m| m.header("Refer-To")).unwrap_or_default().to_owned();
    println!("bob's REFER answered {refer_status:?}; NOTIFYs to bob {notified:?}; Refer-To to alice {refer_to:?}");
    if refer_status != Some(202) || notified.last().map(String::as_str) != Some("SIP/2.0 200 OK") {
        fail_with_logs(
            &format!("bob's REFER must be accepted (202) and end in a NOTIFY of 200: {refer_status:?} {notified:?}"),
            &[&alice, &bob, &carol],
            &server,
        );
    }
    if !refer_to.contains("sip:carol@") {
        fail_with_logs(&format!("the REFER alice got must name carol: {refer_to:?}"), &[&alice, &bob, &carol], &server);
    }

    // carol heard alice.
    let heard = carol.recorded("-dec.wav");
    let Some(heard) = heard.last() else { fail_with_logs("carol recorded nothing", &[&alice, &bob, &carol], &server) };
    let (rms, reference_rms) = (wav_rms(heard), wav_rms(&alice_says));
    let score = pesq(&alice_says, heard, "nb");
    println!(
        "carol heard {:.1} s of alice: RMS {rms:.0} (sent {reference_rms:.0}), PESQ {score:.2}",
        wav_seconds(heard)
    );
    assert!(rms >= reference_rms * 0.2, "carol heard (near) silence: RMS {rms:.0} against {reference_rms:.0}");
    assert!(score >= MIN_PESQ, "alice's speech to carol after the transfer scored PESQ {score:.2} < {MIN_PESQ}");
}

/// Waits for `text` to show up as a received message in `phone`'s log
/// (`sip:alice@...: "text"`); returns how many times it did.
fn wait_message(phone: &mut Baresip, text: &str, limit: Duration) -> usize {
    let quoted = format!("\"{text}\"");
    phone.wait_for(limit, |log| log.contains(&quoted));
    strip_ansi(&phone.log()).matches(&quoted).count()
}

/// The final status alice got for her MESSAGE (after any 401/407 challenge she answered),
/// waiting up to 10 s.
fn message_status(alice: &mut Baresip) -> Option<u16> {
    let port = alice.config.sip_port;
    let last = |log: &str| {
        common::clients::sip_trace(log, port)
            .into_iter()
            .filter(|m| m.received && m.method() == "MESSAGE" && m.status().is_some_and(|s| s >= 200))
            .filter_map(|m| m.status())
            .next_back()
    };
    alice.wait_for(Duration::from_secs(10), |log| last(log).is_some_and(|s| s != 401 && s != 407));
    last(&alice.log())
}

#[test]
fn text_message_reaches_a_registered_device() {
    let (server, _) = server();
    let dir = temp_dir("baresip-message");
    let _cleanup = Cleanup(dir.clone());
    let silence = silence_wav(&dir, 2.0);
    let mut bob = start_registered(&dir.join("bob"), config(&BOB, &server, &silence), &server);
    let mut alice_config = config(&ALICE, &server, &silence);
    alice_config.contacts.push(format!("\"Bob\" <sip:bob@127.0.0.1:{}>", server.ports.udp));
    let mut alice = start_registered(&dir.join("alice"), alice_config, &server);

    let text = "hello bob, this is alice";
    alice.command(&format!("/message {text}"));
    let status = message_status(&mut alice);
    if !status.is_some_and(|s| (200..300).contains(&s)) {
        fail_with_logs(
            &format!("alice's MESSAGE must be accepted (2xx); final status {status:?}"),
            &[&alice, &bob],
            &server,
        );
    }
    let seen = wait_message(&mut bob, text, Duration::from_secs(10));
    if seen != 1 {
        fail_with_logs(
            &format!("bob must show alice's message once; it showed {seen} times"),
            &[&alice, &bob],
            &server,
        );
    }
    // The SIP trace (stdout) may reach the log a moment after the displayed message.
    let port = bob.config.sip_port;
    // bob sends no MESSAGE here, so any MESSAGE request in his trace is the one he got (the
    // direction line of a trace entry can be split off by his other output interleaving).
    let delivered_request = |log: &str| {
        common::clients::sip_trace(log, port).into_iter().find(|m| m.method() == "MESSAGE" && m.status().is_none())
    };
    bob.wait_for(Duration::from_secs(5), |log| delivered_request(log).is_some());
    let delivered = delivered_request(&bob.log());
    let from = delivered.as_ref().and_then(|m| m.header("From")).unwrap_or_default().to_owned();
    if !from.contains("sip:alice@") {
        fail_with_logs(&format!("the MESSAGE bob got must be from alice; From: {from:?}"), &[&alice, &bob], &server);
    }
    quit(&mut alice);
    quit(&mut bob);
}

#[test]
fn text_message_for_an_offline_user_is_stored_and_delivered_once() {
    let (server, _) = server();
    let dir = temp_dir("baresip-stored");
    let _cleanup = Cleanup(dir.clone());
    let silence = silence_wav(&dir, 2.0);
    let mut alice_config = config(&ALICE, &server, &silence);
    alice_config.contacts.push(format!("\"Bob\" <sip:bob@127.0.0.1:{}>", server.ports.udp));
    let mut alice = start_registered(&dir.join("alice"), alice_config, &server);

    // bob has never registered: the server keeps the message.
    let text = "stored while bob was away";
    alice.command(&format!("/message {text}"));
    let status = message_status(&mut alice);
    if !status.is_some_and(|s| (200..300).contains(&s)) {
        fail_with_logs(
            &format!("a MESSAGE for offline bob must be accepted for storage (2xx); final status {status:?}"),
            &[&alice],
            &server,
        );
    }

    // bob comes online: the stored message arrives, once. Whatever his registration makes the
    // server send him comes before a message alice sends after it (the server handles both in
    // order), so once that later message has arrived, the count is final.
    let bob_config = config(&BOB, &server, &silence);
    let mut bob = start_registered(&dir.join("bob"), bob_config.clone(), &server);
    let seen = wait_message(&mut bob, text, Duration::from_secs(10));
    let marker = "sent after bob registered";
    alice.command(&format!("/message {marker}"));
    if wait_message(&mut bob, marker, Duration::from_secs(10)) != 1 {
        fail_with_logs("alice's next message did not reach bob within 10 s", &[&alice, &bob], &server);
    }
    let seen_later = strip_ansi(&bob.log()).matches(&format!("\"{text}\"")).count();
    if seen != 1 || seen_later != 1 {
        fail_with_logs(
            &format!(
                "bob must get the stored message once on registering; seen {seen} times, {seen_later} by the time \
                 alice's next message arrived"
            ),
            &[&alice, &bob],
            &server,
        );
    }
    quit(&mut bob);

    // bob again (a new registration): the message was delivered, so it does not come back.
    let mut again = start_registered(&dir.join("bob-again"), bob_config, &server);
    let marker = "sent after bob registered again";
    alice.command(&format!("/message {marker}"));
    if wait_message(&mut again, marker, Duration::from_secs(10)) != 1 {
        fail_with_logs(
            "alice's next message did not reach bob's new registration within 10 s",
            &[&alice, &again],
            &server,
        );
    }
    let repeated = strip_ansi(&again.log()).matches(&format!("\"{text}\"")).count();
    if repeated != 0 {
        fail_with_logs(
            &format!("a delivered message must not be delivered again; bob got it {repeated} more times"),
            &[&alice, &again],
            &server,
        );
    }
    quit(&mut again);
    quit(&mut alice);
}
