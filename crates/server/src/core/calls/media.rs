//! The media policy of calls: each leg's SDP is rewritten to the relay's address and that
//! leg's ports (RFC 3264 offer/answer through a B2BUA, RFC 7092 §3.1.3); each leg gets SRTP
//! or plain RTP on its own terms; and when the two ends share no codec the engine transcodes.
//!
//! [`CallMedia`] follows the offer/answer state of the call: a description from a leg is an
//! offer when none is pending, else the answer to the pending one (RFC 3264 §4). Whatever the
//! SIP message carrying it (INVITE, 183, 2xx, ACK, re-INVITE, UPDATE), the rules are:
//!
//! - **Security per leg.** A leg that offers `RTP/SAVP` with an SDES key (RFC 4568) gets SRTP,
//!   with our own key toward it; SDES keys travel in the SDP, so only over TLS signalling. A
//!   leg offering plain RTP gets it only if `[media] allow_plain_rtp` says so. Toward the
//!   callee, a device reached over TLS is offered SRTP, any other plain RTP (if allowed).
//!   Keys never cross from one leg to the other: the relay decrypts and re-encrypts.
//! - **Transcoding only when needed.** The first offer toward the other leg lists the
//!   offerer's codecs, then those the engine can transcode to ([`negotiate::widen_offer`]).
//!   An answer choosing one of the offerer's codecs is relayed untouched; one choosing an
//!   added codec makes the call transcoded, the offerer being answered with its own first
//!   codec the engine has. Later descriptions of a transcoded call are held to each leg's
//!   codec ([`negotiate::restrict`]).

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use sambung_media::codec::CodecKind;
use sambung_media::negotiate::{self, Negotiated};
use sambung_media::offer_answer::{rewrite_for_relay, streams_compatible};
use sambung_media::sdp::{Direction, MediaDescription, MediaType, Proto, SessionDescription};
use sambung_sip::transaction::Peer;

use super::Side;
use crate::core::Core;
use crate::media::keys::{self, SdesKey};
use crate::media::{Leg, LegConfig, MAX_STREAMS, MediaRelay, Peer as MediaPeer, RelaySession, StreamConfig};

/// Why a description could not be anchored.
#[derive(Debug, thiserror::Error)]
pub(super) enum MediaFailure {
    #[error("malformed session description: {0}")]
    BadSdp(String),
    #[error("no relay ports: {0}")]
    Relay(#[from] crate::media::MediaError),
    #[error("the two ends share no codec")]
    NoCommonCodec,
    #[error("SRTP keys (SDES) are accepted only over TLS")]
    KeysInClear,
    #[error("plain RTP is not allowed here")]
    PlainRtp,
    #[error("no crypto suite in common")]
    NoCryptoSuite,
}

impl MediaFailure {
    /// The status that answers the request or ends the call (RFC 3261 §21.4.26, §21.5.4).
    pub(super) fn status(&self) -> (u16, &'static str) {
        match self {
            MediaFailure::BadSdp(_) => (400, "Bad Session Description"),
            MediaFailure::Relay(_) => (503, "No Media Ports"),
            MediaFailure::NoCommonCodec => (488, "Not Acceptable Here"),
            MediaFailure::KeysInClear => (488, "SRTP Requires TLS"),
            MediaFailure::PlainRtp => (488, "SRTP Required"),
            MediaFailure::NoCryptoSuite => (488, "No Common Crypto Suite"),
        }
    }
}

fn leg(side: Side) -> Leg {
    match side {
        Side::A => Leg::A,
        Side::B => Leg::B,
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// What the call knows about one leg of one stream.
#[derive(Debug, Default)]
struct LegState {
    /// The leg uses SRTP.
    srtp: bool,
    /// The key we encrypt with toward the leg (made once, reused in every description).
    ours: Option<SdesKey>,
    /// The key the leg encrypts with.
    theirs: Option<SdesKey>,
    /// The leg's codec, once the call transcodes.
    format: Option<Negotiated>,
}

#[derive(Debug, Default)]
struct StreamState {
    legs: [LegState; 2],
    transcode: bool,
}

/// An offer waiting for its answer.
#[derive(Debug)]
struct Pending {
    from: Side,
    offer: SessionDescription,
    /// It is the call's first offer: codecs may be added for transcoding.
    initial: bool,
}

/// The media of one call: its relay session and the offer/answer state of both legs.
#[derive(Debug)]
pub(super) struct CallMedia {
    session: RelaySession,
    /// The address written into our descriptions.
    ip: IpAddr,
    streams: Vec<StreamState>,
    pending: Option<Pending>,
    negotiated_once: bool,
    allow_plain: bool,
    preferences: Vec<CodecKind>,
}

/// Where a description comes from or goes to, for the security rules.
#[derive(Clone, Copy, Debug)]
pub(super) struct LegTransport {
    /// Signalling on this leg is TLS (or secure WebSocket).
    pub secure: bool,
    /// The source IP of the leg's SIP messages (latching).
    pub signalling_ip: IpAddr,
}

impl LegTransport {
    pub(super) fn of(peer: &Peer) -> LegTransport {
        LegTransport { secure: is_secure(peer), signalling_ip: peer.addr.ip() }
    }

    pub(super) fn unknown() -> LegTransport {
        LegTransport { secure: false, signalling_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED) }
    }
}

/// True when SIP to and from `peer` is encrypted.
pub(super) fn is_secure(peer: &Peer) -> bool {
    matches!(peer.transport, sambung_sip::Transport::Tls | sambung_sip::Transport::Wss)
}

fn parse(body: &Bytes) -> Result<SessionDescription, MediaFailure> {
    SessionDescription::parse(body).map_err(|e| MediaFailure::BadSdp(e.to_string()))
}

fn carries_rtp(media: &MediaDescription) -> bool {
    !media.is_disabled() && media.proto.is_rtp() && !media.proto.is_tcp()
}

impl CallMedia {
    /// Allocates the relay for a call whose first description is `sdp`.
    pub(super) fn new(
        relay: &MediaRelay,
        name: &str,
        ip: IpAddr,
        sdp: &SessionDescription,
        allow_plain: bool,
        preferences: &[CodecKind],
    ) -> Result<CallMedia, MediaFailure> {
        let streams = sdp.media.len().clamp(1, MAX_STREAMS);
        let session = relay.allocate(name, streams, ip)?;
        Ok(CallMedia {
            session,
            ip,
            streams: (0..streams).map(|_| StreamState::default()).collect(),
            pending: None,
            negotiated_once: false,
            allow_plain,
            preferences: preferences.to_vec(),
        })
    }

    /// Takes a description from `from`: the answer to the pending offer, or a new offer.
    /// Returns what the other leg's side should get, before the per-destination touches of
    /// [`Self::for_leg`]: relay address, the other leg's ports, codecs decided.
    pub(super) fn take(
        &mut self,
        from: Side,
        body: &Bytes,
        transport: LegTransport,
        provisional: bool,
    ) -> Result<SessionDescription, MediaFailure> {
        let sdp = parse(body)?;
        match &self.pending {
            Some(pending) if pending.from != from => self.take_answer(from, sdp, transport, provisional),
            _ => self.take_offer(from, sdp, transport),
        }
    }

    fn take_offer(
        &mut self,
        from: Side,
        sdp: SessionDescription,
        transport: LegTransport,
    ) -> Result<SessionDescription, MediaFailure> {
        let to = from.other();
        let initial = !self.negotiated_once;
        for (i, media) in sdp.media.iter().enumerate().take(self.streams.len()) {
            self.accept_security(from, i, media, transport, None)?;
            let _ =
                self.session.set_peer(leg(from), i, MediaPeer::from_sdp(&sdp, media, Some(transport.signalling_ip)));
        }
        let mut out = rewrite_for_relay(&sdp, self.ip, self.session.leg_ports(leg(to)));
        for (i, media) in out.media.iter_mut().enumerate() {
            strip_crypto(media);
            let Some(stream) = self.streams.get(i) else { continue };
            if !carries_rtp(media) {
                continue;
            }
            if stream.transcode {
                if let Some(format) = &stream.legs[index(to)].format {
                    negotiate::restrict(media, format);
                }
            } else if initial {
                negotiate::widen_offer(media, &self.preferences);
            }
        }
        self.pending = Some(Pending { from, offer: sdp, initial });
        Ok(out)
    }

    /// Checks and records the security of `from`'s section `i`; with `answered_tag`, the
    /// section is an answer and its key must answer our offered tag.
    fn accept_security(
        &mut self,
        from: Side,
        i: usize,
        media: &MediaDescription,
        transport: LegTransport,
        answered_tag: Option<u32>,
    ) -> Result<(), MediaFailure> {
        if !carries_rtp(media) {
            return Ok(());
        }
        let offered = keys::from_media(media);
        let state = &mut self.streams[i].legs[index(from)];
        if media.proto.is_secure() || !offered.is_empty() {
            if !transport.secure {
                if media.proto.is_secure() {
                    return Err(MediaFailure::KeysInClear);
                }
                // Best-effort SRTP (keys on RTP/AVP) over clear signalling: plain RTP.
            } else {
                let theirs = match answered_tag {
                    Some(tag) => offered.into_iter().find(|k| k.tag == tag),
                    None => offered.into_iter().next(),
                };
                let Some(theirs) = theirs else { return Err(MediaFailure::NoCryptoSuite) };
                state.srtp = true;
                if state.ours.as_ref().is_none_or(|ours| ours.profile != theirs.profile || ours.tag != theirs.tag) {
                    state.ours = Some(keys::fresh(theirs.tag, theirs.profile));
                }
                state.theirs = Some(theirs);
                return Ok(());
            }
        }
        if !self.allow_plain {
            return Err(MediaFailure::PlainRtp);
        }
        state.srtp = false;
        state.theirs = None;
        Ok(())
    }

    fn take_answer(
        &mut self,
        from: Side,
        sdp: SessionDescription,
        transport: LegTransport,
        provisional: bool,
    ) -> Result<SessionDescription, MediaFailure> {
        let Some(pending) = self.pending.take() else { return self.take_offer(from, sdp, transport) };
        let offerer = pending.from;
        let result = self.answer(from, &sdp, &pending, transport);
        if provisional || result.is_err() {
            // Early answers (and other forks' answers) may follow: the offer stays open.
            self.pending = Some(pending);
        }
        let out = result?;
        if !provisional {
            self.negotiated_once = true;
        }
        debug_assert_eq!(offerer, from.other());
        Ok(out)
    }

    fn answer(
        &mut self,
        from: Side,
        sdp: &SessionDescription,
        pending: &Pending,
        transport: LegTransport,
    ) -> Result<SessionDescription, MediaFailure> {
        let offerer = pending.from;
        // Which key tag we offered this leg, per stream.
        for (i, media) in sdp.media.iter().enumerate().take(self.streams.len()) {
            let tag = self.streams[i].legs[index(from)].ours.as_ref().map(|k| k.tag);
            self.accept_security(from, i, media, transport, tag)?;
            let _ = self.session.set_peer(leg(from), i, MediaPeer::from_sdp(sdp, media, Some(transport.signalling_ip)));
        }
        let mut out = rewrite_for_relay(sdp, self.ip, self.session.leg_ports(leg(offerer)));
        let mut any_common = false;
        for (i, media) in out.media.iter_mut().enumerate() {
            strip_crypto(media);
            let (Some(offered), Some(answered)) = (pending.offer.media.get(i), sdp.media.get(i)) else { continue };
            if i >= self.streams.len() || !carries_rtp(answered) || !carries_rtp(offered) {
                continue;
            }
            let state = &mut self.streams[i];
            if state.transcode {
                // Held to each leg's codec: answer the offerer with its own.
                if let Some(format) = &state.legs[index(offerer)].format {
                    negotiate::restrict(media, format);
                }
                any_common = true;
                continue;
            }
            let first = answered.codecs().into_iter().find(|c| !c.is_auxiliary());
            let relayed = first.as_ref().is_some_and(|f| offered.codecs().iter().any(|c| c.same_format(f)));
            if !relayed
                && pending.initial
                && media.media == MediaType::Audio
                && let Some((chosen, false)) = negotiate::answered_format(offered, answered)
                && let Some(theirs) = negotiate::choose_for_offerer(offered)
            {
                any_common = true;
                negotiate::restrict(media, &theirs);
                let direction = sdp.direction_for(answered);
                if direction != Direction::SendRecv {
                    media.set_direction(direction);
                }
                state.transcode = true;
                state.legs[index(from)].format = Some(chosen);
                state.legs[index(offerer)].format = Some(theirs);
                continue;
            }
            if pending.initial {
                negotiate::retain_offered(media, offered);
            }
            any_common |= relayed || streams_compatible(offered, answered);
        }
        let enabled_answer = sdp.media.iter().any(carries_rtp);
        if enabled_answer && !any_common {
            return Err(MediaFailure::NoCommonCodec);
        }
        self.configure(sdp, &pending.offer, offerer);
        Ok(out)
    }

    /// Tells the relay each stream's keys, codecs and events.
    fn configure(&self, answer: &SessionDescription, offer: &SessionDescription, offerer: Side) {
        for (i, state) in self.streams.iter().enumerate() {
            let events = |side: Side| -> Vec<u8> {
                // A leg sends events with the payload types listed in what it received.
                let received = if side == offerer { answer.media.get(i) } else { offer.media.get(i) };
                let own = if side == offerer { offer.media.get(i) } else { answer.media.get(i) };
                [received, own]
                    .into_iter()
                    .flatten()
                    .filter_map(|m| negotiate::telephone_event(m, 8000))
                    .map(|e| e.payload_type)
                    .collect()
            };
            let leg_config = |side: Side| {
                let leg_state = &state.legs[index(side)];
                LegConfig {
                    srtp_in: leg_state.srtp.then(|| leg_state.theirs.clone()).flatten(),
                    srtp_out: leg_state.srtp.then(|| leg_state.ours.clone()).flatten(),
                    format: leg_state.format.clone(),
                    event_payload_types: events(side),
                }
            };
            let config = StreamConfig { legs: [leg_config(Side::A), leg_config(Side::B)], transcode: state.transcode };
            let _ = self.session.configure(i, config);
        }
    }

    /// The description `sdp` (from [`Self::take`]) as sent to leg `to`: its profile and our
    /// key per that leg's security. `None` when the leg would need plain RTP and it is not
    /// allowed (a callee device reached without TLS, say).
    pub(super) fn for_leg(&mut self, to: Side, sdp: &SessionDescription, secure: bool) -> Option<Bytes> {
        let mut out = sdp.clone();
        let answering = self.pending.as_ref().is_none_or(|p| p.from == to);
        for (i, media) in out.media.iter_mut().enumerate() {
            let Some(state) = self.streams.get_mut(i) else { continue };
            if !carries_rtp(media) {
                continue;
            }
            let leg_state = &mut state.legs[index(to)];
            let srtp = if answering { leg_state.srtp } else { secure };
            if srtp {
                let ours = leg_state.ours.get_or_insert_with(|| keys::fresh(1, keys::DEFAULT_SUITE));
                media.proto = savp(&media.proto);
                media.attributes.push(ours.to_attribute());
            } else {
                if !self.allow_plain {
                    return None;
                }
                media.proto = avp(&media.proto);
            }
        }
        Some(Bytes::from(out.to_bytes()))
    }
}

fn strip_crypto(media: &mut MediaDescription) {
    media.attributes.retain(|a| a.name != "crypto");
}

fn savp(proto: &Proto) -> Proto {
    match proto {
        Proto::RtpAvp | Proto::RtpSavp => Proto::RtpSavp,
        Proto::RtpAvpf | Proto::RtpSavpf => Proto::RtpSavpf,
        other => other.clone(),
    }
}

fn avp(proto: &Proto) -> Proto {
    match proto {
        Proto::RtpSavp | Proto::RtpAvp => Proto::RtpAvp,
        Proto::RtpSavpf | Proto::RtpAvpf => Proto::RtpAvpf,
        other => other.clone(),
    }
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
