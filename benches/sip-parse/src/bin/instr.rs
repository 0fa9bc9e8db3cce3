//! Runs one parse + print path on one message N times, for instruction counting under
//! valgrind, where a shared, noisy machine makes wall-clock numbers unreliable:
//!
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!         target/release/instr sambung invite 2000
//!
//! Instructions per message = (Ir at N=2000 − Ir at N=1000) / 1000, which cancels start-up.
//! `instr check` runs the sanity check only. `instr race [ROUNDS]` measures wall-clock
//! throughput with the parsers interleaved: rounds of one batch each, in turn, keeping each
//! parser's best batch, so that load from other processes hits all of them alike.

use sambung_bench_sip_parse as b;
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("check") {
        b::sanity_check();
        println!("sanity check passed");
        return;
    }
    if args.get(1).map(String::as_str) == Some("race") {
        b::sanity_check();
        race(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(40));
        return;
    }
    let (Some(who), Some(what), Some(n)) = (args.get(1), args.get(2), args.get(3).and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: instr sambung|rsip|ezk register|invite|200ok N  |  instr check");
        std::process::exit(2);
    };
    let msg = b::messages().into_iter().find(|(name, _)| name == what).expect("message name").1;
    let mut total = 0usize;
    for _ in 0..n {
        total += match who.as_str() {
            "sambung" => b::ours(black_box(&msg)).len(),
            "rsip" => b::rsip(black_box(&msg)).len(),
            "ezk" => b::ezk(black_box(&msg)).len(),
            other => panic!("unknown parser {other}"),
        };
    }
    println!("{who} {what} x{n}: {total} bytes printed");
}

/// Interleaved batches; prints messages per second of each parser's best batch, and ratios.
fn race(rounds: u32) {
    const BATCH: u32 = 2000;
    type Path = fn(&bytes::Bytes) -> usize;
    let paths: [(&str, Path); 3] =
        [("sambung", |m| b::ours(m).len()), ("rsip", |m| b::rsip(m).len()), ("ezk", |m| b::ezk(m).len())];
    for (name, msg) in b::messages() {
        let mut best = [f64::INFINITY; 3];
        for _ in 0..rounds {
            for (i, (_, path)) in paths.iter().enumerate() {
                let t = std::time::Instant::now();
                let mut n = 0;
                for _ in 0..BATCH {
                    n += path(black_box(&msg));
                }
                black_box(n);
                best[i] = best[i].min(t.elapsed().as_secs_f64() / f64::from(BATCH));
            }
        }
        let rate: Vec<f64> = best.iter().map(|s| 1.0 / s).collect();
        println!(
            "{name:<9} sambung {:>9.0}/s  rsip {:>9.0}/s  ezk {:>9.0}/s  sambung/rsip {:.2}  sambung/ezk {:.2}  sambung/faster {:.2}",
            rate[0],
            rate[1],
            rate[2],
            rate[0] / rate[1],
            rate[0] / rate[2],
            rate[0] / rate[1].max(rate[2])
        );
    }
}
