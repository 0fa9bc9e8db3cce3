use super::*;

fn sine(freq: f64, amplitude: f64, samples: usize) -> Vec<i16> {
    (0..samples).map(|n| (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / 16_000.0).sin()) as i16).collect()
}

fn code(input: &[i16]) -> (Vec<u8>, Vec<i16>) {
    let mut encoder = G722Encoder::new();
    let mut decoder = G722Decoder::new();
    let mut payload = Vec::new();
    let mut output = Vec::new();
    for frame in input.chunks(320) {
        let start = payload.len();
        assert_eq!(encoder.encode(frame, &mut payload).unwrap(), frame.len() / 2);
        assert_eq!(decoder.decode(&payload[start..], &mut output).unwrap(), frame.len());
    }
    (payload, output)
}

/// Samples by which the codec delays the signal (1.375 ms), all of it in the two QMFs.
const DELAY: usize = 22;

/// Signal-to-noise ratio of `output` against `input` delayed by [`DELAY`], in dB, skipping
/// the first `skip` samples while the ADPCM adapts.
fn snr(input: &[i16], output: &[i16], skip: usize) -> f64 {
    snr_at(input, output, skip, DELAY)
}

fn snr_at(input: &[i16], output: &[i16], skip: usize, lag: usize) -> f64 {
    let mut signal = 0.0;
    let mut noise = 0.0;
    for n in skip..output.len() {
        let x = f64::from(input[n - lag]);
        signal += x * x;
        noise += (f64::from(output[n]) - x).powi(2);
    }
    10.0 * (signal / noise.max(1.0)).log10()
}

#[test]
fn sines_survive_with_high_snr() {
    for (freq, min_snr) in [(1000.0, 30.0), (5000.0, 20.0), (300.0, 30.0), (3000.0, 30.0)] {
        let input = sine(freq, 10_000.0, 16_000);
        let (_, output) = code(&input);
        let snr = snr(&input, &output, 1600);
        assert!(snr > min_snr, "{freq} Hz: {snr:.1} dB");
    }
}

#[test]
fn delay_is_that_of_the_qmf_pair() {
    let input = sine(1000.0, 10_000.0, 16_000);
    let (_, output) = code(&input);
    let at = |lag: usize| snr_at(&input, &output, 1600, lag);
    assert!(at(DELAY) > at(DELAY - 1) + 6.0 && at(DELAY) > at(DELAY + 1) + 6.0);
}

#[test]
fn silence_stays_silent() {
    let (payload, output) = code(&[0; 3200]);
    assert!(output.iter().all(|&s| s.abs() <= 4), "{:?}", output.iter().max_by_key(|s| s.abs()));
    // The higher band idles in its inner intervals.
    assert!(payload.iter().all(|&c| c >> 6 == 3 || c >> 6 == 1), "{payload:x?}");
}

#[test]
fn a_20_ms_frame_is_160_octets() {
    let mut encoder = G722Encoder::new();
    let mut payload = vec![0xEE];
    assert_eq!(encoder.encode(&sine(440.0, 8000.0, 320), &mut payload).unwrap(), 160);
    assert_eq!(payload.len(), 161);
    assert_eq!(payload[0], 0xEE);
    let mut decoder = G722Decoder::new();
    let mut out = vec![5];
    assert_eq!(decoder.decode(&payload[1..], &mut out).unwrap(), 320);
    assert_eq!(out.len(), 321);
    assert_eq!(out[0], 5);
    assert_eq!(encoder.encode(&[0; 3], &mut payload), Err(CodecError::FrameSize(CodecKind::G722, 3)));
}

#[test]
fn a_chirp_decodes_close_to_itself() {
    // A speech-like sweep from 200 Hz to 6 kHz with a varying level.
    let input: Vec<i16> = (0..32_000)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let phase = 2.0 * std::f64::consts::PI * (200.0 * t + 1450.0 * t * t);
            let envelope = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            (12_000.0 * envelope * phase.sin()) as i16
        })
        .collect();
    let (_, output) = code(&input);
    let snr = snr(&input, &output, 800);
    assert!(snr > 20.0, "{snr:.1} dB");
}

/// A test signal made of integer steps only, so that any implementation can rebuild it
/// exactly: small noise, sawtooth sweeps, full-scale noise, silence, a clipping square wave,
/// and mixtures. One second at 16 kHz.
fn reference_signal() -> Vec<i16> {
    let mut state: u32 = 12345;
    (0..16_000)
        .map(|n: i32| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 16) as i32 - 32768;
            let (segment, k) = (n / 2000, n % 2000);
            let period = 16 + k / 50;
            let saw = (n % period) * 20_000 / period - 10_000;
            let v = match segment {
                0 => noise >> 6,
                1 => saw,
                2 => noise,
                3 => 0,
                4 => {
                    if n % 20 < 10 {
                        32767
                    } else {
                        -32768
                    }
                }
                5 => saw + (noise >> 3),
                6 => (noise >> 2) + (n % 9) * 2000 - 8000,
                _ => (saw * (2000 - k)) >> 11,
            };
            v.clamp(-32768, 32767) as i16
        })
        .collect()
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Bit-exact with the G.722 coder that most VoIP software carries (Steve Underwood's, as in
/// spandsp, Asterisk, FreeSWITCH and libg722): the checksums below are of its encoding of
/// [`reference_signal`] and of its decoding of that bitstream, computed with libg722 1.2.8.
#[test]
fn bit_exact_with_the_common_implementation() {
    let input = reference_signal();
    assert_eq!(fnv1a(input.iter().flat_map(|s| s.to_le_bytes())), 0x9c22_ee84_f53d_83ef, "test signal");
    let (payload, output) = code(&input);
    assert_eq!(payload.len(), 8000);
    assert_eq!(payload[..16], [122, 155, 46, 145, 32, 132, 7, 47, 24, 244, 158, 51, 30, 186, 180, 106]);
    assert_eq!(fnv1a(payload.iter().copied()), 0x57b3_9e5f_ad18_9537, "bitstream");
    assert_eq!(output[4000..4008], [-3467, -2956, -2661, -2299, -2018, -1631, -1321, -832]);
    assert_eq!(fnv1a(output.iter().flat_map(|s| s.to_le_bytes())), 0x4aad_f21d_afb1_d70a, "decoded PCM");
}

#[test]
fn every_payload_decodes() {
    let mut decoder = G722Decoder::new();
    let all: Vec<u8> = (0..=255).collect();
    let mut out = Vec::new();
    for _ in 0..100 {
        assert_eq!(decoder.decode(&all, &mut out).unwrap(), 512);
    }
    assert_eq!(decoder.decode(&[], &mut out).unwrap(), 0);
    assert_eq!(out.len(), 51_200);
}

#[test]
fn concealment_continues_and_fades() {
    let input = sine(250.0, 8000.0, 16_000);
    let mut encoder = G722Encoder::new();
    let mut decoder = G722Decoder::new();
    let mut out = Vec::new();
    for frame in input[..8000].chunks(320) {
        let mut payload = Vec::new();
        encoder.encode(frame, &mut payload).unwrap();
        decoder.decode(&payload, &mut out).unwrap();
    }
    let mut concealed = Vec::new();
    for _ in 0..4 {
        assert_eq!(decoder.conceal(320, &mut concealed).unwrap(), 320);
    }
    // The first 10 ms continue the tone (shifted by the codec's delay) ...
    let truth = &input[8000 - DELAY..8000 - DELAY + 160];
    let dot: f64 = concealed[..160].iter().zip(truth).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
    let energy: f64 = truth.iter().map(|&b| f64::from(b).powi(2)).sum();
    assert!(dot / energy > 0.9, "{}", dot / energy);
    // ... and 60 ms on, only silence is left.
    assert!(concealed[960..].iter().all(|&s| s == 0));
}

#[test]
fn decoding_converges_after_a_loss() {
    // A voiced sound; frame 20 (20 ms) is lost.
    let input: Vec<i16> = (0..16_000)
        .map(|n| {
            let phase = 2.0 * std::f64::consts::PI * 160.0 * n as f64 / 16_000.0;
            (5000.0 * phase.sin() + 3000.0 * (3.0 * phase).sin() + 1500.0 * (7.0 * phase + 1.0).sin()) as i16
        })
        .collect();
    let mut encoder = G722Encoder::new();
    let payloads: Vec<Vec<u8>> = input
        .chunks(320)
        .map(|frame| {
            let mut payload = Vec::new();
            encoder.encode(frame, &mut payload).unwrap();
            payload
        })
        .collect();
    let mut decoder = G722Decoder::new();
    let mut out = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        if i == 20 {
            decoder.conceal(320, &mut out).unwrap();
        } else {
            decoder.decode(payload, &mut out).unwrap();
        }
    }
    assert_eq!(out.len(), input.len());
    let snr_over = |from_ms: usize, to_ms: usize| {
        let (mut s, mut e) = (0.0, 0.0);
        for n in 21 * 320 + from_ms * 16..21 * 320 + to_ms * 16 {
            let x = f64::from(input[n - DELAY]);
            s += x * x;
            e += (f64::from(out[n]) - x).powi(2);
        }
        10.0 * (s / e).log10()
    };
    // The ADPCM state of the decoder differs from the sender's after a loss; it converges as
    // the adaptation forgets, within about 100 ms (a clean decode is near 48 dB).
    let (soon, later) = (snr_over(0, 20), snr_over(100, 150));
    assert!(soon > 8.0, "{soon:.1} dB in the first 20 ms after the loss");
    assert!(later > 20.0, "{later:.1} dB 100-150 ms after the loss");
}
