//! RFC 4475 torture messages sent to the running server over UDP and TCP, answers checked
//! against `shared/sip/torture/rfc4475/index.tsv`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::{Server, has_call_id, options, read_message, shared_dir, status_of};

const WAIT: Duration = Duration::from_secs(5);

/// What the server must do with one torture message.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Exactly one of these statuses.
    Status(&'static [u16]),
    /// Accepted as well-formed: any answer but 400 or 505.
    Accept,
    /// Reject with 400 or accept: the RFC leaves it to the element.
    RejectOrAccept,
    /// A response, or garbage: no answer at all, and the server keeps working.
    Silence,
    /// Must not crash; any answer or none.
    Survive,
}

/// The expectation for each file of index.tsv (its `expected_behaviour` column).
fn expectation(file: &str) -> Expect {
    use Expect::*;
    match file {
        "badinv01.dat" | "lwsruri.dat" | "mismatch01.dat" | "multi01.dat" | "insuf.dat" | "ncl.dat" | "mcl01.dat" => {
            Status(&[400])
        }
        "badvers.dat" => Status(&[505]),
        "unkscm.dat" | "novelsc.dat" => Status(&[416]),
        "intmeth.dat" => Status(&[501]),
        "regaut01.dat" => Status(&[401]),
        "sdp01.dat" => Status(&[406, 400]),
        "bcast.dat" | "bigcode.dat" | "scalarlg.dat" | "noreason.dat" | "unreason.dat" => Silence,
        "badbranch.dat" | "baddate.dat" | "baddn.dat" | "escruri.dat" | "lwsstart.dat" | "trws.dat"
        | "regbadct.dat" => RejectOrAccept,
        "cparam01.dat" | "esc01.dat" | "inv2543.dat" | "longreq.dat" | "lwsdisp.dat" | "transports.dat"
        | "wsinv.dat" => Accept,
        "test.dat" => Survive,
        other => panic!("{other} is not in this test's table: add it"),
    }
}

/// Every `.dat` listed in index.tsv, as bytes exactly as stored.
fn messages() -> BTreeMap<String, Vec<u8>> {
    let dir = shared_dir().join("sip/torture/rfc4475");
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("index.tsv");
    let files: BTreeMap<String, Vec<u8>> = index
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next())
        .filter(|f| f.ends_with(".dat"))
        .map(|f| (f.to_owned(), std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))))
        .collect();
    assert!(files.len() >= 30, "torture messages missing: {}", files.len());
    files
}

/// The test server serves the example domains of the torture messages.
fn torture_domains() -> &'static str {
    "domains = [\"example.com\", \"example.net\", \"example.org\", \"company.com\", \"chair-dnrc.example.com\"]\n"
}

fn check(file: &str, transport: &str, status: Option<u16>, expect: Expect) -> Result<(), String> {
    let ok = match (expect, status) {
        (Expect::Status(allowed), Some(s)) => allowed.contains(&s),
        (Expect::Accept, Some(s)) => s != 400 && s != 505,
        (Expect::RejectOrAccept, Some(s)) => s != 505,
        (Expect::Silence, None) | (Expect::Survive, _) => true,
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("{file} over {transport}: expected {expect:?}, got {status:?}")) }
}

#[test]
fn torture_over_udp() {
    let server = Server::start(&format!("{}{}", torture_domains(), common::probed_shards()));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let local = socket.local_addr().unwrap();
    let mut failures = Vec::new();
    let mut buf = vec![0u8; 65535];
    for (i, (file, bytes)) in messages().into_iter().enumerate() {
        let expect = expectation(&file);
        socket.send_to(&bytes, server.udp_addr()).unwrap();
        // Then an OPTIONS to the same shard: it answers in order, so if the torture message gets an
        // answer it comes first, and the OPTIONS answer proves the server is still alive.
        let probe = common::probe_id(&format!("probe-udp-{i}"), &bytes);
        socket.send_to(&options(server.udp_addr(), "UDP", local, &probe), server.udp_addr()).unwrap();
        let mut status = None;
        loop {
            let Ok((n, _)) = socket.recv_from(&mut buf) else {
                failures.push(format!("{file} over UDP: server stopped answering"));
                break;
            };
            let answer = &buf[..n];
            if has_call_id(answer, &probe) {
                assert_eq!(status_of(answer), 200, "probe after {file}");
                break;
            }
            if status.replace(status_of(answer)).is_some() {
                failures.push(format!("{file} over UDP: more than one answer"));
            }
        }
        if let Err(e) = check(&file, "UDP", status, expect) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}\n--- server log ---\n{}", failures.join("\n"), server.log());
}

#[test]
fn torture_over_tcp() {
    let server = Server::start(&format!("{}{}", torture_domains(), common::probed_shards()));
    let mut failures = Vec::new();
    for (i, (file, bytes)) in messages().into_iter().enumerate() {
        let expect = expectation(&file);
        let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let local = stream.local_addr().unwrap();
        let probe = common::probe_id(&format!("probe-tcp-{i}"), &bytes);
        stream.write_all(&bytes).unwrap();
        if !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
            // No blank line after the headers: on a stream the message has not ended, so
            // there is nothing to answer yet (baddn.dat). Only check the server survives.
        } else if matches!(expect, Expect::Silence) {
            // A response, then an OPTIONS on the same connection: the first answer must be
            // the OPTIONS one.
            stream.write_all(&options(server.tcp_addr(), "TCP", local, &probe)).unwrap();
            let mut buf = Vec::new();
            match read_message(&mut stream, &mut buf, WAIT) {
                Some(a) if has_call_id(&a, &probe) => {}
                Some(a) => failures.push(format!("{file} over TCP: answered {}", status_of(&a))),
                None => failures.push(format!("{file} over TCP: no answer to the OPTIONS after it")),
            }
        } else {
            let mut buf = Vec::new();
            let status = read_message(&mut stream, &mut buf, WAIT).map(|m| status_of(&m));
            if let Err(e) = check(&file, "TCP", status, expect) {
                failures.push(e);
            }
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
}
