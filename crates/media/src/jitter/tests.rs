//! The jitter buffer on a virtual clock: packets arrive at chosen times, and a simulated engine
//! ticks every 20 ms, popping until it has 20 ms of audio, as the media engine does.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RATE: u32 = 8000;
/// 20 ms at 8 kHz.
const FRAME: u32 = 160;
const TICK_US: u64 = 20_000;

/// The one real instant the tests need; everything else is an offset from it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

#[derive(Clone, Copy, Debug)]
struct Sent {
    seq: u16,
    ts: u32,
    marker: bool,
    arrival_us: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Heard {
    /// A packet, known by the sequence number written in its payload.
    Packet(u16),
    /// Lost, with the sequence number of `next` if it was given.
    Lost(Option<u16>),
    /// Nothing due: silence for the rest of the tick.
    Silence,
}

fn payload(seq: u16) -> [u8; 4] {
    let [a, b] = seq.to_be_bytes();
    [a, b, 0xAB, 0xCD]
}

fn seq_of(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

struct Sim {
    buffer: JitterBuffer,
    start: Instant,
    /// Packets still on the way, latest first.
    pending: Vec<Sent>,
    /// Audio decoded but not played, in timestamp units.
    fifo: u32,
    heard: Vec<(u64, Heard)>,
    tick: u64,
}

impl Sim {
    fn new(config: JitterConfig) -> Sim {
        Sim {
            buffer: JitterBuffer::new(config),
            start: origin(),
            pending: Vec::new(),
            fifo: 0,
            heard: Vec::new(),
            tick: 0,
        }
    }

    fn at(&self, us: u64) -> Instant {
        self.start + Duration::from_micros(us)
    }

    /// Puts `packets` on the way; they arrive at their `arrival_us`, in that order.
    fn send(&mut self, packets: impl IntoIterator<Item = Sent>) {
        self.pending.extend(packets);
        self.pending.sort_by_key(|p| std::cmp::Reverse(p.arrival_us));
    }

    /// Delivers what arrives and ticks the engine every 20 ms, up to `until_us`.
    fn run(&mut self, until_us: u64) {
        while self.tick * TICK_US <= until_us {
            let now_us = self.tick * TICK_US;
            while self.pending.last().is_some_and(|p| p.arrival_us <= now_us) {
                let p = self.pending.pop().unwrap();
                self.buffer.push(self.at(p.arrival_us), p.seq, p.ts, p.marker, &payload(p.seq));
            }
            self.engine_tick(now_us);
            self.tick += 1;
        }
    }

    fn engine_tick(&mut self, now_us: u64) {
        let now = self.at(now_us);
        while self.fifo < FRAME {
            let (heard, duration) = match self.buffer.pop(now) {
                Some(Playout::Packet { payload, duration, .. }) => (Heard::Packet(seq_of(payload)), duration),
                Some(Playout::Lost { duration, next }) => (Heard::Lost(next.map(seq_of)), duration),
                None => (Heard::Silence, FRAME - self.fifo),
            };
            assert!(duration > 0);
            self.heard.push((now_us, heard));
            self.fifo += duration;
        }
        self.fifo -= FRAME;
    }

    fn packets_heard(&self) -> Vec<u16> {
        self.heard.iter().filter_map(|(_, h)| if let Heard::Packet(s) = h { Some(*s) } else { None }).collect()
    }
}

/// `count` packets of `frame` units every `frame` of time from `seq0`/`ts0`, each delayed by
/// `delay(index)` µs on the way.
fn stream(count: usize, seq0: u16, ts0: u32, frame: u32, mut delay: impl FnMut(usize) -> u64) -> Vec<Sent> {
    let frame_us = u64::from(frame) * 1_000_000 / u64::from(RATE);
    (0..count)
        .map(|i| Sent {
            seq: seq0.wrapping_add(i as u16),
            ts: ts0.wrapping_add(frame * i as u32),
            marker: i == 0,
            arrival_us: i as u64 * frame_us + delay(i),
        })
        .collect()
}

fn config() -> JitterConfig {
    JitterConfig::new(RATE)
}

#[test]
fn in_order_packets_play_in_order_after_the_initial_delay() {
    let mut sim = Sim::new(config());
    sim.send(stream(100, 1000, 5000, FRAME, |_| 3_000));
    sim.run(2_200_000);
    assert_eq!(sim.packets_heard(), (1000..1100).collect::<Vec<u16>>());
    // Silence until the first packet has waited the initial 40 ms.
    let first = sim.heard.iter().position(|(_, h)| *h == Heard::Packet(1000)).unwrap();
    assert_eq!(sim.heard[first].0, 60_000, "arrived at 3 ms, due at 43 ms, played at the next tick");
    assert!(sim.heard[..first].iter().all(|(_, h)| *h == Heard::Silence));
    let stats = sim.buffer.stats();
    assert_eq!((stats.received, stats.played, stats.lost, stats.late, stats.duplicates), (100, 100, 0, 0, 0));
    assert_eq!((stats.skipped, stats.resets), (0, 0));
    assert_eq!(sim.buffer.frame_duration(), FRAME);
}

#[test]
fn reordering_within_the_delay_is_undone() {
    let mut sim = Sim::new(config());
    // Every odd packet overtakes the even one before it by 10 ms.
    sim.send(stream(60, 0, 0, FRAME, |i| if i % 2 == 0 { 30_000 } else { 0 }));
    sim.run(1_500_000);
    assert_eq!(sim.packets_heard(), (0..60).collect::<Vec<u16>>());
    let stats = sim.buffer.stats();
    assert_eq!((stats.lost, stats.late), (0, 0));
}

#[test]
fn a_loss_is_reported_with_the_following_packet_for_fec() {
    let mut sim = Sim::new(JitterConfig { initial_delay: Duration::from_millis(20), ..config() });
    sim.send(stream(50, 200, 0, FRAME, |_| 5_000).into_iter().filter(|p| p.seq != 220));
    sim.run(1_020_000); // the last packet: after it the buffer would conceal while awaiting more
    let heard: Vec<Heard> = sim.heard.iter().map(|(_, h)| *h).filter(|h| *h != Heard::Silence).collect();
    let lost = heard.iter().position(|h| matches!(h, Heard::Lost(_))).unwrap();
    assert_eq!(heard[lost - 1], Heard::Packet(219));
    assert_eq!(heard[lost], Heard::Lost(Some(221)));
    assert_eq!(heard[lost + 1], Heard::Packet(221));
    let stats = sim.buffer.stats();
    assert_eq!((stats.lost, stats.late, stats.played, stats.stretched), (1, 0, 49, 0));
}

#[test]
fn a_late_packet_is_awaited_and_the_delay_grows() {
    let mut sim = Sim::new(JitterConfig { initial_delay: Duration::from_millis(20), ..config() });
    // Steady, then packet 100 and the four after it are held up 70 ms by a burst of queueing.
    sim.send(stream(200, 0, 0, FRAME, |i| if (100..105).contains(&i) { 70_000 } else { 0 }));
    sim.run(1_900_000);
    let before = sim.buffer.stats();
    sim.run(3_900_000);
    let stats = sim.buffer.stats();
    assert_eq!((stats.lost, stats.late, stats.skipped), (0, 0, 0), "{stats:?}");
    assert!(stats.stretched >= 3, "the delay grew by waiting: {stats:?}");
    assert!(stats.delay >= before.delay + Duration::from_millis(60), "{before:?} {stats:?}");
    sim.run(4_300_000);
    assert_eq!(sim.packets_heard(), (0..200).collect::<Vec<u16>>());
}

#[test]
fn a_burst_loss_is_concealed_without_keeping_the_extra_delay() {
    let mut sim = Sim::new(config());
    // A burst of 5 lost packets: the buffer runs dry and waits, then gives them up.
    sim.send(stream(200, 0, 0, FRAME, |_| 0).into_iter().filter(|p| !(80..85).contains(&p.seq)));
    sim.run(1_500_000);
    let before = sim.buffer.stats();
    sim.run(4_500_000);
    assert_eq!(sim.packets_heard(), (0..80).chain(85..200).collect::<Vec<u16>>());
    let stats = sim.buffer.stats();
    assert_eq!((stats.lost, stats.late, stats.skipped), (5, 0, 0), "{stats:?}");
    assert!(stats.delay <= before.delay + Duration::from_millis(20), "{before:?} {stats:?}");
    // Every tick got audio, concealed where packets were missing: 5 frames in all.
    let first = sim.heard.iter().position(|(_, h)| matches!(h, Heard::Packet(_))).unwrap();
    let last = sim.heard.iter().rposition(|(_, h)| matches!(h, Heard::Packet(_))).unwrap();
    assert!(sim.heard[first..last].iter().all(|(_, h)| *h != Heard::Silence));
    let concealed = sim.heard[first..last].iter().filter(|(_, h)| matches!(h, Heard::Lost(_))).count();
    assert_eq!(concealed, 5);
}

#[test]
fn random_jitter_of_40_ms_gives_under_one_percent_late_after_adaptation() {
    let mut rng = StdRng::seed_from_u64(0x5A4B);
    let mut sim = Sim::new(JitterConfig { initial_delay: Duration::from_millis(20), ..config() });
    let count = 3000; // 60 s
    sim.send(stream(count, 40_000, 1, FRAME, |_| rng.random_range(0..40_000)));
    sim.run(2_000_000);
    let before = sim.buffer.stats();
    sim.run(count as u64 * TICK_US + 300_000);
    let after = sim.buffer.stats();
    let late = after.late - before.late;
    let lost = after.lost - before.lost;
    assert!(late * 100 < count as u64, "late after adaptation: {late} of {count} ({after:?})");
    assert!(lost * 100 < count as u64, "lost after adaptation: {lost} ({after:?})");
    assert_eq!(after.played + after.lost, count as u64, "{after:?}");
    // The delay covers the 40 ms spread without running to the maximum.
    assert!(after.target_delay >= Duration::from_millis(40), "{after:?}");
    assert!(after.target_delay <= Duration::from_millis(70), "{after:?}");
    assert!(after.delay <= Duration::from_millis(100), "{after:?}");
    assert!(after.jitter >= Duration::from_millis(5), "RFC 3550 jitter of a 40 ms spread: {after:?}");
}

#[test]
fn the_delay_shrinks_in_silence_gaps_when_jitter_stops() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut sim = Sim::new(JitterConfig { initial_delay: Duration::from_millis(20), ..config() });
    // Talk spurts of 1 s and silences of 0.5 s (DTX: sequence numbers go on, timestamps jump).
    // Jitter of up to 60 ms for the first 20 s, none after.
    let mut seq = 0u16;
    for spurt in 0..40u32 {
        for i in 0..50u32 {
            let ts = (spurt * 75 + i) * FRAME;
            let sent_us = u64::from(ts) * 1_000_000 / u64::from(RATE);
            let jitter = if sent_us < 20_000_000 { rng.random_range(0..60_000) } else { 0 };
            sim.send([Sent { seq, ts, marker: i == 0, arrival_us: sent_us + jitter }]);
            seq += 1;
        }
    }
    sim.run(18_900_000); // in a talk spurt
    let jittery = sim.buffer.stats();
    assert!(jittery.target_delay >= Duration::from_millis(55), "{jittery:?}");
    assert!(jittery.delay >= Duration::from_millis(55), "{jittery:?}");
    sim.run(58_900_000); // in a talk spurt
    let calm = sim.buffer.stats();
    assert!(calm.target_delay <= Duration::from_millis(25), "{calm:?}");
    assert!(calm.delay <= Duration::from_millis(45), "shrunk at talk-spurt starts: {calm:?}");
    sim.run(61_000_000);
    let end = sim.buffer.stats();
    assert_eq!(end.skipped, 0, "no audio was cut to shrink");
    assert_eq!(end.played + end.lost, 2000);
    assert!(end.lost * 100 < 2000, "{end:?}");
}

#[test]
fn a_stream_without_silences_drops_a_frame_now_and_then_to_shrink() {
    let mut rng = StdRng::seed_from_u64(99);
    let mut sim = Sim::new(JitterConfig { initial_delay: Duration::from_millis(20), ..config() });
    // 10 s of 80 ms jitter, then 50 s of none, without a single pause.
    sim.send(stream(3000, 0, 0, FRAME, |i| if i < 500 { rng.random_range(0..80_000) } else { 0 }));
    sim.run(9_000_000);
    let jittery = sim.buffer.stats();
    assert!(jittery.delay >= Duration::from_millis(70), "{jittery:?}");
    sim.run(60_300_000);
    let calm = sim.buffer.stats();
    assert!(calm.skipped >= 2, "{calm:?}");
    assert!(calm.delay <= Duration::from_millis(55), "{calm:?}");
    // Frames were dropped at most every 2 s.
    assert!(calm.skipped <= 25, "{calm:?}");
    assert_eq!(calm.played + calm.skipped + calm.lost, 3000, "{calm:?}");
}

#[test]
fn sequence_numbers_and_timestamps_wrap() {
    let mut sim = Sim::new(config());
    sim.send(stream(200, 65_436, u32::MAX - 5 * FRAME, FRAME, |i| if i % 3 == 0 { 15_000 } else { 0 }));
    sim.run(4_500_000);
    let expected: Vec<u16> = (0..200u16).map(|i| 65_436u16.wrapping_add(i)).collect();
    assert_eq!(sim.packets_heard(), expected);
    let stats = sim.buffer.stats();
    assert_eq!((stats.lost, stats.late, stats.resets), (0, 0, 0));
}

#[test]
fn a_sender_restart_resets_the_buffer() {
    let mut sim = Sim::new(config());
    sim.send(stream(50, 100, 1000, FRAME, |_| 0));
    // After 2 s the sender restarts with new random numbering.
    sim.send(stream(50, 40_000, 3_000_000_000, FRAME, |_| 2_000_000));
    sim.run(3_500_000);
    let stats = sim.buffer.stats();
    assert_eq!((stats.resets, stats.discarded), (1, 0));
    assert_eq!(sim.packets_heard(), (100..150).chain(40_000..40_050).collect::<Vec<u16>>());
}

#[test]
fn a_stray_packet_does_not_reset() {
    let mut sim = Sim::new(config());
    sim.send(stream(100, 0, 0, FRAME, |_| 0));
    sim.send([Sent { seq: 30_000, ts: 77, marker: false, arrival_us: 500_000 }]);
    sim.run(2_400_000);
    let stats = sim.buffer.stats();
    assert_eq!((stats.resets, stats.discarded, stats.lost), (0, 1, 0));
    assert_eq!(sim.packets_heard(), (0..100).collect::<Vec<u16>>());
}

#[test]
fn a_timestamp_jump_without_a_sequence_jump_resets() {
    let mut sim = Sim::new(config());
    sim.send(stream(50, 0, 0, FRAME, |_| 0));
    // Same sequence numbering, but the timestamps jump by an hour.
    sim.send(stream(50, 50, 3600 * RATE, FRAME, |_| 2_000_000));
    sim.run(3_500_000);
    let stats = sim.buffer.stats();
    assert_eq!(stats.resets, 1);
    assert_eq!(sim.packets_heard(), (0..100).collect::<Vec<u16>>());
}

#[test]
fn duplicates_are_counted_and_dropped() {
    let mut sim = Sim::new(config());
    let once = stream(80, 10, 0, FRAME, |_| 0);
    // Each packet again 5 ms later (before its turn), and every tenth again 200 ms later (after).
    sim.send(once.iter().map(|p| Sent { arrival_us: p.arrival_us + 5_000, ..*p }));
    sim.send(once.iter().step_by(10).map(|p| Sent { arrival_us: p.arrival_us + 200_000, ..*p }));
    sim.send(once);
    sim.run(1_900_000);
    assert_eq!(sim.packets_heard(), (10..90).collect::<Vec<u16>>());
    let stats = sim.buffer.stats();
    assert_eq!((stats.duplicates, stats.late, stats.lost), (88, 0, 0));
}

#[test]
fn a_packet_after_its_turn_is_late() {
    let mut sim = Sim::new(config());
    // Packet 40 comes 300 ms late: given up as lost (the next ones are there), then dropped.
    sim.send(stream(100, 0, 0, FRAME, |i| if i == 40 { 300_000 } else { 0 }));
    sim.run(2_400_000);
    let stats = sim.buffer.stats();
    assert_eq!((stats.late, stats.lost, stats.duplicates), (1, 1, 0), "{stats:?}");
    assert!(!sim.packets_heard().contains(&40));
    // One outlier beyond the maximum delay does not raise the delay for everyone.
    assert!(stats.target_delay < Duration::from_millis(50), "{stats:?}");
}

#[test]
fn packet_durations_are_learned_from_timestamps() {
    for frame in [80u32, 240, 480] {
        let mut sim = Sim::new(config());
        sim.send(stream(40, 0, 0, frame, |_| 0));
        sim.run(u64::from(frame) * 40 * 125 + 400_000);
        assert_eq!(sim.buffer.frame_duration(), frame);
        assert_eq!(sim.packets_heard(), (0..40).collect::<Vec<u16>>(), "{frame}");
        let stats = sim.buffer.stats();
        assert_eq!((stats.lost, stats.late), (0, 0), "{frame}: {stats:?}");
    }
}

#[test]
fn a_dtx_gap_is_silence_not_loss() {
    let mut sim = Sim::new(config());
    sim.send(stream(25, 0, 0, FRAME, |_| 0));
    // 2 s of silence: the next talk spurt goes on with the next sequence number.
    sim.send(stream(25, 25, 25 * FRAME + 2 * RATE, FRAME, |_| 2_500_000));
    sim.run(4_000_000);
    assert_eq!(sim.packets_heard(), (0..50).collect::<Vec<u16>>());
    let stats = sim.buffer.stats();
    assert_eq!((stats.lost, stats.late, stats.resets), (0, 0, 0), "{stats:?}");
    // Some concealment at the end of the first spurt while the next packet was awaited, then
    // silence until the second spurt.
    let resumed = sim.heard.iter().position(|(_, h)| *h == Heard::Packet(25)).unwrap();
    let silent = sim.heard[..resumed].iter().rev().take_while(|(_, h)| *h == Heard::Silence).count();
    assert!(silent > 50, "{silent}");
}

#[test]
fn the_first_packet_of_a_talk_spurt_lost_after_a_short_gap() {
    let mut sim = Sim::new(config());
    sim.send(stream(25, 0, 0, FRAME, |_| 0));
    // 100 ms of silence, and the first packet after it is lost.
    sim.send(stream(25, 25, 25 * FRAME + RATE / 10, FRAME, |_| 600_000).into_iter().filter(|p| p.seq != 25));
    sim.run(1_500_000);
    let heard: Vec<Heard> =
        sim.heard.iter().map(|(_, h)| *h).filter(|h| matches!(h, Heard::Packet(_) | Heard::Lost(Some(_)))).collect();
    let lost = heard.iter().position(|h| *h == Heard::Lost(Some(26))).expect("lost 25 with 26 for FEC");
    assert_eq!(heard[lost - 1], Heard::Packet(24));
    assert_eq!(heard[lost + 1], Heard::Packet(26));
    assert_eq!(sim.buffer.stats().lost, 1);
}

#[test]
fn a_stalled_engine_overflows_and_recovers_without_a_long_delay() {
    let mut buffer = JitterBuffer::new(JitterConfig { capacity: 16, ..config() });
    let start = origin();
    for i in 0..40u16 {
        buffer.push(start + Duration::from_millis(20 * u64::from(i)), i, u32::from(i) * FRAME, false, &payload(i));
    }
    let stats = buffer.stats();
    assert_eq!((stats.overflow, stats.buffered), (24, 16));
    // The engine wakes up: what is older than the maximum delay is dropped as late.
    let now = start + Duration::from_millis(800);
    let Some(Playout::Packet { payload, .. }) = buffer.pop(now) else { panic!("a packet is due") };
    assert_eq!(seq_of(payload), 30);
    assert_eq!(buffer.stats().late, 6);
}

#[test]
fn push_rtp_resets_on_a_new_ssrc() {
    let mut buffer = JitterBuffer::new(config());
    let start = origin();
    let mut bytes = [0u8; 16];
    for (seq, ssrc) in [(0u16, 1u32), (1, 1), (2, 2)] {
        let header = crate::rtp::RtpHeader { sequence: seq * 1000, timestamp: 7, ssrc, ..Default::default() };
        header.write(&payload(seq), &mut bytes).unwrap();
        buffer.push_rtp(start, &RtpPacket::parse(&bytes).unwrap());
    }
    let stats = buffer.stats();
    assert_eq!((stats.resets, stats.buffered), (1, 1));
    let Some(Playout::Packet { seq, .. }) = buffer.pop(start + Duration::from_millis(100)) else { panic!() };
    assert_eq!(seq, 2000);
}

#[test]
fn steady_state_reuses_payload_buffers() {
    let mut buffer = JitterBuffer::new(config());
    let start = origin();
    let mut addresses = Vec::new();
    for i in 0..2000u16 {
        let now = start + Duration::from_millis(20 * u64::from(i));
        buffer.push(now, i, u32::from(i) * FRAME, false, &[i as u8; 160]);
        let _ = buffer.pop(now);
        if i == 500 {
            addresses = buffer.slots.iter().map(|s| (s.payload.as_ptr(), s.payload.capacity())).collect();
        }
    }
    assert_eq!(buffer.stats().played, 1998);
    let now: Vec<_> = buffer.slots.iter().map(|s| (s.payload.as_ptr(), s.payload.capacity())).collect();
    assert_eq!(addresses, now);
}

#[test]
fn nothing_is_due_before_any_packet() {
    let mut buffer = JitterBuffer::new(config());
    assert!(buffer.pop(origin()).is_none());
    assert!(buffer.is_empty());
    assert_eq!(buffer.stats().target_delay, Duration::from_millis(40));
}

#[test]
fn out_of_range_settings_are_brought_into_range() {
    let mut buffer = JitterBuffer::new(JitterConfig {
        clock_rate: 0,
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(10),
        initial_delay: Duration::MAX,
        capacity: 0,
    });
    let start = origin();
    for i in 0..10u16 {
        buffer.push(start + Duration::from_millis(u64::from(i)), i, u32::from(i), false, b"x");
    }
    assert!(buffer.len() <= 4);
    let _ = buffer.pop(start + Duration::from_secs(5));
    assert_eq!(buffer.stats().target_delay, Duration::from_millis(100));
}
