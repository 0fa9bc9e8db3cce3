//! Typed views of the headers the core works with: Via, From/To/Contact/Route (name-addr),
//! CSeq. Each parses from a header value without copying and prints back in canonical form.

use crate::method::Method;
use crate::text::{self, SipStr, sub, trim_lws};
use crate::uri::{Host, Params, Uri, scan_params};
use std::fmt;

/// A Via transport (RFC 3261 §20.42, RFC 7118 for WS/WSS).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other(SipStr),
}

impl Transport {
    pub fn parse(s: &str) -> Transport {
        Transport::known(s).unwrap_or_else(|| Transport::Other(SipStr::from(s)))
    }

    /// The transport named `s` (case-insensitive), if it is one of the known ones.
    #[inline]
    fn known(s: &str) -> Option<Transport> {
        Some(match s.as_bytes() {
            b"UDP" => Transport::Udp,
            b"TCP" => Transport::Tcp,
            b"TLS" => Transport::Tls,
            _ if s.eq_ignore_ascii_case("UDP") => Transport::Udp,
            _ if s.eq_ignore_ascii_case("TCP") => Transport::Tcp,
            _ if s.eq_ignore_ascii_case("TLS") => Transport::Tls,
            _ if s.eq_ignore_ascii_case("SCTP") => Transport::Sctp,
            _ if s.eq_ignore_ascii_case("WS") => Transport::Ws,
            _ if s.eq_ignore_ascii_case("WSS") => Transport::Wss,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(s) => s,
        }
    }

    /// Reliable transports need no retransmission (RFC 3261 §17).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp | Transport::Other(_))
    }

    /// The default port of the transport (RFC 3261 §19.1.2, RFC 7118 uses the HTTP ports).
    pub fn default_port(&self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Ws => 80,
            Transport::Wss => 443,
            _ => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via value (RFC 3261 §20.42).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Via {
    pub transport: Transport,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

/// The magic cookie of RFC 3261 branches (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

impl Via {
    pub fn new(transport: Transport, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(SipStr::from(branch)));
        Via { transport, host, port, params }
    }

    /// Parses one Via value (not a comma-separated list).
    pub fn parse(value: &SipStr) -> Result<Via, &'static str> {
        Via::parse_in(value, value)
    }

    pub(crate) fn parse_in(base: &SipStr, s: &str) -> Result<Via, &'static str> {
        let p = ViaParts::split(s)?;
        let params = Params::parse(base, p.params, true).map_err(|_| "bad Via parameter")?;
        let transport = match Transport::known(p.transport) {
            Some(t) => t,
            None => Transport::Other(sub(base, p.transport)),
        };
        Ok(Via { transport, host: Host::from_parsed(sub(base, p.host)), port: p.port, params })
    }

    /// Checks one Via value exactly as [`Via::parse_in`] does, without building anything.
    pub(crate) fn check(s: &str) -> Result<(), &'static str> {
        let p = ViaParts::split(s)?;
        scan_params(p.params, true, |_, _| {}).map_err(|_| "bad Via parameter")
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// True when the branch carries the RFC 3261 magic cookie and something after it.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.len() > BRANCH_COOKIE.len() && b.starts_with(BRANCH_COOKIE))
    }

    /// The address the response goes to (RFC 3261 §18.2.2, RFC 3581 §4).
    pub fn response_target(&self) -> (Host, u16) {
        // RFC 5118 §4.5: `received` may come with or without the brackets of an IPv6 reference.
        let host = self.params.value("received").and_then(Host::from_address).unwrap_or_else(|| self.host.clone());
        let port = self
            .params
            .value("rport")
            .and_then(|p| p.parse().ok())
            .or(self.port)
            .unwrap_or_else(|| self.transport.default_port());
        (host, port)
    }
}

/// The parts of one Via value as slices of the text, checked except for the parameters.
struct ViaParts<'a> {
    transport: &'a str,
    host: &'a str,
    port: Option<u16>,
    params: &'a str,
}

impl<'a> ViaParts<'a> {
    #[inline]
    fn split(s: &'a str) -> Result<ViaParts<'a>, &'static str> {
        // `SIP / 2.0 / transport`, with LWS allowed around the slashes (RFC 3261 §25.1 SLASH).
        let s = trim_lws(s);
        let slash1 = text::find(s, b'/').ok_or("bad Via protocol")?;
        let proto = trim_lws(&s[..slash1]);
        let after = &s[slash1 + 1..];
        let slash2 = text::find(after, b'/').ok_or("bad Via protocol")?;
        let version = trim_lws(&after[..slash2]);
        let rest = trim_lws(&after[slash2 + 1..]);
        if !proto.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err("bad Via protocol");
        }
        let t_end = rest.bytes().position(|b| b.is_ascii_whitespace()).ok_or("bad Via sent-by")?;
        let transport = &rest[..t_end];
        if !text::is_token(transport) {
            return Err("bad Via transport");
        }
        let rest = trim_lws(&rest[t_end..]);
        let (sent_by, params) = match text::find(rest, b';') {
            Some(i) => (trim_lws(&rest[..i]), &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = crate::uri::split_hostport(sent_by).map_err(|_| "bad Via sent-by")?;
        Ok(ViaParts { transport, host, port, params })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        fmt::Display::fmt(&self.params, f)
    }
}

/// A `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route, Record-Route,
/// Refer-To ... (RFC 3261 §20.10, §25.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// The display name as written (quoted form keeps its quotes and escapes).
    pub display: Option<SipStr>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display: None, uri, params: Params::default() }
    }

    pub fn parse(value: &SipStr) -> Result<NameAddr, &'static str> {
        NameAddr::parse_in(value, value)
    }

    pub(crate) fn parse_in(base: &SipStr, s: &str) -> Result<NameAddr, &'static str> {
        let p = NameAddrParts::split(s)?;
        let uri = Uri::parse_in(base, p.uri)?;
        let params = Params::parse(base, p.params, true)?;
        Ok(NameAddr { display: p.display.map(|d| sub(base, d)), uri, params })
    }

    /// Checks a value exactly as [`NameAddr::parse_in`] does, without building anything.
    pub(crate) fn check(s: &str) -> Result<(), &'static str> {
        let p = NameAddrParts::split(s)?;
        Uri::check(p.uri)?;
        scan_params(p.params, true, |_, _| {})
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// The display name without quotes and escapes.
    pub fn display_name(&self) -> Option<std::borrow::Cow<'_, str>> {
        let d = self.display.as_deref()?;
        Some(match text::take_quoted(d) {
            Some((raw, _)) => text::unquote(raw),
            None => std::borrow::Cow::Borrowed(d),
        })
    }
}

/// The parts of a `name-addr` or `addr-spec` with parameters, as slices of the text; the
/// display name is checked, the URI and the parameters are not.
struct NameAddrParts<'a> {
    display: Option<&'a str>,
    uri: &'a str,
    params: &'a str,
}

impl<'a> NameAddrParts<'a> {
    #[inline]
    fn split(s: &'a str) -> Result<NameAddrParts<'a>, &'static str> {
        let s = trim_lws(s);
        let (display, after_display) = if s.starts_with('"') {
            let (_, rest) = text::take_quoted(s).ok_or("unterminated quoted display name")?;
            let quoted = &s[..s.len() - rest.len()];
            let rest = trim_lws(rest);
            if !rest.starts_with('<') {
                return Err("display name without <URI>");
            }
            (Some(quoted), rest)
        } else if let Some(lt) = text::find(s, b'<').filter(|&lt| !starts_with_scheme(&s[..lt])) {
            // A `<` after a scheme belongs to an addr-spec's parameter, as in
            // `sip:a@b;+sip.instance="<urn:uuid:...>"`: a display name has no colon.
            let d = trim_lws(&s[..lt]);
            if !text::all(d, text::DISPLAY) {
                return Err("non-token characters in display name");
            }
            (if d.is_empty() { None } else { Some(d) }, &s[lt..])
        } else {
            (None, s)
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let gt = text::find(inner, b'>').ok_or("missing > after URI")?;
            Ok(NameAddrParts { display, uri: &inner[..gt], params: &inner[gt + 1..] })
        } else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10)
            let end = text::find(after_display, b';').unwrap_or(after_display.len());
            let uri = trim_lws(&after_display[..end]);
            if text::find(uri, b'?').is_some() || text::find(uri, b',').is_some() {
                return Err("URI with headers or commas must be enclosed in <>");
            }
            Ok(NameAddrParts { display, uri, params: &after_display[end..] })
        }
    }
}

/// True when `s` starts with `scheme ":"` (RFC 3986 §3.1), so it can only be an addr-spec.
#[inline]
fn starts_with_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    match text::find(s, b':') {
        Some(colon) if colon > 0 && b[0].is_ascii_alphabetic() => {
            b[1..colon].iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        }
        _ => false,
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>", self.uri)?;
        fmt::Display::fmt(&self.params, f)
    }
}

/// CSeq (RFC 3261 §20.16).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(value: &SipStr) -> Result<CSeq, &'static str> {
        let (seq, method) = CSeq::split(value)?;
        Ok(CSeq { seq, method: Method::from_token(sub(value, method)) })
    }

    /// The number and the method token of a CSeq value, checked.
    #[inline]
    pub(crate) fn split(value: &str) -> Result<(u32, &str), &'static str> {
        let s = trim_lws(value);
        let split = s.bytes().position(|b| b.is_ascii_whitespace()).ok_or("bad CSeq")?;
        let seq = parse_u32(&s[..split]).ok_or("bad CSeq number")?;
        let method = trim_lws(&s[split..]);
        if !text::is_token(method) {
            return Err("bad CSeq method");
        }
        Ok((seq, method))
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Parses `1*DIGIT` into a u32, leading zeros allowed, overflow refused.
#[inline]
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
        if n > u64::from(u32::MAX) {
            // Keep checking the remaining bytes are digits: "99999999999x" is not a number
            // either way, and the result is the same (None).
            return None;
        }
    }
    Some(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_odd_spacing() {
        let v = Via::parse(&SipStr::from("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw")).unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host.as_str(), "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        assert_eq!(v.to_string(), "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw");
        assert!(Via::parse(&SipStr::from("SIP/2.0/UDP 192.0.2.15;;,;,,")).is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(&SipStr::from(r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#))
            .unwrap();
        assert_eq!(n.display_name().unwrap(), r#"J Rosenberg \""#);
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse(&SipStr::from("sip:user@example.com;tag=1;unknownparam")).unwrap();
        assert!(n.uri.as_sip().unwrap().params.is_empty());
        assert!(n.params.has("unknownparam"));
        let n = NameAddr::parse(&SipStr::from("caller<sip:caller@example.com>;tag=323")).unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        assert!(NameAddr::parse(&SipStr::from("Bell, Alexander <sip:a.g.bell@example.com>;tag=43")).is_err());
        assert!(NameAddr::parse(&SipStr::from("sip:user@example.com?Route=%3Csip:sip.example.com%3E")).is_err());
        // a `<` in a quoted header parameter of an addr-spec (found by tests/roundtrip.rs)
        let n = NameAddr::parse(&SipStr::from(r#"sip:a@b.example;+sip.instance="<urn:uuid:0f8d>";reg-id=1"#)).unwrap();
        assert_eq!(n.params.value("+sip.instance"), Some(r#""<urn:uuid:0f8d>""#));
        assert!(n.display.is_none());
        assert!(NameAddr::parse(&SipStr::from("Bell: Alexander <sip:a.g.bell@example.com>;tag=43")).is_err());
        // found by fuzzing: a "password" that swallows a display name and a `<`
        assert!(NameAddr::parse(&SipStr::from("sip:use: SIP/2.0/U.: applic <sip:user@host28.example")).is_err());
    }

    #[test]
    fn cseq_numbers() {
        assert_eq!(CSeq::parse(&SipStr::from("0009\r\n  INVITE")).unwrap().seq, 9);
        assert!(CSeq::parse(&SipStr::from("36893488147419103232 INVITE")).is_err());
        assert!(CSeq::parse(&SipStr::from("-1 INVITE")).is_err());
    }
}
