//! Call control's side of a WebRTC leg ([`WebRtcPlan`]): plain data, our offers and answers.

use std::net::SocketAddr;

use str0m::format::Codec;
use str0m::media::MediaKind;

use super::remote::{Format, RemoteWebRtc, Setup, carried};
use super::{EXTENSIONS, WebRtcError};
use crate::sdp::{Attribute, Connection, MediaDescription, MediaType, Origin, Proto, SessionDescription, Timing};

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
    pub(super) fn kind(&self) -> MediaKind {
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
                let mut formats = if m.port == 0 { Vec::new() } else { carried(&m.media, &m.formats) };
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
                formats: carried(media, formats),
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

/// ICE credentials from `seed` (RFC 8445 §5.3: a ufrag of at least 24 bits, a password of at
/// least 128 bits, from the ICE character set).
pub(super) fn credentials(seed: u64) -> (String, String) {
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
