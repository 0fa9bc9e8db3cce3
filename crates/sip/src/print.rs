//! Printing messages to wire form (RFC 3261 §7). Straight byte copies: no `fmt` machinery on
//! the hot path.

use crate::message::{Request, Response};
use crate::header::{HeaderName, Headers};
use crate::uri::{SipUri, Uri};
use bytes::{BufMut, Bytes, BytesMut};

pub(crate) fn request(r: &Request, buf: &mut BytesMut) {
    buf.reserve(256 + r.body.len());
    buf.put_slice(r.method.as_str().as_bytes());
    buf.put_u8(b' ');
    uri(&r.uri, buf);
    buf.put_slice(b" SIP/2.0\r\n");
    headers_and_body(&r.headers, &r.body, buf);
}

pub(crate) fn response(r: &Response, buf: &mut BytesMut) {
    buf.reserve(256 + r.body.len());
    buf.put_slice(b"SIP/2.0 ");
    put_num(buf, u32::from(r.status));
    buf.put_u8(b' ');
    buf.put_slice(r.reason.as_bytes());
    buf.put_slice(b"\r\n");
    headers_and_body(&r.headers, &r.body, buf);
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
