//! Our messages for the cases of RFC 5118 (SIP and IPv6; see `rfc5118_messages/mod.rs`) through
//! the parser and the request policy, checked against the verdict the table gives each, and the
//! IPv6 references of each valid one read back.

#[path = "rfc5118_messages/mod.rs"]
mod rfc5118;

use bytes::Bytes;
use rfc5118::{CASES, Raw, Verdict};
use sambung_sip::{Host, Message, Method, Request, RequestPolicy, Transport, Via};
use std::net::{IpAddr, SocketAddr};

/// What a message must get from a UAS like Sambung.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Parses and passes the policy.
    Accept,
    /// Parse error answered with this status.
    Reject(u16),
}

fn expected(verdict: Verdict) -> Expect {
    match verdict {
        Verdict::Valid | Verdict::Tolerated => Expect::Accept,
        Verdict::Invalid(status) => Expect::Reject(status),
    }
}

fn request(raw: &Raw) -> Request {
    match Message::parse(Bytes::from(raw.bytes())) {
        Ok(Message::Request(r)) => r,
        other => panic!("{}: {other:?}", raw.head.lines().next().unwrap_or_default()),
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
fn every_rfc5118_case_gets_its_verdict() {
    let policy = RequestPolicy::default();
    for case in &CASES {
        let label = format!("§{} {} ({})", case.section, case.name, case.expected);
        let got = match Message::parse(Bytes::from(case.message.bytes())) {
            Ok(Message::Request(r)) => {
                policy.check(&r).unwrap_or_else(|rej| panic!("{label}: the policy refused it: {}", rej.status));
                Expect::Accept
            }
            Ok(Message::Response(_)) => panic!("{label}: RFC 5118 has only requests"),
            Err(e) => {
                let s = e.status().expect("a request error has a status");
                let resp = e.error_response().expect("a request error has a response");
                assert_eq!(resp.status, s);
                assert!(!resp.reason.is_empty(), "{label}: the reason names the fault");
                Expect::Reject(s)
            }
        };
        assert_eq!(got, expected(case.verdict), "{label}");
    }
    // Every section of RFC 5118 §4 has its case, each name once.
    let mut sections: Vec<&str> = CASES.iter().map(|c| c.section).collect();
    sections.dedup();
    assert_eq!(sections, ["4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.10"]);
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len());
}

#[test]
fn a_body_shorter_than_its_content_length_is_refused() {
    // RFC 3261 §18.3: a request whose body ends before its Content-Length is a 400.
    let e = Message::parse(Bytes::from(rfc5118::body_cut_short())).unwrap_err();
    assert_eq!((e.kind.clone(), e.status()), (sambung_sip::ErrorKind::BodyTooShort, Some(400)));
    // The same message with its true length is fine.
    let r = request(&rfc5118::INVITE_FOR_SHORT_BODY);
    assert_eq!(r.body.len(), rfc5118::SDP_IPV6.len());
}

#[test]
fn s4_1_ipv6_references_in_request_uri_via_and_contact() {
    let r = request(&rfc5118::REGISTER_IPV6_REFERENCES);
    assert_eq!(r.method, Method::Register);
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::a1")), None));
    assert_eq!(r.uri.to_string(), "sip:[2001:db8::a1]");
    let via = r.top_via().unwrap();
    assert_eq!((via.host.ip(), via.port), (Some(ip("2001:db8::5:7")), None));
    assert_eq!(via.host.as_str(), "[2001:db8::5:7]");
    assert_eq!(via.branch(), Some("z9hG4bK-sb6-41-reg"));
    // No received and no port: responses go to the sent-by on the transport's port.
    assert_eq!(via.response_target(), (Host::from(ip("2001:db8::5:7")), 5060));
    let contact = r.contacts().next().unwrap();
    assert_eq!(contact.uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::5:8")));
    assert_eq!(contact.display_name().unwrap(), "Alice");
    // Printed and parsed again, it is the same request.
    assert_eq!(Message::parse(r.to_bytes()).unwrap(), Message::Request(r));
}

#[test]
fn s4_2_an_ipv6_address_without_brackets_is_refused() {
    let bad = rfc5118::REGISTER_UNBRACKETED_URI.bytes();
    let e = Message::parse(Bytes::from(bad.clone())).unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.error_response().unwrap().reason.to_ascii_lowercase().contains("request-uri"), "{e}");
    // The same text bracketed is §4.1's kind of Request-URI.
    let fixed = String::from_utf8(bad).unwrap().replacen("sip:2001:db8::a1 ", "sip:[2001:db8::a1] ", 1);
    assert!(Message::parse(Bytes::from(fixed)).is_ok());
    // Nor does an unbracketed address pass anywhere else a host is written.
    for bad in ["sip:bob@2001:db8::a1", "sip:2001:db8::a1:5080", "sip:[2001:db8::a1", "sip:2001:db8::a1]"] {
        assert!(sambung_sip::Uri::parse(bad).is_err(), "{bad}");
    }
    assert!(Via::parse(&"SIP/2.0/UDP 2001:db8::5:7;branch=z9hG4bK1".into()).is_err());
}

#[test]
fn s4_3_a_port_inside_the_brackets_is_part_of_the_address() {
    let r = request(&rfc5118::REGISTER_PORT_INSIDE_BRACKETS);
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::a1:5080")), None));
}

#[test]
fn s4_4_a_port_after_the_brackets_is_the_port() {
    let r = request(&rfc5118::REGISTER_PORT_AFTER_BRACKETS);
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::a1")), Some(5080)));
    assert_eq!(r.uri.to_string(), "sip:[2001:db8::a1]:5080");
}

#[test]
fn s4_5_received_with_and_without_brackets() {
    for (raw, method, written) in [
        (&rfc5118::BYE_RECEIVED_BRACKETED, Method::Bye, "[2001:db8::5:99]"),
        (&rfc5118::OPTIONS_RECEIVED_BARE, Method::Options, "2001:db8::5:99"),
    ] {
        let r = request(raw);
        assert_eq!(r.method, method);
        let via = r.top_via().unwrap();
        assert_eq!(via.host.ip(), Some(ip("2001:db8::5:7")), "{method}");
        assert_eq!(received(&via), Some(written), "{method}: kept as received");
        // Either way the response goes to the address, written as an IPv6 reference.
        let (host, port) = via.response_target();
        assert_eq!((host.ip(), port), (Some(ip("2001:db8::5:99")), 5060), "{method}");
        assert_eq!(host.as_str(), "[2001:db8::5:99]", "{method}");
    }
}

#[test]
fn stamping_an_ipv6_source_writes_received_without_brackets() {
    // RFC 5118 §4.5: when sending, no "[" "]" in received (RFC 3261's via-received is a bare
    // IPv6address); rport as RFC 3581 has it.
    let mut r = request(&rfc5118::OPTIONS_RECEIVED_BARE);
    let text = String::from_utf8(r.to_bytes().to_vec()).unwrap().replacen(
        ";branch=z9hG4bK-sb6-45b",
        ";rport;branch=z9hG4bK-sb6-45b",
        1,
    );
    let Ok(Message::Request(mut with_rport)) = Message::parse(Bytes::from(text)) else { panic!() };
    let source: SocketAddr = "[2001:db8::77]:40123".parse().unwrap();
    r.stamp_via(source);
    let via = r.top_via().unwrap();
    assert_eq!(received(&via), Some("2001:db8::77"));
    assert_eq!(via.host.as_str(), "[2001:db8::5:7]");
    with_rport.stamp_via(source);
    let via = with_rport.top_via().unwrap();
    assert_eq!((received(&via), via.params.value("rport")), (Some("2001:db8::77"), Some("40123")));
    assert_eq!(via.response_target(), (Host::from(ip("2001:db8::77")), 40123));
    let printed = String::from_utf8(with_rport.to_bytes().to_vec()).unwrap();
    assert!(printed.contains(";received=2001:db8::77") && !printed.contains("received=["), "{printed}");
    // An IPv4-mapped source is the IPv4 address it maps.
    let mut mapped = request(&rfc5118::OPTIONS_RECEIVED_BARE);
    mapped.stamp_via("[::ffff:192.0.2.9]:5060".parse().unwrap());
    assert_eq!(received(&mapped.top_via().unwrap()), Some("192.0.2.9"));
}

#[test]
fn s4_6_ipv6_addresses_in_sdp_are_the_body_s_business() {
    let r = request(&rfc5118::INVITE_IPV6_SDP);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(uri_host_port(&r), (Some(ip("2001:db8::a1")), None));
    assert_eq!(r.to().unwrap().uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::a1")));
    assert_eq!(r.top_via().unwrap().host.ip(), Some(ip("2001:db8::c4")));
    assert_eq!(r.contacts().next().unwrap().uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::c4")));
    assert_eq!(&r.body[..], rfc5118::SDP_IPV6.as_bytes());
    let body = std::str::from_utf8(&r.body).unwrap();
    assert!(body.contains("\r\nc=IN IP6 2001:db8::c4\r\n"));
}

#[test]
fn s4_7_ipv4_and_ipv6_in_one_via_list() {
    let r = request(&rfc5118::BYE_MIXED_VIAS);
    let vias: Vec<Via> = r.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host.ip(), vias[0].port, &vias[0].transport),
        (Some(ip("2001:db8::7:1")), Some(5062), &Transport::Udp)
    );
    assert_eq!(vias[0].response_target(), (Host::from(ip("2001:db8::7:1")), 5062));
    assert_eq!((vias[1].host.ip(), vias[1].port), (Some(ip("192.0.2.33")), None));
    assert_eq!(
        (vias[2].host.ip(), vias[2].port, &vias[2].transport),
        (Some(ip("2001:db8::7:2")), None, &Transport::Tcp)
    );
    assert_eq!(received(&vias[2]), Some("192.0.2.34"));
    assert_eq!(vias[2].response_target(), (Host::from(ip("192.0.2.34")), 5060));
    assert_eq!(vias[2].branch(), Some("z9hG4bK-sb6-47-ua"));
}

#[test]
fn s4_8_two_media_on_two_families() {
    let r = request(&rfc5118::INVITE_SDP_TWO_FAMILIES);
    let body = std::str::from_utf8(&r.body).unwrap();
    assert_eq!(body, rfc5118::SDP_TWO_FAMILIES);
    assert!(body.contains("\r\nc=IN IP4 192.0.2.40\r\n") && body.contains("\r\nc=IN IP6 2001:db8::c5\r\n"));
    assert_eq!(r.contacts().next().unwrap().uri.as_sip().unwrap().host.ip(), Some(ip("2001:db8::c5")));
}

#[test]
fn s4_9_ipv4_mapped_addresses() {
    let r = request(&rfc5118::INVITE_IPV4_MAPPED);
    let vias: Vec<Via> = r.vias().collect();
    assert_eq!((vias[0].host.ip(), vias[0].port), (Some(ip("::ffff:192.0.2.50")), Some(5090)));
    assert_eq!(vias[0].host.as_str(), "[::ffff:192.0.2.50]");
    assert_eq!((vias[1].host.ip(), vias[1].port), (Some(ip("::ffff:192.0.2.51")), None));
    let contact = r.contacts().next().unwrap();
    assert_eq!(contact.uri.as_sip().unwrap().host.ip(), Some(ip("::ffff:192.0.2.51")));
    assert_eq!(contact.uri.as_sip().unwrap().user.as_deref(), Some("erin"));
    assert!(std::str::from_utf8(&r.body).unwrap().contains("\r\nc=IN IP6 ::ffff:192.0.2.51\r\n"));
    // A mapped address is not the IPv4 address for URI comparison (RFC 3261 §19.1.4 compares
    // as written), but it names the same IPv6 address however it is spelled.
    assert!(contact.uri.as_sip().unwrap().host.matches(&Host::from(ip("::ffff:c000:233"))));
}

#[test]
fn s4_10_the_abnf_bug_s_three_colons_are_tolerated() {
    let buggy = request(&rfc5118::OPTIONS_THREE_COLONS);
    let correct = request(&rfc5118::OPTIONS_TWO_COLONS);
    let address = ip("2001:db8::192.0.2.60");
    assert_eq!(address, ip("2001:db8::c000:23c"));
    assert_eq!(uri_host_port(&correct), (Some(address), None));
    assert_eq!(uri_host_port(&buggy), (Some(address), None));
    assert_eq!(buggy.to().unwrap().uri.as_sip().unwrap().host.ip(), Some(address));
    assert!(buggy.uri.as_sip().unwrap().host.matches(&correct.uri.as_sip().unwrap().host));
    // The Via is a host name.
    assert_eq!(buggy.top_via().unwrap().host.as_str(), "edge1.example.com");
    // Tolerated only where RFC 3261's grammar makes it: "::" then ":" and an IPv4 address last.
    for bad in [
        "sip:[2001:db8:::1]",
        "sip:[2001:db8::::192.0.2.60]",
        "sip:[2001::db8:::192.0.2.60]",
        "sip:[2001:db8:::192.0.2]",
        "sip:2001:db8:::192.0.2.60",
    ] {
        assert!(sambung_sip::Uri::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        sambung_sip::Uri::parse("sip:[:::192.0.2.60]").unwrap().as_sip().unwrap().host.ip(),
        Some(ip("::192.0.2.60"))
    );
}

#[test]
fn our_messages_are_crlf_and_counted() {
    for raw in CASES.iter().map(|c| &c.message).chain([&rfc5118::INVITE_FOR_SHORT_BODY]) {
        let bytes = raw.bytes();
        let first = raw.head.lines().next().unwrap_or_default();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && bytes[i - 1] == b'\r', "{first}: bare LF at {i}");
            }
        }
        assert!(raw.head.ends_with("\r\n") && !raw.head.contains("\r\n\r\n"), "{first}: head");
        assert!(!raw.head.to_ascii_lowercase().contains("content-length"), "{first}: counted, not written");
        assert!(raw.body.is_empty() || raw.body.ends_with("\r\n"), "{first}: body");
    }
}
