//! Wrong voicemail PINs counted per mailbox across calls: past `[guard] pin_failures` within
//! `auth_window_seconds` the mailbox's PIN is locked for `lockout_seconds`, stored so that a
//! restart keeps it. While locked, even the right PIN gets "login incorrect", the answer a
//! wrong one gets.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sambung_store::{Lockout, LockoutKind, Store};
use tracing::{debug, warn};

use crate::events::Publisher;
use crate::persist::unix_now;

/// The failures of every mailbox, shared by the calls.
#[derive(Clone, Debug)]
pub struct PinGuard {
    failures: Arc<Mutex<HashMap<i64, VecDeque<Instant>>>>,
    /// Failures that lock (0: never).
    limit: u32,
    window: Duration,
    lockout: Duration,
}

impl PinGuard {
    pub fn new(limit: u32, window: Duration, lockout: Duration) -> PinGuard {
        PinGuard { failures: Arc::default(), limit, window, lockout }
    }

    /// True while `account_id`'s PIN is locked (a store error counts as not locked, with a
    /// warning).
    pub async fn locked(&self, store: &Store, account_id: i64) -> bool {
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        match store.lockout_until(LockoutKind::Pin, &account_id.to_string()).await {
            Ok(until) => until.is_some_and(|until| until > now),
            Err(error) => {
                warn!(account_id, %error, "cannot read the PIN lockout");
                false
            }
        }
    }

    /// A wrong PIN for `account_id`: locks the PIN when it is one too many.
    pub async fn failed(&self, store: &Store, publisher: &Publisher, account_id: i64) {
        if self.limit == 0 {
            return;
        }
        let now = Instant::now();
        let lock = {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            // Forget mailboxes whose failures are all old.
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
            let times = failures.entry(account_id).or_default();
            while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                times.pop_front();
            }
            times.push_back(now);
            let lock = times.len() >= self.limit as usize;
            if lock {
                failures.remove(&account_id);
            }
            lock
        };
        if !lock {
            return debug!(account_id, "wrong voicemail PIN counted");
        }
        let until = unix_now() + self.lockout.as_secs();
        warn!(account_id, until, failures = self.limit, "voicemail PIN locked");
        let lockout = Lockout {
            kind: LockoutKind::Pin,
            subject: account_id.to_string(),
            until_at: i64::try_from(until).unwrap_or(i64::MAX),
        };
        if let Err(error) = store.put_lockout(&lockout).await {
            warn!(account_id, %error, "cannot store the PIN lockout");
        }
        publisher.publish(sambung_pbx::Event::VoicemailPinLocked { account_id, until, failures: self.limit });
    }
}
