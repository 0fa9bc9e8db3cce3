//! Every RFC 5118 torture message (SIP and IPv6) through the parser and the request policy,
//! checked against what tests/data/rfc5118/index.tsv says it must get, and the IPv6 references
//! of each valid one read back.

use bytes::Bytes;
use sambung_sip::{Host, Message, Method, Request, RequestPolicy, Transport, Via};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc5118")
}

/// What a message must get from a UAS like Sambung.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Parses and passes the policy.
    Accept,
    /// Parse error answered with this status.
    Reject(u16),
}

fn expected(file: &str) -> Expect {
    match file {
        "ipv6-bad.dat" => Expect::Reject(400),
        "ipv6-good.dat"
        | "port-ambiguous.dat"
        | "port-unambiguous.dat"
        | "via-received-param-with-delim.dat"
        | "via-received-param-no-delim.dat"
        | "ipv6-in-sdp.dat"
        | "mult-ip-in-header.dat"
        | "mult-ip-in-sdp.dat"
        | "ipv4-mapped-ipv6.dat"
        | "ipv6-bug-abnf-3-colons.dat"
        | "ipv6-correct-abnf-2-colons.dat" => Expect::Accept,
        other => panic!("{other} is not in this test's table: add it"),
    }
}

fn raw(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The message with its Content-Length set to the body it carries: three of the RFC's messages
/// declare a length their bodies do not have (see index.tsv).
fn with_true_length(bytes: &[u8]) -> Bytes {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| match line.split_once(':') {
            Some((name, _)) if name.eq_ignore_ascii_case("Content-Length") => format!("{name}: {}", body.len()),
            _ => line.to_owned(),
        })
        .collect();
    Bytes::from(format!("{}\r\n\r\n{body}", head.join("\r\n")))
}

fn request(file: &str) -> Request {
    match Message::parse(with_true_length(&raw(file))) {
        Ok(Message::Request(r)) => r,
        other => panic!("{file}: {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn uri_host_port(r: &Request) -> (Option<IpAddr>, Option<u16>) {
    let uri = r.uri.as_sip().expect("a SIP Request-URI");
    (uri.host.ip(), uri.port)
}

fn received(via: &Via) -> Option<&str> {
    via.params.value("received")
}

#[test]
fn every_rfc5118_message_gets_what_the_index_says() {
    let index = std::fs::read_to_string(dir().join("index.tsv")).expect("index.tsv");
    let policy = RequestPolicy::default();
    let mut checked = 0;
    for line in index.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        // The messages as published, and with their Content-Length put right: the parser's
        // answer is the same for both (the declared lengths only cut a body short or leave it
        // short, which `content_lengths_as_published` covers).
        for bytes in [Bytes::from(raw(file)), with_true_length(&raw(file))] {
            let got = match Message::parse(bytes) {
                Ok(Message::Request(r)) => {
                    policy.check(&r).unwrap_or_else(|rej| panic!("{file}: the policy refused it: {}", rej.status));
                    Expect::Accept
                }
                Ok(Message::Response(_)) => panic!("{file}: RFC 5118 has only requests"),
                Err(e) if file == "ipv6-in-sdp.dat" && e.kind == sambung_sip::ErrorKind::BodyTooShort => {
                    continue;
                }
                Err(e) => {
                    let s = e.status().expect("a request error has a status");
                    let resp = e.error_response().expect("a request error has a response");
                    assert_eq!(resp.status, s);
                    assert!(!resp.reason.is_empty(), "{file}: the reason names the fault");
                    Expect::Reject(s)
                }
            };
            assert_eq!(got, expected(file), "{file}");
        }
        checked += 1;
    }
    let files = std::fs::read_dir(dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "dat"))
        .count();
    assert_eq!((checked, files), (12, 12), "every .dat file is in the index");
}

#[test]
fn every_file_is_crlf_and_ends_its_headers() {
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "dat") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display();
        assert!(bytes.windows(4).any(|w| w == b"\r\n\r\n"), "{name}: the header section ends");
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && bytes[i - 1] == b'\r', "{name}: bare LF at {i}");
            }
        }
        assert!(!bytes.starts_with(b" "), "{name}: none of the RFC text's indentation");
    }
}

#[test]
fn content_lengths_as_published() {
    // §4.6 declares 268 bytes and carries 251: the body ends before its length (RFC 3261 §18.3:
    // 400 for a request).
    let e = Message::parse(Bytes::from(raw("ipv6-in-sdp.dat"))).unwrap_err();
    assert_eq!((e.kind.clone(), e.status()), (sambung_sip::ErrorKind::BodyTooShort, Some(400)));
    // §4.8 and §4.9 declare fewer bytes than they carry: the rest is discarded.
    for (file, declared) in [("mult-ip-in-sdp.dat", 181), ("ipv4-mapped-ipv6.dat", 236)] {
        let Ok(Message::Request(r)) = Message::parse(Bytes::from(raw(file))) else { panic!("{file}") };
        assert_eq!(r.body.len(), declared, "{file}");
    }
}

#[test]
fn s4_1_ipv6_references_in_request_uri_via_and_contact() {
    let r = request("ipv6-good.dat");
    assert_eq!(r.method, Method::Register);
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::10")), None));
    assert_eq!(r.uri.to_string(), "sip:[2001:db8::10]");
    let via = r.top_via().unwrap();
    assert_eq!((via.host.ip(), via.port), (Some(ip("2001:db8::9:1")), None));
    assert_eq!(via.host.as_str(), "[2001:db8::9:1]");
    assert_eq!(via.branch(), Some("z9hG4bKas3-111"));
    // No received and no port: responses go to the sent-by on the transport's port.
    assert_eq!(via.response_target(), (Host::from(ip("2001:db8::9:1")), 5060));
    let contact = r.contacts().next().unwrap();
    assert_eq!(contact.uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::1")));
    assert_eq!(contact.display_name().unwrap(), "Caller");
    // Printed and parsed again, it is the same request.
    assert_eq!(Message::parse(r.to_bytes()).unwrap(), Message::Request(r));
}

#[test]
fn s4_2_an_ipv6_address_without_brackets_is_refused() {
    let e = Message::parse(Bytes::from(raw("ipv6-bad.dat"))).unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.error_response().unwrap().reason.to_ascii_lowercase().contains("request-uri"), "{e}");
    // The same text bracketed is §4.1's Request-URI.
    let fixed = String::from_utf8(raw("ipv6-bad.dat")).unwrap().replacen("sip:2001:db8::10", "sip:[2001:db8::10]", 1);
    assert!(Message::parse(Bytes::from(fixed)).is_ok());
    // Nor does an unbracketed address pass anywhere else a host is written.
    for bad in ["sip:user@2001:db8::10", "sip:2001:db8::10:5070", "sip:[2001:db8::10", "sip:2001:db8::10]"] {
        assert!(sambung_sip::Uri::parse(bad).is_err(), "{bad}");
    }
    assert!(Via::parse(&"SIP/2.0/UDP 2001:db8::9:1;branch=z9hG4bK1".into()).is_err());
}

#[test]
fn s4_3_a_port_inside_the_brackets_is_part_of_the_address() {
    let r = request("port-ambiguous.dat");
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::10:5070")), None));
}

#[test]
fn s4_4_a_port_after_the_brackets_is_the_port() {
    let r = request("port-unambiguous.dat");
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::10")), Some(5070)));
    assert_eq!(r.uri.to_string(), "sip:[2001:db8::10]:5070");
}

#[test]
fn s4_5_received_with_and_without_brackets() {
    for (file, method, written) in [
        ("via-received-param-with-delim.dat", Method::Bye, "[2001:db8::9:255]"),
        ("via-received-param-no-delim.dat", Method::Options, "2001:db8::9:255"),
    ] {
        let r = request(file);
        assert_eq!(r.method, method);
        let via = r.top_via().expect(file);
        assert_eq!(via.host.ip(), Some(ip("2001:db8::9:1")), "{file}");
        assert_eq!(received(&via), Some(written), "{file}: kept as received");
        // Either way the response goes to the address, written as an IPv6 reference.
        let (host, port) = via.response_target();
        assert_eq!((host.ip(), port), (Some(ip("2001:db8::9:255")), 5060), "{file}");
        assert_eq!(host.as_str(), "[2001:db8::9:255]", "{file}");
    }
}

#[test]
fn stamping_an_ipv6_source_writes_received_without_brackets() {
    // RFC 5118 §4.5: when sending, no "[" "]" in received (RFC 3261's via-received is a bare
    // IPv6address); rport as RFC 3581 has it.
    let mut r = request("via-received-param-no-delim.dat");
    let text =
        String::from_utf8(r.to_bytes().to_vec()).unwrap().replacen(";branch=z9hG4bKas3", ";rport;branch=z9hG4bKas3", 1);
    let Ok(Message::Request(mut with_rport)) = Message::parse(Bytes::from(text)) else { panic!() };
    let source: SocketAddr = "[2001:db8::77]:40123".parse().unwrap();
    r.stamp_via(source);
    let via = r.top_via().unwrap();
    assert_eq!(received(&via), Some("2001:db8::77"));
    assert_eq!(via.host.as_str(), "[2001:db8::9:1]");
    with_rport.stamp_via(source);
    let via = with_rport.top_via().unwrap();
    assert_eq!((received(&via), via.params.value("rport")), (Some("2001:db8::77"), Some("40123")));
    assert_eq!(via.response_target(), (Host::from(ip("2001:db8::77")), 40123));
    let printed = String::from_utf8(with_rport.to_bytes().to_vec()).unwrap();
    assert!(printed.contains(";received=2001:db8::77") && !printed.contains("received=["), "{printed}");
    // An IPv4-mapped source is the IPv4 address it maps.
    let mut mapped = request("via-received-param-no-delim.dat");
    mapped.stamp_via("[::ffff:192.0.2.9]:5060".parse().unwrap());
    assert_eq!(received(&mapped.top_via().unwrap()), Some("192.0.2.9"));
}

#[test]
fn s4_6_ipv6_addresses_in_sdp_are_the_body_s_business() {
    let r = request("ipv6-in-sdp.dat");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::10")), None));
    assert_eq!(r.to().unwrap().uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::10")));
    assert_eq!(r.top_via().unwrap().host.ip(), Some(ip("2001:db8::20")));
    assert_eq!(r.contacts().next().unwrap().uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::20")));
    let body = std::str::from_utf8(&r.body).unwrap();
    assert_eq!(r.body.len(), 251);
    assert!(body.contains("\r\nc=IN IP6 2001:db8::20\r\n"));
}

#[test]
fn s4_7_ipv4_and_ipv6_in_one_via_list() {
    let r = request("mult-ip-in-header.dat");
    let vias: Vec<Via> = r.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host.ip(), vias[0].port, &vias[0].transport),
        (Some(ip("2001:db8::9:1")), Some(6050), &Transport::Udp)
    );
    assert_eq!(vias[0].response_target(), (Host::from(ip("2001:db8::9:1")), 6050));
    assert_eq!((vias[1].host.ip(), vias[1].port), (Some(ip("192.0.2.1")), None));
    assert_eq!(
        (vias[2].host.ip(), vias[2].port, &vias[2].transport),
        (Some(ip("2001:db8::9:255")), None, &Transport::Tcp)
    );
    assert_eq!(received(&vias[2]), Some("192.0.2.200"));
    assert_eq!(vias[2].response_target(), (Host::from(ip("192.0.2.200")), 5060));
    assert_eq!(vias[2].branch(), Some("z9hG4bK451jj"));
}

#[test]
fn s4_8_two_media_on_two_families() {
    let r = request("mult-ip-in-sdp.dat");
    let body = std::str::from_utf8(&r.body).unwrap();
    assert!(body.contains("\r\nc=IN IP4 192.0.2.1\r\n") && body.contains("\r\nc=IN IP6 2001:db8::1\r\n"));
    assert_eq!(r.contacts().next().unwrap().uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::9:1")));
}

#[test]
fn s4_9_ipv4_mapped_addresses() {
    let r = request("ipv4-mapped-ipv6.dat");
    let vias: Vec<Via> = r.vias().collect();
    assert_eq!((vias[0].host.ip(), vias[0].port), (Some(ip("::ffff:192.0.2.10")), Some(19823)));
    assert_eq!(vias[0].host.as_str(), "[::ffff:192.0.2.10]");
    assert_eq!((vias[1].host.ip(), vias[1].port), (Some(ip("::ffff:192.0.2.2")), None));
    let contact = r.contacts().next().unwrap();
    assert_eq!(contact.uri.as_sip().unwrap().host.ip(), Some(ip("::ffff:192.0.2.2")));
    assert_eq!(contact.uri.as_sip().unwrap().user.as_deref(), Some("ted"));
    // A mapped address is not the IPv4 address for URI comparison (RFC 3261 §19.1.4 compares
    // as written), but it names the same IPv6 address however it is spelled.
    assert!(contact.uri.as_sip().unwrap().host.matches(&Host::from(ip("::ffff:c000:202"))));
}

#[test]
fn s4_10_the_abnf_bug_s_three_colons_are_tolerated() {
    let buggy = request("ipv6-bug-abnf-3-colons.dat");
    let correct = request("ipv6-correct-abnf-2-colons.dat");
    let address = ip("2001:db8::192.0.2.1");
    assert_eq!(uri_host_port(&correct), (Some(address), None));
    assert_eq!(uri_host_port(&buggy), (Some(address), None));
    assert_eq!(buggy.to().unwrap().uri.as_sip().unwrap().host.ip(), Some(address));
    assert!(buggy.uri.as_sip().unwrap().host.matches(&correct.uri.as_sip().unwrap().host));
    // The Via is a host name.
    assert_eq!(buggy.top_via().unwrap().host.as_str(), "lab1.east.example.com");
    // Tolerated only where RFC 3261's grammar makes it: "::" then ":" and an IPv4 address last.
    for bad in [
        "sip:[2001:db8:::1]",
        "sip:[2001:db8::::192.0.2.1]",
        "sip:[2001::db8:::192.0.2.1]",
        "sip:[2001:db8:::192.0.2]",
        "sip:2001:db8:::192.0.2.1",
    ] {
        assert!(sambung_sip::Uri::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        sambung_sip::Uri::parse("sip:[:::192.0.2.1]").unwrap().as_sip().unwrap().host.ip(),
        Some(ip("::192.0.2.1"))
    );
}
