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
        match str::as_bytes(&s) {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"CANCEL" => Method::Cancel,
            b"BYE" => Method::Bye,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"UPDATE" => Method::Update,
            _ => Method::Extension(s),
        }
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
