//! Media anchoring for calls: each leg's SDP is rewritten to the relay's address and that
//! leg's ports, and the relay learns where each end said it receives (RFC 3264 offer/answer
//! through a B2BUA, RFC 7092 §3.1.3).

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use sambung_media::offer_answer::{has_common_codec, rewrite_for_relay};
use sambung_media::sdp::SessionDescription;
use sambung_sip::transaction::Peer;

use super::Side;
use crate::core::Core;
use crate::media::{Leg, MAX_STREAMS, MediaRelay, Peer as MediaPeer, RelaySession};

/// Why a description could not be anchored.
#[derive(Debug, thiserror::Error)]
pub(super) enum MediaFailure {
    #[error("malformed session description: {0}")]
    BadSdp(String),
    #[error("no relay ports: {0}")]
    Relay(#[from] crate::media::MediaError),
    #[error("the two ends share no codec")]
    NoCommonCodec,
}

impl MediaFailure {
    /// The status that answers the request or ends the call (RFC 3261 §21.4.26, §21.5.4).
    pub(super) fn status(&self) -> (u16, &'static str) {
        match self {
            MediaFailure::BadSdp(_) => (400, "Bad Session Description"),
            MediaFailure::Relay(_) => (503, "No Media Ports"),
            MediaFailure::NoCommonCodec => (488, "Not Acceptable Here"),
        }
    }
}

fn leg(side: Side) -> Leg {
    match side {
        Side::A => Leg::A,
        Side::B => Leg::B,
    }
}

/// Anchors `body`, a description that came from `from`, for the other leg. Allocates the
/// relay session on first use. Without a relay (unit tests of signalling) the body passes
/// unchanged.
pub(super) fn anchor(
    relay: Option<&MediaRelay>,
    ip: IpAddr,
    name: &str,
    session: &mut Option<RelaySession>,
    from: Side,
    body: &Bytes,
    signalling_ip: IpAddr,
) -> Result<Bytes, MediaFailure> {
    let Some(relay) = relay else { return Ok(body.clone()) };
    let sdp = SessionDescription::parse(body).map_err(|e| MediaFailure::BadSdp(e.to_string()))?;
    if session.is_none() {
        *session = Some(relay.allocate(name, sdp.media.len().clamp(1, MAX_STREAMS), ip)?);
    }
    let Some(session) = session.as_ref() else { return Ok(body.clone()) };
    for (i, media) in sdp.media.iter().enumerate().take(session.streams()) {
        let _ = session.set_peer(leg(from), i, MediaPeer::from_sdp(&sdp, media, Some(signalling_ip)));
    }
    let rewritten = rewrite_for_relay(&sdp, session.local_ip(), session.leg_ports(leg(from).other()));
    Ok(Bytes::from(rewritten.to_bytes()))
}

/// RFC 3264 §6: an answer must share a codec with its offer; transcoding comes later, so a
/// pair that shares none cannot be joined.
pub(super) fn check_answer(offer: &Bytes, answer: &Bytes) -> Result<(), MediaFailure> {
    let (Ok(offer), Ok(answer)) = (SessionDescription::parse(offer), SessionDescription::parse(answer)) else {
        return Ok(()); // a malformed one is refused by `anchor`
    };
    if has_common_codec(&offer, &answer) { Ok(()) } else { Err(MediaFailure::NoCommonCodec) }
}

impl Core {
    /// The relay the calls use (set by the runtime; unit tests of signalling run without).
    pub fn set_media_relay(&mut self, relay: MediaRelay) {
        self.media = Some(relay);
    }

    /// The address written into SDP for media toward `peer`: the configured media address,
    /// else our signalling address toward it.
    pub(super) fn media_ip(&self, peer: &Peer) -> IpAddr {
        if let Some(ip) = self.media_address {
            return ip;
        }
        self.local_address(peer).0.ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}
