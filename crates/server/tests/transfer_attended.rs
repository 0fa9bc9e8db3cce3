//! Attended transfers (RFC 5589 §7, RFC 3891) between a real phone and the web app in a real
//! browser (see tests/web/transfer.py). The phone is Linphone's console client (linphonec,
//! Debian's linphone-cli): baresip 1.0 knows no Replaces at all and has no attended-transfer
//! command.
//!
//! First the phone transfers: erin's linphonec calls carol's page, holds that call, calls
//! alice's page, and transfers carol to alice (`transfer 1 --to-call 2`: a REFER whose Refer-To
//! carries Replaces). We are the back-to-back agent, so the REFER is ours to carry out: carol's
//! page is asked to call alice with Replaces naming our dialog with erin, and alice's page is
//! rung with Replaces naming its own call with erin, which it takes at once and hangs up.
//! Alice and carol then talk. Then the app transfers: erin calls alice, whose page holds him,
//! talks to carol first and completes the transfer: erin's linphonec is asked (REFER with
//! Replaces) to call carol in place of alice, and carol's page takes that call in place of
//! alice's.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::clients::{User, require_tool, server_config, server_rtp_range, server_with_users, speech_wav, tail};
use common::linphone::Linphone;

#[test]
fn attended_transfers_between_a_phone_and_the_app() {
    require_tool("chromium", "chromium");
    let alice = User::new("alice", "amber meadow 73");
    let carol = User::new("carol", "violet harbour 58");
    let erin = User::new("erin", "green kettle 41");
    let server = server_with_users(&server_config(server_rtp_range()), &[alice, carol, erin]);
    let sync = common::temp_dir("attended");
    let _cleanup = (std::env::var_os("SAMBUNG_KEEP").is_none()).then(|| common::clients::Cleanup(sync.clone()));
    let mut phone = Linphone::start(&sync.join("erin"), &erin, &server);
    let fail = |what: &str, phone: &Linphone| -> ! {
        panic!(
            "{what}\n--- linphonec console (tail) ---\n{}\n--- linphonec log (tail) ---\n{}\n--- server log (tail) ---\n{}",
            tail(&phone.output(), 6000),
            tail(&phone.log(), 12000),
            tail(&server.log(), 12000)
        )
    };
    if !phone.wait_registered(Duration::from_secs(15)) {
        fail("erin's linphonec did not register", &phone);
    }
    // What the phone says in its calls (without a file it sends no RTP at all).
    let says = speech_wav(&sync, "erin-says", "Hello, this is Erin on a Linphone.", 0.5, 40.0);
    phone.command(&format!("play {}", says.display()));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/transfer.py");
    let mut child = Command::new(common::scripts::python())
        .arg(&script)
        .args(["--url", &format!("https://127.0.0.1:{}", server.ports.wss)])
        .args(["--user", alice.name, "--password", alice.password])
        .args(["--other", carol.name, "--other-password", carol.password])
        .args(["--phone", erin.name])
        .arg("--sync")
        .arg(&sync)
        .arg("--shots")
        .arg(common::scripts::screenshots())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the browser test with SAMBUNG_PLAYWRIGHT_PYTHON");
    let udp = server.ports.udp;
    let mut step = |name: &str, phone: &mut Linphone, commands: &[String]| {
        if let Err(why) = common::scripts::asked(&mut child, &sync, &format!("want-{name}")) {
            fail(&why, phone);
        }
        for command in commands {
            phone.command(command);
            std::thread::sleep(Duration::from_millis(300));
        }
        std::fs::write(sync.join(name), b"").unwrap();
    };

    // The phone transfers carol to alice: call 1 to carol, held; call 2 to alice; then the
    // transfer of call 1 to call 2's party.
    step("phone-calls-other", &mut phone, &[format!("call sip:carol@127.0.0.1:{udp}")]);
    step("phone-calls-user", &mut phone, &["pause 1".into(), format!("call sip:alice@127.0.0.1:{udp}")]);
    step("phone-transfers", &mut phone, &["transfer 1 --to-call 2".into()]);
    // alice's page sends erin on to carol after talking to her first.
    step("phone-calls-user-again", &mut phone, &[format!("call sip:alice@127.0.0.1:{udp}")]);

    let run = child.wait_with_output().expect("the browser script");
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    if !run.status.success() {
        fail(
            &format!("the browser script failed ({}):\n{out}\n{}", run.status, String::from_utf8_lossy(&run.stderr)),
            &phone,
        );
    }
    println!("{out}");
    let log = server.log();
    // Both transfers went through the server as REFERs with Replaces and ended well.
    let done = log.lines().filter(|l| l.contains("transfer over") && l.contains("status=200")).count();
    if done < 2 {
        fail(&format!("{done} transfer(s) ended well in the server's log, not 2"), &phone);
    }
    // The phone's own side: asked to call with Replaces (the second transfer), it sent an INVITE
    // with a Replaces header (its REFER of the first one carries Replaces only inside Refer-To).
    let linphone_log = phone.log();
    assert!(linphone_log.contains("\nReplaces: "), "linphonec sent no request with a Replaces header");
}
