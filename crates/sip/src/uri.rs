//! URIs (RFC 3261 §19.1, §25.1): SIP and SIPS URIs parsed into parts, every other scheme kept
//! byte for byte.

use crate::text::{self, SipStr, sub, trim_lws};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// One `;name[=value]` parameter. Names and values are kept exactly as received (escapes and
/// quotes included); compare names with [`Params::get`], which ignores case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    pub name: SipStr,
    pub value: Option<SipStr>,
}

/// An ordered list of parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// The first parameter called `name` (case-insensitive): `Some(None)` for a valueless one.
    pub fn get(&self, name: &str) -> Option<Option<&SipStr>> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value.as_ref())
    }

    /// The value of `name`, if it is present with a value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten().map(|v| &**v)
    }

    /// True when a parameter called `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value`, replacing an existing parameter of that name or appending.
    pub fn set(&mut self, name: impl Into<SipStr>, value: Option<SipStr>) {
        let name = name.into();
        match self.0.iter_mut().find(|p| p.name.eq_ignore_ascii_case(&name)) {
            Some(p) => p.value = value,
            None => self.0.push(Param { name, value }),
        }
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    /// Parses `;a=b;c` parameters. `s` is everything from the first `;` on (or empty).
    /// With `lws`, linear white space may surround `;` and `=` and values may be quoted strings
    /// (header parameters); without it the text is URI parameters.
    pub(crate) fn parse(base: &SipStr, s: &str, lws: bool) -> Result<Params, &'static str> {
        let mut out = Vec::new();
        scan_params(s, lws, |name, value| {
            out.push(Param { name: sub(base, name), value: value.map(|v| sub(base, v)) })
        })?;
        Ok(Params(out))
    }
}

/// Checks `;a=b;c` parameters the way [`Params::parse`] does, calling `each` with every name and
/// value (both slices of `s`). Validation alone passes a no-op and builds nothing.
#[inline]
pub(crate) fn scan_params<'a>(
    s: &'a str,
    lws: bool,
    mut each: impl FnMut(&'a str, Option<&'a str>),
) -> Result<(), &'static str> {
    let mut rest = if lws { trim_lws(s) } else { s };
    if rest.is_empty() {
        return Ok(());
    }
    if !rest.starts_with(';') {
        return Err("junk before parameters");
    }
    while let Some(after) = rest.strip_prefix(';') {
        if let Some((name, value, next)) = plain_param(after, lws) {
            each(name, value);
            rest = next;
            continue;
        }
        // the end of this parameter: the next ';' outside quotes
        let end = param_end(after);
        let item = &after[..end];
        rest = &after[end..];
        let item = if lws { trim_lws(item) } else { item };
        let (name, value) = match text::find(item, b'=') {
            Some(eq) => {
                let (n, v) = (&item[..eq], &item[eq + 1..]);
                if lws { (trim_lws(n), Some(trim_lws(v))) } else { (n, Some(v)) }
            }
            None => (item, None),
        };
        if name.is_empty() {
            return Err("empty parameter");
        }
        if lws {
            if !text::all(name, text::TOKEN) {
                return Err("bad parameter name");
            }
        } else if !text::all(name, text::PARAM) {
            return Err("bad URI parameter");
        }
        if let Some(v) = value {
            if v.starts_with('"') {
                if !lws {
                    return Err("quoted URI parameter");
                }
                match text::take_quoted(v) {
                    Some((_, "")) => {}
                    _ => return Err("bad quoted parameter value"),
                }
            } else if lws {
                if v.is_empty() || !text::all(v, text::PVALUE) {
                    return Err("bad parameter value");
                }
            } else if !text::all(v, text::PARAM) {
                return Err("bad URI parameter value");
            }
        }
        each(name, value);
    }
    Ok(())
}

/// The parameter at the start of `s` when it is written plainly, in one scan: a name, maybe
/// `=` and an unquoted value, no white space, then `;` or the end. Returns the name, the value
/// and the rest (from that `;`). What it accepts, [`scan_params`]' general path accepts the
/// same way, as neither class holds `;`, `=`, `"` or white space; anything else (quotes, white
/// space, errors) is left to that path.
#[inline]
fn plain_param(s: &str, lws: bool) -> Option<(&str, Option<&str>, &str)> {
    let (name_class, value_class) = if lws { (text::TOKEN, text::PVALUE) } else { (text::PARAM, text::PARAM) };
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && text::class(b[i], name_class) {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let name = &s[..i];
    let value = if b.get(i) == Some(&b'=') {
        let start = i + 1;
        i = start;
        while i < b.len() && text::class(b[i], value_class) {
            i += 1;
        }
        if lws && i == start {
            return None;
        }
        Some(&s[start..i])
    } else {
        None
    };
    match b.get(i) {
        None | Some(b';') => Some((name, value, &s[i..])),
        Some(_) => None,
    }
}

/// Where the parameter at the start of `s` ends: the next `;` that is not inside quotes.
#[inline]
fn param_end(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b';' => return i,
            b'"' => match text::take_quoted(&s[i..]) {
                Some((q, _)) => i += q.len() + 2,
                None => return b.len(),
            },
            _ => i += 1,
        }
    }
    b.len()
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            f.write_str(";")?;
            f.write_str(&p.name)?;
            if let Some(v) = &p.value {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

/// A host: a domain name, an IPv4 address or a bracketed IPv6 reference, as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Host(SipStr);

impl Host {
    /// The host as written (IPv6 with brackets).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.0.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => parse_ipv6(inner).map(IpAddr::V6),
            None => self.0.parse().ok(),
        }
    }

    /// An address written with or without the `[` `]` of an IPv6 reference, as the Via
    /// `received` parameter comes (RFC 5118 §4.5: accept both); IPv6 comes out bracketed.
    pub fn from_address(s: &str) -> Option<Host> {
        let ip = match s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => IpAddr::V6(parse_ipv6(inner)?),
            None => s.parse().ok()?,
        };
        Some(Host::from(ip))
    }

    /// Compares hosts the way RFC 3261 §19.1.4 does: case-insensitive names, equal addresses.
    pub fn matches(&self, other: &Host) -> bool {
        match (self.ip(), other.ip()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.0.eq_ignore_ascii_case(&other.0),
            _ => false,
        }
    }

    /// A host from text that [`split_hostport`] has checked.
    #[inline]
    pub(crate) fn from_parsed(s: SipStr) -> Host {
        Host(s)
    }
}

/// Checks a host: a domain name or IPv4 address (alphanum and `-._`), or a bracketed IPv6
/// reference.
#[inline]
fn check_host(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty host");
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("bad IPv6 reference")?;
        parse_ipv6(inner).ok_or("bad IPv6 reference")?;
    } else if !text::all(s, text::HOST) {
        return Err("bad host");
    }
    Ok(())
}

/// The address inside an IPv6 reference. Besides RFC 4291's forms it takes the one RFC 3261's
/// ABNF wrongly allows, three colons before a trailing IPv4 address (`2001:db8:::192.0.2.1`),
/// read as two: RFC 5118 §4.10 asks implementations to tolerate it. Nothing else is widened:
/// the text with that one `:::` made `::` must still be an address.
pub(crate) fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let at = s.find(":::")?;
    let tail = &s[at + 3..];
    if tail.contains(':') || tail.parse::<std::net::Ipv4Addr>().is_err() {
        return None;
    }
    format!("{}::{tail}", &s[..at]).parse().ok()
}

/// Splits and checks `host[:port]`, returning the host text and the port.
#[inline]
pub(crate) fn split_hostport(s: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (h, port) = if s.starts_with('[') {
        let close = text::find(s, b']').ok_or("bad IPv6 reference")?;
        match &s[close + 1..] {
            "" => (&s[..=close], None),
            p => (&s[..=close], Some(p.strip_prefix(':').ok_or("bad port")?)),
        }
    } else {
        match text::find(s, b':') {
            Some(c) => (&s[..c], Some(&s[c + 1..])),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(parse_port(p).ok_or("bad port")?),
        None => None,
    };
    check_host(h)?;
    Ok((h, port))
}

/// `1*5DIGIT` that fits in a u16.
#[inline]
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 {
        return None;
    }
    let mut n: u32 = 0;
    for b in p.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    u16::try_from(n).ok()
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Host(SipStr::from(v4.to_string())),
            IpAddr::V6(v6) => Host(SipStr::from(format!("[{v6}]"))),
        }
    }
}

impl From<&str> for Host {
    /// A host from trusted text (configuration); no validation.
    fn from(s: &str) -> Self {
        Host(SipStr::from(s))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `sip:` or `sips:` URI (RFC 3261 §19.1.1). User, password, parameter names and values and
/// headers are kept escaped, exactly as received; [`SipUri::user_unescaped`] decodes the user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SipUri {
    pub secure: bool,
    pub user: Option<SipStr>,
    pub password: Option<SipStr>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// The `?` headers part without the `?`, still escaped.
    pub headers: Option<SipStr>,
}

impl SipUri {
    /// A plain `sip:` URI.
    pub fn new(user: Option<&str>, host: Host, port: Option<u16>) -> SipUri {
        SipUri {
            secure: false,
            user: user.map(SipStr::from),
            password: None,
            host,
            port,
            params: Params::default(),
            headers: None,
        }
    }

    /// The user part with `%HH` escapes decoded once.
    pub fn user_unescaped(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.user.as_deref().and_then(text::unescape)
    }

    fn parse(base: &SipStr, secure: bool, s: &str) -> Result<SipUri, &'static str> {
        let p = SipUriParts::split(s)?;
        let params = Params::parse(base, p.params, false)?;
        p.check_headers()?;
        Ok(SipUri {
            secure,
            user: p.user.map(|u| sub(base, u)),
            password: p.password.map(|pw| sub(base, pw)),
            host: Host(sub(base, p.host)),
            port: p.port,
            params,
            headers: p.headers.map(|h| sub(base, h)),
        })
    }
}

/// The parts of a SIP URI after the scheme, as slices of the text, checked except for the
/// parameters (which [`scan_params`] checks as it walks them) and the headers part.
struct SipUriParts<'a> {
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    /// From the first `;` on, or empty.
    params: &'a str,
    headers: Option<&'a str>,
}

impl<'a> SipUriParts<'a> {
    /// Splits `userinfo@hostport;params?headers` in one or two scans: up to the first `@` (the
    /// end of the userinfo, when there is one), then the rest up to the first `?`. Each scan
    /// notes where the first `:`, `;`, `?` and `%` and the first byte not allowed in a URI are.
    #[inline]
    fn split(s: &'a str) -> Result<SipUriParts<'a>, &'static str> {
        let b = s.as_bytes();
        let first = Marks::scan(b, 0, false);
        let (user, password, rest, marks) = match first.at {
            Some(at) => {
                let user_end = first.colon.filter(|&c| c < at).unwrap_or(at);
                let u = &s[..user_end];
                if u.is_empty() || first.bad.is_some_and(|p| p < user_end) {
                    return Err("bad user part");
                }
                if first.pct.is_some_and(|p| p < user_end) && text::unescape(u).is_none() {
                    return Err("bad escape in user part");
                }
                // The password has no white space, controls, `<`, `>` or `"` either (RFC 3261
                // §25.1): without this, `sip:a:b <sip:c@d>` would pass as an addr-spec.
                if first.bad.is_some_and(|p| p < at) {
                    return Err("bad password");
                }
                let password = (user_end < at).then(|| &s[user_end + 1..at]);
                (Some(u), password, at + 1, Marks::scan(b, at + 1, true))
            }
            None => (None, None, 0, first),
        };
        // Positions in `s`; `end` is where the part before the headers ends.
        let (end, headers) = match marks.q {
            Some(q) => (q, Some(&s[q + 1..])),
            None => (s.len(), None),
        };
        let semi = marks.semi.filter(|&p| p < end);
        let hostport_end = semi.unwrap_or(end);
        let params = &s[hostport_end..end];
        let hostport = &s[rest..hostport_end];
        let (host, port) = if hostport.starts_with('[') {
            split_hostport(hostport)?
        } else {
            let (h, port) = match marks.colon.filter(|&c| c < hostport_end) {
                Some(c) => (&s[rest..c], Some(parse_port(&s[c + 1..hostport_end]).ok_or("bad port")?)),
                None => (hostport, None),
            };
            check_host(h)?;
            (h, port)
        };
        Ok(SipUriParts { user, password, host, port, params, headers })
    }

    /// Checks the `?` headers part; done after the parameters, which come first.
    #[inline]
    fn check_headers(&self) -> Result<(), &'static str> {
        match self.headers {
            Some(h) if h.is_empty() || text::any(h, text::URI_BAD) => Err("bad URI headers"),
            _ => Ok(()),
        }
    }
}

/// Where a scan of a SIP URI found the first of each byte it looks for (offsets in the URI).
#[derive(Default)]
struct Marks {
    at: Option<usize>,
    colon: Option<usize>,
    semi: Option<usize>,
    q: Option<usize>,
    pct: Option<usize>,
    bad: Option<usize>,
}

impl Marks {
    /// Scans `b` from `from` up to the first `@` (`after_userinfo` false) or the first `?`
    /// (`after_userinfo` true: the userinfo is behind, and nothing after `?` matters).
    #[inline]
    fn scan(b: &[u8], from: usize, after_userinfo: bool) -> Marks {
        let mut m = Marks::default();
        let mut i = from;
        while i < b.len() {
            let c = b[i];
            if text::class(c, text::URI_MARK) {
                match c {
                    b'@' if !after_userinfo => {
                        m.at = Some(i);
                        break;
                    }
                    b':' => _ = m.colon.get_or_insert(i),
                    b';' => _ = m.semi.get_or_insert(i),
                    b'?' => {
                        m.q.get_or_insert(i);
                        if after_userinfo {
                            break;
                        }
                    }
                    b'%' => _ = m.pct.get_or_insert(i),
                    _ => _ = m.bad.get_or_insert(i),
                }
            }
            i += 1;
        }
        m
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                f.write_str(":")?;
                f.write_str(p)?;
            }
            f.write_str("@")?;
        }
        f.write_str(self.host.as_str())?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        fmt::Display::fmt(&self.params, f)?;
        if let Some(h) = &self.headers {
            f.write_str("?")?;
            f.write_str(h)?;
        }
        Ok(())
    }
}

/// A URI: SIP/SIPS parsed, any other scheme (`tel:`, `urn:`, unknown ones) kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Uri {
    Sip(SipUri),
    Other { scheme: SipStr, rest: SipStr },
}

impl Uri {
    /// Parses an absolute URI. `s` must be a slice of `base`.
    pub(crate) fn parse_in(base: &SipStr, s: &str) -> Result<Uri, &'static str> {
        Ok(match split_scheme(s)? {
            Scheme::Sip(secure, rest) => Uri::Sip(SipUri::parse(base, secure, rest)?),
            Scheme::Other(scheme, rest) => Uri::Other { scheme: sub(base, scheme), rest: sub(base, rest) },
        })
    }

    /// Checks `s` exactly as [`Uri::parse_in`] does, without building anything.
    pub(crate) fn check(s: &str) -> Result<(), &'static str> {
        if let Scheme::Sip(_, rest) = split_scheme(s)? {
            let p = SipUriParts::split(rest)?;
            scan_params(p.params, false, |_, _| {})?;
            p.check_headers()?;
        }
        Ok(())
    }

    /// Parses a URI from text.
    pub fn parse(s: &str) -> Result<Uri, &'static str> {
        let base = SipStr::from(s);
        Uri::parse_in(&base, &base)
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    pub fn as_sip_mut(&mut self) -> Option<&mut SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    /// The scheme, lower-case for SIP and SIPS, as written otherwise.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

/// A URI's scheme, and the text after the colon.
enum Scheme<'a> {
    /// `sip:` (false) or `sips:` (true).
    Sip(bool, &'a str),
    /// Any other scheme, its text checked to be a plausible URI.
    Other(&'a str, &'a str),
}

#[inline]
fn split_scheme(s: &str) -> Result<Scheme<'_>, &'static str> {
    // The usual case first: `sip:` or `sips:` in any case.
    if let Some(p) = s.get(..5) {
        let p = p.as_bytes();
        if p[..3].eq_ignore_ascii_case(b"sip") {
            if p[3] == b':' {
                return Ok(Scheme::Sip(false, &s[4..]));
            }
            if p[3..5].eq_ignore_ascii_case(b"s:") {
                return Ok(Scheme::Sip(true, &s[5..]));
            }
        }
    }
    let colon = text::find(s, b':').ok_or("URI without scheme")?;
    let scheme = &s[..colon];
    let rest = &s[colon + 1..];
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err("bad URI scheme");
    }
    if scheme.eq_ignore_ascii_case("sip") {
        Ok(Scheme::Sip(false, rest))
    } else if scheme.eq_ignore_ascii_case("sips") {
        Ok(Scheme::Sip(true, rest))
    } else if rest.is_empty() || text::any(rest, text::URI_BAD) {
        Err("bad URI")
    } else {
        Ok(Scheme::Other(scheme, rest))
    }
}

impl From<SipUri> for Uri {
    fn from(u: SipUri) -> Self {
        Uri::Sip(u)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => fmt::Display::fmt(u, f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?subject=x").unwrap();
        let s = u.as_sip().unwrap();
        assert!(s.secure);
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.host.ip(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(s.port, Some(5061));
        assert_eq!(s.params.value("transport"), Some("tls"));
        assert!(s.params.has("LR"));
        assert_eq!(u.to_string(), "sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?subject=x");
    }

    #[test]
    fn unknown_schemes_are_kept() {
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), "soap.beep");
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
    }

    #[test]
    fn bad_uris() {
        for bad in [
            "sip:",
            "sip:@host",
            "sip:host:99999",
            "sip:host;;lr",
            "sip:[::1",
            "sip:ho st",
            "1sip:x",
            "sip:a:b c@host",
            "sip:a:<@h",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
