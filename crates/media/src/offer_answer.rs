//! Offer/answer helpers for a back-to-back user agent that relays media (RFC 3264).
//!
//! The B2BUA hands each leg a description of its own: the other leg's offer or answer with the
//! relay's address and ports in place of the far end's ([`rewrite_for_relay`]). Codecs, formats,
//! crypto, direction and every other attribute pass through, so the two ends negotiate with each
//! other as if the relay were not there (it forwards RTP without looking inside). Before it
//! relays, the B2BUA checks that the two ends can talk at all ([`has_common_codec`]); it reads
//! where each end said it receives ([`remote_media`]) to prime the relay's latching, and notices
//! holds ([`is_hold`]).

use std::net::{IpAddr, SocketAddr};

use crate::sdp::{Codec, Connection, Direction, MediaDescription, Rtcp, SessionDescription};

/// Rewrites `sdp` so that its media flows through the relay at `addr`.
///
/// `ports[i]` is the relay's RTP port for the `i`-th `m=` line; its RTCP port is `ports[i] + 1`
/// (RFC 3550 §11). Changes, and only these:
/// - every `c=` line (session and media level) carries `addr` (RFC 8866 §5.7); a media section
///   that relied on a missing session-level `c=` gets its own;
/// - each `m=` port becomes `ports[i]`, and a layered `/<count>` is dropped (one port pair per
///   stream); declined streams (port 0, RFC 3264 §6) stay declined, and so does any stream
///   without a relay port or over TCP (RFC 4145), which a UDP relay cannot carry;
/// - `a=rtcp` (RFC 3605) names `ports[i] + 1` (and `addr` if it named an address); declined
///   streams lose it, so no address of the far end leaks;
/// - ICE attributes (RFC 8839) are removed: the relay's address is the only candidate;
/// - `o=`'s version is incremented when anything changed (RFC 3264 §8), so the same input gives
///   the same output and an unchanged re-offer stays unchanged.
pub fn rewrite_for_relay(sdp: &SessionDescription, addr: IpAddr, ports: &[u16]) -> SessionDescription {
    let connection = Connection::new(addr);
    let mut out = sdp.clone();
    if let Some(session) = &mut out.connection {
        *session = connection.clone();
    }
    let session_level = out.connection.is_some();
    out.attributes.retain(|a| !a.is_ice());
    for (i, media) in out.media.iter_mut().enumerate() {
        let port = match ports.get(i) {
            Some(&port) if media.port != 0 && !media.proto.is_tcp() => port,
            _ => 0,
        };
        media.port = port;
        media.port_count = None;
        if !media.connections.is_empty() || !session_level {
            media.connections = vec![connection.clone()];
        }
        media.remove_ice();
        if port == 0 {
            media.attributes.retain(|a| a.name != "rtcp");
        } else {
            for attribute in media.attributes.iter_mut().filter(|a| a.name == "rtcp") {
                let named_address = attribute.value.as_deref().and_then(|v| Rtcp::parse(v).ok()).map(|r| r.connection);
                let rtcp = Rtcp {
                    port: port.saturating_add(1),
                    connection: named_address.flatten().map(|_| connection.clone()),
                };
                *attribute = rtcp.to_attribute();
            }
        }
    }
    if out != *sdp {
        out.origin.session_version = sdp.origin.session_version.wrapping_add(1);
    }
    out
}

/// The codecs of `offer` that `answer` also lists (same encoding, clock rate and channels,
/// whatever the payload type numbers: RFC 3264 §6.1 lets them differ), in the offer's order.
/// Auxiliary formats (telephone-event, CN ...) are included; see [`Codec::is_auxiliary`].
pub fn common_codecs(offer: &MediaDescription, answer: &MediaDescription) -> Vec<Codec> {
    let theirs = answer.codecs();
    offer.codecs().into_iter().filter(|codec| theirs.iter().any(|other| codec.same_format(other))).collect()
}

/// True when the two media sections can carry media between each other: both enabled, the same
/// media type, and a common codec that is not auxiliary (for RTP), or a common format (for
/// other protocols, such as T.38's `udptl`).
pub fn streams_compatible(a: &MediaDescription, b: &MediaDescription) -> bool {
    if a.is_disabled() || b.is_disabled() || a.media != b.media {
        return false;
    }
    if a.proto.is_rtp() && b.proto.is_rtp() {
        common_codecs(a, b).iter().any(|codec| !codec.is_auxiliary())
    } else {
        a.formats.iter().any(|format| b.formats.contains(format))
    }
}

/// False when the two descriptions share no codec, so a relay without transcoding cannot
/// connect them and the B2BUA answers `488 Not Acceptable Here` (RFC 3261 §21.4.26).
///
/// `m=` lines are compared pairwise by position (RFC 3264 §6); one compatible pair is enough
/// ([`streams_compatible`]). A description that offers no enabled stream (as in third-party
/// call control, RFC 4317 §5.1) has nothing to disagree about: the answer is true.
pub fn has_common_codec(a: &SessionDescription, b: &SessionDescription) -> bool {
    if a.media.iter().all(MediaDescription::is_disabled) {
        return true;
    }
    a.media.iter().zip(&b.media).any(|(a, b)| streams_compatible(a, b))
}

/// Where an endpoint said it receives one stream (RFC 3264 §5.1, RFC 3605, RFC 5761).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteMedia {
    pub rtp: SocketAddr,
    /// From `a=rtcp`, else the RTP port + 1 (RFC 3550 §11); equal to `rtp` with `rtcp-mux`.
    pub rtcp: SocketAddr,
    /// `a=rtcp-mux`: the endpoint is willing to receive RTCP on the RTP port (RFC 5761 §5.1.1).
    pub rtcp_mux: bool,
}

/// Where the endpoint that wrote `sdp` receives `media`, or `None` when the stream is disabled
/// or its address is not an IP literal. An unspecified address (`0.0.0.0`, hold in the RFC 2543
/// style) is returned as is: the relay sends nothing there but still knows the stream.
pub fn remote_media(sdp: &SessionDescription, media: &MediaDescription) -> Option<RemoteMedia> {
    if media.is_disabled() {
        return None;
    }
    let ip = sdp.connection_for(media)?.ip()?;
    let rtp = SocketAddr::new(ip, media.port);
    let rtcp_mux = media.rtcp_mux();
    let rtcp = match media.rtcp() {
        _ if rtcp_mux => rtp,
        Some(rtcp) => SocketAddr::new(rtcp.connection.and_then(|c| c.ip()).unwrap_or(ip), rtcp.port),
        None => SocketAddr::new(ip, media.port.saturating_add(1)),
    };
    Some(RemoteMedia { rtp, rtcp, rtcp_mux })
}

/// [`remote_media`] for every `m=` line, in order.
pub fn remote_media_all(sdp: &SessionDescription) -> Vec<Option<RemoteMedia>> {
    sdp.media.iter().map(|media| remote_media(sdp, media)).collect()
}

/// True when the endpoint that wrote `sdp` puts `media` on hold: it will not receive
/// (`sendonly` or `inactive`, RFC 3264 §8.4, the session-level attribute applying when the
/// section has none) or its address is `0.0.0.0` (RFC 2543 style, still sent by some agents).
pub fn is_hold(sdp: &SessionDescription, media: &MediaDescription) -> bool {
    matches!(sdp.direction_for(media), Direction::SendOnly | Direction::Inactive)
        || sdp.connection_for(media).is_some_and(Connection::is_unspecified)
}

/// True when some enabled stream of `sdp` is on hold ([`is_hold`]).
pub fn any_hold(sdp: &SessionDescription) -> bool {
    sdp.media.iter().any(|media| !media.is_disabled() && is_hold(sdp, media))
}
