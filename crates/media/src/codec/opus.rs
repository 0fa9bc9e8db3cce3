//! Opus (RFC 6716) through libopus, behind the [`Encoder`]/[`Decoder`] interface.
//!
//! SDP always says `opus/48000/2` (RFC 7587 §7), but we encode mono: the encoder is forced to
//! one channel, and the decoder, made for one channel, downmixes the stereo packets some
//! devices send. PCM is 48 kHz both ways.

use ::opus::{Application, Bandwidth, Bitrate, Channels};

use super::{CodecError, CodecKind, Decoder, EncoderParams};

/// PCM samples in 2.5 ms at 48 kHz: Opus frames and concealment come in multiples of this.
const QUANTUM: usize = 120;
/// The longest Opus packet: 120 ms at 48 kHz (RFC 6716 §3.2.5).
const MAX_PACKET_SAMPLES: usize = 5760;
/// Room for one encoded packet (libopus' own advice for a 60 ms frame at any bit rate).
const MAX_PAYLOAD: usize = 4000;
/// libopus marks a DTX frame (silence, nothing to send) by a packet this short (RFC 6716 §3.1).
const DTX_PACKET_MAX: usize = 2;

fn codec_error(err: ::opus::Error) -> CodecError {
    CodecError::Codec(CodecKind::Opus, err.to_string())
}

/// The widest audio band a receiver with `max_playback_rate` can play (RFC 7587 §6.1).
fn max_bandwidth(max_playback_rate: u32) -> Bandwidth {
    match max_playback_rate {
        0..=8000 => Bandwidth::Narrowband,
        8001..=16_000 => Bandwidth::Wideband,
        16_001..=24_000 => Bandwidth::Superwideband,
        _ => Bandwidth::Fullband,
    }
}

/// A mono Opus encoder tuned for speech (`OPUS_APPLICATION_VOIP`).
pub(super) struct OpusEncoder {
    inner: ::opus::Encoder,
    params: EncoderParams,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").field("params", &self.params).finish_non_exhaustive()
    }
}

impl OpusEncoder {
    pub(super) fn new(params: &EncoderParams) -> Result<OpusEncoder, CodecError> {
        let mut inner = ::opus::Encoder::new(48_000, Channels::Mono, Application::Voip).map_err(codec_error)?;
        inner.set_force_channels(Some(Channels::Mono)).map_err(codec_error)?;
        inner.set_inband_fec(params.fec).map_err(codec_error)?;
        inner.set_packet_loss_perc(i32::from(params.packet_loss_percent.min(100))).map_err(codec_error)?;
        inner.set_dtx(params.dtx).map_err(codec_error)?;
        inner.set_max_bandwidth(max_bandwidth(params.max_playback_rate)).map_err(codec_error)?;
        let bitrate = match params.bitrate {
            // RFC 6716 §2.1.1: Opus runs from 6 to 510 kbit/s.
            Some(bits) => Bitrate::Bits(bits.clamp(6000, 510_000) as i32),
            None => Bitrate::Auto,
        };
        inner.set_bitrate(bitrate).map_err(codec_error)?;
        Ok(OpusEncoder { inner, params: *params })
    }
}

impl super::Encoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        // 2.5, 5, 10, 20, 40 or 60 ms (RFC 6716 §2.1.4).
        if ![120, 240, 480, 960, 1920, 2880].contains(&pcm.len()) {
            return Err(CodecError::FrameSize(CodecKind::Opus, pcm.len()));
        }
        let start = out.len();
        out.resize(start + MAX_PAYLOAD, 0);
        let written = match self.inner.encode(pcm, &mut out[start..]) {
            Ok(written) => written,
            Err(err) => {
                out.truncate(start);
                return Err(codec_error(err));
            }
        };
        let written = if written <= DTX_PACKET_MAX { 0 } else { written };
        out.truncate(start + written);
        Ok(written)
    }
}

/// A 48 kHz mono Opus decoder with libopus' concealment and in-band FEC.
pub(super) struct OpusDecoder {
    inner: ::opus::Decoder,
    /// Samples per channel of the last packet decoded, the size of a lost one.
    last_samples: usize,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").field("last_samples", &self.last_samples).finish_non_exhaustive()
    }
}

impl OpusDecoder {
    pub(super) fn new() -> Result<OpusDecoder, CodecError> {
        let inner = ::opus::Decoder::new(48_000, Channels::Mono).map_err(codec_error)?;
        Ok(OpusDecoder { inner, last_samples: 960 })
    }

    /// Runs libopus into `out`'s tail, `room` samples wide, keeping only what it wrote.
    fn run(&mut self, input: &[u8], fec: bool, room: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        out.resize(start + room, 0);
        let result = self.inner.decode(input, &mut out[start..], fec);
        let written = match result {
            Ok(written) => written.min(room),
            Err(err) => {
                out.truncate(start);
                return Err(match err.code() {
                    ::opus::ErrorCode::InvalidPacket | ::opus::ErrorCode::BufferTooSmall => {
                        CodecError::BadPayload(CodecKind::Opus)
                    }
                    _ => codec_error(err),
                });
            }
        };
        out.truncate(start + written);
        Ok(written)
    }

    fn check_conceal_size(samples: usize) -> Result<(), CodecError> {
        if samples == 0 || !samples.is_multiple_of(QUANTUM) {
            return Err(CodecError::FrameSize(CodecKind::Opus, samples));
        }
        Ok(())
    }
}

impl Decoder for OpusDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        // An empty payload would mean "lost" to libopus; on the wire it is just malformed.
        if payload.is_empty() {
            return Err(CodecError::BadPayload(CodecKind::Opus));
        }
        let samples =
            ::opus::packet::get_nb_samples(payload, 48_000).map_err(|_| CodecError::BadPayload(CodecKind::Opus))?;
        if samples == 0 || samples > MAX_PACKET_SAMPLES {
            return Err(CodecError::BadPayload(CodecKind::Opus));
        }
        let written = self.run(payload, false, samples, out)?;
        self.last_samples = written;
        Ok(written)
    }

    /// libopus' own concealment (a decode without input). `samples` must be a multiple of
    /// 2.5 ms (120 samples), as every Opus frame is.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        Self::check_conceal_size(samples)?;
        self.run(&[], false, samples, out)
    }

    /// Rebuilds the lost frame from the low-bit-rate copy that `next` carries when the sender
    /// enabled in-band FEC (RFC 6716 §2.1.7); libopus conceals when `next` has none. The
    /// caller decodes `next` itself afterwards, as usual.
    fn recover(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        Self::check_conceal_size(samples)?;
        if next.is_empty() || ::opus::packet::get_nb_samples(next, 48_000).is_err() {
            return self.conceal(samples, out);
        }
        self.run(next, true, samples, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encoder;

    /// A voiced, vowel-like sound: a 140 Hz buzz shaped by two formants.
    fn vowel(samples: usize, rate: f64) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                let t = n as f64 / rate;
                let f0 = 140.0;
                let mut v = 0.0;
                for h in 1..40 {
                    let f = f0 * h as f64;
                    if f > rate / 2.0 - 200.0 {
                        break;
                    }
                    let formant = |fc: f64, bw: f64| 1.0 / (1.0 + ((f - fc) / bw).powi(2));
                    let gain = formant(700.0, 150.0) + 0.6 * formant(1200.0, 200.0) + 0.2 * formant(2600.0, 300.0);
                    v += gain * (2.0 * std::f64::consts::PI * f * t).sin() / h as f64;
                }
                (v * 6000.0) as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    fn params() -> EncoderParams {
        EncoderParams::default()
    }

    #[test]
    fn round_trip_keeps_the_sound() {
        let mut enc = OpusEncoder::new(&params()).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let input = vowel(48_000, 48_000.0);
        let mut output = Vec::new();
        for frame in input.chunks(960) {
            let mut payload = Vec::new();
            let n = enc.encode(frame, &mut payload).unwrap();
            assert!(n > 10 && n == payload.len(), "payload of {n} bytes");
            assert_eq!(dec.decode(&payload, &mut output).unwrap(), 960);
        }
        assert_eq!(output.len(), input.len());
        // After the codec's delay, the level matches the input's.
        let ratio = rms(&output[9600..]) / rms(&input[9600..]);
        assert!((0.7..1.3).contains(&ratio), "level ratio {ratio}");
    }

    #[test]
    fn appends_to_what_is_already_in_the_buffers() {
        let mut enc = OpusEncoder::new(&params()).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut payload = vec![0xAA];
        let n = enc.encode(&vowel(960, 48_000.0), &mut payload).unwrap();
        assert_eq!(payload.len(), n + 1);
        assert_eq!(payload[0], 0xAA);
        let mut out = vec![7i16];
        dec.decode(&payload[1..], &mut out).unwrap();
        assert_eq!(out.len(), 961);
        assert_eq!(out[0], 7);
    }

    #[test]
    fn dtx_sends_nothing_during_silence() {
        let mut enc = OpusEncoder::new(&EncoderParams { dtx: true, ..params() }).unwrap();
        let silence = vec![0i16; 960];
        let mut sent = 0;
        let mut skipped = 0;
        // libopus enters DTX after 200 ms of silence, then sends an update every 400 ms.
        for _ in 0..100 {
            let mut payload = Vec::new();
            let n = enc.encode(&silence, &mut payload).unwrap();
            assert_eq!(n, payload.len());
            if n == 0 { skipped += 1 } else { sent += 1 }
        }
        assert!(skipped > 75, "{skipped} frames skipped, {sent} sent");
        // Without DTX every frame goes out.
        let mut enc = OpusEncoder::new(&params()).unwrap();
        for _ in 0..50 {
            let mut payload = Vec::new();
            assert!(enc.encode(&silence, &mut payload).unwrap() > 0);
        }
    }

    #[test]
    fn max_playback_rate_caps_the_bandwidth() {
        for (rate, toc_bandwidth) in [
            (8000, Bandwidth::Narrowband),
            (16_000, Bandwidth::Wideband),
            (24_000, Bandwidth::Superwideband),
            (48_000, Bandwidth::Fullband),
        ] {
            let p = EncoderParams { max_playback_rate: rate, bitrate: Some(64_000), ..params() };
            let mut enc = OpusEncoder::new(&p).unwrap();
            let input = vowel(48_000, 48_000.0);
            let mut widest = Bandwidth::Narrowband as i32;
            for frame in input.chunks(960) {
                let mut payload = Vec::new();
                enc.encode(frame, &mut payload).unwrap();
                widest = widest.max(::opus::packet::get_bandwidth(&payload).unwrap() as i32);
            }
            assert_eq!(widest, toc_bandwidth as i32, "max playback rate {rate}");
        }
    }

    #[test]
    fn bitrate_is_honoured() {
        let bytes_per_second = |bitrate| {
            let mut enc = OpusEncoder::new(&EncoderParams { bitrate: Some(bitrate), ..params() }).unwrap();
            let input = vowel(96_000, 48_000.0);
            let mut total = 0;
            for frame in input.chunks(960) {
                total += enc.encode(frame, &mut Vec::new()).unwrap();
            }
            total / 2
        };
        let low = bytes_per_second(12_000);
        let high = bytes_per_second(48_000);
        assert!((1000..2200).contains(&low), "12 kbit/s gave {low} bytes/s");
        assert!((4500..7500).contains(&high), "48 kbit/s gave {high} bytes/s");
    }

    #[test]
    fn frame_sizes_are_checked() {
        let mut enc = OpusEncoder::new(&params()).unwrap();
        assert_eq!(enc.encode(&[0; 1000], &mut Vec::new()), Err(CodecError::FrameSize(CodecKind::Opus, 1000)));
        for ms in [10, 20, 40, 60] {
            assert!(enc.encode(&vec![0; ms * 48], &mut Vec::new()).is_ok(), "{ms} ms");
        }
        let mut dec = OpusDecoder::new().unwrap();
        assert_eq!(dec.conceal(100, &mut Vec::new()), Err(CodecError::FrameSize(CodecKind::Opus, 100)));
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(dec.decode(&[], &mut out), Err(CodecError::BadPayload(CodecKind::Opus)));
        // Code 3 (RFC 6716 §3.2.5) with no frame count byte.
        assert_eq!(dec.decode(&[0x03], &mut out), Err(CodecError::BadPayload(CodecKind::Opus)));
        // Code 3 asking for 63 frames of 20 ms: 1.26 s, more than 120 ms.
        assert_eq!(dec.decode(&[0x0B, 0x3F, 0, 0], &mut out), Err(CodecError::BadPayload(CodecKind::Opus)));
        // Code 2 whose first frame's length runs past the end.
        assert_eq!(dec.decode(&[0x0A, 200, 1, 2], &mut out), Err(CodecError::BadPayload(CodecKind::Opus)));
        assert!(out.is_empty());
        // Random bytes never panic; each either decodes or is refused.
        let mut state = 0x1234_5678_u32;
        for len in 1..200 {
            let payload: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let before = out.len();
            match dec.decode(&payload, &mut out) {
                Ok(n) => assert_eq!(out.len(), before + n),
                Err(err) => {
                    assert_eq!(err, CodecError::BadPayload(CodecKind::Opus));
                    assert_eq!(out.len(), before);
                }
            }
        }
        // The decoder still works afterwards.
        let mut enc = OpusEncoder::new(&params()).unwrap();
        let mut payload = Vec::new();
        enc.encode(&vowel(960, 48_000.0), &mut payload).unwrap();
        assert_eq!(dec.decode(&payload, &mut Vec::new()).unwrap(), 960);
    }

    #[test]
    fn stereo_packets_are_downmixed() {
        let mut stereo = ::opus::Encoder::new(48_000, Channels::Stereo, Application::Voip).unwrap();
        let mono = vowel(48_000, 48_000.0);
        // The same sound on both channels.
        let interleaved: Vec<i16> = mono.iter().flat_map(|&s| [s, s]).collect();
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        for frame in interleaved.chunks(1920) {
            let mut payload = vec![0; MAX_PAYLOAD];
            let n = stereo.encode(frame, &mut payload).unwrap();
            assert_eq!(::opus::packet::get_nb_channels(&payload[..n]).unwrap(), Channels::Stereo);
            assert_eq!(dec.decode(&payload[..n], &mut out).unwrap(), 960);
        }
        assert_eq!(out.len(), mono.len());
        let ratio = rms(&out[9600..]) / rms(&mono[9600..]);
        assert!((0.7..1.3).contains(&ratio), "level ratio {ratio}");
    }

    #[test]
    fn concealment_continues_then_fades() {
        let mut enc = OpusEncoder::new(&params()).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let input = vowel(48_000, 48_000.0);
        let mut out = Vec::new();
        for frame in input[..24_000].chunks(960) {
            let mut payload = Vec::new();
            enc.encode(frame, &mut payload).unwrap();
            dec.decode(&payload, &mut out).unwrap();
        }
        let level = rms(&out[14_400..]);
        let mut concealed = Vec::new();
        for _ in 0..25 {
            assert_eq!(dec.conceal(960, &mut concealed).unwrap(), 960);
        }
        assert_eq!(concealed.len(), 24_000);
        let levels: Vec<f64> = concealed.chunks(960).map(rms).collect();
        // The first lost frame still sounds, then the voice fades within 100 ms. libopus then
        // plays noise at the level of the background it estimated (here, the vowel itself).
        assert!(levels[0] > level * 0.5, "{levels:?} vs {level}");
        assert!(levels[..5].iter().any(|&l| l < level * 0.25), "{levels:?} vs {level}");
        // The sound continues the vowel: it correlates with the next period of the input.
        let period = 48_000 / 140 * 4;
        let tail = &out[out.len() - period..];
        let head = &concealed[..period];
        let dot: f64 = tail.iter().zip(head).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
        let norm = (tail.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>()
            * head.iter().map(|&b| f64::from(b).powi(2)).sum::<f64>())
        .sqrt();
        assert!(dot / norm > 0.5, "correlation {}", dot / norm);
        // A packet after the loss decodes as usual.
        let mut payload = Vec::new();
        enc.encode(&input[24_000..24_960], &mut payload).unwrap();
        assert_eq!(dec.decode(&payload, &mut Vec::new()).unwrap(), 960);
    }

    #[test]
    fn fec_recovers_a_lost_frame_better_than_concealment() {
        // A rising tone that concealment cannot guess.
        let input: Vec<i16> = (0..48_000)
            .map(|n| {
                let t = n as f64 / 48_000.0;
                (8000.0 * (2.0 * std::f64::consts::PI * (200.0 * t + 300.0 * t * t)).sin()) as i16
            })
            .collect();
        let p = EncoderParams { fec: true, packet_loss_percent: 20, bitrate: Some(32_000), ..params() };
        let mut enc = OpusEncoder::new(&p).unwrap();
        let payloads: Vec<Vec<u8>> = input
            .chunks(960)
            .map(|frame| {
                let mut payload = Vec::new();
                enc.encode(frame, &mut payload).unwrap();
                payload
            })
            .collect();
        let lost = 30;
        let run = |use_fec: bool| {
            let mut dec = OpusDecoder::new().unwrap();
            let mut out = Vec::new();
            for (i, payload) in payloads.iter().enumerate() {
                if i == lost {
                    continue;
                }
                if i == lost + 1 {
                    if use_fec {
                        dec.recover(payload, 960, &mut out).unwrap();
                    } else {
                        dec.conceal(960, &mut out).unwrap();
                    }
                }
                dec.decode(payload, &mut out).unwrap();
            }
            out
        };
        let reference = {
            let mut dec = OpusDecoder::new().unwrap();
            let mut out = Vec::new();
            for payload in &payloads {
                dec.decode(payload, &mut out).unwrap();
            }
            out
        };
        let error = |out: &[i16]| {
            let span = lost * 960..(lost + 1) * 960;
            out[span.clone()]
                .iter()
                .zip(&reference[span])
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
        };
        let with_fec = run(true);
        let without = run(false);
        assert_eq!(with_fec.len(), reference.len());
        let (e_fec, e_plc) = (error(&with_fec), error(&without));
        assert!(e_fec * 4.0 < e_plc, "FEC error {e_fec}, concealment error {e_plc}");
    }

    #[test]
    fn recover_without_fec_data_conceals() {
        let mut enc = OpusEncoder::new(&EncoderParams { fec: false, ..params() }).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut payload = Vec::new();
        enc.encode(&vowel(960, 48_000.0), &mut payload).unwrap();
        let mut out = Vec::new();
        dec.decode(&payload, &mut out).unwrap();
        assert_eq!(dec.recover(&payload, 960, &mut out).unwrap(), 960);
        assert_eq!(dec.recover(&[], 480, &mut out).unwrap(), 480);
        assert_eq!(out.len(), 2400);
    }

    #[test]
    fn bandwidth_from_max_playback_rate() {
        assert_eq!(max_bandwidth(8000), Bandwidth::Narrowband);
        assert_eq!(max_bandwidth(12_000), Bandwidth::Wideband);
        assert_eq!(max_bandwidth(16_000), Bandwidth::Wideband);
        assert_eq!(max_bandwidth(24_000), Bandwidth::Superwideband);
        assert_eq!(max_bandwidth(32_000), Bandwidth::Fullband);
        assert_eq!(max_bandwidth(48_000), Bandwidth::Fullband);
    }
}
