//! A whole call and a text message through call control, with the device messages written out
//! as a phone would send them: alice calls bob's registered device, bob rings and answers,
//! alice hangs up; and a MESSAGE stored, then delivered.

mod common;

use common::*;
use sambung_pbx::registrar::Routing;
use sambung_pbx::{App, AppEnd, AppRequest, Event, Input, MediaCommand, Output, PbxConfig, StoreReply, StoreWrite};
use sambung_sip::{HeaderName, Message, Method};

#[test]
fn alice_calls_bob_who_answers_then_alice_hangs_up() {
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    response(&out, ALICE, 100);
    let b_invite = request(&out, BOB, "INVITE");
    // the B leg is our own dialog: new Call-ID and tags, the caller's identity kept
    assert_ne!(b_invite.call_id(), Some("call-1@alice"));
    assert_eq!(b_invite.from().unwrap().display_name().unwrap(), "Alice");
    assert_eq!(b_invite.uri.to_string(), format!("sip:bob@{BOB}"));
    assert_eq!(b_invite.max_forwards(), Some(69));
    // the media is anchored: bob is offered the relay's port of his leg, never alice's address
    assert_eq!(media_address(&b_invite.body), (RELAY_IP.to_owned(), 40_000));

    let out = rig.feed(BOB, &answer(&b_invite, 180, "bob1", &format!("sip:bob@{BOB}"), ""));
    let ringing = response(&out, ALICE, 180);
    let a_tag = ringing.to().unwrap().tag().unwrap().to_owned();

    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    let ack = request(&out, BOB, "ACK");
    assert_eq!(ack.cseq().unwrap().seq, 1);
    let ok = response(&out, ALICE, 200);
    assert_eq!(ok.to().unwrap().tag(), Some(a_tag.as_str()), "one To tag on the A leg");
    assert_eq!(media_address(&ok.body), (RELAY_IP.to_owned(), 30_000), "alice gets her leg's port on the relay");
    let events = rig.events();
    assert!(events.iter().any(|e| matches!(e, Event::CallStarted { caller, .. } if caller == "alice")), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::CallRinging { target, .. } if target == "bob")), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::CallAnswered { .. })), "{events:?}");
    // the relay was told where each leg receives
    let commands = rig.media_commands();
    assert!(commands.iter().any(|c| matches!(c, MediaCommand::SetPeer { side: sambung_pbx::Side::B, .. })));
    assert!(ok.contacts().next().is_some());

    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{method}{cseq}\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\n\
             Call-ID: call-1@alice\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    assert!(rig.feed(ALICE, &in_dialog("ACK", 2)).is_empty(), "the ACK ends at the B2BUA");
    rig.ms += 5000;
    let out = rig.feed(ALICE, &in_dialog("BYE", 3));
    response(&out, ALICE, 200);
    let bye = request(&out, BOB, "BYE");
    assert_eq!(bye.call_id(), b_invite.call_id());
    rig.feed(BOB, &answer(&bye, 200, "bob1", &format!("sip:bob@{BOB}"), ""));
    let cdr = rig.records().pop().expect("a call record");
    assert!(rig.media_commands().contains(&MediaCommand::Close { session: cdr.call }), "the media session closes");
    assert_eq!((cdr.caller.as_str(), cdr.callee.as_str(), cdr.hangup_side), ("alice", "bob", "caller"));
    assert_eq!((cdr.cause_code, cdr.duration_secs), (200, 5));
    assert!(cdr.answered_at.is_some());
}

#[test]
fn cancel_busy_and_nobody_home() {
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let auth = proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"));
    let out = rig.feed(ALICE, &invite(&auth));
    let b_invite = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&b_invite, 180, "bob1", &format!("sip:bob@{BOB}"), ""));
    // alice gives up: 200 for the CANCEL, the device's INVITE cancelled, 487 to alice
    let cancel = invite(&auth).replace("INVITE sip:", "CANCEL sip:").replace("2 INVITE", "2 CANCEL");
    let cancel = cancel.split("Content-Type").next().unwrap().to_owned() + "Content-Length: 0\r\n\r\n";
    let out = rig.feed(ALICE, &cancel);
    response(&out, ALICE, 200);
    response(&out, ALICE, 487);
    request(&out, BOB, "CANCEL");
    let cdr = rig.records().pop();
    assert_eq!(cdr.map(|c| (c.cause_code, c.hangup_side)), Some((487, "caller")));

    // busy: bob's device refuses (and bob has no voicemail to take the call instead)
    let no_voicemail = Routing { voicemail: false, ..Default::default() };
    rig.set_accounts(vec![account(1, "alice", Default::default()), account(2, "bob", no_voicemail)]);
    let challenge = response(&rig.feed(ALICE, &invite("").replace("call-1", "call-2")), ALICE, 407);
    let auth = proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"));
    let out = rig.feed(ALICE, &invite(&auth).replace("call-1", "call-2"));
    let b_invite = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&b_invite, 486, "bob2", &format!("sip:bob@{BOB}"), ""));
    response(&out, ALICE, 486);

    // unknown user and a user with no device
    let challenge = response(&rig.feed(ALICE, &invite("").replace("call-1", "call-3")), ALICE, 407);
    let auth = proxy_auth(&challenge, "INVITE", &format!("sip:nobody@{REALM}"));
    let text = invite(&auth)
        .replace("call-1", "call-3")
        .replace(&format!("INVITE sip:bob@{REALM}"), &format!("INVITE sip:nobody@{REALM}"));
    response(&rig.feed(ALICE, &text), ALICE, 404);
}

#[test]
fn message_is_accepted_stored_then_delivered() {
    let mut rig = Rig::new();
    let message = |auth: &str, cseq: u32| {
        format!(
            "MESSAGE sip:bob@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKm{cseq}\r\nMax-Forwards: 70\r\n\
             To: <sip:bob@{REALM}>\r\nFrom: <sip:alice@{REALM}>;tag=m1\r\nCall-ID: msg-1@alice\r\n\
             CSeq: {cseq} MESSAGE\r\n{auth}Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        )
    };
    let challenge = response(&rig.feed(ALICE, &message("", 1)), ALICE, 407);
    let out = rig.feed(ALICE, &message(&proxy_auth(&challenge, "MESSAGE", &format!("sip:bob@{REALM}")), 2));
    response(&out, ALICE, 202);
    let Some(StoreWrite::StoreMessage { ticket, to_account, .. }) = rig.store_writes().into_iter().next() else {
        panic!("the message goes to the store first")
    };
    assert_eq!(to_account, 2);
    let out = rig.input(Input::Store(StoreReply::MessageStored { ticket, id: Some(41) }));
    assert!(rig.events().contains(&Event::MessageStored { message_id: 41, from_account: Some(1), to_account: 2 }));
    let delivered = request(&out, BOB, "MESSAGE");
    assert_eq!(&delivered.body[..], b"hello");
    assert!(delivered.from().unwrap().uri.to_string().starts_with("sip:alice@"));
    rig.feed(BOB, &answer(&delivered, 200, "b", &format!("sip:bob@{BOB}"), ""));
    assert!(matches!(rig.store_writes().as_slice(), [StoreWrite::Delivered { message_id: 41, .. }]));
    assert!(rig.events().iter().any(|e| matches!(e, Event::MessageDelivered { message_id: 41, account_id: 2, .. })));
}

#[test]
fn a_message_reaching_a_device_by_two_paths_at_once_is_sent_once() {
    let mut rig = Rig::new();
    let message = |auth: &str, cseq: u32| {
        format!(
            "MESSAGE sip:bob@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKd{cseq}\r\nMax-Forwards: 70\r\n\
             To: <sip:bob@{REALM}>\r\nFrom: <sip:alice@{REALM}>;tag=d1\r\nCall-ID: msg-d@alice\r\n\
             CSeq: {cseq} MESSAGE\r\n{auth}Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        )
    };
    let challenge = response(&rig.feed(ALICE, &message("", 1)), ALICE, 407);
    rig.feed(ALICE, &message(&proxy_auth(&challenge, "MESSAGE", &format!("sip:bob@{REALM}")), 2));
    let Some(StoreWrite::StoreMessage { ticket, .. }) = rig.store_writes().into_iter().next() else {
        panic!("the message goes to the store first")
    };
    // Stored: delivered to bob's device at once...
    let out = rig.input(Input::Store(StoreReply::MessageStored { ticket, id: Some(77) }));
    let delivered = request(&out, BOB, "MESSAGE");
    // ...while the store's list of what bob's device has not had yet, read before that
    // delivery was written, holds it too: it is not sent a second time, on its way or taken.
    let pending = || sambung_pbx::StoredMessage {
        id: 77,
        from_uri: format!("<sip:alice@{REALM}>"),
        to_account: 2,
        content_type: "text/plain".into(),
        body: bytes::Bytes::from_static(b"hello"),
    };
    let device = binding(2, "bob", BOB).key();
    let undelivered = |rig: &mut Rig| {
        rig.input(Input::Store(StoreReply::Undelivered {
            account_id: 2,
            device: device.clone(),
            messages: vec![pending()],
        }))
    };
    assert!(undelivered(&mut rig).iter().all(|(to, _)| to.to_string() != BOB), "sent again while on its way");
    rig.feed(BOB, &answer(&delivered, 200, "b", &format!("sip:bob@{BOB}"), ""));
    assert!(undelivered(&mut rig).iter().all(|(to, _)| to.to_string() != BOB), "sent again once taken");
}

#[test]
fn session_timer_refreshes_the_leg_we_refresh_and_ends_a_silent_one() {
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    let b_invite = request(&out, BOB, "INVITE");
    assert_eq!(
        b_invite.headers.get(HeaderName::SessionExpires).map(|v| v.to_string()),
        Some("1800;refresher=uac".into())
    );
    // bob takes part and leaves the refreshing to us; alice's phone knows nothing of timers
    let ok = answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp())
        .replace("Content-Length", "Session-Expires: 1800;refresher=uac\r\nContent-Length");
    let out = rig.feed(BOB, &ok);
    let a_ok = response(&out, ALICE, 200);
    assert_eq!(a_ok.headers.get(HeaderName::SessionExpires).map(|v| v.to_string()), Some("1800;refresher=uas".into()));
    let a_tag = a_ok.to().unwrap().tag().unwrap().to_owned();
    let ack = format!(
        "ACK sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack1\r\nMax-Forwards: 70\r\n\
         To: <sip:bob@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\n\
         Call-ID: call-1@alice\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(rig.feed(ALICE, &ack).is_empty());
    // half the interval later we refresh both legs with UPDATE
    rig.ms += 900_000;
    let deadline = rig.next_timeout().unwrap();
    assert!(deadline <= rig.now().instant, "a refresh is due");
    let out = rig.timeout();
    let to_alice = request(&out, ALICE, "UPDATE");
    let to_bob = request(&out, BOB, "UPDATE");
    assert!(to_alice.body.is_empty() && to_bob.body.is_empty());
    // alice's phone has gone away: the refresh gets 481 and the call is torn down
    let gone = format!(
        "SIP/2.0 481 Gone\r\n{}From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        to_alice.headers.get_all(HeaderName::Via).map(|v| format!("Via: {v}\r\n")).collect::<String>(),
        to_alice.headers.get(HeaderName::From).unwrap(),
        to_alice.headers.get(HeaderName::To).unwrap(),
        to_alice.call_id().unwrap(),
        to_alice.headers.get(HeaderName::CSeq).unwrap(),
    );
    let out = rig.feed(ALICE, &gone);
    request(&out, BOB, "BYE");
    assert!(rig.records().iter().any(|c| c.hangup_side == "system"));
}

#[test]
fn reliable_provisionals_for_a_caller_that_requires_100rel() {
    let mut rig = Rig::new();
    let with_100rel = |auth: &str| invite(auth).replace("Contact:", "Require: 100rel\r\nContact:");
    let challenge = response(&rig.feed(ALICE, &with_100rel("")), ALICE, 407);
    let out = rig.feed(ALICE, &with_100rel(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    let b_invite = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&b_invite, 180, "bob1", &format!("sip:bob@{BOB}"), ""));
    let ringing = response(&out, ALICE, 180);
    assert_eq!(ringing.headers.get(HeaderName::Require).map(|v| v.to_string()), Some("100rel".into()));
    let rseq = ringing.headers.get(HeaderName::RSeq).unwrap().to_string();
    // unacknowledged, it comes again after T1
    rig.ms += 500;
    let again = rig.timeout();
    assert!(again.iter().any(|(_, m)| matches!(m, Message::Response(r) if r.status == 180)), "{again:?}");
    // the PRACK acknowledges it
    let tag = ringing.to().unwrap().tag().unwrap().to_owned();
    let prack = format!(
        "PRACK sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKprack1\r\nMax-Forwards: 70\r\n\
         To: <sip:bob@{REALM}>;tag={tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\nCall-ID: call-1@alice\r\n\
         CSeq: 3 PRACK\r\nRAck: {rseq} 2 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    response(&rig.feed(ALICE, &prack), ALICE, 200);
    rig.ms += 5000;
    let later = rig.timeout();
    assert!(
        !later.iter().any(|(_, m)| matches!(m, Message::Response(r) if r.status == 180)),
        "acknowledged: no more 180s"
    );
}

#[test]
fn subscribe_is_challenged_then_refused_for_an_unknown_package() {
    let mut rig = Rig::new();
    let subscribe = |auth: &str, cseq: u32| {
        format!(
            "SUBSCRIBE sip:bob@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKs{cseq}\r\nMax-Forwards: 70\r\n\
             To: <sip:bob@{REALM}>\r\nFrom: <sip:alice@{REALM}>;tag=s1\r\nCall-ID: sub-1@alice\r\nCSeq: {cseq} SUBSCRIBE\r\n\
             Event: conference\r\nContact: <sip:alice@{ALICE}>\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let challenge = response(&rig.feed(ALICE, &subscribe("", 1)), ALICE, 407);
    let out = rig.feed(ALICE, &subscribe(&proxy_auth(&challenge, "SUBSCRIBE", &format!("sip:bob@{REALM}")), 2));
    response(&out, ALICE, 489);
}

#[test]
fn dtmf_in_sip_info_reaches_the_other_leg_untouched() {
    // The INFO's body is not SDP and must pass as it is.
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let auth = proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"));
    let sdp_a = "v=0\r\no=a 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let with_sdp = format!(
        "INVITE sip:bob@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKcall-1-sdp\r\nMax-Forwards: 70\r\n\
         To: <sip:bob@{REALM}>\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\nCall-ID: call-1@alice\r\n\
         CSeq: 2 INVITE\r\nContact: <sip:alice@{ALICE}>\r\n{auth}Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp_a}",
        sdp_a.len()
    );
    let out = rig.feed(ALICE, &with_sdp);
    let b_invite = request(&out, BOB, "INVITE");
    let sdp_b = "v=0\r\no=b 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), sdp_b));
    let a_tag = response(&out, ALICE, 200).to().unwrap().tag().unwrap().to_owned();
    let info = |cseq: u32, content_type: &str, body: &str| {
        format!(
            "INFO sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKinfo{cseq}\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\n\
             Call-ID: call-1@alice\r\nCSeq: {cseq} INFO\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let out = rig.feed(ALICE, &info(3, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"));
    let relayed = request(&out, BOB, "INFO");
    assert_eq!(&relayed.body[..], b"Signal=5\r\nDuration=160\r\n", "the key is carried to the other leg");
    assert!(rig.app_requests().is_empty(), "no application answers this call");
    // An INFO of another package is relayed too.
    let out = rig.feed(ALICE, &info(4, "application/media_control+xml", "<media_control/>"));
    request(&out, BOB, "INFO");
}

#[test]
fn an_application_answers_at_once_and_gets_keys_sent_by_sip_info() {
    let mut rig = Rig::new();
    // carol has no device: her voicemail answers, with alice's own codec.
    rig.set_accounts(vec![
        account(1, "alice", Default::default()),
        account(2, "bob", Default::default()),
        account(3, "carol", Default::default()),
    ]);
    let to_carol = |auth: &str| invite(auth).replace("sip:bob@", "sip:carol@");
    let challenge = response(&rig.feed(ALICE, &to_carol("")), ALICE, 407);
    let out = rig.feed(ALICE, &to_carol(&proxy_auth(&challenge, "INVITE", &format!("sip:carol@{REALM}"))));
    let ok = response(&out, ALICE, 200);
    assert_eq!(media_address(&ok.body), (RELAY_IP.to_owned(), 30_000));
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 30000 RTP/AVP 0"), "alice's own codec");
    let commands = rig.media_commands();
    let call = match commands.iter().find(|c| matches!(c, MediaCommand::AttachApp { .. })) {
        Some(MediaCommand::AttachApp { session, rate: 8000, .. }) => *session,
        other => panic!("the B leg becomes the application: {other:?} in {commands:?}"),
    };
    let started = rig.app_requests();
    assert!(
        matches!(started.as_slice(), [AppRequest::Start { call: c, app: App::Voicemail { account_id: 3, .. }, rate: 8000, .. }] if *c == call),
        "{started:?}"
    );
    let a_tag = ok.to().unwrap().tag().unwrap().to_owned();
    let info = format!(
        "INFO sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKinfo9\r\nMax-Forwards: 70\r\n\
         To: <sip:carol@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\nCall-ID: call-1@alice\r\n\
         CSeq: 3 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n"
    );
    response(&rig.feed(ALICE, &info), ALICE, 200);
    assert_eq!(rig.app_requests(), [AppRequest::Key { call, key: '5' }]);
    // The application is done: alice's leg is hung up, the media closed, the call recorded.
    let out = rig.input(Input::AppEnded { call, end: AppEnd::Hangup });
    request(&out, ALICE, "BYE");
    assert!(rig.media_commands().contains(&MediaCommand::Close { session: call }));
    let record = rig.records().pop().expect("a call record");
    assert_eq!((record.callee_device.as_deref(), record.hangup_side), (Some("voicemail"), "callee"));
}

#[test]
fn an_operator_ends_a_ringing_call_and_an_answered_one() {
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    let b_invite = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&b_invite, 180, "bob1", &format!("sip:bob@{BOB}"), ""));
    let call = rig
        .events()
        .iter()
        .find_map(|e| match e {
            Event::CallStarted { call, .. } => Some(*call),
            _ => None,
        })
        .expect("the call started");
    // Another number: nothing happens.
    assert!(rig.input(Input::EndCall { call: call + 1000 }).is_empty());
    // Ringing: bob's phone is cancelled, alice hears 480.
    let out = rig.input(Input::EndCall { call });
    request(&out, BOB, "CANCEL");
    let refused = response(&out, ALICE, 480);
    assert_eq!(&*refused.reason, "Ended by the operator");
    let cdr = rig.records().pop().expect("a record");
    assert_eq!((cdr.cause_code, cdr.hangup_side), (480, "system"));

    // Answered: BYE to both phones.
    let challenge = response(&rig.feed(ALICE, &invite("").replace("call-1", "call-2")), ALICE, 407);
    let auth = proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"));
    let out = rig.feed(ALICE, &invite(&auth).replace("call-1", "call-2"));
    let b_invite = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob2", &format!("sip:bob@{BOB}"), &bob_sdp()));
    response(&out, ALICE, 200);
    let call = rig
        .events()
        .iter()
        .find_map(|e| match e {
            Event::CallStarted { call, .. } => Some(*call),
            _ => None,
        })
        .expect("the second call started");
    rig.ms += 3000;
    let out = rig.input(Input::EndCall { call });
    let to_alice = request(&out, ALICE, "BYE");
    assert_eq!(to_alice.call_id(), Some("call-2@alice"));
    let to_bob = request(&out, BOB, "BYE");
    assert_eq!(to_bob.call_id(), b_invite.call_id());
    let cdr = rig.records().pop().expect("a record");
    assert_eq!((cdr.cause_code, cdr.hangup_side, cdr.duration_secs), (200, "system", 3));
    assert!(rig.media_commands().contains(&MediaCommand::Close { session: call }));
}

#[test]
fn an_operator_transfers_the_caller_who_is_hung_up_here_once_connected() {
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    let b_invite = request(&out, BOB, "INVITE");
    // Ringing: nothing to transfer yet.
    rig.feed(BOB, &answer(&b_invite, 180, "bob1", &format!("sip:bob@{BOB}"), ""));
    let call = rig
        .events()
        .iter()
        .find_map(|e| match e {
            Event::CallStarted { call, .. } => Some(*call),
            _ => None,
        })
        .expect("the call started");
    let side = sambung_pbx::Side::A;
    assert!(rig.input(Input::TransferCall { call, side, target: "carol".into() }).is_empty());
    assert!(rig.events().iter().any(|e| matches!(e, Event::TransferEnded { status: 409, .. })));
    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    let ok = response(&out, ALICE, 200);
    let a_tag = ok.to().unwrap().tag().unwrap().to_owned();
    let from_alice = |method: &str, cseq: u32, extra: &str, body: &str| {
        format!(
            "{method} sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{method}{cseq}\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\n\
             Call-ID: call-1@alice\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    rig.feed(ALICE, &from_alice("ACK", 2, "", ""));

    // Answered: alice's phone is referred to carol; a refusal leaves the call as it was.
    let out = rig.input(Input::TransferCall { call, side, target: "carol".into() });
    let refer = request(&out, ALICE, "REFER");
    assert_eq!(refer.call_id(), Some("call-1@alice"), "in alice's own dialog");
    let refer_to = refer.headers.get(HeaderName::from("Refer-To")).unwrap().to_string();
    assert!(refer_to.starts_with("<sip:carol@"), "{refer_to}");
    assert!(refer.headers.get(HeaderName::from("Referred-By")).is_some_and(|r| r.contains("sip:bob@")));
    let out = rig.feed(ALICE, &answer(&refer, 603, "x", &format!("sip:alice@{ALICE}"), ""));
    assert!(out.is_empty(), "nobody is hung up");
    assert!(rig.events().iter().any(|e| matches!(e, Event::TransferEnded { status: 603, .. })));
    assert!(rig.records().is_empty(), "the call goes on");

    let out = rig.input(Input::TransferCall { call, side, target: "carol".into() });
    let refer = request(&out, ALICE, "REFER");
    rig.feed(ALICE, &answer(&refer, 202, "x", &format!("sip:alice@{ALICE}"), ""));
    // The NOTIFYs are the transfer's: answered here, never carried to bob.
    let trying = "Event: refer\r\nSubscription-State: active\r\nContent-Type: message/sipfrag\r\n";
    let out = rig.feed(ALICE, &from_alice("NOTIFY", 3, trying, "SIP/2.0 100 Trying\r\n"));
    response(&out, ALICE, 200);
    assert!(!out.iter().any(|(to, _)| to.to_string() == BOB), "{out:?}");
    let done = "Event: refer\r\nSubscription-State: terminated\r\nContent-Type: message/sipfrag\r\n";
    rig.ms += 2000;
    let out = rig.feed(ALICE, &from_alice("NOTIFY", 4, done, "SIP/2.0 200 OK\r\n"));
    response(&out, ALICE, 200);
    request(&out, ALICE, "BYE");
    request(&out, BOB, "BYE");
    let events = rig.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::TransferEnded { status: 200, target, .. } if target == "carol")),
        "{events:?}"
    );
    let cdr = events
        .iter()
        .find_map(|e| match e {
            Event::CallEnded(record) => Some(record.clone()),
            _ => None,
        })
        .expect("a record");
    assert_eq!((cdr.cause_code, cdr.cause_reason.as_str(), cdr.hangup_side), (200, "Transferred", "system"));
}

#[test]
fn a_phone_transfers_the_other_party_and_a_failed_transfer_keeps_the_call() {
    let mut rig = Rig::new();
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    let b_invite = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    let ok = response(&out, ALICE, 200);
    let a_tag = ok.to().unwrap().tag().unwrap().to_owned();
    let from_alice = |method: &str, cseq: u32, extra: &str, body: &str| {
        format!(
            "{method} sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{method}{cseq}\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\n\
             Call-ID: call-1@alice\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    rig.feed(ALICE, &from_alice("ACK", 2, "", ""));
    // bob's requests in his dialog with us: To is our From of the INVITE we sent him.
    let our_from = b_invite.headers.get(HeaderName::From).unwrap().to_string();
    let b_call_id = b_invite.call_id().unwrap().to_owned();
    let from_bob = |method: &str, cseq: u32, extra: &str| {
        format!(
            "{method} sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKb{method}{cseq}\r\n\
             Max-Forwards: 70\r\nTo: {our_from}\r\nFrom: <sip:bob@{REALM}>;tag=bob1\r\n\
             Call-ID: {b_call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:bob@{BOB}>\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };

    // A REFER that cannot be acted on is refused, and never carried to alice.
    let out = rig.feed(BOB, &from_bob("REFER", 10, ""));
    assert_eq!(response(&out, BOB, 400).status, 400);
    assert!(!out.iter().any(|(to, _)| to.to_string() == ALICE), "{out:?}");
    let attended = format!("Refer-To: <sip:carol@{REALM}?Replaces=abc%3Bto-tag%3D1>\r\n");
    let out = rig.feed(BOB, &from_bob("REFER", 11, &attended));
    assert_eq!(response(&out, BOB, 400).status, 400, "a Replaces without both tags");

    // bob sends alice on to carol: 202, a NOTIFY of 100 to bob, our own REFER to alice.
    let out = rig.feed(BOB, &from_bob("REFER", 12, &format!("Refer-To: <sip:carol@{REALM}>\r\n")));
    assert_eq!(response(&out, BOB, 202).status, 202);
    let notify = request(&out, BOB, "NOTIFY");
    assert_eq!(notify.headers.get(HeaderName::Event).map(|e| e.to_string()), Some("refer;id=12".into()));
    assert_eq!(&notify.body[..], b"SIP/2.0 100 Trying\r\n");
    assert_eq!(notify.headers.count(HeaderName::Contact), 1);
    let refer = request(&out, ALICE, "REFER");
    assert_eq!(refer.call_id(), Some("call-1@alice"), "in alice's own dialog");
    let refer_to = refer.headers.get(HeaderName::from("Refer-To")).unwrap().to_string();
    assert!(refer_to.starts_with("<sip:carol@"), "{refer_to}");
    // While it is under way, another is refused.
    let out = rig.feed(BOB, &from_bob("REFER", 13, &format!("Refer-To: <sip:dave@{REALM}>\r\n")));
    assert_eq!(response(&out, BOB, 491).status, 491);

    // alice's call to carol fails: bob hears of it, the call goes on.
    rig.feed(ALICE, &answer(&refer, 202, "x", &format!("sip:alice@{ALICE}"), ""));
    let busy = "Event: refer\r\nSubscription-State: terminated\r\nContent-Type: message/sipfrag\r\n";
    let out = rig.feed(ALICE, &from_alice("NOTIFY", 3, busy, "SIP/2.0 486 Busy Here\r\n"));
    response(&out, ALICE, 200);
    let notify = request(&out, BOB, "NOTIFY");
    assert_eq!(&notify.body[..], b"SIP/2.0 486 Busy Here\r\n");
    assert!(notify.headers.get(HeaderName::from("Subscription-State")).is_some_and(|s| s.starts_with("terminated")));
    assert!(!out.iter().any(|(_, m)| matches!(m, Message::Request(r) if r.method == Method::Bye)), "{out:?}");
    assert!(rig.records().is_empty(), "the call goes on");

    // Again, and carol answers: bob is told, both legs end as transferred.
    let out = rig.feed(BOB, &from_bob("REFER", 14, &format!("Refer-To: <sip:carol@{REALM}>\r\n")));
    assert_eq!(response(&out, BOB, 202).status, 202);
    let refer = request(&out, ALICE, "REFER");
    rig.feed(ALICE, &answer(&refer, 202, "x", &format!("sip:alice@{ALICE}"), ""));
    let done = "Event: refer\r\nSubscription-State: terminated\r\nContent-Type: message/sipfrag\r\n";
    let out = rig.feed(ALICE, &from_alice("NOTIFY", 4, done, "SIP/2.0 200 OK\r\n"));
    let notify = request(&out, BOB, "NOTIFY");
    assert_eq!(notify.headers.get(HeaderName::Event).map(|e| e.to_string()), Some("refer;id=14".into()));
    assert_eq!(&notify.body[..], b"SIP/2.0 200 OK\r\n");
    request(&out, ALICE, "BYE");
    request(&out, BOB, "BYE");
    let cdr = rig.records().pop().expect("a record");
    assert_eq!((cdr.cause_code, cdr.cause_reason.as_str()), (200, "Transferred"));
}

/// A browser's offer as Chrome writes it (trimmed: one audio section, its usual formats).
fn chrome_offer() -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS stream",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host generation 0",
        "a=ice-ufrag:Xb3d",
        "a=ice-pwd:4cB9lWv8RQyM0a3Y1oY2dJ7q",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F",
        "a=setup:actpass",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        "a=msid:stream track",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "a=ssrc:3735928559 cname:abc",
        "",
    ]
    .join("\r\n")
}

/// alice's browser calls bob with `offer` (through the digest challenge): what the server sent.
fn browser_calls_bob(rig: &mut Rig, call_id: &str, offer: &str) -> Vec<(std::net::SocketAddr, Message)> {
    let branch = call_id.replace('@', "-");
    let invite = |auth: &str| {
        format!(
            "INVITE sip:bob@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{branch}-{}\r\nMax-Forwards: 70\r\n\
             To: <sip:bob@{REALM}>\r\nFrom: <sip:alice@{REALM}>;tag=al1\r\nCall-ID: {call_id}\r\n\
             CSeq: {} INVITE\r\nContact: <sip:alice@{ALICE}>\r\n{auth}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{offer}",
            auth.len(),
            if auth.is_empty() { 1 } else { 2 },
            offer.len()
        )
    };
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))))
}

#[test]
fn a_browser_calls_a_phone_each_in_its_own_media() {
    let fingerprint =
        "sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00";
    let mut rig = Rig::with_config(PbxConfig {
        domains: vec![REALM.into()],
        realm: REALM.into(),
        media_address: Some(RELAY_IP.parse().unwrap()),
        webrtc_fingerprint: Some(fingerprint.into()),
        ..PbxConfig::default()
    });
    let out = browser_calls_bob(&mut rig, "call-1@alice", &chrome_offer());
    // The phone is offered plain RTP: none of WebRTC's transport, the formats a browser leg
    // carries with their payload types (RED and CN dropped), the relay's B port.
    let b_invite = request(&out, BOB, "INVITE");
    let to_bob = String::from_utf8(b_invite.body.to_vec()).unwrap();
    assert!(to_bob.contains("m=audio 40000 RTP/AVP 111 9 0 8 110 126"), "{to_bob}");
    for gone in
        ["ice-", "fingerprint", "setup", "a=mid", "BUNDLE", "rtcp-mux", "ssrc", "extmap", "candidate", "red/", "CN/"]
    {
        assert!(!to_bob.contains(gone), "{gone} in the offer to the phone:\n{to_bob}");
    }
    // The phone takes PCMU (and events).
    let bob_answer = sdp("192.0.2.20", 6000, "0 126", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:126 telephone-event/8000\r\n");
    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_answer));
    let ok = response(&out, ALICE, 200);
    let to_alice = String::from_utf8(ok.body.to_vec()).unwrap();
    // The browser gets our WebRTC answer: ice-lite, our fingerprint, passive, its mid, the
    // relay's A port as the one candidate, PCMU and its events only.
    for line in [
        "a=ice-lite",
        &format!("a=fingerprint:{fingerprint}"),
        "a=setup:passive",
        "a=mid:0",
        "a=group:BUNDLE 0",
        "m=audio 30000 UDP/TLS/RTP/SAVPF 0 126",
        "a=rtcp-mux",
        "a=candidate:1 1 udp 2130706431 192.0.2.1 30000 typ host",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    ] {
        assert!(to_alice.contains(line), "{line} missing from the answer to the browser:\n{to_alice}");
    }
    assert!(!to_alice.contains("a=crypto"), "{to_alice}");
    // The relay's leg A becomes the browser's WebRTC leg, with the browser's credentials.
    let outputs = rig.take_outputs();
    let webrtc: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Media(MediaCommand::WebRtc { side, plan, remote, .. }) => Some((side, plan, remote)),
            _ => None,
        })
        .collect();
    assert_eq!(webrtc.len(), 1, "one WebRTC leg");
    let (side, plan, remote) = &webrtc[0];
    assert_eq!(**side, sambung_pbx::Side::A);
    assert_eq!((remote.ufrag.as_str(), plan.local.port()), ("Xb3d", 30_000));
    assert!(!plan.dtls_client(), "the browser (actpass) starts DTLS");
    // The relay decrypts nothing on either side by SDES: leg A is plain to the session.
    let configured: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Media(MediaCommand::Configure { legs, .. }) => Some(legs),
            _ => None,
        })
        .collect();
    assert!(!configured.is_empty());
    assert!(configured.iter().all(|legs| legs.iter().all(|l| l.srtp_in.is_none() && l.srtp_out.is_none())));
    // The browser's events (126) are read on leg A.
    assert!(configured.iter().any(|legs| legs[0].events.iter().any(|e| e.payload_type == 126)), "{configured:?}");
}

/// A browser's video call to a phone whose description lists no RTCP feedback: the relay's
/// keyframe requests for the phone's video become SIP INFOs with `picture_fast_update` in its
/// dialog (RFC 5168), none for its audio; the phone's own such INFO is answered here and becomes
/// a keyframe request of the browser's leg at the relay.
#[test]
fn keyframes_are_asked_of_a_video_phone_by_sip_info() {
    let mut rig = Rig::with_config(PbxConfig {
        domains: vec![REALM.into()],
        realm: REALM.into(),
        media_address: Some(RELAY_IP.parse().unwrap()),
        webrtc_fingerprint: Some(
            "sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00"
                .into(),
        ),
        ..PbxConfig::default()
    });
    let video = [
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Xb3d",
        "a=ice-pwd:4cB9lWv8RQyM0a3Y1oY2dJ7q",
        "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F",
        "a=setup:actpass",
        "a=mid:1",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=ssrc:1234 cname:abc",
        "",
    ]
    .join("\r\n");
    let offer = chrome_offer().replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1") + &video;
    let out = browser_calls_bob(&mut rig, "call-kf@alice", &offer);
    let b_invite = request(&out, BOB, "INVITE");
    let to_bob = String::from_utf8(b_invite.body.to_vec()).unwrap();
    assert!(to_bob.contains("m=video 40002 RTP/AVP 96"), "{to_bob}");
    // bob's phone takes PCMU and VP8, and says nothing of RTCP feedback.
    let bob_answer =
        sdp("192.0.2.20", 6000, "0", "a=rtpmap:0 PCMU/8000\r\nm=video 6002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n");
    let out = rig.feed(BOB, &answer(&b_invite, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_answer));
    response(&out, ALICE, 200);
    let commands = rig.media_commands();
    let call = commands
        .iter()
        .find_map(|c| match c {
            MediaCommand::Open { session, .. } => Some(*session),
            _ => None,
        })
        .expect("a media session");
    let video_legs = commands
        .iter()
        .rev()
        .find_map(|c| match c {
            MediaCommand::Configure { stream: 1, legs, .. } => Some(legs.clone()),
            _ => None,
        })
        .expect("the video stream configured");
    assert!(!video_legs[1].rtcp_feedback, "bob's phone takes no RTCP keyframe requests");

    // The relay wants a keyframe of bob's video: an INFO in his dialog. Of his audio: nothing.
    assert!(rig.input(Input::KeyframeWanted { call, side: sambung_pbx::Side::B, stream: 0 }).is_empty());
    let out = rig.input(Input::KeyframeWanted { call, side: sambung_pbx::Side::B, stream: 1 });
    let info = request(&out, BOB, "INFO");
    assert_eq!(info.to().unwrap().tag(), Some("bob1"), "in bob's dialog");
    assert_eq!(info.headers.get(HeaderName::ContentType).map(|v| &**v), Some("application/media_control+xml"));
    assert!(std::str::from_utf8(&info.body).unwrap().contains("<picture_fast_update/>"));

    // bob's phone asks for a keyframe of the browser: answered here, asked of leg A.
    let body =
        "<media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder></vc_primitive></media_control>";
    let from_bob = format!(
        "INFO sip:sambung@{RELAY_IP} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKbobinfo\r\nMax-Forwards: 70\r\n\
         From: <sip:bob@{REALM}>;tag=bob1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 7 INFO\r\n\
         Content-Type: application/media_control+xml\r\nContent-Length: {}\r\n\r\n{body}",
        b_invite.headers.get(HeaderName::From).unwrap(),
        b_invite.headers.get(HeaderName::CallId).unwrap(),
        body.len()
    );
    let out = rig.feed(BOB, &from_bob);
    response(&out, BOB, 200);
    assert!(
        !out.iter().any(|(to, m)| to.to_string() == ALICE && matches!(m, Message::Request(_))),
        "nothing to the browser by SIP"
    );
    assert!(
        rig.media_commands().contains(&MediaCommand::Keyframe { session: call, side: sambung_pbx::Side::A }),
        "the browser's leg is asked for a keyframe"
    );
}

/// An attended transfer by a phone (RFC 5589 §7): alice calls bob; bob calls carol; bob's
/// REFER in his call with alice names carol with Replaces of his call with carol. We pass it on
/// to alice's phone; her INVITE with Replaces (naming our dialog with bob) rings carol's device
/// only, with Replaces naming our dialog with carol, so carol's phone takes alice in place of
/// bob. An INVITE whose Replaces names no answered call of ours is refused with 481.
#[test]
fn an_attended_transfer_sends_the_caller_to_the_consulted_device() {
    let mut rig = Rig::office(PbxConfig::default());

    // Call 1: alice to bob, answered.
    let challenge = response(&rig.feed(ALICE, &invite("")), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &format!("sip:bob@{REALM}"))));
    let to_bob = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&to_bob, 200, "bob1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    let ok = response(&out, ALICE, 200);
    let a_tag = ok.to().unwrap().tag().unwrap().to_owned();
    rig.feed(
        ALICE,
        &format!(
            "ACK sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack1\r\nMax-Forwards: 70\r\n\
             To: <sip:bob@{REALM}>;tag={a_tag}\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\nCall-ID: call-1@alice\r\n\
             CSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
        ),
    );

    // Call 2: bob to carol, answered.
    let bob_invite = |auth: &str| {
        let body = bob_sdp();
        format!(
            "INVITE sip:carol@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKcall2-{}\r\nMax-Forwards: 70\r\n\
             To: <sip:carol@{REALM}>\r\nFrom: <sip:bob@{REALM}>;tag=bb2\r\nCall-ID: call-2@bob\r\n\
             CSeq: {} INVITE\r\nContact: <sip:bob@{BOB}>\r\n{auth}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            auth.len(),
            if auth.is_empty() { 1 } else { 2 },
            body.len()
        )
    };
    let challenge = response(&rig.feed(BOB, &bob_invite("")), BOB, 407);
    let out = rig.feed(BOB, &bob_invite(&proxy_auth_as(&challenge, "INVITE", &format!("sip:carol@{REALM}"), "bob")));
    let to_carol = request(&out, CAROL, "INVITE");
    let carol_sdp = sdp("192.0.2.30", 7000, "0", "");
    let out = rig.feed(CAROL, &answer(&to_carol, 200, "car1", &format!("sip:carol@{CAROL}"), &carol_sdp));
    let to_bob_ok = response(&out, BOB, 200);
    let our_tag_with_bob = to_bob_ok.to().unwrap().tag().unwrap().to_owned();

    // bob (callee of call 1) refers alice to carol, replacing his call with carol.
    let our_from = to_bob.headers.get(HeaderName::From).unwrap().to_string();
    let b_call_id = to_bob.call_id().unwrap().to_owned();
    let replaces = format!("call-2@bob%3Bto-tag%3D{our_tag_with_bob}%3Bfrom-tag%3Dbb2");
    let refer = format!(
        "REFER sip:sambung@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKrefer1\r\nMax-Forwards: 70\r\n\
         To: {our_from}\r\nFrom: <sip:bob@{REALM}>;tag=bob1\r\nCall-ID: {b_call_id}\r\nCSeq: 5 REFER\r\n\
         Contact: <sip:bob@{BOB}>\r\nRefer-To: <sip:carol@{REALM}?Replaces={replaces}>\r\nContent-Length: 0\r\n\r\n"
    );
    let out = rig.feed(BOB, &refer);
    assert_eq!(response(&out, BOB, 202).status, 202);
    let to_alice = request(&out, ALICE, "REFER");
    let refer_to = to_alice.headers.get(HeaderName::from("Refer-To")).unwrap().to_string();
    assert!(refer_to.starts_with("<sip:carol@") && refer_to.contains(&format!("?Replaces={replaces}>")), "{refer_to}");

    // alice's phone calls carol with Replaces naming our dialog with bob.
    let alice_invite = |auth: &str, replaces: &str| {
        let body = alice_sdp();
        format!(
            "INVITE sip:carol@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKcall3-{}-{}\r\nMax-Forwards: 70\r\n\
             To: <sip:carol@{REALM}>\r\nFrom: <sip:alice@{REALM}>;tag=al3\r\nCall-ID: call-3@alice-{}\r\n\
             CSeq: {} INVITE\r\nContact: <sip:alice@{ALICE}>\r\nReplaces: {replaces}\r\n{auth}\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            auth.len(),
            replaces.len(),
            replaces.len(),
            if auth.is_empty() { 1 } else { 2 },
            body.len()
        )
    };
    let uri = format!("sip:carol@{REALM}");
    let named = format!("call-2@bob;to-tag={our_tag_with_bob};from-tag=bb2");
    let challenge = response(&rig.feed(ALICE, &alice_invite("", &named)), ALICE, 407);
    let out = rig.feed(ALICE, &alice_invite(&proxy_auth(&challenge, "INVITE", &uri), &named));
    let invites: Vec<_> =
        out.iter().filter(|(_, m)| matches!(m, Message::Request(r) if r.method == Method::Invite)).collect();
    assert_eq!(invites.len(), 1, "only carol's device rings: {invites:?}");
    let replacing = request(&out, CAROL, "INVITE");
    let header = replacing.headers.get(HeaderName::from("Replaces")).expect("Replaces to carol").to_string();
    let carol_dialog = format!("{};to-tag=car1;from-tag=", to_carol.call_id().unwrap());
    assert!(header.starts_with(&carol_dialog), "Replaces names our dialog with carol: {header}");
    let our_tag_with_carol = to_carol.from().unwrap().tag().unwrap().to_owned();
    assert!(header.ends_with(&our_tag_with_carol), "{header}");

    // Replaces of a dialog we do not have: 481.
    let unknown = "nothing@here;to-tag=a;from-tag=b";
    let challenge = response(&rig.feed(ALICE, &alice_invite("", unknown)), ALICE, 407);
    let out = rig.feed(ALICE, &alice_invite(&proxy_auth(&challenge, "INVITE", &uri), unknown));
    assert_eq!(response(&out, ALICE, 481).status, 481);
}
