//! Request inspection a UAS does before acting (RFC 3261 §8.2.1–§8.2.3, §16.3 item 3):
//! the checks whose failure has its own status code.

use crate::header::{HeaderName, Headers};
use crate::message::{Request, Response, reason_phrase};
use crate::method::Method;
use crate::text::{SipStr, trim_lws};
use crate::uri::Uri;

/// What the server understands; the source of 501, 416, 420, 415 and 406 answers.
#[derive(Clone, Debug)]
pub struct RequestPolicy {
    /// Methods the server handles; anything else gets 501 with `Allow`.
    pub allow: Vec<Method>,
    /// URI schemes accepted in the Request-URI (lower-case).
    pub schemes: Vec<&'static str>,
    /// Option tags the server supports (RFC 3261 §8.2.2.3).
    pub supported: Vec<&'static str>,
    /// Body types the server reads (sent in `Accept` with a 415).
    pub accept: Vec<&'static str>,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        RequestPolicy {
            allow: vec![
                Method::Invite,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
                Method::Options,
                Method::Register,
                Method::Message,
                Method::Subscribe,
                Method::Notify,
                Method::Info,
                Method::Update,
                Method::Prack,
                Method::Refer,
            ],
            schemes: vec!["sip", "sips", "tel"],
            supported: vec!["path", "outbound", "replaces", "timer", "100rel", "gruu"],
            accept: vec![
                "application/sdp",
                "application/pidf+xml",
                "text/plain",
                "application/simple-message-summary",
                "message/sipfrag",
                "application/dtmf-relay",
            ],
        }
    }
}

/// A request the server refuses, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
    /// Extra header lines for the answer (`Allow`, `Unsupported`, `Accept`).
    pub headers: Headers,
}

impl Rejection {
    fn new(status: u16) -> Rejection {
        Rejection { status, reason: reason_phrase(status), headers: Headers::new() }
    }

    /// The answer to `request`.
    pub fn response(&self, request: &Request) -> Response {
        let mut r = request.reply(self.status, self.reason);
        let at = r.headers.len().saturating_sub(1); // before Content-Length
        for (i, h) in self.headers.iter().enumerate() {
            r.headers.0.insert(at + i, h.clone());
        }
        r
    }
}

impl RequestPolicy {
    /// The `Allow` header value.
    pub fn allow_header(&self) -> String {
        self.allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }

    /// The `Supported` header value.
    pub fn supported_header(&self) -> String {
        self.supported.join(", ")
    }

    /// The `Accept` header value.
    pub fn accept_header(&self) -> String {
        self.accept.join(", ")
    }

    /// Runs the checks in RFC order: method, hops, URI scheme, required extensions, body type,
    /// acceptable answer types.
    pub fn check(&self, req: &Request) -> Result<(), Rejection> {
        // §8.2.1 method inspection
        if !self.allow.contains(&req.method) {
            let mut r = Rejection::new(if matches!(req.method, Method::Extension(_)) { 501 } else { 405 });
            r.headers.push(HeaderName::Allow, SipStr::from(self.allow_header()));
            return Err(r);
        }
        // §16.3 item 3: a request that would be forwarded with no hops left
        if req.max_forwards() == Some(0) && !matches!(req.method, Method::Options | Method::Register | Method::Ack) {
            return Err(Rejection::new(483));
        }
        // §8.2.2.1 Request-URI scheme
        let scheme_ok = match &req.uri {
            Uri::Sip(_) => true,
            Uri::Other { scheme, .. } => self.schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)),
        };
        if !scheme_ok {
            return Err(Rejection::new(416));
        }
        // §8.2.2.3 Require (and Proxy-Require, which a B2BUA sees as its own)
        if req.method != Method::Ack && req.method != Method::Cancel {
            let unsupported: Vec<&str> = req
                .headers
                .values(HeaderName::Require)
                .chain(req.headers.values(HeaderName::ProxyRequire))
                .filter(|tag| !self.supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
                .collect();
            if !unsupported.is_empty() {
                let mut r = Rejection::new(420);
                r.headers.push(HeaderName::Unsupported, SipStr::from(unsupported.join(", ")));
                return Err(r);
            }
        }
        // §8.2.3 content processing
        if let Some(ct) = req.headers.get(HeaderName::ContentType).filter(|_| !req.body.is_empty()) {
            let mime = media_type(ct);
            if !self.accept.iter().any(|a| a.eq_ignore_ascii_case(mime))
                && !mime.eq_ignore_ascii_case("multipart/mixed")
            {
                let mut r = Rejection::new(415);
                r.headers.push(HeaderName::Accept, SipStr::from(self.accept_header()));
                return Err(r);
            }
        }
        // RFC 3261 §21.4.7: an INVITE whose Accept excludes the session description we answer with.
        if req.method == Method::Invite && req.headers.count(HeaderName::Accept) > 0 {
            let ok = req.headers.values(HeaderName::Accept).any(|a| {
                let m = media_type(a);
                m.eq_ignore_ascii_case("application/sdp") || m == "*/*" || m.eq_ignore_ascii_case("application/*")
            });
            if !ok {
                let mut r = Rejection::new(406);
                r.headers.push(HeaderName::Accept, SipStr::from_static("application/sdp"));
                r.headers
                    .push(HeaderName::Warning, SipStr::from_static("399 sambung \"Only application/sdp is offered\""));
                return Err(r);
            }
        }
        Ok(())
    }
}

/// `type/subtype` of a media-type header value, parameters dropped.
fn media_type(v: &str) -> &str {
    trim_lws(v.split(';').next().unwrap_or(""))
}
