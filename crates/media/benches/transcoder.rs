//! The engine's own transcoding step, as the relay runs it: one call between an Opus leg and a
//! PCMU leg, each sending a packet every 20 ms, through [`Transcoder`] (jitter buffers, decode,
//! resample, encode, RTP in and out). One iteration is one 20 ms tick of one call, both
//! directions: a core carries `20 ms / time` such calls.
//!
//! Run with `cargo bench -p sambung-media --bench transcoder`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sambung_media::codec::{self, CodecKind, EncoderParams};
use sambung_media::negotiate::{Negotiated, PayloadFormat};
use sambung_media::rtp::{RtpHeader, RtpPacket};
use sambung_media::transcode::{FRAME, Transcoder};

/// A voiced sound at 48 kHz whose pitch and loudness move: harmonics of 120-200 Hz.
fn voice(seconds: usize) -> Vec<i16> {
    (0..48_000 * seconds)
        .map(|n| {
            let t = n as f64 / 48_000.0;
            let f0 = 160.0 + 40.0 * (6.0 * t).sin();
            let level = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin().abs();
            let v: f64 = (1..20).map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64).sum();
            (v * 5000.0 * level) as i16
        })
        .collect()
}

/// RTP packets of `kind` carrying `pcm48` (resampled by simple decimation for G.711: the
/// content only needs to be speech-like).
fn packets(kind: CodecKind, pt: u8, pcm48: &[i16]) -> Vec<Vec<u8>> {
    let mut encoder = codec::encoder(kind, &EncoderParams::default()).unwrap();
    let step = (48_000 / kind.sample_rate()) as usize;
    let pcm: Vec<i16> = pcm48.iter().step_by(step).copied().collect();
    pcm.chunks_exact(kind.frame_samples(20))
        .enumerate()
        .map(|(n, frame)| {
            let mut payload = Vec::new();
            encoder.encode(frame, &mut payload).unwrap();
            let header = RtpHeader {
                payload_type: pt,
                sequence: n as u16,
                timestamp: kind.timestamp_units(20) * n as u32,
                ssrc: 7,
                ..Default::default()
            };
            let mut packet = vec![0; 12 + payload.len()];
            header.write(&payload, &mut packet).unwrap();
            packet
        })
        .collect()
}

fn format(codec: CodecKind, payload_type: u8) -> Negotiated {
    Negotiated { audio: PayloadFormat { codec, payload_type, fmtp: None }, telephone_event: None }
}

// A benchmark drives time itself: any starting instant will do.
#[allow(clippy::disallowed_methods)]
fn transcoder(c: &mut Criterion) {
    let speech = voice(4);
    let opus_in = packets(CodecKind::Opus, 96, &speech);
    let pcmu_in = packets(CodecKind::Pcmu, 0, &speech);
    let (opus, pcmu) = (format(CodecKind::Opus, 96), format(CodecKind::Pcmu, 0));
    let mut transcoder = Transcoder::new([&opus, &pcmu], [1, 2], 3).unwrap();
    let start = Instant::now();
    let mut tick = 0usize;
    let mut sent = 0usize;
    c.bench_function("transcoder/opus_pcmu_call_20ms_both_directions", |b| {
        b.iter(|| {
            let now = start + FRAME * tick as u32;
            let i = tick % opus_in.len();
            transcoder.push(now, 0, &RtpPacket::parse(&opus_in[i]).unwrap());
            transcoder.push(now, 1, &RtpPacket::parse(&pcmu_in[i]).unwrap());
            transcoder.poll(now + Duration::from_millis(1), &mut |to, packet| {
                sent += 1;
                black_box((to, packet.len()));
            });
            tick += 1;
        })
    });
    assert!(sent > tick, "both directions send: {sent} packets in {tick} ticks");
}

criterion_group!(benches, transcoder);
criterion_main!(benches);
