//! Hold and resume carried across the B2BUA (RFC 3264 §8.4): alice (SIPp) puts the call on
//! hold with a re-INVITE offering a=sendonly and resumes it with a=sendrecv; bob (SIPp) must
//! receive each re-offer with the direction intact and the relay's address, and alice must get
//! bob's recvonly / sendrecv answers back. While on hold, bob hears the music on hold from the
//! relay (alice's phone sends no audio at all).

mod common;

use std::time::Duration;

use common::clients::{RtpPeer, Sipp, User, server_config, server_rtp_range, server_with_users};
use common::free_port;

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User::new("bob", "Builder-Can-42");

#[test]
fn hold_and_resume_reach_the_other_phone() {
    let server = server_with_users(&server_config(server_rtp_range()), &[ALICE, BOB]);
    let bob_port = free_port();
    Sipp::new("register.xml", bob_port)
        .to(&server)
        .service(BOB.name)
        .auth(BOB.name, BOB.password)
        .run()
        .assert_success("bob registers", &server);
    let bob_media = RtpPeer::bind();
    let bob =
        Sipp::new("uas_hold.xml", bob_port).var("rtp_port", bob_media.port).timeout(Duration::from_secs(25)).spawn();
    let alice = Sipp::new("uac_hold.xml", free_port())
        .to(&server)
        .service(BOB.name)
        .var("caller", ALICE.name)
        .auth(ALICE.name, ALICE.password)
        .timeout(Duration::from_secs(25))
        .run();
    let bob = bob.wait();
    alice.assert_success("alice holds and resumes (uac_hold.xml)", &server);
    bob.assert_success("bob sees the hold and the resume (uas_hold.xml)", &server);
    // both re-INVITEs went through: three INVITEs reached bob's phone, in order of direction
    let offers: Vec<String> =
        bob.received().into_iter().filter(|m| m.method() == "INVITE").map(|m| m.body().to_owned()).collect();
    assert_eq!(offers.len(), 3, "the initial INVITE and two re-INVITEs");
    assert!(offers[1].contains("a=sendonly") && offers[2].contains("a=sendrecv"));
    // alice sends no RTP: what bob got is the music on hold, in his codec (PCMU), for the 2 s
    // of the hold, at the level of music.
    let packets = bob_media.received();
    assert!(packets.len() >= 50, "{} packets of music on hold", packets.len());
    assert!(packets.iter().all(|p| p.payload_type == 0), "PCMU, as bob's description lists it");
    let samples: Vec<f64> = packets
        .iter()
        .flat_map(|p| p.payload.iter().map(|b| f64::from(sambung_media::g711::ulaw_decode(*b))))
        .collect();
    let rms = (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt();
    assert!(rms > 1000.0, "music, not silence: rms {rms:.0}");
    assert!(server.log().contains("on hold: music"), "{}", server.log());
}
