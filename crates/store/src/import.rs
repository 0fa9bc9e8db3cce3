//! Many accounts at once (`sambung user import`, the administration page): every row checked
//! first, then all written in one transaction, or none.

use std::collections::HashSet;

use crate::accounts::{BUMP_GENERATION, validate_display_name, validate_email};
use crate::error::StoreError;
use crate::password::Secrets;
use crate::{NewAccount, Store, on_pool, unix_now, validate_extension, validate_username};

/// Why one row of an import is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct RowError {
    /// The row's place in the input, from 1.
    pub row: usize,
    pub username: String,
    pub error: String,
}

/// Passwords hashed at once, per core: Argon2 is what an import spends its time on.
const HASHES_PER_CORE: usize = 2;

impl Store {
    /// Creates every account of `rows`, or none: each row is checked as [`Store::create_account`]
    /// checks one (and against the other rows and the accounts already stored); any refusal
    /// returns them all and writes nothing. The passwords are hashed on every core. Returns how
    /// many accounts were made.
    pub async fn import_accounts(&self, rows: Vec<NewAccount>) -> Result<Result<usize, Vec<RowError>>, StoreError> {
        let mut errors = Vec::new();
        let mut names = HashSet::new();
        let mut extensions = HashSet::new();
        let existing: Vec<(String, Option<String>)> =
            on_pool!(self, |pool| sqlx::query_as("SELECT username, extension FROM accounts").fetch_all(pool).await)?;
        let taken_names: HashSet<&str> = existing.iter().map(|(u, _)| u.as_str()).collect();
        let taken_extensions: HashSet<&str> = existing.iter().filter_map(|(_, e)| e.as_deref()).collect();
        for (i, new) in rows.iter().enumerate() {
            let mut refuse =
                |error: String| errors.push(RowError { row: i + 1, username: new.username.clone(), error });
            let checked = validate_username(&new.username)
                .and_then(|()| new.extension.as_deref().map_or(Ok(()), validate_extension))
                .and_then(|()| new.display_name.as_deref().map_or(Ok(()), validate_display_name))
                .and_then(|()| new.email.as_deref().map_or(Ok(()), validate_email))
                .and_then(|()| crate::check_password(&new.username, &new.password).map_err(StoreError::from));
            if let Err(e) = checked {
                refuse(e.to_string());
                continue;
            }
            let name = new.username.as_str();
            if taken_names.contains(name) || taken_extensions.contains(name) || !names.insert(name.to_owned()) {
                refuse(StoreError::UserExists(new.username.clone()).to_string());
                continue;
            }
            if let Some(ext) = new.extension.as_deref()
                && (taken_extensions.contains(ext) || taken_names.contains(ext) || !extensions.insert(ext.to_owned()))
            {
                refuse(StoreError::ExtensionTaken(ext.to_owned()).to_string());
            }
        }
        // A username may not equal another row's extension either.
        for (i, new) in rows.iter().enumerate() {
            if extensions.contains(&new.username) {
                errors.push(RowError {
                    row: i + 1,
                    username: new.username.clone(),
                    error: StoreError::UserExists(new.username.clone()).to_string(),
                });
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.row);
            return Ok(Err(errors));
        }

        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut secrets = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(cores * HASHES_PER_CORE) {
            let mut tasks = tokio::task::JoinSet::new();
            for (n, new) in chunk.iter().enumerate() {
                let (username, realm, password) = (new.username.clone(), new.realm.clone(), new.password.clone());
                tasks.spawn(async move { (n, Secrets::derive(&username, &realm, &password).await) });
            }
            let mut done = Vec::with_capacity(chunk.len());
            while let Some(joined) = tasks.join_next().await {
                let (n, derived) = joined.map_err(|e| StoreError::Hash(e.to_string()))?;
                done.push((n, derived?));
            }
            done.sort_by_key(|(n, _)| *n);
            secrets.extend(done.into_iter().map(|(_, s)| s));
        }

        let now = unix_now();
        const INSERT: &str = "INSERT INTO accounts (username, display_name, email, extension, password_hash, realm, \
             ha1_md5, ha1_sha256, disabled, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, $10, $10)";
        let made: Result<usize, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            for (new, secret) in rows.iter().zip(&secrets) {
                let display_name = new.display_name.clone().unwrap_or_else(|| new.username.clone());
                sqlx::query(INSERT)
                    .bind(&new.username)
                    .bind(&display_name)
                    .bind(&new.email)
                    .bind(&new.extension)
                    .bind(&secret.password_hash)
                    .bind(&new.realm)
                    .bind(&secret.ha1_md5)
                    .bind(&secret.ha1_sha256)
                    .bind(if new.admin { "admin" } else { "user" })
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(rows.len())
        }
        .await);
        Ok(Ok(made?))
    }
}
