//! SDP, the Session Description Protocol (RFC 8866): the session model, its parser and printer.
//!
//! The model keeps everything a description says, so that a relay can rewrite the few fields it
//! owns (addresses, ports, version) and pass the rest on untouched: attributes stay in their
//! order, byte for byte, known or not. Typed views of the attributes Sambung reads (`rtpmap`,
//! `fmtp`, `rtcp`, direction, `crypto`, ICE) live in [`attr`] and are computed on demand.
//!
//! [`SessionDescription::parse`] accepts CRLF or bare LF line ends and the lines of a section in
//! any order (RFC 8866 §5 fixes the order; real agents do not always keep it); printing
//! ([`std::fmt::Display`]) always writes CRLF and the RFC's order, so `parse(print(x)) == x`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub mod attr;
mod parse;
mod print;

pub use attr::{AttrError, Codec, Crypto, Direction, Fmtp, Rtcp};
pub use parse::{SdpError, SdpErrorKind};

/// A whole session description (RFC 8866 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` (§5.2).
    pub origin: Origin,
    /// `s=` (§5.3); a single space when the session has no name.
    pub session_name: String,
    /// `i=` (§5.4).
    pub information: Option<String>,
    /// `u=` (§5.5).
    pub uri: Option<String>,
    /// `e=` (§5.6).
    pub emails: Vec<String>,
    /// `p=` (§5.6).
    pub phones: Vec<String>,
    /// Session-level `c=` (§5.7), the default for media sections without their own.
    pub connection: Option<Connection>,
    /// Session-level `b=` (§5.8).
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` with its `r=` lines (§5.9, §5.10).
    pub times: Vec<Timing>,
    /// `z=` (§5.11), kept as text.
    pub time_zones: Option<String>,
    /// `k=` (§5.12, obsolete), kept as text.
    pub key: Option<String>,
    /// Session-level `a=` lines (§5.13), in order.
    pub attributes: Vec<Attribute>,
    /// The media sections, in order (`m=` lines, §5.14).
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>` (RFC 8866 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as text: only its uniqueness matters.
    pub session_id: String,
    /// Incremented whenever the description changes (RFC 3264 §8).
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

/// `c=<nettype> <addrtype> <connection-address>` (RFC 8866 §5.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: String,
    /// The address as written, including a multicast `/ttl/count` suffix or an FQDN.
    pub address: String,
}

impl Connection {
    /// `IN IP4 <ip>` or `IN IP6 <ip>`.
    pub fn new(ip: IpAddr) -> Connection {
        Connection { net_type: "IN".into(), addr_type: addr_type(ip).into(), address: ip.to_string() }
    }

    /// The IP address, when the address is an IP literal (without a multicast suffix).
    pub fn ip(&self) -> Option<IpAddr> {
        let literal = self.address.split('/').next().unwrap_or_default();
        literal.parse().ok()
    }

    /// True for `0.0.0.0` (or `::`), the RFC 2543 way of saying "send nothing" (RFC 3264 §8.4).
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `IP4` or `IP6`, the address type of `ip` (RFC 8866 §5.7).
pub fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bandwidth {
    /// `CT`, `AS`, `TIAS` (RFC 3890), `RS`/`RR` (RFC 3556) or any other token.
    pub kind: String,
    /// In kilobits per second, except `TIAS` (bits per second).
    pub value: u64,
}

/// `t=<start-time> <stop-time>` and its `r=` lines (RFC 8866 §5.9, §5.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    /// `r=` lines, kept as text.
    pub repeats: Vec<String>,
}

/// One `a=` line (RFC 8866 §5.13): `a=<name>` or `a=<name>:<value>`, kept byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    /// `None` for a property attribute (`a=sendrecv`); `Some("")` for `a=name:`.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=<name>`).
    pub fn property(name: impl Into<String>) -> Attribute {
        Attribute { name: name.into(), value: None }
    }

    /// A value attribute (`a=<name>:<value>`).
    pub fn value(name: impl Into<String>, value: impl Into<String>) -> Attribute {
        Attribute { name: name.into(), value: Some(value.into()) }
    }

    /// True for the ICE attributes (RFC 8839 §5) a relay that terminates the media path must
    /// remove: its own address replaces every candidate.
    pub fn is_ice(&self) -> bool {
        attr::ICE_ATTRIBUTES.contains(&self.name.as_str())
    }
}

/// The media type of an `m=` line (RFC 8866 §5.14, §8.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MediaType {
    Audio,
    Video,
    Text,
    Application,
    Message,
    Image,
    /// Any other token, as written.
    Other(String),
}

impl MediaType {
    pub fn as_str(&self) -> &str {
        match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
            MediaType::Text => "text",
            MediaType::Application => "application",
            MediaType::Message => "message",
            MediaType::Image => "image",
            MediaType::Other(other) => other,
        }
    }
}

impl From<&str> for MediaType {
    fn from(token: &str) -> MediaType {
        match token {
            "audio" => MediaType::Audio,
            "video" => MediaType::Video,
            "text" => MediaType::Text,
            "application" => MediaType::Application,
            "message" => MediaType::Message,
            "image" => MediaType::Image,
            other => MediaType::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport protocol of an `m=` line (RFC 8866 §5.14 and the registered profiles).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `RTP/AVP` (RFC 3551).
    RtpAvp,
    /// `RTP/SAVP` (RFC 3711).
    RtpSavp,
    /// `RTP/AVPF` (RFC 4585).
    RtpAvpf,
    /// `RTP/SAVPF` (RFC 5124).
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP` (RFC 5764).
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF` (RFC 5764), WebRTC's profile.
    UdpTlsRtpSavpf,
    /// `udp` (RFC 8866 §5.14): the formats are media subtypes, not RTP payload types.
    Udp,
    /// Any other token, as written (`TCP/MSRP`, `udptl`, `TCP/TLS/BFCP` ...).
    Other(String),
}

impl Proto {
    pub fn as_str(&self) -> &str {
        match self {
            Proto::RtpAvp => "RTP/AVP",
            Proto::RtpSavp => "RTP/SAVP",
            Proto::RtpAvpf => "RTP/AVPF",
            Proto::RtpSavpf => "RTP/SAVPF",
            Proto::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            Proto::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Proto::Udp => "udp",
            Proto::Other(other) => other,
        }
    }

    /// True when the formats are RTP payload types (RFC 8866 §5.14).
    pub fn is_rtp(&self) -> bool {
        match self {
            Proto::Udp => false,
            Proto::Other(other) => other.split('/').any(|part| part == "RTP"),
            _ => true,
        }
    }

    /// True for the secure profiles (SRTP keyed by SDES or DTLS).
    pub fn is_secure(&self) -> bool {
        match self {
            Proto::RtpSavp | Proto::RtpSavpf | Proto::UdpTlsRtpSavp | Proto::UdpTlsRtpSavpf => true,
            Proto::Other(other) => other.contains("SAVP"),
            _ => false,
        }
    }

    /// True when the media travels over TCP (RFC 4145), which a UDP relay cannot carry.
    pub fn is_tcp(&self) -> bool {
        matches!(self, Proto::Other(other) if other.split('/').next().is_some_and(|p| p.eq_ignore_ascii_case("TCP")))
    }
}

impl From<&str> for Proto {
    fn from(token: &str) -> Proto {
        match token {
            "RTP/AVP" => Proto::RtpAvp,
            "RTP/SAVP" => Proto::RtpSavp,
            "RTP/AVPF" => Proto::RtpAvpf,
            "RTP/SAVPF" => Proto::RtpSavpf,
            "UDP/TLS/RTP/SAVP" => Proto::UdpTlsRtpSavp,
            "UDP/TLS/RTP/SAVPF" => Proto::UdpTlsRtpSavpf,
            "udp" => Proto::Udp,
            other => Proto::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One media section: the `m=` line and the lines after it (RFC 8866 §5.14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: MediaType,
    /// The transport port; `0` declines or disables the stream (RFC 3264 §6, §8.2).
    pub port: u16,
    /// `<port>/<number of ports>`, for layered encodings.
    pub port_count: Option<u16>,
    pub proto: Proto,
    /// The formats as written: RTP payload type numbers for the RTP profiles.
    pub formats: Vec<String>,
    /// `i=`.
    pub information: Option<String>,
    /// Media-level `c=` lines (several only for layered multicast); when empty the
    /// session-level one applies.
    pub connections: Vec<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` (obsolete), kept as text.
    pub key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A media section with no lines besides `m=`.
    pub fn new(media: MediaType, port: u16, proto: Proto, formats: Vec<String>) -> MediaDescription {
        MediaDescription {
            media,
            port,
            port_count: None,
            proto,
            formats,
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// The first media-level `c=` line.
    pub fn connection(&self) -> Option<&Connection> {
        self.connections.first()
    }

    /// The attributes called `name`, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    /// The value of the first attribute called `name` (`Some("")` for a property attribute).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_deref().unwrap_or_default())
    }

    /// True when an attribute called `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attributes.iter().any(|a| a.name == name)
    }

    /// True when the stream takes keyframe requests by RTCP: an `a=rtcp-fb` (for any payload
    /// type) with `nack pli` or `ccm fir` (RFC 4585 §4.2, RFC 5104 §7.1).
    pub fn takes_keyframe_requests(&self) -> bool {
        self.attributes_named("rtcp-fb").filter_map(|a| a.value.as_deref()).any(|value| {
            let mut words = value.split_whitespace().skip(1).map(str::to_ascii_lowercase);
            matches!(
                (words.next().as_deref(), words.next().as_deref()),
                (Some("nack"), Some("pli")) | (Some("ccm"), Some("fir"))
            )
        })
    }

    /// True when the stream is declined or disabled (port 0, RFC 3264 §6).
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }
}

impl SessionDescription {
    /// A description of ours: origin `sambung` with `session_id`, version 1, no session name,
    /// the connection at `ip`, `t=0 0`, and `media`.
    pub fn ours(ip: IpAddr, session_id: String, media: Vec<MediaDescription>) -> SessionDescription {
        let connection = Connection::new(ip);
        SessionDescription {
            origin: Origin {
                username: "sambung".into(),
                session_id,
                session_version: 1,
                net_type: connection.net_type.clone(),
                addr_type: connection.addr_type.clone(),
                address: connection.address.clone(),
            },
            session_name: "-".into(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: Some(connection),
            bandwidths: Vec::new(),
            times: vec![Timing { start: 0, stop: 0, repeats: Vec::new() }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media,
        }
    }

    /// Parses a description (RFC 8866 §9 grammar, with the leniency described in the module docs).
    pub fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
        parse::parse(input)
    }

    /// The printed description, CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The session-level attributes called `name`, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    /// The value of the first session-level attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_deref().unwrap_or_default())
    }

    /// The connection that applies to `media`: its own first `c=` line, else the session's
    /// (RFC 8866 §5.7).
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection().or(self.connection.as_ref())
    }

    /// The direction that applies to `media`: its own attribute, else the session's, else
    /// `sendrecv` (RFC 3264 §5.1).
    pub fn direction_for(&self, media: &MediaDescription) -> Direction {
        media.direction().or_else(|| attr::direction_of(&self.attributes)).unwrap_or(Direction::SendRecv)
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<SessionDescription, SdpError> {
        parse::parse(s.as_bytes())
    }
}
