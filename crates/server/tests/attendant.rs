//! The auto-attendant with real phones (baresip): outside office hours (today is a holiday of
//! the main menu, in its time zone) the night menu answers the menu's extension with the
//! operator's recorded greeting; the caller presses 1 (RFC 4733), hears the ringing tone, and is
//! connected to the engineer on call, whose phone answers: each hears the other. A number
//! assigned to the menu with `sambung number add --menu` is listed as the menu's.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::clients::*;
use common::temp_dir;

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User::new("bob", "Builder-Can-42");

const ALICE_SPEECH: &str = "Hello, I need the engineer on call. The lift on the third floor is stuck again, \
                            and the alarm keeps ringing. Please come as soon as you can.";
const BOB_SPEECH: &str = "This is Bob, the engineer on call. I am on my way.";
const GREETING: &str = "Thank you for calling. Our office is closed. For the engineer on call, press 1.";

/// Yesterday, today and tomorrow (UTC), as holidays: the menu is closed whenever the test runs.
fn around_today() -> String {
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let days = [today.yesterday(), Ok(today), today.tomorrow()];
    days.iter().map(|d| format!("\"{}\"", d.as_ref().expect("a date next to today"))).collect::<Vec<_>>().join(", ")
}

fn menus(greeting: &Path) -> String {
    format!(
        "[[menus]]\nname = \"main\"\nextension = \"500\"\ntime_zone = \"Europe/London\"\n\
         hours = [\"mon-sun 00:00-24:00\"]\nholidays = [{}]\nclosed = \"night\"\n\
         options = {{ \"1\" = \"sales\" }}\n\
         [[menus]]\nname = \"night\"\ngreeting = \"{}\"\ndial_by_extension = false\n\
         options = {{ \"1\" = \"bob\", \"9\" = \"hangup\" }}\n",
        around_today(),
        greeting.display()
    )
}

#[test]
fn outside_office_hours_a_key_connects_the_caller_to_the_engineer_on_call() {
    require_tool("baresip", "baresip");
    let work = temp_dir("attendant");
    let _cleanup = Cleanup(work.clone());
    let greeting = speech_wav(&work, "greeting", GREETING, 0.2, 0.3);
    let extra = format!("{}{}", server_config(server_rtp_range()), menus(&greeting));
    let server = server_with_users(&extra, &[ALICE, BOB]);

    // A number of the service answered by the menu.
    let number = Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(["number", "add", "+442079460500", "--menu", "main", "--config"])
        .arg(server.dir.join("sambung.toml"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run sambung number add");
    let listed = Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(["number", "list", "--config"])
        .arg(server.dir.join("sambung.toml"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run sambung number list");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(number.status.success(), "{}", String::from_utf8_lossy(&number.stderr));
    assert!(listed.contains("+442079460500") && listed.contains("menu main"), "{listed}");

    let bob_says = speech_wav(&work, "bob-says", BOB_SPEECH, 0.5, 30.0);
    let bob =
        start_registered(&work.join("bob"), BaresipConfig::new(BOB.name, BOB.password, &server, &bob_says), &server);
    // alice talks from the start and for long enough to be heard once connected.
    let alice_says = speech_wav(&work, "alice-says", &[ALICE_SPEECH; 4].join(" "), 0.5, 2.0);
    let mut config = BaresipConfig::new(ALICE.name, ALICE.password, &server, &alice_says);
    config.ctrl_port = Some(common::free_port());
    config.commands.push(format!("/dial sip:500@127.0.0.1:{}", server.ports.udp));
    let mut alice = start_registered(&work.join("alice"), config, &server);
    let mut bob = bob;
    if !alice.wait_for(Duration::from_secs(20), |log| log.contains("Call established")) {
        fail_with_logs("the attendant did not answer within 20 s", &[&alice, &bob], &server);
    }
    if !poll_until(Duration::from_secs(10), || server.log().contains("attendant answering")) {
        fail_with_logs("the attendant did not start", &[&alice, &bob], &server);
    }
    let log = server.log();
    let line = log.lines().find(|l| l.contains("attendant answering")).unwrap_or_default();
    assert!(line.contains("menu=night") || line.contains("menu=\"night\""), "closed today: the night menu: {line}");
    // Into the greeting, alice presses 1.
    std::thread::sleep(Duration::from_secs(2));
    alice.send_dtmf("1");
    if !bob.wait_for(Duration::from_secs(20), |log| log.contains("Call established")) {
        fail_with_logs("bob's phone did not answer the connected call within 20 s", &[&alice, &bob], &server);
    }
    if !poll_until(Duration::from_secs(5), || server.log().contains("connected")) {
        fail_with_logs("the server did not connect the call", &[&alice, &bob], &server);
    }
    // They talk for a while; alice hangs up.
    std::thread::sleep(Duration::from_secs(8));
    alice.command("/hangup");
    if !bob.wait_for(Duration::from_secs(10), |log| log.contains(" terminated (duration")) {
        fail_with_logs("bob's call did not end when alice hung up", &[&alice, &bob], &server);
    }
    quit(&mut alice);
    quit(&mut bob);
    // bob heard alice's speech, and alice heard bob's.
    let heard = |phone: &Baresip, who: &str| match phone.recorded("-dec.wav").last() {
        Some(path) => wav_rms(path),
        None => fail_with_logs(&format!("{who} recorded nothing"), &[&alice, &bob], &server),
    };
    let (bob_heard, reference) = (heard(&bob, "bob"), wav_rms(&alice_says));
    assert!(
        bob_heard > reference * 0.2,
        "bob heard too little of alice: RMS {bob_heard:.0} against her speech's {reference:.0}"
    );
    let log = server.log();
    let keys = log_keys(&log);
    assert_eq!(keys, ["1"], "the key the relay read from alice's RTP");
    // What alice heard after she was connected (her last 8 s, before she hung up): bob's
    // sentence, not the greeting or the ringing tone, which came before.
    let Some(recording) = alice.recorded("-dec.wav").last().cloned() else {
        fail_with_logs("alice recorded nothing", &[&alice, &bob], &server)
    };
    let (samples, rate) = read_wav(&recording);
    let tail = &samples[samples.len().saturating_sub(8 * rate as usize)..];
    let alice_heard = rms(tail);
    let bob_reference = wav_rms(&speech_wav(&work, "bob-reference", BOB_SPEECH, 0.0, 0.0));
    println!(
        "bob heard RMS {bob_heard:.0} (alice speaks at {reference:.0}); alice heard RMS {alice_heard:.0} at the end"
    );
    assert!(
        alice_heard > bob_reference * 0.1,
        "alice heard too little of bob once connected: RMS {alice_heard:.0} against his speech's {bob_reference:.0}"
    );
}

/// The keys in the server log's `key pressed` lines (RFC 4733 events the relay got).
fn log_keys(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("key pressed") && !l.contains("INFO)"))
        .filter_map(|l| l.split("key=").nth(1).and_then(|rest| rest.split_whitespace().next()))
        .collect()
}
