//! Parse + print throughput, one message per iteration (`Throughput::Elements(1)`: criterion
//! reports messages per second), for Sambung and the two baselines in the same run.
//!
//!     cd benches/sip-parse && cargo bench -j 2
//!
//! criterion runs on one thread; the numbers are for one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sambung_bench_sip_parse as b;
use std::hint::black_box;

fn parse_print(c: &mut Criterion) {
    b::sanity_check();
    for (name, msg) in b::messages() {
        let mut g = c.benchmark_group(format!("parse_print/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("sambung", |bn| bn.iter(|| b::ours(black_box(&msg))));
        g.bench_function("rsip", |bn| bn.iter(|| b::rsip(black_box(&msg))));
        g.bench_function("ezk", |bn| bn.iter(|| b::ezk(black_box(&msg))));
        g.finish();
    }
}

criterion_group!(benches, parse_print);
criterion_main!(benches);
