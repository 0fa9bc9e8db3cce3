//! SIPp (Debian package `sip-tester`, installed by scripts/test.sh) sends OPTIONS over UDP and
//! TCP (and TLS where the installed SIPp has it) and must get 200 OK for every one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Server, free_port, temp_dir};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/options.xml")
}

/// `sipp -v`, or a clear failure when SIPp is missing.
fn sipp_version() -> String {
    match Command::new("sipp").arg("-v").stdin(Stdio::null()).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        Err(e) => panic!("cannot run sipp ({e}): install the Debian package sip-tester (./scripts/test.sh does)"),
    }
}

/// Runs the OPTIONS scenario 10 times over `transport` (`u1`, `t1`, `l1`).
fn sipp(server: &Server, port: u16, transport: &str, extra: &[&str]) -> Output {
    let dir = temp_dir("sipp");
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-sf", scenario().to_str().unwrap()])
        .args(["-t", transport, "-m", "10", "-timeout", "20s", "-timeout_error"])
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(extra)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run sipp");
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sipp -t {transport} failed\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    out
}

#[test]
fn sipp_options_over_udp() {
    sipp_version();
    let server = Server::start("");
    sipp(&server, server.ports.udp, "u1", &[]);
}

#[test]
fn sipp_options_over_tcp() {
    sipp_version();
    let server = Server::start("");
    sipp(&server, server.ports.tcp, "t1", &[]);
}

/// SIPp over TLS: Debian's `sip-tester` is built without OpenSSL, so on such a machine this
/// scenario cannot run and TLS is proven by OpenSSL's own client in tests/openssl.rs instead.
/// Where a SIPp with TLS is installed, the scenario runs here.
#[test]
fn sipp_options_over_tls_when_sipp_has_tls() {
    if !sipp_version().contains("TLS") {
        eprintln!("this sipp has no TLS; tests/openssl.rs covers TLS with OpenSSL's client");
        return;
    }
    let server = Server::start("");
    let dir = temp_dir("sipp-cert");
    let client = rcgen::generate_simple_self_signed(vec!["sipp.invalid".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, client.cert.pem()).unwrap();
    std::fs::write(&key, client.signing_key.serialize_pem()).unwrap();
    sipp(&server, server.ports.tls, "l1", &["-tls_cert", cert.to_str().unwrap(), "-tls_key", key.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(dir);
}
