//! Printing messages to wire form (RFC 3261 §7). Straight byte copies: no `fmt` machinery on
//! the hot path, and the exact length is computed first so the buffer grows once.

use crate::header::{HeaderName, Headers};
use crate::message::{Request, Response};
use crate::uri::{SipUri, Uri};
use bytes::{BufMut, Bytes, BytesMut};

/// The exact number of bytes [`request`] writes.
pub(crate) fn request_len(r: &Request) -> usize {
    r.method.as_str().len() + 1 + uri_len(&r.uri) + b" SIP/2.0\r\n".len() + headers_and_body_len(&r.headers, &r.body)
}

/// The exact number of bytes [`response`] writes.
pub(crate) fn response_len(r: &Response) -> usize {
    b"SIP/2.0 ".len()
        + num_len(u32::from(r.status))
        + 1
        + r.reason.len()
        + 2
        + headers_and_body_len(&r.headers, &r.body)
}

pub(crate) fn request(r: &Request, buf: &mut BytesMut) {
    buf.reserve(request_len(r));
    buf.put_slice(r.method.as_str().as_bytes());
    buf.put_u8(b' ');
    uri(&r.uri, buf);
    buf.put_slice(b" SIP/2.0\r\n");
    headers_and_body(&r.headers, &r.body, buf);
}

pub(crate) fn response(r: &Response, buf: &mut BytesMut) {
    buf.reserve(response_len(r));
    buf.put_slice(b"SIP/2.0 ");
    put_num(buf, u32::from(r.status));
    buf.put_u8(b' ');
    buf.put_slice(r.reason.as_bytes());
    buf.put_slice(b"\r\n");
    headers_and_body(&r.headers, &r.body, buf);
}

fn headers_and_body_len(headers: &Headers, body: &Bytes) -> usize {
    let mut n = 2 + body.len();
    let mut has_length = false;
    for h in headers.iter() {
        has_length |= h.name == HeaderName::ContentLength;
        n += h.name.as_str().len() + 2 + h.value.len() + 2;
    }
    if !has_length {
        n += b"Content-Length: ".len() + num_len(body.len() as u32) + 2;
    }
    n
}

fn headers_and_body(headers: &Headers, body: &Bytes, buf: &mut BytesMut) {
    let mut has_length = false;
    for h in headers.iter() {
        has_length |= h.name == HeaderName::ContentLength;
        buf.put_slice(h.name.as_str().as_bytes());
        buf.put_slice(b": ");
        buf.put_slice(h.value.as_bytes());
        buf.put_slice(b"\r\n");
    }
    if !has_length {
        // Required on streams (RFC 3261 §18.3); harmless on datagrams.
        buf.put_slice(b"Content-Length: ");
        put_num(buf, body.len() as u32);
        buf.put_slice(b"\r\n");
    }
    buf.put_slice(b"\r\n");
    buf.put_slice(body);
}

fn uri_len(u: &Uri) -> usize {
    match u {
        Uri::Sip(s) => sip_uri_len(s),
        Uri::Other { scheme, rest } => scheme.len() + 1 + rest.len(),
    }
}

fn sip_uri_len(u: &SipUri) -> usize {
    let mut n = if u.secure { 5 } else { 4 } + u.host.as_str().len();
    if let Some(user) = &u.user {
        n += user.len() + 1;
        if let Some(pw) = &u.password {
            n += 1 + pw.len();
        }
    }
    if let Some(p) = u.port {
        n += 1 + num_len(u32::from(p));
    }
    for p in u.params.iter() {
        n += 1 + p.name.len();
        if let Some(v) = &p.value {
            n += 1 + v.len();
        }
    }
    if let Some(h) = &u.headers {
        n += 1 + h.len();
    }
    n
}

pub(crate) fn uri(u: &Uri, buf: &mut BytesMut) {
    match u {
        Uri::Sip(s) => sip_uri(s, buf),
        Uri::Other { scheme, rest } => {
            buf.put_slice(scheme.as_bytes());
            buf.put_u8(b':');
            buf.put_slice(rest.as_bytes());
        }
    }
}

fn sip_uri(u: &SipUri, buf: &mut BytesMut) {
    buf.put_slice(if u.secure { b"sips:" } else { b"sip:" });
    if let Some(user) = &u.user {
        buf.put_slice(user.as_bytes());
        if let Some(pw) = &u.password {
            buf.put_u8(b':');
            buf.put_slice(pw.as_bytes());
        }
        buf.put_u8(b'@');
    }
    buf.put_slice(u.host.as_str().as_bytes());
    if let Some(p) = u.port {
        buf.put_u8(b':');
        put_num(buf, u32::from(p));
    }
    for p in u.params.iter() {
        buf.put_u8(b';');
        buf.put_slice(p.name.as_bytes());
        if let Some(v) = &p.value {
            buf.put_u8(b'=');
            buf.put_slice(v.as_bytes());
        }
    }
    if let Some(h) = &u.headers {
        buf.put_u8(b'?');
        buf.put_slice(h.as_bytes());
    }
}

/// Decimal digits of `n`.
fn num_len(mut n: u32) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

fn put_num(buf: &mut BytesMut, mut n: u32) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use crate::Message;
    use bytes::Bytes;

    #[test]
    fn computed_length_is_exact() {
        let raw = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
                   To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\nbody";
        let m = Message::parse(Bytes::from_static(raw.as_bytes())).unwrap();
        let Message::Response(r) = &m else { panic!() };
        assert_eq!(super::response_len(r), m.to_bytes().len());
        let raw = "INVITE sips:u:p@[::1]:5061;lr;x=y SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
                   From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 2\r\n\r\nab";
        let m = Message::parse(Bytes::from_static(raw.as_bytes())).unwrap();
        let Message::Request(r) = &m else { panic!() };
        assert_eq!(super::request_len(r), raw.len());
        assert_eq!(m.to_bytes(), raw.as_bytes());
    }
}
