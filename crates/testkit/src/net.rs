//! An in-memory datagram network on the virtual clock.

use crate::rng::Rng;
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How the network mistreats datagrams. Every decision is drawn from the network's seeded
/// [`Rng`], so one seed always gives the same losses, copies and delays.
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    /// Probability that a datagram (and, independently, each duplicate) is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by `reorder_delay`, letting later ones pass it.
    pub reorder: f64,
    /// Minimum one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` for each datagram.
    pub jitter: Duration,
    /// Extra delay of a reordered datagram.
    pub reorder_delay: Duration,
}

impl NetConfig {
    /// Every datagram arrives once, in order, after `delay`: a stream transport's view.
    pub fn reliable(delay: Duration) -> NetConfig {
        NetConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay,
            jitter: Duration::ZERO,
            reorder_delay: Duration::ZERO,
        }
    }

    /// `loss` probability of loss, 10 % duplication, 10 % reordering, 5–25 ms delay, and
    /// reordered datagrams held back 300 ms.
    pub fn lossy(loss: f64) -> NetConfig {
        NetConfig {
            loss,
            duplicate: 0.1,
            reorder: 0.1,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(20),
            reorder_delay: Duration::from_millis(300),
        }
    }
}

/// One datagram in flight or delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Bytes,
    pub sent_at: Instant,
    pub deliver_at: Instant,
}

/// What happened to the datagrams sent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to [`Network::send`].
    pub sent: u64,
    /// Copies handed out by [`Network::poll_delivery`].
    pub delivered: u64,
    /// Copies lost (including everything to or from a host that is down).
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams held back to be overtaken.
    pub reordered: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    deliver_at: Instant,
    seq: u64,
}

/// A network of addresses exchanging datagrams. Send with [`Network::send`], ask when the next
/// arrival is due with [`Network::next_delivery`], move the clock there and collect arrivals
/// with [`Network::poll_delivery`].
#[derive(Debug)]
pub struct Network {
    config: NetConfig,
    rng: Rng,
    queue: BinaryHeap<Reverse<(Pending, DatagramSlot)>>,
    seq: u64,
    down: HashSet<SocketAddr>,
    stats: NetStats,
}

/// A datagram ordered only by its place in the queue.
#[derive(Debug)]
struct DatagramSlot(Datagram);

impl PartialEq for DatagramSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for DatagramSlot {}
impl PartialOrd for DatagramSlot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DatagramSlot {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl Network {
    pub fn new(config: NetConfig, seed: u64) -> Network {
        Network {
            config,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            down: HashSet::new(),
            stats: NetStats::default(),
        }
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Changes how the network behaves from now on (datagrams in flight keep their fate).
    pub fn set_config(&mut self, config: NetConfig) {
        self.config = config;
    }

    /// Takes a host off the network (`down = true`): everything it sends or is sent is lost,
    /// as for a peer that went silent.
    pub fn set_down(&mut self, addr: SocketAddr, down: bool) {
        if down {
            self.down.insert(addr);
        } else {
            self.down.remove(&addr);
        }
    }

    /// Sends a datagram at `now`.
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, payload: Bytes, now: Instant) {
        self.stats.sent += 1;
        let copies = if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.down.contains(&from) || self.down.contains(&to) || self.rng.chance(self.config.loss) {
                self.stats.dropped += 1;
                continue;
            }
            let mut delay = self.config.delay + self.rng.duration(Duration::ZERO, self.config.jitter);
            if self.rng.chance(self.config.reorder) {
                self.stats.reordered += 1;
                delay += self.config.reorder_delay;
            }
            let deliver_at = now + delay;
            self.seq += 1;
            let d = Datagram { from, to, payload: payload.clone(), sent_at: now, deliver_at };
            self.queue.push(Reverse((Pending { deliver_at, seq: self.seq }, DatagramSlot(d))));
        }
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((p, _))| p.deliver_at)
    }

    /// The next datagram due at or before `now`, in arrival order. A datagram whose receiver
    /// went down while it was in flight is lost.
    pub fn poll_delivery(&mut self, now: Instant) -> Option<Datagram> {
        loop {
            if self.next_delivery()? > now {
                return None;
            }
            let Reverse((_, DatagramSlot(d))) = self.queue.pop()?;
            if self.down.contains(&d.to) {
                self.stats.dropped += 1;
                continue;
            }
            self.stats.delivered += 1;
            return Some(d);
        }
    }

    /// Datagrams still in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    pub fn stats(&self) -> NetStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Clock;

    fn addrs() -> (SocketAddr, SocketAddr) {
        ("192.0.2.1:5060".parse().unwrap(), "192.0.2.2:5060".parse().unwrap())
    }

    fn drain(net: &mut Network, clock: &mut Clock) -> Vec<Datagram> {
        let mut out = Vec::new();
        while let Some(at) = net.next_delivery() {
            clock.advance_to(at);
            while let Some(d) = net.poll_delivery(clock.now()) {
                out.push(d);
            }
        }
        out
    }

    #[test]
    fn reliable_keeps_order_and_delay() {
        let mut clock = Clock::new();
        let (a, b) = addrs();
        let mut net = Network::new(NetConfig::reliable(Duration::from_millis(10)), 1);
        for i in 0..50u8 {
            net.send(a, b, Bytes::from(vec![i]), clock.now());
            clock.advance(Duration::from_millis(1));
        }
        let got = drain(&mut net, &mut clock);
        assert_eq!(got.iter().map(|d| d.payload[0]).collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
        assert!(got.iter().all(|d| d.deliver_at - d.sent_at == Duration::from_millis(10)));
        assert_eq!(net.stats(), NetStats { sent: 50, delivered: 50, ..NetStats::default() });
    }

    #[test]
    fn lossy_loses_copies_and_reorders_reproducibly() {
        let run = |seed| {
            let mut clock = Clock::new();
            let (a, b) = addrs();
            let mut net = Network::new(NetConfig::lossy(0.3), seed);
            for i in 0..1000u32 {
                net.send(a, b, Bytes::from(i.to_be_bytes().to_vec()), clock.now());
                clock.advance(Duration::from_millis(2));
            }
            let got: Vec<u32> = drain(&mut net, &mut clock)
                .iter()
                .map(|d| u32::from_be_bytes(d.payload[..].try_into().unwrap()))
                .collect();
            (got, net.stats())
        };
        let (got, stats) = run(5);
        assert_eq!(run(5).0, got, "same seed, same run");
        assert_ne!(run(6).0, got);
        assert_eq!(stats.delivered as usize, got.len());
        assert_eq!(stats.delivered + stats.dropped, stats.sent + stats.duplicated);
        assert!((250..350).contains(&(stats.dropped * 1000 / (stats.sent + stats.duplicated))));
        assert!(got.windows(2).any(|w| w[0] > w[1]), "some datagrams overtaken");
        assert!(got.windows(2).any(|w| w[0] == w[1]), "some duplicates");
    }

    #[test]
    fn down_hosts_are_silent() {
        let mut clock = Clock::new();
        let (a, b) = addrs();
        let mut net = Network::new(NetConfig::reliable(Duration::from_millis(1)), 1);
        net.send(a, b, Bytes::from_static(b"x"), clock.now());
        net.set_down(b, true);
        net.send(a, b, Bytes::from_static(b"y"), clock.now());
        assert!(drain(&mut net, &mut clock).is_empty());
        net.set_down(b, false);
        net.send(b, a, Bytes::from_static(b"z"), clock.now());
        assert_eq!(drain(&mut net, &mut clock).len(), 1);
        assert_eq!(net.stats().dropped, 2);
    }
}
