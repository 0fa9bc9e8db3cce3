//! Webhooks and metrics against a CRM stand-in (tests/crm/crm.py, a Python HTTP server and API
//! client): it makes an administrator's webhook for every account's events through the API, then
//! asks this test for a call; alice (SIPp) calls bob (SIPp, registered after the webhook exists),
//! who answers, with RTP through the relay. The CRM checks every delivery's signature, refuses
//! the first call.answered (Sambung tries again), detects a forged body, a wrong key, a stale
//! timestamp and a replay, reads the delivery log, parses /metrics with the Prometheus client's
//! own parser, and checks /healthz and /readyz. Then it asks for two baresips (alice and bob,
//! answering by themselves) and makes a click-to-call through the API: alice's baresip rings,
//! answers, is asked by REFER to call bob, and does; the CRM hangs up through the API and finds
//! the call's record with both sides' audio figures. Then it transfers alice to carol (a third
//! baresip) through the API: alice's phone is referred to carol, the first call ends as
//! transferred, and the CRM hangs the new one up through the API.
//!
//! scripts/test.sh names the Python with prometheus-client in SAMBUNG_PLAYWRIGHT_PYTHON; without
//! it the test fails and says so (never skips).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{
    Baresip, BaresipConfig, RtpPeer, Sipp, User, add_user, require_tool, server_config, server_rtp_range,
    server_with_users, silence_wav, tone_ulaw,
};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User::new("bob", "Builder-Can-42");
const CAROL: User<'static> = User::new("carol", "Choir-Hymn-19");
const ROOT: User<'static> = User::new("root", "amber meadow 73");

fn python() -> PathBuf {
    let Ok(python) = std::env::var("SAMBUNG_PLAYWRIGHT_PYTHON") else {
        panic!(
            "SAMBUNG_PLAYWRIGHT_PYTHON is not set: it names a Python with prometheus-client (scripts/test.sh makes one)"
        );
    };
    PathBuf::from(python)
}

#[test]
fn signed_webhooks_reach_a_crm_and_metrics_parse() {
    require_tool("sipp", "sip-tester");
    let python = python();
    let extra = server_config(server_rtp_range());
    let server = server_with_users(&extra, &[ALICE, BOB, CAROL]);
    let config = server.dir.join("sambung.toml");
    add_user(&config, &ROOT);
    let out = Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(["user", "admin", ROOT.name, "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sambung");
    assert!(out.status.success(), "sambung user admin: {}", String::from_utf8_lossy(&out.stderr));

    let sync = common::temp_dir("crm-sync");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crm/crm.py");
    let mut crm = Command::new(&python)
        .arg(&script)
        .args(["--url", &format!("https://127.0.0.1:{}", server.ports.wss)])
        .args(["--admin", ROOT.name, "--admin-password", ROOT.password])
        .args(["--user", ALICE.name, "--password", ALICE.password, "--callee", BOB.name, "--third", CAROL.name])
        .arg("--sync")
        .arg(&sync)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the CRM stand-in with SAMBUNG_PLAYWRIGHT_PYTHON");

    let deadline = Instant::now() + Duration::from_secs(120);
    while !sync.join("want-call").exists() {
        if let Ok(Some(status)) = crm.try_wait() {
            let run = crm.wait_with_output().expect("the CRM's output");
            panic!(
                "the CRM ended ({status}) before asking for the call:\n{}\n{}\nserver log:\n{}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr),
                server.log()
            );
        }
        assert!(Instant::now() < deadline, "the CRM never asked for the call");
        std::thread::sleep(Duration::from_millis(50));
    }

    // bob registers now (a device.registered event), then answers alice's call.
    let bob_port = common::free_port();
    let registered =
        Sipp::new("register.xml", bob_port).to(&server).service(BOB.name).auth(BOB.name, BOB.password).run();
    registered.assert_success("bob's REGISTER", &server);
    let bob_media = RtpPeer::bind();
    let bob =
        Sipp::new("uas_answer.xml", bob_port).var("rtp_port", bob_media.port).timeout(Duration::from_secs(25)).spawn();
    let caller = Sipp::new("uac_call.xml", common::free_port())
        .to(&server)
        .service(BOB.name)
        .var("caller", ALICE.name)
        .auth(ALICE.name, ALICE.password);
    std::fs::write(caller.dir.join("speech.ulaw"), tone_ulaw(0, 8000 * 3)).unwrap();
    let alice = caller.run();
    let bob = bob.wait();
    alice.assert_success("alice's call (uac_call.xml)", &server);
    bob.assert_success("bob answering (uas_answer.xml)", &server);
    std::fs::write(sync.join("call"), b"").unwrap();

    // Two phones for the click-to-call: they answer by themselves (answermode=auto).
    while !sync.join("want-phones").exists() {
        if let Ok(Some(status)) = crm.try_wait() {
            let run = crm.wait_with_output().expect("the CRM's output");
            panic!(
                "the CRM ended ({status}) before asking for the phones:\n{}\n{}\nserver log:\n{}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr),
                common::clients::tail(&server.log(), 8000)
            );
        }
        assert!(Instant::now() < deadline + Duration::from_secs(120), "the CRM never asked for the phones");
        std::thread::sleep(Duration::from_millis(50));
    }
    let phones = common::temp_dir("crm-phones");
    let audio = silence_wav(&phones, 30.0);
    let phone = |user: &User<'_>| {
        let mut config = BaresipConfig::new(user.name, user.password, &server, &audio);
        config.quit_after = Duration::from_secs(120);
        let mut phone = Baresip::start(&phones.join(user.name), config);
        assert!(
            phone.wait_registered(Duration::from_secs(15)),
            "{}'s baresip did not register:\n{}",
            user.name,
            phone.log()
        );
        phone
    };
    let (alice, bob, carol) = (phone(&ALICE), phone(&BOB), phone(&CAROL));
    std::fs::write(sync.join("phones"), b"").unwrap();

    let run = crm.wait_with_output().expect("the CRM's output");
    if !run.status.success() {
        eprintln!("alice's baresip:\n{}", common::clients::tail(&alice.log(), 6000));
        eprintln!("bob's baresip:\n{}", common::clients::tail(&bob.log(), 6000));
        eprintln!("carol's baresip:\n{}", common::clients::tail(&carol.log(), 6000));
    }

    assert!(
        run.status.success(),
        "the CRM stand-in failed ({}):\n{}\n{}\nserver log:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        common::clients::tail(&server.log(), 8000)
    );
    // alice's phone was asked to call bob, then carol, and did: its own INVITEs to them.
    let trace = alice.trace();
    let refers = trace.iter().filter(|m| m.received && m.method() == "REFER").count();
    assert_eq!(refers, 2, "alice's baresip got a REFER for the click-to-call and one for the transfer");
    for callee in ["sip:bob@", "sip:carol@"] {
        assert!(
            trace.iter().any(|m| !m.received && m.method() == "INVITE" && m.start_line().contains(callee)),
            "alice's baresip did not call {callee}"
        );
    }
    print!("{}", String::from_utf8_lossy(&run.stdout));
    let _ = std::fs::remove_dir_all(&sync);
}
