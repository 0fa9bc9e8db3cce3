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
pub const SCANNER_USER_AGENTS: &[&str] =
    &["friendly-scanner", "sipvicious", "sipcli", "sip-scan", "iWar", "SIVuS", "smap", "sundayddr"];

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

/// How long a name a source used without credentials may wait for the authenticated retry
/// before it counts towards a sweep: a phone answers a challenge within a round trip, a
/// scanner never does. So a burst of first requests (a phone's busy-lamp subscriptions, an
/// office rebooting behind one address) is no sweep.
pub const SWEEP_GRACE: Duration = Duration::from_secs(4);

/// How long a source that authenticated stays known as one (see [`Watch::vouch`]).
pub const VOUCHED_FOR: Duration = Duration::from_secs(86_400);

/// Longest username kept as a key, stored or logged.
const MAX_NAME: usize = 64;

/// The part of call control that watches for abuse. See the [module docs](self).
///
/// A source that authenticated (within [`VOUCHED_FOR`]) is never banned by the watch, and
/// the usernames it authenticated as are not locked for it: UDP source addresses can be
/// forged, and an attacker who forges an office's address must not get the office banned or
/// its users locked out.
#[derive(Debug, Default)]
pub struct Watch {
    config: GuardConfig,
    /// Lower-cased [`GuardConfig::scanner_user_agents`].
    scanners: Vec<String>,
    by_source: HashMap<IpAddr, Recent>,
    by_account: HashMap<String, Recent>,
    /// Names each source used without authenticating, with when it first did.
    pending: HashMap<IpAddr, HashMap<String, Instant>>,
    /// When pending names next become due to count.
    next_due: Option<Instant>,
    /// The names each source authenticated as, and when it last did.
    vouched: HashMap<IpAddr, (Instant, HashSet<String>)>,
    /// Sources banned, until when (Unix seconds; `None`: until lifted), so that one ban is one
    /// event.
    banned: HashMap<IpAddr, Option<u64>>,
    /// Locked usernames (lower-case) and when each lock ends (Unix seconds).
    locked: HashMap<String, u64>,
    /// The next time the maps are swept of stale entries.
    next_sweep: Option<Instant>,
}

/// Entries kept at most per map; a full map forgets its stalest entries first.
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

    /// True when `source` authenticated within [`VOUCHED_FOR`].
    fn is_vouched(&self, source: IpAddr, now: Instant) -> bool {
        self.vouched
            .get(&source_key(source))
            .is_some_and(|(seen, _)| now.saturating_duration_since(*seen) < VOUCHED_FOR)
    }

    /// True when `user_agent` is a known scanner's: the request is to be dropped unanswered,
    /// and the source is banned (unless it authenticated before: then only the request goes).
    pub(crate) fn scanner(&mut self, out: &mut Outputs, now: Now, source: IpAddr, user_agent: &str) -> bool {
        if self.scanners.is_empty() || self.trusted(source) {
            return false;
        }
        let Some(tool) = self.scanners.iter().find(|s| user_agent_names(user_agent, s)) else { return false };
        let tool = tool.clone();
        if !self.is_vouched(source, now.instant) {
            self.ban(out, now, source, BanReason::Scanner { user_agent: truncate(user_agent, 80), tool });
        }
        true
    }

    /// A request from `source` named `user` without valid credentials (none, or refused). The
    /// name counts towards a sweep once it has waited [`SWEEP_GRACE`] without the source
    /// authenticating as it.
    pub(crate) fn unvouched(&mut self, out: &mut Outputs, now: Now, source: IpAddr, user: &str) {
        let limit = self.config.unknown_users_per_source;
        if limit == 0 || self.trusted(source) {
            return;
        }
        self.sweep(now.instant);
        let key = source_key(source);
        let user = truncate(&user.to_ascii_lowercase(), MAX_NAME);
        if self.vouched.get(&key).is_some_and(|(_, names)| names.contains(&user)) {
            return;
        }
        let names = self.pending.entry(key).or_default();
        // Beyond twice the limit nothing more is learnt from this source's names.
        if names.len() < 2 * limit as usize {
            names.entry(user).or_insert(now.instant);
        }
        let due = now.instant + SWEEP_GRACE;
        self.next_due = Some(self.next_due.map_or(due, |at| at.min(due)));
        self.check_sweep(out, now, key);
    }

    /// Bans `key` when enough of its names waited out the grace without an authentication.
    fn check_sweep(&mut self, out: &mut Outputs, now: Now, key: IpAddr) {
        let limit = self.config.unknown_users_per_source as usize;
        let window = self.config.window;
        let Some(names) = self.pending.get_mut(&key) else { return };
        names.retain(|_, first| now.instant.saturating_duration_since(*first) < window);
        let due = names.values().filter(|first| now.instant.saturating_duration_since(**first) >= SWEEP_GRACE).count();
        if names.is_empty() {
            self.pending.remove(&key);
        } else if due >= limit {
            self.pending.remove(&key);
            if !self.is_vouched(key, now.instant) {
                self.ban(out, now, key, BanReason::UnknownUsers { count: limit as u32 });
            }
        }
    }

    /// When pending names next become due to count (the driver's next timeout).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.next_due
    }

    /// `source` authenticated; `names` are the names the request and the account go by: they
    /// no longer count towards a sweep from there, and are not locked for it. True when the
    /// source was not known to have authenticated before (within [`VOUCHED_FOR`]).
    pub(crate) fn vouch(&mut self, now: Now, source: IpAddr, names: &[&str]) -> bool {
        if self.trusted(source) {
            return false;
        }
        let key = source_key(source);
        let new = !self.is_vouched(key, now.instant);
        if new && self.vouched.len() >= MAX_TRACKED {
            // Full: the stalest make room (only authenticated sources get here).
            let oldest = self.vouched.iter().min_by_key(|(_, (seen, _))| *seen).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.vouched.remove(&oldest);
            }
        }
        let (seen, vouched) = self.vouched.entry(key).or_insert_with(|| (now.instant, HashSet::new()));
        *seen = now.instant;
        for name in names.iter().filter(|n| !n.is_empty()) {
            let name = truncate(&name.to_ascii_lowercase(), MAX_NAME);
            if let Some(pending) = self.pending.get_mut(&key) {
                pending.remove(&name);
            }
            if vouched.len() < 1_000 {
                vouched.insert(name);
            }
        }
        new
    }

    /// A digest check failed for `username` from `source`: a wrong password or an unknown
    /// user (never a locked account, nor a bad nonce after a right password).
    pub(crate) fn auth_failed(&mut self, out: &mut Outputs, now: Now, source: IpAddr, username: &str) {
        if self.trusted(source) {
            return;
        }
        self.sweep(now.instant);
        let window = self.config.window;
        let per_source = self.config.auth_failures_per_source;
        if per_source > 0 && !self.is_vouched(source, now.instant) {
            let key = source_key(source);
            if (self.by_source.len() < MAX_TRACKED || self.by_source.contains_key(&key))
                && self.by_source.entry(key).or_default().hit(now.instant, per_source, window)
            {
                self.by_source.remove(&key);
                self.ban(out, now, source, BanReason::AuthFailures { count: per_source });
            }
        }
        let per_account = self.config.auth_failures_per_account;
        let user = truncate(&username.to_ascii_lowercase(), MAX_NAME);
        if per_account > 0
            && !user.is_empty()
            && !self.is_locked(&user, now.unix_secs)
            && (self.by_account.len() < MAX_TRACKED || self.by_account.contains_key(&user))
            && self.by_account.entry(user.clone()).or_default().hit(now.instant, per_account, window)
        {
            self.by_account.remove(&user);
            let until = now.unix_secs.saturating_add(self.config.lockout.as_secs());
            tracing::warn!(username = user, until, failures = per_account, "account locked");
            if self.locked.len() < MAX_TRACKED {
                self.locked.insert(user.clone(), until);
                out.store(StoreWrite::Lockout { username: user.clone(), until });
            }
            out.event(Event::AccountLocked { username: user, until, failures: per_account });
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

    /// True while `username` is locked for requests from `source`: a source that authenticated
    /// as it before is not locked out (the lock is against guessing from elsewhere).
    pub fn is_locked_for(&self, username: &str, source: IpAddr, now: Now) -> bool {
        if !self.is_locked(username, now.unix_secs) {
            return false;
        }
        let user = username.to_ascii_lowercase();
        !self.vouched.get(&source_key(source)).is_some_and(|(seen, names)| {
            now.instant.saturating_duration_since(*seen) < VOUCHED_FOR && names.contains(&user)
        })
    }

    /// The bans and lockouts kept in the store (at start, or when an operator changed them):
    /// they replace those known.
    pub fn set_lists(&mut self, bans: &[(IpAddr, Option<u64>)], lockouts: impl IntoIterator<Item = (String, u64)>) {
        self.banned = bans.iter().map(|(ip, until)| (source_key(*ip), *until)).collect();
        self.locked = lockouts.into_iter().map(|(user, until)| (user.to_ascii_lowercase(), until)).collect();
    }

    fn ban(&mut self, out: &mut Outputs, now: Now, source: IpAddr, reason: BanReason) {
        let key = source_key(source);
        if self.banned.get(&key).is_some_and(|until| until.is_none_or(|u| u > now.unix_secs)) {
            return;
        }
        if self.banned.len() >= MAX_TRACKED {
            self.banned.retain(|_, until| until.is_none_or(|u| u > now.unix_secs));
        }
        let until = now.unix_secs.saturating_add(self.config.ban.as_secs());
        self.banned.insert(key, Some(until));
        out.store(StoreWrite::Ban { source: key, until: Some(until), reason: reason.to_string() });
        out.event(Event::SourceBanned { source: key, until: Some(until), reason });
    }

    /// Forgets windows that ended, at most every ten seconds. A map still full after that (a
    /// spray from forged addresses) forgets only its own stalest half, never the others.
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(10));
        let window = self.config.window;
        let fresh = |t: &Instant| now.saturating_duration_since(*t) < window;
        self.by_source.retain(|_, r| r.0.back().is_some_and(fresh));
        self.by_account.retain(|_, r| r.0.back().is_some_and(fresh));
        self.pending.retain(|_, names| names.values().any(fresh));
        self.vouched.retain(|_, (seen, _)| now.saturating_duration_since(*seen) < VOUCHED_FOR);
        halve_if_full(&mut self.by_source, |r| r.0.back().copied());
        halve_if_full(&mut self.by_account, |r| r.0.back().copied());
        halve_if_full(&mut self.pending, |names| names.values().max().copied());
    }

    /// The timers due by `now`: sweeps whose names waited out the grace, bans and locks that
    /// ended (Unix seconds).
    pub(crate) fn on_timeout(&mut self, out: &mut Outputs, now: Now) {
        self.banned.retain(|_, until| until.is_none_or(|u| u > now.unix_secs));
        self.locked.retain(|_, until| *until > now.unix_secs);
        if self.next_due.is_some_and(|at| at <= now.instant) {
            let keys: Vec<IpAddr> = self.pending.keys().copied().collect();
            for key in keys {
                self.check_sweep(out, now, key);
            }
            self.next_due = self
                .pending
                .values()
                .flat_map(|names| names.values())
                .map(|first| *first + SWEEP_GRACE)
                .filter(|due| *due > now.instant)
                .min();
        }
    }
}

/// Forgets the stalest half of `map` when it holds [`MAX_TRACKED`] entries.
fn halve_if_full<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, last: impl Fn(&V) -> Option<Instant>) {
    if map.len() < MAX_TRACKED {
        return;
    }
    let mut ages: Vec<(Option<Instant>, K)> = map.iter().map(|(k, v)| (last(v), k.clone())).collect();
    ages.sort_unstable_by_key(|(at, _)| *at);
    for (_, key) in ages.into_iter().take(MAX_TRACKED / 2) {
        map.remove(&key);
    }
}

/// True when `user_agent` names the tool `fragment` (lower-case): the whole value, or a
/// product token of it (RFC 3261 §20.41), starts with the fragment followed by the token's
/// end or its version. "sipcli/v1.8" names "sipcli"; "MySipClient/2" does not.
fn user_agent_names(user_agent: &str, fragment: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    let bytes = ua.as_bytes();
    let mut from = 0;
    while let Some(at) = ua[from..].find(fragment) {
        let start = from + at;
        let end = start + fragment.len();
        let starts_token = start == 0 || matches!(bytes[start - 1], b' ' | b'\t' | b'(' | b',');
        let ends_token = end == bytes.len() || matches!(bytes[end], b'/' | b' ' | b'\t' | b')' | b',' | b';');
        if starts_token && ends_token {
            return true;
        }
        from = start + 1;
    }
    false
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
    fn a_sweep_is_banned_once_its_names_wait_out_the_grace() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut watch = Watch::new(GuardConfig::default());
        let mut out = Outputs::default();
        let source: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..50 {
            watch.unvouched(&mut out, now(t0, 1), source, "100");
        }
        for user in 101..110 {
            watch.unvouched(&mut out, now(t0, 1), source, &user.to_string());
        }
        assert!(events(&mut out).is_empty(), "nothing counts before the grace is over");
        assert_eq!(watch.next_deadline(), Some(now(t0, 1).instant + SWEEP_GRACE));
        watch.on_timeout(&mut out, now(t0, 6));
        assert!(matches!(
            &events(&mut out)[..],
            [Event::SourceBanned { reason: BanReason::UnknownUsers { count: 10 }, .. }]
        ));
        assert_eq!(watch.next_deadline(), None);
    }

    #[test]
    fn a_burst_of_names_that_authenticate_is_no_sweep() {
        let t0 = sambung_testkit::Clock::new().now();
        let mut watch = Watch::new(GuardConfig::default());
        let mut out = Outputs::default();
        let office: IpAddr = "203.0.113.9".parse().unwrap();
        // 50 phones behind one NAT boot at once: each names itself, is challenged, and
        // authenticates a moment later; later they send keep-alive OPTIONS to their own
        // address of record.
        for phone in 0..50 {
            watch.unvouched(&mut out, now(t0, 1), office, &format!("desk{phone}"));
        }
        for phone in 0..50 {
            watch.vouch(now(t0, 2), office, &[&format!("desk{phone}")]);
        }
        watch.on_timeout(&mut out, now(t0, 10));
        for phone in 0..50 {
            watch.unvouched(&mut out, now(t0, 700), office, &format!("DESK{phone}"));
        }
        watch.on_timeout(&mut out, now(t0, 710));
        assert!(events(&mut out).is_empty());
    }

    #[test]
    fn a_source_that_authenticated_is_neither_banned_nor_locked_out() {
        let t0 = sambung_testkit::Clock::new().now();
        let config = GuardConfig { auth_failures_per_account: 3, ..GuardConfig::default() };
        let mut watch = Watch::new(config);
        let mut out = Outputs::default();
        let office: IpAddr = "203.0.113.10".parse().unwrap();
        assert!(watch.vouch(now(t0, 0), office, &["alice"]));
        assert!(!watch.vouch(now(t0, 1), office, &["alice"]), "known already");
        // Forged datagrams in the office's name: a scanner's User-Agent, wrong passwords, a
        // sweep. The requests are refused; the address is not banned.
        assert!(watch.scanner(&mut out, now(t0, 2), office, "friendly-scanner"));
        for i in 0..10 {
            watch.auth_failed(&mut out, now(t0, 2), office, "alice");
            watch.unvouched(&mut out, now(t0, 2), office, &format!("x{i}"));
        }
        watch.on_timeout(&mut out, now(t0, 10));
        let events = events(&mut out);
        assert!(events.iter().all(|e| !matches!(e, Event::SourceBanned { .. })), "{events:?}");
        // The failures did lock alice, for everyone but the office, which authenticated as her.
        assert!(events.iter().any(|e| matches!(e, Event::AccountLocked { .. })));
        assert!(!watch.is_locked_for("alice", office, now(t0, 10)));
        assert!(watch.is_locked_for("Alice", "198.51.100.1".parse().unwrap(), now(t0, 10)));
    }

    #[test]
    fn user_agents_are_matched_by_product_token() {
        assert!(user_agent_names("friendly-scanner", "friendly-scanner"));
        assert!(user_agent_names("sipcli/v1.8", "sipcli"));
        assert!(user_agent_names("Mozilla (sipvicious)", "sipvicious"));
        assert!(!user_agent_names("mysipclient/2.0", "sipcli"));
        assert!(!user_agent_names("SipClientPro 3", "sipcli"));
        assert!(!user_agent_names("Linphone/5.2 (belle-sip/5.2)", "smap"));
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
