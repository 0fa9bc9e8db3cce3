//! A call queue with real phones (SIPp): two agents, bob and carol, answer queue calls; the
//! queue picks the agent idle the longest (carol, idle since the start, over bob, who just
//! finished a call, though bob is listed first); a third caller, while both agents talk, hears
//! its position announced over the queue's audio and is connected to the first agent free after
//! the wrap-up. The queue's figures are read through the API.

mod common;

use std::time::{Duration, Instant};

use common::clients::*;
use common::{Server, free_port};

const PASSWORD: [&str; 5] = ["amber-fox-42", "brown-owl-42", "coral-elk-42", "early-bat-42", "fresh-cod-42"];

fn users() -> [User<'static>; 5] {
    [
        User::new("alice", PASSWORD[0]),
        User::new("bob", PASSWORD[1]),
        User::new("carol", PASSWORD[2]),
        User::new("erin", PASSWORD[3]),
        User::new("frank", PASSWORD[4]),
    ]
}

/// An agent's phone: registered, then answering `calls` calls.
fn agent(server: &Server, user: &User<'_>, calls: u32) -> (SippProcess, RtpPeer) {
    let port = free_port();
    let run = Sipp::new("register.xml", port).to(server).service(user.name).auth(user.name, user.password).run();
    run.assert_success(&format!("REGISTER as {}", user.name), server);
    let media = RtpPeer::bind();
    let sipp = Sipp::new("uas_answer.xml", port)
        .var("rtp_port", media.port)
        .calls(calls)
        .timeout(Duration::from_secs(60))
        .spawn();
    (sipp, media)
}

/// `caller` calls the queue and stays `hold` in the call (waiting, then talking).
fn caller(server: &Server, user: &User<'_>, hold: Duration) -> (SippProcess, RtpPeer) {
    let media = RtpPeer::bind();
    let sipp = Sipp::new("uac_queue.xml", free_port())
        .to(server)
        .var("caller", user.name)
        .var("target", format!("sip:700@127.0.0.1:{}", server.ports.udp))
        .var("rtp_port", media.port)
        .var("hold_ms", hold.as_millis())
        .auth(user.name, user.password)
        .timeout(Duration::from_secs(60))
        .spawn();
    (sipp, media)
}

/// The callers' users whose calls reached this agent's phone, in order.
fn callers_of(agent: &SippProcess) -> Vec<String> {
    agent
        .received_so_far()
        .iter()
        .filter(|m| m.method() == "INVITE")
        .filter_map(|m| m.header("From").map(|f| f.to_owned()))
        .filter_map(|from| from.split("sip:").nth(1).and_then(|rest| rest.split('@').next()).map(str::to_owned))
        .collect()
}

#[test]
fn the_longest_idle_agent_gets_the_call_and_a_waiting_caller_hears_its_position() {
    let extra = format!(
        "{}[[queues]]\nname = \"support\"\nextension = \"700\"\nstrategy = \"longest-idle\"\n\
         agents = [\"bob\", \"carol\"]\nring_seconds = 10\nwrap_up_seconds = 1\nannounce_seconds = 30\n",
        server_config(server_rtp_range())
    );
    let server = server_with_users(&extra, &users());
    let [alice, bob, carol, erin, frank] = users();
    let (bob_phone, _bob_media) = agent(&server, &bob, 2);
    let (carol_phone, _carol_media) = agent(&server, &carol, 2);

    // A first call: both agents idle since the start; bob, listed first, takes it.
    let (first, _first_media) = caller(&server, &frank, Duration::from_secs(3));
    first.wait().assert_success("frank's call into the queue", &server);
    assert_eq!(callers_of(&bob_phone), ["frank"], "bob took the first call");

    // erin: carol has been idle the longest (bob just finished), though bob is listed first.
    std::thread::sleep(Duration::from_millis(1500));
    let (erin_call, _erin_media) = caller(&server, &erin, Duration::from_secs(7));
    let to_carol = poll_until(Duration::from_secs(10), || callers_of(&carol_phone) == ["erin"]);
    assert!(to_carol, "erin's call went to carol; bob got {:?}\n{}", callers_of(&bob_phone), server.log());
    // frank again: bob is the one free.
    let (frank_call, _frank_media) = caller(&server, &frank, Duration::from_secs(10));
    let to_bob = poll_until(Duration::from_secs(10), || callers_of(&bob_phone) == ["frank", "frank"]);
    assert!(to_bob, "frank's second call went to bob\n{}", server.log());

    // alice: both agents talk; she waits, hears her position, then gets carol once erin hangs up.
    let (alice_call, alice_media) = caller(&server, &alice, Duration::from_secs(14));
    let announced = || server.log().lines().any(|l| l.contains("position announced") && l.contains("position=1"));
    assert!(poll_until(Duration::from_secs(10), announced), "alice's position was announced\n{}", server.log());
    let waited = Instant::now();
    let to_carol_again = poll_until(Duration::from_secs(15), || callers_of(&carol_phone) == ["erin", "alice"]);
    assert!(to_carol_again, "alice went to carol once free\n{}", server.log());
    // What alice heard while waiting: the announcement and the music, not silence.
    let heard: Vec<i16> = alice_media
        .received()
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| sambung_media::g711::ulaw_decode(b)))
        .collect();
    let rms = rms(&heard);
    assert!(heard.len() > 8000, "alice got {} samples of the queue's audio", heard.len());
    assert!(rms > 300.0, "alice heard the queue's audio (RMS {rms:.0})");
    println!("alice waited about {:?} more after her position; heard RMS {rms:.0}", waited.elapsed());

    for (call, who) in [(erin_call, "erin"), (frank_call, "frank"), (alice_call, "alice")] {
        call.wait().assert_success(&format!("{who}'s call into the queue"), &server);
    }
    bob_phone.wait().assert_success("bob's phone", &server);
    carol_phone.wait().assert_success("carol's phone", &server);
    let log = server.log();
    for line in ["queue call answered", "caller queued"] {
        assert!(log.contains(line), "the log says {line:?}");
    }
}
