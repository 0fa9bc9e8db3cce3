//! Call forwarding in each of its four kinds, and a forwarding loop, with SIPp as every phone
//! (UDP on 127.0.0.1) against the built `sambung`; settings are stored before the server starts,
//! as `sambung settings set` stores them. Voicemail is off for these accounts, so every
//! outcome is a device's.
//!
//! - always: bob forwards everything to carol's extension; carol's phone rings, never bob's;
//! - busy: bob's phone answers 486, carol's rings and answers;
//! - no answer: bob's phone rings for 3 s, is cancelled, then carol's rings and answers;
//! - offline: dave has no device; his calls go to an outside SIP URI (a SIPp phone that never
//!   registered, on its own port);
//! - a loop (bob -> carol -> bob) ends with 482 Loop Detected, nothing ringing.
//!
//! The forwarded INVITE must carry History-Info (RFC 7044) and Diversion (RFC 5806) naming bob
//! and the cause, and the caller's identity in From.

mod common;

use std::time::Duration;

use common::clients::{
    RtpPeer, Sipp, SippProcess, SippResult, User, server_config, server_dir_with_users, server_rtp_range,
    set_call_settings, tone_ulaw,
};
use common::{Server, free_port};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User { name: "bob", password: "Builder-Can-42", extension: Some("1002") };
const CAROL: User<'static> = User { name: "carol", password: "Singing-Xmas-Songs-3", extension: Some("1003") };
const DAVE: User<'static> = User { name: "dave", password: "Deep-Sea-Diver-9", extension: Some("1004") };

/// A server whose accounts have voicemail off, with `settings` applied before it starts.
fn server(settings: impl FnOnce(&std::path::Path)) -> Server {
    // Forwarding to an outside URI is toll fraud's way out: only allowed destinations are
    // reached, here the outside SIPp phone's address.
    let extra = format!("{}[fraud]\noutside_destinations = [\"127.0.0.1\"]\n", server_config(server_rtp_range()));
    let dir = server_dir_with_users(&extra, &[ALICE, BOB, CAROL, DAVE]);
    for user in [ALICE, BOB, CAROL, DAVE] {
        set_call_settings(&dir, user.name, |s| s.voicemail = false);
    }
    settings(&dir);
    Server::start_owning(dir, &extra)
}

fn register(server: &Server, user: &User<'_>, port: u16) {
    let run = Sipp::new("register.xml", port).to(server).service(user.name).auth(user.name, user.password).run();
    run.assert_success(&format!("REGISTER as {}", user.name), server);
}

/// A phone answering with RTP on `port` (registered as `user` when given).
fn answering_phone(server: &Server, user: Option<&User<'_>>, port: u16) -> (SippProcess, RtpPeer) {
    if let Some(user) = user {
        register(server, user, port);
    }
    let media = RtpPeer::bind();
    let phone = Sipp::new("uas_answer.xml", port).var("rtp_port", media.port).timeout(Duration::from_secs(40)).spawn();
    (phone, media)
}

/// alice calls `callee` with `scenario` (uac_call.xml streams PCMU and hangs up).
fn alice_calls(server: &Server, scenario: &str, callee: &str) -> SippResult {
    let caller = Sipp::new(scenario, free_port())
        .to(server)
        .service(callee)
        .var("caller", ALICE.name)
        .auth(ALICE.name, ALICE.password)
        .timeout(Duration::from_secs(40));
    std::fs::write(caller.dir.join("speech.ulaw"), tone_ulaw(0, 8000 * 5)).unwrap();
    caller.run()
}

/// Checks the forwarded INVITE `phone` got: History-Info and Diversion naming bob (or `from`)
/// with `cause` and `reason`, alice in From.
fn assert_forwarded(phone: &SippResult, from: &str, cause: u16, reason: &str) {
    let invite = phone.received().into_iter().find(|m| m.method() == "INVITE").expect("the phone got an INVITE");
    let history = invite.headers("History-Info").join(", ");
    assert!(
        history.contains(&format!("<sip:{from}@"))
            && history.contains(&format!("cause={cause}"))
            && history.contains("index=1.1"),
        "History-Info must name {from} and cause={cause}:\n{}",
        invite.text
    );
    let diversion = invite.headers("Diversion").join(", ");
    assert!(
        diversion.contains(&format!("<sip:{from}@")) && diversion.contains(&format!("reason={reason}")),
        "Diversion must name {from} with reason={reason}:\n{}",
        invite.text
    );
    let from_header = invite.header("From").unwrap_or_default();
    assert!(from_header.contains("sip:alice@"), "the caller's identity must stay in From: {from_header}");
}

#[test]
fn forward_always_rings_only_the_target() {
    let server = server(|dir| set_call_settings(dir, "bob", |s| s.forward_always = Some("1003".into())));
    let bob_port = free_port();
    register(&server, &BOB, bob_port);
    let (carol, _media) = answering_phone(&server, Some(&CAROL), free_port());
    let alice = alice_calls(&server, "uac_call.xml", BOB.name);
    let carol = carol.wait();
    alice.assert_success("alice calling bob, forwarded to carol", &server);
    carol.assert_success("carol answering the forwarded call", &server);
    assert_forwarded(&carol, "bob", 302, "unconditional");
    assert!(server.log().contains("forwarded"), "the server logs the forward");
}

#[test]
fn forward_when_busy() {
    let server = server(|dir| set_call_settings(dir, "bob", |s| s.forward_busy = Some("carol".into())));
    let bob_port = free_port();
    register(&server, &BOB, bob_port);
    let bob = Sipp::new("uas_busy.xml", bob_port).spawn();
    let (carol, _media) = answering_phone(&server, Some(&CAROL), free_port());
    let alice = alice_calls(&server, "uac_call.xml", BOB.name);
    let (bob, carol) = (bob.wait(), carol.wait());
    alice.assert_success("alice calling busy bob", &server);
    bob.assert_success("bob's phone busy", &server);
    carol.assert_success("carol answering the forwarded call", &server);
    assert_forwarded(&carol, "bob", 486, "user-busy");
}

#[test]
fn forward_after_no_answer_stops_bobs_phone_first() {
    let server = server(|dir| {
        set_call_settings(dir, "bob", |s| {
            s.forward_no_answer = Some("carol".into());
            s.no_answer_secs = 5;
        })
    });
    let bob_port = free_port();
    register(&server, &BOB, bob_port);
    let bob = Sipp::new("uas_ring.xml", bob_port).timeout(Duration::from_secs(40)).spawn();
    let (carol, _media) = answering_phone(&server, Some(&CAROL), free_port());
    let alice = alice_calls(&server, "uac_call.xml", BOB.name);
    let (bob, carol) = (bob.wait(), carol.wait());
    alice.assert_success("alice calling bob, who does not answer", &server);
    bob.assert_success("bob's phone rings until cancelled", &server);
    carol.assert_success("carol answering the forwarded call", &server);
    assert_forwarded(&carol, "bob", 408, "no-answer");
    assert!(bob.received().iter().any(|m| m.method() == "CANCEL"), "bob's phone was cancelled\n{}", bob.describe());
}

#[test]
fn forward_when_offline_to_an_outside_uri() {
    let desk_port = free_port();
    let server = server(|dir| {
        set_call_settings(dir, "dave", |s| s.forward_offline = Some(format!("sip:desk@127.0.0.1:{desk_port}")))
    });
    let (desk, _media) = answering_phone(&server, None, desk_port);
    let alice = alice_calls(&server, "uac_call.xml", DAVE.name);
    let desk = desk.wait();
    alice.assert_success("alice calling dave, who has no device", &server);
    desk.assert_success("the outside phone answering", &server);
    assert_forwarded(&desk, "dave", 503, "unavailable");
    let invite = desk.received().into_iter().find(|m| m.method() == "INVITE").unwrap();
    assert!(invite.start_line().starts_with(&format!("INVITE sip:desk@127.0.0.1:{desk_port}")), "{}", invite.text);
}

#[test]
fn a_forwarding_loop_is_stopped_with_482() {
    let server = server(|dir| {
        set_call_settings(dir, "bob", |s| s.forward_always = Some("carol".into()));
        set_call_settings(dir, "carol", |s| s.forward_always = Some("sip:bob@127.0.0.1".into()));
    });
    let alice = alice_calls(&server, "uac_rejected.xml", BOB.name);
    alice.assert_success("alice calling into a forwarding loop", &server);
    let status = alice.final_response("INVITE").and_then(|m| m.status());
    assert_eq!(status, Some(482), "{}", alice.describe());
    assert!(server.log().contains("forwarding loop stopped"), "the server logs the loop");
}
