//! The command line of the `sambung` binary (clap derive); the `user` commands run in
//! [`user`].

pub mod table;
pub mod user;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sambung, an open-source VoIP server: SIP over UDP, TCP, TLS and WebSocket, accounts in SQLite
/// or PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "sambung", version, propagate_version = true, after_help = QUICK_START)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Shown below `sambung --help`.
const QUICK_START: &str = "\
Quick start:
  sambung user add alice --extension 201   create an account (asks for its password)
  sambung serve                            run with the defaults (data in ./sambung-data)
  sambung config print-default             every configuration key, documented";

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server until SIGINT or SIGTERM.
    ///
    /// Listens for SIP on every configured transport (by default UDP and TCP on 5060, TLS on
    /// 5061, WebSocket on 5066 and secure WebSocket on 7443), creating the data directory, the
    /// database and a self-signed TLS certificate on first start.
    Serve(ServeArgs),
    /// Show or check the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage user accounts in the database (works while the server runs).
    ///
    /// Uses the database of the configuration file (`database.url`, by default
    /// `<data_dir>/sambung.db`), the same one `sambung serve` uses with that file; a running
    /// server picks up changes within a second.
    User(UserArgs),
}

/// Exit codes of the `user` commands, also listed in `sambung user --help`.
pub const USER_EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other error (configuration, database connection)
  2  invalid input: bad username, extension, email or display name; weak password; usage
  3  unknown user, or the database does not exist yet
  4  the user or extension already exists
  5  the database is locked by another process";

/// Options of `sambung user`.
#[derive(Debug, Args)]
#[command(after_long_help = USER_EXIT_CODES)]
pub struct UserArgs {
    /// TOML configuration file naming the database; without it the defaults apply
    /// (./sambung-data/sambung.db).
    #[arg(short, long, value_name = "FILE", env = "SAMBUNG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: UserCommand,
}

/// `sambung user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (and the database, if it does not exist yet).
    ///
    /// Usernames are 1 to 64 characters of a-z, 0-9, '.', '_' and '-'. Passwords need at least
    /// 8 characters, must not contain the username, repeat one character or be a common
    /// password. Without --password the password is asked twice on the terminal, or read as
    /// one line from standard input when that is not a terminal.
    Add {
        /// The SIP user name and sign-in name, e.g. "alice" for sip:alice@example.com.
        username: String,
        #[command(flatten)]
        password: PasswordArg,
        /// Name shown to the people this user calls (default: the username).
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Email address (optional, for notifications).
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// Short number (2 to 10 digits) that also reaches this user.
        #[arg(long, value_name = "DIGITS")]
        extension: Option<String>,
    },
    /// List every account with its registered device count.
    List,
    /// Show one account and its registered devices.
    Show { username: String },
    /// Set a new password (for SIP digest, computed for the configured realm, and web sign-in).
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Disable an account: it can no longer register, call or be called.
    Disable { username: String },
    /// Enable a disabled account again.
    Enable { username: String },
    /// Delete an account and its registrations; its call records and message history stay.
    Delete { username: String },
}

/// The `--password` option of `user add` and `user passwd`.
#[derive(Debug, Args)]
pub struct PasswordArg {
    /// The password. Visible to other local users in the process list: prefer the prompt, or
    /// standard input in scripts (`echo "$PASS" | sambung user add alice`).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
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
