//! The Sambung server: configuration, transports, the media runtime, the applications, the
//! event stream and the runtime behind the `sambung` binary.
//!
//! Transports (UDP, TCP, TLS, WebSocket, secure WebSocket) push received bytes into one
//! channel; one task drives call control ([`sambung_pbx::Pbx`], sans-IO) with them and carries
//! out what it asks: SIP to send, media sessions to open, applications to start, store writes,
//! domain events to publish. See [`runtime::serve`] for the assembly.
#![forbid(unsafe_code)]

pub mod apps;
pub mod cli;
pub mod config;
pub mod data;
pub mod emodel;
pub mod events;
pub mod guard;
pub mod logging;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod persist;
pub mod presence;
pub mod resolver;
pub mod runtime;
pub mod shutdown;
pub mod transport;
pub mod web;
pub mod webhooks;

pub use config::Config;
pub use runtime::{ServerError, serve, shutdown_signal};
