//! Ring groups with real phones (SIPp): a group rings all its members at once and the one who
//! answers takes the call while the others stop ringing; one at a time, where a member whose turn
//! ends stops ringing and a busy one passes the call on; round robin, where each call starts
//! with the next member.

mod common;

use std::time::Duration;

use common::clients::*;
use common::{Server, free_port};

const PASSWORD: [&str; 4] = ["amber-fox-42", "brown-owl-42", "coral-elk-42", "dusky-ram-42"];

fn users() -> [User<'static>; 4] {
    [
        User::new("alice", PASSWORD[0]),
        User::new("bob", PASSWORD[1]),
        User::new("carol", PASSWORD[2]),
        User::new("dave", PASSWORD[3]),
    ]
}

/// A member's phone on `port`: registered, then running `scenario` for one call.
fn phone(server: &Server, user: &User<'_>, port: u16, scenario: &str) -> (SippProcess, RtpPeer) {
    let run = Sipp::new("register.xml", port).to(server).service(user.name).auth(user.name, user.password).run();
    run.assert_success(&format!("REGISTER as {}", user.name), server);
    let media = RtpPeer::bind();
    let mut sipp = Sipp::new(scenario, port).timeout(Duration::from_secs(30));
    if scenario == "uas_answer.xml" {
        sipp = sipp.var("rtp_port", media.port);
    }
    (sipp.spawn(), media)
}

fn call(server: &Server, alice: &User<'_>, target: &str) -> SippResult {
    Sipp::new("uac_dial.xml", free_port())
        .to(server)
        .var("caller", alice.name)
        .var("target", format!("sip:{target}@127.0.0.1:{}", server.ports.udp))
        .auth(alice.name, alice.password)
        .timeout(Duration::from_secs(20))
        .run()
}

fn server(groups: &str) -> Server {
    let extra = format!("{}{groups}", server_config(server_rtp_range()));
    server_with_users(&extra, &users())
}

#[test]
fn all_members_ring_and_the_first_to_answer_takes_the_call() {
    let server = server(
        "[[groups]]\nname = \"sales\"\nextension = \"600\"\nstrategy = \"simultaneous\"\n\
         members = [\"bob\", \"carol\", \"dave\"]\n",
    );
    let [alice, bob, carol, dave] = users();
    let (bob_phone, _b) = phone(&server, &bob, free_port(), "uas_ring.xml");
    let (carol_phone, _c) = phone(&server, &carol, free_port(), "uas_answer.xml");
    let (dave_phone, _d) = phone(&server, &dave, free_port(), "uas_ring.xml");
    call(&server, &alice, "600").assert_success("alice's call to the group", &server);
    carol_phone.wait().assert_success("carol answering", &server);
    // The others rang, then were cancelled once carol answered.
    bob_phone.wait().assert_success("bob ringing until cancelled", &server);
    dave_phone.wait().assert_success("dave ringing until cancelled", &server);
}

#[test]
fn members_ring_in_turn_and_a_busy_one_passes_the_call_on() {
    let server = server(
        "[[groups]]\nname = \"support\"\nstrategy = \"sequential\"\nmembers = [\"bob\", \"carol\", \"dave\"]\n\
         ring_seconds = 2\ntimeout_seconds = 15\n",
    );
    let [alice, bob, carol, dave] = users();
    let (bob_phone, _b) = phone(&server, &bob, free_port(), "uas_ring.xml");
    let (carol_phone, _c) = phone(&server, &carol, free_port(), "uas_busy.xml");
    let (dave_phone, _d) = phone(&server, &dave, free_port(), "uas_answer.xml");
    call(&server, &alice, "support").assert_success("alice's call to the group", &server);
    // bob rang for his 2 s and was cancelled, carol was busy, dave answered.
    bob_phone.wait().assert_success("bob ringing until his turn ended", &server);
    carol_phone.wait().assert_success("carol busy", &server);
    dave_phone.wait().assert_success("dave answering", &server);
    let log = server.log();
    let turns: Vec<&str> = log.lines().filter(|l| l.contains("group ringing")).collect();
    assert_eq!(turns.len(), 3, "{turns:#?}");
    for (turn, member) in turns.iter().zip(["bob", "carol", "dave"]) {
        assert!(turn.contains(&format!("[\"{member}\"]")), "{turn}");
    }
}

#[test]
fn round_robin_starts_each_call_with_the_next_member() {
    let server = server(
        "[[groups]]\nname = \"desk\"\nextension = \"700\"\nstrategy = \"round-robin\"\n\
         members = [\"bob\", \"carol\"]\nring_seconds = 10\ntimeout_seconds = 20\n",
    );
    let [alice, bob, carol, _] = users();
    let (bob_phone, _b) = phone(&server, &bob, free_port(), "uas_answer.xml");
    let (carol_phone, _c) = phone(&server, &carol, free_port(), "uas_answer.xml");
    // Each call is answered by the member whose turn it is, at once: no member's 10 s run out.
    call(&server, &alice, "700").assert_success("the first call", &server);
    bob_phone.wait().assert_success("bob taking the first call", &server);
    call(&server, &alice, "700").assert_success("the second call", &server);
    carol_phone.wait().assert_success("carol taking the second call", &server);
    let log = server.log();
    let turns: Vec<&str> = log.lines().filter(|l| l.contains("group ringing")).collect();
    assert_eq!(turns.len(), 2, "{turns:#?}");
    assert!(turns[0].contains("[\"bob\"]") && turns[1].contains("[\"carol\"]"), "{turns:#?}");
}

#[test]
fn a_number_of_the_service_rings_the_group() {
    let extra = format!("{}[[groups]]\nname = \"sales\"\nmembers = [\"bob\"]\n", server_config(server_rtp_range()));
    let dir = server_dir_with_users(&extra, &users());
    let config = dir.join("sambung.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(["number", "add", "+442071110600", "--group", "sales", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sambung number add");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "+442071110600 rings the group sales\n");
    // A group the configuration does not have is refused.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(["number", "add", "+442071110601", "--group", "nobody", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sambung number add");
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stderr));
    let server = Server::start_owning(dir, &extra);
    let [alice, bob, _, _] = users();
    let (bob_phone, _b) = phone(&server, &bob, free_port(), "uas_answer.xml");
    call(&server, &alice, "+442071110600").assert_success("alice's call to the group's number", &server);
    bob_phone.wait().assert_success("bob answering the group's number", &server);
}
