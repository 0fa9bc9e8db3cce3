//! The messages and the parse + print paths measured by the benchmark: Sambung's parser and two
//! baselines, `rsip` 0.4 and `ezk-sip-types` 0.6. Each path takes the received bytes, parses
//! them into that library's message model and prints the model back to bytes, the way a proxy
//! or B2BUA handles every message it relays.

use bytes::{BufMut, Bytes, BytesMut};

/// A REGISTER with digest credentials (the second REGISTER of a registration, answering a 401).
pub fn register() -> Bytes {
    message(
        "REGISTER sip:sambung.example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.23:5060;rport;branch=z9hG4bK-524287-1---7e1f2a9c3b8d4e60\r\n\
         Max-Forwards: 70\r\n\
         Contact: <sip:alice@198.51.100.23:5060;rinstance=9f8e7d6c5b4a3921;transport=UDP>;+sip.instance=\"<urn:uuid:0f8d3c1e-7b2a-4e69-9c5d-8a1b2c3d4e5f>\";reg-id=1;expires=3600\r\n\
         To: \"Alice Liddell\" <sip:alice@sambung.example.net>\r\n\
         From: \"Alice Liddell\" <sip:alice@sambung.example.net>;tag=3c9a1f72\r\n\
         Call-ID: ZDU2YTljMTJmODc0NjRiNWE0ZTIwMzJiNjE3NGRhNjk.\r\n\
         CSeq: 2 REGISTER\r\n\
         Expires: 3600\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
         Supported: replaces, outbound, path, gruu\r\n\
         User-Agent: Zoiper rv2.10.19.9\r\n\
         Authorization: Digest username=\"alice\",realm=\"sambung.example.net\",nonce=\"Z3J5cHRpYy1ub25jZS0xNzM3NDU2Nzg5LWExYjJjM2Q0\",uri=\"sip:sambung.example.net\",response=\"8d8f3a5e2b7c9d1f4a6e8b0c2d4f6a8e\",cnonce=\"0a4f113b9c7e2d51\",nc=00000001,qop=auth,algorithm=MD5,opaque=\"b1d8e4c2a7f3\"\r\n\
         Allow-Events: presence, kpml, talk\r\n",
        "",
    )
}

/// An INVITE with a ~500-byte SDP offer.
pub fn invite() -> Bytes {
    message(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/TLS client.atlanta.example.com:5061;branch=z9hG4bK74bf9c1a;rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sips:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
         To: Bob <sips:bob@biloxi.example.com>\r\n\
         Call-ID: 3848276298220188511@atlanta.example.com\r\n\
         CSeq: 31862 INVITE\r\n\
         Contact: <sips:alice@client.atlanta.example.com:5061;transport=tls;ob>\r\n\
         Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE, PRACK\r\n\
         Supported: replaces, timer, 100rel, norefersub\r\n\
         Session-Expires: 1800;refresher=uac\r\n\
         Min-SE: 90\r\n\
         User-Agent: Linphone/5.2.5 (belle-sip/5.2.4)\r\n\
         Content-Type: application/sdp\r\n",
        "v=0\r\n\
         o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n\
         s=Talk\r\n\
         c=IN IP4 192.0.2.101\r\n\
         t=0 0\r\n\
         a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n\
         a=ice-ufrag:8hhY\r\n\
         m=audio 49170 RTP/SAVP 96 0 8 101\r\n\
         a=rtpmap:96 opus/48000/2\r\n\
         a=fmtp:96 useinbandfec=1;minptime=10\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=rtcp-mux\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n\
         a=candidate:1 1 UDP 2130706431 192.0.2.101 49170 typ host\r\n\
         a=candidate:2 1 UDP 1694498815 203.0.113.4 61665 typ srflx raddr 192.0.2.101 rport 49170\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n",
    )
}

/// The 200 OK to an INVITE as the caller's edge proxy sees it: 4 Via values (the first line
/// holds two), 3 Record-Route values (the first line holds two), a Contact and an SDP answer.
pub fn ok() -> Bytes {
    message(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP proxy2.biloxi.example.com:5060;branch=z9hG4bK721e4.1;received=192.0.2.222, SIP/2.0/UDP proxy1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111\r\n\
         Via: SIP/2.0/TCP edge.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.101\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;rport=5060;branch=z9hG4bK74bf9c1a;received=198.51.100.7\r\n\
         Record-Route: <sip:proxy2.biloxi.example.com;lr>, <sip:proxy1.atlanta.example.com;lr;ftag=9fxced76sl>\r\n\
         Record-Route: <sip:edge.atlanta.example.com;transport=tcp;lr>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
         To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n\
         Call-ID: 3848276298220188511@atlanta.example.com\r\n\
         CSeq: 31862 INVITE\r\n\
         Contact: \"Bob\" <sip:bob@192.0.2.4:5060;transport=udp>;expires=3600\r\n\
         Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n\
         Supported: replaces, timer\r\n\
         Session-Expires: 1800;refresher=uac\r\n\
         Require: timer\r\n\
         Server: Sambung-Test/0.1\r\n\
         Content-Type: application/sdp\r\n",
        "v=0\r\n\
         o=bob 2808844564 2808844564 IN IP4 192.0.2.4\r\n\
         s=-\r\n\
         c=IN IP4 192.0.2.4\r\n\
         t=0 0\r\n\
         m=audio 3456 RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n",
    )
}

/// The three messages with their names.
pub fn messages() -> [(&'static str, Bytes); 3] {
    [("register", register()), ("invite", invite()), ("200ok", ok())]
}

fn message(head: &str, body: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(head.len() + body.len() + 32);
    b.put_slice(head.as_bytes());
    b.put_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    b.put_slice(body.as_bytes());
    b.freeze()
}

/// Sambung: [`sambung_sip::Message::parse`] then [`sambung_sip::Message::to_bytes`].
#[inline]
pub fn ours(buf: &Bytes) -> Bytes {
    let m = sambung_sip::Message::parse(buf.clone()).expect("ours parses");
    m.to_bytes()
}

/// rsip 0.4: `SipMessage::try_from(&[u8])` then `to_string()` (its `Into<Bytes>` does the same).
#[inline]
pub fn rsip(buf: &Bytes) -> String {
    let m = rsip::SipMessage::try_from(&buf[..]).expect("rsip parses");
    m.to_string()
}

/// An ezk-sip-types message: what ezk-sip-core's transport keeps of a received message.
#[derive(Debug)]
pub struct EzkMessage {
    pub line: ezk_sip_types::msg::MessageLine,
    pub headers: ezk_sip_types::Headers,
    pub body: Bytes,
}

/// ezk-sip-types 0.6 has no whole-message parser: this is the path ezk-sip-core's transport
/// takes (`PullParser` for the lines, `MessageLine` for the start line, `Line` per header into
/// `Headers`, Content-Length for the body), minus its copy of the input buffer.
pub fn ezk_parse(buf: &Bytes) -> Option<EzkMessage> {
    use ezk_sip_types::Headers;
    use ezk_sip_types::header::typed::ContentLength;
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;

    let mut parser = PullParser::new(buf, 0);
    let first = std::str::from_utf8(parser.next()?.ok()?).ok()?;
    let (_, line) = MessageLine::parse(buf)(first).ok()?;
    let mut headers = Headers::with_capacity(16);
    for item in &mut parser {
        let text = std::str::from_utf8(item.ok()?).ok()?;
        let (_, l) = Line::parse(buf, text).ok()?;
        headers.insert(l.name, l.value);
    }
    let head_end = parser.head_end();
    let body = match headers.get_named::<ContentLength>() {
        Ok(ContentLength(0)) => Bytes::new(),
        Ok(ContentLength(n)) if buf.len() >= head_end + n => buf.slice(head_end..head_end + n),
        Ok(_) => return None,
        Err(_) => buf.slice(head_end..),
    };
    Some(EzkMessage { line, headers, body })
}

/// Prints an [`EzkMessage`] the way ezk-sip-core's transport does: start line, headers, body.
pub fn ezk_print(m: &EzkMessage) -> Bytes {
    use ezk_sip_types::print::AppendCtx;
    use std::fmt::Write;
    let mut out = BytesMut::with_capacity(64 + m.headers.printed_len() + m.body.len());
    write!(out, "{}\r\n{}\r\n", m.line.default_print_ctx(), m.headers).expect("write to BytesMut");
    out.put_slice(&m.body);
    out.freeze()
}

/// ezk-sip-types 0.6: [`ezk_parse`] then [`ezk_print`].
#[inline]
pub fn ezk(buf: &Bytes) -> Bytes {
    ezk_print(&ezk_parse(buf).expect("ezk parses"))
}

/// Checks that every path really parses and prints each message: the output parses again with
/// the same parser, printing that gives the same bytes, and it is a complete message (start
/// line, body, and about the size of the input). Panics otherwise.
pub fn sanity_check() {
    for (name, msg) in messages() {
        let input = std::str::from_utf8(&msg).unwrap();
        let body_at = input.find("\r\n\r\n").unwrap() + 4;
        let (head, body) = input.split_at(body_at);
        let start_line = &input[..input.find("\r\n").unwrap()];
        let check = |who: &str, out: &[u8], again: &[u8]| {
            let out_s = std::str::from_utf8(out).unwrap();
            assert!(out_s.starts_with(start_line), "{who}/{name}: start line\n{out_s}");
            assert!(out_s.ends_with(body), "{who}/{name}: body\n{out_s}");
            let diff = out.len().abs_diff(msg.len());
            assert!(diff * 10 < head.len(), "{who}/{name}: printed {} bytes of {}\n{out_s}", out.len(), msg.len());
            assert_eq!(out, again, "{who}/{name}: printing its own output is not a fixed point");
            for h in ["Via", "Call-ID", "CSeq", "Content-Length"] {
                assert!(
                    out_s.to_ascii_lowercase().contains(&format!("\r\n{}:", h.to_ascii_lowercase())),
                    "{who}/{name}: {h}"
                );
            }
        };

        let a = ours(&msg);
        let parsed = sambung_sip::Message::parse(msg.clone()).unwrap();
        assert_eq!(sambung_sip::Message::parse(a.clone()).unwrap(), parsed, "ours/{name}: re-parse");
        assert_eq!(parsed.headers().len(), head.matches("\r\n").count() - 2, "ours/{name}: header count");
        check("ours", &a, &ours(&a));

        let r = rsip(&msg);
        let parsed = rsip::SipMessage::try_from(&msg[..]).unwrap();
        let again = rsip::SipMessage::try_from(r.as_bytes()).unwrap();
        assert_eq!(again, parsed, "rsip/{name}: re-parse");
        {
            use rsip::message::HasHeaders;
            assert_eq!(parsed.headers().iter().count(), head.matches("\r\n").count() - 2, "rsip/{name}: header count");
        }
        check("rsip", r.as_bytes(), rsip(&Bytes::from(r.clone())).as_bytes());

        let e = ezk(&msg);
        let parsed = ezk_parse(&msg).unwrap();
        assert_eq!(parsed.headers.iter().count(), head.matches("\r\n").count() - 2, "ezk/{name}: header count");
        assert_eq!(parsed.body.len(), body.len(), "ezk/{name}: body");
        check("ezk", &e, &ezk(&e));
    }
}
