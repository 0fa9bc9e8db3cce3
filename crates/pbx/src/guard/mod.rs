//! The guard: what call control does against scanners, password guessing and toll fraud.
//!
//! Three pieces, all sans-IO:
//! - [`gate`]: before parsing, per-source token buckets, bans and connection caps (the driver
//!   runs it on its receive and accept loops);
//! - [`Watch`]: inside call control, it learns from what happens (failed authentications,
//!   requests for users that do not exist, scanners' User-Agents) and bans sources and locks
//!   accounts. A locked account gets exactly the answers a wrong password gets;
//! - [`fraud`]: per-account limits on concurrent calls, calls per minute and outside
//!   destinations.
//!
//! Every decision is a domain event ([`crate::Event::SourceBanned`],
//! [`crate::Event::AccountLocked`], [`crate::Event::FraudRefused`]); bans reach the gate
//! through the driver, which subscribes to them.

pub mod fraud;
pub mod gate;
pub mod net;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::events::{BanReason, Event};
use crate::io::{Now, Outputs, StoreWrite};
pub use fraud::{Destination, FraudConfig, FraudLimit};
pub use gate::{Admit, Gate, GateConfig, GateCounters};
pub use net::{IpNet, NetParseError, canonical, source_key};

/// The User-Agents of the well-known SIP scanning and cracking tools.
pub const SCANNER_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "iWar",
    "SIVuS",
    "VaxSIPUserAgent",
    "smap",
    "sundayddr",
    "PortSIP VoIP SDK",
];

/// What the guard inside call control is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Networks never banned nor locked out by what they do.
    pub trusted: Vec<IpNet>,
    /// How long a ban lasts.
    pub ban: Duration,
    /// Failures are counted over this window.
    pub window: Duration,
    /// Failed digest checks from one source that ban it (0: never).
    pub auth_failures_per_source: u32,
    /// Failed digest checks for one username, from anywhere, that lock it (0: never).
    pub auth_failures_per_account: u32,
    /// How long an account stays locked.
    pub lockout: Duration,
    /// Distinct usernames one source may name without ever authenticating as them (0: no
    /// limit). Existing and unknown names count alike, so the ban tells nothing about which
    /// names exist; names the source authenticated as do not count.
    pub unknown_users_per_source: u32,
    /// User-Agent fragments (compared without case) that ban a source at once.
    pub scanner_user_agents: Vec<String>,
    /// Calls one source may have opening or ringing at once; more get 503 (0: no limit).
    pub max_unanswered_per_source: u32,
    pub fraud: FraudConfig,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            trusted: Vec::new(),
            ban: Duration::from_secs(600),
            window: Duration::from_secs(600),
            auth_failures_per_source: 5,
            auth_failures_per_account: 10,
            lockout: Duration::from_secs(900),
            unknown_users_per_source: 10,
            scanner_user_agents: SCANNER_USER_AGENTS.iter().map(|s| (*s).to_owned()).collect(),
            max_unanswered_per_source: 100,
            fraud: FraudConfig::default(),
        }
    }
}

/// Times of recent events, at most as many as the limit: the limit is reached when the oldest
/// kept one is still inside the window.
#[derive(Debug, Default)]
struct Recent(VecDeque<Instant>);

impl Recent {
    /// Records one at `now`; true when `limit` of them fall inside `window`.
    fn hit(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        let limit = limit as usize;
        while self.0.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            self.0.pop_front();
        }
        self.0.push_back(now);
        while self.0.len() > limit {
            self.0.pop_front();
        }
        self.0.len() >= limit
    }
}

/// Distinct names seen from one source within the window.
#[derive(Debug)]
struct Sweep {
    since: Instant,
    names: HashSet<String>,
}

/// The part of call control that watches for abuse. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Watch {
    config: GuardConfig,
    /// Lower-cased [`GuardConfig::scanner_user_agents`].
    scanners: Vec<String>,
    by_source: HashMap<IpAddr, Recent>,
    by_account: HashMap<String, Recent>,
    unknown: HashMap<IpAddr, Sweep>,
    /// The names each source authenticated as, and when it last did.
    vouched: HashMap<IpAddr, (Instant, HashSet<String>)>,
    /// Sources this watch banned, until when (Unix seconds), so that one ban is one event.
    banned: HashMap<IpAddr, u64>,
    /// Locked usernames (lower-case) and when each lock ends (Unix seconds).
    locked: HashMap<String, u64>,
    /// The next time the maps are swept of stale entries.
    next_sweep: Option<Instant>,
}

/// Entries kept at most per map; beyond it the oldest windows are cleared first.
const MAX_TRACKED: usize = 100_000;

impl Watch {
    pub fn new(config: GuardConfig) -> Watch {
        let scanners = config.scanner_user_agents.iter().map(|s| s.to_ascii_lowercase()).collect();
        Watch { config, scanners, ..Watch::default() }
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.config.trusted.iter().any(|net| net.contains(ip))
    }

    /// True when `user_agent` is a known scanner's: the request is to be dropped unanswered,
    /// and the source is banned.
    pub(crate) fn scanner(&mut self, out: &mut Outputs, now: Now, source: IpAddr, user_agent: &str) -> bool {
        if self.scanners.is_empty() || self.trusted(source) {
            return false;
        }
        let ua = user_agent.to_ascii_lowercase();
        let Some(tool) = self.scanners.iter().find(|s| ua.contains(s.as_str())) else { return false };
        let tool = tool.clone();
        self.ban(out, now, source, BanReason::Scanner { user_agent: truncate(user_agent, 80), tool });
        true
    }

    /// A request from `source` named `user` without valid credentials (none, or refused).
    pub(crate) fn unvouched(&mut self, out: &mut Outputs, now: Now, source: IpAddr, user: &str) {
        let limit = self.config.unknown_users_per_source;
        if limit == 0 || self.trusted(source) {
            return;
        }
        self.sweep(now.instant);
        let key = source_key(source);
        let user = user.to_ascii_lowercase();
        if self.vouched.get(&key).is_some_and(|(_, names)| names.contains(&user)) {
            return;
        }
        let window = self.config.window;
        let sweep = self.unknown.entry(key).or_insert_with(|| Sweep { since: now.instant, names: HashSet::new() });
        if now.instant.saturating_duration_since(sweep.since) >= window {
            sweep.since = now.instant;
            sweep.names.clear();
        }
        if sweep.names.len() < limit as usize {
            sweep.names.insert(truncate(&user, 64));
        }
        if sweep.names.len() >= limit as usize {
            self.unknown.remove(&key);
            self.ban(out, now, source, BanReason::UnknownUsers { count: limit });
        }
    }

    /// `source` authenticated; `names` are the names the request and the account go by: they
    /// no longer count towards a sweep from there.
    pub(crate) fn vouch(&mut self, now: Now, source: IpAddr, names: &[&str]) {
        if self.config.unknown_users_per_source == 0 || self.trusted(source) {
            return;
        }
        let key = source_key(source);
        let (seen, vouched) = self.vouched.entry(key).or_insert_with(|| (now.instant, HashSet::new()));
        *seen = now.instant;
        for name in names.iter().filter(|n| !n.is_empty()) {
            let name = name.to_ascii_lowercase();
            if let Some(sweep) = self.unknown.get_mut(&key) {
                sweep.names.remove(&name);
            }
            if vouched.len() < 10_000 {
                vouched.insert(name);
            }
        }
    }

    /// A digest check failed for `username` from `source`.
    pub(crate) fn auth_failed(&mut self, out: &mut Outputs, now: Now, source: IpAddr, username: &str) {
        if self.trusted(source) {
            return;
        }
        self.sweep(now.instant);
        let window = self.config.window;
        let per_source = self.config.auth_failures_per_source;
        if per_source > 0 {
            let key = source_key(source);
            if self.by_source.entry(key).or_default().hit(now.instant, per_source, window) {
                self.by_source.remove(&key);
                self.ban(out, now, source, BanReason::AuthFailures { count: per_source });
            }
        }
        let per_account = self.config.auth_failures_per_account;
        let user = username.to_ascii_lowercase();
        if per_account > 0
            && !user.is_empty()
            && !self.is_locked(&user, now.unix_secs)
            && self.by_account.entry(user.clone()).or_default().hit(now.instant, per_account, window)
        {
            self.by_account.remove(&user);
            let until = now.unix_secs + self.config.lockout.as_secs();
            tracing::warn!(username, until, failures = per_account, "account locked");
            self.locked.insert(user, until);
            out.store(StoreWrite::Lockout { username: username.to_owned(), until });
            out.event(Event::AccountLocked { username: username.to_owned(), until, failures: per_account });
        }
    }

    /// True while `username` is locked.
    pub fn is_locked(&self, username: &str, now_secs: u64) -> bool {
        let check = |key: &str| self.locked.get(key).is_some_and(|until| *until > now_secs);
        if username.bytes().any(|b| b.is_ascii_uppercase()) {
            check(&username.to_ascii_lowercase())
        } else {
            check(username)
        }
    }

    /// Lockouts kept in the store (at start, or when they change there): they replace those
    /// known.
    pub fn set_lockouts(&mut self, lockouts: impl IntoIterator<Item = (String, u64)>) {
        self.locked = lockouts.into_iter().map(|(user, until)| (user.to_ascii_lowercase(), until)).collect();
    }

    fn ban(&mut self, out: &mut Outputs, now: Now, source: IpAddr, reason: BanReason) {
        let key = source_key(source);
        if self.banned.get(&key).is_some_and(|until| *until > now.unix_secs) {
            return;
        }
        let until = now.unix_secs + self.config.ban.as_secs();
        self.banned.insert(key, until);
        out.store(StoreWrite::Ban { source: key, until: Some(until), reason: reason.to_string() });
        out.event(Event::SourceBanned { source: key, until: Some(until), reason });
    }

    /// Forgets windows that ended, at most every ten seconds (or when a map is full).
    fn sweep(&mut self, now: Instant) {
        let full = self.by_source.len().max(self.by_account.len()).max(self.unknown.len()).max(self.vouched.len())
            >= MAX_TRACKED;
        if self.next_sweep.is_some_and(|at| now < at) && !full {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(10));
        let window = self.config.window;
        let fresh = |t: &Instant| now.saturating_duration_since(*t) < window;
        self.by_source.retain(|_, r| r.0.back().is_some_and(fresh));
        self.by_account.retain(|_, r| r.0.back().is_some_and(fresh));
        self.unknown.retain(|_, s| fresh(&s.since));
        // What a source authenticated as is remembered a day after it last did.
        self.vouched.retain(|_, (seen, _)| now.saturating_duration_since(*seen) < Duration::from_secs(86_400));
        if full {
            // Still full: a spoofed spray. Start over rather than grow.
            for map_len in [self.by_source.len(), self.by_account.len(), self.unknown.len(), self.vouched.len()] {
                if map_len >= MAX_TRACKED {
                    self.by_source.clear();
                    self.by_account.clear();
                    self.unknown.clear();
                    self.vouched.clear();
                    break;
                }
            }
        }
    }

    /// Forgets bans and locks that ended (Unix seconds).
    pub(crate) fn expire(&mut self, now_secs: u64) {
        self.banned.retain(|_, until| *until > now_secs);
        self.locked.retain(|_, until| *until > now_secs);
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Output;

    fn now(t0: Instant, secs: u64) -> Now {
        Now { instant: t0 + Duration::from_secs(secs), unix_secs: 1_700_000_000 + secs }
    }

    fn events(out: &mut Outputs) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(output) = out.pop() {
            if let Output::Event(e) = output {
                events.push(e);
            }
        }
        events
    }

    #[test]
    fn failures_from_one_source_ban_it_once() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut watch = Watch::new(GuardConfig::default());
        let mut out = Outputs::default();
        let source: IpAddr = "203.0.113.5".parse().unwrap();
        for i in 0..4 {
            watch.auth_failed(&mut out, now(t0, i), source, "alice");
        }
        assert!(events(&mut out).is_empty());
        watch.auth_failed(&mut out, now(t0, 4), source, "alice");
        let banned = events(&mut out);
        assert!(
            matches!(&banned[..], [Event::SourceBanned { source: s, reason: BanReason::AuthFailures { count: 5 }, .. }] if *s == source),
            "{banned:?}"
        );
        // Failures spread over more than the window never add up.
        let other: IpAddr = "203.0.113.6".parse().unwrap();
        for i in 0..20 {
            watch.auth_failed(&mut out, now(t0, 200 * i), other, &format!("u{i}"));
        }
        assert!(events(&mut out).iter().all(|e| !matches!(e, Event::SourceBanned { source, .. } if *source == other)));
    }

    #[test]
    fn failures_for_one_account_lock_it_for_a_while() {
        let t0 = sambung_testkit::Clock::new().now();
        let config =
            GuardConfig { auth_failures_per_source: 0, auth_failures_per_account: 3, ..GuardConfig::default() };
        let mut watch = Watch::new(config);
        let mut out = Outputs::default();
        for i in 0..3u8 {
            watch.auth_failed(&mut out, now(t0, 1), IpAddr::from([198, 51, 100, i]), "Bob");
        }
        assert!(watch.is_locked("bob", now(t0, 1).unix_secs));
        assert!(watch.is_locked("BOB", now(t0, 899).unix_secs));
        assert!(!watch.is_locked("bob", now(t0, 902).unix_secs));
        let locked: Vec<_> = events(&mut out);
        assert!(matches!(&locked[..], [Event::AccountLocked { failures: 3, .. }]), "{locked:?}");
    }

    #[test]
    fn a_sweep_of_unknown_users_is_banned() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut watch = Watch::new(GuardConfig::default());
        let mut out = Outputs::default();
        let source: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..50 {
            watch.unvouched(&mut out, now(t0, 1), source, "100");
        }
        assert!(events(&mut out).is_empty(), "the same name again and again is not a sweep");
        for user in 101..110 {
            watch.unvouched(&mut out, now(t0, 2), source, &user.to_string());
        }
        assert!(matches!(&events(&mut out)[..], [Event::SourceBanned { reason: BanReason::UnknownUsers { .. }, .. }]));
    }

    #[test]
    fn phones_behind_one_address_that_authenticate_are_no_sweep() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut watch = Watch::new(GuardConfig::default());
        let mut out = Outputs::default();
        let office: IpAddr = "203.0.113.9".parse().unwrap();
        // 50 phones behind one NAT: each names itself, is challenged, then authenticates, and
        // later sends keep-alive OPTIONS to its own address of record.
        for phone in 0..50 {
            let name = format!("desk{phone}");
            watch.unvouched(&mut out, now(t0, 1), office, &name);
            watch.vouch(now(t0, 1), office, &[&name]);
        }
        for phone in 0..50 {
            watch.unvouched(&mut out, now(t0, 700), office, &format!("DESK{phone}"));
        }
        assert!(events(&mut out).is_empty());
    }

    #[test]
    fn scanners_by_user_agent() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut watch = Watch::new(GuardConfig::default());
        let mut out = Outputs::default();
        let source: IpAddr = "203.0.113.8".parse().unwrap();
        assert!(!watch.scanner(&mut out, now(t0, 0), source, "Linphone/5.2 (belle-sip/5.2)"));
        assert!(watch.scanner(&mut out, now(t0, 0), source, "Friendly-Scanner"));
        assert!(watch.scanner(&mut out, now(t0, 0), source, "sipvicious"));
        assert_eq!(events(&mut out).len(), 1, "one ban, one event");
        let mut off = Watch::new(GuardConfig { scanner_user_agents: Vec::new(), ..GuardConfig::default() });
        assert!(!off.scanner(&mut out, now(t0, 0), source, "friendly-scanner"));
    }
}
