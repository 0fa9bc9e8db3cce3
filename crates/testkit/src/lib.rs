//! Test support for Sambung's sans-IO cores (dev only, never published).
//!
//! - [`Clock`]: a virtual clock. It reads the real clock once, for a base [`Instant`](std::time::Instant), and from
//!   then on only moves when the test says so.
//! - [`Rng`]: a small seeded PRNG (SplitMix64): the same seed gives the same run.
//! - [`Network`]: an in-memory datagram network with seeded loss, duplication, reordering and
//!   delay, delivering on the virtual clock.
//! - [`phone`]: a scripted SIP phone (digest REGISTER, INVITE and MESSAGE, ringing and answering
//!   when told, BYE, CANCEL) with an RTP side that plays its own tone, records what it hears and
//!   presses RFC 4733 keys; [`audio`] measures what it heard.
//! - [`sim`]: whole-call simulation: phones, call control and its media sessions, a store and
//!   applications on one seeded network and the virtual clock ([`sim::World`]), deterministic
//!   per seed.
//!
//! # Run loop
//!
//! ```
//! use bytes::Bytes;
//! use sambung_testkit::{Clock, NetConfig, Network};
//! use std::time::Duration;
//!
//! let mut clock = Clock::new();
//! let mut net = Network::new(NetConfig::lossy(0.3), 7);
//! let (a, b) = ("192.0.2.1:5060".parse().unwrap(), "192.0.2.2:5060".parse().unwrap());
//! for _ in 0..10 {
//!     net.send(a, b, Bytes::from_static(b"hello"), clock.now());
//! }
//! // Cores would report their own deadlines; here only the network has any.
//! while let Some(at) = net.next_delivery() {
//!     clock.advance_to(at);
//!     while let Some(d) = net.poll_delivery(clock.now()) {
//!         assert_eq!(d.to, b);
//!     }
//! }
//! assert!(clock.elapsed() < Duration::from_secs(1));
//! assert_eq!(net.stats().delivered + net.stats().dropped, 10 + net.stats().duplicated);
//! ```

pub mod audio;
mod clock;
mod net;
pub mod phone;
mod rng;
pub mod sim;

pub use clock::Clock;
pub use net::{Datagram, NetConfig, NetStats, Network};
pub use rng::Rng;
