//! G.711 behind the [`Encoder`]/[`Decoder`] interface.

use super::{CodecError, CodecKind, Decoder, Encoder};
use crate::g711;

/// Encodes PCMU or PCMA: one byte per sample.
#[derive(Debug)]
pub(super) struct G711Encoder {
    kind: CodecKind,
}

impl G711Encoder {
    pub(super) fn new(kind: CodecKind) -> G711Encoder {
        G711Encoder { kind }
    }
}

impl Encoder for G711Encoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        let encode = if self.kind == CodecKind::Pcmu { g711::ulaw_encode } else { g711::alaw_encode };
        out.extend(pcm.iter().map(|&s| encode(s)));
        Ok(pcm.len())
    }
}

/// Decodes PCMU or PCMA; conceals losses by repeating the last decoded audio, fading it out.
#[derive(Debug)]
pub(super) struct G711Decoder {
    kind: CodecKind,
    /// The last 20 ms decoded, for concealment.
    history: Vec<i16>,
    /// Consecutive frames concealed so far.
    concealed: u32,
}

/// Samples of history kept for concealment (20 ms at 8 kHz).
const HISTORY: usize = 160;

impl G711Decoder {
    pub(super) fn new(kind: CodecKind) -> G711Decoder {
        G711Decoder { kind, history: Vec::with_capacity(HISTORY), concealed: 0 }
    }
}

impl Decoder for G711Decoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let decode = if self.kind == CodecKind::Pcmu { g711::ulaw_decode } else { g711::alaw_decode };
        let start = out.len();
        out.extend(payload.iter().map(|&c| decode(c)));
        let decoded = &out[start..];
        let keep = decoded.len().min(HISTORY);
        if keep == HISTORY {
            self.history.clear();
        } else {
            let drop = (self.history.len() + keep).saturating_sub(HISTORY);
            self.history.drain(..drop);
        }
        self.history.extend_from_slice(&decoded[decoded.len() - keep..]);
        self.concealed = 0;
        Ok(payload.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        // Each concealed frame is 6 dB quieter; after 60 ms only silence is left.
        self.concealed += 1;
        if self.history.is_empty() || self.concealed > 3 {
            out.extend(std::iter::repeat_n(0, samples));
            return Ok(samples);
        }
        let shift = self.concealed;
        let history = &self.history;
        out.extend((0..samples).map(|i| history[i % history.len()] >> shift));
        Ok(samples)
    }
}
