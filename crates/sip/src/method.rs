//! Request methods (RFC 3261 §7.1 and the extensions Sambung speaks).

use crate::text::SipStr;
use std::fmt;

/// A SIP request method. Methods are case-sensitive (RFC 3261 §7.1); an unknown method is kept
/// byte for byte as [`Method::Extension`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
    Register,
    /// RFC 3262
    Prack,
    /// RFC 6665
    Subscribe,
    /// RFC 6665
    Notify,
    /// RFC 3903
    Publish,
    /// RFC 6086
    Info,
    /// RFC 3515
    Refer,
    /// RFC 3428
    Message,
    /// RFC 3311
    Update,
    /// Any other `token`, kept as received.
    Extension(SipStr),
}

impl Method {
    /// Looks a method up by its exact (case-sensitive) name.
    pub fn from_token(s: SipStr) -> Method {
        Method::known(&s).unwrap_or(Method::Extension(s))
    }

    /// The method named exactly `s`, unless it is an extension. One branch on the length and
    /// the first byte, then one compare.
    #[inline]
    pub(crate) fn known(s: &str) -> Option<Method> {
        let b = s.as_bytes();
        Some(match (b.len(), *b.first()?) {
            (6, b'I') if b == b"INVITE" => Method::Invite,
            (3, b'A') if b == b"ACK" => Method::Ack,
            (6, b'C') if b == b"CANCEL" => Method::Cancel,
            (3, b'B') if b == b"BYE" => Method::Bye,
            (7, b'O') if b == b"OPTIONS" => Method::Options,
            (8, b'R') if b == b"REGISTER" => Method::Register,
            (5, b'P') if b == b"PRACK" => Method::Prack,
            (9, b'S') if b == b"SUBSCRIBE" => Method::Subscribe,
            (6, b'N') if b == b"NOTIFY" => Method::Notify,
            (7, b'P') if b == b"PUBLISH" => Method::Publish,
            (4, b'I') if b == b"INFO" => Method::Info,
            (5, b'R') if b == b"REFER" => Method::Refer,
            (7, b'M') if b == b"MESSAGE" => Method::Message,
            (6, b'U') if b == b"UPDATE" => Method::Update,
            _ => return None,
        })
    }

    /// The method's name as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Cancel => "CANCEL",
            Method::Bye => "BYE",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Extension(s) => s,
        }
    }

    /// True for a method whose name matches `s` exactly.
    pub fn is(&self, s: &str) -> bool {
        self.as_str() == s
    }
}

impl From<&'static str> for Method {
    fn from(s: &'static str) -> Self {
        Method::from_token(SipStr::from_static(s))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
