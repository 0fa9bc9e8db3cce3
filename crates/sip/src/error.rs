//! Parse errors that know how the peer must be answered (RFC 3261 §8.2, §16.3, RFC 4475).

use crate::header::{HeaderName, Headers};
use crate::message::Response;
use crate::text::SipStr;

/// What is wrong with a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("empty message")]
    Empty,
    #[error("message too large")]
    TooLarge,
    #[error("no blank line after the headers")]
    UnterminatedHeaders,
    #[error("header section is not UTF-8")]
    NotUtf8,
    #[error("bad request line: {0}")]
    BadRequestLine(&'static str),
    #[error("bad status line: {0}")]
    BadStatusLine(&'static str),
    #[error("SIP version not supported")]
    Version,
    #[error("bad Request-URI: {0}")]
    BadRequestUri(&'static str),
    #[error("bad header line")]
    BadHeaderLine,
    #[error("bad {header} header: {why}")]
    BadHeader { header: &'static str, why: &'static str },
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("multiple {0} headers")]
    Multiple(&'static str),
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    #[error("body shorter than Content-Length")]
    BodyTooShort,
}

/// A message that could not be parsed. For a request it carries what is needed to answer it
/// (RFC 3261 §8.2.6: the Via, From, To, Call-ID and CSeq lines as received).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ErrorKind,
    /// `Some` when the start line showed a request: the header lines read so far.
    pub(crate) request_headers: Option<Headers>,
}

impl ParseError {
    pub(crate) fn new(kind: ErrorKind) -> ParseError {
        ParseError { kind, request_headers: None }
    }

    /// The status the RFC asks for, or `None` when the message must be dropped silently (a
    /// broken response, or bytes that show no request at all).
    pub fn status(&self) -> Option<u16> {
        self.request_headers.as_ref()?;
        Some(match self.kind {
            ErrorKind::Version => 505,
            ErrorKind::TooLarge => 513,
            _ => 400,
        })
    }

    /// A reason phrase that names the fault, e.g. `Multiple Content-Length Headers`.
    pub fn reason(&self) -> String {
        let text = match self.kind {
            ErrorKind::Version => return "Version Not Supported".into(),
            ErrorKind::TooLarge => return "Message Too Large".into(),
            _ => self.kind.to_string(),
        };
        // Title-case the description for the status line: "Missing Call-ID Header".
        let mut out = String::with_capacity(text.len());
        let mut start = true;
        for c in text.chars() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            start = c == ' ';
        }
        out
    }

    /// The answer to a malformed request, or `None` when nothing may be sent. The response
    /// copies the lines that identify the request as received, so the client can match it;
    /// the transport sends it back to where the request came from.
    pub fn error_response(&self) -> Option<Response> {
        let status = self.status()?;
        let req = self.request_headers.as_ref()?;
        let mut headers = Headers::new();
        for name in [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            for v in req.get_all(name.clone()) {
                headers.push(name.clone(), v.clone());
            }
        }
        headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
        Some(Response { status, reason: SipStr::from(self.reason()), headers, body: bytes::Bytes::new() })
    }
}
