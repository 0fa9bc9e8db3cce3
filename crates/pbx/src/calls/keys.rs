//! DTMF keys a device sends by SIP INFO (`application/dtmf-relay` or `application/dtmf`); RFC
//! 4733 telephone-events are read by the media session, which hands them to an application
//! leg itself.

use sambung_sip::{HeaderName, Request};

/// The key of an INFO body: `application/dtmf-relay` (`Signal=5\r\nDuration=160`) or
/// `application/dtmf` (the key alone). `None` for other bodies or a key that is not DTMF.
pub(crate) fn info_key(request: &Request) -> Option<(char, u32)> {
    let content_type = request.headers.get(HeaderName::ContentType)?;
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let body = std::str::from_utf8(&request.body).ok()?;
    let (signal, duration) = if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        let mut signal = None;
        let mut duration = 250;
        for line in body.lines() {
            let Some((name, value)) = line.split_once('=') else { continue };
            match name.trim().to_ascii_lowercase().as_str() {
                "signal" => signal = value.trim().chars().next(),
                "duration" => duration = value.trim().parse().unwrap_or(duration),
                _ => {}
            }
        }
        (signal?, duration)
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        (body.trim().chars().next()?, 250)
    } else {
        return None;
    };
    let key = signal.to_ascii_uppercase();
    matches!(key, '0'..='9' | '*' | '#' | 'A'..='D').then_some((key, duration.min(60_000)))
}

/// An INFO of `content_type` carrying `body`, as a phone sends it in a call (for tests).
#[cfg(test)]
pub(crate) fn info_request(content_type: &str, body: &str) -> Request {
    let text = format!(
        "INFO sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:b@example.com>;tag=1\r\n\
         To: <sip:a@example.com>;tag=2\r\nCall-ID: x\r\nCSeq: 2 INFO\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    match sambung_sip::Message::parse(bytes::Bytes::from(text)) {
        Ok(sambung_sip::Message::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use info_request as info;

    #[test]
    fn dtmf_relay_bodies() {
        assert_eq!(info_key(&info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")), Some(('5', 160)));
        assert_eq!(info_key(&info("application/dtmf-relay", "Signal= #\r\n")), Some(('#', 250)));
        assert_eq!(info_key(&info("Application/DTMF", "*")), Some(('*', 250)));
        assert_eq!(info_key(&info("application/dtmf-relay", "Signal=x\r\n")), None);
        assert_eq!(info_key(&info("application/dtmf-relay", "Duration=100\r\n")), None);
        assert_eq!(info_key(&info("application/media_control+xml", "<x/>")), None);
    }
}
