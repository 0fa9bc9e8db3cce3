//! Ring groups through call control, with the phones' messages written out: all members at
//! once, one at a time in order (a member's turn ends, a busy member passes it on), round robin
//! across calls, members in do-not-disturb or in a call passed over, and each fallback
//! (voicemail, another group, failure).

mod common;

use common::*;
use sambung_pbx::groups::{Fallback, RingGroup, RingGroups, Strategy};
use sambung_pbx::presence::{CallPresence, Presence};
use sambung_pbx::registrar::{Accounts, Routing, Target};
use sambung_pbx::{App, AppRequest, Event, Input, PbxConfig};
use sambung_sip::{Message, Request};

const CAROL: &str = "192.0.2.30:5080";
const DAVE: &str = "192.0.2.40:5090";

fn rig(groups: Vec<RingGroup>, dave: Routing) -> Rig {
    let mut rig = Rig::with_config(PbxConfig {
        domains: vec![REALM.into()],
        realm: REALM.into(),
        media_address: Some(RELAY_IP.parse().unwrap()),
        groups: RingGroups { groups },
        ..PbxConfig::default()
    });
    rig.input(Input::Accounts(Accounts::new(vec![
        account(1, "alice", Routing::default()),
        account(2, "bob", Routing::default()),
        account(3, "carol", Routing::default()),
        account(4, "dave", dave),
    ])));
    rig.input(Input::Bindings(vec![binding(3, "carol", CAROL), binding(4, "dave", DAVE)]));
    rig.take_outputs();
    rig
}

fn sales(strategy: Strategy) -> RingGroup {
    let mut group = RingGroup::new("sales", &["bob", "carol", "dave"]);
    group.extension = Some("600".into());
    group.strategy = strategy;
    group.ring_secs = 10;
    group.timeout_secs = 25;
    group
}

fn invites(out: &[(std::net::SocketAddr, Message)]) -> Vec<String> {
    out.iter()
        .filter_map(|(to, m)| match m {
            Message::Request(r) if r.method.as_str() == "INVITE" => Some(to.to_string()),
            _ => None,
        })
        .collect()
}

fn cancels(out: &[(std::net::SocketAddr, Message)]) -> Vec<String> {
    out.iter()
        .filter_map(|(to, m)| match m {
            Message::Request(r) if r.method.as_str() == "CANCEL" => Some(to.to_string()),
            _ => None,
        })
        .collect()
}

fn answer_ok(rig: &mut Rig, invite: &Request, at: &str, tag: &str) -> Vec<(std::net::SocketAddr, Message)> {
    rig.feed(at, &answer(invite, 200, tag, &format!("sip:x@{at}"), &bob_sdp()))
}

#[test]
fn all_members_ring_at_once_and_the_first_to_answer_takes_the_call() {
    let mut rig = rig(vec![sales(Strategy::Simultaneous)], Routing::default());
    let out = alice_calls(&mut rig, &format!("sip:600@{REALM}"), "all-1");
    assert_eq!(invites(&out), [BOB, CAROL, DAVE]);
    // bob and dave ring (a CANCEL waits for a provisional answer, RFC 3261 §9.1).
    for at in [BOB, DAVE] {
        let invite = request(&out, at, "INVITE");
        rig.feed(at, &answer(&invite, 180, "r", &format!("sip:x@{at}"), ""));
    }
    let to_carol = request(&out, CAROL, "INVITE");
    let out = answer_ok(&mut rig, &to_carol, CAROL, "c1");
    response(&out, ALICE, 200);
    let mut cancelled = cancels(&out);
    cancelled.sort();
    assert_eq!(cancelled, [BOB, DAVE]);
    let events = rig.events();
    assert!(events.iter().any(|e| matches!(e, Event::CallAnswered { account_id: Some(3), .. })), "{events:?}");
}

#[test]
fn members_ring_in_turn_a_busy_one_passes_it_on_and_voicemail_takes_the_rest() {
    let mut group = sales(Strategy::Sequential);
    group.fallback = Fallback::Voicemail("bob".into());
    let mut rig = rig(vec![group], Routing::default());
    let out = alice_calls(&mut rig, &format!("sip:sales@{REALM}"), "seq-1");
    assert_eq!(invites(&out), [BOB]);
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 180, "b1", "sip:bob@x", ""));
    // bob's 10 s are over: carol rings.
    rig.ms += 10_000;
    let out = rig.timeout();
    assert_eq!(cancels(&out), [BOB]);
    assert_eq!(invites(&out), [CAROL]);
    // carol is busy: dave at once.
    let to_carol = request(&out, CAROL, "INVITE");
    let out = rig.feed(CAROL, &answer(&to_carol, 486, "c1", "sip:carol@x", ""));
    assert_eq!(invites(&out), [DAVE]);
    let to_dave = request(&out, DAVE, "INVITE");
    rig.feed(DAVE, &answer(&to_dave, 180, "d1", "sip:dave@x", ""));
    // dave's turn ends at 20 s and nobody is left: bob's voicemail answers.
    rig.ms += 10_000;
    let out = rig.timeout();
    assert!(cancels(&out).contains(&DAVE.to_owned()), "{out:#?}");
    let starts = rig.app_requests();
    assert!(
        starts.iter().any(|r| matches!(r, AppRequest::Start { app: App::Voicemail { account_id: 2, .. }, .. })),
        "{starts:?}"
    );
}

#[test]
fn round_robin_starts_each_call_after_the_last_one() {
    let mut rig = rig(vec![sales(Strategy::RoundRobin)], Routing::default());
    let firsts: Vec<String> = (0..4)
        .map(|i| {
            let out = alice_calls(&mut rig, &format!("sip:600@{REALM}"), &format!("rr-{i}"));
            let first = invites(&out);
            assert_eq!(first.len(), 1);
            // Given up: the call ends before the next one.
            let to = request(&out, &first[0], "INVITE");
            rig.feed(&first[0], &answer(&to, 603, "x", "sip:x@x", ""));
            first[0].clone()
        })
        .collect();
    assert_eq!(firsts, [BOB, CAROL, DAVE, BOB]);
}

#[test]
fn members_in_do_not_disturb_or_in_a_call_are_passed_over() {
    let dnd = Routing { dnd: true, ..Routing::default() };
    let mut rig = rig(vec![sales(Strategy::Simultaneous)], dnd);
    let in_call =
        Presence { devices: 1, dnd: false, calls: vec![CallPresence { call: 99, initiator: false, answered: true }] };
    rig.input(Input::Presence(vec![(3, in_call)]));
    let out = alice_calls(&mut rig, &format!("sip:600@{REALM}"), "skip-1");
    assert_eq!(invites(&out), [BOB]);
}

#[test]
fn a_group_falls_back_to_another_group_then_fails() {
    let mut first = RingGroup::new("sales", &["bob"]);
    first.strategy = Strategy::Sequential;
    first.ring_secs = 5;
    first.timeout_secs = 5;
    first.fallback = Fallback::Forward(Target::Local("support".into()));
    let mut support = RingGroup::new("support", &["carol", "dave"]);
    support.timeout_secs = 8;
    let mut rig = rig(vec![first, support], Routing::default());
    let out = alice_calls(&mut rig, &format!("sip:sales@{REALM}"), "fb-1");
    assert_eq!(invites(&out), [BOB]);
    let to_bob = request(&out, BOB, "INVITE");
    rig.feed(BOB, &answer(&to_bob, 180, "b1", "sip:bob@x", ""));
    rig.ms += 5_000;
    let out = rig.timeout();
    let mut rung = invites(&out);
    rung.sort();
    assert_eq!(rung, [CAROL, DAVE]);
    let to_carol = request(&out, CAROL, "INVITE");
    assert!(to_carol.headers.get(sambung_sip::HeaderName::from("Diversion")).is_some(), "{to_carol:?}");
    // support's 8 s end: nobody left, the caller hears 480.
    rig.ms += 8_000;
    let out = rig.timeout();
    response(&out, ALICE, 480);
}

#[test]
fn a_number_of_the_service_can_ring_a_group() {
    let mut rig = Rig::with_config(PbxConfig {
        domains: vec![REALM.into()],
        realm: REALM.into(),
        media_address: Some(RELAY_IP.parse().unwrap()),
        groups: RingGroups { groups: vec![sales(Strategy::Simultaneous)] },
        trunks: sambung_pbx::trunks::Trunks {
            plan: sambung_pbx::trunks::DialPlan { country_code: "44".into(), ..Default::default() },
            ..Default::default()
        },
        ..PbxConfig::default()
    });
    let accounts = Accounts::new(vec![
        account(1, "alice", Routing::default()),
        account(2, "bob", Routing::default()),
        account(3, "carol", Routing::default()),
        account(4, "dave", Routing::default()),
    ])
    .with_group_numbers([("+442079460600".to_owned(), "sales".to_owned())]);
    rig.input(Input::Accounts(accounts));
    rig.input(Input::Bindings(vec![binding(3, "carol", CAROL), binding(4, "dave", DAVE)]));
    let out = alice_calls(&mut rig, &format!("sip:02079460600@{REALM}"), "num-1");
    assert_eq!(invites(&out), [BOB, CAROL, DAVE]);
}
