//! The web app's sign-in sessions, personal API tokens and sign-up invitations.
//!
//! No secret is stored: the caller hands over the SHA-256 of each (the session cookie, the
//! token, the invitation code), so a copy of the database signs nobody in. Times are given by
//! the caller.

use crate::accounts::ACCOUNT_COLUMNS;
use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Account, NewAccount, Store, on_pool};

/// A signed-in browser.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSession {
    pub account_id: i64,
    /// What cookie-authenticated writes must send back in `X-CSRF-Token`.
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    /// The address it signed in from.
    pub source: Option<String>,
}

from_row!(WebSession { account_id, csrf_token, created_at, last_seen_at, expires_at, user_agent, source });

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("account_id", &self.account_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::create_web_session`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebSession {
    /// SHA-256 (hex) of the cookie's secret.
    pub secret_hash: String,
    pub account_id: i64,
    pub csrf_token: String,
    pub now: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub source: Option<String>,
}

/// A personal API token (its secret is never kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    /// The token's first characters, to tell tokens apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// Space-separated scopes of a token for software; `None`: a personal token, with the
    /// account's full access.
    pub scopes: Option<String>,
}

from_row!(ApiToken { id, account_id, name, prefix, created_at, last_used_at, expires_at, scopes });

/// What [`Store::create_api_token`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiToken {
    pub account_id: i64,
    pub name: String,
    /// SHA-256 (hex) of the token.
    pub secret_hash: String,
    pub prefix: String,
    pub now: i64,
    pub expires_at: Option<i64>,
    /// Space-separated scopes; `None` for a personal token.
    pub scopes: Option<String>,
}

/// An invitation to sign up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: i64,
    pub created_by: Option<i64>,
    pub email: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub used_by: Option<i64>,
}

from_row!(Invitation { id, created_by, email, created_at, expires_at, used_at, used_by });

/// Longest name of an API token, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 64;

const TOKEN_COLUMNS: &str = "id, account_id, name, prefix, created_at, last_used_at, expires_at, scopes";
const INVITATION_COLUMNS: &str = "id, created_by, email, created_at, expires_at, used_at, used_by";
const SESSION_COLUMNS: &str = "account_id, csrf_token, created_at, last_seen_at, expires_at, user_agent, source";

/// A session or token is marked as used at most this often (seconds), so that a busy page does
/// not write on every request.
const TOUCH_EVERY: i64 = 60;

impl Store {
    /// Stores a new sign-in session.
    pub async fn create_web_session(&self, new: &NewWebSession) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO web_sessions (secret_hash, account_id, csrf_token, created_at, last_seen_at, expires_at, \
             user_agent, source) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        )
        .bind(&new.secret_hash)
        .bind(new.account_id)
        .bind(&new.csrf_token)
        .bind(new.now)
        .bind(new.expires_at)
        .bind(&new.user_agent)
        .bind(&new.source)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| match StoreError::from(e) {
            e if e.is_foreign_key_violation() => StoreError::UnknownAccount(new.account_id),
            e => e,
        })?;
        Ok(())
    }

    /// The session whose secret hashes to `secret_hash` and its account, when it has not
    /// expired and the account is not disabled. A session in use is extended to `extend_to`
    /// (sliding expiry), written at most once a minute.
    pub async fn web_session(
        &self,
        secret_hash: &str,
        now: i64,
        extend_to: i64,
    ) -> Result<Option<(WebSession, Account)>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM web_sessions WHERE secret_hash = $1 AND expires_at > $2"
        ));
        let session: Option<WebSession> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(secret_hash).bind(now).fetch_optional(pool).await)?;
        let Some(mut session) = session else { return Ok(None) };
        let Some(account) = self.account(session.account_id).await?.filter(|a| !a.disabled) else {
            return Ok(None);
        };
        if now - session.last_seen_at >= TOUCH_EVERY {
            on_pool!(self, |pool| sqlx::query(
                "UPDATE web_sessions SET last_seen_at = $2, expires_at = $3 WHERE secret_hash = $1"
            )
            .bind(secret_hash)
            .bind(now)
            .bind(extend_to)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
            session.last_seen_at = now;
            session.expires_at = extend_to;
        }
        Ok(Some((session, account)))
    }

    /// Ends one session (sign-out). True when it existed.
    pub async fn delete_web_session(&self, secret_hash: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query("DELETE FROM web_sessions WHERE secret_hash = $1")
            .bind(secret_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Ends every session of an account but the one whose secret hashes to `keep` (after a
    /// password change, or "sign out everywhere else"). Returns how many ended.
    pub async fn delete_web_sessions_of(&self, account_id: i64, keep: Option<&str>) -> Result<u64, StoreError> {
        let done =
            on_pool!(self, |pool| sqlx::query("DELETE FROM web_sessions WHERE account_id = $1 AND secret_hash <> $2")
                .bind(account_id)
                .bind(keep.unwrap_or(""))
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// Removes expired sessions and invitations. Returns how many rows went.
    pub async fn purge_web(&self, now: i64) -> Result<u64, StoreError> {
        let sessions = on_pool!(self, |pool| sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        let invitations =
            on_pool!(self, |pool| sqlx::query("DELETE FROM invitations WHERE expires_at <= $1 AND used_at IS NULL")
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        Ok(sessions + invitations)
    }

    /// Stores a new API token. Its name must be 1 to [`MAX_TOKEN_NAME_CHARS`] characters
    /// without control characters.
    pub async fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken, StoreError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid {
                field: "token name",
                reason: "use 1 to 64 characters without control characters",
            });
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_tokens (account_id, name, secret_hash, prefix, created_at, expires_at, scopes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TOKEN_COLUMNS}"
        ));
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(new.account_id)
            .bind(name)
            .bind(&new.secret_hash)
            .bind(&new.prefix)
            .bind(new.now)
            .bind(new.expires_at)
            .bind(&new.scopes)
            .fetch_one(pool)
            .await)
        .map_err(|e| match StoreError::from(e) {
            e if e.is_foreign_key_violation() => StoreError::UnknownAccount(new.account_id),
            e => e,
        })
    }

    /// An account's API tokens, newest first: up to `limit` with an id below `before`.
    pub async fn api_tokens(
        &self,
        account_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ApiToken>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(account_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// The token whose secret hashes to `secret_hash` and its account, when it has not expired
    /// and the account is not disabled; marks it used (at most once a minute).
    pub async fn api_token_by_secret(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<(ApiToken, Account)>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = $1 AND (expires_at IS NULL OR expires_at > $2)"
        ));
        let token: Option<ApiToken> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(secret_hash).bind(now).fetch_optional(pool).await)?;
        let Some(mut token) = token else { return Ok(None) };
        let Some(account) = self.account(token.account_id).await?.filter(|a| !a.disabled) else {
            return Ok(None);
        };
        if token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
            on_pool!(self, |pool| sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(token.id)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
            token.last_used_at = Some(now);
        }
        Ok(Some((token, account)))
    }

    /// Revokes (deletes) one of an account's tokens; [`StoreError::UnknownToken`] when the
    /// account has no token with this id.
    pub async fn revoke_api_token(&self, account_id: i64, id: i64) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 1 { Ok(()) } else { Err(StoreError::UnknownToken(id)) }
    }

    /// Stores an invitation to sign up.
    pub async fn create_invitation(
        &self,
        secret_hash: &str,
        created_by: Option<i64>,
        email: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<Invitation, StoreError> {
        if let Some(email) = email {
            crate::accounts::validate_email(email)?;
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO invitations (secret_hash, created_by, email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {INVITATION_COLUMNS}"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(secret_hash)
            .bind(created_by)
            .bind(email)
            .bind(now)
            .bind(expires_at)
            .fetch_one(pool)
            .await)?)
    }

    /// Invitations, newest first: up to `limit` with an id below `before`.
    pub async fn invitations(&self, before: Option<i64>, limit: u32) -> Result<Vec<Invitation>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id < $1 ORDER BY id DESC LIMIT $2"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// Creates an account with an invitation: the invitation is claimed first (so that two
    /// sign-ups cannot both use it), given back when the account cannot be made, and marked
    /// with the new account once it exists. [`StoreError::InvalidInvitation`] when the code is
    /// unknown, used or expired.
    pub async fn create_account_invited(
        &self,
        new: NewAccount,
        secret_hash: &str,
        now: i64,
    ) -> Result<Account, StoreError> {
        let claimed: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "UPDATE invitations SET used_at = $2 WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING id"
        )
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
        let Some(id) = claimed else { return Err(StoreError::InvalidInvitation) };
        match self.create_account(new).await {
            Ok(account) => {
                on_pool!(self, |pool| sqlx::query("UPDATE invitations SET used_by = $2 WHERE id = $1")
                    .bind(id)
                    .bind(account.id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
                Ok(account)
            }
            Err(e) => {
                on_pool!(self, |pool| sqlx::query("UPDATE invitations SET used_at = NULL WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
                Err(e)
            }
        }
    }

    /// Accounts whose username, display name or extension contains `text` (any case), ordered
    /// by username after `after`, up to `limit`; disabled accounts are left out.
    pub async fn search_accounts(
        &self,
        text: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError> {
        let pattern =
            format!("%{}%", text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE NOT disabled AND username > $2 AND \
             (username LIKE $1 ESCAPE '\\' OR LOWER(display_name) LIKE $1 ESCAPE '\\' OR extension LIKE $1 ESCAPE '\\') \
             ORDER BY username LIMIT $3"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(&pattern)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }
}

/// One of a person's contacts: the account, and the nickname given to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub account: Account,
    pub nickname: Option<String>,
    pub created_at: i64,
}

/// Longest contact nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 64;

impl Store {
    /// Adds `contact_id` to `account_id`'s contacts, or changes its nickname. True when it was
    /// new. An account cannot add itself; [`StoreError::UnknownAccount`] for no such account.
    pub async fn put_contact(
        &self,
        account_id: i64,
        contact_id: i64,
        nickname: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let nickname = nickname.map(str::trim).filter(|n| !n.is_empty());
        if nickname.is_some_and(|n| n.chars().count() > MAX_NICKNAME_CHARS || n.chars().any(char::is_control)) {
            return Err(StoreError::Invalid {
                field: "nickname",
                reason: "use up to 64 characters without control characters",
            });
        }
        if account_id == contact_id {
            return Err(StoreError::Invalid { field: "contact", reason: "one's own account is not a contact" });
        }
        let updated = on_pool!(self, |pool| sqlx::query(
            "UPDATE contacts SET nickname = $3 WHERE account_id = $1 AND contact_id = $2"
        )
        .bind(account_id)
        .bind(contact_id)
        .bind(nickname)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if updated > 0 {
            return Ok(false);
        }
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO contacts (account_id, contact_id, nickname, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(account_id)
        .bind(contact_id)
        .bind(nickname)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| match StoreError::from(e) {
            e if e.is_foreign_key_violation() => StoreError::UnknownAccount(contact_id),
            e => e,
        })?;
        Ok(true)
    }

    /// Removes a contact; true when it was there.
    pub async fn delete_contact(&self, account_id: i64, contact_id: i64) -> Result<bool, StoreError> {
        let done =
            on_pool!(self, |pool| sqlx::query("DELETE FROM contacts WHERE account_id = $1 AND contact_id = $2")
                .bind(account_id)
                .bind(contact_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// `account_id`'s contacts ordered by username, after the username `after`, up to `limit`.
    pub async fn contacts(&self, account_id: i64, after: Option<&str>, limit: u32) -> Result<Vec<Contact>, StoreError> {
        let columns = ACCOUNT_COLUMNS
            .split(", ")
            .map(|c| if c.starts_with('(') { c.replace("role", "a.role") } else { format!("a.{}", c.trim()) })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {columns}, c.nickname AS nickname, c.created_at AS added_at FROM contacts c \
             JOIN accounts a ON a.id = c.contact_id WHERE c.account_id = $1 AND a.username > $2 \
             ORDER BY a.username LIMIT $3"
        ));
        let rows: Vec<ContactRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(account_id)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| Contact { account: r.account, nickname: r.nickname, created_at: r.added_at })
            .collect())
    }

    /// The ids of `account_id`'s contacts (for live presence).
    pub async fn contact_ids(&self, account_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar("SELECT contact_id FROM contacts WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(pool)
            .await)?)
    }
}

/// A contact row: the account's columns and the contact's own.
struct ContactRow {
    account: Account,
    nickname: Option<String>,
    added_at: i64,
}

macro_rules! contact_row {
    ($row:ty) => {
        impl<'r> sqlx::FromRow<'r, $row> for ContactRow {
            fn from_row(row: &'r $row) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(ContactRow {
                    account: Account::from_row(row)?,
                    nickname: row.try_get("nickname")?,
                    added_at: row.try_get("added_at")?,
                })
            }
        }
    };
}
contact_row!(sqlx::sqlite::SqliteRow);
contact_row!(sqlx::postgres::PgRow);

impl Store {
    /// Stores a password reset for `account_id`, valid until `expires_at`; an account's earlier
    /// unused resets stop working.
    pub async fn create_password_reset(
        &self,
        secret_hash: &str,
        account_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("DELETE FROM password_resets WHERE account_id = $1 AND used_at IS NULL")
            .bind(account_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO password_resets (secret_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(secret_hash)
        .bind(account_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The account of the reset whose secret hashes to `secret_hash`, when it is unused and
    /// unexpired (without using it up).
    pub async fn password_reset_account(&self, secret_hash: &str, now: i64) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT account_id FROM password_resets WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2"
        )
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    /// Uses up the reset whose secret hashes to `secret_hash`: its account, when it is unused
    /// and unexpired.
    pub async fn take_password_reset(&self, secret_hash: &str, now: i64) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "UPDATE password_resets SET used_at = $2 WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING account_id"
        )
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    /// The account whose email is `email` (any case), when exactly one has it.
    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE LOWER(email) = LOWER($1) LIMIT 2"
        ));
        let found: Vec<Account> = on_pool!(self, |pool| sqlx::query_as(sql).bind(email).fetch_all(pool).await)?;
        Ok(if found.len() == 1 { found.into_iter().next() } else { None })
    }
}
