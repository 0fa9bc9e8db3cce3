//! Accounts: the users who register phones, place calls and sign in to the web app.

use crate::error::StoreError;
use crate::password::{self, Secrets};
use crate::rows::from_row;
use crate::{Store, on_pool, unix_now};

/// One account. Its `Debug` output hides the password hash and the HA1 values.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    /// The SIP user part and sign-in name: 1 to 64 characters of `a-z0-9._-`.
    pub username: String,
    /// Shown to callees and in the web app; the username when none was given.
    pub display_name: String,
    pub email: Option<String>,
    /// A short number (2 to 10 digits) that also reaches this account.
    pub extension: Option<String>,
    /// Argon2id PHC string, for web sign-in ([`Store::verify_password`]).
    pub password_hash: String,
    /// The digest realm the HA1 values were computed for.
    pub realm: String,
    /// `MD5(username:realm:password)` in lower-case hex (RFC 3261 §22.4, RFC 7616).
    pub ha1_md5: String,
    /// `SHA-256(username:realm:password)` in lower-case hex (RFC 8760).
    pub ha1_sha256: String,
    pub disabled: bool,
    /// May administer the server in the web app and the API (users, live registrations and
    /// calls).
    pub admin: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

from_row!(Account {
    id,
    username,
    display_name,
    email,
    extension,
    password_hash,
    realm,
    ha1_md5,
    ha1_sha256,
    disabled,
    admin,
    created_at,
    updated_at
});

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("extension", &self.extension)
            .field("realm", &self.realm)
            .field("disabled", &self.disabled)
            .field("admin", &self.admin)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::create_account`] needs. Its `Debug` output hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    /// The digest realm to compute the HA1 values for (the server's `realm` setting).
    pub realm: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub extension: Option<String>,
    /// Made an administrator.
    pub admin: bool,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("extension", &self.extension)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl NewAccount {
    /// An account with only the required fields.
    pub fn new(username: impl Into<String>, password: impl Into<String>, realm: impl Into<String>) -> Self {
        NewAccount {
            username: username.into(),
            password: password.into(),
            realm: realm.into(),
            display_name: None,
            email: None,
            extension: None,
            admin: false,
        }
    }

    /// Makes the account an administrator.
    pub fn admin(mut self) -> Self {
        self.admin = true;
        self
    }

    /// Sets the display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the email address.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the extension.
    pub fn extension(mut self, extension: impl Into<String>) -> Self {
        self.extension = Some(extension.into());
        self
    }
}

/// Checks a username: 1 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-`.
pub fn validate_username(username: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(StoreError::InvalidUsername(username.to_owned())) }
}

/// Checks an extension: 2 to 10 digits.
pub fn validate_extension(extension: &str) -> Result<(), StoreError> {
    if (2..=10).contains(&extension.len()) && extension.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StoreError::InvalidExtension(extension.to_owned()))
    }
}

pub(crate) fn validate_display_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            field: "display name",
            reason: "use 1 to 128 characters without control characters",
        });
    }
    Ok(())
}

pub(crate) fn validate_email(email: &str) -> Result<(), StoreError> {
    let ok = email.len() <= 254
        && !email.contains(|c: char| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid { field: "email", reason: "expected an address like name@example.com" })
    }
}

/// The columns of [`Account`], in the order of its fields (the role read as a flag).
pub(crate) const ACCOUNT_COLUMNS: &str = "id, username, display_name, email, extension, password_hash, realm, ha1_md5, \
     ha1_sha256, disabled, (role = 'admin') AS admin, created_at, updated_at";

impl Store {
    /// Creates an account after checking the username, extension, display name, email and the
    /// password policy. A username may not equal another account's extension, nor an extension
    /// another account's username, so that dialling a number is never ambiguous.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account, StoreError> {
        validate_username(&new.username)?;
        if let Some(ext) = &new.extension {
            validate_extension(ext)?;
        }
        if let Some(name) = &new.display_name {
            validate_display_name(name)?;
        }
        if let Some(email) = &new.email {
            validate_email(email)?;
        }
        let secrets = Secrets::derive(&new.username, &new.realm, &new.password).await?;
        let display_name = new.display_name.clone().unwrap_or_else(|| new.username.clone());
        let now = unix_now();
        let result: Result<Account, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            let clash: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT username, extension FROM accounts \
                 WHERE username = $1 OR extension = $1 OR username = $2 OR extension = $2",
            )
            .bind(&new.username)
            .bind(new.extension.as_deref().unwrap_or(""))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((username, extension)) = clash {
                return Err(if username == new.username || extension.as_deref() == Some(new.username.as_str()) {
                    StoreError::UserExists(new.username.clone())
                } else {
                    StoreError::ExtensionTaken(new.extension.clone().unwrap_or_default())
                });
            }
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO accounts (username, display_name, email, extension, password_hash, realm, ha1_md5, \
                 ha1_sha256, disabled, role, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, $10, $10) RETURNING {ACCOUNT_COLUMNS}"
            ));
            let account: Account = sqlx::query_as(sql)
                .bind(&new.username)
                .bind(&display_name)
                .bind(&new.email)
                .bind(&new.extension)
                .bind(&secrets.password_hash)
                .bind(&new.realm)
                .bind(&secrets.ha1_md5)
                .bind(&secrets.ha1_sha256)
                .bind(if new.admin { "admin" } else { "user" })
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(account)
        }
        .await);
        result.map_err(|e| {
            if !e.is_unique_violation() {
                e
            } else if e.database_message().contains("extension") {
                StoreError::ExtensionTaken(new.extension.clone().unwrap_or_default())
            } else {
                StoreError::UserExists(new.username.clone())
            }
        })
    }

    /// The account with this username.
    pub async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        self.account_where("username = $1", username).await
    }

    /// The account with this extension.
    pub async fn account_by_extension(&self, extension: &str) -> Result<Option<Account>, StoreError> {
        self.account_where("extension = $1", extension).await
    }

    /// The account with this id.
    pub async fn account(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    async fn account_where(&self, condition: &'static str, value: &str) -> Result<Option<Account>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {condition}"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(value).fetch_optional(pool).await)?)
    }

    /// Every account, ordered by username.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// Sets a new password (checked against the policy) and recomputes the HA1 values for
    /// `realm`.
    pub async fn set_password(&self, username: &str, password: &str, realm: &str) -> Result<(), StoreError> {
        let secrets = Secrets::derive(username, realm, password).await?;
        self.update_account(
            username,
            "UPDATE accounts SET password_hash = $2, realm = $3, ha1_md5 = $4, ha1_sha256 = $5, updated_at = $6 \
             WHERE username = $1",
            &[&secrets.password_hash, realm, &secrets.ha1_md5, &secrets.ha1_sha256],
        )
        .await
    }

    /// Disables or enables an account: a disabled account can neither register nor call.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), StoreError> {
        let sql = if disabled {
            "UPDATE accounts SET disabled = TRUE, updated_at = $2 WHERE username = $1"
        } else {
            "UPDATE accounts SET disabled = FALSE, updated_at = $2 WHERE username = $1"
        };
        self.update_account(username, sql, &[]).await
    }

    /// Makes an account an administrator, or an ordinary user.
    pub async fn set_admin(&self, username: &str, admin: bool) -> Result<(), StoreError> {
        let sql = if admin {
            "UPDATE accounts SET role = 'admin', updated_at = $2 WHERE username = $1"
        } else {
            "UPDATE accounts SET role = 'user', updated_at = $2 WHERE username = $1"
        };
        self.update_account(username, sql, &[]).await
    }

    /// Up to `limit` accounts ordered by username, after the username `after` (a page of a
    /// list; the next page starts after the last username of this one).
    pub async fn accounts_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<Account>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username > $1 ORDER BY username LIMIT $2"
        ));
        let limit = i64::from(limit);
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(after.unwrap_or("")).bind(limit).fetch_all(pool).await)?)
    }

    /// Deletes an account and its registrations. Its call records and message history stay,
    /// naming it by username.
    pub async fn delete_account(&self, username: &str) -> Result<(), StoreError> {
        let deleted: Result<u64, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM accounts WHERE username = $1").bind(username).execute(&mut *tx).await?;
            if done.rows_affected() == 1 {
                tx.commit().await?;
            }
            Ok(done.rows_affected())
        }
        .await);
        match deleted? {
            1 => Ok(()),
            _ => Err(StoreError::UnknownUser(username.to_owned())),
        }
    }

    /// A counter that every account change increments: a running server polls it to reload
    /// accounts after `sambung user ...` changed them.
    pub async fn accounts_generation(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar("SELECT value FROM account_generation WHERE id = 1")
            .fetch_one(pool)
            .await)?)
    }

    /// Whether `password` is the account's password (Argon2id). False for unknown and disabled
    /// accounts.
    pub async fn verify_password(&self, username: &str, password: &str) -> Result<bool, StoreError> {
        match self.account_by_username(username).await? {
            Some(account) if !account.disabled => Ok(password::verify(account.password_hash, password).await),
            _ => Ok(false),
        }
    }

    /// Runs `sql` with `$1` = username, then `texts` as `$2...`, then the current time, in a
    /// transaction that bumps the generation.
    async fn update_account(&self, username: &str, sql: &'static str, texts: &[&str]) -> Result<(), StoreError> {
        let now = unix_now();
        let changed: Result<u64, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            let mut query = sqlx::query(sql).bind(username);
            for text in texts {
                query = query.bind(*text);
            }
            let done = query.bind(now).execute(&mut *tx).await?;
            if done.rows_affected() == 1 {
                tx.commit().await?;
            }
            Ok(done.rows_affected())
        }
        .await);
        match changed? {
            1 => Ok(()),
            _ => Err(StoreError::UnknownUser(username.to_owned())),
        }
    }
}

/// Increments the account generation; the first statement of every account transaction, so
/// that SQLite takes the write lock at once (waiting up to the busy timeout) rather than
/// failing to upgrade a read lock later.
pub(crate) const BUMP_GENERATION: &str = "UPDATE account_generation SET value = value + 1 WHERE id = 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let new = NewAccount::new("alice", "correct horse", "example.com");
        assert!(!format!("{new:?}").contains("horse"));
        let account = Account {
            id: 1,
            username: "alice".into(),
            display_name: "alice".into(),
            email: None,
            extension: None,
            password_hash: "$argon2id$secret".into(),
            realm: "example.com".into(),
            ha1_md5: "md5secret".into(),
            ha1_sha256: "shasecret".into(),
            disabled: false,
            admin: false,
            created_at: 0,
            updated_at: 0,
        };
        let text = format!("{account:?}");
        assert!(!text.contains("secret") && text.contains("alice"), "{text}");
    }

    #[test]
    fn usernames_and_extensions() {
        assert!(validate_username("a.b_c-9").is_ok());
        assert!(validate_username("A").is_err());
        assert!(validate_extension("10").is_ok());
        assert!(validate_extension("0123456789").is_ok());
        assert!(validate_extension("0").is_err());
    }
}
