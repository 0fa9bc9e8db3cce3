//! Typed views of the attributes Sambung reads: `rtpmap` and `fmtp` (RFC 8866 §6.6, §6.15),
//! `rtcp` (RFC 3605), the direction attributes (RFC 8866 §6.7), `crypto` (RFC 4568) and ICE
//! (RFC 8839).
//!
//! The attributes themselves stay text in [`Attribute`]; these types are parsed when asked for.
//! The `MediaDescription` accessors skip malformed values (a relay passes them on untouched);
//! the `parse` functions report them.

use std::fmt;

use super::{Attribute, Connection, MediaDescription};

/// ICE attributes (RFC 8839 §5) and the ICE-lite marker: a relay that puts its own address in
/// the description removes all of them.
pub(crate) const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
];

/// A malformed attribute value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid `a={attribute}` value: {reason}")]
pub struct AttrError {
    pub attribute: &'static str,
    pub reason: &'static str,
}

fn error(attribute: &'static str, reason: &'static str) -> AttrError {
    AttrError { attribute, reason }
}

fn digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An RTP payload format: `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`
/// (RFC 8866 §6.6), or a static payload type of RFC 3551 §6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    /// The encoding name as written (compare without case: RFC 4855 §3).
    pub name: String,
    pub clock_rate: u32,
    /// The encoding parameters of an audio format: its number of channels (1 when absent).
    pub channels: Option<u8>,
}

/// Formats that travel beside a codec but carry no media of their own.
const AUXILIARY: &[&str] = &["telephone-event", "CN", "red", "ulpfec", "flexfec", "rtx"];

impl Codec {
    /// Parses an `rtpmap` value such as `96 opus/48000/2`.
    pub fn parse_rtpmap(value: &str) -> Result<Codec, AttrError> {
        let (pt, encoding) = value.split_once(' ').ok_or(error("rtpmap", "expected `<pt> <encoding>`"))?;
        let payload_type = digits::<u8>(pt).filter(|&pt| pt <= 127).ok_or(error("rtpmap", "bad payload type"))?;
        let mut parts = encoding.trim().split('/');
        let name = parts.next().filter(|n| !n.is_empty()).ok_or(error("rtpmap", "empty encoding name"))?;
        let clock_rate = parts.next().and_then(digits::<u32>).ok_or(error("rtpmap", "bad clock rate"))?;
        let channels = match parts.next() {
            Some(channels) => Some(digits::<u8>(channels).ok_or(error("rtpmap", "bad channel count"))?),
            None => None,
        };
        if parts.next().is_some() {
            return Err(error("rtpmap", "trailing fields"));
        }
        Ok(Codec { payload_type, name: name.to_owned(), clock_rate, channels })
    }

    /// The static audio and video payload types of RFC 3551 §6 (tables 4 and 5), which need
    /// no `rtpmap`.
    pub fn static_payload(payload_type: u8) -> Option<Codec> {
        let (name, clock_rate, channels) = match payload_type {
            0 => ("PCMU", 8000, None),
            3 => ("GSM", 8000, None),
            4 => ("G723", 8000, None),
            5 => ("DVI4", 8000, None),
            6 => ("DVI4", 16000, None),
            7 => ("LPC", 8000, None),
            8 => ("PCMA", 8000, None),
            9 => ("G722", 8000, None),
            10 => ("L16", 44100, Some(2)),
            11 => ("L16", 44100, None),
            12 => ("QCELP", 8000, None),
            13 => ("CN", 8000, None),
            14 => ("MPA", 90000, None),
            15 => ("G728", 8000, None),
            16 => ("DVI4", 11025, None),
            17 => ("DVI4", 22050, None),
            18 => ("G729", 8000, None),
            25 => ("CelB", 90000, None),
            26 => ("JPEG", 90000, None),
            28 => ("nv", 90000, None),
            31 => ("H261", 90000, None),
            32 => ("MPV", 90000, None),
            33 => ("MP2T", 90000, None),
            34 => ("H263", 90000, None),
            _ => return None,
        };
        Some(Codec { payload_type, name: name.to_owned(), clock_rate, channels })
    }

    /// The number of channels (RFC 8866 §6.6: one when not given).
    pub fn channel_count(&self) -> u8 {
        self.channels.unwrap_or(1)
    }

    /// True when `other` is the same format, whatever its payload type: same encoding name
    /// (without case), clock rate and channel count. Format parameters are not compared.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channel_count() == other.channel_count()
    }

    /// True for formats that carry no media of their own: DTMF events (RFC 4733), comfort noise
    /// (RFC 3389), redundancy (RFC 2198), FEC (RFC 5109, RFC 8627) and retransmission
    /// (RFC 4588). Two legs sharing only these share no codec.
    pub fn is_auxiliary(&self) -> bool {
        AUXILIARY.iter().any(|aux| aux.eq_ignore_ascii_case(&self.name))
    }

    /// The `rtpmap` attribute describing this codec.
    pub fn to_rtpmap(&self) -> Attribute {
        let value = match self.channels {
            Some(channels) => format!("{} {}/{}/{}", self.payload_type, self.name, self.clock_rate, channels),
            None => format!("{} {}/{}", self.payload_type, self.name, self.clock_rate),
        };
        Attribute::value("rtpmap", value)
    }
}

/// `a=fmtp:<format> <format specific parameters>` (RFC 8866 §6.15).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fmtp {
    pub format: String,
    /// The parameters as written.
    pub params: String,
}

impl Fmtp {
    pub fn parse(value: &str) -> Result<Fmtp, AttrError> {
        let (format, params) = value.split_once(' ').unwrap_or((value, ""));
        if format.is_empty() {
            return Err(error("fmtp", "empty format"));
        }
        Ok(Fmtp { format: format.to_owned(), params: params.to_owned() })
    }

    /// The `;`-separated parameters as `(name, value)` pairs (the common `name=value` style of
    /// RFC 4855 §3; a parameter without `=` has no value).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.params.split(';').map(str::trim).filter(|p| !p.is_empty()).map(|p| match p.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (p, None),
        })
    }

    /// The value of parameter `name` (compared without case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| v)
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605 §2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub connection: Option<Connection>,
}

impl Rtcp {
    pub fn parse(value: &str) -> Result<Rtcp, AttrError> {
        let fields: Vec<&str> = value.split_ascii_whitespace().collect();
        let (port, connection) = match fields[..] {
            [port] => (port, None),
            [port, net_type, addr_type, address] => (
                port,
                Some(Connection { net_type: net_type.into(), addr_type: addr_type.into(), address: address.into() }),
            ),
            _ => return Err(error("rtcp", "expected `<port> [IN IP4 <address>]`")),
        };
        let port = digits::<u16>(port).ok_or(error("rtcp", "bad port"))?;
        Ok(Rtcp { port, connection })
    }

    /// The attribute.
    pub fn to_attribute(&self) -> Attribute {
        match &self.connection {
            Some(connection) => Attribute::value("rtcp", format!("{} {}", self.port, connection)),
            None => Attribute::value("rtcp", self.port.to_string()),
        }
    }
}

/// The media direction attributes (RFC 8866 §6.7; RFC 3264 §5.1, §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction named by an attribute name.
    pub fn from_name(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer mirrors (RFC 3264 §6.1): sendonly ↔ recvonly.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// True when the side that wrote it will send media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// True when the side that wrote it wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first direction attribute among `attributes`.
pub(crate) fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().filter(|a| a.value.is_none()).find_map(|a| Direction::from_name(&a.name))
}

/// One key parameter of a `crypto` attribute: `<key-method>:<key-info>` (RFC 4568 §9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyParam {
    /// `inline` is the only method defined (RFC 4568 §6.1).
    pub method: String,
    pub info: String,
}

/// `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]` (RFC 4568 §9.1). Parsed
/// only: keys are neither checked nor used by the relay, which passes SRTP through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: String,
    pub key_params: Vec<KeyParam>,
    pub session_params: Vec<String>,
}

impl Crypto {
    pub fn parse(value: &str) -> Result<Crypto, AttrError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(keys)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(error("crypto", "expected `<tag> <suite> <key-params>`"));
        };
        let tag = digits::<u32>(tag).filter(|_| tag.len() <= 9).ok_or(error("crypto", "bad tag"))?;
        let key_params = keys
            .split(';')
            .map(|key| match key.split_once(':') {
                Some((method, info)) if !method.is_empty() => {
                    Ok(KeyParam { method: method.to_owned(), info: info.to_owned() })
                }
                _ => Err(error("crypto", "key parameter is not `<method>:<info>`")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Crypto { tag, suite: suite.to_owned(), key_params, session_params: fields.map(String::from).collect() })
    }
}

impl MediaDescription {
    /// The codecs of an RTP media section in the order of the `m=` line: each payload type's
    /// `rtpmap`, or its static meaning (RFC 3551) when it has none. Formats that are neither
    /// (or whose `rtpmap` is malformed) are left out; non-RTP sections have none.
    pub fn codecs(&self) -> Vec<Codec> {
        if !self.proto.is_rtp() {
            return Vec::new();
        }
        self.formats.iter().filter_map(|format| digits::<u8>(format)).filter_map(|pt| self.rtpmap(pt)).collect()
    }

    /// The codec payload type `pt` stands for in this section.
    pub fn rtpmap(&self, payload_type: u8) -> Option<Codec> {
        self.attributes_named("rtpmap")
            .filter_map(|a| Codec::parse_rtpmap(a.value.as_deref()?).ok())
            .find(|codec| codec.payload_type == payload_type)
            .or_else(|| Codec::static_payload(payload_type))
    }

    /// The `fmtp` of `format`.
    pub fn fmtp(&self, format: &str) -> Option<Fmtp> {
        self.attributes_named("fmtp").filter_map(|a| Fmtp::parse(a.value.as_deref()?).ok()).find(|f| f.format == format)
    }

    /// The `rtcp` attribute (RFC 3605), when present and well-formed.
    pub fn rtcp(&self) -> Option<Rtcp> {
        self.attributes_named("rtcp").find_map(|a| Rtcp::parse(a.value.as_deref()?).ok())
    }

    /// True when RTP and RTCP share the port (`a=rtcp-mux`, RFC 5761 §5.1.3).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// The media-level direction attribute, if any (see
    /// [`super::SessionDescription::direction_for`] for the one that applies).
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Replaces the media-level direction attribute (or adds one).
    pub fn set_direction(&mut self, direction: Direction) {
        let attribute = Attribute::property(direction.as_str());
        match self.attributes.iter_mut().find(|a| a.value.is_none() && Direction::from_name(&a.name).is_some()) {
            Some(existing) => *existing = attribute,
            None => self.attributes.push(attribute),
        }
    }

    /// The well-formed `crypto` attributes (RFC 4568), in order of preference.
    pub fn crypto(&self) -> Vec<Crypto> {
        self.attributes_named("crypto").filter_map(|a| Crypto::parse(a.value.as_deref()?).ok()).collect()
    }

    /// `a=ptime` in milliseconds (RFC 8866 §6.4).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime").and_then(|p| p.trim().parse().ok())
    }

    /// True when the section carries ICE attributes.
    pub fn has_ice(&self) -> bool {
        self.attributes.iter().any(Attribute::is_ice)
    }

    /// Removes the ICE attributes (RFC 8839), keeping the others in order.
    pub fn remove_ice(&mut self) {
        self.attributes.retain(|a| !a.is_ice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtpmap() {
        let opus = Codec::parse_rtpmap("111 opus/48000/2").unwrap();
        assert_eq!(opus, Codec { payload_type: 111, name: "opus".into(), clock_rate: 48000, channels: Some(2) });
        assert_eq!(opus.to_rtpmap().value.as_deref(), Some("111 opus/48000/2"));
        assert!(Codec::parse_rtpmap("128 x/8000").is_err());
        assert!(Codec::parse_rtpmap("96 x").is_err());
        assert!(Codec::parse_rtpmap("96 x/8000/1/2").is_err());
        assert!(Codec::parse_rtpmap("96").is_err());
        let pcmu = Codec::static_payload(0).unwrap();
        assert!(pcmu.same_format(&Codec::parse_rtpmap("0 pcmu/8000/1").unwrap()));
        assert!(!opus.same_format(&Codec::parse_rtpmap("96 opus/48000").unwrap()));
        assert!(Codec::parse_rtpmap("101 telephone-event/8000").unwrap().is_auxiliary());
    }

    #[test]
    fn fmtp_rtcp_crypto_direction() {
        let fmtp = Fmtp::parse("111 minptime=10;useinbandfec=1").unwrap();
        assert_eq!(fmtp.format, "111");
        assert_eq!(fmtp.get("useinbandfec"), Some("1"));
        assert_eq!(Fmtp::parse("101 0-15").unwrap().pairs().collect::<Vec<_>>(), [("0-15", None)]);

        assert_eq!(Rtcp::parse("53020").unwrap(), Rtcp { port: 53020, connection: None });
        let rtcp = Rtcp::parse("53020 IN IP6 2001:2345:6789:ABCD:EF01:2345:6789:ABCD").unwrap();
        assert_eq!(rtcp.to_attribute().value.as_deref(), Some("53020 IN IP6 2001:2345:6789:ABCD:EF01:2345:6789:ABCD"));
        assert!(Rtcp::parse("x").is_err() && Rtcp::parse("1 IN IP4").is_err());

        // RFC 4568 §9.1 example (lifetime and MKI in the key parameter).
        let crypto = Crypto::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4 FEC_ORDER=FEC_SRTP",
        )
        .unwrap();
        assert_eq!((crypto.tag, crypto.suite.as_str()), (1, "AES_CM_128_HMAC_SHA1_80"));
        assert_eq!(crypto.key_params[0].method, "inline");
        assert_eq!(crypto.session_params, ["FEC_ORDER=FEC_SRTP"]);
        assert!(Crypto::parse("x AES inline:k").is_err() && Crypto::parse("1 AES").is_err());

        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert!(Direction::SendOnly.sends() && !Direction::SendOnly.receives());
    }
}
