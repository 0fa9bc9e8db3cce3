//! G.711 (ITU-T G.711): mu-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8)
//! companding of 16-bit linear PCM, one byte per sample at 8 kHz (RFC 3551 §4.5.14).
//!
//! Encoding follows the segment search of the reference implementation (G.711 tables 1a/2a,
//! as in the ITU-T G.191 software tools and Sun's `g711.c`); decoding reads a 256-entry table
//! built at compile time. Both are bit-exact with those references.
//!
//! ```
//! use sambung_media::g711;
//!
//! assert_eq!(g711::ulaw_encode(0), 0xFF);
//! assert_eq!(g711::alaw_encode(0), 0xD5);
//! assert_eq!(g711::ulaw_decode(0x80), 32124);
//! let mut out = [0u8; 3];
//! assert_eq!(g711::encode_ulaw(&[0, 1000, -1000], &mut out), 3);
//! ```

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;
/// Upper ends of the eight mu-law segments, on the 14-bit magnitude plus bias.
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// Upper ends of the eight A-law segments, on the 13-bit magnitude.
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

fn segment(value: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|&end| value <= end).unwrap_or(8)
}

/// Encodes one 16-bit sample to mu-law (G.711 §3, table 2a). The two least significant bits
/// are below mu-law's 14-bit resolution and are dropped.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut value = i32::from(sample) >> 2;
    let mask = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    value = value.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(value, &ULAW_SEG_END);
    // Past the last segment (full scale): the largest code.
    let code = if seg >= 8 { 0x7F } else { (seg << 4) as i32 | ((value >> (seg + 1)) & 0xF) };
    (code ^ mask) as u8
}

/// Encodes one 16-bit sample to A-law (G.711 §2, table 1a), with the even bits inverted.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut value = i32::from(sample) >> 3;
    let mask = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &ALAW_SEG_END);
    let code = match seg {
        0 | 1 => (seg << 4) as i32 | ((value >> 1) & 0xF),
        2..=7 => (seg << 4) as i32 | ((value >> seg) & 0xF),
        _ => 0x7F,
    };
    (code ^ mask) as u8
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let t = ((((u & 0x0F) as i32) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { ULAW_BIAS - t } else { t - ULAW_BIAS }) as i16
}

const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    t += if seg == 0 { 8 } else { 0x108 };
    if seg > 1 {
        t <<= seg - 1;
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Builds a 256-entry decoding table at compile time (const fns cannot call through pointers).
macro_rules! decode_table {
    ($decode:ident) => {{
        let mut table = [0i16; 256];
        let mut i = 0;
        while i < 256 {
            table[i] = $decode(i as u8);
            i += 1;
        }
        table
    }};
}

static ULAW_TABLE: [i16; 256] = decode_table!(ulaw_to_linear);
static ALAW_TABLE: [i16; 256] = decode_table!(alaw_to_linear);

/// Decodes one mu-law byte to 16-bit linear PCM.
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE[usize::from(code)]
}

/// Decodes one A-law byte to 16-bit linear PCM.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE[usize::from(code)]
}

/// Encodes `pcm` into `out` as mu-law; returns the number of samples written (the shorter
/// of the two lengths).
pub fn encode_ulaw(pcm: &[i16], out: &mut [u8]) -> usize {
    out.iter_mut().zip(pcm).map(|(o, &s)| *o = ulaw_encode(s)).count()
}

/// Encodes `pcm` into `out` as A-law; returns the number of samples written.
pub fn encode_alaw(pcm: &[i16], out: &mut [u8]) -> usize {
    out.iter_mut().zip(pcm).map(|(o, &s)| *o = alaw_encode(s)).count()
}

/// Decodes mu-law `codes` into `out`; returns the number of samples written.
pub fn decode_ulaw(codes: &[u8], out: &mut [i16]) -> usize {
    out.iter_mut().zip(codes).map(|(o, &c)| *o = ulaw_decode(c)).count()
}

/// Decodes A-law `codes` into `out`; returns the number of samples written.
pub fn decode_alaw(codes: &[u8], out: &mut [i16]) -> usize {
    out.iter_mut().zip(codes).map(|(o, &c)| *o = alaw_decode(c)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_and_extremes() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0, "negative zero");
        assert_eq!((alaw_decode(0xD5), alaw_decode(0x55)), (8, -8));
        assert_eq!((ulaw_decode(0x80), ulaw_decode(0x00)), (32124, -32124));
        assert_eq!((alaw_decode(0xAA), alaw_decode(0x2A)), (32256, -32256));
        assert_eq!((ulaw_encode(i16::MAX), ulaw_encode(i16::MIN)), (0x80, 0x00));
        assert_eq!((alaw_encode(i16::MAX), alaw_encode(i16::MIN)), (0xAA, 0x2A));
    }

    #[test]
    fn known_values() {
        // Segment boundaries of G.711 table 2a (mu-law), on 16-bit samples.
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(ulaw_encode(-1000), 0x4E);
        assert_eq!(ulaw_decode(0xCE), 988);
        // G.711 table 1a (A-law).
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_encode(-1000), 0x7A);
        assert_eq!(alaw_decode(0xFA), 1008);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
            // mu-law has two zeros; the negative one (0x7F) encodes as the positive (0xFF).
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(ulaw_decode(code)), expected, "mu-law {code:#04x}");
        }
    }

    #[test]
    fn decoding_is_monotonic_and_symmetric() {
        for code in 0..0x80u8 {
            assert_eq!(ulaw_decode(code), -ulaw_decode(code | 0x80));
            assert_eq!(alaw_decode(code ^ 0x80), -alaw_decode(code));
        }
        let mut previous = i32::MIN;
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let v = i32::from(ulaw_decode(ulaw_encode(s)));
            assert!(v >= previous, "mu-law not monotonic at {s}");
            assert!((v - i32::from(s)).abs() <= 1024, "mu-law error at {s}");
            previous = v;
        }
    }

    #[test]
    fn slices() {
        let pcm = [0i16, 1000, -1000, 32767];
        let mut codes = [0u8; 4];
        assert_eq!(encode_alaw(&pcm, &mut codes), 4);
        let mut back = [0i16; 8];
        assert_eq!(decode_alaw(&codes, &mut back), 4);
        assert_eq!(&back[..4], &[8, 1008, -1008, 32256]);
        assert_eq!(encode_ulaw(&pcm, &mut codes[..2]), 2);
        assert_eq!(decode_ulaw(&codes[..2], &mut back), 2);
        assert_eq!(&back[..2], &[0, 988]);
    }
}
