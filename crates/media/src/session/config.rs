//! What signalling tells a session about each leg: where it is ([`Peer`]) and how its packets
//! are handled ([`LegConfig`]; [`StreamConfig`] for the two legs of a relayed call at once).

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

    /// Where RTCP goes: `rtcp`, else the RTP port + 1 (RFC 3550 §11).
    pub fn rtcp_or_next(&self) -> Option<SocketAddr> {
        self.rtcp.or(self.rtp.map(|rtp| SocketAddr::new(rtp.ip(), rtp.port().saturating_add(1))))
    }
}

/// How one leg of a stream is handled beyond relaying: its SRTP keys, its codec when the
/// stream is transcoded or mixed, and the payload types of its DTMF events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegConfig {
    /// The key the leg encrypts with: its packets are decrypted with it.
    pub srtp_in: Option<SdesCrypto>,
    /// Our key toward the leg: what it is sent is encrypted with it.
    pub srtp_out: Option<SdesCrypto>,
    /// The leg's codec: set for both legs of a pair only when the stream is transcoded;
    /// required for a leg in a mix.
    pub format: Option<Negotiated>,
    /// The telephone-event formats the leg may send (RFC 4733): read into key events.
    pub events: Vec<EventFormat>,
    /// The leg takes keyframe requests by RTCP: its description lists `a=rtcp-fb` with `pli`
    /// or `ccm fir` (RFC 4585 §4.2, RFC 5104 §7.1). Without it a video phone is asked by SIP
    /// INFO (`picture_fast_update`, RFC 5168), which call control sends.
    pub rtcp_feedback: bool,
}

impl LegConfig {
    /// True when the leg's packets pass untouched: no keys and no events to read.
    pub fn is_plain(&self) -> bool {
        self.srtp_in.is_none() && self.srtp_out.is_none() && self.events.is_empty()
    }
}

/// How a stream of a two-leg relay is handled: plain relaying unless keys, events or
/// transcoding say otherwise. A thin wrapper over one [`LegConfig`] per leg.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamConfig {
    /// Leg A then leg B.
    pub legs: [LegConfig; 2],
    /// The legs use different codecs: audio is decoded and encoded again.
    pub transcode: bool,
}

impl StreamConfig {
    /// The two legs' configurations as [`super::MediaSession::configure`] takes them: without
    /// `transcode` the formats are left out, so the stream is relayed as it is.
    pub fn into_legs(self) -> [LegConfig; 2] {
        let transcode = self.transcode;
        self.legs.map(|mut leg| {
            if !transcode {
                leg.format = None;
            }
            leg
        })
    }
}
