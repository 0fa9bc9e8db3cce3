//! The command line of the `sambung` binary (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sambung, an open-source VoIP server: SIP over UDP, TCP, TLS and WebSocket.
#[derive(Debug, Parser)]
#[command(name = "sambung", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server until SIGINT or SIGTERM.
    ///
    /// Listens for SIP on every configured transport (by default UDP and TCP on 5060, TLS on
    /// 5061, WebSocket on 5066 and secure WebSocket on 7443), creating the data directory and
    /// a self-signed TLS certificate on first start.
    Serve(ServeArgs),
    /// Show or check the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Options of `sambung serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file; without it every key has its default.
    #[arg(short, long, value_name = "FILE", env = "SAMBUNG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or e.g. "info,sambung_server=debug");
    /// overrides RUST_LOG and the config file's log.level.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// `sambung config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the default configuration file, every key documented.
    PrintDefault,
    /// Check a configuration file and report the first problem.
    Check {
        /// The file to check.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}
