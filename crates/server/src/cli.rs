//! The command line of the `sambung` binary (clap derive); the `user` commands run in
//! [`user`], the `settings` commands in [`settings`], the `voicemail` commands in [`voicemail`].

pub mod ban;
pub mod import;
pub mod numbers;
pub mod settings;
pub mod table;
pub mod user;
pub mod voicemail;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sambung_store::StoreError;

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
  sambung settings set alice --pin 2468    set her voicemail PIN
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
    /// Show or change a user's call settings: forwarding, do not disturb, voicemail.
    ///
    /// Uses the database of the configuration file, like `sambung user`; a running server picks
    /// up changes within a second.
    Settings(SettingsArgs),
    /// List a user's voicemail messages, or export one as a WAV file.
    Voicemail(VoicemailArgs),
    /// Show, add or remove bans of source addresses, and lift account lockouts.
    ///
    /// Uses the database of the configuration file, like `sambung user`; a running server picks
    /// up changes within a second.
    Ban(BanArgs),
    /// Add, move, list or remove the service's phone numbers (DIDs) and the accounts they ring.
    ///
    /// Uses the database of the configuration file, like `sambung user`; a running server picks
    /// up changes within a second.
    Number(NumberArgs),
    /// List the configured carriers (`[[trunks]]`) and the state of their registrations.
    Trunk(TrunkArgs),
}

/// Exit codes of the `number` and `trunk` commands.
pub const NUMBER_EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other error (configuration, database connection)
  2  invalid input: not a phone number; usage
  3  unknown user or number, or the database does not exist yet
  5  the database is locked by another process";

/// Options of `sambung number`.
#[derive(Debug, Args)]
#[command(after_long_help = NUMBER_EXIT_CODES)]
pub struct NumberArgs {
    /// TOML configuration file naming the database; without it the defaults apply
    /// (./sambung-data/sambung.db).
    #[arg(short, long, value_name = "FILE", env = "SAMBUNG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: NumberCommand,
}

/// `sambung number ...`.
#[derive(Debug, Subcommand)]
pub enum NumberCommand {
    /// Add a number (or move it): calls from the carriers to it ring the account's devices
    /// (or the ring group's members, or reach the attendant's menu), and the account's
    /// outgoing calls show its first number.
    Add {
        /// The number, E.164 (`+442079460000`), or as `[dialplan]` reads it (`02079460000`).
        number: String,
        /// The account it rings; without it (and without --group) the number is kept unassigned.
        account: Option<String>,
        /// The ring group it rings instead (a `[[groups]]` name of the configuration).
        #[arg(long, value_name = "NAME", conflicts_with = "account")]
        group: Option<String>,
        /// The auto-attendant menu that answers it instead (a `[[menus]]` name).
        #[arg(long, value_name = "NAME", conflicts_with_all = ["account", "group"])]
        menu: Option<String>,
    },
    /// Remove a number.
    Remove { number: String },
    /// List the numbers and the accounts they ring.
    List,
}

/// Options of `sambung trunk`.
#[derive(Debug, Args)]
#[command(after_long_help = NUMBER_EXIT_CODES)]
pub struct TrunkArgs {
    /// TOML configuration file with the `[[trunks]]`; without it the defaults apply (none).
    #[arg(short, long, value_name = "FILE", env = "SAMBUNG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: TrunkCommand,
}

/// `sambung trunk ...`.
#[derive(Debug, Subcommand)]
pub enum TrunkCommand {
    /// Each trunk: its server, priority and registration state (as the running server last
    /// recorded it).
    List,
}

/// Exit codes of the `ban` commands.
pub const BAN_EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other error (configuration, database connection)
  2  invalid input: not an IP address; usage
  3  no such ban or lockout, or the database does not exist yet
  5  the database is locked by another process";

/// Options of `sambung ban`.
#[derive(Debug, Args)]
#[command(after_long_help = BAN_EXIT_CODES)]
pub struct BanArgs {
    /// TOML configuration file naming the database; without it the defaults apply
    /// (./sambung-data/sambung.db).
    #[arg(short, long, value_name = "FILE", env = "SAMBUNG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: BanCommand,
}

/// `sambung ban ...`.
#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// List the bans in force (address, until, who made it, why) and the locked accounts and
    /// voicemail PINs.
    List,
    /// Ban an address: nothing it sends is answered. An IPv6 address bans its /64.
    Add {
        /// The address to ban.
        address: String,
        /// How long, in seconds; without it, until removed.
        #[arg(long, value_name = "SECONDS")]
        seconds: Option<u64>,
        /// A note kept with the ban.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Lift the ban on an address (made by hand or by the guard).
    Remove {
        /// The banned address.
        address: String,
    },
    /// Lift the lockout of an account locked after failed authentications (or, with --pin,
    /// of its voicemail PIN).
    Unlock {
        /// The locked account's username.
        username: String,
        /// Lift the lockout of the account's voicemail PIN instead.
        #[arg(long)]
        pin: bool,
    },
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
        /// Make the account an administrator of the web app and the API.
        #[arg(long)]
        admin: bool,
    },
    /// Make an account an administrator of the web app and the API (or, with --revoke, an
    /// ordinary user again).
    Admin {
        username: String,
        /// Take the admin role away.
        #[arg(long)]
        revoke: bool,
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
    /// Create many accounts from a CSV file: a header line naming the columns (username and
    /// password required; display_name, email, extension, admin optional), then one account per
    /// line. Every line is checked first; if any is refused, none is created.
    Import {
        /// The CSV file ("-" for standard input).
        file: PathBuf,
    },
}

/// Exit codes of the `settings` and `voicemail` commands, also listed in their `--help`.
pub const SETTINGS_EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other error (configuration, database connection, writing the file)
  2  invalid input: bad forwarding target, seconds, PIN, email or on/off value; usage
  3  unknown user, forwarding target or voicemail message, or the database does not exist yet
  5  the database is locked by another process";

/// The exit code of a store error in the `settings` and `voicemail` commands (see
/// [`SETTINGS_EXIT_CODES`]; `user` has its own, [`USER_EXIT_CODES`], with the same numbers).
pub fn store_exit_code(e: &StoreError) -> i32 {
    match e {
        StoreError::InvalidUsername(_)
        | StoreError::InvalidExtension(_)
        | StoreError::InvalidPin
        | StoreError::InvalidTarget(_)
        | StoreError::Invalid { .. }
        | StoreError::WeakPassword(_) => 2,
        StoreError::UnknownUser(_)
        | StoreError::UnknownAccount(_)
        | StoreError::UnknownVoicemail(_)
        | StoreError::Missing(_) => 3,
        StoreError::UserExists(_) | StoreError::ExtensionTaken(_) => 4,
        StoreError::Locked => 5,
        _ => 1,
    }
}

/// Options of `sambung settings`.
#[derive(Debug, Args)]
#[command(after_long_help = SETTINGS_EXIT_CODES)]
pub struct SettingsArgs {
    /// TOML configuration file naming the database; without it the defaults apply
    /// (./sambung-data/sambung.db).
    #[arg(short, long, value_name = "FILE", env = "SAMBUNG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SettingsCommand,
}

/// `sambung settings ...`.
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show every call setting of a user (the PIN only as "set" or "not set").
    Show {
        /// The user whose settings to show.
        username: String,
    },
    /// Change some of a user's call settings; the others stay as they are.
    ///
    /// A call to the user is handled in this order: --forward-always takes every call at once;
    /// with --dnd on nothing rings and the caller reaches voicemail (or hears busy when
    /// voicemail is off); --forward-offline takes calls while no device is registered,
    /// --forward-busy those every device refuses as busy, and --forward-no-answer those not
    /// answered within --no-answer-seconds. A call that none of these takes goes to voicemail
    /// when it is on.
    ///
    /// A TARGET is an existing username or extension, or a sip:/sips: URI (for example
    /// sip:+4930123456@gateway.example.com); "none" removes the forwarding. Nothing is changed
    /// when any option is refused.
    Set {
        /// The user whose settings to change.
        username: String,
        #[command(flatten)]
        changes: SettingsChanges,
    },
}

/// The options of `sambung settings set`; at least one must be given.
#[derive(Debug, Default, Args)]
pub struct SettingsChanges {
    /// Forward every call, without ringing the user's devices.
    #[arg(long, value_name = "TARGET|none")]
    pub forward_always: Option<String>,
    /// Forward calls that every device refuses as busy.
    #[arg(long, value_name = "TARGET|none")]
    pub forward_busy: Option<String>,
    /// Forward calls not answered within --no-answer-seconds.
    #[arg(long, value_name = "TARGET|none")]
    pub forward_no_answer: Option<String>,
    /// Forward calls while no device of the user is registered.
    #[arg(long, value_name = "TARGET|none")]
    pub forward_offline: Option<String>,
    /// Ring time in seconds (5 to 300, default 20) before no-answer forwarding or voicemail.
    #[arg(long, value_name = "N")]
    pub no_answer_seconds: Option<u32>,
    /// Do not disturb: calls do not ring the user's devices; callers reach voicemail, or hear
    /// busy when voicemail is off (--forward-always still applies).
    #[arg(long, value_name = "on|off")]
    pub dnd: Option<Switch>,
    /// Whether unanswered calls may leave a voicemail message (default on).
    #[arg(long, value_name = "on|off")]
    pub voicemail: Option<Switch>,
    /// The PIN (4 to 12 digits) for listening to voicemail from another phone. Visible to other
    /// local users in the process list while the command runs.
    #[arg(long, value_name = "DIGITS")]
    pub pin: Option<String>,
    /// Where new voicemail is mailed; "none" = the account's own email (see `sambung user
    /// show`).
    #[arg(long, value_name = "EMAIL|none")]
    pub voicemail_email: Option<String>,
    /// Whether the voicemail mail carries the recording as a WAV attachment (default on).
    #[arg(long, value_name = "on|off")]
    pub attach: Option<Switch>,
    /// Whether voice messages sent to the user from the web app are also mailed (to the
    /// voicemail email), the recording attached (default off).
    #[arg(long, value_name = "on|off")]
    pub voice_messages_email: Option<Switch>,
}

/// An `on|off` option value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    /// `true` for `on`.
    pub fn is_on(self) -> bool {
        self == Switch::On
    }
}

/// Options of `sambung voicemail`.
#[derive(Debug, Args)]
#[command(after_long_help = SETTINGS_EXIT_CODES)]
pub struct VoicemailArgs {
    /// TOML configuration file naming the database; without it the defaults apply
    /// (./sambung-data/sambung.db).
    #[arg(short, long, value_name = "FILE", env = "SAMBUNG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: VoicemailCommand,
}

/// `sambung voicemail ...`.
#[derive(Debug, Subcommand)]
pub enum VoicemailCommand {
    /// List a user's voicemail messages, oldest first: id, state (new or saved), caller, time
    /// and duration.
    List {
        /// The user whose mailbox to list.
        username: String,
    },
    /// Write the recording of one of a user's messages to a WAV file (replacing the file). The
    /// message stays as it is.
    Export {
        /// The user whose message to export.
        username: String,
        /// The message's id, as `sambung voicemail list` shows it.
        id: i64,
        /// The WAV file to write.
        #[arg(value_name = "FILE.wav")]
        file: PathBuf,
    },
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
