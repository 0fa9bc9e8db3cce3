//! Pickup and parking with real phones (baresip):
//!
//! - alice calls bob, whose phone rings; carol dials `**bob` (directed pickup): bob's phone
//!   stops ringing, alice's call is answered and carol hears alice;
//! - alice calls bob, who answers and parks her by a blind transfer to slot 701 (`/transfer`):
//!   bob's call ends, alice hears the music on hold; carol dials 701 from her phone and takes
//!   the call: carol hears alice.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::clients::*;
use common::{Server, temp_dir};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User::new("bob", "Builder-Can-42");
const CAROL: User<'static> = User::new("carol", "Singer-Sea-19");

const ALICE_SPEECH: &str = "Hello, this is Alice. I am calling about the delivery that was due this morning, \
                            which has not arrived. Could someone check where it is, please?";

fn server() -> Server {
    let extra = format!("{}[parking]\nslots = \"701-705\"\ntimeout_seconds = 60\n", server_config(server_rtp_range()));
    server_with_users(&extra, &[ALICE, BOB, CAROL])
}

fn config(user: &User<'_>, server: &Server, audio: &Path) -> BaresipConfig {
    BaresipConfig::new(user.name, user.password, server, audio)
}

/// The three phones: bob and carol registered (bob's rings without answering unless
/// `bob_answers`), and alice, who speaks `ALICE_SPEECH` `times` times, calling bob.
struct Phones {
    alice: Baresip,
    bob: Baresip,
    carol: Baresip,
    alice_says: PathBuf,
}

impl Phones {
    fn start(server: &Server, dir: &Path, bob_answers: bool, times: usize) -> Phones {
        let alice_says = speech_wav(dir, "alice-says", &vec![ALICE_SPEECH; times].join(" "), 0.5, 1.0);
        let silence = silence_wav(dir, 50.0);
        let mut bob_config = config(&BOB, server, &silence);
        bob_config.auto_answer = bob_answers;
        let bob = start_registered(&dir.join("bob"), bob_config, server);
        let carol = start_registered(&dir.join("carol"), config(&CAROL, server, &silence), server);
        let mut alice_config = config(&ALICE, server, &alice_says);
        alice_config.commands.push(format!("/dial sip:bob@127.0.0.1:{}", server.ports.udp));
        let alice = Baresip::start(&dir.join("alice"), alice_config);
        Phones { alice, bob, carol, alice_says }
    }

    fn fail(&self, what: &str, server: &Server) -> ! {
        fail_with_logs(what, &[&self.alice, &self.bob, &self.carol], server)
    }

    /// Quits the three, then checks that carol heard alice's speech in her last call.
    fn carol_heard_alice(mut self, server: &Server) -> Phones {
        for phone in [&mut self.alice, &mut self.bob, &mut self.carol] {
            quit(phone);
        }
        let Some(recording) = self.carol.recorded("-dec.wav").last().cloned() else {
            self.fail("carol recorded nothing", server)
        };
        let (carol_heard, reference) = (wav_rms(&recording), wav_rms(&self.alice_says));
        println!("carol heard RMS {carol_heard:.0} of alice's {reference:.0}");
        assert!(
            carol_heard > reference * 0.2,
            "carol heard too little of alice: {carol_heard:.0} against {reference:.0}"
        );
        self
    }
}

const ESTABLISHED: &str = "Call established";
const ENDED: &str = " terminated (duration";

#[test]
fn directed_pickup_of_a_ringing_phone() {
    let server = server();
    let dir = temp_dir("pickup");
    let _cleanup = Cleanup(dir.clone());
    let mut p = Phones::start(&server, &dir, false, 3);
    let port = p.bob.config.sip_port;
    let rung = |log: &str| sip_trace(log, port).iter().any(|m| m.received && m.method() == "INVITE");
    if !p.bob.wait_for(Duration::from_secs(20), rung) {
        p.fail("bob's phone did not ring", &server);
    }
    std::thread::sleep(Duration::from_millis(500));
    p.carol.command(&format!("/dial sip:**bob@127.0.0.1:{}", server.ports.udp));
    let established = |log: &str| log.contains(ESTABLISHED);
    if !p.alice.wait_for(Duration::from_secs(15), established) || !p.carol.wait_for(Duration::from_secs(5), established)
    {
        p.fail("carol did not pick up alice's call", &server);
    }
    let cancelled = |log: &str| sip_trace(log, port).iter().any(|m| m.received && m.method() == "CANCEL");
    if !p.bob.wait_for(Duration::from_secs(5), cancelled) {
        p.fail("bob's phone did not stop ringing", &server);
    }
    std::thread::sleep(Duration::from_secs(8));
    p.alice.command("/hangup");
    if !p.carol.wait_for(Duration::from_secs(10), |log| log.contains(ENDED)) {
        p.fail("carol's call did not end when alice hung up", &server);
    }
    p.carol_heard_alice(&server);
    assert!(server.log().contains("bridged"), "the two calls were bridged");
}

#[test]
fn a_parked_call_is_taken_from_another_phone() {
    let server = server();
    let dir = temp_dir("park");
    let _cleanup = Cleanup(dir.clone());
    let mut p = Phones::start(&server, &dir, true, 4);
    if !p.bob.wait_for(Duration::from_secs(20), |log| log.contains(ESTABLISHED)) {
        p.fail("alice's call to bob was not established", &server);
    }
    p.bob.command(&format!("/transfer sip:701@127.0.0.1:{}", server.ports.udp));
    // bob's call is over: he hangs up on the NOTIFY of 200, or the server does.
    let port = p.bob.config.sip_port;
    let bye = |log: &str| sip_trace(log, port).iter().any(|m| m.method() == "BYE");
    if !p.bob.wait_for(Duration::from_secs(10), bye) {
        p.fail("bob's call did not end after he parked alice", &server);
    }
    if !poll_until(Duration::from_secs(5), || server.log().contains("parked")) {
        p.fail("alice was not parked", &server);
    }
    std::thread::sleep(Duration::from_secs(2));
    p.carol.command(&format!("/dial sip:701@127.0.0.1:{}", server.ports.udp));
    if !p.carol.wait_for(Duration::from_secs(15), |log| log.contains(ESTABLISHED)) {
        p.fail("carol's call to slot 701 was not answered", &server);
    }
    if !poll_until(Duration::from_secs(8), || server.log().contains("bridged")) {
        p.fail("carol did not take the parked call", &server);
    }
    std::thread::sleep(Duration::from_secs(8));
    p.carol.command("/hangup");
    if !p.alice.wait_for(Duration::from_secs(10), |log| log.contains(ENDED)) {
        p.fail("alice's call did not end when carol hung up", &server);
    }
    let p = p.carol_heard_alice(&server);
    // alice's phone was asked nothing: no REFER reached it.
    assert!(!p.alice.trace().iter().any(|m| m.received && m.method() == "REFER"), "alice was parked by the server");
}
