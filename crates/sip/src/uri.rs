//! URIs (RFC 3261 §19.1, §25.1): SIP and SIPS URIs parsed into parts, every other scheme kept
//! byte for byte.

use crate::text::{SipStr, sub, trim_lws};
use std::fmt;
use std::net::IpAddr;

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
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_ref())
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
        let mut rest = if lws { trim_lws(s) } else { s };
        if rest.is_empty() {
            return Ok(Params(out));
        }
        if !rest.starts_with(';') {
            return Err("junk before parameters");
        }
        while let Some(after) = rest.strip_prefix(';') {
            // find the end of this parameter: next ';' outside quotes
            let end = param_end(after);
            let item = &after[..end];
            rest = &after[end..];
            let item = if lws { trim_lws(item) } else { item };
            let (name, value) = match item.find('=') {
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
                if !crate::text::is_token(name) {
                    return Err("bad parameter name");
                }
            } else if !name.bytes().all(is_param_char) {
                return Err("bad URI parameter");
            }
            if let Some(v) = value {
                if v.starts_with('"') {
                    if !lws {
                        return Err("quoted URI parameter");
                    }
                    match crate::text::take_quoted(v) {
                        Some((_, "")) => {}
                        _ => return Err("bad quoted parameter value"),
                    }
                } else if lws {
                    if v.is_empty() || !v.bytes().all(|b| crate::text::is_token_char(b) || matches!(b, b':' | b'[' | b']')) {
                        return Err("bad parameter value");
                    }
                } else if !v.bytes().all(is_param_char) {
                    return Err("bad URI parameter value");
                }
            }
            out.push(Param { name: sub(base, name), value: value.map(|v| sub(base, v)) });
        }
        Ok(Params(out))
    }
}

fn param_end(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b';' => return i,
            b'"' => match crate::text::take_quoted(&s[i..]) {
                Some((q, _)) => i += q.len() + 2,
                None => return b.len(),
            },
            _ => i += 1,
        }
    }
    b.len()
}

/// `paramchar` of RFC 3261 §25.1 (unreserved, escaped, `[]/:&+$`).
fn is_param_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' | b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$'
        )
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
        let s = self.0.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(&self.0);
        s.parse().ok()
    }

    /// Compares hosts the way RFC 3261 §19.1.4 does: case-insensitive names, equal addresses.
    pub fn matches(&self, other: &Host) -> bool {
        match (self.ip(), other.ip()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.0.eq_ignore_ascii_case(&other.0),
            _ => false,
        }
    }

    pub(crate) fn parse(base: &SipStr, s: &str) -> Result<Host, &'static str> {
        if s.is_empty() {
            return Err("empty host");
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or("bad IPv6 reference")?;
            inner.parse::<std::net::Ipv6Addr>().map_err(|_| "bad IPv6 reference")?;
        } else if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
            return Err("bad host");
        }
        Ok(Host(sub(base, s)))
    }

    /// Splits `host[:port]`.
    pub(crate) fn parse_hostport(base: &SipStr, s: &str) -> Result<(Host, Option<u16>), &'static str> {
        let (h, port) = if s.starts_with('[') {
            let close = s.find(']').ok_or("bad IPv6 reference")?;
            match &s[close + 1..] {
                "" => (&s[..=close], None),
                p => (&s[..=close], Some(p.strip_prefix(':').ok_or("bad port")?)),
            }
        } else {
            match s.find(':') {
                Some(c) => (&s[..c], Some(&s[c + 1..])),
                None => (s, None),
            }
        };
        let port = match port {
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("bad port");
                }
                Some(p.parse::<u16>().map_err(|_| "bad port")?)
            }
            None => None,
        };
        Ok((Host::parse(base, h)?, port))
    }
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
        self.user.as_deref().and_then(crate::text::unescape)
    }

    fn parse(base: &SipStr, secure: bool, s: &str) -> Result<SipUri, &'static str> {
        let (userinfo, rest) = match s.find('@') {
            Some(at) => (Some(&s[..at]), &s[at + 1..]),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || u.bytes().any(|b| b <= b' ' || matches!(b, b'<' | b'>' | b'"')) {
                    return Err("bad user part");
                }
                if crate::text::unescape(u).is_none() {
                    return Err("bad escape in user part");
                }
                (Some(sub(base, u)), p.map(|p| sub(base, p)))
            }
            None => (None, None),
        };
        let (before_headers, headers) = match rest.find('?') {
            Some(q) => (&rest[..q], Some(&rest[q + 1..])),
            None => (rest, None),
        };
        let (hostport, params) = match before_headers.find(';') {
            Some(sc) => (&before_headers[..sc], &before_headers[sc..]),
            None => (before_headers, ""),
        };
        let (host, port) = Host::parse_hostport(base, hostport)?;
        let params = Params::parse(base, params, false)?;
        if let Some(h) = headers {
            if h.is_empty() || h.bytes().any(|b| b <= b' ' || matches!(b, b'<' | b'>' | b'"')) {
                return Err("bad URI headers");
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers: headers.map(|h| sub(base, h)),
        })
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
        let colon = s.find(':').ok_or("URI without scheme")?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if scheme.is_empty()
            || !scheme.as_bytes()[0].is_ascii_alphabetic()
            || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err("bad URI scheme");
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse(base, false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse(base, true, rest).map(Uri::Sip)
        } else {
            if rest.is_empty() || rest.bytes().any(|b| b <= b' ' || matches!(b, b'<' | b'>' | b'"')) {
                return Err("bad URI");
            }
            Ok(Uri::Other { scheme: sub(base, scheme), rest: sub(base, rest) })
        }
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
        for bad in ["sip:", "sip:@host", "sip:host:99999", "sip:host;;lr", "sip:[::1", "sip:ho st", "1sip:x"] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
