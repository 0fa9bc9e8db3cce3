//! The web app in a real browser (Debian's Chromium driven by Playwright for Python, see
//! tests/web/browser.py) against the built `sambung serve`, over HTTPS on its secure WebSocket
//! listener. While the page shows bob as a contact, his baresip registers and quits, when the
//! script asks for it (a file in a directory both watch), and the page must follow live. Then
//! the account made in the browser registers a SIP phone (SIPp) at once.
//!
//! scripts/test.sh installs Chromium and a virtual environment with Playwright and
//! openapi-spec-validator, and names its Python in SAMBUNG_PLAYWRIGHT_PYTHON; without it the
//! test fails and says so (never skips). Screenshots of the main pages go to
//! `target/web-screenshots` (or SAMBUNG_SCREENSHOTS) for review.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Server;
use common::clients::{
    BaresipConfig, REALM, Sipp, User, add_user, quit, require_tool, server_config, server_rtp_range, server_with_users,
    speech_wav, start_registered, tone_ulaw,
};

/// What alice writes in the page, and bob answers from his baresip (also in tests/web/browser.py).
const FROM_THE_APP: &str = "hello bob, written in the app";
const FROM_BARESIP: &str = "hi alice, typed on baresip";

fn https(server: &Server) -> String {
    format!("https://127.0.0.1:{}", server.ports.wss)
}

#[test]
fn the_app_in_chromium() {
    require_tool("chromium", "chromium");
    require_tool("sipp", "sip-tester");
    let python = common::scripts::python();
    let extra = server_config(server_rtp_range());
    let peer = User::new("bob", "meadow-amber-73");
    // alice (made in the browser) is an agent of a queue, and a call of hers was recorded.
    let queue = "[[queues]]\nname = \"support\"\nextension = \"700\"\nagents = [\"alice\"]\n";
    let open = server_with_users(&format!("{extra}{queue}"), &[peer]);
    add_recording(&open, "1800000000-call-7", 7, "bob", "alice");
    let admin = User::new("root", "amber meadow 73");
    // Made while the server runs, as an operator would: `sambung user add root --admin`.
    let config = open.dir.join("sambung.toml");
    add_user(&config, &admin);
    let out = Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(["user", "admin", "root", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sambung");
    assert!(out.status.success(), "sambung user admin: {}", String::from_utf8_lossy(&out.stderr));
    let closed = Server::start(&format!("{extra}\n[web]\nsignup = \"closed\"\n"));

    let shots = common::scripts::screenshots();
    let sync = common::temp_dir("web-sync");
    let alice = User::new("alice", "amber meadow 73");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/browser.py");
    // What the browser's fake microphone says (its voice messages).
    let microphone = speech_wav(&sync, "microphone", "This is a voice message, recorded in the browser.", 0.2, 1.0);
    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--url", &https(&open), "--closed-url", &https(&closed)])
        .args(["--user", alice.name, "--password", alice.password, "--peer", peer.name])
        .args(["--admin", admin.name, "--admin-password", admin.password])
        .arg("--shots")
        .arg(&shots)
        .arg("--sync")
        .arg(&sync)
        .arg("--microphone")
        .arg(&microphone)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the browser test with SAMBUNG_PLAYWRIGHT_PYTHON");

    // bob's phone comes and goes when the page is ready to watch it.
    // What bob's microphone says in every call: silence through the voicemail greeting, then
    // his message.
    let audio = speech_wav(&sync, "bob-says", "Hello Alice, this is Bob. Call me back.", 16.0, 1.0);
    let phone_dir = sync.join("bob-phone");
    // Waits for the script to ask for `name`; if it ends first, its output says why.
    let mut wait_for = |name: &str| {
        if let Err(why) = common::scripts::asked(&mut child, &sync, name) {
            panic!("{why}\nserver log:\n{}", open.log());
        }
    };
    wait_for("want-online");
    let mut config = BaresipConfig::new(peer.name, peer.password, &open, &audio);
    config.contacts.push(format!("\"Alice\" <sip:alice@127.0.0.1:{}>", open.ports.udp));
    let mut phone = start_registered(&phone_dir, config, &open);
    std::fs::write(sync.join("online"), b"").unwrap();
    // Chat both ways: what alice wrote in the page reaches bob's baresip; bob answers from it.
    wait_for("want-chat");
    if !phone.wait_for(Duration::from_secs(20), |log| log.contains(FROM_THE_APP)) {
        common::clients::fail_with_logs("bob's baresip did not show alice's message from the app", &[&phone], &open);
    }
    phone.command(&format!("/message {FROM_BARESIP}"));
    std::fs::write(sync.join("chat"), b"").unwrap();
    // A voice message recorded in the page reaches the phone as a link.
    wait_for("want-voice-link");
    if !phone.wait_for(Duration::from_secs(20), |log| log.contains("Voice message (") && log.contains("/#/clip?id=")) {
        common::clients::fail_with_logs("bob's baresip did not get the voice message's link", &[&phone], &open);
    }
    std::fs::write(sync.join("voice-link"), b"").unwrap();

    // Forwarding set in the page: root's call to alice (SIPp) rings bob's baresip, which answers.
    wait_for("want-forwarded-call");
    let caller = Sipp::new("uac_call.xml", common::free_port())
        .to(&open)
        .service(alice.name)
        .var("caller", admin.name)
        .auth(admin.name, admin.password);
    std::fs::write(caller.dir.join("speech.ulaw"), tone_ulaw(0, 8000 * 5)).unwrap();
    let call = caller.run();
    call.assert_success("root's call to alice, forwarded in the page to bob", &open);
    if !phone.wait_for(Duration::from_secs(10), |log| log.contains("Call established")) {
        common::clients::fail_with_logs("the forwarded call did not reach bob's baresip", &[&phone], &open);
    }
    std::fs::write(sync.join("forwarded-call"), b"").unwrap();

    // With forwarding off again, bob calls alice (no device): voicemail takes his message,
    // which he speaks after the greeting; his baresip hangs up when its file ends.
    wait_for("want-voicemail");
    let ended = |log: &str| log.matches(" terminated (duration").count();
    let before = ended(&phone.log());
    phone.command(&format!("/dial sip:alice@127.0.0.1:{}", open.ports.udp));
    if !phone.wait_for(Duration::from_secs(60), |log| ended(log) > before) {
        common::clients::fail_with_logs("bob's call to alice's voicemail did not end within 60 s", &[&phone], &open);
    }
    std::fs::write(sync.join("voicemail"), b"").unwrap();
    // The account made in the browser registers a phone at once, with the same password; the
    // page then signs that device out.
    wait_for("want-alice-phone");
    let port = common::port_block(2);
    let sipp = Sipp::new("register.xml", port).to(&open).service(alice.name).auth(alice.name, alice.password).run();
    sipp.assert_success(&format!("REGISTER of the account made in the app (realm {REALM})"), &open);
    let ok = sipp.final_response("REGISTER").expect("a final response");
    assert_eq!(ok.status(), Some(200), "{}", sipp.describe());
    std::fs::write(sync.join("alice-phone"), b"").unwrap();
    wait_for("want-offline");
    quit(&mut phone);
    std::fs::write(sync.join("offline"), b"").unwrap();
    let run = child.wait_with_output().expect("the browser script");
    assert!(
        run.status.success(),
        "the browser test failed ({}):\n{}\n{}\nserver log:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        open.log()
    );

    assert!(open.log().contains("account made by sign-up"), "the sign-up is logged");
    let _ = std::fs::remove_dir_all(&sync);
}

/// A recording of a call between `caller` and `callee`, as the server keeps one: a two-channel
/// 16 kHz WAV file (a second of tone, made by sox) and its row.
fn add_recording(server: &Server, name: &str, call: i64, caller: &str, callee: &str) {
    let dir = server.dir.join("data").join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "2", "-b", "16"])
        .arg(dir.join(format!("{name}.wav")))
        .args(["synth", "1", "sine", "440"])
        .status()
        .expect("run sox");
    assert!(status.success(), "sox made no recording");
    let url = format!("sqlite://{}", server.dir.join("data").join("sambung.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = sambung_store::Store::open(&url).await.expect("open the server's database");
        let new = sambung_store::NewRecording {
            name: name.into(),
            call_number: call,
            caller: caller.into(),
            callee: callee.into(),
            started_at: 1_800_000_000,
        };
        store.add_recording(&new).await.expect("add a recording");
        store.close().await;
    });
}
