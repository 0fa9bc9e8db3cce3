//! Media sessions: what signalling tells the media runtime about each leg of a call.
//!
//! [`Peer`] is where a leg receives its media, from its SDP and its signalling source;
//! [`LegConfig`] is how the leg's packets are handled beyond relaying (SRTP keys, codec, DTMF
//! events).

use std::net::{IpAddr, SocketAddr};

use crate::negotiate::{EventFormat, Negotiated};
use crate::offer_answer::remote_media;
use crate::sdes::SdesCrypto;
use crate::sdp::{MediaDescription, SessionDescription};

/// What signalling says about one leg's stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Where the leg's SDP says it receives RTP (`c=` and the `m=` port).
    pub rtp: Option<SocketAddr>,
    /// Where it receives RTCP (`a=rtcp`, RFC 3605, else the RTP port + 1).
    pub rtcp: Option<SocketAddr>,
    /// The source IP of the leg's SIP messages: behind a NAT, where its media comes from.
    pub signalling_ip: Option<IpAddr>,
}

impl Peer {
    /// The peer that `media` (the leg's `m=` line in `sdp`) and the leg's signalling source
    /// describe. A disabled stream or a host name leaves only the signalling IP to latch to.
    pub fn from_sdp(sdp: &SessionDescription, media: &MediaDescription, signalling_ip: Option<IpAddr>) -> Peer {
        let remote = remote_media(sdp, media);
        Peer { rtp: remote.map(|r| r.rtp), rtcp: remote.map(|r| r.rtcp), signalling_ip }
    }
}

/// How one leg of a stream is handled beyond relaying: its SRTP keys, its codec when the
/// stream is transcoded, and the payload types of its DTMF events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegConfig {
    /// The key the leg encrypts with: its packets are decrypted with it.
    pub srtp_in: Option<SdesCrypto>,
    /// Our key toward the leg: what it is sent is encrypted with it.
    pub srtp_out: Option<SdesCrypto>,
    /// The leg's codec (used when the stream is transcoded).
    pub format: Option<Negotiated>,
    /// The telephone-event formats the leg may send (RFC 4733): read into key events.
    pub events: Vec<EventFormat>,
}
