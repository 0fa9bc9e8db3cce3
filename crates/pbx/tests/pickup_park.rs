//! Pickup and parking through call control, with the phones' messages written out: `**EXT`
//! and `*8` start the pickup application with the accounts to pick up from; a ringing call is
//! picked up (its caller answered by the bridge, the ringing devices stopped), an answered one
//! is not; the callee's phone parks its caller by a blind transfer to a slot (the server keeps
//! the caller, hangs up the phone's leg and hands it to the parking application); a slot dialled
//! reaches the parking application.

mod common;

use common::*;
use sambung_pbx::{App, AppRequest, Input, MediaCommand, PbxConfig};
use sambung_sip::{HeaderName, Message};

fn rig() -> Rig {
    Rig::office(PbxConfig { parking: Some((701, 720)), ..PbxConfig::default() })
}

/// bob's REFER, in his dialog with us, of alice to slot `slot`.
fn refer_to_slot(to_bob: &sambung_sip::Request, slot: &str, cseq: u32) -> String {
    let our_from = to_bob.headers.get(HeaderName::From).unwrap().to_string();
    let b_call_id = to_bob.call_id().unwrap().to_owned();
    format!(
        "REFER sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKpark{cseq}\r\nMax-Forwards: 70\r\n\
         To: {our_from}\r\nFrom: <sip:bob@{REALM}>;tag=bob1\r\nCall-ID: {b_call_id}\r\nCSeq: {cseq} REFER\r\n\
         Contact: <sip:bob@{BOB}>\r\nRefer-To: <sip:{slot}@{REALM}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// `from` (with its account `user`) dials `target`; what call control asked of the apps.
fn dial(rig: &mut Rig, from: &str, user: &str, target: &str, call_id: &str) -> Vec<AppRequest> {
    let uri = format!("sip:{target}@{REALM}");
    let invite = |auth: &str, cseq: u32| {
        let body = alice_sdp();
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{call_id}-{cseq}\r\nMax-Forwards: 70\r\n\
             To: <{uri}>\r\nFrom: <sip:{user}@{REALM}>;tag=t-{call_id}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:{user}@{from}>\r\n{auth}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let challenge = response(&rig.feed(from, &invite("", 1)), from, 407);
    rig.feed(from, &invite(&proxy_auth_as(&challenge, "INVITE", &uri, user), 2));
    rig.app_requests()
}

fn started(requests: &[AppRequest]) -> Option<(u64, App)> {
    requests.iter().find_map(|r| match r {
        AppRequest::Start { call, app, .. } => Some((*call, app.clone())),
        _ => None,
    })
}

#[test]
fn pickup_codes_name_the_accounts_and_a_ringing_call_is_picked_up() {
    let mut rig = rig();
    // alice calls bob: bob's phone rings.
    let out = alice_calls(&mut rig, &format!("sip:bob@{REALM}"), "ringing-1");
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 180, "b1", "sip:bob@x", ""));
    let ringing = rig.events().iter().find_map(|e| match e {
        sambung_pbx::Event::CallStarted { call, .. } => Some(*call),
        _ => None,
    });
    let ringing = ringing.expect("alice's call");
    // carol dials **1002 (bob's extension), then *8 (bob is in her group).
    let (picker, app) = started(&dial(&mut rig, CAROL, "carol", "**1002", "pick-1")).expect("the pickup app");
    assert_eq!(app, App::Pickup { accounts: vec![2] });
    let (_, app) = started(&dial(&mut rig, CAROL, "carol", "*8", "pick-2")).expect("the pickup app");
    assert_eq!(app, App::Pickup { accounts: vec![2] });
    // The pickup application asks for alice's call: alice is answered by the bridge.
    let out = rig.input(Input::PickUp { call: ringing, partner: picker });
    response(&out, ALICE, 200);
    request(&out, BOB, "CANCEL");
    let requests = rig.app_requests();
    assert_eq!(started(&requests), Some((ringing, App::Bridge { partner: picker })), "{requests:?}");
    // Picked up once: again, nothing happens.
    let out = rig.input(Input::PickUp { call: ringing, partner: picker + 100 });
    assert!(out.iter().all(|(to, _)| to.to_string() != ALICE), "{out:#?}");
    assert!(started(&rig.app_requests()).is_none());
    // **EXT of nobody: the feature code is not valid.
    let (_, app) = started(&dial(&mut rig, CAROL, "carol", "**4711", "pick-3")).expect("a confirmation");
    assert!(matches!(app, App::Confirm(_)), "{app:?}");
}

#[test]
fn the_callees_phone_parks_its_caller_by_a_blind_transfer_to_a_slot() {
    let mut rig = rig();
    let out = alice_calls(&mut rig, &format!("sip:bob@{REALM}"), "park-1");
    let to_bob = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&to_bob, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    response(&out, ALICE, 200);
    rig.take_outputs();
    // bob transfers alice to slot 701.
    let refer = refer_to_slot(&to_bob, "701", 5);
    let out = rig.feed(BOB, &refer);
    response(&out, BOB, 202);
    let notify = request(&out, BOB, "NOTIFY");
    assert!(String::from_utf8_lossy(&notify.body).starts_with("SIP/2.0 200"), "{notify:?}");
    request(&out, BOB, "BYE");
    assert!(
        out.iter().all(|(to, m)| to.to_string() != ALICE || !matches!(m, Message::Request(_))),
        "nothing is asked of alice's phone: {out:#?}"
    );
    let commands = rig.media_commands();
    assert!(commands.iter().any(|c| matches!(c, MediaCommand::AttachApp { .. })), "{commands:?}");
    let requests = rig.app_requests();
    let (_, app) = started(&requests).expect("the parking application");
    assert_eq!(app, App::Parking { slot: "701".into(), parker: Some("bob".into()) });
    // A slot dialled from a phone reaches the parking application too.
    let (_, app) = started(&dial(&mut rig, CAROL, "carol", "701", "retrieve-1")).expect("the parking app");
    assert_eq!(app, App::Parking { slot: "701".into(), parker: None });
    // 721 is no slot: an unknown number.
    let uri = format!("sip:721@{REALM}");
    let invite = |auth: &str, cseq: u32| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {CAROL};branch=z9hG4bKno-{cseq}\r\nMax-Forwards: 70\r\n\
             To: <{uri}>\r\nFrom: <sip:carol@{REALM}>;tag=t-no\r\nCall-ID: no-slot\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:carol@{CAROL}>\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let challenge = response(&rig.feed(CAROL, &invite("", 1)), CAROL, 407);
    let out = rig.feed(CAROL, &invite(&proxy_auth_as(&challenge, "INVITE", &uri, "carol"), 2));
    response(&out, CAROL, 404);
}

#[test]
fn a_caller_on_hold_is_referred_to_the_slot_by_its_own_phone() {
    let mut rig = rig();
    let out = alice_calls(&mut rig, &format!("sip:bob@{REALM}"), "held-1");
    let to_bob = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&to_bob, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    response(&out, ALICE, 200);
    let our_from = to_bob.headers.get(HeaderName::From).unwrap().to_string();
    let b_call_id = to_bob.call_id().unwrap().to_owned();
    // bob holds alice (a=sendonly), and alice's phone accepts.
    let body = sdp("192.0.2.20", 5000, "0", "a=sendonly\r\n");
    let hold = format!(
        "INVITE sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKhold\r\nMax-Forwards: 70\r\n\
         To: {our_from}\r\nFrom: <sip:bob@{REALM}>;tag=bob1\r\nCall-ID: {b_call_id}\r\nCSeq: 4 INVITE\r\n\
         Contact: <sip:bob@{BOB}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = rig.feed(BOB, &hold);
    let to_alice = request(&out, ALICE, "INVITE");
    let held = sdp("192.0.2.10", 4000, "0", "a=recvonly\r\n");
    let out = rig.feed(ALICE, &answer(&to_alice, 200, "al-held-1", &format!("sip:alice@{ALICE}"), &held));
    response(&out, BOB, 200);
    rig.take_outputs();
    // bob transfers alice to slot 701: her own phone is asked to call it.
    let refer = refer_to_slot(&to_bob, "701", 6);
    let out = rig.feed(BOB, &refer);
    response(&out, BOB, 202);
    let to_alice = request(&out, ALICE, "REFER");
    let refer_to = to_alice.headers.get(HeaderName::from("Refer-To")).unwrap().to_string();
    assert!(refer_to.contains("sip:701@"), "{refer_to}");
    assert!(started(&rig.app_requests()).is_none(), "no parking application for a caller on hold");
}
