//! The guard in the server: its configuration (`[guard]`, `[fraud]`), and the gate shared by
//! the receive loops and accept loops.
//!
//! The decisions are made by sans-IO code in `sambung_pbx::guard`: the [`Gate`] before parsing
//! (per-source token buckets, bans, connection caps) and call control's watch after it (failed
//! authentications, unknown-user sweeps, scanners, toll fraud). Here the gate sits behind one
//! lock; every receive loop asks it about each datagram or framed message before anything is
//! parsed, and every accept loop about each connection.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;

use sambung_pbx::GuardConfig as PbxGuard;
use sambung_pbx::guard::{Admit, Destination, FraudConfig as PbxFraud, Gate, GateConfig, IpNet, SCANNER_USER_AGENTS};

use crate::transport::Event;

/// `[guard]`: bans, limits and lockouts.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Networks exempt from every limit and ban (CIDR, or single addresses).
    pub trusted: Vec<String>,
    /// Seconds a ban lasts.
    pub ban_seconds: u64,
    /// SIP messages and new connections per second one source may sustain (0: no limit).
    pub rate: u32,
    /// How many of them it may send at once.
    pub burst: u32,
    /// Stream connections one source may hold at once (0: only `limits.max_connections`).
    pub max_connections_per_source: u32,
    /// Seconds over which failures are counted.
    pub auth_window_seconds: u64,
    /// Failed digest checks from one address that ban it (0: never).
    pub auth_failures_per_source: u32,
    /// Failed digest checks for one username that lock the account (0: never).
    pub auth_failures_per_account: u32,
    /// Seconds an account, or a voicemail PIN, stays locked.
    pub lockout_seconds: u64,
    /// Wrong voicemail PINs for one mailbox, across calls, that lock its PIN (0: never).
    pub pin_failures: u32,
    /// Distinct usernames one address may name without ever authenticating as them (0: no
    /// limit); existing and unknown names count alike.
    pub unknown_users_per_source: u32,
    /// User-Agent fragments of scanning tools: such a request is dropped and its address banned.
    pub scanner_user_agents: Vec<String>,
    /// Calls (INVITEs) one address may have unanswered at once; more get 503 (0: no limit).
    pub max_unanswered_calls_per_source: u32,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            trusted: Vec::new(),
            ban_seconds: 600,
            rate: 200,
            burst: 400,
            max_connections_per_source: 32,
            auth_window_seconds: 600,
            auth_failures_per_source: 5,
            auth_failures_per_account: 10,
            lockout_seconds: 900,
            pin_failures: 5,
            unknown_users_per_source: 10,
            scanner_user_agents: SCANNER_USER_AGENTS.iter().map(|s| (*s).to_owned()).collect(),
            max_unanswered_calls_per_source: 100,
        }
    }
}

/// `[fraud]`: toll-fraud limits per account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudConfig {
    /// Calls one account may have going at once as the caller (0: no limit).
    pub max_concurrent_calls: u32,
    /// Calls one account may place per minute (0: no limit).
    pub max_calls_per_minute: u32,
    /// Outside destinations calls may reach: number prefixes, hosts, `*.domain`, or `*`.
    pub outside_destinations: Vec<String>,
}

impl Default for FraudConfig {
    fn default() -> FraudConfig {
        let pbx = PbxFraud::default();
        FraudConfig {
            max_concurrent_calls: pbx.max_concurrent_calls,
            max_calls_per_minute: pbx.max_calls_per_minute,
            outside_destinations: Vec::new(),
        }
    }
}

impl GuardConfig {
    /// The trusted networks; the first that does not parse is the error.
    pub fn trusted_networks(&self) -> Result<Vec<IpNet>, String> {
        self.trusted.iter().map(|t| t.parse().map_err(|e: sambung_pbx::guard::NetParseError| e.to_string())).collect()
    }

    /// What the gate runs with.
    pub fn gate(&self) -> GateConfig {
        GateConfig {
            trusted: self.trusted_networks().unwrap_or_default(),
            rate: self.rate,
            burst: self.burst,
            ban: Duration::from_secs(self.ban_seconds),
            max_connections_per_source: self.max_connections_per_source,
        }
    }

    /// What call control's watch runs with.
    pub fn pbx(&self, fraud: &FraudConfig) -> PbxGuard {
        PbxGuard {
            trusted: self.trusted_networks().unwrap_or_default(),
            ban: Duration::from_secs(self.ban_seconds),
            window: Duration::from_secs(self.auth_window_seconds),
            auth_failures_per_source: self.auth_failures_per_source,
            auth_failures_per_account: self.auth_failures_per_account,
            lockout: Duration::from_secs(self.lockout_seconds),
            unknown_users_per_source: self.unknown_users_per_source,
            scanner_user_agents: self.scanner_user_agents.clone(),
            max_unanswered_per_source: self.max_unanswered_calls_per_source,
            fraud: PbxFraud {
                max_concurrent_calls: fraud.max_concurrent_calls,
                max_calls_per_minute: fraud.max_calls_per_minute,
                outside: fraud.outside_destinations.iter().filter_map(|d| d.parse().ok()).collect(),
            },
        }
    }

    /// Checks the values; the message names the key.
    pub fn validate(&self, fraud: &FraudConfig) -> Result<(), String> {
        self.trusted_networks().map_err(|e| format!("guard.trusted: {e}"))?;
        const TEN_YEARS: u64 = 10 * 366 * 86_400;
        for (key, value) in [
            ("ban_seconds", self.ban_seconds),
            ("lockout_seconds", self.lockout_seconds),
            ("auth_window_seconds", self.auth_window_seconds),
        ] {
            if value == 0 || value > TEN_YEARS {
                return Err(format!("guard.{key} must be between 1 and {TEN_YEARS} (ten years)"));
            }
        }
        if self.rate > 0 && self.burst == 0 {
            return Err("guard.burst must be at least 1 when guard.rate is set".into());
        }
        if self.scanner_user_agents.iter().any(|ua| ua.trim().is_empty()) {
            return Err("guard.scanner_user_agents: empty entries would match every request".into());
        }
        for d in &fraud.outside_destinations {
            d.parse::<Destination>().map_err(|e| format!("fraud.outside_destinations: {e}"))?;
        }
        Ok(())
    }
}

/// The gate, shared by every receive and accept loop and by call control's driver.
#[derive(Clone, Debug)]
pub struct SharedGate {
    gate: Arc<Mutex<Gate>>,
    /// Where the bans the gate makes itself are reported (to call control's task, which
    /// publishes, logs and stores them).
    events: Option<crate::transport::WeakEvents>,
}

impl SharedGate {
    pub fn new(config: GateConfig) -> SharedGate {
        SharedGate { gate: Arc::new(Mutex::new(Gate::new(config))), events: None }
    }

    /// The same gate, reporting its own bans to `events`.
    pub fn reporting_to(&self, events: crate::transport::WeakEvents) -> SharedGate {
        SharedGate { gate: self.gate.clone(), events: Some(events) }
    }

    pub fn lock(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// May a message from `ip` be read? Checked before it is parsed.
    pub fn admit(&self, ip: IpAddr) -> bool {
        let admit = self.lock().admit(ip, Instant::now());
        self.settle(admit)
    }

    /// May a connection from `ip` be served? On true it counts until [`SharedGate::closed`].
    pub fn connect(&self, ip: IpAddr) -> bool {
        let admit = self.lock().connect(ip, Instant::now());
        self.settle(admit)
    }

    /// A connection [`SharedGate::connect`] let in has closed.
    pub fn closed(&self, ip: IpAddr) {
        self.lock().disconnected(ip);
    }

    fn settle(&self, admit: Admit) -> bool {
        match admit {
            Admit::Pass => true,
            Admit::Drop => false,
            Admit::Banned { .. } => {
                if let Some(events) = self.events.as_ref().and_then(|weak| weak.upgrade()) {
                    // Only a wake-up: when the queue is full, the ban is taken with the next
                    // batch of events instead.
                    let _ = events.try_send(Event::Flooded);
                }
                false
            }
        }
    }
}
