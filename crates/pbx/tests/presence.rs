//! Presence (RFC 3856, PIDF) and dialog (RFC 4235) subscriptions through call control on the
//! virtual clock: a device watches another account; each change of that account's presence (as
//! the server's presence board computes it) reaches the watcher as a NOTIFY; unknown accounts and
//! packages are refused; the subscription ends.

mod common;

use common::*;
use sambung_pbx::presence::{Board, CallPresence, Presence};
use sambung_pbx::registrar::Routing;
use sambung_pbx::{CallRecord, Event, Input};
use sambung_sip::{HeaderName, Request, digest};

fn rig() -> Rig {
    let mut rig = Rig::new();
    rig.set_accounts(vec![
        account(1, "alice", Routing::default()),
        account(2, "bob", Routing::default()),
        account(3, "carol", Routing::default()),
    ]);
    rig.take_outputs();
    rig
}

const CAROL_AT: &str = "192.0.2.30:5080";

fn header(request: &Request, name: &'static str) -> String {
    request.headers.get_all(HeaderName::from(name)).map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

/// bob's device subscribes to `package` of `user` (answering the challenge).
fn subscribe(
    rig: &mut Rig,
    user: &str,
    package: &str,
    call_id: &str,
) -> Vec<(std::net::SocketAddr, sambung_sip::Message)> {
    let text = |auth: &str, cseq: u32| {
        format!(
            "SUBSCRIBE sip:{user}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK{call_id}{cseq}\r\n\
             Max-Forwards: 70\r\nTo: <sip:{user}@{REALM}>\r\nFrom: <sip:bob@{REALM}>;tag=w{cseq}\r\n\
             Call-ID: {call_id}@bob\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:bob@{BOB}>\r\nEvent: {package}\r\n\
             Expires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let challenge = response(&rig.feed(BOB, &text("", 1)), BOB, 407);
    let c = digest::Challenge::parse(challenge.headers.get(HeaderName::ProxyAuthenticate).unwrap()).unwrap();
    let creds = digest::respond(&c, "SUBSCRIBE", &format!("sip:{user}@{REALM}"), "bob", "bob-secret-1", "cafe", 1);
    rig.feed(BOB, &text(&format!("Proxy-Authorization: {creds}\r\n"), 2))
}

fn body(request: &Request) -> String {
    String::from_utf8_lossy(&request.body).into_owned()
}

#[test]
fn presence_follows_the_watched_account() {
    let mut rig = rig();
    let out = subscribe(&mut rig, "alice", "presence", "pres-1");
    response(&out, BOB, 200);
    let notify = request(&out, BOB, "NOTIFY");
    assert_eq!(header(&notify, "Event"), "presence");
    assert_eq!(header(&notify, "Content-Type"), "application/pidf+xml");
    assert!(header(&notify, "Subscription-State").starts_with("active;expires="));
    let xml = body(&notify);
    assert!(xml.contains(&format!("entity=\"sip:alice@{REALM}\"")) && xml.contains("<basic>closed</basic>"), "{xml}");

    // alice's phone registers: open
    let online = Presence { devices: 1, ..Presence::default() };
    let sent = rig.input(Input::Presence(vec![(1, online.clone())]));
    assert!(body(&request(&sent, BOB, "NOTIFY")).contains("<basic>open</basic>"));
    // the same presence again, or carol's: nothing
    assert!(rig.input(Input::Presence(vec![(1, online.clone())])).is_empty());
    assert!(rig.input(Input::Presence(vec![(3, online.clone())])).is_empty());
    // in a call: on the phone
    let in_call = Presence { calls: vec![CallPresence { call: 9, initiator: true, answered: true }], ..online };
    let sent = rig.input(Input::Presence(vec![(1, in_call)]));
    assert!(body(&request(&sent, BOB, "NOTIFY")).contains("<rpid:on-the-phone/>"));
    // do-not-disturb
    let dnd = Presence { devices: 1, dnd: true, calls: Vec::new() };
    let sent = rig.input(Input::Presence(vec![(1, dnd)]));
    assert!(body(&request(&sent, BOB, "NOTIFY")).contains("<rpid:busy/>"));

    // the subscription runs out: a last NOTIFY
    rig.ms += 601_000;
    let sent = rig.timeout();
    assert!(header(&request(&sent, BOB, "NOTIFY"), "Subscription-State").starts_with("terminated"));
    assert!(rig.input(Input::Presence(vec![(1, Presence::default())])).is_empty());
}

#[test]
fn dialog_package_shows_calls_with_versions() {
    let mut rig = rig();
    let out = subscribe(&mut rig, "alice", "dialog", "dlg-1");
    response(&out, BOB, 200);
    let notify = request(&out, BOB, "NOTIFY");
    assert_eq!(header(&notify, "Content-Type"), "application/dialog-info+xml");
    assert!(body(&notify).contains("version=\"0\" state=\"full\""), "{}", body(&notify));

    // ringing, then answered: each a new version; a change of devices alone says nothing here
    let ringing =
        Presence { devices: 1, calls: vec![CallPresence { call: 4, initiator: false, answered: false }], dnd: false };
    let sent = rig.input(Input::Presence(vec![(1, ringing.clone())]));
    let xml = body(&request(&sent, BOB, "NOTIFY"));
    assert!(xml.contains("version=\"1\"") && xml.contains("direction=\"recipient\"><state>early</state>"), "{xml}");
    let more_devices = Presence { devices: 2, ..ringing };
    let sent = rig.input(Input::Presence(vec![(1, more_devices)]));
    assert!(sent.iter().all(|(_, m)| !matches!(m, sambung_sip::Message::Request(r) if header(r, "Event") == "dialog")));
    let answered =
        Presence { devices: 2, calls: vec![CallPresence { call: 4, initiator: false, answered: true }], dnd: false };
    let sent = rig.input(Input::Presence(vec![(1, answered)]));
    let xml = body(&request(&sent, BOB, "NOTIFY"));
    assert!(xml.contains("version=\"2\"") && xml.contains("<state>confirmed</state>"), "{xml}");
}

#[test]
fn unknown_accounts_and_packages_are_refused() {
    let mut rig = rig();
    response(&subscribe(&mut rig, "nobody", "presence", "p-404"), BOB, 404);
    let refused = response(&subscribe(&mut rig, "alice", "conference", "p-489"), BOB, 489);
    assert_eq!(
        refused.headers.get(HeaderName::AllowEvents).map(|v| v.to_string()).as_deref(),
        Some("message-summary, presence, dialog")
    );
    // an extension or a username: both name the account
    response(&subscribe(&mut rig, "carol", "dialog", "p-ok"), BOB, 200);
}

/// The board turns the domain events of a forwarded, answered call into presence.
#[test]
fn the_board_follows_registrations_and_calls() {
    let mut board = Board::new();
    let registered = |account_id: i64, device: &str| Event::Registered {
        account_id,
        username: format!("user{account_id}"),
        device: device.into(),
        contact: format!("sip:{device}"),
        transport: sambung_sip::Transport::Udp,
        source: "192.0.2.1:5060".parse().unwrap(),
        expires_at: 0,
        user_agent: None,
    };
    assert_eq!(board.apply(&registered(2, "desk")), [(2, Presence { devices: 1, ..Presence::default() })]);
    board.apply(&registered(2, "mobile"));
    board.apply(&registered(3, "desk"));
    assert_eq!(board.get(2).devices, 2);
    assert!(board.apply(&registered(2, "desk")).is_empty(), "a refresh changes nothing");

    let started = Event::CallStarted {
        call: 7,
        call_id: "c7".into(),
        caller: "user1".into(),
        callee: "user2".into(),
        caller_id: 1,
        callee_id: 2,
        at: 0,
    };
    let changes = board.apply(&started);
    assert_eq!(changes[0].0, 1);
    assert_eq!(board.get(1).status(), sambung_pbx::presence::Status::Offline, "a caller without devices");
    board.apply(&Event::CallRinging { call: 7, target: "user2".into(), target_id: 2 });
    assert_eq!(board.get(2).status(), sambung_pbx::presence::Status::Ringing);
    // forwarded to 3: 2 stops ringing
    board.apply(&Event::CallRinging { call: 7, target: "user3".into(), target_id: 3 });
    assert!(board.get(2).calls.is_empty());
    assert_eq!(board.get(3).status(), sambung_pbx::presence::Status::Ringing);
    board.apply(&Event::CallAnswered { call: 7, by: "sip:desk".into(), account_id: Some(3), at: 1 });
    assert_eq!(board.get(3).status(), sambung_pbx::presence::Status::InCall);
    assert_eq!(board.get(1).status(), sambung_pbx::presence::Status::InCall);
    let record = CallRecord {
        call: 7,
        call_id: "c7".into(),
        caller: "user1".into(),
        callee: "user2".into(),
        caller_device: None,
        callee_device: None,
        started_at: 0,
        answered_at: Some(1),
        ended_at: 2,
        duration_secs: 1,
        cause_code: 200,
        cause_reason: "OK".into(),
        hangup_side: "caller",
        answered_by: None,
        forwards: Vec::new(),
    };
    let changes = board.apply(&Event::CallEnded(record));
    let mut ids: Vec<i64> = changes.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 3]);
    assert_eq!(board.get(3).status(), sambung_pbx::presence::Status::Available);
    assert_eq!(board.get(1), Presence::default());

    assert_eq!(board.set_dnd(3, true).map(|(_, p)| p.status()), Some(sambung_pbx::presence::Status::DoNotDisturb));
    let gone = Event::Unregistered {
        account_id: 2,
        device: "desk".into(),
        contact: "sip:desk".into(),
        cause: sambung_pbx::Unregistration::Expired,
    };
    assert_eq!(board.apply(&gone)[0].1.devices, 1);
}

#[test]
fn a_device_signed_out_from_the_app_stops_ringing() {
    let mut rig = rig();
    rig.input(Input::Bindings(vec![binding(3, "carol", CAROL_AT)]));
    rig.take_outputs();
    // An unknown device, or another account's: nothing happens.
    rig.input(Input::Unregister { account_id: 3, device: format!("sip:carol@{BOB}") });
    rig.input(Input::Unregister { account_id: 2, device: format!("sip:carol@{CAROL_AT}") });
    assert!(rig.store_writes().is_empty() && rig.events().is_empty());

    rig.input(Input::Unregister { account_id: 3, device: format!("sip:carol@{CAROL_AT}") });
    let writes = rig.store_writes();
    assert!(
        matches!(&writes[..], [sambung_pbx::StoreWrite::Unbind { account_id: 3, contact }] if *contact == format!("sip:carol@{CAROL_AT}")),
        "{writes:?}"
    );
    let events = rig.events();
    assert!(
        matches!(&events[..], [Event::Unregistered { account_id: 3, cause: sambung_pbx::Unregistration::Removed, .. }]),
        "{events:?}"
    );
    // The binding is gone from the location table: signing it out again does nothing.
    rig.input(Input::Unregister { account_id: 3, device: format!("sip:carol@{CAROL_AT}") });
    assert!(rig.store_writes().is_empty() && rig.events().is_empty());
}
