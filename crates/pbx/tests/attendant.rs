//! The auto-attendant's calls through call control, with the phones' messages written out:
//! a menu's extension is answered by the attendant application, which then connects the caller
//! (the device answers and the two talk, with no new answer to the caller), gets the caller
//! back when the target is busy or does not exist, hands it to the target's voicemail when
//! nobody answers, and ends the call when the caller hangs up while the target rings.

mod common;

use common::*;
use sambung_media::codec::CodecKind;
use sambung_pbx::menus::{Kind, Menu, Menus};
use sambung_pbx::registrar::{Accounts, Routing};
use sambung_pbx::{App, AppRequest, Input, MediaCommand, PbxConfig};
use sambung_sip::{Message, Request};

const CAROL: &str = "192.0.2.30:5080";

fn rig() -> Rig {
    let mut rig = Rig::with_config(PbxConfig {
        domains: vec![REALM.into()],
        realm: REALM.into(),
        media_address: Some(RELAY_IP.parse().unwrap()),
        menus: Menus {
            menus: vec![Menu { name: "main".into(), extension: Some("500".into()), kind: Kind::Attendant }],
        },
        ..PbxConfig::default()
    });
    let no_voicemail = Routing { voicemail: false, ..Routing::default() };
    rig.input(Input::Accounts(Accounts::new(vec![
        account(1, "alice", Routing::default()),
        account(2, "bob", Routing::default()),
        account(3, "carol", no_voicemail),
    ])));
    rig.input(Input::Bindings(vec![binding(2, "bob", BOB), binding(3, "carol", CAROL)]));
    rig.take_outputs();
    rig
}

/// alice dials the menu's extension: answered at once by the attendant. Returns the call's
/// number and alice's 200.
fn alice_reaches_the_menu(rig: &mut Rig, call_id: &str) -> (u64, sambung_sip::Response) {
    let out = alice_calls(rig, &format!("sip:500@{REALM}"), call_id);
    let ok = response(&out, ALICE, 200);
    let ack = format!(
        "ACK sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack-{call_id}\r\nMax-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@{REALM}>;tag=al-{call_id}\r\nTo: {}\r\nCall-ID: {call_id}\r\nCSeq: 2 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        ok.headers.get(sambung_sip::HeaderName::To).unwrap()
    );
    rig.feed(ALICE, &ack);
    let requests = rig.app_requests();
    let call = requests
        .iter()
        .find_map(|r| match r {
            AppRequest::Start { call, app: App::Attendant { menu }, .. } if menu == "main" => Some(*call),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the attendant starts: {requests:?}"));
    (call, ok)
}

fn invites(out: &[(std::net::SocketAddr, Message)]) -> Vec<Request> {
    out.iter()
        .filter_map(|(_, m)| match m {
            Message::Request(r) if r.method.as_str() == "INVITE" => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// What was sent to alice, but for the retransmitted challenges of her first INVITE.
fn to_alice(out: &[(std::net::SocketAddr, Message)]) -> usize {
    out.iter()
        .filter(|(to, m)| to.to_string() == ALICE && !matches!(m, Message::Response(r) if r.status == 407))
        .count()
}

#[test]
fn the_menu_connects_the_caller_to_a_device_that_answers() {
    let mut rig = rig();
    let (call, ok) = alice_reaches_the_menu(&mut rig, "att-1");
    assert!(rig.media_commands().iter().any(|c| matches!(c, MediaCommand::AttachApp { .. })));
    rig.ms += 3000;
    let out = rig.input(Input::AppConnect { call, target: "bob".into() });
    let invite = request(&out, BOB, "INVITE");
    // bob is offered alice's media as the attendant took it: PCMU, on leg B's port, plus what
    // the engine could transcode to.
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    let (ip, port) = media_address(&invite.body);
    assert_eq!(ip, RELAY_IP);
    assert!((40_000..41_000).contains(&port), "{offer}");
    assert!(offer.contains("m=audio") && offer.contains(" 0"), "{offer}");
    assert_eq!(to_alice(&out), 0, "alice was answered already: {out:#?}");
    let out = rig.feed(BOB, &answer(&invite, 180, "b1", "sip:bob@x", ""));
    assert_eq!(to_alice(&out), 0, "no ringing for alice, whose call is answered: {out:#?}");
    let out = rig.feed(BOB, &answer(&invite, 200, "b1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    request(&out, BOB, "ACK");
    assert_eq!(to_alice(&out), 0, "alice is not asked again: {out:#?}");
    let requests = rig.app_requests();
    assert!(requests.contains(&AppRequest::Stop { call }), "{requests:?}");
    let commands = rig.media_commands();
    let detach = commands.iter().position(|c| matches!(c, MediaCommand::DetachApp { .. }));
    let configure = commands.iter().position(|c| matches!(c, MediaCommand::Configure { .. }));
    assert!(detach.is_some() && detach < configure, "the leg is bob's before it is configured: {commands:?}");
    // alice hangs up: bob gets the BYE, and the record says bob answered.
    let alice_bye = format!(
        "BYE sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKbye-att-1\r\nMax-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@{REALM}>;tag=al-att-1\r\nTo: {}\r\nCall-ID: att-1\r\nCSeq: 3 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        ok.headers.get(sambung_sip::HeaderName::To).unwrap()
    );
    rig.ms += 5000;
    let out = rig.feed(ALICE, &alice_bye);
    response(&out, ALICE, 200);
    request(&out, BOB, "BYE");
    let records = rig.records();
    let record = records.last().expect("a record");
    assert_eq!(record.callee, "500");
    assert_eq!(record.answered_by.as_deref(), Some("bob"));
    assert_eq!(record.hangup_side, "caller");
}

#[test]
fn a_device_with_another_codec_is_transcoded_to() {
    let mut rig = rig();
    let (call, _) = alice_reaches_the_menu(&mut rig, "att-2");
    let out = rig.input(Input::AppConnect { call, target: "1002".into() });
    let invite = request(&out, BOB, "INVITE");
    rig.media_commands();
    // bob takes G.722, which the engine added to the offer: alice keeps PCMU.
    let g722 = sdp("192.0.2.20", 5000, "9", "a=rtpmap:9 G722/8000\r\n");
    rig.feed(BOB, &answer(&invite, 200, "b2", &format!("sip:bob@{BOB}"), &g722));
    let commands = rig.media_commands();
    let formats = commands.iter().find_map(|c| match c {
        MediaCommand::Configure { legs, .. } => {
            Some([&legs[0].format, &legs[1].format].map(|f| f.clone().map(|f| f.audio.codec)))
        }
        _ => None,
    });
    assert_eq!(formats, Some([Some(CodecKind::Pcmu), Some(CodecKind::G722)]), "{commands:?}");
}

#[test]
fn a_busy_or_unknown_target_gives_the_caller_back_to_the_menu() {
    let mut rig = rig();
    let (call, _) = alice_reaches_the_menu(&mut rig, "att-3");
    let out = rig.input(Input::AppConnect { call, target: "carol".into() });
    let invite = request(&out, CAROL, "INVITE");
    let out = rig.feed(CAROL, &answer(&invite, 486, "c1", "sip:carol@x", ""));
    assert_eq!(to_alice(&out), 0, "{out:#?}");
    assert!(rig.app_requests().contains(&AppRequest::ConnectFailed { call, status: 486 }));
    // An extension nobody has, and a number keyed in (never out through a carrier).
    for target in ["extension:4711", "extension:02079460000", "nobody"] {
        let out = rig.input(Input::AppConnect { call, target: target.into() });
        assert!(invites(&out).is_empty(), "{target}: {out:#?}");
        let requests = rig.app_requests();
        assert!(
            requests.iter().any(|r| matches!(r, AppRequest::ConnectFailed { status: 404 | 480, .. })),
            "{target}: {requests:?}"
        );
    }
    // The caller is still in the menu, which can connect again: carol is tried afresh, not
    // taken for a forwarding loop.
    let out = rig.input(Input::AppConnect { call, target: "extension:1003".into() });
    let invite = request(&out, CAROL, "INVITE");
    rig.feed(CAROL, &answer(&invite, 200, "c2", &format!("sip:carol@{CAROL}"), &bob_sdp()));
    let records = rig.records();
    assert!(records.is_empty(), "the call goes on: {records:?}");
}

#[test]
fn nobody_answering_sends_the_caller_to_the_targets_voicemail() {
    let mut rig = rig();
    let (call, _) = alice_reaches_the_menu(&mut rig, "att-4");
    let out = rig.input(Input::AppConnect { call, target: "bob".into() });
    let invite = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&invite, 180, "b4", "sip:bob@x", ""));
    rig.app_requests();
    rig.media_commands();
    rig.ms += 20_000;
    let out = rig.timeout();
    request(&out, BOB, "CANCEL");
    assert_eq!(to_alice(&out), 0, "{out:#?}");
    let requests = rig.app_requests();
    let stop = requests.iter().position(|r| *r == AppRequest::Stop { call });
    let start =
        requests.iter().position(|r| matches!(r, AppRequest::Start { app: App::Voicemail { account_id: 2, .. }, .. }));
    assert!(stop.is_some() && stop < start, "the attendant stops, then voicemail starts: {requests:?}");
    let commands = rig.media_commands();
    assert!(commands.iter().any(|c| matches!(c, MediaCommand::AttachApp { .. })), "{commands:?}");
    // carol has no voicemail: her no-answer gives alice back to the menu.
    let (call, _) = alice_reaches_the_menu(&mut rig, "att-5");
    rig.input(Input::AppConnect { call, target: "carol".into() });
    rig.ms += 60_000;
    rig.timeout();
    let requests = rig.app_requests();
    assert!(requests.iter().any(|r| matches!(r, AppRequest::ConnectFailed { status: 480, .. })), "{requests:?}");
}

#[test]
fn the_caller_hanging_up_while_the_target_rings_cancels_it() {
    let mut rig = rig();
    let (call, ok) = alice_reaches_the_menu(&mut rig, "att-6");
    let out = rig.input(Input::AppConnect { call, target: "bob".into() });
    let invite = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&invite, 180, "b6", "sip:bob@x", ""));
    let alice_bye = format!(
        "BYE sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKbye-att-6\r\nMax-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@{REALM}>;tag=al-att-6\r\nTo: {}\r\nCall-ID: att-6\r\nCSeq: 3 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        ok.headers.get(sambung_sip::HeaderName::To).unwrap()
    );
    let out = rig.feed(ALICE, &alice_bye);
    response(&out, ALICE, 200);
    request(&out, BOB, "CANCEL");
    assert!(rig.app_requests().contains(&AppRequest::Stop { call }));
    let records = rig.records();
    let record = records.last().expect("a record");
    assert_eq!(record.hangup_side, "caller");
    assert_eq!(record.answered_by.as_deref(), Some("attendant"));
}
