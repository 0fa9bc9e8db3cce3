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

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::DirectApi;
use str0m::config::{DtlsCert, Fingerprint};
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

use crate::sdp::{Attribute, Connection, MediaDescription, MediaType, Origin, Proto, SessionDescription, Timing};

#[cfg(test)]
mod tests;

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

/// The DTLS role an `a=setup` line asks for (RFC 4145 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
}

impl Setup {
    fn parse(value: &str) -> Option<Setup> {
        match value.trim() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
        }
    }
}

/// One payload format of a stream: its payload type, name, clock rate, channels and `fmtp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub pt: u8,
    /// As in `a=rtpmap` (`opus`, `PCMU`, `telephone-event`, `VP8` ...).
    pub name: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    pub fmtp: Option<String>,
}

impl Format {
    /// str0m's codec for it, when it is one we relay.
    fn codec(&self) -> Option<Codec> {
        let name = self.name.to_ascii_lowercase();
        Some(match (name.as_str(), self.clock_rate) {
            ("opus", 48000) => Codec::Opus,
            ("pcmu", 8000) => Codec::PCMU,
            ("pcma", 8000) => Codec::PCMA,
            ("g722", 8000) => Codec::G722,
            ("telephone-event", _) => Codec::Tele,
            ("vp8", 90000) => Codec::Vp8,
            ("h264", 90000) => Codec::H264,
            _ => return None,
        })
    }

    fn rtpmap(&self) -> String {
        match self.channels {
            Some(channels) if channels > 1 => format!("{} {}/{}/{channels}", self.pt, self.name, self.clock_rate),
            _ => format!("{} {}/{}", self.pt, self.name, self.clock_rate),
        }
    }
}

/// One `m=` line of a WebRTC description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteMedia {
    pub mid: String,
    pub media: MediaType,
    /// 0 when the stream is declined.
    pub port: u16,
    /// Its `a=sendrecv`/`sendonly`/`recvonly`/`inactive`, as written (`sendrecv` when absent).
    pub direction: crate::sdp::Direction,
    pub formats: Vec<Format>,
    /// `a=extmap` ids by URI.
    pub extensions: Vec<(u8, String)>,
    /// The SSRCs it announces (`a=ssrc`), the first being its media stream's.
    pub ssrcs: Vec<u32>,
    /// The SSRC of its retransmissions (RFC 4588, `a=ssrc-group:FID`), when it has one.
    pub rtx_ssrc: Option<u32>,
}

/// What a browser's description says, for a WebRTC leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteWebRtc {
    pub ufrag: String,
    pub pwd: String,
    /// `sha-256 AB:CD:...`.
    pub fingerprint: String,
    pub setup: Setup,
    pub media: Vec<RemoteMedia>,
}

/// True when `sdp` is a WebRTC description (ICE, a DTLS fingerprint, `UDP/TLS/RTP/SAVPF`):
/// it needs a WebRTC leg, not our RTP/SRTP one.
pub fn is_webrtc(sdp: &SessionDescription) -> bool {
    sdp.media.iter().any(|m| matches!(m.proto, Proto::UdpTlsRtpSavpf | Proto::UdpTlsRtpSavp))
        && (sdp.attributes.iter().any(|a| a.name == "fingerprint")
            || sdp.media.iter().any(|m| m.has_attribute("fingerprint")))
}

impl RemoteWebRtc {
    /// Reads a browser's offer or answer. ICE credentials, fingerprint and setup may be at
    /// session or media level (the first media section's count for the whole BUNDLE group).
    pub fn parse(sdp: &SessionDescription) -> Result<RemoteWebRtc, WebRtcError> {
        let first = sdp.media.iter().find(|m| m.port != 0);
        let attr = |name: &str| -> Option<String> {
            first
                .and_then(|m| m.attribute(name))
                .or_else(|| sdp.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_deref().unwrap_or("")))
                .map(str::to_owned)
        };
        let ufrag = attr("ice-ufrag").ok_or(WebRtcError::NotWebRtc("no a=ice-ufrag"))?;
        let pwd = attr("ice-pwd").ok_or(WebRtcError::NotWebRtc("no a=ice-pwd"))?;
        let fingerprint = attr("fingerprint").ok_or(WebRtcError::NotWebRtc("no a=fingerprint"))?;
        fingerprint.parse::<Fingerprint>().map_err(WebRtcError::Fingerprint)?;
        let setup = attr("setup").and_then(|s| Setup::parse(&s)).unwrap_or(Setup::ActPass);
        let mut media = Vec::with_capacity(sdp.media.len());
        for (index, m) in sdp.media.iter().enumerate() {
            let mid = m.attribute("mid").map_or_else(|| index.to_string(), str::to_owned);
            let mut formats = Vec::new();
            for pt in &m.formats {
                let Ok(pt) = pt.parse::<u8>() else { continue };
                let Some(codec) = m.rtpmap(pt) else { continue };
                formats.push(Format {
                    pt,
                    name: codec.name.clone(),
                    clock_rate: codec.clock_rate,
                    channels: codec.channels,
                    fmtp: m
                        .attributes_named("fmtp")
                        .filter_map(|a| a.value.as_deref())
                        .find_map(|v| v.strip_prefix(&format!("{pt} ")).map(str::to_owned)),
                });
            }
            let extensions = m
                .attributes_named("extmap")
                .filter_map(|a| {
                    let mut words = a.value.as_deref()?.split_ascii_whitespace();
                    let id = words.next()?.split('/').next()?.parse().ok()?;
                    Some((id, words.next()?.to_owned()))
                })
                .collect();
            let mut ssrcs: Vec<u32> = Vec::new();
            for value in m.attributes_named("ssrc").filter_map(|a| a.value.as_deref()) {
                if let Some(ssrc) = value.split_ascii_whitespace().next().and_then(|s| s.parse().ok())
                    && !ssrcs.contains(&ssrc)
                {
                    ssrcs.push(ssrc);
                }
            }
            // The RTX SSRC of a FID group is not the media stream's.
            let mut rtx_ssrc = None;
            if let Some(group) =
                m.attributes_named("ssrc-group").filter_map(|a| a.value.as_deref()).find(|v| v.starts_with("FID "))
            {
                let ids: Vec<u32> = group.split_ascii_whitespace().skip(1).filter_map(|s| s.parse().ok()).collect();
                if let [primary, rtx, ..] = ids[..] {
                    ssrcs.retain(|s| *s != rtx);
                    ssrcs.retain(|s| *s != primary);
                    ssrcs.insert(0, primary);
                    rtx_ssrc = Some(rtx);
                }
            }
            media.push(RemoteMedia {
                mid,
                media: m.media.clone(),
                port: m.port,
                direction: m.direction().unwrap_or(crate::sdp::Direction::SendRecv),
                formats,
                extensions,
                ssrcs,
                rtx_ssrc,
            });
        }
        if media.iter().all(|m| m.port == 0) {
            return Err(WebRtcError::NoMedia);
        }
        Ok(RemoteWebRtc { ufrag, pwd, fingerprint, setup, media })
    }
}

/// One stream of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStream {
    pub mid: String,
    pub media: MediaType,
    /// Our SSRC toward the browser.
    pub ssrc: u32,
    /// The formats negotiated (or offered, until the answer): none when declined.
    pub formats: Vec<Format>,
    /// Header extensions (id, URI) in use.
    pub extensions: Vec<(u8, String)>,
    /// What we say in our description.
    pub direction: crate::sdp::Direction,
    /// Retransmission formats (RFC 4588): each `rtx` payload type with the one it repairs.
    pub rtx: Vec<(u8, u8)>,
    /// Our SSRC for retransmissions, when there are any.
    pub rtx_ssrc: Option<u32>,
    /// The most the browser may send on this stream, in bits per second (the other side's
    /// `b=AS` or `b=TIAS`): told to it by REMB, so that a browser does not overrun a phone.
    pub max_bitrate: Option<u64>,
}

impl PlannedStream {
    fn kind(&self) -> MediaKind {
        if self.media == MediaType::Video { MediaKind::Video } else { MediaKind::Audio }
    }

    /// Declined, or nothing in common.
    pub fn is_declined(&self) -> bool {
        self.formats.is_empty()
    }
}

/// A WebRTC leg as call control plans it, before and apart from the leg itself: our ICE
/// credentials, fingerprint, DTLS role, address and streams. It writes our descriptions;
/// [`WebRtcLeg::new`] makes the leg that speaks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebRtcPlan {
    /// The leg's socket address: our only candidate.
    pub local: SocketAddr,
    pub ufrag: String,
    pub pwd: String,
    /// Ours (`sha-256 ...`), from [`WebRtcIdentity::fingerprint`].
    pub fingerprint: String,
    /// Our DTLS role: `actpass` until an answer fixes it.
    pub setup: Setup,
    pub streams: Vec<PlannedStream>,
    /// The origin's session id and version, for our descriptions.
    session_id: u64,
    version: u64,
}

/// The SSRC of stream `index` for `seed`: odd, never 0.
fn ssrc_for(seed: u64, index: usize) -> u32 {
    let mut x = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 29)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x >> 32) as u32) | 1
}

impl WebRtcPlan {
    /// Our answer to a browser's `offer`: each stream keeps the offered formats we relay that
    /// `allow` accepts (stream index and format), in the offerer's order (RFC 3264 §6.1), and
    /// is declined when none is left; our DTLS role is `passive` (the browser, `actpass`,
    /// starts the handshake) unless the offer is `passive`.
    pub fn answer(
        offer: &RemoteWebRtc,
        fingerprint: &str,
        local: SocketAddr,
        seed: u64,
        allow: impl Fn(usize, &Format) -> bool,
    ) -> Result<WebRtcPlan, WebRtcError> {
        let (ufrag, pwd) = credentials(seed);
        let streams: Vec<PlannedStream> = offer
            .media
            .iter()
            .enumerate()
            .map(|(index, m)| {
                let mut formats = if m.port == 0 { Vec::new() } else { choose(&m.media, &m.formats) };
                formats.retain(|f| allow(index, f));
                if formats.iter().all(|f| f.codec() == Some(Codec::Tele)) {
                    formats.clear();
                }
                // Video keeps the browser's retransmission formats for the formats kept, so that a
                // browser's NACK is answered from str0m's cache (RFC 4585, RFC 4588).
                let rtx: Vec<(u8, u8)> = if m.media == MediaType::Video {
                    m.formats
                        .iter()
                        .filter(|f| f.name.eq_ignore_ascii_case("rtx"))
                        .filter_map(|f| {
                            let apt = f.fmtp.as_deref()?.split(';').find_map(|p| p.trim().strip_prefix("apt="))?;
                            let apt: u8 = apt.trim().parse().ok()?;
                            formats.iter().any(|k| k.pt == apt).then_some((f.pt, apt))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let rtx_ssrc = (!rtx.is_empty()).then(|| ssrc_for(seed ^ 0x5254_5800, index));
                PlannedStream {
                    mid: m.mid.clone(),
                    media: m.media.clone(),
                    ssrc: ssrc_for(seed, index),
                    rtx,
                    rtx_ssrc,
                    max_bitrate: None,
                    formats,
                    extensions: m
                        .extensions
                        .iter()
                        .filter(|(_, uri)| EXTENSIONS.iter().any(|e| e.as_uri() == uri))
                        .cloned()
                        .collect(),
                    direction: m.direction.reversed(),
                }
            })
            .collect();
        if streams.iter().all(PlannedStream::is_declined) {
            return Err(WebRtcError::NoMedia);
        }
        let setup = if offer.setup == Setup::Passive { Setup::Active } else { Setup::Passive };
        Ok(WebRtcPlan {
            local,
            ufrag,
            pwd,
            fingerprint: fingerprint.to_owned(),
            setup,
            streams,
            session_id: seed >> 1,
            version: 1,
        })
    }

    /// Our offer to a browser: one stream per entry of `streams` (its media type and the
    /// formats to offer, with their payload types), `actpass`.
    pub fn offer(
        streams: &[(MediaType, Vec<Format>)],
        fingerprint: &str,
        local: SocketAddr,
        seed: u64,
    ) -> Result<WebRtcPlan, WebRtcError> {
        let (ufrag, pwd) = credentials(seed);
        let extensions: Vec<(u8, String)> =
            EXTENSIONS.iter().enumerate().map(|(i, e)| (i as u8 + 1, e.as_uri().to_owned())).collect();
        let streams: Vec<PlannedStream> = streams
            .iter()
            .enumerate()
            .map(|(index, (media, formats))| PlannedStream {
                mid: index.to_string(),
                media: media.clone(),
                ssrc: ssrc_for(seed, index),
                formats: choose(media, formats),
                extensions: extensions.clone(),
                direction: crate::sdp::Direction::SendRecv,
                rtx: Vec::new(),
                rtx_ssrc: None,
                max_bitrate: None,
            })
            .collect();
        if streams.iter().all(PlannedStream::is_declined) {
            return Err(WebRtcError::NoMedia);
        }
        Ok(WebRtcPlan {
            local,
            ufrag,
            pwd,
            fingerprint: fingerprint.to_owned(),
            setup: Setup::ActPass,
            streams,
            session_id: seed >> 1,
            version: 1,
        })
    }

    /// Takes the browser's answer to our offer: the formats it kept and the DTLS role it
    /// chose (ours is the other).
    pub fn accept_answer(&mut self, answer: &RemoteWebRtc) -> Result<(), WebRtcError> {
        if answer.media.len() != self.streams.len() {
            return Err(WebRtcError::Mismatch("another number of m= lines"));
        }
        self.setup = match answer.setup {
            Setup::Active => Setup::Passive,
            Setup::Passive => Setup::Active,
            Setup::ActPass => return Err(WebRtcError::Mismatch("a=setup:actpass in an answer")),
        };
        for (stream, media) in self.streams.iter_mut().zip(&answer.media) {
            if media.mid != stream.mid {
                return Err(WebRtcError::Mismatch("another mid"));
            }
            if media.port == 0 {
                stream.formats.clear();
                continue;
            }
            stream.formats.retain(|ours| media.formats.iter().any(|f| f.pt == ours.pt));
            stream.rtx.retain(|(rtx, _)| media.formats.iter().any(|f| f.pt == *rtx));
            if stream.formats.iter().all(|f| f.codec() == Some(Codec::Tele)) {
                stream.formats.clear();
            }
            stream.extensions.retain(|e| media.extensions.contains(e));
        }
        if self.streams.iter().all(PlannedStream::is_declined) {
            return Err(WebRtcError::NoMedia);
        }
        Ok(())
    }

    /// True when we start the DTLS handshake (we are `active`).
    pub fn dtls_client(&self) -> bool {
        self.setup == Setup::Active
    }

    /// Our description as it stands (each call after the first is a new version, RFC 3264
    /// §8).
    pub fn description(&mut self) -> SessionDescription {
        let sdp = self.describe();
        self.version += 1;
        sdp
    }

    fn describe(&self) -> SessionDescription {
        let ip = self.local.ip();
        let mut sdp = SessionDescription {
            origin: Origin {
                username: "-".into(),
                session_id: self.session_id.to_string(),
                session_version: self.version,
                net_type: "IN".into(),
                addr_type: crate::sdp::addr_type(ip).into(),
                address: ip.to_string(),
            },
            session_name: "-".into(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            times: vec![Timing { start: 0, stop: 0, repeats: Vec::new() }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        sdp.attributes.push(Attribute::property("ice-lite"));
        let bundled: Vec<&str> = self.streams.iter().filter(|s| !s.is_declined()).map(|s| s.mid.as_str()).collect();
        sdp.attributes.push(Attribute::value("group", format!("BUNDLE {}", bundled.join(" "))));
        sdp.attributes.push(Attribute::value("msid-semantic", " WMS sambung"));
        for (index, stream) in self.streams.iter().enumerate() {
            let formats: Vec<String> = stream
                .formats
                .iter()
                .map(|f| f.pt)
                .chain(stream.rtx.iter().map(|(rtx, _)| *rtx))
                .map(|pt| pt.to_string())
                .collect();
            let declined = stream.is_declined();
            let port = if declined { 0 } else { self.local.port() };
            let formats = if formats.is_empty() { vec!["0".to_owned()] } else { formats };
            let mut m = MediaDescription::new(stream.media.clone(), port, Proto::UdpTlsRtpSavpf, formats);
            m.connections.push(Connection::new(ip));
            if let Some(bps) = stream.max_bitrate.filter(|_| !declined) {
                // The browser's encoder holds to it (RFC 8866 §5.8). One b= line only: str0m's
                // parser takes no more in a media section.
                m.bandwidths.push(crate::sdp::Bandwidth { kind: "AS".into(), value: bps.div_ceil(1000) });
            }
            m.attributes.push(Attribute::value("mid", stream.mid.clone()));
            if declined {
                sdp.media.push(m);
                continue;
            }
            m.attributes.push(Attribute::value("ice-ufrag", self.ufrag.clone()));
            m.attributes.push(Attribute::value("ice-pwd", self.pwd.clone()));
            m.attributes.push(Attribute::value("fingerprint", self.fingerprint.clone()));
            m.attributes.push(Attribute::value("setup", self.setup.as_str()));
            for (id, uri) in &stream.extensions {
                m.attributes.push(Attribute::value("extmap", format!("{id} {uri}")));
            }
            m.attributes.push(Attribute::property(stream.direction.as_str()));
            let video = stream.media == MediaType::Video;
            let track = format!("{}{index}", if video { "video" } else { "audio" });
            m.attributes.push(Attribute::value("msid", format!("sambung {track}")));
            m.attributes.push(Attribute::property("rtcp-mux"));
            for format in &stream.formats {
                m.attributes.push(Attribute::value("rtpmap", format.rtpmap()));
                if let Some(fmtp) = &format.fmtp {
                    m.attributes.push(Attribute::value("fmtp", format!("{} {fmtp}", format.pt)));
                }
                if video {
                    for fb in ["nack", "nack pli", "ccm fir", "goog-remb"] {
                        m.attributes.push(Attribute::value("rtcp-fb", format!("{} {fb}", format.pt)));
                    }
                }
            }
            for (rtx, apt) in &stream.rtx {
                m.attributes.push(Attribute::value("rtpmap", format!("{rtx} rtx/90000")));
                m.attributes.push(Attribute::value("fmtp", format!("{rtx} apt={apt}")));
            }
            if let Some(rtx_ssrc) = stream.rtx_ssrc {
                m.attributes.push(Attribute::value("ssrc-group", format!("FID {} {rtx_ssrc}", stream.ssrc)));
            }
            for ssrc in std::iter::once(stream.ssrc).chain(stream.rtx_ssrc) {
                m.attributes.push(Attribute::value("ssrc", format!("{ssrc} cname:sambung")));
                m.attributes.push(Attribute::value("ssrc", format!("{ssrc} msid:sambung {track}")));
            }
            m.attributes.push(Attribute::value(
                "candidate",
                format!("1 1 udp 2130706431 {} {} typ host", self.local.ip(), self.local.port()),
            ));
            m.attributes.push(Attribute::property("end-of-candidates"));
            sdp.media.push(m);
        }
        sdp
    }
}

/// What a WebRTC leg has for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebRtcOutput {
    /// Send `data` from the leg's socket to `destination`.
    Transmit { destination: SocketAddr, data: Vec<u8> },
    /// An RTP packet from the browser on stream `stream`, decrypted: the header's fields and
    /// the payload.
    Rtp { stream: usize, packet: RtpFields },
    /// The browser asks for a keyframe on `stream` (PLI or FIR).
    KeyframeRequest { stream: usize, fir: bool },
    /// ICE and DTLS are done: media flows.
    Connected,
    /// The leg is over (DTLS closed, or a fatal error).
    Closed,
}

/// An RTP packet's fields, without SRTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpFields {
    pub pt: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

impl RtpFields {
    /// Reads an RTP packet in the clear (RFC 3550 §5.1): CSRCs and extensions skipped,
    /// padding removed. `None` when it is not one.
    pub fn parse(packet: &[u8]) -> Option<RtpFields> {
        let rtp = crate::rtp::RtpPacket::parse(packet).ok()?;
        Some(RtpFields {
            pt: rtp.payload_type(),
            seq: rtp.sequence(),
            timestamp: rtp.timestamp(),
            ssrc: rtp.ssrc(),
            marker: rtp.marker(),
            payload: rtp.payload().to_vec(),
        })
    }

    /// Writes it as a plain RTP packet (version 2, no CSRCs, no extension) into `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.pt & 0x7F));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
    }
}

/// A browser leg. See the [module docs](self).
pub struct WebRtcLeg {
    rtc: Rtc,
    local: SocketAddr,
    streams: Vec<LegStream>,
    outputs: VecDeque<WebRtcOutput>,
    next_timeout: Option<Instant>,
    connected: bool,
    closed: bool,
    /// When the bitrate caps are next told (REMB is a standing report, sent again each second).
    next_remb: Option<Instant>,
}

/// How often a browser is reminded of its bitrate cap.
const REMB_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One stream of a leg.
#[derive(Clone, Debug)]
struct LegStream {
    mid: Mid,
    video: bool,
    /// The cap told to the browser by REMB, bits per second.
    max_bitrate: Option<u64>,
    ssrc: u32,
    pts: Vec<u8>,
    /// The last extended sequence number written, to extend the next 16-bit one.
    last_seq: Option<u64>,
    declined: bool,
}

impl fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("local", &self.local)
            .field("streams", &self.streams.len())
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish()
    }
}

/// ICE credentials from `seed` (RFC 8445 §5.3: a ufrag of at least 24 bits, a password of at
/// least 128 bits, from the ICE character set).
fn credentials(seed: u64) -> (String, String) {
    const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // SplitMix64.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut text = |n: usize| -> String {
        (0..n).map(|_| char::from(ICE_CHARS[(next() % ICE_CHARS.len() as u64) as usize])).collect()
    };
    let ufrag = text(8);
    let pwd = text(24);
    (ufrag, pwd)
}

/// Which of `offered` a WebRTC leg can carry: those we relay, in the given order, audio or
/// video as the stream is; `telephone-event` only beside an audio codec.
pub fn carried(media: &MediaType, offered: &[Format]) -> Vec<Format> {
    choose(media, offered)
}

fn choose(media: &MediaType, offered: &[Format]) -> Vec<Format> {
    let mut chosen: Vec<Format> = offered
        .iter()
        .filter(|f| {
            f.codec().is_some_and(|c| match media {
                MediaType::Audio => c.is_audio() || c == Codec::Tele,
                MediaType::Video => c.is_video(),
                _ => false,
            })
        })
        .cloned()
        .collect();
    if chosen.iter().all(|f| f.codec() == Some(Codec::Tele)) {
        chosen.clear();
    }
    chosen
}

/// What we offer a browser on a new stream of `media` when nothing else decides: Opus,
/// G.722, PCMU, PCMA and telephone-events for audio; VP8 and H.264 (constrained baseline) for
/// video, with the payload types browsers use.
pub fn default_formats(media: &MediaType) -> Vec<Format> {
    let f = |pt: u8, name: &str, clock_rate: u32, channels: Option<u8>, fmtp: Option<&str>| Format {
        pt,
        name: name.to_owned(),
        clock_rate,
        channels,
        fmtp: fmtp.map(str::to_owned),
    };
    match media {
        MediaType::Audio => vec![
            f(111, "opus", 48000, Some(2), Some("minptime=10;useinbandfec=1")),
            f(9, "G722", 8000, None, None),
            f(0, "PCMU", 8000, None, None),
            f(8, "PCMA", 8000, None, None),
            f(126, "telephone-event", 8000, None, Some("0-16")),
        ],
        MediaType::Video => vec![
            f(96, "VP8", 90000, None, None),
            f(102, "H264", 90000, None, Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")),
        ],
        _ => Vec::new(),
    }
}

impl WebRtcLeg {
    /// The leg that speaks `plan` with the browser `remote` describes (its offer, or its
    /// answer to ours): ICE-lite with the plan's credentials and candidate, the plan's
    /// payload types and extension ids, DTLS started in the plan's role.
    pub fn new(
        now: Instant,
        identity: &WebRtcIdentity,
        plan: &WebRtcPlan,
        remote: &RemoteWebRtc,
    ) -> Result<WebRtcLeg, WebRtcError> {
        if plan.setup == Setup::ActPass {
            return Err(WebRtcError::Mismatch("no answer has fixed the DTLS role"));
        }
        let mut config = RtcConfig::new()
            .set_dtls_cert(identity.cert.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .set_local_ice_credentials(IceCreds { ufrag: plan.ufrag.clone(), pass: plan.pwd.clone() });
        // The payload types as negotiated, so that what str0m sends and reads matches our SDP.
        let mut seen = Vec::new();
        for format in plan.streams.iter().flat_map(|s| &s.formats) {
            let (Some(codec), false) = (format.codec(), seen.contains(&format.pt)) else { continue };
            seen.push(format.pt);
            let clock = Frequency::new(format.clock_rate).ok_or(WebRtcError::Mismatch("a zero clock rate"))?;
            let fmtp = format.fmtp.as_deref().map(FormatParams::parse_line).unwrap_or_default();
            let resend = plan
                .streams
                .iter()
                .flat_map(|s| &s.rtx)
                .find(|(_, apt)| *apt == format.pt)
                .map(|(rtx, _)| (*rtx).into());
            config.codec_config().add_config(format.pt.into(), resend, codec, clock, format.channels, fmtp);
        }
        let mut map = ExtensionMap::empty();
        for (id, uri) in plan.streams.iter().flat_map(|s| &s.extensions) {
            if let Some(ext) = EXTENSIONS.iter().find(|e| e.as_uri() == uri) {
                map.set(*id, ext.clone());
            }
        }
        let mut rtc = config.set_extension_map(map).build(now);
        let candidate = Candidate::host(plan.local, "udp")
            .map_err(|e| WebRtcError::Rtc(format!("candidate {}: {e}", plan.local)))?;
        rtc.add_local_candidate(candidate);
        let fingerprint: Fingerprint = remote.fingerprint.parse().map_err(WebRtcError::Fingerprint)?;
        let mut streams = Vec::with_capacity(plan.streams.len());
        {
            let mut api = rtc.direct_api();
            for (index, planned) in plan.streams.iter().enumerate() {
                let mid = Mid::from(planned.mid.as_str());
                let declined = planned.is_declined();
                if !declined {
                    api.declare_media(mid, planned.kind());
                    api.declare_stream_tx(Ssrc::from(planned.ssrc), planned.rtx_ssrc.map(Ssrc::from), mid, None);
                    if let Some(media) = remote.media.get(index)
                        && let Some(ssrc) = media.ssrcs.first()
                    {
                        let rtx = media.rtx_ssrc.filter(|_| !planned.rtx.is_empty()).map(Ssrc::from);
                        api.expect_stream_rx(Ssrc::from(*ssrc), rtx, mid, None);
                    }
                }
                let pts = planned.formats.iter().map(|f| f.pt).collect();
                let video = planned.media == MediaType::Video;
                streams.push(LegStream {
                    mid,
                    video,
                    max_bitrate: planned.max_bitrate,
                    ssrc: planned.ssrc,
                    pts,
                    last_seq: None,
                    declined,
                });
            }
            api.set_remote_ice_credentials(IceCreds { ufrag: remote.ufrag.clone(), pass: remote.pwd.clone() });
            api.set_remote_fingerprint(fingerprint);
            api.set_ice_controlling(false);
            api.start_dtls(plan.dtls_client())?;
        }
        let mut leg = WebRtcLeg {
            rtc,
            local: plan.local,
            streams,
            outputs: VecDeque::new(),
            next_timeout: None,
            connected: false,
            closed: false,
            next_remb: None,
        };
        leg.drain();
        Ok(leg)
    }

    /// The leg's socket address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// True once ICE and DTLS are done.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The streams that carry video (and are not declined).
    pub fn video_streams(&self) -> Vec<usize> {
        self.streams.iter().enumerate().filter(|(_, s)| s.video && !s.declined).map(|(i, _)| i).collect()
    }

    /// A datagram that arrived on the leg's socket from `source`: STUN, DTLS, SRTP or SRTCP.
    /// Anything else is dropped.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else { return };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: self.local, contents });
        if self.rtc.accepts(&input) {
            let _ = self.rtc.handle_input(input);
            self.drain();
        }
    }

    /// Runs str0m's timers (ICE keep-alive, DTLS retransmission, RTCP reports).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.connected && self.next_remb.is_none_or(|at| at <= now) {
            self.next_remb = Some(now + REMB_EVERY);
            let caps: Vec<(Mid, u64)> =
                self.streams.iter().filter(|s| !s.declined).filter_map(|s| Some((s.mid, s.max_bitrate?))).collect();
            let mut api = self.rtc.direct_api();
            for (mid, bps) in caps {
                if let Some(rx) = api.stream_rx_by_mid(mid, None) {
                    rx.request_remb(str0m::bwe::Bitrate::bps(bps));
                }
            }
        }
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.drain();
    }

    /// When [`WebRtcLeg::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let remb = self.next_remb.filter(|_| self.connected && self.streams.iter().any(|s| s.max_bitrate.is_some()));
        match (self.next_timeout, remb) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the leg has for the driver, in order.
    pub fn poll(&mut self) -> Option<WebRtcOutput> {
        self.outputs.pop_front()
    }

    /// Sends an RTP packet to the browser on `stream` (in the clear: str0m protects it).
    /// `seq` is extended across its wraps here. Before the leg is connected, and for a payload
    /// type not negotiated on the stream, it is dropped.
    pub fn write_rtp(&mut self, now: Instant, stream: usize, packet: &RtpFields) -> Result<(), WebRtcError> {
        let leg_stream = self.streams.get_mut(stream).ok_or(WebRtcError::NoSuchStream(stream))?;
        if leg_stream.declined || !self.connected || !leg_stream.pts.contains(&packet.pt) {
            return Ok(());
        }
        let seq = extend_seq(leg_stream.last_seq, packet.seq);
        leg_stream.last_seq = Some(seq.max(leg_stream.last_seq.unwrap_or(0)));
        let ssrc = Ssrc::from(leg_stream.ssrc);
        let mut api: DirectApi<'_> = self.rtc.direct_api();
        let Some(tx) = api.stream_tx(&ssrc) else { return Err(WebRtcError::NoSuchStream(stream)) };
        // Video is kept for retransmission on a NACK; audio is not worth it.
        let write = RtpWrite::new(packet.pt.into(), SeqNo::from(seq), packet.timestamp, now, packet.payload.as_slice())
            .marker(packet.marker)
            .nackable(leg_stream.video);
        tx.write_rtp(write);
        self.drain();
        Ok(())
    }

    /// Asks the browser for a keyframe on `stream` (PLI).
    pub fn request_keyframe(&mut self, stream: usize) -> Result<(), WebRtcError> {
        let mid = self.streams.get(stream).ok_or(WebRtcError::NoSuchStream(stream))?.mid;
        if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
        self.drain();
        Ok(())
    }

    fn stream_of(&self, mid: Mid) -> Option<usize> {
        self.streams.iter().position(|s| s.mid == mid)
    }

    /// Takes everything str0m has to say up to its next timeout.
    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = Some(at);
                    break;
                }
                Ok(Output::Transmit(t)) => self
                    .outputs
                    .push_back(WebRtcOutput::Transmit { destination: t.destination, data: t.contents.to_vec() }),
                Ok(Output::Event(event)) => self.event(event),
                Err(_) => {
                    self.close();
                    break;
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.outputs.push_back(WebRtcOutput::Connected);
            }
            Event::RtpPacket(packet) => {
                let pt = *packet.header.payload_type;
                let by_pt = self.streams.iter().position(|s| !s.declined && s.pts.contains(&pt));
                let stream = packet.header.ext_vals.mid.and_then(|mid| self.stream_of(mid)).or(by_pt);
                let Some(stream) = stream else { return };
                self.outputs.push_back(WebRtcOutput::Rtp {
                    stream,
                    packet: RtpFields {
                        pt,
                        seq: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        ssrc: *packet.header.ssrc,
                        marker: packet.header.marker,
                        payload: packet.payload.to_vec(),
                    },
                });
            }
            Event::KeyframeRequest(request) => {
                if let Some(stream) = self.stream_of(request.mid) {
                    let fir = request.kind == KeyframeRequestKind::Fir;
                    self.outputs.push_back(WebRtcOutput::KeyframeRequest { stream, fir });
                }
            }
            Event::Closed => self.close(),
            _ => {}
        }
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.outputs.push_back(WebRtcOutput::Closed);
        }
    }
}

/// The extended sequence number of `seq` given the last one (RFC 3711 §3.3.1's estimate).
fn extend_seq(last: Option<u64>, seq: u16) -> u64 {
    let Some(last) = last else { return u64::from(seq) };
    let roc = last >> 16;
    let candidates = [roc.wrapping_sub(1), roc, roc + 1].map(|r| (r << 16) | u64::from(seq));
    candidates.into_iter().filter(|c| *c < (1 << 48)).min_by_key(|c| c.abs_diff(last)).unwrap_or(u64::from(seq))
}
