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
    TOKEN[b as usize]
}

/// True when `s` is a non-empty `token`.
#[inline]
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        i += 1;
    }
    t
}
static TOKEN: [bool; 256] = token_table();

/// Trims linear white space (SP, HTAB, CR, LF) from both ends.
#[inline]
pub fn trim_lws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// Splits `s` at top-level commas: commas inside quoted strings or `<...>` do not split.
pub fn split_commas(s: &str) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut pos = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut in_quotes = false;
        let mut in_angle = false;
        while pos < bytes.len() {
            let b = bytes[pos];
            if in_quotes {
                if b == b'\\' {
                    pos += 1;
                } else if b == b'"' {
                    in_quotes = false;
                }
            } else {
                match b {
                    b'"' => in_quotes = true,
                    b'<' => in_angle = true,
                    b'>' => in_angle = false,
                    b',' if !in_angle => {
                        let part = &s[start..pos];
                        pos += 1;
                        start = pos;
                        return Some(part);
                    }
                    _ => {}
                }
            }
            pos += 1;
        }
        done = true;
        Some(&s[start.min(s.len())..])
    })
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
