//! Input that cannot be taken as it is: a stream that can no longer be framed (answered, then
//! closed) and a malformed message (answered as the parser says, or dropped), each answered
//! statelessly the way it came.

use bytes::Bytes;
use sambung_sip::{FrameError, HeaderName, Message, ParseError, Response, SipStr};
use tracing::debug;

use super::Pbx;
use crate::io::{Inbound, Transmit};
use crate::sip::insert;

impl Pbx {
    /// Answers a stream that could not be framed (RFC 3261 §18.3, RFC 4475 §3.1.2.3, §3.3.9),
    /// then has its connection closed.
    pub(super) fn on_framing_error(&mut self, inbound: &Inbound, error: FrameError) {
        let reason = match error {
            FrameError::TooLarge => "Message Too Large",
            FrameError::BadContentLength => "Bad Content-Length",
            FrameError::MultipleContentLength => "Multiple Content-Length Headers",
        };
        let response = match Message::parse(inbound.bytes.clone()) {
            Ok(Message::Request(request)) => Some(request.reply(error.status(), reason)),
            Ok(Message::Response(_)) => None,
            Err(e) => e.error_response().map(|mut r| {
                r.status = error.status();
                r.reason = SipStr::from_static(reason);
                r
            }),
        };
        debug!(remote = %inbound.remote, %error, answered = response.is_some(), "closing unframeable stream");
        match response {
            Some(response) => self.send_stateless(inbound, response, true),
            None => self.out.transmit(back(inbound, Bytes::new(), true)),
        }
        if let Some(conn) = inbound.conn {
            self.sip.disconnected(conn);
        }
    }

    /// A malformed message: answer a request as the parser says, drop anything else.
    pub(super) fn malformed(&mut self, inbound: &Inbound, error: &ParseError) {
        match error.error_response() {
            Some(response) => {
                debug!(remote = %inbound.remote, transport = %inbound.transport, %error, status = response.status, "malformed request");
                self.send_stateless(inbound, response, false);
            }
            None => {
                debug!(remote = %inbound.remote, transport = %inbound.transport, %error, "malformed message dropped")
            }
        }
    }

    /// Queues `response` back the way its request came (RFC 3261 §18.2.2, RFC 3581 §4).
    fn send_stateless(&mut self, inbound: &Inbound, mut response: Response, close: bool) {
        insert(&mut response, HeaderName::Server, self.sip.capabilities.server.clone());
        let bytes = Message::Response(response).to_bytes();
        self.out.transmit(back(inbound, bytes, close));
    }
}

/// Bytes going back the way `inbound` came.
fn back(inbound: &Inbound, bytes: Bytes, close: bool) -> Transmit {
    Transmit {
        transport: inbound.transport.clone(),
        local: (inbound.conn.is_none()).then_some(inbound.local),
        remote: inbound.remote,
        conn: inbound.conn,
        bytes,
        close,
    }
}
