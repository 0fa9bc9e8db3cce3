//! The SDP parser (RFC 8866 §5, §9).
//!
//! Strict about what Sambung relies on (the `v=`, `o=`, `c=`, `b=`, `t=` and `m=` grammars) and
//! lenient about what it does not: bare LF line ends, blank lines, and lines of a section out
//! of the RFC's order are accepted. Lines with an unknown type letter are refused, as §5 allows
//! ("MUST completely ignore or reject"). Every error names the offending line.

use std::str::FromStr;

use super::{Attribute, Bandwidth, Connection, MediaDescription, MediaType, Origin, Proto, SessionDescription, Timing};

/// Why a session description was refused, and on which line (1-based; 0 when no line is to
/// blame, e.g. an empty body).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {kind}")]
pub struct SdpError {
    pub line: usize,
    pub kind: SdpErrorKind,
}

/// What is wrong with a session description.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpErrorKind {
    #[error("empty session description")]
    Empty,
    #[error("not UTF-8")]
    NotUtf8,
    #[error("expected `<type>=<value>`")]
    Syntax,
    #[error("CR or NUL inside a line")]
    ControlCharacter,
    #[error("a session description starts with `v=0`")]
    NoVersion,
    #[error("unsupported SDP version `{0}` (only 0 is defined)")]
    Version(String),
    #[error("unknown line type `{0}=`")]
    UnknownType(char),
    #[error("`{0}=` is not allowed in a media section")]
    Misplaced(char),
    #[error("more than one `{0}=` line")]
    Duplicate(char),
    #[error("missing `{0}=` line")]
    Missing(char),
    #[error("invalid `{field}=` line: {reason}")]
    Invalid { field: char, reason: &'static str },
}

impl SdpError {
    fn new(line: usize, kind: SdpErrorKind) -> SdpError {
        SdpError { line, kind }
    }

    /// The SIP status a user agent server answers with (RFC 3261 §21.4): `488 Not Acceptable
    /// Here` for a well-formed description it cannot use (an unknown SDP version), `400 Bad
    /// Request` for a malformed one.
    pub fn status(&self) -> u16 {
        match self.kind {
            SdpErrorKind::Version(_) => 488,
            _ => 400,
        }
    }
}

fn invalid(line: usize, field: char, reason: &'static str) -> SdpError {
    SdpError::new(line, SdpErrorKind::Invalid { field, reason })
}

/// A decimal number made of ASCII digits only (no sign, no spaces).
fn decimal<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The lines of `text` with their 1-based numbers, line ends removed, blank lines skipped.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
        .filter(|(_, line)| !line.is_empty())
}

/// Splits `x=value` into its type letter and value.
fn split_line(number: usize, line: &str) -> Result<(char, &str), SdpError> {
    let bytes = line.as_bytes();
    if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
        return Err(SdpError::new(number, SdpErrorKind::Syntax));
    }
    let value = &line[2..];
    if value.bytes().any(|b| b == b'\r' || b == 0) {
        return Err(SdpError::new(number, SdpErrorKind::ControlCharacter));
    }
    Ok((char::from(bytes[0]), value))
}

pub(super) fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
    let text = std::str::from_utf8(input).map_err(|e| {
        let line = input[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        SdpError::new(line, SdpErrorKind::NotUtf8)
    })?;
    let mut lines = lines(text);
    let Some((first, line)) = lines.next() else {
        return Err(SdpError::new(0, SdpErrorKind::Empty));
    };
    let (kind, value) = split_line(first, line)?;
    if kind != 'v' {
        return Err(SdpError::new(first, SdpErrorKind::NoVersion));
    }
    if value != "0" {
        return Err(SdpError::new(first, SdpErrorKind::Version(value.chars().take(16).collect())));
    }

    let mut session = SessionBuilder::default();
    let mut media: Vec<MediaDescription> = Vec::new();
    let mut last = first;
    for (number, line) in lines {
        last = number;
        let (kind, value) = split_line(number, line)?;
        if kind == 'm' {
            media.push(parse_media(number, value)?);
        } else if let Some(current) = media.last_mut() {
            media_line(current, number, kind, value)?;
        } else {
            session.line(number, kind, value)?;
        }
    }
    session.finish(last, media)
}

/// The session-level fields seen so far.
#[derive(Default)]
struct SessionBuilder {
    origin: Option<Origin>,
    session_name: Option<String>,
    information: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    times: Vec<Timing>,
    time_zones: Option<String>,
    key: Option<String>,
    attributes: Vec<Attribute>,
}

/// Stores `value` in an optional field, refusing a second line of the same type.
fn once<T>(slot: &mut Option<T>, number: usize, kind: char, value: T) -> Result<(), SdpError> {
    if slot.is_some() {
        return Err(SdpError::new(number, SdpErrorKind::Duplicate(kind)));
    }
    *slot = Some(value);
    Ok(())
}

impl SessionBuilder {
    fn line(&mut self, number: usize, kind: char, value: &str) -> Result<(), SdpError> {
        match kind {
            'v' => return Err(SdpError::new(number, SdpErrorKind::Duplicate('v'))),
            'o' => once(&mut self.origin, number, kind, parse_origin(number, value)?)?,
            's' => once(&mut self.session_name, number, kind, value.to_owned())?,
            'i' => once(&mut self.information, number, kind, value.to_owned())?,
            'u' => once(&mut self.uri, number, kind, value.to_owned())?,
            'e' => self.emails.push(value.to_owned()),
            'p' => self.phones.push(value.to_owned()),
            'c' => once(&mut self.connection, number, kind, parse_connection(number, value)?)?,
            'b' => self.bandwidths.push(parse_bandwidth(number, value)?),
            't' => self.times.push(parse_timing(number, value)?),
            'r' => match self.times.last_mut() {
                Some(timing) => timing.repeats.push(value.to_owned()),
                None => return Err(invalid(number, 'r', "no `t=` line before it")),
            },
            'z' => once(&mut self.time_zones, number, kind, value.to_owned())?,
            'k' => once(&mut self.key, number, kind, value.to_owned())?,
            'a' => self.attributes.push(parse_attribute(number, value)?),
            other => return Err(SdpError::new(number, SdpErrorKind::UnknownType(other))),
        }
        Ok(())
    }

    fn finish(self, last: usize, media: Vec<MediaDescription>) -> Result<SessionDescription, SdpError> {
        let missing = |kind| SdpError::new(last, SdpErrorKind::Missing(kind));
        Ok(SessionDescription {
            origin: self.origin.ok_or_else(|| missing('o'))?,
            session_name: self.session_name.ok_or_else(|| missing('s'))?,
            information: self.information,
            uri: self.uri,
            emails: self.emails,
            phones: self.phones,
            connection: self.connection,
            bandwidths: self.bandwidths,
            times: self.times,
            time_zones: self.time_zones,
            key: self.key,
            attributes: self.attributes,
            media,
        })
    }
}

fn media_line(media: &mut MediaDescription, number: usize, kind: char, value: &str) -> Result<(), SdpError> {
    match kind {
        'i' => once(&mut media.information, number, kind, value.to_owned())?,
        'c' => media.connections.push(parse_connection(number, value)?),
        'b' => media.bandwidths.push(parse_bandwidth(number, value)?),
        'k' => once(&mut media.key, number, kind, value.to_owned())?,
        'a' => media.attributes.push(parse_attribute(number, value)?),
        'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => {
            return Err(SdpError::new(number, SdpErrorKind::Misplaced(kind)));
        }
        other => return Err(SdpError::new(number, SdpErrorKind::UnknownType(other))),
    }
    Ok(())
}

/// RFC 8866 §5.2.
fn parse_origin(number: usize, value: &str) -> Result<Origin, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, version, net_type, addr_type, address] = fields[..] else {
        return Err(invalid(number, 'o', "expected 6 fields"));
    };
    let session_version = decimal::<u64>(version).ok_or_else(|| invalid(number, 'o', "bad session version"))?;
    Ok(Origin {
        username: username.into(),
        session_id: session_id.into(),
        session_version,
        net_type: net_type.into(),
        addr_type: addr_type.into(),
        address: address.into(),
    })
}

/// RFC 8866 §5.7.
fn parse_connection(number: usize, value: &str) -> Result<Connection, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [net_type, addr_type, address] = fields[..] else {
        return Err(invalid(number, 'c', "expected 3 fields"));
    };
    Ok(Connection { net_type: net_type.into(), addr_type: addr_type.into(), address: address.into() })
}

/// RFC 8866 §5.8.
fn parse_bandwidth(number: usize, value: &str) -> Result<Bandwidth, SdpError> {
    let Some((kind, amount)) = value.split_once(':') else {
        return Err(invalid(number, 'b', "expected `<type>:<bandwidth>`"));
    };
    if kind.is_empty() || kind.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(invalid(number, 'b', "bad bandwidth type"));
    }
    let value = decimal::<u64>(amount).ok_or_else(|| invalid(number, 'b', "bandwidth is not a number"))?;
    Ok(Bandwidth { kind: kind.into(), value })
}

/// RFC 8866 §5.9.
fn parse_timing(number: usize, value: &str) -> Result<Timing, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [start, stop] = fields[..] else {
        return Err(invalid(number, 't', "expected 2 fields"));
    };
    let time = |t| decimal::<u64>(t).ok_or_else(|| invalid(number, 't', "time is not a number"));
    Ok(Timing { start: time(start)?, stop: time(stop)?, repeats: Vec::new() })
}

/// RFC 8866 §5.13: everything up to the first colon is the name, the rest the value.
fn parse_attribute(number: usize, value: &str) -> Result<Attribute, SdpError> {
    let (name, value) = match value.split_once(':') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (value, None),
    };
    if name.is_empty() {
        return Err(invalid(number, 'a', "empty attribute name"));
    }
    Ok(Attribute { name: name.into(), value })
}

/// RFC 8866 §5.14: `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`.
fn parse_media(number: usize, value: &str) -> Result<MediaDescription, SdpError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(invalid(number, 'm', "expected `<media> <port> <proto> <fmt> ...`"));
    };
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port, None),
    };
    let port = decimal::<u16>(port).ok_or_else(|| invalid(number, 'm', "bad port"))?;
    let port_count = match port_count {
        Some(count) => Some(decimal::<u16>(count).ok_or_else(|| invalid(number, 'm', "bad number of ports"))?),
        None => None,
    };
    let mut description =
        MediaDescription::new(MediaType::from(media), port, Proto::from(proto), fields.map(String::from).collect());
    description.port_count = port_count;
    Ok(description)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> SdpError {
        parse(input.as_bytes()).expect_err("should fail")
    }

    const MINIMAL: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n";

    #[test]
    fn minimal_and_bare_lf() {
        let sdp = parse(MINIMAL.as_bytes()).unwrap();
        assert_eq!(sdp.origin.session_version, 2);
        assert_eq!(parse(MINIMAL.replace("\r\n", "\n").as_bytes()).unwrap(), sdp);
        assert_eq!(parse(format!("{MINIMAL}\r\n\r\n").as_bytes()).unwrap(), sdp);
    }

    #[test]
    fn keyframe_feedback_is_read_from_rtcp_fb() {
        let video = |lines: &str| {
            let text = format!("{MINIMAL}m=video 5004 RTP/AVPF 96\r\na=rtpmap:96 VP8/90000\r\n{lines}");
            parse(text.as_bytes()).unwrap().media[0].takes_keyframe_requests()
        };
        assert!(!video(""));
        assert!(!video("a=rtcp-fb:96 nack\r\na=rtcp-fb:96 goog-remb\r\n"));
        assert!(video("a=rtcp-fb:96 nack pli\r\n"));
        assert!(video("a=rtcp-fb:* ccm fir\r\n"));
        assert!(video("a=rtcp-fb:96 CCM  FIR\r\n"));
        assert!(!video("a=rtcp-fb:96 ccm tmmbr\r\n"));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(err(""), SdpError::new(0, SdpErrorKind::Empty));
        assert_eq!(err("\r\n\r\n"), SdpError::new(0, SdpErrorKind::Empty));
        assert_eq!(err("o=- 1 2 IN IP4 h\r\n").kind, SdpErrorKind::NoVersion);
        let version = err("v=1\r\n");
        assert_eq!(version.kind, SdpErrorKind::Version("1".into()));
        assert_eq!(version.status(), 488);
        let bad_port = err(&format!("{MINIMAL}m=audio 70000 RTP/AVP 0\r\n"));
        assert_eq!(bad_port.line, 5);
        assert_eq!(bad_port.status(), 400);
        assert_eq!(bad_port.to_string(), "SDP line 5: invalid `m=` line: bad port");
        assert_eq!(err(&format!("{MINIMAL}x=1\r\n")).kind, SdpErrorKind::UnknownType('x'));
        assert_eq!(err(&format!("{MINIMAL}m=audio 1 RTP/AVP 0\r\nt=0 0\r\n")).kind, SdpErrorKind::Misplaced('t'));
        assert_eq!(err(&format!("{MINIMAL}s=again\r\n")).kind, SdpErrorKind::Duplicate('s'));
        assert_eq!(err("v=0\r\ns=-\r\nt=0 0\r\n"), SdpError::new(3, SdpErrorKind::Missing('o')));
        assert_eq!(err(&format!("{MINIMAL}a\r\n")).kind, SdpErrorKind::Syntax);
        assert_eq!(err(&format!("{MINIMAL}a=:x\r\n")).line, 5);
        assert_eq!(err(&format!("{MINIMAL}a=x\ry\r\n")).kind, SdpErrorKind::ControlCharacter);
        assert_eq!(err("v=0\r\no=- 1 +2 IN IP4 h\r\n").line, 2);
        assert_eq!(err("v=0\r\ns=\u{0}\r\n").kind, SdpErrorKind::ControlCharacter);
        assert_eq!(parse(b"v=0\r\ns=\xff\r\n").unwrap_err(), SdpError::new(2, SdpErrorKind::NotUtf8));
        assert_eq!(err("v=0\r\nr=1 2\r\n").line, 2);
        assert_eq!(err(&format!("{MINIMAL}b=AS:x\r\n")).line, 5);
        assert_eq!(err(&format!("{MINIMAL}c=IN IP4\r\n")).line, 5);
    }

    #[test]
    fn fields_and_attributes() {
        let sdp = parse(
            format!(
                "{MINIMAL}a=group:BUNDLE 0\r\nm=video 49170/2 RTP/AVPF 96 97\r\nc=IN IP4 224.2.1.1/127/2\r\n\
                 b=TIAS:64000\r\na=sendonly\r\na=empty:\r\na=rtpmap:96 VP8/90000\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(sdp.attribute("group"), Some("BUNDLE 0"));
        let m = &sdp.media[0];
        assert_eq!(
            (m.media.clone(), m.port, m.port_count, m.proto.clone()),
            (MediaType::Video, 49170, Some(2), Proto::RtpAvpf)
        );
        assert_eq!(m.formats, ["96", "97"]);
        assert_eq!(m.connection().and_then(Connection::ip), Some("224.2.1.1".parse().unwrap()));
        assert_eq!(m.bandwidths, [Bandwidth { kind: "TIAS".into(), value: 64000 }]);
        assert_eq!(m.attributes[0], Attribute::property("sendonly"));
        assert_eq!(m.attributes[1], Attribute::value("empty", ""));
        assert_eq!(m.attribute("rtpmap"), Some("96 VP8/90000"));
    }
}
