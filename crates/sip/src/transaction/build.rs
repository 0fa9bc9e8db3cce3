//! Requests the transaction layer builds, and small helpers for the TU that sends requests.

use crate::header::{Header, HeaderName, Headers};
use crate::message::{Request, Response};
use crate::method::Method;
use crate::text::{SipStr, split_commas, trim_lws};
use crate::typed::{BRANCH_COOKIE, Via};
use bytes::Bytes;

/// A branch for a new client transaction (§8.1.1.7): the magic cookie and `entropy` in hex.
/// The caller supplies the randomness (at least 8 bytes from a CSPRNG); the core has no RNG.
pub fn new_branch(entropy: &[u8]) -> SipStr {
    SipStr::from(format!("{BRANCH_COOKIE}{}", crate::text::to_hex(entropy)))
}

/// Puts `via` on top of the request's Via header fields (§8.1.1.7, §16.6 item 8): the first
/// header line of the message.
pub fn push_via(request: &mut Request, via: Via) {
    request.headers.0.insert(0, Header { name: HeaderName::Via, value: SipStr::from(via.to_string()) });
}

/// The first value of the first Via line, as written.
pub(crate) fn top_via_raw(headers: &Headers) -> Option<SipStr> {
    let line = headers.get(HeaderName::Via)?;
    let first = trim_lws(split_commas(line).next()?);
    (!first.is_empty()).then(|| line.slice_ref(first))
}

/// The ACK a client INVITE transaction sends for a non-2xx final response (§17.1.1.3): the
/// INVITE's Request-URI, top Via, From, Call-ID, CSeq number and Route set, and the To of the
/// response (with its tag).
pub fn ack_for(invite: &Request, response: &Response) -> Request {
    let to = response.headers.get(HeaderName::To).or_else(|| invite.headers.get(HeaderName::To));
    hop_by_hop(invite, Method::Ack, to.cloned())
}

/// A CANCEL for `invite` (§9.1): the same Request-URI, top Via, To, From, Call-ID, CSeq number
/// and Route set, with method CANCEL. Send it with [`crate::transaction::TransactionLayer::cancel`]
/// or, to the same place as the INVITE, through a client transaction of its own.
pub fn cancel_for(invite: &Request) -> Request {
    hop_by_hop(invite, Method::Cancel, invite.headers.get(HeaderName::To).cloned())
}

fn hop_by_hop(invite: &Request, method: Method, to: Option<SipStr>) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = top_via_raw(&invite.headers) {
        headers.push(HeaderName::Via, via);
    }
    headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
    if let Some(to) = to {
        headers.push(HeaderName::To, to);
    }
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(name.clone()) {
            headers.push(name, v.clone());
        }
    }
    if let Some(cseq) = invite.cseq() {
        headers.push(HeaderName::CSeq, SipStr::from(format!("{} {method}", cseq.seq)));
    }
    for route in invite.headers.get_all(HeaderName::Route) {
        headers.push(HeaderName::Route, route.clone());
    }
    headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
    Request { method, uri: invite.uri.clone(), headers, body: Bytes::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn invite() -> Request {
        let raw = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8, SIP/2.0/UDP p.example\r\n\
            Max-Forwards: 69\r\n\
            Route: <sip:p1.example.com;lr>\r\n\
            Route: <sip:p2.example.com;lr>\r\n\
            To: Bob <sip:bob@biloxi.example.com>\r\n\
            From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
            Call-ID: a84b4c76e66710\r\n\
            CSeq: 314159 INVITE\r\n\
            Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
            Content-Type: application/sdp\r\n\
            Content-Length: 4\r\n\r\nv=0\n";
        match Message::parse(Bytes::from(raw)).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn ack_for_non_2xx_copies_what_17_1_1_3_asks() {
        let invite = invite();
        let mut busy = invite.reply(486, "Busy Here");
        busy.headers.set(HeaderName::To, "Bob <sip:bob@biloxi.example.com>;tag=314");
        let ack = ack_for(&invite, &busy);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, invite.uri);
        assert_eq!(ack.headers.count(HeaderName::Via), 1);
        assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKnashds8"));
        assert_eq!(ack.to().unwrap().tag(), Some("314"));
        assert_eq!(ack.cseq().unwrap().to_string(), "314159 ACK");
        assert_eq!(ack.headers.count(HeaderName::Route), 2);
        assert!(ack.body.is_empty() && ack.headers.get(HeaderName::ContentType).is_none());
        let reparsed = Message::parse(ack.to_bytes()).unwrap();
        assert!(matches!(reparsed, Message::Request(r) if r == ack));
    }

    #[test]
    fn cancel_matches_the_invite() {
        let invite = invite();
        let cancel = cancel_for(&invite);
        assert_eq!(cancel.method, Method::Cancel);
        assert_eq!(cancel.cseq().unwrap().to_string(), "314159 CANCEL");
        assert_eq!(cancel.headers.get(HeaderName::To), invite.headers.get(HeaderName::To));
        assert_eq!(cancel.top_via(), invite.top_via());
        assert_eq!(cancel.max_forwards(), Some(70));
    }

    #[test]
    fn branches_and_vias() {
        assert_eq!(new_branch(&[0xde, 0xad, 0x01]), "z9hG4bKdead01");
        let mut r = invite();
        push_via(&mut r, Via::new(crate::Transport::Tcp, crate::Host::from("proxy.example"), None, "z9hG4bKx"));
        assert_eq!(r.headers.0[0].name, HeaderName::Via);
        assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bKx"));
        assert_eq!(r.vias().count(), 3);
    }
}
