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
//! - [`WebRtcLeg::answer`]: our answer to a browser's offer, and the leg that speaks it;
//!   [`WebRtcLeg::offer`] and [`WebRtcLeg::accept_answer`] the other way round;
//! - [`WebRtcLeg::receive`] (a datagram from the leg's socket), [`WebRtcLeg::write_rtp`]
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
            if let Some(group) =
                m.attributes_named("ssrc-group").filter_map(|a| a.value.as_deref()).find(|v| v.starts_with("FID "))
            {
                let ids: Vec<u32> = group.split_ascii_whitespace().skip(1).filter_map(|s| s.parse().ok()).collect();
                if let [primary, rtx, ..] = ids[..] {
                    ssrcs.retain(|s| *s != rtx);
                    ssrcs.retain(|s| *s != primary);
                    ssrcs.insert(0, primary);
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
            });
        }
        if media.iter().all(|m| m.port == 0) {
            return Err(WebRtcError::NoMedia);
        }
        Ok(RemoteWebRtc { ufrag, pwd, fingerprint, setup, media })
    }
}

/// A stream to set up: its media type, its formats (none: declined) and its header
/// extensions (id, URI).
type StreamPlan = (MediaType, Vec<Format>, Vec<(u8, String)>);

/// One stream of a leg, as negotiated.
#[derive(Clone, Debug)]
struct LegStream {
    mid: Mid,
    kind: MediaKind,
    /// Our SSRC toward the browser.
    ssrc: u32,
    formats: Vec<Format>,
    /// The last extended sequence number written, to extend the next 16-bit one.
    last_seq: Option<u64>,
    /// Declined (port 0): nothing flows.
    declined: bool,
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
    /// The leg is over (DTLS closed, or ICE failed for good).
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

/// A browser leg. See the [module docs](self).
pub struct WebRtcLeg {
    rtc: Rtc,
    /// The leg's socket address: our only candidate.
    local: SocketAddr,
    ufrag: String,
    pwd: String,
    fingerprint: String,
    streams: Vec<LegStream>,
    outputs: VecDeque<WebRtcOutput>,
    next_timeout: Option<Instant>,
    connected: bool,
    closed: bool,
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

/// Which of `offered` we answer with: those we relay, in the offerer's order (RFC 3264 §6.1),
/// audio or video as the stream is; `telephone-event` only beside an audio codec.
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

/// What we offer a browser on a new stream of `media`: Opus, G.722, PCMU, PCMA and
/// telephone-events for audio; VP8 and H.264 (constrained baseline) for video, with the
/// payload types browsers use.
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
    fn build(
        now: Instant,
        identity: &WebRtcIdentity,
        local: SocketAddr,
        seed: u64,
        streams: &[StreamPlan],
    ) -> Result<WebRtcLeg, WebRtcError> {
        let (ufrag, pwd) = credentials(seed);
        let mut config = RtcConfig::new()
            .set_dtls_cert(identity.cert.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .set_local_ice_credentials(IceCreds { ufrag: ufrag.clone(), pass: pwd.clone() });
        // The payload types as negotiated, so that what str0m sends and reads matches our SDP.
        let mut seen = Vec::new();
        for format in streams.iter().flat_map(|(_, formats, _)| formats) {
            let (Some(codec), false) = (format.codec(), seen.contains(&format.pt)) else { continue };
            seen.push(format.pt);
            let clock = Frequency::new(format.clock_rate).ok_or(WebRtcError::Mismatch("a zero clock rate"))?;
            let fmtp = format.fmtp.as_deref().map(FormatParams::parse_line).unwrap_or_default();
            config.codec_config().add_config(format.pt.into(), None, codec, clock, format.channels, fmtp);
        }
        let mut map = ExtensionMap::empty();
        for (id, uri) in streams.iter().flat_map(|(_, _, e)| e) {
            if let Some(ext) = EXTENSIONS.iter().find(|e| e.as_uri() == uri) {
                map.set(*id, ext.clone());
            }
        }
        let config = config.set_extension_map(map);
        let mut rtc = config.build(now);
        let candidate =
            Candidate::host(local, "udp").map_err(|e| WebRtcError::Rtc(format!("candidate {local}: {e}")))?;
        rtc.add_local_candidate(candidate);
        let mut leg = WebRtcLeg {
            rtc,
            local,
            ufrag,
            pwd,
            fingerprint: identity.fingerprint.clone(),
            streams: Vec::new(),
            outputs: VecDeque::new(),
            next_timeout: None,
            connected: false,
            closed: false,
        };
        let mut ssrc_seed = seed.rotate_left(17) | 1;
        for (index, (media, formats, _)) in streams.iter().enumerate() {
            ssrc_seed = ssrc_seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let kind = if *media == MediaType::Video { MediaKind::Video } else { MediaKind::Audio };
            leg.streams.push(LegStream {
                mid: Mid::from(index.to_string().as_str()),
                kind,
                ssrc: (ssrc_seed >> 32) as u32 | 1,
                formats: formats.clone(),
                last_seq: None,
                declined: formats.is_empty(),
            });
        }
        Ok(leg)
    }

    /// Declares the streams to str0m (once the remote side's mids are known).
    fn declare(&mut self, remote: &RemoteWebRtc) {
        let mut api = self.rtc.direct_api();
        for (stream, media) in self.streams.iter().zip(&remote.media) {
            if stream.declined {
                continue;
            }
            api.declare_media(stream.mid, stream.kind);
            api.declare_stream_tx(Ssrc::from(stream.ssrc), None, stream.mid, None);
            if let Some(ssrc) = media.ssrcs.first() {
                api.expect_stream_rx(Ssrc::from(*ssrc), None, stream.mid, None);
            }
        }
    }

    /// Tells str0m who the browser is and starts DTLS in the role the answer fixed.
    fn connect(&mut self, remote: &RemoteWebRtc, dtls_client: bool) -> Result<(), WebRtcError> {
        let fingerprint: Fingerprint = remote.fingerprint.parse().map_err(WebRtcError::Fingerprint)?;
        let mut api = self.rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds { ufrag: remote.ufrag.clone(), pass: remote.pwd.clone() });
        api.set_remote_fingerprint(fingerprint);
        api.set_ice_controlling(false);
        api.start_dtls(dtls_client)?;
        Ok(())
    }

    /// Answers a browser's offer: a leg on `local` (the relay socket's address) and our
    /// answer, each stream with the offered formats we relay (declined when none).
    pub fn answer(
        now: Instant,
        identity: &WebRtcIdentity,
        offer: &SessionDescription,
        local: SocketAddr,
        seed: u64,
    ) -> Result<(WebRtcLeg, SessionDescription), WebRtcError> {
        let remote = RemoteWebRtc::parse(offer)?;
        let streams: Vec<_> = remote
            .media
            .iter()
            .map(|m| {
                let formats = if m.port == 0 { Vec::new() } else { choose(&m.media, &m.formats) };
                (m.media.clone(), formats, m.extensions.clone())
            })
            .collect();
        if streams.iter().all(|(_, formats, _)| formats.is_empty()) {
            return Err(WebRtcError::NoMedia);
        }
        let mut leg = WebRtcLeg::build(now, identity, local, seed, &streams)?;
        // Our mids are the offer's (RFC 8843 §7.3.1: an answer keeps them).
        for (stream, media) in leg.streams.iter_mut().zip(&remote.media) {
            stream.mid = Mid::from(media.mid.as_str());
        }
        leg.declare(&remote);
        // Answering actpass or passive we are passive... unless the offer is passive.
        let ours = if remote.setup == Setup::Passive { Setup::Active } else { Setup::Passive };
        leg.connect(&remote, ours == Setup::Active)?;
        let answer = leg.description(seed, ours, Some(&remote));
        Ok((leg, answer))
    }

    /// Offers a browser the streams `media` (each with [`default_formats`]) from `local`;
    /// [`WebRtcLeg::accept_answer`] takes the browser's answer.
    pub fn offer(
        now: Instant,
        identity: &WebRtcIdentity,
        media: &[MediaType],
        local: SocketAddr,
        seed: u64,
    ) -> Result<(WebRtcLeg, SessionDescription), WebRtcError> {
        let extensions: Vec<(u8, String)> =
            EXTENSIONS.iter().enumerate().map(|(i, e)| (i as u8 + 1, e.as_uri().to_owned())).collect();
        let streams: Vec<_> = media.iter().map(|m| (m.clone(), default_formats(m), extensions.clone())).collect();
        if streams.iter().all(|(_, formats, _)| formats.is_empty()) {
            return Err(WebRtcError::NoMedia);
        }
        let leg = WebRtcLeg::build(now, identity, local, seed, &streams)?;
        let offer = leg.description(seed, Setup::ActPass, None);
        Ok((leg, offer))
    }

    /// Takes the browser's answer to [`WebRtcLeg::offer`]: the formats it kept, its ICE
    /// credentials and fingerprint, and the DTLS role it chose.
    pub fn accept_answer(&mut self, answer: &SessionDescription) -> Result<(), WebRtcError> {
        let remote = RemoteWebRtc::parse(answer)?;
        if remote.media.len() != self.streams.len() {
            return Err(WebRtcError::Mismatch("another number of m= lines"));
        }
        for (stream, media) in self.streams.iter_mut().zip(&remote.media) {
            if media.mid != stream.mid.to_string() {
                return Err(WebRtcError::Mismatch("another mid"));
            }
            if media.port == 0 {
                stream.declined = true;
                continue;
            }
            stream.formats.retain(|ours| media.formats.iter().any(|f| f.pt == ours.pt));
            stream.declined = stream.formats.is_empty();
        }
        self.declare(&remote);
        let dtls_client = match remote.setup {
            Setup::Active => false,
            Setup::Passive => true,
            Setup::ActPass => return Err(WebRtcError::Mismatch("a=setup:actpass in an answer")),
        };
        self.connect(&remote, dtls_client)
    }

    /// Our description: `setup` as given; for an answer, each stream as `remote` offered it
    /// (its mid, the reverse of its direction, its extension ids).
    fn description(&self, seed: u64, setup: Setup, remote: Option<&RemoteWebRtc>) -> SessionDescription {
        let ip = self.local.ip();
        let addr_type = crate::sdp::addr_type(ip);
        let mut sdp = SessionDescription {
            origin: Origin {
                username: "-".into(),
                session_id: (seed >> 1).to_string(),
                session_version: 1,
                net_type: "IN".into(),
                addr_type: addr_type.into(),
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
        let bundled: Vec<String> = self.streams.iter().filter(|s| !s.declined).map(|s| s.mid.to_string()).collect();
        sdp.attributes.push(Attribute::value("group", format!("BUNDLE {}", bundled.join(" "))));
        sdp.attributes.push(Attribute::value("msid-semantic", " WMS sambung"));
        for (index, stream) in self.streams.iter().enumerate() {
            let remote_media = remote.and_then(|r| r.media.get(index));
            let media_type = remote_media
                .map_or(if stream.kind == MediaKind::Video { MediaType::Video } else { MediaType::Audio }, |m| {
                    m.media.clone()
                });
            let formats: Vec<String> = stream.formats.iter().map(|f| f.pt.to_string()).collect();
            let port = if stream.declined { 0 } else { self.local.port() };
            let formats = if formats.is_empty() { vec!["0".to_owned()] } else { formats };
            let mut m = MediaDescription::new(media_type, port, Proto::UdpTlsRtpSavpf, formats);
            m.connections.push(Connection::new(ip));
            m.attributes.push(Attribute::value("mid", stream.mid.to_string()));
            if stream.declined {
                sdp.media.push(m);
                continue;
            }
            m.attributes.push(Attribute::value("ice-ufrag", self.ufrag.clone()));
            m.attributes.push(Attribute::value("ice-pwd", self.pwd.clone()));
            m.attributes.push(Attribute::value("fingerprint", self.fingerprint.clone()));
            m.attributes.push(Attribute::value("setup", setup.as_str()));
            let extensions: Vec<(u8, String)> = match remote_media {
                Some(media) => media
                    .extensions
                    .iter()
                    .filter(|(_, uri)| EXTENSIONS.iter().any(|e| e.as_uri() == uri))
                    .cloned()
                    .collect(),
                None => EXTENSIONS.iter().enumerate().map(|(i, e)| (i as u8 + 1, e.as_uri().to_owned())).collect(),
            };
            for (id, uri) in extensions {
                m.attributes.push(Attribute::value("extmap", format!("{id} {uri}")));
            }
            let direction = remote_media.map_or(crate::sdp::Direction::SendRecv, |m| m.direction.reversed());
            m.attributes.push(Attribute::property(direction.as_str()));
            let track = if stream.kind == MediaKind::Video { "video" } else { "audio" };
            m.attributes.push(Attribute::value("msid", format!("sambung {track}{index}")));
            m.attributes.push(Attribute::property("rtcp-mux"));
            for format in &stream.formats {
                m.attributes.push(Attribute::value("rtpmap", format.rtpmap()));
                if let Some(fmtp) = &format.fmtp {
                    m.attributes.push(Attribute::value("fmtp", format!("{} {fmtp}", format.pt)));
                }
                if stream.kind == MediaKind::Video && format.codec() != Some(Codec::Tele) {
                    for fb in ["nack", "nack pli", "ccm fir", "goog-remb"] {
                        m.attributes.push(Attribute::value("rtcp-fb", format!("{} {fb}", format.pt)));
                    }
                }
            }
            m.attributes.push(Attribute::value("ssrc", format!("{} cname:sambung", stream.ssrc)));
            m.attributes.push(Attribute::value("ssrc", format!("{} msid:sambung {track}{index}", stream.ssrc)));
            m.attributes.push(Attribute::value(
                "candidate",
                format!("1 1 udp 2130706431 {} {} typ host", self.local.ip(), self.local.port()),
            ));
            m.attributes.push(Attribute::property("end-of-candidates"));
            sdp.media.push(m);
        }
        sdp
    }

    /// The leg's socket address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// True once ICE and DTLS are done.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The payload formats negotiated on `stream`.
    pub fn formats(&self, stream: usize) -> Option<&[Format]> {
        self.streams.get(stream).map(|s| s.formats.as_slice())
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
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.drain();
    }

    /// When [`WebRtcLeg::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed { None } else { self.next_timeout }
    }

    /// What the leg has for the driver, in order.
    pub fn poll(&mut self) -> Option<WebRtcOutput> {
        self.outputs.pop_front()
    }

    /// Sends an RTP packet to the browser on `stream` (in the clear: str0m protects it).
    /// `seq` is extended across its wraps here. Before the leg is connected it is dropped.
    pub fn write_rtp(&mut self, now: Instant, stream: usize, packet: &RtpFields) -> Result<(), WebRtcError> {
        let leg_stream = self.streams.get_mut(stream).ok_or(WebRtcError::NoSuchStream(stream))?;
        if leg_stream.declined || !self.connected {
            return Ok(());
        }
        let seq = extend_seq(leg_stream.last_seq, packet.seq);
        leg_stream.last_seq = Some(seq);
        let ssrc = Ssrc::from(leg_stream.ssrc);
        let mut api: DirectApi<'_> = self.rtc.direct_api();
        let Some(tx) = api.stream_tx(&ssrc) else { return Err(WebRtcError::NoSuchStream(stream)) };
        let write = RtpWrite::new(packet.pt.into(), SeqNo::from(seq), packet.timestamp, now, packet.payload.as_slice())
            .marker(packet.marker);
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
                let Some(stream) = self
                    .streams
                    .iter()
                    .position(|s| !s.declined && s.formats.iter().any(|f| f.pt == *packet.header.payload_type))
                else {
                    return;
                };
                let stream = match packet.header.ext_vals.mid {
                    Some(mid) => self.stream_of(mid).unwrap_or(stream),
                    None => stream,
                };
                self.outputs.push_back(WebRtcOutput::Rtp {
                    stream,
                    packet: RtpFields {
                        pt: *packet.header.payload_type,
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
