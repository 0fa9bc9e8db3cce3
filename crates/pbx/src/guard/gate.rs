//! The gate: what is decided about a datagram or a connection before anything of it is parsed.
//!
//! A banned source gets nothing. Every other source spends one token of its bucket per SIP
//! message and per new connection (Kamailio's pike, as a token bucket): a source that empties
//! its bucket is banned, unless it authenticated before ([`Gate::vouch`]): UDP source
//! addresses can be forged, so such a source only loses what it sends beyond its rate. Stream
//! connections are also capped per source, so that one address cannot hold the server's whole
//! connection limit. Trusted networks pass untouched.
//!
//! The gate is sans-IO like the rest of the crate: the driver keeps it behind a lock shared by
//! its receive loops and accept loops and passes the time in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::net::{IpNet, source_key};

/// What the gate is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateConfig {
    /// Networks exempt from every limit and ban.
    pub trusted: Vec<IpNet>,
    /// Messages and new connections per second a source may sustain (0: no rate limit).
    pub rate: u32,
    /// How many it may send at once.
    pub burst: u32,
    /// How long a ban for flooding lasts.
    pub ban: Duration,
    /// Stream connections one source may hold at once (0: no limit).
    pub max_connections_per_source: u32,
}

impl Default for GateConfig {
    fn default() -> GateConfig {
        GateConfig {
            trusted: Vec::new(),
            rate: 200,
            burst: 400,
            ban: Duration::from_secs(600),
            max_connections_per_source: 32,
        }
    }
}

/// The gate's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Go on.
    Pass,
    /// Drop it silently (the source is banned, or holds too many connections).
    Drop,
    /// Drop it: the source just emptied its bucket and is banned from now on, until `until`
    /// (also kept for [`Gate::take_new_bans`]).
    Banned { source: IpAddr, until: Instant },
}

/// A ban in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ban {
    /// `None`: until removed.
    until: Option<Instant>,
    /// When it was made here; `None` for one read from the store. A reload keeps the newest
    /// made here, which the store may not hold yet.
    since: Option<Instant>,
}

/// How long a ban made here survives a reload of the store's list that does not hold it yet.
const RELOAD_MARGIN: Duration = Duration::from_secs(30);

/// How long a source that authenticated is only rate-limited, never banned, by the gate.
const VOUCHED_FOR: Duration = Duration::from_secs(86_400);

/// Sources tracked at most; beyond this, idle ones are forgotten first, then new sources are
/// let through unmetered rather than letting memory grow without bound under spoofed floods.
const MAX_TRACKED: usize = 200_000;

/// How often idle buckets and ended bans are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Counters for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateCounters {
    /// Messages and connections dropped because their source was banned.
    pub dropped_banned: u64,
    /// Messages dropped over the rate of a source that authenticated (not banned).
    pub dropped_over_rate: u64,
    /// Connections refused because their source held too many.
    pub refused_connections: u64,
    /// Bans the gate made itself (floods).
    pub flood_bans: u64,
}

/// One source's token bucket: tokens in millionths.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    micro: u64,
    at: Instant,
}

/// The gate. See the [module docs](self).
#[derive(Debug)]
pub struct Gate {
    config: GateConfig,
    /// Banned sources (by [`source_key`]).
    bans: HashMap<IpAddr, Ban>,
    /// Bans the gate made itself and nobody took yet.
    new_bans: Vec<(IpAddr, Instant)>,
    /// Sources that authenticated, and when they last did.
    vouched: HashMap<IpAddr, Instant>,
    buckets: HashMap<IpAddr, Bucket>,
    connections: HashMap<IpAddr, u32>,
    next_sweep: Option<Instant>,
    counters: GateCounters,
}

impl Gate {
    pub fn new(config: GateConfig) -> Gate {
        Gate {
            config,
            bans: HashMap::new(),
            new_bans: Vec::new(),
            vouched: HashMap::new(),
            buckets: HashMap::new(),
            connections: HashMap::new(),
            next_sweep: None,
            counters: GateCounters::default(),
        }
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    pub fn counters(&self) -> GateCounters {
        self.counters
    }

    /// True for an address of a trusted network.
    pub fn trusted(&self, ip: IpAddr) -> bool {
        self.config.trusted.iter().any(|net| net.contains(ip))
    }

    /// One SIP message (a datagram, or a message framed on a stream) from `ip`.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Admit {
        if self.trusted(ip) {
            return Admit::Pass;
        }
        let key = source_key(ip);
        if self.banned_key(key, now) {
            self.counters.dropped_banned += 1;
            return Admit::Drop;
        }
        self.spend(key, now)
    }

    /// A new stream connection from `ip`. On [`Admit::Pass`] the connection is counted until
    /// [`Gate::disconnected`].
    pub fn connect(&mut self, ip: IpAddr, now: Instant) -> Admit {
        // A connection spends a token like a message; trusted networks are not counted.
        let admit = self.admit(ip, now);
        if admit != Admit::Pass || self.trusted(ip) {
            return admit;
        }
        let key = source_key(ip);
        let held = self.connections.entry(key).or_insert(0);
        if self.config.max_connections_per_source > 0 && *held >= self.config.max_connections_per_source {
            self.counters.refused_connections += 1;
            return Admit::Drop;
        }
        *held += 1;
        Admit::Pass
    }

    /// A connection [`Gate::connect`] let in has closed.
    pub fn disconnected(&mut self, ip: IpAddr) {
        if self.trusted(ip) {
            return;
        }
        let key = source_key(ip);
        if let Some(held) = self.connections.get_mut(&key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.connections.remove(&key);
            }
        }
    }

    /// Bans `ip` (its /64 for IPv6) until `until` (`None`: until removed), made at `now`.
    /// Trusted addresses are never banned, nor new ones once [`MAX_TRACKED`] are: false then.
    pub fn ban(&mut self, ip: IpAddr, until: Option<Instant>, now: Instant) -> bool {
        if self.trusted(ip) {
            return false;
        }
        let key = source_key(ip);
        if self.bans.len() >= MAX_TRACKED && !self.bans.contains_key(&key) {
            self.bans.retain(|_, ban| ban.until.is_none_or(|t| t > now));
            if self.bans.len() >= MAX_TRACKED {
                return false;
            }
        }
        self.bans.insert(key, Ban { until, since: Some(now) });
        true
    }

    /// `ip` authenticated at `now`: for a day, a flood from it is cut to its rate, not banned.
    pub fn vouch(&mut self, ip: IpAddr, now: Instant) {
        if self.vouched.len() < MAX_TRACKED || self.vouched.contains_key(&source_key(ip)) {
            self.vouched.insert(source_key(ip), now);
        }
    }

    /// The bans the gate made itself since the last call (source, until), for the driver to
    /// store and announce.
    pub fn take_new_bans(&mut self) -> Vec<(IpAddr, Instant)> {
        std::mem::take(&mut self.new_bans)
    }

    /// Lifts the ban on `ip`; false when there was none.
    pub fn unban(&mut self, ip: IpAddr) -> bool {
        let key = source_key(ip);
        self.buckets.remove(&key);
        self.bans.remove(&key).is_some()
    }

    /// Replaces every ban with the store's list (an operator changed it), keeping the bans
    /// made here in the last [`RELOAD_MARGIN`], which the store may not hold yet. The sources
    /// banned before and after, for the events.
    pub fn replace_bans(
        &mut self,
        bans: impl IntoIterator<Item = (IpAddr, Option<Instant>)>,
        now: Instant,
    ) -> (Vec<IpAddr>, Vec<IpAddr>) {
        let before = self.banned_sources(now);
        let recent: Vec<(IpAddr, Ban)> = self
            .bans
            .iter()
            .filter(|(_, ban)| ban.since.is_some_and(|at| now.saturating_duration_since(at) < RELOAD_MARGIN))
            .map(|(ip, ban)| (*ip, *ban))
            .collect();
        self.bans.clear();
        for (ip, until) in bans {
            if self.ban(ip, until, now)
                && let Some(ban) = self.bans.get_mut(&source_key(ip))
            {
                ban.since = None;
            }
        }
        for (ip, ban) in recent {
            self.bans.entry(ip).or_insert(ban);
        }
        (before, self.banned_sources(now))
    }

    fn banned_sources(&self, now: Instant) -> Vec<IpAddr> {
        let mut sources: Vec<IpAddr> =
            self.bans.iter().filter(|(_, ban)| ban.until.is_none_or(|t| t > now)).map(|(ip, _)| *ip).collect();
        sources.sort_unstable();
        sources
    }

    /// True while `ip` is banned.
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        !self.trusted(ip) && self.bans.get(&source_key(ip)).is_some_and(|ban| ban.until.is_none_or(|t| t > now))
    }

    /// How many bans are in force.
    pub fn bans(&self, now: Instant) -> usize {
        self.bans.values().filter(|ban| ban.until.is_none_or(|t| t > now)).count()
    }

    fn banned_key(&mut self, key: IpAddr, now: Instant) -> bool {
        match self.bans.get(&key).map(|ban| ban.until) {
            None => false,
            Some(None) => true,
            Some(Some(until)) if until > now => true,
            Some(Some(_)) => {
                // Over: the source starts again with a full bucket.
                self.bans.remove(&key);
                self.buckets.remove(&key);
                false
            }
        }
    }

    /// Spends one token of `key`'s bucket; an empty bucket bans the source.
    fn spend(&mut self, key: IpAddr, now: Instant) -> Admit {
        if self.config.rate == 0 {
            return Admit::Pass;
        }
        self.sweep(now);
        const ONE: u64 = 1_000_000;
        let capacity = u64::from(self.config.burst.max(1)) * ONE;
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&key) {
            return Admit::Pass;
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket { micro: capacity, at: now });
        let elapsed = now.saturating_duration_since(bucket.at);
        let refill = elapsed.as_micros().saturating_mul(u128::from(self.config.rate));
        bucket.micro = u64::try_from(u128::from(bucket.micro).saturating_add(refill)).unwrap_or(u64::MAX).min(capacity);
        bucket.at = now;
        if bucket.micro >= ONE {
            bucket.micro -= ONE;
            return Admit::Pass;
        }
        if self.vouched.get(&key).is_some_and(|at| now.saturating_duration_since(*at) < VOUCHED_FOR) {
            self.counters.dropped_over_rate += 1;
            return Admit::Drop;
        }
        let until = now.checked_add(self.config.ban).unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.buckets.remove(&key);
        if !self.ban(key, Some(until), now) {
            return Admit::Drop;
        }
        self.new_bans.push((key, until));
        self.counters.flood_bans += 1;
        Admit::Banned { source: key, until }
    }

    /// Forgets full buckets (their sources have been quiet long enough to refill) and ended
    /// bans, at most every [`SWEEP_EVERY`].
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| now < at) && self.buckets.len() < MAX_TRACKED {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        let rate = u128::from(self.config.rate.max(1));
        let capacity = u128::from(self.config.burst.max(1)) * 1_000_000;
        self.buckets.retain(|_, b| {
            let refill = now.saturating_duration_since(b.at).as_micros().saturating_mul(rate);
            u128::from(b.micro) + refill < capacity
        });
        self.bans.retain(|_, ban| ban.until.is_none_or(|t| t > now));
        self.vouched.retain(|_, at| now.saturating_duration_since(*at) < VOUCHED_FOR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(rate: u32, burst: u32) -> Gate {
        Gate::new(GateConfig { rate, burst, max_connections_per_source: 3, ..GateConfig::default() })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_flood_empties_the_bucket_and_is_banned() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut gate = gate(10, 20);
        let flood = ip("192.0.2.1");
        let other = ip("192.0.2.2");
        for _ in 0..20 {
            assert_eq!(gate.admit(flood, t0), Admit::Pass);
        }
        let Admit::Banned { source, until } = gate.admit(flood, t0) else { panic!("not banned") };
        assert_eq!(source, flood);
        assert_eq!(until, t0 + Duration::from_secs(600));
        assert_eq!(gate.admit(flood, t0 + Duration::from_secs(1)), Admit::Drop);
        assert_eq!(gate.admit(other, t0), Admit::Pass, "another source is untouched");
        assert_eq!(gate.counters().dropped_banned, 1);
        // After the ban, a full bucket again.
        let later = until + Duration::from_millis(1);
        for _ in 0..20 {
            assert_eq!(gate.admit(flood, later), Admit::Pass);
        }
    }

    #[test]
    fn a_steady_source_under_the_rate_is_never_banned() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut gate = gate(10, 5);
        for i in 0..1000u64 {
            // 9 per second.
            let at = t0 + Duration::from_micros(i * 111_111);
            assert_eq!(gate.admit(ip("198.51.100.1"), at), Admit::Pass, "message {i}");
        }
    }

    #[test]
    fn trusted_networks_pass_and_cannot_be_banned() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut gate = Gate::new(GateConfig {
            rate: 1,
            burst: 1,
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
            ..GateConfig::default()
        });
        for _ in 0..100 {
            assert_eq!(gate.admit(ip("10.9.9.9"), t0), Admit::Pass);
        }
        assert!(!gate.ban(ip("10.1.1.1"), None, t0));
        assert!(!gate.is_banned(ip("10.1.1.1"), t0));
    }

    #[test]
    fn connections_are_capped_per_source() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut gate = gate(1000, 1000);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(gate.connect(a, t0), Admit::Pass);
        }
        assert_eq!(gate.connect(a, t0), Admit::Drop);
        assert_eq!(gate.connect(ip("192.0.2.2"), t0), Admit::Pass);
        gate.disconnected(a);
        assert_eq!(gate.connect(a, t0), Admit::Pass);
        assert_eq!(gate.counters().refused_connections, 1);
    }

    #[test]
    fn bans_by_hand_and_per_ipv6_64() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut gate = gate(1000, 1000);
        assert!(gate.ban(ip("2001:db8:1:2::1"), None, t0));
        assert_eq!(gate.admit(ip("2001:db8:1:2::ffff"), t0), Admit::Drop);
        assert_eq!(gate.admit(ip("2001:db8:1:3::1"), t0), Admit::Pass);
        assert!(gate.unban(ip("2001:db8:1:2::1")));
        assert_eq!(gate.admit(ip("2001:db8:1:2::ffff"), t0), Admit::Pass);
        gate.replace_bans([(ip("192.0.2.9"), Some(t0 + Duration::from_secs(5)))], t0);
        assert!(gate.is_banned(ip("192.0.2.9"), t0));
        assert!(!gate.is_banned(ip("192.0.2.9"), t0 + Duration::from_secs(6)));
        assert_eq!(gate.bans(t0), 1);
    }

    #[test]
    fn a_source_that_authenticated_is_cut_to_its_rate_not_banned() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut gate = gate(10, 20);
        let office = ip("192.0.2.50");
        gate.vouch(office, t0);
        let passed = (0..100).filter(|_| gate.admit(office, t0) == Admit::Pass).count();
        assert_eq!(passed, 20, "the burst, then the excess is dropped");
        assert!(!gate.is_banned(office, t0));
        assert_eq!(gate.admit(office, t0 + Duration::from_secs(1)), Admit::Pass, "refilled: not banned");
        assert!(gate.take_new_bans().is_empty());
        assert_eq!(gate.counters().dropped_over_rate, 80);
    }

    #[test]
    fn a_reload_keeps_fresh_bans_made_here_and_reports_what_changed() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut gate = gate(10, 1);
        let flood = ip("192.0.2.60");
        gate.admit(flood, t0);
        assert!(matches!(gate.admit(flood, t0), Admit::Banned { .. }));
        assert_eq!(gate.take_new_bans().len(), 1);
        // The operator's list (which does not hold the flood's ban yet) adds one.
        let operator = ip("192.0.2.61");
        let (before, after) = gate.replace_bans([(operator, None)], t0 + Duration::from_secs(1));
        assert_eq!(before, [flood]);
        assert_eq!(after, [flood, operator]);
        // Removed by the operator later: bans read from the store are not kept by a reload.
        let later = t0 + Duration::from_secs(60);
        let (_, after) = gate.replace_bans([], later);
        assert!(after.is_empty(), "{after:?}");
    }
}
