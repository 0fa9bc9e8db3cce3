//! One 20 ms frame of a call transcoded between Opus and G.711 mu-law, each way:
//!
//! - Opus to PCMU: Opus decode (48 kHz) -> resample 48 -> 8 kHz -> PCMU encode;
//! - PCMU to Opus: PCMU decode (with its loss concealment's bookkeeping) -> resample
//!   8 -> 48 kHz -> Opus encode (VoIP mode, default parameters: in-band FEC, 5% loss).
//!
//! `call/*` encodes Opus with the default parameters (full band, libopus picks the bit rate
//! and mode: hybrid or CELT for full band); `call_narrowband/*` caps the Opus encoder at
//! narrow band (`max_playback_rate: 8000`), which is all a G.711 source carries: SILK alone,
//! at a fraction of the cost.
//!
//! `call/both_directions` is the work for one call per 20 ms, so a core can carry
//! `20 ms / time(both_directions)` such calls. Criterion measures wall time, which on a
//! shared machine includes the time other processes held the core; at the end the bench
//! also measures the CPU time this thread itself spent on a run of frames (Linux
//! `/proc/thread-self/schedstat`) and prints the calls per core that follow from it.
//!
//! Run with `cargo bench -p sambung-media --bench transcode`.

use std::f64::consts::PI;
use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use sambung_media::codec::{self, CodecKind, Decoder, Encoder, EncoderParams};
use sambung_media::resample::Resampler;

/// Two seconds of a synthetic voice at 48 kHz: a buzz whose pitch glides between 100 and
/// 180 Hz, shaped by three formants that move, in syllables of a quarter second, with a
/// little breath noise.
fn speech_like() -> Vec<i16> {
    let rate = 48_000.0;
    let mut phase = 0.0;
    let mut noise: u32 = 1;
    (0..96_000)
        .map(|n| {
            let t = n as f64 / rate;
            let f0 = 140.0 + 40.0 * (2.0 * PI * 0.7 * t).sin();
            phase += 2.0 * PI * f0 / rate;
            let syllable = (2.0 * PI * 4.0 * t).sin().max(0.0).powf(0.5);
            let f1 = 500.0 + 250.0 * (2.0 * PI * 2.0 * t).sin();
            let f2 = 1500.0 + 500.0 * (2.0 * PI * 1.3 * t).cos();
            let mut v = 0.0;
            for h in 1..60 {
                let f = f0 * h as f64;
                if f > 8000.0 {
                    break;
                }
                let formant = |fc: f64, bw: f64| 1.0 / (1.0 + ((f - fc) / bw).powi(2));
                let gain = formant(f1, 120.0) + 0.5 * formant(f2, 180.0) + 0.2 * formant(2800.0, 250.0);
                v += gain * (h as f64 * phase).sin() / (h as f64).sqrt();
            }
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let breath = (f64::from(noise) / f64::from(u32::MAX) - 0.5) * 300.0;
            (v * 4000.0 * syllable + breath) as i16
        })
        .collect()
}

/// The far ends' packets: the Opus side's, and the G.711 side's (the same voice at 8 kHz).
fn packets(voice: &[i16]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut opus = codec::encoder(CodecKind::Opus, &EncoderParams::default()).unwrap();
    let opus_packets = voice
        .chunks(960)
        .map(|frame| {
            let mut payload = Vec::new();
            opus.encode(frame, &mut payload).unwrap();
            payload
        })
        .collect();
    let mut down = Resampler::new(48_000, 8000).unwrap();
    let mut narrow = Vec::new();
    down.process(voice, &mut narrow);
    let mut pcmu = codec::encoder(CodecKind::Pcmu, &EncoderParams::default()).unwrap();
    let pcmu_packets = narrow
        .chunks(160)
        .map(|frame| {
            let mut payload = Vec::new();
            pcmu.encode(frame, &mut payload).unwrap();
            payload
        })
        .collect();
    (opus_packets, pcmu_packets)
}

/// Opus toward the caller capped at narrow band: all that comes from the G.711 side.
const NARROWBAND: EncoderParams =
    EncoderParams { bitrate: None, fec: true, packet_loss_percent: 5, dtx: false, max_playback_rate: 8000 };

/// The transcoder's state for one call.
struct Call {
    opus_decoder: Box<dyn Decoder>,
    to_narrow: Resampler,
    pcmu_encoder: Box<dyn Encoder>,
    pcmu_decoder: Box<dyn Decoder>,
    to_wide: Resampler,
    opus_encoder: Box<dyn Encoder>,
    pcm: Vec<i16>,
    resampled: Vec<i16>,
    payload: Vec<u8>,
}

impl Call {
    fn new(opus_params: &EncoderParams) -> Call {
        Call {
            opus_decoder: codec::decoder(CodecKind::Opus).unwrap(),
            to_narrow: Resampler::new(48_000, 8000).unwrap(),
            pcmu_encoder: codec::encoder(CodecKind::Pcmu, &EncoderParams::default()).unwrap(),
            pcmu_decoder: codec::decoder(CodecKind::Pcmu).unwrap(),
            to_wide: Resampler::new(8000, 48_000).unwrap(),
            opus_encoder: codec::encoder(CodecKind::Opus, opus_params).unwrap(),
            pcm: Vec::with_capacity(960),
            resampled: Vec::with_capacity(960),
            payload: Vec::with_capacity(1500),
        }
    }

    fn opus_to_pcmu(&mut self, packet: &[u8]) -> usize {
        self.pcm.clear();
        self.resampled.clear();
        self.payload.clear();
        self.opus_decoder.decode(packet, &mut self.pcm).unwrap();
        self.to_narrow.process(&self.pcm, &mut self.resampled);
        self.pcmu_encoder.encode(&self.resampled, &mut self.payload).unwrap()
    }

    fn pcmu_to_opus(&mut self, packet: &[u8]) -> usize {
        self.pcm.clear();
        self.resampled.clear();
        self.payload.clear();
        self.pcmu_decoder.decode(packet, &mut self.pcm).unwrap();
        self.to_wide.process(&self.pcm, &mut self.resampled);
        self.opus_encoder.encode(&self.resampled, &mut self.payload).unwrap()
    }
}

fn transcode(c: &mut Criterion) {
    let voice = speech_like();
    let (opus_packets, pcmu_packets) = packets(&voice);
    let mut group = c.benchmark_group("call");

    let defaults = EncoderParams::default();
    let mut call = Call::new(&defaults);
    let mut i = 0;
    group.bench_function("opus_to_pcmu", |b| {
        b.iter(|| {
            i = (i + 1) % opus_packets.len();
            black_box(call.opus_to_pcmu(black_box(&opus_packets[i])))
        })
    });

    let mut call = Call::new(&defaults);
    let mut i = 0;
    group.bench_function("pcmu_to_opus", |b| {
        b.iter(|| {
            i = (i + 1) % pcmu_packets.len();
            black_box(call.pcmu_to_opus(black_box(&pcmu_packets[i])))
        })
    });

    let mut call = Call::new(&defaults);
    let mut i = 0;
    group.bench_function("both_directions", |b| {
        b.iter(|| {
            i = (i + 1) % opus_packets.len();
            let a = call.opus_to_pcmu(black_box(&opus_packets[i]));
            let b = call.pcmu_to_opus(black_box(&pcmu_packets[i]));
            black_box((a, b))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("call_narrowband");
    let mut call = Call::new(&NARROWBAND);
    let mut i = 0;
    group.bench_function("both_directions", |b| {
        b.iter(|| {
            i = (i + 1) % opus_packets.len();
            let a = call.opus_to_pcmu(black_box(&opus_packets[i]));
            let b = call.pcmu_to_opus(black_box(&pcmu_packets[i]));
            black_box((a, b))
        })
    });
    group.finish();

    // The pieces, to see where the time goes.
    let mut group = c.benchmark_group("parts");
    let mut opus_decoder = codec::decoder(CodecKind::Opus).unwrap();
    let mut pcm = Vec::with_capacity(960);
    let mut i = 0;
    group.bench_function("opus_decode", |b| {
        b.iter(|| {
            i = (i + 1) % opus_packets.len();
            pcm.clear();
            black_box(opus_decoder.decode(black_box(&opus_packets[i]), &mut pcm).unwrap())
        })
    });
    let mut opus_encoder = codec::encoder(CodecKind::Opus, &EncoderParams::default()).unwrap();
    let mut payload = Vec::with_capacity(1500);
    let mut i = 0;
    group.bench_function("opus_encode", |b| {
        b.iter(|| {
            i = (i + 1) % opus_packets.len();
            payload.clear();
            black_box(opus_encoder.encode(black_box(&voice[i * 960..(i + 1) * 960]), &mut payload).unwrap())
        })
    });
    let mut down = Resampler::new(48_000, 8000).unwrap();
    let mut out = Vec::with_capacity(960);
    group.bench_function("resample_48k_to_8k", |b| {
        b.iter(|| {
            out.clear();
            down.process(black_box(&voice[..960]), &mut out);
            black_box(out.len())
        })
    });
    let mut up = Resampler::new(8000, 48_000).unwrap();
    group.bench_function("resample_8k_to_48k", |b| {
        b.iter(|| {
            out.clear();
            up.process(black_box(&voice[..160]), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

/// Nanoseconds this thread has spent on a CPU, if the kernel tells.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Both directions of one call, timed by CPU time over its first 40 seconds and the 40 after.
/// libopus' encoder settles its mode decisions over the first tens of seconds of a stream, and
/// is dearer meanwhile.
fn cpu_time_report(name: &str, opus_params: &EncoderParams) {
    let voice = speech_like();
    let (opus_packets, pcmu_packets) = packets(&voice);
    let mut call = Call::new(opus_params);
    let frames = 2000;
    let mut per_frame_us = Vec::new();
    for round in 0..2 {
        let start = thread_cpu_ns();
        for i in round * frames..(round + 1) * frames {
            let k = i % opus_packets.len();
            black_box(call.opus_to_pcmu(&opus_packets[k]));
            black_box(call.pcmu_to_opus(&pcmu_packets[k]));
        }
        let (Some(start), Some(end)) = (start, thread_cpu_ns()) else {
            println!("{name}: CPU time not measurable here (no /proc/thread-self/schedstat)");
            return;
        };
        per_frame_us.push((end - start) as f64 / frames as f64 / 1000.0);
    }
    for (us, when) in per_frame_us.iter().zip(["first 40 s", "next 40 s"]) {
        println!(
            "{name}, {when}: CPU time per 20 ms frame, both directions: {us:.1} us -> {:.0} transcoded calls per core",
            20_000.0 / us
        );
    }
}

criterion_group!(benches, transcode);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|arg| arg == "--bench") {
        cpu_time_report("call", &EncoderParams::default());
        cpu_time_report("call_narrowband", &NARROWBAND);
    }
}
