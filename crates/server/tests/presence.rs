//! Presence between real peers through the built server: carol's phone (SIPp) watches bob's
//! presence (RFC 3856) as a busy-lamp field does; bob's baresip registers (bob shows open), then
//! alice's baresip calls bob, who answers (bob shows on the phone).

mod common;

use std::time::Duration;

use common::clients::{
    BaresipConfig, Sipp, User, fail_with_logs, poll_until, quit, server_config, server_rtp_range, server_with_users,
    silence_wav, start_registered,
};
use common::{free_port, temp_dir};

const ALICE: User<'static> = User::new("alice", "wonder-land-42");
const BOB: User<'static> = User::new("bob", "builder-can-7");
const CAROL: User<'static> = User::new("carol", "singing-bird-9");

#[test]
fn a_watcher_sees_registration_and_calls() {
    let server = server_with_users(&server_config(server_rtp_range()), &[ALICE, BOB, CAROL]);
    let dir = temp_dir("presence");
    let watcher = Sipp::new("subscribe_presence.xml", free_port())
        .to(&server)
        .service(CAROL.name)
        .var("watched", BOB.name)
        .auth(CAROL.name, CAROL.password)
        .timeout(Duration::from_secs(90))
        .spawn();
    if !poll_until(Duration::from_secs(20), || server.log().contains("presence subscription")) {
        let run = watcher.wait();
        panic!("carol's phone did not subscribe:\n{}\n{}", run.describe(), common::clients::tail(&server.log(), 4000));
    }

    let audio = silence_wav(&dir, 8.0);
    let mut bob =
        start_registered(&dir.join("bob"), BaresipConfig::new(BOB.name, BOB.password, &server, &audio), &server);
    let mut config = BaresipConfig::new(ALICE.name, ALICE.password, &server, &audio);
    config.commands.push(format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
    let mut alice = start_registered(&dir.join("alice"), config, &server);
    if !alice.wait_for(Duration::from_secs(20), |log| log.contains("Call established")) {
        fail_with_logs("alice's call to bob was not answered within 20 s", &[&alice, &bob], &server);
    }

    let run = watcher.wait();
    run.assert_success("carol watching bob: closed, then open, then on the phone", &server);
    let notifies: Vec<_> = run.received().into_iter().filter(|m| m.text.starts_with("NOTIFY ")).collect();
    assert_eq!(notifies.len(), 3, "{}", run.describe());
    assert!(notifies.iter().all(|n| n.text.contains("entity=\"sip:bob@")), "{}", run.describe());
    quit(&mut alice);
    quit(&mut bob);
    let _ = std::fs::remove_dir_all(&dir);
}
