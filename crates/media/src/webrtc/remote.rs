//! What a browser's description says ([`RemoteWebRtc`]), the formats a WebRTC leg carries, and
//! the DTLS role an `a=setup` asks for.

use str0m::config::Fingerprint;
use str0m::format::Codec;

use super::WebRtcError;
use crate::sdp::{MediaType, Proto, SessionDescription};

/// The DTLS role an `a=setup` line asks for (RFC 4145 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
}

impl Setup {
    pub(super) fn parse(value: &str) -> Option<Setup> {
        match value.trim() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn codec(&self) -> Option<Codec> {
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

    pub(super) fn rtpmap(&self) -> String {
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

/// Which of `offered` a WebRTC leg can carry: those we relay, in the given order, audio or
/// video as the stream is; `telephone-event` only beside an audio codec.
pub fn carried(media: &MediaType, offered: &[Format]) -> Vec<Format> {
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
