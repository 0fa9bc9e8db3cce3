//! Runs one parse + print path on one message N times, for instruction counting under
//! valgrind, where a shared, noisy machine makes wall-clock numbers unreliable:
//!
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!         target/release/instr sambung invite 2000
//!
//! Instructions per message = (Ir at N=2000 − Ir at N=1000) / 1000, which cancels start-up.
//! `instr check` runs the sanity check only.

use sambung_bench_sip_parse as b;
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("check") {
        b::sanity_check();
        println!("sanity check passed");
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
