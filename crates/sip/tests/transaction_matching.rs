//! Matching requests and responses to transactions: §17.1.3, §17.2.3 (with the RFC 2543
//! fallback, on the RFC 4475 torture message `inv2543.dat`), CANCEL (§9.2), merged requests
//! (§8.2.2.2) and ACK for 2xx (RFC 6026).

mod transaction_common;

use bytes::Bytes;
use sambung_sip::transaction::{Config, Peer, TransactionLayer, TxError, TxEvent, TxKey, TxState, ack_for, cancel_for};
use sambung_sip::{HeaderName, Message, Method, Request, Response, SipStr, Transport};
use sambung_testkit::{Clock, Rng};
use std::path::PathBuf;
use transaction_common::*;

fn torture(name: &str) -> Bytes {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sip/torture/rfc4475");
    Bytes::from(std::fs::read(dir.join(name)).unwrap())
}

struct Uas {
    clock: Clock,
    layer: TransactionLayer,
    peer: Peer,
}

impl Uas {
    fn new() -> Uas {
        let peer = Peer { transport: Transport::Udp, addr: "192.0.2.10:5060".parse().unwrap(), flow: None };
        Uas { clock: Clock::new(), layer: TransactionLayer::new(Config::default()), peer }
    }

    fn receive(&mut self, request: &Request) -> Option<TxEvent> {
        self.layer.handle_message(Message::Request(request.clone()), self.peer.clone(), self.clock.now())
    }

    fn receive_bytes(&mut self, bytes: Bytes) -> Option<TxEvent> {
        self.layer.handle_message(Message::parse(bytes).unwrap(), self.peer.clone(), self.clock.now())
    }

    fn respond(&mut self, key: TxKey, response: Response) {
        self.layer.respond(key, response, self.clock.now()).unwrap();
    }

    /// Status lines sent since the last call.
    fn sent(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.layer.poll_transmit())
            .map(|t| String::from_utf8_lossy(t.bytes.split(|&b| b == b'\r').next().unwrap()).into_owned())
            .collect()
    }
}

fn new_tx(e: Option<TxEvent>) -> (TxKey, Request) {
    match e {
        Some(TxEvent::Request { key, request, .. }) => (key, request),
        other => panic!("expected a new request, got {other:?}"),
    }
}

fn new_invite(rng: &mut Rng) -> Request {
    new_request(Method::Invite, "matching", 1, &Transport::Udp, rng)
}

#[test]
fn cancel_finds_its_invite_and_the_tu_answers_200_and_487() {
    let mut uas = Uas::new();
    let mut rng = Rng::new(1);
    let (invite_key, invite) = new_tx(uas.receive(&new_invite(&mut rng)));
    let cancel = cancel_for(&invite);
    assert_eq!(uas.layer.find_cancelled(&cancel), Some(invite_key));
    let Some(TxEvent::Cancel { key: cancel_key, invite: Some(target), request, .. }) = uas.receive(&cancel) else {
        panic!("a CANCEL event")
    };
    assert_eq!(target, invite_key);
    assert_ne!(cancel_key, invite_key);
    uas.respond(cancel_key, request.reply(200, ""));
    uas.respond(invite_key, invite.reply(487, ""));
    assert_eq!(uas.sent(), ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]);
    // The CANCEL again: its 200 again, no event. The ACK for the 487: absorbed.
    assert_eq!(uas.receive(&cancel), None);
    assert_eq!(uas.sent(), ["SIP/2.0 200 OK"]);
    assert_eq!(uas.receive(&ack_for(&invite, &invite.reply(487, ""))), None);
    assert_eq!(uas.layer.state(invite_key), Some(TxState::Confirmed));
    // CANCEL can't be answered twice, and a late 487 is refused.
    assert_eq!(uas.layer.respond(invite_key, invite.reply(487, ""), uas.clock.now()), Err(TxError::AlreadyFinal));

    // A CANCEL for nothing we know: the TU answers 481.
    let other = new_invite(&mut rng);
    assert!(matches!(uas.receive(&cancel_for(&other)), Some(TxEvent::Cancel { invite: None, .. })));
    // Same branch, other sent-by: not the same transaction (§17.2.3).
    let mut elsewhere = cancel_for(&invite);
    let via = invite.top_via().unwrap().to_string().replace("192.0.2.1:5060", "192.0.2.99:5060");
    elsewhere.headers.set(HeaderName::Via, SipStr::from(via));
    assert_eq!(uas.layer.find_cancelled(&elsewhere), None);
}

#[test]
fn merged_request_is_reported_for_a_482() {
    let mut uas = Uas::new();
    let mut rng = Rng::new(2);
    let first = new_invite(&mut rng);
    let (original, _) = new_tx(uas.receive(&first));
    // The same request forked back to us by another proxy: another branch and sent-by.
    let mut second = first.clone();
    second.headers.remove(HeaderName::Via);
    second.headers.push_front(HeaderName::Via, "SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2other");
    let Some(TxEvent::Merged { key, original: o, request, .. }) = uas.receive(&second) else { panic!("merged") };
    assert_eq!(o, original);
    uas.respond(key, request.reply(482, ""));
    assert_eq!(uas.sent(), ["SIP/2.0 482 Loop Detected"]);
    // Its retransmission is its own transaction's business: the 482 again, no new event.
    assert_eq!(uas.receive(&second), None);
    assert_eq!(uas.sent(), ["SIP/2.0 482 Loop Detected"]);

    // With a To tag the request is inside a dialog: never merged.
    let mut in_dialog = first.clone();
    in_dialog.headers.set(HeaderName::To, "Bob <sip:bob@example.com>;tag=abc");
    in_dialog.headers.remove(HeaderName::Via);
    in_dialog.headers.push_front(HeaderName::Via, "SIP/2.0/UDP p3.example.com;branch=z9hG4bKp3");
    assert!(matches!(uas.receive(&in_dialog), Some(TxEvent::Request { .. })));
    // Another CSeq: not merged either.
    let mut next = second.clone();
    next.headers.set(HeaderName::CSeq, "2 INVITE");
    next.headers.remove(HeaderName::Via);
    next.headers.push_front(HeaderName::Via, "SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2next");
    assert!(matches!(uas.receive(&next), Some(TxEvent::Request { .. })));
}

/// `inv2543.dat` (RFC 4475 §3.4.1): an RFC 2543 INVITE, no branch, no Max-Forwards.
#[test]
fn rfc2543_fallback_on_the_torture_message() {
    let bytes = torture("inv2543.dat");
    let mut uas = Uas::new();
    let (key, invite) = new_tx(uas.receive_bytes(bytes.clone()));
    assert!(invite.top_via().unwrap().branch().is_none());
    // The same bytes again: a retransmission by Request-URI, tags, Call-ID, CSeq and top Via.
    assert_eq!(uas.receive_bytes(bytes.clone()), None);
    uas.respond(key, invite.reply(180, ""));
    assert_eq!(uas.receive_bytes(bytes.clone()), None);
    assert_eq!(uas.sent(), ["SIP/2.0 180 Ringing", "SIP/2.0 180 Ringing"]);

    // A CANCEL built the 2543 way matches the INVITE.
    let cancel = cancel_for(&invite);
    assert!(cancel.top_via().unwrap().branch().is_none());
    assert!(matches!(uas.receive(&cancel), Some(TxEvent::Cancel { invite: Some(k), .. }) if k == key));

    let terminated = invite.reply(487, "");
    uas.respond(key, terminated.clone());
    assert_eq!(uas.sent(), ["SIP/2.0 487 Request Terminated"]);
    // An ACK with another To tag is not for this transaction ...
    let mut stray = ack_for(&invite, &terminated);
    stray.headers.set(HeaderName::To, "sip:+16505552222@ss1.example.net;user=phone;tag=not-ours");
    assert!(matches!(uas.receive(&stray), Some(TxEvent::Ack { .. })));
    assert_eq!(uas.layer.state(key), Some(TxState::Completed));
    // ... the one carrying the 487's tag is, and is absorbed.
    let ack = ack_for(&invite, &terminated);
    assert_eq!(uas.receive(&ack), None);
    assert_eq!(uas.layer.state(key), Some(TxState::Confirmed));

    // Another CSeq is another transaction.
    let next = Bytes::from(String::from_utf8(bytes.to_vec()).unwrap().replace("CSeq: 56 INVITE", "CSeq: 57 INVITE"));
    assert!(matches!(uas.receive_bytes(next), Some(TxEvent::Request { .. })));
    // The file itself is untouched: read again, it is the same bytes.
    assert_eq!(torture("inv2543.dat"), bytes);
}

#[test]
fn ack_for_2xx_is_its_own_event() {
    let mut uas = Uas::new();
    let mut rng = Rng::new(3);
    let (key, invite) = new_tx(uas.receive(&new_invite(&mut rng)));
    let ok = invite.reply(200, "");
    uas.respond(key, ok.clone());
    let ack = ack_for_2xx(&invite, &ok, &mut rng);
    assert_ne!(ack.top_via().unwrap().branch(), invite.top_via().unwrap().branch());
    let Some(TxEvent::Ack { request, .. }) = uas.receive(&ack) else { panic!("ACK event") };
    assert_eq!(request.method, Method::Ack);
    assert_eq!(uas.receive(&ack), None, "repeated ACK absorbed while the 2xx is tracked");
    assert_eq!(uas.layer.state(key), Some(TxState::Accepted));
    // An ACK for a 2xx we know nothing about (sent by the TU statelessly, or long ago).
    let mut unknown = ack.clone();
    unknown.headers.set(HeaderName::CallId, "someone-else");
    assert!(matches!(uas.receive(&unknown), Some(TxEvent::Ack { .. })));
}

#[test]
fn responses_match_by_branch_and_cseq_method() {
    let mut layer = TransactionLayer::new(Config::default());
    let clock = Clock::new();
    let mut rng = Rng::new(4);
    let peer = Peer { transport: Transport::Udp, addr: "192.0.2.2:5060".parse().unwrap(), flow: None };
    let invite = new_invite(&mut rng);
    let key = layer.send_request(invite.clone(), peer.clone(), clock.now()).unwrap();
    // The CANCEL shares the branch but is a transaction of its own (§17.1.3).
    let cancel_key = layer.send_request(cancel_for(&invite), peer.clone(), clock.now()).unwrap();
    let ok_cancel = cancel_for(&invite).reply(200, "");
    assert!(matches!(
        layer.handle_message(Message::Response(ok_cancel), peer.clone(), clock.now()),
        Some(TxEvent::Response { key: k, .. }) if k == cancel_key
    ));
    assert_eq!(layer.state(key), Some(TxState::Calling));
    // A response with another branch is a stray (§18.1.2: dropped).
    let mut stray = invite.reply(180, "");
    stray.headers.set(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnothing");
    assert_eq!(layer.handle_message(Message::Response(stray), peer.clone(), clock.now()), None);
    // Nor does a response to a method we did not send.
    let mut odd = invite.reply(200, "");
    odd.headers.set(HeaderName::CSeq, "1 BYE");
    assert_eq!(layer.handle_message(Message::Response(odd), peer, clock.now()), None);
    assert_eq!(layer.state(key), Some(TxState::Calling));
}

#[test]
fn tu_mistakes_are_errors_not_panics() {
    let mut layer = TransactionLayer::new(Config::default());
    let clock = Clock::new();
    let mut rng = Rng::new(5);
    let peer = Peer { transport: Transport::Udp, addr: "192.0.2.2:5060".parse().unwrap(), flow: None };
    let r = new_invite(&mut rng);
    let key = layer.send_request(r.clone(), peer.clone(), clock.now()).unwrap();
    assert_eq!(layer.send_request(r.clone(), peer.clone(), clock.now()), Err(TxError::DuplicateBranch));
    let mut ack = r.clone();
    ack.method = Method::Ack;
    assert_eq!(layer.send_request(ack, peer.clone(), clock.now()), Err(TxError::Ack));
    let mut no_via = r.clone();
    no_via.headers.remove(HeaderName::Via);
    assert_eq!(layer.send_request(no_via, peer.clone(), clock.now()), Err(TxError::NoBranch));
    let mut no_cseq = new_invite(&mut rng);
    no_cseq.headers.remove(HeaderName::CSeq);
    assert_eq!(layer.send_request(no_cseq, peer.clone(), clock.now()), Err(TxError::Missing("CSeq")));
    assert_eq!(layer.respond(key, r.reply(200, ""), clock.now()), Err(TxError::NotServer));
    let mut bad = r.reply(200, "");
    bad.status = 700;
    assert_eq!(layer.respond(key, bad, clock.now()), Err(TxError::BadStatus));
    assert_eq!(layer.respond(TxKey::clone(&key), r.reply(99, ""), clock.now()), Err(TxError::BadStatus));
    let mut uas = Uas::new();
    let (skey, sreq) = new_tx(uas.receive(&new_invite(&mut rng)));
    assert_eq!(uas.layer.cancel(skey, clock.now()), Err(TxError::NotInviteClient));
    uas.respond(skey, sreq.reply(404, ""));
    uas.layer.handle_transport_error(skey, clock.now());
    assert_eq!(uas.layer.respond(skey, sreq.reply(404, ""), clock.now()), Err(TxError::UnknownTransaction));
}

/// Every torture message, and each with a key header taken out, into a layer as request and
/// as response: nothing may panic.
#[test]
fn no_panics_on_odd_messages() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sip/torture/rfc4475");
    let mut layer =
        TransactionLayer::new(Config { trying_delay: Some(std::time::Duration::ZERO), ..Config::default() });
    let mut clock = Clock::new();
    let peer = Peer { transport: Transport::Udp, addr: "192.0.2.10:5060".parse().unwrap(), flow: None };
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "dat")
            && let Ok(m) = Message::parse(Bytes::from(std::fs::read(path).unwrap()))
        {
            messages.push(m);
        }
    }
    assert!(messages.len() > 15);
    let stripped = [HeaderName::Via, HeaderName::CSeq, HeaderName::CallId, HeaderName::From, HeaderName::To];
    for m in messages.clone() {
        for name in stripped.iter().cloned().map(Some).chain([None]) {
            let mut m = m.clone();
            if let Some(name) = name {
                m.headers_mut().remove(name);
            }
            if let Message::Request(r) = &m {
                let _ = layer.send_request(r.clone(), peer.clone(), clock.now());
                for status in [100, 180, 200, 486] {
                    let response = Message::Response(r.reply(status, ""));
                    let _ = layer.handle_message(response, peer.clone(), clock.now());
                }
                let _ = layer.find_cancelled(r);
            }
            if let Some(TxEvent::Request { key, request, .. }) = layer.handle_message(m, peer.clone(), clock.now()) {
                let _ = layer.respond(key, request.reply(200, ""), clock.now());
                let _ = layer.cancel(key, clock.now());
            }
            while layer.poll_transmit().is_some() {}
            while layer.poll_event().is_some() {}
        }
    }
    // And all of it winds down.
    while let Some(at) = layer.poll_timeout() {
        clock.advance_to(at);
        layer.handle_timeout(at);
        while layer.poll_transmit().is_some() {}
        while layer.poll_event().is_some() {}
    }
    assert!(layer.is_empty());
}
