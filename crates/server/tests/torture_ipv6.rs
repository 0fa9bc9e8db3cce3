//! RFC 5118 torture messages (SIP and IPv6) sent to the running server over UDP and TCP,
//! answers checked against `crates/sip/tests/data/rfc5118/index.tsv`; after each one an OPTIONS
//! shows the server still answers.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use common::{Server, has_call_id, options, read_message, status_of};

const WAIT: Duration = Duration::from_secs(5);

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip/tests/data/rfc5118")
}

/// Every `.dat` listed in index.tsv, as bytes exactly as stored.
fn messages() -> BTreeMap<String, Vec<u8>> {
    let index = std::fs::read_to_string(dir().join("index.tsv")).expect("index.tsv");
    let files: BTreeMap<String, Vec<u8>> = index
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next())
        .map(|f| (f.to_owned(), std::fs::read(dir().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))))
        .collect();
    assert_eq!(files.len(), 12, "RFC 5118 has twelve messages");
    files
}

/// The message with its Content-Length set to the body it carries (three of the RFC's messages
/// declare another length; see index.tsv).
fn with_true_length(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| match line.split_once(':') {
            Some((name, _)) if name.eq_ignore_ascii_case("Content-Length") => format!("{name}: {}", body.len()),
            _ => line.to_owned(),
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

/// What the server answers each message (sent with its true length). The server listens on
/// 127.0.0.1 and serves the example domains, so a Request-URI naming an IPv6 literal names
/// someone else: 403 Relaying Denied, which is the answer a registrar or proxy that does not
/// relay gives a well-formed request for another host; only a parse failure would be 400.
fn expected(file: &str) -> u16 {
    match file {
        // §4.2: the RFC's 400.
        "ipv6-bad.dat" => 400,
        // Well-formed requests for hosts that are not this server (§4.1, 4.3, 4.4: REGISTER;
        // 4.5: BYE and OPTIONS; 4.6, 4.8: INVITE; 4.10: OPTIONS, the three-colon one tolerated).
        "ipv6-good.dat"
        | "port-ambiguous.dat"
        | "port-unambiguous.dat"
        | "via-received-param-with-delim.dat"
        | "via-received-param-no-delim.dat"
        | "ipv6-in-sdp.dat"
        | "mult-ip-in-sdp.dat"
        | "ipv6-bug-abnf-3-colons.dat"
        | "ipv6-correct-abnf-2-colons.dat" => 403,
        // §4.7: a BYE for our domain in a dialog we do not have.
        "mult-ip-in-header.dat" => 481,
        // §4.9: an INVITE for our domain from an unauthenticated caller: challenged.
        "ipv4-mapped-ipv6.dat" => 407,
        other => panic!("{other} is not in this test's table: add it"),
    }
}

/// What the message exactly as the RFC has it gets over UDP, where the declared Content-Length
/// frames the body (RFC 3261 §18.3).
fn expected_as_published(file: &str) -> u16 {
    match file {
        // Declares 268 bytes and carries 251: a request whose body ends early.
        "ipv6-in-sdp.dat" => 400,
        // §4.8 and §4.9 declare less than they carry: the rest is discarded, the rest processed.
        other => expected(other),
    }
}

fn domains() -> &'static str {
    "domains = [\"example.com\", \"example.net\", \"host.example.net\"]\n"
}

/// Sends `bytes` then an OPTIONS probe; returns the answer to `bytes` (if any) or an error.
fn over_udp(server: &Server, socket: &UdpSocket, bytes: &[u8], probe: &str) -> Result<Option<u16>, String> {
    let local = socket.local_addr().unwrap();
    socket.send_to(bytes, server.udp_addr()).unwrap();
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
    let server = Server::start(domains());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut failures = Vec::new();
    for (i, (file, bytes)) in messages().into_iter().enumerate() {
        for (label, bytes, want) in [
            ("as published", bytes.clone(), expected_as_published(&file)),
            ("with its true length", with_true_length(&bytes), expected(&file)),
        ] {
            match over_udp(&server, &socket, &bytes, &format!("probe-udp-{i}-{}", label.len())) {
                Ok(Some(got)) if got == want => {}
                Ok(got) => failures.push(format!("{file} {label} over UDP: expected {want}, got {got:?}")),
                Err(e) => failures.push(format!("{file} {label} over UDP: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}\n--- server log ---\n{}", failures.join("\n"), server.log());
    assert!(!server.log().contains("panicked"));
}

#[test]
fn rfc5118_over_tcp() {
    let server = Server::start(domains());
    let mut failures = Vec::new();
    for (i, (file, bytes)) in messages().into_iter().enumerate() {
        // On a stream the Content-Length is the framing: the messages go with their true length
        // (a length that does not match is RFC 4475's subject, not RFC 5118's).
        let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        stream.write_all(&with_true_length(&bytes)).unwrap();
        let mut buf = Vec::new();
        let got = read_message(&mut stream, &mut buf, WAIT).map(|m| status_of(&m));
        if got != Some(expected(&file)) {
            failures.push(format!("{file} over TCP: expected {}, got {got:?}", expected(&file)));
        }
        // The server is still alive: a fresh connection gets OPTIONS answered.
        let mut fresh = TcpStream::connect(server.tcp_addr()).unwrap();
        fresh.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let local = fresh.local_addr().unwrap();
        fresh.write_all(&options(server.tcp_addr(), "TCP", local, &format!("alive-{i}"))).unwrap();
        let mut buf = Vec::new();
        let alive = read_message(&mut fresh, &mut buf, WAIT).map(|m| status_of(&m));
        if alive != Some(200) {
            failures.push(format!("after {file} over TCP: OPTIONS got {alive:?}"));
        }
    }
    assert!(failures.is_empty(), "{}\n--- server log ---\n{}", failures.join("\n"), server.log());
    assert!(!server.log().contains("panicked"));
}
