//! Load benchmark of the RTP relay on loopback (not a test).
//!
//! N sessions are relayed by a tokio runtime of its own (`--workers` threads, named
//! `relay-worker`); a generator thread sends RTP packets from both endpoints of every session
//! and never reads what comes back (the kernel drops it once the endpoint's buffer is full).
//! The relay's own counters say how many packets it forwarded; the CPU time of its worker
//! threads, read from `/proc`, turns that into packets per second per core.
//!
//! ```text
//! cargo run --release -p sambung-server --example relay_bench -- --sessions 1,10,100,1000 --mode flood
//! cargo run --release -p sambung-server --example relay_bench -- --sessions 500,1000,2000 --mode paced
//! ```
//!
//! `flood` sends as fast as the generator can, round robin over the sessions; `paced` sends one
//! 20 ms packet per endpoint and session (50 packets per second each way, a G.711 call) and
//! shows the CPU a realistic load costs. Only loopback addresses are used.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sambung_server::media::{Leg, MediaRelay, Peer, RelayConfig, RelaySession};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PORT_MIN: u16 = 24_000;
const PORT_MAX: u16 = 31_999;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Flood,
    Paced,
}

struct Args {
    sessions: Vec<usize>,
    seconds: u64,
    mode: Mode,
    workers: usize,
    size: usize,
}

fn args() -> Args {
    let mut args = Args { sessions: vec![1, 10, 100, 1000], seconds: 5, mode: Mode::Flood, workers: 1, size: 172 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--sessions" => args.sessions = value.split(',').filter_map(|n| n.parse().ok()).collect(),
            "--seconds" => args.seconds = value.parse().unwrap_or(args.seconds),
            "--workers" => args.workers = value.parse().unwrap_or(args.workers),
            "--size" => args.size = value.parse().unwrap_or(args.size),
            "--mode" => args.mode = if value == "paced" { Mode::Paced } else { Mode::Flood },
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    args
}

/// CPU time of this process's threads whose name starts with `prefix`, from
/// `/proc/self/task/*/schedstat` (nanoseconds on CPU).
fn cpu_time(prefix: &str) -> Duration {
    let mut total = Duration::ZERO;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return total };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        let nanos: u64 = stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        total += Duration::from_nanos(nanos);
    }
    total
}

/// Both endpoints of one session, and where they send.
struct Call {
    session: RelaySession,
    a: UdpSocket,
    b: UdpSocket,
    to_a: SocketAddr,
    to_b: SocketAddr,
}

fn forwarded(calls: &[Call]) -> (u64, u64) {
    calls.iter().fold((0, 0), |(received, sent), call| {
        let stats = call.session.stats();
        let legs = stats.legs.iter();
        (
            received + legs.clone().map(|l| l.rtp.received_packets).sum::<u64>(),
            sent + legs.map(|l| l.rtp.sent_packets).sum::<u64>(),
        )
    })
}

fn run(relay: &MediaRelay, sessions: usize, args: &Args) {
    let mut calls = Vec::with_capacity(sessions);
    for n in 0..sessions {
        let session = relay.allocate(&format!("bench-{n}"), 1, LO).expect("ports for the benchmark");
        let (a, b) = (UdpSocket::bind((LO, 0)).unwrap(), UdpSocket::bind((LO, 0)).unwrap());
        let peer = |s: &UdpSocket| Peer { rtp: s.local_addr().ok(), rtcp: None, signalling_ip: Some(LO) };
        session.set_peer(Leg::A, 0, peer(&a)).unwrap();
        session.set_peer(Leg::B, 0, peer(&b)).unwrap();
        let to_a = SocketAddr::new(LO, session.leg_ports(Leg::A)[0]);
        let to_b = SocketAddr::new(LO, session.leg_ports(Leg::B)[0]);
        calls.push(Call { session, a, b, to_a, to_b });
    }
    let mut packet = vec![0u8; args.size.max(12)];
    packet[0] = 0x80;
    // Latch every leg, then measure from a clean start.
    for call in &calls {
        let _ = call.a.send_to(&packet, call.to_a);
        let _ = call.b.send_to(&packet, call.to_b);
    }
    std::thread::sleep(Duration::from_millis(200));

    let generated = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (received_before, sent_before) = forwarded(&calls);
    let cpu_before = cpu_time("relay-worker");
    let start = Instant::now();
    std::thread::scope(|scope| {
        let (calls, generated, stop, packet) = (&calls, &generated, &stop, &packet);
        std::thread::Builder::new()
            .name("load-generator".into())
            .spawn_scoped(scope, move || generate(calls, packet, args.mode, generated, stop))
            .unwrap();
        std::thread::sleep(Duration::from_secs(args.seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let wall = start.elapsed();
    // Let the relay drain what is queued before reading its counters.
    std::thread::sleep(Duration::from_millis(200));
    let cpu = cpu_time("relay-worker").saturating_sub(cpu_before);
    let (received, sent) = forwarded(&calls);
    let (received, sent) = (received - received_before, sent - sent_before);
    let generated = generated.load(Ordering::Relaxed);
    let pps = sent as f64 / wall.as_secs_f64();
    let per_core = sent as f64 / cpu.as_secs_f64().max(1e-9);
    let lost = generated.saturating_sub(received) as f64 / generated.max(1) as f64 * 100.0;
    println!(
        "{:>6} sessions  {:?}  generated {:>9.0} pps  relayed {:>9.0} pps  relay CPU {:>5.1}% ({} worker{})  \
         {:>9.0} pps per core  lost before relay {:>5.2}%",
        sessions,
        args.mode,
        generated as f64 / wall.as_secs_f64(),
        pps,
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
        args.workers,
        if args.workers == 1 { "" } else { "s" },
        per_core,
        lost,
    );
}

/// Sends from both endpoints of every call until told to stop: back to back (`Flood`) or one
/// packet per endpoint every 20 ms (`Paced`).
fn generate(calls: &[Call], packet: &[u8], mode: Mode, generated: &AtomicU64, stop: &AtomicBool) {
    let tick = Duration::from_millis(20);
    let mut next = Instant::now();
    let mut count = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for call in calls {
            count += u64::from(call.a.send_to(packet, call.to_a).is_ok());
            count += u64::from(call.b.send_to(packet, call.to_b).is_ok());
        }
        generated.store(count, Ordering::Relaxed);
        if mode == Mode::Paced {
            next += tick;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .thread_name("relay-worker")
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let relay = MediaRelay::new(RelayConfig::new(PORT_MIN, PORT_MAX), runtime.handle().clone()).unwrap();
    println!("relay benchmark: {}-byte RTP packets over loopback, {} s per run", args.size, args.seconds);
    for &sessions in &args.sessions {
        run(&relay, sessions, &args);
    }
}
