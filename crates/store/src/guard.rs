//! The guard's bans and lockouts, so that they survive a restart.
//!
//! The server writes the bans and lockouts it makes; an operator adds and removes bans with
//! `sambung ban`, and each such change bumps a generation that a running server polls to reload
//! the lists. Rows whose time is over are ignored by the lists and removed by
//! [`Store::purge_guard`].

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// A banned source address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The address (for IPv6, the /64's network address), as text.
    pub address: String,
    /// Unix seconds when it ends; `None`: until removed.
    pub until_at: Option<i64>,
    pub reason: String,
    /// Added by an operator.
    pub manual: bool,
    pub created_at: i64,
}
from_row!(Ban { address, until_at, reason, manual, created_at });

/// What is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockoutKind {
    /// An account's digest authentication, by username.
    Account,
    /// A voicemail PIN, by account id.
    Pin,
}

impl LockoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockoutKind::Account => "account",
            LockoutKind::Pin => "pin",
        }
    }
}

/// A lockout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockout {
    pub kind: LockoutKind,
    /// The username (accounts) or the account id (PINs).
    pub subject: String,
    /// Unix seconds when it ends.
    pub until_at: i64,
}

#[derive(Debug)]
struct LockoutRow {
    kind: String,
    subject: String,
    until_at: i64,
}
from_row!(LockoutRow { kind, subject, until_at });

const BUMP: &str = "UPDATE guard_generation SET value = value + 1 WHERE id = 1";

impl Store {
    /// The bans in force at `now`, oldest first.
    pub async fn list_bans(&self, now: i64) -> Result<Vec<Ban>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT address, until_at, reason, manual, created_at FROM bans \
             WHERE until_at IS NULL OR until_at > $1 ORDER BY created_at, address"
        )
        .bind(now)
        .fetch_all(pool)
        .await)?)
    }

    /// Adds or renews a ban. An operator's ban (`manual`) bumps the generation, so that a
    /// running server picks it up.
    pub async fn put_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            if ban.manual {
                sqlx::query(BUMP).execute(&mut *tx).await?;
            }
            sqlx::query(
                // A renewal never shortens a ban nor turns an operator's into the guard's: the
                // later end wins (no end beats any), and a ban stays manual once it was.
                "INSERT INTO bans (address, until_at, reason, manual, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (address) DO UPDATE SET \
                 until_at = CASE WHEN bans.until_at IS NULL OR excluded.until_at IS NULL THEN NULL \
                   WHEN excluded.until_at > bans.until_at THEN excluded.until_at ELSE bans.until_at END, \
                 reason = CASE WHEN bans.manual AND NOT excluded.manual THEN bans.reason ELSE excluded.reason END, \
                 manual = bans.manual OR excluded.manual, created_at = excluded.created_at",
            )
            .bind(&ban.address)
            .bind(ban.until_at)
            .bind(&ban.reason)
            .bind(ban.manual)
            .bind(ban.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await)?;
        Ok(())
    }

    /// Lifts the ban on `address` (bumping the generation); false when there was none.
    pub async fn remove_ban(&self, address: &str) -> Result<bool, StoreError> {
        let removed: Result<u64, sqlx::Error> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM bans WHERE address = $1").bind(address).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        }
        .await);
        Ok(removed? > 0)
    }

    /// The lockouts in force at `now`.
    pub async fn list_lockouts(&self, now: i64) -> Result<Vec<Lockout>, StoreError> {
        let rows: Vec<LockoutRow> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT kind, subject, until_at FROM lockouts WHERE until_at > $1 ORDER BY kind, subject"
        )
        .bind(now)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let kind = match r.kind.as_str() {
                    "account" => LockoutKind::Account,
                    "pin" => LockoutKind::Pin,
                    _ => return None,
                };
                Some(Lockout { kind, subject: r.subject, until_at: r.until_at })
            })
            .collect())
    }

    /// Adds or renews a lockout.
    pub async fn put_lockout(&self, lockout: &Lockout) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO lockouts (kind, subject, until_at) VALUES ($1, $2, $3) \
             ON CONFLICT (kind, subject) DO UPDATE SET until_at = excluded.until_at"
        )
        .bind(lockout.kind.as_str())
        .bind(&lockout.subject)
        .bind(lockout.until_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// When the lockout of `subject` ends (Unix seconds), if there is one in the table (ended
    /// or not).
    pub async fn lockout_until(&self, kind: LockoutKind, subject: &str) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar("SELECT until_at FROM lockouts WHERE kind = $1 AND subject = $2")
            .bind(kind.as_str())
            .bind(subject)
            .fetch_optional(pool)
            .await)?)
    }

    /// Lifts a lockout (bumping the generation); false when there was none.
    pub async fn remove_lockout(&self, kind: LockoutKind, subject: &str) -> Result<bool, StoreError> {
        let removed: Result<u64, sqlx::Error> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM lockouts WHERE kind = $1 AND subject = $2")
                .bind(kind.as_str())
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        }
        .await);
        Ok(removed? > 0)
    }

    /// A counter every operator change of bans or lockouts increments.
    pub async fn guard_generation(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar("SELECT value FROM guard_generation WHERE id = 1")
            .fetch_one(pool)
            .await)?)
    }

    /// Removes bans and lockouts that ended before `now`.
    pub async fn purge_guard(&self, now: i64) -> Result<(), StoreError> {
        on_pool!(self, |pool| async {
            sqlx::query("DELETE FROM bans WHERE until_at IS NOT NULL AND until_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM lockouts WHERE until_at <= $1").bind(now).execute(pool).await?;
            Ok::<(), sqlx::Error>(())
        }
        .await)?;
        Ok(())
    }
}
