//! Sambung's database: accounts, registrations (bindings), text messages, call records, call
//! settings (forwarding, do-not-disturb, voicemail), voicemail messages, the outgoing mail
//! queue, and the web app's sessions, API tokens and invitations.
//!
//! One [`Store`] wraps a connection pool to SQLite (the default, one file in the data directory)
//! or PostgreSQL (for several nodes sharing one database). Both backends run the same SQL through
//! the same code; only the schema migrations differ (`migrations/sqlite`, `migrations/postgres`),
//! and they are applied when the store is opened.
//!
//! ```no_run
//! # async fn example() -> Result<(), sambung_store::StoreError> {
//! use sambung_store::{NewAccount, Store};
//!
//! let store = Store::open("sqlite://./sambung-data/sambung.db").await?;
//! let alice = store
//!     .create_account(NewAccount::new("alice", "correct horse battery", "example.com").extension("201"))
//!     .await?;
//! assert_eq!(store.account_by_extension("201").await?.map(|a| a.id), Some(alice.id));
//! # Ok(())
//! # }
//! ```
//!
//! Times are Unix seconds (`i64`). Account timestamps come from the system clock; every other
//! time is given by the caller, so a server on a virtual clock stays deterministic.
#![forbid(unsafe_code)]

mod accounts;
mod bindings;
mod cdrs;
mod chat;
mod error;
mod guard;
mod import;
mod messages;
mod numbers;
mod outbox;
mod password;
mod recordings;
mod rows;
mod settings;
mod voicemail;
mod web;
mod webhooks;

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use accounts::{Account, NewAccount, validate_extension, validate_username};
pub use bindings::{Binding, BindingOp};
pub use cdrs::{CallResult, Cdr, CdrFilter, CdrLeg, Forward, HangupSide, NewCdr};
pub use chat::{Clip, ConversationSummary};
pub use error::{PasswordError, StoreError};
pub use guard::{Ban, Lockout, LockoutKind};
pub use import::RowError;
pub use messages::{Message, NewMessage};
pub use numbers::{PhoneNumber, TrunkStatus, validate_number};
pub use outbox::{NewMail, OutgoingMail};
pub use password::{check_password, dummy_password_hash, verify_password_hash};
pub use recordings::{NewRecording, Recording};
pub use settings::{CallSettings, DEFAULT_NO_ANSWER_SECS, NO_ANSWER_SECS, PIN_DIGITS, validate_pin, validate_target};
/// The SQL toolkit, re-exported for callers that need raw access (tests, maintenance).
pub use sqlx;
pub use voicemail::{NewVoicemail, Voicemail, VoicemailState};
pub use web::{
    ApiToken, Contact, Invitation, MAX_NICKNAME_CHARS, MAX_TOKEN_NAME_CHARS, NewApiToken, NewWebSession, WebSession,
};
pub use webhooks::{Delivery, NewDelivery, NewWebhook, Webhook};

/// How long an SQLite statement waits for another writer before failing with
/// [`StoreError::Locked`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of [`Store::open_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenMode {
    /// Create the SQLite file (and its directory) when it does not exist; otherwise opening a
    /// missing file fails with [`StoreError::Missing`]. Ignored for PostgreSQL.
    pub create_if_missing: bool,
    /// Most connections in the pool.
    pub max_connections: u32,
}

impl Default for OpenMode {
    fn default() -> Self {
        OpenMode { create_if_missing: true, max_connections: 8 }
    }
}

/// The database backend in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to one backend.
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on whichever pool the store holds: `on_pool!(self, |pool| expr)`. The
/// expression is compiled once per backend, so the SQL and the Rust around it are shared.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The database: cheap to clone (a pool handle), safe to share between tasks.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://...`), creating an SQLite file
    /// if missing, and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, OpenMode::default()).await
    }

    /// Opens the database at `url` with explicit options, and applies pending migrations.
    ///
    /// SQLite runs in WAL journal mode with foreign keys on and a [`BUSY_TIMEOUT`].
    pub async fn open_with(url: &str, mode: OpenMode) -> Result<Store, StoreError> {
        let max = mode.max_connections.max(1);
        let pool = if is_postgres(url) {
            let options = PgConnectOptions::from_str(url)?;
            Pool::Postgres(PgPoolOptions::new().max_connections(max).connect_with(options).await?)
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(mode.create_if_missing)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL with NORMAL: no fsync per commit, still crash-safe (a power cut may lose the
                // last few commits, never corrupt the file); REGISTER refreshes are frequent.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT);
            let file = options.get_filename().to_owned();
            if !is_memory(url, &file) {
                prepare_sqlite_file(&file, mode.create_if_missing)?;
            }
            let pool = SqlitePoolOptions::new().max_connections(max).connect_with(options).await;
            Pool::Sqlite(pool.map_err(StoreError::from_sqlx)?)
        };
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Which backend this store talks to.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations; a no-op when the schema is current. Retried once, since two
    /// processes opening a new database at the same moment can race on the first migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = migrator(self.backend());
        let first = on_pool!(self, |pool| migrator.run(pool).await);
        match first {
            Ok(()) => Ok(()),
            Err(_) => on_pool!(self, |pool| migrator.run(pool).await).map_err(StoreError::from_migrate),
        }
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn is_memory(url: &str, file: &std::path::Path) -> bool {
    url.contains(":memory:") || url.contains("mode=memory") || file.as_os_str() == ":memory:"
}

/// Checks that an SQLite file exists, or creates its directory when allowed.
fn prepare_sqlite_file(file: &std::path::Path, create: bool) -> Result<(), StoreError> {
    if file.exists() {
        return Ok(());
    }
    if !create {
        return Err(StoreError::Missing(file.to_owned()));
    }
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: PathBuf::from(dir), source })
        }
        _ => Ok(()),
    }
}

/// The embedded migrations of `backend`.
fn migrator(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[
            (1, "initial", include_str!("../migrations/sqlite/0001_initial.sql")),
            (2, "voicemail", include_str!("../migrations/sqlite/0002_voicemail.sql")),
            (3, "guard", include_str!("../migrations/sqlite/0003_guard.sql")),
            (4, "web", include_str!("../migrations/sqlite/0004_web.sql")),
            (5, "voice mail", include_str!("../migrations/sqlite/0005_voice_mail.sql")),
            (6, "webhooks", include_str!("../migrations/sqlite/0006_webhooks.sql")),
            (7, "token scopes", include_str!("../migrations/sqlite/0007_token_scopes.sql")),
            (8, "call quality", include_str!("../migrations/sqlite/0008_call_quality.sql")),
            (9, "call routing", include_str!("../migrations/sqlite/0009_call_routing.sql")),
            (10, "numbers", include_str!("../migrations/sqlite/0010_numbers.sql")),
            (11, "queue agents", include_str!("../migrations/sqlite/0011_queue_agents.sql")),
            (12, "recordings", include_str!("../migrations/sqlite/0012_recordings.sql")),
        ],
        Backend::Postgres => &[
            (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
            (2, "voicemail", include_str!("../migrations/postgres/0002_voicemail.sql")),
            (3, "guard", include_str!("../migrations/postgres/0003_guard.sql")),
            (4, "web", include_str!("../migrations/postgres/0004_web.sql")),
            (5, "voice mail", include_str!("../migrations/postgres/0005_voice_mail.sql")),
            (6, "webhooks", include_str!("../migrations/postgres/0006_webhooks.sql")),
            (7, "token scopes", include_str!("../migrations/postgres/0007_token_scopes.sql")),
            (8, "call quality", include_str!("../migrations/postgres/0008_call_quality.sql")),
            (9, "call routing", include_str!("../migrations/postgres/0009_call_routing.sql")),
            (10, "numbers", include_str!("../migrations/postgres/0010_numbers.sql")),
            (11, "queue agents", include_str!("../migrations/postgres/0011_queue_agents.sql")),
            (12, "recordings", include_str!("../migrations/postgres/0012_recordings.sql")),
        ],
    };
    let migrations = files
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, SqlStr::from_static(sql), false)
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// The current time in Unix seconds, from the system clock.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
