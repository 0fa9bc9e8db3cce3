//! Which calls are recorded, through call control: a call answered by a recorded account's
//! device (directly or through a ring group) asks the relay to record it, with both legs'
//! codecs, and names the parties; other calls are not recorded; an operator records any call
//! answered between two phones.

mod common;

use common::*;
use sambung_pbx::{Event, Input, MediaCommand, PbxConfig};

fn rig(record_accounts: &[&str]) -> Rig {
    Rig::office(PbxConfig {
        record_accounts: record_accounts.iter().map(|a| a.to_string()).collect(),
        record_notice: true,
        ..PbxConfig::default()
    })
}

fn recorded(rig: &mut Rig) -> Option<(bool, String, String)> {
    let commands = rig.media_commands();
    let record = commands.iter().find_map(|c| match c {
        MediaCommand::Record { notice, formats, .. } => Some((*notice, formats[0].audio.codec)),
        _ => None,
    });
    let started = rig.events().into_iter().find_map(|e| match e {
        Event::RecordingStarted { caller, callee, .. } => Some((caller, callee)),
        _ => None,
    });
    match (record, started) {
        (Some((notice, codec)), Some((caller, callee))) => {
            assert_eq!(codec, sambung_media::codec::CodecKind::Pcmu);
            Some((notice, caller, callee))
        }
        (None, None) => None,
        other => panic!("a recording is both asked for and announced: {other:?}"),
    }
}

#[test]
fn a_recorded_account_answering_through_a_group_is_recorded() {
    let mut rig = rig(&["carol"]);
    let out = alice_calls(&mut rig, &format!("sip:front@{REALM}"), "rec-1");
    let to_carol = request(&out, CAROL, "INVITE");
    rig.media_commands();
    rig.feed(CAROL, &answer(&to_carol, 200, "c1", &format!("sip:carol@{CAROL}"), &bob_sdp()));
    assert_eq!(recorded(&mut rig), Some((true, "alice".into(), "carol".into())));
    // bob answering a call of alice's is not recorded; an operator records it.
    let out = alice_calls(&mut rig, &format!("sip:bob@{REALM}"), "rec-2");
    let id = rig
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::CallStarted { call, call_id, .. } if call_id == "rec-2" => Some(call),
            _ => None,
        })
        .expect("alice's second call");
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 200, "b2", &format!("sip:bob@{BOB}"), &bob_sdp()));
    assert_eq!(recorded(&mut rig), None);
    rig.input(Input::RecordCall { call: id });
    assert_eq!(recorded(&mut rig), Some((true, "alice".into(), "bob".into())));
    // Asked again: already recorded, nothing more.
    rig.input(Input::RecordCall { call: id });
    assert_eq!(recorded(&mut rig), None);
}
