//! What call control asks of the media runtime ([`MediaCommand`]) and what it learns back
//! ([`MediaEvent`]).
//!
//! Each call with media has one session in the runtime, named by the call's number. It starts
//! with two RTP legs, A (the caller) and B (the callee), each with one port pair per stream,
//! relayed to each other; [`MediaCommand::AttachApp`] turns B into an application inside the
//! server. Call control never waits for the runtime: it sends [`MediaCommand::Open`] and goes
//! on with the call when [`MediaEvent::Opened`] brings the ports its descriptions name.

use std::net::IpAddr;

use sambung_media::negotiate::Negotiated;
pub use sambung_media::session::{LegConfig, Peer};

use crate::calls::Side;

/// The media session of a call: the call's number.
pub type SessionId = u64;

/// A command for the media runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaCommand {
    /// Open a session of `streams` media streams (`m=` lines) with two RTP legs, A and B, each
    /// with a port pair per stream on `address`, relayed to each other. Answered with
    /// [`MediaEvent::Opened`] or [`MediaEvent::Failed`].
    Open { session: SessionId, streams: usize, address: IpAddr },
    /// Where a leg receives a stream and where its signalling comes from (after each of its
    /// descriptions): media goes there until the leg's own packets show where it is.
    SetPeer { session: SessionId, side: Side, stream: usize, peer: Peer },
    /// How a stream's packets are handled on each leg (A, then B): SRTP keys, the codec when
    /// the stream is transcoded, DTMF events to read.
    Configure { session: SessionId, stream: usize, legs: Box<[LegConfig; 2]> },
    /// Leg B becomes the application answering the call: it hears A and speaks to A in
    /// `format` (A's codec), as PCM at `rate` inside the server. The application itself is
    /// started by [`crate::AppRequest::Start`] with the same call number.
    AttachApp { session: SessionId, format: Negotiated, rate: u32 },
    /// Leg B is a device's again (the application answering connected its caller to one):
    /// what that device's description says comes next ([`MediaCommand::SetPeer`],
    /// [`MediaCommand::Configure`]).
    DetachApp { session: SessionId },
    /// Leg `side` is a browser's: the relay speaks WebRTC to it (ICE-lite, DTLS-SRTP, on the
    /// leg's first RTP port) as `plan` says, with the browser `remote` describes.
    WebRtc {
        session: SessionId,
        side: Side,
        plan: Box<sambung_media::webrtc::WebRtcPlan>,
        remote: Box<sambung_media::webrtc::RemoteWebRtc>,
    },
    /// The phone on the other side asked for a keyframe by SIP INFO: the relay asks leg
    /// `side` (a browser, by RTCP PLI).
    Keyframe { session: SessionId, side: Side },
    /// The party on `side` is put on hold by the other: it hears the music on hold, in
    /// `format` (its own codec, as its description lists it), until [`MediaCommand::Resume`].
    Hold { session: SessionId, side: Side, format: Negotiated },
    /// The call is taken off hold: its legs hear each other again.
    Resume { session: SessionId },
    /// Record the call from now on, as `name`: legs A and B speak `formats` (their codecs, A
    /// then B); the relay decodes both. With `notice`, both parties first hear that the call is
    /// recorded.
    Record { session: SessionId, formats: Box<[Negotiated; 2]>, name: String, notice: bool },
    /// The call is over: the session stops and its ports are freed.
    Close { session: SessionId },
}

/// What the media runtime tells call control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// The session is open: the RTP port of each stream on leg A, then on leg B (RTCP on each
    /// port + 1).
    Opened { session: SessionId, ports: Box<[Vec<u16>; 2]> },
    /// The session could not be opened (no free ports).
    Failed { session: SessionId, reason: String },
}

impl MediaEvent {
    /// The session (the call) it is about.
    pub fn session(&self) -> SessionId {
        match self {
            MediaEvent::Opened { session, .. } | MediaEvent::Failed { session, .. } => *session,
        }
    }
}
