//! Click-to-call through call control: the person's devices ring (INVITE without an offer),
//! the one that answers gets an inactive answer in the ACK and a REFER to the destination, the
//! others are cancelled; the REFER's NOTIFYs decide when the leg is hung up and how the
//! attempt ends. Nothing of an attempt is left once it is over.

mod common;

use common::*;
use sambung_pbx::{Event, Input};
use sambung_sip::{HeaderName, Request};

/// bob's second device.
const BOB2: &str = "192.0.2.21:5080";

fn rig_with_two_bob_devices() -> Rig {
    let mut rig = Rig::new();
    rig.input(Input::Bindings(vec![binding(2, "bob", BOB), {
        let mut second = binding(2, "bob", BOB2);
        second.call_id = "reg-bob-2".into();
        second
    }]));
    rig.take_outputs();
    rig
}

fn ended(rig: &mut Rig) -> Vec<(u64, u16, String)> {
    rig.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::OriginateEnded { id, status, reason, username, .. } => {
                assert_eq!(username, "bob");
                Some((id, status, reason))
            }
            _ => None,
        })
        .collect()
}

/// A request from the device inside the dialog our INVITE made (its tag `tag`).
fn from_device(invite: &Request, tag: &str, method: &str, cseq: u32, extra: &str, body: &str) -> String {
    let ours = invite.from().unwrap().tag().unwrap().to_owned();
    format!(
        "{method} sip:sambung@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKdev{method}{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@{REALM}>;tag={tag}\r\nTo: {};tag={ours}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} {method}\r\nContact: <sip:bob@{BOB}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        invite.headers.get(HeaderName::From).unwrap().split(';').next().unwrap(),
        invite.call_id().unwrap(),
        body.len()
    )
}

#[test]
fn the_answering_device_is_referred_to_the_destination_and_hung_up_once_connected() {
    let mut rig = rig_with_two_bob_devices();
    let out = rig.input(Input::Originate { id: 7, account_id: 2, target: "alice".into() });
    let first = request(&out, BOB, "INVITE");
    let second = request(&out, BOB2, "INVITE");
    assert!(first.body.is_empty(), "no offer: the device offers in its 2xx");
    assert_eq!(first.call_id(), second.call_id(), "one attempt, forked");
    assert!(first.headers.get(HeaderName::Subject).is_some_and(|s| s.contains("alice")));

    rig.feed(BOB2, &answer(&second, 180, "dev2", &format!("sip:bob@{BOB2}"), ""));
    let out = rig.feed(BOB, &answer(&first, 200, "dev1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    let ack = request(&out, BOB, "ACK");
    let sdp = String::from_utf8_lossy(&ack.body).into_owned();
    assert!(sdp.contains("m=audio 9 RTP/AVP 0"), "{sdp}");
    assert!(sdp.contains("a=inactive"), "{sdp}");
    request(&out, BOB2, "CANCEL");
    let refer = request(&out, BOB, "REFER");
    let refer_to = refer.headers.get(HeaderName::from("Refer-To")).unwrap().to_string();
    assert!(refer_to.starts_with("<sip:alice@"), "{refer_to}");
    assert!(refer.headers.get(HeaderName::from("Referred-By")).is_some_and(|r| r.contains("sip:bob@")));
    assert_eq!(refer.call_id(), first.call_id());

    rig.feed(BOB2, &answer(&second, 487, "dev2", &format!("sip:bob@{BOB2}"), ""));
    assert!(rig.feed(BOB, &answer(&refer, 202, "dev1", &format!("sip:bob@{BOB}"), "")).is_empty());
    let sipfrag = "Event: refer\r\nSubscription-State: active;expires=60\r\nContent-Type: message/sipfrag\r\n";
    let out = rig.feed(BOB, &from_device(&first, "dev1", "NOTIFY", 1, sipfrag, "SIP/2.0 100 Trying\r\n"));
    response(&out, BOB, 200);
    assert!(ended(&mut rig).is_empty(), "still calling");
    // The device holds this leg while it calls: still inactive.
    let hold = from_device(
        &first,
        "dev1",
        "INVITE",
        2,
        "Content-Type: application/sdp\r\n",
        &sdp_of("192.0.2.20", 5000, "a=sendonly\r\n"),
    );
    let out = rig.feed(BOB, &hold);
    let ok = response(&out, BOB, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("a=inactive"));
    let done = sipfrag.replace("active;expires=60", "terminated;reason=noresource");
    let out = rig.feed(BOB, &from_device(&first, "dev1", "NOTIFY", 3, &done, "SIP/2.0 200 OK\r\n"));
    response(&out, BOB, 200);
    let bye = request(&out, BOB, "BYE");
    assert_eq!(bye.call_id(), first.call_id());
    assert_eq!(ended(&mut rig), vec![(7, 200, "Connected".to_owned())]);
    rig.feed(BOB, &answer(&bye, 200, "dev1", &format!("sip:bob@{BOB}"), ""));
    let left = rig.pbx.footprint();
    assert_eq!((left.dialogs, left.calls, left.owners), (0, 0, 0), "{left:?}");
}

fn sdp_of(ip: &str, port: u16, extra: &str) -> String {
    sdp(ip, port, "0 101", &format!("a=rtpmap:101 telephone-event/8000\r\n{extra}"))
}

#[test]
fn without_devices_or_an_answer_the_attempt_fails_and_says_why() {
    let mut rig = Rig::new();
    // alice has no device.
    assert!(rig.input(Input::Originate { id: 1, account_id: 1, target: "bob".into() }).is_empty());
    let events = rig.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OriginateEnded { id: 1, status: 480, username, .. } if username == "alice")),
        "{events:?}"
    );
    // No such account.
    assert!(rig.input(Input::Originate { id: 2, account_id: 99, target: "bob".into() }).is_empty());
    assert!(rig.events().iter().any(|e| matches!(e, Event::OriginateEnded { id: 2, status: 404, .. })));

    // bob's device rings and nobody answers: cancelled at the ring timeout.
    let out = rig.input(Input::Originate { id: 3, account_id: 2, target: "alice".into() });
    let invite = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&invite, 180, "d", &format!("sip:bob@{BOB}"), ""));
    let due = rig.next_timeout().expect("the ring timeout");
    rig.ms += due.duration_since(rig.now().instant).as_millis() as u64 + 1;
    let out = rig.timeout();
    request(&out, BOB, "CANCEL");
    assert_eq!(ended(&mut rig), vec![(3, 408, "No answer".to_owned())]);
    rig.feed(BOB, &answer(&invite, 487, "d", &format!("sip:bob@{BOB}"), ""));
    assert_eq!(rig.pbx.footprint().calls, 0);

    // Busy, then a device that refuses the REFER.
    let out = rig.input(Input::Originate { id: 4, account_id: 2, target: "alice".into() });
    let invite = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&invite, 486, "d", &format!("sip:bob@{BOB}"), ""));
    assert_eq!(ended(&mut rig), vec![(4, 486, "Busy".to_owned())]);
    let out = rig.input(Input::Originate { id: 5, account_id: 2, target: "sip:carol@192.0.2.30".into() });
    let invite = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&invite, 200, "d5", &format!("sip:bob@{BOB}"), &bob_sdp()));
    let refer = request(&out, BOB, "REFER");
    assert_eq!(refer.headers.get(HeaderName::from("Refer-To")).unwrap().to_string(), "<sip:carol@192.0.2.30>");
    let out = rig.feed(BOB, &answer(&refer, 405, "d5", &format!("sip:bob@{BOB}"), ""));
    let bye = request(&out, BOB, "BYE");
    let ended = ended(&mut rig);
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].0, ended[0].1), (5, 405));
    rig.feed(BOB, &answer(&bye, 200, "d5", &format!("sip:bob@{BOB}"), ""));
    let left = rig.pbx.footprint();
    assert_eq!((left.dialogs, left.calls, left.owners), (0, 0, 0), "{left:?}");
}
