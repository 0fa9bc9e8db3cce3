//! Requests and responses (RFC 3261 §7).

use crate::header::{HeaderName, Headers};
use crate::method::Method;
use crate::text::SipStr;
use crate::typed::{CSeq, NameAddr, Via};
use crate::uri::Uri;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: SipStr,
    pub headers: Headers,
    pub body: Bytes,
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Accessors shared by requests and responses. The typed ones parse on demand from the
/// stored header value; a message from [`Message::parse`] has already been checked to have
/// well-formed Via, From, To, Call-ID and CSeq.
macro_rules! common_accessors {
    () => {
        /// The Call-ID.
        pub fn call_id(&self) -> Option<&str> {
            self.headers.get(HeaderName::CallId).map(|v| &**v)
        }

        /// The CSeq.
        pub fn cseq(&self) -> Option<CSeq> {
            CSeq::parse(self.headers.get(HeaderName::CSeq)?).ok()
        }

        /// The topmost Via value.
        pub fn top_via(&self) -> Option<Via> {
            let v = self.headers.get(HeaderName::Via)?;
            let first = crate::text::split_commas(v).next()?;
            Via::parse_in(v, first).ok()
        }

        /// All Via values, top first.
        pub fn vias(&self) -> impl Iterator<Item = Via> + '_ {
            self.headers
                .get_all(HeaderName::Via)
                .flat_map(|line| crate::text::split_commas(line).filter_map(move |v| Via::parse_in(line, v).ok()))
        }

        pub fn from(&self) -> Option<NameAddr> {
            NameAddr::parse(self.headers.get(HeaderName::From)?).ok()
        }

        pub fn to(&self) -> Option<NameAddr> {
            NameAddr::parse(self.headers.get(HeaderName::To)?).ok()
        }

        /// Every Contact value (`*` is not a name-addr and is skipped; see [`Headers::values`]).
        pub fn contacts(&self) -> impl Iterator<Item = NameAddr> + '_ {
            self.headers
                .get_all(HeaderName::Contact)
                .flat_map(|line| crate::text::split_commas(line).filter_map(move |v| NameAddr::parse_in(line, v).ok()))
        }

        /// Sets the body and its Content-Type and Content-Length.
        pub fn set_body(&mut self, content_type: &str, body: Bytes) {
            self.headers.set(HeaderName::ContentType, SipStr::from(content_type));
            self.headers.set(HeaderName::ContentLength, SipStr::from(body.len().to_string()));
            self.body = body;
        }
    };
}

impl Request {
    common_accessors!();

    /// Max-Forwards, when present and well-formed.
    pub fn max_forwards(&self) -> Option<u32> {
        crate::typed::parse_u32(crate::text::trim_lws(self.headers.get(HeaderName::MaxForwards)?))
    }

    /// Builds a response to this request (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq
    /// copied; a To tag added to any final or non-100 response that lacks one.
    pub fn reply(&self, status: u16, reason: &str) -> Response {
        let mut headers = Headers::new();
        for h in self.headers.iter() {
            match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => headers.0.push(h.clone()),
                HeaderName::To => {
                    let needs_tag = status != 100 && self.to().is_none_or(|t| t.tag().is_none());
                    if needs_tag {
                        headers.push(HeaderName::To, SipStr::from(format!("{};tag={}", h.value, self.local_tag())));
                    } else {
                        headers.0.push(h.clone());
                    }
                }
                _ => {}
            }
        }
        if status == 100
            && let Some(ts) = self.headers.get(HeaderName::Timestamp)
        {
            headers.push(HeaderName::Timestamp, ts.clone()); // RFC 3261 §8.2.6.1
        }
        headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
        let reason = if reason.is_empty() { reason_phrase(status) } else { reason };
        Response { status, reason: SipStr::from(reason), headers, body: Bytes::new() }
    }

    /// A To tag derived from the request's identity, so that every response the server sends
    /// to one request (and its retransmissions) carries the same tag without keeping state.
    pub fn local_tag(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for name in [HeaderName::CallId, HeaderName::From, HeaderName::CSeq] {
            h.update(self.headers.get(name).map(|v| str::as_bytes(v)).unwrap_or_default());
            h.update([0]);
        }
        if let Some(b) = self.top_via().as_ref().and_then(|v| v.branch().map(str::to_owned)) {
            h.update(b.as_bytes());
        }
        crate::text::to_hex(&h.finalize()[..8])
    }

    /// Applies `received` and `rport` to the top Via (RFC 3261 §18.2.1, RFC 3581 §4): the
    /// address the request really came from, so the response finds its way back through NAT.
    pub fn stamp_via(&mut self, source: SocketAddr) {
        let Some(idx) = self.headers.0.iter().position(|h| h.name == HeaderName::Via) else { return };
        let line = self.headers.0[idx].value.clone();
        let first = crate::text::split_commas(&line).next().unwrap_or("");
        let Ok(mut via) = Via::parse_in(&line, first) else { return };
        // RFC 3261's via-received is a bare IPv6address: no "[" "]" (RFC 5118 §4.5). A source
        // seen as an IPv4-mapped IPv6 address is the IPv4 address it maps.
        let ip = source.ip().to_canonical();
        let wants_rport = via.params.has("rport");
        let host_differs = via.host.ip() != Some(ip);
        if !host_differs && !wants_rport {
            return;
        }
        if host_differs || wants_rport {
            via.params.set("received", Some(SipStr::from(ip.to_string())));
        }
        if wants_rport {
            via.params.set("rport", Some(SipStr::from(source.port().to_string())));
        }
        let rest = &line[first.len()..];
        self.headers.0[idx].value = SipStr::from(format!("{via}{rest}"));
    }

    /// Prints the request.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(crate::print::request_len(self));
        crate::print::request(self, &mut buf);
        buf.freeze()
    }
}

impl Response {
    common_accessors!();

    /// 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(crate::print::response_len(self));
        crate::print::response(self, &mut buf);
        buf.freeze()
    }
}

impl Message {
    /// Parses one message with datagram semantics: the buffer holds exactly one message; with no
    /// Content-Length the body is the rest of the buffer (RFC 3261 §18.3), bytes beyond the
    /// Content-Length are discarded.
    pub fn parse(buf: Bytes) -> Result<Message, crate::ParseError> {
        crate::parse::parse(buf)
    }

    /// Prints the message to wire form.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    /// Appends the wire form to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Message::Request(r) => crate::print::request(r, buf),
            Message::Response(r) => crate::print::response(r, buf),
        }
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
}

/// The standard reason phrase for a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}
