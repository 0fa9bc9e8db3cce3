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
use sambung_media::sdes::SdesCrypto;

use crate::media::keys;
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

/// What a description is in the offer/answer exchange, from the SIP message carrying it
/// (RFC 3264, RFC 6337 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// In an INVITE or UPDATE, or in the 2xx to an INVITE that had none.
    Offer,
    /// In a response to a request that carried the offer (`provisional` for 1xx), an ACK or a
    /// PRACK.
    Answer { provisional: bool },
}

/// What the call knows about one leg of one stream.
#[derive(Debug, Default)]
struct LegState {
    /// The leg uses SRTP.
    srtp: bool,
    /// The leg's own descriptions use a secure profile (`RTP/SAVP`); best-effort SRTP keeps
    /// `RTP/AVP` with keys (RFC 4568 §7.1.1), and is answered the same way.
    savp: bool,
    /// The key we encrypt with toward the leg (made once, reused in every description).
    ours: Option<SdesCrypto>,
    /// The key the leg encrypts with.
    theirs: Option<SdesCrypto>,
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

    /// Takes a description from `from` in its `role`: a new offer, or the answer to the
    /// pending one (an answer with no offer pending is taken as an offer). Returns what the
    /// other leg's side should get, before the per-destination touches of [`Self::for_leg`]:
    /// relay address, the other leg's ports, codecs decided.
    pub(super) fn take(
        &mut self,
        from: Side,
        body: &Bytes,
        transport: LegTransport,
        role: Role,
    ) -> Result<SessionDescription, MediaFailure> {
        let sdp = parse(body)?;
        match (role, &self.pending) {
            (Role::Answer { provisional }, Some(pending)) if pending.from != from => {
                self.take_answer(from, sdp, transport, provisional)
            }
            _ => self.take_offer(from, sdp, transport),
        }
    }

    /// The offer from `offerer` was refused (a non-2xx final answer, or it could not be
    /// carried across): the session stays as it was before it (RFC 3264 §8, RFC 6337 §3.1).
    pub(super) fn reject(&mut self, offerer: Side) {
        if self.pending.as_ref().is_some_and(|p| p.from == offerer) {
            self.pending = None;
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
                    // An answer must take our offered tag and its suite (RFC 4568 §7.1.3).
                    Some(tag) => {
                        let ours = state.ours.as_ref().map(|k| k.profile);
                        offered.into_iter().find(|k| k.tag == tag && Some(k.profile) == ours)
                    }
                    None => offered.into_iter().next(),
                };
                let Some(theirs) = theirs else { return Err(MediaFailure::NoCryptoSuite) };
                state.srtp = true;
                state.savp = media.proto.is_secure();
                if answered_tag.is_none()
                    && state.ours.as_ref().is_none_or(|ours| ours.profile != theirs.profile || ours.tag != theirs.tag)
                {
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
        state.savp = false;
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
            if pending.initial {
                // Each answer to the first offer decides afresh (another device's 183 may
                // have chosen differently): nothing is fixed until the final answer.
                state.transcode = false;
                state.legs[0].format = None;
                state.legs[1].format = None;
            }
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
            let events = |side: Side| -> Vec<negotiate::EventFormat> {
                // A leg sends events with the payload types listed in what it received (or, not
                // quite by the rules, in what it wrote).
                let received = if side == offerer { answer.media.get(i) } else { offer.media.get(i) };
                let own = if side == offerer { offer.media.get(i) } else { answer.media.get(i) };
                let mut events: Vec<negotiate::EventFormat> =
                    [received, own].into_iter().flatten().flat_map(negotiate::telephone_events).collect();
                events.dedup_by_key(|e| e.payload_type);
                events
            };
            let leg_config = |side: Side| {
                let leg_state = &state.legs[index(side)];
                LegConfig {
                    srtp_in: leg_state.srtp.then(|| leg_state.theirs.clone()).flatten(),
                    srtp_out: leg_state.srtp.then(|| leg_state.ours.clone()).flatten(),
                    format: leg_state.format.clone(),
                    events: events(side),
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
        let negotiated = self.negotiated_once;
        for (i, media) in out.media.iter_mut().enumerate() {
            let Some(state) = self.streams.get_mut(i) else { continue };
            if !carries_rtp(media) {
                continue;
            }
            // We relay RTCP on its own ports: no multiplexing (RFC 5761) toward anyone.
            media.attributes.retain(|a| a.name != "rtcp-mux");
            let leg_state = &mut state.legs[index(to)];
            // An answer, or a re-offer to a leg that has negotiated, keeps what the leg chose;
            // a first offer follows the leg's signalling.
            let (srtp, savp) =
                if answering || negotiated { (leg_state.srtp, leg_state.savp) } else { (secure, secure) };
            if srtp {
                let ours = leg_state.ours.get_or_insert_with(|| keys::fresh(1, keys::DEFAULT_SUITE));
                media.proto = if savp { savp_of(&media.proto) } else { avp(&media.proto) };
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

fn savp_of(proto: &Proto) -> Proto {
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

#[cfg(test)]
mod tests {
    use tokio::runtime::Handle;

    use super::*;
    use crate::media::RelayConfig;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const KEY: &str = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
    const OFFER: Role = Role::Offer;
    const ANSWER: Role = Role::Answer { provisional: false };
    const EARLY: Role = Role::Answer { provisional: true };

    fn sdp(port: u16, m: &str, extra: &str) -> Bytes {
        Bytes::from(format!(
            "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio {port} {m}\r\n{extra}"
        ))
    }

    fn transport(secure: bool) -> LegTransport {
        LegTransport { secure, signalling_ip: "192.0.2.1".parse().unwrap() }
    }

    fn call(ports: u16, first: &Bytes) -> (MediaRelay, CallMedia) {
        let relay = MediaRelay::new(RelayConfig::new(ports, ports + 99), Handle::current()).unwrap();
        let parsed = SessionDescription::parse(first).unwrap();
        let media =
            CallMedia::new(&relay, "call-t", LO, &parsed, true, &[CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma])
                .unwrap();
        (relay, media)
    }

    fn m_line(body: &Bytes) -> String {
        let text = String::from_utf8_lossy(body);
        text.lines().filter(|l| l.starts_with("m=") || l.starts_with("a=crypto")).collect::<Vec<_>>().join(" | ")
    }

    #[tokio::test]
    async fn a_refused_re_offer_leaves_the_roles_as_they_were() {
        let offer = sdp(4000, "RTP/AVP 0", "");
        let (_relay, mut media) = call(24_000, &offer);
        media.take(Side::A, &offer, transport(false), OFFER).unwrap();
        media.take(Side::B, &sdp(5000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
        // A re-offers (hold); B refuses it with 488.
        media.take(Side::A, &sdp(4000, "RTP/AVP 0", "a=sendonly\r\n"), transport(false), OFFER).unwrap();
        media.reject(Side::A);
        assert!(media.pending.is_none());
        // B's own re-offer is then an offer, and A's answer answers it.
        media.take(Side::B, &sdp(5002, "RTP/AVP 0", ""), transport(false), OFFER).unwrap();
        assert_eq!(media.pending.as_ref().map(|p| p.from), Some(Side::B));
        media.take(Side::A, &sdp(4000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
        assert!(media.pending.is_none());
    }

    #[tokio::test]
    async fn the_final_answer_decides_transcoding_not_an_early_one_from_another_fork() {
        let offer = sdp(4000, "RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000\r\n");
        let (_relay, mut media) = call(24_100, &offer);
        media.take(Side::A, &offer, transport(false), OFFER).unwrap();
        // Fork 1's 183 chooses Opus (added by us): transcoding, for now.
        media.take(Side::B, &sdp(5000, "RTP/AVP 96", "a=rtpmap:96 opus/48000/2\r\n"), transport(false), EARLY).unwrap();
        assert!(media.streams[0].transcode);
        // Fork 2 answers 200 with PCMU, the caller's own codec: relayed untouched.
        let out = media.take(Side::B, &sdp(6000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
        assert!(!media.streams[0].transcode);
        assert!(media.streams[0].legs[1].format.is_none());
        assert_eq!(out.media[0].formats, ["0"]);
    }

    #[tokio::test]
    async fn a_re_offer_follows_what_the_leg_negotiated() {
        let offer = sdp(4000, "RTP/AVP 0", "");
        let (_relay, mut media) = call(24_200, &offer);
        // A is on TLS but chose plain RTP.
        let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
        media.for_leg(Side::B, &out, false).unwrap();
        let answer = media.take(Side::B, &sdp(5000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
        assert_eq!(
            m_line(&media.for_leg(Side::A, &answer, true).unwrap()),
            format!("m=audio {} RTP/AVP 0", media.session.leg_ports(Leg::A)[0])
        );
        // B puts A on hold: A is re-offered plain RTP, as it negotiated.
        let hold = media.take(Side::B, &sdp(5000, "RTP/AVP 0", "a=sendonly\r\n"), transport(false), OFFER).unwrap();
        let to_a = media.for_leg(Side::A, &hold, true).unwrap();
        assert!(m_line(&to_a).contains("RTP/AVP 0") && !m_line(&to_a).contains("crypto"), "{}", m_line(&to_a));
    }

    #[tokio::test]
    async fn best_effort_srtp_is_answered_on_rtp_avp_with_our_key() {
        let offer = sdp(4000, "RTP/AVP 0", KEY);
        let (_relay, mut media) = call(24_300, &offer);
        let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
        media.for_leg(Side::B, &out, false).unwrap();
        let answer = media.take(Side::B, &sdp(5000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
        let to_a = m_line(&media.for_leg(Side::A, &answer, true).unwrap());
        assert!(to_a.contains("RTP/AVP 0") && to_a.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"), "{to_a}");
        assert!(!to_a.contains("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"), "our own key, not the caller's");
    }

    #[tokio::test]
    async fn an_answer_must_keep_our_suite() {
        let offer = sdp(4000, "RTP/AVP 0", "");
        let (_relay, mut media) = call(24_400, &offer);
        let out = media.take(Side::A, &offer, transport(false), OFFER).unwrap();
        let to_b = media.for_leg(Side::B, &out, true).unwrap();
        let line = m_line(&to_b);
        assert!(line.contains("RTP/SAVP 0") && line.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"), "{line}");
        let wrong_suite = sdp(5000, "RTP/SAVP 0", &KEY.replace("_80", "_32"));
        let refused = media.take(Side::B, &wrong_suite, transport(true), ANSWER);
        assert!(matches!(refused, Err(MediaFailure::NoCryptoSuite)), "{refused:?}");
        let fine = media.take(Side::B, &sdp(5000, "RTP/SAVP 0", KEY), transport(true), ANSWER);
        assert!(fine.is_ok());
        assert!(media.streams[0].legs[1].srtp);
    }

    #[tokio::test]
    async fn keys_over_clear_signalling_and_plain_rtp_where_refused() {
        let offer = sdp(4000, "RTP/SAVP 0", KEY);
        let (_relay, mut media) = call(24_500, &offer);
        assert!(matches!(media.take(Side::A, &offer, transport(false), OFFER), Err(MediaFailure::KeysInClear)));
        media.allow_plain = false;
        let plain = sdp(4000, "RTP/AVP 0", "");
        assert!(matches!(media.take(Side::A, &plain, transport(true), OFFER), Err(MediaFailure::PlainRtp)));
        let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
        assert!(media.for_leg(Side::B, &out, false).is_none(), "a device without TLS cannot be offered SRTP keys");
        assert!(m_line(&media.for_leg(Side::B, &out, true).unwrap()).contains("RTP/SAVP"));
    }
}
