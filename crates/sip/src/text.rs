//! Text helpers: the zero-copy string type and the character classes of RFC 3261 §25.1.

/// An immutable UTF-8 string that shares the buffer it was parsed from.
///
/// Cloning and slicing never copy: a parsed message keeps one buffer and every header,
/// parameter and URI part points into it.
pub type SipStr = bytestring::ByteString;

/// Slices `part` (which must lie inside `whole`) out of `base` without copying.
#[inline]
pub(crate) fn sub(base: &SipStr, part: &str) -> SipStr {
    base.slice_ref(part)
}

/// `token` characters (RFC 3261 §25.1): alphanum and `-.!%*_+`'~`.
#[inline]
pub fn is_token_char(b: u8) -> bool {
    class(b, TOKEN)
}

/// True when `s` is a non-empty `token`.
#[inline]
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && all(s, TOKEN)
}

// Character classes of RFC 3261 §25.1, one bit each in one 256-byte table: a class test is one
// load and one AND, with no branches on the character itself.

/// `token`.
pub(crate) const TOKEN: u8 = 1;
/// `paramchar` of a URI parameter: unreserved, escaped (`%`) and `[]/:&+$`.
pub(crate) const PARAM: u8 = 1 << 1;
/// A host name or IPv4 address: alphanum and `-._`.
pub(crate) const HOST: u8 = 1 << 2;
/// A header parameter value that is not quoted: `token` plus `:[]` (IPv6 in `received`).
pub(crate) const PVALUE: u8 = 1 << 3;
/// Bytes refused inside a URI: controls, SP, `<`, `>`, `"`.
pub(crate) const URI_BAD: u8 = 1 << 4;
/// Linear white space: SP, HTAB, CR, LF.
pub(crate) const LWS: u8 = 1 << 5;
/// A display name written without quotes: `token` characters and LWS.
pub(crate) const DISPLAY: u8 = 1 << 6;
/// What a SIP URI scan stops at: `@ : ; ? %` and the bytes of [`URI_BAD`].
pub(crate) const URI_MARK: u8 = 1 << 7;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut bits = 0;
        let token = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        let lws = matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        if token {
            bits |= TOKEN | PVALUE | DISPLAY;
        }
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'%'
                    | b'['
                    | b']'
                    | b'/'
                    | b':'
                    | b'&'
                    | b'+'
                    | b'$'
            )
        {
            bits |= PARAM;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_') {
            bits |= HOST;
        }
        if matches!(c, b':' | b'[' | b']') {
            bits |= PVALUE;
        }
        if c <= b' ' || matches!(c, b'<' | b'>' | b'"') {
            bits |= URI_BAD;
        }
        if lws {
            bits |= LWS | DISPLAY;
        }
        if matches!(c, b'@' | b':' | b';' | b'?' | b'%') || c <= b' ' || matches!(c, b'<' | b'>' | b'"') {
            bits |= URI_MARK;
        }
        t[i] = bits;
        i += 1;
    }
    t
}
static CLASSES: [u8; 256] = class_table();

/// True when `b` is in `class` (one of the class constants above, or several OR-ed together).
#[inline(always)]
pub(crate) fn class(b: u8, class: u8) -> bool {
    CLASSES[b as usize] & class != 0
}

/// True when every byte of `s` is in `class` (true for an empty `s`).
#[inline]
pub(crate) fn all(s: &str, c: u8) -> bool {
    s.bytes().all(|b| class(b, c))
}

/// True when some byte of `s` is in `class`.
#[inline]
pub(crate) fn any(s: &str, c: u8) -> bool {
    s.bytes().any(|b| class(b, c))
}

/// The position of the first `b` in `s`. Short texts (parameters, URI parts) are scanned
/// inline: below a vector's width `memchr`'s dispatch costs more than it saves.
#[inline]
pub(crate) fn find(s: &str, b: u8) -> Option<usize> {
    let h = s.as_bytes();
    if h.len() < 16 { h.iter().position(|&c| c == b) } else { memchr::memchr(b, h) }
}

/// Trims linear white space (SP, HTAB, CR, LF) from both ends.
#[inline]
pub fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    while start < end && class(b[start], LWS) {
        start += 1;
    }
    while end > start && class(b[end - 1], LWS) {
        end -= 1;
    }
    // LWS is ASCII, so both ends are character boundaries.
    &s[start..end]
}

/// Splits `s` at top-level commas: commas inside quoted strings or `<...>` do not split.
pub fn split_commas(s: &str) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut pos = start;
        // Outside quotes and angle brackets only `,`, `"` and `<` matter: jump between them.
        while let Some(i) = memchr::memchr3(b',', b'"', b'<', &bytes[pos..]) {
            pos += i;
            match bytes[pos] {
                b',' => {
                    let part = &s[start..pos];
                    start = pos + 1;
                    return Some(part);
                }
                b'"' => pos = skip_quoted(bytes, pos + 1),
                _ => pos = skip_angle(bytes, pos + 1),
            }
        }
        done = true;
        Some(&s[start..])
    })
}

/// From just inside a quoted string, the position after its closing quote (or the end).
#[inline]
fn skip_quoted(b: &[u8], mut pos: usize) -> usize {
    while pos < b.len() {
        match memchr::memchr2(b'\\', b'"', &b[pos..]) {
            Some(i) if b[pos + i] == b'"' => return pos + i + 1,
            Some(i) => pos += i + 2,
            None => return b.len(),
        }
    }
    b.len()
}

/// From just inside `<`, the position after the matching `>` (or the end); quoted strings
/// inside are skipped whole.
#[inline]
fn skip_angle(b: &[u8], mut pos: usize) -> usize {
    while pos < b.len() {
        match memchr::memchr2(b'>', b'"', &b[pos..]) {
            Some(i) if b[pos + i] == b'>' => return pos + i + 1,
            Some(i) => pos = skip_quoted(b, pos + i + 1),
            None => return b.len(),
        }
    }
    b.len()
}

/// Decodes `%HH` escapes once (no recursive unescaping, RFC 4475 §3.1.1.3).
/// Returns `None` when an escape is malformed or the result is not UTF-8.
pub fn unescape(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !s.contains('%') {
        return Some(std::borrow::Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(std::borrow::Cow::Owned)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `bytes` as lower-case hex: tags, branches and Call-IDs are made this way.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Parses a quoted string at the start of `s` (which must begin with `"`), returning the raw
/// content between the quotes (escapes kept) and the rest after the closing quote.
pub fn take_quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[1..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Removes the backslash escapes of a quoted string's content.
pub fn unquote(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains('\\') {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Quotes `s` as a `quoted-string`, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_angles() {
        let v: Vec<_> = split_commas(r#""a,b" <sip:x@y;p=1,2>;q=1, <sip:z>"#).collect();
        assert_eq!(v, vec![r#""a,b" <sip:x@y;p=1,2>;q=1"#, " <sip:z>"]);
        assert_eq!(split_commas("").collect::<Vec<_>>(), vec![""]);
    }

    #[test]
    fn unescape_once() {
        assert_eq!(unescape("value%25%34%31").unwrap(), "value%41");
        assert!(unescape("bad%4").is_none());
    }

    #[test]
    fn quoting_round_trips() {
        let q = quote(r#"say "hi" \o/"#);
        let (raw, rest) = take_quoted(&q).unwrap();
        assert_eq!(rest, "");
        assert_eq!(unquote(raw), r#"say "hi" \o/"#);
    }
}
