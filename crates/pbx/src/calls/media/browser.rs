//! Browser legs: a leg whose descriptions are WebRTC (ICE, DTLS-SRTP, BUNDLE, rtcp-mux,
//! `UDP/TLS/RTP/SAVPF`). The relay speaks WebRTC to the browser and plain RTP inside, so the
//! rest of the call's media policy sees a plain RTP leg: a browser's description is turned
//! into a plain one as it comes in ([`to_plain`]), and what the browser is sent is our own
//! WebRTC description ([`WebRtcPlan`]), with the formats the plain exchange settled on and
//! their payload types unchanged, so packets cross without renumbering. Security needs no
//! SDES and no TLS rule here: DTLS keys the browser's side.

use std::net::SocketAddr;

use bytes::Bytes;
use sambung_media::sdp::{MediaDescription, SessionDescription};
use sambung_media::webrtc::{Format, RemoteWebRtc, WebRtcPlan, is_webrtc};

use super::{CallMedia, MediaFailure, index};
use crate::calls::Side;
use crate::media::MediaCommand;
use crate::pbx::Ctx;

/// What the call knows of a browser leg.
#[derive(Debug, Default)]
pub(super) struct BrowserLeg {
    /// The browser's latest description.
    remote: Option<RemoteWebRtc>,
    /// Ours: its ICE credentials, fingerprint, DTLS role and formats.
    plan: Option<WebRtcPlan>,
    /// The relay's WebRTC leg was started (with this remote ufrag).
    started: Option<String>,
}

/// Session- and media-level attributes that belong to WebRTC's transport, not to the media a
/// plain RTP leg is offered.
const TRANSPORT_ATTRIBUTES: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "candidate",
    "end-of-candidates",
    "fingerprint",
    "setup",
    "mid",
    "extmap",
    "extmap-allow-mixed",
    "rtcp-fb",
    "rtcp-mux",
    "rtcp-mux-only",
    "rtcp-rsize",
    "ssrc",
    "ssrc-group",
    "msid",
    "msid-semantic",
    "group",
    "rid",
    "simulcast",
    "sctp-port",
    "max-message-size",
];

/// A browser's description as a plain RTP one: `RTP/AVP`, its address and ports kept, the
/// transport attributes gone, and only the formats a WebRTC leg can carry (the others' `rtpmap`
/// and `fmtp` lines with them).
pub(super) fn to_plain(sdp: &SessionDescription, remote: &RemoteWebRtc) -> SessionDescription {
    let mut plain = sdp.clone();
    plain.attributes.retain(|a| !TRANSPORT_ATTRIBUTES.contains(&a.name.as_str()));
    for (media, described) in plain.media.iter_mut().zip(&remote.media) {
        if media.proto.is_rtp() {
            media.proto = sambung_media::sdp::Proto::RtpAvp;
        }
        media.attributes.retain(|a| !TRANSPORT_ATTRIBUTES.contains(&a.name.as_str()));
        let carried: Vec<String> =
            sambung_media::webrtc::carried(&media.media, &described.formats).iter().map(|f| f.pt.to_string()).collect();
        keep_formats(media, &carried);
    }
    plain
}

/// Keeps the formats of `media` listed in `keep` (and their `rtpmap`/`fmtp` lines); a section
/// left with none is declined (port 0, RFC 3264 §6).
pub(crate) fn keep_formats(media: &mut MediaDescription, keep: &[String]) {
    media.formats.retain(|f| keep.contains(f));
    media.attributes.retain(|a| match a.name.as_str() {
        "rtpmap" | "fmtp" => {
            let pt = a.value.as_deref().and_then(|v| v.split_ascii_whitespace().next()).unwrap_or("");
            keep.iter().any(|k| k == pt)
        }
        _ => true,
    });
    if media.formats.is_empty() {
        media.port = 0;
        media.formats.push("0".to_owned());
    }
}

impl CallMedia {
    /// True when `side` is a browser's leg.
    pub(crate) fn is_browser(&self, side: Side) -> bool {
        self.browser[index(side)].as_ref().is_some_and(|b| b.remote.is_some())
    }

    /// A description from `from`: a browser's (WebRTC) becomes plain and `from` a browser leg;
    /// any other passes as it is.
    pub(super) fn take_browser(
        &mut self,
        from: Side,
        sdp: SessionDescription,
    ) -> Result<SessionDescription, MediaFailure> {
        if !is_webrtc(&sdp) {
            // A device that is not a browser (another fork answered, say).
            if let Some(leg) = self.browser[index(from)].as_mut() {
                leg.remote = None;
            }
            return Ok(sdp);
        }
        if self.fingerprint.is_none() {
            return Err(MediaFailure::NoWebRtc);
        }
        let remote = RemoteWebRtc::parse(&sdp).map_err(|e| MediaFailure::BadSdp(e.to_string()))?;
        let plain = to_plain(&sdp, &remote);
        let leg = self.browser[index(from)].get_or_insert_with(BrowserLeg::default);
        leg.remote = Some(remote);
        Ok(plain)
    }

    /// The leg's socket address that a browser's ICE reaches: the relay address and the leg's
    /// first RTP port.
    fn browser_address(&self, side: Side) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.ip, *self.leg_ports(side).first()?))
    }

    /// What browser leg `to` is sent in place of `sdp` (a plain description made for it):
    /// our answer to its offer, or our offer, each with the formats of `sdp`. `None` when
    /// no format is left that a browser can take.
    pub(super) fn for_browser(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: Side,
        sdp: &SessionDescription,
        answering: bool,
    ) -> Result<Bytes, MediaFailure> {
        let fingerprint = self.fingerprint.clone().ok_or(MediaFailure::NoWebRtc)?;
        let local = self.browser_address(to).ok_or(MediaFailure::Relay("no ports".into()))?;
        let allowed = |i: usize, f: &Format| {
            sdp.media.get(i).is_some_and(|m| m.port != 0 && m.formats.iter().any(|p| *p == f.pt.to_string()))
        };
        let seed = ctx.random.u64();
        let session = self.session;
        let leg = self.browser[index(to)].get_or_insert_with(BrowserLeg::default);
        let no_media = |_| MediaFailure::NoCommonCodec;
        match (&leg.remote, answering) {
            (Some(remote), true) => {
                match &mut leg.plan {
                    // A new offer from the same browser (hold, resume): the same leg, the
                    // directions it asks for.
                    Some(plan) if leg.started.as_deref() == Some(remote.ufrag.as_str()) => {
                        for (stream, media) in plan.streams.iter_mut().zip(&remote.media) {
                            stream.direction = media.direction.reversed();
                        }
                    }
                    _ => {
                        let plan = WebRtcPlan::answer(remote, &fingerprint, local, seed, allowed).map_err(no_media)?;
                        leg.plan = Some(plan);
                    }
                }
            }
            (_, false) => {
                // Our offer: the formats of `sdp` that a WebRTC leg carries, their payload types
                // kept. A re-offer to a browser whose leg runs keeps the leg.
                let streams: Vec<_> = sdp
                    .media
                    .iter()
                    .map(|m| {
                        let formats = if m.port == 0 { Vec::new() } else { formats_of(m) };
                        (m.media.clone(), formats)
                    })
                    .collect();
                match &mut leg.plan {
                    Some(plan) if leg.started.is_some() => {
                        for (stream, media) in plan.streams.iter_mut().zip(&sdp.media) {
                            stream.direction = media.direction().unwrap_or(sambung_media::sdp::Direction::SendRecv);
                        }
                    }
                    _ => {
                        let plan = WebRtcPlan::offer(&streams, &fingerprint, local, seed).map_err(no_media)?;
                        leg.plan = Some(plan);
                        leg.remote = None;
                    }
                }
            }
            (None, true) => return Err(MediaFailure::NoOffer),
        }
        let Some(plan) = leg.plan.as_mut() else { return Err(MediaFailure::NoOffer) };
        // What the other side can take (its b=AS or b=TIAS) caps what the browser sends.
        for (stream, media) in plan.streams.iter_mut().zip(&sdp.media) {
            stream.max_bitrate = media.bandwidths.iter().find_map(|b| match b.kind.as_str() {
                "TIAS" => Some(b.value),
                "AS" => Some(b.value * 1000),
                _ => None,
            });
        }
        let description = plan.description();
        if answering {
            Self::start(ctx, session, to, leg);
        }
        Ok(Bytes::from(description.to_bytes()))
    }

    /// The browser on `from` answered our offer: its answer fixes the DTLS role and the
    /// formats, and the relay's leg starts.
    pub(super) fn browser_answered(&mut self, ctx: &mut Ctx<'_>, from: Side) -> Result<(), MediaFailure> {
        let session = self.session;
        let Some(leg) = self.browser[index(from)].as_mut() else { return Ok(()) };
        let (Some(remote), Some(plan)) = (&leg.remote, &mut leg.plan) else { return Err(MediaFailure::NoOffer) };
        if leg.started.as_deref() != Some(remote.ufrag.as_str()) {
            plan.accept_answer(remote).map_err(|e| MediaFailure::BadSdp(e.to_string()))?;
        }
        Self::start(ctx, session, from, leg);
        Ok(())
    }

    /// Starts the relay's WebRTC leg for `leg` once (again after an ICE restart).
    fn start(ctx: &mut Ctx<'_>, session: u64, side: Side, leg: &mut BrowserLeg) {
        let (Some(remote), Some(plan)) = (&leg.remote, &leg.plan) else { return };
        if leg.started.as_deref() == Some(remote.ufrag.as_str()) {
            return;
        }
        leg.started = Some(remote.ufrag.clone());
        ctx.out.media(MediaCommand::WebRtc {
            session,
            side,
            plan: Box::new(plan.clone()),
            remote: Box::new(remote.clone()),
        });
    }
}

/// The formats of a plain media section, as a WebRTC plan takes them.
fn formats_of(media: &MediaDescription) -> Vec<Format> {
    let fmtp = |pt: u8| {
        let prefix = format!("{pt} ");
        media
            .attributes_named("fmtp")
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| v.strip_prefix(&prefix))
            .map(str::to_owned)
    };
    media
        .codecs()
        .into_iter()
        .map(|c| Format {
            pt: c.payload_type,
            fmtp: fmtp(c.payload_type),
            name: c.name,
            clock_rate: c.clock_rate,
            channels: c.channels,
        })
        .collect()
}
