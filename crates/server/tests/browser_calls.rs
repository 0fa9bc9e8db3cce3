//! Calls in the web app, in a real browser (Debian's Chromium driven by Playwright for Python,
//! see tests/web/calls.py) against the built `sambung serve`: the signed-in page registers over
//! the app's SIP WebSocket and calls bob's baresip (PCMU) through the relay, which speaks
//! WebRTC (ICE-lite, DTLS-SRTP) to the browser and plain RTP to the phone; what the baresip
//! heard of the page's fake microphone must score PESQ at least [`MIN_PESQ`] (narrowband). The
//! page's keypad sends RFC 4733 events, which the relay reads; with it the page moves through
//! its mailbox's menu (*97: 2, then *, and the mailbox hangs up). Then bob's baresip calls alice
//! with video (VP8 from its fake camera): the page rings with his name, answers with video,
//! shows his 352x288 video and hears him, and bob's baresip receives the page's video. Last,
//! alice's page makes a video call to carol's (another browser profile): each decodes the
//! other's video and hears the other; bob calls again meanwhile, and alice's page holds carol
//! (whose page shows it), answers bob, and resumes carol once bob hangs up.
//!
//! scripts/test.sh installs Chromium and a virtual environment with Playwright, and names its
//! Python in SAMBUNG_PLAYWRIGHT_PYTHON; without it the test fails and says so (never skips).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{
    BaresipConfig, User, fail_with_logs, pesq, quit, require_tool, server_config, server_rtp_range, server_with_users,
    speech_wav, start_registered, wav_rms, wav_seconds,
};

/// The lowest PESQ (narrowband) accepted for the page's speech as the baresip heard it over
/// PCMU.
///
/// Measured here (December 2026, Chromium 156): 3.07 to 3.26 in seven runs. The aim was
/// 3.5; what holds it back is Chromium's own PCMU path, not the relay. The same sentence
/// through G.711 alone scores 3.93, and bob's recording matches the microphone file with a
/// correlation of 0.99 (one sample late, a constant 0.81 s offset through the whole call: no
/// loss, no drift), but its spectrum against the file falls off -1 dB at 2 kHz, -2.5 dB at
/// 2.5-3 kHz and -5 dB at 3.5 kHz: the low-pass of Chromium's 48 to 8 kHz path before its PCMU
/// encoder. The relay passes the payloads as they came, byte for byte (asserted by the
/// relay's own test, `a_browser_leg_speaks_webrtc_and_the_other_leg_plain_rtp`), and baresip's
/// side scores 4.06 on the same recording path from another baresip (tests/baresip.rs). Over
/// Opus (a baresip set to `opus/48000/2`) the same call scored 3.68. The floor keeps some room
/// below the lowest run (0.17) for a busier machine.
const MIN_PESQ: f64 = 2.9;

fn python() -> PathBuf {
    let Ok(python) = std::env::var("SAMBUNG_PLAYWRIGHT_PYTHON") else {
        panic!("SAMBUNG_PLAYWRIGHT_PYTHON is not set: it names a Python with Playwright (scripts/test.sh makes one)");
    };
    PathBuf::from(python)
}

#[test]
fn the_app_calls_a_phone_and_a_phone_calls_the_app() {
    require_tool("chromium", "chromium");
    let alice = User::new("alice", "amber meadow 73");
    let bob = User::new("bob", "meadow-amber-73");
    let carol = User::new("carol", "violet harbour 58");
    let server = server_with_users(&server_config(server_rtp_range()), &[alice, bob, carol]);
    let sync = common::temp_dir("browser-calls");
    let _cleanup = (std::env::var_os("SAMBUNG_KEEP").is_none()).then(|| common::clients::Cleanup(sync.clone()));
    let shots = std::env::var_os("SAMBUNG_SCREENSHOTS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots"), PathBuf::from);

    // What the page says (once: %noloop, from when the call asks for the microphone, so the
    // speech starts after 3 s of silence, once the call is up), and what bob says.
    let microphone = speech_wav(
        &sync,
        "microphone",
        "The quick brown fox jumps over the lazy dog. Sambung carries this sentence from the browser.",
        3.0,
        1.5,
    );
    let talk = wav_seconds(&microphone) + 2.0;
    let bob_says = speech_wav(&sync, "bob-says", "Hello, this is Bob on a SIP phone.", 0.5, 30.0);
    let mut bob_config = BaresipConfig::new(bob.name, bob.password, &server, &bob_says);
    if let Ok(codecs) = std::env::var("SAMBUNG_BOB_CODECS") {
        bob_config.codecs = codecs;
    }
    bob_config.quit_after = Duration::from_secs(110);
    bob_config.video = true;
    let mut phone = start_registered(&sync.join("bob"), bob_config, &server);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/calls.py");
    let mut child = Command::new(python())
        .arg(&script)
        .args(["--url", &format!("https://127.0.0.1:{}", server.ports.wss)])
        .args(["--user", alice.name, "--password", alice.password, "--peer", bob.name])
        .args(["--other", carol.name, "--other-password", carol.password])
        .arg("--microphone")
        .arg(&microphone)
        .args(["--talk", &format!("{talk:.1}")])
        .arg("--sync")
        .arg(&sync)
        .arg("--shots")
        .arg(&shots)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the browser test with SAMBUNG_PLAYWRIGHT_PYTHON");
    let mut wait_for = |name: &str, phone: &common::clients::Baresip| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !sync.join(name).exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut out = String::new();
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out);
                let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
                fail_with_logs(
                    &format!("the browser script ended ({status}) before asking for {name}:\n{out}\n{err}"),
                    &[phone],
                    &server,
                );
            }
            assert!(Instant::now() < deadline, "the browser script never asked for {name}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // The page's call to bob ends (the page hangs up); then bob calls alice's page.
    wait_for("want-peer-calls", &phone);
    let first_call = phone.recorded("-dec.wav");
    phone.command(&format!("/dial sip:alice@127.0.0.1:{}", server.ports.udp));
    std::fs::write(sync.join("peer-calls"), b"").unwrap();
    wait_for("want-peer-hangs-up", &phone);
    phone.command("/hangup");
    std::fs::write(sync.join("peer-hangs-up"), b"").unwrap();
    // bob calls alice again while she is in a video call with carol: a call waiting.
    wait_for("want-peer-calls-again", &phone);
    phone.command(&format!("/dial sip:alice@127.0.0.1:{}", server.ports.udp));
    std::fs::write(sync.join("peer-calls-again"), b"").unwrap();
    wait_for("want-peer-hangs-up-again", &phone);
    phone.command("/hangup");
    std::fs::write(sync.join("peer-hangs-up-again"), b"").unwrap();

    let run = child.wait_with_output().expect("the browser script");
    if !run.status.success() {
        fail_with_logs(
            &format!(
                "the browser script failed ({}):\n{}\n{}",
                run.status,
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            ),
            &[&phone],
            &server,
        );
    }
    println!("{}", String::from_utf8_lossy(&run.stdout));
    quit(&mut phone);

    // What bob heard of the page's microphone in the first call.
    let Some(heard) = first_call.last() else {
        fail_with_logs("bob recorded nothing of the first call", &[&phone], &server)
    };
    let (rms, reference_rms) = (wav_rms(heard), wav_rms(&microphone));
    let score = pesq(&microphone, heard, "nb");
    println!(
        "bob heard {:.1} s of the page: RMS {rms:.0} (sent {reference_rms:.0}); PESQ (nb, PCMU from the browser through the relay) {score:.2}",
        wav_seconds(heard)
    );
    // The keys pressed in the page's keypad crossed the relay as RFC 4733 events (the relay
    // reads them, as the voicemail menu needs; baresip 1.0 does not log the ones it gets).
    let server_log = server.log();
    let keys: String = server_log
        .lines()
        .filter(|l| l.contains("key pressed"))
        .filter_map(|l| l.split(" key=").nth(1).and_then(|rest| rest.chars().next()))
        .collect();
    println!("keys read from the page's call: {keys:?}");
    assert!(rms >= reference_rms * 0.2, "bob heard (near) silence from the page: RMS {rms:.0}");
    assert!(score >= MIN_PESQ, "the page's speech scored PESQ {score:.2} < {MIN_PESQ} at bob's phone");
    assert_eq!(keys, "12#2*", "the page's keys as the relay read them (its call to bob, then its mailbox)");
    assert!(server_log.contains("mailbox opened"), "the page reached its mailbox");
    // bob's baresip got the page's video in his call to it (VP8 through the relay).
    let log = common::clients::strip_ansi(&phone.log());
    assert!(log.contains("incoming rtp for 'video' established"), "bob's baresip received no video from the page");
    // The browser leg ran on the relay as WebRTC.
    assert!(server.log().contains("WebRTC leg connected"), "the relay's WebRTC leg connected");
}
