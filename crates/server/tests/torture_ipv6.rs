//! Our messages for the cases of RFC 5118 (SIP and IPv6; see
//! `crates/sip/tests/rfc5118_messages/mod.rs`) sent to the running server over UDP and TCP, and
//! the answers checked; after each one an OPTIONS shows the server still answers.

mod common;

#[path = "../../sip/tests/rfc5118_messages/mod.rs"]
mod rfc5118;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::{Server, has_call_id, options, read_message, status_of};
use rfc5118::{CASES, Case, Verdict};

const WAIT: Duration = Duration::from_secs(5);

/// What the server answers each case. The server listens on 127.0.0.1 and serves the example
/// domains, so a Request-URI naming an IPv6 literal names someone else: 403 Relaying Denied,
/// which is the answer a registrar or proxy that does not relay gives a well-formed request for
/// another host (an INVITE is challenged instead: an account may call out); only a parse
/// failure would be 400.
fn expected(case: &Case) -> u16 {
    if let Verdict::Invalid(status) = case.verdict {
        // §4.2: the RFC's 400.
        return status;
    }
    match case.name {
        // Well-formed requests for hosts that are not this server (§4.1, 4.3, 4.4: REGISTER;
        // 4.5: BYE and OPTIONS; 4.10: OPTIONS, the three-colon one tolerated).
        "register-ipv6-references"
        | "register-port-inside-brackets"
        | "register-port-after-brackets"
        | "bye-received-bracketed"
        | "options-received-bare"
        | "options-three-colons"
        | "options-two-colons" => 403,
        // §4.6, 4.8: an INVITE for another host is a call out of the service, which only an
        // authenticated caller may make (and only where the toll-fraud limits allow): challenged.
        "invite-ipv6-sdp" | "invite-sdp-two-families" => 407,
        // §4.7: a BYE for our domain in a dialog we do not have.
        "bye-mixed-vias" => 481,
        // §4.9: an INVITE for our domain from an unauthenticated caller: challenged.
        "invite-ipv4-mapped" => 407,
        other => panic!("{other} is not in this test's table: add it"),
    }
}

fn domains() -> &'static str {
    "domains = [\"example.com\", \"example.net\", \"host.example.net\"]\n"
}

/// Sends `bytes` then an OPTIONS probe; returns the answer to `bytes` (if any) or an error.
fn over_udp(server: &Server, socket: &UdpSocket, bytes: &[u8], probe: &str) -> Result<Option<u16>, String> {
    let local = socket.local_addr().unwrap();
    socket.send_to(bytes, server.udp_addr()).unwrap();
    let probe = &common::probe_id(probe, bytes);
    socket.send_to(&options(server.udp_addr(), "UDP", local, probe), server.udp_addr()).unwrap();
    let mut buf = vec![0u8; 65535];
    let mut status = None;
    loop {
        let Ok((n, _)) = socket.recv_from(&mut buf) else { return Err("server stopped answering".into()) };
        if has_call_id(&buf[..n], probe) {
            return if status_of(&buf[..n]) == 200 { Ok(status) } else { Err("the probe was not answered 200".into()) };
        }
        if status.replace(status_of(&buf[..n])).is_some() {
            return Err("more than one answer".into());
        }
    }
}

#[test]
fn rfc5118_over_udp() {
    let server = Server::start(&format!("{}{}", domains(), common::probed_shards()));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let want = expected(case);
        match over_udp(&server, &socket, &case.message.bytes(), &format!("probe-udp-{i}")) {
            Ok(Some(got)) if got == want => {}
            Ok(got) => failures.push(format!("§{} {} over UDP: expected {want}, got {got:?}", case.section, case.name)),
            Err(e) => failures.push(format!("§{} {} over UDP: {e}", case.section, case.name)),
        }
    }
    // A datagram whose body ends before its Content-Length: a malformed request (RFC 3261
    // §18.3), answered 400.
    match over_udp(&server, &socket, &rfc5118::body_cut_short(), "probe-udp-short") {
        Ok(Some(400)) => {}
        Ok(got) => failures.push(format!("body cut short over UDP: expected 400, got {got:?}")),
        Err(e) => failures.push(format!("body cut short over UDP: {e}")),
    }
    assert!(failures.is_empty(), "{}\n--- server log ---\n{}", failures.join("\n"), server.log());
    assert!(!server.log().contains("panicked"));
}

#[test]
fn rfc5118_over_tcp() {
    let server = Server::start(&format!("{}{}", domains(), common::probed_shards()));
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        stream.write_all(&case.message.bytes()).unwrap();
        let mut buf = Vec::new();
        let got = read_message(&mut stream, &mut buf, WAIT).map(|m| status_of(&m));
        if got != Some(expected(case)) {
            failures.push(format!(
                "§{} {} over TCP: expected {}, got {got:?}",
                case.section,
                case.name,
                expected(case)
            ));
        }
        // The server is still alive: a fresh connection gets OPTIONS answered.
        let mut fresh = TcpStream::connect(server.tcp_addr()).unwrap();
        fresh.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let local = fresh.local_addr().unwrap();
        fresh.write_all(&options(server.tcp_addr(), "TCP", local, &format!("alive-{i}"))).unwrap();
        let mut buf = Vec::new();
        let alive = read_message(&mut fresh, &mut buf, WAIT).map(|m| status_of(&m));
        if alive != Some(200) {
            failures.push(format!("after §{} {} over TCP: OPTIONS got {alive:?}", case.section, case.name));
        }
    }
    assert!(failures.is_empty(), "{}\n--- server log ---\n{}", failures.join("\n"), server.log());
    assert!(!server.log().contains("panicked"));
}
