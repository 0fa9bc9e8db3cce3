//! Call control as a SIP element: answers to OPTIONS, REGISTER without credentials, requests
//! for other domains, malformed and merged requests, framing errors and retransmissions.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use sambung_pbx::{Inbound, Input, Now, Output, Pbx, PbxConfig, Transmit};
use sambung_sip::{FrameError, HeaderName, Message, Response, Transport};
use sambung_testkit::Clock;

type Core = Pbx;

fn core() -> Core {
    let config =
        PbxConfig { domains: vec!["sambung.example".into()], realm: "sambung.example".into(), ..PbxConfig::default() };
    Pbx::new(config, b"0123456789abcdef0123456789abcdef", [3; 32])
}

/// What call control wants sent, in order; the rest of its outputs are dropped.
fn transmits(core: &mut Core) -> Vec<Transmit> {
    let mut out = Vec::new();
    loop {
        match core.poll_output() {
            Output::Transmit(t) => out.push(t),
            Output::Timeout(_) => return out,
            _ => {}
        }
    }
}

fn next_timeout(core: &mut Core) -> Option<Instant> {
    loop {
        if let Output::Timeout(at) = core.poll_output() {
            return at;
        }
    }
}

fn now() -> Now {
    Now { instant: Clock::new().now(), unix_secs: 1_700_000_000 }
}

fn inbound(text: &str) -> Inbound {
    Inbound {
        transport: Transport::Udp,
        local: "0.0.0.0:5060".parse().unwrap(),
        remote: "192.0.2.7:40000".parse().unwrap(),
        conn: None,
        account: None,
        bytes: Bytes::from(text.to_owned()),
    }
}

fn request(method: &str, uri: &str, extra: &str) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1;rport\r\n\
         Max-Forwards: 70\r\n\
         To: <{uri}>\r\n\
         From: <sip:alice@sambung.example>;tag=abc\r\n\
         Call-ID: 1@10.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// Feeds one message and returns the single answer, parsed.
fn answer(core: &mut Core, text: &str) -> Option<Response> {
    core.handle_input(Input::Message(inbound(text)), now());
    let mut sent = transmits(core);
    assert!(sent.len() <= 1, "one answer only: {sent:?}");
    let out = sent.pop()?;
    assert_eq!(out.remote, "192.0.2.7:40000".parse::<SocketAddr>().unwrap());
    match Message::parse(out.bytes).expect("our answer parses") {
        Message::Response(r) => Some(r),
        Message::Request(_) => panic!("answered with a request"),
    }
}

#[test]
fn options_lists_capabilities() {
    let r = answer(&mut core(), &request("OPTIONS", "sip:sambung.example", "")).unwrap();
    assert_eq!(r.status, 200);
    let allow = r.headers.get(HeaderName::Allow).unwrap();
    for m in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "MESSAGE", "SUBSCRIBE", "REFER"] {
        assert!(allow.contains(m), "Allow lacks {m}: {allow}");
    }
    assert!(r.headers.get(HeaderName::Accept).unwrap().contains("application/sdp"));
    assert!(r.headers.get(HeaderName::Supported).unwrap().contains("outbound"));
    assert!(r.headers.get(HeaderName::Server).unwrap().starts_with("Sambung/"));
    assert!(r.to().unwrap().tag().is_some(), "To tag added");
    let via = r.top_via().unwrap();
    assert_eq!(via.params.value("received"), Some("192.0.2.7"));
    assert_eq!(via.params.value("rport"), Some("40000"));
}

#[test]
fn options_to_an_ip_literal_is_local() {
    let r = answer(&mut core(), &request("OPTIONS", "sip:127.0.0.1:5060", "")).unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn register_is_challenged() {
    let r = answer(&mut core(), &request("REGISTER", "sip:sambung.example", "")).unwrap();
    assert_eq!(r.status, 401);
    let challenges: Vec<_> = r.headers.get_all(HeaderName::WwwAuthenticate).collect();
    assert_eq!(challenges.len(), 1, "MD5 only by default: baresip refuses a set with SHA-256 in it");
    assert!(challenges[0].contains("algorithm=MD5"));
    assert!(challenges[0].contains("realm=\"sambung.example\""));
}

#[test]
fn requests_for_other_domains_are_refused() {
    let mut core = core();
    // A call to another domain goes out only for an authenticated caller (and then only to
    // the destinations the toll-fraud limits allow): it is challenged like any call.
    let r = answer(&mut core, &request("INVITE", "sip:bob@elsewhere.example", "")).unwrap();
    assert_eq!(r.status, 407);
    let r = answer(&mut core, &request("MESSAGE", "sip:bob@elsewhere.example", "")).unwrap();
    assert_eq!((r.status, &*r.reason), (403, "Relaying Denied"));
    let r = answer(&mut core, &request("REGISTER", "sip:elsewhere.example", "")).unwrap();
    assert_eq!(r.status, 403);
}

#[test]
fn invite_to_a_local_user_is_challenged_before_anything_else() {
    // an INVITE is challenged first, so that 404 cannot tell who exists
    let r = answer(&mut core(), &request("INVITE", "sip:bob@SAMBUNG.example", "")).unwrap();
    assert_eq!(r.status, 407);
}

#[test]
fn no_hops_left_for_a_foreign_request() {
    let text = request("OPTIONS", "sip:elsewhere.example", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(answer(&mut core(), &text).unwrap().status, 483);
}

#[test]
fn cancel_and_in_dialog_requests_match_nothing() {
    let mut core = core();
    assert_eq!(answer(&mut core, &request("CANCEL", "sip:bob@sambung.example", "")).unwrap().status, 481);
    let bye = request("BYE", "sip:bob@sambung.example", "")
        .replace("To: <sip:bob@sambung.example>", "To: <sip:bob@sambung.example>;tag=x");
    assert_eq!(answer(&mut core, &bye).unwrap().status, 481);
}

#[test]
fn policy_answers() {
    let mut core = core();
    let r = answer(&mut core, &request("FOO", "sip:sambung.example", "")).unwrap();
    assert_eq!(r.status, 501);
    assert!(r.headers.get(HeaderName::Allow).is_some());
    let r = answer(&mut core, &request("OPTIONS", "sip:sambung.example", "Require: nosuchext\r\n")).unwrap();
    assert_eq!(r.status, 420);
    assert_eq!(r.headers.get(HeaderName::Unsupported).map(|v| &**v), Some("nosuchext"));
}

#[test]
fn ack_and_responses_are_absorbed() {
    let mut core = core();
    assert!(answer(&mut core, &request("ACK", "sip:bob@sambung.example", "")).is_none());
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-2\r\nTo: <sip:a@b>;tag=1\r\n\
                    From: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert!(answer(&mut core, response).is_none());
}

#[test]
fn malformed_request_gets_400_and_garbage_nothing() {
    let mut core = core();
    let text = request("OPTIONS", "sip:sambung.example", "").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    assert_eq!(answer(&mut core, &text).unwrap().status, 400);
    assert!(answer(&mut core, "\x00\x01garbage").is_none());
}

#[test]
fn framing_error_is_answered_then_closed() {
    let mut core = core();
    let text = request("INVITE", "sip:bob@sambung.example", "").replace("Content-Length: 0", "Content-Length: -5");
    let mut input = inbound(&text);
    input.transport = Transport::Tcp;
    input.conn = Some(7);
    core.handle_input(Input::FramingError(input, FrameError::BadContentLength), now());
    let out = transmits(&mut core).pop().unwrap();
    assert!(out.close);
    assert!(out.bytes.starts_with(b"SIP/2.0 400 "), "{:?}", out.bytes);
}

/// Datagrams the core wants sent, as text.
fn sent(core: &mut Core) -> Vec<String> {
    transmits(core).into_iter().map(|o| String::from_utf8_lossy(&o.bytes).into_owned()).collect()
}

#[test]
fn retransmitted_request_gets_the_same_answer_from_the_transaction() {
    let mut core = core();
    let text = request("OPTIONS", "sip:sambung.example", "");
    core.handle_input(Input::Message(inbound(&text)), now());
    let first = sent(&mut core);
    core.handle_input(Input::Message(inbound(&text)), now());
    let again = sent(&mut core);
    assert_eq!(first.len(), 1);
    assert_eq!(again, first, "RFC 3261 §17.2.2: the retransmission gets the last response again");
}

#[test]
fn final_answer_to_invite_is_retransmitted_until_ack_over_udp() {
    let mut core = core();
    let start = Clock::new().now();
    let at = |ms: u64| Now { instant: start + std::time::Duration::from_millis(ms), unix_secs: 1_700_000_000 };
    let invite = request("INVITE", "sip:bob@sambung.example", "");
    core.handle_input(Input::Message(inbound(&invite)), at(0));
    let answers = sent(&mut core);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].starts_with("SIP/2.0 407 "), "an INVITE without credentials is challenged");
    // Timer G: T1 later the 404 goes out again.
    let deadline = next_timeout(&mut core).expect("Timer G armed");
    assert_eq!(deadline - start, std::time::Duration::from_millis(500));
    core.handle_input(Input::Timeout, at(500));
    assert_eq!(sent(&mut core), answers);
    // The ACK (same branch, To tag of the 404) stops the retransmissions.
    let to_tag = Message::parse(Bytes::from(answers[0].clone())).unwrap();
    let Message::Response(r) = to_tag else { panic!() };
    let tag = r.to().unwrap().tag().unwrap().to_owned();
    let ack = request("ACK", "sip:bob@sambung.example", "")
        .replace("To: <sip:bob@sambung.example>", &format!("To: <sip:bob@sambung.example>;tag={tag}"));
    core.handle_input(Input::Message(inbound(&ack)), at(600));
    assert!(sent(&mut core).is_empty(), "the ACK is absorbed");
    core.handle_input(Input::Timeout, at(1500));
    assert!(sent(&mut core).is_empty(), "no retransmission after the ACK");
}

#[test]
fn merged_request_gets_482() {
    let mut core = core();
    let first = request("MESSAGE", "sip:bob@sambung.example", "");
    core.handle_input(Input::Message(inbound(&first)), now());
    assert_eq!(sent(&mut core).len(), 1);
    // the same request by another path: another branch, no To tag
    let merged = first.replace("branch=z9hG4bK-1", "branch=z9hG4bK-other-path");
    core.handle_input(Input::Message(inbound(&merged)), now());
    let out = sent(&mut core);
    assert!(out[0].starts_with("SIP/2.0 482 Loop Detected\r\n"), "{out:?}");
}
