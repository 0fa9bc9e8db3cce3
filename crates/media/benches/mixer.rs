//! One 20 ms conference tick: push every participant's frame (960 samples at 48 kHz), mix, and
//! read what each participant hears. Throughput is in participants (elements) per second on one
//! core, so participants one core can mix in real time at 20 ms frames = elements/s × 0.02.
//! Only the mixing: decoding, resampling and encoding each participant cost extra.
//!
//! Three cases for N = 10, 50, 100:
//! - `all_talking`: every participant sends sound, every one gets an N−1 mix of their own;
//! - `three_talking`: three send sound, the others silence (all-zero frames, as decoded DTX),
//!   and the listeners share one mix;
//! - `loudest_3`: everyone sends (open microphones), only the 3 loudest are mixed.
//!
//! `cargo bench -p sambung-media --bench mixer`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sambung_media::mixer::{FRAME, Mixer, ParticipantId};

/// A different tone for each participant, at a speech-like level.
fn voice(participant: usize, level: f32) -> Vec<i16> {
    let period = 40.0 + participant as f32 * 3.7;
    (0..FRAME).map(|n| ((n as f32 * std::f32::consts::TAU / period).sin() * level) as i16).collect()
}

/// A case: its name, the most speakers mixed, and the level of participant `p`.
type Case = (&'static str, Option<usize>, fn(usize) -> f32);

fn tick(mixer: &mut Mixer, ids: &[ParticipantId], frames: &[Vec<i16>]) -> i64 {
    for (id, frame) in ids.iter().zip(frames) {
        mixer.push(*id, frame).unwrap();
    }
    mixer.mix();
    let mut heard = 0i64;
    for id in ids {
        heard += i64::from(black_box(mixer.output(*id).unwrap())[FRAME / 2]);
    }
    heard
}

fn mixer(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer_tick_20ms");
    for n in [10usize, 50, 100] {
        group.throughput(Throughput::Elements(n as u64));
        let cases: [Case; 3] = [
            ("all_talking", None, |_| 3000.0),
            ("three_talking", None, |p| if p < 3 { 3000.0 } else { 0.0 }),
            ("loudest_3", Some(3), |p| 300.0 + 100.0 * p as f32),
        ];
        for (name, max_speakers, level) in cases {
            let mut mixer = Mixer::new();
            mixer.set_max_speakers(max_speakers);
            let ids: Vec<ParticipantId> = (0..n).map(|_| mixer.add().unwrap()).collect();
            let frames: Vec<Vec<i16>> = (0..n).map(|p| voice(p, level(p))).collect();
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| b.iter(|| tick(&mut mixer, &ids, &frames)));
        }
    }
    group.finish();
}

criterion_group!(benches, mixer);
criterion_main!(benches);
