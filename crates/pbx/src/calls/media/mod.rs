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
use sambung_media::sdes::SdesCrypto;
use sambung_media::sdp::{Direction, MediaDescription, MediaType, Proto, SessionDescription};
use sambung_media::srtp::{MasterKey, SrtpProfile};
use sambung_sip::transaction::Peer;

use super::Side;
use crate::media::{LegConfig, MediaCommand, Peer as MediaPeer, SessionId};
use crate::pbx::Ctx;
use crate::random::Random;

mod app;
mod browser;

pub(crate) use app::InProcessAnswer;
pub(crate) use browser::keep_formats;
#[cfg(test)]
mod tests;

/// Most media streams (`m=` lines) one session relays.
pub const MAX_STREAMS: usize = 16;

/// The suite we offer when we choose: the one every SDES implementation has.
const DEFAULT_SUITE: SrtpProfile = SrtpProfile::Aes128CmSha1_80;

/// Why a description could not be anchored.
#[derive(Debug, thiserror::Error)]
pub enum MediaFailure {
    #[error("malformed session description: {0}")]
    BadSdp(String),
    #[error("no relay ports: {0}")]
    Relay(String),
    #[error("the two ends share no codec")]
    NoCommonCodec,
    #[error("SRTP keys (SDES) are accepted only over TLS")]
    KeysInClear,
    #[error("plain RTP is not allowed here")]
    PlainRtp,
    #[error("no crypto suite in common")]
    NoCryptoSuite,
    #[error("no offer to answer")]
    NoOffer,
    #[error("WebRTC is not available on this server")]
    NoWebRtc,
}

impl MediaFailure {
    /// The status that answers the request or ends the call (RFC 3261 §21.4.26, §21.5.4).
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            MediaFailure::BadSdp(_) => (400, "Bad Session Description"),
            MediaFailure::Relay(_) => (503, "No Media Ports"),
            MediaFailure::NoCommonCodec => (488, "Not Acceptable Here"),
            MediaFailure::KeysInClear => (488, "SRTP Requires TLS"),
            MediaFailure::PlainRtp => (488, "SRTP Required"),
            MediaFailure::NoCryptoSuite => (488, "No Common Crypto Suite"),
            MediaFailure::NoOffer => (488, "Not Acceptable Here"),
            MediaFailure::NoWebRtc => (488, "WebRTC Not Available"),
        }
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
pub(crate) enum Role {
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

/// The media of one call: its session's ports and the offer/answer state of both legs.
#[derive(Debug)]
pub(crate) struct CallMedia {
    session: SessionId,
    /// The RTP port of each stream on leg A, then on leg B.
    ports: [Vec<u16>; 2],
    /// The address written into our descriptions.
    ip: IpAddr,
    /// The caller's offer as the B side gets it (relay address, B ports), once taken.
    pub b_offer: Option<SessionDescription>,
    /// Leg B is an application inside the server: no SRTP, no security rules toward it.
    b_in_process: bool,
    streams: Vec<StreamState>,
    pending: Option<Pending>,
    negotiated_once: bool,
    allow_plain: bool,
    preferences: Vec<CodecKind>,
    /// Our DTLS fingerprint, when the server speaks WebRTC.
    fingerprint: Option<String>,
    /// What is known of each leg that is (or was offered as) a browser's.
    browser: [Option<browser::BrowserLeg>; 2],
    /// The latest description each leg sent (its codecs, as it numbers them).
    latest: [Option<SessionDescription>; 2],
    /// The side whose description answered the latest completed offer: its first codec is
    /// what both ends send (RFC 3264 §6.1).
    last_answerer: Option<Side>,
}

/// Where a description comes from or goes to, for the security rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LegTransport {
    /// Signalling on this leg is TLS (or secure WebSocket).
    pub secure: bool,
    /// The source IP of the leg's SIP messages (latching).
    pub signalling_ip: IpAddr,
}

impl LegTransport {
    pub(crate) fn of(peer: &Peer) -> LegTransport {
        LegTransport { secure: is_secure(peer), signalling_ip: peer.addr.ip() }
    }

    pub(crate) fn unknown() -> LegTransport {
        LegTransport { secure: false, signalling_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED) }
    }
}

/// Checks a caller's first offer before anything is allocated for it: it must parse, and each
/// RTP stream's security must be acceptable on its leg. Returns the parsed offer.
pub(crate) fn check_offer(
    body: &Bytes,
    transport: LegTransport,
    allow_plain: bool,
) -> Result<SessionDescription, MediaFailure> {
    let sdp = parse(body)?;
    if sambung_media::webrtc::is_webrtc(&sdp) {
        // A browser: DTLS keys its media, whatever the signalling.
        return Ok(sdp);
    }
    for media in sdp.media.iter().take(MAX_STREAMS).filter(|m| carries_rtp(m)) {
        let keys = from_media(media);
        match (media.proto.is_secure() || !keys.is_empty(), transport.secure) {
            (true, true) if keys.is_empty() => return Err(MediaFailure::NoCryptoSuite),
            (true, true) => {}
            (true, false) if media.proto.is_secure() => return Err(MediaFailure::KeysInClear),
            _ if !allow_plain => return Err(MediaFailure::PlainRtp),
            _ => {}
        }
    }
    Ok(sdp)
}

/// A new SDES key of `profile` under `tag`, from 30 bytes of the call control's CSPRNG.
fn fresh_key(random: &mut Random, tag: u32, profile: SrtpProfile) -> SdesCrypto {
    let mut material = [0u8; MasterKey::LEN];
    random.fill(&mut material);
    let tag = tag.clamp(1, sambung_media::sdes::MAX_TAG);
    match SdesCrypto::new(tag, profile, &material) {
        Ok(key) => key,
        // Only an out-of-range tag is refused, and the tag was clamped into range.
        Err(_) => SdesCrypto { tag: 1, profile, key: MasterKey::from_bytes(&material), lifetime: None },
    }
}

/// The usable keys of a media section, in the sender's order of preference; attributes we
/// cannot honour (unknown suite, MKI, ...) are skipped.
fn from_media(media: &MediaDescription) -> Vec<SdesCrypto> {
    media.crypto().iter().filter_map(|c| SdesCrypto::from_crypto(c).ok()).collect()
}

/// True when SIP to and from `peer` is encrypted.
pub(crate) fn is_secure(peer: &Peer) -> bool {
    matches!(peer.transport, sambung_sip::Transport::Tls | sambung_sip::Transport::Wss)
}

fn parse(body: &Bytes) -> Result<SessionDescription, MediaFailure> {
    SessionDescription::parse(body).map_err(|e| MediaFailure::BadSdp(e.to_string()))
}

fn carries_rtp(media: &MediaDescription) -> bool {
    !media.is_disabled() && media.proto.is_rtp() && !media.proto.is_tcp()
}

impl CallMedia {
    /// The media of call `session`, whose session is open with `ports` on `ip`.
    pub(crate) fn new(
        session: SessionId,
        ip: IpAddr,
        ports: [Vec<u16>; 2],
        allow_plain: bool,
        preferences: &[CodecKind],
        fingerprint: Option<String>,
    ) -> CallMedia {
        let streams = ports[0].len().min(ports[1].len()).clamp(1, MAX_STREAMS);
        CallMedia {
            session,
            ports,
            ip,
            b_offer: None,
            b_in_process: false,
            streams: (0..streams).map(|_| StreamState::default()).collect(),
            pending: None,
            negotiated_once: false,
            allow_plain,
            preferences: preferences.to_vec(),
            fingerprint,
            browser: [None, None],
            latest: [None, None],
            last_answerer: None,
        }
    }

    /// The RTP ports of `side`'s leg, one per stream.
    fn leg_ports(&self, side: Side) -> &[u16] {
        &self.ports[index(side)]
    }

    /// Tells the runtime where `side` receives `stream` (from its description).
    fn set_peer(&self, ctx: &mut Ctx<'_>, side: Side, stream: usize, peer: MediaPeer) {
        if side == Side::B && self.b_in_process {
            return;
        }
        ctx.out.media(MediaCommand::SetPeer { session: self.session, side, stream, peer });
    }

    /// Takes `body` from `from` in its `role` (see [`Self::take`]) and returns it as the other
    /// leg gets it ([`Self::for_leg`]); `to_secure` is the other leg's signalling security.
    pub(crate) fn relay(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: Side,
        body: &Bytes,
        transport: LegTransport,
        role: Role,
        to_secure: bool,
    ) -> Result<Bytes, MediaFailure> {
        let sdp = self.take(ctx, from, body, transport, role)?;
        self.for_leg(ctx, from.other(), &sdp, to_secure).ok_or(MediaFailure::PlainRtp)
    }

    /// Takes a description from `from` in its `role`: a new offer, or the answer to the
    /// pending one (an answer with no offer pending is taken as an offer). Returns what the
    /// other leg's side should get, before the per-destination touches of [`Self::for_leg`]:
    /// relay address, the other leg's ports, codecs decided.
    pub(crate) fn take(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: Side,
        body: &Bytes,
        transport: LegTransport,
        role: Role,
    ) -> Result<SessionDescription, MediaFailure> {
        let sdp = self.take_browser(from, parse(body)?)?;
        self.latest[index(from)] = Some(sdp.clone());
        match (role, &self.pending) {
            (Role::Answer { provisional }, Some(pending)) if pending.from != from => {
                self.take_answer(ctx, from, sdp, transport, provisional)
            }
            _ => self.take_offer(ctx, from, sdp, transport),
        }
    }

    /// The codec `side` listed first in its latest description that the server can encode,
    /// for what the server itself plays to it (music on hold): `None` for a browser's leg or an
    /// application's, or without such a codec.
    pub(crate) fn own_format(&self, side: Side) -> Option<Negotiated> {
        if self.is_browser(side) || (side == Side::B && self.b_in_process) {
            return None;
        }
        let latest = self.latest[index(side)].as_ref()?;
        let audio = latest.media.first().filter(|m| m.media == MediaType::Audio && m.port != 0 && carries_rtp(m))?;
        negotiate::choose_for_offerer(audio)
    }

    /// The offer from `offerer` was refused (a non-2xx final answer, or it could not be
    /// carried across): the session stays as it was before it (RFC 3264 §8, RFC 6337 §3.1).
    pub(crate) fn reject(&mut self, offerer: Side) {
        if self.pending.as_ref().is_some_and(|p| p.from == offerer) {
            self.pending = None;
        }
    }

    fn take_offer(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: Side,
        sdp: SessionDescription,
        transport: LegTransport,
    ) -> Result<SessionDescription, MediaFailure> {
        let to = from.other();
        let initial = !self.negotiated_once;
        for (i, media) in sdp.media.iter().enumerate().take(self.streams.len()) {
            self.accept_security(ctx.random, from, i, media, transport, None)?;
            self.set_peer(ctx, from, i, MediaPeer::from_sdp(&sdp, media, Some(transport.signalling_ip)));
        }
        let mut out = rewrite_for_relay(&sdp, self.ip, self.leg_ports(to));
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
        random: &mut Random,
        from: Side,
        i: usize,
        media: &MediaDescription,
        transport: LegTransport,
        answered_tag: Option<u32>,
    ) -> Result<(), MediaFailure> {
        if !carries_rtp(media) {
            return Ok(());
        }
        if (from == Side::B && self.b_in_process) || self.is_browser(from) {
            // An application inside the server: nothing crosses a network; or a browser,
            // whose media DTLS keys on the relay's WebRTC leg.
            let state = &mut self.streams[i].legs[index(from)];
            (state.srtp, state.savp, state.theirs) = (false, false, None);
            return Ok(());
        }
        let offered = from_media(media);
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
                    state.ours = Some(fresh_key(random, theirs.tag, theirs.profile));
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
        ctx: &mut Ctx<'_>,
        from: Side,
        sdp: SessionDescription,
        transport: LegTransport,
        provisional: bool,
    ) -> Result<SessionDescription, MediaFailure> {
        let Some(pending) = self.pending.take() else { return self.take_offer(ctx, from, sdp, transport) };
        let offerer = pending.from;
        let result = self.answer(ctx, from, &sdp, &pending, transport);
        if provisional || result.is_err() {
            // Early answers (and other forks' answers) may follow: the offer stays open.
            self.pending = Some(pending);
        }
        let out = result?;
        if self.is_browser(from) {
            self.browser_answered(ctx, from)?;
        }
        if !provisional {
            self.negotiated_once = true;
            self.last_answerer = Some(from);
        }
        debug_assert_eq!(offerer, from.other());
        Ok(out)
    }

    fn answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: Side,
        sdp: &SessionDescription,
        pending: &Pending,
        transport: LegTransport,
    ) -> Result<SessionDescription, MediaFailure> {
        let offerer = pending.from;
        // Which key tag we offered this leg, per stream.
        for (i, media) in sdp.media.iter().enumerate().take(self.streams.len()) {
            let tag = self.streams[i].legs[index(from)].ours.as_ref().map(|k| k.tag);
            self.accept_security(ctx.random, from, i, media, transport, tag)?;
            self.set_peer(ctx, from, i, MediaPeer::from_sdp(sdp, media, Some(transport.signalling_ip)));
        }
        let mut out = rewrite_for_relay(sdp, self.ip, self.leg_ports(offerer));
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
        self.configure(ctx, sdp, &pending.offer, offerer);
        Ok(out)
    }

    /// Tells the runtime each stream's keys, codecs and events.
    fn configure(&self, ctx: &mut Ctx<'_>, answer: &SessionDescription, offer: &SessionDescription, offerer: Side) {
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
                // What the leg itself wrote says whether it takes RTCP keyframe requests.
                let own = if side == offerer { offer.media.get(i) } else { answer.media.get(i) };
                LegConfig {
                    srtp_in: leg_state.srtp.then(|| leg_state.theirs.clone()).flatten(),
                    srtp_out: leg_state.srtp.then(|| leg_state.ours.clone()).flatten(),
                    format: leg_state.format.clone(),
                    events: events(side),
                    rtcp_feedback: own.is_some_and(MediaDescription::takes_keyframe_requests),
                }
            };
            let legs = Box::new([leg_config(Side::A), leg_config(Side::B)]);
            ctx.out.media(MediaCommand::Configure { session: self.session, stream: i, legs });
        }
    }

    /// The description `sdp` (from [`Self::take`]) as sent to leg `to`: its profile and our
    /// key per that leg's security. `None` when the leg would need plain RTP and it is not
    /// allowed (a callee device reached without TLS, say).
    pub(crate) fn for_leg(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: Side,
        sdp: &SessionDescription,
        secure: bool,
    ) -> Option<Bytes> {
        let answering = self.pending.as_ref().is_none_or(|p| p.from == to);
        if self.is_browser(to) {
            return self.for_browser(ctx, to, sdp, answering).ok();
        }
        let mut out = sdp.clone();
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
                let ours = leg_state.ours.get_or_insert_with(|| fresh_key(ctx.random, 1, DEFAULT_SUITE));
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

impl CallMedia {
    /// The caller's offer `sdp` (from [`Self::take`]) as a new B-leg INVITE to the device at
    /// `peer` carries it: a WebRTC offer for a browser (reached over WebSocket), else
    /// [`Self::for_leg`]'s.
    pub(crate) fn for_device(&mut self, ctx: &mut Ctx<'_>, sdp: &SessionDescription, peer: &Peer) -> Option<Bytes> {
        if matches!(peer.transport, sambung_sip::Transport::Ws | sambung_sip::Transport::Wss) {
            return self.for_browser(ctx, Side::B, sdp, false).ok();
        }
        self.for_leg(ctx, Side::B, sdp, is_secure(peer))
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
