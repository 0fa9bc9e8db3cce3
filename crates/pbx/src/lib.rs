//! Sans-IO call control for Sambung: the registrar, calls through the back-to-back user agent,
//! routing and forwarding, reliable provisionals, session timers, text messages, message
//! waiting, feature codes, and the glue to the server's own applications.
//!
//! Like str0m's `Rtc` and quinn-proto's `Endpoint`, [`Pbx`] never touches a socket, a clock, a
//! task or a global random source: the driver passes every [`Input`] with the time it happened,
//! then drains [`Output`]s (SIP to send, commands for the media runtime and the applications,
//! writes for the store, domain events) until [`Output::Timeout`] says when to call again.
//! Randomness comes from the seed given to [`Pbx::new`]. Clippy bans (`clippy.toml`) and a check
//! that the crate's dependencies hold no async runtime keep it that way.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use sambung_pbx::{Inbound, Input, Now, Output, Pbx, PbxConfig};
//! use sambung_sip::Transport;
//!
//! let config = PbxConfig { domains: vec!["example.com".into()], ..PbxConfig::default() };
//! let mut pbx = Pbx::new(config, b"a secret kept across restarts....", [7; 32]);
//! let now = Now { instant: Instant::now(), unix_secs: 1_700_000_000 };
//! let options = "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
//!     Max-Forwards: 70\r\nTo: <sip:example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\n\
//!     Call-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
//! let inbound = Inbound {
//!     transport: Transport::Udp,
//!     local: "192.0.2.2:5060".parse().unwrap(),
//!     remote: "192.0.2.1:5060".parse().unwrap(),
//!     conn: None,
//!     account: None,
//!     bytes: Bytes::from_static(options.as_bytes()),
//! };
//! pbx.handle_input(Input::Message(inbound), now);
//! let mut sent = Vec::new();
//! let next = loop {
//!     match pbx.poll_output() {
//!         Output::Transmit(transmit) => sent.push(transmit), // the driver sends it
//!         Output::Timeout(at) => break at,                   // sleep until then
//!         _ => {}                                             // media, apps, store, events
//!     }
//! };
//! assert!(sent[0].bytes.starts_with(b"SIP/2.0 200 OK"));
//! assert!(next.is_some_and(|at| at <= now.instant + Duration::from_secs(32)));
//! ```
//!
//! The parts (`registrar`, `calls`, `messages`, `subscriptions`, `features`) each get only what they
//! need; `docs/architecture.md` has the map and the rules of who may touch what.
#![forbid(unsafe_code)]

pub mod apps;
mod calls;
pub mod config;
pub mod events;
mod features;
pub mod groups;
pub mod guard;
mod io;
pub mod media;
pub mod menus;
mod messages;
mod originate;
mod pbx;
pub mod presence;
mod random;
mod refer;
pub mod registrar;
pub mod shard;
mod sip;
mod subscriptions;
pub mod trunks;

pub use apps::{App, AppEnd, AppRequest, Caller, Confirmation, MailboxCounts};
pub use calls::{CallId, MediaFailure, Side};
pub use config::{LocalDomains, PbxConfig};
pub use events::{AuthFailure, BanReason, CallRecord, Event, LegReception, SettingsChange, Unregistration};
pub use features::{DND_OFF, DND_ON, FORWARD_OFF, FORWARD_ON, OWN_MAILBOX};
pub use guard::{GuardConfig, Watch};
pub use io::{Inbound, Input, Lookup, Now, Output, RoutingChange, StoreReply, StoreWrite, Transmit};
pub use media::{MediaCommand, MediaEvent, SessionId};
pub use messages::StoredMessage;
pub use pbx::{Footprint, NONCE_LIFETIME_SECS, Pbx};
pub use random::Random;
pub use shard::{Shard, shard_of};
pub use sip::SERVER;
pub use subscriptions::{CONTENT_TYPE as MESSAGE_SUMMARY, summary};
