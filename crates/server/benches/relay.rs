//! The RTP relay's throughput and cost, measured on this machine: run by hand,
//! `cargo bench -p sambung-server --bench relay` (a release build). Two parts:
//!
//! 1. **Plain relaying.** `RELAY_SESSIONS` sessions (default 500), one stream each; one sender
//!    socket plays every session's leg A and offers PCMU-sized packets (172 octets) at each rate
//!    of `RATES` (packets per second, default 50000,100000,150000,200000,300000) for
//!    `STEP_SECONDS` (5); one sink socket is every leg B. Printed per step: packets offered,
//!    relayed, and the CPU time of the relay's own threads (its runtime's workers, read from
//!    /proc), so packets per CPU-second: packets per core. rtpengine's userspace relay does
//!    about 165,000 per core on this machine (issue 12).
//! 2. **Transcoding.** `TRANSCODE_CALLS` calls (default 50,100,200) whose leg A speaks Opus and
//!    leg B PCMU, 50 packets per second each way, for `STEP_SECONDS`: the relay decodes and
//!    encodes both directions. Printed: the relay threads' CPU per call, so calls per core.
//!
//! The load generator runs in this process on the same cores (as SIPp does in bench/run.sh):
//! the relayed rate stops where the machine does, but the CPU per packet is the relay's own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sambung_media::codec::{CodecKind, EncoderParams};
use sambung_media::negotiate::{Negotiated, PayloadFormat};
use sambung_server::media::{Leg, LegConfig, MediaRelay, Peer, RelayConfig, RelaySession, StreamConfig};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WORKER: &str = "relay-worker";

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds used so far by this process's threads named `name` (utime + stime).
fn thread_cpu(name: &str, ticks_per_second: f64) -> f64 {
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += field(14) + field(15);
    }
    ticks as f64 / ticks_per_second
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn rtp(payload_type: u8, seq: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(12 + payload.len());
    packet.extend_from_slice(&[0x80, payload_type]);
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// Counts what `socket` receives until `stop`.
fn count_received(socket: UdpSocket, stop: Arc<AtomicBool>) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    socket.set_read_timeout(Some(Duration::from_millis(100))).expect("a timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if socket.recv(&mut buf).is_ok() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    count
}

/// Sends `packets(i)` to the sessions' ports at `rate` packets per second for `seconds`,
/// round-robin over `targets`; returns how many were sent.
fn paced_send(
    socket: &UdpSocket,
    targets: &[SocketAddr],
    rate: u64,
    seconds: u64,
    mut packet: impl FnMut(usize, u64) -> Vec<u8>,
) -> u64 {
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut sent = 0u64;
    let mut rounds = vec![0u64; targets.len()];
    while Instant::now() < end {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let i = (sent % targets.len() as u64) as usize;
            let _ = socket.send_to(&packet(i, rounds[i]), targets[i]);
            rounds[i] += 1;
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    sent
}

fn sessions(relay: &MediaRelay, count: u64, a: SocketAddr, b: SocketAddr) -> Vec<RelaySession> {
    (0..count)
        .map(|n| {
            let session = relay.allocate(&format!("bench-{n}"), 1, LO).expect("ports for every session");
            session.set_peer(Leg::A, 0, Peer { rtp: Some(a), rtcp: None, signalling_ip: Some(LO) }).expect("peer A");
            session.set_peer(Leg::B, 0, Peer { rtp: Some(b), rtcp: None, signalling_ip: Some(LO) }).expect("peer B");
            session
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--test` run (cargo test --benches) does nothing.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let seconds = env_u64("STEP_SECONDS", 5);
    let ticks = clock_ticks();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name(WORKER)
        .enable_all()
        .build()
        .expect("a runtime");
    let relay = MediaRelay::new(RelayConfig::new(30000, 49999), runtime.handle().clone()).expect("a relay");
    let sender = UdpSocket::bind((LO, 0)).expect("a sender socket");
    let sink = UdpSocket::bind((LO, 0)).expect("a sink socket");
    let (a_addr, b_addr) = (sender.local_addr().unwrap(), sink.local_addr().unwrap());

    // 1. plain relaying
    let count = env_u64("RELAY_SESSIONS", 500).max(1);
    let plain = sessions(&relay, count, a_addr, b_addr);
    let a_ports: Vec<SocketAddr> = plain.iter().map(|s| SocketAddr::new(LO, s.leg_ports(Leg::A)[0])).collect();
    let b_ports: Vec<SocketAddr> = plain.iter().map(|s| SocketAddr::new(LO, s.leg_ports(Leg::B)[0])).collect();
    // Each leg B speaks first, so that both directions are latched.
    for port in &b_ports {
        let _ = sink.send_to(&rtp(0, 0, 0, 7, &[0xff; 160]), port);
    }
    std::thread::sleep(Duration::from_millis(300));
    let stop = Arc::new(AtomicBool::new(false));
    let relayed = count_received(sink.try_clone().unwrap(), stop.clone());
    let _echo = count_received(sender.try_clone().unwrap(), stop.clone());
    println!(
        "plain relaying: {count} sessions, {seconds} s per step, relay runtime with {} workers",
        runtime.metrics().num_workers()
    );
    println!(
        "{:>10} {:>10} {:>10} {:>8} {:>10} {:>14}",
        "offered/s", "relayed/s", "lost", "cpu", "cores", "per core-s"
    );
    for rate in env_list("RATES", "50000,100000,150000,200000,300000") {
        let before = (relayed.load(Ordering::Relaxed), thread_cpu(WORKER, ticks), Instant::now());
        let payload = [0xd5u8; 160];
        let sent = paced_send(&sender, &a_ports, rate, seconds, |i, n| {
            rtp(0, (n + 1) as u16, 160 * (n as u32 + 1), i as u32, &payload)
        });
        std::thread::sleep(Duration::from_millis(300));
        let (got, cpu, elapsed) = (
            relayed.load(Ordering::Relaxed) - before.0,
            thread_cpu(WORKER, ticks) - before.1,
            before.2.elapsed().as_secs_f64() - 0.3,
        );
        println!(
            "{:>10.0} {:>10.0} {:>10} {:>7.2}s {:>10.2} {:>14.0}",
            sent as f64 / elapsed,
            got as f64 / elapsed,
            sent.saturating_sub(got),
            cpu,
            cpu / elapsed,
            if cpu > 0.0 { got as f64 / cpu } else { 0.0 }
        );
    }
    drop(plain);
    std::thread::sleep(Duration::from_millis(500));

    // 2. transcoding: Opus on leg A, PCMU on leg B, both directions at 50 packets a second
    let format = |codec, payload_type| Negotiated {
        audio: PayloadFormat { codec, payload_type, fmtp: None },
        telephone_event: None,
    };
    let mut encoder =
        sambung_media::codec::encoder(CodecKind::Opus, &EncoderParams::default()).expect("an Opus encoder");
    let opus: Vec<Vec<u8>> = (0..50)
        .map(|frame| {
            let pcm: Vec<i16> = (0..960)
                .map(|n| {
                    let t = (frame * 960 + n) as f32 / 48000.0;
                    ((t * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16
                })
                .collect();
            let mut out = Vec::new();
            encoder.encode(&pcm, &mut out).expect("an Opus frame");
            out
        })
        .collect();
    println!("\ntranscoding Opus <-> PCMU, 50 packets/s each way per call, {seconds} s per step");
    println!(
        "{:>6} {:>12} {:>12} {:>8} {:>10} {:>14}",
        "calls", "A->B pkts/s", "B->A pkts/s", "cpu", "cores", "calls/core"
    );
    for calls in env_list("TRANSCODE_CALLS", "50,100,200").into_iter().filter(|&c| c > 0) {
        let list = sessions(&relay, calls, a_addr, b_addr);
        for session in &list {
            let legs = [
                LegConfig { format: Some(format(CodecKind::Opus, 111)), ..Default::default() },
                LegConfig { format: Some(format(CodecKind::Pcmu, 0)), ..Default::default() },
            ];
            session.configure(0, StreamConfig { legs, transcode: true }).expect("transcoding");
        }
        let a_ports: Vec<SocketAddr> = list.iter().map(|s| SocketAddr::new(LO, s.leg_ports(Leg::A)[0])).collect();
        let b_ports: Vec<SocketAddr> = list.iter().map(|s| SocketAddr::new(LO, s.leg_ports(Leg::B)[0])).collect();
        std::thread::sleep(Duration::from_millis(300));
        let (to_b, to_a) = (relayed.load(Ordering::Relaxed), _echo.load(Ordering::Relaxed));
        let (cpu0, start) = (thread_cpu(WORKER, ticks), Instant::now());
        // leg B's PCMU from another thread, leg A's Opus from this one
        let sink2 = sink.try_clone().unwrap();
        let b_thread = std::thread::spawn(move || {
            let payload = [0xd5u8; 160];
            paced_send(&sink2, &b_ports, 50 * calls, seconds, |i, n| {
                rtp(0, n as u16, 160 * n as u32, 1000 + i as u32, &payload)
            })
        });
        paced_send(&sender, &a_ports, 50 * calls, seconds, |i, n| {
            rtp(111, n as u16, 960 * n as u32, i as u32, &opus[(n % 50) as usize])
        });
        let _ = b_thread.join();
        let (cpu, elapsed) = (thread_cpu(WORKER, ticks) - cpu0, start.elapsed().as_secs_f64());
        let (got_b, got_a) = (relayed.load(Ordering::Relaxed) - to_b, _echo.load(Ordering::Relaxed) - to_a);
        let cores = cpu / elapsed;
        println!(
            "{:>6} {:>12.0} {:>12.0} {:>7.2}s {:>10.3} {:>14.0}",
            calls,
            got_b as f64 / elapsed,
            got_a as f64 / elapsed,
            cpu,
            cores,
            if cores > 0.0 { calls as f64 / cores } else { 0.0 }
        );
        drop(list);
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
}
