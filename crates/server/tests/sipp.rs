//! SIPp (Debian package `sip-tester`, installed by scripts/test.sh) sends OPTIONS over UDP and
//! TCP and must get 200 OK for every one.
//!
//! Not over TLS: Debian's SIPp is built without OpenSSL (`sipp -v` shows no TLS; the package
//! does not depend on libssl) and no TLS-capable SIPp comes from Debian, PyPI, crates.io or npm,
//! so such a test could only ever skip. TLS is proven with OpenSSL's own client in
//! tests/openssl.rs and with baresip over TLS in tests/media_baresip.rs.

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

/// Runs the OPTIONS scenario 10 times over `transport` (`u1`, `t1`).
fn sipp(server: &Server, port: u16, transport: &str) -> Output {
    let dir = temp_dir("sipp");
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-sf", scenario().to_str().unwrap()])
        .args(["-t", transport, "-m", "10", "-timeout", "20s", "-timeout_error"])
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
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
    sipp(&server, server.ports.udp, "u1");
}

#[test]
fn sipp_options_over_tcp() {
    sipp_version();
    let server = Server::start("");
    sipp(&server, server.ports.tcp, "t1");
}
