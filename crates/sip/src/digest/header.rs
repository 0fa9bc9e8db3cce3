//! The digest header values: challenges and credentials, parsed and printed (RFC 3261 §25.1,
//! RFC 7616 §3.3 and §3.4).

use std::fmt::{self, Write as _};

use super::{Algorithm, DigestError, Qop};

/// A digest challenge: the value of `WWW-Authenticate` or `Proxy-Authenticate`
/// (RFC 7616 §3.3, RFC 3261 §22.4 and §25.1 `digest-cln`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`: the protection space, usually the SIP domain (RFC 3261 §22.1).
    pub realm: String,
    /// `domain`: space-separated URIs of the protection space (RFC 7616 §3.3), rarely used in SIP.
    pub domain: Option<String>,
    /// `nonce`: server-chosen, opaque to the client (RFC 7616 §3.3).
    pub nonce: String,
    /// `opaque`: returned unchanged by the client (RFC 7616 §3.3).
    pub opaque: Option<String>,
    /// `stale`: the previous request had a valid response for an old nonce, retry without asking
    /// the user again (RFC 7616 §3.3).
    pub stale: bool,
    /// `algorithm` (RFC 7616 §3.3, RFC 8760 §2.1).
    pub algorithm: Algorithm,
    /// `qop`: `Some(Qop::Auth)` when the server offers `auth`; `None` for a legacy challenge
    /// without `qop` (RFC 2069 compatibility, RFC 7616 §3.4 / RFC 2617 §3.2.2.1).
    pub qop: Option<Qop>,
}

impl Challenge {
    /// A challenge with `qop="auth"`, no `opaque`, no `domain` and `stale=false`, as a
    /// registrar sends it (RFC 7616 §3.3).
    pub fn new(realm: impl Into<String>, nonce: impl Into<String>, algorithm: Algorithm) -> Self {
        Challenge {
            realm: realm.into(),
            domain: None,
            nonce: nonce.into(),
            opaque: None,
            stale: false,
            algorithm,
            qop: Some(Qop::Auth),
        }
    }

    /// Sets the `stale` flag (RFC 7616 §3.3).
    pub fn with_stale(mut self, stale: bool) -> Self {
        self.stale = stale;
        self
    }

    /// Sets `opaque` (RFC 7616 §3.3).
    pub fn with_opaque(mut self, opaque: impl Into<String>) -> Self {
        self.opaque = Some(opaque.into());
        self
    }

    /// Parses a `WWW-Authenticate` / `Proxy-Authenticate` header value (RFC 7616 §3.3,
    /// RFC 3261 §25.1 `challenge`).
    ///
    /// `realm` and `nonce` are required. `qop` is a quoted list (`"auth,auth-int"`): the
    /// challenge is accepted when it offers `auth`, refused with [`DigestError::UnsupportedQop`]
    /// when it offers only other values. Unknown parameters (`charset`, `userhash`, extensions)
    /// are ignored.
    ///
    /// # Errors
    ///
    /// [`DigestError::UnknownScheme`] for another scheme, and the other variants for a value
    /// that is malformed, lacks `realm` or `nonce`, or asks for an unsupported algorithm or qop.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let params = parse_digest_params(value)?;
        let mut realm = None;
        let mut domain = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut stale = None;
        let mut algorithm = None;
        let mut qop = None;
        for p in params {
            match p.name.as_str() {
                "realm" => realm = Some(p.value),
                "domain" => domain = Some(p.value),
                "nonce" => nonce = Some(p.value),
                "opaque" => opaque = Some(p.value),
                "stale" => {
                    stale = Some(if p.value.eq_ignore_ascii_case("true") {
                        true
                    } else if p.value.eq_ignore_ascii_case("false") {
                        false
                    } else {
                        return Err(DigestError::Malformed("stale is neither true nor false"));
                    })
                }
                "algorithm" => algorithm = Some(p.value.parse::<Algorithm>()?),
                "qop" => {
                    // RFC 7616 §3.3: qop-options = "qop" EQUAL DQUOTE qop-value *("," qop-value) DQUOTE
                    let offers_auth = p.value.split(',').any(|v| trim_lws(v).eq_ignore_ascii_case("auth"));
                    if !offers_auth {
                        return Err(DigestError::UnsupportedQop(p.value));
                    }
                    qop = Some(Qop::Auth);
                }
                _ => {}
            }
        }
        Ok(Challenge {
            realm: realm.ok_or(DigestError::MissingParam("realm"))?,
            domain,
            nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
            opaque,
            stale: stale.unwrap_or(false),
            algorithm: algorithm.unwrap_or_default(),
            qop,
        })
    }
}

/// Prints the header value, e.g.
/// `Digest realm="example.com", nonce="…", opaque="…", algorithm=SHA-256, qop="auth", stale=true`
/// (RFC 7616 §3.3; `stale` only when true).
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest realm=")?;
        write_quoted(f, &self.realm)?;
        if let Some(domain) = &self.domain {
            f.write_str(", domain=")?;
            write_quoted(f, domain)?;
        }
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        if let Some(opaque) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, opaque)?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if let Some(qop) = self.qop {
            write!(f, ", qop=\"{qop}\"")?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// Digest credentials: the value of `Authorization` or `Proxy-Authorization`
/// (RFC 7616 §3.4, RFC 3261 §22.4 and §25.1 `digest-response`).
///
/// Quoted values are stored unescaped, exactly as they enter the hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `username` (RFC 7616 §3.4).
    pub username: String,
    /// `realm`, echoed from the challenge.
    pub realm: String,
    /// `nonce`, echoed from the challenge.
    pub nonce: String,
    /// `uri`: the digest-uri, the Request-URI of the request (RFC 3261 §22.4).
    pub uri: String,
    /// `response`: the request-digest in hex (RFC 7616 §3.4.1).
    pub response: String,
    /// `algorithm`; MD5 when absent (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    /// `cnonce`: the client nonce, required with `qop` and with `-sess` algorithms.
    pub cnonce: Option<String>,
    /// `opaque`, echoed from the challenge.
    pub opaque: Option<String>,
    /// `qop`: `None` for a legacy RFC 2069 response.
    pub qop: Option<Qop>,
    /// `nc`: the nonce count, sent as 8 hex digits (RFC 7616 §3.4).
    pub nc: Option<u32>,
}

impl Credentials {
    /// Parses an `Authorization` / `Proxy-Authorization` header value (RFC 7616 §3.4,
    /// RFC 3261 §25.1 `credentials`).
    ///
    /// The scheme `Digest` is matched case-insensitively; anything else gives
    /// [`DigestError::UnknownScheme`]. `username`, `realm`, `nonce`, `uri` and `response` are
    /// required; `cnonce` and `nc` are required with `qop` (RFC 7616 §3.4) and `cnonce` with a
    /// `-sess` algorithm (RFC 7616 §3.4.2). `qop`, `nc` and `algorithm` are tokens but are also
    /// accepted quoted. Unknown parameters are ignored (RFC 7616 §3.4 `auth-param`). Never
    /// panics.
    ///
    /// # Errors
    ///
    /// [`DigestError::UnknownScheme`] for another scheme (answer with a new challenge),
    /// [`DigestError::MissingParam`] for a missing required parameter,
    /// [`DigestError::UserhashUnsupported`] for `userhash=true`, and the other variants for
    /// malformed input or unsupported values.
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let params = parse_digest_params(value)?;
        let mut username = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut algorithm = None;
        let mut cnonce = None;
        let mut opaque = None;
        let mut qop = None;
        let mut nc = None;
        for p in params {
            match p.name.as_str() {
                "username" => username = Some(p.value),
                "realm" => realm = Some(p.value),
                "nonce" => nonce = Some(p.value),
                "uri" => uri = Some(p.value),
                "response" => response = Some(p.value),
                "algorithm" => algorithm = Some(p.value.parse::<Algorithm>()?),
                "cnonce" => cnonce = Some(p.value),
                "opaque" => opaque = Some(p.value),
                "qop" => {
                    if p.value.eq_ignore_ascii_case("auth") {
                        qop = Some(Qop::Auth);
                    } else {
                        return Err(DigestError::UnsupportedQop(p.value));
                    }
                }
                "nc" => nc = Some(parse_nc(&p.value)?),
                "userhash" => {
                    // RFC 7616 §3.4.4; "false" is the default and changes nothing.
                    if p.value.eq_ignore_ascii_case("true") {
                        return Err(DigestError::UserhashUnsupported);
                    } else if !p.value.eq_ignore_ascii_case("false") {
                        return Err(DigestError::Malformed("userhash is neither true nor false"));
                    }
                }
                _ => {}
            }
        }
        let creds = Credentials {
            username: username.ok_or(DigestError::MissingParam("username"))?,
            realm: realm.ok_or(DigestError::MissingParam("realm"))?,
            nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
            uri: uri.ok_or(DigestError::MissingParam("uri"))?,
            response: response.ok_or(DigestError::MissingParam("response"))?,
            algorithm: algorithm.unwrap_or_default(),
            cnonce,
            opaque,
            qop,
            nc,
        };
        if creds.qop.is_some() {
            if creds.cnonce.is_none() {
                return Err(DigestError::MissingParam("cnonce"));
            }
            if creds.nc.is_none() {
                return Err(DigestError::MissingParam("nc"));
            }
        }
        if creds.algorithm.is_session() && creds.cnonce.is_none() {
            return Err(DigestError::MissingParam("cnonce"));
        }
        Ok(creds)
    }
}

/// Prints a valid `Authorization` / `Proxy-Authorization` header value (RFC 7616 §3.4,
/// RFC 3261 §25.1 `digest-response`): quoted strings for the quoted parameters (with `"` and
/// `\` escaped), tokens for `algorithm`, `qop` and `nc`.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest username=")?;
        write_quoted(f, &self.username)?;
        f.write_str(", realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        f.write_str(", uri=")?;
        write_quoted(f, &self.uri)?;
        f.write_str(", response=")?;
        write_quoted(f, &self.response)?;
        write!(f, ", algorithm={}", self.algorithm)?;
        if let Some(cnonce) = &self.cnonce {
            f.write_str(", cnonce=")?;
            write_quoted(f, cnonce)?;
        }
        if let Some(opaque) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, opaque)?;
        }
        if let Some(qop) = self.qop {
            write!(f, ", qop={qop}")?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        Ok(())
    }
}

/// `nc-value = 8LHEX` (RFC 7616 §3.4); upper case is tolerated.
fn parse_nc(value: &str) -> Result<u32, DigestError> {
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DigestError::InvalidNonceCount(value.to_owned()));
    }
    u32::from_str_radix(value, 16).map_err(|_| DigestError::InvalidNonceCount(value.to_owned()))
}

/// Writes `s` as a quoted-string, escaping `"` and `\` (RFC 3261 §25.1 `quoted-pair`).
///
/// CR and LF cannot appear in a quoted-string, not even escaped, and would split the header:
/// they are left out.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars().filter(|&c| c != '\r' && c != '\n') {
        if matches!(c, '"' | '\\') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

fn trim_lws(s: &str) -> &str {
    s.trim_matches(is_lws_char)
}

fn is_lws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `token` characters (RFC 3261 §25.1).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// One `auth-param`, with its name lower-cased and its value unquoted and unescaped.
struct Param {
    name: String,
    value: String,
}

/// Most parameters a digest header may carry: far more than any real one.
const MAX_PARAMS: usize = 64;

/// Splits `Digest name=value, name="quoted", …` into its parameters (RFC 3261 §25.1
/// `challenge` / `credentials`, RFC 7616 §3.3 and §3.4).
///
/// The scheme is matched case-insensitively. LWS (including folded lines) is allowed around `=`
/// and `,`, empty list elements are skipped (RFC 7230 §7 `#rule`), quoted values may hold
/// `\`-escapes, and unquoted values run to the next LWS or comma. A parameter given twice is an
/// error.
fn parse_digest_params(value: &str) -> Result<Vec<Param>, DigestError> {
    let s = trim_lws(value);
    if s.is_empty() {
        return Err(DigestError::Malformed("empty header value"));
    }
    let bytes = s.as_bytes();
    let scheme_end = bytes.iter().position(|&b| !is_token_byte(b)).unwrap_or(bytes.len());
    let scheme = &s[..scheme_end];
    if scheme.is_empty() {
        return Err(DigestError::Malformed("missing authentication scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::UnknownScheme);
    }
    let mut pos = scheme_end;
    if pos < bytes.len() && !is_lws_char(char::from(bytes[pos])) {
        return Err(DigestError::Malformed("no space after the scheme"));
    }

    let skip_lws = |mut p: usize| {
        while p < bytes.len() && is_lws_char(char::from(bytes[p])) {
            p += 1;
        }
        p
    };

    let mut params: Vec<Param> = Vec::new();
    loop {
        pos = skip_lws(pos);
        if pos >= bytes.len() {
            break;
        }
        if bytes[pos] == b',' {
            pos += 1;
            continue;
        }
        let name_start = pos;
        while pos < bytes.len() && is_token_byte(bytes[pos]) {
            pos += 1;
        }
        if pos == name_start {
            return Err(DigestError::Malformed("expected a parameter name"));
        }
        let name = s[name_start..pos].to_ascii_lowercase();
        pos = skip_lws(pos);
        if pos >= bytes.len() || bytes[pos] != b'=' {
            return Err(DigestError::Malformed("expected `=` after a parameter name"));
        }
        pos = skip_lws(pos + 1);
        if pos >= bytes.len() {
            return Err(DigestError::Malformed("missing parameter value"));
        }
        let value = if bytes[pos] == b'"' {
            let (v, end) = parse_quoted(s, pos)?;
            pos = end;
            v
        } else {
            let start = pos;
            while pos < bytes.len() && !matches!(bytes[pos], b',' | b'"') && !is_lws_char(char::from(bytes[pos])) {
                pos += 1;
            }
            if pos == start {
                return Err(DigestError::Malformed("missing parameter value"));
            }
            s[start..pos].to_owned()
        };
        pos = skip_lws(pos);
        if pos < bytes.len() && bytes[pos] != b',' {
            return Err(DigestError::Malformed("expected `,` between parameters"));
        }
        if params.iter().any(|p| p.name == name) {
            return Err(DigestError::DuplicateParam(name));
        }
        if params.len() >= MAX_PARAMS {
            return Err(DigestError::Malformed("too many parameters"));
        }
        params.push(Param { name, value });
    }
    Ok(params)
}

/// Parses the quoted-string starting at the `"` at byte `open` of `s`; returns the unescaped
/// content and the byte index just past the closing quote (RFC 3261 §25.1 `quoted-string`).
fn parse_quoted(s: &str, open: usize) -> Result<(String, usize), DigestError> {
    let Some(rest) = s.get(open + 1..) else {
        return Err(DigestError::Malformed("unterminated quoted string"));
    };
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, open + 1 + i + 1)),
            '\\' => match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => break,
            },
            _ => out.push(c),
        }
    }
    Err(DigestError::Malformed("unterminated quoted string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nc_parsing() {
        assert_eq!(parse_nc("00000001"), Ok(1));
        assert_eq!(parse_nc("0000000A"), Ok(10));
        assert_eq!(parse_nc("ffffffff"), Ok(u32::MAX));
        for bad in ["1", "000000001", "+0000001", "0000000g", ""] {
            assert!(matches!(parse_nc(bad), Err(DigestError::InvalidNonceCount(_))), "{bad}");
        }
    }
}
