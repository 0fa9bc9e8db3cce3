//! Calls in the web app, in a real browser (Debian's Chromium driven by Playwright for Python,
//! see tests/web/calls.py) against the built `sambung serve`: the signed-in page registers over
//! the app's SIP WebSocket and calls frank's baresip (PCMU, no video) through the relay, which speaks
//! WebRTC (ICE-lite, DTLS-SRTP) to the browser and plain RTP to the phone; what the baresip
//! heard of the page's fake microphone must score PESQ at least [`MIN_PESQ`] (narrowband). The
//! page's keypad sends RFC 4733 events, which the relay reads; with it the page moves through
//! its mailbox's menu (*97: 2, then *, and the mailbox hangs up). Then bob's baresip calls alice
//! with video (VP8 from its fake camera): the page rings with his name, answers with video,
//! shows his 352x288 video and hears him, and bob's baresip receives the page's video. Last,
//! alice's page makes a video call to carol's (another browser profile): each decodes the
//! other's video and hears the other; bob calls again meanwhile, and alice's page holds carol
//! (whose page shows it), answers bob, and resumes carol once bob hangs up. Then alice's page
//! calls bob and transfers him to carol (blind): his baresip calls carol's page, which answers.
//! Then click-to-call through the API rings alice's page, which, once answered, is asked
//! (REFER) to call bob, and does. Last, alice's page makes a video call to dave, a video phone
//! (SIPp) that takes keyframe requests only by SIP INFO (RFC 5168): the relay asks it by INFO,
//! and its own INFO `picture_fast_update` reaches the page's camera as an RTCP PLI; and it calls
//! bob without video and turns its camera on, then off, in the middle of the call. The page
//! shows a Y4M file as its camera (see calls.py).
//!
//! scripts/test.sh installs Chromium and a virtual environment with Playwright, and names its
//! Python in SAMBUNG_PLAYWRIGHT_PYTHON; without it the test fails and says so (never skips).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::clients::{
    BaresipConfig, RtpPeer, Sipp, User, fail_with_logs, pesq, quit, require_tool, server_config, server_rtp_range,
    server_with_users, speech_wav, start_registered, wav_rms, wav_seconds,
};

/// The lowest PESQ (narrowband) accepted for the page's speech as the baresip heard it over
/// PCMU: the 3.5.
///
/// Measured here (December 2026, Chromium 156): 3.88 in three runs once the page's keypad is
/// pressed after the speech. Before, with the keys pressed in the first seconds of the call
/// (before the speech began), twelve runs scored 2.72 to 3.34, and in about one run in six the
/// first half second of the speech came out changed (correlation 0.34). In such a run the capture of the
/// relay's ports showed the phone recorded exactly what the relay sent it, and that matched the
/// microphone file from its second half second on at 0.995-0.998 (one constant offset): the
/// damage was at the start of the speech, in what the browser sent, while its DTMF sender had
/// just been in use. How the earlier keys lowered the whole score is not established; the
/// spectral fall-off blamed on Chromium's 48 to 8 kHz path before does not hold up, since the
/// same path now scores 3.88. The same sentence through G.711 alone scores 3.93.
const MIN_PESQ: f64 = 3.5;

/// The lowest correlation accepted between a half second of the microphone's speech (at 8 kHz)
/// and the same half second as the phone heard it: measured 0.997-0.999 (Chromium's low-pass
/// included). One lost 20 ms packet in a half second leaves at most 0.98 of it (4 % of its
/// samples gone).
const MIN_CORRELATION: f64 = 0.98;

/// Checks that the phone heard the microphone's speech whole: the offset of its first voiced
/// half second in its recording (searched over 3 s either way: the recording starts when the
/// call does, the microphone when the page asked for it), then every later voiced half second
/// near that offset (within 80 ms) with a correlation of at least [`MIN_CORRELATION`], all but
/// two at most. Returns the offset in samples and the third lowest correlation.
fn aligned_segments(reference: &Path, heard: &Path) -> (i64, f64) {
    let (samples, rate) = common::clients::read_wav(reference);
    // The 48 kHz microphone file at 8 kHz (what PCMU carries): a windowed-sinc low-pass at
    // 3.6 kHz (127 taps, Blackman), then every sixth sample.
    assert_eq!(rate, 48_000, "the microphone file is 48 kHz");
    let taps: Vec<f64> = (0..127)
        .map(|i| {
            let n = f64::from(i) - 63.0;
            let cutoff = 3600.0 / 48_000.0;
            let sinc = if n == 0.0 {
                2.0 * cutoff
            } else {
                (std::f64::consts::TAU * cutoff * n).sin() / (std::f64::consts::PI * n)
            };
            let w = std::f64::consts::TAU * f64::from(i) / 126.0;
            sinc * (0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos())
        })
        .collect();
    let input: Vec<f64> = samples.iter().map(|&s| f64::from(s)).collect();
    let reference: Vec<f64> = (0..input.len() / 6)
        .map(|k| {
            let centre = k * 6;
            taps.iter()
                .enumerate()
                .map(|(i, t)| {
                    let at = (centre + i).checked_sub(63).and_then(|at| input.get(at)).copied().unwrap_or(0.0);
                    t * at
                })
                .sum()
        })
        .collect();
    let (heard, heard_rate) = common::clients::read_wav(heard);
    assert_eq!(heard_rate, 8000, "frank's recording is at the PCMU rate");
    let heard: Vec<f64> = heard.iter().map(|&s| f64::from(s)).collect();
    let half = 4000;
    let correlation = |segment: &[f64], at: i64| -> f64 {
        let Some(other) = usize::try_from(at).ok().and_then(|at| heard.get(at..at + segment.len())) else { return 0.0 };
        let dot: f64 = segment.iter().zip(other).map(|(a, b)| a * b).sum();
        let energy = segment.iter().map(|a| a * a).sum::<f64>() * other.iter().map(|b| b * b).sum::<f64>();
        if energy > 0.0 { dot / energy.sqrt() } else { 0.0 }
    };
    let voiced = |segment: &[f64]| (segment.iter().map(|a| a * a).sum::<f64>() / segment.len() as f64).sqrt() > 300.0;
    let segments: Vec<(i64, &[f64])> = reference
        .chunks_exact(half)
        .enumerate()
        .map(|(i, s)| ((i * half) as i64, s))
        .filter(|(_, s)| voiced(s))
        .collect();
    let (first_at, first) = *segments.first().expect("speech in the microphone file");
    let best = |range: &mut dyn Iterator<Item = i64>| {
        range
            .max_by(|&a, &b| correlation(first, first_at + a).total_cmp(&correlation(first, first_at + b)))
            .unwrap_or(0)
    };
    let coarse = best(&mut (-24_000..24_000).step_by(4));
    let offset = best(&mut (coarse - 4..coarse + 4));
    // A phone's jitter buffer may move its playout by a frame or more on a busy machine (seen
    // in full runs, never alone): each half second is matched within 80 ms of the first one's
    // offset, and at most two half seconds (those holding such a step) may fall short.
    let mut fits = Vec::new();
    let mut scores = Vec::new();
    for (k, (at, segment)) in segments.iter().enumerate() {
        let fit = (offset - 640..=offset + 640).map(|d| correlation(segment, at + d)).fold(f64::MIN, f64::max);
        fits.push(format!("{:.1}s {fit:.3}", *at as f64 / 8000.0));
        // The onset after three seconds of silence scores 0.92-0.93 in every run, whatever
        // else happens: Chromium shapes the start of speech. The rest is held to the floor.
        if k > 0 {
            scores.push(fit);
        }
    }
    scores.sort_by(f64::total_cmp);
    let lowest = scores.get(2.min(scores.len().saturating_sub(1))).copied().unwrap_or(f64::MAX);
    println!("half seconds of speech at frank, by start in the microphone file: {fits:?}");
    (offset, lowest)
}

#[test]
fn the_app_calls_a_phone_and_a_phone_calls_the_app() {
    require_tool("chromium", "chromium");
    let alice = User::new("alice", "amber meadow 73");
    let bob = User::new("bob", "meadow-amber-73");
    let carol = User::new("carol", "violet harbour 58");
    let dave = User::new("dave", "cedar lantern 19");
    let frank = User::new("frank", "quiet-orchard-62");
    let rtp = server_rtp_range();
    let server = server_with_users(&server_config(rtp), &[alice, bob, carol, dave, frank]);
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
    bob_config.quit_after = Duration::from_secs(110);
    bob_config.video = true;
    let mut phone = start_registered(&sync.join("bob"), bob_config, &server);
    // frank's baresip, without video, takes the page's first call: what it hears is scored. A
    // baresip with video starts its VP8 encoder for the idle video stream the page offers in an
    // audio call; one run with bob there scored 2.63 with every half second of the speech
    // changed (correlation 0.39-0.80), not explained.
    let mut frank_config = BaresipConfig::new(frank.name, frank.password, &server, &bob_says);
    if let Ok(codecs) = std::env::var("SAMBUNG_BOB_CODECS") {
        frank_config.codecs = codecs;
    }
    frank_config.quit_after = Duration::from_secs(110);
    let mut listener = start_registered(&sync.join("frank"), frank_config, &server);

    // Everything to and from the relay's ports during the page's first call.
    let capture = common::capture::Capture::start(&sync, rtp);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/calls.py");
    let mut child = Command::new(common::scripts::python())
        .arg(&script)
        .args(["--url", &format!("https://127.0.0.1:{}", server.ports.wss)])
        .args(["--user", alice.name, "--password", alice.password, "--peer", bob.name, "--listener", frank.name])
        .args(["--other", carol.name, "--other-password", carol.password])
        .args(["--video-phone", dave.name])
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
        if let Err(why) = common::scripts::asked(&mut child, &sync, name) {
            fail_with_logs(&why, &[phone], &server);
        }
    };

    // The page's call to bob ends (the page hangs up); then bob calls alice's page.
    wait_for("want-peer-calls", &phone);
    let first_call = listener.recorded("-dec.wav");
    let captured = capture.finish();
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
    // alice's page sends bob on to carol's; bob's baresip calls her, then hangs up.
    wait_for("want-peer-hangs-up-3", &phone);
    phone.command("/hangup");
    std::fs::write(sync.join("peer-hangs-up-3"), b"").unwrap();
    // dave's video phone (SIPp) registers and waits for the page's video call.
    wait_for("want-video-phone", &phone);
    let dave_port = common::free_port();
    Sipp::new("register.xml", dave_port)
        .to(&server)
        .service(dave.name)
        .auth(dave.name, dave.password)
        .run()
        .assert_success("dave registers", &server);
    let dave_media = RtpPeer::bind();
    let video_phone = Sipp::new("uas_video_info.xml", dave_port)
        .var("rtp_port", dave_media.port)
        .timeout(Duration::from_secs(40))
        .spawn();
    std::fs::write(sync.join("video-phone"), b"").unwrap();

    let run = child.wait_with_output().expect("the browser script");
    if !run.status.success() {
        fail_with_logs(
            &format!(
                "the browser script failed ({}):\n{}\n{}",
                run.status,
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            ),
            &[&phone, &listener],
            &server,
        );
    }
    println!("{}", String::from_utf8_lossy(&run.stdout));
    quit(&mut phone);
    quit(&mut listener);
    if std::env::var_os("SAMBUNG_KEEP").is_some() {
        let _ = std::fs::write(sync.join("frank.log"), listener.log());
        let _ = std::fs::write(sync.join("server.log"), server.log());
    }

    // The relay asked dave's phone for keyframes by SIP INFO (his description listed no RTCP
    // feedback), and his own INFO was answered.
    let dave_run = video_phone.wait();
    dave_run.assert_success("dave's video phone answers and asks for a keyframe by INFO (uas_video_info.xml)", &server);
    let infos = dave_run
        .received()
        .into_iter()
        .filter(|m| m.method() == "INFO" && m.status().is_none() && m.text.contains("<picture_fast_update/>"))
        .count();
    println!("dave's phone was asked for a keyframe by {infos} INFO(s)");
    assert!(infos >= 1, "the relay asked dave's phone for a keyframe by SIP INFO\n{}", dave_run.describe());

    // What bob heard of the page's microphone in the first call.
    let Some(heard) = first_call.last() else {
        fail_with_logs("frank recorded nothing of the first call", &[&listener], &server)
    };
    let (rms, reference_rms) = (wav_rms(heard), wav_rms(&microphone));
    let score = pesq(&microphone, heard, "nb");
    println!(
        "frank heard {:.1} s of the page: RMS {rms:.0} (sent {reference_rms:.0}); PESQ (nb, PCMU from the browser through the relay) {score:.2}",
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
    let (delay, lowest) = aligned_segments(&microphone, heard);
    println!(
        "the page's speech at frank: voiced half seconds near one offset ({:+.1} ms), correlation at least {lowest:.3} (all but two)",
        delay as f64 / 8.0
    );
    assert!(rms >= reference_rms * 0.2, "frank heard (near) silence from the page: RMS {rms:.0}");
    assert!(
        lowest >= MIN_CORRELATION,
        "a half second of the page's speech reached frank changed or out of step: correlation {lowest:.3}"
    );
    assert!(score >= MIN_PESQ, "the page's speech scored PESQ {score:.2} < {MIN_PESQ} at frank's phone");
    assert_eq!(keys, "12#2*", "the page's keys as the relay read them (its call to frank, then its mailbox)");
    assert!(server_log.contains("mailbox opened"), "the page reached its mailbox");
    // bob's baresip got the page's video in his call to it (VP8 through the relay), and again
    // in the audio call whose camera the page turned on.
    let log = common::clients::strip_ansi(&phone.log());
    let video_calls = log.matches("incoming rtp for 'video' established").count();
    assert!(video_calls >= 2, "bob's baresip received the page's video in {video_calls} call(s), not in both");
    // Toward the browser, the relay's port carried only STUN, DTLS and SRTP: no packet there
    // holds any of the plain RTP payloads that crossed to and from bob's phone.
    let webrtc_port: u16 = server_log
        .lines()
        .find(|l| l.contains("WebRTC leg started"))
        .and_then(|l| l.split("local=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .expect("the relay logs where its WebRTC leg listens");
    let listener_ports = listener.config.rtp_ports;
    let from_listener = |port: u16| (listener_ports.0..=listener_ports.1).contains(&port);
    let plain: std::collections::HashSet<Vec<u8>> = captured
        .iter()
        .filter(|(source, destination, _)| from_listener(*source) || from_listener(*destination))
        .filter_map(|(_, _, data)| sambung_media::rtp::RtpPacket::parse(data).ok().map(|p| p.payload().to_vec()))
        .filter(|payload| payload.len() >= 16)
        .map(|payload| payload[..16].to_vec())
        .collect();
    let browser_side: Vec<&Vec<u8>> = captured
        .iter()
        .filter(|(source, destination, _)| *source == webrtc_port || *destination == webrtc_port)
        .map(|(_, _, data)| data)
        .collect();
    let (mut stun, mut dtls, mut srtp, mut other) = (0, 0, 0, 0);
    for data in &browser_side {
        match data.first() {
            Some(0..=3) if data.get(4..8) == Some(&[0x21, 0x12, 0xa4, 0x42]) => stun += 1,
            Some(20..=63) => dtls += 1,
            Some(128..=191) => srtp += 1,
            _ => other += 1,
        }
        assert!(
            !data.windows(16).any(|w| plain.contains(w)),
            "a packet toward the browser carries a plain payload of frank's call"
        );
    }
    println!(
        "the relay's WebRTC port {webrtc_port}: {stun} STUN, {dtls} DTLS, {srtp} SRTP/SRTCP, {other} other; {} plain payloads on frank's side",
        plain.len()
    );
    assert!(plain.len() > 300, "the capture holds frank's side of the call");
    assert!(stun > 0 && dtls > 0 && srtp > 300 && other == 0, "only STUN, DTLS and SRTP toward the browser");
    // The browser leg ran on the relay as WebRTC.
    assert!(server_log.contains("WebRTC leg connected"), "the relay's WebRTC leg connected");
    // bob's baresip reported on the page's video it received (RTCP receiver reports), and the
    // relay steered what the page may send by them.
    let steered = server_log.lines().filter(|l| l.contains("the phone's loss report")).count();
    println!("the phone's loss reports on the page's video: {steered}");
    assert!(steered > 0, "no loss report of bob's phone reached the browser's leg");
}
