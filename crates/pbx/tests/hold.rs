//! Music on hold as call control asks for it: alice's re-offer that holds bob (a=sendonly)
//! makes bob's leg hear the music in his own codec once bob accepts it; bob's own re-offer while
//! held changes nothing; alice's re-offer that sends again (a=sendrecv) stops the music.

mod common;

use common::*;
use sambung_pbx::{MediaCommand, Side};

fn reinvite(a_tag: &str, cseq: u32, direction: &str) -> String {
    let body = sdp("192.0.2.10", 4000, "0", direction);
    format!(
        "INVITE sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKre{cseq}\r\nMax-Forwards: 70\r\n\
         To: <sip:bob@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\n\
         Call-ID: call-1@alice\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@{ALICE}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// alice's call to bob, answered: the rig and the To tag of alice's dialog.
fn answered_call() -> (Rig, String) {
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    let b_invite = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    let a_tag = response(&out, ALICE, 200).to().unwrap().tag().unwrap().to_owned();
    rig.take_outputs();
    (rig, a_tag)
}

#[test]
fn the_held_party_hears_music_until_the_call_is_taken_off_hold() {
    let (mut rig, a_tag) = answered_call();

    // alice holds bob: nothing plays until bob accepts.
    let out = rig.feed(ALICE, &reinvite(&a_tag, 3, "a=sendonly\r\n"));
    let to_bob = request(&out, BOB, "INVITE");
    assert!(!rig.media_commands().iter().any(|c| matches!(c, MediaCommand::Hold { .. })));
    let held = sdp("192.0.2.20", 5000, "0", "a=recvonly\r\n");
    rig.feed(BOB, &answer(&to_bob, 200, "bob1", &format!("sip:bob@{BOB}"), &held));
    let commands = rig.media_commands();
    let hold = commands.iter().find_map(|c| match c {
        MediaCommand::Hold { side, format, .. } => Some((*side, format.audio.payload_type)),
        _ => None,
    });
    assert_eq!(hold, Some((Side::B, 0)), "bob hears the music in PCMU: {commands:?}");

    // alice refreshes the hold: still held, no second Hold.
    let out = rig.feed(ALICE, &reinvite(&a_tag, 4, "a=sendonly\r\n"));
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 200, "bob1", &format!("sip:bob@{BOB}"), &held));
    let commands = rig.media_commands();
    assert!(!commands.iter().any(|c| matches!(c, MediaCommand::Hold { .. } | MediaCommand::Resume { .. })));

    // alice takes the call off hold.
    let out = rig.feed(ALICE, &reinvite(&a_tag, 5, "a=sendrecv\r\n"));
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    assert!(rig.media_commands().iter().any(|c| matches!(c, MediaCommand::Resume { .. })));
}

#[test]
fn a_refused_hold_plays_nothing() {
    let (mut rig, a_tag) = answered_call();
    let out = rig.feed(ALICE, &reinvite(&a_tag, 3, "a=sendonly\r\n"));
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 488, "bob1", &format!("sip:bob@{BOB}"), ""));
    assert!(!rig.media_commands().iter().any(|c| matches!(c, MediaCommand::Hold { .. })));
}
