//! WebRTC legs: a browser reached over ICE, DTLS-SRTP, rtcp-mux and BUNDLE, on str0m.
//!
//! A browser speaks only WebRTC's profile (`UDP/TLS/RTP/SAVPF`, RFC 8829): one UDP flow for
//! every stream (BUNDLE, RFC 8843; RTP and RTCP on one port, RFC 5761), keys from a DTLS
//! handshake (RFC 5763/5764) instead of SDES, and ICE connectivity checks before anything
//! flows (RFC 8445). The server is an ICE-lite agent (§2.5) with one host candidate per leg, the
//! relay's address and port, so the browser always controls ICE. str0m does ICE, DTLS, SRTP and
//! RTCP in its own sans-IO [`Rtc`]; this module gives it our SDP, our payload types and
//! our clock, and hands back plain RTP:
//!
//! - [`WebRtcIdentity`]: the server's DTLS certificate and its `a=fingerprint`, made once;
//! - [`RemoteWebRtc`]: what a browser's description says (ICE credentials, fingerprint, DTLS
//!   role, each `m=` line's mid, codecs, header extensions and SSRCs);
//! - [`WebRtcPlan`]: call control's side, plain data: our answer to a browser's offer
//!   ([`WebRtcPlan::answer`]) or our offer to one ([`WebRtcPlan::offer`],
//!   [`WebRtcPlan::accept_answer`]), and the descriptions that say it;
//! - [`WebRtcLeg::new`]: the media runtime's side, the leg that speaks a plan;
//!   [`WebRtcLeg::receive`] (a datagram from the leg's socket), [`WebRtcLeg::write_rtp`]
//!   (a packet for the browser, in the clear), [`WebRtcLeg::handle_timeout`] and
//!   [`WebRtcLeg::poll`] for what to send, what arrived and when to call again.
//!
//! Time enters only as `now`. The DTLS role follows the answer (RFC 5763 §5): an offer says
//! `actpass`; answering one we are `passive` (the browser starts the handshake); answering
//! ours the browser picks, and we take the other role.

use std::fmt;
use std::time::Instant;

use str0m::RtcConfig;
use str0m::config::DtlsCert;
use str0m::rtp::Extension;

mod leg;
mod plan;
pub mod rate;
mod remote;
#[cfg(test)]
mod tests;

#[cfg(test)]
use leg::extend_seq;
pub use leg::{RtpFields, WebRtcLeg, WebRtcOutput};
#[cfg(test)]
use plan::credentials;
pub use plan::{PlannedStream, WebRtcPlan};
pub use remote::{Format, RemoteMedia, RemoteWebRtc, Setup, carried, default_formats, is_webrtc};

/// The header extensions we take part in, by URI: the mid (BUNDLE demultiplexing, RFC 8843
/// §14) and the audio level (RFC 6464, for active speakers).
const EXTENSIONS: [Extension; 2] = [Extension::RtpMid, Extension::AudioLevel];

/// Errors of a WebRTC leg. Datagrams never cause one: bad ones are dropped by str0m.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebRtcError {
    #[error("not a WebRTC description: {0}")]
    NotWebRtc(&'static str),
    #[error("the description has no usable media stream")]
    NoMedia,
    #[error("bad a=fingerprint: {0}")]
    Fingerprint(String),
    #[error("no DTLS certificate could be made")]
    Certificate,
    #[error("the answer does not match our offer: {0}")]
    Mismatch(&'static str),
    #[error("no media stream {0} on this leg")]
    NoSuchStream(usize),
    #[error("WebRTC: {0}")]
    Rtc(String),
}

impl From<str0m::RtcError> for WebRtcError {
    fn from(error: str0m::RtcError) -> WebRtcError {
        WebRtcError::Rtc(error.to_string())
    }
}

/// The server's DTLS identity: one self-signed certificate for every WebRTC leg (RFC 8827 §6.5
/// lets a server reuse one), and the `a=fingerprint` value it shows.
#[derive(Clone)]
pub struct WebRtcIdentity {
    cert: DtlsCert,
    fingerprint: String,
}

impl fmt::Debug for WebRtcIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRtcIdentity").field("fingerprint", &self.fingerprint).finish()
    }
}

impl WebRtcIdentity {
    /// Makes a new certificate (ECDSA P-256, through aws-lc-rs) and reads its SHA-256
    /// fingerprint.
    pub fn generate(now: Instant) -> Result<WebRtcIdentity, WebRtcError> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider.dtls_provider.generate_certificate().ok_or(WebRtcError::Certificate)?;
        let mut rtc = RtcConfig::new().set_dtls_cert(cert.clone()).build(now);
        let fingerprint = rtc.direct_api().local_dtls_fingerprint().to_string();
        Ok(WebRtcIdentity { cert, fingerprint })
    }

    /// `sha-256 AB:CD:...`, as `a=fingerprint` carries it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}
