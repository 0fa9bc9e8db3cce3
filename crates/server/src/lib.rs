//! The Sambung server: configuration, transports, the SIP core and the runtime behind the
//! `sambung` binary.
//!
//! Transports (UDP, TCP, TLS, WebSocket, secure WebSocket) push received bytes into one
//! channel; one core task owns the SIP state, parses, answers and hands the bytes to send back
//! to the transport layer. See [`runtime::serve`] for the assembly and [`core::Core`] for the
//! sans-IO SIP core.
#![forbid(unsafe_code)]

pub mod apps;
pub mod cli;
pub mod config;
pub mod core;
pub mod data;
pub mod logging;
pub mod mail;
pub mod media;
pub mod persist;
pub mod registrar;
pub mod runtime;
pub mod shutdown;
pub mod transport;

pub use config::Config;
pub use runtime::{ServerError, serve, shutdown_signal};
