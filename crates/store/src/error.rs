//! Errors of the store.

use std::path::PathBuf;

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;

/// Why a password is refused ([`crate::check_password`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("it has fewer than {min} characters", min = crate::password::MIN_PASSWORD_CHARS)]
    TooShort,
    #[error("it has more than {max} characters", max = crate::password::MAX_PASSWORD_CHARS)]
    TooLong,
    #[error("it contains the username")]
    ContainsUsername,
    #[error("it repeats a single character")]
    OneCharacter,
    #[error("it is one of the most common passwords")]
    Common,
    #[error("it contains control characters")]
    ControlCharacter,
}

/// Errors of every store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An account with this username (or an extension equal to it) exists.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// Another account has this extension (or uses it as its username).
    #[error("extension {0:?} is already taken")]
    ExtensionTaken(String),
    /// No account has this username (or id).
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// No message has this id.
    #[error("unknown message {0}")]
    UnknownMessage(i64),
    /// No account has this id.
    #[error("unknown account {0}")]
    UnknownAccount(i64),
    /// No voicemail message has this id.
    #[error("unknown voicemail message {0}")]
    UnknownVoicemail(i64),
    /// No outgoing mail has this id.
    #[error("unknown outgoing mail {0}")]
    UnknownMail(i64),
    /// The account has no API token with this id.
    #[error("unknown API token {0}")]
    UnknownToken(i64),
    /// The invitation code is unknown, already used or expired.
    #[error("the invitation is unknown, used or expired")]
    InvalidInvitation,
    /// A voicemail PIN that is not 4 to 12 ASCII digits.
    #[error("invalid PIN: use {min} to {max} digits", min = crate::settings::PIN_DIGITS.start(), max = crate::settings::PIN_DIGITS.end())]
    InvalidPin,
    /// A forwarding target that is empty, too long, or holds spaces or control characters.
    #[error("invalid forwarding target {0:?}: use a username, an extension or a sip:/sips: URI, without spaces")]
    InvalidTarget(String),
    /// The password fails the policy.
    #[error("weak password: {0}")]
    WeakPassword(#[from] PasswordError),
    /// The username is not 1 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-`.
    #[error("invalid username {0:?}: use 1 to 64 characters of a-z, 0-9, '.', '_' and '-' (lower case)")]
    InvalidUsername(String),
    /// The extension is not 2 to 10 digits.
    #[error("invalid extension {0:?}: use 2 to 10 digits")]
    InvalidExtension(String),
    /// Another field (display name, email, call record) has an unusable value.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
    /// SQLite stayed busy or locked by another writer for longer than the busy timeout.
    #[error("database is locked by another process (still busy after {} seconds)", crate::BUSY_TIMEOUT.as_secs())]
    Locked,
    /// The SQLite file does not exist and the store was opened without creating it.
    #[error("database {} does not exist (create it with `sambung user add` or by starting the server)", .0.display())]
    Missing(PathBuf),
    /// The directory of a new SQLite file could not be created.
    #[error("cannot create database directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] MigrateError),
    /// Password hashing failed (should not happen).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from_sqlx(e)
    }
}

impl StoreError {
    /// Sorts a driver error: SQLite busy/locked becomes [`StoreError::Locked`].
    pub(crate) fn from_sqlx(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if is_locked(db.as_ref()) => StoreError::Locked,
            _ => StoreError::Database(e),
        }
    }

    /// Sorts a migration error: SQLite busy/locked becomes [`StoreError::Locked`].
    pub(crate) fn from_migrate(e: MigrateError) -> Self {
        match e {
            MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
                match StoreError::from_sqlx(inner) {
                    StoreError::Locked => StoreError::Locked,
                    StoreError::Database(inner) => StoreError::Migrate(MigrateError::Execute(inner)),
                    other => other,
                }
            }
            other => StoreError::Migrate(other),
        }
    }

    /// Whether this error is the database refusing a duplicate key.
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation)
    }

    /// Whether this error is a foreign key pointing nowhere.
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db)) if db.kind() == ErrorKind::ForeignKeyViolation)
    }

    /// The database's message, for telling which unique constraint failed.
    pub(crate) fn database_message(&self) -> String {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                format!("{} {}", db.message(), db.constraint().unwrap_or_default())
            }
            _ => String::new(),
        }
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), with any extended code.
fn is_locked(db: &dyn DatabaseError) -> bool {
    let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() else {
        return false;
    };
    sqlite.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}
