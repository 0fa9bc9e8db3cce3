//! G.722 (ITU-T G.722 (11/88), 64 kbit/s, mode 1) behind the [`Encoder`]/[`Decoder`] interface.
//!
//! 16 kHz audio is split by a quadrature mirror filter into a lower band (0-4 kHz) coded with
//! 6-bit ADPCM and a higher band (4-8 kHz) coded with 2-bit ADPCM ([`band`]); each pair of
//! samples becomes one octet, the higher band's two bits first (§1.4.4). RTP runs its clock at
//! 8000 Hz regardless (RFC 3551 §4.5.2). As in the common 16-bit implementations, the sub-band
//! signals carry 15 bits of the 16-bit PCM, so full scale in is full scale out.
//!
//! Lost packets are concealed on the 16 kHz output with [`Plc`], and the concealed sound is
//! coded back into the decoder's ADPCM state, which keeps its scale factors and predictors in
//! step with what was played. The decoder's state still differs from the sender's after a loss;
//! the difference fades as both adapt, in about 100 ms.

mod band;

use band::{HighBand, LowBand};

use super::{CodecError, CodecKind, Decoder, Encoder};
use crate::plc::Plc;

/// The 24 QMF coefficients h0..h23 (§3.1.2, table 11), scaled by 2^13.
const QMF: [i32; 24] = [
    3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11,
    3,
];

/// The transmit QMF (§3.1.2): the last 24 input samples, newest last.
#[derive(Debug, Clone, Default)]
struct AnalysisQmf {
    x: [i32; 24],
}

impl AnalysisQmf {
    /// Takes two input samples, oldest first, and returns the lower and higher band samples.
    fn split(&mut self, first: i16, second: i16) -> (i32, i32) {
        self.x.copy_within(2.., 0);
        self.x[22] = i32::from(first);
        self.x[23] = i32::from(second);
        // xA sums the even taps over the newest sample and every other one before it, xB
        // the odd taps over the others.
        let mut xa = 0;
        let mut xb = 0;
        for i in 0..12 {
            xa += QMF[2 * i] * self.x[23 - 2 * i];
            xb += QMF[2 * i + 1] * self.x[22 - 2 * i];
        }
        ((xa + xb) >> 14, (xa - xb) >> 14)
    }
}

/// The receive QMF (§4.4.2): the last 12 differences and sums of the two bands, newest first.
#[derive(Debug, Clone, Default)]
struct SynthesisQmf {
    xd: [i32; 12],
    xs: [i32; 12],
}

impl SynthesisQmf {
    /// Takes one sample of each band and returns two output samples, oldest first.
    fn join(&mut self, rl: i32, rh: i32) -> [i16; 2] {
        self.xd.copy_within(..11, 1);
        self.xs.copy_within(..11, 1);
        self.xd[0] = rl - rh;
        self.xs[0] = rl + rh;
        let mut first = 0;
        let mut second = 0;
        for i in 0..12 {
            first += QMF[2 * i] * self.xd[i];
            second += QMF[2 * i + 1] * self.xs[i];
        }
        [(first >> 11).clamp(-32768, 32767) as i16, (second >> 11).clamp(-32768, 32767) as i16]
    }
}

/// The sub-band coders of one direction, shared by the encoder and (for re-encoding the
/// concealment) the decoder.
#[derive(Debug, Clone, Default)]
struct Bands {
    low: LowBand,
    high: HighBand,
}

impl Bands {
    /// Codes one pair of sub-band samples into an octet, adapting as the decoder will.
    fn encode(&mut self, xl: i32, xh: i32) -> (u8, i32, i32) {
        let il = self.low.quantise(xl);
        let ih = self.high.quantise(xh);
        let code = (ih << 6) | il;
        let (rl, rh) = self.decode(code);
        (code, rl, rh)
    }

    /// Decodes one octet into the reconstructed lower and higher band samples.
    fn decode(&mut self, code: u8) -> (i32, i32) {
        (self.low.decode(code & 63), self.high.decode(code >> 6))
    }
}

/// Encodes 16 kHz PCM into G.722 at 64 kbit/s: one octet per two samples.
#[derive(Debug, Default)]
pub(super) struct G722Encoder {
    qmf: AnalysisQmf,
    bands: Bands,
}

impl G722Encoder {
    pub(super) fn new() -> G722Encoder {
        G722Encoder::default()
    }
}

impl Encoder for G722Encoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        if !pcm.len().is_multiple_of(2) {
            return Err(CodecError::FrameSize(CodecKind::G722, pcm.len()));
        }
        out.reserve(pcm.len() / 2);
        for pair in pcm.chunks_exact(2) {
            let (xl, xh) = self.qmf.split(pair[0], pair[1]);
            out.push(self.bands.encode(xl, xh).0);
        }
        Ok(pcm.len() / 2)
    }
}

/// Decodes G.722 into 16 kHz PCM, concealing losses.
#[derive(Debug)]
pub(super) struct G722Decoder {
    qmf: SynthesisQmf,
    bands: Bands,
    plc: Plc,
    /// The last 22 samples played, newest last, to start the re-encoding of a concealment.
    tail: [i16; 22],
}

impl G722Decoder {
    pub(super) fn new() -> G722Decoder {
        G722Decoder { qmf: SynthesisQmf::default(), bands: Bands::default(), plc: Plc::new(16_000), tail: [0; 22] }
    }

    fn remember(&mut self, played: &[i16]) {
        let n = played.len().min(22);
        self.tail.copy_within(n.., 0);
        self.tail[22 - n..].copy_from_slice(&played[played.len() - n..]);
    }
}

impl Decoder for G722Decoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        out.reserve(payload.len() * 2);
        for &code in payload {
            let (rl, rh) = self.bands.decode(code);
            out.extend(self.qmf.join(rl, rh));
        }
        self.plc.good_frame(&mut out[start..]);
        self.remember(&out[start..]);
        Ok(payload.len() * 2)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        self.plc.conceal(samples, out);
        // Code the concealment as the sender would have coded it, to move the ADPCM state
        // and the receive filter along with it. An odd last sample is left out.
        let mut analysis = AnalysisQmf::default();
        for pair in self.tail.chunks_exact(2) {
            analysis.split(pair[0], pair[1]);
        }
        for pair in out[start..].chunks_exact(2) {
            let (xl, xh) = analysis.split(pair[0], pair[1]);
            let (_, rl, rh) = self.bands.encode(xl, xh);
            self.qmf.join(rl, rh);
        }
        self.remember(&out[start..]);
        Ok(samples)
    }
}

#[cfg(test)]
mod tests;
