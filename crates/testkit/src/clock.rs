//! A virtual clock.

use std::time::{Duration, Instant};

/// Virtual time. [`Clock::new`] takes the one real [`Instant`] a test needs as its base; every
/// later reading is that base plus what the test advanced.
#[derive(Clone, Debug)]
pub struct Clock {
    base: Instant,
    now: Instant,
}

impl Clock {
    /// A clock standing at a fresh base instant.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Clock {
        let base = Instant::now();
        Clock { base, now: base }
    }

    /// A clock standing at `base`, for tests that already have an instant.
    pub fn starting_at(base: Instant) -> Clock {
        Clock { base, now: base }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The instant the clock started at.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// Virtual time elapsed since the base.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// `t` as an offset from the base (zero for instants before it).
    pub fn offset(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.base)
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Moves the clock to `t`; a `t` in the past leaves it where it is (time never runs back).
    pub fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
    }
}
