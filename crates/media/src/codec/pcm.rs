//! G.711 behind the [`Encoder`]/[`Decoder`] interface.

use super::{CodecError, CodecKind, Decoder, Encoder};
use crate::g711;
use crate::plc::Plc;

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

/// Decodes PCMU or PCMA; hides losses with [`Plc`] (ITU-T G.711 Appendix I).
#[derive(Debug)]
pub(super) struct G711Decoder {
    kind: CodecKind,
    plc: Plc,
}

impl G711Decoder {
    pub(super) fn new(kind: CodecKind) -> G711Decoder {
        G711Decoder { kind, plc: Plc::new(8000) }
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
        self.plc.good_frame(&mut out[start..]);
        Ok(payload.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        self.plc.conceal(samples, out);
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> i16 {
        (8000.0 * (2.0 * std::f64::consts::PI * 190.0 * n as f64 / 8000.0).sin()) as i16
    }

    #[test]
    fn round_trip_and_concealment() {
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let mut encoder = G711Encoder::new(kind);
            let mut decoder = G711Decoder::new(kind);
            let mut out = Vec::new();
            for frame in 0..10 {
                let pcm: Vec<i16> = (frame * 160..(frame + 1) * 160).map(tone).collect();
                let mut payload = Vec::new();
                assert_eq!(encoder.encode(&pcm, &mut payload).unwrap(), 160);
                assert_eq!(decoder.decode(&payload, &mut out).unwrap(), 160);
            }
            let error: f64 = out.iter().enumerate().map(|(n, &s)| (f64::from(s) - f64::from(tone(n))).abs()).sum();
            assert!(error / 1600.0 < 150.0, "{kind}: mean error {}", error / 1600.0);
            // A lost frame carries the tone on, then fades.
            let mut concealed = Vec::new();
            assert_eq!(decoder.conceal(160, &mut concealed).unwrap(), 160);
            let dot: f64 =
                concealed[..80].iter().enumerate().map(|(i, &s)| f64::from(s) * f64::from(tone(1600 + i))).sum();
            let energy: f64 = (0..80).map(|i| f64::from(tone(1600 + i)).powi(2)).sum();
            assert!(dot / energy > 0.8, "{kind}: {}", dot / energy);
            for _ in 0..5 {
                decoder.conceal(160, &mut concealed).unwrap();
            }
            assert!(concealed[480..].iter().all(|&s| s == 0));
        }
    }
}
