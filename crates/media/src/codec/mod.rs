//! Audio codecs behind one interface: G.711 mu-law and A-law, G.722 and Opus.
//!
//! A codec is chosen from an SDP `rtpmap` ([`CodecKind::from_rtpmap`]), then
//! [`encoder`] and [`decoder`] make its state. Everything works on 16-bit mono PCM at the
//! codec's own [`CodecKind::sample_rate`]; [`crate::resample`] converts between rates, and the
//! media engine works at 48 kHz inside.
//!
//! ```
//! use sambung_media::codec::{self, CodecKind, EncoderParams};
//!
//! let kind = CodecKind::from_rtpmap("PCMU", 8000, None).unwrap();
//! let mut encoder = codec::encoder(kind, &EncoderParams::default()).unwrap();
//! let mut decoder = codec::decoder(kind).unwrap();
//! let pcm = vec![0i16; kind.frame_samples(20)];
//! let mut payload = Vec::new();
//! assert_eq!(encoder.encode(&pcm, &mut payload).unwrap(), 160);
//! let mut out = Vec::new();
//! assert_eq!(decoder.decode(&payload, &mut out).unwrap(), 160);
//! ```

use std::fmt;

mod g722;
mod opus;
mod pcm;

/// The codecs the engine can decode and encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 mu-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722 (64 kbit/s sub-band ADPCM), static payload type 9; 16 kHz audio with an RTP clock
    /// of 8000 (RFC 3551 §4.5.2).
    G722,
    /// Opus (RFC 7587), dynamic payload type, `opus/48000/2` in SDP whatever it carries.
    Opus,
}

impl CodecKind {
    /// Every codec, in the default order of preference.
    pub const ALL: [CodecKind; 4] = [CodecKind::Opus, CodecKind::G722, CodecKind::Pcmu, CodecKind::Pcma];

    /// The codec an `a=rtpmap` line (or a static payload type's table entry) names, if the
    /// engine has it. Names are case-insensitive (RFC 4855 §3).
    pub fn from_rtpmap(name: &str, clock_rate: u32, channels: Option<u32>) -> Option<CodecKind> {
        let kind = [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::G722, CodecKind::Opus]
            .into_iter()
            .find(|kind| kind.encoding_name().eq_ignore_ascii_case(name))?;
        let channels_ok = match kind {
            CodecKind::Opus => channels == Some(2),
            _ => channels.is_none_or(|c| c == 1),
        };
        (clock_rate == kind.rtp_clock_rate() && channels_ok).then_some(kind)
    }

    /// The codec a static payload type stands for (RFC 3551 table 4), when no `rtpmap` says.
    pub fn from_static_payload_type(pt: u8) -> Option<CodecKind> {
        match pt {
            0 => Some(CodecKind::Pcmu),
            8 => Some(CodecKind::Pcma),
            9 => Some(CodecKind::G722),
            _ => None,
        }
    }

    /// The static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::Opus => None,
        }
    }

    /// The encoding name in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// The RTP timestamp clock rate (what `a=rtpmap` says).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8000,
            CodecKind::Opus => 48_000,
        }
    }

    /// The channel count written in `a=rtpmap`, if any (`opus/48000/2`, RFC 7587 §7).
    pub fn rtpmap_channels(self) -> Option<u32> {
        match self {
            CodecKind::Opus => Some(2),
            _ => None,
        }
    }

    /// The rate of the PCM the encoder takes and the decoder gives.
    pub fn sample_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => 16_000,
            CodecKind::Opus => 48_000,
        }
    }

    /// PCM samples in `ms` milliseconds at [`Self::sample_rate`].
    pub fn frame_samples(self, ms: u32) -> usize {
        (self.sample_rate() / 1000 * ms) as usize
    }

    /// RTP timestamp units in `ms` milliseconds.
    pub fn timestamp_units(self, ms: u32) -> u32 {
        self.rtp_clock_rate() / 1000 * ms
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// Encoder settings that the far end's SDP (`a=fmtp`, RFC 7587 §6.1) or the config decide.
/// Only Opus reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderParams {
    /// Target bit rate in bit/s; `None` lets the codec choose.
    pub bitrate: Option<u32>,
    /// In-band forward error correction (`useinbandfec=1`).
    pub fec: bool,
    /// Expected packet loss in percent, which tunes the FEC.
    pub packet_loss_percent: u8,
    /// Discontinuous transmission (`usedtx=1`): silence sends (almost) nothing.
    pub dtx: bool,
    /// Highest audio rate the receiver will play (`maxplaybackrate`): caps the bandwidth.
    pub max_playback_rate: u32,
}

impl Default for EncoderParams {
    fn default() -> EncoderParams {
        EncoderParams { bitrate: None, fec: true, packet_loss_percent: 5, dtx: false, max_playback_rate: 48_000 }
    }
}

/// Errors of a codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{0} frames of {1} samples cannot be encoded")]
    FrameSize(CodecKind, usize),
    #[error("malformed {0} payload")]
    BadPayload(CodecKind),
    #[error("{0} codec failed: {1}")]
    Codec(CodecKind, String),
}

/// Turns PCM at the codec's rate into RTP payloads.
pub trait Encoder: Send + fmt::Debug {
    fn kind(&self) -> CodecKind;

    /// Encodes one frame of mono PCM at [`CodecKind::sample_rate`] (10, 20, 40 or 60 ms; the
    /// engine uses 20 ms) and appends the payload to `out`. Returns the payload's length;
    /// 0 means nothing is to be sent for this frame (Opus DTX during silence). A frame of a
    /// size the codec cannot take is [`CodecError::FrameSize`] (Opus: 2.5 to 60 ms; G.722: an
    /// even number of samples, two per octet).
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError>;
}

/// Turns RTP payloads into PCM at the codec's rate, and hides lost packets.
pub trait Decoder: Send + fmt::Debug {
    fn kind(&self) -> CodecKind;

    /// Decodes one payload and appends its PCM to `out`. Returns the samples appended. A
    /// payload the codec cannot read is [`CodecError::BadPayload`], and `out` is left as it
    /// was (G.711 and G.722 read any octets; Opus refuses malformed packets, RFC 6716 §3.4).
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Appends `samples` samples standing in for a lost packet (packet loss concealment):
    /// a continuation of the last decoded sound that fades out, not silence. G.711 and
    /// G.722 fade to silence within 60 ms ([`crate::plc`]); Opus uses libopus' concealment,
    /// which fades the voice, then plays noise at the level of the background it heard, and
    /// needs `samples` to be a multiple of 2.5 ms (120).
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Appends `samples` samples for a lost packet when the packet after it, `next`, has
    /// arrived: Opus recovers the lost audio from `next`'s in-band FEC; other codecs conceal.
    /// `next` itself is not decoded: pass it to [`Decoder::decode`] afterwards.
    fn recover(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let _ = next;
        self.conceal(samples, out)
    }
}

/// A new encoder of `kind`.
pub fn encoder(kind: CodecKind, params: &EncoderParams) -> Result<Box<dyn Encoder>, CodecError> {
    match kind {
        CodecKind::Pcmu | CodecKind::Pcma => Ok(Box::new(pcm::G711Encoder::new(kind))),
        CodecKind::G722 => Ok(Box::new(g722::G722Encoder::new())),
        CodecKind::Opus => Ok(Box::new(opus::OpusEncoder::new(params)?)),
    }
}

/// A new decoder of `kind`.
pub fn decoder(kind: CodecKind) -> Result<Box<dyn Decoder>, CodecError> {
    match kind {
        CodecKind::Pcmu | CodecKind::Pcma => Ok(Box::new(pcm::G711Decoder::new(kind))),
        CodecKind::G722 => Ok(Box::new(g722::G722Decoder::new())),
        CodecKind::Opus => Ok(Box::new(opus::OpusDecoder::new()?)),
    }
}
