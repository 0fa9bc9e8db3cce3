//! Registration and calls through the server with SIPp (Debian `sip-tester`) as every phone, over
//! UDP on 127.0.0.1, against the built `sambung` with accounts made by `sambung user add`:
//!
//! - REGISTER -> 401 -> REGISTER with digest -> 200, and a wrong password gets 401 again;
//! - a call with RTP: bob (SIPp) registers and answers; alice (SIPp) INVITEs, is challenged with
//!   407, answers it, gets 200, ACKs, streams PCMU for 3 s and hangs up. Both SDPs must name the
//!   server's relay, and the packets bob's RTP socket receives must come from the relay's port
//!   and carry alice's audio unchanged; bob's socket talks back through the relay too;
//! - cancel (180, CANCEL, 200, 487, ACK); every device of the callee rings and the ones that did
//!   not answer are cancelled; all devices busy (486); unknown user (404);
//!   a user with no registered device (480).
//!
//! The scenarios are in tests/sipp/; common/clients.rs runs them.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::clients::{
    RtpPeer, Sipp, SippResult, User, server_config, server_dir_with_users, server_rtp_range, set_call_settings, tail,
    tone_ulaw,
};
use common::{Server, free_port};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User { name: "bob", password: "Builder-Can-42", extension: Some("1002") };

/// A server with alice and bob (voicemail off), its relay in a range of its own; returns the
/// range too.
fn server() -> (Server, (u16, u16)) {
    let rtp = server_rtp_range();
    let extra = server_config(rtp);
    let dir = server_dir_with_users(&extra, &[ALICE, BOB]);
    // These calls check what the devices answer: no voicemail stands in for them.
    for user in [ALICE, BOB] {
        set_call_settings(&dir, user.name, |s| s.voicemail = false);
    }
    (Server::start_owning(dir, &extra), rtp)
}

/// Registers `user` from SIPp on `port` (REGISTER, 401, REGISTER with digest, 200) and checks
/// the challenge and the binding in the answer.
fn register(server: &Server, user: &User<'_>, port: u16) -> SippResult {
    let run = Sipp::new("register.xml", port).to(server).service(user.name).auth(user.name, user.password).run();
    run.assert_success(&format!("REGISTER as {}", user.name), server);
    let received = run.received();
    let challenge = received.iter().find(|m| m.status() == Some(401)).expect("a 401");
    let www = challenge.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Digest ") && www.contains("nonce=") && www.contains("realm="),
        "the 401 must carry a digest challenge, got WWW-Authenticate: {www:?}\n{}",
        run.describe()
    );
    let ok = run.final_response("REGISTER").expect("a final response");
    assert_eq!(ok.status(), Some(200), "{}", run.describe());
    let contacts = ok.headers("Contact").join(", ");
    assert!(
        contacts.contains(&format!("127.0.0.1:{port}")),
        "the 200 to REGISTER must list the binding 127.0.0.1:{port}; Contact: {contacts:?}\n{}",
        run.describe()
    );
    run
}

/// A caller's SIPp run: `scenario` calling `callee` as alice.
fn call(server: &Server, scenario: &str, callee: &str) -> Sipp {
    Sipp::new(scenario, free_port())
        .to(server)
        .service(callee)
        .var("caller", ALICE.name)
        .auth(ALICE.name, ALICE.password)
}

/// Asserts the caller's flow began INVITE -> 407 (with Proxy-Authenticate) and that the second
/// INVITE carried Proxy-Authorization.
fn assert_challenged(run: &SippResult) {
    let received = run.received();
    let challenge = received.iter().find(|m| m.status() == Some(407));
    let challenge = challenge.unwrap_or_else(|| panic!("the INVITE must be challenged with 407\n{}", run.describe()));
    let header = challenge.header("Proxy-Authenticate").unwrap_or_default();
    assert!(header.starts_with("Digest "), "407 without a digest Proxy-Authenticate: {header:?}\n{}", run.describe());
}

/// The final response the caller got to its INVITE.
fn final_status(run: &SippResult) -> Option<u16> {
    run.final_response("INVITE").and_then(|m| m.status())
}

#[test]
fn register_with_digest_auth() {
    let (server, _) = server();
    register(&server, &ALICE, free_port());
}

#[test]
fn register_with_wrong_password_is_challenged_again() {
    let (server, _) = server();
    let run = Sipp::new("register_wrong_password.xml", free_port())
        .to(&server)
        .service(ALICE.name)
        .auth(ALICE.name, "not-the-password")
        .run();
    run.assert_success("REGISTER with a wrong password", &server);
    assert_eq!(
        run.statuses().into_iter().filter(|&s| s >= 200).collect::<Vec<_>>(),
        vec![401, 401],
        "a wrong password must get 401 again, never 200\n{}",
        run.describe()
    );
}

/// alice calls bob; RTP flows both ways through the relay for 3 s; alice hangs up.
#[test]
fn call_with_rtp_through_the_relay() {
    let (server, rtp) = server();
    let bob_port = free_port();
    register(&server, &BOB, bob_port);

    // bob's phone: SIPp answers, the test's socket is its media.
    let bob_media = RtpPeer::bind();
    let bob =
        Sipp::new("uas_answer.xml", bob_port).var("rtp_port", bob_media.port).timeout(Duration::from_secs(25)).spawn();

    // alice streams a rising tone in PCMU, 20 ms per packet.
    let caller = call(&server, "uac_call.xml", BOB.name);
    let audio = tone_ulaw(0, 8000 * 5);
    std::fs::write(caller.dir.join("speech.ulaw"), &audio).unwrap();
    let mut alice = caller.spawn();

    // As soon as bob has the offer (the relay's address), his phone talks too.
    let mut offer: Option<SocketAddr> = None;
    common::clients::poll_until(Duration::from_secs(25), || {
        if offer.is_none()
            && let Some(line) = bob.logs().lines().find_map(|l| l.find("offer c=").map(|at| l[at..].to_owned()))
        {
            // "offer c=IN IP4 ADDRESS m=audio PORT"
            let words: Vec<&str> = line.split_whitespace().collect();
            if let (Some(address), Some(port)) = (words.get(3), words.last()) {
                offer = format!("{address}:{port}").parse().ok();
                if let Some(offer) = offer {
                    bob_media.send_to(offer);
                }
            }
        }
        alice.exited()
    });
    let alice = alice.wait();
    let bob = bob.wait();
    alice.assert_success("alice's call (uac_call.xml)", &server);
    bob.assert_success("bob answering (uas_answer.xml)", &server);
    assert_challenged(&alice);

    // The offer bob got and the answer alice got both name the relay: 127.0.0.1 (the server's
    // [media] address), a port in its range, never the other phone's own address.
    let alice_offer = alice.sent().into_iter().find(|m| m.method() == "INVITE").and_then(|m| m.sdp_audio()).unwrap();
    let invite_to_bob = bob.received().into_iter().find(|m| m.method() == "INVITE").expect("bob got an INVITE");
    let (offer_address, offer_port) = invite_to_bob.sdp_audio().expect("the INVITE to bob has an SDP offer");
    let answer = alice.final_response("INVITE").expect("alice got a 200");
    let (answer_address, answer_port) = answer.sdp_audio().expect("the 200 to alice has an SDP answer");
    let in_range = |port: u16| (rtp.0..=rtp.1).contains(&port);
    assert!(
        offer_address == "127.0.0.1" && in_range(offer_port) && offer_port != alice_offer.1,
        "the offer to bob must name the relay (127.0.0.1, a port in {rtp:?}), not alice ({alice_offer:?}); got \
         {offer_address}:{offer_port}\n{}",
        invite_to_bob.text
    );
    assert!(
        answer_address == "127.0.0.1" && in_range(answer_port) && answer_port != bob_media.port,
        "the answer to alice must name the relay (127.0.0.1, a port in {rtp:?}), not bob's 127.0.0.1:{}; got \
         {answer_address}:{answer_port}\n{}",
        bob_media.port,
        answer.text
    );
    assert!(offer.is_some(), "bob's scenario never logged the offer:\n{}", bob.logs);

    // What bob's socket received: alice's packets, relayed from the port the offer named
    // (symmetric RTP), payload untouched.
    let packets = bob_media.received();
    let chunks: HashSet<&[u8]> = audio.chunks(160).collect();
    let from_alice: Vec<_> = packets.iter().filter(|p| p.payload_type == 0 && p.payload.len() == 160).collect();
    let sources: HashSet<SocketAddr> = packets.iter().map(|p| p.from).collect();
    let intact = from_alice.iter().filter(|p| chunks.contains(p.payload.as_slice())).count();
    assert!(
        from_alice.len() >= 100,
        "bob's media socket got {} PCMU packets of alice's ~150 (3 s at 50/s) through the relay (all packets: {}, from \
         {sources:?}); server log:\n{}",
        from_alice.len(),
        packets.len(),
        tail(&server.log(), 8000)
    );
    assert_eq!(
        sources,
        HashSet::from([SocketAddr::from(([127, 0, 0, 1], offer_port))]),
        "RTP to bob must come from the relay port the offer named (127.0.0.1:{offer_port})"
    );
    assert_eq!(intact, from_alice.len(), "every relayed payload must be one of alice's 20 ms frames, unchanged");
    assert!(bob_media.sent() >= 50, "bob's phone sent only {} packets to the relay", bob_media.sent());
}

/// alice gives up while bob's phone rings: 200 for the CANCEL, 487 for the INVITE, and bob's
/// phone is cancelled too.
#[test]
fn cancel_while_ringing() {
    let (server, _) = server();
    let bob_port = free_port();
    register(&server, &BOB, bob_port);
    let bob = Sipp::new("uas_ring.xml", bob_port).spawn();
    let alice = call(&server, "uac_cancel.xml", BOB.name).run();
    let bob = bob.wait();
    alice.assert_success("alice cancelling (uac_cancel.xml)", &server);
    bob.assert_success("bob ringing until cancelled (uas_ring.xml)", &server);
    assert_challenged(&alice);
    let finals: Vec<(u16, String)> =
        alice.received().iter().filter_map(|m| m.status().filter(|&s| s >= 200).map(|s| (s, m.method()))).collect();
    assert_eq!(
        finals,
        vec![(407, "INVITE".to_owned()), (200, "CANCEL".to_owned()), (487, "INVITE".to_owned())],
        "{}",
        alice.describe()
    );
}

/// Both of bob's phones answer 486 Busy Here: alice gets 486.
#[test]
fn all_devices_busy_gives_486() {
    let (server, _) = server();
    let (port1, port2) = (free_port(), free_port());
    register(&server, &BOB, port1);
    register(&server, &BOB, port2);
    let phone1 = Sipp::new("uas_busy.xml", port1).spawn();
    let phone2 = Sipp::new("uas_busy.xml", port2).spawn();
    let alice = call(&server, "uac_rejected.xml", BOB.name).run();
    let (phone1, phone2) = (phone1.wait(), phone2.wait());
    alice.assert_success("alice calling busy bob (uac_rejected.xml)", &server);
    phone1.assert_success("bob's first phone busy (uas_busy.xml)", &server);
    phone2.assert_success("bob's second phone busy (uas_busy.xml)", &server);
    assert_challenged(&alice);
    assert_eq!(final_status(&alice), Some(486), "{}", alice.describe());
}

/// bob has two phones: both ring; the one that answers gets the call, the other is cancelled
/// (200 for the CANCEL, 487 for its INVITE).
#[test]
fn call_rings_every_device_and_cancels_the_others() {
    let (server, _) = server();
    let (ringing_port, answering_port) = (free_port(), free_port());
    register(&server, &BOB, ringing_port);
    register(&server, &BOB, answering_port);
    let ringing = Sipp::new("uas_ring.xml", ringing_port).spawn();
    let media = RtpPeer::bind();
    let answering = Sipp::new("uas_answer.xml", answering_port).var("rtp_port", media.port).spawn();
    let caller = call(&server, "uac_call.xml", BOB.name);
    std::fs::write(caller.dir.join("speech.ulaw"), tone_ulaw(0, 8000 * 5)).unwrap();
    let alice = caller.run();
    let (ringing, answering) = (ringing.wait(), answering.wait());
    alice.assert_success("alice's call (uac_call.xml)", &server);
    answering.assert_success("bob's phone that answers (uas_answer.xml)", &server);
    ringing.assert_success("bob's phone that only rings and is cancelled (uas_ring.xml)", &server);
    let cancelled: Vec<String> = ringing.received().iter().map(|m| m.start_line().to_owned()).collect();
    assert!(
        cancelled.iter().any(|l| l.starts_with("CANCEL ")) && cancelled.iter().any(|l| l.starts_with("ACK ")),
        "the phone that did not answer must get CANCEL, then ACK for its 487; it got {cancelled:?}"
    );
}

/// A user part that is no account: 404.
#[test]
fn unknown_user_gives_404() {
    let (server, _) = server();
    let alice = call(&server, "uac_rejected.xml", "nobody").run();
    alice.assert_success("alice calling sip:nobody (uac_rejected.xml)", &server);
    assert_challenged(&alice);
    assert_eq!(final_status(&alice), Some(404), "{}", alice.describe());
}

/// bob exists but no device of his is registered: 480 Temporarily Unavailable.
#[test]
fn user_with_no_device_gives_480() {
    let (server, _) = server();
    let alice = call(&server, "uac_rejected.xml", BOB.name).run();
    alice.assert_success("alice calling unregistered bob (uac_rejected.xml)", &server);
    assert_challenged(&alice);
    assert_eq!(final_status(&alice), Some(480), "{}", alice.describe());
}

/// bob's extension routes like his name.
#[test]
fn extension_reaches_the_user() {
    let (server, _) = server();
    let bob_port = free_port();
    register(&server, &BOB, bob_port);
    let bob = Sipp::new("uas_busy.xml", bob_port).spawn();
    let alice = call(&server, "uac_rejected.xml", BOB.extension.unwrap()).run();
    let bob = bob.wait();
    alice.assert_success("alice calling extension 1002 (uac_rejected.xml)", &server);
    bob.assert_success("bob busy (uas_busy.xml)", &server);
    assert_eq!(final_status(&alice), Some(486), "{}", alice.describe());
}
