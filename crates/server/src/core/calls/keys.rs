//! DTMF keys pressed during calls become one stream of key events, whatever carried them:
//! RFC 4733 telephone-events read by the relay ([`crate::media::KeyEvent`]) or SIP INFO with
//! `application/dtmf-relay` (or `application/dtmf`) read here. In-server applications (the
//! voicemail menu) consume the stream through [`Core::poll_key`]; the keys are also carried to
//! the other leg (the RTP events by the relay, the INFO by the B2BUA).

use sambung_sip::{HeaderName, Request};
use tracing::info;

use super::{CallId, Side};
use crate::core::Core;
use crate::media::{KeyEvent, Leg};

/// How a key press arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// An RFC 4733 telephone-event in the RTP stream.
    Rfc4733,
    /// A SIP INFO request (application/dtmf-relay).
    Info,
}

/// One key pressed on one leg of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallKey {
    pub call: CallId,
    /// The leg it was pressed on: `A` the caller, `B` the callee.
    pub side: Side,
    pub key: char,
    pub duration_ms: u32,
    pub source: KeySource,
}

/// Most key events kept for applications that have not taken them.
const QUEUE: usize = 256;

/// The key of an INFO body: `application/dtmf-relay` (`Signal=5\r\nDuration=160`) or
/// `application/dtmf` (the key alone). `None` for other bodies or a key that is not DTMF.
pub(super) fn info_key(request: &Request) -> Option<(char, u32)> {
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

impl Core {
    /// A key read by the relay from a call's RTP.
    pub fn on_key_event(&mut self, event: KeyEvent) {
        let Some(id) = event.call.strip_prefix("call-").and_then(|id| id.parse::<CallId>().ok()) else { return };
        if !self.calls.calls.contains_key(&id) {
            return;
        }
        let side = match event.leg {
            Leg::A => Side::A,
            Leg::B => Side::B,
        };
        self.key_pressed(id, side, event.key, event.duration_ms, KeySource::Rfc4733);
    }

    pub(super) fn key_pressed(&mut self, call: CallId, side: Side, key: char, duration_ms: u32, source: KeySource) {
        info!(call, side = ?side, key = %key, duration_ms, source = ?source, "key pressed");
        if self.calls.keys.len() >= QUEUE {
            self.calls.keys.pop_front();
        }
        self.calls.keys.push_back(CallKey { call, side, key, duration_ms, source });
        // The caller's keys drive the application answering the call.
        let to_app = self.calls.calls.get(&call).and_then(|c| c.app.as_ref()).is_some_and(|a| a.answered && !a.ended);
        if to_app && side == Side::A {
            self.app_requests.push_back(crate::core::AppRequest::Key { call, key });
        }
    }

    /// The next key pressed in a call, in order.
    pub fn poll_key(&mut self) -> Option<CallKey> {
        self.calls.keys.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(content_type: &str, body: &str) -> Request {
        let text = format!(
            "INFO sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:b@example.com>;tag=1\r\n\
             To: <sip:a@example.com>;tag=2\r\nCall-ID: x\r\nCSeq: 2 INFO\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match sambung_sip::Message::parse(bytes::Bytes::from(text)).unwrap() {
            sambung_sip::Message::Request(request) => request,
            other => panic!("not a request: {other:?}"),
        }
    }

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
