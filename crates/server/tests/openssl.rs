//! TLS against a TLS stack that is not ours: OpenSSL's `s_client` (Debian package `openssl`)
//! carries a SIP OPTIONS to the TLS listener and must bring back 200 OK, for TLS 1.2 and 1.3.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

fn options(port: u16, call_id: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1:{port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:127.0.0.1>\r\n\
         From: <sip:openssl@127.0.0.1>;tag=o1\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Runs `openssl s_client` with `version` (`-tls1_2` / `-tls1_3`), writes one OPTIONS and reads
/// until the answer's blank line.
fn exchange(server: &Server, version: &str) -> String {
    let port = server.ports.tls;
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-quiet", "-ign_eof", version])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl s_client (Debian package openssl)");
    let call_id = format!("openssl-{}", version.trim_start_matches('-'));
    child.stdin.as_mut().unwrap().write_all(options(port, &call_id).as_bytes()).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let _ = tx.send(got);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.contains(&format!("Call-ID: {call_id}")), "answer to our request\n{text}\n{}", server.log());
    text
}

#[test]
fn openssl_client_gets_200_over_tls_1_3_and_1_2() {
    let server = Server::start("");
    for version in ["-tls1_3", "-tls1_2"] {
        let answer = exchange(&server, version);
        assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{version}: {answer}");
    }
}
