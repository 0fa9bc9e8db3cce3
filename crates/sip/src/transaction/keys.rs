//! Matching messages to transactions (RFC 3261 §17.1.3, §17.2.3, §8.2.2.2, §9.2).

use crate::message::{Request, Response};
use crate::method::Method;
use crate::text::SipStr;
use crate::typed::Via;

/// §17.1.3: a response matches a client transaction by the branch of its top Via and the
/// method of its CSeq (a CANCEL shares the INVITE's branch but not its method).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientMatch {
    branch: SipStr,
    method: Method,
}

impl ClientMatch {
    pub(crate) fn of_request(request: &Request) -> Option<ClientMatch> {
        Some(ClientMatch { branch: branch(&request.top_via()?)?, method: request.method.clone() })
    }

    pub(crate) fn of_response(response: &Response) -> Option<ClientMatch> {
        Some(ClientMatch { branch: branch(&response.top_via()?)?, method: response.cseq()?.method })
    }
}

fn branch(via: &Via) -> Option<SipStr> {
    via.params.get("branch").flatten().filter(|b| !b.is_empty()).cloned()
}

/// §17.2.3: how a request matches a server transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ServerMatch {
    /// The top Via has an RFC 3261 branch: branch, sent-by and method.
    Rfc3261 { branch: SipStr, host: String, port: Option<u16>, method: Method },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number, top Via and method.
    /// The To tag is compared separately (an ACK carries the tag of the response, not of the
    /// INVITE).
    /// Boxed: rare, and twice the size of the usual key.
    Rfc2543(Box<Rfc2543Match>),
}

/// See [`ServerMatch::Rfc2543`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rfc2543Match {
    uri: String,
    from_tag: Option<SipStr>,
    call_id: SipStr,
    cseq: u32,
    method: Method,
    via: String,
}

/// A copy of `s` in an allocation of its own: a key kept for a transaction's whole life must not
/// keep the received message it was sliced from (RFC 3261 Timer J keeps a completed
/// transaction for 32 s after its request is dropped).
pub(crate) fn detach(s: &SipStr) -> SipStr {
    SipStr::from(&**s)
}

impl ServerMatch {
    /// The key with its own copies of the received message's text.
    pub(crate) fn detached(self) -> ServerMatch {
        match self {
            ServerMatch::Rfc3261 { branch, host, port, method } => {
                ServerMatch::Rfc3261 { branch: detach(&branch), host, port, method }
            }
            ServerMatch::Rfc2543(key) => ServerMatch::Rfc2543(Box::new(Rfc2543Match {
                from_tag: key.from_tag.as_ref().map(detach),
                call_id: detach(&key.call_id),
                ..*key
            })),
        }
    }

    /// The key of `request`, taken as a request of `method` (INVITE for an ACK, §17.2.3, and
    /// for a CANCEL looking for its INVITE, §9.2).
    pub(crate) fn of(request: &Request, method: Method) -> Option<ServerMatch> {
        let via = request.top_via()?;
        if via.has_rfc3261_branch() {
            return Some(ServerMatch::Rfc3261 {
                branch: branch(&via)?,
                host: via.host.as_str().to_ascii_lowercase(),
                port: via.port,
                method,
            });
        }
        // Only what identifies the hop: `received` and `rport` are stamped on arrival.
        let via = format!(
            "{}/{}:{:?};{}",
            via.transport,
            via.host.as_str().to_ascii_lowercase(),
            via.port,
            via.branch().unwrap_or("")
        );
        Some(ServerMatch::Rfc2543(Box::new(Rfc2543Match {
            uri: request.uri.to_string(),
            from_tag: request.from()?.tag().map(SipStr::from),
            call_id: SipStr::from(request.call_id()?),
            cseq: request.cseq()?.seq,
            method,
            via,
        })))
    }

    pub(crate) fn is_rfc2543(&self) -> bool {
        matches!(self, ServerMatch::Rfc2543(_))
    }
}

/// The method a request matches its server transaction with: ACK goes to its INVITE.
pub(crate) fn matching_method(method: &Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        m => m.clone(),
    }
}

/// §8.2.2.2: From tag, Call-ID and CSeq of a request that arrived without a To tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MergeKey {
    from_tag: Option<SipStr>,
    call_id: SipStr,
    cseq: u32,
    method: Method,
}

impl MergeKey {
    /// The key with its own copies of the received message's text.
    pub(crate) fn detached(self) -> MergeKey {
        MergeKey { from_tag: self.from_tag.as_ref().map(detach), call_id: detach(&self.call_id), ..self }
    }
}

impl MergeKey {
    /// `None` when the request is inside a dialog (it has a To tag) or is an ACK.
    pub(crate) fn of(request: &Request) -> Option<MergeKey> {
        if request.method == Method::Ack || request.to()?.tag().is_some() {
            return None;
        }
        let cseq = request.cseq()?;
        Some(MergeKey {
            from_tag: request.from()?.tag().map(SipStr::from),
            call_id: SipStr::from(request.call_id()?),
            cseq: cseq.seq,
            method: cseq.method,
        })
    }
}

/// What ties an ACK to the 2xx it acknowledges: Call-ID, From tag, the To tag of the 2xx and
/// the CSeq number of the INVITE (§13.2.2.4, §12.2.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AckKey {
    call_id: SipStr,
    from_tag: Option<SipStr>,
    to_tag: Option<SipStr>,
    cseq: u32,
}

impl AckKey {
    pub(crate) fn of_ack(ack: &Request) -> Option<AckKey> {
        Some(AckKey {
            call_id: SipStr::from(ack.call_id()?),
            from_tag: ack.from()?.tag().map(SipStr::from),
            to_tag: ack.to()?.tag().map(SipStr::from),
            cseq: ack.cseq()?.seq,
        })
    }

    pub(crate) fn of_2xx(response: &Response) -> Option<AckKey> {
        Some(AckKey {
            call_id: SipStr::from(response.call_id()?),
            from_tag: response.from()?.tag().map(SipStr::from),
            to_tag: response.to()?.tag().map(SipStr::from),
            cseq: response.cseq()?.seq,
        })
    }
}

/// The To tag of a message, copied out.
pub(crate) fn to_tag_of_request(request: &Request) -> Option<SipStr> {
    request.to()?.tag().map(SipStr::from)
}

pub(crate) fn to_tag_of_response(response: &Response) -> Option<SipStr> {
    response.to()?.tag().map(SipStr::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use bytes::Bytes;

    fn request(via: &str, method: &str, to_tag: &str) -> Request {
        let raw = format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nTo: <sip:bob@example.com>{to_tag}\r\n\
             From: <sip:alice@example.com>;tag=a1\r\nCall-ID: c1\r\nCSeq: 5 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(Bytes::from(raw)).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn server_keys() {
        let via = "SIP/2.0/UDP Host.Example:5060;branch=z9hG4bKabc";
        let invite = request(via, "INVITE", "");
        let ack = request(via, "ACK", ";tag=x");
        let key = ServerMatch::of(&invite, Method::Invite).unwrap();
        assert!(!key.is_rfc2543());
        // An ACK matches its INVITE; sent-by compares without case; received/rport do not count.
        assert_eq!(ServerMatch::of(&ack, matching_method(&ack.method)), Some(key.clone()));
        let mut stamped = invite.clone();
        stamped.stamp_via("198.51.100.1:4000".parse().unwrap());
        assert_eq!(ServerMatch::of(&stamped, Method::Invite), Some(key.clone()));
        let lower = request("SIP/2.0/UDP host.example:5060;branch=z9hG4bKabc", "INVITE", "");
        assert_eq!(ServerMatch::of(&lower, Method::Invite), Some(key.clone()));
        // Another port or method is another transaction.
        let port = request("SIP/2.0/UDP host.example:5070;branch=z9hG4bKabc", "INVITE", "");
        assert_ne!(ServerMatch::of(&port, Method::Invite), Some(key.clone()));
        assert_ne!(ServerMatch::of(&invite, Method::Cancel), Some(key));
        // Without the cookie: the RFC 2543 key, where received/rport do not count either.
        let old = request("SIP/2.0/UDP host.example;branch=1234", "INVITE", "");
        let old_key = ServerMatch::of(&old, Method::Invite).unwrap();
        assert!(old_key.is_rfc2543());
        let mut stamped = old.clone();
        stamped.stamp_via("198.51.100.1:4000".parse().unwrap());
        assert_eq!(ServerMatch::of(&stamped, Method::Invite), Some(old_key));
    }

    #[test]
    fn merge_keys_only_outside_dialogs() {
        let via = "SIP/2.0/UDP h;branch=z9hG4bK1";
        assert!(MergeKey::of(&request(via, "INVITE", "")).is_some());
        assert!(MergeKey::of(&request(via, "INVITE", ";tag=t")).is_none());
        assert!(MergeKey::of(&request(via, "ACK", "")).is_none());
        assert_ne!(MergeKey::of(&request(via, "INVITE", "")), MergeKey::of(&request(via, "CANCEL", "")));
    }

    #[test]
    fn client_keys_need_a_branch() {
        let r = request("SIP/2.0/UDP h;branch=z9hG4bK1", "INVITE", "");
        let resp = r.reply(180, "");
        assert_eq!(ClientMatch::of_request(&r), ClientMatch::of_response(&resp));
        assert!(ClientMatch::of_request(&request("SIP/2.0/UDP h", "INVITE", "")).is_none());
    }
}
