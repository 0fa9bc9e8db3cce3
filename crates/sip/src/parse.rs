//! The message parser (RFC 3261 §7, §25) and stream framing (§18.3).
//!
//! One pass over the header section: lines are found with `memchr`, names are classified by
//! length and first byte, and every value is a zero-copy slice of the received buffer. Only the
//! headers that decide how a message is answered (Via, From, To, Call-ID, CSeq, Max-Forwards,
//! Content-Length) are checked here; the rest stay text until someone asks for them.

use crate::error::{ErrorKind, ParseError};
use crate::header::{Header, HeaderName, Headers};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::text::{self, SipStr, sub, trim_lws};
use crate::typed::{CSeq, NameAddr, Via, parse_u32};
use crate::uri::Uri;
use bytes::{Buf, Bytes};
use std::sync::LazyLock;

/// The largest message accepted by default: 64 KiB, the size of the largest UDP datagram.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// Why a byte stream can no longer be framed. The connection must be closed after answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message too large")]
    TooLarge,
    #[error("bad Content-Length")]
    BadContentLength,
    #[error("multiple Content-Length headers")]
    MultipleContentLength,
}

impl FrameError {
    /// The status to answer with before closing (RFC 4475 §3.1.2.3, §3.3.9).
    pub fn status(self) -> u16 {
        match self {
            FrameError::TooLarge => 513,
            _ => 400,
        }
    }
}

/// Finds the end of the first message in a stream buffer (RFC 3261 §18.3): the header section
/// up to the blank line plus Content-Length bytes of body (none when Content-Length is absent).
/// `Ok(None)` asks for more bytes. Leading CRLFs (keep-alives, RFC 5626 §4.4.1) must have been
/// consumed by the caller.
pub fn frame_stream(buf: &[u8], max_size: usize) -> Result<Option<usize>, FrameError> {
    let window = &buf[..buf.len().min(max_size)];
    let Some(end) = memchr::memmem::find(window, b"\r\n\r\n") else {
        return if buf.len() >= max_size { Err(FrameError::TooLarge) } else { Ok(None) };
    };
    let head_len = end + 4;
    let mut content_length: Option<usize> = None;
    for line in window[..end].split(|&b| b == b'\n').skip(1) {
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = trim_ascii(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = trim_ascii(&line[colon + 1..]);
            if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
                return Err(FrameError::BadContentLength);
            }
            let n: usize = v.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0'));
            if content_length.is_some_and(|c| c != n) {
                return Err(FrameError::MultipleContentLength);
            }
            content_length = Some(n);
        }
    }
    let total = head_len + content_length.unwrap_or(0);
    if total > max_size {
        return Err(FrameError::TooLarge);
    }
    Ok((buf.len() >= total).then_some(total))
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Where the checked headers are in the list, found in the one pass.
#[derive(Default)]
struct Seen {
    call_id: Slot,
    from: Slot,
    to: Slot,
    cseq: Slot,
    max_forwards: Slot,
    content_length: Slot,
    via: Slot,
    contact: Slot,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    first: u32,
    count: u32,
}

impl Slot {
    #[inline]
    fn see(&mut self, i: usize) {
        if self.count == 0 {
            self.first = i as u32;
        }
        self.count += 1;
    }
}

enum Start {
    Request(Result<(Method, Uri), ErrorKind>),
    Response(Result<(u16, SipStr), ErrorKind>),
}

/// The end of the header section, built once.
static CRLF2: LazyLock<memchr::memmem::Finder<'static>> = LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));

/// What one pass over the start line and the header lines found.
struct Head {
    is_request: bool,
    start: Start,
    headers: Headers,
    seen: Seen,
    bad_line: bool,
    /// Where the first blank line starts, when the pass stopped at one.
    blank: Option<usize>,
}

pub(crate) fn parse(buf: Bytes) -> Result<Message, ParseError> {
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    if skip == buf.len() {
        return Err(ParseError::new(ErrorKind::Empty));
    }

    // One pass: read lines from the start of the message (as much of it as is UTF-8) up to the
    // first blank line. When that blank line is a CRLF after a CRLF, it is the first "\r\n\r\n"
    // (an earlier one would have made an earlier blank line), which is where the header section
    // ends. Anything else (bare LFs, no blank line, a header section that is not UTF-8) takes the
    // general path below, which finds the end first and reads the lines again.
    let text = match SipStr::try_from(buf.slice(skip..)) {
        Ok(t) => t,
        Err(e) => SipStr::try_from(buf.slice(skip..skip + e.valid_up_to()))
            .map_err(|_| ParseError::new(ErrorKind::NotUtf8))?,
    };
    let head = read_head(&text, true);
    let (head, body_start) = match head.blank {
        Some(at) if at >= 2 && text.as_bytes().get(at - 2..at + 2) == Some(b"\r\n\r\n") => (head, skip + at + 2),
        _ => {
            let (head_end, body_start) = match CRLF2.find(&buf[skip..]) {
                Some(i) => (skip + i + 2, skip + i + 4),
                None => match memchr::memmem::find(&buf[skip..], b"\n\n") {
                    Some(i) => (skip + i + 1, skip + i + 2),
                    // A datagram that ends right after its last header line: the datagram
                    // bounds the header section (the blank line is missing, nothing else).
                    None if buf.ends_with(b"\n") => (buf.len(), buf.len()),
                    None => return Err(ParseError::new(ErrorKind::UnterminatedHeaders)),
                },
            };
            let text = SipStr::try_from(buf.slice(skip..head_end)).map_err(|_| ParseError::new(ErrorKind::NotUtf8))?;
            (read_head(&text, false), body_start)
        }
    };
    drop(text);
    let Head { is_request, start, headers, seen, bad_line, .. } = head;

    let fail = |kind: ErrorKind, headers: Headers| ParseError {
        kind,
        request_headers: if is_request { Some(headers) } else { None },
    };

    let start = match start {
        Start::Request(Ok((m, u))) => StartOk::Request(m, u),
        Start::Response(Ok((c, r))) => StartOk::Response(c, r),
        Start::Request(Err(k)) | Start::Response(Err(k)) => return Err(fail(k, headers)),
    };
    if bad_line {
        return Err(fail(ErrorKind::BadHeaderLine, headers));
    }
    let method = match &start {
        StartOk::Request(m, _) => Some(m),
        StartOk::Response(..) => None,
    };
    let content_length = match check(&headers, &seen, method) {
        Ok(n) => n,
        Err(k) => return Err(fail(k, headers)),
    };

    // The body shares the received buffer: the buffer itself moves into it (no reference count
    // traffic) unless it is empty.
    let available = buf.len() - body_start;
    let body_len = match content_length {
        Some(n) if n > available => return Err(fail(ErrorKind::BodyTooShort, headers)),
        Some(n) => n,
        None => available,
    };
    let body = if body_len == 0 {
        Bytes::new()
    } else {
        let mut body = buf;
        body.advance(body_start);
        body.truncate(body_len);
        body
    };

    Ok(match start {
        StartOk::Request(method, uri) => Message::Request(Request { method, uri, headers, body }),
        StartOk::Response(status, reason) => Message::Response(Response { status, reason, headers, body }),
    })
}

/// Reads the start line and the header lines of `text`: all of them, or (with `stop_at_blank`)
/// those before the first blank line. Values are slices of `text`.
fn read_head(text: &SipStr, stop_at_blank: bool) -> Head {
    let mut lines = Lines { s: text, pos: 0 };
    let start_line = lines.next_line().unwrap_or("");
    let is_request = !start_line.starts_with("SIP/");
    let start = if is_request {
        Start::Request(request_line(text, start_line))
    } else {
        Start::Response(status_line(text, start_line))
    };

    // Room for lines of 40 bytes on average (real header lines are about that or longer), so
    // the list is mostly allocated once, without a pass to count the lines.
    let capacity = ((text.len() - lines.pos) / 40).clamp(12, 32);
    let mut headers = Headers(Vec::with_capacity(capacity));
    let mut seen = Seen::default();
    let mut bad_line = false;
    let mut blank = None;
    loop {
        let at = lines.pos;
        let Some(line) = lines.next_line() else { break };
        if stop_at_blank && line.is_empty() {
            blank = Some(at);
            break;
        }
        let folded = lines.continuation();
        // `token *(SP / HTAB) ":"`: the same as "the text before the first colon, less trailing
        // white space, is a token", as neither `:` nor white space is a token character.
        let lb = line.as_bytes();
        let mut name_end = 0;
        while name_end < lb.len() && text::is_token_char(lb[name_end]) {
            name_end += 1;
        }
        let mut colon = name_end;
        while colon < lb.len() && matches!(lb[colon], b' ' | b'\t') {
            colon += 1;
        }
        if name_end == 0 || lb.get(colon) != Some(&b':') {
            bad_line = true;
            continue;
        }
        let name = &line[..name_end];
        let value = trim_lws(&line[colon + 1..]);
        let value = match folded {
            None => sub(text, value),
            Some(cont) => unfold(value, cont),
        };
        let name = HeaderName::parse_in(text, name);
        let i = headers.0.len();
        match name {
            HeaderName::Via => seen.via.see(i),
            HeaderName::CallId => seen.call_id.see(i),
            HeaderName::From => seen.from.see(i),
            HeaderName::To => seen.to.see(i),
            HeaderName::CSeq => seen.cseq.see(i),
            HeaderName::MaxForwards => seen.max_forwards.see(i),
            HeaderName::ContentLength => seen.content_length.see(i),
            HeaderName::Contact => seen.contact.see(i),
            _ => {}
        }
        headers.0.push(Header { name, value });
    }
    Head { is_request, start, headers, seen, bad_line, blank }
}

enum StartOk {
    Request(Method, Uri),
    Response(u16, SipStr),
}

/// Checks presence, multiplicity and syntax of the headers that decide the answer, without
/// building anything: the typed views are built again, on demand, by whoever needs them.
/// Returns the Content-Length, if there is one.
fn check(headers: &Headers, seen: &Seen, method: Option<&Method>) -> Result<Option<usize>, ErrorKind> {
    let singles = [
        (&seen.call_id, "Call-ID"),
        (&seen.from, "From"),
        (&seen.to, "To"),
        (&seen.cseq, "CSeq"),
        (&seen.max_forwards, "Max-Forwards"),
        (&seen.content_length, "Content-Length"),
    ];
    for (slot, name) in singles {
        if slot.count > 1 {
            return Err(ErrorKind::Multiple(name));
        }
    }
    for (slot, name) in
        [(&seen.call_id, "Call-ID"), (&seen.from, "From"), (&seen.to, "To"), (&seen.cseq, "CSeq"), (&seen.via, "Via")]
    {
        if slot.count == 0 {
            return Err(ErrorKind::Missing(name));
        }
    }
    let value = |slot: &Slot| &headers.0[slot.first as usize].value;

    let call_id = value(&seen.call_id);
    if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(ErrorKind::BadHeader { header: "Call-ID", why: "not a word" });
    }
    let (_, cseq_method) =
        CSeq::split(value(&seen.cseq)).map_err(|why| ErrorKind::BadHeader { header: "CSeq", why })?;
    // `Method::from_token` maps names to methods one to one, so equal names are equal methods.
    if method.is_some_and(|m| m.as_str() != cseq_method) {
        return Err(ErrorKind::CSeqMismatch);
    }
    NameAddr::check(value(&seen.from)).map_err(|why| ErrorKind::BadHeader { header: "From", why })?;
    NameAddr::check(value(&seen.to)).map_err(|why| ErrorKind::BadHeader { header: "To", why })?;
    let top = text::split_commas(value(&seen.via)).next().unwrap_or("");
    Via::check(top).map_err(|why| ErrorKind::BadHeader { header: "Via", why })?;
    // Contact decides where later requests go: a malformed one is refused now (RFC 4475 §3.1.2.13).
    if seen.contact.count > 0 {
        for h in headers.0[seen.contact.first as usize..].iter().filter(|h| h.name == HeaderName::Contact) {
            for v in text::split_commas(&h.value) {
                if trim_lws(v) != "*" {
                    NameAddr::check(v).map_err(|why| ErrorKind::BadHeader { header: "Contact", why })?;
                }
            }
        }
    }
    if seen.max_forwards.count == 1 && parse_u32(value(&seen.max_forwards)).is_none_or(|n| n > 255) {
        return Err(ErrorKind::BadHeader { header: "Max-Forwards", why: "not a number from 0 to 255" });
    }
    if seen.content_length.count == 1 {
        return match parse_u32(value(&seen.content_length)) {
            Some(n) => Ok(Some(n as usize)),
            None => Err(ErrorKind::BadHeader { header: "Content-Length", why: "not a number" }),
        };
    }
    Ok(None)
}

/// `Method SP Request-URI SP SIP-Version` with exactly one SP between elements (RFC 3261 §7.1).
fn request_line(head: &SipStr, line: &str) -> Result<(Method, Uri), ErrorKind> {
    const SPACING: ErrorKind = ErrorKind::BadRequestLine("elements must be separated by exactly one space");
    let sp1 = text::find(line, b' ').ok_or(SPACING)?;
    let (method, rest) = (&line[..sp1], &line[sp1 + 1..]);
    let sp2 = text::find(rest, b' ').ok_or(SPACING)?;
    let (uri, version) = (&rest[..sp2], &rest[sp2 + 1..]);
    if text::find(version, b' ').is_some() {
        return Err(SPACING);
    }
    if !text::is_token(method) {
        return Err(ErrorKind::BadRequestLine("bad method"));
    }
    if version != "SIP/2.0" {
        return Err(if is_sip_version(version) {
            ErrorKind::Version
        } else {
            ErrorKind::BadRequestLine("bad SIP version")
        });
    }
    let parsed = Uri::parse_in(head, uri).map_err(ErrorKind::BadRequestUri)?;
    if parsed.as_sip().is_some_and(|u| u.headers.is_some()) {
        return Err(ErrorKind::BadRequestUri("headers are not allowed in a Request-URI"));
    }
    let method = Method::known(method).unwrap_or_else(|| Method::Extension(sub(head, method)));
    Ok((method, parsed))
}

fn is_sip_version(v: &str) -> bool {
    let Some(num) = v.get(..4).filter(|p| p.eq_ignore_ascii_case("SIP/")).map(|_| &v[4..]) else { return false };
    let mut it = num.splitn(2, '.');
    let ok = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    ok(it.next()) && ok(it.next())
}

/// `SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 §7.2).
fn status_line(head: &SipStr, line: &str) -> Result<(u16, SipStr), ErrorKind> {
    let rest = line.strip_prefix("SIP/2.0 ").ok_or_else(|| {
        let v = line.split(' ').next().unwrap_or("");
        if is_sip_version(v) { ErrorKind::Version } else { ErrorKind::BadStatusLine("bad version") }
    })?;
    let (code, reason) = rest.split_at_checked(3).ok_or(ErrorKind::BadStatusLine("bad status code"))?;
    let &[a, b, c] = code.as_bytes() else { return Err(ErrorKind::BadStatusLine("bad status code")) };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return Err(ErrorKind::BadStatusLine("bad status code"));
    }
    let reason = reason.strip_prefix(' ').ok_or(ErrorKind::BadStatusLine("bad status code"))?;
    let status = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    if !(100..700).contains(&status) {
        return Err(ErrorKind::BadStatusLine("status code out of range"));
    }
    Ok((status, sub(head, reason)))
}

/// Joins a folded header value: each line break with its white space becomes one SP.
fn unfold(first: &str, cont: Vec<&str>) -> SipStr {
    let mut s = String::with_capacity(first.len() + cont.iter().map(|c| c.len() + 1).sum::<usize>());
    s.push_str(first);
    for c in cont {
        let c = trim_lws(c);
        if c.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(c);
    }
    SipStr::from(s)
}

/// Header-section line iterator: lines end in CRLF (a bare LF is tolerated).
struct Lines<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<&'a str> {
        if self.pos >= self.s.len() {
            return None;
        }
        let rest = &self.s[self.pos..];
        let (line, adv) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += adv;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// Continuation lines (starting with SP or HTAB) after the current line, if any.
    #[inline]
    fn continuation(&mut self) -> Option<Vec<&'a str>> {
        let b = self.s.as_bytes();
        if !matches!(b.get(self.pos), Some(b' ' | b'\t')) {
            return None;
        }
        let mut out = Vec::new();
        while matches!(b.get(self.pos), Some(b' ' | b'\t')) {
            match self.next_line() {
                Some(l) => out.push(l),
                None => break,
            }
        }
        Some(out)
    }
}
