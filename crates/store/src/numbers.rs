//! The service's phone numbers (DIDs) and what each reaches, and the carriers' registration
//! states as the server last saw them.
//!
//! Numbers are E.164 with `+` (`+442079460000`). Assigning one bumps the account generation,
//! so that a running server routes calls to it within a second.

use crate::accounts::BUMP_GENERATION;
use crate::error::StoreError;
use crate::rows::from_row;
use crate::unix_now;
use crate::{Store, on_pool};

/// A phone number of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    pub number: String,
    /// The account it rings; `None`: not assigned.
    pub account_id: Option<i64>,
    /// That account's username.
    pub username: Option<String>,
    /// The ring group it rings instead (a `[[groups]]` name of the configuration).
    pub group_name: Option<String>,
    pub created_at: i64,
}
from_row!(PhoneNumber { number, account_id, username, group_name, created_at });

/// A carrier registration's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkStatus {
    pub name: String,
    /// `registering`, `registered` or `failed`.
    pub state: String,
    /// Until when (registered), or why (failed).
    pub detail: String,
    pub updated_at: i64,
}
from_row!(TrunkStatus { name, state, detail, updated_at });

/// Checks a phone number: `+` and 7 to 15 digits (ITU-T E.164), no leading zero.
pub fn validate_number(number: &str) -> Result<(), StoreError> {
    let digits = number.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: "number",
            reason: "use E.164 with '+': '+' and 7 to 15 digits, e.g. +442079460000",
        })
    }
}

impl Store {
    /// Adds `number` assigned to `username` (`None`: kept unassigned), or moves it to that
    /// account when it exists already.
    pub async fn put_number(&self, number: &str, username: Option<&str>) -> Result<(), StoreError> {
        validate_number(number)?;
        let now = unix_now();
        let done: Result<bool, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            let account: Option<i64> = match username {
                Some(name) => {
                    let id = sqlx::query_scalar("SELECT id FROM accounts WHERE username = $1")
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if id.is_none() {
                        return Ok(false);
                    }
                    id
                }
                None => None,
            };
            sqlx::query(
                "INSERT INTO numbers (number, account_id, group_name, created_at) VALUES ($1, $2, NULL, $3) \
                 ON CONFLICT (number) DO UPDATE SET account_id = excluded.account_id, group_name = NULL",
            )
            .bind(number)
            .bind(account)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await);
        match done? {
            true => Ok(()),
            false => Err(StoreError::UnknownUser(username.unwrap_or_default().to_owned())),
        }
    }

    /// Adds `number` ringing the ring group `group` (a name of the configuration's
    /// `[[groups]]`, checked by the caller), or moves it there.
    pub async fn put_group_number(&self, number: &str, group: &str) -> Result<(), StoreError> {
        validate_number(number)?;
        let now = unix_now();
        let done: Result<(), sqlx::Error> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO numbers (number, account_id, group_name, created_at) VALUES ($1, NULL, $2, $3) \
                 ON CONFLICT (number) DO UPDATE SET account_id = NULL, group_name = excluded.group_name",
            )
            .bind(number)
            .bind(group)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await);
        Ok(done?)
    }

    /// Removes `number`; false when the service has no such number.
    pub async fn remove_number(&self, number: &str) -> Result<bool, StoreError> {
        let removed: Result<u64, sqlx::Error> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM numbers WHERE number = $1").bind(number).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        }
        .await);
        Ok(removed? > 0)
    }

    /// Every number, in order, with the username it rings.
    pub async fn list_numbers(&self) -> Result<Vec<PhoneNumber>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT n.number, n.account_id, a.username, n.group_name, n.created_at FROM numbers n \
             LEFT JOIN accounts a ON a.id = n.account_id ORDER BY n.created_at, n.number"
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Records a carrier registration's state.
    pub async fn put_trunk_status(&self, status: &TrunkStatus) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO trunk_status (name, state, detail, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, detail = excluded.detail, \
             updated_at = excluded.updated_at"
        )
        .bind(&status.name)
        .bind(&status.state)
        .bind(&status.detail)
        .bind(status.updated_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Records whether account `account_id`, a queue agent, is logged in to its queues.
    pub async fn set_agent_login(&self, account_id: i64, logged_in: bool) -> Result<(), StoreError> {
        let now = unix_now();
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO queue_agents (account_id, logged_in, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET logged_in = excluded.logged_in, \
             updated_at = excluded.updated_at"
        )
        .bind(account_id)
        .bind(logged_in)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The usernames of the queue agents who logged out (and have not logged in since).
    pub async fn agents_logged_out(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT a.username FROM queue_agents q JOIN accounts a ON a.id = q.account_id \
             WHERE NOT q.logged_in ORDER BY a.username"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    /// Every recorded carrier registration state, by name.
    pub async fn list_trunk_status(&self) -> Result<Vec<TrunkStatus>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT name, state, detail, updated_at FROM trunk_status ORDER BY name"
        )
        .fetch_all(pool)
        .await)?)
    }
}
