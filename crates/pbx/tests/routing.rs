//! Forwarding through call control on the virtual clock: always, busy, no answer, offline,
//! loops, History-Info and Diversion on the forwarded leg, the feature codes that change the
//! settings from a phone, and message waiting.

mod common;

use common::*;
use sambung_pbx::registrar::{Routing, Target};
use sambung_pbx::{AppRequest, Event, Input, MailboxCounts, RoutingChange, SettingsChange, StoreWrite};
use sambung_sip::digest;
use sambung_sip::{HeaderName, Request};

const CAROL: &str = "192.0.2.30:5080";

/// alice, bob (bound at BOB), carol (bound at CAROL) and dave (no device), with the given
/// routing for bob, carol and dave.
fn rig(bob: Routing, carol: Routing, dave: Routing) -> Rig {
    rig_with(Rig::new(), bob, carol, dave)
}

fn rig_with(mut rig: Rig, bob: Routing, carol: Routing, dave: Routing) -> Rig {
    rig.set_accounts(vec![
        account(1, "alice", Routing::default()),
        account(2, "bob", bob),
        account(3, "carol", carol),
        account(4, "dave", dave),
    ]);
    rig.input(Input::Bindings(vec![binding(3, "carol", CAROL)]));
    rig.take_outputs();
    rig
}

fn routing(f: impl FnOnce(&mut Routing)) -> Routing {
    let mut r = Routing { voicemail: false, ..Routing::default() };
    f(&mut r);
    r
}

fn local(user: &str) -> Option<Target> {
    Some(Target::Local(user.into()))
}

/// alice calls `callee` (answering the challenge); returns what the core sent.
fn call(rig: &mut Rig, callee: &str, call_id: &str) -> Vec<(std::net::SocketAddr, sambung_sip::Message)> {
    let text = |auth: &str| {
        invite(auth)
            .replace("call-1", call_id)
            .replace(&format!("INVITE sip:bob@{REALM}"), &format!("INVITE sip:{callee}@{REALM}"))
    };
    let challenge = response(&rig.feed(ALICE, &text("")), ALICE, 407);
    let auth = proxy_auth(&challenge, "INVITE", &format!("sip:{callee}@{REALM}"));
    rig.feed(ALICE, &text(&auth))
}

fn header(request: &Request, name: &'static str) -> String {
    request.headers.get_all(HeaderName::from(name)).map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

#[test]
fn forward_always_rings_the_target_with_history_info_and_the_callers_identity() {
    let mut rig = rig(routing(|r| r.forward_always = local("carol")), routing(|_| {}), routing(|_| {}));
    let out = call(&mut rig, "bob", "fa-1");
    assert!(out.iter().all(|(to, _)| to.to_string() != BOB), "bob's device must not ring: {out:#?}");
    let invite = request(&out, CAROL, "INVITE");
    assert_eq!(invite.from().unwrap().display_name().unwrap(), "Alice", "the caller's name is kept");
    assert!(invite.from().unwrap().to_string().contains("sip:alice@"), "the caller's identity is kept");
    let history = header(&invite, "History-Info");
    assert!(history.contains(&format!("<sip:bob@{REALM}?Reason=SIP%3Bcause%3D302>;index=1")), "{history}");
    assert!(history.contains(&format!("<sip:carol@{REALM};cause=302>;index=1.1;mp=1")), "{history}");
    let diversion = header(&invite, "Diversion");
    assert_eq!(diversion, format!("<sip:bob@{REALM}>;reason=unconditional;counter=1"));
    // carol answers: alice is connected
    let out =
        rig.feed(CAROL, &answer(&invite, 200, "c1", &format!("sip:carol@{CAROL}"), &sdp("192.0.2.30", 6000, "0", "")));
    response(&out, ALICE, 200);
}

#[test]
fn busy_forwarding_follows_the_refusal() {
    let mut rig = rig(routing(|r| r.forward_busy = local("carol")), routing(|_| {}), routing(|_| {}));
    let out = call(&mut rig, "bob", "fb-1");
    let to_bob = request(&out, BOB, "INVITE");
    let out = rig.feed(BOB, &answer(&to_bob, 486, "b1", &format!("sip:bob@{BOB}"), ""));
    let to_carol = request(&out, CAROL, "INVITE");
    assert!(header(&to_carol, "History-Info").contains("cause=486"), "{}", header(&to_carol, "History-Info"));
    assert!(header(&to_carol, "Diversion").contains("reason=user-busy"));
    // carol refuses too: alice hears carol's answer
    let out = rig.feed(CAROL, &answer(&to_carol, 486, "c1", &format!("sip:carol@{CAROL}"), ""));
    response(&out, ALICE, 486);
}

#[test]
fn no_answer_forwarding_stops_the_first_devices_then_rings_the_target() {
    let mut rig = rig(
        routing(|r| {
            r.forward_no_answer = local("1003");
            r.no_answer_secs = 5;
        }),
        routing(|_| {}),
        routing(|_| {}),
    );
    let out = call(&mut rig, "bob", "fn-1");
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 180, "b1", &format!("sip:bob@{BOB}"), ""));
    rig.ms += 4000;
    assert!(rig.timeout().iter().all(|(to, _)| to.to_string() != CAROL));
    rig.ms += 1100;
    let out = rig.timeout();
    request(&out, BOB, "CANCEL");
    let to_carol = request(&out, CAROL, "INVITE");
    let cancel_at = out.iter().position(|(a, _)| a.to_string() == BOB).unwrap();
    let invite_at = out.iter().position(|(a, _)| a.to_string() == CAROL).unwrap();
    assert!(cancel_at < invite_at, "bob's device stops ringing before carol's starts");
    assert!(header(&to_carol, "History-Info").contains("cause=408"));
    assert!(header(&to_carol, "Diversion").contains("reason=no-answer"));
    // bob's device answers the CANCEL's race late: it is acknowledged and hung up, alice waits for carol
    let out = rig.feed(BOB, &answer(&to_bob, 200, "b1", &format!("sip:bob@{BOB}"), &bob_sdp()));
    request(&out, BOB, "BYE");
    assert!(out.iter().all(|(a, _)| a.to_string() != ALICE), "alice does not get bob's late answer");
    let carol_sdp = sdp("192.0.2.30", 6000, "0", "");
    let out = rig.feed(CAROL, &answer(&to_carol, 200, "c1", &format!("sip:carol@{CAROL}"), &carol_sdp));
    assert_eq!(media_address(&response(&out, ALICE, 200).body), (RELAY_IP.to_owned(), 30_000));
    // The record says who answered and where the call went on its way.
    let call = rig
        .events()
        .iter()
        .find_map(|e| match e {
            Event::CallStarted { call, .. } => Some(*call),
            _ => None,
        })
        .expect("the call started");
    rig.input(Input::EndCall { call });
    let cdr = rig.records().pop().expect("a record");
    assert_eq!((cdr.callee.as_str(), cdr.answered_by.as_deref()), ("bob", Some("carol")));
    assert_eq!(cdr.forwards, [("carol".to_owned(), "no-answer")]);
}

#[test]
fn offline_forwarding_and_a_forward_to_an_outside_uri() {
    let mut config = Rig::new().pbx.config().clone();
    config.guard.fraud.outside = vec!["198.51.100.7".parse().unwrap()];
    let mut rig = rig_with(
        Rig::with_config(config),
        routing(|_| {}),
        routing(|_| {}),
        routing(|r| r.forward_offline = Some(Target::parse("sip:desk@198.51.100.7:5099").unwrap())),
    );
    let out = call(&mut rig, "dave", "fo-1");
    let invite = request(&out, "198.51.100.7:5099", "INVITE");
    assert_eq!(invite.uri.to_string(), "sip:desk@198.51.100.7:5099");
    assert!(header(&invite, "History-Info").contains("cause=503"));
    assert!(header(&invite, "Diversion").contains("reason=unavailable"));
}

#[test]
fn a_forward_to_an_outside_destination_not_allowed_is_refused() {
    // The default allows no outside destination: a cracked account forwarding itself to a
    // premium number is the classic toll fraud.
    let mut rig = rig(
        routing(|r| r.forward_always = Some(Target::parse("sip:+1900555@198.51.100.7:5099").unwrap())),
        routing(|_| {}),
        routing(|_| {}),
    );
    let out = call(&mut rig, "bob", "fraud-1");
    assert_eq!(response(&out, ALICE, 403).reason.to_string(), "Destination Not Allowed");
    assert!(out.iter().all(|(to, _)| to.to_string() != "198.51.100.7:5099"), "nothing went out: {out:#?}");
    let refused = rig.events().into_iter().find_map(|e| match e {
        Event::FraudRefused { username, limit, destination, .. } => Some((username, limit, destination)),
        _ => None,
    });
    assert_eq!(
        refused,
        Some((
            "bob".to_owned(),
            sambung_pbx::guard::FraudLimit::Destination,
            Some("sip:+1900555@198.51.100.7:5099".to_owned())
        ))
    );
}

#[test]
fn a_forwarding_loop_is_stopped() {
    let mut rig = rig(
        routing(|r| r.forward_always = local("carol")),
        routing(|r| r.forward_always = local("dave")),
        routing(|r| r.forward_always = local("bob")),
    );
    let out = call(&mut rig, "bob", "loop-1");
    assert_eq!(response(&out, ALICE, 482).reason.to_string(), "Loop Detected");
    assert!(out.iter().all(|(a, _)| a.to_string() == ALICE), "nothing rang: {out:#?}");
    let cdr = rig.records().pop();
    assert_eq!(cdr.map(|c| c.cause_code), Some(482));
}

#[test]
fn do_not_disturb_without_voicemail_is_busy() {
    let mut rig = rig(routing(|r| r.dnd = true), routing(|_| {}), routing(|_| {}));
    let out = call(&mut rig, "bob", "dnd-1");
    response(&out, ALICE, 486);
    assert!(out.iter().all(|(a, _)| a.to_string() != BOB));
}

#[test]
fn feature_codes_change_the_settings_and_persist_them() {
    let mut rig = rig(routing(|_| {}), routing(|_| {}), routing(|_| {}));
    // Each code is answered by the confirmation application.
    let out = call(&mut rig, "*721003", "fc-1");
    response(&out, ALICE, 200);
    assert!(matches!(rig.app_requests().as_slice(), [AppRequest::Start { rate: 8000, .. }]));
    call(&mut rig, "*78", "fc-2");
    let changes: Vec<_> = rig
        .store_writes()
        .into_iter()
        .filter_map(|p| match p {
            StoreWrite::Routing { account_id, change } => Some((account_id, change)),
            _ => None,
        })
        .collect();
    assert_eq!(changes, [(1, RoutingChange::ForwardAlways(Some("carol".into()))), (1, RoutingChange::Dnd(true))]);
    let announced: Vec<_> = rig
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SettingsChanged { account_id: 1, change: SettingsChange::FeatureCode(change) } => Some(change),
            _ => None,
        })
        .collect();
    assert_eq!(announced, [RoutingChange::ForwardAlways(Some("carol".into())), RoutingChange::Dnd(true)]);
    // an unknown target changes nothing
    call(&mut rig, "*72999", "fc-3");
    call(&mut rig, "*73", "fc-4");
    call(&mut rig, "*79", "fc-5");
    let changes: Vec<_> = rig
        .store_writes()
        .into_iter()
        .filter_map(|p| match p {
            StoreWrite::Routing { change, .. } => Some(change),
            _ => None,
        })
        .collect();
    assert_eq!(changes, [RoutingChange::ForwardAlways(None), RoutingChange::Dnd(false)]);
    // and the table follows: alice's calls ring bob again
    let out = call(&mut rig, "bob", "fc-6");
    request(&out, BOB, "INVITE");
}

/// A SUBSCRIBE of bob's device to his own message-summary (answering the challenge).
fn subscribe(
    rig: &mut Rig,
    expires: u32,
    cseq: u32,
    to_tag: Option<&str>,
) -> Vec<(std::net::SocketAddr, sambung_sip::Message)> {
    let text = |auth: &str, cseq: u32| {
        let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "SUBSCRIBE sip:bob@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKsub{cseq}\r\nMax-Forwards: 70\r\n\
             To: <sip:bob@{REALM}>{tag}\r\nFrom: <sip:bob@{REALM}>;tag=bs1\r\nCall-ID: mwi-1@bob\r\nCSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:bob@{BOB}>\r\nEvent: message-summary\r\nAccept: application/simple-message-summary\r\n\
             Expires: {expires}\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let challenge = response(&rig.feed(BOB, &text("", cseq)), BOB, 407);
    let c = digest::Challenge::parse(challenge.headers.get(HeaderName::ProxyAuthenticate).unwrap()).unwrap();
    let creds = digest::respond(&c, "SUBSCRIBE", &format!("sip:bob@{REALM}"), "bob", "bob-secret-1", "cafe02", 1);
    rig.feed(BOB, &text(&format!("Proxy-Authorization: {creds}\r\n"), cseq + 1))
}

#[test]
fn message_waiting_notifies_at_once_on_change_and_at_the_end() {
    let mut rig = rig(routing(|_| {}), routing(|_| {}), routing(|_| {}));
    let out = subscribe(&mut rig, 600, 1, None);
    let ok = response(&out, BOB, 200);
    assert_eq!(ok.headers.get(HeaderName::Expires).map(|v| v.to_string()), Some("600".into()));
    let to_tag = ok.to().unwrap().tag().unwrap().to_owned();
    let notify = request(&out, BOB, "NOTIFY");
    assert_eq!(header(&notify, "Event"), "message-summary");
    assert!(header(&notify, "Subscription-State").starts_with("active;expires="));
    let body = String::from_utf8_lossy(&notify.body).to_string();
    assert!(body.contains("Messages-Waiting: no") && body.contains("Voice-Message: 0/0 (0/0)"), "{body}");
    assert!(body.contains(&format!("Message-Account: sip:bob@{REALM}")), "{body}");

    // a message is left: a NOTIFY with the new counts
    let sent = rig.input(Input::Mailboxes(vec![(2, MailboxCounts { new: 2, saved: 1 })]));
    let notify = request(&sent, BOB, "NOTIFY");
    let body = String::from_utf8_lossy(&notify.body).to_string();
    assert!(body.contains("Messages-Waiting: yes") && body.contains("Voice-Message: 2/1 (0/0)"), "{body}");
    // another account's change tells bob nothing
    assert!(rig.input(Input::Mailboxes(vec![(3, MailboxCounts { new: 5, saved: 0 })])).is_empty());

    // the subscription runs out: a last NOTIFY, terminated
    rig.ms += 601_000;
    let sent = rig.timeout();
    let last = request(&sent, BOB, "NOTIFY");
    assert!(header(&last, "Subscription-State").starts_with("terminated"), "{}", header(&last, "Subscription-State"));
    let sent = rig.input(Input::Mailboxes(vec![(2, MailboxCounts { new: 3, saved: 1 })]));
    assert!(sent.is_empty(), "no NOTIFY after the end");
    let _ = to_tag;
}

#[test]
fn message_waiting_is_only_for_ones_own_mailbox_and_unknown_packages_are_refused() {
    let mut rig = rig(routing(|_| {}), routing(|_| {}), routing(|_| {}));
    let out = subscribe(&mut rig, 30, 1, None);
    assert_eq!(response(&out, BOB, 423).headers.get(HeaderName::MinExpires).map(|v| v.to_string()), Some("60".into()));
    let presence = |auth: &str| {
        format!(
            "SUBSCRIBE sip:alice@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKp{}\r\nMax-Forwards: 70\r\n\
             To: <sip:alice@{REALM}>\r\nFrom: <sip:bob@{REALM}>;tag=bs2\r\nCall-ID: mwi-{}@bob\r\nCSeq: {} SUBSCRIBE\r\n\
             Contact: <sip:bob@{BOB}>\r\nEvent: message-summary\r\n{auth}Content-Length: 0\r\n\r\n",
            auth.len(),
            auth.len(),
            if auth.is_empty() { 1 } else { 2 }
        )
    };
    let challenge = response(&rig.feed(BOB, &presence("")), BOB, 407);
    let c = digest::Challenge::parse(challenge.headers.get(HeaderName::ProxyAuthenticate).unwrap()).unwrap();
    let creds = digest::respond(&c, "SUBSCRIBE", &format!("sip:alice@{REALM}"), "bob", "bob-secret-1", "cafe03", 1);
    let out = rig.feed(BOB, &presence(&format!("Proxy-Authorization: {creds}\r\n")));
    response(&out, BOB, 403);
    let creds = digest::respond(&c, "SUBSCRIBE", &format!("sip:alice@{REALM}"), "bob", "bob-secret-1", "cafe04", 2);
    let other_package = presence(&format!("Proxy-Authorization: {creds}\r\n"))
        .replace("message-summary", "conference")
        .replace("mwi-", "conf-");
    let out = rig.feed(BOB, &other_package.replace("z9hG4bKp", "z9hG4bKq"));
    let refused = response(&out, BOB, 489);
    assert_eq!(
        refused.headers.get(HeaderName::AllowEvents).map(|v| v.to_string()).as_deref(),
        Some("message-summary, presence, dialog")
    );
}
