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
//! Criterion's times are wall-clock; on a shared machine they include other processes' turns.
//! After them the bench also prints, per case, the CPU time this thread spent per tick over a
//! run of ticks (Linux `/proc/thread-self/schedstat`) and the participants per core that follow.
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

const SIZES: [usize; 3] = [10, 50, 100];
const CASES: [Case; 3] = [
    ("all_talking", None, |_| 3000.0),
    ("three_talking", None, |p| if p < 3 { 3000.0 } else { 0.0 }),
    ("loudest_3", Some(3), |p| 300.0 + 100.0 * p as f32),
];

/// A mixer of `n` participants set up for `case`, with each participant's frame.
fn setup(n: usize, (_, max_speakers, level): Case) -> (Mixer, Vec<ParticipantId>, Vec<Vec<i16>>) {
    let mut mixer = Mixer::new();
    mixer.set_max_speakers(max_speakers);
    let ids: Vec<ParticipantId> = (0..n).map(|_| mixer.add().unwrap()).collect();
    let frames: Vec<Vec<i16>> = (0..n).map(|p| voice(p, level(p))).collect();
    (mixer, ids, frames)
}

fn mixer(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer_tick_20ms");
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        for case in CASES {
            let (mut mixer, ids, frames) = setup(n, case);
            group.bench_with_input(BenchmarkId::new(case.0, n), &n, |b, _| b.iter(|| tick(&mut mixer, &ids, &frames)));
        }
    }
    group.finish();
    cpu_time_report();
}

/// CPU time this thread has used, in nanoseconds (first field of Linux's schedstat).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Runs 5000 ticks (100 s of conference) of each case and reports CPU time per tick.
fn cpu_time_report() {
    const TICKS: u32 = 5000;
    for n in SIZES {
        for case in CASES {
            let (mut mixer, ids, frames) = setup(n, case);
            let mut heard = 0i64;
            let before = thread_cpu_ns();
            for _ in 0..TICKS {
                heard = heard.wrapping_add(tick(&mut mixer, &ids, &frames));
            }
            black_box(heard);
            let (Some(before), Some(after)) = (before, thread_cpu_ns()) else {
                println!("CPU time per tick: not measurable here (no /proc/thread-self/schedstat)");
                return;
            };
            let per_tick_us = (after - before) as f64 / 1000.0 / f64::from(TICKS);
            let per_core = n as f64 * 20_000.0 / per_tick_us;
            println!(
                "{:>13} N={n:>3}: {per_tick_us:7.1} us CPU per 20 ms tick -> {per_core:>6.0} participants per core (mixing only)",
                case.0
            );
        }
    }
}

criterion_group!(benches, mixer);
criterion_main!(benches);
