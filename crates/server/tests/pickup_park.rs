//! Pickup and parking with real phones (baresip):
//!
//! - alice calls bob, whose phone rings; carol dials `**bob` (directed pickup): bob's phone
//!   stops ringing, alice's call is answered and carol hears alice;
//! - alice calls bob, who answers and parks her by a blind transfer to slot 701 (`/transfer`):
//!   bob's call ends, alice hears the music on hold; carol dials 701 from her phone and takes
//!   the call: carol hears alice.

mod common;

use std::path::Path;
use std::time::Duration;

use common::clients::*;
use common::{Server, temp_dir};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User::new("bob", "Builder-Can-42");
const CAROL: User<'static> = User::new("carol", "Singer-Sea-19");

const ALICE_SPEECH: &str = "Hello, this is Alice. I am calling about the delivery that was due this morning, \
                            which has not arrived. Could someone check where it is, please?";

fn server() -> Server {
    let extra = format!("{}[parking]\nslots = \"701-705\"\ntimeout_seconds = 60\n", server_config(server_rtp_range()));
    server_with_users(&extra, &[ALICE, BOB, CAROL])
}

fn config(user: &User<'_>, server: &Server, audio: &Path) -> BaresipConfig {
    BaresipConfig::new(user.name, user.password, server, audio)
}

/// What `phone` heard in its last call, as RMS.
fn heard(phone: &Baresip, phones: &[&Baresip], server: &Server) -> f64 {
    match phone.recorded("-dec.wav").last() {
        Some(path) => wav_rms(path),
        None => fail_with_logs(&format!("{} recorded nothing", phone.config.user), phones, server),
    }
}

#[test]
fn directed_pickup_of_a_ringing_phone() {
    let server = server();
    let dir = temp_dir("pickup");
    let _cleanup = Cleanup(dir.clone());
    let alice_says = speech_wav(&dir, "alice-says", &[ALICE_SPEECH; 3].join(" "), 0.5, 1.0);
    let silence = silence_wav(&dir, 50.0);
    let mut bob_config = config(&BOB, &server, &silence);
    bob_config.auto_answer = false;
    let mut bob = start_registered(&dir.join("bob"), bob_config, &server);
    let mut carol = start_registered(&dir.join("carol"), config(&CAROL, &server, &silence), &server);
    let mut alice_config = config(&ALICE, &server, &alice_says);
    alice_config.commands.push(format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
    let mut alice = Baresip::start(&dir.join("alice"), alice_config);
    let port = bob.config.sip_port;
    let rung = |log: &str| sip_trace(log, port).iter().any(|m| m.received && m.method() == "INVITE");
    if !bob.wait_for(Duration::from_secs(20), rung) {
        fail_with_logs("bob's phone did not ring", &[&alice, &bob, &carol], &server);
    }
    std::thread::sleep(Duration::from_millis(500));
    carol.command(&format!("/dial sip:**bob@127.0.0.1:{}", server.ports.udp));
    let established = |log: &str| log.contains("Call established");
    if !alice.wait_for(Duration::from_secs(15), established) || !carol.wait_for(Duration::from_secs(5), established) {
        fail_with_logs("carol did not pick up alice's call", &[&alice, &bob, &carol], &server);
    }
    let cancelled = |log: &str| sip_trace(log, port).iter().any(|m| m.received && m.method() == "CANCEL");
    if !bob.wait_for(Duration::from_secs(5), cancelled) {
        fail_with_logs("bob's phone did not stop ringing", &[&alice, &bob, &carol], &server);
    }
    std::thread::sleep(Duration::from_secs(8));
    alice.command("/hangup");
    let ended = |log: &str| log.contains(" terminated (duration");
    if !carol.wait_for(Duration::from_secs(10), ended) {
        fail_with_logs("carol's call did not end when alice hung up", &[&alice, &bob, &carol], &server);
    }
    quit(&mut alice);
    quit(&mut bob);
    quit(&mut carol);
    let (carol_heard, reference) = (heard(&carol, &[&alice, &bob, &carol], &server), wav_rms(&alice_says));
    println!("carol heard RMS {carol_heard:.0} of alice's {reference:.0}");
    assert!(carol_heard > reference * 0.2, "carol heard too little of alice: {carol_heard:.0} against {reference:.0}");
    assert!(server.log().contains("bridged"), "the two calls were bridged");
}

#[test]
fn a_parked_call_is_taken_from_another_phone() {
    let server = server();
    let dir = temp_dir("park");
    let _cleanup = Cleanup(dir.clone());
    let alice_says = speech_wav(&dir, "alice-says", &[ALICE_SPEECH; 4].join(" "), 0.5, 1.0);
    let silence = silence_wav(&dir, 50.0);
    let mut bob = start_registered(&dir.join("bob"), config(&BOB, &server, &silence), &server);
    let mut carol = start_registered(&dir.join("carol"), config(&CAROL, &server, &silence), &server);
    let mut alice_config = config(&ALICE, &server, &alice_says);
    alice_config.commands.push(format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
    let mut alice = Baresip::start(&dir.join("alice"), alice_config);
    let established = |log: &str| log.contains("Call established");
    if !bob.wait_for(Duration::from_secs(20), established) {
        fail_with_logs("alice's call to bob was not established", &[&alice, &bob, &carol], &server);
    }
    bob.command(&format!("/transfer sip:701@127.0.0.1:{}", server.ports.udp));
    // bob's call is over: he hangs up on the NOTIFY of 200, or the server does.
    let port = bob.config.sip_port;
    let bye = |log: &str| sip_trace(log, port).iter().any(|m| m.method() == "BYE");
    if !bob.wait_for(Duration::from_secs(10), bye) {
        fail_with_logs("bob's call did not end after he parked alice", &[&alice, &bob, &carol], &server);
    }
    if !poll_until(Duration::from_secs(5), || server.log().contains("parked")) {
        fail_with_logs("alice was not parked", &[&alice, &bob, &carol], &server);
    }
    std::thread::sleep(Duration::from_secs(2));
    carol.command(&format!("/dial sip:701@127.0.0.1:{}", server.ports.udp));
    if !carol.wait_for(Duration::from_secs(15), established) {
        fail_with_logs("carol's call to slot 701 was not answered", &[&alice, &bob, &carol], &server);
    }
    if !poll_until(Duration::from_secs(8), || server.log().contains("bridged")) {
        fail_with_logs("carol did not take the parked call", &[&alice, &bob, &carol], &server);
    }
    std::thread::sleep(Duration::from_secs(8));
    carol.command("/hangup");
    let ended = |log: &str| log.contains(" terminated (duration");
    if !alice.wait_for(Duration::from_secs(10), ended) {
        fail_with_logs("alice's call did not end when carol hung up", &[&alice, &bob, &carol], &server);
    }
    quit(&mut alice);
    quit(&mut bob);
    quit(&mut carol);
    let (carol_heard, reference) = (heard(&carol, &[&alice, &bob, &carol], &server), wav_rms(&alice_says));
    println!("carol heard RMS {carol_heard:.0} of alice's {reference:.0}");
    assert!(carol_heard > reference * 0.2, "carol heard too little of alice: {carol_heard:.0} against {reference:.0}");
    // alice's phone was asked nothing: no REFER reached it.
    assert!(!alice.trace().iter().any(|m| m.received && m.method() == "REFER"), "alice was parked by the server");
}
